/* test_shard.c — token shards (include/tinyalign/shard.h): exact round trips for uint16 and
 * uint32 ids, the header bytes against the documented layout, atomic writing, and every
 * validation the reader promises (truncated / padded file, bad magic, version,
 * token_bytes, reserved, id >= vocab_size) with a message naming the file.
 * Scratch files go to $TA_REF/shard (default build/ref/shard). */
#define _POSIX_C_SOURCE 200809L
#include <sys/stat.h>
#include <unistd.h>

#include "testhelp.h"
#include "tinyalign/common.h"
#include "tinyalign/shard.h"

static char g_dir[2048];

static void path_in(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", g_dir, name);
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* Writes n random ids < vocab in uneven chunks, reads them back, compares. */
static void round_trip(uint32_t vocab, size_t n, uint32_t want_tb, const char *name) {
    char p[2300], tmp[2400];
    path_in(p, sizeof p, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    unlink(p);
    int *ids = ta_malloc((n ? n : 1) * sizeof(int), "ids");
    TaRng r;
    ta_rng_seed(&r, vocab);
    for (size_t i = 0; i < n; i++) ids[i] = (int)ta_rng_below(&r, vocab);
    if (n > 2) ids[0] = 0, ids[1] = (int)vocab - 1; /* the extremes */
    ShardWriter w;
    TaError err = {0};
    T_CHECK(shard_writer_open(&w, p, vocab, &err) == TA_OK, "%s", err.msg);
    T_CHECK(w.token_bytes == want_tb, "token_bytes %u, expected %u", w.token_bytes, want_tb);
    T_CHECK(exists(tmp) && !exists(p), "while writing, only %s should exist", tmp);
    for (size_t done = 0; done < n;) {
        size_t m = 1 + (size_t)ta_rng_below(&r, 100000);
        if (m > n - done) m = n - done;
        T_CHECK(shard_writer_append(&w, ids + done, m, &err) == TA_OK, "%s", err.msg);
        done += m;
    }
    T_CHECK(shard_writer_close(&w, &err) == TA_OK, "%s", err.msg);
    T_CHECK(exists(p) && !exists(tmp), "after close %s should be renamed to %s", tmp, p);

    /* header bytes, exactly as documented */
    size_t len;
    unsigned char *raw = (unsigned char *)ta_read_file(p, &len, &err);
    T_CHECK(raw, "%s", err.msg);
    unsigned char hdr[64] = {0};
    memcpy(hdr, "TASHARD1", 8);
    hdr[8] = 1;
    hdr[12] = (unsigned char)want_tb;
    for (int i = 0; i < 4; i++) hdr[16 + i] = (unsigned char)(vocab >> (8 * i));
    for (int i = 0; i < 8; i++) hdr[24 + i] = (unsigned char)((uint64_t)n >> (8 * i));
    int hdr_ok = len == 64 + n * want_tb && !memcmp(raw, hdr, 64);
    /* first id little-endian */
    int le_ok = n == 0 || (raw[64] == (unsigned char)ids[0] &&
                           raw[65] == (unsigned char)((unsigned)ids[0] >> 8));
    free(raw);
    T_CHECK(hdr_ok, "header bytes or file length (%zu) differ from the documented layout", len);
    T_CHECK(le_ok, "ids are not little-endian");

    Shard s;
    T_CHECK(shard_open(&s, p, &err) == TA_OK, "%s", err.msg);
    int ok = s.num_tokens == n && s.vocab_size == vocab && s.token_bytes == want_tb;
    size_t bad = n;
    for (size_t i = 0; i < n && bad == n; i++)
        if (shard_get(&s, i) != (uint32_t)ids[i]) bad = i;
    int *back = ta_malloc((n ? n : 1) * sizeof(int), "back");
    if (n > 10) {
        shard_read(&s, 3, n - 10, back);
        if (memcmp(back, ids + 3, (n - 10) * sizeof(int))) ok = 0;
    }
    shard_read(&s, 0, n, back);
    int range_ok = n == 0 || !memcmp(back, ids, n * sizeof(int));
    free(back);
    free(ids);
    shard_close(&s);
    shard_close(&s); /* closing twice is safe */
    T_CHECK(ok, "header fields or a range read differ");
    T_CHECK(bad == n, "token %zu differs", bad);
    T_CHECK(range_ok, "shard_read differs");
}

static void test_round_trip_u16(void) { round_trip(50257, 300000, 2, "u16.bin"); }
static void test_round_trip_u16_edge(void) { round_trip(65536, 1000, 2, "u16edge.bin"); }
static void test_round_trip_u32(void) { round_trip(100000, 200000, 4, "u32.bin"); }
static void test_round_trip_empty(void) { round_trip(1000, 0, 2, "empty.bin"); }

/* Writes a shard of 100 ids (vocab 1000) and returns its bytes for corruption. */
static unsigned char *good_shard(size_t *len) {
    char p[2300];
    path_in(p, sizeof p, "good.bin");
    ShardWriter w;
    TaError err = {0};
    TA_ASSERT(shard_writer_open(&w, p, 1000, &err) == TA_OK);
    int ids[100];
    for (int i = 0; i < 100; i++) ids[i] = i * 7;
    TA_ASSERT(shard_writer_append(&w, ids, 100, &err) == TA_OK);
    TA_ASSERT(shard_writer_close(&w, &err) == TA_OK);
    return (unsigned char *)ta_read_file(p, len, &err);
}

/* Writes buf[0..len) to name and expects shard_open to fail with all of needles in the
 * message (and the path). */
static int expect_reject(const char *name, const unsigned char *buf, size_t len,
                         const char *needle1, const char *needle2, char *why, size_t cap) {
    char p[2300];
    path_in(p, sizeof p, name);
    FILE *f = fopen(p, "wb");
    if (!f) return snprintf(why, cap, "cannot write %s", p), 0;
    fwrite(buf, 1, len, f);
    fclose(f);
    Shard s;
    TaError err = {0};
    int rc = shard_open(&s, p, &err);
    if (rc == TA_OK) {
        shard_close(&s);
        return snprintf(why, cap, "%s accepted", name), 0;
    }
    if (rc != TA_EINPUT || !strstr(err.msg, p) || (needle1 && !strstr(err.msg, needle1)) ||
        (needle2 && !strstr(err.msg, needle2)))
        return snprintf(why, cap, "%s: rc %d, message \"%s\"", name, rc, err.msg), 0;
    if (s.map != NULL) return snprintf(why, cap, "%s: Shard not zeroed on error", name), 0;
    return 1;
}

static char g_why[4096];

static void test_truncated_rejected(void) {
    size_t len;
    unsigned char *b = good_shard(&len);
    int ok = expect_reject("trunc.bin", b, len - 1, "100 tokens", "263 bytes", g_why,
                           sizeof g_why);
    free(b);
    T_CHECK(ok, "%s", g_why);
}

static void test_padded_rejected(void) {
    size_t len;
    unsigned char *b = good_shard(&len);
    unsigned char *c = ta_calloc(len + 2, "padded");
    memcpy(c, b, len);
    int ok = expect_reject("padded.bin", c, len + 2, "266 bytes", NULL, g_why, sizeof g_why);
    free(b);
    free(c);
    T_CHECK(ok, "%s", g_why);
}

static void test_short_file_rejected(void) {
    int ok = expect_reject("short.bin", (const unsigned char *)"TASHARD1", 8, "64-byte header",
                           "8-byte file", g_why, sizeof g_why) &&
             expect_reject("zero.bin", (const unsigned char *)"", 0, "0-byte", NULL, g_why,
                           sizeof g_why);
    T_CHECK(ok, "%s", g_why);
}

static void test_bad_magic_rejected(void) {
    size_t len;
    unsigned char *b = good_shard(&len);
    memcpy(b, "NOTSHARD", 8);
    int ok = expect_reject("magic.bin", b, len, "magic", "4e 4f 54", g_why, sizeof g_why);
    free(b);
    T_CHECK(ok, "%s", g_why);
}

static void test_bad_header_fields_rejected(void) {
    size_t len;
    unsigned char *b = good_shard(&len);
    unsigned char *c = ta_malloc(len, "copy");
    int ok = 1;
    memcpy(c, b, len), c[8] = 2; /* version 2 */
    ok = ok && expect_reject("ver.bin", c, len, "version 2", "expected 1", g_why, sizeof g_why);
    memcpy(c, b, len), c[12] = 3; /* token_bytes 3 */
    ok = ok && expect_reject("tb.bin", c, len, "token_bytes 3", "2 or 4", g_why, sizeof g_why);
    memcpy(c, b, len), c[20] = 1; /* reserved */
    ok = ok && expect_reject("res.bin", c, len, "reserved", NULL, g_why, sizeof g_why);
    memcpy(c, b, len), memset(c + 16, 0, 4); /* vocab 0 */
    ok = ok && expect_reject("v0.bin", c, len, "vocab_size 0", NULL, g_why, sizeof g_why);
    memcpy(c, b, len), c[31] = 0x80; /* absurd token count: no overflow, still rejected */
    ok = ok && expect_reject("huge.bin", c, len, "but the file has", NULL, g_why, sizeof g_why);
    free(b);
    free(c);
    T_CHECK(ok, "%s", g_why);
}

static void test_id_out_of_vocab_rejected(void) {
    size_t len;
    unsigned char *b = good_shard(&len);
    /* token 42 := 1000 (== vocab_size), token 50 := 4000: the first is reported */
    b[64 + 2 * 42] = 1000 & 0xff, b[64 + 2 * 42 + 1] = 1000 >> 8;
    b[64 + 2 * 50] = 4000 & 0xff, b[64 + 2 * 50 + 1] = 4000 >> 8;
    int ok = expect_reject("oov.bin", b, len, "token 42 has id 1000", "vocab_size 1000", g_why,
                           sizeof g_why);
    free(b);
    T_CHECK(ok, "%s", g_why);
}

static void test_writer_rejects_bad_ids(void) {
    char p[2300], tmp[2400];
    path_in(p, sizeof p, "wbad.bin");
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    unlink(p);
    ShardWriter w;
    TaError err = {0};
    T_CHECK(shard_writer_open(&w, p, 10, &err) == TA_OK, "%s", err.msg);
    int good[3] = {0, 9, 5}, bad[3] = {1, 10, 2}, neg[1] = {-1};
    T_CHECK(shard_writer_append(&w, good, 3, &err) == TA_OK, "%s", err.msg);
    int rc1 = shard_writer_append(&w, bad, 3, &err);
    int msg_ok = strstr(err.msg, "token id 10 (token 4)") != NULL;
    int rc2 = shard_writer_append(&w, neg, 1, &err);
    uint64_t n = w.num_tokens;
    shard_writer_abort(&w);
    shard_writer_abort(&w); /* twice is safe */
    T_CHECK(rc1 == TA_EINPUT && rc2 == TA_EINPUT, "bad ids accepted (rc %d %d)", rc1, rc2);
    T_CHECK(msg_ok, "message: %s", err.msg);
    T_CHECK(n == 3, "rejected ids were counted (%llu)", (unsigned long long)n);
    T_CHECK(!exists(p) && !exists(tmp), "abort left %s or %s behind", p, tmp);
    ShardWriter z;
    memset(&z, 0, sizeof z);
    shard_writer_abort(&z); /* zeroed is safe */
    T_CHECK(shard_writer_open(&w, p, 0, &err) == TA_EINPUT, "vocab 0 accepted");
}

static void test_missing_file(void) {
    char p[2300];
    path_in(p, sizeof p, "nope.bin");
    Shard s;
    TaError err = {0};
    T_CHECK(shard_open(&s, p, &err) == TA_EINPUT && strstr(err.msg, p) &&
                strstr(err.msg, "No such file"),
            "message: %s", err.msg);
}

int main(void) {
    const char *ref = getenv("TA_REF");
    snprintf(g_dir, sizeof g_dir, "%s/shard", ref && *ref ? ref : "build/ref");
    TaError err = {0};
    if (ta_mkdirs(g_dir, &err) != TA_OK) {
        printf("FAIL setup: %s\n", err.msg);
        return 1;
    }
    t_run("round_trip_uint16", test_round_trip_u16);
    t_run("round_trip_uint16_vocab_65536", test_round_trip_u16_edge);
    t_run("round_trip_uint32", test_round_trip_u32);
    t_run("round_trip_empty", test_round_trip_empty);
    t_run("truncated_rejected", test_truncated_rejected);
    t_run("trailing_bytes_rejected", test_padded_rejected);
    t_run("short_file_rejected", test_short_file_rejected);
    t_run("bad_magic_rejected", test_bad_magic_rejected);
    t_run("bad_header_fields_rejected", test_bad_header_fields_rejected);
    t_run("id_out_of_vocab_rejected", test_id_out_of_vocab_rejected);
    t_run("writer_rejects_bad_ids_and_aborts", test_writer_rejects_bad_ids);
    t_run("missing_file_rejected", test_missing_file);
    return t_done();
}
