/* cmd_sample.c — `tinyalign sample`: generate completions from a model directory.
 *
 *   --prompt TEXT          one prompt; the completion goes to stdout as it continues
 *                          TEXT (with the space between them), so TEXT + output is the
 *                          whole text
 *   --prompts FILE.jsonl   one {"prompt": ...} object per line; writes the multi-response
 *                          format, one line per prompt, to --out (or stdout): {"prompt": ...,
 *                          <the prompt line's other fields, unchanged>, "responses":
 *                          [{"text": ..., "num_tokens": N, "finish_reason": "eos"|"length"|
 *                          "stop"}, ...]} — what `tinyalign curate` reads
 *   --template FILE|TEXT   fills each prompt into a template with the row's fields (sample.h)
 *                          before encoding; output lines keep "prompt" and add "filled_prompt"
 *   --bench                decode speed on random prompt ids (no tokenizer needed): one
 *                          JSON line with prefill / decode times and decode tokens/s
 *   --guide DIR            NADO-guided decoding: tokens drawn from log p + log sigmoid(r),
 *                          r the guide model's logits (its own KV cache beside the model's)
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

#include "tinyalign/backend.h"
#include "tinyalign/checkpoint.h"
#include "tinyalign/cli.h"
#include "tinyalign/common.h"
#include "tinyalign/data.h"
#include "tinyalign/model.h"
#include "tinyalign/model_io.h"
#include "tinyalign/sample.h"
#include "tinyalign/tokenizer.h"

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

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- prompts ----------------------------------------------------------------------------
 * --prompts FILE is a DS_PROMPTS dataset (data.h: the prompt may be empty, every other field
 * is kept and copied onto the output line); --prompt TEXT is one row without fields. */
typedef struct {
    Dataset *ds;  /* --prompts, else NULL */
    DataRow one;  /* --prompt */
    int **ids;    /* (n) [BOS] + encode(prompt, or its template fill) */
    int *lens;    /* (n) */
    char **filled; /* (n) --template: the filled prompts, else NULL */
    int n;
} Prompts;

static void prompts_row(const Prompts *p, int i, DataRow *r) {
    if (p->ds) dataset_row(p->ds, (size_t)i, r);
    else *r = p->one;
}

static void prompts_free(Prompts *p) {
    for (int i = 0; i < p->n && p->ids; i++) free(p->ids[i]);
    for (int i = 0; i < p->n && p->filled; i++) free(p->filled[i]);
    free(p->filled);
    free(p->ids);
    free(p->lens);
    dataset_free(p->ds);
    memset(p, 0, sizeof *p);
}

/* Fills the template (when there is one) and tokenizes every prompt (the generation prompt
 * of data.h); the longest length in *maxlen. */
