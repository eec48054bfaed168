/* cmd_tokenizer.c — `tinyalign tokenizer train|encode|decode`: train a SentencePiece model
 * and run it from the command line (include/tinyalign/tokenizer.h does the work).
 * Not here: writing token shards (that is `tinyalign tokenize`, cmd_tokenize.c). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/cli.h"
#include "tinyalign/common.h"
#include "tinyalign/tokenizer.h"

/* The training text must be valid UTF-8, line by line (SentencePiece would otherwise drop
 * or mangle the bad bytes silently). TA_EINPUT naming FILE:LINE:COL; TA_OK when the file
 * cannot be opened (the trainer reports that). */
static int check_training_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return TA_OK;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    int rc = TA_OK;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        long bad = ta_utf8_invalid_at(line, (size_t)got);
        if (bad >= 0) {
            fprintf(stderr, "tinyalign tokenizer train: %s:%ld:%ld: not valid UTF-8 (byte 0x%02X)\n",
                    path, lineno, ta_utf8_column(line, (size_t)bad), (unsigned)(unsigned char)line[bad]);
            rc = TA_EINPUT;
            break;
        }
    }
    free(line);
    fclose(f);
    return rc;
}

/* ---- train -------------------------------------------------------------------------- */
static int tokenizer_train_cmd(int argc, char **argv) {
    TokenizerTrainOptions o;
    tokenizer_train_defaults(&o);
    int seed;
    const CliOpt opts[] = {
        {.name = "--input", .kind = CLI_STR, .dst = &o.input, .meta = "FILE", .flags = CLI_REQUIRED,
         .help = "training text (UTF-8)"},
        {.name = "--vocab-size", .kind = CLI_INT, .dst = &o.vocab_size, .meta = "N", .lo = 1,
         .hi = 2147483647, .flags = CLI_REQUIRED, .help = "number of pieces (with byte fallback: > 260)"},
        {.name = "--out", .kind = CLI_STR, .dst = &o.model_prefix, .meta = "PREFIX", .flags = CLI_REQUIRED,
         .help = "output prefix, e.g. models/tiny/spm"},
        {.name = "--model-type", .kind = CLI_STR, .dst = &o.model_type, .meta = "bpe|unigram", .def = "bpe",
         .help = "the SentencePiece algorithm"},
        {.name = "--byte-fallback", .kind = CLI_BOOL, .dst = &o.byte_fallback, .def = "1",
         .help = "unknown characters become <0xNN> byte pieces"},
        {.name = "--character-coverage", .kind = CLI_DOUBLE, .dst = &o.character_coverage, .meta = "F",
         .def = "0.9995", .help = "fraction of characters given their own piece, in (0, 1]"},
        {.name = "--normalization", .kind = CLI_STR, .dst = &o.normalization, .meta = "NAME",
         .def = "identity", .flags = CLI_NODEFAULT,
         .help = "identity (default: text kept as is, lossless) or nmt_nfkc\n"
                 "(SentencePiece's default NFKC), nfkc, nmt_nfkc_cf, nfkc_cf"},
        {.name = "--remove-extra-whitespaces", .kind = CLI_BOOL, .dst = &o.remove_extra_whitespaces,
         .def = "0", .help = "collapse runs of spaces"},
        {.name = "--split-digits", .kind = CLI_BOOL, .dst = &o.split_digits, .def = "0",
         .help = "one piece per digit"},
        {.name = "--user-defined-symbols", .kind = CLI_STR, .dst = &o.user_defined_symbols, .meta = "S",
         .flags = CLI_TEXT,
         .help = "comma-separated pieces always kept whole"},
        {.name = "--threads", .kind = CLI_INT, .dst = &o.num_threads, .meta = "N", .def = "1", .lo = 1,
         .hi = 1024, .help = "trainer threads"},
        {.name = "--seed", .kind = CLI_INT, .dst = &seed, .meta = "N", .def = "1", .lo = 0,
         .hi = 2147483647, .help = "SentencePiece's random seed"},
        {.name = "--verbose", .kind = CLI_FLAG, .dst = &o.verbose, .help = "show SentencePiece's training log"},
        {0}};
    const CliSpec spec = {
        .prog = "tinyalign tokenizer train",
        .usage = "tinyalign tokenizer train --input FILE --vocab-size N --out PREFIX [options]",
        .about = "Trains a SentencePiece model on FILE (one sentence per line; every line is used) and\n"
                 "writes PREFIX.model and PREFIX.vocab. Special ids: unk 0, bos 1, eos 2, pad 3.\n",
        .opts = opts,
    };
    int rc = cli_parse(&spec, argc, argv);
    if (rc != CLI_RUN) return rc;
    o.seed = (unsigned)seed;
    if (!(o.character_coverage > 0.0 && o.character_coverage <= 1.0))
        return cli_usage_error(&spec, "--character-coverage \"%g\": expected a number in (0, 1]",
                               o.character_coverage);
    if ((rc = check_training_text(o.input)) != TA_OK) return rc;
    TaError err = {0};
    double t0 = ta_now();
    rc = tokenizer_train(&o, &err);
    if (rc != TA_OK) {
        fprintf(stderr, "tinyalign tokenizer train: %s\n", err.msg);
        return rc;
    }
    printf("wrote %s.model and %s.vocab (%s, %d pieces) in %.1f s\n", o.model_prefix,
           o.model_prefix, o.model_type, o.vocab_size, ta_now() - t0);
    return TA_OK;
}

