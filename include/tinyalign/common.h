/* common.h — shared plumbing for every tinyalign module: always-on asserts, checked
 * allocation and file I/O, the error struct user-input errors travel in, a seeded RNG,
 * and a wall clock. Nothing here knows about models or data.
 *
 * Error tiers:
 *   TA_ASSERT        impossible state (a programmer error): prints file:line and aborts;
 *   ta_malloc/ta_fopen  resource failures: print what failed, the path and a hint, exit 1;
 *   TaError          user-input errors (config, CLI, datasets, files): filled by the callee,
 *                    returned to the caller, and only main/the trainer decides to exit.
 */
#ifndef TINYALIGN_COMMON_H
#define TINYALIGN_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TA_VERSION "0.1.0"

/* Process exit statuses. */
enum { TA_OK = 0, TA_ERUNTIME = 1, TA_EINPUT = 2 };

/* Always-on assert: an impossible state, never user input. */
#define TA_ASSERT(cond)                                                              \
    do {                                                                             \
        if (!(cond)) ta_assert_fail(#cond, __FILE__, __LINE__);                      \
    } while (0)
void ta_assert_fail(const char *expr, const char *file, int line);

/* A user-facing error: one message naming the file / line / key and what was expected.
 * Functions that can fail on user input take a TaError* and return TA_OK or TA_EINPUT
 * (or TA_ERUNTIME). The message is complete and printed as is by the caller. */
typedef struct {
    int code;        /* TA_OK, TA_EINPUT or TA_ERUNTIME */
    char msg[1024];
} TaError;

/* Sets err (if not NULL) and returns code. printf-style message. */
int ta_err(TaError *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Checked allocation: never returns NULL; on failure prints the size and `what`, exits 1.
 * Memory is freed with free(). ta_calloc zero-fills; ta_realloc resizes p (NULL = new);
 * ta_strdup copies a string. */
void *ta_malloc(size_t n, const char *what);
void *ta_calloc(size_t n, const char *what);
void *ta_realloc(void *p, size_t n, const char *what);
char *ta_strdup(const char *s, const char *what);
/* 64-byte aligned, zero-filled; free with free(). */
void *ta_aligned_alloc(size_t n, const char *what);

/* Reads a whole file into a malloc'd buffer (NUL-terminated; *len excludes the NUL).
 * Returns NULL and fills err with the path and the OS reason on failure. */
char *ta_read_file(const char *path, size_t *len, TaError *err);

/* Size and CRC32 of the bytes a writer put in a file, computed while writing (so a
 * checkpoint never re-reads what it just wrote). Writers that take a TaDigest* fill it
 * when it is not NULL. */
typedef struct {
    uint64_t bytes;
    uint32_t crc;
} TaDigest;

/* Writes buf to path atomically: path.tmp, fsync, rename, fsync of the directory.
 * Returns TA_OK or TA_ERUNTIME with err filled. */
int ta_write_file_atomic(const char *path, const void *buf, size_t len, TaError *err);

/* fsync a directory so a rename inside it is durable. Returns 0 on success. */
int ta_fsync_dir(const char *dir);

/* mkdir -p. Returns TA_OK or TA_ERUNTIME with err filled. */
int ta_mkdirs(const char *path, TaError *err);

/* snprintf for paths: formats into out (cap bytes) and asserts nothing was cut (Linux
 * paths are < 4096 bytes, the size every caller uses). Returns out. */
char *ta_pathf(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A growable NUL-terminated string (p may be NULL while empty). Zero-initialise, append,
 * free(b.p). Allocation failure exits like ta_malloc. */
typedef struct {
    char *p;
    size_t n, cap;
} TaBuf;
void ta_buf_add(TaBuf *b, const char *s, size_t len);
void ta_buf_puts(TaBuf *b, const char *s);
void ta_buf_printf(TaBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal: quoted; '"', '\\' and control characters escaped
 * (\n, \t, \r, \b, \f, else \u00XX); other bytes copied, so valid UTF-8 in gives valid
 * UTF-8 JSON out. The one JSON string writer of the engine (logs, configs, safetensors
 * headers); object trees are written with cJSON. */
void ta_buf_json_string(TaBuf *b, const char *s);

/* Byte offset of the first invalid UTF-8 sequence in s[0..n) (overlong forms, surrogates,
 * code points above U+10FFFF, stray or missing continuation bytes), or -1 when valid.
 * The engine checks every text input with it once, where the text comes in (JSONL lines,
 * config files and --set values, command-line and tokenizer input text). */
long ta_utf8_invalid_at(const char *s, size_t n);
/* The 1-based column of byte off in a line: code points before it + 1 (for messages). */
long ta_utf8_column(const char *s, size_t off);

/* A short printable excerpt of n bytes for an error message: at most 40 bytes of input,
 * printable ASCII and valid UTF-8 as they are; control characters (C0, DEL, C1), invalid
 * bytes as \xNN; '"' and '\' escaped; "..." when cut. Safe to print on a terminal and
 * inside quotes. Always NUL-terminated; returns out (cap >= 8). */
char *ta_excerpt(char *out, size_t cap, const void *p, size_t n);

/* Fault injection for tests (never set in normal use): when the environment variable
 * TINYALIGN_FAULT is "ERR:TEXT" (ERR one of ENOSPC, EROFS, EIO, EACCES, ENOENT), a writer
 * about to create or write a file or directory whose path contains TEXT fails as if the
 * system had returned that error. Returns the errno to simulate, or 0. Consulted by
 * ta_write_file_atomic, ta_mkdirs, the safetensors writer and checkpoint_save, so every
 * checkpoint file can be made to fail. */
int ta_fault_errno(const char *path);

/* Monotonic wall clock in seconds. */
double ta_now(void);

/* ---- RNG: xoshiro256** seeded by splitmix64. Small, fast, serialisable state. ---- */
typedef struct {
    uint64_t s[4];
} TaRng;

void ta_rng_seed(TaRng *r, uint64_t seed);
uint64_t ta_rng_u64(TaRng *r);
/* Uniform in [0, 1) with 24 random bits (float) / 53 bits (double). */
float ta_rng_f32(TaRng *r);
double ta_rng_f64(TaRng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t ta_rng_below(TaRng *r, uint64_t n);
/* Standard normal (Box–Muller, one value per call, no cached second value). */
double ta_rng_normal(TaRng *r);
/* In-place Fisher–Yates shuffle of n uint32 ids. */
void ta_rng_shuffle_u32(TaRng *r, uint32_t *a, size_t n);

/* CRC32 (IEEE 802.3) of a buffer, continuing from crc (start with 0): zlib's crc32. */
uint32_t ta_crc32(uint32_t crc, const void *buf, size_t len);

/* 64-bit FNV-1a over bytes, continuing from h (start with TA_FNV1A_INIT): a fast,
 * portable, non-cryptographic hash for cache keys and hashed features. */
#define TA_FNV1A_INIT 0xCBF29CE484222325ULL
uint64_t ta_fnv1a(uint64_t h, const void *p, size_t n);

/* "Did you mean": the optimal string alignment distance (Levenshtein plus adjacent
 * transpositions), case-insensitive, strings cut at 63 bytes; the largest distance worth
 * suggesting for a word of len bytes (0 for 1-2, 1 for 3-5, then max(2, len / 4)); and
 * the candidate closest to word within that distance (first on ties), or NULL. */
int ta_edit_distance(const char *a, const char *b);
int ta_suggest_max_distance(size_t len);
const char *ta_suggest(const char *word, const char *const *cands, int n);

/* Thread control: the number of threads the engine uses for OpenMP and OpenBLAS.
 * ta_set_threads(n) sets both pools to n (n <= 0: keep the default = cores). */
void ta_set_threads(int n);
int ta_get_threads(void);
/* A one-line description of the BLAS/OpenMP build ("OpenBLAS 0.3.21 ... Haswell, OpenMP 2 threads"). */
void ta_runtime_info(char *buf, size_t cap);

#endif
