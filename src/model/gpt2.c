/* gpt2.c — GPT-2 parameters, activations, forward and backward (llm.c layout).
 *
 * Implements: pre-LN GPT-2 with GELU-tanh, learned positions, tied wte / LM head, causal
 * attention; parameters and gradients in one slab each with identical layout; activations
 * sized up front from (B, T). Forward stops at logits + per-token target log-probs; the
 * loss lives in the objective module, which hands back dlogits.
 * A reward model (score_head) adds one tensor, score (C), read at each row's last token
 * (kernels/score.c); its forward stops at the final LayerNorm and its backward starts
 * there, so the LM head's (B,T,C) x (C,Vp) matmuls are skipped, not just unused.
 * Does not implement: dropout (always 0 here), KV-cache decoding (decode.c), I/O
 * (checkpoint module).
 *
 * PyTorch equivalent of one block (tools/ref_gpt2.py has the full module):
 *   x = x + attn_proj(causal_attention(qkv(ln1(x))))
 *   x = x + fc_proj(gelu_tanh(fc(ln2(x))))
 * and logits = ln_f(x) @ wte^T.
 */
#include "tinyalign/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/kernels.h"

static const char *PARAM_NAMES[NUM_PARAM_TENSORS] = {
    "wte",         "wpe",         "ln_1.weight", "ln_1.bias",         "attn.c_attn.weight",
    "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
    "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias", "ln_f.weight",
    "ln_f.bias", "score.weight"};

static const char *KERNEL_KIND_NAMES[NUM_KERNEL_KINDS] = {
    "encoder", "layernorm", "matmul qkv", "attention", "matmul attproj", "residual",
    "matmul fc", "gelu", "matmul fcproj", "lm head matmul", "logsoftmax/dlogits"};

const char *gpt2_kernel_kind_name(int k) {
    TA_ASSERT(k >= 0 && k < NUM_KERNEL_KINDS);
    return KERNEL_KIND_NAMES[k];
}

/* Times one kernel call into m->prof when profiling is on. */
#define PROF(m, dir, kind, call)                                                       \
    do {                                                                               \
        double t0_ = (m)->prof ? ta_now() : 0.0;                                       \
        call;                                                                          \
        if ((m)->prof) (m)->prof->dir[kind] += ta_now() - t0_;                         \
    } while (0)

const char *gpt2_param_name(int i) {
    TA_ASSERT(i >= 0 && i < NUM_PARAM_TENSORS);
    return PARAM_NAMES[i];
}

int gpt2_config_check(GPT2Config *c, TaError *err) {
    if (c->n_layer < 1) return ta_err(err, TA_EINPUT, "model.n_layer must be >= 1, got %d", c->n_layer);
    if (c->n_head < 1) return ta_err(err, TA_EINPUT, "model.n_head must be >= 1, got %d", c->n_head);
    if (c->d_model < 1 || c->d_model % c->n_head != 0)
        return ta_err(err, TA_EINPUT,
                      "model.d_model must be a positive multiple of model.n_head (%d), got %d",
                      c->n_head, c->d_model);
    if (c->vocab_size < 2)
        return ta_err(err, TA_EINPUT, "model.vocab_size must be >= 2, got %d", c->vocab_size);
    if (c->max_seq_len < 1)
        return ta_err(err, TA_EINPUT, "model.max_seq_len must be >= 1, got %d", c->max_seq_len);
    if (c->score_head != 0 && c->score_head != 1)
        return ta_err(err, TA_EINPUT, "score_head must be 0 or 1, got %d", c->score_head);
    /* sizes beyond these would overflow int arithmetic or any machine's memory */
    if (c->vocab_size > (1 << 24))
        return ta_err(err, TA_EINPUT, "model.vocab_size %d is too large (at most %d)", c->vocab_size, 1 << 24);
    if (c->d_model > 65536 || c->n_layer > 4096 || c->n_head > 4096 || c->max_seq_len > (1 << 20))
        return ta_err(err, TA_EINPUT,
                      "model dimensions too large (n_layer %d <= 4096, n_head %d <= 4096, "
                      "d_model %d <= 65536, max_seq_len %d <= 1048576)",
                      c->n_layer, c->n_head, c->d_model, c->max_seq_len);
    double params = 12.0 * c->n_layer * (double)c->d_model * c->d_model +
                    ((double)c->vocab_size + c->max_seq_len) * c->d_model;
    if (params > 4e10)
        return ta_err(err, TA_EINPUT, "model of %.3g parameters is beyond what a CPU run can hold", params);
    c->padded_vocab_size = (c->vocab_size + 63) / 64 * 64;
    return TA_OK;
}

