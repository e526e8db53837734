"""Tests for promptlit.lib.caching: SqliteCache, ResultCache, keys."""

import dataclasses
import os
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

from promptlit.lib import caching
from promptlit.lib.caching import MISSING, ResultCache, SqliteCache


@dataclasses.dataclass
class Result:
    """An arbitrary object (stored pickled)."""

    scores: np.ndarray
    label: str


def test_json_round_trip_numpy(tmp_path):
    cache = SqliteCache(tmp_path / "c.sqlite3", namespace="m")
    value = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "t": ("x", 1.5), "n": None}
    cache.put("k", value)
    got = cache.get("k")
    assert got["a"].dtype == np.float32 and got["a"].shape == (2, 3)
    np.testing.assert_array_equal(got["a"], value["a"])
    assert got["t"] == ("x", 1.5) and got["n"] is None
    assert cache.get("absent") is MISSING and cache.get("absent", 7) == 7
    assert "k" in cache and "absent" not in cache and len(cache) == 1


def test_pickle_and_auto_fallback(tmp_path):
    auto = SqliteCache(tmp_path / "c.sqlite3", namespace="auto")
    obj = Result(np.ones(2), "x")
    auto.put("r", obj)  # not JSON-able: falls back to pickle
    got = auto.get("r")
    assert isinstance(got, Result) and got.label == "x"
    strict = SqliteCache(tmp_path / "c.sqlite3", namespace="json", codec="json")
    with pytest.raises(TypeError):
        strict.put("r", obj)


def test_namespaces_persistence_and_many(tmp_path):
    path = tmp_path / "sub" / "c.sqlite3"
    a, b = SqliteCache(path, "a"), SqliteCache(path, "b")
    a.put_many({f"k{i}": i for i in range(1200)})  # more than one IN (...) chunk
    b.put("k1", "other")
    reopened = SqliteCache(path, "a")
    got = reopened.get_many([f"k{i}" for i in range(0, 1300, 100)])
    assert got == {f"k{i}": i for i in range(0, 1200, 100)}
    assert b.get("k1") == "other" and len(b) == 1
    reopened.delete("k0")
    assert "k0" not in a and len(a) == 1199
    a.clear()
    assert len(a) == 0 and len(b) == 1


def test_threads_share_file(tmp_path):
    cache = SqliteCache(tmp_path / "c.sqlite3", "t")
    errors = []

    def work(t):
        try:
            for i in range(20):
                cache.put(f"{t}-{i}", [t, i])
                assert cache.get(f"{t}-{i}") == [t, i]
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == [] and len(cache) == 80


def test_memory_sqlite():
    cache = SqliteCache(":memory:", "m")
    cache.put("a", 1)
    assert cache.get("a") == 1 and cache.keys() == ["a"]


def test_result_cache_layers(tmp_path):
    sqlite = SqliteCache(tmp_path / "r.sqlite3", "r", codec="pickle")
    rc = ResultCache(sqlite)
    rc.put_many({"x": Result(np.zeros(1), "x")})
    assert "x" in rc.memory
    fresh = ResultCache(SqliteCache(tmp_path / "r.sqlite3", "r", codec="pickle"))
    assert fresh.get("x").label == "x" and "x" in fresh.memory  # promoted from SQLite
    assert ResultCache().get("nope") is MISSING


def test_keys_and_hashes():
    assert caching.config_hash({"a": 1, "b": [1, 2]}) == caching.config_hash({"b": [1, 2], "a": 1})
    assert caching.config_hash(None) == caching.config_hash({})
    assert caching.config_hash({"a": 1}) != caching.config_hash({"a": 2})
    assert len(caching.config_hash({"a": np.ones(3)})) == 16
    assert caching.cache_key("m", "id", ["g", 2]) == 'm|id|["g",2]'
    assert caching.safe_filename("hf://org/x") == "hf___org_x"
    assert caching.safe_filename("..") == "cache"


# -- start-up checks of a cache directory (check_cache_dir) and clear errors -------------------


def _garbage(path):
    path.write_bytes(b"this is not SQLite, " * 64)
    return path


def test_check_cache_dir_creates_a_missing_directory(tmp_path):
    assert caching.check_cache_dir(tmp_path / "new" / "cache") == []
    assert (tmp_path / "new" / "cache").is_dir()


def test_check_cache_dir_that_is_a_file(tmp_path):
    f = tmp_path / "cache"
    f.write_text("x")
    with pytest.raises(caching.CacheError, match=r"cache directory .*cache is a file, not a "
                                                 r"directory\. Fix: give a directory"):
        caching.check_cache_dir(f)
    with pytest.raises(caching.CacheError, match=r"cache/sub cannot be created: Not a directory"):
        caching.check_cache_dir(f / "sub")


def test_check_cache_dir_read_only(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):  # root writes anyway: use a read-only file system
            ro = next((Path(p) for p in ("/sys/kernel", "/proc/sys") if Path(p).is_dir()
                       and not _writable(Path(p))), None)
            if ro is None:
                pytest.skip("no read-only directory to test with (root, writable /sys)")
        with pytest.raises(caching.CacheError, match=rf"{ro} is not writable: .*Fix: give a "
                                                     "directory you can write"):
            caching.check_cache_dir(ro)
    finally:
        (tmp_path / "ro").chmod(0o755)


def _writable(directory):
    try:
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def test_corrupt_cache_file_is_named_with_the_mv_fix(tmp_path):
    good = SqliteCache(tmp_path / "salience.sqlite3", "s")
    good.put("k", 1)
    good.close()
    bad = _garbage(tmp_path / "tiny.sqlite3")
    with pytest.raises(caching.CacheError) as info:
        caching.check_cache_dir(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{bad}: not a usable SQLite cache file (file is not a database). "
                              f"Fix: move it aside and start afresh: mv {bad} {bad}.corrupt-")
    assert "salience" not in message and info.value.unreadable == [bad]
    # The library class says the same instead of a raw sqlite3.DatabaseError.
    with pytest.raises(caching.CacheError, match=rf"{bad}: not a usable SQLite cache file .*mv "):
        SqliteCache(bad, "tiny")


def test_reset_moves_corrupt_files_aside_and_starts_afresh(tmp_path):
    bad = _garbage(tmp_path / "tiny.sqlite3")
    (tmp_path / "tiny.sqlite3-wal").write_bytes(b"junk")
    moved = caching.check_cache_dir(tmp_path, reset=True)
    assert [old for old, _ in moved] == [bad]
    aside = moved[0][1]
    assert aside.name.startswith("tiny.sqlite3.corrupt-") and aside.read_bytes().startswith(b"this")
    assert not bad.exists() and not (tmp_path / "tiny.sqlite3-wal").exists()
    assert Path(f"{aside}-wal").read_bytes() == b"junk"
    cache = SqliteCache(bad, "tiny")  # a fresh file where the broken one was
    cache.put("k", 2)
    assert cache.get("k") == 2 and caching.check_cache_dir(tmp_path) == []
