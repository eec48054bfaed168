/* test_gpt2.c — full-model parity with PyTorch (tools/ref_gpt2.py, generated on every
 * `make test`): logits, loss, every parameter gradient, and 10 AdamW steps with warmup,
 * cosine decay, clipping and weight decay — all through the training step (train_step,
 * train_step_eval) that `train` and `bench` run, with the pretrain objective. Also: the
 * comparator fails on a corrupted reference, gradient accumulation (4 micro-batches of 1
 * row == 1 of 4 rows, padded targets included) equals one big batch, runs are
 * bit-identical at a fixed thread count, 1 vs 2 threads agree (bitwise when OpenBLAS's
 * sgemm is, else to a stated tolerance: see t_thread_counts), and bad input gives an
 * error instead of a number. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "refio.h"
#include "testhelp.h"
#include "tinyalign/common.h"
#include "tinyalign/kernels.h"
#include "tinyalign/model.h"
#include "tinyalign/optim.h"
#include "tinyalign/train.h"

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
static const CfgObjective PRETRAIN = {.type = CFG_OBJ_PRETRAIN};

/* StepSource.fill: micro-batch k = rows [k*rows, (k+1)*rows) of the reference batch. */
typedef struct {
    int rows;
} RefRows;

static int fill_ref(void *ctx, int k, Batch *b, TaError *err) {
    const RefRows *r = ctx;
    (void)err;
    const int *tok = ref_get(&REF, "tokens")->data, *tgt = ref_get(&REF, "targets")->data;
    size_t off = (size_t)k * r->rows * T, n = (size_t)r->rows * T;
    memcpy(b->tokens, tok + off, n * sizeof(int));
    memcpy(b->targets, tgt + off, n * sizeof(int));
    memset(b->loss_mask, 0, n);
    b->B = r->rows;
    b->T = T;
    b->n_pairs = 0;
    return TA_OK;
}

/* A step over the reference batch cut into K micro-batches (optim NULL: no update). */
static void step_init(TrainStep *st, GPT2 *m, AdamW *optim, int K, RefRows *rows,
                      StepSource *src) {
    rows->rows = B / K;
    StepSetup ss = {.model = m, .optim = optim, .objective = &PRETRAIN, .K = K,
                    .rows = rows->rows, .T = T};
    train_step_init(st, &ss);
    *src = (StepSource){.fill = fill_ref, .ctx = rows};
}

static float *LOGITS_COPY;
static void run_reference_step(void) {
    setup_model(&M);
    TrainStep st;
    RefRows rows;
    StepSource src;
    step_init(&st, &M, NULL, 1, &rows, &src);
    TaError err;
    ObjectiveMetrics om;
    /* forward only: the logits stay in the activations */
    TA_ASSERT(train_step_eval(&st, &src, 1, &om, &err) == TA_OK);
    LOSS = (float)om.m[OBJ_METRIC_LOSS].value;
    size_t n = (size_t)B * T * CFG.padded_vocab_size;
    LOGITS_COPY = ta_malloc(n * sizeof(float), "logits copy");
    memcpy(LOGITS_COPY, M.acts.logits, n * sizeof(float));
    /* forward + backward (no optimizer): the gradients */
    StepResult r;
    TA_ASSERT(train_step(&st, &src, 0, &r, &err) == TA_OK && !r.nonfinite);
    TA_ASSERT((float)r.loss == LOSS);
    train_step_free(&st);
}

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

/* A model without gradients keeps one layer's activations (every layer overwrites slot 0):
 * its forward must give the training model's logits bit for bit (the same kernels on the
 * same inputs, only the buffers differ), and so PyTorch's within the parity tolerance. */
