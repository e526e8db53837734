"""LIT-compatible model API: `Model`, `BatchedModel`, `BatchedRemoteModel`, wrappers and caching.

A model declares what it reads (`input_spec()`) and what it returns (`output_spec()`) as specs of
`LitType`s, and maps a stream of input examples to a stream of output dicts with `predict`.
Everything else (which UI modules show, which datasets it can run on) is computed from the specs.

Example:
    >>> from promptlit.api import types
    >>> class Upper(BatchedModel):
    ...     '''Upper-cases the prompt.'''
    ...     def input_spec(self): return {"prompt": types.TextSegment()}
    ...     def output_spec(self): return {"response": types.GeneratedText()}
    ...     def predict_minibatch(self, inputs):
    ...         return [{"response": ex["prompt"].upper()} for ex in inputs]
    >>> list(Upper().predict([{"prompt": "hi"}]))
    [{'response': 'HI'}]

`CachingModelWrapper` puts a memory + SQLite cache in front of any model, keyed by
(model name, `example_id(input)`, hash of the model's config), so an expensive generation is never
computed twice, not even across restarts when a `cache_dir` is given.
"""

from __future__ import annotations

import abc
import concurrent.futures
import inspect
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptlit.api import types
from promptlit.api.dataset import infer_spec_for_func
from promptlit.lib import caching
from promptlit.lib.utils import batch_iterator, compatible, describe_incompatibility, example_id

if TYPE_CHECKING:
    from promptlit.api.dataset import Dataset

logger = logging.getLogger(__name__)

JsonDict = types.JsonDict
Spec = types.Spec
ProgressFn = Callable[[float, str], None]


class Model(metaclass=abc.ABCMeta):
    """Base class of every model: specs in, specs out, `predict` in between.

    Subclasses implement `input_spec`, `output_spec` and `predict` (or derive from
    `BatchedModel` and implement `predict_minibatch`).
    """

    def description(self) -> str:
        """A one-line, human-readable description (defaults to the class docstring)."""
        return inspect.getdoc(self) or type(self).__name__

    @classmethod
    def init_spec(cls) -> Spec | None:
        """The spec of this class's constructor arguments, for a "load model" form.

        Inferred from `__init__`'s type-annotated parameters (str -> String, int -> Integer,
        float -> Scalar, bool -> Boolean); None when a parameter's type cannot be expressed.
        """
        try:
            return infer_spec_for_func(cls.__init__)
        except TypeError as e:
            logger.debug("No init_spec for %s: %s", cls.__name__, e)
            return None

    def is_compatible_with_dataset(self, dataset: Dataset) -> bool:
        """Whether every required input is a dataset field of a compatible type."""
        return compatible(self.input_spec(), dataset.spec())

    def incompatibility_reasons(self, dataset: Dataset) -> list[str]:
        """Why this model cannot read `dataset` (empty when it can)."""
        return describe_incompatibility(self.input_spec(), dataset.spec())

    def max_minibatch_size(self) -> int:
        """How many examples `predict` should be given at once (callers batch by this)."""
        return 1

    @property
    def supports_concurrent_predictions(self) -> bool:
        """Whether `predict` may be called from several threads at the same time."""
        return False

    @abc.abstractmethod
    def input_spec(self) -> Spec:
        """The fields this model reads from an example."""

    @abc.abstractmethod
    def output_spec(self) -> Spec:
        """The fields of each output dict `predict` returns."""

    @abc.abstractmethod
    def predict(self, inputs: Iterable[JsonDict], **kw: Any) -> Iterable[JsonDict]:
        """Returns one output dict per input, in order."""

    def get_embedding_table(self) -> tuple[list[str], Any]:
        """(vocab, <float>[vocab_size, emb_dim]) for generators such as HotFlip; optional."""
        raise NotImplementedError(f"{type(self).__name__} does not expose an embedding table.")


class BatchedModel(Model):
    """A model that computes a minibatch at a time: implement `predict_minibatch`.

    `predict` splits its input into minibatches of `max_minibatch_size()` examples and chains
    the results, so callers can pass any number of examples.
    """

    def max_minibatch_size(self) -> int:
        """Examples per `predict_minibatch` call (override for your accelerator)."""
        return 32

    def predict(self, inputs: Iterable[JsonDict], **kw: Any) -> Iterator[JsonDict]:
        """Yields one output per input, computing `max_minibatch_size()` examples at a time."""
        for batch in batch_iterator(inputs, self.max_minibatch_size()):
            outputs = list(self.predict_minibatch(batch, **kw))
            if len(outputs) != len(batch):
                raise ValueError(
                    f"{type(self).__name__}.predict_minibatch returned {len(outputs)} outputs for "
                    f"{len(batch)} inputs; it must return exactly one output per input, in order."
                )
            yield from outputs

    @abc.abstractmethod
    def predict_minibatch(self, inputs: list[JsonDict], **kw: Any) -> list[JsonDict]:
        """Returns one output per input for a list of at most `max_minibatch_size()` inputs."""


