"""KerasCausalLM on a tiny random-weight Gemma (SentencePiece trained here) and a tiny GPT-2 tokenizer.

Everything compiled is session-scoped: one model, one tokenizer, short sequences.
"""

from __future__ import annotations

import io
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np
import pytest

from promptlit.models.keras_lm import KerasCausalLM, align_offsets, piece_bytes
from promptlit.models.presets import DEFAULT_PRESET

CORPUS = [
    "The cat sat on the mat.",
    "Hello  world, this is a test.\nA second line follows here.",
    "Repeat the list.\nList: apple river stone cloud\nAgain: apple river stone cloud",
    "Q: What is 2 + 3?\nA: 5",
    "numbers 12345 and words; café naïve",
    "the quick brown fox jumps over the lazy dog",
] * 20

TRICKY = "Hello  world\n\nnaïve café 😀 日本 x\tend  "


def _train_spm(**overrides: object) -> bytes:
    import sentencepiece as spm

    model = io.BytesIO()
    kwargs = dict(
        sentence_iterator=iter(CORPUS), model_writer=model, vocab_size=400, hard_vocab_limit=False, model_type="unigram",
        character_coverage=1.0, byte_fallback=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, add_dummy_prefix=False, allow_whitespace_only_pieces=True,
        user_defined_symbols=["\n"], pad_id=0, bos_id=1, eos_id=2, unk_id=3, pad_piece="<pad>",
        bos_piece="<bos>", eos_piece="<eos>", unk_piece="<unk>", num_threads=1, minloglevel=2,
    )
    kwargs.update(overrides)
    spm.SentencePieceTrainer.train(**kwargs)
    return model.getvalue()


@pytest.fixture(scope="session")
def spm_proto() -> bytes:
    return _train_spm()


@pytest.fixture(scope="session")
def lm(spm_proto: bytes) -> KerasCausalLM:
    import keras
    import keras_hub

    keras.utils.set_random_seed(0)
    tokenizer = keras_hub.models.GemmaTokenizer(proto=spm_proto)
    pre = keras_hub.models.GemmaCausalLMPreprocessor(tokenizer, sequence_length=64)
    backbone = keras_hub.models.GemmaBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=2, num_query_heads=2,
        num_key_value_heads=1, hidden_dim=16, intermediate_dim=32, head_dim=8, dtype="float32")
    causal_lm = keras_hub.models.GemmaCausalLM(backbone=backbone, preprocessor=pre)
    return KerasCausalLM(causal_lm, handle="test://tiny-random-gemma", max_length=64,
                         max_new_tokens=6, batch_size=2)


# ----------------------------------------------------------------------------- offsets


def _check_offsets(text: str, offsets: np.ndarray, tokens: list[str]) -> None:
    assert offsets.shape == (len(tokens), 2)
    assert np.all(offsets[:, 0] <= offsets[:, 1])
    assert np.all(offsets[1:, 0] >= offsets[:-1, 1]), "offsets must not overlap"
    for (s, e), tok in zip(offsets.tolist(), tokens, strict=True):
        if e > s:
            assert text[s:e].strip() == tok.strip(), (text[s:e], tok)


def test_piece_bytes_sentencepiece_and_gpt2() -> None:
    assert piece_bytes("▁world", byte_level=False) == b" world"
    assert piece_bytes("<0x0A>", byte_level=False) == b"\n"
    assert piece_bytes("<0xC3>", byte_level=False) == b"\xc3"
    assert piece_bytes("Ġworld", byte_level=True) == b" world"
    assert piece_bytes("Ċ", byte_level=True) == b"\n"


def test_align_offsets_tolerates_dummy_prefix_and_collapsed_whitespace() -> None:
    # Dummy prefix "▁" at the start, a collapsed double space, a normalised newline.
    text = "a  b\nc"
    offs = align_offsets(text, [None, b" a", b" b", b" c"])
    assert offs.tolist() == [[0, 0], [0, 1], [1, 4], [5, 6]]  # " b" owns "  b"
    # An <unk> piece takes the text up to the next matched piece.
    offs = align_offsets("x ☃ y", [b"x", b" <unk>", b" y"])
    assert offs.tolist() == [[0, 1], [1, 4], [4, 5]]


