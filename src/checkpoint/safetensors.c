/* safetensors.c — reader (mmap + full header validation) and F32 writer for the
 * safetensors format. See include/tinyalign/safetensors.h for the layout and the checks.
 *
 * The reader never trusts the header: every number is checked before it is used as an
 * offset, so a corrupt or truncated file gives a message, never a crash. It does not
 * handle sharded checkpoints or big-endian hosts (asserted). The writer streams tensors
 * straight from the caller's memory into path.tmp (transposing 2-D tensors on the fly
 * when asked), then fsyncs and renames, so a crash never leaves a half-written file
 * under the real name.
 */
#define _POSIX_C_SOURCE 200809L
#include "tinyalign/safetensors.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Largest header we accept (the reference implementation's limit). */
#define ST_MAX_HEADER (100u * 1000u * 1000u)
/* Offsets and dims are JSON numbers (doubles): integers are exact up to 2^53. */
#define ST_MAX_INT 9007199254740992.0

static const struct {
    const char *name;
    size_t size;
} DTYPES[ST_NUM_DTYPES] = {
    [ST_BOOL] = {"BOOL", 1}, [ST_U8] = {"U8", 1},     [ST_I8] = {"I8", 1},
    [ST_F8_E5M2] = {"F8_E5M2", 1}, [ST_F8_E4M3] = {"F8_E4M3", 1},
    [ST_I16] = {"I16", 2},   [ST_U16] = {"U16", 2},   [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2}, [ST_I32] = {"I32", 4},   [ST_U32] = {"U32", 4},
    [ST_F32] = {"F32", 4},   [ST_I64] = {"I64", 8},   [ST_U64] = {"U64", 8},
    [ST_F64] = {"F64", 8},
};

const char *safetensors_dtype_name(SafeDtype d) {
    TA_ASSERT(d >= 0 && d < ST_NUM_DTYPES);
    return DTYPES[d].name;
}

size_t safetensors_dtype_size(SafeDtype d) {
    TA_ASSERT(d >= 0 && d < ST_NUM_DTYPES);
    return DTYPES[d].size;
}

static void assert_little_endian(void) {
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    TA_ASSERT(b == 1 && "safetensors I/O assumes a little-endian host");
}

char *safetensors_shape_str(char *buf, size_t cap, const int64_t *shape, int ndim) {
    TA_ASSERT(cap >= 3);
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

/* ---- reader --------------------------------------------------------------------------- */

void safetensors_close(SafeTensors *st) {
    if (!st) return;
    if (st->map) munmap(st->map, st->file_size);
    for (int i = 0; i < st->n; i++) free(st->tensors[i].name);
    free(st->tensors);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_vals[i]);
    }
    free(st->meta_keys);
    free(st->meta_vals);
    free(st->path);
    memset(st, 0, sizeof *st);
}

/* A JSON number that is a non-negative integer representable exactly. */
static int json_uint(const cJSON *j, double *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0.0) || d > ST_MAX_INT || floor(d) != d) return 0;
    *out = d;
    return 1;
}

/* Parses one tensor entry {"dtype", "shape", "data_offsets"} into t (name set by caller).
 * Returns TA_OK or fills err. */
