/* cmd_sample.c — `tinyalign sample`: generate completions from a model directory.
 *
 *   --prompt TEXT          one prompt; the completion text goes to stdout
 *   --prompts FILE.jsonl   one {"prompt": ...} object per line (other fields ignored); writes
 *                          the multi-response format, one line per prompt, to --out (or
 *                          stdout): {"prompt": ..., "responses": [{"text": ...,
 *                          "num_tokens": N, "finish_reason": "eos"|"length"|"stop"}, ...]}
 *                          — what `tinyalign curate` reads
 *   --bench                decode speed on random prompt ids (no tokenizer needed): one
 *                          JSON line with prefill / decode times and decode tokens/s
 * The whole prompts file is read, validated and tokenized before anything is generated,
 * so bad input exits 2 at once (file:line). Output lines are written in prompt order as
 * chunks of prompts finish, to OUT.tmp, renamed to OUT at the end.
 * Not here: chat templates, logprobs in the output, streaming tokens to stdout.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tinyalign/backend.h"
#include "tinyalign/checkpoint.h"
#include "tinyalign/cli.h"
#include "tinyalign/jsonl.h"
#include "tinyalign/common.h"
#include "tinyalign/model.h"
#include "tinyalign/model_io.h"
#include "tinyalign/sample.h"
#include "tinyalign/tokenizer.h"

static const char *HELP =
    "usage: tinyalign sample --model DIR (--prompt TEXT | --prompts FILE.jsonl) [options]\n"
    "       tinyalign sample --model DIR --bench [--batch B] [--prompt-len P]\n"
    "                        [--max-new-tokens N] [--threads N]\n"
    "\n"
    "Generates completions of [BOS] + prompt with a KV cache, up to --batch sequences at a\n"
    "time (a finished one is replaced at once).\n"
    "\n"
    "  --model DIR               a model directory (config.json + model.safetensors), a\n"
    "                            checkpoint directory or a run directory (its latest checkpoint)\n"
    "  --tokenizer PATH          SentencePiece model (default: DIR/tokenizer.model)\n"
    "  --prompt TEXT             one prompt: prints the completion (n > 1: each after a\n"
    "                            \"--- response i ---\" line) unless --out is given\n"
    "  --prompts FILE.jsonl      one {\"prompt\": ...} object per line (other fields ignored)\n"
    "  --out FILE.jsonl          write {\"prompt\", \"responses\": [{\"text\", \"num_tokens\",\n"
    "                            \"finish_reason\"}]} lines (default for --prompts: stdout)\n"
    "  --n N                     responses per prompt (default 1)\n"
    "  --max-new-tokens N        generated tokens per response (default 128)\n"
    "  --min-new-tokens N        no EOS before N tokens (default 0; 1 avoids empty texts,\n"
    "                            which the JSONL datasets reject)\n"
    "  --temperature T           >= 0; 0 = greedy (default 1)\n"
    "  --top-k K                 keep the K most likely tokens; 0 = off (default)\n"
    "  --top-p P                 nucleus: smallest set with probability >= P, in (0, 1];\n"
    "                            1 = off (default)\n"
    "  --min-p P                 keep tokens with probability >= P * the top one, in [0, 1);\n"
    "                            0 = off (default)\n"
    "  --repetition-penalty R    > 0: logits of tokens already in the sequence (prompt\n"
    "                            included) divided by R if positive, multiplied if negative;\n"
    "                            1 = off (default)\n"
    "  --presence-penalty A      subtract A from tokens already generated; 0 = off (default)\n"
    "  --stop STR                stop when the text contains STR (cut before it); repeatable\n"
    "  --seed S                  response j of prompt i uses a stream seeded by (S, i, j):\n"
    "                            results do not depend on --batch (<= 16) or --threads\n"
    "                            (default 0)\n"
    "  --batch B                 sequences decoded together (default 8)\n"
    "  --threads N               threads (default: all cores)\n"
    "  --precision fp32|bf16     matmuls in fp32 (default) or bf16 with fp32 sums (the\n"
    "                            model's weights rounded to bf16 once at load; needs\n"
    "                            AVX512-BF16 or AMX); as model.precision\n"
    "  --backend auto|openblas|onednn  matmul library (default auto: openblas for fp32,\n"
    "                            onednn for bf16); as model.backend\n"
    "  --ids                     also write each response's token ids (\"ids\": [...])\n"
    "  --quiet                   no progress line\n"
    "  --bench                   time decoding on random prompts (greedy, no EOS)\n"
    "  --prompt-len P            --bench prompt length (default 16)\n"
    "  --bench-reps R            --bench: timed runs after the warm-up; the fastest\n"
    "                            decode is reported (default 3)\n"
    "\n"
    "Samplers apply in this order: min-new-tokens (EOS masked), repetition penalty,\n"
    "presence penalty, (greedy: argmax, lowest id on ties), temperature, top-k (ties ->\n"
    "lower id), top-p, min-p, draw.\n"
    "A response stops at EOS (finish_reason \"eos\"; counted in num_tokens, not in the\n"
    "text), after --max-new-tokens or at the model's max_seq_len (\"length\"), or at a stop\n"
    "string (\"stop\"). A prompt longer than max_seq_len - 1 tokens is an error (prompts\n"
    "are never truncated).\n"
    "exit status: 0 ok, 1 runtime failure, 2 bad arguments or input\n";

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("tinyalign sample: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

static int parse_int(const char *opt, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno || x < lo || x > hi)
        return fail(TA_EINPUT, "%s \"%s\": expected an integer in [%ld, %ld]", opt, v, lo, hi);
    *out = x;
    return TA_OK;
}

static int parse_double(const char *opt, const char *v, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end || errno)
        return fail(TA_EINPUT, "%s \"%s\": expected a number", opt, v);
    *out = x;
    return TA_OK;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* --model: a checkpoint / run directory (checkpoint_resolve), else a plain model
 * directory with config.json. */
