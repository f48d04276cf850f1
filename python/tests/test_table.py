"""Every Table method on several widths, the padding rules, the errors."""
import collections.abc
import os
import random

import pytest

import shmkv
from conftest import record, shm_rows

WIDTHS = [(8, 8), (3, 5), (16, 64), (8, 0)]


def rand_key(rng, ks):
    """A full-width random key that is neither sentinel (all 00, all ff)."""
    while True:
        k = bytes(rng.randrange(256) for _ in range(ks))
        if k != bytes(ks) and k != b"\xff" * ks:
            return k


def rand_data(rng, ks, vs, n):
    data = {}
    while len(data) < n:
        data[rand_key(rng, ks)] = bytes(rng.randrange(256) for _ in range(vs))
    return data


@pytest.mark.parametrize("ks,vs", WIDTHS, ids=lambda w: str(w))
def test_every_method(tables, ks, vs):
    rng = random.Random(ks * 1000 + vs)
    n = 200
    data = rand_data(rng, ks, vs, n)
    t = tables.create(ks, vs, entries=2 * n)
    assert isinstance(t, collections.abc.MutableMapping)
    assert (t.key_size, t.value_size, t.readonly, t.generation) == (ks, vs, False, 1)
    assert len(t) == 0 and list(t) == []
    for k, v in data.items():
        t[k] = v
    assert len(t) == n
    # Any bytes value round trips exactly; keys of every buffer type.
    for k, v in data.items():
        assert t[k] == v
        assert t[bytearray(k)] == v
        assert t[memoryview(k)] == v
        assert k in t
        assert t.get(k) == v
    assert sorted(t) == sorted(data)
    assert sorted(t.keys()) == sorted(data)
    assert dict(t.items()) == data
    assert sorted(t.values()) == sorted(data.values())
    assert t == data  # Mapping.__eq__

    missing = rand_key(rng, ks)
    while missing in data:
        missing = rand_key(rng, ks)
    assert missing not in t and t.get(missing) is None and t.get(missing, 7) == 7
    with pytest.raises(KeyError):
        t[missing]
    with pytest.raises(KeyError):
        del t[missing]

    keys = list(data)[:50] + [missing]
    assert t.get_many(keys) == [data[k] for k in keys[:-1]] + [None]
    assert t.get_many([]) == []
    assert t.get_many(iter(keys[:3])) == [data[k] for k in keys[:3]]

    k0, k1, k2 = list(data)[:3]
    assert t.pop(k0) == data[k0] and k0 not in t
    assert t.pop(k0, b"x") == b"x"
    new = bytes(vs)
    assert t.setdefault(k0, new) == new and t[k0] == new
    assert t.setdefault(k1, new) == data[k1]
    t.update({k0: data[k0]})
    t.update([(k2, data[k2])])
    assert t[k0] == data[k0]
    del t[k1]
    assert k1 not in t and len(t) == n - 1
    t[k1] = data[k1]
    pk, pv = t.popitem()
    assert data[pk] == pv and pk not in t
    t[pk] = pv

    st = t.stats()
    assert st["count"] == n and st["key_size"] == ks and st["value_size"] == vs
    assert st["shmid"] == t.shmid
    assert t.verify() is None

    # replace: atomic, a new generation with exactly the pairs given.
    data2 = rand_data(rng, ks, vs, n // 2)
    t.replace(data2.items())
    record(t)
    assert t.generation == 2 and len(t) == len(data2) and dict(t.items()) == data2
    # an exception from the iterable aborts: nothing changes.
    def bad():
        yield next(iter(data.items()))
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        t.replace(bad())
    assert t.generation == 2 and dict(t.items()) == data2

    t.grow(4 * n)
    record(t)
    assert t.generation == 3 and dict(t.items()) == data2
    assert t.stats()["max_count"] >= 4 * n

    t.clear()
    assert len(t) == 0
    with t as same:
        assert same is t
    assert t.closed
    with pytest.raises(ValueError, match="closed"):
        t[k0]
    t.close()  # twice is fine


def test_key_only_table(tables):
    t = tables.create(4, 0)
    t[b"abcd"] = b""
    assert t[b"abcd"] == b"" and b"abcd" in t and len(t) == 1
    assert t.get_many([b"abcd", b"zzzz"]) == [b"", None]
    with pytest.raises(ValueError, match="value of 1 bytes"):
        t[b"x"] = b"1"


def test_padding_rules(tables):
    t = tables.create(8, 6)
    t[b"ab"] = b"xy"  # short key and value: NUL padded
    assert t[b"ab\0\0\0\0\0\0"] == b"xy\0\0\0\0"
    assert t[b"ab"] == b"xy\0\0\0\0"
    assert list(t) == [b"ab\0\0\0\0\0\0"]
    t["é"] = "ü"  # str is UTF-8: 2 bytes each
    assert t["é".encode()] == "ü".encode() + bytes(4)
    with pytest.raises(ValueError) as e:
        t[b"123456789"]
    assert "9 bytes" in str(e.value) and "8-byte" in str(e.value)
    with pytest.raises(ValueError, match="value of 7 bytes.*6-byte"):
        t[b"k"] = b"1234567"
    with pytest.raises(ValueError):  # b"" pads to the empty sentinel
        t[b""] = b"v"
    with pytest.raises(ValueError):  # the deleted sentinel
        t[b"\xff" * 8] = b"v"
    with pytest.raises(TypeError, match="bytes, bytearray, memoryview or str"):
        t[12] = b"v"

    # text=True: str back, padding removed.
    tt = shmkv.open(t.stats()["ipc_key"] & 0xFFFFFFFF, "r", text=True)
    assert tt["ab"] == "xy" and tt["é"] == "ü"
    assert sorted(tt) == ["ab", "é"]
    assert dict(tt.items()) == {"ab": "xy", "é": "ü"}
    assert tt.get_many(["ab", "nope"]) == ["xy", None]
    tt.close()
    # A value with an inner NUL keeps it; only the trailing padding goes.
    t[b"in"] = b"a\0b"
    tt = shmkv.open(t.stats()["ipc_key"] & 0xFFFFFFFF, "r", text=True)
    assert tt["in"] == "a\0b"
    tt.close()


def test_named_by_path(tables, tmp_path_file):
    path = tmp_path_file()
    t = shmkv.open(path, "c", key_size=8, value_size=8)
    tables.adopt(t)
    t[b"k"] = b"v"
    with shmkv.open(path) as r:
        assert r[b"k"] == b"v\0\0\0\0\0\0\0" and r.readonly
    # mode "c" on an existing table attaches when the widths match...
    with shmkv.open(path, "c", key_size=8, value_size=8) as again:
        assert again[b"k"].startswith(b"v")
    # ...and refuses other widths, naming them.
    with pytest.raises(ValueError, match="width|size"):
        shmkv.open(path, "c", key_size=4, value_size=8)


def test_read_only_refusals(tables):
    t = tables.create(8, 8)
    t[b"k"] = b"v"
    r = shmkv.open(t.stats()["ipc_key"] & 0xFFFFFFFF, "r")
    for action in (lambda: r.__setitem__(b"k", b"w"), lambda: r.__delitem__(b"k"),
                   lambda: r.replace([]), lambda: r.grow(5000), lambda: r.pop(b"k"),
                   lambda: r.update({b"a": b"b"})):
        with pytest.raises(PermissionError) as e:
            action()
        assert e.value.errno == 30  # EROFS
        assert "read-only" in str(e.value)
    assert r[b"k"] == b"v" + bytes(7) and len(r) == 1 and r.generation == 1
    r.close()


def test_errors(tables, tmp_path_file):
    with pytest.raises(FileNotFoundError):
        shmkv.open("/nonexistent/shmkv-table")
    with pytest.raises(FileNotFoundError):
        shmkv.open(tmp_path_file())  # a file, but no table at its key
    with pytest.raises(FileNotFoundError, match="key_size and value_size"):
        shmkv.open(tmp_path_file(), "c")
    with pytest.raises(ValueError, match="mode"):
        shmkv.open(1234, "x")
    with pytest.raises(ValueError):
        shmkv.open(0)

    # TableFullError: a shmkv.Error with the library's message and errno.
    t = tables.create(8, 8, entries=10)
    with pytest.raises(shmkv.TableFullError) as e:
        for i in range(1000):
            t[b"%d" % i] = b"v"
    assert isinstance(e.value, shmkv.Error) and e.value.errno == 12  # ENOMEM
    assert "load limit" in e.value.strerror or "full" in e.value.strerror
    full = len(t)
    t[b"0"] = b"overwrite"[:8]  # overwrites still work
    assert len(t) == full

    # autogrow: the same inserts succeed.
    g = tables.create(8, 8, entries=10, autogrow=True)
    for i in range(100):
        g[b"%d" % i] = b"v"
    record(g)
    assert len(g) == 100 and g.generation > 1

    assert issubclass(shmkv.DeadWriterError, shmkv.Error)
    assert issubclass(shmkv.CorruptError, shmkv.Error)
    assert issubclass(shmkv.Error, OSError)


def test_permission_error_other_user(tables):
    """A 0600 table opened by another user: PermissionError, in a child that
    drops to nobody (we run as root in CI, which bypasses the mode)."""
    if os.getuid() != 0:
        pytest.skip("needs root to switch users")
    t = tables.create(8, 8, perm=0o600)
    key = t.stats()["ipc_key"] & 0xFFFFFFFF
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                shmkv.open(key, "r")
                code = 2
            except PermissionError as e:
                code = 0 if "0600" in str(e) or "mode" in str(e) else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_segments_and_unlink(tables):
    t = tables.create(8, 8)
    ids = [s["shmid"] for s in t.segments()]
    assert [s["role"] for s in t.segments()] == ["root", "current"]
    assert all(i in shm_rows() for i in ids)
    t.unlink()
    t.close()
    assert not any(i in shm_rows() for i in ids)


def test_remove_by_name(tables):
    t = tables.create(8, 8)
    key = t.stats()["ipc_key"] & 0xFFFFFFFF
    ids = [s["shmid"] for s in t.segments()]
    t.close()
    shmkv.remove(key)
    assert not any(i in shm_rows() for i in ids)
    with pytest.raises(FileNotFoundError):
        shmkv.remove(key)


def test_docstrings_and_stubs():
    assert "MutableMapping" in shmkv.Table.__doc__
    assert "batched" in shmkv.Table.get_many.__doc__
    assert shmkv.Table.get_many.__text_signature__ == "($self, keys, /)"
    assert shmkv.open.__doc__ and shmkv.load.__doc__
    stub = os.path.join(os.path.dirname(shmkv.__file__), "__init__.pyi")
    text = open(stub).read()
    for name in ("def get_many", "def replace", "def grow", "def stats", "def verify",
                 "class TableFullError", "def open", "def load"):
        assert name in text
