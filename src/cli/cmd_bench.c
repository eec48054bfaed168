/* cmd_bench.c — `tinyalign bench`: training-step speed of a GPT-2 shape on random tokens
 * (forward + backward + clip + AdamW), with MFU, memory arithmetic vs peak RSS and a
 * per-kernel time breakdown. Used by `make bench` (tools/bench.sh), which puts PyTorch's
 * number for the same model next to it. A benchmark, never a test. */
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
#include "tinyalign/objective.h"
#include "tinyalign/optim.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: tinyalign bench [--layers L --heads NH --dim C --vocab V --max-seq T]\n"
            "                       [--batch B] [--seq T] [--steps N] [--warmup N]\n"
            "                       [--threads N] [--peak-gflops G] [--json]\n"
            "                       [--objective pretrain|sft|dpo] [--reference snapshot|cached]\n"
            "                       [--precision fp32|bf16] [--backend auto|openblas|onednn]\n"
            "Times N training steps (forward, backward, clip, AdamW) of a randomly initialised\n"
            "GPT-2 on random tokens after N warm-up steps. Defaults: the 'small' shape\n"
            "(L=6 NH=6 C=384 V=8192, B=8 T=256), 10 steps, 2 warm-up, all cores, peak 270.\n"
            "FLOPs per token = 6 * (12 L C^2 + Vp C) + 12 L T C (fwd+bwd, PaLM convention).\n"
            "--objective sft|dpo times the loss head of that objective on the same B x T tokens\n"
            "(second half of each row is the completion; dpo: B/2 pairs), with the reference\n"
            "as a frozen snapshot (one extra forward) or cached log-probs (none).\n"
            "--precision / --backend: as model.precision / model.backend (default fp32, auto =\n"
            "openblas for fp32, onednn for bf16).\n");
}

static int parse_int(const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0 || v > 1 << 30) return 0;
    *out = (int)v;
    return 1;
}

