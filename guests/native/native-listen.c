/*
 * native-listen: gives a natively compiled guest what a WASI host gives it, a
 * listening socket on fd 3. Linked only into native builds
 * (`node guests/build.mjs --native OUTDIR`, compiled with -DWB_NATIVE), so the
 * guest sources stay unmodified portable C.
 *
 * Before main(), if WB_NATIVE_LISTEN=host:port is set ("127.0.0.1:7777",
 * "[::1]:0", port 0 picks a free port), it binds and listens there, moves the
 * socket to fd 3 and prints "native-listen: listening on <host>:<port>" to
 * stderr. Without the variable, fd 3 is assumed to be inherited already.
 *
 * It also does what a native process needs and a WASI guest never does:
 * ignores SIGPIPE (a send to a vanished peer must fail with EPIPE, not kill
 * the server) and raises the open-file soft limit to the hard limit so
 * benchmarks can open thousands of connections.
 */
#ifdef WB_NATIVE

#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define NATIVE_LISTEN_FD 3
#define NATIVE_LISTEN_BACKLOG 4096

static void die(const char *what, const char *detail) {
    fprintf(stderr, "native-listen: %s: %s\n", what, detail);
    exit(2);
}

__attribute__((constructor)) static void native_listen(void) {
    signal(SIGPIPE, SIG_IGN);

    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }

    const char *spec = getenv("WB_NATIVE_LISTEN");
    if (!spec || !*spec) return;

    /* Split "host:port" at the last colon; "[v6]:port" loses its brackets. */
    char *host = strdup(spec);
    if (!host) die("out of memory", spec);
    char *colon = strrchr(host, ':');
    if (!colon) die("WB_NATIVE_LISTEN must be host:port", spec);
    *colon = '\0';
    const char *port = colon + 1;
    if (host[0] == '[' && colon > host + 1 && colon[-1] == ']') {
        colon[-1] = '\0';
        memmove(host, host + 1, strlen(host));
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    int gai = getaddrinfo(*host ? host : NULL, port, &hints, &res);
    if (gai != 0) die(spec, gai_strerror(gai));

    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, NATIVE_LISTEN_BACKLOG) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) die(spec, "cannot bind and listen");

    if (fd != NATIVE_LISTEN_FD) {
        if (dup2(fd, NATIVE_LISTEN_FD) < 0) die("dup2", spec);
        close(fd);
    }

    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    char h[NI_MAXHOST], p[NI_MAXSERV];
    if (getsockname(NATIVE_LISTEN_FD, (struct sockaddr *)&addr, &len) == 0 &&
        getnameinfo((struct sockaddr *)&addr, len, h, sizeof h, p, sizeof p,
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        fprintf(stderr, strchr(h, ':') ? "native-listen: listening on [%s]:%s\n"
                                       : "native-listen: listening on %s:%s\n", h, p);
    free(host);
}

#endif
