/* decode.c — GPT-2 forward with a key/value cache, for generation.
 *
 * Implements gpt2_decode_* (model.h): the same block as gpt2_forward, run on N rows that
 * each carry their own sequence and position, reusing the model's kernels (layernorm,
 * the backend's matmuls, gelu, residual) with N = the rows of the call. Only two pieces are
 * specific to decoding:
 *   - the embedding: x[i] = wte[tokens[i]] + wpe[pos[i]] (positions differ per row);
 *   - attention against the cache: the new k, v of every row go into the cache at the
 *     row's position first, then row i (sequence s, position p), head h computes
 *       a = softmax(q_i . K[s, 0..p] / sqrt(hs)),  y_i = sum_t a_t V[s, t]
 *     which is exactly the causal row p of the full forward.
 * The LM head runs only on the rows whose logits are wanted (the last prompt token of a
 * prefill, every row of a decode step).
 *
 * Determinism: each (row, head) of attention is one thread's loop in a fixed order, and
 * the kernels are thread-count independent (kernels.h), so the logits of a row do not
 * depend on the number of threads.
 * Not here: sampling (src/sample), paged / shared-prefix caches beyond gpt2_decode_copy,
 * and backward (decoding is forward only).
 *
 * PyTorch equivalent of one step (tools/bench_decode.py has it in full):
 *   q, k, v = c_attn(ln_1(x)).split(C); K[:, :, p] = k; V[:, :, p] = v
 *   x = x + c_proj(softmax(q @ K[:, :, :p+1]^T / sqrt(hs)) @ V[:, :, :p+1])
 *   x = x + mlp(ln_2(x));  logits = ln_f(x) @ wte^T
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/backend.h"
#include "tinyalign/kernels.h"
#include "../kernels/vecmath.h"
#include "tinyalign/model.h"

#define DECODE_STREAM_MAX 16 /* decode steps of up to this many rows use linear_rows */
#define DECODE_ATT_PARALLEL 65536 /* a step's attention runs threaded from this many
                                   * (row, position, channel) products */

#ifdef _OPENMP
#include <omp.h>
#endif

/* Sets OpenMP's thread count for the next parallel regions (OpenBLAS's OpenMP build
 * follows it too) when `enabled`. */
static inline void set_threads(int enabled, int n) {
#ifdef _OPENMP
    if (enabled && omp_get_max_threads() != n) omp_set_num_threads(n);
#else
    (void)enabled;
    (void)n;
#endif
}

/* The rows' matmul: out (N,OC) = x (N,C) @ weight^T + bias, with weight the parameter
 * tensor w + woff and x in the model's matmul type (fp32, or bf16 in a bf16 model, read
 * with the bf16 copy of the weights). stream: a decode step's few rows, through the
 * weight-streaming linear_rows (backend.h); otherwise the backend's GEMM. */
static void decode_linear(const GPT2Decode *d, int stream, float *out, const void *x,
                          const float *w, size_t woff, const float *bias, int N, int C, int OC) {
    const GPT2 *m = d->model;
    if (m->precision == PRECISION_BF16) {
        const bf16 *w16 = m->params_bf16 + (size_t)(w - m->params_memory) + woff;
        if (stream) linear_rows_bf16(out, x, w16, bias, N, C, OC);
        else linear_forward(m->be, out, 0, x, w16, 1, bias, N, C, OC);
    } else {
        if (stream) linear_rows(out, x, w + woff, bias, N, C, OC);
        else linear_forward(m->be, out, 0, x, w + woff, 0, bias, N, C, OC);
    }
}

