/*
 * echo: sends every byte a client sends straight back, on the listening
 * socket the host pre-opens as fd 3. Any number of clients at once.
 *
 * When a client half-closes (shuts down its write side), echo finishes
 * sending what it still owes, then shuts down its own write side and closes.
 * A client that sends without reading is throttled by netloop's output high
 * water mark rather than buffered without bound.
 */
#include "netloop.h"

static size_t on_request(nl_conn *c, const char *data, size_t len) {
    nl_write(c, data, len);
    return len;
}

int main(void) {
    static const nl_protocol protocol = {.on_request = on_request, .on_close = NULL};
    return nl_serve(NETLOOP_LISTEN_FD, &protocol);
}
