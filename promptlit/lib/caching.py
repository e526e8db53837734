"""Persistent caches for predictions, interpretations and salience results.

Two layers, used together by `promptlit.api.model.CachingModelWrapper` and the `Workbench`:

* `SqliteCache`: a thread-safe key/value store in one SQLite file (WAL journal, one connection
  per thread), with namespaces so several models or components can share a file. Values are
  stored either as JSON (via `promptlit.lib.serialize`, which round-trips numpy arrays, tuples
  and LitTypes) or pickled (for arbitrary result objects such as `SequenceSalience`).
* `MemoryCache`-style dicts in front of it, owned by the callers, so a hit costs a dict lookup.

Keys are strings; `cache_key(*parts)` builds one from the parts that decide a result (model name,
`example_id(example)`, a hash of the config). `config_hash(config)` hashes any JSON-able config
canonically (sorted keys), so `{"a": 1, "b": 2}` and `{"b": 2, "a": 1}` give the same key.

Example:
    >>> import tempfile, numpy as np
    >>> cache = SqliteCache(tempfile.mkdtemp() + "/demo.sqlite3", namespace="tiny")
    >>> cache.put("k", {"scores": np.ones(2, np.float32)})
    >>> cache.get("k")["scores"].dtype
    dtype('float32')
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shlex
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from promptlit.lib import serialize

logger = logging.getLogger(__name__)

Codec = Literal["json", "pickle", "auto"]

#: The suffix of the cache files a `Workbench` writes into its ``cache_dir``.
CACHE_SUFFIX = ".sqlite3"


class CacheError(OSError):
    """A cache directory or file that cannot be used; the message names it and the fix.

    Attributes:
      unreadable: the cache files that are not readable SQLite databases (may be moved aside,
        see `check_cache_dir`).
    """

    def __init__(self, message: str, unreadable: Iterable[Path] = ()) -> None:
        super().__init__(message)
        self.unreadable = list(unreadable)

    def __str__(self) -> str:
        return str(self.args[0])


def _why(e: BaseException) -> str:
    return (e.strerror if isinstance(e, OSError) and e.strerror else str(e)) or type(e).__name__


def aside_path(path: str | os.PathLike[str], when: float | None = None) -> Path:
    """Where `check_cache_dir(reset=True)` moves an unreadable cache file:
    ``<name>.corrupt-<YYYYmmdd-HHMMSS>`` beside it."""
    path = Path(path)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if when is None else when))
    return path.with_name(f"{path.name}.corrupt-{stamp}")


def _unreadable(path: Path) -> str | None:
    """Why the SQLite file ``path`` cannot serve as a cache (None: it can)."""
    try:  # read-only: a check must not change the file (a read-write open of a damaged file
        # deletes its -wal companion on close)
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error as e:
        return str(e)
    try:
        conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "cache" in tables:
            conn.execute("SELECT namespace, key, fmt, created FROM cache LIMIT 1").fetchall()
    except sqlite3.Error as e:
        return str(e)
    finally:
        conn.close()
    return None


def check_cache_dir(path: str | os.PathLike[str], *, reset: bool = False,
                    label: str = "cache directory") -> list[tuple[Path, Path]]:
    """Checks, cheaply and before anything expensive runs, that ``path`` can hold the caches.

    ``path`` must be a directory (created when missing) this process can write, and every
    ``*.sqlite3`` file in it a writable, readable SQLite database. With ``reset``, unreadable
    files (and their ``-wal`` / ``-shm`` companions) are moved aside as `aside_path` and the
    caches start afresh; the moves are returned as ``[(old, new), ...]``.

    Raises:
      CacheError: the path is a file, cannot be created or written, or holds unreadable cache
        files (without ``reset``); the message names the path and the fix (an exact ``mv``
        command for a corrupt file).
    """
    directory = Path(path).expanduser()
    where = f"{label} {directory}"
    if directory.exists() and not directory.is_dir():
        raise CacheError(f"{where} is a file, not a directory. Fix: give a directory (it is "
                         "created when missing), or move the file away")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CacheError(f"{where} cannot be created: {_why(e)}. Fix: give a directory you can "
                         "write, or create it first") from None
    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".promptlit-write-test-"):
            pass
    except OSError as e:
        raise CacheError(f"{where} is not writable: {_why(e)}. Fix: give a directory you can "
                         f"write, or make it writable (e.g. chmod u+w {shlex.quote(str(directory))})"
                         ) from None
    files = [p for p in sorted(directory.glob(f"*{CACHE_SUFFIX}")) if p.is_file()]
    for p in files:
        if not os.access(p, os.R_OK | os.W_OK):
            raise CacheError(f"{p}: the cache file is not writable. Fix: chmod u+rw "
                             f"{shlex.quote(str(p))}, or give another {label}")
    bad = {p: why for p in files if (why := _unreadable(p)) is not None}
    if not bad:
        return []
    when = time.time()
    if not reset:
        lines = [f"{p}: not a usable SQLite cache file ({why}). Fix: move it aside and start "
                 f"afresh: mv {shlex.quote(str(p))} {shlex.quote(str(aside_path(p, when)))}"
                 for p, why in bad.items()]
        raise CacheError("\n".join(lines), unreadable=bad)
    moved = []
    for p in bad:
        target = aside_path(p, when)
        for companion in ("-wal", "-shm"):
            extra = p.with_name(p.name + companion)
            if extra.exists():
                extra.replace(target.with_name(target.name + companion))
        p.replace(target)
        moved.append((p, target))
    return moved


class _Missing:
    """Sentinel type for absent keys (None can be a legitimate cached value)."""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


#: Returned by `SqliteCache.get` when a key is absent.
MISSING: Any = _Missing()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cache (
  namespace TEXT NOT NULL,
  key TEXT NOT NULL,
  fmt TEXT NOT NULL,
  value BLOB NOT NULL,
  created REAL NOT NULL,
  PRIMARY KEY (namespace, key)
)
"""

