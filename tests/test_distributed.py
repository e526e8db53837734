"""Device meshes: --mesh parsing, errors, and data + model parallel results on 8 simulated devices.

The mesh checks need 8 devices, which XLA only simulates when
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` is set before jax is imported, so they
run in one subprocess (`tests/mesh_checks.py`) and this file asserts on the numbers it prints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from math import prod
from pathlib import Path

import pytest

from promptlit import cli
from promptlit.distributed import MeshError, MeshSpec, make_mesh, parse_mesh

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5


def test_parse_mesh_reads_both_axes_and_defaults() -> None:
    assert parse_mesh("data=2,model=4") == MeshSpec(2, 4)
    assert parse_mesh(" model = 2 ") == MeshSpec(None, 2)
    assert parse_mesh("data=8") == MeshSpec(8, 1)
    assert parse_mesh(None) == parse_mesh("") == parse_mesh("auto") == MeshSpec()
    assert str(MeshSpec(2, 4)) == "data=2,model=4"


@pytest.mark.parametrize(("text", "says"), [
    ("pipe=2", "unknown axis 'pipe'"),
    ("data=2,data=2", "given twice"),
    ("data=0", "not a positive integer"),
    ("model=two", "not a positive integer"),
    ("data2", "is not AXIS=SIZE"),
])
def test_parse_mesh_errors_say_what_and_how_to_fix(text: str, says: str) -> None:
    with pytest.raises(MeshError, match="Fix:") as e:
        parse_mesh(text)
    assert says in str(e.value) and repr(text) in str(e.value)


def test_make_mesh_errors_name_the_devices_and_sizes_that_work() -> None:
    devices = [types.SimpleNamespace(platform="gpu")] * 8
    with pytest.raises(MeshError) as e:
        make_mesh("model=3", devices)
    assert "model=3 does not divide the 8 gpu devices" in str(e.value)
    assert "[1, 2, 4, 8]" in str(e.value)
    with pytest.raises(MeshError) as e:
        make_mesh("data=4,model=4", devices)
    assert "= 16 devices, which does not divide the 8 gpu devices" in str(e.value)
    assert "--mesh data=2,model=4 for all of them, data among [1, 2]" in str(e.value)


def test_serve_takes_mesh_and_rejects_a_bad_one(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.make_parser()
    args = parser.parse_args(["serve", "--mesh", "data=2,model=4"])
    assert cli.model_options(args)["mesh"] == MeshSpec(2, 4)
    assert cli.model_options(parser.parse_args(["serve"]))["mesh"] == MeshSpec()
    assert "mesh" not in cli.generation_options(args)
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--mesh", "pipe=2"])
    assert "unknown axis 'pipe'" in capsys.readouterr().err


def test_one_device_is_no_mesh() -> None:
    import jax

    from promptlit.distributed import as_mesh

    if jax.device_count() != 1:
        pytest.skip("this process has several devices")
    assert as_mesh(MeshSpec()) is None and as_mesh("data=1,model=1") is None
    assert as_mesh("data=1") is None  # one of several devices would be the same


@pytest.fixture(scope="module")
def mesh_run() -> dict:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
           "JAX_PLATFORMS": "cpu", "KERAS_BACKEND": "jax"}
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "mesh_checks.py")], env=env,
                          capture_output=True, text=True, timeout=850, cwd=ROOT)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.slow
@pytest.mark.parametrize("mesh", ["2x4", "8x1"])
def test_mesh_results_equal_single_device(mesh_run: dict, mesh: str) -> None:
    run = mesh_run[mesh]
    assert run["errors"] and max(run["errors"].values()) <= TOLERANCE, run["errors"]
    assert run["generate"] == mesh_run["single"]["generate"]


@pytest.mark.slow
@pytest.mark.parametrize(("mesh", "sizes"), [("2x4", {"data": 2, "model": 4}),
                                             ("8x1", {"data": 8, "model": 1})])
def test_each_device_holds_only_its_shard(mesh_run: dict, mesh: str, sizes: dict) -> None:
    run = mesh_run[mesh]
    full = shard = 0
    for path, w in run["sharding"].items():
        assert w["named"] and w["devices"] == 8, (path, w)
        assert w["spec"] == run["expected_specs"][path], path
        expect = [n // (sizes[a] if a else 1) for n, a in zip(w["shape"], w["spec"], strict=True)]
        assert w["shard_shapes"] == [expect], (path, w)
        full += prod(w["shape"])
        shard += prod(expect)
    split = {p for p, w in run["sharding"].items() if sizes["model"] > 1 and "model" in w["spec"]}
    if sizes["model"] > 1:  # the layout map splits embeddings, attention and MLP over model
        assert {"token_embedding/embeddings", "decoder_block_0/attention/query/kernel",
                "decoder_block_1/ffw_linear/kernel"} <= split
    assert shard < full / 4  # each device: its shards only (the norms' scales are replicated)
    # Model parallel: the compiled kernels never all-gather a whole model-split weight.
    whole = {tuple(run["sharding"][p]["shape"]) for p in split}
    assert not whole & {tuple(s) for s in run["all_gathers"]}


@pytest.mark.slow
def test_a_local_preset_loads_straight_into_its_shards(mesh_run: dict) -> None:
    assert mesh_run["loaded"] == mesh_run["2x4"]["expected_specs"]


@pytest.mark.slow
def test_bad_meshes_fail_with_what_and_how(mesh_run: dict) -> None:
    bad = mesh_run["bad_meshes"]
    assert ("data=3 x model=4 = 12 devices, which does not divide the 8 cpu devices"
            in bad["data=3,model=4"])
    assert "model=3 does not divide the 8 cpu devices" in bad["model=3"]
    assert "unknown axis 'pipe'" in bad["pipe=2"]
    assert "model=8 does not divide the 4 attention heads of GemmaBackbone" in bad[
        "data=1,model=8"]
    assert all("Fix:" in v for v in bad.values()), bad
    assert mesh_run["subset"] == "data=1,model=4 (4 cpu devices)"  # a part of the 8 devices


def test_out_of_memory_retries_stop_at_one_width_per_data_device() -> None:
    from promptlit.salience.kernels import _retry_width

    oom = RuntimeError("RESOURCE_EXHAUSTED: out of memory")
    assert _retry_width("salience_matrix", oom, 16, "targets per chunk", floor=8) == 8
    with pytest.raises(MemoryError, match="even with 8 of the targets per chunk .one per device"):
        _retry_width("salience_matrix", oom, 8, "targets per chunk", floor=8)
