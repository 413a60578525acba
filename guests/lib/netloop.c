/*
 * netloop: see netloop.h for the contract.
 *
 * Clients live in two parallel dynamic arrays: `pfds` (handed to poll() as is)
 * and `conns`. Slot 0 is the listener. A client is removed by moving the last
 * slot into its place, so the arrays never have holes; that is why the event
 * scan runs from the end towards the front.
 *
 * Client file descriptors are never used as array indexes: the host chooses
 * their numbers and the guest must not assume they are small or dense.
 */
#include "netloop.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Size of the one receive buffer shared by all clients: the most one recv()
 * takes. Clients only get buffers of their own for bytes that must wait (an
 * incomplete request, unsent replies), sized to what waits, so thousands of
 * idle clients cost next to nothing. This matters doubly in a guest: linear
 * memory never shrinks, and all of it is checkpointed. */
#define READ_CHUNK_BYTES (64 * 1024)
/* Stop reading and executing a client's requests while this much output is
 * unsent: a client that pipelines without reading gets TCP back-pressure
 * instead of making the server buffer without bound. */
#define OUTPUT_HIGH_WATER_BYTES (1024 * 1024)
/* Smallest allocation for a client's own input or output buffer. */
#define BUFFER_MIN_ALLOC_BYTES 1024
/* When accept() reports the guest is out of descriptors or memory, stop
 * accepting until a client closes or this long has passed. */
#define ACCEPT_RETRY_DELAY_MS 100
/* Initial capacity of the client arrays (they double as needed). */
#define INITIAL_SLOTS 64
/* wasi-libc's poll() builds its WASI subscription and event arrays on the
 * stack: at most this many bytes per polled descriptor (2 x 48 + 2 x 32). */
#define POLL_STACK_BYTES_PER_FD 160
/* Stack left for everything but poll()'s arrays. */
#define STACK_RESERVE_BYTES (64 * 1024)

#ifdef __wasi__
/* The guest stack's bounds, defined by wasm-ld. */
extern char __stack_low, __stack_high;
#endif

typedef struct {
    char *data;
    size_t start; /* first unconsumed / unsent byte */
    size_t end;   /* one past the last byte */
    size_t cap;
} buffer;

struct nl_conn {
    int fd;
    buffer in;
    buffer out;
    bool read_closed; /* the peer sent EOF: execute what is complete, then close */
    bool closing;     /* close once `out` is drained, read nothing more */
    bool broken;      /* a buffer could not grow: close at once */
    void *user;
};

static const nl_protocol *proto;
static char *read_chunk; /* READ_CHUNK_BYTES, shared */
static struct pollfd *pfds;
static nl_conn **conns;
static size_t nslots; /* used slots, including the listener in slot 0 */
static size_t slot_cap;
static bool accept_paused;
static bool accept_failing; /* accept() ran out of resources, not yet recovered */

static size_t pending(const buffer *b) { return b->end - b->start; }

static void buffer_release(buffer *b) {
    free(b->data);
    b->data = NULL;
    b->start = b->end = b->cap = 0;
}

/* Make room for `extra` more bytes after `end`. Returns false if out of memory. */
static bool buffer_reserve(buffer *b, size_t extra) {
    if (b->cap - b->end >= extra) return true;
    if (b->start > 0) { /* slide the unconsumed bytes to the front first */
        memmove(b->data, b->data + b->start, pending(b));
        b->end -= b->start;
        b->start = 0;
        if (b->cap - b->end >= extra) return true;
    }
    if (extra > SIZE_MAX - b->end) return false;
    size_t need = b->end + extra;
    size_t cap = b->cap ? b->cap : BUFFER_MIN_ALLOC_BYTES;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *data = realloc(b->data, cap);
    if (!data) return false;
    b->data = data;
    b->cap = cap;
    return true;
}

void nl_write(nl_conn *c, const void *data, size_t len) {
    if (c->broken || len == 0) return;
    if (!buffer_reserve(&c->out, len)) {
        c->broken = true;
        return;
    }
    memcpy(c->out.data + c->out.end, data, len);
    c->out.end += len;
}

void nl_write_str(nl_conn *c, const char *s) { nl_write(c, s, strlen(s)); }

void nl_close_after_reply(nl_conn *c) { c->closing = true; }

void *nl_get_user(const nl_conn *c) { return c->user; }

void nl_set_user(nl_conn *c, void *user) { c->user = user; }

/* Best effort: a host that cannot make a socket non-blocking still works, as
 * netloop only calls recv() after poll() reported the socket readable. */
