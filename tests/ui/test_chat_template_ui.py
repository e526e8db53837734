"""The salience view of an instruction-tuned model (issue 11, part 1): the prompt as the model reads
it, template tokens greyed and kept out of rankings and colours unless the toggle includes them.

Uses the tiny chat Gemma of tests/models/chat_lm.py (built once per session), and a Hugging Face
export of it for the `promptlit serve --models it:PATH --chat-template auto` path.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))

import chat_lm  # noqa: E402

from promptlit.api.dataset import Dataset  # noqa: E402
from promptlit.data import prompt_spec  # noqa: E402
from promptlit.models import chat  # noqa: E402
from promptlit.salience.result import SequenceSalience  # noqa: E402
from promptlit.ui import render  # noqa: E402
from promptlit.ui.modules import base, lm_salience  # noqa: E402
from promptlit.ui.state import SessionState  # noqa: E402

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello there"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "Why?"},
]


def _template_spans_html(html: str) -> list[str]:
    return re.findall(r'<span class="pl-seg pl-template[^"]*"[^>]*>(.*?)</span>', html, re.S)


# ----------------------------------------------------------------------------- pure rendering


def _sal() -> SequenceSalience:
    prompt = "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    pieces = ["", "<start_of_turn>", "user\n", "Hi", "<end_of_turn>\n", "<start_of_turn>",
              "model\n", " Yo"]
    offsets, pos = [], 0
    for piece in pieces:
        offsets.append((pos, pos + len(piece)))
        pos += len(piece)
    matrix = np.array([[9.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0, 0.0]])
    return SequenceSalience(text=prompt + " Yo", prompt_length=len(prompt),
                            tokens=["<bos>", *pieces[1:]], offsets=np.array(offsets),
                            num_prompt_tokens=7, matrices={"grad_l2": matrix},
                            template_mask=[True, True, True, False, True, True, True, False])


def test_view_greys_template_and_colours_only_the_users_text() -> None:
    sal = _sal()
    span = sal.for_span(0, 1)
    html = render.salience_view_html(sal, span, granularity="words")
    assert _template_spans_html(html) == ["&lt;start_of_turn&gt;user\n",
                                          "&lt;end_of_turn&gt;\n&lt;start_of_turn&gt;model\n"]
    assert 'title="chat template · score 11"' in html  # <bos> 9 + <start_of_turn> 1 + user 1
    assert "rgba(106,61,154,0.000)" in html.split("Hi</span>")[0].split("pl-template")[1]
    assert re.search(r'rgba\(106,61,154,1\.000\)[^>]*title="score 2"[^>]*>Hi<', html)
    included = render.salience_view_html(sal, span, granularity="words", include_template=True)
    assert "pl-template-included" in included
    assert re.search(r'rgba\(106,61,154,1\.000\)[^>]*title="chat template · score 11"', included)
    plain = render.salience_view_html(sal, None)
    assert '<span class="pl-template" title="chat template">&lt;start_of_turn&gt;user\n</span>' \
        in plain
    ranked = render.rank_segments(span.aggregate("words"), False, None)
    assert [s.text for s in ranked] == ["Hi"]
    ranked = render.rank_segments(span.aggregate("words"), False, None, include_template=True)
    assert [(s.text, s.score) for s in ranked] == [
        ("<start_of_turn>user\n", 11.0), ("<end_of_turn>\n<start_of_turn>model\n", 3.0),
        ("Hi", 2.0)]
    matrix = render.matrix_html(sal, "grad_l2", granularity="words")
    assert "start_of_turn" not in matrix and 'title="Hi"' in matrix  # one column: "Hi"
    assert "start_of_turn" in render.matrix_html(sal, "grad_l2", include_template=True)


def test_templated_text_is_escaped() -> None:
    html = render.templated_text_html("<b>x</b><t>", [(8, 11)], label="PROMPT")
    assert html == ('<div class="pl-role">PROMPT</div><div class="pl-text">&lt;b&gt;x&lt;/b&gt;'
                    '<span class="pl-template" title="chat template">&lt;t&gt;</span></div>')


# ----------------------------------------------------------------------------- the module


@pytest.fixture(scope="module")
def wb():
    from promptlit.workbench import Workbench

    data = Dataset([{"prompt": "What is the capital of France?"},
                    {"prompt": chat.transcript(CONVERSATION), "messages": CONVERSATION},
                    {"prompt": "Hi", "chat_template": "none"}], spec=prompt_spec())
    return Workbench(models={"it": chat_lm.tiny_chat_lm()}, datasets={"d": data})


def _state(wb, row: int) -> SessionState:
    st = SessionState(dataset="d", model="it")
    st.select_example(base.dataset_rows(wb, st)[row][0])
    return st


def test_prompt_preview_shows_the_templated_prompt(wb) -> None:
    st = _state(wb, 1)
    view = lm_salience.render_views(wb, st)["view"]
    assert "PROMPT (chat template: gemma; template tokens greyed)" in view
    assert ('<span class="pl-template" title="chat template">&lt;start_of_turn&gt;user\n</span>'
            "Be brief.") in view
    raw = lm_salience.render_views(wb, _state(wb, 2))["view"]  # the example opts out
    assert "start_of_turn" not in raw and ">Hi<" in raw


def test_explained_view_ranks_only_the_users_text_until_toggled(wb) -> None:
    st = _state(wb, 1)
    st.explained, st.granularity = True, "turns"
    out = lm_salience.render_views(wb, st)
    assert "chat template **gemma**" in out["info"]
    ranked = re.findall(r'class="pl-segtext" title="([^"]*)"', out["ranked"])
    assert sorted(ranked) == sorted(m["content"] for m in CONVERSATION)
    assert 'data-template="false"' in out["ranked"]
    assert len(_template_spans_html(out["view"])) == 5
    st.views.setdefault(lm_salience.NAME, {})["include_template"] = True
    out = lm_salience.render_views(wb, st)
    ranked = re.findall(r'class="pl-segtext" title="([^"]*)"', out["ranked"])
    assert any("start_of_turn" in r for r in ranked) and 'data-template="true"' in out["ranked"]
    assert "pl-template-included" in out["view"]
    # the salience behind both views is one cached result: the toggle computes nothing
    sal = lm_salience._matrix_salience(wb, st, base.primary_example(wb, st))
    assert sal is lm_salience._matrix_salience(wb, st, base.primary_example(wb, st))
    assert sal.has_template and sal.metadata["chat_template"] == "gemma"


def test_per_example_template_is_part_of_the_cache_keys(wb) -> None:
    ex = {"prompt": "Hi"}
    templated = wb.salience("it", ex, target="response")
    raw = wb.salience("it", {**ex, "chat_template": "none"}, target="response")
    assert templated.prompt_text.startswith("<start_of_turn>user\nHi")
    assert raw.prompt_text == "Hi" and not raw.has_template
    messages = wb.salience("it", {"messages": CONVERSATION}, target="response")
    assert messages.prompt_text == chat_lm.tiny_chat_lm().format_prompt(CONVERSATION).text
    edited = wb.salience("it", {"prompt": "Edited", "messages": CONVERSATION},
                         target="response")
    assert edited.prompt_text == "<start_of_turn>user\nEdited<end_of_turn>\n<start_of_turn>model\n"


# ----------------------------------------------------------------------------- the command line


def test_serve_an_hf_checkpoint_with_chat_template_auto(tmp_path) -> None:
    from promptlit import cli

    ckpt = chat_lm.export_hf_checkpoint(tmp_path / "gemma-it", chat_lm.HF_GEMMA_TEMPLATE)
    rows = tmp_path / "chat.jsonl"
    rows.write_text(json.dumps({"messages": CONVERSATION}) + "\n")
    args = cli.make_parser().parse_args([
        "serve", "--models", f"it:{ckpt}", "--chat-template", "auto",
        "--datasets", f"chat:{rows}", "--max-new-tokens", "3", "--max-length", "128"])
    wb = cli.build_workbench(args)
    model = wb.models["it"].unwrap()
    assert "(checkpoint)" in model.description()
    assert model.tokenizer.token_to_id("<end_of_turn>") in model._stop_ids
    st = SessionState(dataset="chat", model="it")
    st.select_example(base.dataset_rows(wb, st)[0][0])
    preview = lm_salience.render_views(wb, st)["view"]
    assert "chat template: gemma-it (checkpoint)" in preview
    st.explained = True
    out = lm_salience.render_views(wb, st)
    assert "&lt;start_of_turn&gt;model\n" in "".join(_template_spans_html(out["view"]))
    assert "chat template **gemma-it \\(checkpoint\\)**" in out["info"]  # Markdown-escaped
