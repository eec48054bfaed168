/* attention.c — causal multi-head self-attention core (after the qkv projection).
 * PyTorch: q,k,v = qkv.split(C, -1) viewed (B,NH,T,hs);
 *          att = softmax((q @ k^T) / sqrt(hs) masked causally); y = att @ v -> (B,T,C).
 * Both passes parallelise over (b, h): every pair owns its output / gradient slices.
 *
 * The fast path runs each (b, h) as single-threaded sgemm calls (OpenBLAS's OpenMP build
 * does not nest threads inside our parallel region) over the full T x T score matrix —
 * twice the causal FLOPs, but ~10x the speed of dot-product loops. The naive loop
 * versions are kept beside it as the reference the tests compare it with. */
#include <cblas.h>
#include <math.h>
#include <string.h>

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
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, scale, q, C3, k, C3,
                        0.0f, a, T);
            for (int t = 0; t < T; t++) causal_softmax_row(a + (size_t)t * T, t, T);
            /* Y = A V -> out[b, :, h*hs : (h+1)*hs] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1.0f, a, T, v, C3,
                        0.0f, out + (size_t)b * T * C + h * hs, C);
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
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, 1.0f, dy, C, v, C3,
                        0.0f, da, T);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1.0f, a, T, dy, C,
                        1.0f, dv, C3);
            for (int t = 0; t < T; t++) {
                const float *ar = a + (size_t)t * T;
                float *dr = da + (size_t)t * T;
                float dot = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) dot += ar[t2] * dr[t2];
                for (int t2 = 0; t2 <= t; t2++) dr[t2] = ar[t2] * (dr[t2] - dot) * scale;
                for (int t2 = t + 1; t2 < T; t2++) dr[t2] = 0.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1.0f, da, T, k, C3,
                        1.0f, dq, C3);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1.0f, da, T, q, C3,
                        1.0f, dk, C3);
        }
}