static void fill_param_sizes(size_t *s, const GPT2Config *cfg) {
    size_t Vp = cfg->padded_vocab_size, C = cfg->d_model, maxT = cfg->max_seq_len,
           L = cfg->n_layer;
    s[P_WTE] = Vp * C;
    s[P_WPE] = maxT * C;
    s[P_LN1W] = L * C;
    s[P_LN1B] = L * C;
    s[P_QKVW] = L * 3 * C * C;
    s[P_QKVB] = L * 3 * C;
    s[P_ATTPROJW] = L * C * C;
    s[P_ATTPROJB] = L * C;
    s[P_LN2W] = L * C;
    s[P_LN2B] = L * C;
    s[P_FCW] = L * 4 * C * C;
    s[P_FCB] = L * 4 * C;
    s[P_FCPROJW] = L * C * 4 * C;
    s[P_FCPROJB] = L * C;
    s[P_LNFW] = C;
    s[P_LNFB] = C;
    s[P_SCORE] = cfg->score_head ? C : 0;
}

/* Carves a slab into the named tensors of a ParamTensors (same order as the enum). */
static void point_params(ParamTensors *p, float *mem, const size_t *sizes) {
    float **ptrs[NUM_PARAM_TENSORS] = {&p->wte,      &p->wpe,      &p->ln1w,     &p->ln1b,
                                       &p->qkvw,     &p->qkvb,     &p->attprojw, &p->attprojb,
                                       &p->ln2w,     &p->ln2b,     &p->fcw,      &p->fcb,
                                       &p->fcprojw,  &p->fcprojb,  &p->lnfw,     &p->lnfb,
                                       &p->score};
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) {
        *ptrs[i] = mem;
        mem += sizes[i];
    }
}

void gpt2_init(GPT2 *m, const GPT2Config *cfg, int with_grads) {
    memset(m, 0, sizeof *m);
    TA_ASSERT(cfg->padded_vocab_size >= cfg->vocab_size && cfg->padded_vocab_size % 64 == 0);
    m->config = *cfg;
    fill_param_sizes(m->param_sizes, cfg);
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) m->num_params += m->param_sizes[i];
    m->params_memory = ta_aligned_alloc(m->num_params * sizeof(float), "model parameters");
    point_params(&m->params, m->params_memory, m->param_sizes);
    if (with_grads) {
        m->grads_memory = ta_aligned_alloc(m->num_params * sizeof(float), "model gradients");
        point_params(&m->grads, m->grads_memory, m->param_sizes);
    }
}

void gpt2_init_weights(GPT2 *m, uint64_t seed) {
    const GPT2Config *c = &m->config;
    TaRng rng;
    ta_rng_seed(&rng, seed);
    memset(m->params_memory, 0, m->num_params * sizeof(float));
    const float std = 0.02f;
    const float resid_std = 0.02f / sqrtf(2.0f * (float)c->n_layer);
    ParamTensors *p = &m->params;
    /* Draw in slab order so the stream of normals is easy to reproduce elsewhere. */
    for (size_t i = 0; i < (size_t)c->vocab_size * c->d_model; i++)
        p->wte[i] = (float)ta_rng_normal(&rng) * std; /* padded rows stay 0 */
    for (size_t i = 0; i < m->param_sizes[P_WPE]; i++) p->wpe[i] = (float)ta_rng_normal(&rng) * std;
    for (size_t i = 0; i < m->param_sizes[P_LN1W]; i++) p->ln1w[i] = 1.0f;
    for (size_t i = 0; i < m->param_sizes[P_QKVW]; i++) p->qkvw[i] = (float)ta_rng_normal(&rng) * std;
    for (size_t i = 0; i < m->param_sizes[P_ATTPROJW]; i++)
        p->attprojw[i] = (float)ta_rng_normal(&rng) * resid_std;
    for (size_t i = 0; i < m->param_sizes[P_LN2W]; i++) p->ln2w[i] = 1.0f;
    for (size_t i = 0; i < m->param_sizes[P_FCW]; i++) p->fcw[i] = (float)ta_rng_normal(&rng) * std;
    for (size_t i = 0; i < m->param_sizes[P_FCPROJW]; i++)
        p->fcprojw[i] = (float)ta_rng_normal(&rng) * resid_std;
    for (size_t i = 0; i < m->param_sizes[P_LNFW]; i++) p->lnfw[i] = 1.0f;
    for (size_t i = 0; i < m->param_sizes[P_SCORE]; i++) p->score[i] = (float)ta_rng_normal(&rng) * std;
}