static bool set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return false;
    if (flags & O_NONBLOCK) return true;
    return fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

/* How many descriptors poll() can take before it would overflow the stack
 * (an overflow traps: wasm-ld places the stack first). The stack size is a
 * link option; natively the stack is large and poll() uses the heap. */
static size_t max_slots(void) {
#ifdef __wasi__
    size_t stack = (size_t)(&__stack_high - &__stack_low);
    if (stack <= STACK_RESERVE_BYTES + POLL_STACK_BYTES_PER_FD) return 1;
    return (stack - STACK_RESERVE_BYTES) / POLL_STACK_BYTES_PER_FD;
#else
    return SIZE_MAX;
#endif
}

static bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

static bool grow_slots(void) {
    if (nslots < slot_cap) return true;
    size_t cap = slot_cap ? slot_cap * 2 : INITIAL_SLOTS;
    struct pollfd *p = realloc(pfds, cap * sizeof *p);
    if (!p) return false;
    pfds = p;
    nl_conn **c = realloc(conns, cap * sizeof *c);
    if (!c) return false;
    conns = c;
    slot_cap = cap;
    return true;
}

static void close_slot(size_t i) {
    nl_conn *c = conns[i];
    if (proto->on_close) proto->on_close(c);
    close(c->fd);
    buffer_release(&c->in);
    buffer_release(&c->out);
    free(c);
    nslots--;
    pfds[i] = pfds[nslots];
    conns[i] = conns[nslots];
    accept_paused = false; /* a descriptor was freed */
}

/* Polite end of a client: FIN after the last reply, then release it. */
static void finish_slot(size_t i) {
    shutdown(conns[i]->fd, SHUT_WR);
    close_slot(i);
}

/* Accept pending connections. Returns false if the listener is unusable. */
static bool accept_clients(int listen_fd, bool listener_nonblocking) {
    for (;;) {
        if (nslots >= max_slots()) {
            static bool warned;
            if (!warned)
                fprintf(stderr, "netloop: %zu clients, the most this guest's stack allows for poll(); "
                                "new connections wait\n", nslots - 1);
            warned = true;
            accept_paused = true;
            return true;
        }
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0) {
            int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK) return true;
            if (err == EINTR || err == ECONNABORTED || err == EPROTO) {
                if (listener_nonblocking) continue;
                return true;
            }
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                if (!accept_failing) /* once per episode, not every retry */
                    fprintf(stderr, "netloop: accept: %s; pausing new connections\n", strerror(err));
                accept_failing = true;
                accept_paused = true;
                return true;
            }
            fprintf(stderr, "netloop: accept on fd %d failed: %s\n", listen_fd, strerror(err));
            return false;
        }
        accept_failing = false;
        set_nonblocking(fd);
        nl_conn *c = calloc(1, sizeof *c);
        if (!c || !grow_slots()) {
            free(c);
            close(fd);
            accept_paused = true;
            return true;
        }
        c->fd = fd;
        pfds[nslots] = (struct pollfd){.fd = fd, .events = 0, .revents = 0};
        conns[nslots] = c;
        nslots++;
        /* A blocking listener could block in the next accept(). */
        if (!listener_nonblocking) return true;
    }
}

/* Execute complete requests from `in`. Returns true if it stopped at the
 * output high water mark with input left over. */
static bool execute_from(nl_conn *c, buffer *in) {
    while (!c->closing && !c->broken && pending(in) > 0) {
        if (pending(&c->out) >= OUTPUT_HIGH_WATER_BYTES) return true;
        size_t avail = pending(in);
        size_t used = proto->on_request(c, in->data + in->start, avail);
        if (used == 0) break;
        if (used > avail) abort(); /* protocol bug: consumed bytes it was not given */
        in->start += used;
    }
    return false;
}

/* Keep what the client sent and was not executed yet; false if out of memory. */
static bool keep_input(nl_conn *c, const char *data, size_t len) {
    if (len == 0) return true;
    if (!buffer_reserve(&c->in, len)) return false;
    memcpy(c->in.data + c->in.end, data, len);
    c->in.end += len;
    return true;
}

/* Execute the client's waiting requests; release its input buffer once empty. */
static bool execute_requests(nl_conn *c) {
    bool throttled = execute_from(c, &c->in);
    if (pending(&c->in) == 0) buffer_release(&c->in);
    return throttled;
}

/* Receive once into the shared chunk and execute what is complete. Returns
 * false if the client must be closed now. */
