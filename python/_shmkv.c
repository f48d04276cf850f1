/* shmkv._shmkv: the CPython binding of the shmkv library.
 *
 * One type, _Table, wraps one handle (struct hashtable *).  The Python
 * package (shmkv/__init__.py) subclasses it with collections.abc.
 * MutableMapping, which adds the mixin methods (pop, setdefault, update,
 * views...); everything on the per-key path is here, in C, reached through
 * the type's slots (mp_subscript, sq_contains) or METH_O / fast-call
 * methods, so t[k] costs one argument check, one library call and one bytes
 * object.
 *
 * The GIL: single lookups keep it (a lookup waits at most for one writer's
 * bucket update, microseconds; releasing and taking the GIL would cost more
 * than the lookup).  Everything that can wait for the writer lock (writes,
 * replace, grow, a read-write verify) or walks many keys (get_many over many
 * keys, iteration chunks, verify, stats) runs with the GIL released.  While
 * it is released the handle must stay attached: such calls count themselves
 * in `busy`, and close() from another thread meanwhile only marks the table
 * closed; the last call out detaches it (hashtable_close must not race with
 * other calls on the handle, hashtable.h).
 *
 * fork: the handle is a SysV attachment, which the child inherits; the
 * library's atfork handler (records_child in hashtable.c) drops the other
 * threads' reader records in the child, so a Table opened before fork keeps
 * working there.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <string.h>

#include "hashtable.h"

/* get_many keeps the GIL for batches of at most this many keys (about
 * 0.1 ms of lookups) and releases it around the lookups of bigger ones. */
#define GET_MANY_LOCKED_MAX 2048
/* Keys a step of get_many takes: with the GIL held, and released. */
#define GET_MANY_CHUNK 64
#define GET_MANY_UNLOCKED_CHUNK 1024
/* Bytes of keys, and of values, a step keeps on the stack (wider chunks
 * are allocated). */
#define GET_MANY_STACK 1024
/* Entries copied per GIL-free step of an iteration. */
#define ITER_CHUNK 256

int shmkv_py_load(int argc, char **argv, char **messages); /* load.c */

static PyObject *Error, *DeadWriterError, *CorruptError, *TableFullError;

typedef struct {
	PyObject_HEAD
	struct hashtable *h;    /* NULL once detached                          */
	Py_ssize_t key_size;    /* cached: read on every call                  */
	Py_ssize_t value_size;
	int readonly;
	int text;               /* values and keys come back as str            */
	int closed;             /* close() was called                          */
	int busy;               /* calls running with the GIL released         */
	PyObject *name;
	PyObject *weakrefs;
} TableObject;

/* ---- Errors ----------------------------------------------------------- */

/* Raises the exception for a library code rc (negative), with the library's
 * full message for this thread's last failure.  `full` is set when a write
 * of a new key hit the load limit (-ENOMEM then means "table full"). */
static PyObject *raise_code(int rc, int full)
{
	const char *text = rc == -1 ? "not found" : hashtable_last_error();
	if (!text || !*text)
		text = hashtable_strerror(rc);
	int err = -rc;
	PyObject *type;
	switch (rc) {
	case -ENOENT: type = PyExc_FileNotFoundError; break;
	case -EACCES: case -EROFS: case -EPERM: type = PyExc_PermissionError; break;
	case -EINVAL: PyErr_SetString(PyExc_ValueError, text); return NULL;
	case HASHTABLE_EDEADWRITER: type = DeadWriterError; break;
	case HASHTABLE_ECORRUPT: type = CorruptError; break;
	case -ENOMEM: type = full ? TableFullError : Error; break;
	default: type = Error;
	}
	PyObject *args = Py_BuildValue("(is)", err, text);
	if (args) {
		PyErr_SetObject(type, args);
		Py_DECREF(args);
	}
	return NULL;
}

/* open() and friends report through errno. */
static PyObject *raise_errno(int e, PyObject *name)
{
	const char *text = hashtable_last_error();
	if (!text || !*text)
		text = strerror(e);
	/* EPROTO (not a shmkv table, an unfinished or damaged one) stays a plain
	 * Error: CorruptError means a table whose contents are inconsistent. */
	PyObject *type = e == ENOENT ? PyExc_FileNotFoundError
	               : e == EACCES || e == EPERM || e == EROFS ? PyExc_PermissionError
	               : Error;
	if (e == EINVAL) {
		PyErr_SetString(PyExc_ValueError, text);
		return NULL;
	}
	PyObject *args = name ? Py_BuildValue("(isO)", e, text, name) : Py_BuildValue("(is)", e, text);
	if (args) {
		PyErr_SetObject(type, args);
		Py_DECREF(args);
	}
	return NULL;
}

static int check_open(TableObject *t)
{
	if (t->h && !t->closed)
		return 0;
	PyErr_SetString(PyExc_ValueError, "operation on a closed shmkv table");
	return -1;
}

static void detach(TableObject *t)
{
	if (t->h && t->busy == 0) {
		hashtable_close(t->h);
		t->h = NULL;
	}
}

/* Brackets a GIL-free call: the handle stays attached until leave(). */
static void enter(TableObject *t) { t->busy++; }
static void leave(TableObject *t)
{
	if (--t->busy == 0 && t->closed)
		detach(t);
}

/* rc = call, made without the GIL while the handle is held (enter/leave):
 * the one way a method calls the library on t->h for longer than a lookup. */
#define CALL_UNLOCKED(t, rc, call)                                              \
	do {                                                                    \
		enter(t);                                                       \
		Py_BEGIN_ALLOW_THREADS                                          \
		rc = (call);                                                    \
		Py_END_ALLOW_THREADS                                            \
		leave(t);                                                       \
	} while (0)

/* What a method that returns nothing answers for the library's code rc:
 * None, or the exception (raise_code) for a failure. */
static PyObject *none_or_raise(int rc)
{
	if (rc < 0)
		return raise_code(rc, 0);
	Py_RETURN_NONE;
}

/* ---- Keys and values ---------------------------------------------------- */

/* A key or value argument: its bytes, and the buffer to release after. */
struct field {
	const char *p;
	Py_ssize_t n;
	Py_buffer view;
	int has_view;
};

static void field_release(struct field *f)
{
	if (f->has_view) {
		PyBuffer_Release(&f->view);
		f->has_view = 0;
	}
}

/* bytes, str (UTF-8), or any C-contiguous buffer (bytearray, memoryview).
 * `width` is the table's width for this field; wider arguments are refused,
 * naming both widths.  `stable`: the bytes must stay put while the GIL is
 * released (a buffer export pins a bytearray's storage). */
