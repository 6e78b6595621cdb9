/* aiomcast._speedups: the receive fast path in C (Linux), Sender.send's sendto and
 * send_many's sendmmsg.
 *
 * Design: BatchReader owns preallocated recvmmsg state (headers, iovecs, source names, data
 * slots and, with UDP_GRO, control buffers) for one socket. read() makes one recvmmsg call and
 * turns what it got into a list of Datagram tuples in one pass: each payload is copied once
 * into its bytes object, the (host, port) objects of recent sources come from a small cache
 * (no string formatting per datagram), and each tuple is untracked by the garbage collector at
 * birth (it holds only bytes, str, int, None and bool), so a flood of datagrams does not make
 * the collector walk them. With UDP_GRO a coalesced buffer is split at its segment size here.
 *
 * Fast path: this replaces, per datagram, the ctypes call, the memoryview slices and the
 * map/zip machinery of the pure-Python reader in _fastio.py (about 0.5 us per datagram there,
 * 0.05 here); the pure-Python reader remains for metadata and where this module is not built.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifdef __linux__
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define DATAGRAM_FIELDS 9

/* The Datagram layout this reader fills in (aiomcast._types.Datagram): checked against the
 * type's _fields when a reader is made, so a change of one without the other fails at once. */
static const char *const DATAGRAM_LAYOUT[DATAGRAM_FIELDS] = {
    "payload", "source", "source_port", "group", "interface",
    "ttl", "timestamp_ns", "kernel_drops", "truncated",
};

/* 0 when ``type._fields`` is DATAGRAM_LAYOUT, else -1 with TypeError naming both. */
static int check_layout(PyObject *type) {
    PyObject *fields = PyObject_GetAttrString(type, "_fields");
    if (fields == NULL) {
        PyErr_Clear();
    }
    int same = fields != NULL && PyTuple_Check(fields) &&
               PyTuple_GET_SIZE(fields) == DATAGRAM_FIELDS;
    for (Py_ssize_t i = 0; same && i < DATAGRAM_FIELDS; i++) {
        PyObject *name = PyTuple_GET_ITEM(fields, i);
        same = PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, DATAGRAM_LAYOUT[i]) == 0;
    }
    if (!same) {
        PyErr_Format(PyExc_TypeError,
                     "datagram_type's fields %R are not the layout this reader was built for "
                     "(payload, source, source_port, group, interface, ttl, timestamp_ns, "
                     "kernel_drops, truncated): rebuild the extension (pip install -e .)",
                     fields != NULL ? fields : Py_None);
    }
    Py_XDECREF(fields);
    return same ? 0 : -1;
}
#define CACHE_SIZE 64
#define CONTROL_ROOM 64 /* CMSG_SPACE(sizeof(int)) is 24: room for one UDP_GRO cmsg */

typedef struct {
    socklen_t length; /* 0: empty */
    unsigned char key[sizeof(struct sockaddr_in6)];
    PyObject *host;
    PyObject *port;
} CacheEntry;

typedef struct {
    PyObject_HEAD
    int fd;
    int family;
    int gro;
    unsigned int count;
    size_t slot;
    size_t limit; /* the longest payload kept whole (a GRO segment longer than this is cut) */
    PyTypeObject *datagram_type;
    char *data;
    struct mmsghdr *msgs;
    struct iovec *iovs;
    struct sockaddr_storage *names;
    char *controls;
    size_t *steps; /* with UDP_GRO: the segment size of each message of the last read */
    unsigned int used; /* headers whose namelen / controllen the last call rewrote */
    CacheEntry cache[CACHE_SIZE];
} BatchReader;

static void reader_clear_cache(BatchReader *self) {
    for (int i = 0; i < CACHE_SIZE; i++) {
        Py_CLEAR(self->cache[i].host);
        Py_CLEAR(self->cache[i].port);
        self->cache[i].length = 0;
    }
}

