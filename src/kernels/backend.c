/* backend.c — the matmul backend (see backend.h): context, dispatch, the OpenBLAS GEMM,
 * the linear layer on top of backend_gemm, and the bf16 conversions.
 * The oneDNN half (engine, primitive cache) is backend_onednn.c; the few-rows decode
 * kernels are linear_rows.c. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"
#include "vecmath.h"

static const char *KIND_NAMES[] = {"auto", "openblas", "onednn"};
static const char *PREC_NAMES[] = {"fp32", "bf16"};

const char *backend_kind_name(BackendKind k) {
    TA_ASSERT(k >= BACKEND_AUTO && k <= BACKEND_ONEDNN);
    return KIND_NAMES[k];
}

const char *precision_name(Precision p) {
    TA_ASSERT(p == PRECISION_FP32 || p == PRECISION_BF16);
    return PREC_NAMES[p];
}

int backend_kind_parse(const char *s) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, KIND_NAMES[i])) return i;
    return -1;
}

int precision_parse(const char *s) {
    for (int i = 0; i < 2; i++)
        if (!strcmp(s, PREC_NAMES[i])) return i;
    return -1;
}

int backend_init(Backend **out, BackendKind kind, Precision prec, TaError *err) {
    *out = NULL;
    if (kind == BACKEND_AUTO) kind = prec == PRECISION_BF16 ? BACKEND_ONEDNN : BACKEND_OPENBLAS;
    if (kind == BACKEND_OPENBLAS && prec == PRECISION_BF16)
        return ta_err(err, TA_EINPUT,
                      "model.precision \"bf16\" needs model.backend \"onednn\" (or \"auto\"): "
                      "Debian's OpenBLAS has no bf16 GEMM");
    if (prec == PRECISION_BF16) {
        char isa[64];
        if (!onednn_bf16_native(isa, sizeof isa))
            return ta_err(err, TA_EINPUT,
                          "model.precision \"bf16\": this CPU has no AVX512-BF16 or AMX (oneDNN "
                          "reports ISA %s); bf16 would only be emulated, slower than fp32. Use "
                          "model.precision \"fp32\"", isa);
    }
    Backend *be = ta_calloc(sizeof *be, "backend");
    be->kind = kind;
    be->prec = prec;
    if (kind == BACKEND_ONEDNN) {
        int rc = onednn_init(&be->dnn, err);
        if (rc != TA_OK) {
            free(be);
            return rc;
        }
    }
    *out = be;
    return TA_OK;
}

void backend_free(Backend *be) {
    if (!be) return;
    onednn_free(be->dnn);
    free(be);
}

BackendKind backend_kind(const Backend *be) { return be ? be->kind : BACKEND_OPENBLAS; }
Precision backend_precision(const Backend *be) { return be ? be->prec : PRECISION_FP32; }

void backend_describe(const Backend *be, char *buf, size_t cap) {
    BackendKind k = backend_kind(be);
    if (k == BACKEND_ONEDNN) {
        char isa[64];
        onednn_bf16_native(isa, sizeof isa);
        snprintf(buf, cap, "%s %s (oneDNN ISA %s)", backend_kind_name(k),
                 precision_name(backend_precision(be)), isa);
    } else {
        snprintf(buf, cap, "%s %s", backend_kind_name(k), precision_name(backend_precision(be)));
    }
}

void backend_info(char *buf, size_t cap) { onednn_info(buf, cap); }

/* ---- GEMM ------------------------------------------------------------------------------ */

