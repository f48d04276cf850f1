"""A Table shared by threads, and used on both sides of fork()."""
import os
import struct
import threading
import time

import pytest

import shmkv
from conftest import record, shm_rows

pack = struct.Struct("<Q").pack


def nattch(shmid):
    """Processes attached to segment shmid (None once it is gone)."""
    with open("/proc/sysvipc/shm") as f:
        next(f)
        for line in f:
            cols = line.split()
            if int(cols[1]) == shmid:
                return int(cols[6])
    return None


def run_threads(*fns, timeout=60):
    errors = []

    def wrap(fn):
        def run():
            try:
                fn()
            except BaseException as e:  # reported by the test
                errors.append(e)
        return run
    threads = [threading.Thread(target=wrap(fn)) for fn in fns]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout)
        assert not th.is_alive(), "a thread is stuck"
    return errors


# ---- Threads ------------------------------------------------------------------------

def test_close_while_another_thread_iterates(tables):
    t = tables.create(8, 8, entries=5000)
    t.update((pack(i), pack(i)) for i in range(1, 4001))
    r = shmkv.open(t.stats()["ipc_key"] & 0xFFFFFFFF, "r")
    root = r.shmid
    base = nattch(root)
    walks = []

    def iterate():
        try:
            while True:
                n = sum(1 for k, v in r.items() if k == v)
                walks.append(n)
        except ValueError as e:
            walks.append(str(e))

    started = threading.Event()

    def closer():
        while len(walks) < 3:
            time.sleep(0.001)
        r.close()
        started.set()
    assert run_threads(iterate, closer) == []
    assert "closed" in walks[-1] and all(n == 4000 for n in walks[:-1])
    assert nattch(root) == base - 1  # the handle was detached once free


def test_close_during_a_replace_in_another_thread(tables):
    """close() while another thread is inside replace(): the handle stays
    attached until the replace returns (it commits), then detaches."""
    t = tables.create(8, 8, entries=2000)
    key = t.stats()["ipc_key"] & 0xFFFFFFFF
    w = shmkv.open(key, "w")
    root = w.shmid
    base = nattch(root)
    inside = threading.Event()
    closed = threading.Event()

    def pairs():
        for i in range(1, 1001):
            if i == 500:
                inside.set()
                closed.wait(10)  # releases the GIL: the closer runs
            yield pack(i), b"v"

    def closer():
        inside.wait(10)
        w.close()
        assert w.closed
        closed.set()
    assert run_threads(lambda: w.replace(pairs()), closer) == []
    record(t)
    assert t.generation == 2 and len(t) == 1000
    assert nattch(root) == base - 1


def test_replace_from_two_threads_at_once(tables):
    """The second waits for the first's writer lock (GIL released); both
    commit, one after the other, each whole."""
    t = tables.create(8, 8, entries=4000)
    go = threading.Barrier(2)

    def replace_with(tag):
        def run():
            go.wait()
            t.replace((pack(i), tag) for i in range(1, 3001))
        return run
    assert run_threads(replace_with(b"AAAAAAAA"), replace_with(b"BBBBBBBB")) == []
    record(t)
    values = set(t.values())
    assert t.generation == 3 and len(t) == 3000 and values in ({b"A" * 8}, {b"B" * 8})
    assert [s["role"] for s in t.segments()] == ["root", "current"]


def test_write_from_another_thread_during_replace_lands_after_it(tables):
    t = tables.create(8, 8, entries=2000)
    inside = threading.Event()
    wrote = []

    def pairs():
        for i in range(1, 1001):
            if i == 10:
                inside.set()
                time.sleep(0.05)  # the writer thread now waits for the lock
            yield pack(i), b"r"

    def writer():
        inside.wait(10)
        t[b"late"] = b"w"
        wrote.append(t.generation)
    assert run_threads(lambda: t.replace(pairs()), writer) == []
    record(t)
    assert wrote == [2] and t[b"late"] == b"w" + bytes(7) and len(t) == 1001


# ---- fork ---------------------------------------------------------------------------

def child(fn):
    """Runs fn in a forked child that exits without closing anything."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = fn()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_fork_child_uses_the_table_and_exits_without_closing(tables):
    t = tables.create(8, 8, entries=2000)
    t.update((pack(i), pack(i)) for i in range(1, 1001))
    ids = [s["shmid"] for s in t.segments()]
    base = [nattch(i) for i in ids]

    def use():
        bad = sum(t[pack(i)] != pack(i) for i in range(1, 1001))
        bad += sum(v != pack(i + 1) for i, v in enumerate(t.get_many(map(pack, range(1, 1001)))))
        t[b"child"] = b"1"
        bad += sum(1 for k, v in t.items() if k != v) != 1
        return 0 if bad == 0 and len(t) == 1001 else 2
    for _ in range(3):
        assert child(use) == 0
        assert [nattch(i) for i in ids] == base  # the children's attachments went
        assert t[b"child"] == b"1" + bytes(7) and len(t) == 1001
        del t[b"child"]
    t.replace((pack(i), b"new") for i in range(1, 11))  # the parent writes on
    record(t)
    assert len(t) == 10 and ids[1] not in shm_rows()  # the old generation is freed


def test_fork_child_replaces_through_the_inherited_handle(tables):
    t = tables.create(8, 8, entries=2000)
    t[b"old"] = b"1"
    old = [s["shmid"] for s in t.segments() if s["role"] == "current"][0]

    def replace():
        t.replace([(b"new", b"2")])
        return 0 if t.generation == 2 else 2
    assert child(replace) == 0
    # The parent is idle but still attached to generation 1; its next call
    # moves it to generation 2, which frees the old segment.
    assert t.generation == 2
    assert dict(t.items()) == {b"new" + bytes(5): b"2" + bytes(7)}
    record(t)
    assert old not in shm_rows()
    assert [s["role"] for s in t.segments()] == ["root", "current"]
    assert all(nattch(s["shmid"]) == 1 for s in t.segments())


def test_fork_during_a_load_in_another_thread(tables, tmp_path_file):
    """fork() while another thread is inside shmkv.load(): the child's own
    load() works (before: it waited forever on the loader's lock, which the
    parent's loader thread held and the child has no thread to release)."""
    import signal
    from conftest import unique_key
    fifo = tmp_path_file("fifo")
    os.unlink(fifo)
    os.mkfifo(fifo)
    small = tmp_path_file("small")
    with open(small, "w") as f:
        f.write("a\tb\n")
    k1, k2 = unique_key(), unique_key()
    th = threading.Thread(target=lambda: shmkv.load(k1, fifo))
    th.start()
    w = open(fifo, "w")  # returns once the loader has opened it: mid-load
    try:
        def load_in_child():
            signal.alarm(10)  # a stuck child dies of SIGALRM, failing the test
            shmkv.load(k2, small)
            with shmkv.open(k2) as t:
                ok = t[b"a"] == b"b"
            shmkv.remove(k2)
            return 0 if ok else 2
        assert child(load_in_child) == 0
    finally:
        w.write("x\ty\n")
        w.close()
        th.join(30)
        t = tables.adopt(shmkv.open(k1))  # removed at teardown, pass or fail
    assert t[b"x"] == b"y"
    with pytest.raises(FileNotFoundError):
        shmkv.open(k2)
