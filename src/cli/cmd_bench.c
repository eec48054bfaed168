/* cmd_bench.c — `tinyalign bench`: speed of the training step (train_step, the one `train`
 * runs: reference / guide / base forwards, forward, loss heads, backward, clip, AdamW) for a
 * GPT-2 shape on random tokens, with MFU, memory arithmetic vs peak RSS and a per-kernel
 * time breakdown. Used by `make bench` (tools/bench.sh), which puts PyTorch's number for
 * the same model next to it. A benchmark, never a test.
 * --objective attribute: sft + the attribute KL with a guide of the policy's shape (random
 * weights of another seed, written to a temporary model directory, as a run loads one);
 * --objective nado: the NADO head, the base a snapshot of the policy, labels 0/1
 * alternating. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "tinyalign/backend.h"
#include "tinyalign/cli.h"
#include "tinyalign/common.h"
#include "tinyalign/config.h"
#include "tinyalign/data.h"
#include "tinyalign/kernels.h"
#include "tinyalign/model.h"
#include "tinyalign/model_io.h"
#include "tinyalign/objective.h"
#include "tinyalign/optim.h"
#include "tinyalign/reference.h"
#include "tinyalign/train.h"

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
        b->labels[row] = (float)(row % 2);
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
    memcpy(b->labels, src->labels, (size_t)src->B * sizeof(float));
    memcpy(b->feeds, src->feeds, (size_t)src->B);
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

/* --forward-only: gpt2_forward of a model without gradients on random tokens, what a
 * scorer (logprob:) or a frozen reference costs per token. With --reward the model is a
 * reward model: the forward stops at the final LayerNorm (hidden_only, no LM head) and the
 * scalar head reads each row's last position, what the model: scorer costs per token. */
