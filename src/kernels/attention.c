/* attention.c — causal multi-head self-attention core (after the qkv projection).
 * PyTorch: q,k,v = qkv.split(C, -1) viewed (B,NH,T,hs);
 *          att = softmax((q @ k^T) / sqrt(hs) masked causally); y = att @ v -> (B,T,C).
 *
 * Three versions, one math:
 *   - naive: dot-product loops, the reference the tests compare the others with;
 *   - attention_forward/backward (OpenBLAS fp32): parallel over (b, h), each pair a few
 *     single-threaded sgemm calls (OpenBLAS's OpenMP build does not nest threads inside
 *     our parallel region) over the full T x T score matrix — twice the causal FLOPs, but
 *     ~10x the speed of dot-product loops;
 *   - attention_*_gemm (any backend, fp32 or bf16): the same GEMMs as one batched GEMM
 *     over (B, NH) each (oneDNN threads inside it), the softmax and its backward as
 *     parallel row loops in between. In bf16 the GEMM operands (q, k, v, the attention
 *     weights, dY, dS) are bf16 and every sum is fp32; the softmax, its saved output and
 *     its backward stay fp32.
 * Every pair (b, h) / row owns its outputs, so results do not depend on the thread
 * count within a backend. */
#include <math.h>
#include <string.h>

#include "tinyalign/backend.h"
#include "tinyalign/kernels.h"
#include "vecmath.h"

/* row[0..t] <- softmax(row[0..t]) (max-subtracted), row[t+1..T) <- 0: the causal mask. */
static void causal_softmax_row(float *row, int t, int T) {
    float maxv = -INFINITY;
    for (int t2 = 0; t2 <= t; t2++)
        if (row[t2] > maxv) maxv = row[t2];
    float sum = 0.0f;
    for (int t2 = 0; t2 <= t; t2++) {
        float e = expf(row[t2] - maxv);
        row[t2] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    for (int t2 = 0; t2 <= t; t2++) row[t2] *= inv;
    for (int t2 = t + 1; t2 < T; t2++) row[t2] = 0.0f;
}

/* causal_softmax_row with vectorised max, exponentials and sum (16 float lanes): the
 * batched path's softmax, which no earlier checkpoint depends on bit for bit. */
static void causal_softmax_row_vec(float *row, int t, int T) {
    const int n = t + 1;
    const float maxv = ta_max_lanes(row, n);
    float s[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) {
            float e = ta_exp_vec(row[i + j] - maxv);
            row[i + j] = e;
            s[j] += e;
        }
    float sum = 0.0f;
    for (int j = 0; j < 16; j++) sum += s[j];
    for (; i < n; i++) {
        float e = ta_exp_vec(row[i] - maxv);
        row[i] = e;
        sum += e;
    }
    const float inv = 1.0f / sum;
    for (i = 0; i < n; i++) row[i] *= inv;
    for (; i < T; i++) row[i] = 0.0f;
}

void attention_forward_naive(float *out, float *att, const float *inp, int B, int T, int C,
                             int NH) {
    const int hs = C / NH;
    const int C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *base = inp + (size_t)b * T * C3;
            for (int t = 0; t < T; t++) {
                const float *q = base + (size_t)t * C3 + h * hs;
                float *a = att + (((size_t)b * NH + h) * T + t) * T;
                /* a[t2] = q . k[t2] * scale, running max for a stable softmax */
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *k = base + (size_t)t2 * C3 + C + h * hs;
                    a[t2] = ta_dot(q, k, hs) * scale;
                }
                causal_softmax_row(a, t, T);
                /* y[t] = sum_t2 a[t2] v[t2] */
                float *o = out + ((size_t)b * T + t) * C + h * hs;
                for (int i = 0; i < hs; i++) o[i] = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *v = base + (size_t)t2 * C3 + 2 * C + h * hs;
                    ta_axpy(o, a[t2], v, hs);
                }
            }
        }
}

/* Backward, row t at a time (forward: y[t] = sum_t2 a[t,t2] v[t2],
 * a[t,:] = softmax(s[t,:]), s[t,t2] = scale * q[t].k[t2]):
 *   da[t2]  = dy[t] . v[t2]               dv[t2] += a[t,t2] dy[t]
 *   ds[t2]  = a[t,t2] (da[t2] - sum_j a[t,j] da[j])
 *   dq[t]  += scale * sum_t2 ds[t2] k[t2]  dk[t2] += scale * ds[t2] q[t]            */