void gpt2_set_score_head(GPT2 *m, int on, uint64_t seed) {
    TA_ASSERT(m->params_memory && !m->acts_memory && (on == 0 || on == 1));
    if (m->config.score_head == on) return;
    GPT2 n;
    GPT2Config c = m->config;
    c.score_head = on;
    gpt2_init(&n, &c, m->grads_memory != NULL);
    /* the head is the last tensor of the slab: the trunk is the same prefix in both */
    size_t trunk = m->num_params - m->param_sizes[P_SCORE];
    memcpy(n.params_memory, m->params_memory, trunk * sizeof(float));
    if (n.grads_memory) memset(n.grads_memory, 0, n.num_params * sizeof(float));
    if (on) {
        TaRng rng;
        ta_rng_seed(&rng, seed ^ 0x5C0E5C0E5C0E5C0Eull);
        for (size_t i = 0; i < n.param_sizes[P_SCORE]; i++)
            n.params.score[i] = (float)ta_rng_normal(&rng) * 0.02f;
    }
    n.prof = m->prof;
    n.hidden_only = m->hidden_only;
    gpt2_free(m);
    *m = n;
}

static void fill_act_sizes(size_t *s, const GPT2Config *cfg, int B, int T) {
    size_t Bs = B, Ts = T, C = cfg->d_model, L = cfg->n_layer, NH = cfg->n_head,
           Vp = cfg->padded_vocab_size;
    s[A_ENCODED] = Bs * Ts * C;
    s[A_LN1] = L * Bs * Ts * C;
    s[A_LN1MEAN] = L * Bs * Ts;
    s[A_LN1RSTD] = L * Bs * Ts;
    s[A_QKV] = L * Bs * Ts * 3 * C;
    s[A_ATTY] = L * Bs * Ts * C;
    s[A_ATT] = L * Bs * NH * Ts * Ts;
    s[A_ATTPROJ] = L * Bs * Ts * C;
    s[A_RESID2] = L * Bs * Ts * C;
    s[A_LN2] = L * Bs * Ts * C;
    s[A_LN2MEAN] = L * Bs * Ts;
    s[A_LN2RSTD] = L * Bs * Ts;
    s[A_FCH] = L * Bs * Ts * 4 * C;
    s[A_FCHGELU] = L * Bs * Ts * 4 * C;
    s[A_FCPROJ] = L * Bs * Ts * C;
    s[A_RESID3] = L * Bs * Ts * C;
    s[A_LNF] = Bs * Ts * C;
    s[A_LNFMEAN] = Bs * Ts;
    s[A_LNFRSTD] = Bs * Ts;
    s[A_LOGITS] = Bs * Ts * Vp;
    s[A_LSE] = Bs * Ts;
    s[A_LOGP] = Bs * Ts;
    s[A_DLOGP] = Bs * Ts;
}

/* A hidden-only model (a reward model) has no LM head activations. */
static void drop_lm_head_acts(size_t *s) {
    s[A_LOGITS] = s[A_LSE] = s[A_LOGP] = s[A_DLOGP] = 0;
}