# SQLite limits the number of host parameters in one statement (999 on old builds).
_MAX_PARAMS = 900


def _canonical(obj: Any) -> str:
    """A canonical JSON string for `obj` (sorted keys, numpy encoded) used for hashing."""
    try:
        return json.dumps(serialize.encode(obj), sort_keys=True, separators=(",", ":"))
    except TypeError:
        return repr(obj)


def config_hash(config: Any) -> str:
    """Returns a short stable hash (16 hex chars) of a JSON-able config; `None` and `{}` match."""
    if config is None:
        config = {}
    return hashlib.sha1(_canonical(config).encode("utf-8")).hexdigest()[:16]


def cache_key(*parts: Any) -> str:
    """Joins key parts with '|' (non-string parts are canonical-JSON encoded first)."""
    return "|".join(p if isinstance(p, str) else _canonical(p) for p in parts)


def safe_filename(name: str) -> str:
    """Turns a model/component name into a file name (`hf://org/x` -> `hf___org_x`)."""
    out = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    return out or "cache"


class SqliteCache:
    """A thread-safe, persistent key -> value store in one SQLite file.

    Args:
      path: the SQLite file; parent directories are created. `":memory:"` keeps everything in
        memory (shared by all threads through one locked connection; nothing persists).
      namespace: rows are partitioned by namespace, so one file can serve several models.
      codec: "json" stores values with `promptlit.lib.serialize` (readable, numpy-aware);
        "pickle" pickles them (any Python object); "auto" tries JSON and falls back to pickle.

    Reads and writes from many threads are safe: each thread gets its own connection (WAL mode
    lets readers proceed while one writer commits) and writes are serialized by a lock. A value
    that cannot be decoded any more (e.g. a pickled class that was renamed) counts as a miss.
    """

    def __init__(self, path: str | os.PathLike[str], namespace: str = "default", *,
                 codec: Codec = "auto") -> None:
        self.path = str(path)
        self.namespace = namespace
        self.codec: Codec = codec
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._memory_conn: sqlite3.Connection | None = None
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            with self._write_lock:
                conn = self._conn()
                conn.execute(_SCHEMA)
                conn.commit()
        except (OSError, sqlite3.Error) as e:
            self.close()
            # A damaged file is a plain DatabaseError ("file is not a database", "database disk
            # image is malformed"); OperationalError is about access (read-only, cannot open).
            corrupt = type(e) is sqlite3.DatabaseError
            raise CacheError(self._explain(e, corrupt),
                             unreadable=[Path(self.path)] if corrupt else []) from e

    def _explain(self, e: BaseException, corrupt: bool) -> str:
        """A message for a cache file that cannot be opened: which file, why, and the fix."""
        if corrupt:
            return (f"{self.path}: not a usable SQLite cache file ({e}). Fix: move it aside and "
                    f"start afresh: mv {shlex.quote(self.path)} "
                    f"{shlex.quote(str(aside_path(self.path)))}")
        return (f"{self.path}: cannot open the cache file ({_why(e)}). Fix: make it and its "
                "directory writable, or use another cache directory")

    # -- connections ---------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        """Returns this thread's connection (or the single shared one for ":memory:")."""
        if self.path == ":memory:":
            if self._memory_conn is None:
                self._memory_conn = sqlite3.connect(":memory:", check_same_thread=False)
            return self._memory_conn
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Closes the calling thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        if self._memory_conn is not None:
            self._memory_conn.close()
            self._memory_conn = None

    # -- encoding ------------------------------------------------------------------------------
    def _encode(self, value: Any) -> tuple[str, bytes]:
        if self.codec in ("json", "auto"):
            try:
                return "json", serialize.to_json(value).encode("utf-8")
            except (TypeError, ValueError):
                if self.codec == "json":
                    raise
        return "pickle", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def _decode(fmt: str, blob: bytes) -> Any:
        if fmt == "json":
            return serialize.from_json(bytes(blob).decode("utf-8"))
        if fmt == "pickle":
            return pickle.loads(bytes(blob))  # noqa: S301 - our own cache file
        raise ValueError(f"unknown cache value format {fmt!r}")

    # -- API -----------------------------------------------------------------------------------
    def get(self, key: str, default: Any = MISSING) -> Any:
        """Returns the value stored under `key`, or `default` (`MISSING`) when absent."""
        return self.get_many([key]).get(key, default)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Returns {key: value} for the keys that are present (absent keys are left out)."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, Any] = {}
        lock = self._write_lock if self.path == ":memory:" else _NULL_LOCK
        for i in range(0, len(keys), _MAX_PARAMS):
            chunk = keys[i:i + _MAX_PARAMS]
            marks = ",".join("?" * len(chunk))
            with lock:
                rows = self._conn().execute(
                    f"SELECT key, fmt, value FROM cache WHERE namespace=? AND key IN ({marks})",
                    [self.namespace, *chunk],
                ).fetchall()
            for key, fmt, blob in rows:
                try:
                    out[key] = self._decode(fmt, blob)
                except Exception as e:  # noqa: BLE001 - a stale row is just a miss
                    logger.warning("Ignoring unreadable cache entry %s in %s: %s", key, self.path, e)
        return out

    def put(self, key: str, value: Any) -> None:
        """Stores `value` under `key` (replacing any previous value)."""
        self.put_many({key: value})

    def put_many(self, items: Mapping[str, Any]) -> None:
        """Stores all items in one transaction."""
        if not items:
            return
        now = time.time()
        rows = [(self.namespace, k, *self._encode(v), now) for k, v in items.items()]
        with self._write_lock:
            conn = self._conn()
            with conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO cache (namespace, key, fmt, value, created) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )

    def delete(self, key: str) -> None:
        """Removes `key` if present."""
        with self._write_lock:
            conn = self._conn()
            with conn:
                conn.execute("DELETE FROM cache WHERE namespace=? AND key=?", (self.namespace, key))

    def clear(self) -> None:
        """Removes every row of this namespace."""
        with self._write_lock:
            conn = self._conn()
            with conn:
                conn.execute("DELETE FROM cache WHERE namespace=?", (self.namespace,))

    def keys(self) -> list[str]:
        """All keys of this namespace."""
        with (self._write_lock if self.path == ":memory:" else _NULL_LOCK):
            rows = self._conn().execute(
                "SELECT key FROM cache WHERE namespace=?", (self.namespace,)).fetchall()
        return [r[0] for r in rows]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not MISSING

    def __len__(self) -> int:
        with (self._write_lock if self.path == ":memory:" else _NULL_LOCK):
            (n,) = self._conn().execute(
                "SELECT COUNT(*) FROM cache WHERE namespace=?", (self.namespace,)).fetchone()
        return int(n)

    def __repr__(self) -> str:
        return f"SqliteCache({self.path!r}, namespace={self.namespace!r}, codec={self.codec!r})"


