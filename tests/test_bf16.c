/* test_bf16.c — the matmul backend (backend.h) and bf16 training.
 *
 *  1. bf16 rounding: round-to-nearest-even against an independent reference (the nearer
 *     of the two bf16 neighbours, computed in double), ties, overflow, NaN, denormals;
 *  2. backend_gemm through oneDNN, fp32 and bf16, plain / transposed / batched / bias /
 *     accumulate / alpha / bf16 output, against a double-precision GEMM of the operands
 *     it reads, within the fp32 accumulation bound; and the statistics of bf16 rounding
 *     that the model tolerances below are derived from;
 *  3. linear_rows (the decode kernel) against the GEMM, fp32 and bf16;
 *  4. the model on oneDNN: fp32 logits and gradients match PyTorch (tools/ref_gpt2.py) at
 *     the fp32 tolerances of test_gpt2; bf16 logits and every gradient match PyTorch's
 *     fp32 within tolerances derived from bf16's 8-bit significand (derivation below);
 *     the same on a wider random model against our fp32 engine;
 *  5. bf16 training is bit-identical run to run at a fixed thread count; bf16 decoding
 *     (prefill + steps) agrees with the bf16 full forward; a parameter write without
 *     gpt2_params_changed is caught (assert, in a child process).
 *
 * ---- Tolerances for bf16, derived ------------------------------------------------------
 * bf16 keeps 8 significant bits: rounding x to bf16 (nearest, ties to even) gives
 * x (1 + d) with |d| <= u = 2^-8, and for data spread over binades d is close to
 * uniform on [-u m^-1, u m^-1] (m in [1,2) the significand), so rms(d) <= u / sqrt(3) =: r.
 *  - One K-long dot product y = sum_k a_k b_k with both inputs rounded and fp32 sums:
 *    e = sum_k a_k b_k (d_ak + d_bk) (+ O(u^2), + fp32 error ~2^-24 sqrt(K), 65536x
 *    smaller), so sd(e) <= sqrt(2) r sqrt(sum_k (a_k b_k)^2) = sqrt(2) r sqrt(K) rms(ab):
 *    the error grows like sqrt(K) in units of one term. Normwise over a whole output,
 *    ||e|| / ||y|| <= sqrt(2) r sqrt(S), S = sum_ij sum_k (a_ik b_kj)^2 / sum_ij y_ij^2,
 *    and S ~ 1 when the terms have random signs (then y itself grows like sqrt(K)): a
 *    GEMM's relative error does not grow with K. gemm_bf16_rounding_statistics checks
 *    both the bound and that the rounding really happens (the error is not ~0).
 *  - A network: independent roundings add in quadrature; LayerNorm re-normalises and the
 *    residual stream adds branch outputs of at most its own scale, so each rounding
 *    reaches the logits with a gain of order 1. Counting the bf16 roundings an output
 *    depends on: per layer, forward LN1 out, W_qkv, qkv out (q, k, v), softmax weights,
 *    attention out, W_attproj, LN2 out, W_fc, GELU out, W_fcproj = 10; plus LN_f out and
 *    wte = 2: n_fwd = 10 L + 2, rho_fwd = r sqrt(n_fwd). Backward adds per layer the
 *    rounded dout of fcproj, fc, attproj, attention dY, dS and dqkv = 6, plus dlogits:
 *    n_bwd = 16 L + 3, rho_bwd = r sqrt(n_bwd).
 *  - Checks: normwise relative error <= G rho, and every element's error <= G rho max|ref|
 *    (an element's error scales with its terms, which can exceed the element itself when
 *    they cancel: elementwise bounds are taken against the tensor's largest value, as
 *    test_gpt2 does), G = 1.5 for gains a little above 1
 *    (softmax turns an absolute score error into a relative weight error; LayerNorm's
 *    backward mixes a row). For L = 2: rho_fwd = 0.0106, rho_bwd = 0.0133.
 *  - How close the derivation is: for one GEMM on Gaussian data the measured error is
 *    0.72 of the bound — r = u/sqrt(3) assumes the worst significand, while for data
 *    spread over binades E[m^-2] = 3/(8 ln 2) = 0.54 and sqrt(0.54) = 0.73. For the
 *    models the measured errors are 0.2-0.5 rho (not every rounding reaches an output at
 *    full gain). A stale weight, a missing bias, a GEMM summing in bf16 (relative error
 *    ~ u sqrt(K)) or a wrong operand exceed the limits by far.
 */
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "refio.h"
#include "testhelp.h"
#include "tinyalign/backend.h"
#include "tinyalign/common.h"
#include "tinyalign/kernels.h"
#include "tinyalign/model.h"
#include "tinyalign/optim.h"

#define U_BF16 (1.0 / 256.0)                /* 2^-8 */
#define R_BF16 (U_BF16 / 1.7320508075688772) /* rms of one rounding's relative error, <= u/sqrt 3 */
#define U_F32 (1.0 / 16777216.0)            /* 2^-24 */

/* ---- 1. rounding --------------------------------------------------------------------- */

static double bits_value(uint32_t hi16) { /* a bf16 bit pattern as a double; exponent 255
                                           * with zero significand counts as 2^128 */
    uint32_t u = hi16 << 16;
    if ((u & 0x7fffffffu) == 0x7f800000u) return (u >> 31) ? -ldexp(1.0, 128) : ldexp(1.0, 128);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Independent reference: the nearer of the two bf16 values around x (truncated and next
 * up in magnitude), ties to the even one; beyond the largest bf16, infinity. */
static uint16_t ref_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    uint32_t lo = u >> 16, hi = lo + 1;
    double dl = bits_value(lo), dh = bits_value(hi), d = x;
    double el = fabs(d - dl), eh = fabs(dh - d);
    if (el < eh) return (uint16_t)lo;
    if (eh < el) return (uint16_t)hi;
    return (uint16_t)((lo & 1) ? hi : lo);
}

