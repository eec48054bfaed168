/* safetensors.h — a small reader and writer for the safetensors format
 * (https://github.com/huggingface/safetensors), the weight format of the Hugging Face
 * ecosystem and of our checkpoints.
 *
 * File layout (all integers little-endian):
 *   u64 N                   header length in bytes
 *   N bytes                 JSON: {"<name>": {"dtype": "F32", "shape": [d0, d1, ...],
 *                                              "data_offsets": [begin, end]}, ...,
 *                                  "__metadata__": {"<key>": "<string value>", ...}}
 *                           padded at the end with spaces (0x20); we pad N to a multiple
 *                           of 8 so F32 data starts aligned
 *   data                    raw tensor bytes, row-major; offsets are relative to here
 *
 * The reader memory-maps the file and validates the whole header before anything is
 * used: N sane (>= 2, <= 100 MB, inside the file), JSON valid and an object, every dtype
 * known, every shape a list of non-negative integers, end - begin == numel * dtype size,
 * tensors non-overlapping and covering the data exactly (sum of sizes == file size - 8 - N,
 * no holes), metadata values strings, no duplicate names. Every error message starts
 * with the path and says what was expected and what was found.
 *
 * Reading converts F32, F16, BF16 and F64 tensors to float32 (bonus for imports); other
 * dtypes are listed and validated but cannot be read as floats. The writer writes F32
 * only. Not supported: sharded checkpoints (model.safetensors.index.json), writing
 * other dtypes, big-endian hosts.
 */
#ifndef TINYALIGN_SAFETENSORS_H
#define TINYALIGN_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>

#include "tinyalign/common.h"

#define ST_MAX_DIMS 8

typedef enum {
    ST_BOOL = 0, ST_U8, ST_I8, ST_F8_E5M2, ST_F8_E4M3, ST_I16, ST_U16, ST_F16, ST_BF16,
    ST_I32, ST_U32, ST_F32, ST_I64, ST_U64, ST_F64,
    ST_NUM_DTYPES
} SafeDtype;

/* "F32", "BF16", ... (the spelling used in headers). */
const char *safetensors_dtype_name(SafeDtype d);
/* Bytes per element (1, 2, 4 or 8). */
size_t safetensors_dtype_size(SafeDtype d);

typedef struct {
    char *name;                   /* tensor name, as in the header */
    SafeDtype dtype;
    int ndim;                     /* 0 for a scalar (shape []) */
    int64_t shape[ST_MAX_DIMS];
    size_t numel;                 /* product of shape (1 for a scalar) */
    size_t begin, end;            /* byte offsets relative to the data start */
} SafeTensorInfo;

typedef struct {
    char *path;                   /* copy of the opened path, used in messages */
    unsigned char *map;           /* the whole file, mapped read-only */
    size_t file_size;
    size_t data_start;            /* 8 + N */
    int n;                        /* number of tensors, header order */
    SafeTensorInfo *tensors;
    int n_meta;                   /* __metadata__ entries, header order */
    char **meta_keys, **meta_vals;
} SafeTensors;

/* Opens and validates path. Returns TA_OK, or TA_EINPUT with err naming the file and the
 * problem (st is left zeroed then). Close with safetensors_close. */
int safetensors_open(SafeTensors *st, const char *path, TaError *err);
/* Like safetensors_open, except that data bytes no tensor covers (a hole, or bytes after
 * the last tensor: what deleting a tensor's entry from the header leaves behind) do not
 * fail the open: *gap receives the message safetensors_open would have returned
 * (malloc'd, caller frees; NULL when the data is covered exactly). A loader that knows
 * which tensors to expect checks them first, so a deleted entry is reported by the missing
 * tensor's name, and returns *gap only when every expected tensor is there. */
int safetensors_open_gaps(SafeTensors *st, const char *path, char **gap, TaError *err);
/* Unmaps and frees; safe on a zeroed or already closed struct. */
void safetensors_close(SafeTensors *st);

/* The tensor called name, or NULL. Pointer valid until safetensors_close. */
const SafeTensorInfo *safetensors_find(const SafeTensors *st, const char *name);
/* The __metadata__ value for key, or NULL. Owned by st. */
const char *safetensors_meta(const SafeTensors *st, const char *key);
/* Raw bytes of tensor t (t->end - t->begin of them) inside the mapping; NOT necessarily
 * aligned for its dtype: use safetensors_read_f32 to get floats. */
const void *safetensors_data(const SafeTensors *st, const SafeTensorInfo *t);

/* Writes "[d0, d1, ...]" into buf (always NUL-terminated). Returns buf. */
char *safetensors_shape_str(char *buf, size_t cap, const int64_t *shape, int ndim);

/* Copies tensor t into dst (t->numel floats), converting F16/BF16/F64 to float32.
 * Returns TA_OK, or TA_EINPUT naming the file and tensor when the dtype is not a float. */
int safetensors_read_f32(const SafeTensors *st, const SafeTensorInfo *t, float *dst,
                         TaError *err);
/* Looks up name, checks its shape is exactly shape[0..ndim) and copies it into dst as
 * float32. Errors (TA_EINPUT) name the file and tensor:
 *   x/model.safetensors: missing tensor "wpe.weight" (expected shape [32, 64])
 *   x/model.safetensors: tensor "h.0.attn.c_attn.weight" has shape [64, 96], expected [64, 192] */
int safetensors_get_f32(const SafeTensors *st, const char *name, const int64_t *shape,
                        int ndim, float *dst, TaError *err);

/* ---- writer ----------------------------------------------------------------------- */
typedef struct {
    char *name;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const float *data; /* borrowed: must stay valid until safetensors_writer_write */
    int transpose;     /* 1: data holds the (shape[1], shape[0]) transpose; written transposed */
} SafeWriterEntry;

typedef struct {
    int n, cap;
    SafeWriterEntry *entries;
    int n_meta, cap_meta;
    char **meta_keys, **meta_vals;
} SafeWriter;

/* Zeroes w (an empty writer). */
void safetensors_writer_init(SafeWriter *w);
/* Frees the writer's own copies (names, metadata); never the tensor data. Safe on zeroed. */
void safetensors_writer_free(SafeWriter *w);
/* Adds an F32 tensor named name with shape[0..ndim) (ndim <= ST_MAX_DIMS) whose data is
 * borrowed (row-major, numel floats). Names must be unique (asserted). */
void safetensors_writer_add(SafeWriter *w, const char *name, const int64_t *shape, int ndim,
                            const float *data);
/* Adds a 2-D F32 tensor of shape (rows, cols) whose data is given TRANSPOSED, i.e. src is
 * (cols, rows) row-major: out[r][c] = src[c][r]. Used to write Conv1D (in, out) weights
 * from our (out, in) layout without a full-size copy. */
void safetensors_writer_add_transposed(SafeWriter *w, const char *name, int64_t rows,
                                       int64_t cols, const float *src);
/* Sets a __metadata__ string (replaces an existing key). */
void safetensors_writer_meta(SafeWriter *w, const char *key, const char *value);
/* Writes the file atomically (path.tmp, fsync, rename, fsync of the directory), tensors in
 * the order added, header padded with spaces to a multiple of 8; digest (may be NULL)
 * receives the file's size and CRC32. Returns TA_OK or TA_ERUNTIME with err naming the path. */
int safetensors_writer_write(const SafeWriter *w, const char *path, TaDigest *digest,
                             TaError *err);

#endif
