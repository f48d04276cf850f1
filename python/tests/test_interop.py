"""Tables shared with the C tools, with other processes and threads."""
import ctypes
import multiprocessing
import os
import re
import subprocess
import threading
import time

import pytest

import shmkv
from conftest import BUILD, REPO, record, unique_key

CITIES = os.path.join(REPO, "sample", "cities.tsv")


def read_tsv(path):
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            k, v = line.rstrip("\n").split("\t", 1)
            rows[k] = v
    return rows


def tool(*args, check=True):
    return subprocess.run([os.path.join(BUILD, args[0])] + list(args[1:]), check=check,
                          capture_output=True, text=True)


def test_table_loaded_by_shmkv_load(tables):
    key = unique_key()
    tool("shmkv-load", "-q", "0x%x" % key, CITIES)
    t = tables.adopt(shmkv.open(key, "r", text=True))
    rows = read_tsv(CITIES)
    assert len(t) == len(rows)
    for k, v in rows.items():
        assert t[k] == v
    assert dict(t.items()) == rows
    assert t.get_many(list(rows)) == list(rows.values())
    t.close()


def test_table_written_from_python_read_by_shmkv_get(tables):
    t = tables.create(16, 24)
    rows = {"alpha": "one", "beta": "two two", "gamma": "three"}
    for k, v in rows.items():
        t[k] = v
    key = t.stats()["ipc_key"] & 0xFFFFFFFF
    out = tool("shmkv", "get", "--with-keys", "0x%x" % key, *rows).stdout
    assert dict(line.split("\t") for line in out.splitlines()) == rows
    missing = tool("shmkv", "get", "0x%x" % key, "delta", check=False)
    assert missing.returncode == 1


def test_load_in_process(tables, tmp_path_file):
    key = unique_key()
    assert shmkv.load(key, CITIES) is None
    t = tables.adopt(shmkv.open(key, "w", text=True))
    rows = read_tsv(CITIES)
    assert dict(t.items()) == rows
    # --replace through load(): a new generation with the new rows.
    path = tmp_path_file("rows")
    with open(path, "w") as f:
        f.write("Tokyo\tnew\nOslo\tNorway\n")
    shmkv.load(key, path, replace=True)
    record(t)
    assert t.generation == 2 and dict(t.items()) == {"Tokyo": "new", "Oslo": "Norway"}
    # Bad input: ValueError with the loader's line report; nothing written.
    with open(path, "w") as f:
        f.write("Rome\tItaly\nno tab on this line\n")
    with pytest.raises(ValueError, match=r"rows0:2: no TAB"):
        shmkv.load(key, path)
    assert "Rome" not in t and len(t) == 2
    # A key wider than the table's: refused, naming the widths.
    with open(path, "w") as f:
        f.write("%s\tx\n" % ("k" * 40))
    with pytest.raises(ValueError) as e:
        shmkv.load(key, path)
    assert re.search(r"40", str(e.value))
    assert len(t) == 2
    # A new table from a bad file is not left behind.
    key2 = unique_key()
    with pytest.raises(ValueError):
        shmkv.load(key2, path, key_size=4)
    with pytest.raises(FileNotFoundError):
        shmkv.open(key2)
    with pytest.raises(FileNotFoundError):
        shmkv.load(unique_key(), "/nonexistent/input.tsv")
    t.close()


# ---- Processes ---------------------------------------------------------------

def value_of(k):
    return (k * 2654435761 % 2**64).to_bytes(8, "little")


def check_every_key(t, n, q):
    # Runs in a forked child, on the Table its parent opened before fork.
    try:
        bad = sum(t[i.to_bytes(8, "little")] != value_of(i) for i in range(1, n + 1))
        got = t.get_many([i.to_bytes(8, "little") for i in range(1, n + 1)])
        bad += sum(v != value_of(i + 1) for i, v in enumerate(got))
        q.put((os.getpid(), bad, len(t)))
    except Exception as e:  # reported to the parent, which fails the test
        q.put((os.getpid(), repr(e), -1))


