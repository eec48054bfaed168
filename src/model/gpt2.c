/* gpt2.c — GPT-2 parameters, activations, forward and backward (llm.c layout).
 *
 * Implements: pre-LN GPT-2 with GELU-tanh, learned positions, tied wte / LM head, causal
 * attention; parameters and gradients in one slab each with identical layout; activations
 * sized up front from (B, T). Forward stops at logits + per-token target log-probs; the
 * loss lives in the objective module, which hands back dlogits.
 * Every matmul goes through the model's backend (backend.h). In a bf16 model the matmul
 * operands are bf16 — the weights' bf16 copy (params_bf16, refreshed once per optimizer
 * step) and the activations that only feed matmuls (ActTensors16) — while everything
 * else stays fp32; one code path serves both precisions (ACT_MM / mm_weight pick the
 * operand). The OpenBLAS fp32 path keeps the kernels every earlier checkpoint was made
 * with, bit for bit.
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
    "matmul fc", "gelu", "matmul fcproj", "lm head matmul", "logsoftmax/dlogits",
    "bf16 conversions"};

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
    TaError err;
    TA_ASSERT(backend_init(&m->be, BACKEND_OPENBLAS, PRECISION_FP32, &err) == TA_OK);
}

int gpt2_set_compute(GPT2 *m, BackendKind kind, Precision prec, TaError *err) {
    Backend *be;
    int rc = backend_init(&be, kind, prec, err);
    if (rc != TA_OK) return rc;
    backend_free(m->be);
    m->be = be;
    m->precision = prec;
    free(m->params_bf16);
    m->params_bf16 = NULL;
    if (prec == PRECISION_BF16) {
        m->params_bf16 = ta_aligned_alloc(m->num_params * sizeof(bf16), "bf16 weights");
        gpt2_params_changed(m);
    }
    if (m->acts_memory) { /* same shape, the new layout */
        TA_ASSERT(!m->acts_borrowed);
        int B = m->B, T = m->T;
        m->B = m->T = 0;
        gpt2_alloc_acts(m, B, T);
    }
    return TA_OK;
}

void gpt2_set_lm_chunk(GPT2 *m, int rows) {
    TA_ASSERT(rows >= 0);
    m->lm_chunk = rows;
    if (m->acts_memory) { /* same shape, the new layout */
        TA_ASSERT(!m->acts_borrowed);
        int B = m->B, T = m->T;
        m->B = m->T = 0;
        gpt2_alloc_acts(m, B, T);
    }
}

int gpt2_lm_chunked(const GPT2 *m) {
    return m->lm_chunk > 0 && (size_t)m->lm_chunk < (size_t)m->cur_B * m->cur_T;
}

void gpt2_params_changed(GPT2 *m) {
    if (m->params_bf16) bf16_from_f32_array(m->params_bf16, m->params_memory, m->num_params);
}

/* A bf16 model's forward must see the weights of the current parameters. A write to the
 * parameters not followed by gpt2_params_changed is a programmer error: check a fixed
 * sample of positions spread over the slab (any optimizer step or load changes nearly
 * every weight, so a stale copy is caught at the next forward). */
