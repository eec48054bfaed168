/* kernels.h — GPT-2 layer kernels, forward and backward, on float32 (llm.c layout).
 *
 * Dimension legend:
 *   B  batch size (rows)            T  sequence length
 *   C  channels (d_model)           NH attention heads, hs = C / NH head size
 *   V  real vocabulary size         Vp padded vocabulary (multiple of 64; rows >= V are
 *                                      zero and never affect loss or sampling)
 *   L  layers                       OC output channels of a matmul
 *
 * Argument order (as in llm.c): outputs first, then what backward needs, then inputs and
 * weights, dimensions last. Backward kernels ACCUMULATE into d* buffers (+=); the
 * caller zeroes them once per step. Every parallel loop writes disjoint outputs, and no
 * reduction order depends on the thread count, so results are bit-identical at any
 * number of threads.
 */
#ifndef TINYALIGN_KERNELS_H
#define TINYALIGN_KERNELS_H
#include <stddef.h>

#include "tinyalign/backend.h" /* Backend, bf16; the matmuls themselves live there */

/* out (B,T,C) = wte[inp] + wpe[t]. inp (B,T) token ids (< V, checked by the caller). */
void encoder_forward(float *out, const int *inp, const float *wte, const float *wpe, int B,
                     int T, int C);
/* dwte (Vp,C), dwpe (maxT,C) += scatter of dout (B,T,C). */
void encoder_backward(float *dwte, float *dwpe, const float *dout, const int *inp, int B,
                      int T, int C);

/* LayerNorm over C with eps 1e-5. out, inp (N,C) with N = B*T; mean, rstd (N) saved for
 * backward; weight, bias (C). */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int N, int C);
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int N, int C);
/* The same backward also writing dinp16 = bf16(dinp) after the accumulation (in a bf16
 * model, the rounded residual-stream gradient the next matmul backward reads). */
void layernorm_backward_bf16(float *dinp, bf16 *dinp16, float *dweight, float *dbias,
                             const float *dout, const float *inp, const float *weight,
                             const float *mean, const float *rstd, int N, int C);
/* The same forward with out rounded to bf16 (the input of a bf16 matmul); mean and rstd
 * as above, in fp32. */
void layernorm_forward_bf16(bf16 *out, float *mean, float *rstd, const float *inp,
                            const float *weight, const float *bias, int N, int C);

/* out (N,OC) = inp (N,C) @ weight^T + bias; weight (OC,C), bias (OC) or NULL. OpenBLAS fp32
 * (linear_forward / linear_backward of backend.h without a backend context). */
void matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int N, int C, int OC);
/* dinp (N,C) += dout @ weight; dweight (OC,C) += dout^T @ inp; dbias (OC) += sum_n dout.
 * dinp may be NULL (no input gradient needed); dbias may be NULL. */
void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int C, int OC);
/* Naive triple loop reference of the two above (tests only). */
void matmul_forward_naive(float *out, const float *inp, const float *weight,
                          const float *bias, int N, int C, int OC);

/* Causal self-attention. inp (B,T,3C) holds q,k,v (each (B,T,C), head h in channels
 * [h*hs, (h+1)*hs)); out (B,T,C); att (B,NH,T,T) = softmax(q k^T / sqrt(hs)) with the
 * causal mask (entries t2 > t are 0), saved for backward. */
void attention_forward(float *out, float *att, const float *inp, int B, int T, int C, int NH);
/* dinp (B,T,3C) += d(q,k,v); scratch (B,NH,T,T) is overwritten (need not be zero).
 * Parallel over (b, h): each pair owns disjoint q/k/v gradient slices. */
void attention_backward(float *dinp, float *scratch, const float *dout, const float *inp,
                        const float *att, int B, int T, int C, int NH);
/* Dot-product loop references of the two above (tests); the naive backward needs only
 * (B,NH,2T) of scratch. */