def test_four_fork_readers_check_every_key(tables):
    n = 20000
    t = tables.create(8, 8, entries=n)
    t.replace((i.to_bytes(8, "little"), value_of(i)) for i in range(1, n + 1))
    record(t)
    r = shmkv.open(t.stats()["ipc_key"] & 0xFFFFFFFF, "r")
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=check_every_key, args=(r, n, q)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert len({pid for pid, _, _ in results}) == 4
    assert all(bad == 0 and count == n for _, bad, count in results), results
    r.close()


def reader_during_replace(key, n, stop, q):
    # A child that opens by name (as a spawned one would) and reads while
    # the parent replaces: every answer is one generation's whole value.
    t = shmkv.open(key, "r")
    bad = rounds = 0
    gens = set()
    while not stop.is_set() or rounds < 2:
        for i in range(1, n + 1):
            v = t[i.to_bytes(8, "little")]
            g = int.from_bytes(v[:4], "little")
            if int.from_bytes(v[4:], "little") != i:
                bad += 1
            gens.add(g)
        rounds += 1
    q.put((bad, sorted(gens), t.generation, rounds))
    t.close()


def test_replace_while_another_process_reads(tables):
    n = 2000
    t = tables.create(8, 8, entries=n)
    key = t.stats()["ipc_key"] & 0xFFFFFFFF

    def gen(g):
        return ((i.to_bytes(8, "little"), g.to_bytes(4, "little") + i.to_bytes(4, "little"))
                for i in range(1, n + 1))

    t.replace(gen(1))
    record(t)
    ctx = multiprocessing.get_context("fork")
    stop, q = ctx.Event(), ctx.Queue()
    p = ctx.Process(target=reader_during_replace, args=(key, n, stop, q))
    p.start()
    for g in range(2, 12):
        t.replace(gen(g))
        record(t)
        time.sleep(0.01)
    stop.set()
    bad, gens, last_gen, rounds = q.get(timeout=60)
    p.join(30)
    assert p.exitcode == 0
    assert bad == 0 and last_gen == t.generation
    assert gens[-1] == 11  # the reader followed to the last generation
    assert set(gens) <= set(range(1, 12))


def test_pickling_says_to_reopen_by_name(tables):
    import pickle
    t = tables.create(8, 8)
    with pytest.raises(TypeError, match="open the table by name"):
        pickle.dumps(t)


def test_fork_child_writes_through_parents_table(tables):
    t = tables.create(8, 8)
    t[b"before"] = b"1"
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            t[b"child"] = b"2"
            code = 0 if t[b"before"].startswith(b"1") else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert t[b"child"].startswith(b"2")


# ---- Threads -----------------------------------------------------------------

def test_reader_thread_during_writer_thread(tables):
    """One Table shared by a writer thread and a reader thread: values are
    never torn (each is 8 copies of one byte), and the reader sees the writer's
    last value once it is done."""
    t = tables.create(8, 8, entries=100)
    keys = [b"k%d" % i for i in range(50)]
    for k in keys:
        t[k] = bytes([0]) * 8
    done = threading.Event()
    errors = []

    def writer():
        for r in range(1, 200):
            for k in keys:
                t[k] = bytes([r]) * 8
        done.set()

    def reader():
        while not done.is_set():
            for v in t.get_many(keys) + [t[k] for k in keys]:
                if len(set(v)) != 1:
                    errors.append(v)
            for k, v in t.items():
                if len(set(v)) != 1:
                    errors.append(v)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors
    assert all(t[k] == bytes([199]) * 8 for k in keys)


def test_close_while_another_thread_reads(tables):
    t = tables.create(8, 8, entries=5000)
    t.replace((b"%d" % i, b"v") for i in range(1, 4001))
    record(t)
    keys = [b"%d" % i for i in range(1, 4001)]
    results = []

    def reader():
        try:
            while True:
                results.append(len(t.get_many(keys)))
        except ValueError as e:  # closed
            results.append(str(e))

    th = threading.Thread(target=reader)
    th.start()
    time.sleep(0.05)
    t.close()
    th.join(30)
    assert "closed" in results[-1] and all(r == 4000 for r in results[:-1])


