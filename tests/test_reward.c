/* test_reward.c — the reward model (GPT-2 + the scalar head score.weight read at each
 * row's last token) against PyTorch (tools/ref_reward.py, generated on every `make test`):
 * rewards, the Bradley-Terry loss with margins and centering, its metrics, and every
 * parameter gradient (the score head's included) through the training step (train_step,
 * train_step_eval) that `train` runs. Also: 3 micro-batches == 1 batch, padding after a
 * row's last token changes nothing, no LM-head activations are allocated, the head's
 * storage (save / load under HF names, config.json's architecture, a plain model given as a
 * reward model refused, adding / removing a head keeps the trunk), and AdamW state with a
 * head. The finite-difference checks of the head and the loss are in test_kernels
 * (fd/score_head) and test_objective (reward_fd). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "refio.h"
#include "testhelp.h"
#include "tinyalign/common.h"
#include "tinyalign/model.h"
#include "tinyalign/model_io.h"
#include "tinyalign/optim.h"
#include "tinyalign/train.h"

static RefFile REF;
static GPT2Config CFG;
static int B, T, P;
static CfgObjective OBJ;

static int compare(const char *what, const float *got, const float *ref, size_t n, double atol,
                   double rtol, char *msg, size_t cap) {
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        if (!(d <= atol + rtol * fabs((double)ref[i]))) {
            snprintf(msg, cap, "%s: element %zu got %.9g, reference %.9g (atol %.2g, rtol %.2g)",
                     what, i, got[i], ref[i], atol, rtol);
            return 0;
        }
    }
    return 1;
}

static void setup_model(GPT2 *m) {
    gpt2_init(m, &CFG, 1);
    m->hidden_only = 1;
    RefRecord *p = ref_get(&REF, "params");
    TA_ASSERT(p && p->n == m->num_params);
    memcpy(m->params_memory, p->data, p->n * sizeof(float));
}

/* StepSource.fill: micro-batch k of K holds pairs [k*P/K, (k+1)*P/K) in the pair layout. */
typedef struct {
    int K;
    int pad_token; /* >= 0: replace every position after a row's last token by this id */
} RefRows;

static int fill_ref(void *ctx, int k, Batch *b, TaError *err) {
    const RefRows *r = ctx;
    (void)err;
    const int *tok = ref_get(&REF, "tokens")->data, *tgt = ref_get(&REF, "targets")->data,
              *msk = ref_get(&REF, "loss_mask")->data, *last = ref_get(&REF, "last")->data;
    const float *mg = ref_get(&REF, "margins")->data;
    int per = P / r->K;
    TA_ASSERT(b->layout == ROWS_SCORE);
    b->B = 2 * per;
    b->T = T;
    b->n_pairs = per;
    for (int j = 0; j < b->B; j++) {
        int row = j < per ? k * per + j : P + k * per + (j - per);
        for (int t = 0; t < T; t++) {
            size_t s = (size_t)row * T + t, d = (size_t)j * T + t;
            b->tokens[d] = r->pad_token >= 0 && t > last[row] ? r->pad_token : tok[s];
            b->targets[d] = tgt[s];
            b->loss_mask[d] = (uint8_t)msk[s];
        }
        b->lengths[j] = last[row];
        b->weights[j] = 1.0f;
        b->margins[j] = mg[row];
        b->example_ids[j] = row % P;
    }
    return TA_OK;
}

static void step_init(TrainStep *st, GPT2 *m, AdamW *optim, RefRows *rows, StepSource *src) {
    StepSetup ss = {.model = m, .optim = optim, .objective = &OBJ, .K = rows->K,
                    .rows = 2 * (P / rows->K), .T = T};
    train_step_init(st, &ss);
    *src = (StepSource){.fill = fill_ref, .ctx = rows};
}

static GPT2 M;
static StepResult R;
static size_t OFFSETS[NUM_PARAM_TENSORS];

static void run_reference_step(void) {
    setup_model(&M);
    TrainStep st;
    RefRows rows = {.K = 1, .pad_token = -1};
    StepSource src;
    step_init(&st, &M, NULL, &rows, &src);
    TaError err;
    TA_ASSERT(train_step(&st, &src, 0, &R, &err) == TA_OK && !R.nonfinite);
    train_step_free(&st);
    size_t off = 0;
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) { OFFSETS[i] = off; off += M.param_sizes[i]; }
}

