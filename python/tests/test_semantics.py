"""What a Python user expects of a MutableMapping and of dict, and the
binding's corner cases: each test here pins a decision the README states or
a bug the review found."""
import ctypes
import gc
import itertools
import signal
import struct
import time

import pytest

import shmkv
from conftest import record, unique_key

pack = struct.Struct("<Q").pack


def key_of(t):
    return t.stats()["ipc_key"] & 0xFFFFFFFF


def test_gc_visits_the_type_once(tables):
    """The static base's tp_traverse must not visit the type: the heap
    subclass's traverse already does, and a second visit makes the collector
    count a reference the instance does not hold."""
    t = tables.create(8, 8)
    assert gc.get_referents(t).count(type(t)) == 1


def test_widths_and_perm_past_32_bits_are_refused(tables):
    """Widths and perm were cast to 32 bits: key_size=2**32 + 8 made an
    8-byte table, perm=2**32 a table of mode 000."""
    key = unique_key()
    for kw in ({"key_size": 2**32 + 8, "value_size": 8}, {"key_size": 8, "value_size": 2**32},
               {"key_size": 8, "value_size": 8, "perm": 2**32},
               {"key_size": 8, "value_size": 8, "perm": 2**32 + 0o600}):
        try:
            made = shmkv.open(key, "c", **kw)
        except ValueError as e:
            assert "out of range" in str(e) or "beyond 0o777" in str(e)
            continue
        tables.adopt(made)  # removed at teardown
        pytest.fail("created a table with %r" % kw)
    with pytest.raises(FileNotFoundError):  # nothing was created
        shmkv.open(key)
    with pytest.raises(OverflowError):
        shmkv.open(key, "c", key_size=-1, value_size=8)


def test_eq_repr_bool_hash(tables):
    t = tables.create(8, 4)
    assert not t and len(t) == 0 and t == {}
    t[b"a"] = b"1"
    assert t
    # Keys and values compare at full width: what iteration returns.
    assert t == {b"a" + bytes(7): b"1" + bytes(3)}
    assert t != {b"a": b"1"}
    assert t != {b"a" + bytes(7): b"2" + bytes(3)}
    assert (t == [1]) is False  # not a Mapping: NotImplemented, then identity
    r = repr(t)
    assert r == "<shmkv.Table 0x%08x read-write key_size=8 value_size=4>" % key_of(t)
    with pytest.raises(TypeError, match="unhashable"):
        hash(t)
    t.close()
    assert "closed" in repr(t)
    with pytest.raises(ValueError, match="closed"):
        bool(t)  # len() of a closed table: as every call on it


def test_too_wide_or_wrong_type_keys_raise_in_queries_too(tables):
    """Decision (README): a key wider than the table raises ValueError naming
    both widths, and a key of another type TypeError, from get(), `in` and
    get_many() as from t[k] (dict.get would say "absent"; a key that can
    never be stored is a caller's mistake worth hearing about)."""
    t = tables.create(8, 8)
    t[b"k"] = b"v"
    wide = b"x" * 9
    for query in (lambda: t.get(wide), lambda: t.get(wide, 0), lambda: wide in t,
                  lambda: t.get_many([b"k", wide]), lambda: t.keys() & {wide},
                  lambda: t.pop(wide, None)):
        with pytest.raises(ValueError, match=r"9 bytes.*8-byte.*key_size=8, value_size=8"):
            query()
    for query in (lambda: t.get(5), lambda: 5 in t, lambda: t[5], lambda: t.get_many([5])):
        with pytest.raises(TypeError, match="bytes, bytearray, memoryview or str, not int"):
            query()
    with pytest.raises(TypeError, match="not int"):
        t[5] = b"v"
    with pytest.raises(TypeError, match="value must be .* not int"):
        t[b"k"] = 5


def test_keys_view_set_operations(tables):
    t = tables.create(4, 2)
    for k in (b"aaaa", b"bbbb", b"cccc"):
        t[k] = b"v"
    ks = t.keys()
    assert ks & {b"aaaa", b"zzzz"} == {b"aaaa"}
    assert ks - {b"aaaa"} == {b"bbbb", b"cccc"}
    assert ks | {b"dddd"} == {b"aaaa", b"bbbb", b"cccc", b"dddd"}
    assert ks ^ {b"aaaa", b"dddd"} == {b"bbbb", b"cccc", b"dddd"}
    assert ks == {b"aaaa", b"bbbb", b"cccc"} and ks.isdisjoint({b"zzzz"})
    assert b"aaaa" in ks and (b"aaaa", b"v\0") in t.items() and b"v\0" in t.values()


