/* test_gpt2.c — full-model parity with PyTorch (tools/ref_gpt2.py, generated on every
 * `make test`): logits, loss, every parameter gradient, and 10 AdamW steps with warmup,
 * cosine decay, clipping and weight decay. Also: the comparator fails on a corrupted
 * reference, gradient accumulation equals one big batch, 1 vs 2 threads give identical
 * bits, and bad input gives an error instead of a number. */
#include <math.h>
#include <string.h>

#include "refio.h"
#include "testhelp.h"
#include "tinyalign/common.h"
#include "tinyalign/kernels.h"
#include "tinyalign/model.h"
#include "tinyalign/optim.h"

static RefFile REF;
static GPT2Config CFG;
static int B, T;

/* |got - ref| <= atol + rtol * |ref| elementwise. On failure writes the worst element into
 * msg and returns 0. This is THE comparator; comparator_detects_corruption tests it. */
static int compare(const char *what, const float *got, const float *ref, size_t n, double atol,
                   double rtol, char *msg, size_t cap) {
    double worst_excess = 0.0, worst_diff = 0.0;
    size_t wi = 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        double lim = atol + rtol * fabs((double)ref[i]);
        if (!(d <= lim)) { /* NaN fails too */
            double ex = isnan(d) ? INFINITY : d - lim;
            if (ok || ex > worst_excess) { worst_excess = ex; worst_diff = d; wi = i; }
            ok = 0;
        }
    }
    if (!ok)
        snprintf(msg, cap, "%s: element %zu got %.9g, reference %.9g (|diff| %.3g > atol %.1g + rtol %.1g*|ref|)",
                 what, wi, got[wi], ref[wi], worst_diff, atol, rtol);
    return ok;
}

static void setup_model(GPT2 *m) {
    gpt2_init(m, &CFG, 1);
    gpt2_alloc_acts(m, B, T);
    RefRecord *p = ref_get(&REF, "params");
    TA_ASSERT(p && p->n == m->num_params);
    memcpy(m->params_memory, p->data, p->n * sizeof(float));
}

static GPT2 M; /* forward+backward of the reference batch, shared by the parity cases */
static float LOSS;

static void run_reference_step(void) {
    setup_model(&M);
    TaError err;
    int rc = gpt2_forward(&M, ref_get(&REF, "tokens")->data, ref_get(&REF, "targets")->data, B,
                          T, &err);
    TA_ASSERT(rc == TA_OK);
    gpt2_zero_grad(&M);
    LOSS = gpt2_mean_nll(&M, 0);
    /* keep the logits for comparison before backward overwrites them with dlogits */
}

static float *LOGITS_COPY;
static void t_logits(void) {
    RefRecord *r = ref_get(&REF, "logits");
    int V = CFG.vocab_size, Vp = CFG.padded_vocab_size;
    size_t BT = (size_t)B * T;
    float *got = ta_malloc(BT * V * sizeof(float), "t");
    for (size_t i = 0; i < BT; i++) memcpy(got + i * V, LOGITS_COPY + i * Vp, V * sizeof(float));
    char msg[512];
    int ok = compare("logits", got, r->data, BT * V, 2e-5, 1e-4, msg, sizeof msg); /* float32 vs float32: ~1e-6 seen */
    free(got);
    T_CHECK(ok, "%s", msg);
    for (size_t i = 0; i < BT; i++)
        for (int v = V; v < Vp; v++) T_CHECK(LOGITS_COPY[i * Vp + v] == 0.0f, "padded logit %zu,%d nonzero", i, v);
}

static void t_loss(void) {
    float ref = ((float *)ref_get(&REF, "loss")->data)[0];
    T_CHECK(fabsf(LOSS - ref) <= 1e-5f * fabsf(ref), "loss %.8f vs PyTorch %.8f", LOSS, ref);
}