static int field_get(TableObject *t, PyObject *o, const char *what, Py_ssize_t width,
                     struct field *f)
{
	f->has_view = 0;
	if (PyBytes_CheckExact(o)) {
		f->p = PyBytes_AS_STRING(o);
		f->n = PyBytes_GET_SIZE(o);
	} else if (PyUnicode_Check(o)) {
		f->p = PyUnicode_AsUTF8AndSize(o, &f->n);
		if (!f->p)
			return -1;
	} else {
		if (PyObject_GetBuffer(o, &f->view, PyBUF_SIMPLE) < 0) {
			PyErr_Clear();
			PyErr_Format(PyExc_TypeError,
			             "a shmkv %s must be bytes, bytearray, memoryview or str, not %.100s",
			             what, Py_TYPE(o)->tp_name);
			return -1;
		}
		f->has_view = 1;
		f->p = f->view.buf;
		f->n = f->view.len;
	}
	if (f->n > width) {
		PyErr_Format(PyExc_ValueError,
		             "%s of %zd bytes is wider than the table's %zd-byte %ss "
		             "(key_size=%zd, value_size=%zd)",
		             what, f->n, width, what, t->key_size, t->value_size);
		field_release(f);
		return -1;
	}
	return 0;
}

/* bytes of `n`, or with text=True a str without its trailing NUL padding. */
static PyObject *out_value(TableObject *t, const char *p, Py_ssize_t n)
{
	if (!t->text)
		return PyBytes_FromStringAndSize(p, n);
	while (n > 0 && p[n - 1] == '\0')
		n--;
	return PyUnicode_DecodeUTF8(p, n, "strict");
}

/* ---- Opening ------------------------------------------------------------ */

/* An int name as an IPC key: 32 bits, not 0 (IPC_PRIVATE).  A wider
 * number is refused, not cut: 2**32 + k must not name the table at k. */
static int ipc_key_arg(PyObject *name, key_t *out)
{
	long k = PyLong_AsLong(name);
	if (k == -1 && PyErr_Occurred())
		return -1;
	if (k == 0 || k < INT32_MIN || k > (long)UINT32_MAX) {
		PyErr_Format(PyExc_ValueError, "IPC key %ld is not a usable key "
		             "(0 is IPC_PRIVATE; keys are 32-bit)", k);
		return -1;
	}
	*out = (key_t)(int32_t)(uint32_t)k;
	return 0;
}

/* A width argument as the library's uint32_t, refusing what does not fit
 * (a cast would turn 2**32 + 8 into 8); the library checks the range. */
static int width_arg(PyObject *o, const char *what, uint32_t *out)
{
	unsigned long v = PyLong_AsUnsignedLong(o);
	if (v == (unsigned long)-1 && PyErr_Occurred())
		return -1;
	if (v > UINT32_MAX) {
		PyErr_Format(PyExc_ValueError, "%s %lu out of range (keys 1..%d bytes, values 0..%d bytes)",
		             what, v, HASHTABLE_MAX_KEY, HASHTABLE_MAX_VALUE);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static PyObject *table_open(PyObject *mod, PyObject *args, PyObject *kw)
{
	(void)mod;
	static char *names[] = { "cls", "name", "mode", "key_size", "value_size", "entries",
	                         "max_load", "perm", "autogrow", "text", NULL };
	PyTypeObject *cls;
	PyObject *name, *key_size = Py_None, *value_size = Py_None, *entries = Py_None,
	         *max_load = Py_None, *autogrow = Py_None;
	const char *mode = "r";
	PyObject *perm = NULL;
	int text = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O!O|s$OOOOOOp", names, &PyType_Type, &cls,
	                                 &name, &mode, &key_size, &value_size, &entries,
	                                 &max_load, &perm, &autogrow, &text))
		return NULL;
	if (strcmp(mode, "r") && strcmp(mode, "w") && strcmp(mode, "c")) {
		PyErr_Format(PyExc_ValueError, "mode must be 'r', 'w' or 'c', not '%s'", mode);
		return NULL;
	}
	struct hashtable_config cfg;
	memset(&cfg, 0, sizeof cfg);
	PyObject *path = NULL;
	if (PyLong_Check(name)) {
		if (ipc_key_arg(name, &cfg.ipc_key))
			return NULL;
	} else {
		if (!PyUnicode_FSConverter(name, &path))
			return NULL;
		cfg.path = PyBytes_AS_STRING(path);
	}
	int creating = mode[0] == 'c' && (key_size != Py_None || value_size != Py_None);
	if (mode[0] != 'c' && (key_size != Py_None || value_size != Py_None || entries != Py_None ||
	                       max_load != Py_None || autogrow != Py_None)) {
		Py_XDECREF(path);
		PyErr_SetString(PyExc_ValueError,
		                "key_size, value_size, entries, max_load and autogrow apply to mode 'c'");
		return NULL;
	}
	if (creating) {
		if (key_size == Py_None || value_size == Py_None) {
			Py_XDECREF(path);
			PyErr_SetString(PyExc_ValueError, "creating a table needs key_size and value_size");
			return NULL;
		}
		if (width_arg(key_size, "key_size", &cfg.key_size) ||
		    width_arg(value_size, "value_size", &cfg.value_size)) {
			Py_XDECREF(path);
			return NULL;
		}
		cfg.entries = entries == Py_None ? 1024 : PyLong_AsUnsignedLongLong(entries);
		cfg.max_load = max_load == Py_None ? 0 : PyFloat_AsDouble(max_load);
		cfg.mode = 0600;
		if (perm) { /* not "I", which cuts 2**32 to 0: a table no one may read */
			unsigned long m = PyLong_AsUnsignedLong(perm);
			if (m == (unsigned long)-1 && PyErr_Occurred()) {
				Py_XDECREF(path);
				return NULL;
			}
			if (m & ~0777ul) {
				Py_XDECREF(path);
				PyErr_Format(PyExc_ValueError, "perm 0o%lo has bits beyond 0o777", m);
				return NULL;
			}
			cfg.mode = (unsigned)m;
		}
		if (autogrow != Py_None && PyObject_IsTrue(autogrow))
			cfg.flags |= HASHTABLE_AUTOGROW;
		if (PyErr_Occurred()) {
			Py_XDECREF(path);
			return NULL;
		}
	}
	struct hashtable *h = NULL;
	int rc = 0, flags = mode[0] == 'r' ? HASHTABLE_RDONLY : 0;
	Py_BEGIN_ALLOW_THREADS
	if (creating) {
		rc = hashtable_create_config(&cfg, &h);
	} else {
		h = cfg.path ? hashtable_open(cfg.path, flags) : hashtable_open_key(cfg.ipc_key, flags);
		rc = h ? 0 : -errno;
	}
	Py_END_ALLOW_THREADS
	if (rc == -ENOENT && mode[0] == 'c' && !creating) {
		Py_XDECREF(path);
		PyErr_Format(PyExc_FileNotFoundError, "%s; give key_size and value_size to create it",
		             hashtable_last_error());
		return NULL;
	}
	if (rc) {
		raise_errno(-rc, name);
		Py_XDECREF(path);
		return NULL;
	}
	Py_XDECREF(path);
	TableObject *t = (TableObject *)cls->tp_alloc(cls, 0);
	if (!t) {
		hashtable_close(h);
		return NULL;
	}
	struct hashtable_stats st;
	hashtable_stats(h, &st);
	t->h = h;
	t->key_size = st.key_size;
	t->value_size = st.value_size;
	t->readonly = mode[0] == 'r';
	t->text = text;
	Py_INCREF(name);
	t->name = name;
	return (PyObject *)t;
}

