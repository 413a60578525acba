/*
 * files: exercises a host's file system through wasi-libc, in a scratch
 * directory under the preopened directory /data. Prints "PASS <check>" or
 * "FAIL <check>: <detail>" per check, then "files: <n> passed, <m> failed",
 * and exits 0 only if every check passed.
 *
 * The expectations are POSIX's (as Linux implements them), so the program
 * passes on any correct POSIX-like WASI host. It removes its scratch
 * directory when done, and a leftover one from an interrupted run first.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROOT "/data/wb-files-test"
#define PATH_BYTES 512

static int passed, failed;

static void pass(const char *name) {
    printf("PASS %s\n", name);
    passed++;
}

static void fail(const char *name, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: ", name);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    failed++;
}

/* Pass if `ok`, else fail with the detail and the current errno. */
static bool check(const char *name, bool ok, const char *detail) {
    if (ok) pass(name);
    else fail(name, "%s (errno %d: %s)", detail, errno, strerror(errno));
    return ok;
}

/* Pass if the call failed (result -1 or NULL) with errno `want`. */
static void check_errno(const char *name, long result, int want) {
    if (result == -1 && errno == want) pass(name);
    else if (result != -1) fail(name, "succeeded, expected %s", strerror(want));
    else fail(name, "errno %d (%s), expected %d (%s)", errno, strerror(errno), want, strerror(want));
}

static const char *path(const char *rel) {
    static char buf[4][PATH_BYTES];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, PATH_BYTES, "%s/%s", ROOT, rel);
    return p;
}

static bool write_file(const char *p, const char *text) {
    int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) return false;
    size_t n = strlen(text);
    bool ok = write(fd, text, n) == (ssize_t)n;
    return close(fd) == 0 && ok;
}

/* Read up to `cap - 1` bytes of a file into buf, NUL-terminated. */
static ssize_t read_file(const char *p, char *buf, size_t cap) {
    int fd = open(p, O_RDONLY);
    if (fd < 0) return -1;
    size_t used = 0;
    for (;;) {
        ssize_t n = read(fd, buf + used, cap - 1 - used);
        if (n < 0) {
            close(fd);
            return -1;
        }
        if (n == 0 || used + (size_t)n == cap - 1) {
            used += (size_t)n;
            break;
        }
        used += (size_t)n;
    }
    buf[used] = '\0';
    close(fd);
    return (ssize_t)used;
}

/* rm -r, used only to clean up; returns 0 or -1. */
static int remove_tree(const char *p) {
    struct stat st;
    if (lstat(p, &st) != 0) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode)) return unlink(p);
    DIR *d = opendir(p);
    if (!d) return -1;
    struct dirent *e;
    int result = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char child[PATH_BYTES];
        snprintf(child, sizeof child, "%s/%s", p, e->d_name);
        if (remove_tree(child) != 0) result = -1;
    }
    closedir(d);
    return rmdir(p) == 0 ? result : -1;
}

