#!/usr/bin/python3
"""Lookups per second from Python: shmkv against dict, py-lmdb and dbm.

One run, one data set: N entries (default 1M) of random 8-byte keys and
values, held by a shmkv table, a Python dict, an LMDB environment on
/dev/shm (py-lmdb, Debian's python3-lmdb) and a dbm.gnu file on /dev/shm
(dbm.ndbm when python3-gdbm is missing).  Each contender looks up the same
N keys in the same shuffled order, in rounds interleaved with the others'
(the machine is shared: best of R rounds), and every answer is checked
against the dict outside the timed loops.

    make bench-python                       # 1M entries, 5 rounds
    /usr/bin/python3 bench/python.py -n 100000 -r 3

Prints a table of lookups/s and the ratios the README reports:
t[k] against dict (target: within 2x), against lmdb txn.get (target:
at least 3x), and get_many over 1,000 keys against t[k] (at least 3x per key).
The table is made under a unique IPC key and removed on exit, even on error.
"""
import argparse
import os
import random
import shutil
import sys
import tempfile
import time

import shmkv

BATCH = 1000


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def unique_key():
    used = set()
    with open("/proc/sysvipc/shm") as f:
        next(f)
        for line in f:
            used.add(int(line.split()[0]) & 0xFFFFFFFF)
    k = 0x5FB00000 | (os.getpid() & 0xFFFFF)
    while k in used:
        k += 1
    return k


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--entries", type=int, default=1_000_000)
    ap.add_argument("-r", "--rounds", type=int, default=5)
    a = ap.parse_args()
    n = a.entries

    rng = random.Random(1)
    blob = rng.randbytes(16 * n + 1024)
    data = {}
    i = 0
    while len(data) < n:
        k = blob[i:i + 8]
        i += 16
        if k not in (bytes(8), b"\xff" * 8):
            data[k] = blob[i - 8:i]
    lookups = list(data)
    rng.shuffle(lookups)
    batches = [lookups[j:j + BATCH] for j in range(0, n, BATCH)]

    key = unique_key()
    tmp = tempfile.mkdtemp(prefix="shmkv-bench-py-", dir="/dev/shm")
    t = None
    try:
        t = shmkv.open(key, "c", key_size=8, value_size=8, entries=n, max_load=0.8)
        t.replace(data.items())

        contenders = {}
        d = dict(data)

        def run_dict():
            for k in lookups:
                d[k]
        contenders["dict d[k]"] = run_dict

        def run_shmkv():
            for k in lookups:
                t[k]
        contenders["shmkv t[k]"] = run_shmkv

        def run_get_many():
            gm = t.get_many
            for b in batches:
                gm(b)
        contenders["shmkv get_many(1000)"] = run_get_many

        try:
            import lmdb
            env = lmdb.open(os.path.join(tmp, "lmdb"), map_size=max(1 << 26, 64 * n),
                            subdir=True, lock=True, sync=False, metasync=False)
            with env.begin(write=True) as w:
                for k, v in data.items():
                    w.put(k, v)
            txn = env.begin(buffers=False)

            def run_lmdb():
                get = txn.get
                for k in lookups:
                    get(k)
            contenders["py-lmdb txn.get"] = run_lmdb
        except ImportError:
            print("py-lmdb missing (Debian: apt-get install python3-lmdb): row left out")
            txn = None

        try:
            import dbm.gnu as dbmod
            dbname = "dbm.gnu db[k]"
            db = dbmod.open(os.path.join(tmp, "gdbm"), "nf")
        except ImportError:
            import dbm.ndbm as dbmod
            dbname = "dbm.ndbm db[k]"
            db = dbmod.open(os.path.join(tmp, "ndbm"), "n")
        for k, v in data.items():
            db[k] = v

        def run_dbm():
            for k in lookups:
                db[k]
        contenders[dbname] = run_dbm

        # Every answer checked, outside the timed loops.
        assert all(t[k] == v for k, v in data.items()), "shmkv t[k] wrong"
        got = [v for b in batches for v in t.get_many(b)]
        assert got == [data[k] for k in lookups], "shmkv get_many wrong"
        if txn is not None:
            assert all(txn.get(k) == v for k, v in data.items()), "lmdb wrong"
        assert all(db[k] == v for k, v in data.items()), "dbm wrong"
        missing = b"\x01" * 8
        while missing in data:
            missing = bytes([missing[0] + 1]) * 8
        assert missing not in t and t.get_many([missing]) == [None]

        best = {name: float("inf") for name in contenders}
        for _ in range(a.rounds):
            for name, fn in contenders.items():
                best[name] = min(best[name], timed(fn))

        print("shmkv Python binding: %d entries, 8-byte keys and values, %d lookups a "
              "round, best of %d interleaved rounds, interpreter %s %s"
              % (n, n, a.rounds, sys.executable, sys.version.split()[0]))
        print("%-24s %14s %10s" % ("contender", "lookups/s", "ns/lookup"))
        for name, s in best.items():
            print("%-24s %14.0f %10.1f" % (name, n / s, s / n * 1e9))
        sh = best["shmkv t[k]"]
        print()
        print("t[k] / dict time: %.2fx (target: at most 2x)" % (sh / best["dict d[k]"]))
        if "py-lmdb txn.get" in best:
            print("lmdb txn.get / t[k] time: %.2fx (target: at least 3x)"
                  % (best["py-lmdb txn.get"] / sh))
        print("%s / t[k] time: %.2fx" % (dbname, best[dbname] / sh))
        print("t[k] loop / get_many(1000) time per key: %.2fx (target: at least 3x)"
              % (sh / best["shmkv get_many(1000)"]))
        db.close()
    finally:
        if t is not None:
            t.unlink()
            t.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
