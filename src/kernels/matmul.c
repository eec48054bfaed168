/* matmul.c — the fp32 linear layer on OpenBLAS (backend.h's linear_* with no backend
 * context), plus a naive reference.
 * PyTorch: out = F.linear(inp, weight, bias), weight (OC, C).
 * OpenBLAS (OpenMP build) threads each sgemm by splitting the output, never the K sum,
 * so each output element is summed in the same order at any thread count. */
#include "tinyalign/backend.h"
#include "tinyalign/kernels.h"

void matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int N, int C, int OC) {
    linear_forward(NULL, out, 0, inp, weight, 0, bias, N, C, OC);
}

void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int C, int OC) {
    linear_backward(NULL, dinp, dweight, dbias, dout, dout, inp, weight, 0, N, C, OC);
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