static void t_rewards(void) {
    /* the forward alone: hidden states, then the head at each row's last token */
    TrainStep st;
    RefRows rows = {.K = 1, .pad_token = -1};
    StepSource src;
    GPT2 m;
    setup_model(&m);
    step_init(&st, &m, NULL, &rows, &src);
    TaError err;
    T_CHECK(fill_ref(&rows, 0, &st.micro[0], &err) == TA_OK, "fill");
    Batch *b = &st.micro[0];
    float r[64];
    T_CHECK(gpt2_forward_hidden(&m, b->tokens, b->B, b->T, &err) == TA_OK, "%s", err.msg);
    gpt2_score_forward(&m, b->lengths, r);
    char msg[512];
    int ok = compare("rewards", r, ref_get(&REF, "rewards")->data, (size_t)B, 1e-5, 1e-5, msg, sizeof msg);
    T_CHECK(m.acts.logits == NULL || m.act_sizes[A_LOGITS] == 0, "a reward model allocated logits");
    train_step_free(&st);
    gpt2_free(&m);
    T_CHECK(ok, "%s", msg);
}

static void t_loss_and_metrics(void) {
    double ref = ((float *)ref_get(&REF, "loss")->data)[0];
    T_CHECK(fabs(R.loss - ref) <= 1e-5 * fabs(ref), "loss %.9g vs PyTorch %.9g", R.loss, ref);
    const float *rm = ref_get(&REF, "metrics")->data;
    const ObjectiveMetricId ids[4] = {OBJ_METRIC_REWARDS_CHOSEN, OBJ_METRIC_REWARDS_REJECTED,
                                      OBJ_METRIC_REWARDS_MARGIN, OBJ_METRIC_ACCURACY};
    for (int i = 0; i < 4; i++) {
        const ObjectiveMetric *x = &R.metrics.m[ids[i]];
        T_CHECK(x->present && fabs(x->value - rm[i]) <= 1e-5 + 1e-5 * fabs(rm[i]),
                "%s: %.9g vs PyTorch %.9g", x->name, x->value, (double)rm[i]);
    }
    T_CHECK(!R.metrics.m[OBJ_METRIC_REWARDS_ACCURACY].present && !R.metrics.m[OBJ_METRIC_NLL].present,
            "only TRL RewardTrainer's metrics");
}

static void t_grads(void) {
    RefRecord *r = ref_get(&REF, "grads");
    T_CHECK(r->n == M.num_params, "grad size %zu vs %zu", r->n, M.num_params);
    const float *ref = r->data;
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) {
        double mx = 0;
        for (size_t j = 0; j < M.param_sizes[i]; j++) mx = fmax(mx, fabs(ref[OFFSETS[i] + j]));
        char msg[512];
        int ok = compare(gpt2_param_name(i), M.grads_memory + OFFSETS[i], ref + OFFSETS[i],
                         M.param_sizes[i], 1e-4 * mx + 1e-9, 1e-3, msg, sizeof msg);
        printf("  grad %-20s max|ref| %.3g %s\n", gpt2_param_name(i), mx, ok ? "ok" : "MISMATCH");
        T_CHECK(ok, "%s", msg);
    }
    T_CHECK(M.param_sizes[P_SCORE] == (size_t)CFG.d_model, "the head is one (C) tensor");
    /* the LM head is not used: wte's gradient is the embedding's only, so the rows of ids
     * that appear in no input have exactly zero gradient */
    const int *tok = ref_get(&REF, "tokens")->data;
    int seen[256] = {0};
    for (int i = 0; i < B * T; i++) seen[tok[i]] = 1;
    for (int v = 0; v < CFG.padded_vocab_size; v++)
        for (int c = 0; !seen[v] && c < CFG.d_model; c++)
            T_CHECK(M.grads.wte[(size_t)v * CFG.d_model + c] == 0.0f, "wte row %d has a gradient", v);
}

/* 3 micro-batches of one pair == 1 batch of 3 pairs (step normalisers: same gradient up to
 * float rounding of the separate forwards). */
