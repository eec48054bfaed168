/* linear_rows.c — the decode-step matmul of the backend (backend.h): out (N,OC) =
 * inp (N,C) @ weight^T + bias for the 1..16 rows of a decode step, weights streamed once.
 *
 * sgemm with N = 1..8 packs the whole weight matrix on every call, so it moves each weight
 * ~3 times; here every weight row is read once from memory and used for all N inputs while
 * it is in L1 (tiles of 4 weight rows x 4 inputs, 8-float vector partial sums). Each
 * output is one thread's sum in a fixed order (8 lanes over c, the lanes combined
 * pairwise, then the C % 8 tail, then the bias), so it does not depend on N, on the tile
 * the row falls in, or on the thread count.
 *
 * fp32 weights and inputs, and bf16 weights and inputs (products and sums in fp32: with
 * the AVX512-BF16 dot-product instruction where the build targets it, else widened to
 * fp32 in registers). A decode step is bound by the bytes of weights it streams, so bf16
 * weights make it up to twice as fast.
 * Reference: linear_forward (a GEMM) gives the same values up to summation order; the
 * tests compare the two. */
#include <string.h>

#include "tinyalign/backend.h"
#include "vecmath.h"

typedef float v8f __attribute__((vector_size(32)));
typedef uint16_t v8h __attribute__((vector_size(16)));
typedef uint32_t v8u __attribute__((vector_size(32)));

/* Macros rather than functions: passing 32-byte vectors by value warns (-Wpsabi) in
 * builds without AVX (make debug / asan). FMA8 fuses when the target has FMA (one
 * rounding; the build decides, so every run of one binary computes the same bits). */
#define LOAD8_F32(v, p) memcpy(&(v), (p), sizeof(v8f))
#define LOAD8_BF16(v, p)                                                                   \
    do {                                                                                   \
        v8h h_;                                                                            \
        memcpy(&h_, (p), sizeof h_);                                                       \
        v8u u_ = __builtin_convertvector(h_, v8u) << 16;                                   \
        memcpy(&(v), &u_, sizeof(v8f));                                                    \
    } while (0)
#if defined(__FMA__) || defined(__AVX512F__)
#include <immintrin.h>
#endif
#if defined(__FMA__)
#define FMA8(acc, a, b) ((acc) = (v8f)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(acc)))
#else
#define FMA8(acc, a, b) ((acc) += (a) * (b))
#endif

static inline float lanes_sum(const v8f *v) {
    const float *a = (const float *)v;
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

static inline float widen_f32(float x) { return x; }

/* NAME(out, inp, weight, bias, N, C, OC) with elements of type T read by LOAD8 / WIDEN.
 * TILE: acc[i][j] += w[i][0..C8) * x[j][0..C8) for 4 weight rows and NX inputs (NX is a
 * constant at each call site, so the loops unroll and the partial sums stay in
 * registers). */
#define DEFINE_LINEAR_ROWS(NAME, T, LOAD8, WIDEN)                                          \
    static inline __attribute__((always_inline)) void NAME##_tile(                        \
        v8f acc[4][4], const T *const *w, const T *const *x, int NX, int C8) {            \
        for (int c = 0; c < C8; c += 8) {                                                  \
            v8f w0, w1, w2, w3, xv;                                                        \
            LOAD8(w0, w[0] + c);                                                           \
            LOAD8(w1, w[1] + c);                                                           \
            LOAD8(w2, w[2] + c);                                                           \
            LOAD8(w3, w[3] + c);                                                           \
            for (int j = 0; j < NX; j++) {                                                 \
                LOAD8(xv, x[j] + c);                                                       \
                FMA8(acc[0][j], w0, xv);                                                   \
                FMA8(acc[1][j], w1, xv);                                                   \
                FMA8(acc[2][j], w2, xv);                                                   \
                FMA8(acc[3][j], w3, xv);                                                   \
            }                                                                              \
        }                                                                                  \
    }                                                                                      \
    void NAME(float *out, const T *inp, const T *weight, const float *bias, int N, int C,  \
              int OC) {                                                                    \
        const int C8 = C / 8 * 8;                                                          \
        _Pragma("omp parallel for schedule(static)")                                       \
        for (int o0 = 0; o0 < OC; o0 += 4) {                                               \
            /* the last block may have fewer than 4 rows: it repeats row o0 (not stored) */ \
            const int no = OC - o0 < 4 ? OC - o0 : 4;                                      \
            const T *w[4];                                                                 \
            for (int i = 0; i < 4; i++) w[i] = weight + (size_t)(o0 + (i < no ? i : 0)) * C; \
            for (int n0 = 0; n0 < N; n0 += 4) {                                            \
                const int nn = N - n0 < 4 ? N - n0 : 4;                                    \
                const T *x[4];                                                             \
                for (int j = 0; j < 4; j++) x[j] = inp + (size_t)(n0 + (j < nn ? j : 0)) * C; \
                v8f acc[4][4];                                                             \
                memset(acc, 0, sizeof acc);                                                \
                switch (nn) {                                                              \
                case 1: NAME##_tile(acc, w, x, 1, C8); break;                              \
                case 2: NAME##_tile(acc, w, x, 2, C8); break;                              \
                case 3: NAME##_tile(acc, w, x, 3, C8); break;                              \
                default: NAME##_tile(acc, w, x, 4, C8); break;                             \
                }                                                                          \
                for (int i = 0; i < no; i++)                                               \
                    for (int j = 0; j < nn; j++) {                                         \
                        float s = lanes_sum(&acc[i][j]);                                   \
                        for (int c = C8; c < C; c++) s += WIDEN(w[i][c]) * WIDEN(x[j][c]); \
                        out[(size_t)(n0 + j) * OC + o0 + i] = bias ? s + bias[o0 + i] : s; \
                    }                                                                      \
            }                                                                              \
        }                                                                                  \
    }

