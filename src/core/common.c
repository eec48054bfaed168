/* common.c — asserts, checked allocation, atomic file writes, RNG, CRC32 (zlib), FNV-1a,
 * JSON string escaping, "did you mean" suggestions, threads. See include/tinyalign/common.h.
 * This file deliberately holds no model or data logic. */
#define _POSIX_C_SOURCE 200809L
#include "tinyalign/common.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* OpenBLAS entry points (declared here to avoid depending on the header's location). */
void openblas_set_num_threads(int num_threads);
char *openblas_get_config(void);
char *openblas_get_corename(void);

void ta_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "tinyalign: internal error: assertion `%s` failed at %s:%d\n", expr, file,
            line);
    fflush(stderr);
    abort();
}

int ta_err(TaError *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

static void oom(size_t n, const char *what) {
    fprintf(stderr, "tinyalign: out of memory allocating %.1f MiB for %s\n",
            (double)n / (1024.0 * 1024.0), what ? what : "?");
    exit(TA_ERUNTIME);
}

void *ta_malloc(size_t n, const char *what) {
    void *p = malloc(n ? n : 1);
    if (!p) oom(n, what);
    return p;
}

void *ta_calloc(size_t n, const char *what) {
    void *p = calloc(n ? n : 1, 1);
    if (!p) oom(n, what);
    return p;
}

void *ta_realloc(void *p, size_t n, const char *what) {
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n, what);
    return q;
}

char *ta_strdup(const char *s, const char *what) {
    size_t n = strlen(s) + 1;
    return memcpy(ta_malloc(n, what), s, n);
}

/* Large buffers (parameters, gradients, AdamW moments, activations) are aligned to 2 MiB
 * and offered to the kernel as transparent huge pages (MADV_HUGEPAGE; a no-op where THP is
 * off): touching a fresh 4 KiB page costs a page fault, and on a virtual machine a fault
 * costs ~15 us, so zeroing 500 MiB of activations took ~2 s in 128k faults; 2 MiB pages
 * cut that 512-fold. The contents are the same either way. */
#define TA_HUGE_ALIGN ((size_t)2 << 20)

void *ta_aligned_alloc(size_t n, const char *what) {
    size_t rounded = (n + 63) / 64 * 64;
    if (!rounded) rounded = 64;
    const int huge = rounded >= 4 * TA_HUGE_ALIGN;
    void *p = NULL;
    if (huge) rounded = (rounded + TA_HUGE_ALIGN - 1) / TA_HUGE_ALIGN * TA_HUGE_ALIGN;
    if (posix_memalign(&p, huge ? TA_HUGE_ALIGN : 64, rounded) != 0) oom(n, what);
#ifdef MADV_HUGEPAGE
    if (huge) (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
    memset(p, 0, rounded);
    return p;
}

char *ta_read_file(const char *path, size_t *len, TaError *err) {
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        ta_err(err, TA_EINPUT, "%s: not a regular file%s", path,
               S_ISDIR(st.st_mode) ? " (it is a directory)" : "");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        ta_err(err, TA_EINPUT, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0) {
        ta_err(err, TA_EINPUT, "%s: cannot seek (is it a regular file?)", path);
        fclose(f);
        return NULL;
    }
    long sz = ftell(f);
    if (sz < 0) {
        ta_err(err, TA_EINPUT, "%s: cannot determine size (is it a regular file?)", path);
        fclose(f);
        return NULL;
    }
    rewind(f);
    char *buf = ta_malloc((size_t)sz + 1, path);
    size_t got = fread(buf, 1, (size_t)sz, f);
    fclose(f);
    if (got != (size_t)sz) {
        free(buf);
        ta_err(err, TA_EINPUT, "%s: short read (%zu of %ld bytes)", path, got, sz);
        return NULL;
    }
    buf[sz] = '\0';
    if (len) *len = (size_t)sz;
    return buf;
}

int ta_fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static void dirname_of(const char *path, char *out, size_t cap) {
    snprintf(out, cap, "%s", path);
    char *slash = strrchr(out, '/');
    if (!slash) snprintf(out, cap, ".");
    else if (slash == out) out[1] = '\0';
    else *slash = '\0';
}

int ta_write_file_atomic(const char *path, const void *buf, size_t len, TaError *err) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fault = ta_fault_errno(path);
    if (fault == EROFS || fault == EACCES || fault == ENOENT)
        return ta_err(err, TA_ERUNTIME, "%s: cannot create: %s", tmp, strerror(fault));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return ta_err(err, TA_ERUNTIME, "%s: cannot create: %s", tmp, strerror(errno));
    const char *p = buf;
    size_t left = len;
    while (left > 0) {
        ssize_t w = fault ? -1 : write(fd, p, left);
        if (fault) errno = fault;
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            return ta_err(err, TA_ERUNTIME, "%s: write failed: %s (disk full?)", tmp, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp);
        return ta_err(err, TA_ERUNTIME, "%s: fsync/close failed: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return ta_err(err, TA_ERUNTIME, "%s: rename failed: %s", path, strerror(errno));
    }
    char dir[4096];
    dirname_of(path, dir, sizeof dir);
    ta_fsync_dir(dir);
    return TA_OK;
}

int ta_mkdirs(const char *path, TaError *err) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    size_t n = strlen(buf);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            struct stat sb;
            int fault = stat(buf, &sb) != 0 ? ta_fault_errno(buf) : 0;
            if (fault || (mkdir(buf, 0755) != 0 && errno != EEXIST))
                return ta_err(err, TA_ERUNTIME, "%s: cannot create directory: %s", buf,
                              strerror(fault ? fault : errno));
            buf[i] = c;
        }
    }
    return TA_OK;
}

