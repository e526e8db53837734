"""Chat templates (issue 11, part 1): rendering, resolution, and a tiny Gemma that uses them.

The model tests share one tiny random-weight Gemma whose vocabulary holds ``<start_of_turn>`` and
``<end_of_turn>`` (`chat_lm.tiny_chat_lm`, built and compiled once per session).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chat_lm  # noqa: E402

from promptlit.models import chat  # noqa: E402

GEMMA = chat.get_builtin("gemma")
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello there"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "Why?"},
]


def _template_texts(r: chat.Rendered) -> list[str]:
    return [r.text[s:e] for s, e in r.template_spans]


def _turn_texts(r: chat.Rendered) -> list[tuple[str, int, str]]:
    return [(t.role, t.message, r.text[t.start:t.end]) for t in r.turns]


# ----------------------------------------------------------------------------- built-in templates


def test_gemma_renders_the_documented_format_and_its_template_spans() -> None:
    r = GEMMA.render([{"role": "user", "content": "What is 2 + 2?"}])
    assert r.text == "<start_of_turn>user\nWhat is 2 + 2?<end_of_turn>\n<start_of_turn>model\n"
    assert _template_texts(r) == ["<start_of_turn>user\n",
                                  "<end_of_turn>\n<start_of_turn>model\n"]
    assert _turn_texts(r) == [("user", 0, "What is 2 + 2?")]
    # the pieces tile the text: template, content, template
    assert [(r.text[s:e], t) for s, e, t in r.pieces()] == [
        ("<start_of_turn>user\n", True), ("What is 2 + 2?", False),
        ("<end_of_turn>\n<start_of_turn>model\n", True)]


def test_multi_turn_gemma_folds_the_system_message_into_the_first_user_turn() -> None:
    r = GEMMA.render(CONVERSATION)
    assert r.text == ("<start_of_turn>user\nBe brief.\n\nHello there<end_of_turn>\n"
                      "<start_of_turn>model\nParis.<end_of_turn>\n"
                      "<start_of_turn>user\nWhy?<end_of_turn>\n<start_of_turn>model\n")
    assert _turn_texts(r) == [("system", 0, "Be brief."), ("user", 1, "Hello there"),
                              ("assistant", 2, "Paris."), ("user", 3, "Why?")]
    assert "\n\n" in _template_texts(r)  # the separator is template, not the user's text


@pytest.mark.parametrize(("name", "expected"), [
    ("llama3", "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\nParis.<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\nWhy?<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    ("mistral", "[INST] Be brief.\n\nHello there [/INST] Paris.</s>[INST] Why? [/INST]"),
    ("qwen", "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n"
             "<|im_start|>assistant\nParis.<|im_end|>\n<|im_start|>user\nWhy?<|im_end|>\n"
             "<|im_start|>assistant\n"),
    ("transcript", "System: Be brief.\n\nUser: Hello there\n\nAssistant: Paris.\n\n"
                   "User: Why?\n\nAssistant:"),
])
def test_each_builtin_keeps_every_message_text_exact(name: str, expected: str) -> None:
    r = chat.get_builtin(name).render(CONVERSATION)
    assert r.text == expected
    assert [text for _, _, text in _turn_texts(r)] == [m["content"] for m in CONVERSATION]
    # template and turns tile the text without overlap
    covered = sorted([*r.template_spans, *((t.start, t.end) for t in r.turns)])
    assert covered[0][0] == 0 and covered[-1][1] == len(r.text)
    assert all(a[1] == b[0] for a, b in zip(covered, covered[1:], strict=False))


def test_already_formatted_prompt_is_marked_not_wrapped_again() -> None:
    text = "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
    assert GEMMA.is_formatted(text) and not GEMMA.is_formatted("Hi there")
    r = GEMMA.mark(text)
    assert r.text == text
    assert [(role, content) for role, _, content in _turn_texts(r)] == [("user", "Hi"),
                                                                       ("assistant", "Hello")]


@pytest.mark.parametrize(("messages", "needle"), [
    ("Hello", "must be a list of messages"),
    ([], "the conversation is empty"),
    ([{"role": "bot", "content": "x"}], "messages[0]: role 'bot' is not one of"),
    ([{"role": "user", "content": 3}], "messages[0]: 'content' must be a string, got int"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
     "the last message has role 'assistant'"),
    ([{"role": "user", "content": "a"}, "b"], "messages[1]: a message must be an object"),
])
def test_bad_messages_are_named_with_their_index_and_fix(messages, needle) -> None:
    with pytest.raises(chat.ChatTemplateError, match=None) as info:
        chat.check_messages(messages)
    assert needle in str(info.value)


def test_model_role_is_read_as_assistant() -> None:
    msgs = chat.check_messages([{"role": "user", "content": "a"}, {"role": "model",
                                                                    "content": "b"},
                                {"role": "user", "content": "c"}])
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]


# ----------------------------------------------------------------------------- resolution


def test_resolution_by_name_alias_auto_and_none() -> None:
    assert chat.resolve_chat_template("qwen") is chat.BUILTIN_TEMPLATES["chatml"]
    assert chat.resolve_chat_template("Gemma3") is GEMMA
    assert chat.resolve_chat_template("none") is None
    assert chat.resolve_chat_template(None) is None
    assert chat.resolve_chat_template("auto", handle="gemma2_instruct_2b_en",
                                      model_class="GemmaCausalLM") is GEMMA
    assert chat.resolve_chat_template("auto", handle="hf://Qwen/Qwen2.5-0.5B-Instruct",
                                      model_class="QwenCausalLM").name == "chatml"
    assert chat.resolve_chat_template("auto", handle="gemma2_2b_en",
                                      model_class="GemmaCausalLM") is None
    # the embedded base model is not instruction-tuned
    assert chat.resolve_chat_template("auto", handle="presets/tiny_lm",
                                      model_class="GemmaCausalLM") is None
    with pytest.raises(chat.ChatTemplateError, match="unknown chat template 'vicuna'"):
        chat.resolve_chat_template("vicuna")


@pytest.mark.parametrize(("name", "instruct"), [
    ("gemma2_instruct_2b_en", True), ("gemma3_instruct_1b", True), ("google/gemma-2-2b-it", True),
    ("gemma3_1b_it", True), ("Qwen2.5-0.5B-Instruct", True), ("gemma2_2b_en", False),
    ("tiny_lm", False), ("italian_gpt", False), ("llama3_8b_en", False)])
def test_instruct_names(name: str, instruct: bool) -> None:
    assert chat.is_instruct_name(name) is instruct


def test_an_example_may_not_choose_a_file() -> None:
    assert chat.check_example_template(" None ") == "none"
    assert chat.check_example_template("qwen") == "qwen"
    with pytest.raises(chat.ChatTemplateError, match="Template files are chosen when the model "
                                                     "is loaded"):
        chat.check_example_template("/etc/passwd")


# ----------------------------------------------------------------------------- Jinja (checkpoints)


def test_hf_template_in_tokenizer_config_is_found_and_rendered_like_the_builtin(tmp_path) -> None:
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "chat_template": chat_lm.HF_GEMMA_TEMPLATE, "bos_token": "<bos>", "eos_token": "<eos>",
        "added_tokens_decoder": {"1": {"content": "<eos>", "special": True},
                                 "106": {"content": "<start_of_turn>", "special": True},
                                 "107": {"content": "<end_of_turn>", "special": True}}}))
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [1, 107]}))
    template = chat.resolve_chat_template("auto", handle=str(tmp_path))
    assert isinstance(template, chat.JinjaTemplate)
    assert template.origin == str(tmp_path / "tokenizer_config.json")
    assert set(template.stop_tokens) == {"<eos>", "<end_of_turn>"}
    r = template.render(CONVERSATION).strip_prefix("<bos>")
    assert r.text == GEMMA.render(CONVERSATION).text
    assert _turn_texts(r) == _turn_texts(GEMMA.render(CONVERSATION))
    # a template that trims the messages: the trimmed text is the turn, exactly
    padded = [{"role": "user", "content": "  Hi  "}]
    r = template.render(padded)
    assert _turn_texts(r) == [("user", 0, "Hi")]
    assert template.fingerprint() != GEMMA.fingerprint()


def test_chat_template_jinja_file_wins_over_tokenizer_config(tmp_path) -> None:
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "A"}))
    (tmp_path / "chat_template.jinja").write_text(
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}")
    template = chat.find_checkpoint_template(tmp_path)
    assert template is not None and template.origin.endswith("chat_template.jinja")
    r = template.render([{"role": "user", "content": "Hi"}])
    assert r.text == "<user>Hi" and _template_texts(r) == ["<user>"]


def test_bad_template_files_name_the_file_and_line(tmp_path) -> None:
    bad_json = tmp_path / "tokenizer_config.json"
    bad_json.write_text('{\n  "chat_template": "x",\n  oops\n}')
    with pytest.raises(chat.ChatTemplateError, match=rf"{bad_json}:3: not valid JSON"):
        chat.resolve_chat_template("auto", handle=str(tmp_path))
    (tmp_path / "other").mkdir()
    bad_jinja = tmp_path / "other" / "t.jinja"
    bad_jinja.write_text("{% for m in messages %}{{ m.content }}")
    with pytest.raises(chat.ChatTemplateError, match="t.jinja.*not valid Jinja"):
        chat.resolve_chat_template(str(bad_jinja))
    with pytest.raises(chat.ChatTemplateError, match="neither a file nor a directory"):
        chat.resolve_chat_template(str(tmp_path / "missing.jinja"))


def test_checkpoint_templates_run_sandboxed() -> None:
    evil = chat.JinjaTemplate(source="{{ messages.__class__.__mro__[1].__subclasses__() }}",
                              name="evil", origin="/ckpt/chat_template.jinja")
    with pytest.raises(chat.ChatTemplateError, match="sandbox forbids"):
        evil.render([{"role": "user", "content": "x"}])
    mutating = chat.JinjaTemplate(source="{{ messages.append(1) }}", name="m")
    with pytest.raises(chat.ChatTemplateError, match="sandbox forbids"):
        mutating.render([{"role": "user", "content": "x"}])
    refusing = chat.JinjaTemplate(source="{{ raise_exception('System role not supported') }}",
                                  name="r", origin="/ckpt/tokenizer_config.json")
    with pytest.raises(chat.ChatTemplateError,
                       match="/ckpt/tokenizer_config.json: rendering the conversation failed: "
                             "System role not supported"):
        refusing.render([{"role": "user", "content": "x"}])


# ----------------------------------------------------------------------------- the model


@pytest.fixture(scope="module")
def lm():
    return chat_lm.tiny_chat_lm()


def test_auto_picks_the_builtin_template_from_an_instruct_handle(lm) -> None:
    assert lm.chat_template is GEMMA
    assert lm.chat_template_name == "gemma (built-in)"
    assert lm.description().endswith(", chat template gemma (built-in)")
    assert lm.cache_config()["chat_template"] == GEMMA.fingerprint()
    end_of_turn = lm.tokenizer.token_to_id("<end_of_turn>")
    assert end_of_turn in lm._stop_ids


def test_base_model_keeps_the_raw_prompt_and_its_cache_key() -> None:
    from promptlit.models.keras_lm import KerasCausalLM

    base = KerasCausalLM(chat_lm.causal_lm(), handle="test://tiny-gemma", max_length=128)
    assert base.chat_template is None
    assert "chat_template" not in base.cache_config()
    assert "chat template" not in base.description()
    enc = base.encode_prompt("Hello there")
    ids, _, _ = base.tokenize_with_offsets("Hello there", add_start_token=True)
    assert enc.text == "Hello there" and enc.ids.tolist() == ids.tolist()
    assert not enc.template_mask.any()
    with pytest.raises(ValueError, match="unknown chat template 'nope'"):
        KerasCausalLM(chat_lm.causal_lm(), handle="test://tiny-gemma", chat_template="nope")


def test_encode_prompt_marks_template_tokens_and_keeps_the_user_text_exact(lm) -> None:
    enc = lm.encode_prompt("What is the capital of France?")
    assert enc.text == ("<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n"
                        "<start_of_turn>model\n")
    pieces = lm.pieces(enc.ids.tolist())
    assert pieces[:2] == ["<bos>", "<start_of_turn>"]  # control texts are their single token
    assert pieces.count("<start_of_turn>") == 2 and pieces.count("<end_of_turn>") == 1
    content = [i for i, m in enumerate(enc.template_mask) if not m]
    # exactly the user's text is non-template, and its tokens spell it
    assert "".join(enc.text[s:e] for s, e in enc.offsets[content]) == (
        "What is the capital of France?")
    for i, piece in enumerate(pieces):
        if piece in ("<start_of_turn>", "<end_of_turn>"):
            s, e = enc.offsets[i]
            assert enc.text[s:e] == piece and enc.template_mask[i]
    assert enc.template_mask[0]  # <bos> is formatting too when a template is in use
    assert [(t.role, enc.text[t.start:t.end]) for t in enc.turns] == [
        ("user", "What is the capital of France?")]


def test_per_example_override_and_preformatted_prompts(lm) -> None:
    raw = lm.encode_prompt("Hi", chat_template="none")
    assert raw.text == "Hi" and not raw.template_mask.any()
    formatted = "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    enc = lm.encode_prompt(formatted)  # not wrapped twice
    assert enc.text == formatted
    assert lm.pieces(enc.ids.tolist()).count("<start_of_turn>") == 2
    content = [i for i, m in enumerate(enc.template_mask) if not m]
    assert "".join(enc.text[s:e] for s, e in enc.offsets[content]) == "Hi"
    with_bos = lm.encode_prompt("<bos>" + formatted)  # a written <bos> is not doubled
    assert with_bos.text == formatted and with_bos.ids.tolist() == enc.ids.tolist()
    chatml = lm.format_prompt("Hi", chat_template="qwen")
    assert chatml.text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    with pytest.raises(ValueError, match="not a template an example may choose"):
        lm.encode_prompt("Hi", chat_template="/tmp/evil.jinja")


def test_generation_stops_at_the_templates_end_of_turn(lm) -> None:
    from promptlit.models.keras_lm import KerasCausalLM

    prompt = "What is the capital of France?"
    _, free = lm.generate_ids([prompt])[0]
    assert len(free) >= 3
    # A template whose end-of-turn token is the model's third token stops right before it.
    eot = lm.pieces([int(free[2])])[0]
    stopper = dataclasses.replace(GEMMA, name="gemma-eot", stop_tokens=(eot,))
    stopping = KerasCausalLM(chat_lm.causal_lm(), handle="test://x", max_length=128,
                             max_new_tokens=5, chat_template=stopper)
    _, cut = stopping.generate_ids([prompt])[0]
    assert cut.tolist() == free[: int(np.flatnonzero(free == free[2])[0])].tolist()
    # An end-of-turn text that is not one token cuts the text instead.
    text = lm.decode(free)
    stop_text = text[len(lm.decode(free[:1])):][:2]
    assert stop_text
    texter = dataclasses.replace(GEMMA, name="gemma-text", stop_tokens=(stop_text,))
    by_text = KerasCausalLM(chat_lm.causal_lm(), handle="test://y", max_length=128,
                            max_new_tokens=5, chat_template=texter)
    response = by_text.generate([prompt])[0]
    assert stop_text not in response and text.startswith(response)


def test_multi_turn_salience_turns_are_segments_and_template_is_set_apart(lm) -> None:
    from promptlit.salience.aggregation import TemplateSegment

    sal = lm.salience(CONVERSATION, " Paris is")
    assert sal.text.startswith("<start_of_turn>user\nBe brief.\n\nHello there<end_of_turn>")
    assert sal.text.endswith("<start_of_turn>model\n Paris is")
    assert sal.metadata["chat_template"] == "gemma"
    assert [sal.text[s:e] for _, s, e in sal.metadata["turns"]] == [
        m["content"] for m in CONVERSATION]
    assert sal.template_mask.shape == (sal.num_tokens,)
    assert not sal.template_mask[sal.num_prompt_tokens:].any()
    span = sal.for_span(0, sal.num_response_tokens)
    turns = span.aggregate("turns")
    content = [s for s in turns if not isinstance(s, TemplateSegment)]
    assert [s.text for s in content] == [m["content"] for m in CONVERSATION]
    assert all(s.text == sal.text[s.start:s.end] for s in content)
    templates = [s for s in turns if isinstance(s, TemplateSegment)]
    assert templates[0].text == "<start_of_turn>user\n"
    assert "<end_of_turn>\n<start_of_turn>model\n" in [s.text for s in templates]
    # every token counted exactly once, template included
    p = sal.num_prompt_tokens
    for g in ("tokens", "words", "sentences", "turns"):
        total = sum(s.score for s in span.aggregate(g))
        assert total == pytest.approx(float(np.sum(span.scores[:p])), rel=1e-9, abs=1e-9)
    # template salience is computed and available, but not ranked by default
    assert np.all(span.scores[:p][sal.template_mask[:p]] >= 0)
    assert float(np.sum(span.scores[:p][sal.template_mask[:p]])) > 0
    assert all(not isinstance(s, TemplateSegment) for s in span.top(50, "words"))
    assert any(isinstance(s, TemplateSegment)
               for s in span.top(50, "words", include_template=True))
    shown = span.display_scores("words")
    assert all(c == 0.0 for s, c in shown if isinstance(s, TemplateSegment))
    assert max(c for s, c in shown if not isinstance(s, TemplateSegment)) == 1.0


def test_salience_matches_generation_tokens(lm) -> None:
    """The ids explained are the ids generated from: one encoding for both."""
    p_ids, r_ids = lm.generate_ids([CONVERSATION])[0]
    response = lm.decode(r_ids)
    ids, offsets, _, p = lm.encode_pair(CONVERSATION, response)
    assert ids[:p].tolist() == p_ids.tolist()
    assert offsets.shape == (len(ids), 2)


# ----------------------------------------------------------------------------- HF checkpoint


@pytest.fixture(scope="module")
def hf_checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-gemma-it-hf")
    return chat_lm.export_hf_checkpoint(directory, chat_lm.HF_GEMMA_TEMPLATE)


def test_hf_checkpoint_directory_ships_its_template(hf_checkpoint) -> None:
    from promptlit.models.keras_lm import KerasCausalLM

    lm = KerasCausalLM.from_preset(str(hf_checkpoint), chat_template="auto", max_length=128,
                                   max_new_tokens=3)
    assert isinstance(lm.chat_template, chat.JinjaTemplate)
    assert lm.chat_template.origin == str(hf_checkpoint / "tokenizer_config.json")
    assert "(checkpoint)" in lm.description()
    assert lm.cache_config()["chat_template"].startswith("jinja:")
    enc = lm.encode_prompt(CONVERSATION)
    # the checkpoint's {{ bos_token }} is not doubled: the preprocessor adds <bos> itself
    assert enc.text == GEMMA.render(CONVERSATION).text
    assert lm.pieces(enc.ids.tolist()).count("<bos>") == 1
    assert [enc.text[t.start:t.end] for t in enc.turns] == [m["content"] for m in CONVERSATION]
    assert lm.tokenizer.token_to_id("<end_of_turn>") in lm._stop_ids
    assert len(lm.generate([CONVERSATION])) == 1
    none = KerasCausalLM.from_preset(str(hf_checkpoint), chat_template="none", max_length=128)
    assert none.chat_template is None


# ----------------------------------------------------------------------------- data and CLI


def test_dataset_rows_may_carry_messages_and_a_template_choice(tmp_path) -> None:
    from promptlit import data
    from promptlit.lib.validation import DataError

    path = tmp_path / "chat.jsonl"
    rows = [{"prompt": "Plain prompt"},
            {"messages": CONVERSATION, "target": " Because."},
            {"prompt": "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
             "chat_template": "none"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ds = data.load_path(path)
    assert [ex["prompt"] for ex in ds.examples][1] == chat.transcript(CONVERSATION)
    assert ds.examples[1]["messages"] == CONVERSATION
    assert ds.examples[2]["chat_template"] == "none"
    everywhere = data.load_path(path, chat_template="gemma")
    assert [ex["chat_template"] for ex in everywhere.examples] == ["gemma", "gemma", "none"]
    with pytest.raises(ValueError, match="not a template an example may choose"):
        data.load_path(path, chat_template="../x.jinja")

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "ok"}]}) + "\n"
                   + json.dumps({"messages": [{"role": "bot", "content": "x"}]}) + "\n"
                   + json.dumps({"prompt": "x", "chat_template": "~/t.jinja"}) + "\n")
    with pytest.raises(DataError) as info:
        data.load_path(bad)
    text = str(info.value)
    assert f"{bad}:2: field 'messages': messages[0]: role 'bot' is not one of" in text
    assert f"{bad}:3: field 'chat_template': chat_template: '~/t.jinja' is not a template" in text
    kept = data.load_path(bad, on_error="skip")
    assert len(kept) == 1 and kept.examples[0]["prompt"] == "User: ok\n\nAssistant:"


def test_cli_chat_template_flag(tmp_path) -> None:
    from promptlit import cli

    parser = cli.make_parser()
    args = parser.parse_args(["serve", "--chat-template", "gemma"])
    assert cli.generation_options(args)["chat_template"] == "gemma"
    template = tmp_path / "t.jinja"
    template.write_text("{{ messages[0].content }}")
    args = parser.parse_args(["serve", "--chat-template", str(template)])
    assert cli.generation_options(args)["chat_template"] == str(template)
    assert "chat_template" not in cli.generation_options(parser.parse_args(["serve"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--chat-template", "vicuna"])


def test_the_template_is_part_of_the_model_cache_key(lm) -> None:
    from promptlit.api.model import model_config
    from promptlit.lib import caching
    from promptlit.models.keras_lm import KerasCausalLM

    keys = {caching.config_hash(model_config(KerasCausalLM(
        chat_lm.causal_lm(), handle=chat_lm.HANDLE, max_length=128, max_new_tokens=5,
        batch_size=2, chat_template=t))) for t in ("auto", "gemma", "qwen", "none")}
    assert len(keys) == 3  # auto resolves to gemma here; qwen and none differ
    assert caching.config_hash(model_config(lm)) in keys


def test_predict_reads_messages_and_the_examples_template(lm) -> None:
    out = list(lm.predict([{"prompt": chat.transcript(CONVERSATION), "messages": CONVERSATION},
                           {"prompt": "Hi", "chat_template": "none"}]))
    assert len(out) == 2 and all(isinstance(o["response"], str) for o in out)
    assert out[0]["response"] == lm.generate([CONVERSATION])[0]
    assert out[1]["response"] == lm.generate(["Hi"], chat_templates=["none"])[0]
    with pytest.raises(ValueError, match=r"example field 'messages'\[0\]: role 'bot'"):
        list(lm.predict([{"prompt": "x", "messages": [{"role": "bot", "content": "x"}]}]))


def test_a_prompt_edited_away_from_the_transcript_is_what_the_model_reads() -> None:
    ex = {"prompt": chat.transcript(CONVERSATION), "messages": CONVERSATION}
    assert chat.example_prompt(ex) == CONVERSATION
    assert chat.example_prompt({**ex, "prompt": "Edited question"}) == "Edited question"
    assert chat.example_prompt({"messages": CONVERSATION}) == CONVERSATION
    with pytest.raises(KeyError, match="needs a 'prompt' \\(or 'messages'\\) field"):
        chat.example_prompt({"target": "x"})
