/* cmd_tokenizer.c — `tinyalign tokenizer train|encode|decode`: train a SentencePiece model
 * and run it from the command line (include/tinyalign/tokenizer.h does the work).
 * Not here: writing token shards (that is `tinyalign tokenize`, cmd_tokenize.c). */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/cli.h"
#include "tinyalign/common.h"
#include "tinyalign/tokenizer.h"

static const char *TRAIN_HELP =
    "usage: tinyalign tokenizer train --input FILE --vocab-size N --out PREFIX [options]\n"
    "\n"
    "Trains a SentencePiece model on FILE (one sentence per line; every line is used) and\n"
    "writes PREFIX.model and PREFIX.vocab. Special ids: unk 0, bos 1, eos 2, pad 3.\n"
    "\n"
    "  --input FILE               training text (UTF-8)\n"
    "  --vocab-size N             number of pieces (with byte fallback: > 260)\n"
    "  --out PREFIX               output prefix, e.g. models/tiny/spm\n"
    "  --model-type bpe|unigram   default bpe\n"
    "  --byte-fallback 0|1        unknown characters become <0xNN> byte pieces (default 1)\n"
    "  --character-coverage F     fraction of characters given their own piece (default 0.9995)\n"
    "  --normalization NAME       identity (default: text kept as is, lossless) or nmt_nfkc\n"
    "                             (SentencePiece's default NFKC), nfkc, nmt_nfkc_cf, nfkc_cf\n"
    "  --remove-extra-whitespaces 0|1  collapse runs of spaces (default 0)\n"
    "  --split-digits 0|1         one piece per digit (default 0)\n"
    "  --user-defined-symbols S   comma-separated pieces always kept whole\n"
    "  --threads N                trainer threads (default 1)\n"
    "  --seed N                   SentencePiece's random seed (default 1)\n"
    "  --verbose                  show SentencePiece's training log\n";

static const char *ENCODE_HELP =
    "usage: tinyalign tokenizer encode --model M (--text S | --in FILE) [--pieces]\n"
    "\n"
    "Prints the ids of S, or of each line of FILE (one output line per input line; the line\n"
    "ending is not encoded), space-separated. No BOS/EOS is added.\n"
    "M is a .model file or a checkpoint directory holding tokenizer.model.\n"
    "  --pieces    print pieces instead of ids\n";

static const char *DECODE_HELP =
    "usage: tinyalign tokenizer decode --model M (--ids \"1 2 3\" | --in FILE)\n"
    "\n"
    "Prints the text of the ids (space-separated), or of each line of FILE (one output\n"
    "line per input line).\n";

static const char *HELP =
    "usage: tinyalign tokenizer train|encode|decode [args]   (--help on each)\n"
    "\n"
    "  train    train a SentencePiece model (bpe or unigram) on a text file\n"
    "  encode   text -> ids\n"
    "  decode   ids -> text\n";

static int usage_err(const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int usage_err(const char *sub, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tinyalign tokenizer %s: ", sub);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see tinyalign tokenizer %s --help)\n", sub);
    return TA_EINPUT;
}

static int wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

/* Parses a whole-string integer in [lo, hi]. Returns 0 on success. */
static int parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out) {
    if (!strcmp(s, "0") || !strcmp(s, "false")) *out = 0;
    else if (!strcmp(s, "1") || !strcmp(s, "true")) *out = 1;
    else return -1;
    return 0;
}

