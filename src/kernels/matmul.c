/* matmul.c — the linear layer through cblas_sgemm, plus a naive reference.
 * PyTorch: out = F.linear(inp, weight, bias), weight (OC, C).
 * OpenBLAS (OpenMP build) threads each sgemm by splitting the output, never the K sum,
 * so each output element is summed in the same order at any thread count. */
#include <cblas.h>
#include <string.h>

#include "tinyalign/kernels.h"

void matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int N, int C, int OC) {
    float beta = 0.0f;
    if (bias) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, sizeof(float) * OC);
        beta = 1.0f;
    }
    /* out (N,OC) = inp (N,C) @ weight^T (C,OC) [+ out] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, weight, C, beta,
                out, OC);
}

/* Backward of out = inp @ W^T + b:
 *   dinp (N,C)  += dout (N,OC) @ W (OC,C)
 *   dW   (OC,C) += dout^T (OC,N) @ inp (N,C)
 *   db   (OC)   += sum_n dout[n, :]   (parallel over output channels, n in order) */
void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int C, int OC) {
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, weight, C,
                    1.0f, dinp, C);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f,
                dweight, C);
    if (dbias) {
        const int OB = 64;
        int nblocks = (OC + OB - 1) / OB;
#pragma omp parallel for schedule(static)
        for (int blk = 0; blk < nblocks; blk++) {
            int o0 = blk * OB, o1 = o0 + OB < OC ? o0 + OB : OC;
            float acc[64] = {0};
            for (int n = 0; n < N; n++) {
                const float *d = dout + (size_t)n * OC;
                for (int o = o0; o < o1; o++) acc[o - o0] += d[o];
            }
            for (int o = o0; o < o1; o++) dbias[o] += acc[o - o0];
        }
    }
}

void matmul_forward_naive(float *out, const float *inp, const float *weight,
                          const float *bias, int N, int C, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = bias ? bias[o] : 0.0;
            for (int c = 0; c < C; c++) s += (double)inp[(size_t)n * C + c] * weight[(size_t)o * C + c];
            out[(size_t)n * OC + o] = (float)s;
        }
}