static void t_rounding(void) {
    TaRng rng;
    ta_rng_seed(&rng, 11);
    const uint32_t special[] = {0x3f808000u, 0x3f818000u, 0xbf808000u, 0x3f807fffu, 0x3f808001u,
                                0x7f7fffffu, 0xff7fffffu, 0x7f7f7fffu, 0x7f7f8000u, 0x00000001u,
                                0x00008000u, 0x00018000u, 0x80000000u, 0x00000000u, 0x7f800000u,
                                0xff800000u, 0x3f800000u};
    for (size_t i = 0; i < sizeof special / 4 + 200000; i++) {
        uint32_t u = i < sizeof special / 4 ? special[i] : (uint32_t)ta_rng_u64(&rng);
        float x;
        memcpy(&x, &u, 4);
        if (isnan(x)) continue;
        uint16_t got = bf16_from_f32(x), want = ref_round(x);
        T_CHECK(got == want, "bits %08x: bf16 %04x, reference %04x", u, got, want);
        T_CHECK(bf16_to_f32(got) == (float)bits_value(got) || isinf(bf16_to_f32(got)),
                "widening %04x", got);
    }
    /* ties to even, by value */
    T_CHECK(bf16_from_f32(1.0f + 1.0f / 256.0f) == 0x3f80, "1 + 2^-8 is a tie -> 1");
    T_CHECK(bf16_from_f32(1.0f + 3.0f / 256.0f) == 0x3f82, "1 + 3 2^-8 is a tie -> 1 + 2^-6");
    T_CHECK(isinf(bf16_to_f32(bf16_from_f32(3.4028235e38f))), "max float rounds to inf");
}

static void t_rounding_nan_and_arrays(void) {
    const uint32_t nans[] = {0x7fc00000u, 0x7f800001u, 0xffc00001u, 0x7fffffffu};
    for (int i = 0; i < 4; i++) {
        float x;
        memcpy(&x, &nans[i], 4);
        T_CHECK(isnan(bf16_to_f32(bf16_from_f32(x))), "NaN %08x did not stay NaN", nans[i]);
    }
    enum { N = 100003 };
    float *x = ta_malloc(N * sizeof(float), "x"), *back = ta_malloc(N * sizeof(float), "b");
    bf16 *h = ta_malloc(N * sizeof(bf16), "h");
    TaRng rng;
    ta_rng_seed(&rng, 3);
    for (int i = 0; i < N; i++) x[i] = (float)(ta_rng_normal(&rng) * exp(8.0 * ta_rng_normal(&rng)));
    bf16_from_f32_array(h, x, N);
    bf16_to_f32_array(back, h, N);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        T_CHECK(h[i] == bf16_from_f32(x[i]), "array element %d differs from the scalar", i);
        if (x[i] != 0 && isfinite(x[i])) {
            double rel = fabs((double)back[i] - x[i]) / fabs((double)x[i]);
            if (rel > worst) worst = rel;
        }
    }
    free(x);
    free(back);
    free(h);
    T_CHECK(worst <= U_BF16, "relative rounding error %.3g > 2^-8", worst);
    T_CHECK(worst > 0.9 * U_BF16, "largest relative rounding error %.3g, expected ~2^-8", worst);
}

/* ---- 2. GEMM -------------------------------------------------------------------------- */

static Backend *DNN32, *DNN16;

/* element (i, j) of op(X) for an operand of the given layout, as a double */
static double opval(const GemmIn *x, int b0, int b1, int i, int j) {
    size_t off = (size_t)(b0 * x->bs0 + b1 * x->bs1) + (x->trans ? (size_t)j * x->ld + i
                                                                   : (size_t)i * x->ld + j);
    return x->is_bf16 ? bf16_to_f32(((const bf16 *)x->p)[off]) : ((const float *)x->p)[off];
}

typedef struct {
    int nb0, nb1, M, N, K, ta, tb, bias, acc, out16, in16;
    float alpha;
} GemmCase;

/* Random operands in a buffer with the case's layout (and some slack in ld). */
static void *rand_operand(TaRng *rng, int in16, size_t n) {
    void *p = ta_malloc(n * (in16 ? 2 : 4), "operand");
    for (size_t i = 0; i < n; i++) {
        float v = (float)ta_rng_normal(rng);
        if (in16) ((bf16 *)p)[i] = bf16_from_f32(v);
        else ((float *)p)[i] = v;
    }
    return p;
}

