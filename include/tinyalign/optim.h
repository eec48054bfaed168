/* optim.h — AdamW with bias correction and decoupled weight decay, learning-rate
 * schedules, and global-norm gradient clipping, over one flat parameter slab.
 *
 * PyTorch equivalent: torch.optim.AdamW(params, lr, betas, eps, weight_decay) with decay
 * only on the tensors whose mask byte is 1 (by default the 2-D matmul weights: qkvw,
 * attprojw, fcw, fcprojw; not biases, LayerNorms or embeddings), preceded by
 * torch.nn.utils.clip_grad_norm_(params, grad_clip), and a LambdaLR schedule.
 */
#ifndef TINYALIGN_OPTIM_H
#define TINYALIGN_OPTIM_H
#include <stddef.h>
#include <stdint.h>

typedef enum { SCHED_CONSTANT = 0, SCHED_LINEAR, SCHED_COSINE } LrSchedule;

typedef struct {
    /* doubles, as Python holds them, so derived scalars round like PyTorch's */
    double lr;           /* peak learning rate */
    double beta1, beta2; /* (0.9, 0.999) */
    double eps;          /* 1e-8 */
    double weight_decay; /* decoupled: p -= lr * wd * p, only where decay_mask == 1 */
    LrSchedule schedule;
    int warmup_steps;   /* linear warmup from lr/warmup to lr over this many steps */
    int max_steps;      /* schedule horizon */
    double min_lr_ratio; /* linear/cosine decay to lr * min_lr_ratio at max_steps */
    double grad_clip;    /* global L2 norm clip; <= 0 disables */
} AdamWConfig;

typedef struct {
    AdamWConfig cfg;
    size_t n;        /* number of parameters */
    float *m, *v;    /* first and second moments (n each, one allocation) */
    uint8_t *decay;  /* (n) per-parameter decay flag, 1 = apply weight decay */
    long step;       /* number of updates applied so far (t in the bias correction) */
} AdamW;

/* Allocates m, v (zeroed) and the decay mask (all 0; set ranges with adamw_set_decay). */
void adamw_init(AdamW *o, const AdamWConfig *cfg, size_t n);
void adamw_free(AdamW *o);
/* Marks params [off, off+len) as decayed (1) or not (0). */
void adamw_set_decay(AdamW *o, size_t off, size_t len, int decay);

/* Learning rate for update number `step` (0-based) under cfg.
 *   warmup: lr * (step+1) / warmup_steps for step < warmup_steps
 *   then constant: lr; linear: lr * (1 - (1-r) * p); cosine: lr * (r + (1-r) * 0.5(1+cos(pi p)))
 *   with p = (step - warmup) / max(1, max_steps - warmup) clamped to [0,1], r = min_lr_ratio. */
double lr_at_step(const AdamWConfig *cfg, long step);

/* Global L2 norm of g (n), accumulated in double over fixed-size chunks in a fixed order,
 * so it is the same at any thread count. */
double grad_global_norm(const float *g, size_t n);
/* Scales g by min(1, clip / (norm + 1e-6)) when clip > 0 (PyTorch clip_grad_norm_). Returns
 * the scale applied. */
float grad_clip_scale(float *g, size_t n, double norm, double clip);

/* One AdamW update with learning rate lr (from lr_at_step) on params p (n) with grads g:
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  mhat = m/(1-b1^t);  vhat = v/(1-b2^t)
 *   p -= lr * (mhat / (sqrt(vhat) + eps) + wd * decay * p)      (t = step + 1)
 * PyTorch applies the decay first (p *= 1 - lr*wd) then the Adam step; both orders are
 * the same math; we use PyTorch's order to match it to the last bit where possible. */
void adamw_update(AdamW *o, float *p, const float *g, double lr);
/* The same update (identical fp32 results), also writing p16[i] = bf16(p[i]) in the same
 * pass when p16 is not NULL: a bf16 model's weight copy (GPT2.params_bf16) refreshed once
 * per step without another pass over the parameters. */
void adamw_update_bf16(AdamW *o, float *p, const float *g, double lr, uint16_t *p16);

#endif