def test_align_offsets_splits_multibyte_characters_onto_the_last_byte() -> None:
    offs = align_offsets("é!", [b"\xc3", b"\xa9", b"!"])
    assert offs.tolist() == [[0, 0], [0, 1], [1, 2]]


def test_sentencepiece_offsets_reconstruct_the_text(lm: KerasCausalLM) -> None:
    ids, offsets, tokens = lm.tokenize_with_offsets(TRICKY)
    assert ids.dtype.kind == "i" and len(ids) == len(tokens)
    _check_offsets(TRICKY, offsets, tokens)
    # Identity normalisation: the spans tile the text exactly, and equal the display tokens.
    assert "".join(TRICKY[s:e] for s, e in offsets.tolist()) == TRICKY
    assert [TRICKY[s:e] for s, e in offsets.tolist()] == tokens
    # With the start token: an empty span at 0, the rest unchanged.
    ids2, offsets2, tokens2 = lm.tokenize_with_offsets(TRICKY, add_start_token=True)
    assert ids2[0] == lm.tokenizer.start_token_id and offsets2[0].tolist() == [0, 0]
    assert tokens2[0] == "<bos>"
    np.testing.assert_array_equal(offsets2[1:], offsets)


def test_offsets_with_a_normalising_sentencepiece() -> None:
    """nmt_nfkc + dummy prefix + whitespace collapsing: offsets still land on the right text."""
    import keras_hub

    proto = _train_spm(normalization_rule_name="nmt_nfkc", remove_extra_whitespaces=True,
                       add_dummy_prefix=True, user_defined_symbols=[])
    tok = keras_hub.models.GemmaTokenizer(proto=proto)
    text = "Hello  world\nsecond   line café"
    ids = np.asarray(tok.tokenize(text)).tolist()
    pieces = [tok.id_to_token(i) for i in ids]
    offsets = align_offsets(text, [piece_bytes(p, False) for p in pieces])
    cleaned = [p.replace("▁", " ") for p in pieces]
    _check_offsets(text, offsets, cleaned)
    covered = "".join(text[s:e] for s, e in offsets.tolist())
    assert covered.replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")


def test_gpt2_byte_level_offsets() -> None:
    import keras_hub

    from promptlit.salience.aggregation import clean_tokens

    dec = {v: k for k, v in _byte_table().items()}
    chars = [dec[b] for b in range(256)]
    merges = ["Ġ w", "o r", "Ġw or", "l d", "Ġwor ld", "H e", "He l", "Hel l", "Hell o"]
    vocab = {"<|endoftext|>": 0}
    for piece in chars + [m.replace(" ", "") for m in merges]:
        vocab.setdefault(piece, len(vocab))
    tok = keras_hub.models.GPT2Tokenizer(vocabulary=vocab, merges=merges)
    text = "Hello world\n\n  naïve 😀 x"
    ids = np.asarray(tok.tokenize(text)).tolist()
    pieces = [tok.id_to_token(i) for i in ids]
    assert "Ġworld" in pieces and "Hello" in pieces
    offsets = align_offsets(text, [piece_bytes(p, True) for p in pieces])
    tokens = clean_tokens(pieces, byte_level=True)
    _check_offsets(text, offsets, tokens)
    assert "".join(text[s:e] for s, e in offsets.tolist()) == text


def _byte_table() -> dict[str, int]:
    from promptlit.models.keras_lm import _gpt2_byte_decoder

    return _gpt2_byte_decoder()


def test_encode_pair_keeps_the_boundary_exact(lm: KerasCausalLM) -> None:
    prompt, response = "Q: What is 2 + 3?\nA:", " 5 apples"
    ids, offsets, tokens, p = lm.encode_pair(prompt, response)
    text = prompt + response
    _check_offsets(text, offsets, tokens)
    assert ids[0] == lm.tokenizer.start_token_id
    assert offsets[p - 1, 1] <= len(prompt) <= offsets[p, 0]
    assert "".join(text[s:e] for s, e in offsets[p:].tolist()) == response