static void file_checks(void) {
    char buf[256];
    struct stat st;

    errno = 0;
    check_errno("open-missing-is-ENOENT", open(path("missing"), O_RDONLY), ENOENT);

    check("create-and-write", write_file(path("a.txt"), "hello world\n"), "write a.txt");

    ssize_t n = read_file(path("a.txt"), buf, sizeof buf);
    if (n == 12 && strcmp(buf, "hello world\n") == 0) pass("read-back");
    else fail("read-back", "got %zd bytes '%s'", n, n < 0 ? "" : buf);

    int fd = open(path("a.txt"), O_RDWR);
    if (!check("open-read-write", fd >= 0, "open a.txt O_RDWR")) return;

    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 12) pass("fstat");
    else fail("fstat", "size %lld, mode %o", (long long)st.st_size, (unsigned)st.st_mode);

    n = read(fd, buf, 5);
    if (n == 5 && memcmp(buf, "hello", 5) == 0 && lseek(fd, 0, SEEK_CUR) == 5) pass("read-advances-offset");
    else fail("read-advances-offset", "read %zd", n);

    bool ok = pwrite(fd, "HELLO", 5, 0) == 5 && pread(fd, buf, 5, 6) == 5 && memcmp(buf, "world", 5) == 0 &&
              pread(fd, buf, 5, 0) == 5 && memcmp(buf, "HELLO", 5) == 0;
    check("pwrite-pread", ok, "pwrite/pread at explicit offsets");
    check("pread-pwrite-keep-offset", lseek(fd, 0, SEEK_CUR) == 5, "offset moved");

    ok = lseek(fd, 0, SEEK_END) == 12 && lseek(fd, 6, SEEK_SET) == 6 && read(fd, buf, 5) == 5 &&
         memcmp(buf, "world", 5) == 0 && lseek(fd, -5, SEEK_CUR) == 6;
    check("lseek", ok, "SEEK_END/SEEK_SET/SEEK_CUR");
    errno = 0;
    check_errno("lseek-negative-is-EINVAL", (long)lseek(fd, -100, SEEK_SET), EINVAL);

    n = read(fd, buf, sizeof buf);
    ssize_t at_eof = read(fd, buf, sizeof buf);
    check("read-at-eof-returns-0", n == 6 && at_eof == 0, "read past the end");

    ok = ftruncate(fd, 5) == 0 && fstat(fd, &st) == 0 && st.st_size == 5 && pread(fd, buf, 64, 0) == 5 &&
         memcmp(buf, "HELLO", 5) == 0;
    check("ftruncate-shrink", ok, "ftruncate to 5");

    ok = ftruncate(fd, 4096 + 5) == 0 && fstat(fd, &st) == 0 && st.st_size == 4096 + 5 &&
         pread(fd, buf, 100, 5) == 100;
    for (int i = 0; ok && i < 100; i++) ok = buf[i] == 0;
    check("ftruncate-extend-zero-fills", ok, "ftruncate to 4101");

    ok = pwrite(fd, "x", 1, 100000) == 1 && fstat(fd, &st) == 0 && st.st_size == 100001 &&
         pread(fd, buf, 10, 50000) == 10;
    for (int i = 0; ok && i < 10; i++) ok = buf[i] == 0;
    check("pwrite-past-end-leaves-zero-hole", ok, "pwrite at 100000");

    check("fsync", fsync(fd) == 0, "fsync");
    check("close", close(fd) == 0, "close");

    if (stat(path("a.txt"), &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 100001) pass("stat-file");
    else fail("stat-file", "size %lld", (long long)st.st_size);

    errno = 0;
    check_errno("open-excl-existing-is-EEXIST", open(path("a.txt"), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);

    fd = open(path("log.txt"), O_CREAT | O_WRONLY | O_APPEND, 0644);
    ok = fd >= 0 && write(fd, "one,", 4) == 4 && lseek(fd, 0, SEEK_SET) == 0 && write(fd, "two", 3) == 3;
    if (fd >= 0) close(fd);
    ok = ok && read_file(path("log.txt"), buf, sizeof buf) == 7 && strcmp(buf, "one,two") == 0;
    check("append-writes-at-end", ok, "O_APPEND");

    ok = write_file(path("log.txt"), "new") && read_file(path("log.txt"), buf, sizeof buf) == 3;
    check("open-trunc", ok, "O_TRUNC");
}

static void directory_checks(void) {
    char buf[256];
    struct stat st;

    bool ok = mkdir(path("dir"), 0755) == 0 && stat(path("dir"), &st) == 0 && S_ISDIR(st.st_mode);
    check("mkdir", ok, "mkdir dir");
    errno = 0;
    check_errno("mkdir-existing-is-EEXIST", mkdir(path("dir"), 0755), EEXIST);

    ok = write_file(path("dir/b.txt"), "bee") && mkdir(path("dir/sub"), 0755) == 0;
    check("create-in-subdirectory", ok, "dir/b.txt and dir/sub");

    /* readdir: exactly a.txt, log.txt and dir besides "." and "..". */
    DIR *d = opendir(ROOT);
    if (check("opendir", d != NULL, "opendir")) {
        int seen_a = 0, seen_log = 0, seen_dir = 0, other = 0;
        bool types_ok = true;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            if (strcmp(e->d_name, "a.txt") == 0) {
                seen_a++;
                types_ok &= e->d_type == DT_UNKNOWN || e->d_type == DT_REG;
            } else if (strcmp(e->d_name, "log.txt") == 0) {
                seen_log++;
                types_ok &= e->d_type == DT_UNKNOWN || e->d_type == DT_REG;
            } else if (strcmp(e->d_name, "dir") == 0) {
                seen_dir++;
                types_ok &= e->d_type == DT_UNKNOWN || e->d_type == DT_DIR;
            } else {
                other++;
            }
        }
        closedir(d);
        if (seen_a == 1 && seen_log == 1 && seen_dir == 1 && other == 0 && types_ok) pass("readdir");
        else fail("readdir", "a.txt x%d, log.txt x%d, dir x%d, %d others, types %s", seen_a, seen_log,
                  seen_dir, other, types_ok ? "ok" : "wrong");
    }

    ok = rename(path("a.txt"), path("c.txt")) == 0 && stat(path("a.txt"), &st) != 0 && errno == ENOENT &&
         stat(path("c.txt"), &st) == 0 && st.st_size == 100001;
    check("rename", ok, "rename a.txt to c.txt");

    ok = write_file(path("d.txt"), "old d") && rename(path("log.txt"), path("d.txt")) == 0 &&
         read_file(path("d.txt"), buf, sizeof buf) == 3 && strcmp(buf, "new") == 0;
    check("rename-replaces-existing", ok, "rename log.txt over d.txt");

    ok = rename(path("dir/sub"), path("sub2")) == 0 && stat(path("sub2"), &st) == 0 && S_ISDIR(st.st_mode);
    check("rename-directory", ok, "rename dir/sub to sub2");

    errno = 0;
    check_errno("rmdir-non-empty-is-ENOTEMPTY", rmdir(path("dir")), ENOTEMPTY);

    ok = unlink(path("dir/b.txt")) == 0 && stat(path("dir/b.txt"), &st) != 0 && errno == ENOENT;
    check("unlink", ok, "unlink dir/b.txt");
    errno = 0;
    check_errno("unlink-missing-is-ENOENT", unlink(path("dir/b.txt")), ENOENT);

    ok = rmdir(path("dir")) == 0 && stat(path("dir"), &st) != 0 && errno == ENOENT;
    check("rmdir", ok, "rmdir dir");

    errno = 0;
    check_errno("open-under-file-is-ENOTDIR", open(path("d.txt/x"), O_RDONLY), ENOTDIR);
    errno = 0;
    check_errno("create-in-missing-dir-is-ENOENT", open(path("nodir/x"), O_CREAT | O_WRONLY, 0644), ENOENT);
    errno = 0;
    check_errno("open-directory-for-write-is-EISDIR", open(path("sub2"), O_WRONLY), EISDIR);
}

