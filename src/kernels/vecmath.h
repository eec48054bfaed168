/* vecmath.h — private helpers shared by the kernels: a dot product whose summation order
 * is written out (8 partial sums, then a fixed combine) so GCC vectorises it without
 * -ffast-math and the result never depends on the thread count; the float <-> bf16
 * conversions inlined into the kernels that read or write bf16. */
#ifndef TINYALIGN_VECMATH_H
#define TINYALIGN_VECMATH_H
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
