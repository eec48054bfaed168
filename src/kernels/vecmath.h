/* vecmath.h — private helpers shared by the kernels: a dot product whose summation order
 * is written out (8 partial sums, then a fixed combine) so GCC vectorises it without
 * -ffast-math and the result never depends on the thread count; the float <-> bf16
 * conversions inlined into the kernels that read or write bf16. */
#ifndef TINYALIGN_VECMATH_H
#define TINYALIGN_VECMATH_H
#include <math.h>
#include <stdint.h>
#include <string.h>

/* float -> bf16, round to nearest even on the bit pattern: adding 0x7fff plus the lowest
 * kept bit carries into bit 16 exactly when the dropped half is > 0.5 ulp, or == 0.5 ulp
 * with an odd kept part. Infinities are unchanged by the carry (their low bits are 0); a
 * NaN is kept a (quiet) NaN instead of letting the carry turn it into an infinity.
 * Branch-free, so loops over it vectorise. */
static inline uint16_t ta_bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    uint32_t nan = (u >> 16) | 0x40u;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : r);
}

/* e^x for x in float range, vectorisable: x = n ln2 + r, |r| <= ln2/2, e^x = 2^n e^r
 * (Cephes polynomial, ~2 ulp on the reduced range; e^x for x < -87 gives e^-87 ~ 1.6e-38
 * instead of underflowing, harmless wherever a sum of exponentials is >= 1). */
static inline float ta_exp_vec(float x) {
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

/* max, and sum of exp(x - shift) in double, over x[0..n): 16 independent lanes then a
 * fixed combine, so GCC vectorises them without -ffast-math (a serial loop would be one
 * long dependency chain) and the result does not depend on threads. */
static inline float ta_max_lanes(const float *x, int n) {
    float m[16];
    for (int j = 0; j < 16; j++) m[j] = -INFINITY;
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
    float r = -INFINITY;
    for (int j = 0; j < 16; j++) r = m[j] > r ? m[j] : r;
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
}

static inline double ta_sum_exp_lanes(const float *x, int n, float shift) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += (double)ta_exp_vec(x[i + j] - shift);
    double r = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < n; i++) r += (double)ta_exp_vec(x[i] - shift);
    return r;
}

/* bf16 -> float: exact (the bf16 bits are the top half of the float). */
static inline float ta_bf16_widen(uint16_t x) {
    uint32_t u = (uint32_t)x << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float ta_dot(const float *a, const float *b, int n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* y += alpha * x, n elements. */
static inline void ta_axpy(float *y, float alpha, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += alpha * x[i];
}

#endif
