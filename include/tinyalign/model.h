/* model.h — GPT-2 (pre-LN, GELU-tanh, learned positions, tied embedding / LM head,
 * causal attention) with parameters, gradients and activations each in one slab.
 *
 * The model knows nothing about objectives: forward produces logits (B,T,Vp) and the
 * per-token log-probs of the targets; backward starts from dlogits (B,T,Vp), which a loss
 * head (objective module) writes, usually in place over the logits with
 * logits_to_dlogits(). Forward-only instances (a frozen reference, generation) allocate
 * no gradient or activation-gradient memory.
 *
 * A reward model is the same GPT-2 with a scalar head (config.score_head = 1): the last
 * parameter tensor, score (C) = Hugging Face's score.weight (1, C) of
 * GPT2ForSequenceClassification (num_labels 1, no bias). Its forward stops at the final
 * LayerNorm (gpt2_forward_hidden; the LM head is not computed, and with hidden_only set no
 * (B,T,Vp) logits are even allocated), gpt2_score_forward reads one number per row at the
 * row's last real token, and gpt2_score_backward starts the trunk's backward from
 * dL/dreward. The score head lives in the parameter slab, so its gradient, AdamW state,
 * clipping and checkpointing are those of every other tensor.
 */
#ifndef TINYALIGN_MODEL_H
#define TINYALIGN_MODEL_H
#include <stddef.h>
#include <stdint.h>

#include "tinyalign/backend.h"
#include "tinyalign/common.h"

typedef struct {
    int max_seq_len;       /* maxT, positions */
    int vocab_size;        /* V, real vocabulary */
    int padded_vocab_size; /* Vp, V rounded up to a multiple of 64 */
    int n_layer;           /* L */
    int n_head;            /* NH */
    int d_model;           /* C */
    int score_head;        /* 1: a reward model's scalar head score.weight (1, C); 0: none */
} GPT2Config;

/* Parameter tensors, in slab order. Shapes for the whole stack of L layers. */
enum {
    P_WTE,      /* (Vp, C)   token embedding, tied with the LM head        */
    P_WPE,      /* (maxT, C) position embedding                            */
    P_LN1W,     /* (L, C)                                                  */
    P_LN1B,     /* (L, C)                                                  */
    P_QKVW,     /* (L, 3C, C)  rows: q (C), k (C), v (C); out x in         */
    P_QKVB,     /* (L, 3C)                                                 */
    P_ATTPROJW, /* (L, C, C)                                               */
    P_ATTPROJB, /* (L, C)                                                  */
    P_LN2W,     /* (L, C)                                                  */
    P_LN2B,     /* (L, C)                                                  */
    P_FCW,      /* (L, 4C, C)                                              */
    P_FCB,      /* (L, 4C)                                                 */
    P_FCPROJW,  /* (L, C, 4C)                                              */
    P_FCPROJB,  /* (L, C)                                                  */
    P_LNFW,     /* (C)                                                     */
    P_LNFB,     /* (C)                                                     */
    P_SCORE,    /* (C) score.weight of a reward model; 0 floats without a head */
    NUM_PARAM_TENSORS
};

typedef struct {
    float *wte, *wpe, *ln1w, *ln1b, *qkvw, *qkvb, *attprojw, *attprojb, *ln2w, *ln2b, *fcw,
        *fcb, *fcprojw, *fcprojb, *lnfw, *lnfb, *score;
} ParamTensors;

/* Activations for one (B,T). Shapes in comments; L-stacked ones are per layer. */
enum {
    A_ENCODED,  /* (B,T,C)        */
    A_LN1,      /* (L,B,T,C)      */
    A_LN1MEAN,  /* (L,B,T)        */
    A_LN1RSTD,  /* (L,B,T)        */
    A_QKV,      /* (L,B,T,3C)     */
    A_ATTY,     /* (L,B,T,C)      */
    A_ATT,      /* (L,B,NH,T,T)   */
    A_ATTPROJ,  /* (L,B,T,C)      */
    A_RESID2,   /* (L,B,T,C)      */
    A_LN2,      /* (L,B,T,C)      */
    A_LN2MEAN,  /* (L,B,T)        */
    A_LN2RSTD,  /* (L,B,T)        */
    A_FCH,      /* (L,B,T,4C)     */
    A_FCHGELU,  /* (L,B,T,4C)     */
    A_FCPROJ,   /* (L,B,T,C)      */
    A_RESID3,   /* (L,B,T,C)      */
    A_LNF,      /* (B,T,C)        */
    A_LNFMEAN,  /* (B,T)          */
    A_LNFRSTD,  /* (B,T)          */
    A_LOGITS,   /* (B,T,Vp)  logits; dlogits in place after the loss head (0 floats when
                 *            hidden_only) */
    A_LSE,      /* (B,T)     logsumexp over the real vocab */
    A_LOGP,     /* (B,T)     log p(target) (0 where target < 0) */
    A_DLOGP,    /* (B,T)     dL/dlogp written by the loss head (scratch) */
    A_ATT16,    /* (B,NH,T,T) bf16 scratch: rounded attention weights (bf16 models only) */
    NUM_ACT_TENSORS
};