/* ---- encode / decode: one input line -> one output line ------------------------------- */
/* Encodes or decodes s[0..n) (modifiable, NUL-terminated); errors name `where`. */
typedef int (*LineFn)(const Tokenizer *tok, char *s, size_t n, int pieces, const char *where);

/* Loads the tokenizer `model`, then runs fn on text (where = argname) or on every line of
 * the file in (where = FILE:LINE; the line ending is not part of the line). */
static int over_lines(const char *sub, const char *model, const char *text, const char *argname,
                      const char *in, int pieces, LineFn fn) {
    FILE *f = NULL;
    if (in && !(f = fopen(in, "rb"))) {
        fprintf(stderr, "tinyalign tokenizer %s: %s: cannot open: %s\n", sub, in, strerror(errno));
        return TA_EINPUT;
    }
    Tokenizer *tok = NULL;
    TaError err = {0};
    if (tokenizer_load(&tok, model, &err) != TA_OK) {
        fprintf(stderr, "tinyalign tokenizer %s: %s\n", sub, err.msg);
        if (f) fclose(f);
        return TA_EINPUT;
    }
    int rc = TA_OK;
    if (text) {
        char *copy = ta_strdup(text, "text");
        rc = fn(tok, copy, strlen(copy), pieces, argname);
        free(copy);
    } else {
        char *line = NULL, where[4200];
        size_t cap = 0;
        ssize_t got;
        long lineno = 0;
        while (rc == TA_OK && (got = getline(&line, &cap, f)) >= 0) {
            size_t n = (size_t)got;
            if (n && line[n - 1] == '\n') line[--n] = '\0';
            if (n && line[n - 1] == '\r') line[--n] = '\0';
            snprintf(where, sizeof where, "%s:%ld", in, ++lineno);
            long bad = ta_utf8_invalid_at(line, n);
            if (bad >= 0) {
                fprintf(stderr, "tinyalign tokenizer %s: %s:%ld: not valid UTF-8 (byte 0x%02X)\n",
                        sub, where, ta_utf8_column(line, (size_t)bad), (unsigned)(unsigned char)line[bad]);
                rc = TA_EINPUT;
                break;
            }
            rc = fn(tok, line, n, pieces, where);
        }
        free(line);
        fclose(f);
    }
    tokenizer_free(tok);
    return rc;
}