static void run_gemm_case(const GemmCase *gc, char *msg, size_t cap, int *ok) {
    TaRng rng;
    ta_rng_seed(&rng, (uint64_t)(gc->M * 131 + gc->N * 7 + gc->K + gc->ta * 2 + gc->tb));
    const int M = gc->M, N = gc->N, K = gc->K;
    /* stored shapes with 3 extra columns of slack per row */
    long lda = (gc->ta ? M : K) + 3, ldb = (gc->tb ? K : N) + 3, ldc = N + 3;
    long rows_a = gc->ta ? K : M, rows_b = gc->tb ? N : K;
    long sa1 = rows_a * lda, sb1 = rows_b * ldb, sc1 = (long)M * ldc;
    long sa0 = sa1 * gc->nb1, sb0 = sb1 * gc->nb1, sc0 = sc1 * gc->nb1;
    size_t na = (size_t)sa0 * gc->nb0, nb = (size_t)sb0 * gc->nb0, nc = (size_t)sc0 * gc->nb0;
    void *a = rand_operand(&rng, gc->in16, na), *b = rand_operand(&rng, gc->in16, nb);
    float *c0 = rand_operand(&rng, 0, nc);
    void *c = ta_malloc(nc * 4, "c");
    if (gc->out16)
        for (size_t i = 0; i < nc; i++) ((bf16 *)c)[i] = bf16_from_f32(c0[i]);
    else
        memcpy(c, c0, nc * 4);
    float *bias = gc->bias ? rand_operand(&rng, 0, (size_t)N) : NULL;
    GemmIn A = {.p = a, .is_bf16 = gc->in16, .trans = gc->ta, .ld = lda, .bs0 = sa0, .bs1 = sa1};
    GemmIn Bm = {.p = b, .is_bf16 = gc->in16, .trans = gc->tb, .ld = ldb, .bs0 = sb0, .bs1 = sb1};
    GemmOut Cm = {.p = c, .is_bf16 = gc->out16, .ld = ldc, .bs0 = sc0, .bs1 = sc1};
    backend_gemm(gc->in16 ? DNN16 : DNN32, gc->nb0, gc->nb1, M, N, K, gc->alpha, A, Bm, bias,
                 gc->acc, Cm);
    *ok = 1;
    for (int i0 = 0; i0 < gc->nb0 && *ok; i0++)
        for (int i1 = 0; i1 < gc->nb1 && *ok; i1++)
            for (int i = 0; i < M && *ok; i++)
                for (int j = 0; j < N; j++) {
                    double s = 0, sabs = 0;
                    for (int k = 0; k < K; k++) {
                        double t = opval(&A, i0, i1, i, k) * opval(&Bm, i0, i1, k, j);
                        s += t;
                        sabs += fabs(t);
                    }
                    size_t ci = (size_t)(i0 * sc0 + i1 * sc1) + (size_t)i * ldc + j;
                    double prev = gc->out16 ? bf16_to_f32(bf16_from_f32(c0[ci])) : c0[ci];
                    double want = gc->alpha * s + (bias ? bias[j] : 0) + (gc->acc ? prev : 0);
                    double mag = fabs(gc->alpha) * sabs + (bias ? fabs(bias[j]) : 0) +
                                 (gc->acc ? fabs(prev) : 0);
                    double got = gc->out16 ? bf16_to_f32(((bf16 *)c)[ci]) : ((float *)c)[ci];
                    /* fp32 sums of K+2 terms: |err| <= (K+2) 2^-24 sum|terms| (+ the output's
                     * own rounding to bf16, <= 2^-8 |y|) */
                    double tol = (K + 2) * U_F32 * mag + (gc->out16 ? U_BF16 * fabs(want) : 0) + 1e-30;
                    if (!(fabs(got - want) <= tol)) {
                        snprintf(msg, cap,
                                 "batch (%d,%d) element (%d,%d): got %.9g, want %.9g (tol %.3g)",
                                 i0, i1, i, j, got, want, tol);
                        *ok = 0;
                        break;
                    }
                }
    /* columns of slack must be untouched */
    for (size_t i = 0; i < nc && *ok; i++) {
        size_t in_mat = i % (size_t)sc1;
        if ((long)(in_mat % (size_t)ldc) >= N) {
            int same = gc->out16 ? ((bf16 *)c)[i] == bf16_from_f32(c0[i]) : ((float *)c)[i] == c0[i];
            if (!same) {
                snprintf(msg, cap, "wrote outside the output (element %zu)", i);
                *ok = 0;
            }
        }
    }
    free(a);
    free(b);
    free(c0);
    free(c);
    free(bias);
}

static void t_gemm_cases(void) {
    const GemmCase cases[] = {
        {1, 1, 37, 29, 53, 0, 0, 0, 0, 0, 0, 1.0f}, {1, 1, 37, 29, 53, 0, 1, 1, 0, 0, 0, 1.0f},
        {1, 1, 37, 29, 53, 1, 0, 0, 1, 0, 0, 1.0f}, {1, 1, 37, 29, 53, 1, 1, 0, 1, 0, 0, 0.25f},
        {1, 1, 37, 29, 53, 0, 0, 0, 0, 0, 1, 1.0f}, {1, 1, 64, 96, 48, 0, 1, 1, 0, 0, 1, 1.0f},
        {1, 1, 64, 96, 48, 1, 0, 0, 1, 0, 1, 1.0f}, {1, 1, 33, 40, 70, 0, 1, 1, 0, 1, 1, 1.0f},
        {2, 3, 16, 16, 8, 0, 1, 0, 0, 0, 0, 0.35f}, {2, 3, 16, 16, 8, 0, 1, 0, 0, 0, 1, 0.35f},
        {2, 3, 16, 8, 16, 1, 0, 0, 1, 0, 1, 1.0f},  {2, 3, 16, 8, 16, 0, 0, 0, 0, 1, 1, 1.0f},
        {1, 1, 1, 200, 64, 0, 1, 1, 0, 0, 1, 1.0f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[512];
        int ok;
        run_gemm_case(&cases[i], msg, sizeof msg, &ok);
        const GemmCase *g = &cases[i];
        T_CHECK(ok, "case %zu (%s, batch %dx%d, M=%d N=%d K=%d, trans %d%d, bias %d, acc %d, "
                    "out %s, alpha %g): %s", i, g->in16 ? "bf16" : "fp32", g->nb0, g->nb1, g->M,
                g->N, g->K, g->ta, g->tb, g->bias, g->acc, g->out16 ? "bf16" : "fp32",
                g->alpha, msg);
    }
}

/* The derivation's first step measured: a bf16 GEMM of rounded fp32 data against the
 * exact product of the unrounded data has normwise error ~ sqrt(2) r sqrt(S) — and it is
 * not ~0 (the inputs really are rounded) nor ~u sqrt(K) (the sums really are fp32). */
static void t_gemm_rounding_statistics(void) {
    for (int K = 16; K <= 4096; K *= 8) {
        const int M = 64, N = 48;
        TaRng rng;
        ta_rng_seed(&rng, (uint64_t)K);
        float *a = ta_malloc(sizeof(float) * M * K, "a"), *b = ta_malloc(sizeof(float) * K * N, "b");
        bf16 *a16 = ta_malloc(2 * (size_t)M * K, "a16"), *b16 = ta_malloc(2 * (size_t)K * N, "b16");
        float *y = ta_malloc(sizeof(float) * M * N, "y");
        for (int i = 0; i < M * K; i++) a[i] = (float)ta_rng_normal(&rng);
        for (int i = 0; i < K * N; i++) b[i] = (float)ta_rng_normal(&rng);
        bf16_from_f32_array(a16, a, (size_t)M * K);
        bf16_from_f32_array(b16, b, (size_t)K * N);
        backend_gemm(DNN16, 1, 1, M, N, K, 1.0f, (GemmIn){.p = a16, .is_bf16 = 1, .ld = K},
                     (GemmIn){.p = b16, .is_bf16 = 1, .ld = N}, NULL, 0, (GemmOut){.p = y, .ld = N});
        double e2 = 0, y2 = 0, s2 = 0;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double s = 0;
                for (int k = 0; k < K; k++) {
                    double t = (double)a[(size_t)i * K + k] * b[(size_t)k * N + j];
                    s += t;
                    s2 += t * t;
                }
                e2 += (y[i * N + j] - s) * (y[i * N + j] - s);
                y2 += s * s;
            }
        double rel = sqrt(e2 / y2), pred = sqrt(2.0) * R_BF16 * sqrt(s2 / y2);
        printf("  K=%4d: bf16 GEMM normwise error %.3g, predicted <= %.3g (%.2fx), u sqrt(K) = %.3g\n",
               K, rel, pred, rel / pred, U_BF16 * sqrt(K));
        free(a);
        free(b);
        free(a16);
        free(b16);
        free(y);
        T_CHECK(rel <= 1.1 * pred, "K=%d: error %.3g above the derived %.3g", K, rel, pred);
        T_CHECK(rel >= 0.3 * pred, "K=%d: error %.3g far below %.3g: inputs not rounded?", K, rel,
                pred);
    }
}