static void openblas_gemm(int nb0, int nb1, int M, int N, int K, float alpha, GemmIn A, GemmIn B,
                          const float *bias, int accumulate, GemmOut C) {
    TA_ASSERT(!A.is_bf16 && !B.is_bf16 && !C.is_bf16); /* backend_init refuses openblas + bf16 */
    float *c = C.p;
    float beta = accumulate ? 1.0f : 0.0f;
    if (bias) { /* C rows <- bias, then C += A B (the layout llm.c and PyTorch's addmm use) */
        TA_ASSERT(!accumulate && nb0 == 1 && nb1 == 1);
#pragma omp parallel for schedule(static)
        for (int i = 0; i < M; i++) memcpy(c + (size_t)i * C.ld, bias, sizeof(float) * (size_t)N);
        beta = 1.0f;
    }
    const enum CBLAS_TRANSPOSE ta = A.trans ? CblasTrans : CblasNoTrans,
                               tb = B.trans ? CblasTrans : CblasNoTrans;
    if (nb0 == 1 && nb1 == 1) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A.p, (int)A.ld, B.p, (int)B.ld, beta, c,
                    (int)C.ld);
        return;
    }
    /* batches in parallel, one single-threaded sgemm each (OpenBLAS's OpenMP build does not
     * nest threads inside a parallel region) */
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < nb0; i++)
        for (int j = 0; j < nb1; j++)
            cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha,
                        (const float *)A.p + i * A.bs0 + j * A.bs1, (int)A.ld,
                        (const float *)B.p + i * B.bs0 + j * B.bs1, (int)B.ld, beta,
                        c + i * C.bs0 + j * C.bs1, (int)C.ld);
}

void backend_gemm(Backend *be, int nb0, int nb1, int M, int N, int K, float alpha, GemmIn A,
                  GemmIn B, const float *bias, int accumulate, GemmOut C) {
    TA_ASSERT(nb0 >= 1 && nb1 >= 1 && M >= 1 && N >= 1 && K >= 1);
    if (be && be->kind == BACKEND_ONEDNN)
        onednn_gemm(be->dnn, nb0, nb1, M, N, K, alpha, A, B, bias, accumulate, C);
    else
        openblas_gemm(nb0, nb1, M, N, K, alpha, A, B, bias, accumulate, C);
}

/* ---- the linear layer ------------------------------------------------------------------ */

void linear_forward(Backend *be, void *out, int out_bf16, const void *inp, const void *weight,
                    int use_bf16, const float *bias, int N, int C, int OC) {
    /* out (N,OC) = inp (N,C) @ weight^T (C,OC) + bias */
    backend_gemm(be, 1, 1, N, OC, C, 1.0f, (GemmIn){.p = inp, .is_bf16 = use_bf16, .ld = C},
                 (GemmIn){.p = weight, .is_bf16 = use_bf16, .trans = 1, .ld = C}, bias, 0,
                 (GemmOut){.p = out, .is_bf16 = out_bf16, .ld = OC});
}

/* Backward of out = inp @ W^T + b:
 *   dinp (N,C)  += dout (N,OC) @ W (OC,C)
 *   dW   (OC,C) += dout^T (OC,N) @ inp (N,C)
 *   db   (OC)   += sum_n dout[n, :]   (parallel over output channels, n in order) */
void linear_backward_input(Backend *be, void *dinp, int dinp_bf16, int accumulate,
                           const void *dout_mm, const void *weight, int use_bf16, int N, int C,
                           int OC) {
    backend_gemm(be, 1, 1, N, C, OC, 1.0f, (GemmIn){.p = dout_mm, .is_bf16 = use_bf16, .ld = OC},
                 (GemmIn){.p = weight, .is_bf16 = use_bf16, .ld = C}, NULL, accumulate,
                 (GemmOut){.p = dinp, .is_bf16 = dinp_bf16, .ld = C});
}

void linear_backward(Backend *be, float *dinp, float *dweight, float *dbias, const float *dout,
                     const void *dout_mm, const void *inp, const void *weight, int use_bf16, int N,
                     int C, int OC) {
    if (dinp) linear_backward_input(be, dinp, 0, 1, dout_mm, weight, use_bf16, N, C, OC);
    backend_gemm(be, 1, 1, OC, C, N, 1.0f,
                 (GemmIn){.p = dout_mm, .is_bf16 = use_bf16, .trans = 1, .ld = OC},
                 (GemmIn){.p = inp, .is_bf16 = use_bf16, .ld = C}, NULL, 1,
                 (GemmOut){.p = dweight, .ld = C});
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

/* ---- bf16 conversions (the rounding is explained in vecmath.h) ------------------------ */

bf16 bf16_from_f32(float x) { return ta_bf16_round(x); }
float bf16_to_f32(bf16 x) { return ta_bf16_widen(x); }

void bf16_from_f32_array(bf16 *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dst[i] = ta_bf16_round(src[i]);
}

void bf16_to_f32_array(float *dst, const bf16 *src, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dst[i] = ta_bf16_widen(src[i]);
}