static void reader_dealloc(BatchReader *self) {
    reader_clear_cache(self);
    Py_XDECREF(self->datagram_type);
    PyMem_RawFree(self->data);
    PyMem_RawFree(self->msgs);
    PyMem_RawFree(self->iovs);
    PyMem_RawFree(self->names);
    PyMem_RawFree(self->controls);
    PyMem_RawFree(self->steps);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int reader_init(BatchReader *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"fd",   "family", "datagram_type", "count",
                               "slot", "gro",    "limit",         NULL};
    int fd, family, gro = 0;
    PyObject *datagram_type;
    unsigned int count = 64;
    Py_ssize_t slot = 65536, limit = 65536;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iiO|Inpn", keywords, &fd, &family,
                                     &datagram_type, &count, &slot, &gro, &limit)) {
        return -1;
    }
    if (self->msgs != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "BatchReader is already initialised");
        return -1;
    }
    if (!PyType_Check(datagram_type) ||
        !PyType_IsSubtype((PyTypeObject *)datagram_type, &PyTuple_Type) ||
        ((PyTypeObject *)datagram_type)->tp_dictoffset != 0) {
        PyErr_SetString(PyExc_TypeError, "datagram_type must be a tuple subclass without __dict__");
        return -1;
    }
    if (check_layout(datagram_type) < 0) {
        return -1;
    }
    if (family != AF_INET && family != AF_INET6) {
        PyErr_Format(PyExc_ValueError, "family %d is neither AF_INET nor AF_INET6", family);
        return -1;
    }
    if (count < 1 || count > 1024) {
        PyErr_Format(PyExc_ValueError, "count %u is outside 1-1024", count);
        return -1;
    }
    if (slot < 1 || slot > 65536) {
        PyErr_Format(PyExc_ValueError, "slot %zd is outside 1-65536", slot);
        return -1;
    }
    if (limit < 1 || limit > 65536) {
        PyErr_Format(PyExc_ValueError, "limit %zd is outside 1-65536", limit);
        return -1;
    }
    self->fd = fd;
    self->family = family;
    self->gro = gro;
    self->count = count;
    self->slot = (size_t)slot;
    self->limit = (size_t)limit;
    Py_INCREF(datagram_type);
    self->datagram_type = (PyTypeObject *)datagram_type;
    self->data = PyMem_RawMalloc((size_t)count * (size_t)slot);
    self->msgs = PyMem_RawCalloc(count, sizeof(struct mmsghdr));
    self->iovs = PyMem_RawCalloc(count, sizeof(struct iovec));
    self->names = PyMem_RawCalloc(count, sizeof(struct sockaddr_storage));
    self->controls = gro ? PyMem_RawCalloc(count, CONTROL_ROOM) : NULL;
    self->steps = gro ? PyMem_RawCalloc(count, sizeof(size_t)) : NULL;
    if (!self->data || !self->msgs || !self->iovs || !self->names ||
        (gro && (!self->controls || !self->steps))) {
        PyErr_NoMemory();
        return -1;
    }
    for (unsigned int i = 0; i < count; i++) {
        self->iovs[i].iov_base = self->data + (size_t)i * self->slot;
        self->iovs[i].iov_len = self->slot;
        struct msghdr *hdr = &self->msgs[i].msg_hdr;
        hdr->msg_name = &self->names[i];
        hdr->msg_namelen = sizeof(struct sockaddr_storage);
        hdr->msg_iov = &self->iovs[i];
        hdr->msg_iovlen = 1;
        if (gro) {
            hdr->msg_control = self->controls + (size_t)i * CONTROL_ROOM;
            hdr->msg_controllen = CONTROL_ROOM;
        }
    }
    self->used = 0;
    return 0;
}

