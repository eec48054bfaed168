/* test_safetensors.c — the safetensors reader/writer and the model/optimizer files built
 * on it: exact round trips, HF layout (Conv1D transposes), and one case per kind of bad
 * input, each checking that the message names the file / tensor and what was expected.
 * Files go to ${TA_REF:-build/ref}/safetensors/. */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testhelp.h"
#include "tinyalign/common.h"
#include "tinyalign/model.h"
#include "tinyalign/model_io.h"
#include "tinyalign/optim.h"
#include "tinyalign/safetensors.h"

static char g_dir[1024];

static const char *tpath(const char *name) {
    static char buf[8][1200];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

/* Writes raw bytes: u64 header length, header, data (for hand-made bad files). */
static void write_raw(const char *path, uint64_t hlen, const char *hdr, size_t hdr_bytes,
                      const void *data, size_t dlen) {
    FILE *f = fopen(path, "wb");
    unsigned char l8[8];
    for (int i = 0; i < 8; i++) l8[i] = (unsigned char)(hlen >> (8 * i));
    fwrite(l8, 1, 8, f);
    fwrite(hdr, 1, hdr_bytes, f);
    if (dlen) fwrite(data, 1, dlen, f);
    fclose(f);
}

/* A header string written with its true length. */
static void write_hdr(const char *path, const char *hdr, const void *data, size_t dlen) {
    write_raw(path, strlen(hdr), hdr, strlen(hdr), data, dlen);
}

/* Opens path expecting failure whose message contains every NULL-terminated needle. */
static int open_fails_with(const char *path, const char **needles, char *why, size_t cap) {
    SafeTensors st;
    TaError err = {0};
    int rc = safetensors_open(&st, path, &err);
    if (rc == TA_OK) {
        safetensors_close(&st);
        snprintf(why, cap, "opened %s without error", path);
        return 0;
    }
    if (rc != TA_EINPUT || st.map || st.tensors) {
        snprintf(why, cap, "rc %d / struct not zeroed", rc);
        return 0;
    }
    for (; *needles; needles++)
        if (!strstr(err.msg, *needles)) {
            snprintf(why, cap, "message lacks \"%s\": %s", *needles, err.msg);
            return 0;
        }
    return 1;
}
#define EXPECT_FAIL(path, ...)                                                          \
    do {                                                                                \
        const char *needles_[] = {__VA_ARGS__, NULL};                                   \
        char why_[1400];                                                                \
        T_CHECK(open_fails_with(path, needles_, why_, sizeof why_), "%s", why_);        \
    } while (0)

static void test_roundtrip(void) {
    float a[6] = {1, -2, 3.5f, 1e-30f, -0.0f, 7}, b[3] = {0.25f, 0.5f, 0.75f}, s = 42.0f;
    int64_t sa[2] = {2, 3}, sb[1] = {3}, sz[2] = {0, 5};
    SafeWriter w;
    safetensors_writer_init(&w);
    safetensors_writer_add(&w, "layer.a", sa, 2, a);
    safetensors_writer_add(&w, "b", sb, 1, b);
    safetensors_writer_add(&w, "scalar", NULL, 0, &s);
    safetensors_writer_add(&w, "empty", sz, 2, NULL);
    safetensors_writer_meta(&w, "format", "pt");
    safetensors_writer_meta(&w, "note", "quote \" backslash \\ newline \n end");
    safetensors_writer_meta(&w, "format", "pt2"); /* replaces */
    TaError err = {0};
    int rc = safetensors_writer_write(&w, tpath("rt.safetensors"), NULL, &err);
    safetensors_writer_free(&w);
    T_CHECK(rc == TA_OK, "write: %s", err.msg);
    T_CHECK(access(tpath("rt.safetensors.tmp"), F_OK) != 0, "tmp file left behind");

    SafeTensors st;
    rc = safetensors_open(&st, tpath("rt.safetensors"), &err);
    T_CHECK(rc == TA_OK, "open: %s", err.msg);
    int ok = st.n == 4 && st.data_start % 8 == 0 && st.n_meta == 2;
    ok = ok && !strcmp(st.tensors[0].name, "layer.a") && !strcmp(st.tensors[3].name, "empty");
    const SafeTensorInfo *ta = safetensors_find(&st, "layer.a");
    const SafeTensorInfo *tb = safetensors_find(&st, "b");
    const SafeTensorInfo *ts = safetensors_find(&st, "scalar");
    const SafeTensorInfo *te = safetensors_find(&st, "empty");
    ok = ok && ta && tb && ts && te && !safetensors_find(&st, "nope");
    ok = ok && ta->ndim == 2 && ta->shape[0] == 2 && ta->shape[1] == 3 && ta->dtype == ST_F32;
    ok = ok && ts->ndim == 0 && ts->numel == 1 && te->numel == 0;
    const char *fmt = safetensors_meta(&st, "format"), *note = safetensors_meta(&st, "note");
    ok = ok && fmt && !strcmp(fmt, "pt2") && note &&
         !strcmp(note, "quote \" backslash \\ newline \n end") && !safetensors_meta(&st, "x");
    float ga[6] = {0}, gb[3] = {0}, gs = 0;
    ok = ok && safetensors_get_f32(&st, "layer.a", sa, 2, ga, &err) == TA_OK &&
         safetensors_get_f32(&st, "b", sb, 1, gb, &err) == TA_OK &&
         safetensors_get_f32(&st, "scalar", NULL, 0, &gs, &err) == TA_OK;
    ok = ok && !memcmp(ga, a, sizeof a) && !memcmp(gb, b, sizeof b) && gs == s;
    safetensors_close(&st);
    safetensors_close(&st); /* idempotent */
    T_CHECK(ok, "round trip mismatch (%s)", err.msg);
}

static void test_transposed_writer(void) {
    enum { R = 37, Cc = 70 }; /* out (R, Cc) from src (Cc, R); R > block size 32 */
    static float src[Cc * R], got[R * Cc];
    for (int i = 0; i < Cc * R; i++) src[i] = (float)i * 0.5f - 3.0f;
    SafeWriter w;
    safetensors_writer_init(&w);
    safetensors_writer_add_transposed(&w, "t", R, Cc, src);
    TaError err = {0};
    TaDigest dg;
    T_CHECK(safetensors_writer_write(&w, tpath("tr.safetensors"), &dg, &err) == TA_OK, "%s", err.msg);
    safetensors_writer_free(&w);
    /* the size and CRC32 computed while writing = those of the file read back */
    size_t len;
    char *bytes = ta_read_file(tpath("tr.safetensors"), &len, &err);
    T_CHECK(bytes && dg.bytes == len && dg.crc == ta_crc32(0, bytes, len),
            "digest while writing (%llu bytes, %08x) != file (%zu bytes)",
            (unsigned long long)dg.bytes, dg.crc, len);
    free(bytes);
    SafeTensors st;
    T_CHECK(safetensors_open(&st, tpath("tr.safetensors"), &err) == TA_OK, "%s", err.msg);
    int64_t shape[2] = {R, Cc};
    int rc = safetensors_get_f32(&st, "t", shape, 2, got, &err);
    safetensors_close(&st);
    T_CHECK(rc == TA_OK, "%s", err.msg);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < Cc; c++)
            T_CHECK(got[r * Cc + c] == src[c * R + r], "mismatch at (%d,%d)", r, c);
}