static void table_dealloc(TableObject *t)
{
	PyObject_GC_UnTrack(t);
	if (t->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)t);
	if (t->h)
		hashtable_close(t->h); /* busy is 0: a running call holds a reference */
	Py_CLEAR(t->name);
	Py_TYPE(t)->tp_free((PyObject *)t);
}

/* Not Py_VISIT(Py_TYPE(t)): _Table is a static type, and the heap
 * subclass shmkv.Table's subtype_traverse already visits the type before
 * calling this; a second visit would make the collector count one
 * reference the instance does not hold. */
static int table_traverse(TableObject *t, visitproc visit, void *arg)
{
	Py_VISIT(t->name);
	return 0;
}

/* ---- The per-key path --------------------------------------------------- */

/* Looks key up.  Returns the value, or NULL with KeyError (miss, when
 * `missing` is NULL) or `missing` itself (a new reference) on a miss. */
static PyObject *lookup(TableObject *t, PyObject *key, PyObject *missing)
{
	if (check_open(t))
		return NULL;
	struct field k;
	if (field_get(t, key, "key", t->key_size, &k))
		return NULL;
	PyObject *out = PyBytes_FromStringAndSize(NULL, t->value_size);
	if (!out) {
		field_release(&k);
		return NULL;
	}
	int rc = k.n == t->key_size
	         ? hashtable_search(t->h, (void *)k.p, PyBytes_AS_STRING(out))
	         : hashtable_get(t->h, k.p, (size_t)k.n, PyBytes_AS_STRING(out));
	field_release(&k);
	if (rc == 0) {
		if (!t->text)
			return out;
		PyObject *s = out_value(t, PyBytes_AS_STRING(out), t->value_size);
		Py_DECREF(out);
		return s;
	}
	Py_DECREF(out);
	if (rc == -1) {
		if (missing) {
			Py_INCREF(missing);
			return missing;
		}
		PyErr_SetObject(PyExc_KeyError, key);
		return NULL;
	}
	return raise_code(rc, 0);
}

static PyObject *table_subscript(TableObject *t, PyObject *key) { return lookup(t, key, NULL); }

static int table_contains(TableObject *t, PyObject *key)
{
	PyObject *v = lookup(t, key, Py_None);
	if (!v)
		return -1;
	int found = v != Py_None;
	Py_DECREF(v);
	return found;
}

static PyObject *table_get(TableObject *t, PyObject *const *args, Py_ssize_t nargs)
{
	if (nargs < 1 || nargs > 2) {
		PyErr_Format(PyExc_TypeError, "get expected 1 or 2 arguments, got %zd", nargs);
		return NULL;
	}
	return lookup(t, args[0], nargs == 2 ? args[1] : Py_None);
}

/* The replace() calls running on this thread, innermost first (each a
 * stack frame of table_replace).  Writes refuse to run inside a replace of
 * the same table on the same thread, through this Table or any other one
 * of the table: the builder holds the writer lock, and the write would
 * wait for it (the library then reports the lock as damaged, after 2 s). */
struct replacing {
	int root_shmid;
	struct replacing *outer;
};
static _Thread_local struct replacing *replacing;

static int check_writable(TableObject *t)
{
	if (check_open(t))
		return -1;
	for (struct replacing *r = replacing; r; r = r->outer) {
		if (r->root_shmid == hashtable_shmid(t->h)) {
			PyErr_SetString(PyExc_RuntimeError,
			                "write to a shmkv table inside its own replace(): the replace holds "
			                "the writer lock; write after it returns");
			return -1;
		}
	}
	return 0;
}

static int table_ass_subscript(TableObject *t, PyObject *key, PyObject *value)
{
	if (check_writable(t))
		return -1;
	struct field k, v;
	if (field_get(t, key, "key", t->key_size, &k))
		return -1;
	if (value && field_get(t, value, "value", t->value_size, &v)) {
		field_release(&k);
		return -1;
	}
	int rc;
	/* A bytes key or value stays put (immutable, and referenced by the
	 * caller); a buffer is pinned by its export; a str's UTF-8 copy lives as
	 * long as the str. */
	CALL_UNLOCKED(t, rc, value ? hashtable_put(t->h, k.p, (size_t)k.n, v.p, (size_t)v.n)
	                           : hashtable_del(t->h, k.p, (size_t)k.n));
	field_release(&k);
	if (value)
		field_release(&v);
	if (rc >= 0)
		return 0;
	if (rc == -1) {
		PyErr_SetObject(PyExc_KeyError, key);
		return -1;
	}
	raise_code(rc, value != NULL);
	return -1;
}

/* ---- Batches -------------------------------------------------------------- */

/* Copies a key that is not an exact bytes of the table's width (str,
 * buffer, or shorter bytes) into dst, padded with NUL bytes.  Returns 0, or
 * -1 with the exception set (field_get's TypeError or ValueError). */
static int key_copy_slow(TableObject *t, PyObject *o, char *dst)
{
	struct field k;
	if (field_get(t, o, "key", t->key_size, &k))
		return -1;
	memcpy(dst, k.p, (size_t)k.n);
	memset(dst + k.n, 0, (size_t)(t->key_size - k.n));
	field_release(&k);
	return 0;
}

/* Whether the sequence of keys is no longer n long (Python code, or another
 * thread, changed the list during the call): RuntimeError, as for a dict
 * changed during iteration. */
static int keys_changed(PyObject *seq, Py_ssize_t n)
{
	if (PySequence_Fast_GET_SIZE(seq) == n)
		return 0;
	PyErr_SetString(PyExc_RuntimeError,
	                "get_many(): the list of keys changed size during the call");
	return 1;
}

