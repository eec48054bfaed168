/* cmd_bench.c — `tinyalign bench`: speed of the training step (train_step, the one `train`
 * runs: reference forward, forward, loss heads, backward, clip, AdamW) for a GPT-2 shape
 * on random tokens, with MFU, memory arithmetic vs peak RSS and a per-kernel time
 * breakdown. Used by `make bench` (tools/bench.sh), which puts PyTorch's number for the
 * same model next to it. A benchmark, never a test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "tinyalign/cli.h"
#include "tinyalign/common.h"
#include "tinyalign/config.h"
#include "tinyalign/data.h"
#include "tinyalign/kernels.h"
#include "tinyalign/model.h"
#include "tinyalign/objective.h"
#include "tinyalign/optim.h"
#include "tinyalign/reference.h"
#include "tinyalign/train.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: tinyalign bench [--layers L --heads NH --dim C --vocab V --max-seq T]\n"
            "                       [--batch B] [--seq T] [--steps N] [--warmup N]\n"
            "                       [--threads N] [--peak-gflops G] [--json]\n"
            "                       [--objective pretrain|sft|dpo] [--reference snapshot|cached]\n"
            "Times N training steps (forward, backward, clip, AdamW) of a randomly initialised\n"
            "GPT-2 on random tokens after N warm-up steps. Defaults: the 'small' shape\n"
            "(L=6 NH=6 C=384 V=8192, B=8 T=256), 10 steps, 2 warm-up, all cores, peak 270.\n"
            "FLOPs per token = 6 * (12 L C^2 + Vp C) + 12 L T C (fwd+bwd, PaLM convention).\n"
            "--objective sft|dpo times the loss head of that objective on the same B x T tokens\n"
            "(second half of each row is the completion; dpo: B/2 pairs), with the reference\n"
            "as a frozen snapshot (one extra forward) or cached log-probs (none).\n");
}

static int parse_int(const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0 || v > 1 << 30) return 0;
    *out = (int)v;
    return 1;
}

/* The bench's rows: one batch of random tokens, the second half of every row is the
 * completion (sft, dpo); for dpo the pair layout, example id = pair index. */
static void bench_batch_init(Batch *b, const GPT2Config *cfg, int B, int T, int pairs) {
    batch_alloc(b, B, T);
    b->B = B;
    b->T = T;
    b->n_pairs = pairs ? B / 2 : 0;
    TaRng rng;
    ta_rng_seed(&rng, 7);
    int *tok = ta_malloc(sizeof(int) * (size_t)B * (T + 1), "tokens");
    for (size_t i = 0; i < (size_t)B * (T + 1); i++) tok[i] = (int)ta_rng_below(&rng, cfg->vocab_size);
    for (int row = 0; row < B; row++) {
        for (int t = 0; t < T; t++) {
            b->tokens[row * T + t] = tok[row * (T + 1) + t];
            b->targets[row * T + t] = tok[row * (T + 1) + t + 1];
            b->loss_mask[row * T + t] = t >= T / 2;
        }
        b->lengths[row] = T;
        b->weights[row] = 1.0f;
        b->example_ids[row] = pairs ? row % (B / 2) : row;
    }
    free(tok);
}

/* Copies the bench batch into b: every micro-batch of every step (StepSource.fill), and
 * the one batch of examples the cached reference computes (RefExampleSet.fill: all pairs,
 * ids 0..P-1, which is the batch itself). */
static void bench_copy(const Batch *src, Batch *b) {
    size_t n = (size_t)src->B * src->T;
    memcpy(b->tokens, src->tokens, n * sizeof(int));
    memcpy(b->targets, src->targets, n * sizeof(int));
    memcpy(b->loss_mask, src->loss_mask, n);
    memcpy(b->lengths, src->lengths, (size_t)src->B * sizeof(int));
    memcpy(b->weights, src->weights, (size_t)src->B * sizeof(float));
    memcpy(b->example_ids, src->example_ids, (size_t)src->B * sizeof(int64_t));
    b->B = src->B;
    b->T = src->T;
    b->n_pairs = src->n_pairs;
}

static int bench_fill(void *ctx, int k, Batch *b, TaError *err) {
    (void)k;
    (void)err;
    bench_copy(ctx, b);
    return TA_OK;
}

static void bench_fill_examples(const void *id, const uint32_t *ids, int n, Batch *b) {
    const Batch *src = id;
    TA_ASSERT(n == src->n_pairs && ids[0] == 0);
    bench_copy(src, b);
}