static void t_accumulate(void) {
    GPT2 m;
    setup_model(&m);
    TrainStep st;
    RefRows rows = {.K = 3, .pad_token = -1};
    StepSource src;
    step_init(&st, &m, NULL, &rows, &src);
    StepResult r;
    TaError err;
    T_CHECK(train_step(&st, &src, 0, &r, &err) == TA_OK && !r.nonfinite, "%s", err.msg);
    char msg[512];
    double mx = 0;
    for (size_t i = 0; i < m.num_params; i++) mx = fmax(mx, fabs(M.grads_memory[i]));
    int ok = compare("accumulated grads", m.grads_memory, M.grads_memory, m.num_params, 1e-5 * mx,
                     1e-4, msg, sizeof msg);
    double dl = fabs(r.loss - R.loss);
    train_step_free(&st);
    gpt2_free(&m);
    T_CHECK(ok, "%s", msg);
    T_CHECK(dl <= 1e-6 * fabs(R.loss), "loss %.9g vs %.9g", r.loss, R.loss);
}

/* model.precision bf16 for a reward model: the trunk's matmuls take bf16 operands, the
 * final LayerNorm output the head reads stays fp32 (a hidden-only model has no LM head to
 * feed it to in bf16). Rewards and every gradient against PyTorch's fp32 within the limits
 * derived in test_bf16.c: r = 2^-8 / sqrt 3 per rounding, independent roundings in
 * quadrature, gain G = 1.5. The reward depends on the 10 roundings of each layer's
 * forward (no LN_f output, no wte: the LM model's +2 is gone), n_fwd = 10 L; the backward
 * adds 6 per layer (the dout of fcproj, fc, attproj, attention dY, dS, dqkv; no dlogits),
 * n_bwd = 16 L. Without native bf16 the refusal naming model.precision is checked. */
static void t_bf16(void) {
    GPT2 m;
    setup_model(&m);
    TaError err;
    if (gpt2_set_compute(&m, BACKEND_ONEDNN, PRECISION_BF16, &err) != TA_OK) {
        gpt2_free(&m);
        T_CHECK(strstr(err.msg, "model.precision") != NULL, "refusal without the key: %s", err.msg);
        printf("  (no native bf16 here: %s)\n", err.msg);
        return;
    }
    TrainStep st;
    RefRows rows = {.K = 1, .pad_token = -1};
    StepSource src;
    step_init(&st, &m, NULL, &rows, &src);
    StepResult r;
    T_CHECK(train_step(&st, &src, 0, &r, &err) == TA_OK && !r.nonfinite, "%s", err.msg);
    T_CHECK(m.acts.lnf != NULL && m.acts16.lnf == NULL, "the head's input is not fp32");
    float rew[64];
    TA_ASSERT(B <= 64);
    gpt2_score_forward(&m, st.micro[0].lengths, rew); /* the last forward's rows */
    const double r0 = 0.0039062500 / 1.7320508075688772, G = 1.5, L = CFG.n_layer;
    const double lim_f = G * r0 * sqrt(10.0 * L), lim_b = G * r0 * sqrt(16.0 * L);
    char msg[512] = "";
    int ok = 1;
    const float *ref = ref_get(&REF, "rewards")->data;
    double e2 = 0, r2 = 0;
    for (int i = 0; i < B; i++) {
        e2 += ((double)rew[i] - ref[i]) * ((double)rew[i] - ref[i]);
        r2 += (double)ref[i] * ref[i];
    }
    double rel = sqrt(e2 / r2);
    printf("  bf16 rewards: normwise %.3g (limit %.3g)\n", rel, lim_f);
    if (!(rel <= lim_f))
        ok = 0, snprintf(msg, sizeof msg, "rewards normwise %.3g > %.3g", rel, lim_f);
    const float *rg = ref_get(&REF, "grads")->data;
    double worst = 0;
    for (int i = 0; ok && i < NUM_PARAM_TENSORS; i++) {
        size_t n = m.param_sizes[i];
        if (i == P_WTE) n = (size_t)CFG.vocab_size * CFG.d_model; /* the real rows */
        double ge2 = 0, gr2 = 0;
        for (size_t j = 0; j < n; j++) {
            double d = (double)m.grads_memory[OFFSETS[i] + j] - rg[OFFSETS[i] + j];
            ge2 += d * d;
            gr2 += (double)rg[OFFSETS[i] + j] * rg[OFFSETS[i] + j];
        }
        double gr = gr2 > 0 ? sqrt(ge2 / gr2) : (ge2 > 0 ? INFINITY : 0);
        printf("  bf16 grad %-20s normwise %.3g\n", gpt2_param_name(i), gr);
        worst = fmax(worst, gr);
        if (!(gr <= lim_b))
            ok = 0, snprintf(msg, sizeof msg, "grad %s normwise %.3g > %.3g", gpt2_param_name(i),
                             gr, lim_b);
    }
    train_step_free(&st);
    gpt2_free(&m);
    T_CHECK(ok, "%s", msg);
    /* and bf16 really ran: fp32 alone would leave ~1e-6 */
    T_CHECK(worst > 0.1 * r0, "largest gradient error %.3g: no bf16 rounding seen", worst);
}