/* The (host, port) objects of a source address, new references, through the cache. */
static int reader_source(BatchReader *self, const struct sockaddr_storage *name,
                         socklen_t length, PyObject **host, PyObject **port) {
    const unsigned char *raw = (const unsigned char *)name;
    socklen_t keylen;
    unsigned int hash;
    if (name->ss_family == AF_INET) {
        keylen = 8; /* family, port, address */
        const struct sockaddr_in *sin = (const struct sockaddr_in *)name;
        hash = (unsigned int)sin->sin_addr.s_addr * 2654435761u ^ sin->sin_port;
    } else if (name->ss_family == AF_INET6) {
        keylen = sizeof(struct sockaddr_in6);
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)name;
        uint32_t last;
        memcpy(&last, sin6->sin6_addr.s6_addr + 12, 4);
        hash = last * 2654435761u ^ sin6->sin6_port;
    } else {
        /* No source (cannot happen for UDP): an empty host and port 0. */
        *host = PyUnicode_FromString("");
        *port = PyLong_FromLong(0);
        return (*host && *port) ? 0 : -1;
    }
    if (length < keylen) {
        keylen = length;
    }
    CacheEntry *entry = &self->cache[(hash >> 7) % CACHE_SIZE];
    if (entry->length == keylen && memcmp(entry->key, raw, keylen) == 0) {
        Py_INCREF(entry->host);
        Py_INCREF(entry->port);
        *host = entry->host;
        *port = entry->port;
        return 0;
    }
    char text[INET6_ADDRSTRLEN];
    unsigned int number;
    if (name->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)name;
        inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
        number = ntohs(sin->sin_port);
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)name;
        inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
        number = ntohs(sin6->sin6_port);
    }
    PyObject *new_host = PyUnicode_FromString(text);
    PyObject *new_port = PyLong_FromUnsignedLong(number);
    if (!new_host || !new_port) {
        Py_XDECREF(new_host);
        Py_XDECREF(new_port);
        return -1;
    }
    Py_XSETREF(entry->host, new_host);
    Py_XSETREF(entry->port, new_port);
    entry->length = keylen;
    memcpy(entry->key, raw, keylen);
    Py_INCREF(new_host);
    Py_INCREF(new_port);
    *host = new_host;
    *port = new_port;
    return 0;
}

/* A new Datagram (payload, host, port, None x 5, truncated), untracked by the collector. */
static PyObject *make_datagram(PyTypeObject *type, const char *bytes, Py_ssize_t size,
                               PyObject *host, PyObject *port, int truncated) {
    PyObject *payload = PyBytes_FromStringAndSize(bytes, size);
    if (payload == NULL) {
        return NULL;
    }
    PyObject *item = type->tp_alloc(type, DATAGRAM_FIELDS);
    if (item == NULL) {
        Py_DECREF(payload);
        return NULL;
    }
    PyTuple_SET_ITEM(item, 0, payload);
    Py_INCREF(host);
    PyTuple_SET_ITEM(item, 1, host);
    Py_INCREF(port);
    PyTuple_SET_ITEM(item, 2, port);
    for (int i = 3; i < 8; i++) {
        Py_INCREF(Py_None);
        PyTuple_SET_ITEM(item, i, Py_None);
    }
    PyObject *flag = truncated ? Py_True : Py_False;
    Py_INCREF(flag);
    PyTuple_SET_ITEM(item, 8, flag);
    /* Only atomic objects inside: no reference cycle can go through it. */
    PyObject_GC_UnTrack(item);
    return item;
}

/* The UDP_GRO segment size of message i, or 0 when it was not coalesced. */
static int gro_size(const struct msghdr *hdr) {
    struct cmsghdr *cmsg;
    for (cmsg = CMSG_FIRSTHDR(hdr); cmsg != NULL; cmsg = CMSG_NXTHDR((struct msghdr *)hdr, cmsg)) {
        if (cmsg->cmsg_level == SOL_UDP && cmsg->cmsg_type == UDP_GRO) {
            int size;
            memcpy(&size, CMSG_DATA(cmsg), sizeof(size));
            return size > 0 ? size : 0;
        }
    }
    return 0;
}

PyDoc_STRVAR(reader_read_doc,
             "read() -> (datagrams, payload_bytes, truncated, messages) or None\n\n"
             "One recvmmsg call (MSG_DONTWAIT). Returns None when nothing was waiting; raises\n"
             "OSError for any other failure. ``messages`` is the number of recvmmsg slots\n"
             "filled (with UDP_GRO one slot may hold many datagrams).");