static void check_bf16_weights(const GPT2 *m) {
    if (!m->params_bf16) return;
    for (size_t k = 0; k < 64; k++) {
        size_t i = (k * 2654435761u + 12345u) % m->num_params;
        if (bf16_from_f32(m->params_memory[i]) != m->params_bf16[i]) {
            fprintf(stderr, "bf16 weights out of date at parameter %zu: the parameters were "
                            "written without gpt2_params_changed()\n", i);
            TA_ASSERT(!"bf16 weights in sync with the parameters");
        }
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
    gpt2_params_changed(m);
}

void gpt2_set_score_head(GPT2 *m, int on, uint64_t seed) {
    TA_ASSERT(m->params_memory && !m->acts_memory && (on == 0 || on == 1));
    TA_ASSERT(!m->params_bf16); /* before gpt2_set_compute: the new model starts fp32 */
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

/* Slab slots of activations stored in bf16 (bf16 models): bf16 elements, in float slots. */
static const int ACT_BF16[] = {A_LN1, A_QKV, A_ATTY, A_LN2, A_FCHGELU, A_LNF, A_ATT16};

/* Rows of logits that exist at once for batches of B x T: all of them, or lm_chunk. */
static size_t logit_rows(int lm_chunk, int B, int T) {
    size_t BT = (size_t)B * T;
    return lm_chunk > 0 && (size_t)lm_chunk < BT ? (size_t)lm_chunk : BT;
}

/* layers: how many layers' activations are kept: n_layer for a model that trains (the
 * backward reads every layer's), 1 for a forward-only one (every layer writes the same
 * slots: see forward_trunk). */
static void fill_act_sizes(size_t *s, const GPT2Config *cfg, int B, int T, Precision prec,
                           int lm_chunk, int layers) {
    size_t Bs = B, Ts = T, C = cfg->d_model, L = (size_t)layers, NH = cfg->n_head,
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
    s[A_LOGITS] = logit_rows(lm_chunk, B, T) * Vp;
    s[A_LSE] = Bs * Ts;
    s[A_LOGP] = Bs * Ts;
    s[A_DLOGP] = Bs * Ts;
    s[A_ATT16] = 0;
    if (prec == PRECISION_BF16) {
        s[A_ATT16] = Bs * NH * Ts * Ts;
        for (size_t i = 0; i < sizeof ACT_BF16 / sizeof ACT_BF16[0]; i++)
            s[ACT_BF16[i]] = (s[ACT_BF16[i]] + 1) / 2; /* whole float slots */
    }
}

/* Elements of the bf16 dout buffer of a bf16 model's backward: dlogits (the logit rows
 * that exist at once; none in a hidden-only model) or dfch, the wider. */
static size_t dout16_elems(const GPT2 *m, int B, int T) {
    size_t d16 = m->hidden_only ? 0 : logit_rows(m->lm_chunk, B, T) * m->config.padded_vocab_size;
    size_t fch = (size_t)B * T * 4 * m->config.d_model;
    return fch > d16 ? fch : d16;
}

/* The backward scratch of a model with gradients: floats (BackScratch order), then the
 * bf16 buffers of a bf16 model, in float slots. */
static size_t back_floats_for(const GPT2 *m, int B, int T) {
    const GPT2Config *c = &m->config;
    size_t BT = (size_t)B * T, C = c->d_model, NH = c->n_head;
    size_t att = (size_t)B * NH * T * T;
    size_t n = 3 * BT * C + BT * 3 * C + 2 * BT * 4 * C + att;
    if (m->precision == PRECISION_BF16) {
        size_t d16 = dout16_elems(m, B, T);
        n += (d16 + 1) / 2 + (BT * 3 * C + 1) / 2 + (att + 1) / 2;
    }
    return n;
}

/* A hidden-only model (a reward model) has no LM head activations, and its final
 * LayerNorm output, read by the score head, is fp32 in every precision. */
static void drop_lm_head_acts(size_t *s, const GPT2Config *cfg, int B, int T) {
    s[A_LOGITS] = s[A_LSE] = s[A_LOGP] = s[A_DLOGP] = 0;
    s[A_LNF] = (size_t)B * T * cfg->d_model;
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
    /* a model without gradients never runs a backward: one layer's activations suffice
     * (scorers, evaluation models, guides: n_layer times less memory to allocate and touch) */
    m->act_layers = m->grads_memory ? m->config.n_layer : 1;
    fill_act_sizes(m->act_sizes, &m->config, B, T, m->precision, m->lm_chunk, m->act_layers);
    if (m->hidden_only) drop_lm_head_acts(m->act_sizes, &m->config, B, T);
    m->num_acts = 0;
    for (int i = 0; i < NUM_ACT_TENSORS; i++) m->num_acts += m->act_sizes[i];
    m->acts_memory = ta_aligned_alloc(m->num_acts * sizeof(float), "activations");
    float **ptrs[NUM_ACT_TENSORS] = {
        &m->acts.encoded, &m->acts.ln1,      &m->acts.ln1_mean, &m->acts.ln1_rstd,
        &m->acts.qkv,     &m->acts.atty,     &m->acts.att,      &m->acts.attproj,
        &m->acts.resid2,  &m->acts.ln2,      &m->acts.ln2_mean, &m->acts.ln2_rstd,
        &m->acts.fch,     &m->acts.fch_gelu, &m->acts.fcproj,   &m->acts.resid3,
        &m->acts.lnf,     &m->acts.lnf_mean, &m->acts.lnf_rstd, &m->acts.logits,
        &m->acts.lse,     &m->acts.logp,     &m->acts.dlogp,    NULL};
    bf16 **ptrs16[NUM_ACT_TENSORS] = {NULL};
    ptrs16[A_LN1] = &m->acts16.ln1;
    ptrs16[A_QKV] = &m->acts16.qkv;
    ptrs16[A_ATTY] = &m->acts16.atty;
    ptrs16[A_LN2] = &m->acts16.ln2;
    ptrs16[A_FCHGELU] = &m->acts16.fch_gelu;
    ptrs16[A_LNF] = &m->acts16.lnf;
    ptrs16[A_ATT16] = &m->acts16.att16;
    memset(&m->acts16, 0, sizeof m->acts16);
    const int x16 = m->precision == PRECISION_BF16;
    float *p = m->acts_memory;
    for (int i = 0; i < NUM_ACT_TENSORS; i++) {
        if (x16 && ptrs16[i] && !(i == A_LNF && m->hidden_only)) { /* stored in bf16 only */
            *ptrs16[i] = (bf16 *)(void *)p;
            if (ptrs[i]) *ptrs[i] = NULL;
        } else if (ptrs[i]) {
            *ptrs[i] = p;
        }
        p += m->act_sizes[i];
    }
    m->inputs = ta_calloc(sizeof(int) * (size_t)B * T, "input tokens");
    m->targets = ta_calloc(sizeof(int) * (size_t)B * T, "targets");
    m->back_memory = NULL;
    if (m->grads_memory) {
        const GPT2Config *c = &m->config;
        size_t BT = (size_t)B * T, C = c->d_model, NH = c->n_head;
        size_t n = back_floats_for(m, B, T);
        m->back_memory = ta_aligned_alloc(n * sizeof(float), "backward scratch");
        float *q = m->back_memory;
        m->back.dresid = q; q += BT * C;
        m->back.dbuf_c = q; q += BT * C;
        m->back.dbuf_c2 = q; q += BT * C;
        m->back.dqkv = q; q += BT * 3 * C;
        m->back.dfch = q; q += BT * 4 * C;
        m->back.dfchg = q; q += BT * 4 * C;
        m->back.attscr = q; q += (size_t)B * NH * T * T;
        m->back.dout16 = m->back.dx16 = m->back.ds16 = NULL;
        if (m->precision == PRECISION_BF16) {
            size_t d16 = dout16_elems(m, B, T);
            m->back.dout16 = (bf16 *)(void *)q; q += (d16 + 1) / 2;
            m->back.dx16 = (bf16 *)(void *)q; q += (BT * 3 * C + 1) / 2;
            m->back.ds16 = (bf16 *)(void *)q;
        }
    }
}

void gpt2_borrow_acts(GPT2 *dst, GPT2 *src) {
    TA_ASSERT(!dst->acts_memory && !dst->grads_memory && src->acts_memory);
    TA_ASSERT(dst->precision == src->precision); /* the slab layout depends on it */
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
    dst->acts16 = src->acts16;
    dst->inputs = src->inputs;
    dst->targets = src->targets;
    dst->lm_chunk = src->lm_chunk; /* the logits slot holds that many rows */
    dst->act_layers = src->act_layers;
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
    free(m->params_bf16);
    backend_free(m->be);
    memset(m, 0, sizeof *m);
}

static size_t back_floats(const GPT2 *m) {
    return m->back_memory ? back_floats_for(m, m->B, m->T) : 0;
}

size_t gpt2_logits_bytes(const GPT2 *m) {
    size_t n = m->act_sizes[A_LOGITS] * sizeof(float);
    if (m->back_memory && m->precision == PRECISION_BF16) { /* bf16 dlogits beyond dfch */
        size_t fch = (size_t)m->B * m->T * 4 * (size_t)m->config.d_model;
        n += (dout16_elems(m, m->B, m->T) - fch) * sizeof(bf16);
    }
    return n;
}

void gpt2_memory_report(const GPT2 *m, char *buf, size_t cap) {
    const double MiB = 1024.0 * 1024.0;
    double p = m->num_params * 4.0 / MiB;
    double g = m->grads_memory ? p : 0.0;
    double a = m->num_acts * 4.0 / MiB;
    double s = back_floats(m) * 4.0 / MiB;
    double lg = gpt2_logits_bytes(m) / MiB;
    int n = snprintf(buf, cap,
                     "model: %.2fM params | memory: params %.1f MiB, grads %.1f MiB, activations "
                     "%.1f MiB (B=%d T=%d; logits %.1f MiB, %s), backward scratch %.1f MiB",
                     m->num_params / 1e6, p, g, a, m->B, m->T, lg,
                     m->lm_chunk > 0 ? "in chunks of rows" : "whole batch", s);
    if (m->params_bf16 && n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, ", bf16 weights %.1f MiB", m->num_params * 2.0 / MiB);
}

/* ---- matmul operands in the model's precision ------------------------------------------
 * fp32 models hand the GEMMs fp32 parameters and activations; bf16 models the bf16 copy of
 * the weights and the bf16 activations (ActTensors16). */

/* Parameter tensor t (a pointer into params_memory) + off as a matmul weight. */
static const void *mm_weight(const GPT2 *m, const float *t, size_t off) {
    size_t i = (size_t)(t - m->params_memory) + off;
    return m->params_bf16 ? (const void *)(m->params_bf16 + i)
                          : (const void *)(m->params_memory + i);
}

/* Activation `name` at element offset off, in its stored type. */
#define ACT_MM(m, name, off)                                                                \
    ((m)->precision == PRECISION_BF16 ? (void *)((m)->acts16.name + (off))                \
                                      : (void *)((m)->acts.name + (off)))

static void ln_forward(const GPT2 *m, void *out, float *mean, float *rstd, const float *inp,
                       const float *w, const float *b, int N, int C) {
    if (m->precision == PRECISION_BF16) layernorm_forward_bf16(out, mean, rstd, inp, w, b, N, C);
    else layernorm_forward(out, mean, rstd, inp, w, b, N, C);
}

/* OpenBLAS keeps its per-(b,h) fused loop (the fp32 results of every earlier release);
 * oneDNN gets the batched GEMMs. */
static void attn_forward(const GPT2 *m, void *out, float *att, const void *qkv, int B, int T) {
    const GPT2Config *c = &m->config;
    if (backend_kind(m->be) == BACKEND_OPENBLAS)
        attention_forward(out, att, qkv, B, T, c->d_model, c->n_head);
    else
        attention_forward_gemm(m->be, out, att, m->acts16.att16, qkv,
                               m->precision == PRECISION_BF16, B, T, c->d_model, c->n_head);
}

/* dout of a matmul as its backward GEMMs read it: dout itself (fp32), or rounded into
 * dst (bf16; timed as "bf16 conversions"). */
static const void *mm_dout(GPT2 *m, bf16 *dst, const float *dout, size_t n) {
    if (m->precision != PRECISION_BF16) return dout;
    PROF(m, bwd, K_BF16_CONVERT, bf16_from_f32_array(dst, dout, n));
    return dst;
}

/* LayerNorm backward into the residual-stream gradient dresid; a bf16 model also rounds
 * it into back.dout16 for the next matmul backward. */
static void ln_backward(GPT2 *m, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int N, int C) {
    if (m->precision == PRECISION_BF16)
        layernorm_backward_bf16(m->back.dresid, m->back.dout16, dweight, dbias, dout, inp, weight,
                                mean, rstd, N, C);
    else
        layernorm_backward(m->back.dresid, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}

/* acts.logits (n, Vp) = lnf rows [r0, r0 + n) @ wte^T */
static void lm_head_rows(GPT2 *m, size_t r0, int n) {
    const int C = m->config.d_model, Vp = m->config.padded_vocab_size;
    const int x16 = m->precision == PRECISION_BF16;
    PROF(m, fwd, K_LM_HEAD,
         linear_forward(m->be, m->acts.logits, 0, ACT_MM(m, lnf, r0 * C),
                        mm_weight(m, m->params.wte, 0), x16, NULL, n, C, Vp));
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

    check_bf16_weights(m);
    ParamTensors *p = &m->params;
    ActTensors *a = &m->acts;
    Backend *be = m->be;
    const int x16 = m->precision == PRECISION_BF16; /* matmul operands in bf16 */
    PROF(m, fwd, K_ENCODER, encoder_forward(a->encoded, tokens, p->wte, p->wpe, B, T, C));
    /* Layer l's activations live at slot l (every layer kept, for the backward) or, in a
     * forward-only model (act_layers 1), all at slot 0: each layer overwrites the previous
     * one's, which is safe because layer l reads only its input resid (slot l-1 of resid3)
     * before it writes resid2, and writes resid3 (resid2 + fcproj) last. */
    const int keep = m->act_layers > 1;
    for (int l = 0; l < L; l++) {
        const size_t sl = keep ? (size_t)l : 0; /* this layer's slot */
        const float *resid = l == 0 ? a->encoded : a->resid3 + (keep ? sl - 1 : 0) * BT * C;
        size_t oc = sl * BT * C, ob = sl * BT;
        /* matmul inputs (fp32, or bf16 in a bf16 model); qkv and atty are bf16 too there:
         * they only feed attention's GEMMs and the attproj matmul */
        void *ln1 = ACT_MM(m, ln1, oc), *qkv = ACT_MM(m, qkv, 3 * oc);
        void *atty = ACT_MM(m, atty, oc), *ln2 = ACT_MM(m, ln2, oc);
        void *fchg = ACT_MM(m, fch_gelu, 4 * oc);
        float *att = a->att + sl * B * NH * T * T;
        float *attproj = a->attproj + oc, *resid2 = a->resid2 + oc;
        float *fch = a->fch + 4 * oc, *fcproj = a->fcproj + oc;
        float *resid3 = a->resid3 + oc;
        PROF(m, fwd, K_LAYERNORM,
             ln_forward(m, ln1, a->ln1_mean + ob, a->ln1_rstd + ob, resid, p->ln1w + l * C,
                        p->ln1b + l * C, (int)BT, C));
        PROF(m, fwd, K_MM_QKV,
             linear_forward(be, qkv, x16, ln1, mm_weight(m, p->qkvw, (size_t)l * 3 * C * C), x16,
                            p->qkvb + l * 3 * C, (int)BT, C, 3 * C));
        PROF(m, fwd, K_ATTENTION, attn_forward(m, atty, att, qkv, B, T));
        PROF(m, fwd, K_MM_ATTPROJ,
             linear_forward(be, attproj, 0, atty, mm_weight(m, p->attprojw, (size_t)l * C * C),
                            x16, p->attprojb + l * C, (int)BT, C, C));
        PROF(m, fwd, K_RESIDUAL, residual_forward(resid2, resid, attproj, BT * C));
        PROF(m, fwd, K_LAYERNORM,
             ln_forward(m, ln2, a->ln2_mean + ob, a->ln2_rstd + ob, resid2, p->ln2w + l * C,
                        p->ln2b + l * C, (int)BT, C));
        PROF(m, fwd, K_MM_FC,
             linear_forward(be, fch, 0, ln2, mm_weight(m, p->fcw, (size_t)l * 4 * C * C), x16,
                            p->fcb + l * 4 * C, (int)BT, C, 4 * C));
        if (x16) PROF(m, fwd, K_GELU, gelu_forward_bf16(fchg, fch, BT * 4 * C));
        else PROF(m, fwd, K_GELU, gelu_forward(fchg, fch, BT * 4 * C));
        PROF(m, fwd, K_MM_FCPROJ,
             linear_forward(be, fcproj, 0, fchg, mm_weight(m, p->fcprojw, (size_t)l * 4 * C * C),
                            x16, p->fcprojb + l * C, (int)BT, 4 * C, C));
        PROF(m, fwd, K_RESIDUAL, residual_forward(resid3, resid2, fcproj, BT * C));
    }
    const float *last = a->resid3 + (keep ? (size_t)(L - 1) : 0) * BT * C;
    /* a hidden-only model's final LayerNorm output feeds the score head's dot product, not
     * a GEMM: it stays fp32 in every precision (the same memory as a bf16 copy would have
     * cost beside the LM head's logits, which this model does not have) */
    if (m->hidden_only)
        PROF(m, fwd, K_LAYERNORM,
             layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, last, p->lnfw, p->lnfb, (int)BT,
                               C));
    else
        PROF(m, fwd, K_LAYERNORM,
             ln_forward(m, ACT_MM(m, lnf, 0), a->lnf_mean, a->lnf_rstd, last, p->lnfw, p->lnfb,
                        (int)BT, C));
}

int gpt2_forward(GPT2 *m, const int *tokens, const int *targets, int B, int T, TaError *err) {
    TA_ASSERT(!m->hidden_only); /* no logits buffer */
    int rc = forward_inputs(m, tokens, targets, B, T, err);
    if (rc != TA_OK) return rc;
    forward_trunk(m);
    const int V = m->config.vocab_size, Vp = m->config.padded_vocab_size;
    const size_t BT = (size_t)B * T;
    ActTensors *a = &m->acts;
    /* the LM head and the log-softmax, chunk by chunk when the logits of the whole batch
     * are not kept (lm_chunk): only lse and logp of every row survive */
    const size_t rows = logit_rows(m->lm_chunk, B, T);
    for (size_t r0 = 0; r0 < BT; r0 += rows) {
        const int n = (int)(BT - r0 < rows ? BT - r0 : rows);
        lm_head_rows(m, r0, n);
        if (backend_kind(m->be) == BACKEND_OPENBLAS) /* the kernel its checkpoints were made with */
            PROF(m, fwd, K_LOGSOFTMAX,
                 logsoftmax_gather(a->logp + r0, a->lse + r0, a->logits, m->targets + r0, n, V,
                                   Vp));
        else
            PROF(m, fwd, K_LOGSOFTMAX,
                 logsoftmax_gather_vec(a->logp + r0, a->lse + r0, a->logits, m->targets + r0, n,
                                       V, Vp));
    }
    return TA_OK;
}

int gpt2_forward_hidden(GPT2 *m, const int *tokens, int B, int T, TaError *err) {
    int rc = forward_inputs(m, tokens, NULL, B, T, err);
    if (rc == TA_OK) forward_trunk(m);
    return rc;
}

void gpt2_score_forward(const GPT2 *m, const int *last, float *rewards) {
    TA_ASSERT(m->config.score_head && m->acts.lnf != NULL); /* fp32 lnf: hidden-only or fp32 */
    for (int b = 0; b < m->cur_B; b++) TA_ASSERT(last[b] >= 0 && last[b] < m->cur_T);
    score_forward(rewards, m->acts.lnf, last, m->params.score, m->cur_B, m->cur_T,
                  m->config.d_model);
}

void gpt2_zero_grad(GPT2 *m) {
    TA_ASSERT(m->grads_memory != NULL);
    memset(m->grads_memory, 0, m->num_params * sizeof(float));
}

/* The LM head's backward for token rows [r0, r0 + n), whose dlogits are in acts.logits:
 *   dlnf rows (in back.dbuf_c) += dlogits @ wte;  dwte += dlogits^T @ lnf rows */
static void lm_head_backward_rows(GPT2 *m, size_t r0, int n) {
    const int C = m->config.d_model, Vp = m->config.padded_vocab_size;
    const int x16 = m->precision == PRECISION_BF16;
    const void *dlogits_mm = mm_dout(m, m->back.dout16, m->acts.logits, (size_t)n * Vp);
    PROF(m, bwd, K_LM_HEAD,
         linear_backward(m->be, m->back.dbuf_c + r0 * C, m->grads.wte, NULL, m->acts.logits,
                         dlogits_mm, ACT_MM(m, lnf, r0 * C), mm_weight(m, m->params.wte, 0), x16,
                         n, C, Vp));
}

static void backward_trunk(GPT2 *m);

void gpt2_backward(GPT2 *m) {
    TA_ASSERT(m->grads_memory != NULL && m->back_memory != NULL && !m->hidden_only);
    TA_ASSERT(!gpt2_lm_chunked(m)); /* chunked: gpt2_backward_chunks */
    /* logits = lnf @ wte^T  ->  dlnf = dlogits @ wte, dwte += dlogits^T @ lnf */
    memset(m->back.dbuf_c, 0, (size_t)m->cur_B * m->cur_T * m->config.d_model * sizeof(float));
    lm_head_backward_rows(m, 0, m->cur_B * m->cur_T);
    backward_trunk(m);
}

/* Recomputes the logits of each chunk of rows of the last forward and hands them to fn;
 * with backward, fn leaves dlogits there and the chunk goes through the LM head's
 * backward. */
static int head_chunks(GPT2 *m, int backward, GPT2HeadFn fn, void *ctx, TaError *err) {
    const size_t BT = (size_t)m->cur_B * m->cur_T;
    const size_t rows = logit_rows(m->lm_chunk, m->cur_B, m->cur_T);
    if (backward) memset(m->back.dbuf_c, 0, BT * m->config.d_model * sizeof(float));
    for (size_t r0 = 0; r0 < BT; r0 += rows) {
        const int n = (int)(BT - r0 < rows ? BT - r0 : rows);
        lm_head_rows(m, r0, n);
        int rc = fn(ctx, (int)r0, n, m->acts.logits, err);
        if (rc != TA_OK) return rc;
        if (backward) lm_head_backward_rows(m, r0, n);
    }
    return TA_OK;
}

int gpt2_head_chunks(GPT2 *m, GPT2HeadFn fn, void *ctx, TaError *err) {
    return head_chunks(m, 0, fn, ctx, err);
}

int gpt2_backward_chunks(GPT2 *m, GPT2HeadFn fn, void *ctx, TaError *err) {
    TA_ASSERT(m->grads_memory != NULL && m->back_memory != NULL && !m->hidden_only);
    int rc = head_chunks(m, 1, fn, ctx, err);
    if (rc == TA_OK) backward_trunk(m);
    return rc;
}

/* The trunk's backward from back.dbuf_c = dL/d lnf (cur_B, cur_T, C) down to the
 * embeddings. */
static void backward_trunk(GPT2 *m) {
    const GPT2Config *cfg = &m->config;
    const int B = m->cur_B, T = m->cur_T, C = cfg->d_model, L = cfg->n_layer, NH = cfg->n_head;
    const size_t BT = (size_t)B * T;
    ParamTensors *p = &m->params, *g = &m->grads;
    ActTensors *a = &m->acts;
    BackScratch *s = &m->back;
    Backend *be = m->be;
    const int x16 = m->precision == PRECISION_BF16;
    /* the gradient of the residual stream as the matmul GEMMs read it: dresid itself, or
     * its bf16 rounding, which every LayerNorm backward leaves in dout16 */
    const void *dresid_mm = x16 ? (const void *)s->dout16 : (const void *)s->dresid;

    TA_ASSERT(m->act_layers == L); /* every layer's activations were kept */
    /* lnf = LN(resid3[L-1]) */
    memset(s->dresid, 0, BT * C * sizeof(float));
    const float *last = a->resid3 + (size_t)(L - 1) * BT * C;
    PROF(m, bwd, K_LAYERNORM,
         ln_backward(m, g->lnfw, g->lnfb, s->dbuf_c, last, p->lnfw, a->lnf_mean, a->lnf_rstd,
                     (int)BT, C));

    for (int l = L - 1; l >= 0; l--) {
        const float *resid = l == 0 ? a->encoded : a->resid3 + (size_t)(l - 1) * BT * C;
        size_t oc = (size_t)l * BT * C, ob = (size_t)l * BT;
        const void *ln1 = ACT_MM(m, ln1, oc), *qkv = ACT_MM(m, qkv, 3 * oc);
        const void *atty = ACT_MM(m, atty, oc), *ln2 = ACT_MM(m, ln2, oc);
        const void *fchg = ACT_MM(m, fch_gelu, 4 * oc);
        const float *att = a->att + (size_t)l * B * NH * T * T;
        const float *resid2 = a->resid2 + oc;
        const float *fch = a->fch + 4 * oc;
        /* dresid holds d resid3[l]. resid3 = resid2 + fcproj: both get dresid, so dresid
         * keeps flowing (it becomes d resid2) and serves as d fcproj. */
        memset(s->dfchg, 0, BT * 4 * C * sizeof(float));
        PROF(m, bwd, K_MM_FCPROJ,
             linear_backward(be, s->dfchg, g->fcprojw + (size_t)l * 4 * C * C, g->fcprojb + l * C,
                             s->dresid, dresid_mm, fchg,
                             mm_weight(m, p->fcprojw, (size_t)l * 4 * C * C), x16, (int)BT, 4 * C,
                             C));
        memset(s->dfch, 0, BT * 4 * C * sizeof(float));
        const void *dfch_mm = s->dfch;
        if (x16) { /* also rounds dfch for the fc GEMMs (into dout16), in the same pass */
            PROF(m, bwd, K_GELU, gelu_backward_bf16(s->dfch, s->dout16, fch, s->dfchg, BT * 4 * C));
            dfch_mm = s->dout16;
        } else {
            PROF(m, bwd, K_GELU, gelu_backward(s->dfch, fch, s->dfchg, BT * 4 * C));
        }
        memset(s->dbuf_c, 0, BT * C * sizeof(float));
        PROF(m, bwd, K_MM_FC,
             linear_backward(be, s->dbuf_c, g->fcw + (size_t)l * 4 * C * C, g->fcb + l * 4 * C,
                             s->dfch, dfch_mm, ln2, mm_weight(m, p->fcw, (size_t)l * 4 * C * C),
                             x16, (int)BT, C, 4 * C));
        /* ln2 = LN(resid2): accumulate into dresid (now d resid2) */
        PROF(m, bwd, K_LAYERNORM,
             ln_backward(m, g->ln2w + l * C, g->ln2b + l * C, s->dbuf_c, resid2, p->ln2w + l * C,
                         a->ln2_mean + ob, a->ln2_rstd + ob, (int)BT, C));
        /* resid2 = resid + attproj: dresid is d attproj and (continuing) d resid. A bf16
         * model needs d atty only as the bf16 operand of attention's GEMMs: written so */
        const void *attw = mm_weight(m, p->attprojw, (size_t)l * C * C);
        if (x16) {
            PROF(m, bwd, K_MM_ATTPROJ,
                 linear_backward(be, NULL, g->attprojw + (size_t)l * C * C, g->attprojb + l * C,
                                 s->dresid, dresid_mm, atty, attw, 1, (int)BT, C, C);
                 linear_backward_input(be, s->dx16, 1, 0, dresid_mm, attw, 1, (int)BT, C, C));
        } else {
            memset(s->dbuf_c, 0, BT * C * sizeof(float));
            PROF(m, bwd, K_MM_ATTPROJ,
                 linear_backward(be, s->dbuf_c, g->attprojw + (size_t)l * C * C,
                                 g->attprojb + l * C, s->dresid, dresid_mm, atty, attw, 0,
                                 (int)BT, C, C));
        }
        memset(s->dqkv, 0, BT * 3 * C * sizeof(float));
        if (backend_kind(be) == BACKEND_OPENBLAS)
            PROF(m, bwd, K_ATTENTION,
                 attention_backward(s->dqkv, s->attscr, s->dbuf_c, qkv, att, B, T, C, NH));
        else
            PROF(m, bwd, K_ATTENTION,
                 attention_backward_gemm(be, s->dqkv, s->attscr, s->ds16, m->acts16.att16,
                                         x16 ? (const void *)s->dx16 : (const void *)s->dbuf_c,
                                         qkv, att, x16, B, T, C, NH));
        memset(s->dbuf_c2, 0, BT * C * sizeof(float));
        const void *dqkv_mm = mm_dout(m, s->dx16, s->dqkv, BT * 3 * C);
        PROF(m, bwd, K_MM_QKV,
             linear_backward(be, s->dbuf_c2, g->qkvw + (size_t)l * 3 * C * C, g->qkvb + l * 3 * C,
                             s->dqkv, dqkv_mm, ln1, mm_weight(m, p->qkvw, (size_t)l * 3 * C * C),
                             x16, (int)BT, C, 3 * C));
        PROF(m, bwd, K_LAYERNORM,
             ln_backward(m, g->ln1w + l * C, g->ln1b + l * C, s->dbuf_c2, resid, p->ln1w + l * C,
                         a->ln1_mean + ob, a->ln1_rstd + ob, (int)BT, C));
    }
    /* dresid is now d encoded */
    PROF(m, bwd, K_ENCODER, encoder_backward(g->wte, g->wpe, s->dresid, m->inputs, B, T, C));
}

void gpt2_score_backward(GPT2 *m, const int *last, const float *drewards) {
    TA_ASSERT(m->grads_memory != NULL && m->back_memory != NULL && m->config.score_head &&
              m->acts.lnf != NULL);
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
