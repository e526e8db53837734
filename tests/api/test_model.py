"""Tests for promptlit.api.model: Model ABC, batching, parallel remote batches, caching wrapper."""

import threading

import numpy as np
import pytest

from promptlit.api import types
from promptlit.api.dataset import Dataset
from promptlit.api.model import (
    BatchedModel,
    BatchedRemoteModel,
    CachingModelWrapper,
    Model,
    ModelWrapper,
)


class CountingModel(BatchedModel):
    """Reverses the prompt; counts calls and examples."""

    def __init__(self, batch_size: int = 2):
        self.batch_size = batch_size
        self.calls: list[int] = []

    def max_minibatch_size(self):
        return self.batch_size

    def input_spec(self):
        return {"prompt": types.TextSegment(), "target": types.TextSegment(required=False)}

    def output_spec(self):
        return {"response": types.GeneratedText(parent="target"), "score": types.Scalar()}

    def predict_minibatch(self, inputs):
        self.calls.append(len(inputs))
        return [{"response": ex["prompt"][::-1], "score": np.float32(len(ex["prompt"]))}
                for ex in inputs]

    def salience(self, prompt, response, **kw):
        return f"sal({prompt},{response})"


EXAMPLES = [{"prompt": f"prompt {i}"} for i in range(5)]


def test_batched_model_batches_and_checks_lengths():
    m = CountingModel(batch_size=2)
    outs = list(m.predict(EXAMPLES))
    assert [o["response"] for o in outs] == [f"{i} tpmorp" for i in range(5)]
    assert m.calls == [2, 2, 1]
    assert m.description() == "Reverses the prompt; counts calls and examples."

    class Broken(CountingModel):
        def predict_minibatch(self, inputs):
            return []

    with pytest.raises(ValueError, match="returned 0 outputs for 2 inputs"):
        list(Broken().predict(EXAMPLES))


def test_compatibility_and_init_spec():
    m = CountingModel()
    assert m.is_compatible_with_dataset(Dataset([{"prompt": "a", "other": 1}]))
    assert not m.is_compatible_with_dataset(Dataset([{"text": "a"}]))
    assert "requires input field 'prompt'" in m.incompatibility_reasons(Dataset([{"text": "a"}]))[0]
    assert not m.is_compatible_with_dataset(Dataset([{"prompt": 1}]))  # Scalar, not text
    assert CountingModel.init_spec() == {"batch_size": types.Integer(required=False, default=2)}
    assert m.max_minibatch_size() == 2 and m.supports_concurrent_predictions is False
    with pytest.raises(TypeError):
        Model()  # abstract


class SlowRemote(BatchedRemoteModel):
    """Finishes later batches first; records how many calls overlap."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        self.all_started = threading.Barrier(3, timeout=10)

    def input_spec(self):
        return {"prompt": types.TextSegment()}

    def output_spec(self):
        return {"response": types.GeneratedText()}

    def predict_minibatch(self, inputs):
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self.all_started.wait()  # only returns once 3 calls run at the same time
        with self.lock:
            self.active -= 1
        return [{"response": ex["prompt"].upper()} for ex in inputs]


def test_batched_remote_model_parallel_and_ordered():
    m = SlowRemote(pool_size=3, batch_size=2)
    examples = [{"prompt": f"p{i}"} for i in range(6)]  # 3 batches of 2
    outs = m.predict(examples)
    assert [o["response"] for o in outs] == [f"P{i}" for i in range(6)]
    assert m.max_active == 3
    assert m.supports_concurrent_predictions
    assert m.predict([]) == []


def test_batched_remote_model_rate_limit_and_validation():
    with pytest.raises(ValueError, match="pool_size"):
        SlowRemote(pool_size=0)
    m = SlowRemote(max_concurrent_requests=2, max_qps=1000.0, batch_size=4)
    assert m.pool_size == 2 and m.max_qps == 1000.0 and m.max_minibatch_size() == 4


def test_model_wrapper_delegates():
    inner = CountingModel()
    w = ModelWrapper(inner)
    assert w.input_spec() == inner.input_spec() and w.output_spec() == inner.output_spec()
    assert w.max_minibatch_size() == 2 and w.description() == inner.description()
    assert w.salience("a", "b") == "sal(a,b)"  # attribute lookup falls through
    assert ModelWrapper(w).unwrap() is inner
    with pytest.raises(AttributeError):
        w.no_such_method  # noqa: B018


def test_caching_wrapper_second_predict_makes_no_calls():
    inner = CountingModel(batch_size=2)
    cached = CachingModelWrapper(inner, "m")
    first = cached.predict(EXAMPLES)
    assert inner.calls == [2, 2, 1]
    second = cached.predict(list(reversed(EXAMPLES)))
    assert inner.calls == [2, 2, 1]  # zero new calls
    assert [o["response"] for o in second] == [o["response"] for o in reversed(first)]


def test_caching_wrapper_sends_only_misses_in_order():
    inner = CountingModel(batch_size=10)
    cached = CachingModelWrapper(inner, "m")
    cached.predict(EXAMPLES[1:3])
    mixed = [EXAMPLES[0], EXAMPLES[1], EXAMPLES[3], EXAMPLES[0], EXAMPLES[2]]
    progress = []
    outs = cached.predict(mixed, progress=lambda f, msg: progress.append((f, msg)))
    assert inner.calls == [2, 2]  # the two misses (EXAMPLES[0] once, EXAMPLES[3])
    assert [o["response"] for o in outs] == [ex["prompt"][::-1] for ex in mixed]
    assert progress == [(1.0, "m: predicted 2/2 examples")]
    assert cached.cached([EXAMPLES[4], EXAMPLES[0]])[0] is None


def test_caching_wrapper_persists_across_restarts(tmp_path):
    inner = CountingModel()
    CachingModelWrapper(inner, "tiny", cache_dir=tmp_path).predict(EXAMPLES)
    assert (tmp_path / "tiny.sqlite3").exists()
    fresh = CountingModel()
    outs = CachingModelWrapper(fresh, "tiny", cache_dir=tmp_path).predict(EXAMPLES)
    assert fresh.calls == []  # every row came from SQLite
    assert outs[3]["response"] == "3 tpmorp"
    assert isinstance(outs[3]["score"], float) and outs[3]["score"] == 8.0
    # A different config (or name) does not reuse the rows.
    other = CountingModel()
    CachingModelWrapper(other, "tiny", cache_dir=tmp_path, config={"v": 2}).predict(EXAMPLES[:1])
    assert other.calls == [1]


def test_caching_key_ignores_private_fields_and_order():
    inner = CountingModel()
    cached = CachingModelWrapper(inner, "m")
    cached.predict([{"prompt": "a", "target": "b"}])
    cached.predict([{"target": "b", "prompt": "a", "_id": "x"}])
    assert inner.calls == [1]


def test_caching_wrapper_rejects_wrong_output_count():
    class Short(CountingModel):
        def predict(self, inputs, **kw):
            return []

    with pytest.raises(ValueError, match="returned 0 outputs for 2 inputs"):
        CachingModelWrapper(Short(), "s").predict(EXAMPLES[:2])
