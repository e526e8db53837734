"""Tests for promptlit.workbench.Workbench with fake (counting) models: no real LM."""

import re

import numpy as np
import pytest

from promptlit.api import types
from promptlit.api.components import Interpreter
from promptlit.api.dataset import Dataset, IndexedDataset, load_jsonl, spec_path
from promptlit.api.model import BatchedModel, CachingModelWrapper
from promptlit.lib.utils import example_id
from promptlit.lib.validation import DataError
from promptlit.salience.result import SequenceSalience
from promptlit.workbench import LoadError, Workbench, register_model_loader


def fake_salience(prompt: str, response: str, methods=("grad_l2",)) -> SequenceSalience:
    """Word tokens; each response token's row scores prompt token j as j + 1."""
    text = prompt + response
    offsets = [m.span() for m in re.finditer(r"\S+\s*", text)]
    num_prompt = sum(1 for s, _ in offsets if s < len(prompt))
    n = len(offsets)
    row = np.array([j + 1.0 if j < num_prompt else 0.0 for j in range(n)])
    matrices = {m: np.tile(row, (n - num_prompt, 1)) for m in methods}
    return SequenceSalience(text=text, prompt_length=len(prompt),
                            tokens=[text[s:e] for s, e in offsets], offsets=np.array(offsets),
                            num_prompt_tokens=num_prompt, matrices=matrices)


class FakeLM(BatchedModel):
    """Answers 'ok <prompt length>'; counts predict and salience calls."""

    def __init__(self):
        self.predicted: list[str] = []
        self.salience_calls: list[tuple] = []

    def max_minibatch_size(self):
        return 2

    def input_spec(self):
        return {"prompt": types.TextSegment(), "target": types.TextSegment(required=False)}

    def output_spec(self):
        return {"response": types.GeneratedText(parent="target")}

    def predict_minibatch(self, inputs):
        self.predicted += [ex["prompt"] for ex in inputs]
        return [{"response": f" ok {len(ex['prompt'])}"} for ex in inputs]

    def salience(self, prompt, response, *, methods=("grad_l2",), ig_steps=16, **kw):
        self.salience_calls.append((prompt, response, tuple(methods), ig_steps))
        return fake_salience(prompt, response, methods)


class NumberModel(BatchedModel):
    """Reads a number; incompatible with prompt datasets."""

    def input_spec(self):
        return {"x": types.Scalar()}

    def output_spec(self):
        return {"y": types.Scalar()}

    def predict_minibatch(self, inputs):
        return [{"y": ex["x"] * 2} for ex in inputs]


class LengthInterp(Interpreter):
    """Per-example: prompt length plus response length; counts runs."""

    per_example = True

    def __init__(self):
        self.runs: list[int] = []

    def run(self, inputs, model, dataset, model_outputs=None, config=None):
        self.runs.append(len(inputs))
        scale = (config or {}).get("scale", 1)
        return [scale * (len(ex["prompt"]) + len(out["response"]))
                for ex, out in zip(inputs, model_outputs, strict=True)]


class NeedsNumbers(Interpreter):
    def is_compatible(self, model, dataset):
        return "x" in dataset.spec()


SPEC = {"prompt": types.TextSegment(), "target": types.TextSegment(required=False)}
PROMPTS = [{"prompt": f"Question {i}: what is {i}?", "target": f" {i}"} for i in range(5)]


@pytest.fixture
def wb(tmp_path):
    lm = FakeLM()
    bench = Workbench({"lm": lm, "num": NumberModel()},
                      {"prompts": Dataset(PROMPTS, spec=SPEC), "numbers": Dataset([{"x": 1.0}, {"x": 2.0}])},
                      interpreters={"length": LengthInterp(), "needs_numbers": NeedsNumbers()},
                      cache_dir=tmp_path / "cache")
    bench.fake = lm
    return bench


def test_construction_wraps_and_indexes(wb):
    assert isinstance(wb.models["lm"], CachingModelWrapper)
    assert isinstance(wb.datasets["prompts"], IndexedDataset)
    assert wb.datasets["prompts"].ids == [example_id(ex) for ex in PROMPTS]
    assert wb.problems == []