typedef struct {
    float *encoded, *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *att, *attproj,
        *resid2, *ln2, *ln2_mean, *ln2_rstd, *fch, *fch_gelu, *fcproj, *resid3, *lnf,
        *lnf_mean, *lnf_rstd, *logits, *lse, *logp, *dlogp;
} ActTensors;

/* In a bf16 model the activations that only ever feed a matmul (and its weight gradient)
 * are stored in bf16 only, in the same slab slots; their ActTensors pointers are NULL
 * then. Everything else (residual stream, LayerNorm statistics, pre-GELU values, the
 * softmax output, logits) stays fp32. */
typedef struct {
    bf16 *ln1, *qkv, *atty, *ln2, *fch_gelu, *lnf; /* shapes as in ActTensors */
    bf16 *att16; /* (B,NH,T,T) scratch */
} ActTensors16;

/* Scratch for backward: gradients w.r.t. activations, reused layer by layer. */
typedef struct {
    float *dresid;  /* (B,T,C)   gradient flowing down the residual stream      */
    float *dbuf_c;  /* (B,T,C)   scratch: d of a C-wide activation               */
    float *dbuf_c2; /* (B,T,C)   scratch                                         */
    float *dqkv;    /* (B,T,3C)                                                  */
    float *dfch;    /* (B,T,4C)                                                  */
    float *dfchg;   /* (B,T,4C)                                                  */
    float *attscr;  /* (B,NH,T,T) attention backward scratch                     */
    /* bf16 models: the gradients the GEMMs read, rounded by the kernel that produces them */
    bf16 *dout16;   /* (B,T,max(Vp,4C)) dlogits, then per layer the residual-stream
                     * gradient (LayerNorm backward) and dfch (GELU backward)      */
    bf16 *dx16;     /* (B,T,3C) d atty (attproj's input GEMM), then dqkv           */
    bf16 *ds16;     /* (B,NH,T,T) attention dS                                     */
} BackScratch;

/* Optional per-kernel timing (seconds, accumulated) for `tinyalign bench`: set
 * GPT2.prof to a zeroed GPT2Profile to collect, leave NULL (the default) for none. */
enum {
    K_ENCODER, K_LAYERNORM, K_MM_QKV, K_ATTENTION, K_MM_ATTPROJ, K_RESIDUAL, K_MM_FC, K_GELU,
    K_MM_FCPROJ, K_LM_HEAD, K_LOGSOFTMAX, K_BF16_CONVERT, NUM_KERNEL_KINDS
};
typedef struct {
    double fwd[NUM_KERNEL_KINDS], bwd[NUM_KERNEL_KINDS];
} GPT2Profile;
const char *gpt2_kernel_kind_name(int k);

