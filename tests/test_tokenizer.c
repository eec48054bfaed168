/* test_tokenizer.c — the SentencePiece shim (include/tinyalign/tokenizer.h) against
 * python3-sentencepiece (tools/ref_spm.py), with exact equality:
 *   - models trained by tokenizer_train (bpe, unigram; identity and nmt_nfkc
 *     normalisation) are the same as python's SentencePieceTrainer with the same options
 *     (the .vocab files, pieces and scores, are byte-identical);
 *   - encode gives python's ids on varied strings (accents, combining marks, CJK, Cyrillic,
 *     whitespace runs, tabs, newlines, digits, emoji, control bytes, invalid UTF-8, NUL,
 *     empty, a 20 kB string) and decode gives python's text;
 *   - decode(encode(s)) == s for the lossless (identity) models, except where SentencePiece
 *     cannot be: invalid UTF-8 (becomes U+FFFD), NUL (our decode is NUL-terminated) and
 *     U+2581 "▁" in the input (its own space marker: decodes as " ");
 *   - special ids, piece look-ups, and errors for bad paths, corrupt models and bad options.
 * The training text is generated here (deterministic), so nothing outside the repo is
 * needed. Env: TA_ROOT (repo root, default "."), TA_REF (scratch dir, default build/ref),
 * PYTHON (default /usr/bin/python3). */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testhelp.h"
#include "tinyalign/common.h"
#include "tinyalign/tokenizer.h"

static char g_dir[2048];  /* scratch directory */
static char g_root[2048]; /* repo root */
static const char *g_py;

static const char *env_or(const char *k, const char *def) {
    const char *v = getenv(k);
    return v && *v ? v : def;
}

static void path_in(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", g_dir, name);
}

/* ---- deterministic multilingual training text ------------------------------------- */
static void put_utf8(FILE *f, uint32_t c) {
    if (c < 0x80) fputc((int)c, f);
    else if (c < 0x800) {
        fputc(0xC0 | (int)(c >> 6), f);
        fputc(0x80 | (int)(c & 63), f);
    } else if (c < 0x10000) {
        fputc(0xE0 | (int)(c >> 12), f);
        fputc(0x80 | (int)((c >> 6) & 63), f);
        fputc(0x80 | (int)(c & 63), f);
    } else {
        fputc(0xF0 | (int)(c >> 18), f);
        fputc(0x80 | (int)((c >> 12) & 63), f);
        fputc(0x80 | (int)((c >> 6) & 63), f);
        fputc(0x80 | (int)(c & 63), f);
    }
}

static void write_training_text(const char *path) {
    static const char *cons = "bcdfghklmnprstvwz";
    static const char *vow = "aeiou";
    static const char *extra[] = {"café", "naïve", "résumé", "straße", "über", "garçon",
                                  "año", "déjà", "vu", "the", "and", "of", "to", "in"};
    TaRng r;
    ta_rng_seed(&r, 20240601);
    FILE *f = fopen(path, "wb");
    TA_ASSERT(f);
    for (int line = 0; line < 3000; line++) {
        int words = 3 + (int)ta_rng_below(&r, 12);
        for (int w = 0; w < words; w++) {
            if (w) fputc(' ', f);
            uint64_t kind = ta_rng_below(&r, 20);
            if (kind < 11) { /* latin syllable word */
                int syl = 1 + (int)ta_rng_below(&r, 3);
                if (ta_rng_below(&r, 8) == 0) fputc('A' + (int)ta_rng_below(&r, 26), f);
                for (int s = 0; s < syl; s++) {
                    fputc(cons[ta_rng_below(&r, 17)], f);
                    fputc(vow[ta_rng_below(&r, 5)], f);
                }
            } else if (kind < 14) {
                fputs(extra[ta_rng_below(&r, sizeof extra / sizeof extra[0])], f);
            } else if (kind < 16) { /* CJK: 60 common ideographs */
                int n = 1 + (int)ta_rng_below(&r, 4);
                for (int k = 0; k < n; k++) put_utf8(f, 0x4E00 + (uint32_t)ta_rng_below(&r, 60));
            } else if (kind < 18) { /* Cyrillic */
                int n = 2 + (int)ta_rng_below(&r, 6);
                for (int k = 0; k < n; k++) put_utf8(f, 0x0430 + (uint32_t)ta_rng_below(&r, 32));
            } else if (kind < 19) {
                fprintf(f, "%d", (int)ta_rng_below(&r, 100000));
            } else {
                fputs((const char *[]){",", ".", "!", "?", ":", "-"}[ta_rng_below(&r, 6)], f);
            }
        }
        fputc('\n', f);
    }
    fclose(f);
}

