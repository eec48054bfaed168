/* vecmath.h — private helpers shared by the kernels: a dot product whose summation order
 * is written out (8 partial sums, then a fixed combine) so GCC vectorises it without
 * -ffast-math and the result never depends on the thread count. */
#ifndef TINYALIGN_VECMATH_H
#define TINYALIGN_VECMATH_H

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