void attention_backward_naive(float *dinp, float *scratch, const float *dout, const float *inp,
                              const float *att, int B, int T, int C, int NH) {
    const int hs = C / NH;
    const int C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *base = inp + (size_t)b * T * C3;
            float *dbase = dinp + (size_t)b * T * C3;
            float *da = scratch + ((size_t)b * NH + h) * 2 * T;
            float *ds = da + T;
            for (int t = 0; t < T; t++) {
                const float *a = att + (((size_t)b * NH + h) * T + t) * T;
                const float *dy = dout + ((size_t)b * T + t) * C + h * hs;
                const float *q = base + (size_t)t * C3 + h * hs;
                float *dq = dbase + (size_t)t * C3 + h * hs;
                float dot = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *v = base + (size_t)t2 * C3 + 2 * C + h * hs;
                    float *dv = dbase + (size_t)t2 * C3 + 2 * C + h * hs;
                    da[t2] = ta_dot(dy, v, hs);
                    ta_axpy(dv, a[t2], dy, hs);
                    dot += a[t2] * da[t2];
                }
                for (int t2 = 0; t2 <= t; t2++) ds[t2] = a[t2] * (da[t2] - dot) * scale;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *k = base + (size_t)t2 * C3 + C + h * hs;
                    float *dk = dbase + (size_t)t2 * C3 + C + h * hs;
                    ta_axpy(dq, ds[t2], k, hs);
                    ta_axpy(dk, ds[t2], q, hs);
                }
            }
        }
}

void attention_forward(float *out, float *att, const float *inp, int B, int T, int C, int NH) {
    const int hs = C / NH;
    const int C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *q = inp + (size_t)b * T * C3 + h * hs; /* (T,hs), row stride 3C */
            const float *k = q + C, *v = q + 2 * C;
            float *a = att + ((size_t)b * NH + h) * T * T; /* (T,T) */
            /* S = scale * Q K^T */
            backend_gemm(NULL, 1, 1, T, T, hs, scale, (GemmIn){.p = q, .ld = C3},
                         (GemmIn){.p = k, .trans = 1, .ld = C3}, NULL, 0,
                         (GemmOut){.p = a, .ld = T});
            for (int t = 0; t < T; t++) causal_softmax_row(a + (size_t)t * T, t, T);
            /* Y = A V -> out[b, :, h*hs : (h+1)*hs] */
            backend_gemm(NULL, 1, 1, T, hs, T, 1.0f, (GemmIn){.p = a, .ld = T},
                         (GemmIn){.p = v, .ld = C3}, NULL, 0,
                         (GemmOut){.p = out + (size_t)b * T * C + h * hs, .ld = C});
        }
}

/* Backward with matrices per (b,h): dA = dY V^T; dV += A^T dY;
 * dS = A .* (dA - rowsum(A .* dA)) * scale; dQ += dS K; dK += dS^T Q.
 * scratch (B,NH,T,T) holds dA, then dS in place. */
void attention_backward(float *dinp, float *scratch, const float *dout, const float *inp,
                        const float *att, int B, int T, int C, int NH) {
    const int hs = C / NH;
    const int C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *q = inp + (size_t)b * T * C3 + h * hs;
            const float *k = q + C, *v = q + 2 * C;
            float *dq = dinp + (size_t)b * T * C3 + h * hs;
            float *dk = dq + C, *dv = dq + 2 * C;
            const float *a = att + ((size_t)b * NH + h) * T * T;
            const float *dy = dout + (size_t)b * T * C + h * hs;
            float *da = scratch + ((size_t)b * NH + h) * T * T;
            backend_gemm(NULL, 1, 1, T, T, hs, 1.0f, (GemmIn){.p = dy, .ld = C},
                         (GemmIn){.p = v, .trans = 1, .ld = C3}, NULL, 0,
                         (GemmOut){.p = da, .ld = T});
            backend_gemm(NULL, 1, 1, T, hs, T, 1.0f, (GemmIn){.p = a, .trans = 1, .ld = T},
                         (GemmIn){.p = dy, .ld = C}, NULL, 1, (GemmOut){.p = dv, .ld = C3});
            for (int t = 0; t < T; t++) {
                const float *ar = a + (size_t)t * T;
                float *dr = da + (size_t)t * T;
                float dot = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) dot += ar[t2] * dr[t2];
                for (int t2 = 0; t2 <= t; t2++) dr[t2] = ar[t2] * (dr[t2] - dot) * scale;
                for (int t2 = t + 1; t2 < T; t2++) dr[t2] = 0.0f;
            }
            backend_gemm(NULL, 1, 1, T, hs, T, 1.0f, (GemmIn){.p = da, .ld = T},
                         (GemmIn){.p = k, .ld = C3}, NULL, 1, (GemmOut){.p = dq, .ld = C3});
            backend_gemm(NULL, 1, 1, T, hs, T, 1.0f, (GemmIn){.p = da, .trans = 1, .ld = T},
                         (GemmIn){.p = q, .ld = C3}, NULL, 1, (GemmOut){.p = dk, .ld = C3});
        }
}

/* ---- batched GEMMs through the backend ------------------------------------------------
 * Operand layouts as batched matrices over (b, h): q of pair (b,h) is the (T, hs) block
 * at qkv + b*T*3C + h*hs with row stride 3C; k and v follow at +C and +2C; the attention
 * matrix of (b,h) is (T, T) at att + (b*NH + h)*T*T; y of (b,h) is (T, hs) at
 * out + b*T*C + h*hs with row stride C. */