# ----------------------------------------------------------------------------- generate / predict


def test_generate_returns_the_response_only(lm: KerasCausalLM) -> None:
    prompts = ["zebra quokka narwhal", "Q: 2 + 3?\nA:"]
    out = lm.generate(prompts)
    assert len(out) == 2 and all(isinstance(r, str) for r in out)
    for prompt, (p_ids, r_ids), resp in zip(prompts, lm.generate_ids(prompts), out, strict=True):
        assert prompt not in resp
        assert len(r_ids) <= lm.max_new_tokens
        assert lm.tokenizer.end_token_id not in r_ids.tolist()
        assert resp == lm.decode(r_ids.tolist())
        assert p_ids.tolist() == lm.tokenize_with_offsets(prompt, add_start_token=True)[0].tolist()
    with pytest.raises(TypeError, match="list of prompts"):
        lm.generate("one prompt")  # type: ignore[arg-type]


def _manual_log_probs(lm: KerasCausalLM, ids: np.ndarray) -> np.ndarray:
    """log_softmax of the model's own logits (Keras call), next-token convention."""
    logits = np.asarray(lm.causal_lm({"token_ids": ids[None].astype("int32"),
                                      "padding_mask": np.ones((1, len(ids)), bool)}))[0]
    logits = logits.astype(np.float64)
    lsm = logits - logits.max(-1, keepdims=True)
    lsm = lsm - np.log(np.exp(lsm).sum(-1, keepdims=True))
    return lsm[np.arange(len(ids) - 1), ids[1:]]