/* ---- helpers ------------------------------------------------------------------------ */
static int files_equal(const char *a, const char *b) {
    size_t la, lb;
    char *x = ta_read_file(a, &la, NULL), *y = ta_read_file(b, &lb, NULL);
    int eq = x && y && la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return eq;
}

static int run_cmd(const char *cmd) {
    int rc = system(cmd);
    return rc == -1 ? -1 : (WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
}

static void hex_write(FILE *f, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) fprintf(f, "%02x", (unsigned char)s[i]);
    fputc('\n', f);
}

/* Decodes hex into a malloc'd buffer; returns its length. */
static size_t hex_read(const char *h, size_t n, char **out) {
    char *b = ta_malloc(n / 2 + 1, "hex");
    for (size_t i = 0; i + 1 < n; i += 2) {
        unsigned v;
        sscanf(h + i, "%2x", &v);
        b[i / 2] = (char)v;
    }
    b[n / 2] = '\0';
    *out = b;
    return n / 2;
}

/* The strings every model is checked on. */
typedef struct {
    const char *s;
    size_t len;    /* 0: strlen */
    int lossless;  /* decode(encode(s)) == s expected for identity models */
} Case;

static char g_long[20001];
static Case g_cases[] = {
    {"", 0, 1},
    {"hello world", 0, 1},
    {"  leading and trailing  ", 0, 1},
    {"multiple     spaces\tand\t\ttabs", 0, 1},
    {"line one\nline two\n\nthree\r\n", 0, 1},
    {"café naïve résumé Straße garçon", 0, 1},
    {"e\xcc\x81 combining acute vs \xc3\xa9 precomposed", 0, 1},
    {"東京都 日本語のテキスト 漢字と仮名", 0, 1},
    {"中文，标点。全角ＡＢＣ１２３", 0, 1},
    {"Привет, мир! Съешь же ещё этих", 0, 1},
    {"12345 3.14159 0x1F 1e-9 007 2024-06-01", 0, 1},
    {"emoji 🙂👍🏽 family 👨‍👩‍👧 flag 🇩🇪", 0, 1},
    {"ﬁ ligature ① ™ ½ Ⅻ ｶﾀｶﾅ", 0, 1},
    {"\x01\x02\x7f control bytes \x1b[0m", 0, 1},
    {"<s> </s> <pad> <unk> literal specials", 0, 1},
    /* U+2581 is SentencePiece's own space marker: it decodes as " " (python agrees). */
    {"\xe2\x96\x81 already has the meta symbol \xe2\x96\x81\xe2\x96\x81", 0, 0},
    {"a", 0, 1},
    {" ", 0, 1},
    {"\n", 0, 1},
    {"bad utf-8 \xff\xfe\xc3 end", 0, 0},
    {"nul\0inside", 10, 0},
    {g_long, 0, 1},
};
#define NCASES ((int)(sizeof g_cases / sizeof g_cases[0]))

static void make_long(void) {
    static const char *parts[] = {"kabo ", "tesi ", "東京 ", "мир ", "  ", "\t", "42 ", "café ",
                                  "🙂 ", "zu", ".\n"};
    TaRng r;
    ta_rng_seed(&r, 7);
    size_t n = 0;
    while (n < sizeof g_long - 16) {
        const char *p = parts[ta_rng_below(&r, sizeof parts / sizeof parts[0])];
        size_t l = strlen(p);
        memcpy(g_long + n, p, l);
        n += l;
    }
    g_long[n] = '\0';
}

static size_t case_len(const Case *c) { return c->len ? c->len : strlen(c->s); }

