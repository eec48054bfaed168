/* test_dataset.c — JSONL datasets and batches (include/tinyalign/data.h, JSONL part):
 *   - exact token layout of hand-made SFT / preference / multi examples against ids
 *     encoded piece by piece here: [BOS] prompt completion [EOS], targets shifted by one,
 *     loss_mask covering exactly the completion targets (EOS included), padding with the
 *     pad id and target -1, lengths, weights, example ids, the pair layout;
 *   - truncation (keep_end, keep_start, response cut without EOS), the truncated count, a
 *     tokenizer without BOS and without pad (pad = EOS);
 *   - a batch of varied examples (multilingual, long, short) for every format and both
 *     truncation modes compared array for array with tools/ref_dataset.py, a Python
 *     reimplementation of the same convention over python3-sentencepiece, which also
 *     recomputes dataset_hash from its definition;
 *   - every bad-input case: TA_EINPUT and one message naming the file, ":<line>" and the
 *     field (and the column for JSON syntax errors);
 *   - the multi-response accessors, tokenizing later, kept fields (as written, spliced back by
 *     the writers, checked with Python's json), prompt files, the generation prompt, blank
 *     lines / CRLF / BOM / unknown fields, the hash,
 *     batch_alloc/batch_free, and data_epoch_permutation (seeded, a true permutation,
 *     different per epoch).
 * The SentencePiece models are trained here from generated text. Env: TA_ROOT (repo root,
 * default "."), TA_REF (scratch, default build/ref), PYTHON (default /usr/bin/python3). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "testhelp.h"
#include "tinyalign/common.h"
#include "tinyalign/data.h"
#include "tinyalign/tokenizer.h"

static char g_dir[2048];  /* scratch directory */
static char g_root[2048]; /* repo root */
static const char *g_py;
static Tokenizer *g_tok;   /* bos 1, eos 2, pad 3 */
static Tokenizer *g_nobos; /* no bos, no pad: eos 1 */
static char g_model[2300], g_noeos_model[2300];

static const char *env_or(const char *k, const char *def) {
    const char *v = getenv(k);
    return v && *v ? v : def;
}

static void path_in(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", g_dir, name);
}

/* Writes content (n bytes, or strlen when n == 0) to g_dir/name; returns the path (static
 * buffer per call site is not needed: callers copy it). */
static void write_file(char *path, size_t cap, const char *name, const char *content, size_t n) {
    path_in(path, cap, name);
    FILE *f = fopen(path, "wb");
    TA_ASSERT(f);
    fwrite(content, 1, n ? n : strlen(content), f);
    fclose(f);
}

