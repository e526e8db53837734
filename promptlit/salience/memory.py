"""Memory planning for the salience kernels: what a device has, what a kernel needs, and plans.

Two users:

* **The kernels, at run time** (`promptlit.salience.kernels`): when no `chunk_size` /
  `ig_batch_size` is given, a kernel compiles at the widest chunk it would like, reads the
  compiled executable's own buffer sizes (`Compiled.memory_analysis()`: XLA's buffer assignment,
  known before anything runs) and, if that does not fit in `budget_bytes()`, compiles once at
  width 1 and picks the widest chunk whose straight-line estimate between the two fits. An
  out-of-memory error at run time halves the chunk and retries (logged as a warning).
* **`promptlit plan`** (`plan_model`): the same compile-only estimates for a model that is never
  loaded: its keras-hub backbone is built inside a `keras.StatelessScope` (variables stay
  uninitialised: shapes only, no bytes), every weight is a `jax.ShapeDtypeStruct`, and each kernel
  is `jax.jit(...).lower(...).compile()`-d on abstract inputs for its `memory_analysis()`.
  Architectures known by name (`ARCHITECTURES`) work offline.

Numbers are bytes. "Activations" below means what a call allocates on top of the weights it is
given: XLA's temporary buffers plus outputs (`temp + output - alias`); "peak" = weights +
activations.

Example:
    >>> from promptlit.salience import memory
    >>> free, where = memory.available_memory()  # doctest: +SKIP
    >>> plan = memory.plan_model("gemma2_2b_en", length=1024, targets=64,
    ...                          dtype="bfloat16", device_memory=24 * 2**30)  # doctest: +SKIP
    >>> print(memory.format_plans([plan]))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

logger = logging.getLogger(__name__)

GB = 2**30
BUDGET_FRACTION = 0.85
"""Share of the free memory a kernel may plan to use (the rest: fragmentation, other users)."""


# ----------------------------------------------------------------------------- the device


def _host_available() -> int:
    """Bytes of host RAM the OS could give this process now (`MemAvailable`)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 * GB  # unknown: a modest laptop


def available_memory(device: Any = None) -> tuple[int, str]:
    """Free memory of the device kernels run on, and where the number comes from.

    Args:
        device: a `jax.Device` (default: `jax.local_devices()[0]`).

    Returns:
        `(bytes, source)`: from `device.memory_stats()` (`bytes_limit - bytes_in_use`) on
        accelerators that report it, else the host's available RAM (CPU devices report nothing).
    """
    import jax

    device = device if device is not None else jax.local_devices()[0]
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - some backends raise instead of returning None
        stats = None
    if stats and stats.get("bytes_limit"):
        free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
        return max(free, 0), f"{device.platform} memory_stats"
    return _host_available(), "host RAM (MemAvailable)"


def budget_bytes(device: Any = None) -> int:
    """What one kernel call may plan to allocate: `BUDGET_FRACTION` of `available_memory()`."""
    return int(BUDGET_FRACTION * available_memory(device)[0])


def platform(device: Any = None) -> str:
    import jax

    return (device if device is not None else jax.local_devices()[0]).platform


def activation_bytes(compiled: Any) -> int | None:
    """What running `compiled` allocates beyond its arguments: `temp + output - alias` bytes
    (`Compiled.memory_analysis()`), or None where the backend does not say."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend implements it
        return None
    if m is None:
        return None
    return int(m.temp_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes)


def is_out_of_memory(error: BaseException) -> bool:
    """True for XLA's out-of-memory errors (`RESOURCE_EXHAUSTED`, "Out of memory")."""
    text = str(error)
    return isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError)
        and ("RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower())
    )


def parse_size(text: str) -> int:
    """`"24GB"`, `"24 GiB"`, `"512MB"`, `"80g"`, `"1.5T"` -> bytes (powers of 1024).

    Raises:
        ValueError: for anything else, with an example.
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", str(text))
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"not a memory size: {text!r}; write e.g. 24GB, 80GB or 512MB")
    scale = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}[m.group(2).lower()]
    if not m.group(2) and not m.group(3):
        scale = GB  # a bare number is gigabytes
    return int(float(m.group(1)) * scale)