static size_t OFFSETS[NUM_PARAM_TENSORS];
static void t_grads(void) {
    RefRecord *r = ref_get(&REF, "grads");
    T_CHECK(r->n == M.num_params, "grad size %zu vs %zu", r->n, M.num_params);
    const float *ref = r->data;
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) {
        /* tolerance per tensor: atol scaled to the tensor's largest gradient */
        double mx = 0;
        for (size_t j = 0; j < M.param_sizes[i]; j++)
            if (fabs(ref[OFFSETS[i] + j]) > mx) mx = fabs(ref[OFFSETS[i] + j]);
        char msg[512];
        int ok = compare(gpt2_param_name(i), M.grads_memory + OFFSETS[i], ref + OFFSETS[i],
                         M.param_sizes[i], 1e-4 * mx + 1e-9, 1e-3, msg, sizeof msg);
        printf("  grad %-20s max|ref| %.3g %s\n", gpt2_param_name(i), mx, ok ? "ok" : "MISMATCH");
        T_CHECK(ok, "%s", msg);
    }
    /* padded wte rows must have exactly zero gradient */
    for (size_t j = (size_t)CFG.vocab_size * CFG.d_model; j < M.param_sizes[P_WTE]; j++)
        T_CHECK(M.grads.wte[j] == 0.0f, "padded wte grad %zu nonzero", j);
}

static void t_comparator_detects_corruption(void) {
    RefRecord *r = ref_get(&REF, "grads");
    float *bad = ta_malloc(r->n * sizeof(float), "t");
    memcpy(bad, r->data, r->n * sizeof(float));
    /* perturb one element of the qkv weight gradient by 1% of that tensor's max */
    size_t off = OFFSETS[P_QKVW] + 123;
    double mx = 0;
    for (size_t j = 0; j < M.param_sizes[P_QKVW]; j++)
        if (fabs(bad[OFFSETS[P_QKVW] + j]) > mx) mx = fabs(bad[OFFSETS[P_QKVW] + j]);
    bad[off] += (float)(0.01 * mx);
    char msg[512];
    int ok = compare("qkvw", M.grads_memory + OFFSETS[P_QKVW], bad + OFFSETS[P_QKVW],
                     M.param_sizes[P_QKVW], 1e-4 * mx + 1e-9, 1e-3, msg, sizeof msg);
    free(bad);
    T_CHECK(!ok, "comparator accepted a reference with one gradient element perturbed");
    T_CHECK(strstr(msg, "element 123") != NULL, "comparator blamed the wrong element: %s", msg);
}

/* n AdamW steps on the reference batch, as tools/ref_gpt2.py does. */
static void adamw_steps(GPT2 *m, int steps, float *losses, double *lrs, double *norms) {
    /* the same hyper-parameters as tools/ref_gpt2.py (checked against its record) */
    AdamWConfig oc = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1,
                      .schedule = SCHED_COSINE, .warmup_steps = 3, .max_steps = 10,
                      .min_lr_ratio = 0.1, .grad_clip = 0.5};
    const float *hf = ref_get(&REF, "train_hparams")->data;
    const double mine[9] = {oc.lr, oc.weight_decay, oc.max_steps, oc.warmup_steps, oc.min_lr_ratio,
                            oc.grad_clip, oc.beta1, oc.beta2, oc.eps};
    for (int i = 0; i < 9; i++) TA_ASSERT(fabs(hf[i] - mine[i]) <= 1e-6 * fabs(mine[i]));
    AdamW opt;
    adamw_init(&opt, &oc, m->num_params);
    adamw_set_decay(&opt, OFFSETS[P_QKVW], m->param_sizes[P_QKVW], 1);
    adamw_set_decay(&opt, OFFSETS[P_ATTPROJW], m->param_sizes[P_ATTPROJW], 1);
    adamw_set_decay(&opt, OFFSETS[P_FCW], m->param_sizes[P_FCW], 1);
    adamw_set_decay(&opt, OFFSETS[P_FCPROJW], m->param_sizes[P_FCPROJW], 1);
    TaError err;
    for (int s = 0; s < steps; s++) {
        gpt2_forward(m, ref_get(&REF, "tokens")->data, ref_get(&REF, "targets")->data, B, T, &err);
        gpt2_zero_grad(m);
        float loss = gpt2_mean_nll(m, 1);
        double norm = grad_global_norm(m->grads_memory, m->num_params);
        grad_clip_scale(m->grads_memory, m->num_params, norm, oc.grad_clip);
        double lr = lr_at_step(&oc, s);
        adamw_update(&opt, m->params_memory, m->grads_memory, lr);
        if (losses) losses[s] = loss;
        if (lrs) lrs[s] = lr;
        if (norms) norms[s] = norm;
        if (losses) TA_ASSERT(norm > oc.grad_clip); /* the test must exercise clipping */
    }
    adamw_free(&opt);
}