typedef struct {
    GPT2Config config;
    GPT2Profile *prof; /* NULL unless profiling */
    /* how the matmuls run (gpt2_set_compute): the backend context (owned; OpenBLAS fp32
     * after gpt2_init) and the precision of the matmul operands */
    Backend *be;
    Precision precision;
    bf16 *params_bf16; /* bf16 models: the weights rounded to bf16, same layout as
                        * params_memory, re-derived by gpt2_params_changed */
    int lm_chunk;      /* rows of logits that exist at once (gpt2_set_lm_chunk); 0 = all */
    size_t param_sizes[NUM_PARAM_TENSORS];
    size_t num_params;
    float *params_memory; /* one slab, num_params floats */
    ParamTensors params;
    float *grads_memory; /* same layout as params; NULL for forward-only models */
    ParamTensors grads;
    /* activations, sized for (B,T) at gpt2_alloc_acts */
    int B, T;
    int act_layers; /* layers whose activations are kept: n_layer, or 1 in a model
                     * without gradients (forward only; every layer reuses slot 0) */
    size_t act_sizes[NUM_ACT_TENSORS];
    size_t num_acts;
    float *acts_memory;
    ActTensors acts;
    ActTensors16 acts16; /* bf16 models */
    float *back_memory;
    BackScratch back;
    int cur_B, cur_T; /* shape of the last forward (backward uses it) */
    int hidden_only;  /* set before gpt2_alloc_acts: forward stops at the final LayerNorm
                       * (a reward model), no logits / log-prob buffers; acts.lnf is
                       * fp32 in every precision (the score head reads it) */
    int acts_borrowed; /* activations belong to another model (gpt2_borrow_acts) */
    int *inputs;  /* (B,T) copy of the last forward's tokens */
    int *targets; /* (B,T) copy of the last forward's targets (-1 = none) */
} GPT2;

/* Fills Vp and checks dimensions. Returns TA_OK or TA_EINPUT (message in err names the
 * offending field: C % NH, sizes <= 0, ...). */
int gpt2_config_check(GPT2Config *cfg, TaError *err);

/* Allocates the parameter slab (zeroed) for cfg (Vp filled by gpt2_config_check).
 * with_grads: also allocate the gradient slab. */
void gpt2_init(GPT2 *m, const GPT2Config *cfg, int with_grads);
/* GPT-2 initialisation: N(0, 0.02) for weights and embeddings, residual projections
 * (attproj, fcproj) scaled by 1/sqrt(2L), biases 0, LN weight 1 / bias 0; padded wte
 * rows 0; the score head (when there is one) N(0, 0.02), drawn last. Deterministic given
 * seed. */
void gpt2_init_weights(GPT2 *m, uint64_t seed);
/* Chooses how the matmuls run (model.backend, model.precision): creates the backend
 * context (backend_init: TA_EINPUT with a message naming the key when the combination
 * cannot run here) and, for bf16, the bf16 copy of the weights. Activations already
 * allocated are reallocated for the new layout (same B, T). Parameters and gradients stay
 * fp32 in every precision; so do checkpoints. */
int gpt2_set_compute(GPT2 *m, BackendKind kind, Precision prec, TaError *err);
/* Call after writing params_memory by any means (an optimizer step, loading weights,
 * copying another model's): a bf16 model re-derives its bf16 weights now (one pass over
 * the parameters); no-op for fp32. gpt2_forward checks a sample of the copy and asserts
 * when a write was not announced. */
void gpt2_params_changed(GPT2 *m);
/* Adds (on = 1) or removes (on = 0) the score head, keeping every trunk parameter (and
 * zeroing the gradients). A new head is N(0, 0.02) from its own stream of seed (what Hugging
 * Face's _init_weights gives a fresh nn.Linear of GPT2ForSequenceClassification, with
 * initializer_range 0.02). No-op when the model already is as asked. Must be called before
 * the activations are allocated or the model is shared. */
void gpt2_set_score_head(GPT2 *m, int on, uint64_t seed);
/* Allocates activations (and, when the model has gradients, backward scratch) for up to
 * B rows of T tokens. Idempotent when (B,T) fit already. A model without gradients keeps
 * one layer's activations (act_layers 1: each layer's forward overwrites the previous
 * one's), so only the last layer's, lnf, the logits and log-probs are readable after its
 * forward. */
void gpt2_alloc_acts(GPT2 *m, int B, int T);
/* Makes dst (a forward-only model of the same dimensions and precision) use src's
 * activation buffers instead of its own: dst's forward then overwrites src's activations.
 * For a reference model that always runs before the policy on a batch. dst must not own
 * activations. */
void gpt2_borrow_acts(GPT2 *dst, GPT2 *src);
/* Frees everything; safe on a zeroed struct. */
void gpt2_free(GPT2 *m);