def test_predict_logprobs_embeddings_and_target(lm: KerasCausalLM) -> None:
    ex = {"prompt": "the quick brown", "target": " fox jumps"}
    (out,) = list(lm.predict([ex]))
    assert set(lm.output_spec()) >= set(out)
    p_ids, r_ids = lm.generate_ids([ex["prompt"]])[0]
    assert out["response"] == lm.decode(r_ids.tolist())
    assert len(out["response_tokens"]) == len(out["response_logprobs"]) == len(r_ids)
    lp = np.asarray(out["response_logprobs"])
    assert np.all(lp <= 0)
    manual = _manual_log_probs(lm, np.concatenate([p_ids, r_ids]))[len(p_ids) - 1:]
    np.testing.assert_allclose(lp, manual, rtol=1e-4, atol=1e-4)
    assert out["prompt_embedding"].shape == (16,) and out["response_embedding"].shape == (16,)
    assert np.isfinite(out["prompt_embedding"]).all()
    t_ids = lm.tokenize_with_offsets(ex["target"])[0]
    assert "".join(out["target_tokens"]) == ex["target"]
    manual_t = _manual_log_probs(lm, np.concatenate([p_ids, t_ids]))[len(p_ids) - 1:]
    np.testing.assert_allclose(out["target_logprobs"], manual_t, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(lm.log_probs(ex["prompt"], ex["target"]), manual_t, rtol=1e-4,
                               atol=1e-4)


def test_specs_follow_the_contract(lm: KerasCausalLM) -> None:
    from promptlit.api import types

    assert isinstance(lm.input_spec()["prompt"], types.TextSegment)
    assert lm.input_spec()["target"].required is False
    spec = lm.output_spec()
    assert isinstance(spec["response"], types.GeneratedText) and spec["response"].parent == "target"
    assert spec["response_logprobs"].align == "response_tokens"
    assert isinstance(spec["prompt_embedding"], types.Embeddings)
    assert lm.cache_config()["sampler"] == "greedy"
    with pytest.raises(ValueError, match="sampler must be one of"):
        KerasCausalLM(lm.causal_lm, sampler="beam")


# ----------------------------------------------------------------------------- salience


def test_salience_matrix_rows_match_single_token_span_salience(lm: KerasCausalLM) -> None:
    from promptlit.salience import kernels
    from promptlit.salience.result import SequenceSalience

    prompt, response = "apple river stone", " apple river"
    sal = lm.salience(prompt, response, methods=("grad_l2", "grad_dot_input"))
    assert isinstance(sal, SequenceSalience)
    ids, offsets, tokens, p = lm.encode_pair(prompt, response)
    n, t = len(ids), len(ids) - p
    assert sal.text == prompt + response and sal.prompt_length == len(prompt)
    assert sal.num_prompt_tokens == p and list(sal.tokens) == tokens
    np.testing.assert_array_equal(sal.offsets, offsets)
    for m in ("grad_l2", "grad_dot_input"):
        assert sal.matrices[m].shape == (t, n)
    assert sal.signed == {"grad_l2": False, "grad_dot_input": True}
    for row in range(t):
        mask = np.zeros(n, bool)
        mask[p + row] = True
        span = kernels.span_salience(lm.forward, ids.astype(np.int32), mask,
                                     methods=("grad_l2", "grad_dot_input"))
        for m in ("grad_l2", "grad_dot_input"):
            np.testing.assert_allclose(sal.matrices[m][row], span[m], rtol=1e-4, atol=1e-6)
    assert np.all(sal.matrices["grad_l2"] >= 0) and sal.matrices["grad_l2"].max() > 0


def test_salience_ig_for_a_span_is_stored_in_span_scores(lm: KerasCausalLM) -> None:
    sal = lm.salience("apple river stone", " apple river", methods=("integrated_gradients",),
                      ig_steps=4, span=(0, 2))
    assert sal.matrices == {}
    scores = sal.span_scores[("integrated_gradients", 0, 2)]
    assert scores.shape == (sal.num_tokens,) and np.isfinite(scores).all()
    assert not scores.flags.writeable
    assert sal.for_span(0, 2, "integrated_gradients").scores.shape == (sal.num_tokens,)
    # The settings that made the numbers travel with them.
    assert sal.settings_for("integrated_gradients") == {"ig_steps": 4, "ig_baseline": "zero"}
    assert sal.for_span(0, 2, "integrated_gradients").settings["ig_steps"] == 4
    tok = lm.salience("apple river stone", " apple river", methods=("integrated_gradients",),
                      ig_steps=4, span=(0, 2), ig_baseline=0)
    assert tok.settings_for("integrated_gradients") == {"ig_steps": 4, "ig_baseline": 0}
    assert np.abs(tok.span_scores[("integrated_gradients", 0, 2)] - scores).max() > 1e-4
    with pytest.raises(ValueError, match="span"):
        lm.salience("apple", " river", methods=("integrated_gradients",), span=(0, 50))
    with pytest.raises(ValueError, match="empty"):
        lm.salience("apple", "")
    with pytest.raises(ValueError, match="unknown method"):
        lm.salience("apple", " river", methods=("attention",))


def test_salience_reports_progress_and_stops_when_cancelled(lm: KerasCausalLM) -> None:
    """Issue 10: a 96-step IG runs as 3 compiled pieces of 32 steps, reporting after each; a
    callback that raises after the first piece stops it there."""
    from promptlit.lib.cancel import Cancelled

    prompt, response = "apple river stone", " apple river"
    seen: list[tuple[float, str]] = []
    sal = lm.salience(prompt, response, methods=("grad_l2", "integrated_gradients"),
                      ig_steps=96, span=(0, 2), progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(seen) == 4
    assert [m for _, m in seen][1:] == [f"integrated gradients: {k}/96 steps"
                                        for k in (32, 64, 96)]
    one_call = lm.salience(prompt, response, methods=("integrated_gradients",), ig_steps=96,
                           span=(0, 2), ig_steps_per_call=96)
    np.testing.assert_allclose(sal.span_scores[("integrated_gradients", 0, 2)],
                               one_call.span_scores[("integrated_gradients", 0, 2)],
                               rtol=1e-5, atol=1e-6)
    calls: list[float] = []

    def cancel(fraction: float, message: str) -> None:
        calls.append(fraction)
        if len(calls) > 1 or "steps" in message:
            raise Cancelled("the client went away")

    with pytest.raises(Cancelled):
        lm.salience(prompt, response, methods=("integrated_gradients",), ig_steps=100_000,
                    span=(0, 2), progress=cancel)
    assert len(calls) == 1 and 0 < calls[0] < 0.001  # one 32-step piece of 100,000


# ----------------------------------------------------------------------------- the shipped tiny LM


@pytest.fixture(scope="session")
def tiny_lm() -> KerasCausalLM:
    if not os.path.isfile(os.path.join(DEFAULT_PRESET, "config.json")):
        pytest.skip(f"{DEFAULT_PRESET} is not built yet (presets/build_tiny_lm.py)")
    return KerasCausalLM.from_preset(DEFAULT_PRESET, max_new_tokens=8)


def test_tiny_lm_copy_pattern_points_at_the_earlier_occurrence(tiny_lm: KerasCausalLM) -> None:
    """Induction: when the model copies a word from a list, Grad L2 peaks at its first mention."""
    prompt = "Repeat the list.\nList: apple river stone cloud\nAgain: apple river stone"
    response = " cloud"
    generated = tiny_lm.generate([prompt])[0]
    assert generated.startswith(response), f"the tiny LM should copy the list, wrote {generated!r}"
    sal = tiny_lm.salience(prompt, response, methods=("grad_l2",))
    row = sal.matrices["grad_l2"][0]  # first response token (the start of " cloud")
    first = prompt.index("cloud")
    p = sal.num_prompt_tokens
    # Most salient prompt token, ignoring <bos> (an attention sink with a large gradient).
    candidates = np.arange(1, p)
    best = candidates[np.argmax(row[1:p])]
    s, e = sal.offsets[best]
    assert s <= first < e or first <= s < first + len("cloud"), (
        f"most salient token {sal.tokens[best]!r} at {s}:{e}, expected the earlier 'cloud' at "
        f"{first}")


def test_tiny_lm_analysis_is_explained_by_the_query_lines_it_looks_up(tiny_lm) -> None:
    """The menu lookup: "…which you dislike." is explained by the query's own dislikes line and
    dish line (not by the few-shot examples), the mechanism stage 5 of build_tiny_lm taught."""
    import json

    from promptlit.models.presets import REPO_ROOT

    row = json.loads((REPO_ROOT / "datasets" / "sample_prompts.jsonl").read_text().splitlines()[0])
    sal = tiny_lm.salience(row["prompt"], " It contains onions, which you dislike.",
                           methods=("grad_l2",))
    top = [seg.text for seg in sal.for_span(0, sal.matrix.shape[0], "grad_l2").top(2, "lines")]
    assert sorted(top) == ["Suggestion: Soup with onions", "Taste-dislikes: onions"], top


FEWSHOT_PROMPT = ("Taste-likes: cheese\nTaste-dislikes: onions\nSuggestion: Soup with onions\n"
                  "Analysis: It contains onions, which you dislike.\nRecommendation: Avoid.\n\n"
                  "Taste-likes: lemon\nTaste-dislikes: pork\nSuggestion: Salad with pork\n"
                  "Analysis:")


def test_tiny_preset_ships_generation_defaults_and_stops_at_a_blank_line(tiny_lm) -> None:
    """`presets/tiny_lm/promptlit_generation.json` makes responses end at the first blank line,
    as a few-shot block does; without the stop sequence the model writes the next block too."""
    assert tiny_lm.stop_sequences == ("\n\n",)
    assert tiny_lm.cache_config()["stop_sequences"] == ["\n\n"]
    assert "stops at ['\\n\\n']" in tiny_lm.description()
    unstopped = KerasCausalLM(tiny_lm.causal_lm, max_new_tokens=48)
    long_response = unstopped.generate([FEWSHOT_PROMPT])[0]
    cut = long_response.index("\n\n")
    stopped = KerasCausalLM(tiny_lm.causal_lm, max_new_tokens=48, stop_sequences=["\n\n"])
    response = stopped.generate([FEWSHOT_PROMPT])[0]
    assert response == long_response[:cut] == " It contains pork, which you dislike.\nRecommendation: Avoid."
    # A stop sequence starting inside a token drops that whole token (responses stay token
    # prefixes, so their salience rows line up with the text).
    mid = KerasCausalLM(tiny_lm.causal_lm, max_new_tokens=48, stop_sequences=["ork,", "never"])
    assert mid.generate([FEWSHOT_PROMPT])[0] == " It contains"


def test_generation_config_file_errors_name_the_file(tmp_path) -> None:
    from promptlit.models.keras_lm import read_generation_config

    assert read_generation_config(tmp_path) == {}
    cfg = tmp_path / "promptlit_generation.json"
    cfg.write_text('{\n  "max_new_tokens": 8,\n  "stop_sequences": ["\\n"],,\n}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"promptlit_generation.json:3: not valid JSON"):
        read_generation_config(tmp_path)
    cfg.write_text('{"max_new_tokens": 8, "stop": ["x"]}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"unknown generation setting\(s\) \['stop'\]; allowed"):
        read_generation_config(tmp_path)
    cfg.write_text('["x"]', encoding="utf-8")
    with pytest.raises(ValueError, match="must be a JSON object"):
        read_generation_config(tmp_path)
    cfg.write_text('{"max_new_tokens": 8, "stop_sequences": ["\\n\\n"]}', encoding="utf-8")
    assert read_generation_config(tmp_path) == {"max_new_tokens": 8, "stop_sequences": ["\n\n"]}


def test_from_preset_reads_generation_defaults_and_arguments_override(tmp_path) -> None:
    import shutil

    from promptlit.models.presets import ModelLoadError

    if not os.path.isfile(os.path.join(DEFAULT_PRESET, "config.json")):
        pytest.skip(f"{DEFAULT_PRESET} is not built yet")
    preset = tmp_path / "tiny"
    shutil.copytree(DEFAULT_PRESET, preset)
    (preset / "promptlit_generation.json").write_text(
        '{"max_new_tokens": 5, "sampler": "top_k", "stop_sequences": ["."]}', encoding="utf-8")
    lm = KerasCausalLM.from_preset(str(preset), sampler="greedy")
    assert (lm.max_new_tokens, lm.sampler, lm.stop_sequences) == (5, "greedy", (".",))
    (preset / "promptlit_generation.json").write_text('{"max_new_tokens": }', encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"promptlit_generation.json:1: not valid JSON"):
        KerasCausalLM.from_preset(str(preset))
    with pytest.raises(ValueError, match="stop_sequences must be non-empty strings"):
        KerasCausalLM.from_preset(DEFAULT_PRESET, stop_sequences=[""])


def test_workbench_predict_and_salience_with_cache(lm: KerasCausalLM, tmp_path) -> None:
    """The adapter behind the Workbench façade: cached predictions (SQLite) and salience."""
    from promptlit.api.dataset import Dataset
    from promptlit.workbench import Workbench

    data = Dataset([{"prompt": "the quick brown", "target": " fox"}])
    wb = Workbench(models={"tiny": lm}, datasets={"d": data}, cache_dir=tmp_path)
    (out,) = wb.predict("tiny", "d", data.examples)
    assert isinstance(out["response"], str) and len(out["response_logprobs"]) > 0
    sal = wb.salience("tiny", data.examples[0], target="target", methods=("grad_l2",))
    assert sal.response_text == " fox" and sal.matrices["grad_l2"].shape[0] >= 1
    ig = wb.salience("tiny", data.examples[0], target="target",
                     methods=("integrated_gradients",), ig_steps=2, span=(0, 1))
    assert ("integrated_gradients", 0, 1) in ig.span_scores