void gpt2_alloc_acts(GPT2 *m, int B, int T) {
    TA_ASSERT(B >= 1 && T >= 1 && T <= m->config.max_seq_len);
    if (m->acts_memory && B <= m->B && T <= m->T) return;
    TA_ASSERT(!m->acts_borrowed);
    free(m->acts_memory);
    free(m->back_memory);
    free(m->inputs);
    free(m->targets);
    m->B = B;
    m->T = T;
    fill_act_sizes(m->act_sizes, &m->config, B, T);
    if (m->hidden_only) drop_lm_head_acts(m->act_sizes);
    m->num_acts = 0;
    for (int i = 0; i < NUM_ACT_TENSORS; i++) m->num_acts += m->act_sizes[i];
    m->acts_memory = ta_aligned_alloc(m->num_acts * sizeof(float), "activations");
    float **ptrs[NUM_ACT_TENSORS] = {
        &m->acts.encoded, &m->acts.ln1,      &m->acts.ln1_mean, &m->acts.ln1_rstd,
        &m->acts.qkv,     &m->acts.atty,     &m->acts.att,      &m->acts.attproj,
        &m->acts.resid2,  &m->acts.ln2,      &m->acts.ln2_mean, &m->acts.ln2_rstd,
        &m->acts.fch,     &m->acts.fch_gelu, &m->acts.fcproj,   &m->acts.resid3,
        &m->acts.lnf,     &m->acts.lnf_mean, &m->acts.lnf_rstd, &m->acts.logits,
        &m->acts.lse,     &m->acts.logp,     &m->acts.dlogp};
    float *p = m->acts_memory;
    for (int i = 0; i < NUM_ACT_TENSORS; i++) {
        *ptrs[i] = p;
        p += m->act_sizes[i];
    }
    m->inputs = ta_calloc(sizeof(int) * (size_t)B * T, "input tokens");
    m->targets = ta_calloc(sizeof(int) * (size_t)B * T, "targets");
    m->back_memory = NULL;
    if (m->grads_memory) {
        size_t BT = (size_t)B * T, C = m->config.d_model, NH = m->config.n_head;
        size_t n = 3 * BT * C + BT * 3 * C + 2 * BT * 4 * C + B * NH * (size_t)T * T;
        m->back_memory = ta_aligned_alloc(n * sizeof(float), "backward scratch");
        float *q = m->back_memory;
        m->back.dresid = q; q += BT * C;
        m->back.dbuf_c = q; q += BT * C;
        m->back.dbuf_c2 = q; q += BT * C;
        m->back.dqkv = q; q += BT * 3 * C;
        m->back.dfch = q; q += BT * 4 * C;
        m->back.dfchg = q; q += BT * 4 * C;
        m->back.attscr = q;
    }
}

void gpt2_borrow_acts(GPT2 *dst, GPT2 *src) {
    TA_ASSERT(!dst->acts_memory && !dst->grads_memory && src->acts_memory);
    TA_ASSERT(dst->config.d_model == src->config.d_model &&
              dst->config.n_layer == src->config.n_layer &&
              dst->config.n_head == src->config.n_head &&
              dst->config.padded_vocab_size == src->config.padded_vocab_size);
    dst->B = src->B;
    dst->T = src->T;
    memcpy(dst->act_sizes, src->act_sizes, sizeof dst->act_sizes);
    dst->num_acts = src->num_acts;
    dst->acts_memory = src->acts_memory;
    dst->acts = src->acts;
    dst->inputs = src->inputs;
    dst->targets = src->targets;
    dst->acts_borrowed = 1;
}

void gpt2_free(GPT2 *m) {
    free(m->params_memory);
    free(m->grads_memory);
    if (!m->acts_borrowed) {
        free(m->acts_memory);
        free(m->inputs);
        free(m->targets);
    }
    free(m->back_memory);
    memset(m, 0, sizeof *m);
}

static size_t back_floats(const GPT2 *m) {
    if (!m->back_memory) return 0;
    size_t BT = (size_t)m->B * m->T, C = m->config.d_model;
    return 3 * BT * C + BT * 3 * C + 2 * BT * 4 * C + (size_t)m->B * m->config.n_head * m->T * m->T;
}

void gpt2_memory_report(const GPT2 *m, char *buf, size_t cap) {
    const double MiB = 1024.0 * 1024.0;
    double p = m->num_params * 4.0 / MiB;
    double g = m->grads_memory ? p : 0.0;
    double a = m->num_acts * 4.0 / MiB;
    double s = back_floats(m) * 4.0 / MiB;
    snprintf(buf, cap,
             "model: %.2fM params | memory: params %.1f MiB, grads %.1f MiB, activations %.1f "
             "MiB (B=%d T=%d), backward scratch %.1f MiB",
             m->num_params / 1e6, p, g, a, m->B, m->T, s);
}