/* Name (HF GPT-2 convention without the per-layer index) and shape of a param tensor. */
const char *gpt2_param_name(int i);
/* Bytes of parameters / gradients / activations / backward scratch, for the memory line. */
void gpt2_memory_report(const GPT2 *m, char *buf, size_t cap);
/* Bytes of the activations and scratch that hold logits or dlogits (the LM head's share). */
size_t gpt2_logits_bytes(const GPT2 *m);

/* Forward over tokens (B,T) (B <= allocated B, T <= allocated T and <= maxT).
 * targets (B,T) or NULL; target < 0 means "no target at this position".
 * Writes acts.logits (B,T,Vp) (only the last chunk's rows with an LM-head chunk, below),
 * acts.lse and acts.logp (B,T). Token ids must be < V:
 * checked, returns TA_EINPUT with a message naming the row and position otherwise. */
int gpt2_forward(GPT2 *m, const int *tokens, const int *targets, int B, int T, TaError *err);

/* The forward up to the final LayerNorm: acts.lnf (B,T,C) (no LM head, no log-probs).
 * Token ids must be < V: TA_EINPUT naming the row and position otherwise. */
int gpt2_forward_hidden(GPT2 *m, const int *tokens, int B, int T, TaError *err);
/* After gpt2_forward_hidden (or gpt2_forward): rewards (cur_B) = acts.lnf[b, last[b]] .
 * score, last (cur_B) each row's last real position (< cur_T). Needs the score head, and
 * acts.lnf in fp32: a fp32 model, or a hidden_only one (whose lnf is fp32 in every
 * precision; the trunk's matmuls still run in the model's precision). */
void gpt2_score_forward(const GPT2 *m, const int *last, float *rewards);

/* Backward from dlogits stored in acts.logits (B,T,Vp) (as logits_to_dlogits leaves it),
 * for the (B,T) of the last forward. ACCUMULATES into grads (call gpt2_zero_grad first).
 * Not for a chunked LM head (gpt2_lm_chunked): use gpt2_backward_chunks. */
void gpt2_backward(GPT2 *m);

/* ---- the LM head in chunks of rows (model.lm_head_chunk) ----------------------------
 * With lm_chunk = R > 0 the (B*T, Vp) logits of a batch never exist at once: the forward
 * computes them R rows at a time and keeps only lse and logp (B,T); acts.logits holds
 * (R, Vp). The loss head then sees the logits through a callback, chunk by chunk,
 * recomputed from lnf (one more LM-head GEMM per chunk: +1/3 of the LM head's FLOPs):
 *   fn(ctx, row0, nrows, logits) with logits (nrows, Vp) of token rows [row0, row0+nrows)
 *   of the flattened (B*T) batch; in a backward fn must overwrite them with dlogits.
 * fn returns TA_OK or an error, which stops the pass and is returned. */
typedef int (*GPT2HeadFn)(void *ctx, int row0, int nrows, float *logits, TaError *err);
/* Sets R (0: whole batches, the default); reallocates activations already allocated. */
void gpt2_set_lm_chunk(GPT2 *m, int rows);
/* 1 when the last forward's B*T rows exceed R (acts.logits does not hold them all). */
int gpt2_lm_chunked(const GPT2 *m);
/* fn over every chunk of the last forward's rows (forward only: evaluation). */
int gpt2_head_chunks(GPT2 *m, GPT2HeadFn fn, void *ctx, TaError *err);
/* The whole backward with the LM head chunked: fn turns each chunk's logits into dlogits,
 * which go through the LM head's backward, then the rest of the model. ACCUMULATES. */
int gpt2_backward_chunks(GPT2 *m, GPT2HeadFn fn, void *ctx, TaError *err);
/* Backward of a reward model from drewards (cur_B) = dL/dreward of each row (the same last
 * as the forward): score's gradient, and d(hidden at each row's last token) down the trunk
 * (derivation in src/kernels/score.c); the LM head takes no part. ACCUMULATES. */
void gpt2_score_backward(GPT2 *m, const int *last, const float *drewards);
void gpt2_zero_grad(GPT2 *m);

/* Number of FLOPs of one forward+backward over B*T tokens (6N per token plus attention
 * 12*L*T*C per token), for MFU reporting. */
double gpt2_flops_per_token(const GPT2Config *c, int T);

