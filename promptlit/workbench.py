"""The Workbench: the one façade the UI, the CLI and notebooks call.

It holds the loaded models (each behind a `CachingModelWrapper`), datasets (as
`IndexedDataset`s) and components, and answers every question the UI asks: predictions,
interpreter results and sequence salience, all cached by (model, example content hash, config),
in memory and (with `cache_dir`) in SQLite, so nothing expensive is computed twice.

Example:
    >>> import promptlit as pl
    >>> from promptlit.api import types
    >>> class Echo(pl.api.model.BatchedModel):
    ...     def input_spec(self): return {"prompt": types.TextSegment()}
    ...     def output_spec(self): return {"response": types.GeneratedText()}
    ...     def predict_minibatch(self, inputs):
    ...         return [{"response": ex["prompt"][::-1]} for ex in inputs]
    >>> data = pl.api.dataset.Dataset([{"prompt": "abc"}])
    >>> wb = Workbench(models={"echo": Echo()}, datasets={"toy": data})
    >>> wb.predict("echo", "toy", data.examples)
    [{'response': 'cba'}]
    >>> wb.compatible_models("toy")
    ['echo']

State changes (`add_examples`, `load_dataset`, `load_model`) are all-or-nothing: a failure raises
a clear error and leaves what was loaded untouched.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from promptlit.api import types
from promptlit.api.dataset import Dataset, IndexedDataset
from promptlit.api.model import CachingModelWrapper, Model, model_config
from promptlit.lib import caching
from promptlit.lib.utils import example_id
from promptlit.lib.validation import (
    MODES,
    DataError,
    Problem,
    validate_dataset,
    validate_example,
    validate_model,
)

logger = logging.getLogger(__name__)

JsonDict = types.JsonDict
ProgressFn = Callable[[float, str], None]
ModelLoader = Callable[[str, str], Model]

#: Handle scheme -> loader(handle, name) -> Model, consulted before `promptlit.models.presets`.
#: E.g. `register_model_loader("fake", lambda handle, name: FakeModel())` makes
#: `--models m:fake://anything` load a FakeModel (used by tests and plugins).
MODEL_LOADERS: dict[str, ModelLoader] = {}

DEFAULT_SALIENCE_METHODS: tuple[str, ...] = ("grad_l2", "grad_dot_input")

#: Salience methods whose numbers do not depend on ``ig_steps`` (their cache entries are shared
#: across steps settings); any other method's key holds the steps.
STEP_FREE_SALIENCE_METHODS = frozenset({"grad_l2", "grad_dot_input", "grad_norm", "attention"})
ROW_SUM_SALIENCE_METHODS = frozenset({"grad_dot_input", "integrated_gradients"})
"""Methods whose salience of a response span is exactly the sum of its rows of the full matrix:
they are linear in the explained log-probability (Grad·Input of a sum of log-probs is the sum of
their Grad·Inputs, and so is IG with the same steps and baseline). Grad L2, the norm of the
span's summed gradient, is not the sum of the rows' norms, and is always computed."""

#: Version of the salience cache keys, bumped whenever what a key holds changes, so a result
#: cached under an older, incomplete key (issue 10: IG spans keyed without their steps) is
#: never served from a persistent cache.
SALIENCE_KEY_VERSION = 2

#: Built-in components `Workbench.interpret` can run by name when none of that name is
#: registered: name -> "module:Class" (imported and built on first use).
class LoadError(ValueError):
    """A model or dataset could not be loaded; the message says why and how to fix it."""


def register_model_loader(scheme: str, loader: ModelLoader) -> None:
    """Loads handles `"<scheme>://..."` with `loader(handle, name)` instead of the presets."""
    MODEL_LOADERS[scheme] = loader


def resolve_model(handle: str, name: str, **options: Any) -> Model:
    """Builds the model behind `handle` (registered scheme, else `models.presets.load_model`).

    `options` (e.g. generation settings: max_new_tokens, stop_sequences) go to
    `models.presets.load_model`; a registered scheme's loader takes only (handle, name).
    """
    scheme, sep, _ = handle.partition("://")
    if sep and scheme in MODEL_LOADERS:
        return MODEL_LOADERS[scheme](handle, name)
    presets = importlib.import_module("promptlit.models.presets")
    return presets.load_model(handle, name=name, **options)


class Workbench:
    """Models, datasets and components, with cached predictions, interpretations and salience.

    Args:
      models: name -> Model. Each is wrapped in a `CachingModelWrapper` (kept if already one).
      datasets: name -> Dataset. Each becomes an `IndexedDataset` (ids = content hashes).
      interpreters, generators, metrics: name -> component (`promptlit.api.components`).
      layouts: name -> layout; `default_layout` names the one the UI opens with.
      cache_dir: where predictions / salience persist as SQLite files (None: memory only).
      validate: "first", "sample" or "all" checks datasets and models at construction
        (`promptlit.lib.validation`); problems are logged and kept in `.problems`.
      strict: with `validate`, raise `DataError` if validation finds any error.
      max_examples: keep at most this many examples of each dataset.
    """

    def __init__(self, models: Mapping[str, Model], datasets: Mapping[str, Dataset], *,
                 interpreters: Mapping[str, Any] | None = None,
                 generators: Mapping[str, Any] | None = None,
                 metrics: Mapping[str, Any] | None = None,
                 layouts: Mapping[str, Any] | None = None, default_layout: str | None = None,
                 cache_dir: str | Path | None = None, validate: str | None = None,
                 strict: bool = False, max_examples: int | None = None) -> None:
        if validate is not None and validate not in MODES:
            raise ValueError(f"validate must be one of {list(MODES)} or None, got {validate!r}")
        if max_examples is not None and max_examples < 1:
            raise ValueError(f"max_examples must be >= 1, got {max_examples}")
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self.max_examples = max_examples
        self.validate_mode = validate
        self._lock = threading.RLock()
        self._salience_running: dict[str, threading.Event] = {}
        self.models: dict[str, Model] = {n: self._wrap(n, m) for n, m in models.items()}
        self.datasets: dict[str, IndexedDataset] = {
            n: self._index(n, d) for n, d in datasets.items()}
        self.interpreters: dict[str, Any] = dict(interpreters or {})
        self.generators: dict[str, Any] = dict(generators or {})
        self.metrics: dict[str, Any] = dict(metrics or {})
        self.layouts: dict[str, Any] = dict(layouts or {})
        if default_layout is not None and self.layouts and default_layout not in self.layouts:
            raise ValueError(f"default_layout {default_layout!r} is not one of the layouts "
                             f"{sorted(self.layouts)}")
        self.default_layout = default_layout
        self.problems: list[Problem] = []
        for ds in self.datasets.values():
            self.problems += ds.problems
        self._builtins: dict[str, Any] = {}
        self._interp_cache = caching.ResultCache(self._sqlite("interpretations"))
        self._salience_cache = caching.ResultCache(self._sqlite("salience"))
        self._seed_stored()
        if validate is not None:
            found = self.validate(validate)
            self.problems += found
            errors = [p for p in found if p.severity == "error"]
            if errors and strict:
                raise DataError(errors)

    # -- construction helpers ------------------------------------------------------------------
    def _sqlite(self, kind: str) -> caching.SqliteCache | None:
        if self.cache_dir is None:
            return None
        return caching.SqliteCache(self.cache_dir / f"{kind}.sqlite3", namespace=kind,
                                   codec="pickle")

    def _wrap(self, name: str, model: Model) -> Model:
        if isinstance(model, CachingModelWrapper) and model.name == name:
            return model
        return CachingModelWrapper(model, name, cache_dir=self.cache_dir)

    def _index(self, name: str, dataset: Dataset) -> IndexedDataset:
        stored = getattr(dataset, "stored_results", None)  # `promptlit explain` results
        if self.max_examples is not None and len(dataset) > self.max_examples:
            problems = dataset.problems
            dataset = dataset.slice[: self.max_examples]
            dataset.problems = problems
        if isinstance(dataset, IndexedDataset):
            return dataset
        out = IndexedDataset(base=dataset, source=dataset.source or name)
        if stored is not None:
            out.stored_results = stored  # type: ignore[attr-defined]
        return out

    def _seed_stored(self, datasets: Sequence[str] | None = None) -> None:
        """Serves `promptlit explain` results (a dataset loaded from a results directory) from
        the caches, for the models that computed them (`promptlit.bulk.seed_workbench`)."""
        names = list(self.datasets) if datasets is None else list(datasets)
        stored = [n for n in names if getattr(self.datasets[n], "stored_results", None)]
        if stored:
            from promptlit import bulk

            for name in stored:
                bulk.seed_workbench(self, name)

    def _model(self, name: str) -> Model:
        try:
            return self.models[name]
        except KeyError:
            raise KeyError(f"unknown model {name!r}; loaded models: {sorted(self.models)}") from None

    def _dataset(self, name: str) -> IndexedDataset:
        try:
            return self.datasets[name]
        except KeyError:
            raise KeyError(
                f"unknown dataset {name!r}; loaded datasets: {sorted(self.datasets)}") from None

    def _component(self, name: str) -> Any:
        for registry in (self.interpreters, self.generators, self.metrics):
            if name in registry:
                return registry[name]
        # Not registered: a built-in of that name (`promptlit.components.defaults`), made once.
        from promptlit.components import defaults

        if name in defaults.names():
            with self._lock:
                if name not in self._builtins:
                    self._builtins[name] = defaults.builtin(name)
                return self._builtins[name]
        known = sorted({*self.interpreters, *self.generators, *self.metrics, *defaults.names()})
        raise KeyError(f"unknown component {name!r}; known components: {known}")

    # -- validation ----------------------------------------------------------------------------
    def validate(self, mode: str = "first") -> list[Problem]:
        """Checks every dataset, and every model on each compatible dataset; returns problems.

        Model checks run `predict` (through the cache) on the examples `mode` selects.
        """
        problems: list[Problem] = []
        for name, ds in self.datasets.items():
            problems += validate_dataset(ds, mode)
            for model_name, model in self.models.items():
                if not model.is_compatible_with_dataset(ds):
                    continue
                for p in validate_model(model, ds, mode):
                    if not p.source:
                        p.source = f"model {model_name} on {name}"
                    problems.append(p)
        for p in problems:
            log = logger.warning if p.severity == "warning" else logger.error
            log("validation: %s", p)
        return problems

    # -- predictions ---------------------------------------------------------------------------
    def predict(self, model: str, dataset: str, examples: Sequence[JsonDict], *,
                progress: ProgressFn | None = None) -> list[JsonDict]:
        """The model's output for each example, in order (cached; misses computed in batches).

        Args:
          model: a model name. dataset: the dataset the examples belong to (or follow the spec of).
          examples: plain examples (LIT indexed `{"id", "data"}` entries are accepted too).
          progress: called as `progress(fraction, message)` as minibatches complete; a tqdm bar
            shows in the terminal as well.
        """
        m = self._model(model)
        self._dataset(dataset)
        inputs = [ex["data"] if _is_indexed(ex) else ex for ex in examples]
        if not inputs:
            return []
        bar = tqdm(total=len(inputs), desc=f"{model}: predict", unit="ex", leave=False,
                   disable=None)

        def report(fraction: float, message: str) -> None:
            bar.n = round(fraction * len(inputs))
            bar.refresh()
            if progress is not None:
                progress(fraction, message)

        try:
            if isinstance(m, CachingModelWrapper):
                return m.predict(inputs, progress=report)
            outputs = list(m.predict(inputs))
            report(1.0, f"{model}: predicted {len(inputs)} examples")
            return outputs
        finally:
            bar.close()

    # -- interpreters --------------------------------------------------------------------------
    def interpret(self, interpreter: str, model: str, dataset: str, examples: Sequence[JsonDict],
                  config: JsonDict | None = None, *, progress: ProgressFn | None = None) -> Any:
        """Runs a component (interpreter, generator or metric) on examples, through a cache.

        The cache key is (component, model, the examples' ids, config hash). Components with a
        true `per_example` attribute return one result per input and are cached per example, so
        only examples not seen before are computed.
        """
        comp = self._component(interpreter)
        m, ds = self._model(model), self._dataset(dataset)
        inputs = [ex["data"] if _is_indexed(ex) else ex for ex in examples]
        cfg = caching.config_hash(config)
        mcfg = m.config_hash if isinstance(m, CachingModelWrapper) else caching.config_hash(
            model_config(m))
        ids = [example_id(ex) for ex in inputs]

        def run(batch: list[JsonDict], batch_ids: list[str]) -> Any:
            outputs = self.predict(model, dataset, batch)
            indexed = [{"id": i, "data": ex, "meta": {}} for i, ex in zip(batch_ids, batch,
                                                                       strict=True)]
            if progress is not None:
                progress(0.5, f"{interpreter}: running on {len(batch)} examples")
            if hasattr(comp, "run_with_metadata"):
                return comp.run_with_metadata(indexed, m, ds, model_outputs=outputs, config=config)
            return comp.run(batch, m, ds, model_outputs=outputs, config=config)

        if getattr(comp, "per_example", False):
            keys = [caching.cache_key("interp", interpreter, model, mcfg, i, cfg) for i in ids]
            found = self._interp_cache.get_many(keys)
            todo = {k: (ex, i) for k, ex, i in zip(keys, inputs, ids, strict=True)
                    if k not in found}
            if todo:
                results = list(run([v[0] for v in todo.values()], [v[1] for v in todo.values()]))
                if len(results) != len(todo):
                    raise ValueError(f"{interpreter} is per_example but returned {len(results)} "
                                     f"results for {len(todo)} inputs")
                new = dict(zip(todo, results, strict=True))
                self._interp_cache.put_many(new)
                found.update(new)
            if progress is not None:
                progress(1.0, f"{interpreter}: done")
            return [found[k] for k in keys]
        key = caching.cache_key("interp", interpreter, model, mcfg, caching.config_hash(ids), cfg)
        result = self._interp_cache.get(key)
        if result is caching.MISSING:
            result = run(inputs, ids)
            self._interp_cache.put(key, result)
        if progress is not None:
            progress(1.0, f"{interpreter}: done")
        return result

    # -- metrics -------------------------------------------------------------------------------
    def metrics_table(self, dataset: str, models: Sequence[str] | None = None, *,
                      examples: Sequence[JsonDict] | None = None,
                      slices: Mapping[str, Sequence[str]] | None = None,
                      configs: Mapping[str, JsonDict | None] | None = None,
                      all_slice: str | None = "all",
                      progress: ProgressFn | None = None) -> Any:
        """Every compatible metric per model and per slice, as a tidy `pandas.DataFrame`.

        Predictions come from the cache (`predict`); the numbers are
        `promptlit.components.metrics.compute_metrics_table`'s, with the registered metric
        components (those of `promptlit.components.metrics.default_metrics` unless one of the
        same class is registered). Use `promptlit.components.metrics.metrics_pivot` for a
        models × slices view of one metric.

        Args:
          dataset: the dataset the examples follow (its spec is used).
          models: model names (default: every model compatible with `dataset`).
          examples: the examples to score: plain dicts or indexed `{"id", "data"}` entries
            (default: the dataset's, e.g. pass the dataset plus a session's added examples).
          slices: slice name -> example ids (ids of `examples`).
          configs: model name -> metrics config, e.g. ``{"threshold": 0.3}`` for a binary
            classifier.
          all_slice: name of the slice holding every example (None: no such slice).
          progress: `(fraction, message)` callback.

        Example:
            >>> table = wb.metrics_table("breast_cancer", configs={"clf": {"threshold": 0.3}})  # doctest: +SKIP
            >>> metrics_pivot(table, "accuracy")                                      # doctest: +SKIP
        """
        import pandas as pd

        from promptlit.components import metrics as metrics_lib

        ds = self._dataset(dataset)
        names = list(models) if models is not None else self.compatible_models(dataset)
        if examples is None:
            indexed = [dict(ie) for ie in ds.indexed_examples]
        else:
            indexed = [dict(ex) if _is_indexed(ex) else {"id": ds.id_of(ex), "data": ex,
                                                         "meta": {}} for ex in examples]
        scored = IndexedDataset(spec=ds.spec(), source=ds.source, id_fn=ds.id_fn,
                                indexed_examples=indexed)
        registered = {n: c for n, c in self.metrics.items()
                      if callable(getattr(c, "run_with_metadata", None))}
        kinds = {type(c) for c in registered.values()}
        comps = {n: c for n, c in metrics_lib.default_metrics().items() if type(c) not in kinds}
        comps.update(registered)
        frames = []
        for i, name in enumerate(names):
            model = self._model(name)
            outputs = self.predict(name, dataset, [ie["data"] for ie in indexed])
            frames.append(metrics_lib.compute_metrics_table(
                {name: model}, scored, slices=slices, metrics=comps,
                model_outputs={name: outputs}, config=(configs or {}).get(name),
                all_slice=all_slice))
            if progress is not None:
                progress((i + 1) / max(len(names), 1), f"metrics: {name} done")
        frames = [f for f in frames if not f.empty]
        if not frames:
            return metrics_lib.compute_metrics_table({}, scored, all_slice=None)
        return pd.concat(frames, ignore_index=True)

    def paired_metrics(self, model_a: str, model_b: str, dataset: str,
                       examples: Sequence[JsonDict], *,
                       config: JsonDict | None = None) -> dict[str, dict[str, float]]:
        """Compares two models on the same examples, per prediction field they share.

        Returns ``{field: promptlit.components.metrics.paired_model_metrics(...)}`` for every
        MulticlassPreds / RegressionScore output field with the same name and type in both
        models (e.g. ``swap_rate``, ``mean_abs_diff``, ``mean_jsd``); {} when they share none.
        """
        from promptlit.components import metrics as metrics_lib

        spec_a, spec_b = self._model(model_a).output_spec(), self._model(model_b).output_spec()
        inputs = [ex["data"] if _is_indexed(ex) else ex for ex in examples]
        out_a = self.predict(model_a, dataset, inputs)
        out_b = self.predict(model_b, dataset, inputs)
        result = {}
        for key, spec in spec_a.items():
            if not isinstance(spec, (types.MulticlassPreds, types.RegressionScore)):
                continue
            other = spec_b.get(key)
            if type(other) is not type(spec) or getattr(other, "vocab", None) != getattr(
                    spec, "vocab", None):
                continue
            cfg = metrics_lib.applicable_config(spec, config) if isinstance(
                spec, types.MulticlassPreds) else None
            result[key] = metrics_lib.paired_model_metrics(
                [o[key] for o in out_a], [o[key] for o in out_b], spec, cfg)
        return result

    def generate(self, generator: str, model: str, dataset: str, examples: Sequence[JsonDict],
                 config: JsonDict | None = None, *,
                 progress: ProgressFn | None = None) -> list[list[JsonDict]]:
        """Counterfactuals: the examples `generator` derives from each of `examples`, cached.

        A thin, checked wrapper of `interpret` for `promptlit.api.components.Generator`s (word
        replacer, scrambler, ablation flip, hotflip): the result is cached by (generator, model,
        example ids, config), so asking again is free. New examples are not added anywhere; pass
        the ones you keep to `add_examples` (or the UI's session).

        Returns:
          One list of new examples per input example, in order (possibly empty lists).

        Raises:
          KeyError: unknown generator / model / dataset. TypeError: `generator` names a
          component that is not a Generator. ValueError: the generator cannot run on the pair.

        Example:
            >>> wb.generate("word_replacer", "sentiment", "sentiment", [ex],  # doctest: +SKIP
            ...             {"subs": "good -> bad"})
            [[{'sentence': 'a bad movie', 'label': 'positive'}]]
        """
        if generator not in self.generators:
            if generator in self.interpreters or generator in self.metrics:
                raise TypeError(f"{generator!r} is not a generator; generators: "
                                f"{sorted(self.generators)}")
            raise KeyError(f"unknown generator {generator!r}; generators: "
                           f"{sorted(self.generators)}")
        comp = self.generators[generator]
        if not comp.is_compatible(self._model(model), self._dataset(dataset)):
            raise ValueError(f"generator {generator!r} cannot run on model {model!r} with "
                             f"dataset {dataset!r} (their specs do not fit it)")
        result = self.interpret(generator, model, dataset, examples, config, progress=progress)
        return [list(r) for r in result]

    # -- salience ------------------------------------------------------------------------------
    def salience(self, model: str, example: JsonDict, *, target: str = "response",
                 methods: Sequence[str] = DEFAULT_SALIENCE_METHODS, ig_steps: int = 16,
                 response: str | None = None, progress: ProgressFn | None = None,
                 contrast: str | None = None, **kwargs: Any) -> Any:
        """Sequence salience of `example` (a `SequenceSalience`), cached.

        The cache key holds everything that changes the numbers: the model (name and config
        hash), the prompt and the explained text, the methods, the IG steps (for methods that
        take steps) and every other argument of the model's `salience` (the given `kwargs` with
        the model's defaults filled in, e.g. the span and the IG baseline), in a canonical form
        (``span=(0, 2)`` and ``span=[0, 2]`` are one entry). The result is immutable and shared
        by every caller: derive new ones (`SequenceSalience.with_span_scores`), never change it.

        Args:
          model: a model with a `.salience(prompt, response, ...)` method (a `KerasCausalLM`).
          example: has "prompt" (and "target" when `target="target"`).
          target: "response" explains the model's own (cached) generation; "target" explains
            the example's reference continuation.
          methods: salience methods ("grad_l2", "grad_dot_input", "integrated_gradients").
          ig_steps: Integrated Gradients steps.
          response: explain this text instead (overrides `target`).
          progress: `(fraction, message)` callback, called before and after the work and, when
            the model's `salience` takes a ``progress`` argument, between its pieces of work. If
            it raises (e.g. `promptlit.lib.cancel.Cancelled`: the client went away), the work
            stops at the next piece, the exception propagates and nothing is cached.
          contrast: an alternative continuation B for the response span (``span=(a, b)``, else
            the whole response): salience of ``log p(A) - log p(B)``, "why A rather than B?"
            (`KerasCausalLM.salience`); B's text is part of the cache key.
          **kwargs: passed on to the model's `salience` (e.g. ``span=(0, 2)``,
            ``ig_baseline=0``).
        """
        if contrast is not None:
            if not isinstance(contrast, str) or not contrast:
                raise ValueError(f"contrast must be a non-empty text (the alternative "
                                 f"continuation B), got {contrast!r}")
            kwargs = {**kwargs, "contrast": contrast}
        m = self._model(model)
        salience_fn = getattr(m, "salience", None)
        if not callable(salience_fn):
            raise TypeError(f"model {model!r} ({type(getattr(m, 'unwrap', lambda: m)()).__name__}) "
                            "has no salience() method; sequence salience needs a language model "
                            "such as promptlit.models.KerasCausalLM")
        ex = example["data"] if _is_indexed(example) else example
        if "prompt" not in ex and not ex.get("messages"):
            raise KeyError(f"salience needs a 'prompt' (or 'messages') field; the example has "
                           f"{sorted(ex)}")
        if response is None:
            if target == "response":
                response = self._predict_one(model, ex, progress)["response"]
            elif target == "target":
                response = ex.get("target")
                if not response:
                    raise ValueError("target='target' needs an example with a non-empty 'target' "
                                     "field; use target='response' to explain the generation")
            else:
                raise ValueError(f"target must be 'response' or 'target', got {target!r}")
        params = _parameters(salience_fn)
        key, prompt, kwargs = self._salience_key(model, ex, response, methods, ig_steps, kwargs)
        result = self._salience_cache.get(key)
        if result is caching.MISSING:
            reused = self._span_from_matrix(model, ex, response, methods, ig_steps, kwargs)
            if reused is not None:
                result = reused
                self._salience_cache.put(key, result)
        if result is caching.MISSING:
            result = self._wait_for_running(key, progress)
        if result is caching.MISSING:
            if progress is not None:
                progress(0.0, f"{model}: computing salience ({', '.join(methods)})")
            call = dict(kwargs)
            if progress is not None and "progress" in params:
                call["progress"] = progress
            try:
                result = salience_fn(prompt, response, methods=tuple(methods),
                                     ig_steps=ig_steps, **call)
                self._salience_cache.put(key, result)
            finally:
                with self._lock:
                    self._salience_running.pop(key).set()
        if progress is not None:
            progress(1.0, f"{model}: salience ready")
        return result

    def _wait_for_running(self, key: str, progress: ProgressFn | None) -> Any:
        """The result of the same salience call running in another thread (e.g. the server's
        warm-up, or another session asking for the same example), once it is done; MISSING when
        none is running, and then this caller is registered as computing it (it must call
        ``self._salience_running.pop(key).set()`` when done). ``progress`` is called while
        waiting, so a caller whose client went away stops waiting (`Cancelled`)."""
        while True:
            with self._lock:
                running = self._salience_running.get(key)
                if running is None:
                    self._salience_running[key] = threading.Event()
                    return caching.MISSING
            while True:
                if progress is not None:
                    progress(0.0, "waiting for the same salience, already being computed")
                if running.wait(0.5):
                    break
            result = self._salience_cache.get(key)
            if result is not caching.MISSING:
                return result
            # it failed or was cancelled there: compute it here (or wait for the next one)

    def _span_from_matrix(self, model: str, ex: JsonDict, response: str,
                          methods: Sequence[str], ig_steps: int, kwargs: Mapping[str, Any]
                          ) -> Any | None:
        """A span call (``span=(a, b), full_matrix=False``) answered from a cached full-matrix
        result of the same text and settings, when every method asked for is one of
        `ROW_SUM_SALIENCE_METHODS` (exact: their span salience is the sum of the span's rows);
        None when there is no such result (the model then computes it)."""
        span = kwargs.get("span")
        if (span is None or kwargs.get("full_matrix", True) or "contrast" in kwargs
                or not methods or not set(methods) <= ROW_SUM_SALIENCE_METHODS):
            return None
        a, b = int(span[0]), int(span[1])
        rest = {k: v for k, v in kwargs.items() if k not in ("span", "full_matrix")}
        tried: set[tuple[str, ...]] = set()
        for cand in (tuple(methods), DEFAULT_SALIENCE_METHODS,
                     (*DEFAULT_SALIENCE_METHODS, *methods)):
            names = tuple(sorted(set(cand)))
            if names in tried:
                continue
            tried.add(names)
            key, _, _ = self._salience_key(model, ex, response, names, ig_steps, rest)
            full = self._salience_cache.get(key)
            if full is caching.MISSING or not all(m in full.matrices for m in methods):
                continue
            if not 0 <= a < b <= full.num_response_tokens:
                return None  # the model says what is wrong with the span
            import dataclasses

            import numpy as np

            scores = {(m, a, b): np.asarray(full.matrices[m][a:b]).sum(axis=0, dtype=np.float64)
                      for m in methods}
            metadata = {**full.metadata, "methods": list(methods),
                        "span_from_matrix": True}
            logger.debug("salience: %s span %s answered from the cached matrix", methods, span)
            return dataclasses.replace(full, matrices={}, span_scores=scores,
                                       signed={m: full.signed[m] for m in methods},
                                       metadata=metadata)
        return None

    def _salience_key(self, model: str, ex: JsonDict, response: str, methods: Sequence[str],
                      ig_steps: int, kwargs: Mapping[str, Any]
                      ) -> tuple[str, Any, dict[str, Any]]:
        """`(cache key, prompt as the model reads it, kwargs)` of a `salience` call."""
        m = self._model(model)
        mcfg = m.config_hash if isinstance(m, CachingModelWrapper) else caching.config_hash(
            model_config(m))
        params = _parameters(getattr(m, "salience", None))
        kwargs = dict(kwargs)
        prompt: Any = ex.get("prompt")
        if "chat_template" in params:  # a chat model reads the conversation and the example's
            # template choice; both are in the key (through the prompt and the kwargs)
            from promptlit.models.chat import example_prompt

            prompt = example_prompt(ex)
            if ex.get("chat_template") is not None and "chat_template" not in kwargs:
                kwargs = {**kwargs, "chat_template": ex["chat_template"]}
        key = caching.cache_key("salience", f"v{SALIENCE_KEY_VERSION}", model, mcfg,
                                example_id({"p": prompt, "r": response}),
                                _salience_settings(params, methods, ig_steps, kwargs))
        return key, prompt, kwargs

    def add_salience(self, model: str, example: JsonDict, result: Any, *,
                     response: str, methods: Sequence[str] = DEFAULT_SALIENCE_METHODS,
                     ig_steps: int = 16, **kwargs: Any) -> None:
        """Stores a salience result computed elsewhere, so `salience` with the same arguments
        returns it without computing (e.g. ``promptlit explain``'s stored results,
        `promptlit.bulk.seed_workbench`).

        Args:
          model: the model name it belongs to. example: the example explained.
          result: the `SequenceSalience` (immutable; it is shared as it is).
          response: the explained text (the model's response, or the example's target).
          methods, ig_steps, **kwargs: the `salience` arguments it answers (same key rules).
        """
        ex = example["data"] if _is_indexed(example) else example
        key, _, _ = self._salience_key(model, ex, response, methods, ig_steps, kwargs)
        self._salience_cache.put(key, result)

    def add_predictions(self, model: str, examples: Sequence[JsonDict],
                        outputs: Sequence[JsonDict]) -> None:
        """Stores model outputs computed elsewhere as the model's predictions for ``examples``,
        so `predict` returns them without running the model (cache keys as `predict`'s)."""
        m = self._model(model)
        if not isinstance(m, CachingModelWrapper):
            raise TypeError(f"model {model!r} has no prediction cache to add to")
        if len(examples) != len(outputs):
            raise ValueError(f"add_predictions: {len(examples)} examples but {len(outputs)} "
                             "outputs; give one output per example")
        inputs = [ex["data"] if _is_indexed(ex) else ex for ex in examples]
        m.cache.put_many({m.key_fn(ex): out for ex, out in zip(inputs, outputs, strict=True)})

    def attention(self, model: str, example: JsonDict, *, target: str = "response",
                  response: str | None = None, progress: ProgressFn | None = None,
                  span: tuple[int, int] | None = None) -> Any:
        """Attention weights of the model over prompt + response (an `AttentionMaps`), cached.

        Keyed like `salience` by the model (name and config hash), the prompt as the model reads
        it (conversation and chat template included) and the explained text. The result is
        immutable and shared by every caller.

        Args:
          model: a model with an `.attention(prompt, response, ...)` method (`KerasCausalLM`).
          example: has "prompt" (or "messages"), and "target" when ``target="target"``.
          target: "response" (the model's cached generation) or "target" (the reference).
          response: explain this text instead (overrides `target`).
          progress: `(fraction, message)` callback before and after the work.
          span: ``(start, stop)`` response tokens: only their rows (bounded memory for long
            responses; part of the key). None: the whole response.
        """
        m = self._model(model)
        attention_fn = getattr(m, "attention", None)
        if not callable(attention_fn):
            raise TypeError(f"model {model!r} has no attention() method; the attention view "
                            "needs a language model such as promptlit.models.KerasCausalLM")
        ex = example["data"] if _is_indexed(example) else example
        if "prompt" not in ex and not ex.get("messages"):
            raise KeyError(f"attention needs a 'prompt' (or 'messages') field; the example has "
                           f"{sorted(ex)}")
        if response is None:
            if target == "response":
                response = self._predict_one(model, ex, progress)["response"]
            elif target == "target":
                response = ex.get("target")
                if not response:
                    raise ValueError("target='target' needs an example with a non-empty 'target' "
                                     "field; use target='response' to explain the generation")
            else:
                raise ValueError(f"target must be 'response' or 'target', got {target!r}")
        mcfg = m.config_hash if isinstance(m, CachingModelWrapper) else caching.config_hash(
            model_config(m))
        prompt: Any = ex.get("prompt")
        kwargs: dict[str, Any] = {}
        if "chat_template" in _parameters(attention_fn):
            from promptlit.models.chat import example_prompt

            prompt = example_prompt(ex)
            if ex.get("chat_template") is not None:
                kwargs["chat_template"] = ex["chat_template"]
        if span is not None:
            kwargs["span"] = (int(span[0]), int(span[1]))
        key = caching.cache_key("attention", f"v{SALIENCE_KEY_VERSION}", model, mcfg,
                                example_id({"p": prompt, "r": response}),
                                {str(k): _canonical_value(v) for k, v in kwargs.items()})
        result = self._salience_cache.get(key)
        if result is caching.MISSING:
            if progress is not None:
                progress(0.0, f"{model}: computing attention")
            result = attention_fn(prompt, response, **kwargs)
            self._salience_cache.put(key, result)
        if progress is not None:
            progress(1.0, f"{model}: attention ready")
        return result

    def _predict_one(self, model: str, example: JsonDict,
                     progress: ProgressFn | None) -> JsonDict:
        m = self._model(model)
        if isinstance(m, CachingModelWrapper):
            return m.predict([example], progress=progress)[0]
        return list(m.predict([example]))[0]

    # -- datasets ------------------------------------------------------------------------------
    def add_examples(self, dataset: str, examples: Sequence[JsonDict]) -> list[JsonDict]:
        """Appends new examples to the session copy of a dataset; returns them (as stored).

        Each example is checked against the dataset's spec first; if any is invalid a
        `DataError` lists every problem and nothing is added. Examples already present
        (same content id) are not duplicated. Ids are `promptlit.lib.utils.example_id(ex)`.
        """
        with self._lock:
            ds = self._dataset(dataset)
            new = [copy.deepcopy(ex["data"] if _is_indexed(ex) else ex) for ex in examples]
            problems: list[Problem] = []
            for i, ex in enumerate(new):
                for p in validate_example(ex, ds.spec(), index=i,
                                          source=f"new example #{i} for {dataset}"):
                    if p.severity == "error":
                        problems.append(p)
            if problems:
                raise DataError(problems)
            seen = set(ds.index)
            fresh = []
            for ex in new:
                ex_id = ds.id_of(ex)
                if ex_id not in seen:
                    seen.add(ex_id)
                    fresh.append(ex)
            if fresh:
                self.datasets[dataset] = ds.add(fresh, meta={"added": True})
            return new

    def save_examples(self, dataset: str, path: str | Path,
                      examples: Sequence[JsonDict] | None = None) -> Path:
        """Writes examples (default: the whole session dataset) to JSONL, atomically.

        The spec goes to `<path>.spec`; `pl.data.load("name:<path>")` reads both back.
        """
        ds = self._dataset(dataset)
        rows = list(ds.examples) if examples is None else [
            ex["data"] if _is_indexed(ex) else ex for ex in examples]
        return Dataset(rows, spec=ds.spec(), description=ds.description()).save(path)

    def load_dataset(self, name: str, path: str | None = None, *,
                     on_error: str = "raise") -> IndexedDataset:
        """Loads a dataset (a built-in name, or a file) under `name`; replaces a same-named one.

        Raises:
          DataError / LoadError: with every problem; loaded datasets are unchanged.
        """
        from promptlit import data  # noqa: PLC0415 - avoid import cycles at module load

        try:
            if path is None:
                loaded = data.load(name, on_error=on_error)  # type: ignore[arg-type]
            else:
                loaded = data.load_path(path, name=name, on_error=on_error)  # type: ignore[arg-type]
        except DataError:
            raise
        except Exception as e:
            raise LoadError(f"could not load dataset {name!r} from {path or name!r}: "
                            f"{type(e).__name__}: {e}") from e
        return self.add_dataset(name, loaded)

    def add_dataset(self, name: str, dataset: Dataset) -> IndexedDataset:
        """Adds (or replaces) the dataset `name` in memory; returns it as stored.

        With a `validate` mode set, the dataset is checked first and a `DataError` lists every
        error; the loaded datasets are then unchanged.
        """
        ds = self._index(name, dataset)
        if self.validate_mode is not None:
            errors = [p for p in validate_dataset(ds, self.validate_mode) if p.severity == "error"]
            if errors:
                raise DataError(errors)
        with self._lock:
            self.datasets[name] = ds
        self._seed_stored([name])
        return ds

    # -- models --------------------------------------------------------------------------------
    def load_model(self, name: str, handle: str) -> Model:
        """Loads a model from `handle` (preset, local dir, `hf://`, ...) under `name`.

        Raises:
          LoadError: why it failed and how to fix it; loaded models are unchanged.
        """
        try:
            model = resolve_model(handle, name)
        except Exception as e:
            raise LoadError(
                f"could not load model {name!r} from {handle!r}: {type(e).__name__}: {e}. "
                "Fix: check the handle (a local preset directory such as presets/tiny_lm, a "
                "keras-hub preset name, or hf://org/model)") from e
        if not isinstance(model, Model):
            raise LoadError(f"loading {handle!r} gave a {type(model).__name__}, not a Model")
        wrapped = self._wrap(name, model)
        with self._lock:
            self.models[name] = wrapped
        self._seed_stored()
        return wrapped

    # -- compatibility -------------------------------------------------------------------------
    def compatible_models(self, dataset: str) -> list[str]:
        """Names of the models that can run on `dataset`."""
        ds = self._dataset(dataset)
        return [n for n, m in self.models.items() if m.is_compatible_with_dataset(ds)]

    def compatible_datasets(self, model: str) -> list[str]:
        """Names of the datasets `model` can run on."""
        m = self._model(model)
        return [n for n, ds in self.datasets.items() if m.is_compatible_with_dataset(ds)]

    def compatible_interpreters(self, model: str, dataset: str) -> list[str]:
        """Names of the components (interpreters, generators, metrics) usable on the pair."""
        m, ds = self._model(model), self._dataset(dataset)
        out = []
        for registry in (self.interpreters, self.generators, self.metrics):
            for name, comp in registry.items():
                try:
                    ok = comp.is_compatible(m, ds)
                except Exception as e:  # noqa: BLE001 - a broken component is just not shown
                    logger.warning("%s.is_compatible failed: %s", name, e)
                    ok = False
                if ok and name not in out:
                    out.append(name)
        return out

    def __repr__(self) -> str:
        return (f"Workbench(models={sorted(self.models)}, datasets={sorted(self.datasets)}, "
                f"interpreters={sorted(self.interpreters)})")


def _parameters(fn: Any) -> Mapping[str, inspect.Parameter]:
    """``fn``'s parameters by name ({} when its signature cannot be read)."""
    try:
        return inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}


def _canonical_value(value: Any) -> Any:
    """``value`` in one spelling for cache keys: tuples and arrays as lists, numpy scalars as
    Python ones, mapping keys as strings (so ``(0, 2)``, ``[0, 2]`` and ``np.array([0, 2])``
    give the same key)."""
    if isinstance(value, Mapping):
        return {str(k): _canonical_value(v) for k, v in value.items()}
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        return _canonical_value(value.tolist())
    if isinstance(value, list | tuple):
        return [_canonical_value(v) for v in value]
    return value


def _salience_settings(params: Mapping[str, inspect.Parameter], methods: Sequence[str],
                       ig_steps: int, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Everything besides model and text that changes what ``model.salience`` returns, canonical.

    The given ``kwargs`` plus the defaults of the model's other optional parameters (so leaving
    an argument out and passing its default are one key, and a changed default is another);
    ``ig_steps`` only when a method takes steps; ``progress`` never (it changes no number).
    """
    settings: dict[str, Any] = {}
    for name, p in params.items():
        if (p.default is not inspect.Parameter.empty and p.kind in (
                inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)):
            settings[name] = p.default
    settings.update(kwargs)
    for name in ("methods", "ig_steps", "progress"):
        settings.pop(name, None)
    methods = sorted(set(methods))
    steps = None if set(methods) <= STEP_FREE_SALIENCE_METHODS else int(ig_steps)
    return {"methods": methods, "ig_steps": steps,
            "kwargs": {str(k): _canonical_value(v) for k, v in settings.items()}}


def _is_indexed(ex: Any) -> bool:
    """Whether `ex` is a LIT indexed example `{"id", "data", ...}` rather than a plain one."""
    return isinstance(ex, Mapping) and "data" in ex and "id" in ex and isinstance(ex["data"],
                                                                                  Mapping)
