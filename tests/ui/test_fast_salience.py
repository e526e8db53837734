"""The data behind browser-side clicks (`promptlit.ui.fast_salience`), without a browser.

The browser test `tests/e2e/test_fast_clicks.py` checks the JavaScript itself against the
server on the embedded model; here: what is sent is exact and small, the browser's arithmetic
(emulated in Python the way FAST_JS does it) gives `SpanSalience.aggregate`'s numbers to the
last bit, acks from the page are checked field by field, and the module's outputs carry what
the page needs (and no HTML built from data on the browser side).
"""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from promptlit.salience.result import SequenceSalience
from promptlit.ui import fast_salience
from promptlit.ui.modules import base, lm_salience
from promptlit.ui.state import SessionState

from .fakes import make_workbench


def _sal(signed_zero: bool = False) -> SequenceSalience:
    prompt = "Taste: <b>x</b> & fish.\nDish: soup!\n\nAgain: fish"
    response = " Avoid it. <i>now</i>"
    text = prompt + response
    offsets = [(m.start(), m.end()) for m in re.finditer(r"\s*\S+", text)]
    p = sum(1 for s, _ in offsets if s < len(prompt))
    n, t = len(offsets), len(offsets) - p
    rng = np.random.default_rng(0)
    l2 = np.abs(rng.standard_normal((t, n))).astype(np.float32)
    gi = rng.standard_normal((t, n)).astype(np.float32) * 1e3
    for i in range(t):  # causal: row i is zero past its own position
        l2[i, p + i:] = 0.0
        gi[i, p + i:] = -0.0 if signed_zero else 0.0
    return SequenceSalience(text=text, prompt_length=len(prompt),
                            tokens=[text[s:e] for s, e in offsets],
                            offsets=np.array(offsets), num_prompt_tokens=p,
                            matrices={"grad_l2": l2, "grad_dot_input": gi},
                            signed={"grad_l2": False, "grad_dot_input": True})


def _decode(m: dict) -> list[np.ndarray]:
    raw = np.frombuffer(base64.b64decode(m["b64"]), "<f4" if m["bytes"] == 4 else "<f8")
    rows, o = [], 0
    for n in m["lens"]:
        rows.append(raw[o:o + n])
        o += n
    return rows


def _browser_span(d: dict, method: str, a: int, b: int, gran: str) -> list[float]:
    """FAST_JS's spanScores + totals, in Python floats (IEEE doubles, same order)."""
    rows = _decode(d["methods"][method])
    acc = [0.0] * d["n"]
    for t in range(a, b):
        for j, v in enumerate(rows[t].tolist()):
            acc[j] += v
    g = d["grans"][gran]
    tot = [0.0] * len(g["segs"])
    for i, k in enumerate(g["of"]):
        if k >= 0:
            tot[k] += acc[i]
    return tot


@pytest.mark.parametrize("signed_zero", [False, True])
def test_client_data_is_exact_and_cuts_causal_zeros(signed_zero):
    sal = _sal(signed_zero)
    d = fast_salience.client_data(sal, {"prompt": sal.prompt_text}, key="k",
                                  methods=("grad_l2", "grad_dot_input"))
    assert d is not None and d["t"] == sal.num_response_tokens and d["p"] == sal.num_prompt_tokens
    for m in ("grad_l2", "grad_dot_input"):
        rows = _decode(d["methods"][m])
        assert d["methods"][m]["bytes"] == 4  # float32 matrices travel as float32
        assert sum(len(r) for r in rows) < sal.num_response_tokens * len(sal.tokens)
        for i, r in enumerate(rows):
            full = np.asarray(sal.matrices[m][i])
            assert np.array_equal(r, full[: len(r)]) and not np.any(full[len(r):])
    for gran in ("tokens", "words", "sentences", "lines", "paragraphs", "few-shot"):
        assert gran in d["grans"]
        for m in ("grad_l2", "grad_dot_input"):
            for a, b in ((0, sal.num_response_tokens), (1, 3), (2, 3)):
                want = [s.score for s in sal.for_span(a, b, m).aggregate(gran)]
                assert _browser_span(d, m, a, b, gran) == want  # bit for bit
    words = d["grans"]["words"]["segs"]
    assert [s[4] for s in words] == [s.text for s in sal.for_span(0, 1).aggregate("words")]
    assert "blocks" not in d["grans"]  # no separator typed: the server explains why


def test_client_data_sends_float64_when_float32_would_round_and_refuses_huge():
    sal = _sal()
    x = np.asarray(sal.matrices["grad_l2"], dtype=np.float64) + 1e-12
    big = SequenceSalience(text=sal.text, prompt_length=sal.prompt_length, tokens=sal.tokens,
                           offsets=sal.offsets, num_prompt_tokens=sal.num_prompt_tokens,
                           matrices={"grad_l2": x}, signed={"grad_l2": False})
    d = fast_salience.client_data(big, {}, key="k", methods=("grad_l2",))
    assert d is not None and d["methods"]["grad_l2"]["bytes"] == 8
    assert np.array_equal(np.concatenate(_decode(d["methods"]["grad_l2"])), x[x != 0])
    old = fast_salience.MAX_CLIENT_FLOATS
    try:
        fast_salience.MAX_CLIENT_FLOATS = 10
        assert fast_salience.client_data(big, {}, key="k", methods=("grad_l2",)) is None
    finally:
        fast_salience.MAX_CLIENT_FLOATS = old


