/* layernorm.c — LayerNorm over the channel dimension (eps 1e-5), forward and backward.
 * PyTorch: F.layer_norm(x, (C,), weight, bias, eps=1e-5). Statistics in float, two-pass
 * (mean, then variance of the centred values) like PyTorch's CPU kernel. The bf16 forward
 * (the input of a bf16 matmul) computes the same fp32 values and rounds only the output;
 * the statistics stay fp32, and backward needs only them and the fp32 input. */
#include <math.h>

#include "tinyalign/kernels.h"
#include "vecmath.h"

/* mean and 1/sqrt(var + eps) of one row x (C), two-pass like PyTorch's CPU kernel. */
static inline void row_stats(const float *x, int C, float *mean, float *rstd) {
    float m = 0.0f;
    for (int c = 0; c < C; c++) m += x[c];
    m /= (float)C;
    float v = 0.0f;
    for (int c = 0; c < C; c++) {
        float d = x[c] - m;
        v += d * d;
    }
    v /= (float)C;
    *mean = m;
    *rstd = 1.0f / sqrtf(v + 1e-5f);
}

/* One row: y = (x - mean) * rstd * w + b into out (fp32) or out16 (rounded to bf16). */
static inline void ln_row(float *out, bf16 *out16, float *mean, float *rstd, const float *x,
                          const float *weight, const float *bias, int C) {
    float m, s;
    row_stats(x, C, &m, &s);
    if (out16)
        for (int c = 0; c < C; c++) out16[c] = ta_bf16_round((x[c] - m) * s * weight[c] + bias[c]);
    else
        for (int c = 0; c < C; c++) out[c] = (x[c] - m) * s * weight[c] + bias[c];
    *mean = m;
    *rstd = s;
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        ln_row(out + (size_t)n * C, NULL, mean + n, rstd + n, inp + (size_t)n * C, weight, bias, C);
}

void layernorm_forward_bf16(bf16 *out, float *mean, float *rstd, const float *inp,
                            const float *weight, const float *bias, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        ln_row(NULL, out + (size_t)n * C, mean + n, rstd + n, inp + (size_t)n * C, weight, bias, C);
}

/* Backward of y = xhat * w + b with xhat = (x - mean) * rstd:
 *   dw += sum_n dy * xhat;   db += sum_n dy
 *   dxhat = dy * w
 *   dx += rstd * (dxhat - mean_c(dxhat) - xhat * mean_c(dxhat * xhat))
 * dx rows are disjoint (parallel over n); dw/db are reductions over n, done in a second
 * pass parallel over channel blocks with n in order (fixed summation order). */
/* dx (row n) += ..., then dx16 = bf16(dx) when dx16 is not NULL. */
static inline void ln_backward_row(float *dx, bf16 *dx16, const float *dy, const float *x,
                                   const float *weight, float m, float s, int C) {
    float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
    for (int c = 0; c < C; c++) {
        float xhat = (x[c] - m) * s;
        float dxhat = dy[c] * weight[c];
        dnorm_mean += dxhat;
        dnorm_norm_mean += dxhat * xhat;
    }
    dnorm_mean /= (float)C;
    dnorm_norm_mean /= (float)C;
    for (int c = 0; c < C; c++) {
        float xhat = (x[c] - m) * s;
        float dxhat = dy[c] * weight[c];
        dx[c] += s * (dxhat - dnorm_mean - xhat * dnorm_norm_mean);
    }
    if (dx16)
        for (int c = 0; c < C; c++) dx16[c] = ta_bf16_round(dx[c]);
}

/* dweight, dbias (C) += the reductions over n, parallel over channel blocks, n in order. */
static void ln_param_grads(float *dweight, float *dbias, const float *dout, const float *inp,
                           const float *mean, const float *rstd, int N, int C) {
    const int CB = 16;
    int nblocks = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblocks; blk++) {
        int c0 = blk * CB, c1 = c0 + CB < C ? c0 + CB : C;
        float dw[16] = {0}, db[16] = {0};
        for (int n = 0; n < N; n++) {
            const float *dy = dout + (size_t)n * C;
            const float *x = inp + (size_t)n * C;
            float m = mean[n], s = rstd[n];
            for (int c = c0; c < c1; c++) {
                dw[c - c0] += dy[c] * (x[c] - m) * s;
                db[c - c0] += dy[c];
            }
        }
        for (int c = c0; c < c1; c++) {
            dweight[c] += dw[c - c0];
            dbias[c] += db[c - c0];
        }
    }
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        ln_backward_row(dinp + (size_t)n * C, NULL, dout + (size_t)n * C, inp + (size_t)n * C,
                        weight, mean[n], rstd[n], C);
    ln_param_grads(dweight, dbias, dout, inp, mean, rstd, N, C);
}

void layernorm_backward_bf16(float *dinp, bf16 *dinp16, float *dweight, float *dbias,
                             const float *dout, const float *inp, const float *weight,
                             const float *mean, const float *rstd, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        ln_backward_row(dinp + (size_t)n * C, dinp16 + (size_t)n * C, dout + (size_t)n * C,
                        inp + (size_t)n * C, weight, mean[n], rstd[n], C);
    ln_param_grads(dweight, dbias, dout, inp, mean, rstd, N, C);
}