/* Starts fetching a key object: its header (type, size) and its bytes. */
static inline void prefetch_key(PyObject *o)
{
	__builtin_prefetch(o);
	__builtin_prefetch((const char *)o + offsetof(PyBytesObject, ob_sval));
}

/* A value's bytes object.  The common shape, 8-byte values without text=True,
 * copies inline: PyBytes_FromStringAndSize would call memcpy for 8 bytes. */
static inline PyObject *out_value_fast(TableObject *t, const char *p, size_t vs)
{
	if (vs != 8 || t->text)
		return out_value(t, p, (Py_ssize_t)vs);
	PyObject *v = PyBytes_FromStringAndSize(NULL, 8);
	if (v)
		memcpy(PyBytes_AS_STRING(v), p, 8);
	return v;
}

/* get_many's work per key is three steps: read the caller's key object
 * (scattered over the heap, so a cache and TLB miss most of the time), look
 * the key up in the table (another), and make the value's bytes object.
 * The keys go through in chunks whose keys and values fit on the stack, and
 * while one chunk's values are made the next chunk's key objects are
 * prefetched, so that their misses could overlap the allocations.  On the
 * 1M-entry benchmark that overlap measured no faster than prefetching 8
 * keys ahead: the key objects' misses cost about 30 ns a key either way
 * (50 ns a key for shuffled key objects, 28 for the same keys copied into
 * lookup order, 20 all in cache), bound by the misses themselves.
 * Up to GET_MANY_LOCKED_MAX keys the GIL stays held: a chunk's lookups take
 * about a microsecond and never wait for a lock, while a release beside a
 * busy Python thread costs a GIL handoff each time (0.9 ms a call of 1,000
 * keys, measured).  Bigger batches release it once per chunk of
 * GET_MANY_UNLOCKED_CHUNK keys. */
static PyObject *table_get_many(TableObject *t, PyObject *keys)
{
	if (check_open(t))
		return NULL;
	/* A list or tuple comes back as itself, not a copy. */
	PyObject *seq = PySequence_Fast(keys, "get_many() needs an iterable of keys");
	if (!seq)
		return NULL;
	PyObject *result = NULL;
	char *heap = NULL;
	/* Reading a generator of keys ran Python code, which may have closed
	 * the table. */
	if (check_open(t))
		goto out;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
	PyObject **items = PySequence_Fast_ITEMS(seq);
	size_t ks = (size_t)t->key_size, vs = (size_t)t->value_size;
	int unlocked = n > GET_MANY_LOCKED_MAX;
	size_t chunk = unlocked ? GET_MANY_UNLOCKED_CHUNK : GET_MANY_CHUNK;
	char stack_keys[GET_MANY_STACK], stack_values[GET_MANY_STACK];
	int found[GET_MANY_UNLOCKED_CHUNK];
	char *keybuf = stack_keys, *valbuf = stack_values;
	if (chunk * ks > sizeof stack_keys || chunk * vs > sizeof stack_values) {
		heap = PyMem_Malloc(chunk * (ks + vs));
		if (!heap) {
			PyErr_NoMemory();
			goto out;
		}
		keybuf = heap;
		valbuf = heap + chunk * ks;
	}
	result = PyList_New(n);
	if (!result)
		goto out;
	for (Py_ssize_t i = 0; i < n && i < (Py_ssize_t)chunk; i++)
		prefetch_key(items[i]);
	for (Py_ssize_t start = 0; start < n; start += (Py_ssize_t)chunk) {
		size_t m = (size_t)(n - start) < chunk ? (size_t)(n - start) : chunk;
		PyObject **chunk_items = items + start;
		for (size_t j = 0; j < m; j++) {
			char *dst = keybuf + j * ks;
			PyObject *o = chunk_items[j];
			if (PyBytes_CheckExact(o) && PyBytes_GET_SIZE(o) == (Py_ssize_t)ks) {
				if (ks == 8)
					memcpy(dst, PyBytes_AS_STRING(o), 8);
				else
					memcpy(dst, PyBytes_AS_STRING(o), ks);
				continue;
			}
			/* A buffer export can run Python code (a __buffer__ method)
			 * which may change the list of keys: hold the key, and read
			 * the list again after. */
			Py_INCREF(o);
			int rc = key_copy_slow(t, o, dst);
			Py_DECREF(o);
			if (rc || check_open(t) || keys_changed(seq, n))
				goto fail;
			items = PySequence_Fast_ITEMS(seq);
			chunk_items = items + start;
		}
		long rc;
		if (unlocked) {
			CALL_UNLOCKED(t, rc, hashtable_search_batch(t->h, m, keybuf, valbuf, found));
			/* Other threads ran meanwhile: they may have closed the
			 * table or changed the list. */
			if (check_open(t) || keys_changed(seq, n))
				goto fail;
			items = PySequence_Fast_ITEMS(seq);
		} else {
			rc = hashtable_search_batch(t->h, m, keybuf, valbuf, found);
		}
		if (rc < 0) {
			raise_code((int)rc, 0);
			goto fail;
		}
		PyObject **next_items = items + start + (Py_ssize_t)m;
		size_t next_m = (size_t)(n - start) - m < chunk ? (size_t)(n - start) - m : chunk;
		for (size_t j = 0; j < m; j++) {
			if (j < next_m)
				prefetch_key(next_items[j]);
			PyObject *v;
			if (found[j] == 0) {
				v = out_value_fast(t, valbuf + j * vs, vs);
				if (!v)
					goto fail;
			} else {
				v = Py_None;
				Py_INCREF(v);
			}
			PyList_SET_ITEM(result, start + (Py_ssize_t)j, v);
		}
	}
	goto out;
fail:
	Py_CLEAR(result);
out:
	PyMem_Free(heap);
	Py_DECREF(seq);
	return result;
}

/* ---- Size, stats, verify, generation ------------------------------------ */

/* One load (hashtable_count): cheap enough for `if t:` on every call. */
static Py_ssize_t table_len(TableObject *t)
{
	if (check_open(t))
		return -1;
	int64_t n = hashtable_count(t->h);
	if (n < 0) {
		raise_code((int)n, 0);
		return -1;
	}
	return (Py_ssize_t)n;
}

#define STAT_U(f) if (set_item(d, #f, PyLong_FromUnsignedLongLong((unsigned long long)st.f))) goto fail
#define STAT_I(f) if (set_item(d, #f, PyLong_FromLongLong((long long)st.f))) goto fail
#define STAT_F(f) if (set_item(d, #f, PyFloat_FromDouble(st.f))) goto fail