static int parse_entry(const char *path, const cJSON *e, SafeTensorInfo *t, TaError *err) {
    const char *nm = t->name;
    if (!cJSON_IsObject(e))
        return ta_err(err, TA_EINPUT,
                      "%s: header entry \"%s\" is not an object (expected {\"dtype\", "
                      "\"shape\", \"data_offsets\"})", path, nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt))
        return ta_err(err, TA_EINPUT, "%s: tensor \"%s\": missing or non-string \"dtype\"",
                      path, nm);
    int d = -1;
    for (int i = 0; i < ST_NUM_DTYPES; i++)
        if (!strcmp(dt->valuestring, DTYPES[i].name)) d = i;
    if (d < 0)
        return ta_err(err, TA_EINPUT,
                      "%s: tensor \"%s\": unknown dtype \"%s\" (expected one of F32, F16, "
                      "BF16, F64, I64, I32, I16, I8, U8, BOOL, ...)", path, nm, dt->valuestring);
    t->dtype = (SafeDtype)d;
    if (!cJSON_IsArray(sh))
        return ta_err(err, TA_EINPUT, "%s: tensor \"%s\": missing or non-list \"shape\"", path,
                      nm);
    int nd = cJSON_GetArraySize(sh);
    if (nd > ST_MAX_DIMS)
        return ta_err(err, TA_EINPUT, "%s: tensor \"%s\": %d dimensions (at most %d supported)",
                      path, nm, nd, ST_MAX_DIMS);
    t->ndim = nd;
    size_t dsize = DTYPES[d].size;
    size_t numel = 1;
    int k = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, sh) {
        double v;
        if (!json_uint(x, &v))
            return ta_err(err, TA_EINPUT,
                          "%s: tensor \"%s\": shape entry %d is not a non-negative integer",
                          path, nm, k);
        t->shape[k++] = (int64_t)v;
        size_t dim = (size_t)v;
        if (dim != 0 && numel > SIZE_MAX / dsize / dim)
            return ta_err(err, TA_EINPUT, "%s: tensor \"%s\": shape is too large", path, nm);
        numel *= dim;
    }
    t->numel = numel;
    double b, en;
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 ||
        !json_uint(cJSON_GetArrayItem(of, 0), &b) || !json_uint(cJSON_GetArrayItem(of, 1), &en))
        return ta_err(err, TA_EINPUT,
                      "%s: tensor \"%s\": \"data_offsets\" must be [begin, end], two "
                      "non-negative integers", path, nm);
    t->begin = (size_t)b;
    t->end = (size_t)en;
    if (t->end < t->begin)
        return ta_err(err, TA_EINPUT, "%s: tensor \"%s\": data_offsets [%zu, %zu] end before begin",
                      path, nm, t->begin, t->end);
    char s[256];
    if (t->end - t->begin != numel * dsize)
        return ta_err(err, TA_EINPUT,
                      "%s: tensor \"%s\": data_offsets [%zu, %zu] hold %zu bytes, but %s shape "
                      "%s needs %zu", path, nm, t->begin, t->end, t->end - t->begin,
                      DTYPES[d].name, safetensors_shape_str(s, sizeof s, t->shape, nd),
                      numel * dsize);
    return TA_OK;
}