void attention_forward_naive(float *out, float *att, const float *inp, int B, int T, int C,
                             int NH);
void attention_backward_naive(float *dinp, float *scratch, const float *dout, const float *inp,
                              const float *att, int B, int T, int C, int NH);
/* The same attention with each GEMM batched over (B, NH) through the backend (oneDNN),
 * operands fp32 (bf16 = 0) or bf16 (bf16 = 1). qkv (B,T,3C) and out (B,T,C) are in that
 * type; att (B,NH,T,T) is the fp32 softmax output, saved for backward; att16 (B,NH,T,T)
 * bf16 scratch for the rounded weights (unused in fp32). */
void attention_forward_gemm(Backend *be, void *out, float *att, bf16 *att16, const void *qkv,
                            int use_bf16, int B, int T, int C, int NH);
/* dinp (B,T,3C) fp32 += d(q,k,v) (zeroed by the caller: each part is written by one
 * GEMM); scratch (B,NH,T,T) fp32 is overwritten; ds16, att16 (B,NH,T,T) bf16 scratch
 * (unused in fp32). dout_mm (B,T,C) is dY in the operand type, qkv as in forward. */
void attention_backward_gemm(Backend *be, float *dinp, float *scratch, bf16 *ds16, bf16 *att16,
                             const void *dout_mm, const void *qkv, const float *att, int use_bf16,
                             int B, int T, int C, int NH);

/* GELU, tanh approximation (PyTorch approximate="tanh"). N elements. */
void gelu_forward(float *out, const float *inp, size_t N);
void gelu_backward(float *dinp, const float *inp, const float *dout, size_t N);
/* bf16 model: forward output rounded to bf16 (the fcproj matmul input); backward also
 * writes dinp16 = bf16(dinp) after the accumulation (the fc matmul's dout operand). */
void gelu_forward_bf16(bf16 *out, const float *inp, size_t N);
void gelu_backward_bf16(float *dinp, bf16 *dinp16, const float *inp, const float *dout,
                        size_t N);

/* out = a + b, N elements; backward: da += dout, db += dout. */
void residual_forward(float *out, const float *a, const float *b, size_t N);
void residual_backward(float *da, float *db, const float *dout, size_t N);

/* Per-row log-softmax pieces over the first V of Vp logits.
 * lse (N) = logsumexp(logits[n, :V]); logp (N) = logits[n, target[n]] - lse[n]
 * (targets < 0 give logp 0: "no target"). logits (N,Vp). */
void logsoftmax_gather(float *logp, float *lse, const float *logits, const int *targets,
                       int N, int V, int Vp);
/* The same with vectorised exponentials (last-bit differences; the oneDNN paths). */
void logsoftmax_gather_vec(float *logp, float *lse, const float *logits, const int *targets,
                           int N, int V, int Vp);
/* Turns logits into dlogits IN PLACE given dL/dlogp per row (dlogp (N)):
 *   dlogits[n,v] = dlogp[n] * (1[v == target[n]] - softmax(logits[n])_v)  for v < V,
 *   0 for padded columns v >= V and for rows whose target < 0 or dlogp == 0.
 * lse from logsoftmax_gather. Every token-level objective (NLL, DPO, ORPO, ...) has this form. */
void logits_to_dlogits(float *logits, const float *lse, const int *targets, const float *dlogp,
                       int N, int V, int Vp);

/* The scalar head of a reward model: out (B) = inp[b, last[b], :] . w, inp (B,T,C) the
 * final LayerNorm's output, last (B) each row's last real position (< T), w (C).
 * Backward: dw (C) += sum_b dout[b] inp[b, last[b], :]; dinp[b, last[b], :] += dout[b] w
 * (no other position is touched). */
void score_forward(float *out, const float *inp, const int *last, const float *w, int B, int T,
                   int C);
void score_backward(float *dinp, float *dw, const float *dout, const float *inp, const int *last,
                    const float *w, int B, int T, int C);

#endif