/* ---- 3. decode rows --------------------------------------------------------------------- */

static void t_linear_rows(void) {
    const int C = 200, OC = 77;
    TaRng rng;
    ta_rng_seed(&rng, 5);
    float *x = ta_malloc(sizeof(float) * 16 * C, "x"), *w = ta_malloc(sizeof(float) * OC * C, "w");
    float *bias = ta_malloc(sizeof(float) * OC, "b");
    float *o1 = ta_malloc(sizeof(float) * 16 * OC, "o1"), *o2 = ta_malloc(sizeof(float) * 16 * OC, "o2");
    bf16 *x16 = ta_malloc(2 * 16 * C, "x16"), *w16 = ta_malloc(2 * (size_t)OC * C, "w16");
    for (int i = 0; i < 16 * C; i++) x[i] = (float)ta_rng_normal(&rng);
    for (int i = 0; i < OC * C; i++) w[i] = (float)ta_rng_normal(&rng) * 0.1f;
    for (int i = 0; i < OC; i++) bias[i] = (float)ta_rng_normal(&rng);
    bf16_from_f32_array(x16, x, 16 * (size_t)C);
    bf16_from_f32_array(w16, w, (size_t)OC * C);
    for (int prec = 0; prec < 2; prec++)
        for (int N = 1; N <= 16; N += 5) {
            if (prec) {
                linear_rows_bf16(o1, x16, w16, bias, N, C, OC);
                linear_forward(DNN16, o2, 0, x16, w16, 1, bias, N, C, OC);
            } else {
                linear_rows(o1, x, w, bias, N, C, OC);
                linear_forward(NULL, o2, 0, x, w, 0, bias, N, C, OC);
            }
            for (int i = 0; i < N * OC; i++) {
                int n = i / OC, o = i % OC;
                double mag = fabs(bias[o]);
                for (int c = 0; c < C; c++)
                    mag += fabs((prec ? bf16_to_f32(x16[n * C + c]) * bf16_to_f32(w16[o * C + c])
                                      : x[n * C + c] * w[o * C + c]));
                /* the same operands summed in two orders: each within (C+1) 2^-24 mag */
                T_CHECK(fabs(o1[i] - o2[i]) <= 2 * (C + 1) * U_F32 * mag,
                        "%s N=%d element %d: rows %.9g vs GEMM %.9g", prec ? "bf16" : "fp32", N, i,
                        o1[i], o2[i]);
            }
            /* a row's result does not depend on the other rows */
            if (N > 1) {
                float one[77];
                if (prec) linear_rows_bf16(one, x16 + (size_t)(N - 1) * C, w16, bias, 1, C, OC);
                else linear_rows(one, x + (size_t)(N - 1) * C, w, bias, 1, C, OC);
                T_CHECK(!memcmp(one, o1 + (size_t)(N - 1) * OC, sizeof one),
                        "%s: row %d differs when computed alone", prec ? "bf16" : "fp32", N - 1);
            }
        }
    free(x);
    free(w);
    free(bias);
    free(o1);
    free(o2);
    free(x16);
    free(w16);
}

static void compare_stats(const float *got, const float *ref, size_t n, double *rel, double *worst);

/* The bf16-output kernels compute the fp32 values and round only the output: bit for bit
 * bf16(fp32 kernel). */
static void t_bf16_pointwise_kernels(void) {
    const int N = 37, C = 100;
    const size_t n = (size_t)N * C;
    TaRng rng;
    ta_rng_seed(&rng, 21);
    float *x = ta_malloc(n * 4, "x"), *w = ta_malloc(C * 4, "w"), *b = ta_malloc(C * 4, "b");
    float *y = ta_malloc(n * 4, "y"), *d = ta_malloc(n * 4, "d"), *g1 = ta_calloc(n * 4, "g1");
    float *g2 = ta_calloc(n * 4, "g2"), mean[37], rstd[37], mean2[37], rstd2[37];
    bf16 *y16 = ta_malloc(n * 2, "y16"), *g16 = ta_malloc(n * 2, "g16");
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)(3 * ta_rng_normal(&rng));
        d[i] = (float)ta_rng_normal(&rng);
    }
    for (int c = 0; c < C; c++) {
        w[c] = (float)ta_rng_normal(&rng);
        b[c] = (float)ta_rng_normal(&rng);
    }
    layernorm_forward(y, mean, rstd, x, w, b, N, C);
    layernorm_forward_bf16(y16, mean2, rstd2, x, w, b, N, C);
    for (size_t i = 0; i < n; i++) T_CHECK(y16[i] == bf16_from_f32(y[i]), "layernorm %zu", i);
    T_CHECK(!memcmp(mean, mean2, sizeof mean) && !memcmp(rstd, rstd2, sizeof rstd), "LN stats");
    float *dw1 = ta_calloc(C * 4, "dw1"), *db1 = ta_calloc(C * 4, "db1");
    float *dw2 = ta_calloc(C * 4, "dw2"), *db2 = ta_calloc(C * 4, "db2");
    memset(g1, 0, n * 4);
    memset(g2, 0, n * 4);
    layernorm_backward(g1, dw1, db1, d, x, w, mean, rstd, N, C);
    layernorm_backward_bf16(g2, g16, dw2, db2, d, x, w, mean, rstd, N, C);
    int same = !memcmp(g1, g2, n * 4) && !memcmp(dw1, dw2, C * 4) && !memcmp(db1, db2, C * 4);
    free(dw1); free(db1); free(dw2); free(db2);
    T_CHECK(same, "layernorm_backward_bf16's fp32 gradients differ");
    for (size_t i = 0; i < n; i++) T_CHECK(g16[i] == bf16_from_f32(g1[i]), "LN grad16 %zu", i);
    memset(g1, 0, n * 4);
    memset(g2, 0, n * 4);
    gelu_forward(y, x, n);
    gelu_forward_bf16(y16, x, n);
    for (size_t i = 0; i < n; i++) T_CHECK(y16[i] == bf16_from_f32(y[i]), "gelu %zu", i);
    gelu_backward(g1, x, d, n);
    gelu_backward_bf16(g2, g16, x, d, n);
    T_CHECK(!memcmp(g1, g2, n * 4), "gelu_backward_bf16's fp32 gradient differs");
    for (size_t i = 0; i < n; i++) T_CHECK(g16[i] == bf16_from_f32(g1[i]), "gelu grad16 %zu", i);
    free(x); free(w); free(b); free(y); free(d); free(g1); free(g2); free(y16); free(g16);
}

