/* backend.h — the matmul backend: the one place that runs every GEMM of the forward,
 * backward and decoding passes, in fp32 (OpenBLAS or oneDNN) or in bf16 (oneDNN), plus the
 * bfloat16 conversions the bf16 path needs.
 *
 * A Backend is a context the model owns (gpt2_set_compute): the library, the precision,
 * and for oneDNN its engine, stream and a cache of matmul primitives, one per GEMM shape,
 * created on first use and reused for the rest of the run (oneDNN JIT-compiles a kernel
 * per shape; creating one costs ~1 ms, running one a few µs of overhead).
 *
 *   openblas  fp32 only. cblas_sgemm, threaded over the output (never over the summed
 *             dimension), so results do not depend on the thread count. The default for
 *             fp32: bit-identical to every earlier tinyalign release.
 *   onednn    fp32 or bf16 (oneDNN's matmul primitive, Debian's libdnnl 2.x). bf16:
 *             inputs bf16, products and sums in fp32, fp32 (or bf16) output — oneDNN runs
 *             the AVX512-BF16 / AMX instructions. Bit-identical run to run at a fixed
 *             thread count; a different thread count may split a sum differently.
 *
 * bf16 ("brain float"): the top 16 bits of an IEEE float32 — sign, the same 8-bit
 * exponent, 7 stored mantissa bits (8 significant bits). Rounding a float to bf16 (round
 * to nearest, ties to even) has relative error at most 2^-8 (= half an ulp of an 8-bit
 * significand); widening back is exact.
 *
 * Not here: the layer kernels themselves (kernels.h), which precision a run uses
 * (config: model.precision, model.backend), the bf16 copy of the weights (model.h).
 */
#ifndef TINYALIGN_BACKEND_H
#define TINYALIGN_BACKEND_H
#include <stddef.h>
#include <stdint.h>

#include "tinyalign/common.h"

typedef uint16_t bf16; /* bfloat16 bits */

/* The order of both enums is the order of the config choices (model.backend,
 * model.precision). */
typedef enum { BACKEND_AUTO = 0, BACKEND_OPENBLAS, BACKEND_ONEDNN } BackendKind;
typedef enum { PRECISION_FP32 = 0, PRECISION_BF16 } Precision;

typedef struct Backend Backend; /* opaque */

/* Creates a backend context. BACKEND_AUTO resolves to openblas for fp32 and onednn for
 * bf16. Fails with TA_EINPUT and a message naming model.precision / model.backend when
 * the combination cannot run: openblas + bf16, or bf16 on a CPU without AVX512-BF16 or
 * AMX (as oneDNN detects it; never a silent fallback to fp32 or to emulation).
 * *out is freed with backend_free. */
int backend_init(Backend **out, BackendKind kind, Precision prec, TaError *err);
void backend_free(Backend *be); /* NULL is fine */
BackendKind backend_kind(const Backend *be);      /* never AUTO */
Precision backend_precision(const Backend *be);
/* "openblas fp32" / "onednn bf16 (avx512_core_bf16)": for the setup line. */
void backend_describe(const Backend *be, char *buf, size_t cap);
/* What this build and CPU offer, one line, for `tinyalign info`: oneDNN version, the ISA
 * oneDNN will use (honours DNNL_MAX_CPU_ISA), whether bf16 can run. */
void backend_info(char *buf, size_t cap);
/* Name of a kind / precision ("openblas", "bf16"). */
const char *backend_kind_name(BackendKind k);
const char *precision_name(Precision p);
/* Parses "auto|openblas|onednn" / "fp32|bf16" (command-line flags); -1 when unknown. */
int backend_kind_parse(const char *s);
int precision_parse(const char *s);

/* ---- GEMM ----------------------------------------------------------------------------
 * A matrix operand: element type, whether the GEMM reads it transposed, its row stride
 * as stored (ld, in elements), and the strides between consecutive matrices of the two
 * batch dimensions (bs0, bs1; unused for a single GEMM). The data are read only for
 * inputs (GemmIn) and written for the output (GemmOut). */