int cmd_bench(int argc, char **argv) {
    GPT2Config cfg = {.n_layer = 6, .n_head = 6, .d_model = 384, .vocab_size = 8192, .max_seq_len = 256};
    int B = 8, T = 256, steps = 10, warmup = 2, threads = 0, json = 0;
    const char *objective = "pretrain", *refmode = "snapshot";
    double peak = 270.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return TA_OK; }
        if (!strcmp(a, "--json")) { json = 1; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "tinyalign bench: %s needs a value\n", a); return TA_EINPUT; }
        const char *v = argv[++i];
        int ok = 1;
        if (!strcmp(a, "--layers")) ok = parse_int(v, &cfg.n_layer);
        else if (!strcmp(a, "--heads")) ok = parse_int(v, &cfg.n_head);
        else if (!strcmp(a, "--dim")) ok = parse_int(v, &cfg.d_model);
        else if (!strcmp(a, "--vocab")) ok = parse_int(v, &cfg.vocab_size);
        else if (!strcmp(a, "--max-seq")) ok = parse_int(v, &cfg.max_seq_len);
        else if (!strcmp(a, "--batch")) ok = parse_int(v, &B);
        else if (!strcmp(a, "--seq")) ok = parse_int(v, &T);
        else if (!strcmp(a, "--steps")) ok = parse_int(v, &steps);
        else if (!strcmp(a, "--warmup")) ok = (warmup = atoi(v)) >= 0;
        else if (!strcmp(a, "--threads")) ok = parse_int(v, &threads);
        else if (!strcmp(a, "--peak-gflops")) ok = (peak = atof(v)) > 0;
        else if (!strcmp(a, "--objective")) ok = !strcmp(objective = v, "pretrain") || !strcmp(v, "sft") || !strcmp(v, "dpo");
        else if (!strcmp(a, "--reference")) ok = !strcmp(refmode = v, "snapshot") || !strcmp(v, "cached");
        else { fprintf(stderr, "tinyalign bench: unknown option %s (see --help)\n", a); return TA_EINPUT; }
        if (!ok) { fprintf(stderr, "tinyalign bench: bad value \"%s\" for %s\n", v, a); return TA_EINPUT; }
    }
    if (T > cfg.max_seq_len) cfg.max_seq_len = T;
    TaError err;
    if (gpt2_config_check(&cfg, &err) != TA_OK) { fprintf(stderr, "tinyalign bench: %s\n", err.msg); return TA_EINPUT; }
    ta_set_threads(threads);

    /* the objective; dpo: B/2 pairs (rows [0,P) chosen, [P,2P) rejected) */
    CfgObjective obj = {.type = CFG_OBJ_PRETRAIN, .beta = 0.1, .odds_clamp = 1e-6,
                        .reference = {.mode = !strcmp(refmode, "cached") ? CFG_REF_CACHED
                                                                          : CFG_REF_SNAPSHOT,
                                      .path = "", .cache_dir = ""}};
    if (!strcmp(objective, "sft")) obj.type = CFG_OBJ_SFT;
    if (!strcmp(objective, "dpo")) obj.type = CFG_OBJ_DPO;
    if (obj.type == CFG_OBJ_DPO && B % 2) { fprintf(stderr, "tinyalign bench: dpo needs an even --batch\n"); return TA_EINPUT; }
    Batch rows;
    bench_batch_init(&rows, &cfg, B, T, obj.type == CFG_OBJ_DPO);

    GPT2 m;
    gpt2_init(&m, &cfg, 1);
    gpt2_init_weights(&m, 1337);
    AdamWConfig oc = {.lr = 1e-4, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1,
                      .schedule = SCHED_CONSTANT, .max_steps = steps + warmup, .grad_clip = 1.0};
    AdamW opt;
    train_optim_init(&opt, &oc, &m);
    AuxModels aux = {0};
    TrainStep step;
    StepSetup ss = {.model = &m, .optim = &opt, .objective = &obj, .aux = &aux, .K = 1,
                    .rows = B, .T = T};
    train_step_init(&step, &ss);
    /* the reference as in training: a snapshot of the initial policy (one more forward on
     * borrowed activations), or log-probs cached once (a table look-up per step) */
    RefExampleSet set = {.id = &rows, .n = (size_t)rows.n_pairs, .rows = 2,
                         .fill = bench_fill_examples};
    AuxSetup as = {.cfg = &obj, .policy = &m, .sets = &set, .n_sets = 1, .max_rows = B, .max_T = T};
    int rc = aux_models_init(&aux, &as, &err);
    StepSource src = {.fill = bench_fill, .ctx = &rows, .set = &rows};
    GPT2Profile prof;
    double t_adam = 0, t_total = 0, t_norm = 0;
    float loss = 0;
    for (int s = 0; s < warmup + steps && rc == TA_OK; s++) {
        if (s == warmup) {
            memset(&prof, 0, sizeof prof);
            m.prof = &prof;
            t_adam = t_norm = 0;
        }
        double t0 = ta_now();
        StepResult r;
        rc = train_step(&step, &src, s, &r, &err);
        if (rc == TA_OK && r.nonfinite) rc = ta_err(&err, TA_ERUNTIME, "non-finite step: %s", r.why);
        loss = (float)r.loss;
        if (s >= warmup) { t_total += ta_now() - t0; t_adam += r.seconds_update; t_norm += r.seconds_norm; }
    }
    if (rc != TA_OK) {
        fprintf(stderr, "tinyalign bench: %s\n", err.msg);
        aux_models_free(&aux); train_step_free(&step); adamw_free(&opt); gpt2_free(&m);
        batch_free(&rows);
        return rc;
    }
    double ms = 1000.0 * t_total / steps;
    double toks = (double)B * T * steps / t_total;
    double gflops = gpt2_flops_per_token(&cfg, T) * toks / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mib = ru.ru_maxrss / 1024.0;
    double arith_mib = (2.0 * m.num_params + 2.0 * opt.n + m.num_acts) * 4.0 / (1024.0 * 1024.0);
    char info[512], mem[512];
    ta_runtime_info(info, sizeof info);
    gpt2_memory_report(&m, mem, sizeof mem);
    if (json) {
        printf("{\"L\": %d, \"NH\": %d, \"C\": %d, \"V\": %d, \"B\": %d, \"T\": %d, \"threads\": %d, "
               "\"ms_per_step\": %.2f, \"tokens_per_s\": %.1f, \"gflops\": %.2f, \"mfu\": %.4f, "
               "\"peak_rss_mib\": %.1f, \"arith_mib\": %.1f, \"loss\": %.4f, \"objective\": \"%s\", \"reference\": \"%s\"}\n",
               cfg.n_layer, cfg.n_head, cfg.d_model, cfg.vocab_size, B, T, ta_get_threads(), ms, toks,
               gflops, gflops / peak, rss_mib, arith_mib, loss, objective, obj.type == CFG_OBJ_DPO ? refmode : "none");
    } else {
        printf("%s\n%s\n", info, mem);
        printf("objective: %s%s%s\n", objective, obj.type == CFG_OBJ_DPO ? ", reference " : "",
               obj.type == CFG_OBJ_DPO ? refmode : "");
        printf("tinyalign: L=%d NH=%d C=%d V=%d B=%d T=%d: %.1f ms/step, %.0f tok/s, %.1f GFLOP/s, "
               "MFU %.1f%% of %.0f GFLOP/s\n",
               cfg.n_layer, cfg.n_head, cfg.d_model, cfg.vocab_size, B, T, ms, toks, gflops,
               100 * gflops / peak, peak);
        printf("memory: peak RSS %.1f MiB vs params+grads+AdamW+activations %.1f MiB (%.2fx)\n",
               rss_mib, arith_mib, rss_mib / arith_mib);
        printf("where the time goes (per step):\n");
        double accounted = 0;
        for (int k = 0; k < NUM_KERNEL_KINDS; k++) {
            double f = prof.fwd[k] / steps * 1000, b = prof.bwd[k] / steps * 1000;
            accounted += f + b;
            printf("  %-20s fwd %7.2f ms  bwd %7.2f ms  %5.1f%%\n", gpt2_kernel_kind_name(k), f, b,
                   100 * (f + b) / ms);
        }
        printf("  %-20s %7.2f ms  %5.1f%%\n", "grad norm + clip", t_norm / steps * 1000, 100 * t_norm / t_total);
        printf("  %-20s %7.2f ms  %5.1f%%\n", "AdamW", t_adam / steps * 1000, 100 * t_adam / t_total);
        double other = ms - accounted - (t_adam + t_norm) / steps * 1000;
        printf("  %-20s %7.2f ms  %5.1f%%\n", "other (memsets, copies)", other, 100 * other / ms);
    }
    aux_models_free(&aux);
    train_step_free(&step);
    batch_free(&rows);
    adamw_free(&opt);
    gpt2_free(&m);
    return TA_OK;
}