static void test_half_dtypes(void) {
    /* F16: 1.0, -2.5, 65504 (max), 2^-24 (min subnormal), inf, 2^-14 (min normal)
     * BF16: 1.0, -2.5, 3.0e38-ish (0x7f7f), F64: 0.1 */
    uint16_t h[6] = {0x3c00, 0xc100, 0x7bff, 0x0001, 0x7c00, 0x0400};
    uint16_t bf[3] = {0x3f80, 0xc020, 0x7f7f};
    double d = 0.1;
    unsigned char data[12 + 6 + 8];
    memcpy(data, h, 12);
    memcpy(data + 12, bf, 6);
    memcpy(data + 18, &d, 8);
    write_hdr(tpath("half.safetensors"),
              "{\"h\":{\"dtype\":\"F16\",\"shape\":[6],\"data_offsets\":[0,12]},"
              "\"bf\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[12,18]},"
              "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[18,26]}}",
              data, sizeof data);
    SafeTensors st;
    TaError err = {0};
    T_CHECK(safetensors_open(&st, tpath("half.safetensors"), &err) == TA_OK, "%s", err.msg);
    float fh[6], fb[3], fd;
    int64_t s6 = 6, s3 = 3, s1 = 1;
    int rc = safetensors_get_f32(&st, "h", &s6, 1, fh, &err);
    if (rc == TA_OK) rc = safetensors_get_f32(&st, "bf", &s3, 1, fb, &err);
    if (rc == TA_OK) rc = safetensors_get_f32(&st, "d", &s1, 1, &fd, &err);
    safetensors_close(&st);
    T_CHECK(rc == TA_OK, "%s", err.msg);
    T_CHECK(fh[0] == 1.0f && fh[1] == -2.5f && fh[2] == 65504.0f && fh[3] == ldexpf(1, -24) &&
                isinf(fh[4]) && fh[5] == ldexpf(1, -14),
            "F16 decode: %g %g %g %g %g %g", fh[0], fh[1], fh[2], fh[3], fh[4], fh[5]);
    uint32_t bits;
    memcpy(&bits, &fb[2], 4);
    T_CHECK(fb[0] == 1.0f && fb[1] == -2.5f && bits == 0x7f7f0000u, "BF16 decode");
    T_CHECK(fd == 0.1f, "F64 decode");
}

