"""Fixtures of the shmkv Python tests: unique keys, and tables that are
removed, segment by segment, even when a test fails.

Every segment a test creates is recorded by id (Table.segments(): the root
and its data segments); a table is removed with Table.unlink() (every
segment of it), and at the end of the session no recorded id may still be
in /proc/sysvipc/shm.  Other programs' segments are never touched.
"""
import gc
import itertools
import os
import tempfile

import pytest

import shmkv

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(REPO, os.environ.get("SHMKV_BUILD", "build"))

_counter = itertools.count()
_created_ids = set()


def shm_rows():
    """{shmid: key} of every segment on the host (/proc/sysvipc/shm)."""
    rows = {}
    with open("/proc/sysvipc/shm") as f:
        next(f)
        for line in f:
            cols = line.split()
            rows[int(cols[1])] = int(cols[0]) & 0xFFFFFFFF
    return rows


def unique_key():
    """A numeric IPC key no segment uses, chosen as tests/testutil.h does:
    a prefix of our own (0x5f), the pid and a counter."""
    pid = os.getpid()
    while True:
        c = next(_counter)
        k = (0x5F000000 | (pid & 0xFFFF) << 8 | (c & 0xFF)) ^ ((c >> 8) << 24)
        k &= 0xFFFFFFFF
        if k and k not in shm_rows().values():
            return k


def record(table):
    """Records the ids of every segment of table (call after replace/grow too)."""
    for seg in table.segments():
        _created_ids.add(seg["shmid"])


def remove_table(key, root_id):
    """Removes the table at key if its root is still the segment we made."""
    if shm_rows().get(root_id) != key:
        return
    try:
        t = shmkv.open(key, "w")
    except FileNotFoundError:
        return
    try:
        if t.shmid == root_id:
            record(t)
            t.unlink()
    finally:
        t.close()


class Tables:
    """Makes tables under unique keys; removes all of them at teardown."""

    def __init__(self):
        self.made = []  # (key, root shmid)
        self.handles = []

    def create(self, key_size, value_size, entries=1000, **kw):
        key = unique_key()
        t = shmkv.open(key, "c", key_size=key_size, value_size=value_size,
                       entries=entries, **kw)
        self.adopt(t)
        return t

    def adopt(self, t):
        """Registers a table made elsewhere (shmkv-load, shmkv.load)."""
        record(t)
        key = t.stats()["ipc_key"] & 0xFFFFFFFF
        self.made.append((key, t.shmid))
        self.handles.append(t)
        return t

    def remove_all(self):
        for key, root in self.made:
            remove_table(key, root)
        # Detach too: a removed segment stays listed while we are attached.
        for t in self.handles:
            t.close()


@pytest.fixture
def tables():
    tb = Tables()
    try:
        yield tb
    finally:
        tb.remove_all()


@pytest.fixture
def tmp_path_file():
    """A fresh file whose ftok key has no segment behind it, and its key."""
    d = tempfile.mkdtemp(prefix="shmkv-py-")
    made = []

    def make(name="table"):
        path = os.path.join(d, "%s%d" % (name, len(made)))
        open(path, "w").close()
        made.append(path)
        return path

    yield make
    for p in made:
        os.unlink(p)
    os.rmdir(d)


def pytest_sessionfinish(session, exitstatus):
    gc.collect()  # handles a test left open detach when collected
    left = sorted(i for i in _created_ids if i in shm_rows())
    if left:
        # Not a silent pass: a leak fails the run.
        session.exitstatus = 1
        print("\nshmkv tests left segments behind (ids): %s" % left)
