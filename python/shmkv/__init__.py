"""shmkv: a dict-like view of a shmkv table in System V shared memory.

    import shmkv
    with shmkv.open("/etc/hostname") as t:       # a table some C program loaded
        print(t[b"Tokyo"], len(t))

A table has fixed key and value widths, chosen when it is created.  Keys and
values may be bytes, bytearray, memoryview or str (UTF-8); shorter ones are
padded with NUL bytes to the table's width, longer ones raise ValueError.
Values come back as bytes of the full width, or, with open(..., text=True),
as str with the NUL padding removed.

Every lookup reads the shared segment in place, lock-free; writes take the
table's writer lock (shared by every process).  A Table may be shared by
threads, and one opened before fork() keeps working in the child.
"""

from collections.abc import ItemsView, MutableMapping, ValuesView

from ._shmkv import (  # noqa: F401  (re-exported)
    ECORRUPT,
    EDEADWRITER,
    EUNFINISHED,
    MAX_KEY,
    MAX_VALUE,
    CorruptError,
    DeadWriterError,
    Error,
    TableFullError,
    _Table,
    library_version,
    remove,
    strerror,
)
from . import _shmkv

__all__ = [
    "open", "load", "remove", "strerror", "Table", "Error", "DeadWriterError",
    "CorruptError", "TableFullError", "EDEADWRITER", "ECORRUPT", "EUNFINISHED",
    "MAX_KEY", "MAX_VALUE", "library_version",
]


class _ItemsView(ItemsView):
    # One walk of the table, each entry read once (the mixin's would look
    # every key up again, and fail on a key deleted meanwhile).
    def __iter__(self):
        return self._mapping._iter(2)


class _ValuesView(ValuesView):
    def __iter__(self):
        return self._mapping._iter(1)


class Table(_Table, MutableMapping):
    """One attachment of a shmkv table: a MutableMapping of fixed-width keys.

    Made by shmkv.open().  t[k], t[k] = v, del t[k], k in t, len(t),
    iteration (keys, in slot order), keys(), values(), items(), get(), pop(),
    popitem(), setdefault(), update(), clear(), plus get_many(keys),
    stats(), verify(), replace(pairs), grow(entries), generation, segments(),
    unlink(), close(); a context manager (close() on exit).

    Unlike a dict, a lookup (t[k], get, in, get_many) of a key wider than
    the table raises ValueError naming both widths, and of a key that is not
    bytes, bytearray, memoryview or str TypeError: such a key can never be
    stored, and the mistake is worth hearing about.  Keys and values come
    back at full width, so t == {...} compares padded bytes.  An iteration
    beside writes returns every entry present throughout once; a replace or
    grow (an autogrow insert too) meanwhile raises RuntimeError at the next
    chunk of 256 entries: iterate again.
    """

    __slots__ = ()

    def items(self):
        """A view of (key, value) pairs, read in one walk of the table."""
        return _ItemsView(self)

    def values(self):
        """A view of the values, read in one walk of the table."""
        return _ValuesView(self)

    def clear(self):
        """Deletes every key, one at a time (replace([]) empties a table
        atomically, but needs its owner)."""
        for key in list(self._iter(0)):
            try:
                del self[key]
            except KeyError:
                pass

    def setdefault(self, key, default=None):
        """The value stored under key; stores default there first if the key
        is absent.  Returns what the table holds (padded to the value width,
        as t[key] would), as dict.setdefault returns d[key]."""
        try:
            return self[key]
        except KeyError:
            pass
        self[key] = default
        return self[key]

    def __reduce__(self):
        # A handle is an attachment of this process: another process (spawn,
        # a pickle) must open the table itself.  fork() children inherit it.
        raise TypeError("a shmkv.Table cannot be pickled: open the table by name in the "
                        "other process (shmkv.open(%r))" % (self.name,))

    def __repr__(self):
        state = "closed" if self.closed else ("read-only" if self.readonly else "read-write")
        # An int key in hex, as `ipcs -m` and the shmkv tools show it.
        name = self.name
        name = "0x%08x" % (name & 0xFFFFFFFF) if isinstance(name, int) else repr(name)
        return "<shmkv.Table %s %s key_size=%d value_size=%d>" % (
            name, state, self.key_size, self.value_size)