static void t_adamw(void) {
    GPT2 m;
    setup_model(&m);
    float losses[10];
    double lrs[10], norms[10];
    adamw_steps(&m, 10, losses, lrs, norms);
    const float *rl = ref_get(&REF, "adamw_losses")->data, *rlr = ref_get(&REF, "adamw_lrs")->data,
                *rn = ref_get(&REF, "adamw_norms")->data;
    for (int s = 0; s < 10; s++) {
        printf("  step %d loss %.6f (torch %.6f) lr %.3e (torch %.3e) norm %.5f (torch %.5f)\n", s,
               losses[s], rl[s], lrs[s], rlr[s], norms[s], rn[s]);
        T_CHECK(fabsf(losses[s] - rl[s]) <= 5e-5f * fabsf(rl[s]), "step %d loss %.7f vs %.7f", s,
                losses[s], rl[s]);
        T_CHECK(fabs(lrs[s] - rlr[s]) <= 1e-6 * rlr[s], "step %d lr %.9g vs %.9g", s, lrs[s], rlr[s]);
        T_CHECK(fabs(norms[s] - rn[s]) <= 1e-4 * rn[s], "step %d grad norm %.7f vs %.7f", s,
                norms[s], rn[s]);
    }
    char msg[512];
    /* parameters after 10 updates: each moved by up to ~lr per step; compare to 1e-5 abs */
    int ok = compare("params after 10 AdamW steps", m.params_memory,
                     ref_get(&REF, "params_after")->data, m.num_params, 2e-5, 1e-4, msg, sizeof msg);
    gpt2_free(&m);
    T_CHECK(ok, "%s", msg);
}

/* K micro-batches of B/K rows, each gradient scaled by 1/K, vs one batch of B rows.
 * Every row has the same number of targets here, so mean-of-means == global mean. */
static void t_accumulation(void) {
    GPT2 big, small;
    setup_model(&big);
    gpt2_init(&small, &CFG, 1);
    gpt2_alloc_acts(&small, 1, T);
    memcpy(small.params_memory, big.params_memory, big.num_params * sizeof(float));
    int *tok = ref_get(&REF, "tokens")->data;
    int *tgt = ta_malloc(sizeof(int) * B * T, "t");
    for (int i = 0; i < B * T; i++) tgt[i] = tok[(i + 1) % (B * T)]; /* all valid */
    TaError err;
    gpt2_forward(&big, tok, tgt, B, T, &err);
    gpt2_zero_grad(&big);
    float lbig = gpt2_mean_nll(&big, 1);
    gpt2_zero_grad(&small);
    double lsum = 0;
    for (int k = 0; k < B; k++) {
        gpt2_forward(&small, tok + k * T, tgt + k * T, 1, T, &err);
        /* d(mean over K micro-batches) = (1/K) d(micro mean): scale dlogp via the loss */
        float l = gpt2_mean_nll(&small, 0);
        for (int i = 0; i < T; i++) small.acts.dlogp[i] = -1.0f / (float)(T * B);
        logits_to_dlogits(small.acts.logits, small.acts.lse, small.targets, small.acts.dlogp, T,
                          CFG.vocab_size, CFG.padded_vocab_size);
        gpt2_backward(&small);
        lsum += l / B;
    }
    free(tgt);
    T_CHECK(fabs(lsum - lbig) <= 1e-5 * fabs(lbig), "accumulated loss %.8f vs %.8f", lsum, lbig);
    double mx = 0;
    for (size_t i = 0; i < big.num_params; i++)
        if (fabs(big.grads_memory[i]) > mx) mx = fabs(big.grads_memory[i]);
    char msg[512];
    int ok = compare("accumulated grads", small.grads_memory, big.grads_memory, big.num_params,
                     1e-5 * mx, 1e-4, msg, sizeof msg); /* float rounding of the split sums */
    gpt2_free(&big);
    gpt2_free(&small);
    T_CHECK(ok, "%s", msg);
}