def test_value_width_rules(tables):
    t = tables.create(4, 6)
    with pytest.raises(ValueError) as e:
        t[b"k"] = b"1234567"
    assert "value of 7 bytes" in str(e.value) and "6-byte values" in str(e.value)
    assert "key_size=4, value_size=6" in str(e.value)
    assert b"k" not in t  # nothing stored
    t[b"k"] = b"12"
    assert t[b"k"] == b"12\0\0\0\0"


def test_setdefault_returns_what_is_stored(tables):
    """dict.setdefault returns d[k]; a short default is stored padded."""
    t = tables.create(8, 4)
    assert t.setdefault(b"k", b"1") == b"1\0\0\0" == t[b"k"]
    assert t.setdefault(b"k", b"2") == b"1\0\0\0"


def test_generation_after_another_process_replaces(tables):
    """t.generation reads the root: it moves when another process replaces,
    with no other call on this handle in between."""
    import subprocess
    import sys
    t = tables.create(8, 8)
    t[b"a"] = b"1"
    key = key_of(t)
    code = ("import shmkv; t = shmkv.open(%d, 'w'); t.replace([(b'b', b'2')]); "
            "t.replace([(b'c', b'3')]); t.close()" % key)
    subprocess.run([sys.executable, "-c", code], check=True)
    assert t.generation == 3
    record(t)
    assert dict(t.items()) == {b"c" + bytes(7): b"3" + bytes(7)}


# ---- replace() -----------------------------------------------------------------

def test_replace_takes_a_mapping(tables):
    """As dict.update: anything with keys() gives its items (a dict's
    iteration alone yields keys, whose bytes would be taken as pairs)."""
    t = tables.create(4, 4)
    t.replace({b"k1": b"v1", b"k2": b"v2"})
    record(t)
    assert dict(t.items()) == {b"k1\0\0": b"v1\0\0", b"k2\0\0": b"v2\0\0"}
    other = tables.create(4, 4)
    other.replace(t)  # a Table is a mapping too
    record(other)
    assert dict(other.items()) == dict(t.items())


def test_replace_sizes_the_new_generation_by_len(tables):
    """As shmkv-load --replace: more pairs than the load limit allows get a
    bigger generation (the pairs' len() is known); an iterator of unknown
    length that overflows raises TableFullError saying what to do."""
    t = tables.create(8, 8, entries=100)
    limit = t.stats()["max_count"]
    pairs = [(pack(i), pack(i)) for i in range(1, 4 * limit)]
    t.replace(pairs)
    record(t)
    assert len(t) == len(pairs) and t.generation == 2
    assert t.stats()["max_count"] >= len(pairs)
    gen = t.generation
    limit = t.stats()["max_count"]
    with pytest.raises(shmkv.TableFullError, match="len\\(pairs\\)") as e:
        t.replace((pack(i), b"v") for i in range(1, 2 * limit))
    assert e.value.errno == 12
    assert t.generation == gen and len(t) == len(pairs)
    assert [s["role"] for s in t.segments()] == ["root", "current"]


@pytest.mark.parametrize("bad, exc", [
    ([(b"a", b"1"), 5], TypeError),                   # not a pair at all
    ([(b"a", b"1"), (b"b",)], ValueError),            # one element
    ([(b"a", b"1"), (b"b", b"2", b"3")], ValueError),  # three
    ([(b"a", b"1"), (7, b"2")], TypeError),           # int key
    ([(b"a", b"1"), (b"b", 7)], TypeError),           # int value
    ([(b"a", b"1"), (b"x" * 9, b"2")], ValueError),   # key too wide
    ([(b"a", b"1"), (b"b", b"x" * 9)], ValueError),   # value too wide
    ([(b"a", b"1"), (b"", b"2")], ValueError),        # the empty sentinel
    ([(b"a", b"1"), (b"\xff" * 8, b"2")], ValueError),  # the deleted sentinel
], ids=["int", "1-tuple", "3-tuple", "int-key", "int-value", "wide-key", "wide-value",
        "empty-key", "deleted-key"])
