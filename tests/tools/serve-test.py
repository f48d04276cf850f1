# The client side of tests/tools/test-serve.sh: Python's redis client
# (Debian python3-redis) and raw sockets against a running shmkv-serve.
# Run with Debian's /usr/bin/python3.  Usage: serve-test.py MODE PORT [ARGS]
# Prints "ok - test-serve: ..." / "not ok - test-serve: ..." lines; exits 1
# if any check failed.
import os
import random
import resource
import select
import socket
import subprocess
import sys
import threading
import time

import redis

FAILED = 0


def check(cond, desc, detail=""):
    global FAILED
    if cond:
        print("ok - test-serve: " + desc)
    else:
        FAILED += 1
        print("not ok - test-serve: " + desc + (" (" + str(detail) + ")" if detail else ""))
    sys.stdout.flush()


def raises(fn, exc, text=""):
    try:
        fn()
    except exc as e:
        return text in str(e)
    except Exception as e:  # the wrong kind of failure
        print("#   raised %r" % e)
        return False
    return False


def dataset(path):
    """The keys and values the table was loaded with (hex tsv)."""
    d = {}
    for line in open(path):
        k, v = line.rstrip("\n").split("\t")
        d[bytes.fromhex(k)] = bytes.fromhex(v)
    return d


def mode_basic(port, data_path, binkeys_path):
    data = dataset(data_path)
    nkeys = len(data) + len(dataset(binkeys_path))
    r = redis.Redis(host="127.0.0.1", port=port)
    keys = list(data)
    k0 = keys[0]
    check(r.ping() is True, "PING answers PONG")
    check(r.echo(b"a\x00b\r\nc") == b"a\x00b\r\nc", "ECHO returns binary bytes unchanged")
    check(r.get(k0) == data[k0], "GET a key")
    check(r.get(b"no-such-key") is None, "GET a missing key answers nil")
    check(r.mget(keys[:50] + [b"missing"]) == [data[k] for k in keys[:50]] + [None],
          "MGET of 50 keys and a missing one, in order")
    many = keys * 3
    check(r.mget(many) == [data[k] for k in many], "MGET of %d keys (batched lookups)" % len(many))
    check(r.exists(k0, keys[1], b"missing") == 2, "EXISTS counts the keys present")
    check(r.strlen(k0) == len(data[k0]), "STRLEN is the (trimmed) value's length")
    check(r.strlen(b"missing") == 0, "STRLEN of a missing key is 0")
    check(r.dbsize() == nkeys, "DBSIZE is the table's count", r.dbsize())
    info = r.info()
    check(info.get("db0", {}).get("keys") == nkeys and info.get("values_trimmed") == "yes",
          "INFO: Redis's layout (db0 keys=N), says values are trimmed", info.get("db0"))
    check("key_size" in r.info("all"), "INFO has the table's widths")
    # SCAN walks every key exactly once (no writer runs)
    seen = []
    cur = 0
    while True:
        cur, ks = r.scan(cur, count=7)
        seen += ks
        if cur == 0:
            break
    allkeys = keys + list(dataset(binkeys_path))
    check(sorted(seen) == sorted(allkeys), "SCAN with COUNT returns every key once",
          (len(seen), len(allkeys)))
    m = list(r.scan_iter(match=b"k1*", count=100))
    check(sorted(m) == sorted(k for k in keys if k.startswith(b"k1")), "SCAN MATCH k1*")
    check(r.execute_command("SELECT", 0) in (b"OK", True, "OK"), "SELECT 0 is OK")
    check(raises(lambda: r.execute_command("SELECT", 1), redis.ResponseError, "out of range"),
          "SELECT 1 is refused")
    check(raises(lambda: r.set(b"a", b"b"), redis.exceptions.ReadOnlyError),
          "SET without --writable answers -READONLY")
    check(raises(lambda: r.delete(k0), redis.exceptions.ReadOnlyError),
          "DEL without --writable answers -READONLY")
    check(raises(lambda: r.mset({b"a": b"b"}), redis.exceptions.ReadOnlyError),
          "MSET without --writable answers -READONLY")
    check(r.get(k0) == data[k0], "a refused write changed nothing")
    check(raises(lambda: r.execute_command("FLUSHALL"), redis.ResponseError, "unknown command"),
          "an unknown command answers -ERR unknown command")
    check(raises(lambda: r.get(b"x" * 17), redis.ResponseError, "key width of 16"),
          "a key longer than the width: -ERR naming the width")
    check(raises(lambda: r.execute_command("GET"), redis.ResponseError, "wrong number"),
          "GET without a key: wrong number of arguments")
    check(r.execute_command("COMMAND COUNT") >= 15, "COMMAND COUNT")
    info = r.execute_command("COMMAND INFO", "get", "nosuch")
    check(len(info) == 2 and info[0][0] == b"get" and info[1] is None, "COMMAND INFO", info)
    hello = r.execute_command("HELLO", "2")
    check(b"proto" in hello and hello[hello.index(b"proto") + 1] == 2, "HELLO 2", hello)
    check(raises(lambda: r.execute_command("HELLO", "3"), redis.ResponseError, "NOPROTO")
          or raises(lambda: r.execute_command("HELLO", "3"), redis.ResponseError, ""),
          "HELLO 3 is refused")
    # binary keys: NUL inside, high bytes, CR LF, blanks
    for k, v in dataset(binkeys_path).items():
        check(r.get(k) == v, "binary key %s" % k.hex())
    # pipelining: many requests in one write, answered in order
    p = r.pipeline(transaction=False)
    for k in keys:
        p.get(k)
        p.get(b"missing")
    p.exists(k0)
    p.dbsize()
    res = p.execute()
    want = []
    for k in keys:
        want += [data[k], None]
    want += [1, nkeys]
    check(res == want, "%d pipelined commands answered in order" % len(want))
    # a pipeline holding an error keeps going
    p = r.pipeline(transaction=False)
    p.get(k0)
    p.execute_command("NOPE")
    p.get(keys[1])
    res = p.execute(raise_on_error=False)
    check(res[0] == data[k0] and isinstance(res[1], redis.ResponseError) and res[2] == data[keys[1]],
          "an error inside a pipeline does not stop it")
    # a request larger than one read (1 MiB of MGET arguments)
    big = [keys[i % len(keys)] for i in range(60000)]
    check(r.mget(big) == [data[k] for k in big], "MGET of 60000 keys (a request of several reads)")