static int run_cmd(const char *cmd) {
    int rc = system(cmd);
    return rc == -1 ? -1 : (WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
}

static DatasetOptions opts(int max_len, int max_prompt_len, TruncationMode m) {
    DatasetOptions o = {.max_len = max_len, .max_prompt_len = max_prompt_len,
                        .truncation_mode = m};
    return o;
}

/* Encodes s with the test tokenizer into a static-size array; returns the count. */
static int enc(const Tokenizer *tok, const char *s, int *out, int cap) {
    int *ids, n;
    TaError err = {0};
    TA_ASSERT(tokenizer_encode(tok, s, strlen(s), &ids, &n, &err) == TA_OK);
    TA_ASSERT(n <= cap);
    memcpy(out, ids, (size_t)n * sizeof(int));
    free(ids);
    return n;
}

/* ---- training text and models --------------------------------------------------------- */
static void write_training_text(const char *path) {
    static const char *cons = "bcdfghklmnprstvwz";
    static const char *vow = "aeiou";
    static const char *extra[] = {"the", "and", "of", "to", "in", "is", "what", "answer",
                                  "question", "café", "über", "東京", "мир", "42", "?", "."};
    TaRng r;
    ta_rng_seed(&r, 99);
    FILE *f = fopen(path, "wb");
    TA_ASSERT(f);
    for (int line = 0; line < 1500; line++) {
        int words = 3 + (int)ta_rng_below(&r, 10);
        for (int w = 0; w < words; w++) {
            if (w) fputc(' ', f);
            if (ta_rng_below(&r, 3) == 0) {
                fputs(extra[ta_rng_below(&r, sizeof extra / sizeof extra[0])], f);
            } else {
                int syl = 1 + (int)ta_rng_below(&r, 3);
                for (int s = 0; s < syl; s++) {
                    fputc(cons[ta_rng_below(&r, 17)], f);
                    fputc(vow[ta_rng_below(&r, 5)], f);
                }
            }
        }
        fputc('\n', f);
    }
    fclose(f);
}

static int train_model(const char *name, int bos, int eos, int pad, char *model, size_t cap,
                       char *msg, size_t msgcap) {
    char input[2200], prefix[2200];
    path_in(input, sizeof input, "train.txt");
    path_in(prefix, sizeof prefix, name);
    TokenizerTrainOptions o;
    tokenizer_train_defaults(&o);
    o.input = input;
    o.model_prefix = prefix;
    o.vocab_size = 400;
    o.unk_id = 0;
    o.bos_id = bos;
    o.eos_id = eos;
    o.pad_id = pad;
    TaError err = {0};
    if (tokenizer_train(&o, &err) != TA_OK) {
        snprintf(msg, msgcap, "%s", err.msg);
        return -1;
    }
    snprintf(model, cap, "%s.model", prefix);
    return 0;
}

/* ---- checks of one batch row ------------------------------------------------------------ */
/* Row `row` of b must be exactly seq (n tokens, P of them [BOS]+prompt) padded to b->T. */
static int row_is(const Batch *b, int row, const int *seq, int n, int P, int pad, char *why,
                  size_t cap) {
    int T = b->T;
    const int *tok = b->tokens + (size_t)row * T, *tgt = b->targets + (size_t)row * T;
    const uint8_t *m = b->loss_mask + (size_t)row * T;
    if (b->lengths[row] != n - 1) {
        snprintf(why, cap, "row %d: length %d, expected %d", row, b->lengths[row], n - 1);
        return 0;
    }
    int masked = 0;
    for (int t = 0; t < T; t++) {
        int want_tok = t < n - 1 ? seq[t] : pad;
        int want_tgt = t < n - 1 ? seq[t + 1] : -1;
        int want_m = t < n - 1 && t + 1 >= P;
        if (tok[t] != want_tok || tgt[t] != want_tgt || m[t] != want_m) {
            snprintf(why, cap, "row %d t %d: token %d target %d mask %d, expected %d %d %d", row,
                     t, tok[t], tgt[t], m[t], want_tok, want_tgt, want_m);
            return 0;
        }
        masked += m[t];
    }
    if (masked != n - P) {
        snprintf(why, cap, "row %d: %d masked targets, expected %d", row, masked, n - P);
        return 0;
    }
    return 1;
}

/* An empty completion / chosen / rejected (what `sample` writes when EOS comes first, and
 * what curate then selects) is a response of no tokens: the row is [BOS] prompt [EOS] and
 * its one loss position is the EOS. */
static void test_empty_response_rows(void) {
    char p[2300], why[256];
    write_file(p, sizeof p, "sft_empty.jsonl", "{\"prompt\": \"kabo\", \"completion\": \"\"}\n",
               0);
    Dataset *d;
    TaError err = {0};
    DatasetOptions o = opts(64, 32, TRUNC_KEEP_END);
    T_CHECK(dataset_load(&d, p, DS_SFT, g_tok, &o, &err) == TA_OK, "%s", err.msg);
    int s[40], n = 0, P;
    s[n++] = 1;
    n += enc(g_tok, "kabo", s + n, 30);
    P = n;
    s[n++] = 2;
    Batch b;
    batch_alloc(&b, 2, 64);
    uint32_t id = 0;
    dataset_fill(d, &id, 1, &b);
    int ok = row_is(&b, 0, s, n, P, 3, why, sizeof why);
    batch_free(&b);
    dataset_free(d);
    T_CHECK(ok, "sft: %s", why);
    write_file(p, sizeof p, "pref_empty.jsonl",
               "{\"prompt\": \"kabo\", \"chosen\": \"\", \"rejected\": \"tesi\"}\n", 0);
    T_CHECK(dataset_load(&d, p, DS_PREFERENCE, g_tok, &o, &err) == TA_OK, "%s", err.msg);
    batch_alloc(&b, 2, 64);
    dataset_fill(d, &id, 1, &b);
    ok = row_is(&b, 0, s, n, P, 3, why, sizeof why); /* the chosen row */
    batch_free(&b);
    dataset_free(d);
    T_CHECK(ok, "preference chosen: %s", why);
}

/* ---- exact layouts ---------------------------------------------------------------------- */
static void test_sft_layout(void) {
    char p[2300], why[256];
    write_file(p, sizeof p, "sft.jsonl",
               "{\"prompt\": \"What is the answer?\", \"completion\": \" 42 and café.\", \"id\": 7}\n"
               "{\"prompt\": \"kabo\", \"completion\": \"tesi\", \"meta\": {\"x\": [1, 2]}}\n",
               0);
    Dataset *d;
    TaError err = {0};
    DatasetOptions o = opts(64, 32, TRUNC_KEEP_END);
    T_CHECK(dataset_load(&d, p, DS_SFT, g_tok, &o, &err) == TA_OK, "%s", err.msg);
    T_CHECK(dataset_size(d) == 2 && dataset_rows_per_example(d) == 1 &&
                dataset_num_truncated(d) == 0 && dataset_kind(d) == DS_SFT,
            "size %zu rows/ex %d truncated %zu", dataset_size(d), dataset_rows_per_example(d),
            dataset_num_truncated(d));
    T_CHECK(dataset_line(d, 0) == 1 && dataset_line(d, 1) == 2, "lines");
    int s0[80], s1[80], n0 = 0, n1 = 0, P0, P1;
    s0[n0++] = 1;
    n0 += enc(g_tok, "What is the answer?", s0 + n0, 40);
    P0 = n0;
    n0 += enc(g_tok, " 42 and café.", s0 + n0, 40);
    s0[n0++] = 2;
    s1[n1++] = 1;
    n1 += enc(g_tok, "kabo", s1 + n1, 40);
    P1 = n1;
    n1 += enc(g_tok, "tesi", s1 + n1, 40);
    s1[n1++] = 2;
    Batch b;
    batch_alloc(&b, 4, 64);
    uint32_t ids[2] = {1, 0};
    dataset_fill(d, ids, 2, &b);
    int Tw = (n0 > n1 ? n0 : n1) - 1;
    T_CHECK(b.B == 2 && b.T == Tw && b.n_pairs == 0, "B %d T %d (expected %d) n_pairs %d", b.B,
            b.T, Tw, b.n_pairs);
    T_CHECK(row_is(&b, 0, s1, n1, P1, 3, why, sizeof why), "%s", why);
    T_CHECK(row_is(&b, 1, s0, n0, P0, 3, why, sizeof why), "%s", why);
    T_CHECK(b.example_ids[0] == 1 && b.example_ids[1] == 0, "example ids");
    T_CHECK(b.weights[0] == 1.0f && b.weights[1] == 1.0f, "weights");
    /* the shorter row is really padded */
    T_CHECK(n1 - 1 < b.T, "test needs rows of different lengths");
    batch_free(&b);
    batch_free(&b); /* safe twice (zeroed) */
    dataset_free(d);
}

static void test_preference_layout(void) {
    char p[2300], why[256];
    write_file(p, sizeof p, "pref.jsonl",
               "{\"prompt\": \"the question\", \"chosen\": \" good answer\", \"rejected\": \" bad\"}\n"
               "\n"
               "{\"id\": \"x\", \"prompt\": \"kabo tesi\", \"chosen\": \" zu\", \"rejected\": \" mir\", \"weight\": 0.25}\n"
               "{\"prompt\": \"of\", \"chosen\": \"a\", \"rejected\": \"b\", \"weight\": 0}\n",
               0);
    Dataset *d;
    TaError err = {0};
    DatasetOptions o = opts(64, 32, TRUNC_KEEP_END);
    T_CHECK(dataset_load(&d, p, DS_PREFERENCE, g_tok, &o, &err) == TA_OK, "%s", err.msg);
    T_CHECK(dataset_size(d) == 3 && dataset_rows_per_example(d) == 2, "size %zu",
            dataset_size(d));
    T_CHECK(dataset_line(d, 1) == 3 && dataset_line(d, 2) == 4, "blank line not counted");
    const char *P[] = {"the question", "kabo tesi", "of"};
    const char *C[] = {" good answer", " zu", "a"};
    const char *R[] = {" bad", " mir", "b"};
    const float W[] = {1.0f, 0.25f, 0.0f};
    Batch b;
    batch_alloc(&b, 6, 64);
    uint32_t ids[3] = {2, 0, 1};
    dataset_fill(d, ids, 3, &b);
    T_CHECK(b.B == 6 && b.n_pairs == 3, "B %d n_pairs %d", b.B, b.n_pairs);
    for (int i = 0; i < 3; i++) {
        int e = (int)ids[i];
        for (int k = 0; k < 2; k++) {
            int s[80], n = 0;
            s[n++] = 1;
            n += enc(g_tok, P[e], s + n, 40);
            int Pl = n;
            n += enc(g_tok, k ? R[e] : C[e], s + n, 40);
            s[n++] = 2;
            int row = k * 3 + i;
            T_CHECK(row_is(&b, row, s, n, Pl, 3, why, sizeof why), "pair %d %s: %s", i,
                    k ? "rejected" : "chosen", why);
            T_CHECK(b.weights[row] == W[e], "row %d weight %g, expected %g", row,
                    (double)b.weights[row], (double)W[e]);
            T_CHECK(b.example_ids[row] == e, "row %d example id", row);
        }
    }
    batch_free(&b);
    dataset_free(d);
}

/* keep_end / keep_start prompt cuts and the response cut, exact. */
static void check_truncation(TruncationMode mode) {
    char p[2300], why[256];
    const char *prompt = "kabo tesi zu mir the question of the answer and what is 42";
    const char *resp = " good answer and more words to cut here";
    char line[1024];
    snprintf(line, sizeof line,
             "{\"prompt\": \"%s\", \"completion\": \"%s\"}\n"
             "{\"prompt\": \"of\", \"completion\": \" a\"}\n"
             "{\"prompt\": \"of\", \"completion\": \"%s\"}\n",
             prompt, resp, resp);
    write_file(p, sizeof p, mode == TRUNC_KEEP_END ? "trunc_end.jsonl" : "trunc_start.jsonl",
               line, 0);
    int pi[80], ri[80], ofi[8], ai[8];
    int np = enc(g_tok, prompt, pi, 80), nr = enc(g_tok, resp, ri, 80);
    int nof = enc(g_tok, "of", ofi, 8), na = enc(g_tok, " a", ai, 8);
    const int MPL = 6, ML = 12;
    T_CHECK(np > MPL && nr > ML, "test strings too short: %d %d", np, nr);
    Dataset *d;
    TaError err = {0};
    DatasetOptions o = opts(ML, MPL, mode);
    T_CHECK(dataset_load(&d, p, DS_SFT, g_tok, &o, &err) == TA_OK, "%s", err.msg);
    T_CHECK(dataset_num_truncated(d) == 2, "truncated %zu, expected 2",
            dataset_num_truncated(d));
    Batch b;
    batch_alloc(&b, 3, ML);
    uint32_t ids[3] = {0, 1, 2};
    dataset_fill(d, ids, 3, &b);
    T_CHECK(b.T == ML - 1, "T %d", b.T);
    /* example 0: [BOS] + 5 prompt tokens (which ones: the mode) + response cut to 6, no EOS */
    int s[16], n = 0;
    s[n++] = 1;
    int keep = MPL - 1;
    for (int k = 0; k < keep; k++) s[n++] = mode == TRUNC_KEEP_END ? pi[np - keep + k] : pi[k];
    for (int k = 0; n < ML; k++) s[n++] = ri[k];
    T_CHECK(row_is(&b, 0, s, n, MPL, 3, why, sizeof why), "long example: %s", why);
    T_CHECK(b.tokens[n - 2] != 2 && b.targets[n - 2] != 2, "EOS should be cut away");
    /* example 1 untouched */
    n = 0;
    s[n++] = 1;
    for (int k = 0; k < nof; k++) s[n++] = ofi[k];
    int Pl = n;
    for (int k = 0; k < na; k++) s[n++] = ai[k];
    s[n++] = 2;
    T_CHECK(row_is(&b, 1, s, n, Pl, 3, why, sizeof why), "short example: %s", why);
    /* example 2: only the response is cut */
    n = 0;
    s[n++] = 1;
    for (int k = 0; k < nof; k++) s[n++] = ofi[k];
    for (int k = 0; n < ML; k++) s[n++] = ri[k];
    T_CHECK(row_is(&b, 2, s, n, Pl, 3, why, sizeof why), "response cut: %s", why);
    batch_free(&b);
    dataset_free(d);
}
static void test_truncation_keep_end(void) { check_truncation(TRUNC_KEEP_END); }
static void test_truncation_keep_start(void) { check_truncation(TRUNC_KEEP_START); }

/* A preference pair shares the prompt cut; one long response makes the pair truncated. */
static void test_pair_truncation(void) {
    char p[2300];
    write_file(p, sizeof p, "pair_trunc.jsonl",
               "{\"prompt\": \"kabo tesi zu mir the question\", \"chosen\": \" a\", \"rejected\": \" b\"}\n"
               "{\"prompt\": \"of\", \"chosen\": \" a\", \"rejected\": \" the answer and what is 42 kabo tesi zu\"}\n"
               "{\"prompt\": \"of\", \"chosen\": \" a\", \"rejected\": \" b\"}\n",
               0);
    Dataset *d;
    TaError err = {0};
    DatasetOptions o = opts(10, 4, TRUNC_KEEP_START);
    T_CHECK(dataset_load(&d, p, DS_PREFERENCE, g_tok, &o, &err) == TA_OK, "%s", err.msg);
    T_CHECK(dataset_num_truncated(d) == 2, "truncated %zu, expected 2",
            dataset_num_truncated(d));
    Batch b;
    batch_alloc(&b, 2, 10);
    uint32_t id = 0;
    dataset_fill(d, &id, 1, &b);
    T_CHECK(b.n_pairs == 1 && !memcmp(b.tokens, b.tokens + b.T, 4 * sizeof(int)),
            "chosen and rejected prompts differ");
    T_CHECK(b.tokens[0] == 1 && b.loss_mask[2] == 0 && b.loss_mask[3] == 1,
            "prompt of 4 tokens (BOS included) expected");
    batch_free(&b);
    dataset_free(d);
}

/* No BOS in the tokenizer: seq = prompt completion [EOS]; no pad: pad = EOS. */
static void test_no_bos_no_pad(void) {
    char p[2300], why[256];
    T_CHECK(g_nobos, "no-BOS model missing");
    T_CHECK(tokenizer_bos_id(g_nobos) < 0 && tokenizer_pad_id(g_nobos) < 0, "model has bos/pad");
    int eos = tokenizer_eos_id(g_nobos);
    write_file(p, sizeof p, "nobos.jsonl",
               "{\"prompt\": \"kabo tesi zu mir the question\", \"completion\": \" good\"}\n"
               "{\"prompt\": \"of\", \"completion\": \" a\"}\n",
               0);
    Dataset *d;
    TaError err = {0};
    DatasetOptions o = opts(32, 3, TRUNC_KEEP_END);
    T_CHECK(dataset_load(&d, p, DS_SFT, g_nobos, &o, &err) == TA_OK, "%s", err.msg);
    Batch b;
    batch_alloc(&b, 2, 32);
    uint32_t ids[2] = {0, 1};
    dataset_fill(d, ids, 2, &b);
    int pi[40], s[48], n = 0;
    int np = enc(g_nobos, "kabo tesi zu mir the question", pi, 40);
    for (int k = np - 3; k < np; k++) s[n++] = pi[k]; /* 3 prompt tokens, no BOS */
    n += enc(g_nobos, " good", s + n, 8);
    s[n++] = eos;
    T_CHECK(row_is(&b, 0, s, n, 3, eos, why, sizeof why), "%s", why);
    n = enc(g_nobos, "of", s, 8);
    int Pl = n;
    n += enc(g_nobos, " a", s + n, 8);
    s[n++] = eos;
    T_CHECK(row_is(&b, 1, s, n, Pl, eos, why, sizeof why), "%s", why);
    T_CHECK(dataset_num_truncated(d) == 1, "truncated %zu", dataset_num_truncated(d));
    batch_free(&b);
    dataset_free(d);
}

/* CRLF line ends, a UTF-8 BOM, blank and whitespace-only lines. */
static void test_crlf_bom_blank(void) {
    char p[2300];
    write_file(p, sizeof p, "crlf.jsonl",
               "\xEF\xBB\xBF{\"prompt\": \"of\", \"completion\": \" a\"}\r\n"
               "\r\n"
               "   \t \r\n"
               "{\"prompt\": \"to\", \"completion\": \" b\"}\r\n",
               0);
    Dataset *d;
    TaError err = {0};
    DatasetOptions o = opts(16, 8, TRUNC_KEEP_END);
    T_CHECK(dataset_load(&d, p, DS_SFT, g_tok, &o, &err) == TA_OK, "%s", err.msg);
    T_CHECK(dataset_size(d) == 2 && dataset_line(d, 1) == 4, "size %zu line %ld",
            dataset_size(d), dataset_line(d, 1));
    dataset_free(d);
}

/* ---- multi-response ---------------------------------------------------------------------- */
static void test_multi(void) {
    char p[2300], why[256];
    write_file(p, sizeof p, "multi.jsonl",
               "{\"prompt\": \"the question\", \"responses\": [{\"text\": \" one\", \"score\": 0.5, "
               "\"embedding\": [1, 2.5, -3]}, {\"text\": \" two\"}, {\"text\": \" one\", \"score\": -2, \"id\": 3}]}\n"
               "{\"prompt\": \"of\", \"responses\": [{\"text\": \" a\", \"embedding\": [0, 0, 1e-3]}]}\n",
               0);
    for (int with_tok = 1; with_tok >= 0; with_tok--) {
        Dataset *d;
        TaError err = {0};
        DatasetOptions o = opts(32, 16, TRUNC_KEEP_END);
        T_CHECK(dataset_load(&d, p, DS_MULTI, with_tok ? g_tok : NULL, with_tok ? &o : NULL,
                             &err) == TA_OK, "%s", err.msg);
        T_CHECK(dataset_size(d) == 4 && dataset_rows_per_example(d) == 1 &&
                    dataset_num_rows(d) == 2,
                "size %zu prompts %zu", dataset_size(d), dataset_num_rows(d));
        DataRow r0, r1;
        dataset_row(d, 0, &r0);
        dataset_row(d, 1, &r1);
        T_CHECK(!strcmp(r0.prompt, "the question") && !strcmp(r1.prompt, "of"), "prompts");
        T_CHECK(r0.n_responses == 3 && r1.n_responses == 1 && r0.first == 0 && r1.first == 3,
                "response counts");
        T_CHECK(r0.line == 1 && r1.line == 2 && r0.extra.n == 0, "lines, fields");
        DataResponse x;
        dataset_response(d, 0, &x);
        T_CHECK(!strcmp(x.text, " one") && x.has_score && x.score == 0.5 && x.embedding_dim == 3 &&
                    x.embedding[0] == 1.0f && x.embedding[1] == 2.5f && x.embedding[2] == -3.0f,
                "response 0.0");
        T_CHECK(x.extra.n == 2 && !strcmp(x.extra.f[0].json, "\"score\":0.5") &&
                    !strcmp(x.extra.f[1].key, "embedding") &&
                    !strcmp(x.extra.f[1].value, "[1, 2.5, -3]"),
                "response 0.0 fields as written");
        dataset_response(d, 1, &x);
        T_CHECK(!strcmp(x.text, " two") && !x.has_score && x.score == 0.0 && !x.embedding &&
                    x.embedding_dim == 0 && x.extra.n == 0, "response 0.1");
        dataset_response(d, 2, &x);
        T_CHECK(!strcmp(x.text, " one") && x.has_score && x.score == -2.0 &&
                    !strcmp(data_fields_find(&x.extra, "id")->json, "\"id\":3"), "response 0.2");
        dataset_response(d, 3, &x);
        T_CHECK(!strcmp(x.text, " a") && !x.has_score && x.embedding_dim == 3 &&
                    x.embedding[2] == 1e-3f, "response 1.0");
        float *v;
        int dim;
        T_CHECK(dataset_vectors(d, "embedding", &v, &dim, &err) == TA_EINPUT &&
                    strstr(err.msg, ":1: responses[1] has no field \"embedding\""),
                "vectors: %s", err.msg);
        T_CHECK(dataset_line(d, 3) == 2, "line of example 3");
        if (with_tok) { /* each (prompt, response) is an SFT row */
            Batch b;
            batch_alloc(&b, 2, 32);
            uint32_t ids[2] = {3, 1};
            dataset_fill(d, ids, 2, &b);
            int s[40], n = 0;
            s[n++] = 1;
            n += enc(g_tok, "of", s + n, 8);
            int Pl = n;
            n += enc(g_tok, " a", s + n, 8);
            s[n++] = 2;
            T_CHECK(row_is(&b, 0, s, n, Pl, 3, why, sizeof why), "%s", why);
            n = 0;
            s[n++] = 1;
            n += enc(g_tok, "the question", s + n, 8);
            Pl = n;
            n += enc(g_tok, " two", s + n, 8);
            s[n++] = 2;
            T_CHECK(row_is(&b, 1, s, n, Pl, 3, why, sizeof why), "%s", why);
            batch_free(&b);
        } else {
            T_CHECK(dataset_num_truncated(d) == 0, "text-only truncated");
        }
        dataset_free(d);
    }
}

/* Loading without a tokenizer, then dataset_tokenize, gives the rows and hash of loading
 * with it; re-tokenizing with other limits replaces the rows. */
static void test_tokenize_later(void) {
    char p[2300];
    write_file(p, sizeof p, "later.jsonl",
               "{\"prompt\": \"the question of the answer\", \"responses\": [{\"text\": \" kabo tesi\"}, "
               "{\"text\": \" zu\"}]}\n{\"prompt\": \"of\", \"responses\": [{\"text\": \" mir\"}]}\n", 0);
    Dataset *a, *b;
    TaError err = {0};
    DatasetOptions o = opts(8, 4, TRUNC_KEEP_END), o2 = opts(32, 16, TRUNC_KEEP_START);
    T_CHECK(dataset_load(&a, p, DS_MULTI, g_tok, &o, &err) == TA_OK, "%s", err.msg);
    T_CHECK(dataset_load(&b, p, DS_MULTI, NULL, NULL, &err) == TA_OK, "%s", err.msg);
    T_CHECK(dataset_tokenize(b, g_tok, &o2, &err) == TA_OK, "%s", err.msg);
    T_CHECK(dataset_tokenize(b, g_tok, &o, &err) == TA_OK, "%s", err.msg);
    T_CHECK(dataset_hash(a) == dataset_hash(b) &&
                dataset_num_truncated(a) == dataset_num_truncated(b) && dataset_num_truncated(a) > 0,
            "hash / truncated differ");
    Batch x, y;
    batch_alloc(&x, 3, 8);
    batch_alloc(&y, 3, 8);
    uint32_t ids[3] = {2, 0, 1};
    dataset_fill(a, ids, 3, &x);
    dataset_fill(b, ids, 3, &y);
    size_t cells = (size_t)x.B * x.T;
    T_CHECK(x.T == y.T && !memcmp(x.tokens, y.tokens, cells * sizeof(int)) &&
                !memcmp(x.targets, y.targets, cells * sizeof(int)) &&
                !memcmp(x.loss_mask, y.loss_mask, cells), "batches differ");
    T_CHECK(dataset_example_len(a, 2) == x.lengths[0] + 1, "example length");
    batch_free(&x);
    batch_free(&y);
    dataset_free(a);
    dataset_free(b);
}

static int expect_error(const char *name, DatasetKind kind, const char *path, int line,
                        const char *const *want, int nwant, const Tokenizer *tok,
                        const DatasetOptions *o, char *why, size_t cap);

/* Kept fields: every member as written (nested, unicode, escapes, numbers cJSON would
 * re-print differently), in order, spliced back by the writers; Python's json.loads of
 * the written line equals its json.loads of the input line. */
static void test_fields_pass_through(void) {
    static const char *line1 =
        "{\"id\": 12345678901234567890, \"prompt\": \"q \\\"1\\\"\", \"meta\": {\"a\": [1, 2.50, {\"b\": null}], "
        "\"t\": \"\\u00e9\\n\"}, \"responses\": [{\"score\": 1e5, \"text\": \"x\", \"ok\": true, "
        "\"n\": -0.0, \"u\": \"東京 🙂\"}, {\"text\": \"y\", \"deep\": [[[]], {}]}], \"answer\": \"42\", "
        "\"f\": 0.1}";
    static const char *line2 = "{\"prompt\": \"p\", \"responses\": [{\"text\": \"z\"}]}";
    char p[2300], out[2400], content[2000];
    snprintf(content, sizeof content, "%s\n%s\n", line1, line2);
    write_file(p, sizeof p, "fields.jsonl", content, 0);
    Dataset *d;
    TaError err = {0};
    T_CHECK(dataset_load(&d, p, DS_MULTI, NULL, NULL, &err) == TA_OK, "%s", err.msg);
    DataRow r;
    dataset_row(d, 0, &r);
    T_CHECK(r.extra.n == 4 && r.n_before == 2 && !strcmp(r.extra.f[0].key, "id") &&
                !strcmp(r.extra.f[0].json, "\"id\":12345678901234567890") &&
                !strcmp(r.extra.f[1].value, "{\"a\": [1, 2.50, {\"b\": null}], \"t\": \"\\u00e9\\n\"}") &&
                !strcmp(r.extra.f[3].json, "\"f\":0.1"),
            "row fields: %d, %d before", r.extra.n, r.n_before);
    char *ans = data_field_text(data_fields_find(&r.extra, "answer"));
    char *meta = data_field_text(data_fields_find(&r.extra, "meta"));
    double num = 0;
    T_CHECK(!strcmp(ans, "42") && meta[0] == '{' &&
                data_field_number(data_fields_find(&r.extra, "f"), &num, &err) == TA_OK && num == 0.1 &&
                data_field_number(data_fields_find(&r.extra, "answer"), &num, &err) == TA_EINPUT &&
                strstr(err.msg, "\"answer\" must be a finite number, found a string"),
            "field values: %s", err.msg);
    free(ans);
    free(meta);
    DataResponse x;
    dataset_response(d, 0, &x);
    T_CHECK(x.has_score && x.score == 1e5 && x.extra.n == 4 &&
                !strcmp(x.extra.f[2].json, "\"n\":-0.0"), "response fields");
    /* write both lines back; the second response drops "deep" (a writer's skip list) */
    TaBuf b = {0};
    static const char *const skip[] = {"de*", NULL};
    for (size_t i = 0; i < dataset_num_rows(d); i++) {
        dataset_row(d, i, &r);
        jsonl_put_row_start(&b, &r, NULL);
        for (int j = 0; j < r.n_responses; j++) {
            dataset_response(d, r.first + (size_t)j, &x);
            if (j) ta_buf_puts(&b, ",");
            jsonl_put_response_start(&b, &x, skip);
            ta_buf_puts(&b, ",\"added\":");
            jsonl_put_number(&b, 0.5);
            ta_buf_puts(&b, "}");
        }
        jsonl_put_row_end(&b, &r, NULL);
    }
    snprintf(out, sizeof out, "%s.out", p);
    FILE *f = fopen(out, "wb");
    fwrite(b.p, 1, b.n, f);
    fclose(f);
    free(b.p);
    char cmd[8000];
    snprintf(cmd, sizeof cmd,
             "'%s' -c 'import json,sys\n"
             "a=[json.loads(l) for l in open(sys.argv[1], encoding=\"utf-8\")]\n"
             "b=[json.loads(l) for l in open(sys.argv[2], encoding=\"utf-8\")]\n"
             "for x in a:\n"
             "    for r in x[\"responses\"]:\n"
             "        r.pop(\"deep\", None); r[\"added\"] = 0.5\n"
             "assert a == b, (a, b)\n"
             "assert list(b[0]) == [\"prompt\", \"id\", \"meta\", \"responses\", \"answer\", \"f\"], list(b[0])\n"
             "assert repr(b[0][\"responses\"][0][\"n\"]) == \"-0.0\" and b[0][\"id\"] == 12345678901234567890\n"
             "' '%s' '%s'", g_py, p, out);
    T_CHECK(run_cmd(cmd) == 0, "written lines differ from the input (see above)");
    dataset_free(d);
    /* prompt files: the prompt may be empty, everything else is kept */
    write_file(p, sizeof p, "prompts.jsonl",
               "{\"prompt\": \"\", \"label\": [\"x\"]}\n\n{\"k\": 1, \"prompt\": \"b\"}\n", 0);
    T_CHECK(dataset_load(&d, p, DS_PROMPTS, NULL, NULL, &err) == TA_OK, "%s", err.msg);
    dataset_row(d, 1, &r);
    T_CHECK(dataset_size(d) == 2 && dataset_num_rows(d) == 2 && r.line == 3 &&
                !strcmp(r.prompt, "b") && r.extra.n == 1 && r.n_before == 1 && r.n_responses == 0 &&
                !strcmp(r.extra.f[0].json, "\"k\":1"), "prompts file");
    dataset_free(d);
    /* multi files: a response may be empty (`sample` writes "" when EOS comes first) */
    write_file(p, sizeof p, "empty_response.jsonl",
               "{\"prompt\": \"a\", \"responses\": [{\"text\": \"b\"}, {\"text\": \"\", \"score\": 1}]}\n", 0);
    T_CHECK(dataset_load(&d, p, DS_MULTI, NULL, NULL, &err) == TA_OK, "%s", err.msg);
    dataset_row(d, 0, &r);
    dataset_response(d, r.first + 1, &x);
    T_CHECK(r.n_responses == 2 && !strcmp(x.text, "") && x.has_score && x.score == 1,
            "empty response: %d responses, text \"%s\"", r.n_responses, x.text);
    dataset_free(d);
    write_file(p, sizeof p, "prompts_bad.jsonl", "{\"prompt\": \"a\"}\n{\"text\": \"b\"}\n", 0);
    const char *w[] = {"missing field \"prompt\""};
    char why[2048];
    T_CHECK(expect_error("prompts_missing", DS_PROMPTS, p, 2, w, 1, NULL, NULL, why, sizeof why),
            "%s", why);
}

/* The generation prompt: [BOS] + ids, never cut; empty needs a BOS; too long is an error. */
static void test_generation_prompt(void) {
    int *ids, n, s[40];
    TaError err = {0};
    T_CHECK(row_encode_generation_prompt(g_tok, "the answer", 8, &ids, &n, &err) == TA_OK, "%s",
            err.msg);
    s[0] = 1;
    int m = 1 + enc(g_tok, "the answer", s + 1, 30);
    T_CHECK(n == m && !memcmp(ids, s, sizeof(int) * (size_t)n), "ids");
    free(ids);
    T_CHECK(row_encode_generation_prompt(g_tok, "", 8, &ids, &n, &err) == TA_OK && n == 1 &&
                ids[0] == 1, "empty prompt -> [BOS]");
    free(ids);
    T_CHECK(row_encode_generation_prompt(g_nobos, "", 8, &ids, &n, &err) == TA_EINPUT &&
                strstr(err.msg, "empty prompt") && !ids, "empty without BOS: %s", err.msg);
    T_CHECK(row_encode_generation_prompt(g_tok, "the answer", m, &ids, &n, &err) == TA_EINPUT &&
                strstr(err.msg, "max_seq_len is") && !ids, "too long: %s", err.msg);
}

/* ---- against tools/ref_dataset.py ------------------------------------------------------- */
static void random_text(TaRng *r, char *out, size_t cap, int min_words, int max_words) {
    static const char *words[] = {"kabo", "tesi", "the", "answer", "question", "café", "über",
                                  "東京", "мир", "42", "?", ".", "zu", "mir", "and", "what",
                                  "naïve", "\t", "\n", "  ", "🙂", "\"quoted\"", "back\\slash"};
    int n = min_words + (int)ta_rng_below(r, (uint64_t)(max_words - min_words + 1));
    size_t len = 0;
    out[0] = '\0';
    for (int w = 0; w < n; w++) {
        const char *x = words[ta_rng_below(r, sizeof words / sizeof words[0])];
        int sp = w > 0 || ta_rng_below(r, 3) == 0;
        if (len + strlen(x) + 2 >= cap) break;
        len += (size_t)snprintf(out + len, cap - len, "%s%s", sp ? " " : "", x);
    }
    if (!len) snprintf(out, cap, "kabo");
}

/* Writes n varied examples of kind to name; returns 0 or -1. */
static int write_varied(const char *path, DatasetKind kind, int n, uint64_t seed) {
    TaRng r;
    ta_rng_seed(&r, seed);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    char a[2048], c[2048], x[2048];
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", i);
        int long_prompt = ta_rng_below(&r, 3) == 0;
        random_text(&r, a, sizeof a, 1, long_prompt ? 60 : 12);
        cJSON_AddStringToObject(o, "prompt", a);
        int long_resp = ta_rng_below(&r, 3) == 0;
        random_text(&r, c, sizeof c, 1, long_resp ? 50 : 10);
        if (kind == DS_SFT) {
            cJSON_AddStringToObject(o, "completion", c);
        } else if (kind == DS_PREFERENCE) {
            cJSON_AddStringToObject(o, "chosen", c);
            do random_text(&r, x, sizeof x, 1, ta_rng_below(&r, 2) ? 40 : 8);
            while (!strcmp(x, c));
            cJSON_AddStringToObject(o, "rejected", x);
            if (ta_rng_below(&r, 2)) cJSON_AddNumberToObject(o, "weight", (double)ta_rng_f32(&r) * 3);
        } else {
            cJSON *rs = cJSON_AddArrayToObject(o, "responses");
            int k = 1 + (int)ta_rng_below(&r, 4);
            for (int j = 0; j < k; j++) {
                cJSON *it = cJSON_CreateObject();
                random_text(&r, x, sizeof x, 1, ta_rng_below(&r, 3) ? 10 : 40);
                cJSON_AddStringToObject(it, "text", x);
                if (ta_rng_below(&r, 2)) cJSON_AddNumberToObject(it, "score", ta_rng_normal(&r));
                if (ta_rng_below(&r, 2)) {
                    cJSON *e = cJSON_AddArrayToObject(it, "embedding");
                    for (int q = 0; q < 5; q++)
                        cJSON_AddItemToArray(e, cJSON_CreateNumber(ta_rng_normal(&r)));
                }
                cJSON_AddItemToArray(rs, it);
            }
        }
        char *s = cJSON_PrintUnformatted(o);
        fprintf(f, "%s\n", s);
        free(s);
        cJSON_Delete(o);
    }
    fclose(f);
    return 0;
}