def test_predict_caches_and_reports_progress(wb, tmp_path):
    progress = []
    outs = wb.predict("lm", "prompts", PROMPTS, progress=lambda f, m: progress.append((f, m)))
    assert [o["response"] for o in outs] == [f" ok {len(ex['prompt'])}" for ex in PROMPTS]
    assert progress == [(0.4, "lm: predicted 2/5 examples"), (0.8, "lm: predicted 4/5 examples"),
                        (1.0, "lm: predicted 5/5 examples")]
    assert len(wb.fake.predicted) == 5
    wb.predict("lm", "prompts", wb.datasets["prompts"].indexed_examples)  # indexed inputs too
    assert len(wb.fake.predicted) == 5
    # A restarted workbench over the same cache dir does not call the model.
    lm2 = FakeLM()
    wb2 = Workbench({"lm": lm2}, {"prompts": Dataset(PROMPTS)}, cache_dir=tmp_path / "cache")
    assert wb2.predict("lm", "prompts", PROMPTS) == outs and lm2.predicted == []
    with pytest.raises(KeyError, match=r"unknown model 'nope'; loaded models: \['lm', 'num'\]"):
        wb.predict("nope", "prompts", PROMPTS)


def test_interpret_per_example_cache(wb):
    r1 = wb.interpret("length", "lm", "prompts", PROMPTS[:3])
    assert r1 == [len(ex["prompt"]) + len(f" ok {len(ex['prompt'])}") for ex in PROMPTS[:3]]
    r2 = wb.interpret("length", "lm", "prompts", PROMPTS)
    assert r2[:3] == r1 and wb.interpreters["length"].runs == [3, 2]  # only the 2 new ones
    r3 = wb.interpret("length", "lm", "prompts", PROMPTS[:1], config={"scale": 10})
    assert r3 == [10 * r1[0]] and wb.interpreters["length"].runs == [3, 2, 1]
    with pytest.raises(KeyError, match="unknown component"):
        wb.interpret("nope", "lm", "prompts", PROMPTS)


def test_salience_response_and_target_cached(wb, tmp_path):
    ex = PROMPTS[1]
    sal = wb.salience("lm", ex, methods=("grad_l2",))
    assert sal.text == ex["prompt"] + f" ok {len(ex['prompt'])}"
    assert wb.fake.salience_calls == [(ex["prompt"], f" ok {len(ex['prompt'])}", ("grad_l2",), 16)]
    again = wb.salience("lm", ex, methods=("grad_l2",))
    assert again is sal and len(wb.fake.salience_calls) == 1
    top = sal.for_span(0, sal.num_response_tokens, "grad_l2").aggregate("words")
    assert [(s.text, s.score) for s in top] == [
        ("Question", 2.0), ("1:", 4.0), ("what", 6.0), ("is", 8.0), ("1?", 10.0)]
    tgt = wb.salience("lm", ex, target="target", methods=("grad_l2",))
    assert tgt.text == ex["prompt"] + " 1"
    assert len(wb.fake.salience_calls) == 2
    # Persisted: a new workbench (restart) gets it from SQLite without calling the model.
    lm2 = FakeLM()
    wb2 = Workbench({"lm": lm2}, {"prompts": Dataset(PROMPTS)}, cache_dir=tmp_path / "cache")
    restored = wb2.salience("lm", ex, target="target", methods=("grad_l2",))
    assert lm2.salience_calls == [] and restored.text == tgt.text
    np.testing.assert_array_equal(restored.matrices["grad_l2"], tgt.matrices["grad_l2"])
    with pytest.raises(ValueError, match="non-empty 'target'"):
        wb.salience("lm", {"prompt": "x"}, target="target")
    with pytest.raises(TypeError, match="has no salience"):
        wb.salience("num", ex)


class SteppedLM(FakeLM):
    """Salience scaled by the IG steps and baseline (so every setting has its own numbers);
    reports progress in two pieces, and records every call with its settings."""

    def salience(self, prompt, response, *, methods=("grad_l2",), ig_steps=16, span=None,
                 ig_baseline="zero", progress=None):
        self.salience_calls.append((tuple(methods), ig_steps, span, ig_baseline))
        if progress is not None:
            progress(0.5, "piece 1 of 2")
            progress(1.0, "piece 2 of 2")
        sal = fake_salience(prompt, response, methods)
        scale = ig_steps * (1 if ig_baseline == "zero" else 10)
        return SequenceSalience(sal.text, sal.prompt_length, sal.tokens, sal.offsets,
                                sal.num_prompt_tokens,
                                matrices={m: x * scale for m, x in sal.matrices.items()})