/* Trains name.model with our shim and ref_name.model with python, same options. */
static int train_both(const char *name, const char *type, const char *norm, int rm_ws,
                      int vocab, char *msg, size_t msgcap) {
    char input[2300], prefix[2300], refprefix[2300], cmd[16384];
    path_in(input, sizeof input, "train.txt");
    path_in(prefix, sizeof prefix, name);
    snprintf(refprefix, sizeof refprefix, "%s/ref_%s", g_dir, name);
    TokenizerTrainOptions o;
    tokenizer_train_defaults(&o);
    o.input = input;
    o.model_prefix = prefix;
    o.vocab_size = vocab;
    o.model_type = type;
    o.normalization = norm;
    o.remove_extra_whitespaces = rm_ws;
    TaError err = {0};
    if (tokenizer_train(&o, &err) != TA_OK) {
        snprintf(msg, msgcap, "tokenizer_train: %s", err.msg);
        return -1;
    }
    snprintf(cmd, sizeof cmd,
             "'%s' '%s/tools/ref_spm.py' train input='%s' model_prefix='%s' vocab_size=%d "
             "model_type=%s byte_fallback=true character_coverage=0.9995 "
             "normalization_rule_name=%s remove_extra_whitespaces=%s split_digits=false "
             "unk_id=0 bos_id=1 eos_id=2 pad_id=3 num_threads=1 input_sentence_size=0 seed=1",
             g_py, g_root, input, refprefix, vocab, type, norm, rm_ws ? "true" : "false");
    if (run_cmd(cmd) != 0) {
        snprintf(msg, msgcap, "python trainer failed: %s", cmd);
        return -1;
    }
    return 0;
}

