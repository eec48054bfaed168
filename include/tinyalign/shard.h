/* shard.h — token shards, the pretraining data format: a flat run of token ids (documents
 * separated by EOS) written by `tinyalign tokenize` and read by the trainer.
 *
 * Format (version 1), every integer little-endian:
 *   offset  size  field
 *        0     8  magic "TASHARD1" (ASCII, no NUL)
 *        8     4  uint32 version = 1
 *       12     4  uint32 token_bytes: 2 (ids stored as uint16) or 4 (uint32)
 *       16     4  uint32 vocab_size (> 0; every id is < vocab_size)
 *       20     4  uint32 reserved = 0
 *       24     8  uint64 num_tokens
 *       32    32  zero padding (header is 64 bytes)
 *       64     -  num_tokens ids, token_bytes each
 * The file length is exactly 64 + num_tokens * token_bytes. Writers use token_bytes 2
 * when vocab_size <= 65536, else 4; readers accept either (2 only when vocab_size fits).
 *
 * What this module does not do: batching, shuffling, or holding a cursor (the data loader
 * does that over the accessors below).
 */
#ifndef TINYALIGN_SHARD_H
#define TINYALIGN_SHARD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tinyalign/common.h"

#define SHARD_MAGIC "TASHARD1"
#define SHARD_VERSION 1u
#define SHARD_HEADER_BYTES 64

/* ---- writer: streaming; the header is written with the final count on close ----------- */
typedef struct {
    FILE *f;             /* open on path.tmp while writing */
    char path[4096];     /* final path; the data goes to path.tmp until shard_writer_close */
    uint32_t vocab_size;
    uint32_t token_bytes; /* 2 or 4 */
    uint64_t num_tokens;  /* appended so far */
    unsigned char *buf;   /* (cap * token_bytes) staging buffer for little-endian ids */
    size_t cap;
} ShardWriter;

/* Creates path.tmp and reserves the header. token_bytes is 2 when vocab_size <= 65536.
 * Returns TA_OK, TA_EINPUT (vocab_size 0) or TA_ERUNTIME (cannot create) with err filled. */
int shard_writer_open(ShardWriter *w, const char *path, uint32_t vocab_size, TaError *err);

/* Appends n ids. Every id must be in [0, vocab_size): otherwise nothing is written and
 * TA_EINPUT names the id. TA_ERUNTIME on a write failure. */
int shard_writer_append(ShardWriter *w, const int *ids, size_t n, TaError *err);

/* Writes the header with the final count, fsyncs and renames path.tmp to path (atomic:
 * readers see either no file or the complete one). Frees w's resources whatever happens;
 * on failure path.tmp is removed. */
int shard_writer_close(ShardWriter *w, TaError *err);

/* Gives up: removes path.tmp and frees w. Safe on a zeroed or closed writer. */
void shard_writer_abort(ShardWriter *w);

/* ---- reader: the file is mmapped read-only and fully validated on open ----------------- */
typedef struct {
    const unsigned char *map; /* the whole file (mmap), NULL when closed */
    size_t map_len;           /* file length in bytes */
    const unsigned char *ids; /* map + 64: num_tokens ids, token_bytes each, little-endian */
    uint64_t num_tokens;
    uint32_t vocab_size;
    uint32_t token_bytes;     /* 2 or 4 */
} Shard;

/* Opens and validates path: magic, version, token_bytes in {2,4}, reserved 0,
 * 64 + num_tokens * token_bytes == file length, and every id < vocab_size (the first bad
 * one is reported with its index). Returns TA_OK, or TA_EINPUT with err naming the file,
 * what was expected and what was found (s is then zeroed). Close with shard_close. */
int shard_open(Shard *s, const char *path, TaError *err);

/* Unmaps; safe on a zeroed or already closed Shard. */
void shard_close(Shard *s);

/* Token i (i < num_tokens, asserted). */
uint32_t shard_get(const Shard *s, uint64_t i);

/* Copies ids [start, start + n) into out (the range must lie inside the shard, asserted). */
void shard_read(const Shard *s, uint64_t start, size_t n, int *out);

#endif
