/* pointwise.c — GELU (tanh approximation) and the residual add, forward and backward.
 * PyTorch: F.gelu(x, approximate="tanh"); out = a + b.
 *
 * glibc's tanhf is scalar and cost a fifth of a training step, so GELU is computed from
 * a branch-free expf (Cephes polynomial, ~2 ulp on the reduced range) that GCC
 * vectorises, through the identity 0.5 (1 + tanh u) = sigmoid(2u) = 1 / (1 + e^{-2u}).
 * With e = e^{-2u}: s = 1/(1+e) and 1 - s = e s, both free of cancellation, so the
 * far-negative tail (where 1 + tanh u underflows in float) keeps its relative accuracy.
 * The finite-difference test checks both passes against the double-precision formula. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "tinyalign/kernels.h"
#include "vecmath.h"

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

/* e^x for x in float range, vectorisable: x = n ln2 + r, |r| <= ln2/2, e^x = 2^n e^r. */
static inline float exp_vec(float x) {
    /* two plain selects (GCC if-converts them); written so that NaN maps to -87: the
     * float->int conversion below must never see NaN (undefined behaviour). A NaN input
     * still yields NaN from the callers, whose formulas also use x itself. */
    x = x > -87.0f ? x : -87.0f;
    x = x < 88.0f ? x : 88.0f;
    /* n = round(x / ln2) via truncation of a positive number (floorf would not vectorise
     * without -fno-trapping-math) */
    int32_t ni = (int32_t)(x * 1.44269504088896341f + 128.5f) - 128;
    float n = (float)ni;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f; /* Cody-Waite: ln2 = hi - lo */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float e = p * r * r + r + 1.0f;
    int32_t bits = (ni + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return e * scale;
}

/* y = 0.5 x (1 + tanh(u)) = x s, s = sigmoid(2u), u = k (x + 0.044715 x^3) */
static inline float gelu(float x) {
    float u = GELU_K * (x + 0.044715f * x * x * x);
    return x / (1.0f + exp_vec(-2.0f * u)); /* x * sigmoid(2u) */
}

/* dy/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) u'      with 1 - tanh^2 = 4 s (1 - s)
 *       = s + 2 x s (1 - s) u',   u' = k (1 + 3 * 0.044715 x^2) */
static inline float gelu_grad(float x) {
    float u = GELU_K * (x + 0.044715f * x * x * x);
    float e = exp_vec(-2.0f * u);
    float s = 1.0f / (1.0f + e);
    float du = GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
    return s + 2.0f * x * (e * s) * s * du;
}

void gelu_forward(float *out, const float *inp, size_t N) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) out[i] = gelu(inp[i]);
}

void gelu_forward_bf16(bf16 *out, const float *inp, size_t N) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) out[i] = ta_bf16_round(gelu(inp[i]));
}

void gelu_backward(float *dinp, const float *inp, const float *dout, size_t N) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) dinp[i] += gelu_grad(inp[i]) * dout[i];
}

void gelu_backward_bf16(float *dinp, bf16 *dinp16, const float *inp, const float *dout,
                        size_t N) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) {
        float d = dinp[i] + gelu_grad(inp[i]) * dout[i];
        dinp[i] = d;
        dinp16[i] = ta_bf16_round(d);
    }
}

void residual_forward(float *out, const float *a, const float *b, size_t N) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) out[i] = a[i] + b[i];
}

void residual_backward(float *da, float *db, const float *dout, size_t N) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) {
        da[i] += dout[i];
        db[i] += dout[i];
    }
}