static int resolve_model(const char *dir, char *out, size_t cap) {
    TaError err = {0};
    if (checkpoint_resolve(dir, out, cap, &err) == TA_OK) return TA_OK;
    char p[4096];
    ta_pathf(p, sizeof p, "%s/config.json", dir);
    if (file_exists(p)) {
        ta_pathf(out, cap, "%s", dir);
        return TA_OK;
    }
    return fail(TA_EINPUT, "--model %s: not a model directory (no config.json) and %s", dir,
                err.msg);
}

/* ---- prompts ---------------------------------------------------------------------------- */
typedef struct {
    char **text;  /* (n) prompt strings */
    long *line;   /* (n) 1-based line in the file (0 for --prompt) */
    int **ids;    /* (n) [BOS] + encode(text) */
    int *lens;    /* (n) */
    int n, cap;
} Prompts;

static void prompts_free(Prompts *p) {
    for (int i = 0; i < p->n; i++) {
        free(p->text[i]);
        free(p->ids ? p->ids[i] : NULL);
    }
    free(p->text);
    free(p->line);
    free(p->ids);
    free(p->lens);
    memset(p, 0, sizeof *p);
}

static void prompts_add(Prompts *p, const char *s, size_t len, long line) {
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        char **t = ta_malloc(sizeof(char *) * (size_t)p->cap, "prompts");
        long *l = ta_malloc(sizeof(long) * (size_t)p->cap, "prompts");
        if (p->n) {
            memcpy(t, p->text, sizeof(char *) * (size_t)p->n);
            memcpy(l, p->line, sizeof(long) * (size_t)p->n);
        }
        free(p->text);
        free(p->line);
        p->text = t;
        p->line = l;
    }
    char *c = ta_malloc(len + 1, "prompt");
    memcpy(c, s, len);
    c[len] = '\0';
    p->text[p->n] = c;
    p->line[p->n++] = line;
}

/* Reads every {"prompt": str} line of path (the shared JSONL reader: blank lines skipped,
 * errors FILE:LINE[:COL]). */