typedef struct {
    const void *p; /* float (fp32) or bf16 */
    int is_bf16;
    int trans;     /* the GEMM uses op(X) = X^T */
    long ld;
    long bs0, bs1;
} GemmIn;
typedef struct {
    void *p; /* float, or bf16 (onednn only) */
    int is_bf16;
    long ld;
    long bs0, bs1;
} GemmOut;

/* For every batch index (i < nb0, j < nb1):
 *   C_ij (M,N) = alpha * op(A_ij) (M,K) @ op(B_ij) (K,N) [+ bias (N), every row] [+ C_ij]
 * with fp32 products and sums; accumulate (beta = 1) when accumulate != 0. bias only for
 * a single GEMM (nb0 = nb1 = 1). openblas: fp32 operands only; a single GEMM is threaded
 * over the output, batches run in parallel (one thread each). Safe to call inside an
 * OpenMP parallel region only for openblas single GEMMs (then single-threaded). */
void backend_gemm(Backend *be, int nb0, int nb1, int M, int N, int K, float alpha, GemmIn A,
                  GemmIn B, const float *bias, int accumulate, GemmOut C);

/* ---- the linear layer (PyTorch F.linear) through backend_gemm -------------------------
 * Operands are fp32 or bf16 by `bf16` (the backend's precision for a bf16 model):
 *   out (N,OC) = inp (N,C) @ weight (OC,C)^T + bias (OC or NULL)
 * out is fp32, or bf16 when out_bf16 (the rounded fp32 result). */
void linear_forward(Backend *be, void *out, int out_bf16, const void *inp, const void *weight,
                    int use_bf16, const float *bias, int N, int C, int OC);
/* Backward of the above, accumulating (+=) into fp32 gradients:
 *   dinp (N,C) += dout (N,OC) @ weight;  dweight (OC,C) += dout^T @ inp;
 *   dbias (OC) += sum_n dout[n]   (from the fp32 dout, fixed order, any thread count)
 * dout_mm is dout as the GEMMs read it: dout itself for fp32, its bf16 rounding for bf16.
 * dinp and dbias may be NULL. */
void linear_backward(Backend *be, float *dinp, float *dweight, float *dbias, const float *dout,
                     const void *dout_mm, const void *inp, const void *weight, int use_bf16, int N,
                     int C, int OC);
/* Its input-gradient GEMM alone: dinp (N,C) (+)= dout_mm @ weight, written in fp32 or, with
 * dinp_bf16, rounded to bf16 (a bf16 model whose dinp only feeds another GEMM). */
void linear_backward_input(Backend *be, void *dinp, int dinp_bf16, int accumulate,
                           const void *dout_mm, const void *weight, int use_bf16, int N, int C,
                           int OC);

/* ---- few rows: decoding ----------------------------------------------------------------
 * out (N,OC) = inp (N,C) @ weight^T + bias for the 1..16 rows of a decode step. sgemm with
 * a few rows repacks the whole weight matrix on every call; here each weight row is read
 * once from memory and used for all N inputs while it is in L1 (tiles of 4 weight rows x
 * 4 inputs, 8-lane partial sums). Each output is one thread's sum in a fixed order (8
 * lanes over c, combined pairwise, then the C % 8 tail, then the bias), so it does not
 * depend on N, on the tile the row falls in, or on the thread count.
 * linear_rows_bf16: bf16 inputs and weights (the model's bf16 copy: half the bytes to
 * stream, which is what bounds a decode step), products and sums in fp32. */
void linear_rows(float *out, const float *inp, const float *weight, const float *bias, int N,
                 int C, int OC);
void linear_rows_bf16(float *out, const bf16 *inp, const bf16 *weight, const float *bias,
                      int N, int C, int OC);

/* ---- bf16 conversions (round to nearest even; NaN stays NaN) --------------------------- */
bf16 bf16_from_f32(float x);
float bf16_to_f32(bf16 x);
/* dst[i] = bf16(src[i]), n elements, parallel. */
void bf16_from_f32_array(bf16 *dst, const float *src, size_t n);
void bf16_to_f32_array(float *dst, const bf16 *src, size_t n);

#endif
