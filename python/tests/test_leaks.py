"""Reference and memory leaks: every kind of call, its error paths included,
run OPS times (200,000 by default; SHMKV_PY_LEAK_OPS sets it, e.g. low under
valgrind, whose leak check is then the test) while the process's resident
size must not grow.  A release build has no sys.gettotalrefcount; a leak
of one small object per call is 200,000 objects here, several MB, against a
limit of 1 MB."""
import gc
import os
import struct

import pytest

import shmkv
from conftest import record

OPS = int(os.environ.get("SHMKV_PY_LEAK_OPS", "200000"))
LIMIT = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")
pack = struct.Struct("<Q").pack


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def no_growth(fn, calls):
    """Runs fn() `calls` times after a warm-up of a tenth as many; returns
    the growth of the resident size."""
    for _ in range(max(1, calls // 10)):
        fn()
    gc.collect()
    before = rss()
    for _ in range(calls):
        fn()
    gc.collect()
    return rss() - before


def raises(exc, fn, *args):
    def call():
        try:
            fn(*args)
        except exc:
            return
        raise AssertionError("%s did not raise %s" % (fn, exc))
    return call


@pytest.fixture
def table(tables):
    t = tables.create(8, 8, entries=4096)
    t.update((pack(i), pack(i)) for i in range(1, 1001))
    return t


def per_key_calls(t):
    """(name, fn, calls): one call each, OPS calls."""
    hit, miss, wide = pack(7), pack(10**9), b"x" * 9
    s, ba, mv = "seven\0\0\0", bytearray(hit), memoryview(hit)
    text = shmkv.open(t.stats()["ipc_key"] & 0xFFFFFFFF, "r", text=True)

    def put_del():
        t[miss] = b"v"
        del t[miss]
    return [
        ("t[k] hit", lambda: t[hit]),
        ("t[k] str/bytearray/memoryview", lambda: (t.get(s), t[ba], t[mv])),
        ("t[k] miss (KeyError)", raises(KeyError, t.__getitem__, miss)),
        ("get hit/miss, in", lambda: (t.get(hit), t.get(miss, 0), miss in t, hit in t)),
        ("too wide (ValueError)", raises(ValueError, t.__getitem__, wide)),
        ("int key (TypeError)", raises(TypeError, t.get, 5)),
        ("t[k] = v", lambda: t.__setitem__(hit, pack(7))),
        ("t[k] = v, buffers", lambda: t.__setitem__(ba, mv)),
        ("value too wide", raises(ValueError, t.__setitem__, hit, b"y" * 9)),
        ("put and del", put_del),
        ("del miss (KeyError)", raises(KeyError, t.__delitem__, miss)),
        ("len, generation, shmid", lambda: (len(t), t.generation, t.shmid)),
        ("text t[k]", raises(UnicodeDecodeError, text.__getitem__, pack(200))),
        ("get_many of 3", lambda: t.get_many([hit, miss, hit])),
        ("get_many, bad key last", raises(TypeError, t.get_many, [hit] * 20 + [5])),
        ("get_many, not iterable", raises(TypeError, t.get_many, 5)),
    ], text


def test_per_key_calls_do_not_leak(table):
    calls, text = per_key_calls(table)
    grown = {name: no_growth(fn, OPS) for name, fn in calls}
    text.close()
    assert all(g < LIMIT for g in grown.values()), grown


def test_batches_iteration_and_replace_do_not_leak(table):
    t = table
    keys = [pack(i) for i in range(1, 1001)]
    pairs = [(k, b"v") for k in keys]
    n = max(1, OPS // 1000)  # calls that each handle 1,000 keys

    def gen_raises():
        yield from pairs[:500]
        raise RuntimeError("boom")

    def abandoned_iteration():
        it = iter(t.items())
        next(it)

    def iteration_across_replace():
        it = iter(t)
        next(it)
        t.replace(pairs)
        try:
            list(it)
        except RuntimeError:
            return
        raise AssertionError("no RuntimeError")

    bad_pair = pairs[:500] + [(b"k", 5)] + pairs[500:]
    calls = [
        ("get_many of 1000", lambda: t.get_many(keys)),
        ("get_many of a generator", lambda: t.get_many(k for k in keys)),
        ("items()", lambda: list(t.items())),
        ("keys() and values()", lambda: (list(t), list(t.values()))),
        ("abandoned iteration", abandoned_iteration),
        ("replace", lambda: t.replace(pairs)),
        ("replace of a dict", lambda: t.replace(dict(pairs))),
        ("replace, iterable raises", raises(RuntimeError, t.replace, gen_raises())),
        ("replace, bad pair", raises(TypeError, t.replace, bad_pair)),
        ("iteration across a replace", iteration_across_replace),
        ("stats", lambda: t.stats()),
        ("segments", lambda: t.segments()),
    ]
    # Reusing gen_raises(): each call needs a fresh generator.
    calls[7] = ("replace, iterable raises", lambda: raises(RuntimeError, t.replace, gen_raises())())
    grown = {}
    for name, fn in calls:
        grown[name] = no_growth(fn, n if "replace" in name or "1000" in name or "()" in name
                                or "generator" in name else OPS // 10)
    record(t)
    assert all(g < LIMIT for g in grown.values()), grown
    assert [s["role"] for s in t.segments()] == ["root", "current"]


def test_open_close_does_not_leak(table):
    key = table.stats()["ipc_key"] & 0xFFFFFFFF

    def open_close():
        with shmkv.open(key) as r:
            r[pack(7)]
    grown = no_growth(open_close, max(1, OPS // 100))
    missing = no_growth(raises(FileNotFoundError, shmkv.open, "/nonexistent/x"), OPS // 10)
    assert grown < LIMIT and missing < LIMIT, (grown, missing)
