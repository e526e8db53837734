"""KerasCausalLM: contrastive salience, top alternatives and attention on the shipped tiny model.

The few-shot story: the first sample prompt's mistaken example teaches "You have to try it" for a
disliked dish; why did the model write that rather than "Avoid"?
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np
import pytest

from promptlit.models.keras_lm import TOP_ALTERNATIVES, KerasCausalLM
from promptlit.models.presets import DEFAULT_PRESET

pytestmark = pytest.mark.slow
A_TEXT = " You have to try it"
B_TEXT = " Avoid"


@pytest.fixture(scope="module")
def tiny_lm() -> KerasCausalLM:
    if not os.path.isfile(os.path.join(DEFAULT_PRESET, "config.json")):
        pytest.skip(f"{DEFAULT_PRESET} is not built yet (presets/build_tiny_lm.py)")
    return KerasCausalLM.from_preset(DEFAULT_PRESET)


@pytest.fixture(scope="module")
def story(tiny_lm: KerasCausalLM) -> tuple[str, str, tuple[int, int]]:
    """(prompt, response, span of " You have to try it" in response tokens)."""
    with open("datasets/sample_prompts.jsonl", encoding="utf-8") as f:
        prompt = json.loads(f.readline())["prompt"]
    response = tiny_lm.generate([prompt])[0]
    assert A_TEXT in response, response
    ids, offsets, _, p = tiny_lm.encode_pair(prompt, response)
    a0 = len(prompt) + response.index(A_TEXT)
    a1 = a0 + len(A_TEXT)
    inside = [i - p for i in range(p, len(ids)) if a0 <= offsets[i, 0] and offsets[i, 1] <= a1
              and offsets[i, 1] > offsets[i, 0]]
    return prompt, response, (inside[0], inside[-1] + 1)


def test_contrast_is_the_difference_of_the_two_plain_attributions(
        tiny_lm: KerasCausalLM, story: tuple[str, str, tuple[int, int]]) -> None:
    """Grad.Input and IG of log p(A) - log p(B) = plain(A) - plain(B) on the shared prefix,
    through the library API (B's sequence explained on its own as a response)."""
    prompt, response, (a, b) = story
    methods = ("grad_l2", "grad_dot_input", "integrated_gradients")
    sal = tiny_lm.salience(prompt, response, methods=methods, ig_steps=8, span=(a, b),
                           contrast=B_TEXT)
    assert sal.matrices == {} and sorted(sal.span_scores) == sorted((m, a, b) for m in methods)
    c = sal.contrast
    assert c is not None and c["text"] == B_TEXT and (c["start"], c["stop"]) == (a, b)
    assert "".join(c["tokens"]) == B_TEXT
    assert c["log_prob"] > c["log_prob_contrast"]  # the model prefers what it wrote
    assert sal.settings_for("grad_l2") == {"contrast": B_TEXT}
    assert dict(sal.settings_for("integrated_gradients")) == {
        "contrast": B_TEXT, "ig_steps": 8, "ig_baseline": "zero"}
    assert sal.signed == {"grad_l2": False, "grad_dot_input": True, "integrated_gradients": True}

    plain_a = tiny_lm.salience(prompt, response, methods=methods, ig_steps=8, span=(a, b))
    prefix_chars = sal.offsets[sal.num_prompt_tokens + a, 0] - sal.prompt_length
    b_response = response[:prefix_chars] + B_TEXT
    plain_b = tiny_lm.salience(prompt, b_response, methods=methods, ig_steps=8,
                               span=(a, a + len(c["tokens"])))
    s = sal.num_prompt_tokens + a  # the shared prefix: prompt + response[:a]
    assert plain_b.tokens[:s] == sal.tokens[:s]
    for m in ("grad_dot_input", "integrated_gradients"):
        got = sal.for_span(a, b, m).scores
        want_a = plain_a.for_span(a, b, m).scores
        want_b = plain_b.for_span(a, a + len(c["tokens"]), m).scores
        scale = np.abs(want_a).max()
        np.testing.assert_allclose(got[:s], want_a[:s] - want_b[:s], atol=1e-4 * scale)
        np.testing.assert_allclose(got[s:], want_a[s:], atol=1e-4 * scale)
    lp_a = float(np.sum(tiny_lm.log_probs(prompt, response)[a:b]))
    assert c["log_prob"] == pytest.approx(lp_a, abs=1e-4)
    # signed scores: some prompt words push toward A, others toward B
    words = sal.for_span(a, b, "grad_dot_input").aggregate("words")
    assert min(w.score for w in words) < 0 < max(w.score for w in words)


def test_contrast_results_never_mix_with_other_settings(
        tiny_lm: KerasCausalLM, story: tuple[str, str, tuple[int, int]]) -> None:
    prompt, response, (a, b) = story
    sal = tiny_lm.salience(prompt, response, methods=("grad_dot_input",), span=(a, b),
                           contrast=B_TEXT)
    with pytest.raises(ValueError, match="contrast"):
        sal.with_span_scores("grad_dot_input", a, b, np.zeros(sal.num_tokens),
                             settings={"contrast": " Order it"})
    whole = tiny_lm.salience(prompt, response, methods=("grad_dot_input",), contrast=B_TEXT)
    t = whole.num_response_tokens
    assert list(whole.span_scores) == [("grad_dot_input", 0, t)]
    for bad in ("", 3):
        with pytest.raises(ValueError, match="contrast"):
            tiny_lm.salience(prompt, response, span=(a, b), contrast=bad)  # type: ignore[arg-type]


def test_top_tokens_are_the_model_distribution(
        tiny_lm: KerasCausalLM, story: tuple[str, str, tuple[int, int]]) -> None:
    """Greedy decoding: the first alternative is the token written, with probability
    exp(log p); alternatives are sorted, distinct, and sum to at most 1."""
    prompt, response, (a, _) = story
    out = list(tiny_lm.predict([{"prompt": prompt}]))[0]
    top = out["response_top_tokens"]
    assert len(top) == len(out["response_tokens"]) and all(len(r) == TOP_ALTERNATIVES
                                                           for r in top)
    for tok, lp, row in zip(out["response_tokens"], out["response_logprobs"], top, strict=True):
        assert row[0][0] == tok
        assert row[0][1] == pytest.approx(np.exp(lp), rel=1e-4)
        probs = [p for _, p in row]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-5
    assert tiny_lm.top_tokens(prompt, response, k=2) == [r[:2] for r in top]
    with pytest.raises(ValueError, match="between 1 and"):
        tiny_lm.top_tokens(prompt, response, k=TOP_ALTERNATIVES + 1)
    from promptlit.lib.validation import validate_value  # noqa: PLC0415

    assert validate_value(tiny_lm.output_spec()["response_top_tokens"], top) is None
    assert a >= 0


def test_attention_view_of_the_story(tiny_lm: KerasCausalLM,
                                     story: tuple[str, str, tuple[int, int]]) -> None:
    prompt, response, (a, b) = story
    maps = tiny_lm.attention(prompt, response)
    sal = maps.salience
    t, n = sal.num_response_tokens, sal.num_tokens
    assert maps.weights.shape == (4, 4, t, n)  # the tiny preset: 4 layers x 4 heads
    np.testing.assert_allclose(maps.weights.sum(-1), 1.0, atol=1e-5)
    # row t is written at position p + t - 1: it attends to nothing after it
    p = sal.num_prompt_tokens
    for row in (0, t - 1):
        assert np.abs(maps.weights[:, :, row, p + row:]).max() == 0.0
    np.testing.assert_allclose(sal.matrices["attention"], maps.weights.mean(axis=(0, 1)),
                               rtol=1e-5)
    span = maps.for_span(a, b)
    assert span.scores.sum() == pytest.approx(1.0, abs=1e-5)
    words = span.aggregate("words", side="all")  # every token but <bos> (no characters)
    assert sum(w.score for w in words) == pytest.approx(1.0 - span.scores[0], abs=1e-5)
    with pytest.raises(ValueError, match="empty"):
        tiny_lm.attention(prompt, "")
    # one span's rows only (bounded memory): the same numbers
    part = tiny_lm.attention(prompt, response, span=(a, b))
    assert part.weights.shape == (4, 4, b - a, n) and (part.start, part.stop) == (a, b)
    np.testing.assert_allclose(part.weights, maps.weights[:, :, a:b], atol=1e-6)
    np.testing.assert_allclose(part.for_span(a, b, layer=2).scores,
                               maps.for_span(a, b, layer=2).scores, atol=1e-6)
    with pytest.raises(IndexError, match="compute them for that span"):
        part.for_span(0, 1)
    with pytest.raises(ValueError, match="span"):
        tiny_lm.attention(prompt, response, span=(b, a))
