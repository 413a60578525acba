/*
 * netloop: the single-threaded poll() event loop shared by the network guests.
 *
 * WASI preview 1 has no socket()/bind()/listen(): the host hands the guest an
 * already-listening socket (fd 3 by convention, like `wasmtime --tcplisten`).
 * netloop accepts clients on it, reads their bytes into a per-client input
 * buffer, hands complete requests to the protocol, and buffers the replies
 * until the client can take them. Everything is dynamic: there is no limit on
 * the number of clients or the size of a request other than memory.
 *
 * Only accept, recv, send, shutdown, close, poll and fcntl are used, so the same
 * source runs under WASI and natively.
 *
 * Failure policy: anything that goes wrong with one client (reset, EOF in the
 * middle of a request, send error, out of memory for its buffers) closes that
 * client only. Only a broken listener or a failing poll() stops the server.
 */
#ifndef NETLOOP_H
#define NETLOOP_H

#include <stdbool.h>
#include <stddef.h>

/* The listening socket the host pre-opens for the guest. */
#define NETLOOP_LISTEN_FD 3

typedef struct nl_conn nl_conn;

/*
 * Parse and execute at most one request from `data[0..len)`, the bytes
 * received from `c` and not yet consumed. Append replies with nl_write().
 * Return the number of bytes the request took, or 0 if `data` does not hold a
 * complete request yet (netloop calls again when more bytes arrive). On a
 * protocol error, write the error, call nl_close_after_reply() and return any
 * non-zero count.
 */
typedef size_t (*nl_request_fn)(nl_conn *c, const char *data, size_t len);

typedef struct {
    nl_request_fn on_request;
    /* Optional: called with a client's state pointer just before it is freed. */
    void (*on_close)(nl_conn *c);
} nl_protocol;

/*
 * Serve clients on `listen_fd` forever. Returns only if the listener or poll()
 * fails for good, after printing why to stderr; the return value is then a
 * suitable exit code (non-zero).
 */
int nl_serve(int listen_fd, const nl_protocol *protocol);

/* Queue `len` bytes for `c`. If the buffer cannot grow, the client is closed. */
void nl_write(nl_conn *c, const void *data, size_t len);

/* Queue a NUL-terminated string for `c`. */
void nl_write_str(nl_conn *c, const char *s);

/* Close `c` once everything queued so far has been sent; read nothing more. */
void nl_close_after_reply(nl_conn *c);

/* Per-client protocol state, owned by the protocol (NULL initially). */
void *nl_get_user(const nl_conn *c);
void nl_set_user(nl_conn *c, void *user);

#endif