/* Loads name with our loader and python's; compares the batch of all examples (in a
 * shuffled order) and the hash. */
static void compare_with_python(DatasetKind kind, TruncationMode mode, int max_len, int mpl) {
    static const char *kinds[] = {"sft", "preference", "multi"};
    char p[2300], out[2400], cmd[16384];
    snprintf(p, sizeof p, "%s/varied_%s_%d.jsonl", g_dir, kinds[kind], (int)mode);
    snprintf(out, sizeof out, "%s.ref", p);
    T_CHECK(write_varied(p, kind, 40, 1000 + (uint64_t)kind) == 0, "cannot write %s", p);
    Dataset *d;
    TaError err = {0};
    DatasetOptions o = opts(max_len, mpl, mode);
    T_CHECK(dataset_load(&d, p, kind, g_tok, &o, &err) == TA_OK, "%s", err.msg);
    size_t n = dataset_size(d);
    uint32_t *perm = ta_malloc(n * sizeof(uint32_t), "perm");
    data_epoch_permutation(perm, n, 5, 0, 1);
    char *ids = ta_malloc(n * 12 + 1, "ids");
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += (size_t)sprintf(ids + len, "%s%u", i ? "," : "", perm[i]);
    snprintf(cmd, sizeof cmd, "'%s' '%s/tools/ref_dataset.py' '%s' '%s' %s %d %d %s %s '%s'",
             g_py, g_root, g_model, p, kinds[kind], max_len, mpl,
             mode == TRUNC_KEEP_END ? "keep_end" : "keep_start", ids, out);
    int rc = run_cmd(cmd);
    free(ids);
    T_CHECK(rc == 0, "python failed: %.300s", cmd);
    Batch b;
    int rpe = dataset_rows_per_example(d);
    batch_alloc(&b, (int)n * rpe, max_len);
    dataset_fill(d, perm, (int)n, &b);
    FILE *f = fopen(out, "rb");
    T_CHECK(f, "cannot read %s", out);
    int B, T, np;
    size_t ne, nt;
    T_CHECK(fscanf(f, "%d %d %d %zu %zu", &B, &T, &np, &ne, &nt) == 5, "bad header in %s", out);
    T_CHECK(B == b.B && T == b.T && np == b.n_pairs, "B/T/pairs: ours %d %d %d, python %d %d %d",
            b.B, b.T, b.n_pairs, B, T, np);
    T_CHECK(ne == n && nt == dataset_num_truncated(d),
            "examples/truncated: ours %zu %zu, python %zu %zu", n, dataset_num_truncated(d), ne,
            nt);
    T_CHECK(nt > 0 && nt < n, "the varied set should have some (not all) truncated: %zu", nt);
    for (int r = 0; r < B; r++) {
        int L;
        double w;
        long long e;
        T_CHECK(fscanf(f, "%d %lf %lld", &L, &w, &e) == 3, "row %d header", r);
        T_CHECK(L == b.lengths[r] && (float)w == b.weights[r] && e == b.example_ids[r],
                "row %d: length/weight/id ours %d %g %lld, python %d %g %lld", r, b.lengths[r],
                (double)b.weights[r], (long long)b.example_ids[r], L, w, e);
        for (int a = 0; a < 3; a++)
            for (int t = 0; t < T; t++) {
                int v;
                T_CHECK(fscanf(f, "%d", &v) == 1, "row %d array %d short", r, a);
                size_t at = (size_t)r * T + t;
                int ours = a == 0 ? b.tokens[at] : a == 1 ? b.targets[at] : b.loss_mask[at];
                T_CHECK(v == ours, "row %d (example %lld) %s[%d]: ours %d, python %d", r, e,
                        a == 0 ? "tokens" : a == 1 ? "targets" : "loss_mask", t, ours, v);
            }
    }
    char word[16];
    unsigned long long h = 0;
    T_CHECK(fscanf(f, "%15s %llx", word, &h) == 2 && !strcmp(word, "hash"), "no hash line");
    T_CHECK(h == dataset_hash(d), "hash: ours %016llx, python %016llx",
            (unsigned long long)dataset_hash(d), h);
    fclose(f);
    free(perm);
    batch_free(&b);
    dataset_free(d);
}
static void test_py_sft_keep_end(void) { compare_with_python(DS_SFT, TRUNC_KEEP_END, 48, 20); }
static void test_py_sft_keep_start(void) { compare_with_python(DS_SFT, TRUNC_KEEP_START, 40, 12); }
static void test_py_pref_keep_end(void) { compare_with_python(DS_PREFERENCE, TRUNC_KEEP_END, 48, 24); }
static void test_py_pref_keep_start(void) {
    compare_with_python(DS_PREFERENCE, TRUNC_KEEP_START, 32, 16);
}
static void test_py_multi(void) { compare_with_python(DS_MULTI, TRUNC_KEEP_END, 40, 16); }