/* qsort comparators over an array of tensor pointers. */
static int cmp_by_offset(const void *a, const void *b) {
    const SafeTensorInfo *x = *(const SafeTensorInfo *const *)a, *y = *(const SafeTensorInfo *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}
static int cmp_by_name(const void *a, const void *b) {
    return strcmp((*(const SafeTensorInfo *const *)a)->name,
                  (*(const SafeTensorInfo *const *)b)->name);
}

/* Parses and validates the JSON header into st. gap != NULL: uncovered data bytes (holes,
 * an uncovered tail) go to *gap (the first one's message, malloc'd) instead of failing. */
static int parse_header(SafeTensors *st, const char *hdr, size_t hlen, char **gap, TaError *err) {
    const char *path = st->path;
    int rc = TA_OK;
    const SafeTensorInfo **order = NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, hlen, &end, 0);
    if (!root) {
        size_t at = end ? (size_t)(end - hdr) : 0;
        rc = ta_err(err, TA_EINPUT,
                    "%s: header is not valid JSON (error near byte %zu of the %zu-byte header)",
                    path, at, hlen);
        goto end;
    }
    for (const char *p = end; p < hdr + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            rc = ta_err(err, TA_EINPUT,
                        "%s: unexpected bytes after the header JSON (byte %zu of %zu; only "
                        "space padding is allowed)", path, (size_t)(p - hdr), hlen);
            goto end;
        }
    if (!cJSON_IsObject(root)) {
        rc = ta_err(err, TA_EINPUT, "%s: header JSON is not an object", path);
        goto end;
    }
    int count = cJSON_GetArraySize(root);
    st->tensors = ta_calloc((size_t)(count ? count : 1) * sizeof *st->tensors, "tensor table");
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (!strcmp(e->string, "__metadata__")) {
            if (st->meta_keys) {
                rc = ta_err(err, TA_EINPUT, "%s: header has two \"__metadata__\" entries", path);
                goto end;
            }
            if (!cJSON_IsObject(e)) {
                rc = ta_err(err, TA_EINPUT, "%s: \"__metadata__\" is not an object", path);
                goto end;
            }
            int nm = cJSON_GetArraySize(e);
            st->meta_keys = ta_calloc((size_t)(nm ? nm : 1) * sizeof(char *), "metadata");
            st->meta_vals = ta_calloc((size_t)(nm ? nm : 1) * sizeof(char *), "metadata");
            const cJSON *kv;
            cJSON_ArrayForEach(kv, e) {
                if (!cJSON_IsString(kv)) {
                    rc = ta_err(err, TA_EINPUT,
                                "%s: \"__metadata__\" value for \"%s\" is not a string", path,
                                kv->string);
                    goto end;
                }
                st->meta_keys[st->n_meta] = ta_strdup(kv->string, "safetensors metadata");
                st->meta_vals[st->n_meta] = ta_strdup(kv->valuestring, "safetensors metadata");
                st->n_meta++;
            }
            continue;
        }
        SafeTensorInfo *t = &st->tensors[st->n++];
        t->name = ta_strdup(e->string, "tensor name");
        if ((rc = parse_entry(path, e, t, err)) != TA_OK) goto end;
    }

    /* Names unique; offsets contiguous from 0 with neither overlap nor gap. */
    size_t data_len = st->file_size - st->data_start;
    order = ta_malloc((size_t)(st->n ? st->n : 1) * sizeof *order, "tensor order");
    for (int i = 0; i < st->n; i++) order[i] = &st->tensors[i];
    qsort(order, (size_t)st->n, sizeof *order, cmp_by_name);
    for (int i = 1; i < st->n; i++)
        if (!strcmp(order[i]->name, order[i - 1]->name)) {
            rc = ta_err(err, TA_EINPUT, "%s: tensor \"%s\" appears twice in the header", path,
                        order[i]->name);
            goto end;
        }
    qsort(order, (size_t)st->n, sizeof *order, cmp_by_offset);
    size_t pos = 0;
    for (int i = 0; i < st->n; i++) {
        const SafeTensorInfo *t = order[i];
        if (t->end > data_len) {
            rc = ta_err(err, TA_EINPUT,
                        "%s: tensor \"%s\": data_offsets [%zu, %zu] run past the end of the "
                        "file (%zu data bytes after the %zu-byte header; file truncated?)",
                        path, t->name, t->begin, t->end, data_len, st->data_start - 8);
            goto end;
        }
        if (t->begin < pos) {
            const SafeTensorInfo *p = order[i - 1];
            rc = ta_err(err, TA_EINPUT,
                        "%s: tensors \"%s\" [%zu, %zu] and \"%s\" [%zu, %zu] overlap", path,
                        p->name, p->begin, p->end, t->name, t->begin, t->end);
            goto end;
        }
        if (t->begin > pos) {
            rc = ta_err(err, TA_EINPUT,
                        "%s: tensor \"%s\" starts at data byte %zu but the tensors before it "
                        "end at %zu (holes are not allowed)", path, t->name, t->begin, pos);
            if (!gap) goto end;
            if (!*gap) *gap = ta_strdup(err ? err->msg : "hole", "safetensors gap");
            rc = TA_OK;
        }
        pos = t->end;
    }
    if (pos != data_len) {
        rc = ta_err(err, TA_EINPUT,
                    "%s: the tensors cover %zu data bytes but the file has %zu after the header "
                    "(expected file size 8 + %zu + %zu = %zu, found %zu)", path, pos, data_len,
                    st->data_start - 8, pos, st->data_start + pos, st->file_size);
        if (!gap) goto end;
        if (!*gap) *gap = ta_strdup(err ? err->msg : "uncovered data", "safetensors gap");
        rc = TA_OK;
    }