void gpt2_decode_init(GPT2Decode *d, const GPT2 *m, int S, int maxT, int R) {
    const GPT2Config *c = &m->config;
    TA_ASSERT(m->params_memory != NULL);
    TA_ASSERT(S >= 1 && R >= 1 && maxT >= 1 && maxT <= c->max_seq_len);
    memset(d, 0, sizeof *d);
    d->model = m;
    d->S = S;
    d->maxT = maxT;
    d->R = R;
    const size_t C = c->d_model, L = c->n_layer, NH = c->n_head, Vp = c->padded_vocab_size;
    const size_t cache = L * (size_t)S * maxT * C;
    const size_t Rs = R;
    const size_t mm16 = m->precision == PRECISION_BF16 ? (Rs * 4 * C + 1) / 2 : 0;
    size_t n = 2 * cache + Rs * C * 4 /* x ln atty proj */ + 2 * Rs /* mean rstd */ +
               Rs * 3 * C + 2 * Rs * 4 * C + Rs * NH * maxT + Rs * Vp + mm16;
    d->memory = ta_aligned_alloc(n * sizeof(float), "decode cache and buffers");
    float *p = d->memory;
    d->kcache = p; p += cache;
    d->vcache = p; p += cache;
    d->x = p; p += Rs * C;
    d->ln = p; p += Rs * C;
    d->atty = p; p += Rs * C;
    d->proj = p; p += Rs * C;
    d->mean = p; p += Rs;
    d->rstd = p; p += Rs;
    d->qkv = p; p += Rs * 3 * C;
    d->fch = p; p += Rs * 4 * C;
    d->fchg = p; p += Rs * 4 * C;
    d->att = p; p += Rs * NH * maxT;
    d->logits = p; p += Rs * Vp;
    d->mm16 = mm16 ? (bf16 *)(void *)p : NULL;
    p += mm16;
    TA_ASSERT((size_t)(p - d->memory) == n);
    d->lens = ta_calloc(sizeof(int) * (size_t)S, "decode lengths");
    d->row_pos = ta_calloc(sizeof(int) * Rs, "decode positions");
    d->row_keep = ta_calloc(sizeof(int) * Rs, "decode rows");
}

void gpt2_decode_free(GPT2Decode *d) {
    free(d->memory);
    free(d->lens);
    free(d->row_pos);
    free(d->row_keep);
    memset(d, 0, sizeof *d);
}

size_t gpt2_decode_bytes(const GPT2Decode *d) {
    if (!d->memory) return 0;
    const GPT2Config *c = &d->model->config;
    const size_t C = c->d_model, L = c->n_layer, NH = c->n_head, Vp = c->padded_vocab_size;
    const size_t R = d->R;
    size_t n = 2 * L * (size_t)d->S * d->maxT * C + R * C * 4 + 2 * R + R * 3 * C +
               2 * R * 4 * C + R * NH * d->maxT + R * Vp +
               (d->mm16 ? (R * 4 * C + 1) / 2 : 0);
    return n * sizeof(float) + sizeof(int) * ((size_t)d->S + 2 * R);
}

void gpt2_decode_reset(GPT2Decode *d, int seq) {
    TA_ASSERT(seq >= 0 && seq < d->S);
    d->lens[seq] = 0;
}

void gpt2_decode_copy(GPT2Decode *d, int dst, int src) {
    TA_ASSERT(dst >= 0 && dst < d->S && src >= 0 && src < d->S);
    if (dst == src) return;
    const GPT2Config *c = &d->model->config;
    const size_t C = c->d_model, n = (size_t)d->lens[src] * C;
    for (int l = 0; l < c->n_layer; l++) {
        size_t base = (size_t)l * d->S * d->maxT * C;
        memcpy(d->kcache + base + (size_t)dst * d->maxT * C,
               d->kcache + base + (size_t)src * d->maxT * C, n * sizeof(float));
        memcpy(d->vcache + base + (size_t)dst * d->maxT * C,
               d->vcache + base + (size_t)src * d->maxT * C, n * sizeof(float));
    }
    d->lens[dst] = d->lens[src];
}

/* Attention of N rows against the layer's cache (keys/values already written).
 * qkv (N, 3C): q of row i in channels [0, C); out (N, C). */
static void attention_cached(GPT2Decode *d, float *out, const float *qkv, const float *kc,
                             const float *vc, const int *seqs, int N) {
    const GPT2Config *c = &d->model->config;
    const int C = c->d_model, NH = c->n_head, hs = C / NH, maxT = d->maxT;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < N; i++)
        for (int h = 0; h < NH; h++) {
            const int p = d->row_pos[i];
            const float *q = qkv + (size_t)i * 3 * C + h * hs;
            const float *K = kc + (size_t)seqs[i] * maxT * C + h * hs; /* (maxT, C) stride */
            const float *Vv = vc + (size_t)seqs[i] * maxT * C + h * hs;
            float *a = d->att + ((size_t)i * NH + h) * maxT;
            float maxv = -INFINITY;
            for (int t = 0; t <= p; t++) {
                float s = ta_dot(q, K + (size_t)t * C, hs) * scale;
                a[t] = s;
                if (s > maxv) maxv = s;
            }
            float sum = 0.0f;
            for (int t = 0; t <= p; t++) {
                float e = expf(a[t] - maxv);
                a[t] = e;
                sum += e;
            }
            const float inv = 1.0f / sum;
            float *o = out + (size_t)i * C + h * hs;
            for (int k = 0; k < hs; k++) o[k] = 0.0f;
            for (int t = 0; t <= p; t++) {
                const float w = a[t] * inv;
                const float *v = Vv + (size_t)t * C;
                for (int k = 0; k < hs; k++) o[k] += w * v[k];
            }
        }
}