/* ---- cases -------------------------------------------------------------------------- */
static void test_train_quiet(void) {
    /* Training must not write SentencePiece's log to stderr (verbose = 0). */
    char input[2300], prefix[2300], logp[2300];
    path_in(input, sizeof input, "train.txt");
    path_in(prefix, sizeof prefix, "quiet");
    path_in(logp, sizeof logp, "quiet.stderr");
    TokenizerTrainOptions o;
    tokenizer_train_defaults(&o);
    o.input = input;
    o.model_prefix = prefix;
    o.vocab_size = 600;
    fflush(stderr);
    int saved = dup(2);
    int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    T_CHECK(saved >= 0 && fd >= 0, "cannot redirect stderr");
    dup2(fd, 2);
    close(fd);
    TaError err = {0};
    int rc = tokenizer_train(&o, &err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    T_CHECK(rc == TA_OK, "train: %s", err.msg);
    struct stat st;
    T_CHECK(stat(logp, &st) == 0 && st.st_size == 0, "training wrote %lld bytes to stderr",
            (long long)st.st_size);
    char model[2400];
    snprintf(model, sizeof model, "%s.model", prefix);
    T_CHECK(stat(model, &st) == 0 && st.st_size > 0, "%s not written", model);
}

/* name, model type, normalization, remove_extra_whitespaces, vocab size, lossless */
typedef struct {
    const char *name, *type, *norm;
    int rm_ws, vocab, lossless;
} ModelSpec;
static const ModelSpec MODELS[] = {
    {"bpe", "bpe", "identity", 0, 1000, 1},
    {"unigram", "unigram", "identity", 0, 1000, 1},
    {"bpe_nfkc", "bpe", "nmt_nfkc", 1, 800, 0},
};
static const ModelSpec *g_model; /* the one the next cases look at */
static int g_trained[3];

static void test_train_matches_python(void) {
    char msg[17000];
    int k = (int)(g_model - MODELS);
    T_CHECK(train_both(g_model->name, g_model->type, g_model->norm, g_model->rm_ws,
                       g_model->vocab, msg, sizeof msg) == 0, "%s", msg);
    g_trained[k] = 1;
    char a[2400], b[2400];
    snprintf(a, sizeof a, "%s/%s.vocab", g_dir, g_model->name);
    snprintf(b, sizeof b, "%s/ref_%s.vocab", g_dir, g_model->name);
    T_CHECK(files_equal(a, b), "%s differs from python's %s", a, b);
}

static void test_special_ids(void) {
    char model[2400], cmd[16384], out[2400];
    snprintf(model, sizeof model, "%s/%s.model", g_dir, g_model->name);
    Tokenizer *tok;
    TaError err = {0};
    T_CHECK(tokenizer_load(&tok, model, &err) == TA_OK, "%s", err.msg);
    int V = tokenizer_vocab_size(tok);
    int ok = V == g_model->vocab && tokenizer_unk_id(tok) == 0 && tokenizer_bos_id(tok) == 1 &&
             tokenizer_eos_id(tok) == 2 && tokenizer_pad_id(tok) == 3;
    int pieces = !strcmp(tokenizer_id_to_piece(tok, 0), "<unk>") &&
                 !strcmp(tokenizer_id_to_piece(tok, 1), "<s>") &&
                 !strcmp(tokenizer_id_to_piece(tok, 2), "</s>") &&
                 !strcmp(tokenizer_id_to_piece(tok, 3), "<pad>") &&
                 tokenizer_id_to_piece(tok, -1) == NULL && tokenizer_id_to_piece(tok, V) == NULL;
    int lookups = tokenizer_piece_to_id(tok, "</s>") == 2 &&
                  tokenizer_piece_to_id(tok, "<unk>") == 0 &&
                  tokenizer_piece_to_id(tok, "no-such-piece-xyz") == -1 &&
                  tokenizer_piece_to_id(tok, "<0x0A>") >= 4;
    /* every id's piece maps back to the id */
    int inverse = 1;
    for (int i = 0; i < V; i++)
        if (tokenizer_piece_to_id(tok, tokenizer_id_to_piece(tok, i)) != i) inverse = 0;
    tokenizer_free(tok);
    T_CHECK(ok, "vocab %d or special ids differ from unk 0 bos 1 eos 2 pad 3", V);
    T_CHECK(pieces, "special pieces or out-of-range id_to_piece wrong");
    T_CHECK(lookups, "piece_to_id look-ups wrong");
    T_CHECK(inverse, "piece_to_id(id_to_piece(i)) != i for some i");
    /* python agrees */
    snprintf(out, sizeof out, "%s/%s.info", g_dir, g_model->name);
    snprintf(cmd, sizeof cmd, "'%s' '%s/tools/ref_spm.py' info '%s' > '%s'", g_py, g_root, model,
             out);
    T_CHECK(run_cmd(cmd) == 0, "python failed: %s", cmd);
    char *txt = ta_read_file(out, NULL, NULL);
    char want[128];
    snprintf(want, sizeof want, "%d 1 2 3 0\n", g_model->vocab);
    int same = txt && !strcmp(txt, want);
    T_CHECK(same, "python says \"%s\", expected \"%s\"", txt ? txt : "(none)", want);
    free(txt);
}

static void test_encode_matches_python(void) {
    char model[2400], in[2400], out[2400], cmd[16384];
    snprintf(model, sizeof model, "%s/%s.model", g_dir, g_model->name);
    snprintf(in, sizeof in, "%s/%s.cases.hex", g_dir, g_model->name);
    snprintf(out, sizeof out, "%s/%s.cases.ref", g_dir, g_model->name);
    FILE *f = fopen(in, "wb");
    T_CHECK(f, "cannot write %s", in);
    for (int c = 0; c < NCASES; c++) hex_write(f, g_cases[c].s, case_len(&g_cases[c]));
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' '%s/tools/ref_spm.py' encode '%s' '%s' '%s'", g_py, g_root,
             model, in, out);
    T_CHECK(run_cmd(cmd) == 0, "python failed: %s", cmd);

    Tokenizer *tok;
    TaError err = {0};
    T_CHECK(tokenizer_load(&tok, model, &err) == TA_OK, "%s", err.msg);
    f = fopen(out, "rb");
    T_CHECK(f, "cannot read %s", out);
    char *line = NULL;
    size_t cap = 0;
    int c = 0, bad = -1, lossy = -1, why = 0;
    for (; c < NCASES && getline(&line, &cap, f) > 0; c++) {
        const Case *cs = &g_cases[c];
        int *ids, n;
        if (tokenizer_encode(tok, cs->s, case_len(cs), &ids, &n, &err) != TA_OK) {
            bad = c, why = 1;
            break;
        }
        /* python ids */
        char *tab = strchr(line, '\t');
        TA_ASSERT(tab);
        *tab = '\0';
        int k = 0, match = 1;
        for (char *p = line, *e; *p; p = e) {
            long v = strtol(p, &e, 10);
            if (e == p) break;
            if (k >= n || ids[k] != v) match = 0;
            k++;
        }
        if (k != n) match = 0;
        /* python decode vs ours */
        char *want;
        size_t wl = hex_read(tab + 1, strcspn(tab + 1, "\r\n"), &want);
        char *got = NULL;
        int drc = tokenizer_decode(tok, ids, n, &got, &err);
        int dec_ok = drc == TA_OK && strlen(got) == strlen(want) && !strcmp(got, want) &&
                     (memchr(want, 0, wl) || strlen(want) == wl);
        int rt_ok = !(g_model->lossless && cs->lossless) ||
                    (drc == TA_OK && strlen(got) == case_len(cs) && !strcmp(got, cs->s));
        free(want);
        free(got);
        free(ids);
        if (!match) { bad = c, why = 2; break; }
        if (!dec_ok) { bad = c, why = 3; break; }
        if (!rt_ok && lossy < 0) lossy = c;
    }
    free(line);
    fclose(f);
    tokenizer_free(tok);
    T_CHECK(bad < 0, "case %d (\"%.40s\"): %s", bad, g_cases[bad].s,
            why == 1   ? err.msg
            : why == 2 ? "ids differ from python"
                       : "decode differs from python");
    T_CHECK(c == NCASES, "python returned %d of %d cases", c, NCASES);
    T_CHECK(lossy < 0, "case %d (\"%.40s\"): decode(encode(s)) != s", lossy, g_cases[lossy].s);
}