end:
    free(order);
    cJSON_Delete(root);
    return rc;
}

static int open_file(SafeTensors *st, const char *path, char **gap, TaError *err) {
    assert_little_endian();
    memset(st, 0, sizeof *st);
    st->path = ta_strdup(path, "path");
    int rc = TA_OK;
    char *hdr = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        rc = ta_err(err, TA_EINPUT, "%s: cannot open: %s", path, strerror(errno));
        goto end;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = ta_err(err, TA_EINPUT, "%s: not a regular file", path);
        goto end;
    }
    st->file_size = (size_t)sb.st_size;
    if (st->file_size < 8) {
        rc = ta_err(err, TA_EINPUT,
                    "%s: file is %zu bytes, too short for a safetensors file (needs an 8-byte "
                    "header length first)", path, st->file_size);
        goto end;
    }
    void *map = mmap(NULL, st->file_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        rc = ta_err(err, TA_EINPUT, "%s: cannot map: %s", path, strerror(errno));
        goto end;
    }
    st->map = map;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | st->map[i];
    if (n < 2 || n > ST_MAX_HEADER || n > st->file_size - 8) {
        rc = ta_err(err, TA_EINPUT,
                    "%s: header length %llu is not sane (expected 2..%u and at most the %zu "
                    "bytes after the length field): not a safetensors file, or truncated",
                    path, (unsigned long long)n, ST_MAX_HEADER, st->file_size - 8);
        goto end;
    }
    st->data_start = 8 + (size_t)n;
    if (st->map[8] != '{') {
        rc = ta_err(err, TA_EINPUT, "%s: header does not start with '{' (not a safetensors file)",
                    path);
        goto end;
    }
    if (memchr(st->map + 8, '\0', (size_t)n)) {
        rc = ta_err(err, TA_EINPUT, "%s: header contains a NUL byte (corrupt header)", path);
        goto end;
    }
    hdr = ta_malloc((size_t)n + 1, "safetensors header");
    memcpy(hdr, st->map + 8, (size_t)n);
    hdr[n] = '\0';
    rc = parse_header(st, hdr, (size_t)n, gap, err);
end:
    free(hdr);
    if (fd >= 0) close(fd);
    if (rc != TA_OK) {
        safetensors_close(st);
        if (gap) {
            free(*gap);
            *gap = NULL;
        }
    }
    return rc;
}

int safetensors_open(SafeTensors *st, const char *path, TaError *err) {
    return open_file(st, path, NULL, err);
}

int safetensors_open_gaps(SafeTensors *st, const char *path, char **gap, TaError *err) {
    *gap = NULL;
    return open_file(st, path, gap, err);
}

const SafeTensorInfo *safetensors_find(const SafeTensors *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

const char *safetensors_meta(const SafeTensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta_keys[i], key)) return st->meta_vals[i];
    return NULL;
}

const void *safetensors_data(const SafeTensors *st, const SafeTensorInfo *t) {
    return st->map + st->data_start + t->begin;
}