@pytest.mark.parametrize("raw", [
    None, "", "not json", "[]", json.dumps({"key": "k"}), "x" * 2000,
    {"key": "k", "rev": 1, "seq": 1, "gran": "words", "span": [0, 9], "anchor": 0},
    {"key": "k", "rev": 1, "seq": 1, "gran": "words", "span": [2, 2], "anchor": 0},
    {"key": "k", "rev": True, "seq": 1, "gran": "words", "span": [0, 1], "anchor": 0},
    {"key": "k", "rev": 1, "seq": -1, "gran": "words", "span": [0, 1], "anchor": 0},
    {"key": "k", "rev": 1, "seq": 1, "gran": "<img>", "span": [0, 1], "anchor": 0},
    {"key": "k", "rev": 1, "seq": 1, "gran": "words", "span": [0, 1], "anchor": 7},
    {"key": ["k"], "rev": 1, "seq": 1, "gran": "words", "span": [0, 1], "anchor": 0},
    {"key": "k", "rev": 1, "seq": 1, "gran": "words", "span": ["0", 1], "anchor": 0},
])
def test_parse_ack_refuses_anything_but_a_well_formed_ack(raw):
    assert fast_salience.parse_ack(raw, t=5) is None


def test_parse_ack_accepts_dicts_and_json():
    ack = {"key": "k", "rev": 3, "seq": 2, "gran": "sentences", "span": [1, 4], "anchor": 3}
    want = {**ack, "span": (1, 4)}
    assert fast_salience.parse_ack(ack, t=5) == want
    assert fast_salience.parse_ack(json.dumps(ack), t=5) == want


def test_browser_code_builds_no_html_from_data():
    js = fast_salience.FAST_JS + fast_salience.GRANULARITY_JS + lm_salience.CLICK_JS
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function"):
        assert sink not in js, sink
    assert "textContent" in js


def _explained_state(wb) -> SessionState:
    st = SessionState(dataset="toy", model="fake")
    st.select_example(base.dataset_rows(wb, st)[0][0])
    ex = base.primary_example(wb, st)
    wb.predict("fake", "toy", [ex])
    st.explained = True
    return st


def _config(view: str) -> dict:
    m = re.search(r'<div class="pl-fast" hidden data-config="([^"]*)"></div>$', view)
    assert m, view[-300:]
    import html

    return json.loads(html.unescape(m.group(1)))


def test_outputs_carry_the_config_and_send_the_data_once_per_example():
    wb = make_workbench()
    st = _explained_state(wb)
    r = lm_salience.render_views(wb, st)
    view, ranked = lm_salience.fast_outputs(st, r)
    assert isinstance(view, dict) and view["pl_data"]["key"] == r["fast"]["key"]
    cfg = _config(view["value"])
    assert cfg["fast"] and cfg["key"] == r["fast"]["key"] and cfg["rev"] == st.views["lm_salience"]["rev"]
    assert cfg["span"] == list(st.span) and cfg["gran"] == "words" and cfg["method"] == "grad_l2"
    assert ranked.startswith(f'<div class="pl-ranked-box" data-rev="{cfg["rev"]}">')
    # Same example again: no data resent, a new revision (a new string for Gradio).
    view2, ranked2 = lm_salience.fast_outputs(st, lm_salience.render_views(wb, st))
    assert isinstance(view2, str) and _config(view2)["rev"] > cfg["rev"] and ranked2 != ranked
    # Integrated Gradients (a model call per span) keeps clicks on the server.
    st.method = "integrated_gradients"
    view3, _ = lm_salience.fast_outputs(st, lm_salience.render_views(wb, st))
    assert not _config(view3 if isinstance(view3, str) else view3["value"])["fast"]


def test_config_escapes_hostile_text():
    st = SessionState()
    gran = 'words"><img src=x onerror=alert(1)>'  # never a valid granularity, never raw either
    out = lm_salience.fast_outputs(st, {"view": '<div class="pl-view"></div>', "ranked": "",
                                        "fast": {"key": "k", "ok": True, "data": lambda: None,
                                                 "cfg": {"gran": gran}}})
    view = out[0] if isinstance(out[0], str) else out[0]["value"]
    assert "<img" not in view and "&lt;img" in view and _config(view)["gran"] == gran


def test_adopt_ack_takes_only_current_and_newer_selections():
    st = SessionState()
    st.views["lm_salience"] = {"rev": 7, "fast_key": "k"}
    ack = {"key": "k", "rev": 7, "seq": 2, "gran": "lines", "span": (1, 3), "anchor": 1}
    assert lm_salience.adopt_ack(st, ack)
    assert (st.span, st.anchor, st.granularity) == ((1, 3), 1, "lines")
    # an older ack that Gradio ran late: acknowledged, not adopted
    assert lm_salience.adopt_ack(st, {**ack, "seq": 1, "span": (0, 1), "gran": "words"})
    assert (st.span, st.granularity) == ((1, 3), "lines")
    # made on an older render, or for other data: the server redraws instead
    assert not lm_salience.adopt_ack(st, {**ack, "seq": 5, "rev": 6})
    assert not lm_salience.adopt_ack(st, {**ack, "seq": 5, "key": "other"})
    assert not lm_salience.adopt_ack(st, None)
    assert st.span == (1, 3)
