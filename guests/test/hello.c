/*
 * hello: the smallest end-to-end check of a host's process interface.
 * Prints each argument as "arg[i]=<value>" and "GREETING=<value>" (or
 * "GREETING is unset") to stdout, "to-stderr" to stderr, and exits with the
 * status in EXIT_CODE (default 0).
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    for (int i = 0; i < argc; i++) printf("arg[%d]=%s\n", i, argv[i]);
    const char *greeting = getenv("GREETING");
    if (greeting) printf("GREETING=%s\n", greeting);
    else printf("GREETING is unset\n");
    fflush(stdout);
    fputs("to-stderr\n", stderr);
    const char *code = getenv("EXIT_CODE");
    return code ? atoi(code) : 0;
}