/* Same weights, batch and steps at 1 and at 2 threads: identical bits. */
static void t_thread_determinism(void) {
    int saved = ta_get_threads();
    GPT2 a, b;
    setup_model(&a);
    setup_model(&b);
    ta_set_threads(1);
    adamw_steps(&a, 5, NULL, NULL, NULL);
    ta_set_threads(2);
    adamw_steps(&b, 5, NULL, NULL, NULL);
    ta_set_threads(saved);
    size_t diff = 0;
    for (size_t i = 0; i < a.num_params; i++)
        if (memcmp(&a.params_memory[i], &b.params_memory[i], 4)) diff++;
    gpt2_free(&a);
    gpt2_free(&b);
    T_CHECK(diff == 0, "%zu of the parameters differ between 1 and 2 threads", diff);
}

static void t_bad_input(void) {
    GPT2 m;
    setup_model(&m);
    int *tok = ta_malloc(sizeof(int) * B * T, "t");
    memcpy(tok, ref_get(&REF, "tokens")->data, sizeof(int) * B * T);
    tok[T + 3] = CFG.vocab_size; /* row 1, position 3 */
    TaError err = {0};
    int rc = gpt2_forward(&m, tok, NULL, B, T, &err);
    T_CHECK(rc == TA_EINPUT, "out-of-range token accepted");
    T_CHECK(strstr(err.msg, "row 1 position 3") != NULL, "message does not locate it: %s", err.msg);
    tok[T + 3] = 0;
    rc = gpt2_forward(&m, tok, NULL, B + 1, T, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "larger than"), "oversized batch accepted: %s", err.msg);
    free(tok);
    gpt2_free(&m);
}

int main(void) {
    if (ref_load(&REF, ref_path("gpt2")) != 0) return 1;
    int *c = ref_get(&REF, "config")->data;
    CFG = (GPT2Config){.n_layer = c[0], .n_head = c[1], .d_model = c[2], .vocab_size = c[3],
                       .max_seq_len = c[4]};
    B = c[5];
    T = c[6];
    TaError err;
    TA_ASSERT(gpt2_config_check(&CFG, &err) == TA_OK);
    ta_set_threads(0);
    run_reference_step();
    size_t off = 0;
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) { OFFSETS[i] = off; off += M.param_sizes[i]; }
    size_t BT = (size_t)B * T;
    LOGITS_COPY = ta_malloc(BT * CFG.padded_vocab_size * sizeof(float), "logits copy");
    memcpy(LOGITS_COPY, M.acts.logits, BT * CFG.padded_vocab_size * sizeof(float));
    gpt2_mean_nll(&M, 1); /* dlogits + backward */
    t_run("parity/logits", t_logits);
    t_run("parity/loss", t_loss);
    t_run("parity/grads_all_16_tensors", t_grads);
    t_run("parity/comparator_detects_corruption", t_comparator_detects_corruption);
    t_run("parity/adamw_10_steps", t_adamw);
    t_run("accumulation/4x1_equals_1x4", t_accumulation);
    t_run("determinism/1_vs_2_threads_bitwise", t_thread_determinism);
    t_run("bad_input/token_range_and_batch_size", t_bad_input);
    free(LOGITS_COPY);
    gpt2_free(&M);
    ref_free(&REF);
    return t_done();
}