/* Whatever follows a row's last token cannot change its reward (causal attention). */
static void t_padding_invariance(void) {
    GPT2 m;
    setup_model(&m);
    TrainStep st;
    RefRows rows = {.K = 1, .pad_token = 7};
    StepSource src;
    step_init(&st, &m, NULL, &rows, &src);
    StepResult r;
    TaError err;
    T_CHECK(train_step(&st, &src, 0, &r, &err) == TA_OK, "%s", err.msg);
    double mx = 0;
    for (size_t i = 0; i < m.num_params; i++) mx = fmax(mx, fabs(M.grads_memory[i]));
    char msg[512];
    int ok = compare("grads with other padding", m.grads_memory, M.grads_memory, m.num_params,
                     1e-6 * mx, 1e-5, msg, sizeof msg);
    double dl = fabs(r.loss - R.loss);
    train_step_free(&st);
    gpt2_free(&m);
    T_CHECK(dl <= 1e-6 * fabs(R.loss), "loss %.9g with other padding vs %.9g", r.loss, R.loss);
    T_CHECK(ok, "%s", msg);
}

/* The head on disk: HF names, config.json, round trip, a plain LM refused as a reward model,
 * adding / dropping the head keeps every trunk parameter. */
static void t_storage(void) {
    char dir[] = "/tmp/ta_reward_XXXXXX";
    T_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char rm[64], lm[64], p[128];
    snprintf(rm, sizeof rm, "%s/rm", dir);
    snprintf(lm, sizeof lm, "%s/lm", dir);
    TaError err;
    T_CHECK(model_save_dir(&M, rm, &err) == TA_OK, "%s", err.msg);
    GPT2 a;
    T_CHECK(model_load_reward_dir(&a, rm, 0, &err) == TA_OK, "%s", err.msg);
    T_CHECK(a.config.score_head && a.num_params == M.num_params &&
                !memcmp(a.params_memory, M.params_memory, M.num_params * sizeof(float)),
            "round trip changed the weights");
    snprintf(p, sizeof p, "%s/config.json", rm);
    char *cj = ta_read_file(p, NULL, &err);
    T_CHECK(cj && strstr(cj, "\"GPT2ForSequenceClassification\"") && strstr(cj, "\"num_labels\":\t1"),
            "config.json: %s", cj ? cj : err.msg);
    free(cj);
    /* drop the head: a language model with the same trunk */
    GPT2 b;
    T_CHECK(model_load_dir(&b, rm, 0, &err) == TA_OK, "%s", err.msg);
    gpt2_set_score_head(&b, 0, 1);
    size_t trunk = M.num_params - M.param_sizes[P_SCORE];
    T_CHECK(!b.config.score_head && b.num_params == trunk &&
                !memcmp(b.params_memory, M.params_memory, trunk * sizeof(float)), "drop the head");
    T_CHECK(model_save_dir(&b, lm, &err) == TA_OK, "%s", err.msg);
    GPT2 c;
    T_CHECK(model_load_reward_dir(&c, lm, 0, &err) == TA_EINPUT &&
                strstr(err.msg, "is not a reward model: it has no scalar head (score.weight"),
            "plain LM as a reward model: %s", err.msg);
    /* a fresh head is N(0, 0.02), deterministic in the seed, and leaves the trunk alone */
    gpt2_set_score_head(&b, 1, 5);
    double ss = 0;
    for (int i = 0; i < CFG.d_model; i++) ss += (double)b.params.score[i] * b.params.score[i];
    double sd = sqrt(ss / CFG.d_model);
    T_CHECK(b.config.score_head && sd > 0.01 && sd < 0.04 &&
                !memcmp(b.params_memory, M.params_memory, trunk * sizeof(float)),
            "fresh head: std %g", sd);
    /* weights with a head the config does not announce, and the reverse */
    snprintf(p, sizeof p, "%s/model.safetensors", rm);
    char q[128];
    snprintf(q, sizeof q, "%s/model.safetensors", lm);
    T_CHECK(rename(p, q) == 0, "rename");
    GPT2 d;
    T_CHECK(model_load_dir(&d, lm, 0, &err) == TA_EINPUT &&
                strstr(err.msg, "has a reward head (\"score.weight\") but config.json describes a plain"),
            "unannounced head: %s", err.msg);
    snprintf(q, sizeof q, "%s/model.safetensors", rm);
    gpt2_set_score_head(&b, 0, 0); /* plain LM weights under a reward model's config.json */
    T_CHECK(model_save_safetensors(&b, q, NULL, &err) == TA_OK, "%s", err.msg);
    T_CHECK(model_load_dir(&d, rm, 0, &err) == TA_EINPUT &&
                strstr(err.msg, "no reward head: tensor \"score.weight\" (shape [1, 32]) is missing"),
            "missing head: %s", err.msg);
    gpt2_free(&a);
    gpt2_free(&b);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    T_CHECK(system(cmd) == 0, "cleanup");
}

