/* fuzz.h — shared plumbing of the fuzz targets in tests/fuzz/fuzz_*.c.
 *
 * A target is written once, as FUZZ_TARGET(name) { ... body over data, size ... }, and
 * built two ways:
 *   - `make fuzz`: with clang's libFuzzer (-fsanitize=fuzzer,address,undefined), the body
 *     becomes LLVMFuzzerTestOneInput and FUZZ_INIT(name) LLVMFuzzerInitialize;
 *   - tests/test_fuzz_replay.c (the normal suite, gcc, and ASan in CI): FUZZ_REPLAY is
 *     defined and every target is included under its own name (fuzz_<name>), so every
 *     committed seed and every past finding (tests/fuzz/corpus/<name>/,
 *     tests/fuzz/regress/<name>/) is replayed on every `make test`.
 * A target returns 0; it aborts (FUZZ_CHECK) when an oracle does not hold — an output
 * that is not valid UTF-8 JSON, a round trip that changes a value — so the fuzzer reports
 * it like a crash. Error returns of the engine are the expected outcome of bad input and
 * are only checked for having a message.
 */
#ifndef TINYALIGN_FUZZ_H
#define TINYALIGN_FUZZ_H
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tinyalign/common.h"

#ifdef FUZZ_REPLAY
#define FUZZ_TARGET(name) int fuzz_##name(const uint8_t *data, size_t size)
#define FUZZ_INIT(name) static void fuzz_##name##_init(void)
#else
#define FUZZ_TARGET(name) int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
#define FUZZ_INIT(name)                                                                 \
    static void fuzz_##name##_init(void);                                               \
    int LLVMFuzzerInitialize(int *argc, char ***argv) {                                 \
        (void)argc;                                                                     \
        (void)argv;                                                                     \
        fuzz_##name##_init();                                                           \
        return 0;                                                                       \
    }                                                                                   \
    static void fuzz_##name##_init(void)
#endif

/* An oracle that must hold for every input: prints what broke and aborts. */
#define FUZZ_CHECK(cond, ...)                                                           \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz oracle failed at %s:%d: ", __FILE__, __LINE__);       \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* A refused input must say why: TA_EINPUT (never TA_ERUNTIME, which means the machine
 * failed) with a non-empty message. */
static inline void fuzz_check_refusal(int rc, const TaError *err) {
    if (rc == TA_OK) return;
    FUZZ_CHECK(rc == TA_EINPUT, "bad input returned %d (not TA_EINPUT): %s", rc, err->msg);
    FUZZ_CHECK(err->msg[0] != '\0', "refused without a message");
}

/* A private scratch directory for the files a target hands to path-taking readers
 * (created once per process, under /dev/shm when it exists; removed at exit). */
static char fuzz_dir_path[256];
static void fuzz_dir_cleanup(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_path);
    if (fuzz_dir_path[0] && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", fuzz_dir_path);
}
static inline const char *fuzz_dir(void) {
    if (!fuzz_dir_path[0]) {
        struct stat sb;
        const char *base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp";
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/tinyalign-fuzz-XXXXXX", base);
        if (!mkdtemp(fuzz_dir_path)) {
            perror("mkdtemp");
            abort();
        }
        atexit(fuzz_dir_cleanup);
    }
    return fuzz_dir_path;
}

/* Writes data to <fuzz_dir>/name; returns the path (static storage, one per name slot). */
static inline const char *fuzz_write(const char *name, const uint8_t *data, size_t size) {
    static char path[8][512];
    static int slot = 0;
    char *p = path[slot++ & 7];
    snprintf(p, 512, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(p, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(p);
        abort();
    }
    return p;
}

/* The input as a NUL-terminated string (malloc'd; embedded NULs end it early). */
static inline char *fuzz_text(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* The repository root (seed files are read from it): $TA_ROOT or the working directory. */
static inline const char *fuzz_root(void) {
    const char *r = getenv("TA_ROOT");
    return r && *r ? r : ".";
}

#endif