class _RateLimiter:
    """Allows at most `max_qps` calls per second across threads (None: unlimited)."""

    def __init__(self, max_qps: float | None) -> None:
        self.interval = 1.0 / max_qps if max_qps else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


class BatchedRemoteModel(Model):
    """A model served elsewhere (an HTTP API): minibatches are sent in parallel.

    `predict` splits its input into minibatches of `max_minibatch_size()` and runs
    `predict_minibatch` on a thread pool of `pool_size` workers, at most `max_qps` calls per
    second; outputs come back in input order whatever order the calls finish in.

    Args:
      max_concurrent_requests: the number of worker threads (alias `pool_size`).
      max_qps: the most `predict_minibatch` calls started per second (None: unlimited).
      batch_size: examples per call.
    """

    def __init__(self, max_concurrent_requests: int = 4, max_qps: float | None = None,
                 batch_size: int = 8, *, pool_size: int | None = None) -> None:
        self.pool_size = int(max_concurrent_requests if pool_size is None else pool_size)
        if self.pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {self.pool_size}.")
        self.max_qps = max_qps
        self.batch_size = int(batch_size)
        self._limiter = _RateLimiter(max_qps)

    def max_minibatch_size(self) -> int:
        """Examples per remote call."""
        return self.batch_size

    @property
    def supports_concurrent_predictions(self) -> bool:
        """Remote models are called from worker threads already."""
        return True

    def _call(self, batch: list[JsonDict], kw: dict[str, Any]) -> list[JsonDict]:
        self._limiter.wait()
        outputs = list(self.predict_minibatch(batch, **kw))
        if len(outputs) != len(batch):
            raise ValueError(
                f"{type(self).__name__}.predict_minibatch returned {len(outputs)} outputs for "
                f"{len(batch)} inputs; it must return exactly one output per input, in order."
            )
        return outputs

    def predict(self, inputs: Iterable[JsonDict], **kw: Any) -> list[JsonDict]:
        """Returns one output per input (minibatches computed in parallel, order preserved)."""
        batches = list(batch_iterator(inputs, self.max_minibatch_size()))
        if not batches:
            return []
        workers = min(self.pool_size, len(batches))
        with concurrent.futures.ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix=type(self).__name__) as pool:
            results = list(pool.map(lambda b: self._call(b, kw), batches))
        return list(itertools.chain.from_iterable(results))

    @abc.abstractmethod
    def predict_minibatch(self, inputs: list[JsonDict], **kw: Any) -> list[JsonDict]:
        """Sends one minibatch to the remote model; returns one output per input."""


class ModelWrapper(Model):
    """Delegates everything to a wrapped model; subclass it to change one behaviour.

    Attributes the wrapper does not define (e.g. a language model's `.generate` or `.salience`)
    are looked up on the wrapped model, so a wrapped model can be used like the original.
    """

    def __init__(self, model: Model) -> None:
        self._wrapped = model

    @property
    def wrapped(self) -> Model:
        """The model this wrapper delegates to."""
        return self._wrapped

    def unwrap(self) -> Model:
        """The innermost model (through any number of wrappers)."""
        model: Model = self
        while isinstance(model, ModelWrapper):
            model = model.wrapped
        return model

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails; guard against recursion before __init__ ran.
        if name.startswith("__") or "_wrapped" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["_wrapped"], name)

    def description(self) -> str:
        """The wrapped model's description."""
        return self.wrapped.description()

    def max_minibatch_size(self) -> int:
        """The wrapped model's minibatch size."""
        return self.wrapped.max_minibatch_size()

    @property
    def supports_concurrent_predictions(self) -> bool:
        """The wrapped model's answer."""
        return self.wrapped.supports_concurrent_predictions

    def input_spec(self) -> Spec:
        """The wrapped model's input spec."""
        return self.wrapped.input_spec()

    def output_spec(self) -> Spec:
        """The wrapped model's output spec."""
        return self.wrapped.output_spec()

    def is_compatible_with_dataset(self, dataset: Dataset) -> bool:
        """The wrapped model's answer."""
        return self.wrapped.is_compatible_with_dataset(dataset)

    def predict(self, inputs: Iterable[JsonDict], **kw: Any) -> Iterable[JsonDict]:
        """The wrapped model's predictions."""
        return self.wrapped.predict(inputs, **kw)

    def get_embedding_table(self) -> tuple[list[str], Any]:
        """The wrapped model's embedding table."""
        return self.wrapped.get_embedding_table()