def test_write_inside_own_replace_is_refused(tables):
    t = tables.create(8, 8)

    def pairs():
        yield (b"a", b"1")
        t[b"b"] = b"2"  # would wait for the writer lock this thread holds

    with pytest.raises(RuntimeError, match="replace"):
        t.replace(pairs())
    t[b"c"] = b"3"  # the lock was released by the abort
    assert list(t) == [b"c" + bytes(7)]


# ---- Damaged tables: DeadWriterError and CorruptError -------------------------

libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]


def layout():
    """Offsets in a data segment's header, from the layout hashtable.c itself
    prints (tests/fuzz/layout-gen.c, built with the test runner)."""
    path = os.path.join(BUILD, "fuzz", "layout.h")
    if not os.path.exists(path):
        pytest.fail("%s is missing: make %s" % (path, path))
    fields = dict(re.findall(r'\{ "(\w+)", (\d+), \d+ \}', open(path).read()))
    return {k: int(v) for k, v in fields.items()}


def with_data_segment(t, fn):
    shmid = [s["shmid"] for s in t.segments() if s["role"] == "current"][0]
    base = libc.shmat(shmid, None, 0)
    assert base not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
    try:
        fn(base)
    finally:
        libc.shmdt(ctypes.c_void_p(base))


def test_dead_writer_error(tables):
    t = tables.create(8, 8)
    t[b"k"] = b"v"
    lay = layout()

    def make_versions_odd(base):
        off = ctypes.c_uint64.from_address(base + lay["off_stripes"]).value
        n = ctypes.c_uint64.from_address(base + lay["nstripes"]).value
        arr = (ctypes.c_uint32 * n).from_address(base + off)
        for i in range(n):
            arr[i] |= 1  # as a writer killed between its two version bumps

    with_data_segment(t, make_versions_odd)
    r = shmkv.open(t.stats()["ipc_key"] & 0xFFFFFFFF, "r")
    with pytest.raises(shmkv.DeadWriterError) as e:
        r[b"k"]
    assert e.value.errno == shmkv.EDEADWRITER and e.value.strerror
    with pytest.raises(shmkv.DeadWriterError):
        r.get_many([b"k"] * 20)
    # verify on a read-write handle makes the versions even again.
    t.verify()
    assert r[b"k"] == b"v" + bytes(7)
    r.close()


def test_corrupt_error(tables):
    t = tables.create(8, 8)
    t[b"k"] = b"v"
    lay = layout()

    def miscount(base):
        ctypes.c_uint64.from_address(base + lay["count"]).value += 5

    with_data_segment(t, miscount)
    r = shmkv.open(t.stats()["ipc_key"] & 0xFFFFFFFF, "r")
    with pytest.raises(shmkv.CorruptError) as e:
        r.verify()
    assert e.value.errno == shmkv.ECORRUPT and "count" in e.value.strerror
    r.close()


def test_plain_error_for_a_segment_that_is_not_a_table():
    """shmkv.Error (not a subclass) with errno EPROTO and the library's
    message, for a segment at the key that no shmkv program made."""
    from conftest import _created_ids, unique_key as ukey
    libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
    libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    key = ukey()
    IPC_CREAT, IPC_EXCL, IPC_RMID = 0o1000, 0o2000, 0
    shmid = libc.shmget(ctypes.c_int(key - (1 << 32) if key >= 1 << 31 else key).value,
                        4096, IPC_CREAT | IPC_EXCL | 0o600)
    assert shmid >= 0, os.strerror(ctypes.get_errno())
    _created_ids.add(shmid)
    try:
        with pytest.raises(shmkv.Error) as e:
            shmkv.open(key)
        assert type(e.value) is shmkv.Error and e.value.errno == 71  # EPROTO
        assert "not a shmkv table" in e.value.strerror or "magic" in e.value.strerror
    finally:
        assert libc.shmctl(shmid, IPC_RMID, None) == 0
