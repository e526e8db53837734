"""The shipped tiny LM preset (``presets/tiny_lm``) loads offline and behaves like a real LM.

Checks real behaviour, not just loading: greedy completions of sample prompts follow the prompt's
format, the model copies earlier tokens (induction, which sequence salience should attribute to the
earlier occurrence), the tokenizer round-trips arbitrary text, and the preset stays small.
Rebuild the preset with ``presets/build_tiny_lm.py``.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
PRESET = Path(os.environ.get("PROMPTLIT_TINY_LM_PRESET", REPO / "presets" / "tiny_lm"))
SAMPLES = REPO / "datasets" / "sample_prompts.jsonl"
GEN_LENGTH = 384  # one max_length for every generate call => one compiled generate function

pytestmark = pytest.mark.skipif(not (PRESET / "config.json").exists(),
                                reason=f"no preset at {PRESET}; run presets/build_tiny_lm.py")


@pytest.fixture(scope="session")
def causal_lm():
    import keras_hub

    lm = keras_hub.models.CausalLM.from_preset(str(PRESET))
    lm.compile(sampler="greedy")
    return lm


@pytest.fixture(scope="session")
def samples() -> dict[str, list[dict]]:
    by_source: dict[str, list[dict]] = {}
    for line in SAMPLES.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            by_source.setdefault(row["source"], []).append(row)
    return by_source


@pytest.fixture(scope="session")
def completions(causal_lm, samples) -> dict[str, list[str]]:
    """Greedy completions (prompt stripped) of every menu, arithmetic and headline sample prompt,
    generated in one batched call; keyed by source, in file order."""
    keys = ["fewshot-mistake", "fewshot-fixed", "arithmetic", "headline"]
    rows = [(k, r["prompt"]) for k in keys for r in samples[k]]
    outs = causal_lm.generate([p for _, p in rows], max_length=GEN_LENGTH)
    result: dict[str, list[str]] = {k: [] for k in keys}
    for (k, p), o in zip(rows, outs, strict=True):
        result[k].append(o[len(p):])
    return result


def test_preset_files_present_and_small():
    names = {p.name for p in PRESET.rglob("*") if p.is_file()}
    assert {"config.json", "model.weights.h5", "tokenizer.json", "metadata.json"} <= names
    total = sum(p.stat().st_size for p in PRESET.rglob("*") if p.is_file())
    assert total < 20e6, f"preset is {total / 1e6:.1f} MB; must stay under 20 MB"
    config = json.loads((PRESET / "config.json").read_text())
    assert config["class_name"] == "GemmaBackbone"
    assert config["config"]["dtype"]["config"]["name"] in ("float32", "bfloat16")


def test_backbone_is_tiny(causal_lm):
    assert 0.5e6 < causal_lm.backbone.count_params() < 5e6
    assert causal_lm.backbone.num_layers == 4


@pytest.mark.parametrize("text", [
    "Taste-likes: cheese\nTaste-dislikes: onions\n\nSecond paragraph.",
    "Unicode: café naïve 漢字 🙂 — ok\ttab  two spaces\n\n\nend",
    " leading space and trailing newline\n",
])
def test_tokenizer_round_trips(causal_lm, text):
    tok = causal_lm.preprocessor.tokenizer
    ids = np.asarray(tok(text))
    assert ids.ndim == 1 and ids.size > 0
    assert tok.token_to_id("<pad>") == 0 and tok.token_to_id("<bos>") == 1
    assert tok.token_to_id("<eos>") == 2 and tok.token_to_id("<unk>") == 3
    assert 3 not in ids.tolist(), "byte fallback should make <unk> unnecessary"
    assert tok.detokenize(ids) == text


def test_menu_completion_follows_format(completions, samples):
    for key in ("fewshot-mistake", "fewshot-fixed"):
        for out, row in zip(completions[key], samples[key], strict=True):
            analysis = row["target"].split(",")[0]  # e.g. " It contains onions"
            assert out.startswith(analysis + ", which you"), (key, out)
            assert "\nRecommendation: " in out, (key, out)


def _recommendation(completion: str) -> str:
    return completion.split("Recommendation:")[1].split("\n")[0].strip()


def test_fewshot_mistake_is_copied(completions, samples):
    """The demo story: the model follows its few-shot examples, mistakes included — each mistaken
    example recommends a dish with a disliked ingredient, and so does the model (3 of 3)."""
    got = [_recommendation(o) for o in completions["fewshot-mistake"]]
    want = [_recommendation(r["target"]) for r in samples["fewshot-mistake"]]
    assert got == want == ["You have to try it.", "Order it.", "A great choice for you."], got


def test_fewshot_fixed_says_avoid(completions):
    """With the mistaken example fixed to 'Avoid.', the model avoids every query's dish: the
    recommendation follows the corrected example (3 of 3)."""
    got = [_recommendation(o) for o in completions["fewshot-fixed"]]
    assert got == ["Avoid.", "Avoid.", "Avoid."], got
    assert completions["fewshot-fixed"][1].startswith(" It contains shrimp, which you dislike.")


def test_arithmetic_completion_has_steps_and_correct_answer(completions, samples):
    for out, row in zip(completions["arithmetic"], samples["arithmetic"], strict=True):
        assert out.lstrip()[0].isdigit(), out
        assert "\nStep 2: " in out and "\nAnswer: " in out, out
        assert out.split("Answer:")[1].split()[0] == row["target"].split("Answer:")[1].split()[0], out


def test_headline_is_one_short_line(completions):
    for out in completions["headline"]:
        line = out.split("\n")[0].strip()
        assert 2 <= len(line.split()) <= 10, out
        assert line[0].isupper() and not line.endswith("."), line


def test_headline_copies_the_place_name(completions, samples):
    """Induction in a real format: the headline names the query paragraph's town, copied from the
    prompt (measured: 3 of 4; the second writes "Port Cancel" for "Elm Valley")."""
    places = ["Lakeport", "Elm Valley", "Greenfield", "Stonebridge"]
    assert [p in r["target"] for p, r in zip(places, samples["headline"], strict=True)] == [True] * 4
    assert "Lakeport" in completions["headline"][0].split("\n")[0], completions["headline"]
    copied = [p in out.split("\n")[0] for p, out in zip(places, completions["headline"], strict=True)]
    assert sum(copied) >= 3, (places, completions["headline"])


def _single_token_words(tok, n: int) -> list[tuple[str, int]]:
    """Whole lower-case words that are one vocabulary piece when preceded by a space."""
    out = []
    for i in range(4, tok.vocabulary_size()):
        piece = tok.id_to_token(i)
        word = piece[1:]
        if piece.startswith("\u2581") and word.isalpha() and word.islower() and len(word) >= 4:
            out.append((word, i))
    assert len(out) >= n, len(out)
    return out


def test_copy_pattern_accuracy(causal_lm):
    """``A B C … A B`` -> ``C``: next-token argmax after a partial repeat of a random word list
    (words drawn from the whole vocabulary, so this is induction, not memorised phrases)."""
    tok = causal_lm.preprocessor.tokenizer
    words = _single_token_words(tok, 200)
    rng = random.Random(0)
    rows, answers = [], []
    for _ in range(20):
        seq = rng.sample(words, 8)
        k = rng.randint(2, 6)
        text = ("Repeat the list.\nList: " + " ".join(w for w, _ in seq)
                + "\nAgain: " + " ".join(w for w, _ in seq[:k]))
        rows.append([1, *np.asarray(tok(text)).tolist()])
        answers.append(seq[k][1])
    n = max(map(len, rows))
    ids = np.zeros((len(rows), n), "int32")
    mask = np.zeros((len(rows), n), bool)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = row
        mask[r, : len(row)] = True
    logits = np.asarray(causal_lm.score(ids, mask, scoring_mode="logits"))
    last = mask.sum(1) - 1
    preds = logits[np.arange(len(rows)), last].argmax(-1)
    accuracy = float((preds == np.asarray(answers)).mean())
    assert accuracy >= 0.9, accuracy
