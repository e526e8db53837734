"""Contrastive salience, the top alternatives and the attention view in the UI, with a fake LM
(no JAX): rendering, escaping, session state, the wired callbacks and the /salience API."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import pytest

from promptlit.api import types
from promptlit.api.dataset import Dataset
from promptlit.salience.attention import AttentionMaps
from promptlit.ui import app, render
from promptlit.ui.limits import LimitError, RequestLimits
from promptlit.ui.modules import base, lm_salience
from promptlit.ui.state import SessionState

from .fakes import EXAMPLES, FakeLM


class ContrastFakeLM(FakeLM):
    """FakeLM plus contrast (scores: +1 on even prompt tokens, -len(B) on odd ones), attention
    (2 layers x 3 heads, layer l head h looks at prompt token (l + h) % P) and top
    alternatives (the written token first, then "<b>alt</b>" and "<eos>")."""

    def __init__(self) -> None:
        super().__init__()
        self.calls.update(contrast=0, attention=0)

    def output_spec(self) -> types.Spec:
        return {**super().output_spec(),
                "response_top_tokens": types.TokenTopKPreds(align="response_tokens",
                                                            required=False)}

    def predict_minibatch(self, inputs: list[dict], **kw: Any) -> list[dict]:
        out = super().predict_minibatch(inputs, **kw)
        for o in out:
            o["response_top_tokens"] = [[(t, 0.7), ("<b>alt</b>", 0.2), ("<eos>", 0.1)]
                                        for t in o["response_tokens"]]
        return out

    def salience(self, prompt: str, response: str, *, methods=("grad_l2",), ig_steps: int = 16,
                 span: tuple[int, int] | None = None, contrast: str | None = None,
                 **kw: Any) -> Any:
        sal = super().salience(prompt, response, methods=methods, ig_steps=ig_steps, span=span)
        if contrast is None:
            return sal
        self.calls["contrast"] += 1
        a, b = span or (0, sal.num_response_tokens)
        n, p = sal.num_tokens, sal.num_prompt_tokens
        scores = np.where(np.arange(n) % 2 == 0, 1.0, -float(len(contrast)))
        scores[p:] = 0.0
        from promptlit.salience.result import SequenceSalience

        return SequenceSalience(
            text=sal.text, prompt_length=sal.prompt_length, tokens=sal.tokens,
            offsets=sal.offsets, num_prompt_tokens=p,
            span_scores={(m, a, b): np.abs(scores) if m == "grad_l2" else scores
                         for m in methods},
            signed={m: m != "grad_l2" for m in methods},
            metadata={"contrast": {"text": contrast, "start": a, "stop": b,
                                   "tokens": [contrast], "log_prob": -0.5,
                                   "log_prob_contrast": -4.25},
                      "settings": {m: {"contrast": contrast} for m in methods}})

    def attention(self, prompt: str, response: str) -> AttentionMaps:
        self.calls["attention"] += 1
        sal = super().salience(prompt, response)
        t, n, p = sal.num_response_tokens, sal.num_tokens, sal.num_prompt_tokens
        w = np.zeros((2, 3, t, n), np.float32)
        for layer in range(2):
            for head in range(3):
                w[layer, head, :, (layer + head) % p] = 1.0
        from promptlit.salience.result import SequenceSalience

        return AttentionMaps(SequenceSalience(
            text=sal.text, prompt_length=sal.prompt_length, tokens=sal.tokens,
            offsets=sal.offsets, num_prompt_tokens=p,
            matrices={"attention": w.mean(axis=(0, 1))}), w)


def make_wb() -> Any:
    from promptlit.data import prompt_spec
    from promptlit.workbench import Workbench

    data = Dataset([dict(e) for e in EXAMPLES], spec=prompt_spec())
    return Workbench(models={"fake": ContrastFakeLM()}, datasets={"toy": data})


@pytest.fixture
def wb() -> Any:
    return make_wb()


def _explained(wb: Any, index: int = 0) -> SessionState:
    st = SessionState(dataset="toy", model="fake")
    st.select_example(base.dataset_rows(wb, st)[index][0])
    wb.predict("fake", "toy", [base.primary_example(wb, st)])
    st.explained = True
    return st


def test_contrast_view_ranks_toward_a_and_toward_b_and_is_cached(wb) -> None:
    st = _explained(wb)
    st.method = "grad_dot_input"
    st.span = (0, 1)
    lm_salience.set_contrast(st, " <i>Order</i>")
    fake = wb.models["fake"].unwrap()
    out = lm_salience.render_views(wb, st)
    assert fake.calls["contrast"] == 1
    html = out["ranked"]
    assert 'data-side="a"' in html and 'data-side="b"' in html
    assert "&lt;i&gt;Order&lt;/i&gt;" in html and "<i>Order" not in html
    assert 'data-contrast=" &lt;i&gt;Order&lt;/i&gt;"' in html
    a_part, b_part = html.split('data-side="b"')
    assert "Likes:" in a_part  # even prompt tokens push toward A (+1)
    assert "fish" in b_part  # odd ones toward B (-len(B))
    assert "why A rather than B" in out["legend"] and "diverging" in out["legend"]
    info = str(out["info"])
    assert "rather than" in info and "-4.250" in info and "&lt;i&gt;" in info
    lm_salience.render_views(wb, st)  # cached: no new model call
    st.granularity = "lines"
    lm_salience.render_views(wb, st)  # a granularity change is numpy only
    assert fake.calls["contrast"] == 1
    st.method = "grad_l2"
    out = lm_salience.render_views(wb, st)
    assert 'data-side="both"' in out["ranked"] and "no direction" in out["ranked"]
    assert fake.calls["contrast"] == 2
    # the contrast belongs to its example: another example shows plain salience
    st.select_example(base.dataset_rows(wb, st)[1][0])
    st.explained = True
    assert lm_salience.contrast_of(st) is None
    assert 'data-side' not in lm_salience.render_views(wb, st)["ranked"]


def test_attention_view_layers_heads_and_shares(wb) -> None:
    st = _explained(wb)
    st.span = (0, 2)
    st.views.setdefault(lm_salience.NAME, {})["attention"] = True
    out = lm_salience.render_views(wb, st)
    att = out["attention"]
    assert (att["layers"], att["heads"], att["layer"], att["head"]) == (2, 3, None, None)
    assert "average over layers" in att["attention"]
    assert 'data-kind="attention"' in att["attention_ranked"]
    st.views[lm_salience.NAME].update(att_layer="1", att_head="2")  # looks at prompt token 0
    att = lm_salience.render_views(wb, st)["attention"]
    assert (att["layer"], att["head"]) == (1, 2) and "layer 1 · head 2" in att["attention"]
    assert 'data-layer="1"' in att["attention_ranked"]
    first = att["attention_ranked"].split('data-rank="1"')[1]
    assert "Likes:" in first and ">1<" in first  # all of the span's attention
    st.views[lm_salience.NAME].update(att_layer="9")  # out of range: averaged again
    assert lm_salience.render_views(wb, st)["attention"]["layer"] is None
    assert wb.models["fake"].unwrap().calls["attention"] == 1  # one cached forward


def test_token_alternatives_html_escapes_and_offers_why_not() -> None:
    html = render.token_alternatives_html(
        [" <b>x</b>", " y"], [-0.1, -2.0],
        [[(" <b>x</b>", 0.9), (" z&", 0.05), ("<eos>", 0.01)], [(" y", 0.5), (" w", 0.4)]],
        open_index=0)
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert 'class="pl-why-not" data-index="0" data-alt="1"' in html
    assert 'data-alt="0"' in html and "(written)" in html and "(special token)" in html
    assert 'data-alt="2">' not in html.split("pl-alternatives")[1].split("(special")[0][-40:]
    assert "alternatives: “&lt;b&gt;x&lt;/b&gt;” 90.0%, “z&amp;” 5.0%" in html
    closed = render.token_alternatives_html([" y"], [-0.5], None)
    assert "pl-why-not" not in closed and "hover for log p" in closed


def test_contrast_ranked_html_for_an_empty_side() -> None:
    from promptlit.salience.aggregation import Segment

    html = render.contrast_ranked_html([Segment("a", 0, 1, 2.0), Segment("b", 2, 3, 1.0)],
                                       signed=True, a_text="A", b_text="B")
    assert html.count('data-rank="') == 2 and "none" in html.split('data-side="b"')[1]


def find_callback(demo: Any, elem_id: str, event: str) -> Any:
    for fn in demo.fns.values():
        for block_id, ev in fn.targets:
            if ev == event and getattr(demo.blocks.get(block_id), "elem_id", None) == elem_id:
                return fn
    raise LookupError(f"no {event} callback on #{elem_id}")


def by_id(fn: Any, result: Any) -> dict[Any, Any]:
    return {getattr(c, "elem_id", None) or i: v
            for i, (c, v) in enumerate(zip(fn.outputs, result, strict=True))}


def test_why_not_this_one_sets_span_and_contrast(wb) -> None:
    demo = app.build_app(wb, layout="lm")
    st = SessionState(dataset="toy", model="fake")
    st.select_example(base.dataset_rows(wb, st)[0][0])
    wb.predict("fake", "toy", [base.primary_example(wb, st)])
    fn = find_callback(demo, "pl-logprobs", "click")
    out = by_id(fn, fn.fn(st, gr.EventData(None, {"index": 1})))  # open token 1's alternatives
    assert 'pl-alt-panel" data-index="1"' in out["pl-logprobs"]
    assert wb.models["fake"].unwrap().calls["salience"] == 0  # opening calls no model
    out = by_id(fn, fn.fn(st, gr.EventData(None, {"index": 1, "alt": 1})))
    assert st.span == (1, 2) and st.explained and lm_salience.contrast_of(st) == "<b>alt</b>"
    assert out["pl-contrast"] == "<b>alt</b>" and out["pl-footer"].startswith("✓ why")
    assert 'data-contrast="&lt;b&gt;alt&lt;/b&gt;"' in out["pl-ranked"]
    assert wb.models["fake"].unwrap().calls["contrast"] == 1
    bad = fn.fn(st, gr.EventData(None, {"index": 1, "alt": 7}))
    assert bad[-1].startswith("⚠ no alternative #7")
    # the contrast box and Clear
    clear = find_callback(demo, "pl-contrast-clear", "click")
    out = by_id(clear, clear.fn(st, False))
    assert lm_salience.contrast_of(st) is None and out["pl-contrast"] == ""
    assert "data-side" not in out["pl-ranked"]
    explain = find_callback(demo, "pl-contrast-explain", "click")
    out = by_id(explain, explain.fn(st, " nope", False))
    assert lm_salience.contrast_of(st) == " nope" and 'data-side="both"' in out["pl-ranked"]
    too_long = explain.fn(st, "x" * (RequestLimits().max_contrast_chars + 1), False)
    assert "contrast has" in too_long[-1] and lm_salience.contrast_of(st) == " nope"
    show = find_callback(demo, "pl-show-attention", "change")
    out = by_id(show, show.fn(st, True, "avg", "1", False))
    assert 'data-head="1"' in out["pl-attention-ranked"]


def test_check_contrast_limits() -> None:
    limits = RequestLimits(max_contrast_chars=5)
    assert limits.check_contrast(" Avoid"[:5]) == " Avoi"
    with pytest.raises(LimitError, match="at most 5"):
        limits.check_contrast(" Avoid")
    with pytest.raises(LimitError, match="non-empty"):
        limits.check_contrast("")


def test_salience_api_contrast() -> None:
    from gradio_client import Client

    from promptlit.server import serve

    srv = serve(make_wb(), port=0, block=False)
    try:
        client = Client(srv.local_url, verbose=False)
        out = client.predict(example=0, method="grad_dot_input", span_start=0, span_stop=1,
                             contrast=" Avoid", api_name="/salience")
        assert out["contrast"] == {"text": " Avoid", "tokens": [" Avoid"], "log_prob": -0.5,
                                   "log_prob_contrast": -4.25}
        assert out["toward_a"] and all(s["score"] > 0 for s in out["toward_a"])
        assert out["toward_b"] and all(s["score"] < 0 for s in out["toward_b"])
        assert out["toward_b"][0]["score"] == -6.0
        plain = client.predict(example=0, method="grad_dot_input", span_start=0, span_stop=1,
                               api_name="/salience")
        assert "contrast" not in plain
        with pytest.raises(Exception, match="contrast has"):
            client.predict(example=0, contrast="x" * 501, api_name="/salience")
    finally:
        srv.stop()