static int read_prompts(Prompts *p, const char *path) {
    JsonlReader r;
    TaError err = {0};
    int rc = jsonl_open(&r, path, &err);
    const char *line;
    size_t len;
    int got;
    while (rc == TA_OK && (got = jsonl_next(&r, &line, &len, &err)) == 1) {
        cJSON *obj = NULL;
        if ((rc = jsonl_parse_object(path, r.lineno, line, len, &obj, &err)) != TA_OK) break;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "prompt");
        if (!v)
            rc = ta_err(&err, TA_EINPUT, "%s:%ld: missing \"prompt\" field", path, r.lineno);
        else if (!cJSON_IsString(v) || !v->valuestring)
            rc = ta_err(&err, TA_EINPUT, "%s:%ld: \"prompt\" must be a string, found %s", path,
                        r.lineno, jsonl_type_name(v));
        else
            prompts_add(p, v->valuestring, strlen(v->valuestring), r.lineno);
        cJSON_Delete(obj);
    }
    if (rc == TA_OK && got < 0) rc = err.code ? err.code : TA_ERUNTIME;
    jsonl_close(&r);
    if (rc != TA_OK) return fail(rc, "%s", err.msg);
    if (p->n == 0) return fail(TA_EINPUT, "%s: no prompts (empty file)", path);
    return TA_OK;
}

/* Tokenizes every prompt; returns the longest length in *maxlen. */
static int encode_prompts(Prompts *p, const Tokenizer *tok, const char *src, int max_seq_len,
                          int *maxlen) {
    p->ids = ta_calloc(sizeof(int *) * (size_t)p->n, "prompt ids");
    p->lens = ta_calloc(sizeof(int) * (size_t)p->n, "prompt lengths");
    *maxlen = 1;
    for (int i = 0; i < p->n; i++) {
        char where[4200];
        if (p->line[i] > 0) snprintf(where, sizeof where, "%s:%ld", src, p->line[i]);
        else snprintf(where, sizeof where, "--prompt");
        TaError err = {0};
        if (sample_encode_prompt(tok, p->text[i], &p->ids[i], &p->lens[i], &err) != TA_OK)
            return fail(TA_EINPUT, "%s: %s", where, err.msg);
        if (p->lens[i] < 1)
            return fail(TA_EINPUT, "%s: empty prompt (and the tokenizer has no BOS to start from)",
                        where);
        if (p->lens[i] >= max_seq_len)
            return fail(TA_EINPUT,
                        "%s: the prompt has %d tokens (BOS included) but the model's "
                        "max_seq_len is %d: at most %d leave room to generate (prompts are not "
                        "truncated)", where, p->lens[i], max_seq_len, max_seq_len - 1);
        if (p->lens[i] > *maxlen) *maxlen = p->lens[i];
    }
    return TA_OK;
}

/* ---- progress ------------------------------------------------------------------------- */
typedef struct {
    int show, tty;
    double t0, last;
    long prompts_done_before, prompts_total; /* prompts finished in earlier chunks */
    long tokens_before, tokens;
    int n;
} Progress;

static void progress_print(Progress *pr, long seqs_done, int final) {
    if (!pr->show) return;
    double now = ta_now();
    if (!final && now - pr->last < (pr->tty ? 0.25 : 5.0)) return;
    pr->last = now;
    double dt = now - pr->t0;
    long tok = pr->tokens_before + pr->tokens;
    fprintf(stderr, "%ssample: %ld/%ld prompts | %ld/%ld responses | %ld tokens | %.1f tok/s | %.1fs%s",
            pr->tty ? "\r" : "", pr->prompts_done_before + seqs_done / pr->n, pr->prompts_total,
            pr->prompts_done_before * pr->n + seqs_done, pr->prompts_total * pr->n, tok,
            dt > 0 ? (double)tok / dt : 0.0, dt, pr->tty && !final ? "   " : "\n");
    fflush(stderr);
}

static void on_progress(void *ctx, long seqs_done, long seqs_total, long tokens) {
    Progress *pr = ctx;
    (void)seqs_total;
    pr->tokens = tokens;
    progress_print(pr, seqs_done, 0);
}

