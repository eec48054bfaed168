/* backend_impl.h — private to src/kernels/backend*.c: the Backend context and the oneDNN
 * half of it (backend_onednn.c). */
#ifndef TINYALIGN_BACKEND_IMPL_H
#define TINYALIGN_BACKEND_IMPL_H
#include "tinyalign/backend.h"

typedef struct OnednnCtx OnednnCtx; /* engine, stream, primitive cache */

struct Backend {
    BackendKind kind; /* OPENBLAS or ONEDNN */
    Precision prec;
    OnednnCtx *dnn;   /* NULL for openblas */
};

/* Engine + stream; TA_ERUNTIME with a message when oneDNN cannot start. */
int onednn_init(OnednnCtx **out, TaError *err);
void onednn_free(OnednnCtx *c);
/* 1 when oneDNN will run bf16 matmuls natively (AVX512-BF16 or AMX); isa gets its ISA name. */
int onednn_bf16_native(char *isa, size_t cap);
/* oneDNN version and ISA, one line. */
void onednn_info(char *buf, size_t cap);
/* backend_gemm for oneDNN (arguments as there). */
void onednn_gemm(OnednnCtx *c, int nb0, int nb1, int M, int N, int K, float alpha, GemmIn A,
                 GemmIn B, const float *bias, int accumulate, GemmOut C);

#endif