DEFINE_LINEAR_ROWS(linear_rows, float, LOAD8_F32, widen_f32)

#if defined(__AVX512BF16__) && defined(__AVX512F__)
/* bf16 on a CPU with AVX512-BF16: VDPBF16PS multiplies 16 pairs of bf16 and adds each
 * pair's two products to one fp32 lane — 32 multiply-adds per instruction, no widening.
 * Same tiling as above (4 weight rows x up to 4 inputs, 16 accumulators in registers),
 * 32 elements per step; the C % 32 tail and the 16 lanes are summed in a fixed order. */
static inline __attribute__((always_inline)) void dp_tile(__m512 acc[4][4],
                                                          const bf16 *const *w,
                                                          const bf16 *const *x, int NX, int C32) {
    for (int c = 0; c < C32; c += 32) {
        __m512bh w0 = (__m512bh)_mm512_loadu_si512(w[0] + c);
        __m512bh w1 = (__m512bh)_mm512_loadu_si512(w[1] + c);
        __m512bh w2 = (__m512bh)_mm512_loadu_si512(w[2] + c);
        __m512bh w3 = (__m512bh)_mm512_loadu_si512(w[3] + c);
        for (int j = 0; j < NX; j++) {
            __m512bh xv = (__m512bh)_mm512_loadu_si512(x[j] + c);
            acc[0][j] = _mm512_dpbf16_ps(acc[0][j], w0, xv);
            acc[1][j] = _mm512_dpbf16_ps(acc[1][j], w1, xv);
            acc[2][j] = _mm512_dpbf16_ps(acc[2][j], w2, xv);
            acc[3][j] = _mm512_dpbf16_ps(acc[3][j], w3, xv);
        }
    }
}

static inline float lanes16_sum(__m512 v) {
    float a[16];
    _mm512_storeu_ps(a, v);
    float s = 0.0f;
    for (int k = 0; k < 8; k++) s += a[k] + a[k + 8];
    return s;
}

void linear_rows_bf16(float *out, const bf16 *inp, const bf16 *weight, const float *bias, int N,
                      int C, int OC) {
    const int C32 = C / 32 * 32;
#pragma omp parallel for schedule(static)
    for (int o0 = 0; o0 < OC; o0 += 4) {
        const int no = OC - o0 < 4 ? OC - o0 : 4; /* a short last block repeats row o0 */
        const bf16 *w[4];
        for (int i = 0; i < 4; i++) w[i] = weight + (size_t)(o0 + (i < no ? i : 0)) * C;
        for (int n0 = 0; n0 < N; n0 += 4) {
            const int nn = N - n0 < 4 ? N - n0 : 4;
            const bf16 *x[4];
            for (int j = 0; j < 4; j++) x[j] = inp + (size_t)(n0 + (j < nn ? j : 0)) * C;
            __m512 acc[4][4];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) acc[i][j] = _mm512_setzero_ps();
            switch (nn) {
            case 1: dp_tile(acc, w, x, 1, C32); break;
            case 2: dp_tile(acc, w, x, 2, C32); break;
            case 3: dp_tile(acc, w, x, 3, C32); break;
            default: dp_tile(acc, w, x, 4, C32); break;
            }
            for (int i = 0; i < no; i++)
                for (int j = 0; j < nn; j++) {
                    float s = lanes16_sum(acc[i][j]);
                    for (int c = C32; c < C; c++)
                        s += ta_bf16_widen(w[i][c]) * ta_bf16_widen(x[j][c]);
                    out[(size_t)(n0 + j) * OC + o0 + i] = bias ? s + bias[o0 + i] : s;
                }
        }
    }
}
#else
/* without AVX512-BF16 (a build for another CPU): widen to fp32 in registers */
DEFINE_LINEAR_ROWS(linear_rows_bf16, bf16, LOAD8_BF16, ta_bf16_widen)
#endif