/* ---- output ----------------------------------------------------------------------------- */
static int write_line(FILE *f, const char *prompt, const SampleResult *r, int n, int ids) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "prompt", prompt);
    cJSON *arr = cJSON_AddArrayToObject(o, "responses");
    for (int j = 0; j < n; j++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "text", r[j].text ? r[j].text : "");
        cJSON_AddNumberToObject(x, "num_tokens", r[j].num_tokens);
        cJSON_AddStringToObject(x, "finish_reason", sample_finish_name(r[j].finish));
        if (ids) cJSON_AddItemToObject(x, "ids", cJSON_CreateIntArray(r[j].ids, r[j].num_tokens));
        cJSON_AddItemToArray(arr, x);
    }
    char *s = cJSON_PrintUnformatted(o);
    TA_ASSERT(s != NULL);
    int ok = fputs(s, f) >= 0 && fputc('\n', f) != EOF;
    free(s);
    cJSON_Delete(o);
    return ok;
}

/* ---- --bench ---------------------------------------------------------------------------- */
static int run_bench(const GPT2 *m, SampleOptions *o, int prompt_len, int reps) {
    const GPT2Config *c = &m->config;
    if (prompt_len < 1 || prompt_len + o->max_new_tokens > c->max_seq_len)
        return fail(TA_EINPUT, "--bench: --prompt-len %d + --max-new-tokens %d must fit in "
                    "max_seq_len %d", prompt_len, o->max_new_tokens, c->max_seq_len);
    o->temperature = 0.0;
    o->eos_id = -1;
    o->n = 1;
    o->n_stop = 0;
    const int B = o->batch;
    int **ids = ta_malloc(sizeof(int *) * (size_t)B, "bench prompts");
    int *lens = ta_malloc(sizeof(int) * (size_t)B, "bench prompts");
    TaRng r;
    ta_rng_seed(&r, o->seed);
    for (int b = 0; b < B; b++) {
        ids[b] = ta_malloc(sizeof(int) * (size_t)prompt_len, "bench prompt");
        lens[b] = prompt_len;
        for (int t = 0; t < prompt_len; t++) ids[b][t] = (int)ta_rng_below(&r, (uint64_t)c->vocab_size);
    }
    SampleGen *g = NULL;
    TaError err = {0};
    int rc = sample_gen_init(&g, m, NULL, o, prompt_len, &err);
    SampleResult *res = ta_calloc(sizeof *res * (size_t)B, "results");
    /* a warm-up (pages the weights in, starts the threads), then `reps` timed runs; the
     * fastest is reported (other processes only ever slow a run down) */
    double decode_s = 0.0, total = 0.0, best_decode = 1e300, best_total = 1e300;
    for (int k = 0; k <= reps && rc == TA_OK; k++) {
        for (int b = 0; b < B; b++) sample_result_free(&res[b]);
        double t0 = ta_now();
        rc = sample_gen_run(g, (const int *const *)ids, lens, B, 0, res, &decode_s, &err);
        total = ta_now() - t0;
        if (k > 0 && decode_s < best_decode) best_decode = decode_s, best_total = total;
    }
    decode_s = best_decode;
    total = best_total;
    if (rc != TA_OK) {
        fail(rc, "%s", err.msg);
    } else {
        long tokens = 0;
        for (int b = 0; b < B; b++) tokens += res[b].num_tokens;
        long decode_tokens = tokens - B; /* the first token of each comes from the prefill */
        printf("{\"batch\": %d, \"prompt_len\": %d, \"new_tokens\": %d, \"threads\": %d, "
               "\"L\": %d, \"NH\": %d, \"C\": %d, \"V\": %d, \"reps\": %d, \"prefill_s\": %.6f, "
               "\"decode_s\": %.6f, \"decode_tok_per_s\": %.2f, \"total_tok_per_s\": %.2f, "
               "\"precision\": \"%s\", \"first_ids\": [%d, %d, %d]}\n",
               B, prompt_len, o->max_new_tokens, ta_get_threads(), c->n_layer, c->n_head,
               c->d_model, c->vocab_size, reps, total - decode_s, decode_s,
               decode_s > 0 ? (double)decode_tokens / decode_s : 0.0,
               total > 0 ? (double)tokens / total : 0.0, precision_name(m->precision), res[0].ids[0],
               res[0].num_tokens > 1 ? res[0].ids[1] : -1, res[0].num_tokens > 2 ? res[0].ids[2] : -1);
    }
    for (int b = 0; b < B; b++) {
        sample_result_free(&res[b]);
        free(ids[b]);
    }
    free(res);
    free(ids);
    free(lens);
    sample_gen_free(g);
    return rc;
}