static void symlink_checks(void) {
    char buf[256];
    struct stat st;

    bool ok = symlink("d.txt", path("link")) == 0;
    if (!check("symlink", ok, "symlink link -> d.txt")) return;

    ssize_t n = readlink(path("link"), buf, sizeof buf);
    if (n == 5 && memcmp(buf, "d.txt", 5) == 0) pass("readlink");
    else fail("readlink", "got %zd", n);

    ok = read_file(path("link"), buf, sizeof buf) == 3 && strcmp(buf, "new") == 0;
    check("open-follows-symlink", ok, "read through link");

    ok = lstat(path("link"), &st) == 0 && S_ISLNK(st.st_mode) && stat(path("link"), &st) == 0 &&
         S_ISREG(st.st_mode) && st.st_size == 3;
    check("lstat-vs-stat", ok, "lstat is a link, stat the target");

    ok = unlink(path("link")) == 0 && lstat(path("link"), &st) != 0 && stat(path("d.txt"), &st) == 0;
    check("unlink-symlink-keeps-target", ok, "unlink link");
}

int main(void) {
    if (remove_tree(ROOT) != 0) {
        printf("FAIL setup: cannot remove a leftover %s (errno %d: %s)\n", ROOT, errno, strerror(errno));
        printf("files: 0 passed, 1 failed\n");
        return 1;
    }
    if (!check("mkdir-scratch", mkdir(ROOT, 0755) == 0, "mkdir " ROOT)) {
        printf("files: %d passed, %d failed\n", passed, failed);
        return 1;
    }
    file_checks();
    directory_checks();
    symlink_checks();

    struct stat st;
    bool ok = remove_tree(ROOT) == 0 && stat(ROOT, &st) != 0 && errno == ENOENT;
    check("cleanup", ok, "remove " ROOT);

    printf("files: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