class _NullLock:
    """A context manager that does nothing (file-backed caches read without the write lock)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NULL_LOCK = _NullLock()


class ResultCache:
    """A memory dict in front of an optional `SqliteCache`; what Workbench uses for results.

    `get_many` answers from memory first, then from SQLite (promoting hits into memory);
    `put_many` writes both. With `sqlite=None` it is a plain thread-safe dict.
    """

    def __init__(self, sqlite: SqliteCache | None = None) -> None:
        self.sqlite = sqlite
        self.memory: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Returns {key: value} for the cached keys (memory first, then SQLite)."""
        keys = list(keys)
        with self._lock:
            out = {k: self.memory[k] for k in keys if k in self.memory}
        missing = [k for k in keys if k not in out]
        if missing and self.sqlite is not None:
            found = self.sqlite.get_many(missing)
            with self._lock:
                self.memory.update(found)
            out.update(found)
        return out

    def get(self, key: str, default: Any = MISSING) -> Any:
        """Returns the cached value or `default`."""
        return self.get_many([key]).get(key, default)

    def put_many(self, items: Mapping[str, Any]) -> None:
        """Caches all items in memory and (when configured) SQLite."""
        with self._lock:
            self.memory.update(items)
        if self.sqlite is not None:
            try:
                self.sqlite.put_many(items)
            except Exception as e:  # noqa: BLE001 - persistence is best effort
                logger.warning("Could not persist %d cache entries to %s: %s",
                               len(items), self.sqlite.path, e)

    def put(self, key: str, value: Any) -> None:
        """Caches one item."""
        self.put_many({key: value})

    def __len__(self) -> int:
        return len(self.memory)