/* ---- train -------------------------------------------------------------------------- */
static int tokenizer_train_cmd(int argc, char **argv) {
    if (wants_help(argc, argv)) {
        fputs(TRAIN_HELP, stdout);
        return TA_OK;
    }
    TokenizerTrainOptions o;
    tokenizer_train_defaults(&o);
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--verbose")) {
            o.verbose = 1;
            continue;
        }
        if (i + 1 >= argc) return usage_err("train", "%s needs a value", k);
        const char *v = argv[++i];
        const char *want = NULL; /* set when v does not parse */
        long n = 0;
        if (!strcmp(k, "--input")) o.input = v;
        else if (!strcmp(k, "--out")) o.model_prefix = v;
        else if (!strcmp(k, "--model-type")) o.model_type = v;
        else if (!strcmp(k, "--normalization")) o.normalization = v;
        else if (!strcmp(k, "--user-defined-symbols")) o.user_defined_symbols = v;
        else if (!strcmp(k, "--vocab-size")) {
            if (parse_int(v, 1, INT_MAX, &n)) want = "a positive integer";
            o.vocab_size = (int)n;
        } else if (!strcmp(k, "--threads")) {
            if (parse_int(v, 1, 1024, &n)) want = "1..1024";
            o.num_threads = (int)n;
        } else if (!strcmp(k, "--seed")) {
            if (parse_int(v, 0, INT_MAX, &n)) want = "a non-negative integer";
            o.seed = (unsigned)n;
        } else if (!strcmp(k, "--byte-fallback")) {
            if (parse_bool(v, &o.byte_fallback)) want = "0 or 1";
        } else if (!strcmp(k, "--remove-extra-whitespaces")) {
            if (parse_bool(v, &o.remove_extra_whitespaces)) want = "0 or 1";
        } else if (!strcmp(k, "--split-digits")) {
            if (parse_bool(v, &o.split_digits)) want = "0 or 1";
        } else if (!strcmp(k, "--character-coverage")) {
            char *end;
            errno = 0;
            o.character_coverage = strtod(v, &end);
            if (errno || end == v || *end ||
                !(o.character_coverage > 0.0 && o.character_coverage <= 1.0))
                want = "a number in (0, 1]";
        } else return usage_err("train", "unknown option \"%s\"", k);
        if (want) return usage_err("train", "%s \"%s\": expected %s", k, v, want);
    }
    if (!o.input) return usage_err("train", "%s is required", "--input FILE");
    if (!o.model_prefix) return usage_err("train", "%s is required", "--out PREFIX");
    if (!o.vocab_size) return usage_err("train", "%s is required", "--vocab-size N");
    TaError err = {0};
    double t0 = ta_now();
    int rc = tokenizer_train(&o, &err);
    if (rc != TA_OK) {
        fprintf(stderr, "tinyalign tokenizer train: %s\n", err.msg);
        return rc;
    }
    printf("wrote %s.model and %s.vocab (%s, %d pieces) in %.1f s\n", o.model_prefix,
           o.model_prefix, o.model_type, o.vocab_size, ta_now() - t0);
    return TA_OK;
}

/* Loads --model for encode/decode; prints the error. */
static Tokenizer *load_or_report(const char *sub, const char *model) {
    Tokenizer *tok = NULL;
    TaError err = {0};
    if (tokenizer_load(&tok, model, &err) != TA_OK)
        fprintf(stderr, "tinyalign tokenizer %s: %s\n", sub, err.msg);
    return tok;
}

/* Removes a trailing "\n" or "\r\n". */
static size_t chomp(char *line, size_t n) {
    if (n && line[n - 1] == '\n') line[--n] = '\0';
    if (n && line[n - 1] == '\r') line[--n] = '\0';
    return n;
}

/* ---- encode ------------------------------------------------------------------------- */
static int encode_one(const Tokenizer *tok, const char *text, size_t len, int pieces,
                      const char *where, TaError *err) {
    int *ids, n;
    int rc = tokenizer_encode(tok, text, len, &ids, &n, err);
    if (rc != TA_OK) {
        fprintf(stderr, "tinyalign tokenizer encode: %s: %s\n", where, err->msg);
        return rc;
    }
    for (int i = 0; i < n; i++) {
        if (i) putchar(' ');
        if (pieces) fputs(tokenizer_id_to_piece(tok, ids[i]), stdout);
        else printf("%d", ids[i]);
    }
    putchar('\n');
    free(ids);
    return TA_OK;
}

static int tokenizer_encode_cmd(int argc, char **argv) {
    if (wants_help(argc, argv)) {
        fputs(ENCODE_HELP, stdout);
        return TA_OK;
    }
    const char *model = NULL, *text = NULL, *in = NULL;
    int pieces = 0;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--pieces")) {
            pieces = 1;
            continue;
        }
        if (i + 1 >= argc) return usage_err("encode", "%s needs a value", k);
        const char *v = argv[++i];
        if (!strcmp(k, "--model")) model = v;
        else if (!strcmp(k, "--text")) text = v;
        else if (!strcmp(k, "--in")) in = v;
        else return usage_err("encode", "unknown option \"%s\"", k);
    }
    if (!model) return usage_err("encode", "%s is required", "--model M");
    if (!text == !in) return usage_err("encode", "give exactly one of --text S or --in FILE");
    FILE *f = NULL;
    if (in && !(f = fopen(in, "rb"))) {
        fprintf(stderr, "tinyalign tokenizer encode: %s: cannot open: %s\n", in, strerror(errno));
        return TA_EINPUT;
    }
    Tokenizer *tok = load_or_report("encode", model);
    if (!tok) {
        if (f) fclose(f);
        return TA_EINPUT;
    }
    TaError err = {0};
    int rc = TA_OK;
    if (text) {
        rc = encode_one(tok, text, strlen(text), pieces, "--text", &err);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t got;
        long lineno = 0;
        char where[4200];
        while (rc == TA_OK && (got = getline(&line, &cap, f)) >= 0) {
            lineno++;
            size_t n = chomp(line, (size_t)got);
            snprintf(where, sizeof where, "%s:%ld", in, lineno);
            rc = encode_one(tok, line, n, pieces, where, &err);
        }
        free(line);
        fclose(f);
    }
    tokenizer_free(tok);
    return rc;
}