def test_salience_cache_key_holds_every_setting():
    """Issue 10.3: a cached result is found only under the settings that made its numbers."""
    lm = SteppedLM()
    wb = Workbench({"lm": lm}, {"prompts": Dataset(PROMPTS, spec=SPEC)})
    ex, ig = PROMPTS[0], ("integrated_gradients",)
    four = wb.salience("lm", ex, target="target", methods=ig, ig_steps=4, span=(0, 1))
    assert wb.salience("lm", ex, target="target", methods=ig, ig_steps=4, span=[0, 1]) is four
    assert wb.salience("lm", ex, target="target", methods=ig, ig_steps=4, span=(0, 1),
                       ig_baseline="zero") is four  # the model's default, spelled out
    assert len(lm.salience_calls) == 1
    many = wb.salience("lm", ex, target="target", methods=ig, ig_steps=64, span=(0, 1))
    base = wb.salience("lm", ex, target="target", methods=ig, ig_steps=4, span=(0, 1),
                       ig_baseline=0)
    other_span = wb.salience("lm", ex, target="target", methods=ig, ig_steps=4, span=(0, 2))
    other_target = wb.salience("lm", ex, methods=ig, ig_steps=4, span=(0, 1))
    assert len(lm.salience_calls) == 5
    row = four.matrices["integrated_gradients"][0]
    np.testing.assert_array_equal(many.matrices["integrated_gradients"][0], 16 * row)
    np.testing.assert_array_equal(base.matrices["integrated_gradients"][0], 10 * row)
    assert other_span is not four and other_target.response_text != four.response_text
    # Asking for 4 steps again still gives the 4-step numbers, not the last ones computed.
    again = wb.salience("lm", ex, target="target", methods=ig, ig_steps=4, span=(0, 1))
    assert again is four and len(lm.salience_calls) == 5
    # IG steps do not change gradient matrices: one entry serves every steps setting.
    g = wb.salience("lm", ex, target="target", methods=("grad_l2",), ig_steps=4)
    assert wb.salience("lm", ex, target="target", methods=("grad_l2",), ig_steps=32) is g
    assert len(lm.salience_calls) == 6


def test_salience_progress_reaches_the_model_and_cancelling_caches_nothing():
    """Issue 10: the model reports between pieces of work; a callback that raises (a client
    that went away) stops it, the exception propagates, and nothing is cached."""
    from promptlit.lib.cancel import Cancelled

    lm = SteppedLM()
    wb = Workbench({"lm": lm}, {"prompts": Dataset(PROMPTS, spec=SPEC)})
    ex = PROMPTS[0]
    seen = []
    wb.salience("lm", ex, target="target", progress=lambda f, m: seen.append((f, m)))
    assert [f for f, _ in seen] == [0.0, 0.5, 1.0, 1.0]
    assert [m for _, m in seen][1:3] == ["piece 1 of 2", "piece 2 of 2"]

    def cancel(fraction, message):
        if fraction > 0:
            raise Cancelled("the client went away")

    with pytest.raises(Cancelled, match="went away"):
        wb.salience("lm", ex, target="target", methods=("integrated_gradients",), ig_steps=8,
                    progress=cancel)
    assert len(lm.salience_calls) == 2
    done = wb.salience("lm", ex, target="target", methods=("integrated_gradients",), ig_steps=8)
    assert len(lm.salience_calls) == 3 and done.methods == ["integrated_gradients"]
    # A model whose salience takes no progress argument still works with a callback.
    plain = FakeLM()
    wb2 = Workbench({"lm": plain}, {"prompts": Dataset(PROMPTS, spec=SPEC)})
    seen.clear()
    wb2.salience("lm", ex, target="target", progress=lambda f, m: seen.append((f, m)))
    assert [f for f, _ in seen] == [0.0, 1.0] and len(plain.salience_calls) == 1


def test_add_examples_validates_and_appends(wb):
    before = wb.datasets["prompts"]
    with pytest.raises(DataError) as info:
        wb.add_examples("prompts", [{"prompt": "fine"}, {"prompt": 3}, {"target": "x"}])
    assert [(p.index, p.field) for p in info.value.problems] == [(1, "prompt"), (2, "prompt")]
    assert "new example #1 for prompts" in str(info.value)
    assert wb.datasets["prompts"] is before and len(before) == 5  # nothing added
    added = wb.add_examples("prompts", [{"prompt": "new one"}, PROMPTS[0]])
    assert added == [{"prompt": "new one"}, PROMPTS[0]]
    ds = wb.datasets["prompts"]
    assert len(ds) == 6 and ds.examples[-1] == {"prompt": "new one"}  # duplicate not re-added
    assert ds.indexed_examples[-1]["meta"] == {"added": True}
    assert len(before) == 5