static PyObject *reader_read(BatchReader *self, PyObject *Py_UNUSED(ignored)) {
    if (self->msgs == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "BatchReader is not initialised");
        return NULL;
    }
    /* recvmmsg writes the length of each source name (and of the control messages) back
     * into its header: restore the headers the last call used. */
    for (unsigned int i = 0; i < self->used; i++) {
        self->msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        if (self->gro) {
            self->msgs[i].msg_hdr.msg_controllen = CONTROL_ROOM;
        }
    }
    self->used = 0;
    /* MSG_DONTWAIT never blocks: the GIL stays held (releasing it costs more than the call
     * saves, and it keeps two threads from sharing these buffers). */
    int n = recvmmsg(self->fd, self->msgs, self->count, MSG_DONTWAIT, NULL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            Py_RETURN_NONE;
        }
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    self->used = (unsigned int)n;
    Py_ssize_t total = n;
    if (self->gro) {
        /* How many datagrams each coalesced buffer holds, for the list's size; the segment
         * sizes are kept for the pass below. */
        for (int i = 0; i < n; i++) {
            size_t length = self->msgs[i].msg_len < self->slot ? self->msgs[i].msg_len : self->slot;
            int size = gro_size(&self->msgs[i].msg_hdr);
            size_t step = size > 0 && length > (size_t)size ? (size_t)size : length;
            self->steps[i] = step;
            if (step > 0 && length > step) {
                total += (Py_ssize_t)((length - 1) / step);
            }
        }
    }
    PyObject *list = PyList_New(total);
    if (list == NULL) {
        return NULL;
    }
    Py_ssize_t at = 0;
    unsigned long long nbytes = 0;
    long truncated = 0;
    for (int i = 0; i < n; i++) {
        struct msghdr *hdr = &self->msgs[i].msg_hdr;
        size_t length = self->msgs[i].msg_len;
        int cut = (hdr->msg_flags & MSG_TRUNC) != 0;
        if (length > self->slot) {
            length = self->slot;
        }
        nbytes += length;
        PyObject *host, *port;
        if (reader_source(self, &self->names[i], hdr->msg_namelen, &host, &port) < 0) {
            Py_DECREF(list);
            return NULL;
        }
        const char *base = (const char *)self->iovs[i].iov_base;
        size_t step = self->gro ? self->steps[i] : length;
        size_t start = 0;
        do {
            size_t size = length - start < step ? length - start : step;
            /* Only the last piece of a buffer the kernel cut is cut; a GRO segment longer
             * than the limit is cut here. */
            int short_of = (cut && start + size >= length) || size > self->limit;
            truncated += short_of;
            PyObject *item = make_datagram(self->datagram_type, base + start,
                                           (Py_ssize_t)(size > self->limit ? self->limit : size),
                                           host, port, short_of);
            if (item == NULL) {
                Py_DECREF(host);
                Py_DECREF(port);
                Py_DECREF(list);
                return NULL;
            }
            PyList_SET_ITEM(list, at++, item);
            start += size;
        } while (start < length);
        Py_DECREF(host);
        Py_DECREF(port);
    }
    return Py_BuildValue("(NKli)", list, nbytes, truncated, n);
}

static PyObject *reader_get_count(BatchReader *self, void *Py_UNUSED(closure)) {
    return PyLong_FromUnsignedLong(self->count);
}

/* Reads per readiness event at most (the transport's loop stays fair to other tasks). */
static PyObject *reader_get_rounds(BatchReader *Py_UNUSED(self), void *Py_UNUSED(closure)) {
    return PyLong_FromLong(16);
}

