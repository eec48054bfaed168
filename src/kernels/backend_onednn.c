/* backend_onednn.c — backend_gemm through oneDNN's matmul primitive (oneDNN 2.x C API).
 *
 * One primitive per GEMM shape: its key is everything the primitive bakes in (batch,
 * M, N, K, the element types, transposition and strides of A, B and C, bias, alpha,
 * accumulation). The first call of a shape creates the primitive (oneDNN JIT-compiles a
 * kernel for it) plus memory objects without data; every call then points the memory
 * objects at the caller's buffers and executes. The cache is bounded: when full, the least
 * recently used primitive is destroyed (a run has a few dozen shapes; only decoding with
 * prompts of many different lengths ever cycles it).
 *
 * Mapping: a row-major (rows, cols) operand with row stride ld is the oneDNN tensor
 * (rows, cols) with strides (ld, 1); used transposed it is (cols, rows) with strides
 * (1, ld). Batched GEMMs are 4-D tensors (nb0, nb1, rows, cols) with the batch strides
 * first. alpha is an output scale, accumulation a "sum" post-op, bias a (1, N) fp32
 * tensor broadcast over the rows.
 * Threads: oneDNN here is built on OpenMP (libgomp), the same pool as ours; it uses
 * omp_get_max_threads() threads, i.e. ta_set_threads().
 */
#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"

#define CACHE_MAX 128

typedef struct {
    int nb0, nb1, M, N, K;
    float alpha;
    int a_bf16, a_trans, b_bf16, b_trans, c_bf16, has_bias, accumulate;
    long a_ld, a_bs0, a_bs1, b_ld, b_bs0, b_bs1, c_ld, c_bs0, c_bs1;
} GemmKey;

typedef struct {
    GemmKey key;
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c, bias;
    unsigned long last_use;
} Entry;

struct OnednnCtx {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    Entry *cache; /* (CACHE_MAX) */
    int n;
    unsigned long clock;
};

/* A failing oneDNN call is a programmer error (shapes are checked before) or a broken
 * installation: always-on assert with the status. */
#define DNNL_CHECK(call)                                                                    \
    do {                                                                                    \
        dnnl_status_t s_ = (call);                                                          \
        if (s_ != dnnl_success) {                                                           \
            fprintf(stderr, "oneDNN: %s failed with status %d\n", #call, (int)s_);          \
            ta_assert_fail(#call, __FILE__, __LINE__);                                      \
        }                                                                                   \
    } while (0)

int onednn_init(OnednnCtx **out, TaError *err) {
    OnednnCtx *c = ta_calloc(sizeof *c, "oneDNN context");
    if (dnnl_engine_create(&c->engine, dnnl_cpu, 0) != dnnl_success) {
        free(c);
        *out = NULL;
        return ta_err(err, TA_ERUNTIME, "oneDNN: cannot create a CPU engine");
    }
    DNNL_CHECK(dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags));
    c->cache = ta_calloc(sizeof(Entry) * CACHE_MAX, "oneDNN primitive cache");
    *out = c;
    return TA_OK;
}

static void entry_free(Entry *e) {
    dnnl_primitive_destroy(e->prim);
    dnnl_memory_destroy(e->a);
    dnnl_memory_destroy(e->b);
    dnnl_memory_destroy(e->c);
    if (e->bias) dnnl_memory_destroy(e->bias);
    memset(e, 0, sizeof *e);
}

void onednn_free(OnednnCtx *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) entry_free(&c->cache[i]);
    free(c->cache);
    dnnl_stream_destroy(c->stream);
    dnnl_engine_destroy(c->engine);
    free(c);
}

static const char *isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "unknown";
    }
}

int onednn_bf16_native(char *isa, size_t cap) {
    /* the ISA values are bit masks of what they include: bf16 = avx512_core_bf16's bits */
    dnnl_cpu_isa_t i = dnnl_get_effective_cpu_isa();
    snprintf(isa, cap, "%s", isa_name(i));
    return ((unsigned)i & (unsigned)dnnl_cpu_isa_avx512_core_bf16) ==
           (unsigned)dnnl_cpu_isa_avx512_core_bf16;
}

void onednn_info(char *buf, size_t cap) {
    const dnnl_version_t *v = dnnl_version();
    char isa[64];
    int bf16 = onednn_bf16_native(isa, sizeof isa);
    snprintf(buf, cap, "oneDNN %d.%d.%d: ISA %s, bf16 %s", v->major, v->minor, v->patch, isa,
             bf16 ? "native (model.precision bf16 available)"
                  : "not native (model.precision bf16 refused)");
}

/* A (rows, cols) operand as a 2-D or 4-D memory descriptor (see the header comment). */
static void operand_md(dnnl_memory_desc_t *md, int batched, int nb0, int nb1, int rows, int cols,
                       int bf16, int trans, long ld, long bs0, long bs1) {
    dnnl_dims_t dims, strides;
    int nd = batched ? 4 : 2, o = batched ? 2 : 0;
    if (batched) {
        dims[0] = nb0;
        dims[1] = nb1;
        strides[0] = bs0;
        strides[1] = bs1;
    }
    dims[o] = rows;
    dims[o + 1] = cols;
    strides[o] = trans ? 1 : ld;
    strides[o + 1] = trans ? ld : 1;
    DNNL_CHECK(dnnl_memory_desc_init_by_strides(md, nd, dims, bf16 ? dnnl_bf16 : dnnl_f32,
                                                strides));
}