static int set_item(PyObject *d, const char *k, PyObject *v)
{
	if (!v)
		return -1;
	int rc = PyDict_SetItemString(d, k, v);
	Py_DECREF(v);
	return rc;
}

static PyObject *table_stats(TableObject *t, PyObject *unused)
{
	(void)unused;
	if (check_open(t))
		return NULL;
	struct hashtable_stats st;
	int rc;
	CALL_UNLOCKED(t, rc, hashtable_stats(t->h, &st));
	if (rc < 0)
		return raise_code(rc, 0);
	PyObject *d = PyDict_New();
	if (!d)
		return NULL;
	STAT_U(format_version); STAT_U(key_size); STAT_U(value_size); STAT_U(slot_size);
	STAT_U(slots_per_bucket); STAT_U(buckets); STAT_U(slots); STAT_U(count);
	STAT_U(deleted); STAT_U(max_count); STAT_F(max_load); STAT_U(segment_bytes);
	STAT_U(payload_bytes); STAT_U(collisions); STAT_U(max_probe);
	STAT_U(overflowed_buckets); STAT_F(hit_probes); STAT_F(miss_probes);
	STAT_U(inserts); STAT_U(updates); STAT_U(deletes); STAT_U(recoveries);
	STAT_U(relocations); STAT_I(shmid); STAT_I(ipc_key); STAT_U(mode);
	STAT_I(creator_pid); STAT_I(created); STAT_U(nattch); STAT_I(hugetlb);
	STAT_U(name_dev); STAT_U(name_ino); STAT_I(name_mismatch);
	return d;
fail:
	Py_DECREF(d);
	return NULL;
}

static PyObject *table_verify(TableObject *t, PyObject *unused)
{
	(void)unused;
	if (check_writable(t))
		return NULL;
	int rc;
	CALL_UNLOCKED(t, rc, hashtable_verify(t->h));
	return none_or_raise(rc);
}

static PyObject *table_generation(TableObject *t, void *closure)
{
	(void)closure;
	if (check_open(t))
		return NULL;
	return PyLong_FromUnsignedLongLong(hashtable_generation(t->h));
}

static PyObject *get_key_size(TableObject *t, void *c) { (void)c; return PyLong_FromSsize_t(t->key_size); }
static PyObject *get_value_size(TableObject *t, void *c) { (void)c; return PyLong_FromSsize_t(t->value_size); }
static PyObject *get_readonly(TableObject *t, void *c) { (void)c; return PyBool_FromLong(t->readonly); }
static PyObject *get_closed(TableObject *t, void *c) { (void)c; return PyBool_FromLong(t->closed || !t->h); }
static PyObject *get_text(TableObject *t, void *c) { (void)c; return PyBool_FromLong(t->text); }
static PyObject *get_name(TableObject *t, void *c) { (void)c; Py_INCREF(t->name); return t->name; }

static PyObject *table_shmid(TableObject *t, void *c)
{
	(void)c;
	if (check_open(t))
		return NULL;
	return PyLong_FromLong(hashtable_shmid(t->h));
}

static PyObject *table_segments(TableObject *t, PyObject *unused)
{
	(void)unused;
	if (check_open(t))
		return NULL;
	struct hashtable_segment_info seg[64];
	long n = hashtable_segments(t->h, seg, 64);
	if (n < 0)
		return raise_code((int)n, 0);
	if (n > 64)
		n = 64;
	static const char *roles[] = { "?", "root", "current", "retired", "pending" };
	PyObject *list = PyList_New(n);
	for (long i = 0; list && i < n; i++) {
		int role = seg[i].role >= 1 && seg[i].role <= 4 ? seg[i].role : 0;
		PyObject *d = Py_BuildValue("{s:i,s:s,s:K,s:K,s:K}", "shmid", seg[i].shmid,
		                            "role", roles[role], "generation",
		                            (unsigned long long)seg[i].generation, "bytes",
		                            (unsigned long long)seg[i].bytes, "nattch",
		                            (unsigned long long)seg[i].nattch);
		if (!d) {
			Py_CLEAR(list);
			break;
		}
		PyList_SET_ITEM(list, i, d);
	}
	return list;
}

/* ---- Replace and grow ----------------------------------------------------- */

/* Builds a new generation from an iterable of (key, value) pairs and
 * publishes it; on any exception the build is aborted and the table is as
 * it was.  The pairs are read with the GIL held (they are Python objects);
 * the waits (for the writer lock, and the commit) run without it. */
/* TableFullError for a build at its load limit, saying how to size it. */
static void raise_build_full(Py_ssize_t npairs)
{
	const char *text = hashtable_last_error();
	PyObject *args = Py_BuildValue(
		"(iN)", ENOMEM,
		PyUnicode_FromFormat("%s (at pair %zd); replace() sizes the new generation by "
		                     "len(pairs): give it a list or a dict, or grow() the table first",
		                     text && *text ? text : "the new generation is full", npairs));
	if (args) {
		PyErr_SetObject(TableFullError, args);
		Py_DECREF(args);
	}
}

/* The pairs of replace()'s argument: a mapping's items (the rule of
 * dict.update: whatever has keys()), else the iterable itself. */
static PyObject *pairs_iter(PyObject *pairs)
{
	PyObject *keys = PyObject_GetAttrString(pairs, "keys");
	if (!keys) {
		if (!PyErr_ExceptionMatches(PyExc_AttributeError))
			return NULL;
		PyErr_Clear();
		return PyObject_GetIter(pairs);
	}
	Py_DECREF(keys);
	PyObject *items = PyObject_CallMethod(pairs, "items", NULL);
	if (!items)
		return NULL;
	PyObject *it = PyObject_GetIter(items);
	Py_DECREF(items);
	return it;
}