static int encode_one(const Tokenizer *tok, char *text, size_t len, int pieces, const char *where) {
    int *ids, n;
    TaError err = {0};
    int rc = tokenizer_encode(tok, text, len, &ids, &n, &err);
    if (rc != TA_OK) {
        fprintf(stderr, "tinyalign tokenizer encode: %s: %s\n", where, err.msg);
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

/* Parses space-separated ids of s into a malloc'd array. Returns -1 (and the bad token in
 * *bad) when a token is not an integer. */
static int parse_ids(char *s, int **ids, int *n, char **bad) {
    int cap = 0, k = 0;
    int *a = NULL;
    for (char *tok = strtok(s, " \t\r\n,"); tok; tok = strtok(NULL, " \t\r\n,")) {
        long long v;
        if (!cli_parse_int(tok, INT_MIN, INT_MAX, &v)) {
            free(a);
            *bad = tok;
            return -1;
        }
        if (k == cap) a = ta_realloc(a, sizeof(int) * (size_t)(cap = cap ? 2 * cap : 64), "ids");
        a[k++] = (int)v;
    }
    *ids = a ? a : ta_malloc(sizeof(int), "ids");
    *n = k;
    return 0;
}

static int decode_one(const Tokenizer *tok, char *s, size_t len, int pieces, const char *where) {
    (void)len, (void)pieces;
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

static int tokenizer_encode_cmd(int argc, char **argv) {
    const char *model, *text = NULL, *in = NULL;
    int pieces = 0;
    const CliOpt opts[] = {
        {.name = "--model", .kind = CLI_STR, .dst = &model, .meta = "M", .flags = CLI_REQUIRED,
         .help = "a .model file or a checkpoint directory holding tokenizer.model"},
        {.name = "--text", .kind = CLI_STR, .dst = &text, .meta = "S", .flags = CLI_TEXT,
         .help = "the text to encode"},
        {.name = "--in", .kind = CLI_STR, .dst = &in, .meta = "FILE", .help = "encode each line of FILE"},
        {.name = "--pieces", .kind = CLI_FLAG, .dst = &pieces, .help = "print pieces instead of ids"},
        {0}};
    const CliSpec spec = {
        .prog = "tinyalign tokenizer encode",
        .usage = "tinyalign tokenizer encode --model M (--text S | --in FILE) [--pieces]",
        .about = "Prints the ids of S, or of each line of FILE (one output line per input line; the line\n"
                 "ending is not encoded), space-separated. No BOS/EOS is added.\n",
        .opts = opts,
    };
    int rc = cli_parse(&spec, argc, argv);
    if (rc != CLI_RUN) return rc;
    if (!text == !in) return cli_usage_error(&spec, "give exactly one of --text S or --in FILE");
    return over_lines("encode", model, text, "--text", in, pieces, encode_one);
}

static int tokenizer_decode_cmd(int argc, char **argv) {
    const char *model, *idstr = NULL, *in = NULL;
    const CliOpt opts[] = {
        {.name = "--model", .kind = CLI_STR, .dst = &model, .meta = "M", .flags = CLI_REQUIRED,
         .help = "a .model file or a checkpoint directory holding tokenizer.model"},
        {.name = "--ids", .kind = CLI_STR, .dst = &idstr, .meta = "\"1 2 3\"", .help = "the ids to decode"},
        {.name = "--in", .kind = CLI_STR, .dst = &in, .meta = "FILE", .help = "decode each line of FILE"},
        {0}};
    const CliSpec spec = {
        .prog = "tinyalign tokenizer decode",
        .usage = "tinyalign tokenizer decode --model M (--ids \"1 2 3\" | --in FILE)",
        .about = "Prints the text of the ids (space-separated), or of each line of FILE (one output\n"
                 "line per input line).\n",
        .opts = opts,
    };
    int rc = cli_parse(&spec, argc, argv);
    if (rc != CLI_RUN) return rc;
    if (!idstr == !in) return cli_usage_error(&spec, "give exactly one of --ids \"1 2 3\" or --in FILE");
    return over_lines("decode", model, idstr, "--ids", in, 0, decode_one);
}

int cmd_tokenizer(int argc, char **argv) {
    static const CliCommand SUBS[] = {
        {"train", tokenizer_train_cmd, "train a SentencePiece model (bpe or unigram) on a text file"},
        {"encode", tokenizer_encode_cmd, "text -> ids"},
        {"decode", tokenizer_decode_cmd, "ids -> text"},
    };
    static const CliGroup group = {.prog = "tinyalign tokenizer", .cmds = SUBS,
                                   .n = (int)(sizeof SUBS / sizeof SUBS[0])};
    return cli_dispatch(&group, argc, argv);
}
