/* cmd_tokenize.c — `tinyalign tokenize`: text (.txt or .jsonl) -> token shard.
 *
 * Documents: in .txt each non-blank line is one document (--doc-sep line, the default), or
 * with --doc-sep blank each run of non-blank lines is one document (its lines joined with
 * "\n"); blank = empty or only spaces/tabs/CR. In .jsonl each non-blank line is a JSON
 * object whose --field (default "text") string is one document. The line ending is never
 * part of a document. Each document's ids are followed by one EOS id; no BOS is added.
 * Not here: shuffling, train/val splits, or several output shards.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tinyalign/cli.h"
#include "tinyalign/jsonl.h"
#include "tinyalign/common.h"
#include "tinyalign/shard.h"
#include "tinyalign/tokenizer.h"

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("tinyalign tokenize: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

typedef struct {
    const char *in;
    const Tokenizer *tok;
    ShardWriter *w;
    int eos;
    unsigned long long docs;
    /* progress */
    size_t total, done;
    double t0, last;
    int show, tty;
} Job;

static void progress(Job *j, int final) {
    if (!j->show) return;
    double now = ta_now();
    if (!final && now - j->last < (j->tty ? 0.25 : 5.0)) return;
    j->last = now;
    double mb = (double)j->done / 1e6, dt = now - j->t0;
    fprintf(stderr, "%stokenize: %.1f / %.1f MB (%.0f%%), %.1f MB/s, %llu tokens%s",
            j->tty ? "\r" : "", mb, (double)j->total / 1e6,
            j->total ? 100.0 * (double)j->done / (double)j->total : 100.0,
            dt > 0 ? mb / dt : 0.0, (unsigned long long)j->w->num_tokens,
            j->tty && !final ? "" : "\n");
    fflush(stderr);
}

/* Encodes one document and appends its ids + EOS. */
static int add_doc(Job *j, const char *text, size_t len, long lineno) {
    int *ids, n;
    TaError err = {0};
    if (tokenizer_encode(j->tok, text, len, &ids, &n, &err) != TA_OK)
        return fail(err.code, "%s:%ld: %s", j->in, lineno, err.msg);
    int rc = shard_writer_append(j->w, ids, (size_t)n, &err);
    if (rc == TA_OK) rc = shard_writer_append(j->w, &j->eos, 1, &err);
    free(ids);
    if (rc != TA_OK) return fail(rc, "%s", err.msg);
    j->docs++;
    return TA_OK;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}


/* One JSONL line -> one document (jsonl_parse_object: the JSONL door, UTF-8 included). */
static int add_jsonl(Job *j, const char *line, size_t n, long lineno, const char *field) {
    cJSON *obj;
    TaError err = {0};
    if (jsonl_parse_object(j->in, lineno, line, n, &obj, &err) != TA_OK)
        return fail(err.code, "%s", err.msg);
    int rc = TA_OK;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!v)
        rc = fail(TA_EINPUT, "%s:%ld: missing \"%s\" field", j->in, lineno, field);
    else if (!cJSON_IsString(v) || !v->valuestring)
        rc = fail(TA_EINPUT, "%s:%ld: \"%s\" must be a string, found %s", j->in, lineno, field,
                  jsonl_type_name(v));
    else
        rc = add_doc(j, v->valuestring, strlen(v->valuestring), lineno);
    cJSON_Delete(obj);
    return rc;
}

/* A .txt line must be valid UTF-8 (the tokenizer would otherwise map the bad bytes to
 * unknown pieces silently). */
static int check_text_line(const Job *j, const char *s, size_t n, long lineno) {
    long bad = ta_utf8_invalid_at(s, n);
    if (bad < 0) return TA_OK;
    return fail(TA_EINPUT, "%s:%ld:%ld: not valid UTF-8 (byte 0x%02X); convert the file to UTF-8 "
                "(e.g. iconv -f latin1 -t utf-8)", j->in, lineno, ta_utf8_column(s, (size_t)bad),
                (unsigned)(unsigned char)s[bad]);
}

/* Reads j->in line by line and feeds documents to the writer. */
static int run(Job *j, FILE *f, int jsonl, int blank_sep, const char *field) {
    char *line = NULL, *doc = NULL;
    size_t cap = 0, doc_len = 0, doc_cap = 0;
    long lineno = 0, doc_line = 0;
    ssize_t got;
    int rc = TA_OK;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        j->done += (size_t)got;
        size_t n = (size_t)got;
        char *s = line;
        if (n && s[n - 1] == '\n') n--;
        if (n && s[n - 1] == '\r') n--;
        if (lineno == 1 && n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) s += 3, n -= 3; /* BOM */
        if (is_blank(s, n)) {
            if (blank_sep && doc_len) {
                rc = add_doc(j, doc, doc_len, doc_line);
                doc_len = 0;
            }
        } else if (jsonl) {
            rc = add_jsonl(j, s, n, lineno, field);
        } else if ((rc = check_text_line(j, s, n, lineno)) != TA_OK) {
            goto end;
        } else if (!blank_sep) {
            rc = add_doc(j, s, n, lineno);
        } else { /* append the line to the paragraph, joined by "\n" */
            if (!doc_len) doc_line = lineno;
            size_t need = doc_len + 1 + n;
            if (need > doc_cap) {
                doc_cap = need * 2;
                char *d = ta_malloc(doc_cap, "document");
                if (doc_len) memcpy(d, doc, doc_len);
                free(doc);
                doc = d;
            }
            if (doc_len) doc[doc_len++] = '\n';
            memcpy(doc + doc_len, s, n);
            doc_len += n;
        }
        if (rc != TA_OK) goto end;
        progress(j, 0);
    }
    if (ferror(f)) {
        rc = fail(TA_ERUNTIME, "%s:%ld: read error: %s", j->in, lineno, strerror(errno));
        goto end;
    }
    if (blank_sep && doc_len) rc = add_doc(j, doc, doc_len, doc_line);
