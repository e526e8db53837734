"""Device meshes and shardings: data and model parallel salience and generation (JAX only).

promptlit scales out through JAX's own sharding, not a scheduler of its own. A *mesh* arranges the
devices as a `data x model` grid (`jax.sharding.Mesh` with the axes ``("data", "model")``):

* **model parallel** (the ``model`` axis): each weight is split across the devices of a row with
  the model family's keras-hub layout map (`Backbone.get_layout_map`: attention heads, the
  feed-forward width and the vocabulary on ``model``; the hidden width on ``data``, as the Gemma
  team trained). Every device stores only its shard (`NamedSharding` on the keras variables, so
  `lm_forward`'s params pytree is sharded the same way); the salience kernels and keras-hub's
  generate run under `jax.jit` with those shardings and XLA's SPMD partitioner inserts the
  collectives. A weight split over ``model`` is never gathered whole (the compiled kernels only
  gather over ``data``, to the model shard: FSDP-style; with ``model=1`` that is the whole
  weight of the layer being computed).
* **data parallel** (the ``data`` axis): batched work is split over it: the target chunks of the
  salience matrix, the Integrated Gradients alpha batches, the prompts of a generation batch and
  a batch of examples (`shard_batch`).

`--mesh data=D,model=M` (`parse_mesh`) picks the grid over this process's devices; without it
every local device sits on the data axis (`MeshSpec()`), and a mesh of one device is no mesh at
all (`as_mesh` returns None: the single-device code path, bit for bit).

Example:
    >>> mesh = as_mesh("data=2,model=4")  # doctest: +SKIP  (needs 8 devices)
    >>> lm = KerasCausalLM.from_preset("presets/tiny_lm", mesh=mesh)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

DATA = "data"
MODEL = "model"
AXES: tuple[str, str] = (DATA, MODEL)
_DEVICES_HINT = "(CUDA_VISIBLE_DEVICES or JAX_PLATFORMS choose which devices JAX sees)"


class MeshError(ValueError):
    """A mesh that cannot be built or cannot hold the model: says what, where and how to fix."""


@dataclasses.dataclass(frozen=True)
class MeshSpec:
    """A `data x model` device grid, before it meets the devices.

    Attributes:
        data: devices on the data axis; None: all the devices the model axis leaves.
        model: devices each weight is split across (1: no model parallelism).
    """

    data: int | None = None
    model: int = 1

    def __str__(self) -> str:
        return ",".join([*([f"data={self.data}"] if self.data is not None else []),
                         f"model={self.model}"])


def parse_mesh(text: str | MeshSpec | None, *, where: str = "--mesh") -> MeshSpec:
    """Reads ``"data=D,model=M"`` (either part optional; ``""`` / ``"auto"``: the default).

    >>> parse_mesh("data=2,model=4")
    MeshSpec(data=2, model=4)
    >>> parse_mesh("model=2")
    MeshSpec(data=None, model=2)

    Raises:
        MeshError: an unknown axis, a repeated axis, or a size that is not a positive integer,
            with the text and an example of a good value.
    """
    if isinstance(text, MeshSpec):
        return text
    if text is None or text.strip().lower() in ("", "auto"):
        return MeshSpec()
    sizes: dict[str, int] = {}
    for part in text.split(","):
        name, eq, value = (s.strip() for s in part.partition("="))
        if not eq or not name:
            raise MeshError(f"{where} {text!r}: {part.strip()!r} is not AXIS=SIZE. Fix: write "
                            "it as data=D,model=M, e.g. --mesh data=2,model=4.")
        if name not in AXES:
            raise MeshError(f"{where} {text!r}: unknown axis {name!r}; the axes are 'data' "
                            "(examples, target chunks, IG steps) and 'model' (weights). Fix: "
                            "e.g. --mesh data=2,model=4.")
        if name in sizes:
            raise MeshError(f"{where} {text!r}: axis {name!r} is given twice. Fix: give each "
                            "axis once, e.g. --mesh data=2,model=4.")
        if not re.fullmatch(r"[0-9]+", value) or int(value) < 1:
            raise MeshError(f"{where} {text!r}: {name}={value!r} is not a positive integer. "
                            "Fix: e.g. --mesh data=2,model=4.")
        sizes[name] = int(value)
    return MeshSpec(data=sizes.get(DATA), model=sizes.get(MODEL, 1))


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def make_mesh(spec: str | MeshSpec | None = None, devices: Sequence[Any] | None = None, *,
              where: str = "--mesh") -> Any:
    """The `jax.sharding.Mesh` of `spec` over `devices` (default: `jax.local_devices()`, this
    process's devices: with several processes (`promptlit explain --num-processes`) each
    process works on its own share of the data with its own mesh), axes ``("data", "model")``.
    A grid smaller than the devices (data x model dividing their count) uses the first ones:
    ``data=1`` is one device, the single-device path.

    Raises:
        MeshError: the model axis or data x model does not divide the device count (naming the
            platform, the count and sizes that work).
    """
    import jax
    import numpy as np

    spec = parse_mesh(spec, where=where)
    devs = list(jax.local_devices() if devices is None else devices)
    n = len(devs)
    kind = f"{n} {devs[0].platform if devs else '?'} device{'s' if n != 1 else ''}"
    if n % spec.model:
        raise MeshError(f"{where} {spec}: model={spec.model} does not divide the {kind}. Fix: "
                        f"model must be one of {_divisors(n)} here.")
    data = spec.data if spec.data is not None else n // spec.model
    used = data * spec.model
    if n % used:
        fits = _divisors(n // spec.model)
        raise MeshError(f"{where} {spec}: data={data} x model={spec.model} = {used} devices, "
                        f"which does not divide the {kind}. Fix: --mesh "
                        f"data={n // spec.model},model={spec.model} for all of them, data among "
                        f"{fits} for a part, or leave data out {_DEVICES_HINT}.")
    if used < n:
        logger.info("%s %s: using %d of the %s", where, spec, used, kind)
    return jax.sharding.Mesh(np.array(devs[:used], dtype=object).reshape(data, spec.model), AXES)


def as_mesh(mesh: Any, *, where: str = "mesh") -> Any:
    """A mesh argument as a `jax.sharding.Mesh`, or None for no mesh (one device).

    Accepts None (no mesh), a `MeshSpec`, a ``"data=D,model=M"`` string or a
    `jax.sharding.Mesh` with the axes ``data`` and ``model``. A mesh of a single device is
    returned as None, so single-device work takes exactly the unsharded path.
    """
    import jax

    if mesh is None:
        return None
    if isinstance(mesh, str | MeshSpec):
        mesh = make_mesh(mesh, where=where)
    if not isinstance(mesh, jax.sharding.Mesh):
        raise MeshError(f"{where}: expected a jax.sharding.Mesh, a 'data=D,model=M' string or a "
                        f"MeshSpec, got {type(mesh).__name__}.")
    if tuple(mesh.axis_names) != AXES:
        raise MeshError(f"{where}: the mesh's axes are {tuple(mesh.axis_names)}; promptlit needs "
                        f"exactly {AXES}. Fix: build it with promptlit.distributed.make_mesh.")
    return None if mesh.size == 1 else mesh


def axis_size(mesh: Any, axis: str) -> int:
    """Devices on `axis` of `mesh` (1 for no mesh)."""
    return 1 if mesh is None else int(mesh.shape[axis])


def describe(mesh: Any) -> str:
    """``"data=2,model=4 (8 cpu devices)"``; ``"one device"`` for None."""
    if mesh is None:
        return "one device"
    platform = mesh.devices.flat[0].platform
    return f"data={mesh.shape[DATA]},model={mesh.shape[MODEL]} ({mesh.size} {platform} devices)"


# ----------------------------------------------------------------------------- weights


def _variables(causal_lm: Any) -> list[Any]:
    seen: set[int] = set()
    out = []
    for v in [*causal_lm.weights, *causal_lm.backbone.weights]:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def _keras_layout_map(backbone_cls: type, mesh: Any) -> Any:
    """The family's keras-hub `LayoutMap` on `mesh`'s axes, or None when it has none."""
    get = getattr(backbone_cls, "get_layout_map", None)
    if get is None:
        return None
    import keras

    device_mesh = keras.distribution.DeviceMesh(
        shape=tuple(mesh.devices.shape), axis_names=list(AXES), devices=mesh.devices)
    return get(device_mesh, model_parallel_dim_name=MODEL, data_parallel_dim_name=DATA)


def _families_with_layout_maps() -> str:
    return "Gemma / Gemma 2, Llama / Llama 3, Qwen (keras-hub's get_layout_map)"


def check_model_axis(backbone: Any, mesh: Any, *, where: str = "mesh") -> None:
    """Raises `MeshError` when `mesh`'s model axis cannot split `backbone` (a keras-hub backbone
    instance or class with its config): no layout map for the family, or a model axis that does
    not divide the query heads."""
    model = axis_size(mesh, MODEL)
    if model == 1:
        return
    cls = backbone if isinstance(backbone, type) else type(backbone)
    name = cls.__name__
    if getattr(cls, "get_layout_map", None) is None:
        raise MeshError(f"{where} {describe(mesh)}: {name} has no keras-hub layout map, so its "
                        f"weights cannot be split over the model axis (model parallel works for "
                        f"{_families_with_layout_maps()}). Fix: use model=1 (data parallel "
                        "only), e.g. --mesh model=1.")
    heads = getattr(backbone, "num_query_heads", None)
    if isinstance(heads, int) and heads % model:
        fits = [d for d in _divisors(heads) if mesh.size % d == 0]
        raise MeshError(f"{where} {describe(mesh)}: model={model} does not divide the "
                        f"{heads} attention heads of {name}; each device must hold whole "
                        f"heads. Fix: model must be one of {fits} for this model.")


def weight_specs(causal_lm: Any, mesh: Any, *, where: str = "mesh") -> dict[str, Any]:
    """`{variable.path: jax.sharding.PartitionSpec}` for every weight of `causal_lm` on `mesh`.

    From the family's keras-hub layout map (`get_layout_map`); a variable it does not name is
    replicated. A dimension its axis does not divide (e.g. one key/value head of a
    multi-query-attention model on 4 model devices, or a vocabulary that is not a multiple of
    the axis) is replicated along that axis instead (logged at INFO): still correct, only less
    memory saved. Families without a layout map get replicated weights (data parallel only).

    Raises:
        MeshError: from `check_model_axis`.
    """
    backbone = causal_lm.backbone
    check_model_axis(backbone, mesh, where=where)
    layout_map = _keras_layout_map(type(backbone), mesh)
    return {v.path: _spec(v.path, tuple(int(s) for s in v.shape), layout_map, mesh)
            for v in _variables(causal_lm)}


def _spec(path: str, shape: tuple[int, ...], layout_map: Any, mesh: Any) -> Any:
    """The `PartitionSpec` of one variable: its layout-map axes, minus those that do not divide
    its dimension (logged)."""
    from jax.sharding import PartitionSpec

    axes: list[Any] = [None] * len(shape)
    layout = layout_map[path] if layout_map is not None else None
    if layout is not None and len(layout.axes) == len(shape):
        for d, axis in enumerate(layout.axes):
            size = axis_size(mesh, axis) if axis is not None else 1
            if axis is None or size == 1:
                continue
            if shape[d] % size:
                logger.info("%s %s: dimension %d (%d) is not a multiple of %s=%d; "
                            "replicated along it", path, shape, d, shape[d], axis, size)
                continue
            axes[d] = axis
    return PartitionSpec(*axes)


def shard_causal_lm(causal_lm: Any, mesh: Any, *, where: str = "mesh") -> dict[str, Any]:
    """Places every weight of `causal_lm` on `mesh` with `weight_specs`, in place.

    Each keras variable's value becomes a `jax.Array` with a `NamedSharding` (a no-op for
    variables already placed so, e.g. loaded under `loading_scope`), and the variable keeps that
    layout for later assignments. Returns `{path: NamedSharding}`. With `mesh` None, nothing.
    """
    import jax
    from jax.sharding import NamedSharding

    mesh = as_mesh(mesh, where=where)
    if mesh is None:
        return {}
    specs = weight_specs(causal_lm, mesh, where=where)
    placed: dict[str, Any] = {}
    for v in _variables(causal_lm):
        sharding = NamedSharding(mesh, specs[v.path])
        placed[v.path] = sharding
        v._layout = sharding  # keras' jax Variable: later assign() calls keep this placement
        value = getattr(v, "_value", None)
        if value is None:
            continue
        if not (isinstance(value, jax.Array)
                and value.sharding.is_equivalent_to(sharding, value.ndim)):
            v._value = jax.device_put(value, sharding)
    return placed


def loading_scope(backbone_cls: type | None, mesh: Any, *, where: str = "mesh") -> Any:
    """A context manager under which keras-hub creates (and loads) weights already sharded for
    `mesh` (a `keras.distribution.ModelParallel` whose layouts are `weight_specs`'), so no
    device ever stores the whole model; a no-op context without a mesh or a known backbone
    class. (`promptlit.models.presets` writes each weight of a local single-file preset
    straight into the layouts of the active distribution.)"""
    import contextlib

    mesh = as_mesh(mesh, where=where)
    if mesh is None or backbone_cls is None:
        return contextlib.nullcontext()
    check_model_axis(backbone_cls, mesh, where=where)
    layout_map = _keras_layout_map(backbone_cls, mesh)
    if layout_map is None:
        return contextlib.nullcontext()  # replicated weights: placed after loading
    import keras

    class _Layouts(keras.distribution.ModelParallel):  # keras is untyped (Any)
        def get_variable_layout(self, variable: Any) -> Any:
            if getattr(variable, "_layout", None) is not None:
                return variable._layout
            spec = _spec(variable.path, tuple(int(s) for s in variable.shape), layout_map,
                         mesh)
            return keras.distribution.TensorLayout(tuple(spec), self.device_mesh)

    return _Layouts(layout_map=layout_map, batch_dim_name=DATA).scope()


def preset_backbone_class(directory: Any) -> type | None:
    """The backbone class a local keras-hub preset directory's config.json names, or None."""
    import json
    from pathlib import Path

    try:
        config = json.loads((Path(directory) / "config.json").read_text("utf-8"))
        import keras

        cls = keras.saving.get_registered_object(config["registered_name"])
    except Exception:  # noqa: BLE001 - not a keras-hub preset: shard after loading instead
        return None
    return cls if isinstance(cls, type) else None


# ----------------------------------------------------------------------------- examples


def data_sharding(mesh: Any, ndim: int) -> Any:
    """`NamedSharding` splitting axis 0 of an `ndim`-D array over the data axis."""
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(mesh, PartitionSpec(DATA, *([None] * (ndim - 1))))


def padded_batch(n: int, mesh: Any) -> int:
    """The smallest batch >= n that the data axis divides (n for no mesh)."""
    d = axis_size(mesh, DATA)
    return -(-n // d) * d


def shard_batch(x: Any, mesh: Any) -> Any:
    """Places a batch `x <…>[B, ...]` with B split over the data axis (B must be a multiple of
    it: `padded_batch`); unchanged without a mesh."""
    import jax

    if mesh is None:
        return x
    if x.shape[0] % axis_size(mesh, DATA):
        raise MeshError(f"shard_batch: a batch of {x.shape[0]} does not split over "
                        f"data={axis_size(mesh, DATA)}; pad it to padded_batch() rows.")
    return jax.device_put(x, data_sharding(mesh, x.ndim))


def constrain_batch(x: Any, mesh: Any) -> Any:
    """Inside `jit`: asks XLA to split axis 0 of `x` over the data axis (when it divides it);
    unchanged without a mesh or a data axis."""
    import jax

    d = axis_size(mesh, DATA)
    if d == 1 or x.shape[0] % d:
        return x
    return jax.lax.with_sharding_constraint(x, data_sharding(mesh, x.ndim))


def round_to_data(width: int, mesh: Any) -> int:
    """`width` rounded up to a multiple of the data axis, so a batch of that width splits evenly
    (`width` itself without a mesh)."""
    return padded_batch(max(1, int(width)), mesh)


# ----------------------------------------------------------------------------- command line


def add_mesh_argument(parser: Any) -> None:
    """Adds ``--mesh data=D,model=M`` to an argparse parser (value: a `MeshSpec`, default
    ``MeshSpec()``: every device on the data axis)."""
    import argparse

    def _arg(text: str) -> MeshSpec:
        try:
            return parse_mesh(text)
        except MeshError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parser.add_argument(
        "--mesh", type=_arg, default=MeshSpec(), metavar="data=D,model=M",
        help="device mesh: split batches over D devices and each model's weights over M "
             "(keras-hub layout maps); default: every device on the data axis")