static PyMethodDef reader_methods[] = {
    {"read", (PyCFunction)reader_read, METH_NOARGS, reader_read_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef reader_getset[] = {
    {"count", (getter)reader_get_count, NULL, "recvmmsg slots per read()", NULL},
    {"rounds", (getter)reader_get_rounds, NULL, "reads per readiness event at most", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(reader_doc,
             "BatchReader(fd, family, datagram_type, count=64, slot=65536, gro=False,\n"
             "            limit=65536)\n\n"
             "Preallocated recvmmsg state for one socket; read() returns Datagram tuples.\n"
             "``slot``: bytes per recvmmsg slot (longer datagrams come back cut, MSG_TRUNC);\n"
             "``limit``: the longest payload kept (GRO segments longer than it are cut).");

static PyTypeObject BatchReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "aiomcast._speedups.BatchReader",
    .tp_basicsize = sizeof(BatchReader),
    .tp_dealloc = (destructor)reader_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = reader_doc,
    .tp_methods = reader_methods,
    .tp_getset = reader_getset,
    .tp_init = (initproc)reader_init,
    .tp_new = PyType_GenericNew,
};

/* -- sending --------------------------------------------------------------------------------
 *
 * Fast path of Sender.send: one datagram to a destination already packed as a sockaddr. It
 * saves what socket.sendto costs around the syscall: parsing the address tuple every call and
 * releasing and taking back the GIL (the socket is non-blocking, so the call never waits).
 */

/* The descriptor argument of the send functions: an int in 0..INT_MAX, else -1 with the
 * error set. */
static int send_fd(PyObject *arg) {
    long fd = PyLong_AsLong(arg);
    if (fd == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (fd < 0 || fd > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "fd %ld is not a file descriptor", fd);
        return -1;
    }
    return (int)fd;
}

/* The length of a packed sockaddr argument (bytes), else -1 with the error set. */
static Py_ssize_t send_namelen(PyObject *address, const char *function) {
    if (!PyBytes_CheckExact(address)) {
        PyErr_Format(PyExc_TypeError, "%s() takes a bytes address", function);
        return -1;
    }
    Py_ssize_t namelen = PyBytes_GET_SIZE(address);
    if (namelen < (Py_ssize_t)sizeof(sa_family_t) ||
        namelen > (Py_ssize_t)sizeof(struct sockaddr_storage)) {
        PyErr_Format(PyExc_ValueError, "address of %zd bytes is not a sockaddr", namelen);
        return -1;
    }
    return namelen;
}

PyDoc_STRVAR(sendto_doc,
             "sendto(fd, data, address) -> bool\n\n"
             "One sendto(2) of the bytes ``data`` to ``address`` (a packed sockaddr, bytes) with\n"
             "MSG_DONTWAIT. True when sent; False when the socket buffer is full (EAGAIN) or the\n"
             "call was interrupted; OSError for any other failure.");

static PyObject *speedups_sendto(PyObject *Py_UNUSED(module), PyObject *const *args,
                                 Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "sendto() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    int fd = send_fd(args[0]);
    if (fd < 0) {
        return NULL;
    }
    if (!PyBytes_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "sendto() takes bytes data and a bytes address");
        return NULL;
    }
    Py_ssize_t namelen = send_namelen(args[2], "sendto");
    if (namelen < 0) {
        return NULL;
    }
    ssize_t sent = sendto(fd, PyBytes_AS_STRING(args[1]), (size_t)PyBytes_GET_SIZE(args[1]),
                          MSG_DONTWAIT, (const struct sockaddr *)PyBytes_AS_STRING(args[2]),
                          (socklen_t)namelen);
    if (sent < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            Py_RETURN_FALSE;
        }
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_TRUE;
}

/* Fast path of send_many without GSO: one sendmmsg(2) whose iovecs point straight into the
 * payloads' bytes objects (no joined copy, no ctypes call), every header naming the one
 * packed destination. At most SENDMMSG_MAX datagrams a call, from ``start``; the caller loops.
 */
#define SENDMMSG_MAX 64

PyDoc_STRVAR(sendmmsg_doc,
             "sendmmsg(fd, payloads, start, address) -> int\n\n"
             "One sendmmsg(2) with MSG_DONTWAIT of up to 64 of ``payloads`` (a list or tuple of\n"
             "bytes) from index ``start`` to ``address`` (a packed sockaddr, bytes). Returns how\n"
             "many the kernel took (at least 1); OSError (BlockingIOError when the socket\n"
             "buffer is full) when it took none.");

static PyObject *speedups_sendmmsg(PyObject *Py_UNUSED(module), PyObject *const *args,
                                   Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "sendmmsg() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    int fd = send_fd(args[0]);
    if (fd < 0) {
        return NULL;
    }
    PyObject *payloads = args[1];
    if (!PyList_CheckExact(payloads) && !PyTuple_CheckExact(payloads)) {
        PyErr_SetString(PyExc_TypeError, "sendmmsg() takes a list or tuple of payloads");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[2]);
    if (start == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t namelen = send_namelen(args[3], "sendmmsg");
    if (namelen < 0) {
        return NULL;
    }
    Py_ssize_t total = PySequence_Fast_GET_SIZE(payloads);
    if (start < 0 || start >= total) {
        PyErr_Format(PyExc_IndexError, "start %zd is outside the %zd payloads", start, total);
        return NULL;
    }
    Py_ssize_t count = total - start;
    if (count > SENDMMSG_MAX) {
        count = SENDMMSG_MAX;
    }
    PyObject **items = PySequence_Fast_ITEMS(payloads) + start;
    char *name = PyBytes_AS_STRING(args[3]);
    struct mmsghdr msgs[SENDMMSG_MAX];
    struct iovec iovs[SENDMMSG_MAX];
    memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)count);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = items[i];
        if (!PyBytes_CheckExact(item)) {
            PyErr_Format(PyExc_TypeError, "payload %zd is %.100s, not bytes", start + i,
                         Py_TYPE(item)->tp_name);
            return NULL;
        }
        iovs[i].iov_base = PyBytes_AS_STRING(item);
        iovs[i].iov_len = (size_t)PyBytes_GET_SIZE(item);
        msgs[i].msg_hdr.msg_name = name;
        msgs[i].msg_hdr.msg_namelen = (socklen_t)namelen;
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    /* The GIL is kept: the call never waits (MSG_DONTWAIT), and the payloads stay put. */
    int sent = sendmmsg(fd, msgs, (unsigned int)count, MSG_DONTWAIT);
    if (sent < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromLong(sent);
}

static PyMethodDef speedups_functions[] = {
    {"sendto", (PyCFunction)(void (*)(void))speedups_sendto, METH_FASTCALL, sendto_doc},
    {"sendmmsg", (PyCFunction)(void (*)(void))speedups_sendmmsg, METH_FASTCALL, sendmmsg_doc},
    {NULL, NULL, 0, NULL},
};
#endif /* __linux__ */

/* -- async iteration -------------------------------------------------------------------------
 *
 * Fast path of ``async for datagram in endpoint``: QueueIterator.__anext__ takes a queued
 * datagram straight off the endpoint's deque and returns it in a Ready awaitable, which hands
 * it back through am_send without a coroutine frame, a generator object or a StopIteration
 * (a Python ``async def __anext__`` costs all three per datagram). An empty queue is left to
 * the endpoint's own __anext__ coroutine, which waits, raises BusyError or ends the iteration.
 */

typedef struct {
    PyObject_HEAD
    PyObject *value; /* NULL once handed over */
} Ready;

static PyTypeObject ReadyType;

static void ready_dealloc(Ready *self) {
    Py_XDECREF(self->value);
    PyObject_Free(self);
}

static PyObject *ready_await(PyObject *self) {
    Py_INCREF(self);
    return self;
}

static PySendResult ready_send(Ready *self, PyObject *Py_UNUSED(arg), PyObject **result) {
    if (self->value == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited datagram");
        *result = NULL;
        return PYGEN_ERROR;
    }
    *result = self->value; /* the reference moves to the caller */
    self->value = NULL;
    return PYGEN_RETURN;
}

/* For callers that drive the awaitable as an iterator (next() / send(None)). */
static PyObject *ready_iternext(Ready *self) {
    PyObject *value;
    if (ready_send(self, Py_None, &value) == PYGEN_ERROR) {
        return NULL;
    }
    PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, value);
    Py_DECREF(value);
    if (stop != NULL) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
    return NULL;
}

static PyObject *ready_send_method(Ready *self, PyObject *arg) {
    if (arg != Py_None) {
        PyErr_SetString(PyExc_TypeError, "can't send non-None value to a just-started awaitable");
        return NULL;
    }
    return ready_iternext(self);
}

static PyObject *ready_throw(Ready *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_CLEAR(self->value);
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw() takes 1 to 3 arguments");
        return NULL;
    }
    PyObject *type = args[0];
    PyObject *value = nargs > 1 ? args[1] : NULL;
    if (PyExceptionInstance_Check(type)) {
        PyErr_SetObject((PyObject *)Py_TYPE(type), type);
    } else if (value != NULL && value != Py_None) {
        PyErr_SetObject(type, value);
    } else {
        PyErr_SetNone(type);
    }
    return NULL;
}

