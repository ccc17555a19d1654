/* fuzz_util.h - what the harnesses share (header-only: each harness is one
 * translation unit linked with spirt_core and libFuzzer).
 *
 * The dataset loaders take paths, so each run writes its input into an
 * in-memory file (memfd) and hands the loader "/proc/self/fd/N": no disk I/O,
 * no temp files left behind when the fuzzer is killed, and reopening the
 * path gives the loader a fresh offset like a real file would. */
#ifndef SPIRT_FUZZ_UTIL_H
#define SPIRT_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct {
    int fd;
    char path[64];
} fz_file;

/* Replaces the file's contents with data[0..size) and returns its path. */
static inline const char *fz_FileSet(fz_file *f, const char *name, const uint8_t *data,
                                     size_t size)
{
    if (f->fd <= 0) {
        f->fd = memfd_create(name, MFD_CLOEXEC);
        if (f->fd < 0) {
            perror("fuzz: memfd_create");
            abort();
        }
        snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
    }
    if (ftruncate(f->fd, 0) != 0) {
        perror("fuzz: ftruncate");
        abort();
    }
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(f->fd, data + done, size - done, (off_t)done);
        if (n <= 0) {
            perror("fuzz: pwrite");
            abort();
        }
        done += (size_t)n;
    }
    return f->path;
}

/* A property the code under test promised was broken: report it the way
 * libFuzzer reports a crash, so the input is saved. */
#define FZ_CHECK(cond, ...)                                                        \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "fuzz: property failed: %s: ", #cond);              \
            fprintf(stderr, __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                   \
            abort();                                                               \
        }                                                                          \
    } while (0)

#endif