/* bf16 attention (batched GEMMs on bf16 q, k, v, dY) against the naive fp32 loops on the
 * same (rounded) values. Forward rounds the softmax weights and the output (2 roundings),
 * backward rounds A and dS (and the forward's): normwise limits 1.5 r sqrt(n) as derived
 * in the header, n = 2 forward, 4 backward. */
static void t_bf16_attention(void) {
    const int B = 2, T = 64, C = 96, NH = 3;
    const size_t nx = (size_t)B * T * 3 * C, ny = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    TaRng rng;
    ta_rng_seed(&rng, 8);
    float *in = ta_malloc(nx * 4, "in"), *dy = ta_malloc(ny * 4, "dy");
    bf16 *in16 = ta_malloc(nx * 2, "in16"), *dy16 = ta_malloc(ny * 2, "dy16");
    for (size_t i = 0; i < nx; i++) in[i] = bf16_to_f32(bf16_from_f32((float)ta_rng_normal(&rng)));
    for (size_t i = 0; i < ny; i++) dy[i] = bf16_to_f32(bf16_from_f32((float)ta_rng_normal(&rng)));
    bf16_from_f32_array(in16, in, nx);
    bf16_from_f32_array(dy16, dy, ny);
    float *y = ta_malloc(ny * 4, "y"), *yr = ta_malloc(ny * 4, "yr");
    float *a = ta_malloc(na * 4, "a"), *ar = ta_malloc(na * 4, "ar"), *scr = ta_malloc(na * 4, "s");
    float *g = ta_calloc(nx * 4, "g"), *gr = ta_calloc(nx * 4, "gr");
    bf16 *y16 = ta_malloc(ny * 2, "y16"), *a16 = ta_malloc(na * 2, "a16"), *s16 = ta_malloc(na * 2, "s16");
    attention_forward_gemm(DNN16, y16, a, a16, in16, 1, B, T, C, NH);
    bf16_to_f32_array(y, y16, ny);
    attention_backward_gemm(DNN16, g, scr, s16, a16, dy16, in16, a, 1, B, T, C, NH);
    attention_forward_naive(yr, ar, in, B, T, C, NH);
    attention_backward_naive(gr, scr, dy, in, ar, B, T, C, NH);
    double ry, wy, ra, wa, rg, wg;
    compare_stats(y, yr, ny, &ry, &wy);
    compare_stats(a, ar, na, &ra, &wa);
    compare_stats(g, gr, nx, &rg, &wg);
    printf("  bf16 attention: out %.3g, weights %.3g (fp32 softmax), grads %.3g normwise\n", ry,
           ra, rg);
    free(in); free(dy); free(in16); free(dy16); free(y); free(yr); free(a); free(ar); free(scr);
    free(g); free(gr); free(y16); free(a16); free(s16);
    T_CHECK(ra <= 1e-5, "softmax weights (fp32 from exact bf16 products) differ by %.3g", ra);
    T_CHECK(ry <= 1.5 * R_BF16 * sqrt(2.0), "output normwise %.3g > %.3g", ry, 1.5 * R_BF16 * sqrt(2.0));
    T_CHECK(rg <= 1.5 * R_BF16 * sqrt(4.0), "grads normwise %.3g > %.3g", rg, 1.5 * R_BF16 * 2.0);
}

/* ---- 4. the model ------------------------------------------------------------------------ */

static RefFile REF;
static GPT2Config CFG;
static int B, T;

/* Mean NLL over targets >= 0 and its dlogits, then backward (what the pretrain head does). */
static float loss_and_backward(GPT2 *m, const int *targets, int n) {
    double sum = 0;
    int count = 0;
    for (int i = 0; i < n; i++)
        if (targets[i] >= 0) {
            sum += m->acts.logp[i];
            count++;
        }
    for (int i = 0; i < n; i++) m->acts.dlogp[i] = targets[i] >= 0 ? -1.0f / (float)count : 0.0f;
    logits_to_dlogits(m->acts.logits, m->acts.lse, targets, m->acts.dlogp, n,
                      m->config.vocab_size, m->config.padded_vocab_size);
    gpt2_backward(m);
    return (float)(-sum / count);
}

/* normwise relative error, and the worst element's error in units of max |ref| */
static void compare_stats(const float *got, const float *ref, size_t n, double *rel, double *worst) {
    double e2 = 0, r2 = 0, mx = 0, rmax = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        e2 += d * d;
        r2 += (double)ref[i] * ref[i];
        if (!(fabs(d) <= mx)) mx = isnan(d) ? INFINITY : fabs(d);
        rmax = fmax(rmax, fabs((double)ref[i]));
    }
    *rel = r2 > 0 ? sqrt(e2 / r2) : (e2 > 0 ? INFINITY : 0);
    *worst = rmax > 0 ? mx / rmax : (mx > 0 ? INFINITY : 0);
}