static void test_encode_empty_and_decode_errors(void) {
    char model[2400];
    snprintf(model, sizeof model, "%s/bpe.model", g_dir);
    Tokenizer *tok;
    TaError err = {0};
    T_CHECK(tokenizer_load(&tok, model, &err) == TA_OK, "%s", err.msg);
    int *ids = NULL, n = -1;
    int rc = tokenizer_encode(tok, "", 0, &ids, &n, &err);
    int empty_ok = rc == TA_OK && ids != NULL && n == 0;
    free(ids);
    char *text = NULL;
    int bad_ids[] = {5, tokenizer_vocab_size(tok), 6};
    int drc = tokenizer_decode(tok, bad_ids, 3, &text, &err);
    int neg_ids[] = {-1};
    TaError err2 = {0};
    int drc2 = tokenizer_decode(tok, neg_ids, 1, &text, &err2);
    char *t0 = NULL;
    int drc3 = tokenizer_decode(tok, NULL, 0, &t0, &err);
    int zero_ok = drc3 == TA_OK && t0 && t0[0] == '\0';
    free(t0);
    /* control pieces decode to nothing */
    int ctl[] = {1, 2, 3};
    char *t1 = NULL;
    int drc4 = tokenizer_decode(tok, ctl, 3, &t1, &err);
    int ctl_ok = drc4 == TA_OK && t1 && t1[0] == '\0';
    free(t1);
    tokenizer_free(tok);
    T_CHECK(empty_ok, "encode(\"\") should give 0 ids and a non-NULL array");
    T_CHECK(drc == TA_EINPUT && text == NULL && strstr(err.msg, "position 1"),
            "out-of-range id not reported: rc %d \"%s\"", drc, err.msg);
    T_CHECK(drc2 == TA_EINPUT, "negative id accepted");
    T_CHECK(zero_ok, "decode of 0 ids should give \"\"");
    T_CHECK(ctl_ok, "bos/eos/pad should decode to nothing");
}

static void test_load_directory(void) {
    /* A checkpoint directory with tokenizer.model loads like the file. */
    char dir[2400], dst[2500], src[2400];
    snprintf(dir, sizeof dir, "%s/ckpt", g_dir);
    snprintf(dst, sizeof dst, "%s/tokenizer.model", dir);
    snprintf(src, sizeof src, "%s/bpe.model", g_dir);
    TaError err = {0};
    T_CHECK(ta_mkdirs(dir, &err) == TA_OK, "%s", err.msg);
    size_t len;
    char *buf = ta_read_file(src, &len, &err);
    T_CHECK(buf, "%s", err.msg);
    int wrc = ta_write_file_atomic(dst, buf, len, &err);
    free(buf);
    T_CHECK(wrc == TA_OK, "%s", err.msg);
    Tokenizer *tok;
    T_CHECK(tokenizer_load(&tok, dir, &err) == TA_OK, "%s", err.msg);
    int ok = !strcmp(tokenizer_path(tok), dst) && tokenizer_vocab_size(tok) == 1000;
    tokenizer_free(tok);
    T_CHECK(ok, "directory load: path %s", dst);
}

static void test_bad_model_path(void) {
    char p[2400];
    snprintf(p, sizeof p, "%s/does-not-exist.model", g_dir);
    Tokenizer *tok = (Tokenizer *)1;
    TaError err = {0};
    int rc = tokenizer_load(&tok, p, &err);
    T_CHECK(rc == TA_EINPUT && tok == NULL, "rc %d", rc);
    T_CHECK(strstr(err.msg, p) && strstr(err.msg, "No such file"), "message: %s", err.msg);
}