/* ln_mm (N,C) = LayerNorm(x) in the matmul input type. */
static void decode_layernorm(GPT2Decode *d, void *ln_mm, const float *w, const float *b, int N) {
    const int C = d->model->config.d_model;
    if (d->model->precision == PRECISION_BF16)
        layernorm_forward_bf16(ln_mm, d->mean, d->rstd, d->x, w, b, N, C);
    else
        layernorm_forward(ln_mm, d->mean, d->rstd, d->x, w, b, N, C);
}

/* The rows' forward. step: a decode step (one row per sequence), whose matmuls go
 * through linear_rows when N <= DECODE_STREAM_MAX; otherwise (and always for prefill
 * rows) through the backend's GEMM. A bf16 model rounds each matmul input into d->mm16
 * (LayerNorm and GELU write it directly) and multiplies with the bf16 weights; the
 * residual stream, attention and the cache stay fp32. */
static int decode_rows(GPT2Decode *d, const int *seqs, const int *tokens, int N,
                       const unsigned char *want, int step, TaError *err) {
    TA_ASSERT(d->memory != NULL);
    const GPT2Config *c = &d->model->config;
    const ParamTensors *p = &d->model->params;
    const int V = c->vocab_size, Vp = c->padded_vocab_size, C = c->d_model, L = c->n_layer;
    if (N < 1 || N > d->R)
        return ta_err(err, TA_EINPUT, "decode: %d rows, expected 1..%d", N, d->R);
    /* validate everything before touching any state: positions come from the lengths,
     * counting earlier rows of the same sequence in this call */
    for (int i = 0; i < N; i++) {
        if (seqs[i] < 0 || seqs[i] >= d->S)
            return ta_err(err, TA_EINPUT, "decode: row %d: sequence %d outside [0, %d)", i,
                          seqs[i], d->S);
        if (tokens[i] < 0 || tokens[i] >= V)
            return ta_err(err, TA_EINPUT, "decode: row %d: token id %d outside [0, %d)", i,
                          tokens[i], V);
    }
    for (int i = 0; i < N; i++) {
        d->row_pos[i] = d->lens[seqs[i]]++;
        if (d->row_pos[i] >= d->maxT) {
            for (int j = 0; j <= i; j++) d->lens[seqs[j]]--; /* undo */
            return ta_err(err, TA_EINPUT,
                          "decode: sequence %d is full (%d positions; the model's "
                          "max_seq_len or the cache size)", seqs[i], d->maxT);
        }
    }
    const size_t NC = (size_t)N * C;
    const int stream = step && N <= DECODE_STREAM_MAX;
    const int x16 = d->model->precision == PRECISION_BF16;
    /* the matmul inputs: fp32 buffers, or all of them rounded into mm16 in turn */
    void *ln_mm = x16 ? (void *)d->mm16 : (void *)d->ln;
    void *atty_mm = x16 ? (void *)d->mm16 : (void *)d->atty;
    void *fchg_mm = x16 ? (void *)d->mm16 : (void *)d->fchg;
    const size_t layer_cache = (size_t)d->S * d->maxT * C;
    /* Threads: a step's pointwise kernels (layernorm, residual, gelu on N x C values) take
     * microseconds, less than waking and joining a thread team, so they run on one thread
     * (the ICV below, which OpenMP and OpenBLAS's OpenMP build both follow); the matmuls,
     * and attention once its work is large, get every thread. Prefill keeps all threads. */
    const int nt = ta_get_threads();
    const int few = stream && nt > 1;
    long att_work = 0;
    for (int i = 0; i < N; i++) att_work += (long)(d->row_pos[i] + 1) * C;
    const int att_all = att_work >= DECODE_ATT_PARALLEL;
#define THREADS(all) set_threads(few, (all) ? nt : 1)

    /* x[i] = wte[tokens[i]] + wpe[pos[i]] */
    for (int i = 0; i < N; i++) {
        const float *e = p->wte + (size_t)tokens[i] * C, *w = p->wpe + (size_t)d->row_pos[i] * C;
        float *o = d->x + (size_t)i * C;
        for (int k = 0; k < C; k++) o[k] = e[k] + w[k];
    }
    for (int l = 0; l < L; l++) {
        float *kc = d->kcache + (size_t)l * layer_cache, *vc = d->vcache + (size_t)l * layer_cache;
        THREADS(0);
        decode_layernorm(d, ln_mm, p->ln1w + (size_t)l * C, p->ln1b + (size_t)l * C, N);
        THREADS(1);
        decode_linear(d, stream, d->qkv, ln_mm, p->qkvw, (size_t)l * 3 * C * C,
                      p->qkvb + (size_t)l * 3 * C, N, C, 3 * C);
        for (int i = 0; i < N; i++) { /* cache k, v at (sequence, position) */
            size_t at = ((size_t)seqs[i] * d->maxT + d->row_pos[i]) * C;
            memcpy(kc + at, d->qkv + (size_t)i * 3 * C + C, sizeof(float) * C);
            memcpy(vc + at, d->qkv + (size_t)i * 3 * C + 2 * C, sizeof(float) * C);
        }
        THREADS(att_all);
        attention_cached(d, d->atty, d->qkv, kc, vc, seqs, N);
        if (x16) bf16_from_f32_array(d->mm16, d->atty, NC);
        THREADS(1);
        decode_linear(d, stream, d->proj, atty_mm, p->attprojw, (size_t)l * C * C,
                      p->attprojb + (size_t)l * C, N, C, C);
        THREADS(0);
        residual_forward(d->x, d->x, d->proj, NC);
        decode_layernorm(d, ln_mm, p->ln2w + (size_t)l * C, p->ln2b + (size_t)l * C, N);
        THREADS(1);
        decode_linear(d, stream, d->fch, ln_mm, p->fcw, (size_t)l * 4 * C * C,
                      p->fcb + (size_t)l * 4 * C, N, C, 4 * C);
        THREADS(0);
        if (x16) gelu_forward_bf16(d->mm16, d->fch, NC * 4);
        else gelu_forward(d->fchg, d->fch, NC * 4);
        THREADS(1);
        decode_linear(d, stream, d->proj, fchg_mm, p->fcprojw, (size_t)l * 4 * C * C,
                      p->fcprojb + (size_t)l * C, N, 4 * C, C);
        THREADS(0);
        residual_forward(d->x, d->x, d->proj, NC);
    }
    /* final layernorm + LM head on the wanted rows only, compacted into the front of x */
    int M = 0;
    for (int i = 0; i < N; i++) {
        if (want && !want[i]) continue;
        if (M != i) memcpy(d->x + (size_t)M * C, d->x + (size_t)i * C, sizeof(float) * C);
        d->row_keep[M++] = i;
    }
    d->n_logits = M;
    if (M > 0) {
        decode_layernorm(d, ln_mm, p->lnfw, p->lnfb, M);
        THREADS(1);
        decode_linear(d, stream, d->logits, ln_mm, p->wte, 0, NULL, M, C, Vp);
    }
    THREADS(1); /* leave the thread count as found */
#undef THREADS
    return TA_OK;
}

int gpt2_decode_forward(GPT2Decode *d, const int *seqs, const int *tokens, int N,
                        const unsigned char *want, TaError *err) {
    return decode_rows(d, seqs, tokens, N, want, 0, err);
}

int gpt2_decode_step(GPT2Decode *d, const int *seqs, const int *tokens, int N, TaError *err) {
    for (int i = 0; i < N && i < d->R; i++)
        for (int j = 0; j < i; j++)
            if (seqs[i] == seqs[j])
                return ta_err(err, TA_EINPUT, "decode step: rows %d and %d are both sequence %d",
                              j, i, seqs[i]);
    return decode_rows(d, seqs, tokens, N, NULL, 1, err);
}