/* ---- KV-cache decoding (src/model/decode.c) ------------------------------------------
 * Incremental forward for generation. A GPT2Decode borrows a model's parameters (never
 * writes them, copies nothing: a training policy can be sampled from in place) and owns
 * everything else, allocated once at gpt2_decode_init: per layer a key and a value cache
 * for S sequences of up to maxT positions, and the activations of one call of up to R rows.
 * Nothing is allocated per token.
 *
 * A call feeds N rows; row i appends tokens[i] to sequence seqs[i] at that sequence's
 * current length (its position), so one call can prefill several prompts (their tokens
 * as consecutive rows, in order) or advance every active sequence by one token. Within a
 * call all keys/values are written before attention runs, and a row at position p
 * attends to positions 0..p of its own sequence: the causal forward, cached. */
typedef struct {
    const GPT2 *model; /* weights, borrowed (read only) */
    int S;             /* sequences the cache holds */
    int maxT;          /* positions per sequence (<= model max_seq_len) */
    int R;             /* rows per call */
    float *memory;     /* one slab for all the float buffers below */
    float *kcache;     /* (L, S, maxT, C) keys, channel h*hs+i = head h */
    float *vcache;     /* (L, S, maxT, C) values */
    float *x;          /* (R, C)   residual stream */
    float *ln;         /* (R, C)   layernorm output */
    float *mean, *rstd; /* (R)    layernorm statistics (written by the kernel, unused) */
    float *qkv;        /* (R, 3C) */
    float *atty;       /* (R, C)   attention output, heads concatenated */
    float *proj;       /* (R, C)   attproj / fcproj output */
    float *fch;        /* (R, 4C) */
    float *fchg;       /* (R, 4C) */
    float *att;        /* (R, NH, maxT) attention weights of each row and head */
    float *logits;     /* (R, Vp)  logits of the rows asked for, compacted in row order */
    bf16 *mm16;        /* (R, 4C)  bf16 models: the current matmul input, rounded */
    int *lens;         /* (S) positions filled in each sequence's cache */
    int *row_pos;      /* (R) position of each row of the current call */
    int *row_keep;     /* (R) rows whose logits are computed */
    int n_logits;      /* logits rows written by the last call */
} GPT2Decode;

/* Allocates the caches for S sequences of maxT positions (1 <= maxT <= the model's
 * max_seq_len) and the buffers of calls of up to R rows; every sequence starts empty.
 * m must stay alive (and keep its parameters in place) until gpt2_decode_free. */
void gpt2_decode_init(GPT2Decode *d, const GPT2 *m, int S, int maxT, int R);
/* Frees everything (never the model); safe on a zeroed struct. */
void gpt2_decode_free(GPT2Decode *d);
/* Bytes allocated (caches + call buffers), for the memory line. */
size_t gpt2_decode_bytes(const GPT2Decode *d);
/* Empties sequence seq (its cache is simply overwritten from position 0). */
void gpt2_decode_reset(GPT2Decode *d, int seq);
/* Makes sequence dst a copy of sequence src (cache positions 0..len(src) and length):
 * n samples of one prompt share one prefill. */
void gpt2_decode_copy(GPT2Decode *d, int dst, int src);
/* Runs rows i = 0..N-1 (N <= R): token tokens[i] appended to sequence seqs[i] (rows of a
 * sequence in order). want (N) selects the rows whose logits are computed (NULL: all);
 * they are written to d->logits, (d->n_logits, Vp), in row order, padded columns 0.
 * Returns TA_OK, or TA_EINPUT (nothing changed) when a token is outside [0, V), a
 * sequence index outside [0, S) or a sequence would exceed maxT positions. */
int gpt2_decode_forward(GPT2Decode *d, const int *seqs, const int *tokens, int N,
                        const unsigned char *want, TaError *err);
/* A decode step: one row per sequence (seqs distinct, else TA_EINPUT), logits for every
 * row. Up to 16 rows, the matmuls stream each weight once for all rows (linear_rows in
 * backend.h; sgemm with a few rows repacks the weights each call) and a row's logits have
 * the same bits whatever the other rows or the thread count; above 16 rows, the backend's
 * GEMM. A bf16 model decodes with its bf16 weights (which must be current:
 * gpt2_params_changed after any write). Prefill goes through
 * gpt2_decode_forward (sgemm). Same errors as gpt2_decode_forward. */
int gpt2_decode_step(GPT2Decode *d, const int *seqs, const int *tokens, int N, TaError *err);

#endif