/* The derived tolerances (header comment) for an L-layer model. */
static double rho_fwd(int L) { return R_BF16 * sqrt(10.0 * L + 2); }
static double rho_bwd(int L) { return R_BF16 * sqrt(16.0 * L + 3); }
#define GAIN 1.5

/* Forward + backward of `m` on the reference batch; logits (BT,V) copied out. */
static void model_pass(GPT2 *m, const int *tok, const int *tgt, int b, int t, float *logits) {
    TaError err;
    TA_ASSERT(gpt2_forward(m, tok, tgt, b, t, &err) == TA_OK);
    const int V = m->config.vocab_size, Vp = m->config.padded_vocab_size;
    for (size_t i = 0; i < (size_t)b * t; i++)
        memcpy(logits + i * V, m->acts.logits + i * Vp, sizeof(float) * V);
    gpt2_zero_grad(m);
    loss_and_backward(m, tgt, b * t);
}

/* Checks logits and each gradient tensor of `m` against fp32 ones, with (normwise,
 * elementwise-in-rms) limits per pass. */
static int check_against(const char *what, GPT2 *m, const float *logits, const float *ref_logits,
                         const float *ref_grads, double lim_fwd, double lim_bwd, char *msg,
                         size_t cap) {
    double rel, worst;
    size_t n = (size_t)B * T * m->config.vocab_size;
    compare_stats(logits, ref_logits, n, &rel, &worst);
    printf("  %s logits: normwise %.3g (limit %.3g), worst %.3g of max (limit %.3g)\n", what,
           rel, lim_fwd, worst, lim_fwd);
    if (!(rel <= lim_fwd && worst <= lim_fwd)) {
        snprintf(msg, cap, "%s logits: normwise %.3g (limit %.3g), worst %.3g of max (limit %.3g)",
                 what, rel, lim_fwd, worst, lim_fwd);
        return 0;
    }
    size_t off = 0;
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) {
        size_t len = m->param_sizes[i];
        if (i == P_WTE) len = (size_t)m->config.vocab_size * m->config.d_model; /* real rows */
        compare_stats(m->grads_memory + off, ref_grads + off, len, &rel, &worst);
        printf("  %s grad %-20s normwise %.3g, worst %.3g of max\n", what, gpt2_param_name(i),
               rel, worst);
        if (!(rel <= lim_bwd && worst <= lim_bwd)) {
            snprintf(msg, cap, "%s grad %s: normwise %.3g (limit %.3g), worst %.3g of max (limit %.3g)",
                     what, gpt2_param_name(i), rel, lim_bwd, worst, lim_bwd);
            return 0;
        }
        off += m->param_sizes[i];
    }
    return 1;
}

static void setup_ref_model(GPT2 *m, BackendKind kind, Precision prec) {
    gpt2_init(m, &CFG, 1);
    TaError err;
    TA_ASSERT(gpt2_set_compute(m, kind, prec, &err) == TA_OK);
    gpt2_alloc_acts(m, B, T);
    RefRecord *p = ref_get(&REF, "params");
    memcpy(m->params_memory, p->data, p->n * sizeof(float));
    gpt2_params_changed(m);
}

static void t_model_vs_pytorch(Precision prec) {
    GPT2 m;
    setup_ref_model(&m, BACKEND_ONEDNN, prec);
    float *logits = ta_malloc(sizeof(float) * (size_t)B * T * CFG.vocab_size, "logits");
    model_pass(&m, ref_get(&REF, "tokens")->data, ref_get(&REF, "targets")->data, B, T, logits);
    char msg[512];
    int ok;
    if (prec == PRECISION_BF16) {
        ok = check_against("bf16", &m, logits, ref_get(&REF, "logits")->data,
                           ref_get(&REF, "grads")->data, GAIN * rho_fwd(CFG.n_layer),
                           GAIN * rho_bwd(CFG.n_layer), msg, sizeof msg);
    } else {
        /* fp32 on oneDNN: fp32 rounding only (differently ordered sums), the limits of
         * test_gpt2 (~1e-6 relative seen) */
        ok = check_against("onednn fp32", &m, logits, ref_get(&REF, "logits")->data,
                           ref_get(&REF, "grads")->data, 1e-4, 1e-3, msg, sizeof msg);
    }
    free(logits);
    gpt2_free(&m);
    T_CHECK(ok, "%s", msg);
}
/* model.lm_head_chunk in bf16: the logits of 5 token rows at a time (recomputed in the
 * backward, each chunk's dlogits rounded to bf16 for the LM head's backward GEMMs) meet
 * the same derived limits against PyTorch, and the loss (the same per-row GEMM dot
 * products, then fp32 log-softmax) matches the whole-batch bf16 loss. */
typedef struct {
    const int *tgt;
    const float *lse;
    float *dlogp, *logits_out; /* (B*T, V) copy of the logits, taken before dlogits */
    int V, Vp;
} ChunkCtx;

static int chunk_to_dlogits(void *ctx, int row0, int n, float *logits, TaError *err) {
    ChunkCtx *c = ctx;
    (void)err;
    for (int i = 0; i < n; i++)
        memcpy(c->logits_out + (size_t)(row0 + i) * c->V, logits + (size_t)i * c->Vp,
               sizeof(float) * c->V);
    logits_to_dlogits(logits, c->lse + row0, c->tgt + row0, c->dlogp + row0, n, c->V, c->Vp);
    return TA_OK;
}