def open(name, mode="r", *, key_size=None, value_size=None, entries=None,
         max_load=None, perm=0o600, autogrow=None, text=False):
    """Opens the table named by `name` and returns a Table.

    name: a path (the table's IPC key is ftok(path, 1); the file must exist)
          or an int IPC key.
    mode: "r" read-only attach (SHM_RDONLY; writes raise PermissionError),
          "w" read-write attach of an existing table,
          "c" create if missing (key_size and value_size required then;
          entries, default 1024, max_load, default 0.8, perm, autogrow),
          else attach read-write if its widths match.
    text: return keys and values as str with their NUL padding removed.

    Raises FileNotFoundError (no such file or table), PermissionError,
    ValueError (bad arguments, or an existing table of other widths), or
    shmkv.Error with the library's message, which names the fix.
    """
    return _shmkv._open(Table, name, mode, key_size=key_size, value_size=value_size,
                        entries=entries, max_load=max_load, perm=perm,
                        autogrow=autogrow, text=text)


# shmkv-load's exit codes (tools/common.h).
_RC_NOTFOUND, _RC_USAGE, _RC_DATA, _RC_REFUSED = 1, 2, 3, 4


def load(name, path, fmt="tsv", *, key_size=None, value_size=None, encoding=None,
         replace=False, skip_bad=False, duplicates=None, entries=None,
         max_load=None, perm=None):
    """Loads the records of file `path` into the table `name`, as shmkv-load does.

    Runs the bulk loader's own code in this process (tools/shmkv-load.c is
    linked into the module): the same formats (fmt "tsv", "cdb", "bin" or
    "auto"), encodings (encoding "text", "raw", "hex", "u32", "u64", or
    "KEY,VALUE"), checks and all-or-nothing rule: on bad input nothing is
    written and a table this call created is removed.  The table is created
    if absent (widths from key_size/value_size or from the input).
    replace=True replaces an existing table's contents atomically.

    Raises FileNotFoundError, ValueError (bad input or arguments: the
    message lists the bad records), or shmkv.Error (refused by the kernel or
    the table); each carries the loader's messages.
    """
    argv = ["shmkv-load", "--quiet", "--format", fmt]
    if key_size is not None:
        argv += ["--key-size", str(int(key_size))]
    if value_size is not None:
        argv += ["--value-size", str(int(value_size))]
    if encoding is not None:
        argv += ["--encoding", encoding]
    if replace:
        argv.append("--replace")
    if skip_bad:
        argv.append("--skip-bad")
    if duplicates is not None:
        argv.append("--duplicates=" + duplicates)
    if entries is not None:
        argv += ["--entries", str(int(entries))]
    if max_load is not None:
        argv += ["--max-load", repr(float(max_load))]
    if perm is not None:
        argv += ["--mode", "%o" % perm]
    if isinstance(name, int):
        # As open() and remove(): a wider number must not name another key.
        if name == 0 or not -2**31 <= name <= 0xFFFFFFFF:
            raise ValueError("IPC key %d is not a usable key (0 is IPC_PRIVATE; keys are "
                             "32-bit)" % name)
        argv.append("0x%x" % (name & 0xFFFFFFFF))
    else:
        import os
        argv.append(os.fsdecode(name))
    argv.append(path if isinstance(path, str) else __import__("os").fsdecode(path))
    rc, messages = _shmkv._load(argv)
    messages = messages.strip()
    if rc == 0:
        return None
    if rc == _RC_NOTFOUND:
        raise FileNotFoundError(2, messages)
    if rc in (_RC_USAGE, _RC_DATA):
        raise ValueError(messages)
    raise Error(0, messages)