/* ---- bad input ---------------------------------------------------------------------------- */
typedef struct {
    const char *name;    /* case name and file name stem */
    DatasetKind kind;
    const char *content; /* the file */
    int line;            /* expected line (0: message names no line) */
    const char *want[3]; /* further substrings of the message */
} BadCase;

#define GOOD_SFT "{\"prompt\": \"of\", \"completion\": \" a\"}\n"
#define GOOD_PREF "{\"prompt\": \"of\", \"chosen\": \" a\", \"rejected\": \" b\"}\n"
#define GOOD_MULTI "{\"prompt\": \"of\", \"responses\": [{\"text\": \" a\"}]}\n"

static const BadCase BAD[] = {
    /* JSON syntax: column reported */
    {"syntax_missing_value", DS_SFT, GOOD_SFT "{\"prompt\": \"a\", \"completion\": }\n", 2,
     {":2:31:", "invalid JSON", "near '}'"}},
    {"syntax_missing_colon", DS_SFT, GOOD_SFT "\n{\"prompt\" \"a\"}\n", 3, {":3:", "invalid JSON"}},
    {"syntax_unterminated", DS_SFT, "{\"prompt\": \"ab\n", 1, {":1:", "invalid JSON"}},
    {"syntax_trailing_text", DS_SFT, GOOD_SFT "{\"prompt\": \"a\", \"completion\": \"b\"} x\n", 2,
     {":2:36:", "after the JSON object"}},
    {"syntax_json_array_file", DS_SFT, "[\n" GOOD_SFT "]\n", 1, {":1:", "one object per line"}},
    {"syntax_nul_escape", DS_SFT, "{\"prompt\": \"a\\u0000b\", \"completion\": \"c\"}\n", 1,
     {":1:14:", "\\u0000"}},
    {"not_object_array", DS_SFT, GOOD_SFT "[\"prompt\", \"completion\"]\n", 2,
     {"expected a JSON object", "an array"}},
    {"not_object_string", DS_PREFERENCE, "\"just a string\"\n", 1, {"a string"}},
    {"not_object_number", DS_MULTI, GOOD_MULTI GOOD_MULTI "42\n", 3, {"a number"}},
    /* missing fields */
    {"missing_prompt", DS_SFT, GOOD_SFT "{\"completion\": \"a\"}\n", 2, {"\"prompt\"", "missing"}},
    {"missing_completion", DS_SFT, "{\"prompt\": \"a\", \"response\": \"b\"}\n", 1,
     {"\"completion\"", "missing"}},
    {"missing_chosen", DS_PREFERENCE, GOOD_PREF "{\"prompt\": \"a\", \"rejected\": \"b\"}\n", 2,
     {"\"chosen\"", "missing"}},
    {"missing_rejected", DS_PREFERENCE, "{\"prompt\": \"a\", \"chosen\": \"b\"}\n", 1,
     {"\"rejected\"", "missing"}},
    {"missing_responses", DS_MULTI, "{\"prompt\": \"a\", \"response\": \"b\"}\n", 1,
     {"\"responses\"", "missing"}},
    {"missing_response_text", DS_MULTI, "{\"prompt\": \"a\", \"responses\": [{\"txt\": \"b\"}]}\n", 1,
     {"\"responses[0].text\"", "missing"}},
    {"format_hint", DS_SFT, GOOD_PREF, 1, {"\"completion\"", "looks like a preference"}},
    /* wrong types */
    {"type_prompt_number", DS_SFT, "{\"prompt\": 5, \"completion\": \"b\"}\n", 1,
     {"\"prompt\"", "must be a string", "a number"}},
    {"type_completion_null", DS_SFT, "{\"prompt\": \"a\", \"completion\": null}\n", 1,
     {"\"completion\"", "must be a string", "null"}},
    {"type_prompt_messages", DS_SFT,
     "{\"prompt\": [{\"role\": \"user\", \"content\": \"hi\"}], \"completion\": \"b\"}\n", 1,
     {"\"prompt\"", "must be a string", "an array"}},
    {"type_chosen_array", DS_PREFERENCE, "{\"prompt\": \"a\", \"chosen\": [\"b\"], \"rejected\": \"c\"}\n", 1,
     {"\"chosen\"", "must be a string"}},
    {"type_rejected_bool", DS_PREFERENCE, "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": true}\n", 1,
     {"\"rejected\"", "must be a string", "a boolean"}},
    {"type_weight_string", DS_PREFERENCE,
     "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\", \"weight\": \"1\"}\n", 1,
     {"\"weight\"", "must be a number", "a string"}},
    {"type_responses_object", DS_MULTI, "{\"prompt\": \"a\", \"responses\": {\"text\": \"b\"}}\n", 1,
     {"\"responses\"", "must be an array", "an object"}},
    {"type_response_string", DS_MULTI,
     "{\"prompt\": \"a\", \"responses\": [{\"text\": \"b\"}, \"c\"]}\n", 1,
     {"\"responses[1]\"", "must be an object", "a string"}},
    {"type_response_text", DS_MULTI, "{\"prompt\": \"a\", \"responses\": [{\"text\": 1}]}\n", 1,
     {"\"responses[0].text\"", "must be a string"}},
    {"type_score_string", DS_MULTI,
     "{\"prompt\": \"a\", \"responses\": [{\"text\": \"b\", \"score\": \"high\"}]}\n", 1,
     {"\"responses[0].score\"", "must be a number", "a string"}},
    {"type_embedding_string", DS_MULTI,
     "{\"prompt\": \"a\", \"responses\": [{\"text\": \"b\", \"embedding\": \"1,2\"}]}\n", 1,
     {"\"responses[0].embedding\"", "must be an array"}},
    {"type_embedding_item", DS_MULTI,
     "{\"prompt\": \"a\", \"responses\": [{\"text\": \"b\", \"embedding\": [1, \"x\"]}]}\n", 1,
     {"\"responses[0].embedding[1]\"", "a string"}},
    {"embedding_empty", DS_MULTI,
     "{\"prompt\": \"a\", \"responses\": [{\"text\": \"b\", \"embedding\": []}]}\n", 1,
     {"\"responses[0].embedding\"", "empty"}},
    {"embedding_dims_differ", DS_MULTI,
     "{\"prompt\": \"a\", \"responses\": [{\"text\": \"b\", \"embedding\": [1, 2]}]}\n"
     "{\"prompt\": \"a\", \"responses\": [{\"text\": \"b\"}, {\"text\": \"c\", \"embedding\": [1, 2, 3]}]}\n",
     2, {"\"responses[1].embedding\"", "has 3 numbers", "(line 1) has 2"}},
    /* empty strings */
    {"empty_prompt", DS_SFT, GOOD_SFT "{\"prompt\": \"\", \"completion\": \"b\"}\n", 2,
     {"\"prompt\"", "is empty"}},
    {"empty_responses", DS_MULTI, GOOD_MULTI "{\"prompt\": \"a\", \"responses\": []}\n", 2,
     {"\"responses\"", "is empty"}},
    /* invalid UTF-8 (raw bytes; cJSON passes them through) */
    {"utf8_prompt_ff", DS_SFT, "{\"prompt\": \"a\xff\", \"completion\": \"b\"}\n", 1,
     {"\"prompt\"", "UTF-8", "byte 2"}},
    {"utf8_completion_overlong", DS_SFT, "{\"prompt\": \"a\", \"completion\": \"\xc0\xaf\"}\n", 1,
     {"\"completion\"", "UTF-8"}},
    {"utf8_chosen_surrogate", DS_PREFERENCE,
     "{\"prompt\": \"a\", \"chosen\": \"x\xed\xa0\x80\", \"rejected\": \"c\"}\n", 1,
     {"\"chosen\"", "UTF-8"}},
    {"utf8_rejected_truncated", DS_PREFERENCE,
     "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\xe2\x82\"}\n", 1,
     {"\"rejected\"", "UTF-8"}},
    {"utf8_rejected_above_max", DS_PREFERENCE,
     "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"\xf4\x90\x80\x80\"}\n", 1,
     {"\"rejected\"", "UTF-8"}},
    {"utf8_response_text", DS_MULTI,
     "{\"prompt\": \"a\", \"responses\": [{\"text\": \"\x80\"}]}\n", 1,
     {"\"responses[0].text\"", "UTF-8"}},
    /* the whole line is checked: kept fields are copied to output byte for byte */
    {"utf8_kept_row_field", DS_PROMPTS, "{\"prompt\": \"a\", \"id\": \"b\xff\"}\n", 1,
     {"\"id\" (byte 2 of the string)", "0xFF", ":1:25:"}},
    {"utf8_kept_nested", DS_MULTI,
     "{\"prompt\": \"a\", \"meta\": {\"tags\": [\"ok\", \"x\xfe\"]}, \"responses\": [{\"text\": \"b\"}]}\n",
     1, {"\"meta.tags[1]\"", "UTF-8", "0xFE"}},
    {"utf8_kept_response_field", DS_MULTI,
     "{\"prompt\": \"a\", \"responses\": [{\"text\": \"b\"}, {\"text\": \"c\", \"why\": \"\xc3\"}]}\n",
     1, {"\"responses[1].why\"", "UTF-8"}},
    {"utf8_member_name", DS_PROMPTS, "{\"prompt\": \"a\", \"k\xff\": 1}\n", 1,
     {"a member name", "UTF-8"}},
    {"utf8_ignored_sft_field", DS_SFT,
     "{\"prompt\": \"a\", \"completion\": \"b\", \"note\": \"\xed\xa0\x80\"}\n", 1,
     {"\"note\"", "UTF-8"}},
    /* preference-specific */
    {"chosen_equals_rejected", DS_PREFERENCE,
     GOOD_PREF "{\"prompt\": \"a\", \"chosen\": \"same\", \"rejected\": \"same\"}\n", 2,
     {"\"chosen\"", "\"rejected\"", "identical"}},
    {"weight_negative", DS_PREFERENCE,
     "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\", \"weight\": -0.5}\n", 1,
     {"\"weight\"", ">= 0", "-0.5"}},
    {"weight_infinite", DS_PREFERENCE,
     "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\", \"weight\": 1e999}\n", 1,
     {"\"weight\"", "finite"}},
    {"weight_null", DS_PREFERENCE,
     "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\", \"weight\": null}\n", 1,
     {"\"weight\"", "must be a number"}},
};
#define NBAD ((int)(sizeof BAD / sizeof BAD[0]))