static void t_model_bf16_chunked(void) {
    GPT2 whole, m;
    setup_ref_model(&whole, BACKEND_ONEDNN, PRECISION_BF16);
    setup_ref_model(&m, BACKEND_ONEDNN, PRECISION_BF16);
    gpt2_set_lm_chunk(&m, 5);
    const int *tok = ref_get(&REF, "tokens")->data, *tgt = ref_get(&REF, "targets")->data;
    const size_t BT = (size_t)B * T;
    float *logits = ta_malloc(sizeof(float) * BT * CFG.vocab_size, "logits");
    model_pass(&whole, tok, tgt, B, T, logits); /* whole-batch logp in whole.acts.logp */
    TaError err;
    TA_ASSERT(gpt2_forward(&m, tok, tgt, B, T, &err) == TA_OK && gpt2_lm_chunked(&m));
    int count = 0, same = 1;
    double sum = 0;
    for (size_t i = 0; i < BT; i++) {
        count += tgt[i] >= 0;
        if (tgt[i] >= 0) sum += m.acts.logp[i];
        same &= m.acts.logp[i] == whole.acts.logp[i];
    }
    for (size_t i = 0; i < BT; i++) m.acts.dlogp[i] = tgt[i] >= 0 ? -1.0f / (float)count : 0.0f;
    ChunkCtx cc = {.tgt = tgt, .lse = m.acts.lse, .dlogp = m.acts.dlogp, .logits_out = logits,
                   .V = CFG.vocab_size, .Vp = CFG.padded_vocab_size};
    gpt2_zero_grad(&m);
    TA_ASSERT(gpt2_backward_chunks(&m, chunk_to_dlogits, &cc, &err) == TA_OK);
    printf("  bf16 chunked loss %.9g; log-probs %s the whole-batch ones\n", -sum / count,
           same ? "bit-identical to" : "differ from");
    char msg[512];
    int ok = check_against("bf16 chunked", &m, logits, ref_get(&REF, "logits")->data,
                           ref_get(&REF, "grads")->data, GAIN * rho_fwd(CFG.n_layer),
                           GAIN * rho_bwd(CFG.n_layer), msg, sizeof msg);
    free(logits);
    gpt2_free(&whole);
    gpt2_free(&m);
    T_CHECK(ok, "%s", msg);
    T_CHECK(same, "bf16 log-probs with the LM head in chunks differ from the whole batch's");
}
static void t_model_fp32_onednn(void) { t_model_vs_pytorch(PRECISION_FP32); }
static void t_model_bf16(void) { t_model_vs_pytorch(PRECISION_BF16); }

/* A wider model (K up to 4C = 1024, T = 64) against our fp32 engine (OpenBLAS). */
static void t_model_bf16_wide(void) {
    GPT2Config cfg = {.n_layer = 3, .n_head = 4, .d_model = 256, .vocab_size = 1000, .max_seq_len = 64};
    TaError err;
    TA_ASSERT(gpt2_config_check(&cfg, &err) == TA_OK);
    const int b = 2, t = 64;
    int *tok = ta_malloc(sizeof(int) * b * t, "tok"), *tgt = ta_malloc(sizeof(int) * b * t, "tgt");
    TaRng rng;
    ta_rng_seed(&rng, 9);
    for (int i = 0; i < b * t; i++) {
        tok[i] = (int)ta_rng_below(&rng, (uint64_t)cfg.vocab_size);
        tgt[i] = (int)ta_rng_below(&rng, (uint64_t)cfg.vocab_size);
    }
    GPT2 f, h;
    gpt2_init(&f, &cfg, 1);
    gpt2_init_weights(&f, 77);
    gpt2_alloc_acts(&f, b, t);
    gpt2_init(&h, &cfg, 1);
    gpt2_init_weights(&h, 77);
    TA_ASSERT(gpt2_set_compute(&h, BACKEND_AUTO, PRECISION_BF16, &err) == TA_OK);
    gpt2_alloc_acts(&h, b, t);
    size_t nl = (size_t)b * t * cfg.vocab_size;
    float *lf = ta_malloc(sizeof(float) * nl, "lf"), *lh = ta_malloc(sizeof(float) * nl, "lh");
    model_pass(&f, tok, tgt, b, t, lf);
    model_pass(&h, tok, tgt, b, t, lh);
    int saveB = B, saveT = T;
    B = b;
    T = t;
    char msg[512];
    int ok = check_against("bf16 wide", &h, lh, lf, f.grads_memory, GAIN * rho_fwd(cfg.n_layer),
                           GAIN * rho_bwd(cfg.n_layer), msg, sizeof msg);
    B = saveB;
    T = saveT;
    free(lf);
    free(lh);
    free(tok);
    free(tgt);
    gpt2_free(&f);
    gpt2_free(&h);
    T_CHECK(ok, "%s", msg);
}

/* ---- 5. determinism, decoding, stale weights ------------------------------------------ */

static void adamw_run(GPT2 *m, int steps) {
    AdamWConfig oc = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1,
                      .schedule = SCHED_CONSTANT, .max_steps = steps, .grad_clip = 1.0};
    AdamW opt;
    adamw_init(&opt, &oc, m->num_params);
    float *logits = ta_malloc(sizeof(float) * (size_t)B * T * CFG.vocab_size, "logits");
    for (int s = 0; s < steps; s++) {
        model_pass(m, ref_get(&REF, "tokens")->data, ref_get(&REF, "targets")->data, B, T, logits);
        double norm = grad_global_norm(m->grads_memory, m->num_params);
        grad_clip_scale(m->grads_memory, m->num_params, norm, oc.grad_clip);
        adamw_update(&opt, m->params_memory, m->grads_memory, oc.lr);
        gpt2_params_changed(m);
    }
    free(logits);
    adamw_free(&opt);
}

static void t_bf16_run_to_run(void) {
    GPT2 a, b;
    setup_ref_model(&a, BACKEND_ONEDNN, PRECISION_BF16);
    setup_ref_model(&b, BACKEND_ONEDNN, PRECISION_BF16);
    adamw_run(&a, 5);
    adamw_run(&b, 5);
    size_t diff = 0, moved = 0;
    const float *p0 = ref_get(&REF, "params")->data;
    for (size_t i = 0; i < a.num_params; i++) {
        if (memcmp(&a.params_memory[i], &b.params_memory[i], 4)) diff++;
        if (a.params_memory[i] != p0[i]) moved++;
    }
    gpt2_free(&a);
    gpt2_free(&b);
    T_CHECK(moved > 0, "training did not change the parameters");
    T_CHECK(diff == 0, "%zu parameters differ between two identical bf16 runs", diff);
}

/* bf16 decoding (prefill of 5 tokens, then one token per step) against the bf16 full
 * forward of the same tokens. */