def test_save_examples_atomic_and_loadable(wb, tmp_path):
    path = wb.save_examples("prompts", tmp_path / "out" / "saved.jsonl", PROMPTS[:2])
    assert path.exists() and spec_path(path).exists()
    assert load_jsonl(path).examples == PROMPTS[:2]
    assert not list(path.parent.glob("*.tmp"))
    full = wb.save_examples("prompts", tmp_path / "all.jsonl")
    assert len(load_jsonl(full)) == 5


def test_load_dataset_failure_keeps_state(wb, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"prompt": \n', encoding="utf-8")
    before = dict(wb.datasets)
    with pytest.raises(DataError, match=r"bad.jsonl:2: not valid JSON"):
        wb.load_dataset("bad", str(bad))
    with pytest.raises(DataError, match="unknown dataset 'nope'"):
        wb.load_dataset("nope")
    assert wb.datasets == before
    good = wb.load_dataset("good", str(bad), on_error="skip")
    assert wb.datasets["good"] is good and len(good) == 1
    assert wb.load_dataset("sample_prompts").spec()["prompt"].required


def test_load_model_failure_keeps_state(wb):
    before = dict(wb.models)
    with pytest.raises(LoadError, match=r"could not load model 'x' from 'boom://y'.*kaput"):
        register_model_loader("boom", lambda handle, name: (_ for _ in ()).throw(OSError("kaput")))
        wb.load_model("x", "boom://y")
    assert wb.models == before
    register_model_loader("fakelm", lambda handle, name: FakeLM())
    m = wb.load_model("second", "fakelm://anything")
    assert wb.models["second"] is m and isinstance(m, CachingModelWrapper)


def test_compatibility(wb):
    assert wb.compatible_models("prompts") == ["lm"]
    assert wb.compatible_models("numbers") == ["num"]
    assert wb.compatible_datasets("lm") == ["prompts"]
    assert wb.compatible_interpreters("lm", "prompts") == ["length"]
    assert wb.compatible_interpreters("num", "numbers") == ["length", "needs_numbers"]


def test_validate_and_max_examples():
    class BadOutput(FakeLM):
        def predict_minibatch(self, inputs):
            return [{"response": 7} for _ in inputs]

    bench = Workbench({"bad": BadOutput()}, {"prompts": Dataset(PROMPTS)}, validate="all",
                      max_examples=3)
    assert len(bench.datasets["prompts"]) == 3
    assert len(bench.problems) == 3
    assert all(p.field == "response" and "expected GeneratedText" in str(p) for p in bench.problems)
    with pytest.raises(DataError):
        Workbench({"bad": BadOutput()}, {"prompts": Dataset(PROMPTS)}, validate="first",
                  strict=True)
    with pytest.raises(ValueError, match="validate must be one of"):
        Workbench({}, {}, validate="some")


def test_generate_is_cached_and_checked(wb):
    from promptlit.api.components import Generator

    class Shout(Generator):
        """Upper-cases the prompt (once per `times`); counts calls."""

        def __init__(self):
            self.calls = 0

        def is_compatible(self, model, dataset):
            return "prompt" in dataset.spec()

        def generate(self, example, model, dataset, config=None):
            self.calls += 1
            return [{**example, "prompt": example["prompt"].upper()}] * (config or {}).get(
                "times", 1)

    wb.generators["shout"] = gen = Shout()
    out = wb.generate("shout", "lm", "prompts", PROMPTS[:2], {"times": 2})
    assert out == [[{**PROMPTS[i], "prompt": PROMPTS[i]["prompt"].upper()}] * 2 for i in (0, 1)]
    assert wb.generate("shout", "lm", "prompts", PROMPTS[:2], {"times": 2}) == out
    assert gen.calls == 2  # the second request came from the cache
    assert len(wb.datasets["prompts"]) == 5  # nothing added
    with pytest.raises(TypeError, match="not a generator"):
        wb.generate("length", "lm", "prompts", PROMPTS[:1])
    with pytest.raises(KeyError, match="unknown generator"):
        wb.generate("nope", "lm", "prompts", PROMPTS[:1])
    with pytest.raises(ValueError, match="cannot run on model 'num'"):
        wb.generate("shout", "num", "numbers", [{"x": 1.0}])