static void test_bad_files(void) {
    float data[4] = {1, 2, 3, 4};
    const char *good = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}";
    const char *p = tpath("bad.safetensors");
    write_hdr(p, good, data, 16);
    SafeTensors st;
    TaError err = {0};
    T_CHECK(safetensors_open(&st, p, &err) == TA_OK, "hand-written good file: %s", err.msg);
    safetensors_close(&st);

    EXPECT_FAIL(tpath("does-not-exist.safetensors"), "does-not-exist.safetensors", "cannot open");
    FILE *f = fopen(p, "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    EXPECT_FAIL(p, "bad.safetensors", "too short");
    /* header length larger than the file */
    write_raw(p, 1u << 20, good, strlen(good), data, 16);
    EXPECT_FAIL(p, "bad.safetensors", "header length 1048576");
    /* absurd header length */
    write_raw(p, UINT64_MAX, good, strlen(good), data, 16);
    EXPECT_FAIL(p, "header length");
    /* bad JSON */
    write_hdr(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", data, 8);
    EXPECT_FAIL(p, "bad.safetensors", "not valid JSON");
    write_hdr(p, "{\"a\": 1} xx", data, 0);
    EXPECT_FAIL(p, "unexpected bytes after the header");
    write_hdr(p, "[1, 2]", data, 0);
    EXPECT_FAIL(p, "does not start with '{'");
    /* unknown dtype */
    write_hdr(p, "{\"a\":{\"dtype\":\"F31\",\"shape\":[2],\"data_offsets\":[0,8]}}", data, 8);
    EXPECT_FAIL(p, "tensor \"a\"", "unknown dtype \"F31\"");
    /* bad shape */
    write_hdr(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", data, 8);
    EXPECT_FAIL(p, "tensor \"a\"", "shape entry 0");
    write_hdr(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", data, 8);
    EXPECT_FAIL(p, "tensor \"a\"", "shape entry 0");
    /* offsets that disagree with the shape */
    write_hdr(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", data, 8);
    EXPECT_FAIL(p, "tensor \"a\"", "hold 8 bytes", "needs 12");
    /* offsets out of range of the data */
    write_hdr(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", data, 16);
    EXPECT_FAIL(p, "tensor \"a\"", "run past the end");
    /* overlapping tensors */
    write_hdr(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", data, 12);
    EXPECT_FAIL(p, "\"a\" [0, 8]", "\"b\" [4, 12]", "overlap");
    /* a hole */
    write_hdr(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", data, 16);
    EXPECT_FAIL(p, "tensor \"b\"", "holes");
    /* trailing bytes not covered by any tensor */
    write_hdr(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", data, 16);
    EXPECT_FAIL(p, "cover 8 data bytes", "has 16");
    /* duplicate names, non-string metadata, non-float read */
    write_hdr(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", data, 8);
    EXPECT_FAIL(p, "tensor \"a\" appears twice");
    write_hdr(p, "{\"__metadata__\":{\"step\":3}}", data, 0);
    EXPECT_FAIL(p, "\"__metadata__\" value for \"step\" is not a string");
    /* a good file, truncated */
    float big[64] = {0};
    int64_t s64 = 64;
    SafeWriter w;
    safetensors_writer_init(&w);
    safetensors_writer_add(&w, "w", &s64, 1, big);
    T_CHECK(safetensors_writer_write(&w, p, NULL, &err) == TA_OK, "%s", err.msg);
    safetensors_writer_free(&w);
    struct stat sb;
    T_CHECK(stat(p, &sb) == 0 && truncate(p, sb.st_size - 100) == 0, "truncate");
    EXPECT_FAIL(p, "bad.safetensors", "tensor \"w\"", "truncated");

    /* integer tensors are listed but not readable as floats */
    write_hdr(p, "{\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}", data, 8);
    T_CHECK(safetensors_open(&st, p, &err) == TA_OK, "%s", err.msg);
    float out[2];
    int64_t s2 = 2, s3 = 3;
    int rc = safetensors_get_f32(&st, "i", &s2, 1, out, &err);
    int rc2 = rc == TA_OK ? TA_OK : safetensors_get_f32(&st, "i", &s3, 1, out, &err);
    char msg2[1024];
    snprintf(msg2, sizeof msg2, "%s", err.msg);
    int rc3 = safetensors_get_f32(&st, "j", &s2, 1, out, &err);
    safetensors_close(&st);
    T_CHECK(rc == TA_EINPUT && strstr(msg2, "has shape [2], expected [3]"), "shape msg: %s", msg2);
    T_CHECK(rc2 == TA_EINPUT && rc3 == TA_EINPUT &&
                strstr(err.msg, "missing tensor \"j\" (expected shape [2])"), "missing: %s",
            err.msg);
}

/* A small model with random weights, padded vocabulary (V=100, Vp=128). */
static int make_model(GPT2 *m, int L, int NH, int C, int T, int V, uint64_t seed) {
    GPT2Config cfg = {.max_seq_len = T, .vocab_size = V, .n_layer = L, .n_head = NH, .d_model = C};
    TaError err;
    if (gpt2_config_check(&cfg, &err) != TA_OK) return 0;
    gpt2_init(m, &cfg, 0);
    gpt2_init_weights(m, seed);
    /* non-trivial LayerNorms and biases, so a swapped tensor cannot go unnoticed */
    TaRng r;
    ta_rng_seed(&r, seed + 1);
    for (size_t i = 0; i < m->num_params; i++)
        if (m->params_memory[i] == 0.0f || m->params_memory[i] == 1.0f)
            m->params_memory[i] += 0.1f * (float)ta_rng_normal(&r);
    /* ... except the padded wte rows, which must stay zero */
    memset(m->params.wte + (size_t)V * C, 0, (size_t)(cfg.padded_vocab_size - V) * C * 4);
    return 1;
}

static void test_model_roundtrip(void) {
    GPT2 a = {0}, b = {0};
    T_CHECK(make_model(&a, 2, 4, 64, 32, 100, 7), "config");
    TaError err = {0};
    T_CHECK(model_save_dir(&a, tpath("model"), &err) == TA_OK, "save: %s", err.msg);
    int rc = model_load_dir(&b, tpath("model"), 1, &err);
    T_CHECK(rc == TA_OK, "load: %s", err.msg);
    int same_cfg = !memcmp(&a.config, &b.config, sizeof a.config);
    int same = a.num_params == b.num_params &&
               !memcmp(a.params_memory, b.params_memory, a.num_params * sizeof(float));
    int grads = b.grads_memory != NULL;
    /* load over garbage: padded rows are zeroed again */
    for (size_t i = 0; i < b.num_params; i++) b.params_memory[i] = 123.0f;
    rc = model_load_safetensors(&b, tpath("model/model.safetensors"), &err);
    int same2 = !memcmp(a.params_memory, b.params_memory, a.num_params * sizeof(float));
    gpt2_free(&a);
    gpt2_free(&b);
    T_CHECK(same_cfg, "config differs after round trip");
    T_CHECK(same, "parameters differ after round trip");
    T_CHECK(grads, "with_grads ignored");
    T_CHECK(rc == TA_OK && same2, "reload over garbage: %s", err.msg);
}

/* The file holds HF names and Conv1D (in, out) layout: spot-check every transposed
 * tensor against our slab. */
static void test_hf_layout(void) {
    GPT2 m = {0};
    T_CHECK(make_model(&m, 2, 2, 8, 5, 70, 3), "config");
    TaError err = {0};
    const char *p = tpath("layout.safetensors");
    T_CHECK(model_save_safetensors(&m, p, NULL, &err) == TA_OK, "%s", err.msg);
    SafeTensors st;
    T_CHECK(safetensors_open(&st, p, &err) == TA_OK, "%s", err.msg);
    const int C = 8, L = 2;
    int ok = st.n == 4 + 12 * L && safetensors_meta(&st, "format") &&
             !strcmp(safetensors_meta(&st, "format"), "pt");
    const SafeTensorInfo *wte = safetensors_find(&st, "transformer.wte.weight");
    ok = ok && wte && wte->shape[0] == 70 && wte->shape[1] == C;
    static const struct {
        const char *name;
        int rows, cols; /* HF shape (in, out) in units of C */
        int which;
    } W[] = {{"attn.c_attn.weight", 1, 3, 0}, {"attn.c_proj.weight", 1, 1, 1},
             {"mlp.c_fc.weight", 1, 4, 2},    {"mlp.c_proj.weight", 4, 1, 3}};
    for (int l = 0; l < L && ok; l++)
        for (int k = 0; k < 4 && ok; k++) {
            char name[128];
            snprintf(name, sizeof name, "transformer.h.%d.%s", l, W[k].name);
            const SafeTensorInfo *t = safetensors_find(&st, name);
            size_t R = (size_t)W[k].rows * C, Cc = (size_t)W[k].cols * C;
            ok = t && t->ndim == 2 && t->shape[0] == (int64_t)R && t->shape[1] == (int64_t)Cc;
            if (!ok) break;
            float *hf = malloc(R * Cc * sizeof(float));
            safetensors_read_f32(&st, t, hf, &err);
            const float *ours = (W[k].which == 0   ? m.params.qkvw
                                 : W[k].which == 1 ? m.params.attprojw
                                 : W[k].which == 2 ? m.params.fcw
                                                   : m.params.fcprojw) +
                                (size_t)l * R * Cc;
            /* ours (out=Cc, in=R): ours[o][i] == hf[i][o] */
            for (size_t i = 0; i < R && ok; i++)
                for (size_t o = 0; o < Cc && ok; o++) ok = ours[o * R + i] == hf[i * Cc + o];
            free(hf);
        }
    safetensors_close(&st);
    gpt2_free(&m);
    T_CHECK(ok, "HF layout mismatch");
}

/* Loading into a model of another size names the tensor, expected vs found. */
static void test_wrong_shapes(void) {
    GPT2 a = {0}, b = {0};
    T_CHECK(make_model(&a, 2, 4, 64, 32, 100, 1), "config");
    TaError err = {0};
    const char *p = tpath("shapes.safetensors");
    T_CHECK(model_save_safetensors(&a, p, NULL, &err) == TA_OK, "%s", err.msg);
    gpt2_free(&a);

    T_CHECK(make_model(&b, 2, 4, 32, 32, 100, 1), "config");
    int rc = model_load_safetensors(&b, p, &err);
    gpt2_free(&b);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "shapes.safetensors: tensor "
                                               "\"transformer.wte.weight\" has shape [100, 64], "
                                               "expected [100, 32]"), "C: %s", err.msg);
    T_CHECK(make_model(&b, 2, 4, 64, 16, 100, 1), "config");
    rc = model_load_safetensors(&b, p, &err);
    gpt2_free(&b);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "\"transformer.wpe.weight\" has shape [32, 64], "
                                               "expected [16, 64]"), "T: %s", err.msg);
    T_CHECK(make_model(&b, 3, 4, 64, 32, 100, 1), "config");
    rc = model_load_safetensors(&b, p, &err);
    gpt2_free(&b);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "missing tensor \"transformer.h.2.ln_1.weight\""),
            "L+1: %s", err.msg);
    T_CHECK(make_model(&b, 1, 4, 64, 32, 100, 1), "config");
    rc = model_load_safetensors(&b, p, &err);
    gpt2_free(&b);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "12 unexpected tensors") &&
                strstr(err.msg, "\"transformer.h.1.ln_1.weight\""), "L-1: %s", err.msg);
    T_CHECK(make_model(&b, 2, 4, 64, 32, 90, 1), "config");
    rc = model_load_safetensors(&b, p, &err);
    gpt2_free(&b);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "expected [90, 64]"), "V: %s", err.msg);
}