static void t_forward_only(void) {
    GPT2 f;
    gpt2_init(&f, &CFG, 0);
    gpt2_alloc_acts(&f, B, T);
    memcpy(f.params_memory, ref_get(&REF, "params")->data, f.num_params * sizeof(float));
    gpt2_params_changed(&f);
    TaError err;
    const int *tok = ref_get(&REF, "tokens")->data, *tgt = ref_get(&REF, "targets")->data;
    int rc = gpt2_forward(&f, tok, tgt, B, T, &err);
    size_t n = (size_t)B * T * CFG.padded_vocab_size;
    int same = rc == TA_OK && memcmp(f.acts.logits, LOGITS_COPY, n * sizeof(float)) == 0;
    int layers = f.act_layers;
    size_t acts = f.num_acts;
    gpt2_free(&f);
    T_CHECK(rc == TA_OK, "forward: %s", err.msg);
    T_CHECK(layers == 1 && M.act_layers == CFG.n_layer, "act_layers %d (training model %d)",
            layers, M.act_layers);
    T_CHECK(acts < M.num_acts, "forward-only activations %zu floats, training %zu", acts,
            M.num_acts);
    T_CHECK(same, "forward-only logits differ from the training model's");
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

/* n AdamW steps on the reference batch through train_step, as tools/ref_gpt2.py does. */
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
    train_optim_init(&opt, &oc, m); /* decay on qkvw, attprojw, fcw, fcprojw, as the reference */
    TrainStep st;
    RefRows rows;
    StepSource src;
    step_init(&st, m, &opt, 1, &rows, &src);
    TaError err;
    for (int s = 0; s < steps; s++) {
        StepResult r;
        TA_ASSERT(train_step(&st, &src, s, &r, &err) == TA_OK && !r.nonfinite);
        if (losses) losses[s] = (float)r.loss;
        if (lrs) lrs[s] = r.lr;
        if (norms) norms[s] = r.grad_norm;
        if (losses) TA_ASSERT(r.grad_norm > oc.grad_clip); /* the test must exercise clipping */
    }
    train_step_free(&st);
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

/* The reference batch (padded targets included) as 4 micro-batches of 1 row vs 1 batch of
 * 4 rows through train_step: the step's normaliser spans all micro-batches, so the loss
 * and gradients equal the big batch's up to float rounding of the split sums. */
static void t_accumulation(void) {
    TA_ASSERT(B == 4);
    GPT2 big, small;
    setup_model(&big);
    setup_model(&small);
    TrainStep s1, s4;
    RefRows r1, r4;
    StepSource src1, src4;
    step_init(&s1, &big, NULL, 1, &r1, &src1);
    step_init(&s4, &small, NULL, 4, &r4, &src4);
    StepResult a, b;
    TaError err;
    TA_ASSERT(train_step(&s1, &src1, 0, &a, &err) == TA_OK && train_step(&s4, &src4, 0, &b, &err) == TA_OK);
    train_step_free(&s1);
    train_step_free(&s4);
    T_CHECK(fabs(a.loss - b.loss) <= 1e-6 * fabs(a.loss), "accumulated loss %.8f vs %.8f", b.loss,
            a.loss);
    T_CHECK(a.tokens == b.tokens, "tokens %llu vs %llu", (unsigned long long)b.tokens,
            (unsigned long long)a.tokens);
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

/* model.lm_head_chunk: the LM head and the loss over R token rows at a time (R = 5 cuts
 * through batch rows and leaves a short last chunk), logits recomputed in the backward.
 * Each logit row is the same dot products as in the whole-batch GEMM and the log-softmax
 * works row by row, so the loss is bit-identical as long as sgemm gives a row the same
 * bits whatever the row count of the call (OpenBLAS 0.3.21 does, with its Haswell,
 * SkylakeX and Cooperlake kernels: checked here, strictly). The
 * gradients are not bit-identical by construction: dwte = dlogits^T lnf is summed chunk by
 * chunk instead of in one GEMM, a different order of the same float sums, so they are
 * compared at the accumulation test's tolerance, and against PyTorch at the parity one. */
static void t_lm_head_chunk(void) {
    GPT2 m;
    setup_model(&m);
    gpt2_set_lm_chunk(&m, 5); /* reallocates the activations: (5, Vp) logits */
    T_CHECK(m.act_sizes[A_LOGITS] == 5 * (size_t)CFG.padded_vocab_size, "logits slot %zu floats",
            m.act_sizes[A_LOGITS]);
    TrainStep st;
    RefRows rows;
    StepSource src;
    step_init(&st, &m, NULL, 1, &rows, &src);
    TaError err;
    ObjectiveMetrics om;
    StepResult r;
    TA_ASSERT(train_step_eval(&st, &src, 1, &om, &err) == TA_OK);
    TA_ASSERT(gpt2_lm_chunked(&m));
    float ev = (float)om.m[OBJ_METRIC_LOSS].value;
    TA_ASSERT(train_step(&st, &src, 0, &r, &err) == TA_OK && !r.nonfinite);
    train_step_free(&st);
    printf("  loss chunked %.9g (eval %.9g) vs whole batch %.9g: %s\n", (float)r.loss, ev, LOSS,
           (float)r.loss == LOSS && ev == LOSS ? "bit-identical" : "differs");
    T_CHECK((float)r.loss == LOSS && ev == LOSS,
            "chunked loss %.9g / eval %.9g vs whole batch %.9g: not bit-identical (does this "
            "sgemm give a row different bits for a different row count?)",
            (float)r.loss, ev, LOSS);
    double mx = 0;
    for (size_t i = 0; i < M.num_params; i++)
        if (fabs(M.grads_memory[i]) > mx) mx = fabs(M.grads_memory[i]);
    char msg[512];
    int ok = compare("chunked grads", m.grads_memory, M.grads_memory, M.num_params, 1e-5 * mx,
                     1e-4, msg, sizeof msg);
    T_CHECK(ok, "%s", msg);
    const float *ref = ref_get(&REF, "grads")->data;
    for (int i = 0; i < NUM_PARAM_TENSORS && ok; i++) {
        double tm = 0;
        for (size_t j = 0; j < M.param_sizes[i]; j++)
            if (fabs(ref[OFFSETS[i] + j]) > tm) tm = fabs(ref[OFFSETS[i] + j]);
        ok = compare(gpt2_param_name(i), m.grads_memory + OFFSETS[i], ref + OFFSETS[i],
                     M.param_sizes[i], 1e-4 * tm + 1e-9, 1e-3, msg, sizeof msg);
        T_CHECK(ok, "vs PyTorch: %s", msg);
    }
    gpt2_free(&m);
}

/* ---- thread counts --------------------------------------------------------------------
 * Guaranteed: a run is bit-identical to itself at a fixed thread count (every parallel loop
 * of ours writes disjoint outputs and reduces in a fixed order; OpenBLAS is deterministic
 * for a given thread count). Across thread counts the answer depends on OpenBLAS's sgemm:
 * with its SkylakeX / Cooperlake kernels sgemm is bit-identical at 1 and 2 threads and so
 * is the whole run; with its Haswell kernel (what OpenBLAS 0.3.21 picks on AMD Zen and on
 * CPUs it does not know) the threaded driver hands a thread narrower column blocks, and
 * that kernel computes a column with a different instruction sequence depending on the
 * block width it is in, so sgemm's results differ in the last bits between 1 and 2 threads
 * (sgemm_thread_invariant probes it on the model's shapes; t_thread_counts prints which case
 * holds). t_thread_counts checks bitwise equality when sgemm is
 * thread-invariant here and otherwise the agreement a last-bit sgemm difference allows. */

/* Gradients of one step, or parameters / losses / norms after n AdamW steps, at `threads`. */
static void run_at(int threads, GPT2 *m, int n, float *losses, double *norms) {
    int saved = ta_get_threads();
    ta_set_threads(threads);
    setup_model(m);
    if (n > 0) {
        adamw_steps(m, n, losses, NULL, norms);
    } else {
        TrainStep st;
        RefRows rows;
        StepSource src;
        step_init(&st, m, NULL, 1, &rows, &src);
        StepResult r;
        TaError err;
        TA_ASSERT(train_step(&st, &src, 0, &r, &err) == TA_OK);
        train_step_free(&st);
    }
    ta_set_threads(saved);
}

static size_t count_diff(const float *a, const float *b, size_t n) {
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += memcmp(a + i, b + i, sizeof(float)) != 0;
    return d;
}

/* 5 AdamW steps twice at 1 thread and twice at 2 threads: identical bits. */
static void t_same_thread_count(void) {
    for (int th = 1; th <= 2; th++) {
        GPT2 a, b;
        run_at(th, &a, 5, NULL, NULL);
        run_at(th, &b, 5, NULL, NULL);
        size_t d = count_diff(a.params_memory, b.params_memory, a.num_params);
        gpt2_free(&a);
        gpt2_free(&b);
        T_CHECK(d == 0, "%zu parameters differ between two runs at %d thread(s)", d, th);
    }
}

/* sgemm (our matmul_forward / matmul_backward) on this model's shapes at 1 and 2 threads:
 * 1 when every result is bit-identical. */
static int sgemm_thread_invariant(void) {
    const int C = CFG.d_model, N = B * T;
    const int shapes[][2] = {{C, 3 * C}, {C, C}, {C, 4 * C}, {4 * C, C}, {C, CFG.padded_vocab_size}};
    int same = 1, saved = ta_get_threads();
    TaRng rng;
    ta_rng_seed(&rng, 99);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int c = shapes[s][0], oc = shapes[s][1];
        size_t nin = (size_t)N * c, nw = (size_t)oc * c, nout = (size_t)N * oc;
        float *in = ta_malloc(nin * 4, "in"), *w = ta_malloc(nw * 4, "w"), *dout = ta_malloc(nout * 4, "do");
        float *o[2], *di[2], *dw[2];
        for (size_t i = 0; i < nin; i++) in[i] = (float)ta_rng_normal(&rng);
        for (size_t i = 0; i < nw; i++) w[i] = (float)ta_rng_normal(&rng);
        for (size_t i = 0; i < nout; i++) dout[i] = (float)ta_rng_normal(&rng);
        for (int th = 0; th < 2; th++) {
            ta_set_threads(th + 1);
            o[th] = ta_malloc(nout * 4, "o");
            di[th] = ta_calloc(nin * 4, "di");
            dw[th] = ta_calloc(nw * 4, "dw");
            matmul_forward(o[th], in, w, NULL, N, c, oc);
            matmul_backward(di[th], dw[th], NULL, dout, in, w, N, c, oc);
        }
        same &= !count_diff(o[0], o[1], nout) && !count_diff(di[0], di[1], nin) &&
                !count_diff(dw[0], dw[1], nw);
        for (int th = 0; th < 2; th++) { free(o[th]); free(di[th]); free(dw[th]); }
        free(in); free(w); free(dout);
    }
    ta_set_threads(saved);
    return same;
}

/* 1 vs 2 threads: bitwise when sgemm is thread-invariant on this machine (then any
 * difference is ours). Otherwise: one step's gradients agree per tensor to 1e-5 of the
 * tensor's largest gradient (float rounding of reordered sums), the losses and gradient
 * norms of 5 AdamW steps to 1e-6 relative, and every parameter after the 5 steps to 1e-5
 * (measured with the Haswell kernel: 1.3e-6; AdamW divides each gradient by its own RMS, so
 * a last-bit difference in a near-zero gradient could move a parameter by up to ~lr per
 * step, which these 5 steps do not show). */
static void t_thread_counts(void) {
    GPT2 a, b;
    float la[5], lb[5];
    double na[5], nb[5];
    run_at(1, &a, 5, la, na);
    run_at(2, &b, 5, lb, nb);
    size_t d = count_diff(a.params_memory, b.params_memory, a.num_params);
    double worst = 0;
    for (size_t i = 0; i < a.num_params; i++)
        worst = fmax(worst, fabs((double)a.params_memory[i] - b.params_memory[i]));
    gpt2_free(&a);
    gpt2_free(&b);
    int inv = sgemm_thread_invariant();
    double dl = 0, dn = 0;
    for (int s = 0; s < 5; s++) {
        dl = fmax(dl, fabs(la[s] - lb[s]) / fabs(la[s]));
        dn = fmax(dn, fabs(na[s] - nb[s]) / na[s]);
    }
    printf("  OpenBLAS kernel %s: sgemm %s between 1 and 2 threads; after 5 AdamW steps %zu "
           "parameters differ, max |diff| %.3g; losses %.2g, grad norms %.2g relative\n",
           openblas_get_corename(), inv ? "bit-identical" : "differs in the last bits", d, worst,
           dl, dn);
    if (d == 0) return;
    T_CHECK(!inv, "sgemm is bit-identical at 1 and 2 threads here, yet %zu parameters differ: "
            "a kernel of ours depends on the thread count", d);
    run_at(1, &a, 0, NULL, NULL);
    run_at(2, &b, 0, NULL, NULL);
    size_t off = 0;
    char msg[512];
    int ok = 1;
    for (int i = 0; i < NUM_PARAM_TENSORS && ok; i++) {
        double mx = 0;
        for (size_t j = 0; j < a.param_sizes[i]; j++) mx = fmax(mx, fabs(a.grads_memory[off + j]));
        ok = compare(gpt2_param_name(i), b.grads_memory + off, a.grads_memory + off,
                     a.param_sizes[i], 1e-5 * mx + 1e-12, 1e-4, msg, sizeof msg);
        off += a.param_sizes[i];
    }
    gpt2_free(&a);
    gpt2_free(&b);
    T_CHECK(ok, "gradients at 1 vs 2 threads: %s", msg);
    for (int s = 0; s < 5; s++) {
        T_CHECK(fabs(la[s] - lb[s]) <= 1e-6 * fabs(la[s]), "step %d loss %.9g vs %.9g", s, la[s],
                lb[s]);
        T_CHECK(fabs(na[s] - nb[s]) <= 1e-6 * na[s], "step %d grad norm %.9g vs %.9g", s, na[s],
                nb[s]);
    }
    T_CHECK(worst <= 1e-5, "a parameter is %.3g apart after 5 steps (tolerance 1e-5)", worst);
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
    t_run("parity/logits", t_logits);
    t_run("parity/loss", t_loss);
    t_run("forward_only/one_layer_of_activations_same_logits", t_forward_only);
    t_run("parity/grads_all_16_tensors", t_grads);
    t_run("parity/comparator_detects_corruption", t_comparator_detects_corruption);
    t_run("parity/adamw_10_steps", t_adamw);
    t_run("accumulation/4x1_equals_1x4", t_accumulation);
    t_run("lm_head_chunk/loss_and_grads", t_lm_head_chunk);
    t_run("determinism/same_thread_count_bitwise", t_same_thread_count);
    t_run("determinism/1_vs_2_threads", t_thread_counts);
    t_run("bad_input/token_range_and_batch_size", t_bad_input);
    free(LOGITS_COPY);
    gpt2_free(&M);
    ref_free(&REF);
    return t_done();
}