static int bench_forward(const GPT2Config *cfg_in, int B, int T, int steps, int warmup,
                         int reward, int json, BackendKind backend, Precision precision) {
    GPT2Config cfg = *cfg_in;
    cfg.score_head = reward;
    GPT2 m;
    gpt2_init(&m, &cfg, 0);
    gpt2_init_weights(&m, 1337);
    m.hidden_only = reward; /* before gpt2_alloc_acts: no (B,T,Vp) logits */
    TaError err = {0};
    int rc = gpt2_set_compute(&m, backend, precision, &err);
    if (rc != TA_OK) {
        fprintf(stderr, "tinyalign bench: %s\n", err.msg);
        gpt2_free(&m);
        return TA_EINPUT;
    }
    gpt2_alloc_acts(&m, B, T);
    Batch rows;
    bench_batch_init(&rows, &cfg, B, T, 0);
    int *last = ta_malloc(sizeof(int) * (size_t)B, "bench");
    float *rewards = ta_malloc(sizeof(float) * (size_t)B, "bench");
    for (int b = 0; b < B; b++) last[b] = T - 1;
    double t_total = 0;
    for (int s = 0; s < warmup + steps && rc == TA_OK; s++) {
        double t0 = ta_now();
        if (reward) {
            rc = gpt2_forward_hidden(&m, rows.tokens, B, T, &err);
            if (rc == TA_OK) gpt2_score_forward(&m, last, rewards);
        } else {
            rc = gpt2_forward(&m, rows.tokens, rows.targets, B, T, &err);
        }
        if (s >= warmup) t_total += ta_now() - t0;
    }
    if (rc == TA_OK) {
        double toks = (double)B * T * steps / t_total;
        const char *mode = reward ? "reward_forward" : "forward";
        if (json)
            printf("{\"mode\": \"%s\", \"L\": %d, \"NH\": %d, \"C\": %d, \"V\": %d, \"B\": %d, "
                   "\"T\": %d, \"threads\": %d, \"ms_per_forward\": %.2f, \"tokens_per_s\": %.1f, "
                   "\"precision\": \"%s\"}\n",
                   mode, cfg.n_layer, cfg.n_head, cfg.d_model, cfg.vocab_size, B, T,
                   ta_get_threads(), 1000.0 * t_total / steps, toks, precision_name(m.precision));
        else
            printf("tinyalign %s only: L=%d NH=%d C=%d V=%d B=%d T=%d: %.1f ms/forward, %.0f tok/s\n",
                   reward ? "reward-model forward" : "forward", cfg.n_layer, cfg.n_head,
                   cfg.d_model, cfg.vocab_size, B, T, 1000.0 * t_total / steps, toks);
    } else {
        fprintf(stderr, "tinyalign bench: %s\n", err.msg);
    }
    free(last);
    free(rewards);
    batch_free(&rows);
    gpt2_free(&m);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    GPT2Config cfg = {0};
    int B, T, steps, warmup, threads, json = 0, objective_i, refmode_i, precision, backend,
        lm_chunk, forward_only = 0, reward = 0;
    double peak;
    const CliOpt opts[] = {
        {.name = "--layers", .kind = CLI_INT, .dst = &cfg.n_layer, .meta = "L", .def = "6", .lo = 1, .hi = 1 << 30, .help = "transformer blocks"},
        {.name = "--heads", .kind = CLI_INT, .dst = &cfg.n_head, .meta = "NH", .def = "6", .lo = 1, .hi = 1 << 30, .help = "attention heads"},
        {.name = "--dim", .kind = CLI_INT, .dst = &cfg.d_model, .meta = "C", .def = "384", .lo = 1, .hi = 1 << 30, .help = "model width"},
        {.name = "--vocab", .kind = CLI_INT, .dst = &cfg.vocab_size, .meta = "V", .def = "8192", .lo = 1, .hi = 1 << 30, .help = "vocabulary size"},
        {.name = "--max-seq", .kind = CLI_INT, .dst = &cfg.max_seq_len, .meta = "T", .def = "256", .lo = 1, .hi = 1 << 30, .help = "positions (raised to --seq when smaller)"},
        {.name = "--batch", .kind = CLI_INT, .dst = &B, .meta = "B", .def = "8", .lo = 1, .hi = 1 << 30, .help = "rows per step"},
        {.name = "--seq", .kind = CLI_INT, .dst = &T, .meta = "T", .def = "256", .lo = 1, .hi = 1 << 30, .help = "tokens per row"},
        {.name = "--steps", .kind = CLI_INT, .dst = &steps, .meta = "N", .def = "10", .lo = 1, .hi = 1 << 30, .help = "timed steps"},
        {.name = "--warmup", .kind = CLI_INT, .dst = &warmup, .meta = "N", .def = "2", .lo = 0, .hi = 1 << 30, .help = "untimed steps first"},
        {.name = "--threads", .kind = CLI_INT, .dst = &threads, .meta = "N", .def = "0", .lo = 0, .hi = 1 << 30, .help = "threads; 0 = all cores"},
        {.name = "--peak-gflops", .kind = CLI_DOUBLE, .dst = &peak, .meta = "G", .def = "270", .lo = 1e-9, .hi = 1e12, .help = "the machine's peak, for MFU"},
        {.name = "--objective", .kind = CLI_CHOICE, .dst = &objective_i,
         .choices = "pretrain|sft|dpo|attribute|nado", .def = "pretrain",
         .help = "the loss head timed (sft / dpo: second half of each row is the\n"
                 "completion; dpo: B/2 pairs; attribute: sft + lambda KL toward a\n"
                 "guide of the same shape; nado: the NADO head + a base forward)"},
        {.name = "--reference", .kind = CLI_CHOICE, .dst = &refmode_i, .choices = "snapshot|cached", .def = "snapshot",
         .help = "dpo: the reference as a frozen snapshot (one extra forward)\n"
                 "or cached log-probs (none)"},
        {.name = "--precision", .kind = CLI_CHOICE, .dst = &precision, .choices = "fp32|bf16", .def = "fp32",
         .help = "matmul precision, as model.precision (bf16: bf16 inputs,\nfp32 sums)"},
        {.name = "--backend", .kind = CLI_CHOICE, .dst = &backend, .choices = "auto|openblas|onednn", .def = "auto",
         .help = "matmul library, as model.backend (auto: openblas for fp32,\nonednn for bf16)"},
        {.name = "--lm-chunk", .kind = CLI_INT, .dst = &lm_chunk, .meta = "R", .def = "0", .lo = 0, .hi = 1 << 30,
         .help = "LM head + loss over R token rows at a time, as\nmodel.lm_head_chunk (0: the whole batch)"},
        {.name = "--forward-only", .kind = CLI_FLAG, .dst = &forward_only,
         .help = "time the forward pass of a model without gradients (what\n"
                 "scoring and frozen models cost), not training steps"},
        {.name = "--reward", .kind = CLI_FLAG, .dst = &reward,
         .help = "with --forward-only: a reward model's forward (to the final\n"
                 "LayerNorm + the scalar head, no LM head), what model: scoring costs"},
        {.name = "--json", .kind = CLI_FLAG, .dst = &json, .help = "one JSON line instead of the report"},
        {0}};
    const CliSpec spec = {
        .prog = "tinyalign bench",
        .usage = "tinyalign bench [--layers L --heads NH --dim C --vocab V] [--batch B --seq T]\n"
                 "                       [--objective pretrain|sft|dpo] [options]",
        .about = "Times N training steps of a randomly initialised GPT-2 on random tokens after the\n"
                 "warm-up steps: the step `train` runs (reference forward, forward, loss heads,\n"
                 "backward, clip, AdamW). The defaults are the 'small' shape.\n"
                 "FLOPs per token = 6 * (12 L C^2 + Vp C) + 12 L T C (forward + backward,\n"
                 "the PaLM paper's convention: Chowdhery et al. 2022, arXiv 2204.02311).\n",
        .opts = opts,
    };
    int prc = cli_parse(&spec, argc, argv);
    if (prc != CLI_RUN) return prc;
    static const char *const OBJECTIVES[] = {"pretrain", "sft", "dpo", "attribute", "nado"},
                             *const REFMODES[] = {"snapshot", "cached"};
    const char *objective = OBJECTIVES[objective_i], *refmode = REFMODES[refmode_i];
    if (T > cfg.max_seq_len) cfg.max_seq_len = T;
    TaError err;
    if (gpt2_config_check(&cfg, &err) != TA_OK) { fprintf(stderr, "tinyalign bench: %s\n", err.msg); return TA_EINPUT; }
    ta_set_threads(threads);
    if (reward && !forward_only) {
        fprintf(stderr, "tinyalign bench: --reward needs --forward-only\n");
        return TA_EINPUT;
    }
    if (forward_only)
        return bench_forward(&cfg, B, T, steps, warmup, reward, json, (BackendKind)backend,
                             (Precision)precision);

    /* the objective; dpo: B/2 pairs (rows [0,P) chosen, [P,2P) rejected) */
    CfgObjective obj = {.type = CFG_OBJ_PRETRAIN, .beta = 0.1, .odds_clamp = 1e-6,
                        .reference = {.mode = !strcmp(refmode, "cached") ? CFG_REF_CACHED
                                                                          : CFG_REF_SNAPSHOT,
                                      .path = "", .cache_dir = ""}};
    if (!strcmp(objective, "sft") || !strcmp(objective, "attribute")) obj.type = CFG_OBJ_SFT;
    if (!strcmp(objective, "dpo")) obj.type = CFG_OBJ_DPO;
    if (!strcmp(objective, "nado")) obj.type = CFG_OBJ_NADO;
    obj.nado = (CfgNado){.base = "", .alpha_reg = 1.0};
    /* the attribute guide: a model directory of the policy's shape (other random weights) */
    char guide_dir[64] = "";
    if (!strcmp(objective, "attribute")) {
        snprintf(guide_dir, sizeof guide_dir, "/tmp/tinyalign-bench-guide-XXXXXX");
        GPT2 g;
        gpt2_init(&g, &cfg, 0);
        gpt2_init_weights(&g, 4242);
        int grc = mkdtemp(guide_dir) ? model_save_dir(&g, guide_dir, &err)
                                     : ta_err(&err, TA_ERUNTIME, "cannot create a temporary directory");
        gpt2_free(&g);
        if (grc != TA_OK) { fprintf(stderr, "tinyalign bench: %s\n", err.msg); return grc; }
        obj.attribute = (CfgAttribute){.guide = guide_dir, .lambda = 0.5, .base = ""};
    }
    if (obj.type == CFG_OBJ_DPO && B % 2) { fprintf(stderr, "tinyalign bench: dpo needs an even --batch\n"); return TA_EINPUT; }
    Batch rows;
    bench_batch_init(&rows, &cfg, B, T, obj.type == CFG_OBJ_DPO);

    GPT2 m;
    gpt2_init(&m, &cfg, 1);
    gpt2_init_weights(&m, 1337);
    if (gpt2_set_compute(&m, (BackendKind)backend, (Precision)precision, &err) != TA_OK) {
        fprintf(stderr, "tinyalign bench: %s\n", err.msg);
        gpt2_free(&m);
        batch_free(&rows);
        return TA_EINPUT;
    }
    AdamWConfig oc = {.lr = 1e-4, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1,
                      .schedule = SCHED_CONSTANT, .max_steps = steps + warmup, .grad_clip = 1.0};
    AdamW opt;
    train_optim_init(&opt, &oc, &m);
    AuxModels aux = {0};
    TrainStep step;
    StepSetup ss = {.model = &m, .optim = &opt, .objective = &obj, .aux = &aux, .K = 1,
                    .rows = B, .T = T};
    gpt2_set_lm_chunk(&m, lm_chunk);
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
    if (guide_dir[0]) { /* loaded: the directory is no longer needed */
        char p[128];
        snprintf(p, sizeof p, "%s/model.safetensors", guide_dir);
        remove(p);
        snprintf(p, sizeof p, "%s/config.json", guide_dir);
        remove(p);
        remove(guide_dir);
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
               "\"peak_rss_mib\": %.1f, \"arith_mib\": %.1f, \"loss\": %.4f, \"objective\": \"%s\", \"reference\": \"%s\", "
               "\"precision\": \"%s\", \"backend\": \"%s\", \"lm_chunk\": %d, \"logits_mib\": %.1f}\n",
               cfg.n_layer, cfg.n_head, cfg.d_model, cfg.vocab_size, B, T, ta_get_threads(), ms, toks,
               gflops, gflops / peak, rss_mib, arith_mib, loss, objective, obj.type == CFG_OBJ_DPO ? refmode : "none",
               precision_name(m.precision), backend_kind_name(backend_kind(m.be)), lm_chunk,
               gpt2_logits_bytes(&m) / (1024.0 * 1024.0));
    } else {
        char how[160];
        backend_describe(m.be, how, sizeof how);
        printf("%s\n%s\nmatmuls: %s\n", info, mem, how);
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