static PyObject *ready_close(Ready *self, PyObject *Py_UNUSED(ignored)) {
    Py_CLEAR(self->value);
    Py_RETURN_NONE;
}

static PyMethodDef ready_methods[] = {
    {"send", (PyCFunction)ready_send_method, METH_O, "Hand over the datagram (StopIteration)."},
    {"throw", (PyCFunction)(void (*)(void))ready_throw, METH_FASTCALL, "Raise in the awaiter."},
    {"close", (PyCFunction)ready_close, METH_NOARGS, "Drop the datagram."},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods ready_as_async = {
    .am_await = ready_await,
    .am_send = (sendfunc)ready_send,
};

static PyTypeObject ReadyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "aiomcast._speedups.Ready",
    .tp_basicsize = sizeof(Ready),
    .tp_dealloc = (destructor)ready_dealloc,
    .tp_as_async = &ready_as_async,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An awaitable that is already done: awaiting it returns its datagram.",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)ready_iternext,
    .tp_methods = ready_methods,
};

typedef struct {
    PyObject_HEAD
    PyObject *queue;   /* the endpoint's collections.deque */
    PyObject *popleft; /* its bound popleft */
    PyObject *wait;    /* the endpoint's __anext__: a coroutine for the empty queue */
} QueueIterator;