/* Loads content as kind and checks TA_EINPUT, *out NULL and a one-line message holding the
 * file name, ":<line>:" and every wanted substring. */
static int expect_error(const char *name, DatasetKind kind, const char *path, int line,
                        const char *const *want, int nwant, const Tokenizer *tok,
                        const DatasetOptions *o, char *why, size_t cap) {
    Dataset *d = (Dataset *)1;
    TaError err = {0};
    int rc = dataset_load(&d, path, kind, tok, o, &err);
    if (rc != TA_EINPUT || d != NULL) {
        snprintf(why, cap, "%s: rc %d (expected %d), message \"%s\"", name, rc, TA_EINPUT,
                 err.msg);
        if (rc == TA_OK) dataset_free(d);
        return 0;
    }
    char at[64];
    snprintf(at, sizeof at, ":%d", line);
    size_t al = strlen(at);
    const char *hit = strstr(err.msg, path);
    int line_ok = !line || (hit && !strncmp(hit + strlen(path), at, al) &&
                            (hit[strlen(path) + al] == ':'));
    if (!hit || !line_ok || strchr(err.msg, '\n')) {
        snprintf(why, cap, "%s: message lacks \"%s%s:\" (or has several lines): \"%s\"", name,
                 path, line ? at : "", err.msg);
        return 0;
    }
    for (int k = 0; k < nwant; k++)
        if (want[k] && !strstr(err.msg, want[k])) {
            snprintf(why, cap, "%s: message lacks \"%s\": \"%s\"", name, want[k], err.msg);
            return 0;
        }
    return 1;
}

