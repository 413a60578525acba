/*
 * counter: a tiny stateful server for deterministic replay tests, on the
 * listening socket the host pre-opens as fd 3. Line protocol ("\n" or "\r\n"):
 *   INC  -> increments the counter and replies the new value, "<n>\n"
 *   GET  -> replies the current value, "<n>\n"
 * anything else -> "ERR unknown command\n". All clients share one counter.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "netloop.h"

/* Longest accepted request line; a longer one is an error and closes the client. */
#define MAX_LINE_BYTES 1024

static uint64_t counter;

static size_t on_request(nl_conn *c, const char *data, size_t len) {
    const char *nl = memchr(data, '\n', len);
    if (!nl) {
        if (len > MAX_LINE_BYTES) {
            nl_write_str(c, "ERR line too long\n");
            nl_close_after_reply(c);
            return len;
        }
        return 0;
    }
    size_t n = (size_t)(nl - data);
    if (n > 0 && data[n - 1] == '\r') n--;
    char reply[32];
    if (n == 3 && memcmp(data, "INC", 3) == 0) {
        counter++;
        snprintf(reply, sizeof reply, "%llu\n", (unsigned long long)counter);
        nl_write_str(c, reply);
    } else if (n == 3 && memcmp(data, "GET", 3) == 0) {
        snprintf(reply, sizeof reply, "%llu\n", (unsigned long long)counter);
        nl_write_str(c, reply);
    } else {
        nl_write_str(c, "ERR unknown command\n");
    }
    return (size_t)(nl - data) + 1;
}

int main(void) {
    static const nl_protocol protocol = {.on_request = on_request, .on_close = NULL};
    return nl_serve(NETLOOP_LISTEN_FD, &protocol);
}