static void entry_create(OnednnCtx *c, Entry *e, const GemmKey *k) {
    const int batched = k->nb0 > 1 || k->nb1 > 1;
    dnnl_memory_desc_t a, b, d, bias;
    operand_md(&a, batched, k->nb0, k->nb1, k->M, k->K, k->a_bf16, k->a_trans, k->a_ld, k->a_bs0,
               k->a_bs1);
    operand_md(&b, batched, k->nb0, k->nb1, k->K, k->N, k->b_bf16, k->b_trans, k->b_ld, k->b_bs0,
               k->b_bs1);
    operand_md(&d, batched, k->nb0, k->nb1, k->M, k->N, k->c_bf16, 0, k->c_ld, k->c_bs0,
               k->c_bs1);
    if (k->has_bias) {
        dnnl_dims_t dims = {1, k->N}, strides = {k->N, 1};
        DNNL_CHECK(dnnl_memory_desc_init_by_strides(&bias, 2, dims, dnnl_f32, strides));
    }
    dnnl_matmul_desc_t desc;
    DNNL_CHECK(dnnl_matmul_desc_init(&desc, &a, &b, k->has_bias ? &bias : NULL, &d));
    dnnl_primitive_attr_t attr;
    DNNL_CHECK(dnnl_primitive_attr_create(&attr));
    if (k->alpha != 1.0f) DNNL_CHECK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &k->alpha));
    dnnl_post_ops_t po = NULL;
    if (k->accumulate) {
        DNNL_CHECK(dnnl_post_ops_create(&po));
        DNNL_CHECK(dnnl_post_ops_append_sum(po, 1.0f));
        DNNL_CHECK(dnnl_primitive_attr_set_post_ops(attr, po));
    }
    dnnl_primitive_desc_t pd;
    DNNL_CHECK(dnnl_primitive_desc_create(&pd, &desc, attr, c->engine, NULL));
    DNNL_CHECK(dnnl_primitive_create(&e->prim, pd));
    DNNL_CHECK(dnnl_primitive_desc_destroy(pd));
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    DNNL_CHECK(dnnl_memory_create(&e->a, &a, c->engine, DNNL_MEMORY_NONE));
    DNNL_CHECK(dnnl_memory_create(&e->b, &b, c->engine, DNNL_MEMORY_NONE));
    DNNL_CHECK(dnnl_memory_create(&e->c, &d, c->engine, DNNL_MEMORY_NONE));
    e->bias = NULL;
    if (k->has_bias) DNNL_CHECK(dnnl_memory_create(&e->bias, &bias, c->engine, DNNL_MEMORY_NONE));
    e->key = *k;
}

static Entry *lookup(OnednnCtx *c, const GemmKey *k) {
    c->clock++;
    for (int i = 0; i < c->n; i++)
        if (!memcmp(&c->cache[i].key, k, sizeof *k)) {
            c->cache[i].last_use = c->clock;
            return &c->cache[i];
        }
    Entry *e;
    if (c->n < CACHE_MAX) {
        e = &c->cache[c->n++];
    } else { /* evict the least recently used */
        e = &c->cache[0];
        for (int i = 1; i < c->n; i++)
            if (c->cache[i].last_use < e->last_use) e = &c->cache[i];
        entry_free(e);
    }
    entry_create(c, e, k);
    e->last_use = c->clock;
    return e;
}

void onednn_gemm(OnednnCtx *c, int nb0, int nb1, int M, int N, int K, float alpha, GemmIn A,
                 GemmIn B, const float *bias, int accumulate, GemmOut C) {
    TA_ASSERT(!bias || (nb0 == 1 && nb1 == 1));
    GemmKey k;
    memset(&k, 0, sizeof k); /* padding too: the key is compared with memcmp */
    k.nb0 = nb0;
    k.nb1 = nb1;
    k.M = M;
    k.N = N;
    k.K = K;
    k.alpha = alpha;
    k.a_bf16 = A.is_bf16;
    k.a_trans = A.trans;
    k.a_ld = A.ld;
    k.b_bf16 = B.is_bf16;
    k.b_trans = B.trans;
    k.b_ld = B.ld;
    k.c_bf16 = C.is_bf16;
    k.c_ld = C.ld;
    if (nb0 > 1 || nb1 > 1) {
        k.a_bs0 = A.bs0, k.a_bs1 = A.bs1;
        k.b_bs0 = B.bs0, k.b_bs1 = B.bs1;
        k.c_bs0 = C.bs0, k.c_bs1 = C.bs1;
    }
    k.has_bias = bias != NULL;
    k.accumulate = accumulate != 0;
    Entry *e = lookup(c, &k);
    DNNL_CHECK(dnnl_memory_set_data_handle(e->a, (void *)A.p));
    DNNL_CHECK(dnnl_memory_set_data_handle(e->b, (void *)B.p));
    DNNL_CHECK(dnnl_memory_set_data_handle(e->c, C.p));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b},
                               {DNNL_ARG_DST, e->c}, {DNNL_ARG_BIAS, e->bias}};
    int nargs = 3;
    if (bias) {
        DNNL_CHECK(dnnl_memory_set_data_handle(e->bias, (void *)bias));
        nargs = 4;
    }
    DNNL_CHECK(dnnl_primitive_execute(e->prim, c->stream, nargs, args));
    DNNL_CHECK(dnnl_stream_wait(c->stream));
}