static int queue_iterator_traverse(QueueIterator *self, visitproc visit, void *arg) {
    Py_VISIT(self->queue);
    Py_VISIT(self->popleft);
    Py_VISIT(self->wait);
    return 0;
}

static int queue_iterator_clear(QueueIterator *self) {
    Py_CLEAR(self->queue);
    Py_CLEAR(self->popleft);
    Py_CLEAR(self->wait);
    return 0;
}

static void queue_iterator_dealloc(QueueIterator *self) {
    PyObject_GC_UnTrack(self);
    queue_iterator_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *queue_iterator_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"queue", "wait", NULL};
    PyObject *queue, *wait;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO", keywords, &queue, &wait)) {
        return NULL;
    }
    if (!PyCallable_Check(wait)) {
        PyErr_SetString(PyExc_TypeError, "wait must be callable");
        return NULL;
    }
    PyObject *popleft = PyObject_GetAttrString(queue, "popleft");
    if (popleft == NULL) {
        return NULL;
    }
    QueueIterator *self = (QueueIterator *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(popleft);
        return NULL;
    }
    Py_INCREF(queue);
    self->queue = queue;
    self->popleft = popleft;
    Py_INCREF(wait);
    self->wait = wait;
    return (PyObject *)self;
}

static PyObject *queue_iterator_aiter(PyObject *self) {
    Py_INCREF(self);
    return self;
}

static PyObject *queue_iterator_anext(QueueIterator *self) {
    Py_ssize_t queued = PyObject_Size(self->queue);
    if (queued < 0) {
        return NULL;
    }
    if (queued == 0) {
        return PyObject_CallNoArgs(self->wait);
    }
    PyObject *value = PyObject_CallNoArgs(self->popleft);
    if (value == NULL) {
        return NULL;
    }
    Ready *ready = PyObject_New(Ready, &ReadyType);
    if (ready == NULL) {
        Py_DECREF(value);
        return NULL;
    }
    ready->value = value;
    return (PyObject *)ready;
}

static PyAsyncMethods queue_iterator_as_async = {
    .am_aiter = queue_iterator_aiter,
    .am_anext = (unaryfunc)queue_iterator_anext,
};

static PyTypeObject QueueIteratorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "aiomcast._speedups.QueueIterator",
    .tp_basicsize = sizeof(QueueIterator),
    .tp_dealloc = (destructor)queue_iterator_dealloc,
    .tp_as_async = &queue_iterator_as_async,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "QueueIterator(queue, wait): async iterator over a deque; wait() when empty.",
    .tp_traverse = (traverseproc)queue_iterator_traverse,
    .tp_clear = (inquiry)queue_iterator_clear,
    .tp_new = queue_iterator_new,
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "aiomcast._speedups",
    .m_doc = "The fast paths of aiomcast in C: batch reads and sendto (Linux), async iteration.",
    .m_size = -1,
#ifdef __linux__
    .m_methods = speedups_functions,
#endif
};

PyMODINIT_FUNC PyInit__speedups(void) {
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyType_Ready(&ReadyType) < 0 || PyType_Ready(&QueueIteratorType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&QueueIteratorType);
    if (PyModule_AddObject(module, "QueueIterator", (PyObject *)&QueueIteratorType) < 0) {
        Py_DECREF(&QueueIteratorType);
        Py_DECREF(module);
        return NULL;
    }
#ifdef __linux__
    if (PyType_Ready(&BatchReaderType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&BatchReaderType);
    if (PyModule_AddObject(module, "BatchReader", (PyObject *)&BatchReaderType) < 0) {
        Py_DECREF(&BatchReaderType);
        Py_DECREF(module);
        return NULL;
    }
#endif
    return module;
}