/* ---- decode ------------------------------------------------------------------------- */
/* Parses space-separated ids of s into a malloc'd array. Returns -1 (and the bad token in
 * *bad) when a token is not an integer. */
static int parse_ids(char *s, int **ids, int *n, char **bad) {
    int cap = 64, k = 0;
    int *a = ta_malloc((size_t)cap * sizeof(int), "ids");
    for (char *tok = strtok(s, " \t\r\n,"); tok; tok = strtok(NULL, " \t\r\n,")) {
        long v;
        if (parse_int(tok, INT_MIN, INT_MAX, &v)) {
            free(a);
            *bad = tok;
            return -1;
        }
        if (k == cap) {
            cap *= 2;
            int *b = ta_malloc((size_t)cap * sizeof(int), "ids");
            memcpy(b, a, (size_t)k * sizeof(int));
            free(a);
            a = b;
        }
        a[k++] = (int)v;
    }
    *ids = a;
    *n = k;
    return 0;
}

static int decode_one(const Tokenizer *tok, char *s, const char *where) {
    int *ids, n;
    char *bad;
    if (parse_ids(s, &ids, &n, &bad)) {
        fprintf(stderr, "tinyalign tokenizer decode: %s: \"%s\" is not an integer id\n", where,
                bad);
        return TA_EINPUT;
    }
    TaError err = {0};
    char *text;
    int rc = tokenizer_decode(tok, ids, n, &text, &err);
    free(ids);
    if (rc != TA_OK) {
        fprintf(stderr, "tinyalign tokenizer decode: %s: %s\n", where, err.msg);
        return rc;
    }
    puts(text);
    free(text);
    return TA_OK;
}

static int tokenizer_decode_cmd(int argc, char **argv) {
    if (wants_help(argc, argv)) {
        fputs(DECODE_HELP, stdout);
        return TA_OK;
    }
    const char *model = NULL, *idstr = NULL, *in = NULL;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (i + 1 >= argc) return usage_err("decode", "%s needs a value", k);
        const char *v = argv[++i];
        if (!strcmp(k, "--model")) model = v;
        else if (!strcmp(k, "--ids")) idstr = v;
        else if (!strcmp(k, "--in")) in = v;
        else return usage_err("decode", "unknown option \"%s\"", k);
    }
    if (!model) return usage_err("decode", "%s is required", "--model M");
    if (!idstr == !in)
        return usage_err("decode", "give exactly one of --ids \"1 2 3\" or --in FILE");
    FILE *f = NULL;
    if (in && !(f = fopen(in, "rb"))) {
        fprintf(stderr, "tinyalign tokenizer decode: %s: cannot open: %s\n", in, strerror(errno));
        return TA_EINPUT;
    }
    Tokenizer *tok = load_or_report("decode", model);
    if (!tok) {
        if (f) fclose(f);
        return TA_EINPUT;
    }
    int rc = TA_OK;
    if (idstr) {
        size_t len = strlen(idstr);
        char *copy = ta_malloc(len + 1, "ids");
        memcpy(copy, idstr, len + 1);
        rc = decode_one(tok, copy, "--ids");
        free(copy);
    } else {
        char *line = NULL;
        size_t cap = 0;
        long lineno = 0;
        char where[4200];
        while (rc == TA_OK && getline(&line, &cap, f) >= 0) {
            lineno++;
            snprintf(where, sizeof where, "%s:%ld", in, lineno);
            rc = decode_one(tok, line, where);
        }
        free(line);
        fclose(f);
    }
    tokenizer_free(tok);
    return rc;
}

int cmd_tokenizer(int argc, char **argv) {
    if (argc < 2) {
        fputs(HELP, stderr);
        return TA_EINPUT;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        fputs(HELP, stdout);
        return TA_OK;
    }
    if (!strcmp(sub, "train")) return tokenizer_train_cmd(argc - 1, argv + 1);
    if (!strcmp(sub, "encode")) return tokenizer_encode_cmd(argc - 1, argv + 1);
    if (!strcmp(sub, "decode")) return tokenizer_decode_cmd(argc - 1, argv + 1);
    fprintf(stderr,
            "tinyalign tokenizer: unknown subcommand \"%s\" (expected train, encode or decode)\n",
            sub);
    return TA_EINPUT;
}