def mode_writable(port):
    r = redis.Redis(host="127.0.0.1", port=port)
    check(r.set(b"w1", b"one") is True and r.get(b"w1") == b"one", "--writable: SET then GET")
    check(r.mset({b"w2": b"two", b"w3": b"three"}) is True and r.mget(b"w2", b"w3") == [b"two", b"three"],
          "--writable: MSET")
    check(r.delete(b"w1", b"w2", b"nope") == 2 and r.get(b"w1") is None, "--writable: DEL counts")
    check(raises(lambda: r.set(b"v", b"x" * 17), redis.ResponseError, "value width of 16"),
          "a value longer than the width: -ERR naming it")
    check(raises(lambda: r.set(b"", b"x"), redis.ResponseError, "sentinel"),
          "the empty key (the empty sentinel) cannot be SET")
    check(raises(lambda: r.set(b"a", b"b", ex=10), redis.ResponseError, "syntax"),
          "SET with options: syntax error")


def raw(port, data, wait=0.5):
    """Sends bytes, returns (reply bytes, closed by the server)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(data)
    s.settimeout(wait)
    out = b""
    closed = False
    try:
        while True:
            b = s.recv(65536)
            if not b:
                closed = True
                break
            out += b
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    return out, closed


def alive(port):
    try:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5).ping()
    except Exception:
        return False


def mode_badproto(port, key):
    k = key.encode()
    out, closed = raw(port, b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k))
    check(out.startswith(b"$") and not closed, "a well-formed frame over a raw socket", out)
    out, closed = raw(port, b"PING\r\nECHO hi\r\n")
    check(out == b"+PONG\r\n$2\r\nhi\r\n", "inline commands (telnet/nc)", out)
    out, closed = raw(port, b"*2\r\n$3\r\nGET\r\n$2147483648\r\n")
    check(out.startswith(b"-ERR Protocol error: invalid bulk length") and closed,
          "a 2 GB bulk length: error reply, client dropped", (out, closed))
    check(alive(port), "the server keeps serving after a huge bulk length")
    out, closed = raw(port, b"*2\r\n$3\r\nGET\r\n$2\r\nabc\r\n")
    check(out.startswith(b"-ERR Protocol error") and closed,
          "a bulk longer than its length: protocol error, dropped", (out, closed))
    out, closed = raw(port, b"*99999999999\r\n")
    check(out.startswith(b"-ERR Protocol error: invalid multibulk length") and closed,
          "a huge argument count: protocol error, dropped", (out, closed))
    out, closed = raw(port, b"*1\r\n$-5\r\n")
    check(out.startswith(b"-ERR Protocol error") and closed, "a negative bulk length", out)
    out, closed = raw(port, b"*1\r\nX4\r\nPING\r\n")
    check(out.startswith(b"-ERR Protocol error: expected '$'") and closed, "not a bulk", out)
    out, closed = raw(port, b"*2\r\n$3\r\nGET\r\n$5\r\nab", wait=0.3)
    check(out == b"" and not closed, "a truncated frame waits for the rest", (out, closed))
    out, closed = raw(port, b"*1\r\n$4\r\nPING\r\n" * 1000)
    check(out == b"+PONG\r\n" * 1000, "1000 pipelined frames in one write, all answered")
    out, closed = raw(port, b"A" * 70000)
    check(out.startswith(b"-ERR Protocol error: too big inline request") and closed,
          "an inline line over 64 KiB", out[:60])
    # random bytes and mutated frames: no crash, the server goes on
    rnd = random.Random(13)
    good = b"*3\r\n$4\r\nMGET\r\n$3\r\nabc\r\n$%d\r\n%s\r\n" % (len(k), k)
    for i in range(400):
        if i % 2:
            data = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 300)))
        else:
            b = bytearray(good * 3)
            for _ in range(rnd.randint(1, 6)):
                b[rnd.randrange(len(b))] = rnd.getrandbits(8)
            data = bytes(b[:rnd.randint(1, len(b))])
        raw(port, data, wait=0.02)
    check(alive(port), "400 random and mutated inputs: the server is alive and answers")


def mode_many(port, n, key, value):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 200), hard))
    k = key.encode()
    req = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k)
    want = b"$%d\r\n%s\r\n" % (len(value), value.encode())
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        socks.append(s)
    for s in socks:  # every connection open at once, then each asks
        s.sendall(req)
    got = {}
    deadline = time.time() + 60
    by_fd = {s.fileno(): s for s in socks}
    bufs = {fd: b"" for fd in by_fd}
    poller = select.poll()  # select() stops at descriptor 1023
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    while len(got) < n and time.time() < deadline:
        for fd, _ in poller.poll(1000):
            b = by_fd[fd].recv(4096)
            bufs[fd] += b
            if not b or len(bufs[fd]) >= len(want):
                got[fd] = bufs[fd]
                poller.unregister(fd)
    ok = sum(1 for v in got.values() if v == want)
    check(ok == n, "%d concurrent clients each get the right answer" % n, "%d right" % ok)
    for s in socks:
        s.close()


def read_while(port, key, cmd, before, after):
    """GETs key in a loop on one connection from `before` seconds before cmd
    runs until `after` seconds after it ends.  Returns cmd's exit code, the
    answers in order and the exceptions raised."""
    answers, errors = [], []
    stop = threading.Event()

    def reader():
        c = redis.Redis(host="127.0.0.1", port=port)
        while not stop.is_set():
            try:
                answers.append(c.get(key))
            except Exception as e:
                errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(before)
    rc = subprocess.call(list(cmd))
    time.sleep(after)
    stop.set()
    t.join()
    return rc, answers, errors


def mode_replace(port, key, old, new, *cmd):
    """Reads key in a loop while cmd (a shmkv-load --replace) runs: every
    answer is old or new, old ones before new ones, and no error."""
    r = redis.Redis(host="127.0.0.1", port=port)
    rc, answers, errors = read_while(port, key, cmd, 0.2, 0.3)
    check(rc == 0, "shmkv-load --replace while a client reads", rc)
    old, new = old.encode(), new.encode()
    first_new = answers.index(new) if new in answers else len(answers)
    check(not errors, "no error during the replace", errors[:3])
    check(all(a == old for a in answers[:first_new]) and all(a == new for a in answers[first_new:])
          and first_new > 0 and first_new < len(answers),
          "answers switch from old to new once (%d old, %d new)" % (first_new, len(answers) - first_new),
          set(answers))
    check(r.get(key) == new, "a new connection reads the new value")


def mode_during(port, key, value, *cmd):
    """Reads key in a loop while cmd (a grow) runs: every answer is value."""
    rc, answers, errors = read_while(port, key, cmd, 0.1, 0.2)
    check(rc == 0 and not errors and answers and all(a == value.encode() for a in answers),
          "%s while a client reads: %d answers, all right, no error" % (os.path.basename(cmd[0]) + " " + cmd[1], len(answers)),
          (rc, errors[:3], set(answers)))


def mode_slow(port, key):
    """A client that sends 200000 pipelined GETs and reads none of the
    answers must not stall another client on the same worker."""
    k = key.encode()
    req = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k)
    slow = socket.create_connection(("127.0.0.1", port))
    slow.setblocking(False)
    data = req * 200000
    sent = 0
    t0 = time.time()
    while sent < len(data) and time.time() - t0 < 3:  # until its buffers are full
        try:
            sent += slow.send(data[sent:sent + 65536])
        except BlockingIOError:
            time.sleep(0.01)
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
    worst = 0
    for _ in range(200):
        t = time.time()
        r.get(k)
        worst = max(worst, time.time() - t)
    check(worst < 1.0, "a client that reads no answers does not stall another "
          "(%d KB sent unread; worst GET %.3f s)" % (sent // 1024, worst))
    slow.close()


def mode_proxy(port, data_path, hash_name):
    data = dataset(data_path)
    r = redis.Redis(host="127.0.0.1", port=port)
    wrong = [k for k, v in data.items() if r.get(k) != v]
    check(not wrong, "%s: every one of %d keys found through twemproxy" % (hash_name, len(data)),
          "%d wrong, e.g. %r" % (len(wrong), wrong[:3]))
    keys = list(data)[:100]
    check(r.mget(keys) == [data[k] for k in keys], "%s: MGET through twemproxy (split across shards)" % hash_name)
    check(r.get(b"no-such-key") is None, "%s: a missing key through twemproxy" % hash_name)


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    args = sys.argv[3:]
    {"basic": lambda: mode_basic(port, *args),
     "writable": lambda: mode_writable(port),
     "badproto": lambda: mode_badproto(port, *args),
     "many": lambda: mode_many(port, int(args[0]), args[1], args[2]),
     "replace": lambda: mode_replace(port, *args),
     "during": lambda: mode_during(port, *args),
     "slow": lambda: mode_slow(port, *args),
     "proxy": lambda: mode_proxy(port, *args)}[mode]()
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