static int g_bad; /* the BAD case test_bad_input looks at */
static void test_bad_input(void) {
    char why[2048], p[2300], fname[128];
    DatasetOptions o = opts(64, 32, TRUNC_KEEP_END);
    const BadCase *c = &BAD[g_bad];
    snprintf(fname, sizeof fname, "bad_%s.jsonl", c->name);
    write_file(p, sizeof p, fname, c->content, 0);
    const int prompts = c->kind == DS_PROMPTS; /* prompt files are never tokenized here */
    T_CHECK(expect_error(c->name, c->kind, p, c->line, c->want, 3, prompts ? NULL : g_tok,
                         prompts ? NULL : &o, why, sizeof why),
            "%s", why);
}

static void test_bad_files(void) {
    char why[2048], p[2300];
    DatasetOptions o = opts(64, 32, TRUNC_KEEP_END);
    const char *no_ex[] = {"no examples"};
    /* empty file, and only blank lines: "FILE: no examples" */
    write_file(p, sizeof p, "empty.jsonl", "", 0);
    FILE *f = fopen(p, "wb");
    fclose(f);
    T_CHECK(expect_error("empty", DS_SFT, p, 0, no_ex, 1, g_tok, &o, why, sizeof why), "%s", why);
    char want[2400];
    snprintf(want, sizeof want, "%s: no examples", p);
    const char *exact[] = {want};
    T_CHECK(expect_error("empty_exact", DS_PREFERENCE, p, 0, exact, 1, g_tok, &o, why, sizeof why),
            "%s", why);
    write_file(p, sizeof p, "blank.jsonl", "\n  \n\r\n\t\n", 0);
    T_CHECK(expect_error("blank", DS_MULTI, p, 0, no_ex, 1, g_tok, &o, why,
                         sizeof why), "%s", why);
    /* missing file, a directory */
    path_in(p, sizeof p, "no-such-file.jsonl");
    const char *nf[] = {"No such file"};
    T_CHECK(expect_error("missing", DS_SFT, p, 0, nf, 1, g_tok, &o, why, sizeof why), "%s", why);
    path_in(p, sizeof p, "a-directory.jsonl");
    mkdir(p, 0755);
    const char *dir[] = {"directory"};
    T_CHECK(expect_error("directory", DS_SFT, p, 0, dir, 1, g_tok, &o, why, sizeof why), "%s",
            why);
    /* unreadable (only meaningful when not root) */
    if (geteuid() != 0) {
        write_file(p, sizeof p, "unreadable.jsonl", GOOD_SFT, 0);
        chmod(p, 0);
        const char *pd[] = {"ermission denied"};
        int ok = expect_error("unreadable", DS_SFT, p, 0, pd, 1, g_tok, &o, why, sizeof why);
        chmod(p, 0644);
        T_CHECK(ok, "%s", why);
    }
}