/* AdamW state of a reward model: its own dimensions string, refused for a plain model. */
static void t_optim_state(void) {
    char path[] = "/tmp/ta_reward_optim_XXXXXX";
    int fd = mkstemp(path);
    T_CHECK(fd >= 0, "mkstemp");
    close(fd);
    AdamWConfig oc = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    AdamW o, o2;
    train_optim_init(&o, &oc, &M);
    for (size_t i = 0; i < o.n; i++) o.m[i] = (float)i, o.v[i] = 1.0f;
    TaError err;
    T_CHECK(optim_save_safetensors(&o, &M, path, NULL, &err) == TA_OK, "%s", err.msg);
    train_optim_init(&o2, &oc, &M);
    T_CHECK(optim_load_safetensors(&o2, &M, path, &err) == TA_OK && !memcmp(o.m, o2.m, o.n * 4),
            "%s", err.msg);
    GPT2 plain;
    GPT2Config c = CFG;
    c.score_head = 0;
    gpt2_init(&plain, &c, 0);
    AdamW o3;
    train_optim_init(&o3, &oc, &plain);
    T_CHECK(optim_load_safetensors(&o3, &plain, path, &err) == TA_EINPUT && strstr(err.msg, "score_head=1"),
            "reward optim state into a plain model: %s", err.msg);
    adamw_free(&o);
    adamw_free(&o2);
    adamw_free(&o3);
    gpt2_free(&plain);
    unlink(path);
}

int main(void) {
    if (ref_load(&REF, ref_path("reward")) != 0) {
        printf("FAIL reward_reference: cannot load %s (tools/ref_reward.py)\n", ref_path("reward"));
        return 1;
    }
    const int *c = ref_get(&REF, "config")->data;
    CFG = (GPT2Config){.n_layer = c[0], .n_head = c[1], .d_model = c[2], .vocab_size = c[3],
                       .max_seq_len = c[4], .score_head = 1};
    B = c[5];
    T = c[6];
    P = c[7];
    TaError err;
    TA_ASSERT(gpt2_config_check(&CFG, &err) == TA_OK);
    OBJ = (CfgObjective){.type = CFG_OBJ_REWARD,
                         .center_rewards_coefficient = ((float *)ref_get(&REF, "coef")->data)[0]};
    ta_set_threads(1);
    run_reference_step();
    t_run("reward_rewards", t_rewards);
    t_run("reward_loss_and_metrics", t_loss_and_metrics);
    t_run("reward_grads_incl_score_head", t_grads);
    t_run("reward_accumulate_3_micro_batches", t_accumulate);
    t_run("reward_padding_invariance", t_padding_invariance);
    t_run("reward_bf16_vs_pytorch_derived_tolerance", t_bf16);
    t_run("reward_head_storage", t_storage);
    t_run("reward_optim_state", t_optim_state);
    gpt2_free(&M);
    ref_free(&REF);
    return t_done();
}