def model_config(model: Model) -> dict[str, Any]:
    """What identifies a model's behaviour for caching: class, description, handle, `cache_config()`.

    Models whose outputs depend on settings not visible in their description (weights on disk,
    sampler, max length) should define `cache_config() -> JsonDict` so that a change in those
    settings invalidates the cache.
    """
    inner = model.unwrap() if isinstance(model, ModelWrapper) else model
    config: dict[str, Any] = {
        "class": f"{type(inner).__module__}.{type(inner).__qualname__}",
        "description": inner.description(),
    }
    for attr in ("handle", "preset"):  # where the weights came from, when the model says
        value = getattr(inner, attr, None)
        if isinstance(value, str):
            config[attr] = value
    extra = getattr(inner, "cache_config", None)
    if callable(extra):
        config["cache_config"] = extra()
    return config


class CachingModelWrapper(ModelWrapper):
    """Caches a model's predictions in memory and (with `cache_dir`) in SQLite.

    Keys are `(name, example_id(input), config_hash)`; only cache misses are sent to the wrapped
    model (in minibatches of its `max_minibatch_size()`), outputs come back in input order, and
    a repeated input is computed once. With `cache_dir`, rows live in
    `<cache_dir>/<name>.sqlite3`, so a new wrapper (a restarted server) reuses them.

    Args:
      model: the model to wrap.
      name: the model's name in the workbench (part of the key and the file name).
      cache_dir: directory of the SQLite file; None keeps the cache in memory only.
      config: overrides the config hashed into the key (default: `model_config(model)`).

    Example:
        >>> import tempfile
        >>> from promptlit.api import types
        >>> class Echo(BatchedModel):
        ...     calls = 0
        ...     def input_spec(self): return {"prompt": types.TextSegment()}
        ...     def output_spec(self): return {"response": types.GeneratedText()}
        ...     def predict_minibatch(self, inputs):
        ...         Echo.calls += len(inputs)
        ...         return [{"response": ex["prompt"]} for ex in inputs]
        >>> d = tempfile.mkdtemp()
        >>> CachingModelWrapper(Echo(), "echo", cache_dir=d).predict([{"prompt": "a"}])
        [{'response': 'a'}]
        >>> CachingModelWrapper(Echo(), "echo", cache_dir=d).predict([{"prompt": "a"}])
        [{'response': 'a'}]
        >>> Echo.calls
        1
    """

    def __init__(self, model: Model, name: str, cache_dir: str | Path | None = None, *,
                 config: Any = None) -> None:
        super().__init__(model)
        self.name = name
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.config_hash = caching.config_hash(model_config(model) if config is None else config)
        sqlite = None
        if self.cache_dir is not None:
            path = self.cache_dir / f"{caching.safe_filename(name)}.sqlite3"
            sqlite = caching.SqliteCache(path, namespace=name, codec="auto")
        self.cache = caching.ResultCache(sqlite)
        self._lock = threading.Lock()

    def key_fn(self, example: JsonDict) -> str:
        """The cache key of one input example."""
        return caching.cache_key(self.name, example_id(example), self.config_hash)

    def cached(self, inputs: Sequence[JsonDict]) -> list[JsonDict | None]:
        """The cached output for each input, None where there is none yet (no model call)."""
        found = self.cache.get_many([self.key_fn(ex) for ex in inputs])
        return [found.get(self.key_fn(ex)) for ex in inputs]

    def predict(self, inputs: Iterable[JsonDict], *, progress: ProgressFn | None = None,
                **kw: Any) -> list[JsonDict]:
        """Returns one output per input; only cache misses reach the wrapped model.

        Args:
          inputs: the examples.
          progress: called as `progress(fraction, message)` after each computed minibatch.
        """
        inputs = list(inputs)
        keys = [self.key_fn(ex) for ex in inputs]
        found = self.cache.get_many(keys)
        misses: dict[str, JsonDict] = {}
        for key, ex in zip(keys, inputs, strict=True):
            if key not in found and key not in misses:
                misses[key] = ex
        if misses:
            logger.debug("%s: %d cached, %d to compute", self.name, len(inputs) - len(misses),
                         len(misses))
            miss_keys = list(misses)
            done = 0
            batch_size = max(1, self.wrapped.max_minibatch_size())
            for batch_keys in batch_iterator(miss_keys, batch_size):
                outputs = list(self.wrapped.predict([misses[k] for k in batch_keys], **kw))
                if len(outputs) != len(batch_keys):
                    raise ValueError(
                        f"Model {self.name!r} returned {len(outputs)} outputs for "
                        f"{len(batch_keys)} inputs; predict must return one output per input."
                    )
                new = dict(zip(batch_keys, outputs, strict=True))
                self.cache.put_many(new)
                found.update(new)
                done += len(batch_keys)
                if progress is not None:
                    progress(done / len(miss_keys),
                             f"{self.name}: predicted {done}/{len(miss_keys)} examples")
        elif progress is not None:
            progress(1.0, f"{self.name}: all {len(inputs)} predictions cached")
        return [found[k] for k in keys]