static GemmIn qkv_part(const void *qkv, int use_bf16, int part, int trans, int T, int C, int hs) {
    const size_t off = (size_t)part * C;
    const void *p = use_bf16 ? (const void *)((const bf16 *)qkv + off)
                         : (const void *)((const float *)qkv + off);
    return (GemmIn){.p = p, .is_bf16 = use_bf16, .trans = trans, .ld = 3L * C, .bs0 = (long)T * 3 * C,
                    .bs1 = hs};
}

static GemmIn att_in(const void *att, int use_bf16, int trans, int T, int NH) {
    return (GemmIn){.p = att, .is_bf16 = use_bf16, .trans = trans, .ld = T, .bs0 = (long)NH * T * T,
                    .bs1 = (long)T * T};
}

static GemmOut att_out(float *att, int T, int NH) {
    return (GemmOut){.p = att, .ld = T, .bs0 = (long)NH * T * T, .bs1 = (long)T * T};
}

void attention_forward_gemm(Backend *be, void *out, float *att, bf16 *att16, const void *qkv,
                            int use_bf16, int B, int T, int C, int NH) {
    const int hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    /* S = scale * Q K^T, every (b, h) */
    backend_gemm(be, B, NH, T, T, hs, scale, qkv_part(qkv, use_bf16, 0, 0, T, C, hs),
                 qkv_part(qkv, use_bf16, 1, 1, T, C, hs), NULL, 0, att_out(att, T, NH));
    /* A = causal softmax(S) in fp32, saved; bf16: also A rounded for the second GEMM */
    const size_t rows = (size_t)B * NH * T;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        float *row = att + r * T;
        const int t = (int)(r % (size_t)T);
        causal_softmax_row_vec(row, t, T);
        if (use_bf16)
            for (int t2 = 0; t2 < T; t2++) att16[r * T + t2] = ta_bf16_round(row[t2]);
    }
    /* Y = A V -> out[b, :, h*hs : (h+1)*hs] (fp32, or bf16 for a bf16 model) */
    backend_gemm(be, B, NH, T, hs, T, 1.0f, att_in(use_bf16 ? (const void *)att16 : att, use_bf16, 0, T, NH),
                 qkv_part(qkv, use_bf16, 2, 0, T, C, hs), NULL, 0,
                 (GemmOut){.p = out, .is_bf16 = use_bf16, .ld = C, .bs0 = (long)T * C, .bs1 = hs});
}

/* Backward as attention_backward, with the GEMMs batched:
 *   dA = dY V^T;  dV += A^T dY;  dS = A .* (dA - rowsum(A .* dA)) * scale;
 *   dQ += dS K;  dK += dS^T Q.
 * dA and dS live in scratch (fp32, dS in place); bf16: dS is rounded into ds16 and A into
 * att16 for the GEMMs that read them. */
void attention_backward_gemm(Backend *be, float *dinp, float *scratch, bf16 *ds16, bf16 *att16,
                             const void *dout_mm, const void *qkv, const float *att, int use_bf16,
                             int B, int T, int C, int NH) {
    const int hs = C / NH;
    const long C3 = 3L * C;
    const float scale = 1.0f / sqrtf((float)hs);
    const GemmIn dy = {.p = dout_mm, .is_bf16 = use_bf16, .ld = C, .bs0 = (long)T * C, .bs1 = hs};
    backend_gemm(be, B, NH, T, T, hs, 1.0f, dy, qkv_part(qkv, use_bf16, 2, 1, T, C, hs), NULL, 0,
                 att_out(scratch, T, NH));
    const size_t rows = (size_t)B * NH * T;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        const float *ar = att + r * T;
        float *dr = scratch + r * T;
        const int t = (int)(r % (size_t)T);
        const float dot = ta_dot(ar, dr, t + 1);
        for (int t2 = 0; t2 <= t; t2++) dr[t2] = ar[t2] * (dr[t2] - dot) * scale;
        for (int t2 = t + 1; t2 < T; t2++) dr[t2] = 0.0f;
        if (use_bf16)
            for (int t2 = 0; t2 < T; t2++) {
                ds16[r * T + t2] = ta_bf16_round(dr[t2]);
                att16[r * T + t2] = ta_bf16_round(ar[t2]);
            }
    }
    const void *a_mm = use_bf16 ? (const void *)att16 : (const void *)att;
    const void *ds_mm = use_bf16 ? (const void *)ds16 : (const void *)scratch;
    const GemmOut dq = {.p = dinp, .ld = C3, .bs0 = T * C3, .bs1 = hs};
    GemmOut dk = dq, dv = dq;
    dk.p = dinp + C;
    dv.p = dinp + 2 * (size_t)C;
    backend_gemm(be, B, NH, T, hs, T, 1.0f, att_in(a_mm, use_bf16, 1, T, NH), dy, NULL, 1, dv);
    backend_gemm(be, B, NH, T, hs, T, 1.0f, att_in(ds_mm, use_bf16, 0, T, NH),
                 qkv_part(qkv, use_bf16, 1, 0, T, C, hs), NULL, 1, dq);
    backend_gemm(be, B, NH, T, hs, T, 1.0f, att_in(ds_mm, use_bf16, 1, T, NH),
                 qkv_part(qkv, use_bf16, 0, 0, T, C, hs), NULL, 1, dk);
}