static void write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "w");
    fputs(s, f);
    fclose(f);
}

static void test_config_json(void) {
    GPT2Config c = {.max_seq_len = 1024, .vocab_size = 50257, .n_layer = 12, .n_head = 12,
                    .d_model = 768}, r;
    TaError err = {0};
    T_CHECK(model_config_write(&c, tpath("config.json"), NULL, &err) == TA_OK, "%s", err.msg);
    T_CHECK(model_config_read(&r, tpath("config.json"), &err) == TA_OK, "%s", err.msg);
    T_CHECK(r.max_seq_len == 1024 && r.vocab_size == 50257 && r.n_layer == 12 && r.n_head == 12 &&
                r.d_model == 768 && r.padded_vocab_size == 0, "config round trip");
    size_t len;
    char *text = ta_read_file(tpath("config.json"), &len, &err);
    T_CHECK(text && strstr(text, "\"GPT2LMHeadModel\"") && strstr(text, "\"gelu_new\"") &&
                strstr(text, "\"model_type\":\t\"gpt2\""), "config text: %s", text ? text : "");
    free(text);
    /* HF's original gpt2 config uses n_ctx and extra keys: accepted */
    write_text(tpath("c.json"), "{\"n_ctx\": 1024, \"vocab_size\": 50257, \"n_layer\": 12, "
                                "\"n_head\": 12, \"n_embd\": 768, \"bos_token_id\": 50256, "
                                "\"summary_type\": \"cls_index\"}");
    T_CHECK(model_config_read(&r, tpath("c.json"), &err) == TA_OK && r.max_seq_len == 1024,
            "n_ctx: %s", err.msg);
    static const struct {
        const char *json, *needle;
    } BAD[] = {
        {"{\"n_positions\": 8, \"vocab_size\": 10, \"n_layer\": 1, \"n_head\": 1}", "missing key \"n_embd\""},
        {"{\"n_positions\": 8, \"vocab_size\": 10, \"n_layer\": 1.5, \"n_head\": 1, \"n_embd\": 4}",
         "\"n_layer\" must be a positive integer, found 1.5"},
        {"{\"n_positions\": 8, \"vocab_size\": 10, \"n_layer\": 1, \"n_head\": 1, \"n_embd\": 4, "
         "\"n_inner\": 8}", "\"n_inner\""},
        {"{\"n_positions\": 8, \"vocab_size\": 10, \"n_layer\": 1, \"n_head\": 1, \"n_embd\": 4, "
         "\"activation_function\": \"relu\"}", "\"activation_function\" is relu"},
        {"{\"n_positions\": 8, \"vocab_size\": 10, \"n_layer\": 1, \"n_head\": 1, \"n_embd\": 4, "
         "\"model_type\": \"llama\"}", "\"model_type\" is llama"},
        {"{\"n_positions\": 8, \"vocab_size\": 10, \"n_layer\": 1, \"n_head\": 1, \"n_embd\": 4, "
         "\"tie_word_embeddings\": false}", "\"tie_word_embeddings\" must be true"},
        {"{\"n_positions\": 8, \"vocab_size\": 10, ", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        write_text(tpath("bad.json"), BAD[i].json);
        int rc = model_config_read(&r, tpath("bad.json"), &err);
        T_CHECK(rc == TA_EINPUT && strstr(err.msg, "bad.json") && strstr(err.msg, BAD[i].needle),
                "case %zu: %s", i, err.msg);
    }
}

static void test_load_dir_errors(void) {
    GPT2 m = {0};
    TaError err = {0};
    int rc = model_load_dir(&m, tpath("no-such-dir"), 0, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "no-such-dir") && m.params_memory == NULL,
            "missing dir: %s", err.msg);
    /* config.json whose n_embd does not divide by n_head */
    T_CHECK(ta_mkdirs(tpath("baddir"), &err) == TA_OK, "%s", err.msg);
    write_text(tpath("baddir/config.json"), "{\"n_positions\": 8, \"vocab_size\": 10, "
                                            "\"n_layer\": 1, \"n_head\": 3, \"n_embd\": 8}");
    rc = model_load_dir(&m, tpath("baddir"), 0, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "baddir/config.json"), "C%%NH: %s", err.msg);
    /* good config, no weights */
    write_text(tpath("baddir/config.json"), "{\"n_positions\": 8, \"vocab_size\": 10, "
                                            "\"n_layer\": 1, \"n_head\": 2, \"n_embd\": 8}");
    rc = model_load_dir(&m, tpath("baddir"), 0, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "baddir/model.safetensors: cannot open") &&
                m.params_memory == NULL, "no weights: %s", err.msg);
}

