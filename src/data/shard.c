/* shard.c — token shard writer (streaming, atomic) and reader (mmap, validated on open).
 * The format is documented in include/tinyalign/shard.h. Byte order is written out
 * explicitly (little-endian), so files are the same on any host; the compiler turns the
 * byte loads into plain loads on little-endian machines.
 * Not here: batching, shuffling, cursors (the data loader's job). */
#define _POSIX_C_SOURCE 200809L
#include "tinyalign/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const unsigned char *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* ---- writer ------------------------------------------------------------------------- */
static void tmp_path(const ShardWriter *w, char *out, size_t cap) {
    snprintf(out, cap, "%s.tmp", w->path);
}

int shard_writer_open(ShardWriter *w, const char *path, uint32_t vocab_size, TaError *err) {
    memset(w, 0, sizeof *w);
    if (vocab_size == 0 || vocab_size > (uint32_t)INT32_MAX)
        return ta_err(err, TA_EINPUT, "%s: shard vocab_size %u, expected 1..%d", path,
                      vocab_size, INT32_MAX);
    if (strlen(path) + 5 > sizeof w->path)
        return ta_err(err, TA_EINPUT, "%s: path too long", path);
    snprintf(w->path, sizeof w->path, "%s", path);
    char tmp[sizeof w->path + 8];
    tmp_path(w, tmp, sizeof tmp);
    w->f = fopen(tmp, "wb");
    if (!w->f) return ta_err(err, TA_ERUNTIME, "%s: cannot create: %s", tmp, strerror(errno));
    w->vocab_size = vocab_size;
    w->token_bytes = vocab_size <= 65536u ? 2 : 4;
    w->cap = 1 << 16;
    w->buf = ta_malloc(w->cap * w->token_bytes, "shard write buffer");
    unsigned char hdr[SHARD_HEADER_BYTES] = {0}; /* real header written on close */
    if (fwrite(hdr, 1, sizeof hdr, w->f) != sizeof hdr) {
        int e = errno;
        shard_writer_abort(w);
        return ta_err(err, TA_ERUNTIME, "%s: write failed: %s", tmp, strerror(e));
    }
    return TA_OK;
}

int shard_writer_append(ShardWriter *w, const int *ids, size_t n, TaError *err) {
    TA_ASSERT(w->f != NULL);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (uint32_t)ids[i] >= w->vocab_size)
            return ta_err(err, TA_EINPUT, "%s: token id %d (token %llu) outside [0, %u)",
                          w->path, ids[i], (unsigned long long)(w->num_tokens + i),
                          w->vocab_size);
    const unsigned tb = w->token_bytes;
    for (size_t done = 0; done < n;) {
        size_t m = n - done < w->cap ? n - done : w->cap;
        unsigned char *p = w->buf;
        for (size_t i = 0; i < m; i++, p += tb) {
            uint32_t v = (uint32_t)ids[done + i];
            p[0] = (unsigned char)v;
            p[1] = (unsigned char)(v >> 8);
            if (tb == 4) {
                p[2] = (unsigned char)(v >> 16);
                p[3] = (unsigned char)(v >> 24);
            }
        }
        if (fwrite(w->buf, tb, m, w->f) != m)
            return ta_err(err, TA_ERUNTIME, "%s.tmp: write failed: %s (disk full?)", w->path,
                          strerror(errno));
        done += m;
    }
    w->num_tokens += n;
    return TA_OK;
}