static bool read_client(nl_conn *c) {
    ssize_t n = recv(c->fd, read_chunk, READ_CHUNK_BYTES, 0);
    if (n == 0) {
        c->read_closed = true;
        return true;
    }
    if (n < 0) return would_block(errno);
    if (pending(&c->in) > 0) /* continues an incomplete request */
        return keep_input(c, read_chunk, (size_t)n);
    /* The common case: execute straight from the shared chunk, keep the rest. */
    buffer chunk = {.data = read_chunk, .start = 0, .end = (size_t)n, .cap = READ_CHUNK_BYTES};
    execute_from(c, &chunk);
    return keep_input(c, chunk.data + chunk.start, pending(&chunk));
}

/* Send as much queued output as the socket takes. Returns false on a send
 * error (the client must be closed). */
static bool flush_client(nl_conn *c) {
    while (pending(&c->out) > 0) {
        ssize_t n = send(c->fd, c->out.data + c->out.start, pending(&c->out), 0);
        if (n > 0) {
            c->out.start += (size_t)n;
        } else if (n < 0 && would_block(errno)) {
            return true;
        } else {
            return false;
        }
    }
    buffer_release(&c->out);
    return true;
}

static short wanted_events(const nl_conn *c) {
    short events = 0;
    if (!c->read_closed && !c->closing && pending(&c->out) < OUTPUT_HIGH_WATER_BYTES)
        events |= POLLIN;
    if (pending(&c->out) > 0) events |= POLLOUT;
    return events;
}

static void service_slot(size_t i) {
    nl_conn *c = conns[i];
    short revents = pfds[i].revents;
    if (revents & (POLLERR | POLLNVAL)) {
        close_slot(i);
        return;
    }
    if ((pfds[i].events & POLLIN) && (revents & (POLLIN | POLLHUP))) {
        if (!read_client(c)) {
            close_slot(i);
            return;
        }
    } else if (revents & POLLHUP) {
        close_slot(i); /* the peer is gone and there is nothing left to read */
        return;
    }
    /* Execute, send, and repeat while sending made room for more replies. */
    for (;;) {
        bool throttled = execute_requests(c);
        if (c->broken || !flush_client(c)) {
            close_slot(i);
            return;
        }
        if (!throttled || pending(&c->out) >= OUTPUT_HIGH_WATER_BYTES) break;
    }
    if ((c->read_closed || c->closing) && pending(&c->out) == 0) finish_slot(i);
}

int nl_serve(int listen_fd, const nl_protocol *protocol) {
    proto = protocol;
    if (fcntl(listen_fd, F_GETFL) < 0 && errno == EBADF) {
        fprintf(stderr, "netloop: no listening socket on fd %d (the host must pre-open one)\n",
                listen_fd);
        return 2;
    }
    bool listener_nonblocking = set_nonblocking(listen_fd);
    read_chunk = malloc(READ_CHUNK_BYTES);
    if (!read_chunk || !grow_slots()) {
        fprintf(stderr, "netloop: out of memory\n");
        return 1;
    }
    pfds[0] = (struct pollfd){.fd = listen_fd, .events = POLLIN, .revents = 0};
    conns[0] = NULL;
    nslots = 1;

    for (;;) {
        pfds[0].events = accept_paused ? 0 : POLLIN;
        for (size_t i = 1; i < nslots; i++) {
            pfds[i].events = wanted_events(conns[i]);
            pfds[i].revents = 0;
        }
        pfds[0].revents = 0;
        int ready = poll(pfds, (nfds_t)nslots, accept_paused ? ACCEPT_RETRY_DELAY_MS : -1);
        if (ready < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            fprintf(stderr, "netloop: poll failed: %s\n", strerror(errno));
            return 1;
        }
        if (ready == 0) {
            accept_paused = false; /* the retry delay passed */
            continue;
        }
        /* Clients accepted now are appended past `polled` and wait for the
         * next poll(); the scan runs backwards so removals are safe. */
        size_t polled = nslots;
        if (pfds[0].revents & (POLLERR | POLLNVAL)) {
            fprintf(stderr, "netloop: listening socket fd %d failed\n", listen_fd);
            return 1;
        }
        if ((pfds[0].revents & (POLLIN | POLLHUP)) && !accept_clients(listen_fd, listener_nonblocking))
            return 1;
        for (size_t i = polled - 1; i >= 1; i--) {
            if (pfds[i].revents) service_slot(i);
        }
    }
}