end:
    free(line);
    free(doc);
    return rc;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

int cmd_tokenize(int argc, char **argv) {
    const char *model, *in, *out, *field;
    int quiet = 0, format = -1, blank_sep;
    const CliOpt opts[] = {
        {.name = "--tokenizer", .kind = CLI_STR, .dst = &model, .meta = "MODEL", .flags = CLI_REQUIRED,
         .help = "SentencePiece .model, or a checkpoint directory holding one"},
        {.name = "--in", .kind = CLI_STR, .dst = &in, .meta = "FILE", .flags = CLI_REQUIRED,
         .help = ".txt or .jsonl (chosen by extension; see --format)"},
        {.name = "--out", .kind = CLI_STR, .dst = &out, .meta = "SHARD", .flags = CLI_REQUIRED,
         .help = "output shard"},
        {.name = "--format", .kind = CLI_CHOICE, .dst = &format, .choices = "txt|jsonl",
         .help = "override the extension"},
        {.name = "--doc-sep", .kind = CLI_CHOICE, .dst = &blank_sep, .choices = "line|blank", .def = "line",
         .help = ".txt: each non-blank line is a document (line), or\n"
                 "blank-line-separated paragraphs, lines joined by \"\\n\" (blank)"},
        {.name = "--field", .kind = CLI_STR, .dst = &field, .meta = "NAME", .def = "text",
         .flags = CLI_TEXT,
         .help = ".jsonl: the string field holding the document"},
        {.name = "--quiet", .kind = CLI_FLAG, .dst = &quiet, .help = "no progress line"},
        {0}};
    const CliSpec spec = {
        .prog = "tinyalign tokenize",
        .usage = "tinyalign tokenize --tokenizer MODEL --in FILE --out SHARD [options]",
        .about = "Tokenizes documents into a token shard (64-byte header + uint16/uint32 ids), writing\n"
                 "the EOS id after every document. The shard is written to SHARD.tmp and renamed.\n",
        .opts = opts,
        .notes = "Blank lines are skipped in every format. Bad input exits 2 naming FILE:LINE.\n",
    };
    int rc = cli_parse(&spec, argc, argv);
    if (rc != CLI_RUN) return rc;
    int jsonl = format >= 0 ? format == 1 : ends_with(in, ".jsonl") || ends_with(in, ".json");
    if (blank_sep && jsonl) return fail(TA_EINPUT, "--doc-sep applies to .txt input only");

    FILE *f = fopen(in, "rb");
    if (!f) return fail(TA_EINPUT, "%s: cannot open: %s", in, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
        fclose(f);
        return fail(TA_EINPUT, "%s: not a readable file", in);
    }
    Tokenizer *tok = NULL;
    ShardWriter w = {0};
    TaError err = {0};
    rc = tokenizer_load(&tok, model, &err);
    if (rc != TA_OK) {
        rc = fail(rc, "%s", err.msg);
        goto end;
    }
    Job j = {.in = in, .tok = tok, .w = &w, .eos = tokenizer_eos_id(tok)};
    if (j.eos < 0) {
        rc = fail(TA_EINPUT, "%s: the tokenizer has no EOS piece to separate documents",
                  tokenizer_path(tok));
        goto end;
    }
    rc = shard_writer_open(&w, out, (uint32_t)tokenizer_vocab_size(tok), &err);
    if (rc != TA_OK) {
        rc = fail(rc, "%s", err.msg);
        goto end;
    }
    j.total = (size_t)st.st_size;
    j.t0 = j.last = ta_now();
    j.show = !quiet && j.total > (1u << 20);
    j.tty = isatty(fileno(stderr));
    rc = run(&j, f, jsonl, blank_sep, field);
    if (rc != TA_OK) goto end;
    progress(&j, 1);
    unsigned long long ntok = w.num_tokens;
    unsigned tb = w.token_bytes;
    rc = shard_writer_close(&w, &err);
    if (rc != TA_OK) {
        rc = fail(rc, "%s", err.msg);
        goto end;
    }
    printf("wrote %s: %llu documents, %llu tokens (uint%u, vocab %d) in %.1f s\n", out, j.docs,
           ntok, 8 * tb, tokenizer_vocab_size(tok), ta_now() - j.t0);
end:
    if (rc != TA_OK) shard_writer_abort(&w);
    tokenizer_free(tok);
    fclose(f);
    return rc;
}