static PyObject *table_replace(TableObject *t, PyObject *pairs)
{
	/* As shmkv-load --replace does: when the input holds more pairs than
	 * the table's load limit allows, the new generation is sized for them
	 * (with the loader's 25% headroom); an iterator of unknown length
	 * fills the current capacity. */
	Py_ssize_t hint = PyObject_LengthHint(pairs, 0);
	if (hint < 0)
		return NULL;
	PyObject *it = pairs_iter(pairs);
	if (!it)
		return NULL;
	/* After the calls above, which may run Python code (__len__, items()). */
	if (check_writable(t)) {
		Py_DECREF(it);
		return NULL;
	}
	struct hashtable_builder *b = NULL;
	struct hashtable_config cfg;
	int rc;
	enter(t);
	Py_BEGIN_ALLOW_THREADS
	struct hashtable_stats st;
	const struct hashtable_config *sized = NULL;
	if (hint > 0 && hashtable_stats(t->h, &st) == 0 && (uint64_t)hint > st.max_count) {
		memset(&cfg, 0, sizeof cfg);
		cfg.key_size = st.key_size;
		cfg.value_size = st.value_size;
		cfg.entries = (uint64_t)((double)hint * 1.25) + 1;
		sized = &cfg;
	}
	rc = hashtable_replace_begin(t->h, sized, &b);
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		leave(t);
		Py_DECREF(it);
		return raise_code(rc, 0);
	}
	struct replacing me = { hashtable_shmid(t->h), replacing };
	replacing = &me;
	PyObject *item;
	int failed = 0;
	Py_ssize_t npairs = 0;
	while (!failed && (item = PyIter_Next(it))) {
		/* An iterable written in C (a list, zip, map of builtins) runs no
		 * bytecode, so nothing else would notice a SIGINT until the commit:
		 * look every 1024 pairs, and let KeyboardInterrupt abort the build. */
		if ((++npairs & 1023) == 0 && PyErr_CheckSignals() < 0) {
			Py_DECREF(item);
			failed = 1;
			break;
		}
		PyObject *kv = PySequence_Fast(item, "replace() needs (key, value) pairs");
		Py_DECREF(item);
		if (!kv || PySequence_Fast_GET_SIZE(kv) != 2) {
			if (kv)
				PyErr_SetString(PyExc_ValueError, "replace() needs (key, value) pairs");
			Py_XDECREF(kv);
			failed = 1;
			break;
		}
		struct field k, v;
		PyObject *key = PySequence_Fast_GET_ITEM(kv, 0);
		if (field_get(t, key, "key", t->key_size, &k)) {
			Py_DECREF(kv);
			failed = 1;
			break;
		}
		if (field_get(t, PySequence_Fast_GET_ITEM(kv, 1), "value", t->value_size, &v)) {
			field_release(&k);
			Py_DECREF(kv);
			failed = 1;
			break;
		}
		/* builder_put takes full-width fields: pad short ones. */
		char kbuf[HASHTABLE_MAX_KEY];
		char vstack[256], *vbuf = vstack;
		memcpy(kbuf, k.p, (size_t)k.n);
		memset(kbuf + k.n, 0, (size_t)(t->key_size - k.n));
		if (t->value_size > (Py_ssize_t)sizeof vstack && !(vbuf = PyMem_Malloc((size_t)t->value_size))) {
			PyErr_NoMemory();
			failed = 1;
		} else {
			memcpy(vbuf, v.p, (size_t)v.n);
			memset(vbuf + v.n, 0, (size_t)(t->value_size - v.n));
			rc = hashtable_builder_put(b, kbuf, vbuf);
			if (rc == -ENOMEM)
				raise_build_full(npairs);
			else if (rc < 0)
				raise_code(rc, 1);
			if (rc < 0)
				failed = 1;
			if (vbuf != vstack)
				PyMem_Free(vbuf);
		}
		field_release(&k);
		field_release(&v);
		Py_DECREF(kv);
	}
	Py_DECREF(it);
	if (!failed && PyErr_Occurred())
		failed = 1;
	replacing = me.outer;
	Py_BEGIN_ALLOW_THREADS
	if (failed)
		hashtable_replace_abort(b);
	else
		rc = hashtable_replace_commit(b);
	Py_END_ALLOW_THREADS
	leave(t);
	if (failed)
		return NULL;
	return none_or_raise(rc);
}

static PyObject *table_grow(TableObject *t, PyObject *arg)
{
	if (check_writable(t))
		return NULL;
	unsigned long long entries = PyLong_AsUnsignedLongLong(arg);
	if (PyErr_Occurred())
		return NULL;
	int rc;
	CALL_UNLOCKED(t, rc, hashtable_grow(t->h, entries));
	return none_or_raise(rc);
}

/* ---- Closing and removing ------------------------------------------------- */

static PyObject *table_close(TableObject *t, PyObject *unused)
{
	(void)unused;
	t->closed = 1;
	detach(t); /* or, if another thread is inside a call, when it leaves */
	Py_RETURN_NONE;
}

static PyObject *table_unlink(TableObject *t, PyObject *unused)
{
	(void)unused;
	if (check_open(t))
		return NULL;
	return none_or_raise(hashtable_unlink(t->h));
}

static PyObject *table_enter(TableObject *t, PyObject *unused)
{
	(void)unused;
	if (check_open(t))
		return NULL;
	Py_INCREF(t);
	return (PyObject *)t;
}

static PyObject *table_exit(TableObject *t, PyObject *args)
{
	(void)args;
	return table_close(t, NULL);
}

/* ---- Iteration ----------------------------------------------------------- */

/* Walks the table in chunks: each chunk of entries is copied with the GIL
 * released, then handed out one at a time.  Same guarantees as
 * hashtable_iterate beside writes (entries present throughout are returned
 * once).  A replace or grow (an autogrow insert too) during the walk raises
 * RuntimeError, as a dict changed during iteration does: the cursor would go
 * on in the new generation and mix two generations' entries (and inserts
 * that keep growing the table could keep a walk going). */
typedef struct {
	PyObject_HEAD
	TableObject *t;
	int what;             /* 0 keys, 1 values, 2 items                     */
	uint64_t cursor;
	char *buf;            /* ITER_CHUNK entries of key_size + value_size   */
	int n, pos, done;
	int filling;          /* a thread is copying a chunk, GIL released     */
	uint64_t generation;  /* the table's when the iterator was made        */
} IterObject;

static PyTypeObject IterType;

static PyObject *table_iter_mode(TableObject *t, int what)
{
	if (check_open(t))
		return NULL;
	IterObject *it = PyObject_New(IterObject, &IterType);
	if (!it)
		return NULL;
	Py_INCREF(t);
	it->t = t;
	it->what = what;
	it->cursor = 0;
	it->n = it->pos = it->done = it->filling = 0;
	it->generation = hashtable_generation(t->h);
	it->buf = PyMem_Malloc((size_t)(t->key_size + t->value_size) * ITER_CHUNK);
	if (!it->buf) {
		Py_DECREF(it);
		return PyErr_NoMemory();
	}
	return (PyObject *)it;
}

static PyObject *table_iter(TableObject *t) { return table_iter_mode(t, 0); }

static PyObject *table_iter_method(TableObject *t, PyObject *arg)
{
	long what = PyLong_AsLong(arg);
	if (what == -1 && PyErr_Occurred())
		return NULL;
	if (what < 0 || what > 2) {
		PyErr_SetString(PyExc_ValueError, "_iter(0 keys | 1 values | 2 items)");
		return NULL;
	}
	return table_iter_mode(t, (int)what);
}