/* Checks the shape and the ids (targets may be NULL), stores them for backward. */
static int forward_inputs(GPT2 *m, const int *tokens, const int *targets, int B, int T,
                          TaError *err) {
    TA_ASSERT(m->acts_memory != NULL);
    if (B > m->B || T > m->T)
        return ta_err(err, TA_EINPUT,
                      "batch (B=%d, T=%d) larger than the activations allocated (B=%d, T=%d)", B,
                      T, m->B, m->T);
    const int V = m->config.vocab_size;
    const size_t BT = (size_t)B * T;
    for (size_t i = 0; i < BT; i++) {
        if (tokens[i] < 0 || tokens[i] >= V)
            return ta_err(err, TA_EINPUT, "token id %d at row %zu position %zu is outside [0, %d)",
                          tokens[i], i / T, i % T, V);
        if (targets && targets[i] >= V)
            return ta_err(err, TA_EINPUT,
                          "target id %d at row %zu position %zu is outside [0, %d)", targets[i],
                          i / T, i % T, V);
    }
    memcpy(m->inputs, tokens, BT * sizeof(int));
    if (targets) memcpy(m->targets, targets, BT * sizeof(int));
    else for (size_t i = 0; i < BT; i++) m->targets[i] = -1;
    /* remember the shape of this forward for backward */
    m->cur_B = B;
    m->cur_T = T;
    return TA_OK;
}

/* The trunk: embeddings, L blocks, final LayerNorm -> acts.lnf (cur_B, cur_T, C). */
static void forward_trunk(GPT2 *m) {
    const GPT2Config *cfg = &m->config;
    const int B = m->cur_B, T = m->cur_T, C = cfg->d_model, L = cfg->n_layer, NH = cfg->n_head;
    const int *tokens = m->inputs;
    const size_t BT = (size_t)B * T;

    ParamTensors *p = &m->params;
    ActTensors *a = &m->acts;
    PROF(m, fwd, K_ENCODER, encoder_forward(a->encoded, tokens, p->wte, p->wpe, B, T, C));
    for (int l = 0; l < L; l++) {
        const float *resid = l == 0 ? a->encoded : a->resid3 + (size_t)(l - 1) * BT * C;
        size_t oc = (size_t)l * BT * C, ob = (size_t)l * BT;
        float *ln1 = a->ln1 + oc, *qkv = a->qkv + 3 * oc, *atty = a->atty + oc;
        float *att = a->att + (size_t)l * B * NH * T * T;
        float *attproj = a->attproj + oc, *resid2 = a->resid2 + oc, *ln2 = a->ln2 + oc;
        float *fch = a->fch + 4 * oc, *fchg = a->fch_gelu + 4 * oc, *fcproj = a->fcproj + oc;
        float *resid3 = a->resid3 + oc;
        PROF(m, fwd, K_LAYERNORM,
             layernorm_forward(ln1, a->ln1_mean + ob, a->ln1_rstd + ob, resid, p->ln1w + l * C,
                               p->ln1b + l * C, (int)BT, C));
        PROF(m, fwd, K_MM_QKV,
             matmul_forward(qkv, ln1, p->qkvw + (size_t)l * 3 * C * C, p->qkvb + l * 3 * C,
                            (int)BT, C, 3 * C));
        PROF(m, fwd, K_ATTENTION, attention_forward(atty, att, qkv, B, T, C, NH));
        PROF(m, fwd, K_MM_ATTPROJ,
             matmul_forward(attproj, atty, p->attprojw + (size_t)l * C * C, p->attprojb + l * C,
                            (int)BT, C, C));
        PROF(m, fwd, K_RESIDUAL, residual_forward(resid2, resid, attproj, BT * C));
        PROF(m, fwd, K_LAYERNORM,
             layernorm_forward(ln2, a->ln2_mean + ob, a->ln2_rstd + ob, resid2, p->ln2w + l * C,
                               p->ln2b + l * C, (int)BT, C));
        PROF(m, fwd, K_MM_FC,
             matmul_forward(fch, ln2, p->fcw + (size_t)l * 4 * C * C, p->fcb + l * 4 * C,
                            (int)BT, C, 4 * C));
        PROF(m, fwd, K_GELU, gelu_forward(fchg, fch, BT * 4 * C));
        PROF(m, fwd, K_MM_FCPROJ,
             matmul_forward(fcproj, fchg, p->fcprojw + (size_t)l * 4 * C * C,
                            p->fcprojb + l * C, (int)BT, 4 * C, C));
        PROF(m, fwd, K_RESIDUAL, residual_forward(resid3, resid2, fcproj, BT * C));
    }
    const float *last = a->resid3 + (size_t)(L - 1) * BT * C;
    PROF(m, fwd, K_LAYERNORM,
         layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, last, p->lnfw, p->lnfb, (int)BT, C));
}