static void test_bad_options_and_fit(void) {
    char why[2048], p[2300];
    /* max_prompt_len >= max_len: a prompt that fills max_len leaves no room */
    write_file(p, sizeof p, "nofit.jsonl",
               GOOD_SFT "{\"prompt\": \"kabo tesi zu mir the question of the answer\", "
                        "\"completion\": \" a\"}\n", 0);
    DatasetOptions o = opts(6, 6, TRUNC_KEEP_END);
    const char *w[] = {"\"completion\"", "does not fit in max_len=6", "cut to 6"};
    T_CHECK(expect_error("no_fit", DS_SFT, p, 2, w, 3, g_tok, &o, why, sizeof why), "%s", why);
    write_file(p, sizeof p, "nofit_pref.jsonl",
               "{\"prompt\": \"kabo tesi zu mir the question of the answer\", "
               "\"chosen\": \" a\", \"rejected\": \" b\"}\n", 0);
    const char *wc[] = {"\"chosen\"", "does not fit"};
    T_CHECK(expect_error("no_fit_pref", DS_PREFERENCE, p, 1, wc, 2, g_tok, &o, why, sizeof why),
            "%s", why);
    /* but max_prompt_len = max_len - 1 always leaves one response token */
    o = opts(6, 5, TRUNC_KEEP_END);
    Dataset *d;
    TaError err = {0};
    T_CHECK(dataset_load(&d, p, DS_PREFERENCE, g_tok, &o, &err) == TA_OK, "%s", err.msg);
    T_CHECK(dataset_num_truncated(d) == 1, "truncated");
    dataset_free(d);
    /* bad options */
    o = opts(1, 1, TRUNC_KEEP_END);
    const char *ml[] = {"max_len"};
    T_CHECK(expect_error("max_len_1", DS_SFT, p, 0, ml, 1, g_tok, &o, why, sizeof why), "%s", why);
    /* a tokenizer without EOS */
    Tokenizer *noeos = NULL;
    T_CHECK(tokenizer_load(&noeos, g_noeos_model, &err) == TA_OK, "%s", err.msg);
    o = opts(64, 32, TRUNC_KEEP_END);
    write_file(p, sizeof p, "noeos.jsonl", GOOD_SFT, 0);
    const char *ne[] = {"no EOS"};
    int ok = expect_error("no_eos", DS_SFT, p, 0, ne, 1, noeos, &o, why, sizeof why);
    tokenizer_free(noeos);
    T_CHECK(ok, "%s", why);
}