static void t_bf16_decode(void) {
    GPT2 m;
    setup_ref_model(&m, BACKEND_AUTO, PRECISION_BF16);
    const int *tok = ref_get(&REF, "tokens")->data;
    TaError err;
    TA_ASSERT(gpt2_forward(&m, tok, NULL, B, T, &err) == TA_OK);
    GPT2Decode d;
    gpt2_decode_init(&d, &m, B, T, B * T);
    const int V = CFG.vocab_size, Vp = CFG.padded_vocab_size, P = 5;
    int seqs[64], toks[64];
    double worst = 0;
    int rows = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < P; t++) {
            seqs[rows] = b;
            toks[rows++] = tok[b * T + t];
        }
    TA_ASSERT(gpt2_decode_forward(&d, seqs, toks, rows, NULL, &err) == TA_OK);
    for (int i = 0; i < rows; i++) {
        const float *full = m.acts.logits + ((size_t)seqs[i] * T + i % P) * Vp;
        for (int v = 0; v < V; v++) worst = fmax(worst, fabs(d.logits[(size_t)i * Vp + v] - full[v]));
    }
    for (int t = P; t < T; t++) {
        for (int b = 0; b < B; b++) {
            seqs[b] = b;
            toks[b] = tok[b * T + t];
        }
        TA_ASSERT(gpt2_decode_step(&d, seqs, toks, B, &err) == TA_OK);
        for (int b = 0; b < B; b++) {
            const float *full = m.acts.logits + ((size_t)b * T + t) * Vp;
            for (int v = 0; v < V; v++)
                worst = fmax(worst, fabs(d.logits[(size_t)b * Vp + v] - full[v]));
        }
    }
    double rms = 0;
    for (size_t i = 0; i < (size_t)B * T; i++)
        for (int v = 0; v < V; v++) rms += (double)m.acts.logits[i * Vp + v] * m.acts.logits[i * Vp + v];
    rms = sqrt(rms / ((double)B * T * V));
    gpt2_decode_free(&d);
    gpt2_free(&m);
    printf("  bf16 decode vs bf16 forward: worst |diff| %.3g = %.3g rms\n", worst, worst / rms);
    /* the two paths share the bf16 weights and LayerNorm / GELU outputs; decoding keeps
     * attention in fp32 (q, k, v, the softmax weights and its output are not rounded: 4
     * roundings per layer fewer than training's forward), so they differ by the bf16 noise
     * of those roundings: elementwise 5 r sqrt(4 L) */
    T_CHECK(worst / rms <= 5 * R_BF16 * sqrt(4.0 * CFG.n_layer),
            "decode differs from forward by %.3g rms", worst / rms);
}

/* The child half (a fresh process: OpenMP's thread pool does not survive fork): write
 * the parameters without announcing it, then run a forward. Must abort. */
static int stale_child(void) {
    GPT2 m;
    setup_ref_model(&m, BACKEND_ONEDNN, PRECISION_BF16);
    for (size_t i = 0; i < m.num_params; i++) m.params_memory[i] *= 1.5f; /* not announced */
    TaError err;
    gpt2_forward(&m, ref_get(&REF, "tokens")->data, NULL, B, T, &err);
    return 0; /* not caught */
}

static void t_stale_weights_caught(void) {
    fflush(stdout);
    pid_t pid = fork();
    TA_ASSERT(pid >= 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr)) _exit(3);
        execl("/proc/self/exe", "test_bf16", "--stale-child", (char *)NULL);
        _exit(4);
    }
    int status;
    waitpid(pid, &status, 0);
    T_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
            "a forward with out-of-date bf16 weights was not stopped (status %d)", status);
}

int main(int argc, char **argv) {
    TaError err;
    ta_set_threads(0);
    int child = argc > 1 && !strcmp(argv[1], "--stale-child");
    if (backend_init(&DNN32, BACKEND_ONEDNN, PRECISION_FP32, &err) != TA_OK) {
        printf("FAIL backend/onednn_init: %s\n", err.msg);
        return 1;
    }
    int have_bf16 = backend_init(&DNN16, BACKEND_ONEDNN, PRECISION_BF16, &err) == TA_OK;
    if (!child) {
        t_run("bf16/rounding_nearest_even", t_rounding);
        t_run("bf16/rounding_nan_arrays", t_rounding_nan_and_arrays);
    }
    if (!have_bf16) {
        /* a CPU without AVX512-BF16: the refusal is the behaviour to check */
        printf("  (no native bf16 here: %s)\n", err.msg);
        int ok = strstr(err.msg, "model.precision") != NULL;
        printf("%s backend/bf16_refused_without_avx512_bf16%s\n", ok ? "PASS" : "FAIL",
               ok ? "" : ": message does not name model.precision");
        backend_free(DNN32);
        return ok ? t_done() : 1;
    }
    if (!child) {
        t_run("backend/gemm_onednn_fp32_bf16_layouts", t_gemm_cases);
        t_run("backend/gemm_bf16_rounding_statistics", t_gemm_rounding_statistics);
        t_run("backend/linear_rows_vs_gemm", t_linear_rows);
        t_run("kernels/bf16_output_is_rounded_fp32", t_bf16_pointwise_kernels);
        t_run("kernels/bf16_attention_vs_naive", t_bf16_attention);
    }
    if (ref_load(&REF, ref_path("gpt2")) != 0) return 1;
    int *c = ref_get(&REF, "config")->data;
    CFG = (GPT2Config){.n_layer = c[0], .n_head = c[1], .d_model = c[2], .vocab_size = c[3],
                       .max_seq_len = c[4]};
    B = c[5];
    T = c[6];
    TA_ASSERT(gpt2_config_check(&CFG, &err) == TA_OK);
    if (child) return stale_child();
    t_run("model/onednn_fp32_vs_pytorch", t_model_fp32_onednn);
    t_run("model/bf16_vs_pytorch_derived_tolerance", t_model_bf16);
    t_run("model/bf16_lm_head_chunks_vs_pytorch", t_model_bf16_chunked);
    t_run("model/bf16_wide_vs_fp32_engine", t_model_bf16_wide);
    t_run("model/bf16_bitwise_run_to_run", t_bf16_run_to_run);
    t_run("model/bf16_decode_vs_forward", t_bf16_decode);
    t_run("model/bf16_stale_weights_caught", t_stale_weights_caught);
    ref_free(&REF);
    backend_free(DNN32);
    backend_free(DNN16);
    return t_done();
}