static int encode_prompts(Prompts *p, const SampleTemplate *tmpl, const Tokenizer *tok,
                          int max_seq_len, int *maxlen) {
    p->ids = ta_calloc(sizeof(int *) * (size_t)p->n, "prompt ids");
    p->lens = ta_calloc(sizeof(int) * (size_t)p->n, "prompt lengths");
    if (tmpl) p->filled = ta_calloc(sizeof(char *) * (size_t)p->n, "filled prompts");
    *maxlen = 1;
    for (int i = 0; i < p->n; i++) {
        DataRow r;
        prompts_row(p, i, &r);
        TaError err = {0};
        if (tmpl && sample_template_fill(tmpl, r.prompt, p->ds ? &r.extra : NULL, &p->filled[i],
                                         &err) != TA_OK) {
            if (p->ds) return fail(TA_EINPUT, "%s:%ld: %s", dataset_path(p->ds), r.line, err.msg);
            return fail(TA_EINPUT, "--prompt: %s (--prompt has no fields; use --prompts FILE.jsonl)",
                        err.msg);
        }
        if (row_encode_generation_prompt(tok, tmpl ? p->filled[i] : r.prompt, max_seq_len,
                                         &p->ids[i], &p->lens[i], &err) != TA_OK) {
            if (p->ds) return fail(TA_EINPUT, "%s:%ld: %s", dataset_path(p->ds), r.line, err.msg);
            return fail(TA_EINPUT, "--prompt: %s", err.msg);
        }
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
/* {"prompt", <the prompt row's own fields>, "responses": [{"text", "num_tokens",
 * "finish_reason", "ids"?}], "filled_prompt"?} */
static int write_line(FILE *f, const DataRow *row, const SampleResult *r, int n, int ids,
                      const char *filled) {
    static const char *const skip[] = {"responses", "filled_prompt", NULL}; /* ours win */
    TaBuf b = {0};
    jsonl_put_row_start(&b, row, skip);
    for (int j = 0; j < n; j++) {
        ta_buf_puts(&b, j ? ",{\"text\":" : "{\"text\":");
        jsonl_put_string(&b, r[j].text ? r[j].text : "");
        ta_buf_printf(&b, ",\"num_tokens\":%d,\"finish_reason\":\"%s\"", r[j].num_tokens,
                      sample_finish_name(r[j].finish));
        if (ids) {
            ta_buf_puts(&b, ",\"ids\":[");
            for (int t = 0; t < r[j].num_tokens; t++)
                ta_buf_printf(&b, t ? ",%d" : "%d", r[j].ids[t]);
            ta_buf_puts(&b, "]");
        }
        ta_buf_puts(&b, "}");
    }
    jsonl_put_row_end(&b, row, skip);
    if (filled) { /* the template's fill, last: ...} -> ...,"filled_prompt":F} */
        b.n -= 2;
        ta_buf_puts(&b, ",\"filled_prompt\":");
        jsonl_put_string(&b, filled);
        ta_buf_puts(&b, "}\n");
    }
    int ok = fwrite(b.p, 1, b.n, f) == b.n;
    free(b.p);
    return ok;
}

/* ---- --bench ---------------------------------------------------------------------------- */
static int run_bench(const GPT2 *m, const GPT2 *guide, SampleOptions *o, int prompt_len,
                     int reps) {
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
    if (rc == TA_OK && guide) rc = sample_gen_set_guide(g, guide, &err);
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

static const char *ABOUT =
    "Generates completions of [BOS] + prompt with a KV cache, up to --batch sequences at a\n"
    "time (a finished one is replaced at once).\n";

static const char *NOTES =
    "Samplers apply in this order: min-new-tokens (EOS masked), repetition penalty,\n"
    "presence penalty, (greedy: argmax, lowest id on ties), temperature, top-k (ties ->\n"
    "lower id), top-p, min-p, draw.\n"
    "A response stops at EOS (finish_reason \"eos\"; counted in num_tokens, not in the\n"
    "text), after --max-new-tokens or at the model's max_seq_len (\"length\"), or at a stop\n"
    "string (\"stop\"). A prompt longer than max_seq_len - 1 tokens is an error (prompts\n"
    "are never truncated).\n"
    "A response's JSONL \"text\" is the completion on its own, as datasets hold a completion\n"
    "(encoding it gives back the generated tokens): the space between the prompt and its\n"
    "first word is not part of it; --prompt prints that space.\n"
    "exit status: 0 ok, 1 runtime failure, 2 bad arguments or input\n";

int cmd_sample(int argc, char **argv) {
    const char *model_arg = NULL, *tok_arg = NULL, *prompt = NULL, *prompts_file = NULL,
               *out_path = NULL, *template_arg = NULL, *guide_arg = NULL;
    int quiet = 0, bench = 0, chunk = 0, with_ids = 0, bench_reps, threads, prompt_len;
    int precision, backend;
    CliList stops;
    SampleOptions o;
    sample_options_default(&o);
    const CliOpt opts[] = {
        {.name = "--model", .kind = CLI_STR, .dst = &model_arg, .meta = "MODEL", .flags = CLI_REQUIRED,
         .help = CHECKPOINT_MODEL_HELP},
        {.name = "--tokenizer", .kind = CLI_STR, .dst = &tok_arg, .meta = "PATH",
         .help = "SentencePiece model (default: the model directory's tokenizer.model)"},
        {.name = "--prompt", .kind = CLI_STR, .dst = &prompt, .meta = "TEXT",
         .flags = CLI_TEXT,
         .help = "one prompt: prints the completion as it continues TEXT\n"
                 "(TEXT + output = the whole text; n > 1: each after a\n"
                 "\"--- response i ---\" line) unless --out is given"},
        {.name = "--prompts", .kind = CLI_STR, .dst = &prompts_file, .meta = "FILE.jsonl",
         .help = "one {\"prompt\": ...} object per line (its other fields are\n"
                 "copied onto its output line unchanged)"},
        {.name = "--template", .kind = CLI_STR, .dst = &template_arg, .meta = "FILE|TEXT",
         .help = "fill each prompt into a template before encoding: {prompt},\n"
                 "{FIELD} (a field of the prompt row), {{ and }} for braces;\n"
                 "the output keeps \"prompt\" and adds \"filled_prompt\""},
        {.name = "--out", .kind = CLI_STR, .dst = &out_path, .meta = "FILE.jsonl",
         .help = "write {\"prompt\", \"responses\": [{\"text\", \"num_tokens\",\n"
                 "\"finish_reason\"}]} lines (default for --prompts: stdout)"},
        {.name = "--guide", .kind = CLI_STR, .dst = &guide_arg, .meta = "MODEL",
         .help = "NADO-guided decoding: draw from log p + log sigmoid(r), r the\n"
                 "logits of this guide model (same vocabulary and max_seq_len;\n"
                 "Meng et al. 2022, arXiv 2205.14219)"},
        {.name = "--n", .kind = CLI_INT, .dst = &o.n, .meta = "N", .def = "1", .lo = 1, .hi = 1e6,
         .help = "responses per prompt"},
        {.name = "--max-new-tokens", .kind = CLI_INT, .dst = &o.max_new_tokens, .meta = "N", .def = "128",
         .lo = 1, .hi = 1 << 24, .help = "generated tokens per response"},
        {.name = "--min-new-tokens", .kind = CLI_INT, .dst = &o.min_new_tokens, .meta = "N", .def = "0",
         .lo = 0, .hi = 1 << 24,
         .help = "no EOS before N tokens (0: a response may be empty, \"\")"},
        {.name = "--temperature", .kind = CLI_DOUBLE, .dst = &o.temperature, .meta = "T", .def = "1",
         .help = ">= 0; 0 = greedy"},
        {.name = "--top-k", .kind = CLI_INT, .dst = &o.top_k, .meta = "K", .def = "0", .lo = -1e9, .hi = 1e9,
         .help = "keep the K most likely tokens; 0 = off"},
        {.name = "--top-p", .kind = CLI_DOUBLE, .dst = &o.top_p, .meta = "P", .def = "1",
         .help = "nucleus: smallest set with probability >= P, in (0, 1];\n1 = off"},
        {.name = "--min-p", .kind = CLI_DOUBLE, .dst = &o.min_p, .meta = "P", .def = "0",
         .help = "keep tokens with probability >= P * the top one, in [0, 1);\n0 = off"},
        {.name = "--repetition-penalty", .kind = CLI_DOUBLE, .dst = &o.repetition_penalty, .meta = "R",
         .def = "1",
         .help = "> 0: logits of tokens already in the sequence (prompt\n"
                 "included) divided by R if positive, multiplied if negative;\n1 = off"},
        {.name = "--presence-penalty", .kind = CLI_DOUBLE, .dst = &o.presence_penalty, .meta = "A",
         .def = "0", .help = "subtract A from tokens already generated; 0 = off"},
        {.name = "--stop", .kind = CLI_LIST, .dst = &stops, .meta = "STR",
         .flags = CLI_TEXT,
         .help = "stop when the text contains STR (cut before it); repeatable"},
        {.name = "--seed", .kind = CLI_U64, .dst = &o.seed, .meta = "S", .def = "0",
         .help = "response j of prompt i uses a stream seeded by (S, i, j):\n"
                 "results do not depend on --batch (<= 16) or --threads"},
        {.name = "--batch", .kind = CLI_INT, .dst = &o.batch, .meta = "B", .def = "8", .lo = 1, .hi = 4096,
         .help = "sequences decoded together"},
        {.name = "--threads", .kind = CLI_INT, .dst = &threads, .meta = "N", .def = "0", .lo = 0, .hi = 1024,
         .help = "threads; 0 = all cores"},
        {.name = "--precision", .kind = CLI_CHOICE, .dst = &precision, .choices = "fp32|bf16", .def = "fp32",
         .help = "matmuls in fp32, or bf16 with fp32 sums (the weights\n"
                 "rounded to bf16 once at load; needs AVX512-BF16 or AMX);\n"
                 "as model.precision"},
        {.name = "--backend", .kind = CLI_CHOICE, .dst = &backend, .choices = "auto|openblas|onednn",
         .def = "auto", .help = "matmul library, as model.backend (auto: openblas for\nfp32, onednn for bf16)"},
        {.name = "--ids", .kind = CLI_FLAG, .dst = &with_ids,
         .help = "also write each response's token ids (\"ids\": [...])"},
        {.name = "--quiet", .kind = CLI_FLAG, .dst = &quiet, .help = "no progress line"},
        {.name = "--bench", .kind = CLI_FLAG, .dst = &bench,
         .help = "time decoding on random prompts (greedy, no EOS)"},
        {.name = "--prompt-len", .kind = CLI_INT, .dst = &prompt_len, .meta = "P", .def = "16", .lo = 1,
         .hi = 1 << 24, .help = "--bench prompt length"},
        {.name = "--bench-reps", .kind = CLI_INT, .dst = &bench_reps, .meta = "R", .def = "3", .lo = 1,
         .hi = 1000, .help = "--bench: timed runs after the warm-up; the fastest\ndecode is reported"},
        {0}};
    const CliSpec spec = {
        .prog = "tinyalign sample",
        .usage = "tinyalign sample --model MODEL (--prompt TEXT | --prompts FILE.jsonl) [options]\n"
                 "       tinyalign sample --model MODEL --bench [--batch B] [--prompt-len P]\n"
                 "                        [--max-new-tokens N] [--threads N]",
        .about = ABOUT,
        .opts = opts,
        .notes = NOTES,
    };
    int rc = cli_parse(&spec, argc, argv);
    for (int i = 0; i < stops.n && rc == CLI_RUN; i++) {
        if (o.n_stop == SAMPLE_MAX_STOP) rc = fail(TA_EINPUT, "at most %d --stop strings", SAMPLE_MAX_STOP);
        else if (!stops.items[i][0]) rc = fail(TA_EINPUT, "--stop: empty string");
        else o.stop[o.n_stop++] = stops.items[i];
    }
    free(stops.items);
    if (rc != CLI_RUN) return rc;
    if (!bench && !!prompt == !!prompts_file)
        return fail(TA_EINPUT, "exactly one of --prompt TEXT and --prompts FILE.jsonl is required");
    TaError err = {0};
    if (sample_options_check(&o, &err) != TA_OK) return fail(TA_EINPUT, "%s", err.msg);
    ta_set_threads(threads);

    char dir[4096];
    if (checkpoint_resolve(model_arg, dir, sizeof dir, &err) != TA_OK)
        return fail(TA_EINPUT, "--model %s", err.msg);
    GPT2 m, gm;
    memset(&m, 0, sizeof m);
    memset(&gm, 0, sizeof gm);
    if (model_load_dir(&m, dir, 0, &err) != TA_OK) return fail(err.code ? err.code : TA_EINPUT, "%s", err.msg);
    if (guide_arg) {
        char gdir[4096];
        rc = checkpoint_resolve(guide_arg, gdir, sizeof gdir, &err);
        if (rc == TA_OK) rc = model_load_dir(&gm, gdir, 0, &err);
        if (rc == TA_OK && (gm.config.vocab_size != m.config.vocab_size ||
                            gm.config.max_seq_len != m.config.max_seq_len))
            rc = ta_err(&err, TA_EINPUT,
                        "the guide has vocab_size %d and max_seq_len %d, the model %s has %d and "
                        "%d: they must be equal", gm.config.vocab_size, gm.config.max_seq_len,
                        dir, m.config.vocab_size, m.config.max_seq_len);
        if (rc != TA_OK) {
            gpt2_free(&m);
            gpt2_free(&gm);
            return fail(err.code ? err.code : TA_EINPUT, "--guide %s: %s", guide_arg, err.msg);
        }
    }
    if (gpt2_set_compute(&m, (BackendKind)backend, (Precision)precision, &err) != TA_OK) {
        gpt2_free(&m);
        gpt2_free(&gm);
        /* the message names model.precision / model.backend: say which flags those are */
        return fail(TA_EINPUT, "--precision %s --backend %s: %s", precision_name((Precision)precision),
                    backend_kind_name((BackendKind)backend), err.msg);
    }
    if (bench) {
        rc = run_bench(&m, guide_arg ? &gm : NULL, &o, prompt_len, bench_reps);
        gpt2_free(&m);
        gpt2_free(&gm);
        return rc;
    }

    Tokenizer *tok = NULL;
    Prompts P = {0};
    SampleTemplate tmpl = {0};
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
    if (prompt) {
        P.one.prompt = prompt;
        P.n = 1;
    } else {
        if (dataset_load(&P.ds, prompts_file, DS_PROMPTS, NULL, NULL, &err) != TA_OK) {
            rc = fail(err.code, "%s", err.msg);
            goto end;
        }
        P.n = (int)dataset_num_rows(P.ds);
    }
    if (template_arg && sample_template_load(&tmpl, template_arg, &err) != TA_OK) {
        rc = fail(TA_EINPUT, "%s", err.msg);
        goto end;
    }
    int maxlen;
    rc = encode_prompts(&P, template_arg ? &tmpl : NULL, tok, m.config.max_seq_len, &maxlen);
    if (rc != TA_OK) goto end;
    if (sample_gen_init(&g, &m, tok, &o, maxlen, &err) != TA_OK) {
        rc = fail(err.code, "%s", err.msg);
        goto end;
    }
    if (guide_arg && sample_gen_set_guide(g, &gm, &err) != TA_OK) {
        rc = fail(err.code, "--guide %s: %s", guide_arg, err.msg);
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
        if (guide_arg)
            fprintf(stderr, "sample: guided by %s: GPT-2 L=%d NH=%d C=%d (log p + log sigmoid(r))\n",
                    guide_arg, gm.config.n_layer, gm.config.n_head, gm.config.d_model);
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
                DataRow row;
                prompts_row(&P, first + i, &row);
                ok = write_line(out, &row, r, o.n, with_ids, P.filled ? P.filled[first + i] : NULL);
            } else {
                for (int j = 0; j < o.n && ok; j++) {
                    if (o.n > 1) ok = fprintf(out, "--- response %d ---\n", j + 1) > 0;
                    /* as it continues the prompt: PROMPT + this line is the whole text */
                    ok = ok && fputs(r[j].continuation, out) >= 0 && fputc('\n', out) != EOF;
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
    sample_template_free(&tmpl);
    tokenizer_free(tok);
    gpt2_free(&m);
    gpt2_free(&gm);
    return rc;
}