int shard_writer_close(ShardWriter *w, TaError *err) {
    TA_ASSERT(w->f != NULL);
    char tmp[sizeof w->path + 8];
    tmp_path(w, tmp, sizeof tmp);
    unsigned char hdr[SHARD_HEADER_BYTES] = {0};
    memcpy(hdr, SHARD_MAGIC, 8);
    put_u32(hdr + 8, SHARD_VERSION);
    put_u32(hdr + 12, w->token_bytes);
    put_u32(hdr + 16, w->vocab_size);
    put_u32(hdr + 20, 0);
    put_u64(hdr + 24, w->num_tokens);
    int ok = fflush(w->f) == 0 && fseek(w->f, 0, SEEK_SET) == 0 &&
             fwrite(hdr, 1, sizeof hdr, w->f) == sizeof hdr && fflush(w->f) == 0 &&
             fsync(fileno(w->f)) == 0;
    int e = errno;
    ok = (fclose(w->f) == 0) && ok;
    w->f = NULL;
    if (!ok) {
        shard_writer_abort(w);
        return ta_err(err, TA_ERUNTIME, "%s: write failed: %s (disk full?)", tmp, strerror(e));
    }
    if (rename(tmp, w->path) != 0) {
        e = errno;
        shard_writer_abort(w);
        return ta_err(err, TA_ERUNTIME, "%s: rename from %s failed: %s", w->path, tmp,
                      strerror(e));
    }
    char dir[sizeof w->path];
    snprintf(dir, sizeof dir, "%s", w->path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    ta_fsync_dir(dir);
    free(w->buf);
    w->buf = NULL;
    return TA_OK;
}

void shard_writer_abort(ShardWriter *w) {
    if (w->f) {
        fclose(w->f);
        w->f = NULL;
    }
    if (w->path[0]) {
        char tmp[sizeof w->path + 8];
        tmp_path(w, tmp, sizeof tmp);
        unlink(tmp);
    }
    free(w->buf);
    w->buf = NULL;
}

/* ---- reader ------------------------------------------------------------------------- */
int shard_open(Shard *s, const char *path, TaError *err) {
    memset(s, 0, sizeof *s);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ta_err(err, TA_EINPUT, "%s: cannot open shard: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ta_err(err, TA_EINPUT, "%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    if (len < SHARD_HEADER_BYTES) {
        close(fd);
        return ta_err(err, TA_EINPUT,
                      "%s: not a token shard: expected a %d-byte header, found a %zu-byte file",
                      path, SHARD_HEADER_BYTES, len);
    }
    void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return ta_err(err, TA_ERUNTIME, "%s: mmap failed: %s", path, strerror(errno));
    const unsigned char *h = m;
    s->map = h;
    s->map_len = len;
    s->ids = h + SHARD_HEADER_BYTES;

    int rc = TA_OK;
    uint32_t version = get_u32(h + 8), tb = get_u32(h + 12), vocab = get_u32(h + 16),
             reserved = get_u32(h + 20);
    uint64_t n = get_u64(h + 24);
    if (memcmp(h, SHARD_MAGIC, 8) != 0) {
        char found[3 * 8 + 1];
        for (int i = 0; i < 8; i++) snprintf(found + 3 * i, 4, "%02x ", h[i]);
        found[3 * 8 - 1] = '\0';
        rc = ta_err(err, TA_EINPUT,
                    "%s: not a token shard: expected magic \"%s\", found bytes %s", path,
                    SHARD_MAGIC, found);
    } else if (version != SHARD_VERSION) {
        rc = ta_err(err, TA_EINPUT, "%s: shard version %u, expected %u", path, version,
                    SHARD_VERSION);
    } else if (tb != 2 && tb != 4) {
        rc = ta_err(err, TA_EINPUT, "%s: shard token_bytes %u, expected 2 or 4", path, tb);
    } else if (vocab == 0 || vocab > (uint32_t)INT32_MAX || (tb == 2 && vocab > 65536u)) {
        rc = ta_err(err, TA_EINPUT, "%s: shard vocab_size %u, expected 1..%u for token_bytes %u",
                    path, vocab, tb == 2 ? 65536u : (uint32_t)INT32_MAX, tb);
    } else if (reserved != 0) {
        rc = ta_err(err, TA_EINPUT, "%s: shard reserved header field is %u, expected 0", path,
                    reserved);
    } else if (n > ((uint64_t)len - SHARD_HEADER_BYTES) / tb + 1) { /* no overflow below */
        rc = ta_err(err, TA_EINPUT,
                    "%s: shard header says %llu tokens, but the file has %zu bytes "
                    "(truncated or corrupt)",
                    path, (unsigned long long)n, len);
    } else if (SHARD_HEADER_BYTES + n * tb != (uint64_t)len) {
        rc = ta_err(err, TA_EINPUT,
                    "%s: shard header says %llu tokens x %u bytes = %llu bytes with the header, "
                    "but the file has %zu bytes (truncated or corrupt)",
                    path, (unsigned long long)n, tb,
                    (unsigned long long)(SHARD_HEADER_BYTES + n * tb), len);
    }
    if (rc != TA_OK) {
        shard_close(s);
        return rc;
    }
    s->num_tokens = n;
    s->vocab_size = vocab;
    s->token_bytes = tb;
    /* Every id must index the vocabulary; find the first that does not. */
    uint64_t bad = UINT64_MAX;
    if (tb == 2) {
        if (vocab < 65536u)
            for (uint64_t i = 0; i < n; i++)
                if (get_u16(s->ids + 2 * i) >= vocab) { bad = i; break; }
    } else {
        for (uint64_t i = 0; i < n; i++)
            if (get_u32(s->ids + 4 * i) >= vocab) { bad = i; break; }
    }
    if (bad != UINT64_MAX) {
        uint32_t v = shard_get(s, bad);
        shard_close(s);
        return ta_err(err, TA_EINPUT, "%s: token %llu has id %u, expected < vocab_size %u",
                      path, (unsigned long long)bad, v, vocab);
    }
    return TA_OK;
}

void shard_close(Shard *s) {
    if (s->map) munmap((void *)s->map, s->map_len);
    memset(s, 0, sizeof *s);
}

uint32_t shard_get(const Shard *s, uint64_t i) {
    TA_ASSERT(i < s->num_tokens);
    return s->token_bytes == 2 ? get_u16(s->ids + 2 * i) : get_u32(s->ids + 4 * i);
}

void shard_read(const Shard *s, uint64_t start, size_t n, int *out) {
    TA_ASSERT(start <= s->num_tokens && n <= s->num_tokens - start);
    const unsigned char *p = s->ids + start * s->token_bytes;
    if (s->token_bytes == 2)
        for (size_t i = 0; i < n; i++) out[i] = (int)get_u16(p + 2 * i);
    else
        for (size_t i = 0; i < n; i++) out[i] = (int)get_u32(p + 4 * i);
}