static void test_optim_roundtrip(void) {
    GPT2 m = {0}, m2 = {0};
    T_CHECK(make_model(&m, 1, 2, 16, 8, 70, 5), "config");
    AdamWConfig oc = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    AdamW a, b;
    adamw_init(&a, &oc, m.num_params);
    adamw_init(&b, &oc, m.num_params);
    TaRng r;
    ta_rng_seed(&r, 9);
    for (size_t i = 0; i < a.n; i++) {
        a.m[i] = (float)ta_rng_normal(&r);
        a.v[i] = ta_rng_f32(&r);
    }
    a.step = 1234567;
    TaError err = {0};
    const char *p = tpath("optim.safetensors");
    int rc = optim_save_safetensors(&a, &m, p, NULL, &err);
    if (rc == TA_OK) rc = optim_load_safetensors(&b, &m, p, &err);
    int same = rc == TA_OK && b.step == a.step && !memcmp(a.m, b.m, a.n * 4) &&
               !memcmp(a.v, b.v, a.n * 4);
    /* a model of another size: the message says both */
    make_model(&m2, 1, 2, 16, 8, 71, 5); /* same Vp, so same num_params: caught by config */
    AdamW c;
    adamw_init(&c, &oc, m2.num_params);
    int rc2 = m2.num_params == m.num_params ? optim_load_safetensors(&c, &m2, p, &err) : -1;
    char msg2[1024];
    snprintf(msg2, sizeof msg2, "%s", err.msg);
    /* a model file is not an AdamW file */
    model_save_safetensors(&m, tpath("notoptim.safetensors"), NULL, &err);
    int rc3 = optim_load_safetensors(&b, &m, tpath("notoptim.safetensors"), &err);
    adamw_free(&a);
    adamw_free(&b);
    adamw_free(&c);
    gpt2_free(&m);
    gpt2_free(&m2);
    T_CHECK(same, "AdamW round trip: %s", err.msg);
    T_CHECK(rc2 == TA_EINPUT && strstr(msg2, "vocab_size=70") && strstr(msg2, "vocab_size=71"),
            "other model: %s", msg2);
    T_CHECK(rc3 == TA_EINPUT && strstr(err.msg, "not an AdamW state file"), "format: %s",
            err.msg);
}

int main(void) {
    const char *ref = getenv("TA_REF");
    snprintf(g_dir, sizeof g_dir, "%s/safetensors", ref && *ref ? ref : "build/ref");
    TaError err;
    if (ta_mkdirs(g_dir, &err) != TA_OK) {
        printf("FAIL setup: %s\n", err.msg);
        return 1;
    }
    ta_set_threads(1);
    t_run("safetensors round trip (shapes, scalar, empty, metadata escapes)", test_roundtrip);
    t_run("safetensors transposed writer", test_transposed_writer);
    t_run("safetensors F16/BF16/F64 read as F32", test_half_dtypes);
    t_run("safetensors bad files rejected with clear messages", test_bad_files);
    t_run("model save/load round trip is bit-exact", test_model_roundtrip);
    t_run("model file uses HF names and Conv1D (in,out) layout", test_hf_layout);
    t_run("model load with wrong shapes names the tensor", test_wrong_shapes);
    t_run("config.json write/read and rejections", test_config_json);
    t_run("model_load_dir errors name the file", test_load_dir_errors);
    t_run("AdamW state round trip and mismatch errors", test_optim_roundtrip);
    return t_done();
}