/* IEEE half -> float, exact (every half is representable as a float). */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13); /* inf / nan */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign; /* +-0 */
    } else { /* subnormal: renormalise */
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int safetensors_read_f32(const SafeTensors *st, const SafeTensorInfo *t, float *dst,
                         TaError *err) {
    const unsigned char *src = safetensors_data(st, t);
    switch (t->dtype) {
    case ST_F32:
        memcpy(dst, src, t->numel * 4);
        return TA_OK;
    case ST_F16:
        for (size_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = half_to_float(h);
        }
        return TA_OK;
    case ST_BF16:
        for (size_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return TA_OK;
    case ST_F64:
        for (size_t i = 0; i < t->numel; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            dst[i] = (float)d;
        }
        return TA_OK;
    default:
        return ta_err(err, TA_EINPUT,
                      "%s: tensor \"%s\" has dtype %s, expected a float (F32, F16, BF16 or F64)",
                      st->path, t->name, DTYPES[t->dtype].name);
    }
}

int safetensors_get_f32(const SafeTensors *st, const char *name, const int64_t *shape,
                        int ndim, float *dst, TaError *err) {
    char want[256], got[256];
    const SafeTensorInfo *t = safetensors_find(st, name);
    if (!t)
        return ta_err(err, TA_EINPUT, "%s: missing tensor \"%s\" (expected shape %s)", st->path,
                      name, safetensors_shape_str(want, sizeof want, shape, ndim));
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same)
        return ta_err(err, TA_EINPUT, "%s: tensor \"%s\" has shape %s, expected %s", st->path,
                      name, safetensors_shape_str(got, sizeof got, t->shape, t->ndim),
                      safetensors_shape_str(want, sizeof want, shape, ndim));
    return safetensors_read_f32(st, t, dst, err);
}

/* ---- writer --------------------------------------------------------------------------- */

void safetensors_writer_init(SafeWriter *w) { memset(w, 0, sizeof *w); }

void safetensors_writer_free(SafeWriter *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->entries[i].name);
    free(w->entries);
    for (int i = 0; i < w->n_meta; i++) {
        free(w->meta_keys[i]);
        free(w->meta_vals[i]);
    }
    free(w->meta_keys);
    free(w->meta_vals);
    memset(w, 0, sizeof *w);
}

static SafeWriterEntry *writer_push(SafeWriter *w, const char *name) {
    TA_ASSERT(name && name[0] && strcmp(name, "__metadata__") != 0);
    for (int i = 0; i < w->n; i++) TA_ASSERT(strcmp(w->entries[i].name, name) != 0);
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 32;
        w->entries = ta_realloc(w->entries, (size_t)w->cap * sizeof *w->entries,
                                "safetensors writer");
    }
    SafeWriterEntry *e = &w->entries[w->n++];
    memset(e, 0, sizeof *e);
    e->name = ta_strdup(name, "tensor name");
    return e;
}

void safetensors_writer_add(SafeWriter *w, const char *name, const int64_t *shape, int ndim,
                            const float *data) {
    TA_ASSERT(ndim >= 0 && ndim <= ST_MAX_DIMS);
    SafeWriterEntry *e = writer_push(w, name);
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        TA_ASSERT(shape[i] >= 0);
        e->shape[i] = shape[i];
    }
    e->data = data;
}

void safetensors_writer_add_transposed(SafeWriter *w, const char *name, int64_t rows,
                                       int64_t cols, const float *src) {
    int64_t shape[2] = {rows, cols};
    safetensors_writer_add(w, name, shape, 2, src);
    w->entries[w->n - 1].transpose = 1;
}

void safetensors_writer_meta(SafeWriter *w, const char *key, const char *value) {
    for (int i = 0; i < w->n_meta; i++)
        if (!strcmp(w->meta_keys[i], key)) {
            free(w->meta_vals[i]);
            w->meta_vals[i] = ta_strdup(value, "safetensors metadata");
            return;
        }
    if (w->n_meta == w->cap_meta) {
        w->cap_meta = w->cap_meta ? 2 * w->cap_meta : 8;
        w->meta_keys = ta_realloc(w->meta_keys, (size_t)w->cap_meta * sizeof(char *), "metadata");
        w->meta_vals = ta_realloc(w->meta_vals, (size_t)w->cap_meta * sizeof(char *), "metadata");
    }
    w->meta_keys[w->n_meta] = ta_strdup(key, "safetensors metadata");
    w->meta_vals[w->n_meta] = ta_strdup(value, "safetensors metadata");
    w->n_meta++;
}

/* The header is built in a TaBuf (common.h). */

static size_t entry_numel(const SafeWriterEntry *e) {
    size_t n = 1;
    for (int i = 0; i < e->ndim; i++) n *= (size_t)e->shape[i];
    return n;
}