/* ---- hash, permutation ------------------------------------------------------------------ */
static uint64_t hash_of(const char *name, const char *content, DatasetKind kind,
                        DatasetOptions o) {
    char p[2300];
    write_file(p, sizeof p, name, content, 0);
    Dataset *d;
    TaError err = {0};
    if (dataset_load(&d, p, kind, g_tok, &o, &err) != TA_OK) return 0;
    uint64_t h = dataset_hash(d);
    dataset_free(d);
    return h;
}

static void test_hash(void) {
    DatasetOptions o = opts(64, 32, TRUNC_KEEP_END);
    const char *base = "{\"prompt\": \"kabo tesi\", \"chosen\": \" a\", \"rejected\": \" b\", \"weight\": 2}\n";
    uint64_t h0 = hash_of("h0.jsonl", base, DS_PREFERENCE, o);
    uint64_t h0b = hash_of("h0b.jsonl", base, DS_PREFERENCE, o);
    T_CHECK(h0 && h0 == h0b, "same content, different hash");
    /* unknown fields and blank lines change nothing */
    uint64_t h1 = hash_of("h1.jsonl",
                          "\n{\"id\": 1, \"prompt\": \"kabo tesi\", \"chosen\": \" a\", \"rejected\": \" b\", \"weight\": 2.0}\n",
                          DS_PREFERENCE, o);
    T_CHECK(h1 == h0, "ids or blank lines changed the hash");
    uint64_t hw = hash_of("hw.jsonl",
                          "{\"prompt\": \"kabo tesi\", \"chosen\": \" a\", \"rejected\": \" b\", \"weight\": 1}\n",
                          DS_PREFERENCE, o);
    uint64_t ht = hash_of("ht.jsonl",
                          "{\"prompt\": \"kabo tesi\", \"chosen\": \" a\", \"rejected\": \" c\", \"weight\": 2}\n",
                          DS_PREFERENCE, o);
    uint64_t ho = hash_of("h0.jsonl", base, DS_PREFERENCE, opts(63, 32, TRUNC_KEEP_END));
    uint64_t hm = hash_of("h0.jsonl", base, DS_PREFERENCE, opts(64, 32, TRUNC_KEEP_START));
    T_CHECK(hw && hw != h0, "weight not hashed");
    T_CHECK(ht && ht != h0, "tokens not hashed");
    T_CHECK(ho && ho != h0 && hm && hm != h0, "options not hashed");
}

static void test_permutation(void) {
    enum { N = 1000 };
    static uint32_t a[N], b[N], c[N], e[N];
    data_epoch_permutation(a, N, 42, 0, 1);
    data_epoch_permutation(b, N, 42, 0, 1);
    data_epoch_permutation(c, N, 42, 1, 1);
    data_epoch_permutation(e, N, 43, 0, 1);
    T_CHECK(!memcmp(a, b, sizeof a), "same (seed, epoch) gave different orders");
    T_CHECK(memcmp(a, c, sizeof a), "epochs 0 and 1 gave the same order");
    T_CHECK(memcmp(a, e, sizeof a), "seeds 42 and 43 gave the same order");
    static uint8_t seen[N];
    int fixed = 0;
    for (int k = 0; k < 2; k++) {
        const uint32_t *p = k ? c : a;
        memset(seen, 0, sizeof seen);
        for (int i = 0; i < N; i++) {
            T_CHECK(p[i] < N && !seen[p[i]], "not a permutation at %d", i);
            seen[p[i]] = 1;
            fixed += p[i] == (uint32_t)i;
        }
    }
    T_CHECK(fixed < 20, "%d fixed points: hardly shuffled", fixed);
    data_epoch_permutation(b, N, 42, 3, 0);
    for (int i = 0; i < N; i++) T_CHECK(b[i] == (uint32_t)i, "shuffle=0 is not the identity");
    uint32_t one = 7;
    data_epoch_permutation(&one, 1, 1, 0, 1);
    T_CHECK(one == 0, "n=1");
    data_epoch_permutation(NULL, 0, 1, 0, 1); /* n = 0 is fine */
}

static void test_batch_alloc(void) {
    Batch z;
    memset(&z, 0, sizeof z);
    batch_free(&z); /* zeroed: no-op */
    Batch b;
    batch_alloc(&b, 3, 5);
    T_CHECK(b.max_rows == 3 && b.max_T == 5 && b.B == 0 && b.tokens && b.targets && b.loss_mask &&
                b.lengths && b.weights && b.example_ids, "allocation");
    b.tokens[14] = 1, b.targets[14] = 1, b.loss_mask[14] = 1; /* every cell writable */
    batch_free(&b);
    T_CHECK(b.tokens == NULL && b.max_rows == 0, "batch_free should zero the struct");
}

int main(void) {
    snprintf(g_root, sizeof g_root, "%s", env_or("TA_ROOT", "."));
    snprintf(g_dir, sizeof g_dir, "%s/dataset", env_or("TA_REF", "build/ref"));
    g_py = env_or("PYTHON", "/usr/bin/python3");
    TaError err = {0};
    if (ta_mkdirs(g_dir, &err) != TA_OK) {
        printf("FAIL setup: %s\n", err.msg);
        return 1;
    }
    char train[2300], msg[1100], nobos[2300];
    path_in(train, sizeof train, "train.txt");
    write_training_text(train);
    if (train_model("spm", 1, 2, 3, g_model, sizeof g_model, msg, sizeof msg) ||
        train_model("spm_nobos", -1, 1, -1, nobos, sizeof nobos, msg, sizeof msg) ||
        train_model("spm_noeos", 1, -1, 2, g_noeos_model, sizeof g_noeos_model, msg, sizeof msg)) {
        printf("FAIL setup: tokenizer training: %s\n", msg);
        return 1;
    }
    if (tokenizer_load(&g_tok, g_model, &err) != TA_OK ||
        tokenizer_load(&g_nobos, nobos, &err) != TA_OK) {
        printf("FAIL setup: %s\n", err.msg);
        return 1;
    }

    t_run("batch_alloc_free", test_batch_alloc);
    t_run("epoch_permutation", test_permutation);
    t_run("sft_layout_exact", test_sft_layout);
    t_run("empty_response_rows_eos_only", test_empty_response_rows);
    t_run("preference_pair_layout", test_preference_layout);
    t_run("truncation_keep_end", test_truncation_keep_end);
    t_run("truncation_keep_start", test_truncation_keep_start);
    t_run("pair_truncation_shared_prompt", test_pair_truncation);
    t_run("no_bos_no_pad_tokenizer", test_no_bos_no_pad);
    t_run("crlf_bom_blank_lines", test_crlf_bom_blank);
    t_run("multi_response_api", test_multi);
    t_run("multi_tokenize_later", test_tokenize_later);
    t_run("fields_pass_through", test_fields_pass_through);
    t_run("generation_prompt", test_generation_prompt);
    t_run("python_sft_keep_end", test_py_sft_keep_end);
    t_run("python_sft_keep_start", test_py_sft_keep_start);
    t_run("python_preference_keep_end", test_py_pref_keep_end);
    t_run("python_preference_keep_start", test_py_pref_keep_start);
    t_run("python_multi", test_py_multi);
    for (g_bad = 0; g_bad < NBAD; g_bad++) {
        char name[128];
        snprintf(name, sizeof name, "bad_input_%s", BAD[g_bad].name);
        t_run(name, test_bad_input);
    }
    t_run("bad_files", test_bad_files);
    t_run("bad_options_response_fit", test_bad_options_and_fit);
    t_run("hash_stable_and_sensitive", test_hash);
    tokenizer_free(g_tok);
    tokenizer_free(g_nobos);
    return t_done();
}