def test_replace_with_a_bad_pair_changes_nothing(tables, bad, exc):
    t = tables.create(8, 8)
    t[b"old"] = b"1"
    with pytest.raises(exc):
        t.replace(bad)
    assert t.generation == 1 and dict(t.items()) == {b"old" + bytes(5): b"1" + bytes(7)}
    assert [s["role"] for s in t.segments()] == ["root", "current"]  # no pending build
    t[b"new"] = b"2"  # the writer lock was released
    assert len(t) == 2


libc = ctypes.CDLL(None)
libc_raise = getattr(libc, "raise")


def signal_after(pairs_before, n):
    """Pairs written in C (zip, map, chain: no bytecode runs, so Python looks
    at signals only where the extension does) with a SIGINT raised by libc
    after `pairs_before` of them (filter(None, ...) drops raise()'s 0)."""
    kill = filter(None, itertools.starmap(libc_raise, [(signal.SIGINT,)]))
    return itertools.chain(zip(map(pack, range(1, pairs_before + 1)), itertools.repeat(b"v")),
                           kill,
                           zip(map(pack, range(pairs_before + 1, n)), itertools.repeat(b"v")))


def test_sigint_during_a_long_replace_aborts_it(tables):
    """Ctrl-C in the middle of a replace() fed by a C iterable: the build is
    aborted (no new generation, no pending segment) and the writer lock is
    free; before the fix the replace ran to its commit and the interrupt
    came after."""
    n = 200000
    t = tables.create(8, 8, entries=n)
    t[b"old"] = b"1"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        t.replace(signal_after(1000, n))
    assert time.monotonic() - t0 < 5
    record(t)
    assert t.generation == 1 and dict(t.items()) == {b"old" + bytes(5): b"1" + bytes(7)}
    assert [s["role"] for s in t.segments()] == ["root", "current"]
    t[b"new"] = b"2"  # the writer lock is not held
    other = shmkv.open(key_of(t), "w")
    other.replace([(b"x", b"y")])  # nor is any build left to block a replace
    record(other)
    other.close()
    assert t.generation == 2


def test_sigint_during_get_many_leaves_the_table_usable(tables):
    """get_many is not interrupted (no lock to release, nothing half done):
    the KeyboardInterrupt comes when it returns, and the table works on."""
    t = tables.create(8, 8, entries=1000)
    t.update((pack(i), pack(i)) for i in range(1, 501))
    kill = filter(None, itertools.starmap(libc_raise, [(signal.SIGINT,)]))
    keys = itertools.chain(map(pack, range(1, 251)), kill, map(pack, range(251, 501)))
    with pytest.raises(KeyboardInterrupt):
        t.get_many(keys)
    assert t.get_many([pack(i) for i in range(1, 501)]) == [pack(i) for i in range(1, 501)]
    t[b"w"] = b"1"


# ---- Iteration while the table changes ----------------------------------------------

def test_iteration_across_a_replace_raises(tables):
    """Decision (README): a replace or grow during an iteration raises
    RuntimeError at the next chunk, as a dict changed during iteration
    does; the walk would otherwise go on in the new generation and mix the
    two generations' entries."""
    t = tables.create(8, 8, entries=2000)
    t.update((pack(i), b"old") for i in range(1, 1001))
    it = iter(t.items())
    first = [next(it) for _ in range(10)]
    assert all(v.startswith(b"old") for _, v in first)
    t.replace((pack(i), b"new") for i in range(1, 1001))
    record(t)
    with pytest.raises(RuntimeError, match="generation 1, now 2"):
        for _ in it:  # what was copied before the replace may come out first
            pass
    with pytest.raises(StopIteration):
        next(it)  # and then the iterator is finished
    assert all(v.startswith(b"new") for v in t.values())  # a new walk works
    for it in (iter(t), iter(t.values())):  # made before a grow, used after
        t.grow(4000)
        record(t)
        with pytest.raises(RuntimeError, match="iterate again"):
            next(it)