int gpt2_forward(GPT2 *m, const int *tokens, const int *targets, int B, int T, TaError *err) {
    TA_ASSERT(!m->hidden_only); /* no logits buffer */
    int rc = forward_inputs(m, tokens, targets, B, T, err);
    if (rc != TA_OK) return rc;
    forward_trunk(m);
    const int V = m->config.vocab_size, Vp = m->config.padded_vocab_size, C = m->config.d_model;
    const size_t BT = (size_t)B * T;
    ActTensors *a = &m->acts;
    PROF(m, fwd, K_LM_HEAD, matmul_forward(a->logits, a->lnf, m->params.wte, NULL, (int)BT, C, Vp));
    PROF(m, fwd, K_LOGSOFTMAX,
         logsoftmax_gather(a->logp, a->lse, a->logits, m->targets, (int)BT, V, Vp));
    return TA_OK;
}

int gpt2_forward_hidden(GPT2 *m, const int *tokens, int B, int T, TaError *err) {
    int rc = forward_inputs(m, tokens, NULL, B, T, err);
    if (rc == TA_OK) forward_trunk(m);
    return rc;
}

void gpt2_score_forward(const GPT2 *m, const int *last, float *rewards) {
    TA_ASSERT(m->config.score_head);
    for (int b = 0; b < m->cur_B; b++) TA_ASSERT(last[b] >= 0 && last[b] < m->cur_T);
    score_forward(rewards, m->acts.lnf, last, m->params.score, m->cur_B, m->cur_T,
                  m->config.d_model);
}

void gpt2_zero_grad(GPT2 *m) {
    TA_ASSERT(m->grads_memory != NULL);
    memset(m->grads_memory, 0, m->num_params * sizeof(float));
}

/* The trunk's backward from back.dbuf_c = dL/d lnf (cur_B, cur_T, C). */
static void backward_trunk(GPT2 *m) {
    const GPT2Config *cfg = &m->config;
    const int B = m->cur_B, T = m->cur_T, C = cfg->d_model, L = cfg->n_layer, NH = cfg->n_head;
    const size_t BT = (size_t)B * T;
    ParamTensors *p = &m->params, *g = &m->grads;
    ActTensors *a = &m->acts;
    BackScratch *s = &m->back;
    /* lnf = LN(resid3[L-1]) */
    memset(s->dresid, 0, BT * C * sizeof(float));
    const float *last = a->resid3 + (size_t)(L - 1) * BT * C;
    PROF(m, bwd, K_LAYERNORM,
         layernorm_backward(s->dresid, g->lnfw, g->lnfb, s->dbuf_c, last, p->lnfw, a->lnf_mean,
                            a->lnf_rstd, (int)BT, C));

    for (int l = L - 1; l >= 0; l--) {
        const float *resid = l == 0 ? a->encoded : a->resid3 + (size_t)(l - 1) * BT * C;
        size_t oc = (size_t)l * BT * C, ob = (size_t)l * BT;
        const float *ln1 = a->ln1 + oc, *qkv = a->qkv + 3 * oc, *atty = a->atty + oc;
        const float *att = a->att + (size_t)l * B * NH * T * T;
        const float *resid2 = a->resid2 + oc, *ln2 = a->ln2 + oc;
        const float *fch = a->fch + 4 * oc, *fchg = a->fch_gelu + 4 * oc;
        /* dresid holds d resid3[l]. resid3 = resid2 + fcproj: both get dresid, so dresid
         * keeps flowing (it becomes d resid2) and serves as d fcproj. */
        memset(s->dfchg, 0, BT * 4 * C * sizeof(float));
        PROF(m, bwd, K_MM_FCPROJ,
             matmul_backward(s->dfchg, g->fcprojw + (size_t)l * 4 * C * C, g->fcprojb + l * C,
                             s->dresid, fchg, p->fcprojw + (size_t)l * 4 * C * C, (int)BT, 4 * C,
                             C));
        memset(s->dfch, 0, BT * 4 * C * sizeof(float));
        PROF(m, bwd, K_GELU, gelu_backward(s->dfch, fch, s->dfchg, BT * 4 * C));
        memset(s->dbuf_c, 0, BT * C * sizeof(float));
        PROF(m, bwd, K_MM_FC,
             matmul_backward(s->dbuf_c, g->fcw + (size_t)l * 4 * C * C, g->fcb + l * 4 * C,
                             s->dfch, ln2, p->fcw + (size_t)l * 4 * C * C, (int)BT, C, 4 * C));
        /* ln2 = LN(resid2): accumulate into dresid (now d resid2) */
        PROF(m, bwd, K_LAYERNORM,
             layernorm_backward(s->dresid, g->ln2w + l * C, g->ln2b + l * C, s->dbuf_c, resid2,
                                p->ln2w + l * C, a->ln2_mean + ob, a->ln2_rstd + ob, (int)BT, C));
        /* resid2 = resid + attproj: dresid is d attproj and (continuing) d resid */
        memset(s->dbuf_c, 0, BT * C * sizeof(float));
        PROF(m, bwd, K_MM_ATTPROJ,
             matmul_backward(s->dbuf_c, g->attprojw + (size_t)l * C * C, g->attprojb + l * C,
                             s->dresid, atty, p->attprojw + (size_t)l * C * C, (int)BT, C, C));
        memset(s->dqkv, 0, BT * 3 * C * sizeof(float));
        PROF(m, bwd, K_ATTENTION,
             attention_backward(s->dqkv, s->attscr, s->dbuf_c, qkv, att, B, T, C, NH));
        memset(s->dbuf_c2, 0, BT * C * sizeof(float));
        PROF(m, bwd, K_MM_QKV,
             matmul_backward(s->dbuf_c2, g->qkvw + (size_t)l * 3 * C * C, g->qkvb + l * 3 * C,
                             s->dqkv, ln1, p->qkvw + (size_t)l * 3 * C * C, (int)BT, C, 3 * C));
        PROF(m, bwd, K_LAYERNORM,
             layernorm_backward(s->dresid, g->ln1w + l * C, g->ln1b + l * C, s->dbuf_c2, resid,
                                p->ln1w + l * C, a->ln1_mean + ob, a->ln1_rstd + ob, (int)BT, C));
    }
    /* dresid is now d encoded */
    PROF(m, bwd, K_ENCODER, encoder_backward(g->wte, g->wpe, s->dresid, m->inputs, B, T, C));
}