/* fwrite that also counts the bytes and updates the CRC32 (digest may be NULL). */
static int put(FILE *f, const void *p, size_t n, TaDigest *dg) {
    if (dg) {
        dg->crc = ta_crc32(dg->crc, p, n);
        dg->bytes += n;
    }
    return fwrite(p, 1, n, f) == n;
}

/* Writes e's floats to f; transposed entries go through a small blocked buffer. */
static int write_entry(FILE *f, const SafeWriterEntry *e, TaDigest *dg) {
    size_t n = entry_numel(e);
    if (n == 0) return 1;
    if (!e->transpose) return put(f, e->data, n * sizeof(float), dg);
    /* out (rows, cols) = src^T, src (cols, rows). A block of BR output rows at a time:
     * reads BR contiguous floats of each src row, writes BR full output rows. */
    enum { BR = 32 };
    size_t rows = (size_t)e->shape[0], cols = (size_t)e->shape[1];
    float *blk = ta_malloc(BR * cols * sizeof(float), "transpose buffer");
    int ok = 1;
    for (size_t r0 = 0; r0 < rows && ok; r0 += BR) {
        size_t nr = rows - r0 < BR ? rows - r0 : BR;
        for (size_t c = 0; c < cols; c++) {
            const float *s = e->data + c * rows + r0;
            for (size_t r = 0; r < nr; r++) blk[r * cols + c] = s[r];
        }
        ok = put(f, blk, nr * cols * sizeof(float), dg);
    }
    free(blk);
    return ok;
}

int safetensors_writer_write(const SafeWriter *w, const char *path, TaDigest *digest,
                             TaError *err) {
    assert_little_endian();
    /* Header: metadata first, then tensors in the order added. */
    TaBuf h = {0};
    ta_buf_puts(&h, "{");
    if (w->n_meta) {
        ta_buf_puts(&h, "\"__metadata__\":{");
        for (int i = 0; i < w->n_meta; i++) {
            if (i) ta_buf_puts(&h, ",");
            ta_buf_json_string(&h, w->meta_keys[i]);
            ta_buf_puts(&h, ":");
            ta_buf_json_string(&h, w->meta_vals[i]);
        }
        ta_buf_puts(&h, "}");
    }
    size_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const SafeWriterEntry *e = &w->entries[i];
        char num[64];
        if (i || w->n_meta) ta_buf_puts(&h, ",");
        ta_buf_json_string(&h, e->name);
        ta_buf_puts(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)e->shape[d]);
            ta_buf_puts(&h, num);
        }
        size_t nbytes = entry_numel(e) * sizeof(float);
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", off, off + nbytes);
        ta_buf_puts(&h, num);
        off += nbytes;
    }
    ta_buf_puts(&h, "}");
    while (h.n % 8) ta_buf_puts(&h, " "); /* spec: trailing spaces allowed; aligns the data */

    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = TA_OK;
    const int fault = ta_fault_errno(path); /* tests: a simulated failure (common.h) */
    FILE *f = fault == EROFS || fault == EACCES || fault == ENOENT ? NULL : fopen(tmp, "wb");
    if (!f) {
        rc = ta_err(err, TA_ERUNTIME, "%s: cannot create: %s", tmp, strerror(fault ? fault : errno));
        goto end;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    TaDigest dg = {0};
    int ok = put(f, len8, 8, &dg) && put(f, h.p, h.n, &dg);
    if (fault) ok = 0, errno = fault; /* ENOSPC, EIO: the header went out, the data does not */
    for (int i = 0; ok && i < w->n; i++) ok = write_entry(f, &w->entries[i], &dg);
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int e = fault ? fault : errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (!ok) {
        unlink(tmp);
        rc = ta_err(err, TA_ERUNTIME, "%s: write failed: %s (disk full?)", tmp, strerror(e));
        goto end;
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        rc = ta_err(err, TA_ERUNTIME, "%s: rename to %s failed: %s", tmp, path, strerror(e));
        goto end;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    ta_fsync_dir(dir);
    if (digest) *digest = dg;
end:
    free(h.p);
    return rc;
}