def test_inserting_during_iteration_ends(tables):
    """Inserting a new key per key seen: without autogrow the walk ends (the
    table has so many slots); with autogrow the first grow raises (before,
    each grow gave the walk more slots to go on into)."""
    t = tables.create(8, 8, entries=200)
    t.update((pack(i), b"v") for i in range(1, 51))
    seen = 0
    try:
        for k in t:
            seen += 1
            t[pack(10**6 + seen)] = b"v"
    except shmkv.TableFullError:
        pass
    assert seen <= t.stats()["slots"]
    g = tables.create(8, 8, entries=2000, autogrow=True)
    g.update((pack(i), b"v") for i in range(1, g.stats()["max_count"] - 10))
    with pytest.raises(RuntimeError, match="replaced or grown"):
        for n, k in enumerate(g):
            g[pack(10**6 + n)] = b"v"
            assert n < 100000
    record(g)


def test_deleting_during_iteration_ends_and_keeps_the_rest(tables):
    t = tables.create(8, 8, entries=2000)
    t.update((pack(i), b"v") for i in range(1, 1001))
    odd = 0
    for k in t:
        if struct.unpack("<Q", k)[0] % 2:
            del t[k]
            odd += 1
    assert odd <= 500 and len(t) == 1000 - odd
    # Deletes may move keys back along their probe paths (and the walk then
    # miss one), but every key not deleted is still there.
    assert all(k in t for k in map(pack, range(2, 1001, 2)))


# ---- Closed tables -------------------------------------------------------------------

def test_get_many_of_a_generator_that_closes_the_table(tables):
    """Reading the keys runs Python code, which may close the table: the
    answer is the usual "closed" ValueError (before: the library's "NULL
    table handle", from a lookup on a detached handle)."""
    t = tables.create(8, 8)
    t[b"a"] = b"1"
    for n in (3, 40, 3000):  # under and over the GIL-release batch size (2048)
        u = shmkv.open(key_of(t), "r")

        def keys():
            for i in range(n):
                if i == n - 1:
                    u.close()
                yield b"a"
        with pytest.raises(ValueError, match="closed shmkv table"):
            u.get_many(keys())


def test_write_through_another_handle_inside_replace_is_refused(tables):
    """A write inside replace()'s iterable, on the same thread, through
    another Table of the same table: RuntimeError at once, the build
    aborted (before: a 2 s wait on the thread's own writer lock, then a
    CorruptError calling the lock damaged)."""
    t = tables.create(8, 8)
    t[b"old"] = b"1"
    other = shmkv.open(key_of(t), "w")
    unrelated = tables.create(8, 8)

    def pairs():
        yield b"a", b"1"
        unrelated[b"x"] = b"1"  # another table: allowed
        other[b"b"] = b"2"
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="inside its own replace"):
        t.replace(pairs())
    assert time.monotonic() - t0 < 1
    assert t.generation == 1 and b"a" not in t and unrelated[b"x"] == b"1" + bytes(7)
    other[b"b"] = b"2"  # after the replace: fine
    other.close()
    assert len(t) == 2


def test_int_names_past_32_bits_name_no_table(tables):
    """remove() and load() cut an int name to 32 bits: remove(2**32 + k)
    removed the table at k.  Now both refuse it, as open() does."""
    t = tables.create(8, 8)
    t[b"k"] = b"v"
    key = key_of(t)
    for wide in (key + 2**32, key - 2**33, 0):
        with pytest.raises(ValueError, match="not a usable key"):
            shmkv.remove(wide)
        with pytest.raises(ValueError, match="not a usable key"):
            shmkv.open(wide)
        with pytest.raises(ValueError, match="not a usable key"):
            shmkv.load(wide, "/dev/null")
    assert t.generation == 1 and t[b"k"] == b"v" + bytes(7)
    with shmkv.open(key) as again:  # still there, by its own key
        assert len(again) == 1


def test_replace_whose_len_closes_the_table(tables):
    """len(pairs) and a mapping's items() run Python code before the build:
    a close() there gives the closed-table ValueError (before: the
    library's "NULL table handle")."""
    t = tables.create(8, 8)
    u = shmkv.open(key_of(t), "w")

    class Closing(dict):
        def __len__(self):
            u.close()
            return 1
    with pytest.raises(ValueError, match="closed shmkv table"):
        u.replace(Closing({b"a": b"1"}))
    assert t.generation == 1