static void iter_dealloc(IterObject *it)
{
	Py_XDECREF(it->t);
	PyMem_Free(it->buf);
	PyObject_Free(it);
}

static int iter_fill(IterObject *it)
{
	TableObject *t = it->t;
	if (check_open(t))
		return -1;
	if (it->filling) { /* the buffer and cursor are the other thread's */
		PyErr_SetString(PyExc_RuntimeError, "shmkv iterator already in use by another thread");
		return -1;
	}
	it->filling = 1;
	size_t es = (size_t)(t->key_size + t->value_size);
	int n = 0, rc = 0;
	uint64_t gen;
	enter(t);
	Py_BEGIN_ALLOW_THREADS
	while (n < ITER_CHUNK) {
		char *e = it->buf + (size_t)n * es;
		rc = hashtable_iterate(t->h, &it->cursor, e, e + t->key_size);
		if (rc != 1)
			break;
		n++;
	}
	/* After the chunk: generations only go up, so the same number means
	 * every entry so far came from the iterator's generation. */
	gen = hashtable_generation(t->h);
	Py_END_ALLOW_THREADS
	leave(t);
	it->filling = 0;
	if (rc < 0) {
		raise_code(rc, 0);
		return -1;
	}
	if (gen != it->generation) {
		it->n = it->pos = 0;
		it->done = 1;
		PyErr_Format(PyExc_RuntimeError,
		             "shmkv table replaced or grown during iteration (generation %llu, now "
		             "%llu): iterate again",
		             (unsigned long long)it->generation, (unsigned long long)gen);
		return -1;
	}
	it->n = n;
	it->pos = 0;
	if (rc == 0)
		it->done = 1;
	return 0;
}

/* A key as iteration returns it: bytes, or with text=True str without its
 * NUL padding. */
static PyObject *out_key(TableObject *t, const char *p)
{
	return out_value(t, p, t->key_size);
}

static PyObject *iter_next(IterObject *it)
{
	if (it->pos == it->n) {
		if (it->done || iter_fill(it) < 0 || it->n == 0)
			return NULL;
	}
	TableObject *t = it->t;
	const char *e = it->buf + (size_t)it->pos++ * (size_t)(t->key_size + t->value_size);
	if (it->what == 0)
		return out_key(t, e);
	if (it->what == 1)
		return out_value(t, e + t->key_size, t->value_size);
	PyObject *k = out_key(t, e), *v = k ? out_value(t, e + t->key_size, t->value_size) : NULL;
	if (!v) {
		Py_XDECREF(k);
		return NULL;
	}
	PyObject *pair = PyTuple_Pack(2, k, v);
	Py_DECREF(k);
	Py_DECREF(v);
	return pair;
}

static PyTypeObject IterType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "shmkv._shmkv.TableIterator",
	.tp_basicsize = sizeof(IterObject),
	.tp_dealloc = (destructor)iter_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_iter = PyObject_SelfIter,
	.tp_iternext = (iternextfunc)iter_next,
};

/* ---- The type ------------------------------------------------------------- */

static PyMappingMethods table_as_mapping = {
	.mp_length = (lenfunc)table_len,
	.mp_subscript = (binaryfunc)table_subscript,
	.mp_ass_subscript = (objobjargproc)table_ass_subscript,
};

static PySequenceMethods table_as_sequence = {
	.sq_contains = (objobjproc)table_contains,
};

static PyMethodDef table_methods[] = {
	{ "get", (PyCFunction)(void (*)(void))table_get, METH_FASTCALL,
	  "get($self, key, default=None, /)\n--\n\nThe value stored under key, or default." },
	{ "get_many", (PyCFunction)table_get_many, METH_O,
	  "get_many($self, keys, /)\n--\n\nLooks up many keys in one batched call "
	  "(hashtable_search_batch; the GIL is released for batches of more than 2048 keys).\n"
	  "Returns a list of values in the keys' order, None for a key that is absent." },
	{ "stats", (PyCFunction)table_stats, METH_NOARGS,
	  "stats($self, /)\n--\n\nThe table's statistics (struct hashtable_stats) as a dict." },
	{ "verify", (PyCFunction)table_verify, METH_NOARGS,
	  "verify($self, /)\n--\n\nWalks the table and checks it (hashtable_verify).\n"
	  "Returns None; raises CorruptError, DeadWriterError or Error naming the problem." },
	{ "replace", (PyCFunction)table_replace, METH_O,
	  "replace($self, pairs, /)\n--\n\nReplaces the whole contents atomically with a mapping's "
	  "items or an iterable of (key, value) pairs: readers see the old contents or the new, "
	  "never a mix.\nWhen len(pairs) passes the load limit the new generation is sized for "
	  "them (as shmkv-load --replace).\nOn any exception (from the iterable too, or "
	  "KeyboardInterrupt) nothing changes; the iterable must not write to this table." },
	{ "grow", (PyCFunction)table_grow, METH_O,
	  "grow($self, entries, /)\n--\n\nMoves the table to a new generation sized for `entries` keys." },
	{ "close", (PyCFunction)table_close, METH_NOARGS,
	  "close($self, /)\n--\n\nDetaches from the table; the table and its contents stay." },
	{ "unlink", (PyCFunction)table_unlink, METH_NOARGS,
	  "unlink($self, /)\n--\n\nRemoves the table (every segment of it) from the host, like "
	  "`shmkv rm`.\nProcesses attached keep reading until they detach." },
	{ "segments", (PyCFunction)table_segments, METH_NOARGS,
	  "segments($self, /)\n--\n\nThe table's segments (hashtable_segments) as a list of dicts: "
	  "shmid, role, generation, bytes, nattch." },
	{ "_iter", (PyCFunction)table_iter_method, METH_O,
	  "_iter($self, what, /)\n--\n\nAn iterator over keys (0), values (1) or (key, value) items (2)." },
	{ "__enter__", (PyCFunction)table_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)table_exit, METH_VARARGS, NULL },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef table_getset[] = {
	{ "generation", (getter)table_generation, NULL,
	  "The table's current generation: 1 when created, +1 per replace or grow.", NULL },
	{ "key_size", (getter)get_key_size, NULL, "The key width in bytes.", NULL },
	{ "value_size", (getter)get_value_size, NULL, "The value width in bytes.", NULL },
	{ "readonly", (getter)get_readonly, NULL, "True when opened with mode 'r'.", NULL },
	{ "closed", (getter)get_closed, NULL, "True after close().", NULL },
	{ "text", (getter)get_text, NULL, "True when keys and values come back as str.", NULL },
	{ "name", (getter)get_name, NULL, "The name the table was opened by.", NULL },
	{ "shmid", (getter)table_shmid, NULL, "The root segment's id, as `ipcs -m` shows it.", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyTypeObject TableType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "shmkv._shmkv._Table",
	.tp_basicsize = sizeof(TableObject),
	.tp_dealloc = (destructor)table_dealloc,
	.tp_as_sequence = &table_as_sequence,
	.tp_as_mapping = &table_as_mapping,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "One attachment of a shmkv table; use shmkv.open().",
	.tp_traverse = (traverseproc)table_traverse,
	.tp_weaklistoffset = offsetof(TableObject, weakrefs),
	.tp_iter = (getiterfunc)table_iter,
	.tp_methods = table_methods,
	.tp_getset = table_getset,
};

/* ---- Module functions ------------------------------------------------------ */

static PyObject *mod_remove(PyObject *mod, PyObject *name)
{
	(void)mod;
	int rc;
	if (PyLong_Check(name)) {
		key_t k;
		if (ipc_key_arg(name, &k))
			return NULL;
		Py_BEGIN_ALLOW_THREADS
		rc = hashtable_remove_key(k);
		Py_END_ALLOW_THREADS
	} else {
		PyObject *path;
		if (!PyUnicode_FSConverter(name, &path))
			return NULL;
		Py_BEGIN_ALLOW_THREADS
		rc = hashtable_remove(PyBytes_AS_STRING(path));
		Py_END_ALLOW_THREADS
		Py_DECREF(path);
	}
	return none_or_raise(rc);
}

/* Runs shmkv-load's own code (tools/shmkv-load.c, linked in) on an argv the
 * Python wrapper built.  Returns the tool's exit code and its messages. */
static PyObject *mod_load(PyObject *mod, PyObject *arglist)
{
	(void)mod;
	if (!PyList_Check(arglist)) {
		PyErr_SetString(PyExc_TypeError, "_load needs a list of str");
		return NULL;
	}
	Py_ssize_t n = PyList_GET_SIZE(arglist);
	char **argv = PyMem_Calloc((size_t)n + 1, sizeof *argv);
	PyObject **keep = PyMem_Calloc((size_t)n + 1, sizeof *keep);
	PyObject *result = NULL;
	if (!argv || !keep) {
		PyErr_NoMemory();
		goto out;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		if (!PyUnicode_FSConverter(PyList_GET_ITEM(arglist, i), &keep[i]))
			goto out;
		argv[i] = PyBytes_AS_STRING(keep[i]);
	}
	char *messages = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = shmkv_py_load((int)n, argv, &messages);
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		errno = -rc;
		PyErr_SetFromErrno(PyExc_OSError);
		goto out;
	}
	result = Py_BuildValue("(is)", rc, messages ? messages : "");
	free(messages);
out:
	for (Py_ssize_t i = 0; keep && i < n; i++)
		Py_XDECREF(keep[i]);
	PyMem_Free(keep);
	PyMem_Free(argv);
	return result;
}