int cmd_bench(int argc, char **argv) {
    GPT2Config cfg = {.n_layer = 6, .n_head = 6, .d_model = 384, .vocab_size = 8192, .max_seq_len = 256};
    int B = 8, T = 256, steps = 10, warmup = 2, threads = 0, json = 0;
    const char *objective = "pretrain", *refmode = "snapshot";
    int precision = PRECISION_FP32, backend = BACKEND_AUTO;
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
        else if (!strcmp(a, "--precision")) ok = (precision = precision_parse(v)) >= 0;
        else if (!strcmp(a, "--backend")) ok = (backend = backend_kind_parse(v)) >= 0;
        else { fprintf(stderr, "tinyalign bench: unknown option %s (see --help)\n", a); return TA_EINPUT; }
        if (!ok) { fprintf(stderr, "tinyalign bench: bad value \"%s\" for %s\n", v, a); return TA_EINPUT; }
    }
    if (T > cfg.max_seq_len) cfg.max_seq_len = T;
    TaError err;
    if (gpt2_config_check(&cfg, &err) != TA_OK) { fprintf(stderr, "tinyalign bench: %s\n", err.msg); return TA_EINPUT; }
    ta_set_threads(threads);

    GPT2 m;
    gpt2_init(&m, &cfg, 1);
    gpt2_init_weights(&m, 1337);
    if (gpt2_set_compute(&m, (BackendKind)backend, (Precision)precision, &err) != TA_OK) {
        fprintf(stderr, "tinyalign bench: %s\n", err.msg);
        gpt2_free(&m);
        return TA_EINPUT;
    }
    gpt2_alloc_acts(&m, B, T);
    AdamWConfig oc = {.lr = 1e-4, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1,
                      .schedule = SCHED_CONSTANT, .max_steps = steps + warmup, .grad_clip = 1.0};
    AdamW opt;
    adamw_init(&opt, &oc, m.num_params);
    int *tok = ta_malloc(sizeof(int) * (size_t)B * (T + 1), "tokens");
    TaRng rng;
    ta_rng_seed(&rng, 7);
    for (size_t i = 0; i < (size_t)B * (T + 1); i++) tok[i] = (int)ta_rng_below(&rng, cfg.vocab_size);
    int *inp = ta_malloc(sizeof(int) * (size_t)B * T, "inp"), *tgt = ta_malloc(sizeof(int) * (size_t)B * T, "tgt");
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            inp[b * T + t] = tok[b * (T + 1) + t];
            tgt[b * T + t] = tok[b * (T + 1) + t + 1];
        }
    /* the loss head: a Batch whose second half of every row is the completion */
    CfgObjective obj = {.type = CFG_OBJ_PRETRAIN, .beta = 0.1, .odds_clamp = 1e-6};
    if (!strcmp(objective, "sft")) obj.type = CFG_OBJ_SFT;
    if (!strcmp(objective, "dpo")) obj.type = CFG_OBJ_DPO;
    if (obj.type == CFG_OBJ_DPO && B % 2) { fprintf(stderr, "tinyalign bench: dpo needs an even --batch\n"); return TA_EINPUT; }
    Batch batch;
    batch_alloc(&batch, B, T);
    batch.B = B;
    batch.T = T;
    batch.n_pairs = obj.type == CFG_OBJ_DPO ? B / 2 : 0;
    for (int i = 0; i < B * T; i++) {
        batch.tokens[i] = inp[i];
        batch.targets[i] = tgt[i];
        batch.loss_mask[i] = (i % T) >= T / 2;
    }
    for (int b = 0; b < B; b++) { batch.lengths[b] = T; batch.weights[b] = 1.0f; batch.example_ids[b] = b; }
    int snapshot = obj.type == CFG_OBJ_DPO && !strcmp(refmode, "snapshot");
    GPT2 ref;
    memset(&ref, 0, sizeof ref);
    float *ref_logp = ta_calloc(sizeof(float) * (size_t)B, "ref logps");
    if (snapshot) {
        gpt2_init(&ref, &cfg, 0);
        TA_ASSERT(gpt2_set_compute(&ref, backend_kind(m.be), m.precision, &err) == TA_OK);
        memcpy(ref.params_memory, m.params_memory, m.num_params * sizeof(float));
        gpt2_params_changed(&ref);
        gpt2_borrow_acts(&ref, &m);
    }
    GPT2Profile prof;
    double t_adam = 0, t_total = 0, t_norm = 0;
    float loss = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) {
            memset(&prof, 0, sizeof prof);
            m.prof = &prof;
            t_adam = t_norm = 0;
        }
        double t0 = ta_now();
        if (snapshot) { /* the reference forward runs first, on the borrowed activations */
            gpt2_forward(&ref, inp, tgt, B, T, &err);
            objective_sequence_logps(ref_logp, &batch, ref.acts.logp);
        }
        gpt2_forward(&m, inp, tgt, B, T, &err);
        gpt2_zero_grad(&m);
        ObjectiveNorm onorm = {0};
        ObjectiveStats st = {0};
        if (objective_norm_add(&onorm, &obj, &batch, &err) != TA_OK ||
            objective_forward_backward(&obj, &batch, m.acts.logp,
                                       obj.type == CFG_OBJ_DPO ? ref_logp : NULL, &onorm,
                                       m.acts.dlogp, &st, &err) != TA_OK) {
            fprintf(stderr, "tinyalign bench: %s\n", err.msg);
            return TA_ERUNTIME;
        }
        {
            double tl = ta_now();
            logits_to_dlogits(m.acts.logits, m.acts.lse, tgt, m.acts.dlogp, B * T, cfg.vocab_size,
                              cfg.padded_vocab_size);
            if (m.prof) m.prof->bwd[K_LOGSOFTMAX] += ta_now() - tl;
        }
        gpt2_backward(&m);
        loss = (float)st.loss;
        double t1 = ta_now();
        double norm = grad_global_norm(m.grads_memory, m.num_params);
        grad_clip_scale(m.grads_memory, m.num_params, norm, oc.grad_clip);
        double t2 = ta_now();
        adamw_update_bf16(&opt, m.params_memory, m.grads_memory, oc.lr, m.params_bf16);
        double t3 = ta_now();
        if (s >= warmup) { t_total += t3 - t0; t_adam += t3 - t2; t_norm += t2 - t1; }
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
               "\"precision\": \"%s\", \"backend\": \"%s\"}\n",
               cfg.n_layer, cfg.n_head, cfg.d_model, cfg.vocab_size, B, T, ta_get_threads(), ms, toks,
               gflops, gflops / peak, rss_mib, arith_mib, loss, objective, obj.type == CFG_OBJ_DPO ? refmode : "none",
               precision_name(m.precision), backend_kind_name(backend_kind(m.be)));
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
    free(tok); free(inp); free(tgt); free(ref_logp);
    batch_free(&batch);
    if (snapshot) gpt2_free(&ref);
    adamw_free(&opt);
    gpt2_free(&m);
    return TA_OK;
}
