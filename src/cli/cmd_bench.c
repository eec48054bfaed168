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

int cmd_bench(int argc, char **argv) {
    GPT2Config cfg = {0};
    int B, T, steps, warmup, threads, json = 0, objective_i, refmode_i, precision, backend;
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
        {.name = "--objective", .kind = CLI_CHOICE, .dst = &objective_i, .choices = "pretrain|sft|dpo", .def = "pretrain",
         .help = "the loss head timed (sft / dpo: second half of each row is the\n"
                 "completion; dpo: B/2 pairs)"},
        {.name = "--reference", .kind = CLI_CHOICE, .dst = &refmode_i, .choices = "snapshot|cached", .def = "snapshot",
         .help = "dpo: the reference as a frozen snapshot (one extra forward)\n"
                 "or cached log-probs (none)"},
        {.name = "--precision", .kind = CLI_CHOICE, .dst = &precision, .choices = "fp32|bf16", .def = "fp32",
         .help = "matmul precision, as model.precision (bf16: bf16 inputs,\nfp32 sums)"},
        {.name = "--backend", .kind = CLI_CHOICE, .dst = &backend, .choices = "auto|openblas|onednn", .def = "auto",
         .help = "matmul library, as model.backend (auto: openblas for fp32,\nonednn for bf16)"},
        {.name = "--json", .kind = CLI_FLAG, .dst = &json, .help = "one JSON line instead of the report"},
        {0}};
    const CliSpec spec = {
        .prog = "tinyalign bench",
        .usage = "tinyalign bench [--layers L --heads NH --dim C --vocab V] [--batch B --seq T]\n"
                 "                       [--objective pretrain|sft|dpo] [options]",
        .about = "Times N training steps (forward, backward, clip, AdamW) of a randomly initialised\n"
                 "GPT-2 on random tokens after the warm-up steps; the defaults are the 'small'\n"
                 "shape. FLOPs per token = 6 * (12 L C^2 + Vp C) + 12 L T C (forward + backward,\n"
                 "the PaLM paper's convention: Chowdhery et al. 2022, arXiv 2204.02311).\n",
        .opts = opts,
    };
    int prc = cli_parse(&spec, argc, argv);
    if (prc != CLI_RUN) return prc;
    static const char *const OBJECTIVES[] = {"pretrain", "sft", "dpo"}, *const REFMODES[] = {"snapshot", "cached"};
    const char *objective = OBJECTIVES[objective_i], *refmode = REFMODES[refmode_i];
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