void gpt2_backward(GPT2 *m) {
    TA_ASSERT(m->grads_memory != NULL && m->back_memory != NULL && !m->hidden_only);
    const int C = m->config.d_model, Vp = m->config.padded_vocab_size;
    const size_t BT = (size_t)m->cur_B * m->cur_T;
    /* logits = lnf @ wte^T  ->  dlnf = dlogits @ wte, dwte += dlogits^T @ lnf */
    memset(m->back.dbuf_c, 0, BT * C * sizeof(float));
    PROF(m, bwd, K_LM_HEAD,
         matmul_backward(m->back.dbuf_c, m->grads.wte, NULL, m->acts.logits, m->acts.lnf,
                         m->params.wte, (int)BT, C, Vp));
    backward_trunk(m);
}

void gpt2_score_backward(GPT2 *m, const int *last, const float *drewards) {
    TA_ASSERT(m->grads_memory != NULL && m->back_memory != NULL && m->config.score_head);
    const int C = m->config.d_model;
    const size_t BT = (size_t)m->cur_B * m->cur_T;
    /* r_b = lnf[b, last_b] . score  ->  dscore += sum_b g_b lnf[b, last_b],
     * dlnf[b, last_b] = g_b score, dlnf = 0 elsewhere (kernels/score.c) */
    memset(m->back.dbuf_c, 0, BT * C * sizeof(float));
    PROF(m, bwd, K_LM_HEAD,
         score_backward(m->back.dbuf_c, m->grads.score, drewards, m->acts.lnf, last,
                        m->params.score, m->cur_B, m->cur_T, C));
    backward_trunk(m);
}

double gpt2_flops_per_token(const GPT2Config *c, int T) {
    /* 6 FLOPs per matmul weight per token (2 forward, 4 backward), counting the LM head
     * (Vp x C), plus attention scores and mixing: 12 * L * T * C per token (fwd+bwd,
     * PaLM appendix B convention, no causal discount). */
    double C = c->d_model, L = c->n_layer, Vp = c->padded_vocab_size;
    double n_matmul = L * 12.0 * C * C + Vp * C;
    return 6.0 * n_matmul + 12.0 * L * (double)T * C;
}