char *ta_pathf(char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    TA_ASSERT(n >= 0 && (size_t)n < cap);
    return out;
}

void ta_buf_add(TaBuf *b, const char *s, size_t len) {
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->n + len + 1 > cap) cap *= 2;
        b->p = ta_realloc(b->p, cap, "text buffer");
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
}

void ta_buf_puts(TaBuf *b, const char *s) { ta_buf_add(b, s, strlen(s)); }

void ta_buf_printf(TaBuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    char *tmp = ta_malloc((size_t)n + 1, "text buffer");
    va_start(ap, fmt);
    vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    va_end(ap);
    ta_buf_add(b, tmp, (size_t)n);
    free(tmp);
}

void ta_buf_json_string(TaBuf *b, const char *s) {
    ta_buf_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *esc = NULL;
        char hex[8];
        switch (*p) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (*p < 0x20) esc = ta_pathf(hex, sizeof hex, "\\u%04x", *p);
        }
        if (esc) ta_buf_puts(b, esc);
        else ta_buf_add(b, (const char *)p, 1);
    }
    ta_buf_add(b, "\"", 1);
}

long ta_utf8_invalid_at(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned cp, min;
        if (c >= 0xC2 && c <= 0xDF) need = 1, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF) need = 2, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) need = 3, cp = c & 0x07, min = 0x10000;
        else return (long)i; /* continuation byte, C0/C1 (overlong), F5..FF */
        for (size_t k = 1; k <= need; k++) {
            if (i + k >= n || (s[i + k] & 0xC0) != 0x80) return (long)i;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return (long)i;
        i += need + 1;
    }
    return -1;
}

long ta_utf8_column(const char *s, size_t off) {
    long col = 1;
    for (size_t i = 0; i < off; i++) col += ((unsigned char)s[i] & 0xC0) != 0x80;
    return col;
}

char *ta_excerpt(char *out, size_t cap, const void *p, size_t n) {
    const unsigned char *s = p;
    const size_t limit = 40;
    size_t o = 0, i = 0;
    TA_ASSERT(cap >= 8);
    while (i < n && i < limit) {
        /* one valid UTF-8 sequence (or printable ASCII) as is, any other byte as \xNN */
        long bad = ta_utf8_invalid_at((const char *)s + i, 1);
        size_t len = 1;
        if (s[i] >= 0x80) {
            len = s[i] >= 0xF0 ? 4 : s[i] >= 0xE0 ? 3 : 2;
            bad = i + len > n ? 0 : ta_utf8_invalid_at((const char *)s + i, len);
            if (s[i] == 0xC2 && i + 1 < n && s[i + 1] < 0xA0) bad = 0; /* C1 controls */
        } else if (s[i] < 0x20 || s[i] == 0x7F || s[i] == '\\' || s[i] == '"') {
            bad = 0;
        }
        if (bad < 0) {
            if (o + len + 4 >= cap) break;
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
        } else {
            if (o + 4 + 4 >= cap) break;
            if (s[i] == '\\' || s[i] == '"') o += (size_t)snprintf(out + o, cap - o, "\\%c", s[i]);
            else o += (size_t)snprintf(out + o, cap - o, "\\x%02X", s[i]);
            i++;
        }
    }
    if (i < n) o += (size_t)snprintf(out + o, cap - o, "...");
    out[o] = '\0';
    return out;
}