static PyObject *mod_strerror(PyObject *mod, PyObject *arg)
{
	(void)mod;
	long code = PyLong_AsLong(arg);
	if (code == -1 && PyErr_Occurred())
		return NULL;
	return PyUnicode_FromString(hashtable_strerror((int)code));
}

static PyMethodDef module_methods[] = {
	{ "_open", (PyCFunction)(void (*)(void))table_open, METH_VARARGS | METH_KEYWORDS,
	  "_open(cls, name, mode='r', *, ...): shmkv.open's implementation." },
	{ "remove", (PyCFunction)mod_remove, METH_O,
	  "remove(name, /)\n--\n\nRemoves the table named by a path or an int IPC key, every "
	  "segment of it (hashtable_remove; `shmkv rm`)." },
	{ "_load", (PyCFunction)mod_load, METH_O,
	  "_load(argv, /)\n--\n\nRuns shmkv-load's code in-process; returns (exit code, messages)." },
	{ "strerror", (PyCFunction)mod_strerror, METH_O,
	  "strerror(code, /)\n--\n\nThe library's fixed text for a return code (hashtable_strerror)." },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef module = {
	PyModuleDef_HEAD_INIT, "shmkv._shmkv",
	"The C part of the shmkv binding; use the shmkv package.", -1, module_methods,
	NULL, NULL, NULL, NULL,
};

static PyObject *new_error(PyObject *m, const char *name, PyObject *base, const char *doc)
{
	char full[64];
	snprintf(full, sizeof full, "shmkv.%s", name);
	PyObject *e = PyErr_NewExceptionWithDoc(full, doc, base, NULL);
	if (e && PyModule_AddObjectRef(m, name, e) < 0)
		Py_CLEAR(e);
	return e;
}

PyMODINIT_FUNC PyInit__shmkv(void)
{
	if (PyType_Ready(&TableType) < 0 || PyType_Ready(&IterType) < 0)
		return NULL;
	PyObject *m = PyModule_Create(&module);
	if (!m)
		return NULL;
	/* Error's args are (errno, message), as OSError's: e.errno, e.strerror. */
	if (!(Error = new_error(m, "Error", PyExc_OSError,
	                        "A failure reported by the shmkv library: .errno is the code "
	                        "(an errno value or a shmkv.E* constant), .strerror the library's "
	                        "full message (hashtable_last_error), naming the fix.")) ||
	    !(DeadWriterError = new_error(m, "DeadWriterError", Error,
	                                  "A writer died mid-update; the next writer (or "
	                                  "`shmkv verify --repair`) completes its change.")) ||
	    !(CorruptError = new_error(m, "CorruptError", Error,
	                               "The segment holds something no correct writer leaves.")) ||
	    !(TableFullError = new_error(m, "TableFullError", Error,
	                                 "A new key would pass the table's load limit: grow() it, "
	                                 "or create it with autogrow=True.")) ||
	    PyModule_AddObjectRef(m, "_Table", (PyObject *)&TableType) < 0 ||
	    PyModule_AddIntConstant(m, "EDEADWRITER", -HASHTABLE_EDEADWRITER) < 0 ||
	    PyModule_AddIntConstant(m, "ECORRUPT", -HASHTABLE_ECORRUPT) < 0 ||
	    PyModule_AddIntConstant(m, "EUNFINISHED", -HASHTABLE_EUNFINISHED) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_KEY", HASHTABLE_MAX_KEY) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_VALUE", HASHTABLE_MAX_VALUE) < 0 ||
	    PyModule_AddStringConstant(m, "library_version", shmkv_version()) < 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