int cmd_sample(int argc, char **argv) {
    const char *model_arg = NULL, *tok_arg = NULL, *prompt = NULL, *prompts_file = NULL,
               *out_path = NULL;
    int quiet = 0, bench = 0, chunk = 0, with_ids = 0, bench_reps = 3;
    int precision = PRECISION_FP32, backend = BACKEND_AUTO;
    long threads = 0, prompt_len = 16, v = 0;
    SampleOptions o;
    sample_options_default(&o);
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            fputs(HELP, stdout);
            return TA_OK;
        }
        if (!strcmp(k, "--quiet")) { quiet = 1; continue; }
        if (!strcmp(k, "--bench")) { bench = 1; continue; }
        if (!strcmp(k, "--ids")) { with_ids = 1; continue; }
        if (strncmp(k, "--", 2)) return fail(TA_EINPUT, "unexpected argument \"%s\" (see --help)", k);
        if (i + 1 >= argc) return fail(TA_EINPUT, "%s needs a value (see --help)", k);
        const char *val = argv[++i];
        int rc = TA_OK;
        if (!strcmp(k, "--model")) model_arg = val;
        else if (!strcmp(k, "--tokenizer")) tok_arg = val;
        else if (!strcmp(k, "--prompt")) prompt = val;
        else if (!strcmp(k, "--prompts")) prompts_file = val;
        else if (!strcmp(k, "--out")) out_path = val;
        else if (!strcmp(k, "--n")) { if (!(rc = parse_int(k, val, 1, 1000000, &v))) o.n = (int)v; }
        else if (!strcmp(k, "--max-new-tokens")) { if (!(rc = parse_int(k, val, 1, 1 << 24, &v))) o.max_new_tokens = (int)v; }
        else if (!strcmp(k, "--min-new-tokens")) { if (!(rc = parse_int(k, val, 0, 1 << 24, &v))) o.min_new_tokens = (int)v; }
        else if (!strcmp(k, "--top-k")) { if (!(rc = parse_int(k, val, -1000000000L, 1000000000L, &v))) o.top_k = (int)v; }
        else if (!strcmp(k, "--batch")) { if (!(rc = parse_int(k, val, 1, 4096, &v))) o.batch = (int)v; }
        else if (!strcmp(k, "--threads")) rc = parse_int(k, val, 0, 1024, &threads);
        else if (!strcmp(k, "--prompt-len")) rc = parse_int(k, val, 1, 1 << 24, &prompt_len);
        else if (!strcmp(k, "--bench-reps")) { if (!(rc = parse_int(k, val, 1, 1000, &v))) bench_reps = (int)v; }
        else if (!strcmp(k, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(val, &end, 10);
            if (end == val || *end || errno || val[0] == '-')
                return fail(TA_EINPUT, "--seed \"%s\": expected a non-negative integer", val);
            o.seed = s;
        }
        else if (!strcmp(k, "--precision")) {
            if ((precision = precision_parse(val)) < 0)
                return fail(TA_EINPUT, "--precision \"%s\": expected fp32 or bf16", val);
        }
        else if (!strcmp(k, "--backend")) {
            if ((backend = backend_kind_parse(val)) < 0)
                return fail(TA_EINPUT, "--backend \"%s\": expected auto, openblas or onednn", val);
        }
        else if (!strcmp(k, "--temperature")) rc = parse_double(k, val, &o.temperature);
        else if (!strcmp(k, "--top-p")) rc = parse_double(k, val, &o.top_p);
        else if (!strcmp(k, "--min-p")) rc = parse_double(k, val, &o.min_p);
        else if (!strcmp(k, "--repetition-penalty")) rc = parse_double(k, val, &o.repetition_penalty);
        else if (!strcmp(k, "--presence-penalty")) rc = parse_double(k, val, &o.presence_penalty);
        else if (!strcmp(k, "--stop")) {
            if (o.n_stop == SAMPLE_MAX_STOP) return fail(TA_EINPUT, "at most %d --stop strings", SAMPLE_MAX_STOP);
            if (!val[0]) return fail(TA_EINPUT, "--stop: empty string");
            o.stop[o.n_stop++] = val;
        }
        else return fail(TA_EINPUT, "unknown option \"%s\" (see --help)", k);
        if (rc != TA_OK) return rc;
    }
    if (!model_arg) return fail(TA_EINPUT, "--model DIR is required (see --help)");
    if (!bench && !!prompt == !!prompts_file)
        return fail(TA_EINPUT, "exactly one of --prompt TEXT and --prompts FILE.jsonl is required");
    TaError err = {0};
    if (sample_options_check(&o, &err) != TA_OK) return fail(TA_EINPUT, "%s", err.msg);
    ta_set_threads((int)threads);

    char dir[4096];
    int rc = resolve_model(model_arg, dir, sizeof dir);
    if (rc != TA_OK) return rc;
    GPT2 m;
    memset(&m, 0, sizeof m);
    if (model_load_dir(&m, dir, 0, &err) != TA_OK) return fail(err.code ? err.code : TA_EINPUT, "%s", err.msg);
    if (gpt2_set_compute(&m, (BackendKind)backend, (Precision)precision, &err) != TA_OK) {
        gpt2_free(&m);
        /* the message names model.precision / model.backend: say which flags those are */
        return fail(TA_EINPUT, "--precision %s --backend %s: %s", precision_name((Precision)precision),
                    backend_kind_name((BackendKind)backend), err.msg);
    }
    if (bench) {
        rc = run_bench(&m, &o, (int)prompt_len, bench_reps);
        gpt2_free(&m);
        return rc;
    }

    Tokenizer *tok = NULL;
    Prompts P = {0};
    SampleGen *g = NULL;
    SampleResult *res = NULL;
    FILE *out = NULL;
    char tmp[4200] = "";
    char tpath[4200];
    if (tok_arg) ta_pathf(tpath, sizeof tpath, "%s", tok_arg);
    else ta_pathf(tpath, sizeof tpath, "%s/tokenizer.model", dir);
    if (!tok_arg && !file_exists(tpath)) {
        rc = fail(TA_EINPUT, "no tokenizer: %s does not exist (pass --tokenizer PATH)", tpath);
        goto end;
    }
    if (tokenizer_load(&tok, tpath, &err) != TA_OK) {
        rc = fail(TA_EINPUT, "%s", err.msg);
        goto end;
    }
    if (prompt) prompts_add(&P, prompt, strlen(prompt), 0);
    else if ((rc = read_prompts(&P, prompts_file)) != TA_OK) goto end;
    int maxlen;
    rc = encode_prompts(&P, tok, prompts_file ? prompts_file : "--prompt", m.config.max_seq_len,
                        &maxlen);
    if (rc != TA_OK) goto end;
    if (sample_gen_init(&g, &m, tok, &o, maxlen, &err) != TA_OK) {
        rc = fail(err.code, "%s", err.msg);
        goto end;
    }
    if (!quiet) {
        const GPT2Config *c = &m.config;
        fprintf(stderr, "sample: %s: GPT-2 L=%d NH=%d C=%d V=%d max_seq_len=%d (%.2fM params)\n"
                "sample: %d prompt%s x %d response%s, batch %d, "
                "cache %d positions (%.1f MiB), %d threads, %s matmuls\n", dir, c->n_layer, c->n_head,
                c->d_model, c->vocab_size, c->max_seq_len, (double)m.num_params / 1e6, P.n,
                P.n == 1 ? "" : "s",
                o.n, o.n == 1 ? "" : "s", o.batch,
                maxlen + o.max_new_tokens < m.config.max_seq_len ? maxlen + o.max_new_tokens
                                                                 : m.config.max_seq_len,
                (double)sample_gen_bytes(g) / (1024.0 * 1024.0), ta_get_threads(),
                precision_name(m.precision));
    }
    int jsonl_out = out_path || prompts_file;
    if (out_path) {
        ta_pathf(tmp, sizeof tmp, "%s.tmp", out_path);
        out = fopen(tmp, "wb");
        if (!out) {
            rc = fail(TA_ERUNTIME, "%s: cannot write: %s", tmp, strerror(errno));
            tmp[0] = '\0';
            goto end;
        }
    } else {
        out = stdout;
    }
    Progress pr = {.show = !quiet, .tty = isatty(2), .t0 = ta_now(), .prompts_total = P.n, .n = o.n};
    pr.last = pr.t0;
    sample_gen_set_progress(g, on_progress, &pr);
    /* chunks of prompts: enough sequences to keep the batch full most of the time */
    chunk = (8 * o.batch + o.n - 1) / o.n;
    res = ta_calloc(sizeof *res * (size_t)chunk * o.n, "results");
    double decode_total = 0.0;
    for (int first = 0; first < P.n; first += chunk) {
        int cnt = P.n - first < chunk ? P.n - first : chunk;
        double dec = 0.0;
        pr.tokens = 0;
        rc = sample_gen_run(g, (const int *const *)P.ids + first, P.lens + first, cnt, first, res,
                            &dec, &err);
        if (rc != TA_OK) {
            fail(rc, "%s", err.msg);
            goto end;
        }
        decode_total += dec;
        pr.tokens_before += pr.tokens;
        pr.tokens = 0;
        pr.prompts_done_before += cnt;
        for (int i = 0; i < cnt; i++) {
            const SampleResult *r = res + (size_t)i * o.n;
            int ok = 1;
            if (jsonl_out) {
                ok = write_line(out, P.text[first + i], r, o.n, with_ids);
            } else {
                for (int j = 0; j < o.n && ok; j++) {
                    if (o.n > 1) ok = fprintf(out, "--- response %d ---\n", j + 1) > 0;
                    ok = ok && fputs(r[j].text, out) >= 0 && fputc('\n', out) != EOF;
                }
            }
            if (!ok) {
                rc = fail(TA_ERUNTIME, "%s: write failed: %s", out_path ? tmp : "stdout",
                          strerror(errno));
                goto end;
            }
        }
        for (size_t i = 0; i < (size_t)cnt * o.n; i++) sample_result_free(&res[i]);
        fflush(out);
    }
    progress_print(&pr, 0, 1);
    if (!quiet && decode_total > 0)
        fprintf(stderr, "sample: decode %.1f tok/s (decode steps + sampling only)\n",
                (double)(pr.tokens_before - (long)P.n * o.n) / decode_total);
    if (out_path) {
        int bad = fflush(out) != 0 || fsync(fileno(out)) != 0;
        bad |= fclose(out) != 0;
        out = NULL;
        if (bad || rename(tmp, out_path) != 0) {
            rc = fail(TA_ERUNTIME, "%s: cannot write: %s", out_path, strerror(errno));
            goto end;
        }
        tmp[0] = '\0';
        if (!quiet) fprintf(stderr, "sample: wrote %s\n", out_path);
    }
    rc = TA_OK;
end:
    if (out && out != stdout) fclose(out);
    if (tmp[0]) unlink(tmp);
    if (res) {
        for (size_t i = 0; i < (size_t)chunk * o.n; i++)
            sample_result_free(&res[i]);
        free(res);
    }
    sample_gen_free(g);
    prompts_free(&P);
    tokenizer_free(tok);
    gpt2_free(&m);
    return rc;
}
