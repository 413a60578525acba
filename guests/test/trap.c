/*
 * trap: crashes on purpose inside a function with a recognisable name, so a
 * host can check that it reports guest traps with the guest's function names
 * (taken from the module's "name" section). Prints "about to trap" first.
 */
#include <stdio.h>

/* noinline keeps the function, and its name, in the binary. */
__attribute__((noinline)) void guest_crash_here(void) { __builtin_trap(); }

int main(void) {
    puts("about to trap");
    fflush(stdout);
    guest_crash_here();
    return 0;
}