int ta_fault_errno(const char *path) {
    static const struct {
        const char *name;
        int code;
    } codes[] = {{"ENOSPC", ENOSPC}, {"EROFS", EROFS}, {"EIO", EIO}, {"EACCES", EACCES},
                 {"ENOENT", ENOENT}};
    const char *f = getenv("TINYALIGN_FAULT");
    const char *colon = f ? strchr(f, ':') : NULL;
    if (!colon || !colon[1] || !strstr(path, colon + 1)) return 0;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strlen(codes[i].name) == (size_t)(colon - f) && !strncmp(f, codes[i].name, (size_t)(colon - f)))
            return codes[i].code;
    return 0;
}

double ta_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- RNG ---------------------------------------------------------------------------- */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void ta_rng_seed(TaRng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ta_rng_u64(TaRng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float ta_rng_f32(TaRng *r) { return (float)(ta_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

double ta_rng_f64(TaRng *r) { return (double)(ta_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

uint64_t ta_rng_below(TaRng *r, uint64_t n) {
    TA_ASSERT(n > 0);
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = ta_rng_u64(r);
    while (x >= limit);
    return x % n;
}

double ta_rng_normal(TaRng *r) {
    double u1 = ta_rng_f64(r), u2 = ta_rng_f64(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void ta_rng_shuffle_u32(TaRng *r, uint32_t *a, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)ta_rng_below(r, i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* ---- CRC32, FNV-1a, suggestions ------------------------------------------------------ */
uint32_t ta_crc32(uint32_t crc, const void *buf, size_t len) {
    return (uint32_t)crc32_z(crc, buf, len);
}

uint64_t ta_fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001B3ULL;
    }
    return h;
}

int ta_edit_distance(const char *a, const char *b) {
    enum { MAXL = 64 };
    char x[MAXL], y[MAXL];
    int n = 0, m = 0;
    for (; a[n] && n < MAXL - 1; n++) x[n] = (char)tolower((unsigned char)a[n]);
    for (; b[m] && m < MAXL - 1; m++) y[m] = (char)tolower((unsigned char)b[m]);
    int dd[MAXL][MAXL];
    for (int i = 0; i <= n; i++) dd[i][0] = i;
    for (int j = 0; j <= m; j++) dd[0][j] = j;
    for (int i = 1; i <= n; i++)
        for (int j = 1; j <= m; j++) {
            int cost = x[i - 1] != y[j - 1];
            int v = dd[i - 1][j] + 1;
            if (dd[i][j - 1] + 1 < v) v = dd[i][j - 1] + 1;
            if (dd[i - 1][j - 1] + cost < v) v = dd[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && x[i - 1] == y[j - 2] && x[i - 2] == y[j - 1] &&
                dd[i - 2][j - 2] + 1 < v)
                v = dd[i - 2][j - 2] + 1;
            dd[i][j] = v;
        }
    return dd[n][m];
}

int ta_suggest_max_distance(size_t len) {
    return len <= 2 ? 0 : len <= 5 ? 1 : (len / 4 > 2 ? (int)(len / 4) : 2);
}

const char *ta_suggest(const char *word, const char *const *cands, int n) {
    const char *best = NULL;
    int bd = ta_suggest_max_distance(strlen(word)) + 1;
    for (int i = 0; i < n; i++) {
        int d = ta_edit_distance(word, cands[i]);
        if (d < bd) best = cands[i], bd = d;
    }
    return best;
}

/* ---- threads ------------------------------------------------------------------------ */
void ta_set_threads(int n) {
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
    n = omp_get_max_threads();
#else
    if (n <= 0) n = 1;
#endif
    /* OpenBLAS is the OpenMP build (see Makefile): it draws from the same pool, so the
     * two never oversubscribe. Setting its count explicitly keeps both in step. */
    openblas_set_num_threads(n);
}

int ta_get_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

#ifndef TA_SPM_VERSION
#define TA_SPM_VERSION "unknown"
#endif

void ta_runtime_info(char *buf, size_t cap) {
    const char *cfg = openblas_get_config();
    const char *core = openblas_get_corename();
#ifdef _OPENMP
    snprintf(buf, cap, "BLAS: %s (kernel %s); OpenMP: on, %d threads; SentencePiece %s",
             cfg ? cfg : "?", core ? core : "?", omp_get_max_threads(), TA_SPM_VERSION);
#else
    snprintf(buf, cap, "BLAS: %s (kernel %s); OpenMP: off (1 thread); SentencePiece %s",
             cfg ? cfg : "?", core ? core : "?", TA_SPM_VERSION);
#endif
}