static void test_corrupt_model(void) {
    char src[2400], p[2400];
    snprintf(src, sizeof src, "%s/bpe.model", g_dir);
    snprintf(p, sizeof p, "%s/corrupt.model", g_dir);
    size_t len;
    TaError err = {0};
    char *buf = ta_read_file(src, &len, &err);
    T_CHECK(buf, "%s", err.msg);
    /* truncated, garbage, empty, a text file */
    const char *garbage = "this is not a protobuf \xff\xff\xff\xff";
    struct { const void *b; size_t n; const char *what; } variants[] = {
        {buf, len / 3, "truncated"},
        {garbage, strlen(garbage), "garbage"},
        {"", 0, "empty"},
    };
    for (int v = 0; v < 3; v++) {
        FILE *f = fopen(p, "wb");
        T_CHECK(f, "cannot write %s", p);
        fwrite(variants[v].b, 1, variants[v].n, f);
        fclose(f);
        Tokenizer *tok = NULL;
        TaError e2 = {0};
        int rc = tokenizer_load(&tok, p, &e2);
        if (rc == TA_OK) tokenizer_free(tok);
        if (!(rc == TA_EINPUT && tok == NULL && strstr(e2.msg, p))) {
            free(buf);
            T_CHECK(0, "%s model: rc %d, message \"%s\"", variants[v].what, rc, e2.msg);
        }
    }
    free(buf);
}

static void test_train_errors(void) {
    char input[2300], prefix[2300];
    path_in(input, sizeof input, "train.txt");
    path_in(prefix, sizeof prefix, "err");
    TokenizerTrainOptions o;
    TaError err = {0};
    tokenizer_train_defaults(&o);
    o.input = "/nonexistent/train.txt";
    o.model_prefix = prefix;
    o.vocab_size = 600;
    T_CHECK(tokenizer_train(&o, &err) == TA_EINPUT && strstr(err.msg, "/nonexistent/train.txt"),
            "missing input: %s", err.msg);
    o.input = input;
    o.model_type = "word2vec";
    T_CHECK(tokenizer_train(&o, &err) == TA_EINPUT && strstr(err.msg, "word2vec"),
            "bad model type: %s", err.msg);
    o.model_type = "bpe";
    char tiny[2300];
    path_in(tiny, sizeof tiny, "tiny.txt");
    FILE *f = fopen(tiny, "wb");
    T_CHECK(f, "cannot write %s", tiny);
    fputs("just a few words\nand a few more\n", f);
    fclose(f);
    o.input = tiny;
    o.vocab_size = 2000; /* more than this corpus supports */
    T_CHECK(tokenizer_train(&o, &err) == TA_EINPUT && strstr(err.msg, "ocabulary size"),
            "vocab too high: %s", err.msg);
    o.input = input;
    o.vocab_size = 100; /* fewer than the 256 byte pieces */
    T_CHECK(tokenizer_train(&o, &err) == TA_EINPUT, "vocab too small accepted");
    o.vocab_size = 600;
    o.pad_id = 2; /* clashes with eos */
    T_CHECK(tokenizer_train(&o, &err) == TA_EINPUT && strstr(err.msg, "share"),
            "clashing ids: %s", err.msg);
}

int main(void) {
    snprintf(g_root, sizeof g_root, "%s", env_or("TA_ROOT", "."));
    snprintf(g_dir, sizeof g_dir, "%s/tokenizer", env_or("TA_REF", "build/ref"));
    g_py = env_or("PYTHON", "/usr/bin/python3");
    TaError err = {0};
    if (ta_mkdirs(g_dir, &err) != TA_OK) {
        printf("FAIL setup: %s\n", err.msg);
        return 1;
    }
    char train[2300];
    path_in(train, sizeof train, "train.txt");
    write_training_text(train);
    make_long();

    t_run("train_quiet_by_default", test_train_quiet);
    char name[128];
    for (int m = 0; m < 3; m++) {
        g_model = &MODELS[m];
        snprintf(name, sizeof name, "train_matches_python_%s", g_model->name);
        t_run(name, test_train_matches_python);
        if (!g_trained[m]) continue;
        snprintf(name, sizeof name, "special_ids_%s", g_model->name);
        t_run(name, test_special_ids);
        snprintf(name, sizeof name, "encode_decode_match_python_%s", g_model->name);
        t_run(name, test_encode_matches_python);
    }
    if (g_trained[0]) {
        t_run("encode_empty_decode_errors", test_encode_empty_and_decode_errors);
        t_run("load_checkpoint_directory", test_load_directory);
        t_run("corrupt_model_rejected", test_corrupt_model);
    }
    t_run("bad_model_path_rejected", test_bad_model_path);
    t_run("train_errors", test_train_errors);
    return t_done();
}
