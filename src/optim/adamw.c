/* adamw.c — AdamW, learning-rate schedules and global-norm clipping (see optim.h).
 * Matches torch.optim.AdamW (single-tensor path of PyTorch 1.13) operation by operation:
 *   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g*g
 *   p += -(lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps)
 * with bc1 = 1 - b1^t, bc2 = 1 - b2^t computed in double like Python does. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/common.h"
#include "tinyalign/optim.h"
#include "../kernels/vecmath.h" /* ta_bf16_round */

void adamw_init(AdamW *o, const AdamWConfig *cfg, size_t n) {
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->n = n;
    o->m = ta_aligned_alloc(2 * n * sizeof(float), "AdamW moments");
    o->v = o->m + n;
    o->decay = ta_calloc(n, "AdamW decay mask");
}

void adamw_free(AdamW *o) {
    free(o->m);
    free(o->decay);
    memset(o, 0, sizeof *o);
}

void adamw_set_decay(AdamW *o, size_t off, size_t len, int decay) {
    TA_ASSERT(off + len <= o->n);
    memset(o->decay + off, decay ? 1 : 0, len);
}

double lr_at_step(const AdamWConfig *c, long step) {
    if (c->warmup_steps > 0 && step < c->warmup_steps)
        return c->lr * (double)(step + 1) / (double)c->warmup_steps;
    if (c->schedule == SCHED_CONSTANT) return c->lr;
    double span = (double)(c->max_steps - c->warmup_steps);
    double prog = span > 0 ? (double)(step - c->warmup_steps) / span : 1.0;
    if (prog < 0) prog = 0;
    if (prog > 1) prog = 1;
    double r = c->min_lr_ratio;
    double f = c->schedule == SCHED_LINEAR ? 1.0 - (1.0 - r) * prog
                                           : r + (1.0 - r) * 0.5 * (1.0 + cos(M_PI * prog));
    return c->lr * f;
}

double grad_global_norm(const float *g, size_t n) {
    /* Fixed chunking (independent of the thread count), partial sums in double, combined
     * serially in chunk order: the same bits at any number of threads. */
    enum { MAX_CHUNKS = 4096 };
    size_t chunk = 65536;
    if (n / chunk + 1 > MAX_CHUNKS) chunk = n / MAX_CHUNKS + 1;
    long nchunks = (long)((n + chunk - 1) / chunk);
    double partial[MAX_CHUNKS];
#pragma omp parallel for schedule(static)
    for (long k = 0; k < nchunks; k++) {
        size_t i0 = (size_t)k * chunk, i1 = i0 + chunk < n ? i0 + chunk : n;
        double s = 0.0;
        for (size_t i = i0; i < i1; i++) s += (double)g[i] * (double)g[i];
        partial[k] = s;
    }
    double total = 0.0;
    for (long k = 0; k < nchunks; k++) total += partial[k];
    return sqrt(total);
}

float grad_clip_scale(float *g, size_t n, double norm, double clip) {
    if (clip <= 0.0) return 1.0f;
    double coef = clip / (norm + 1e-6);
    if (coef >= 1.0) return 1.0f;
    float s = (float)coef;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) g[i] *= s;
    return s;
}

/* The element update, shared by the two loops below (each its own OpenMP region, so that
 * each is vectorised on its own). */
#define ADAMW_ELEMENT(i)                                                                    \
    float pi = p[i];                                                                        \
    if (dm[i]) pi *= decay_mul;                                                             \
    float gi = g[i];                                                                        \
    float mi = m[i] * b1 + gi * one_m_b1;                                                   \
    float vi = v[i] * b2 + gi * gi * one_m_b2;                                              \
    m[i] = mi;                                                                              \
    v[i] = vi;                                                                              \
    float denom = sqrtf(vi) / bc2_sqrt + eps;                                               \
    float pn = pi + -step_size * (mi / denom);                                              \
    p[i] = pn

void adamw_update_bf16(AdamW *o, float *p, const float *g, double lr, uint16_t *p16) {
    const AdamWConfig *c = &o->cfg;
    long t = o->step + 1;
    double bc1 = 1.0 - pow(c->beta1, (double)t);
    double bc2 = 1.0 - pow(c->beta2, (double)t);
    /* scalars rounded to float once, as PyTorch does when it passes them to a kernel */
    const float step_size = (float)(lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float b1 = (float)c->beta1, b2 = (float)c->beta2, eps = (float)c->eps;
    const float one_m_b1 = (float)(1.0 - c->beta1), one_m_b2 = (float)(1.0 - c->beta2);
    const float decay_mul = (float)(1.0 - lr * c->weight_decay);
    float *m = o->m, *v = o->v;
    const uint8_t *dm = o->decay;
    const size_t n = o->n;
    if (p16) { /* blocks of 4096: the update, then the rounding while the block is in L1 */
        const size_t nb = (n + 4095) / 4096;
#pragma omp parallel for schedule(static)
        for (size_t b = 0; b < nb; b++) {
            const size_t i0 = b * 4096, i1 = i0 + 4096 < n ? i0 + 4096 : n;
            for (size_t i = i0; i < i1; i++) {
                ADAMW_ELEMENT(i);
            }
            for (size_t i = i0; i < i1; i++) p16[i] = ta_bf16_round(p[i]);
        }
    } else {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            ADAMW_ELEMENT(i);
        }
    }
    o->step = t;
}

void adamw_update(AdamW *o, float *p, const float *g, double lr) {
    adamw_update_bf16(o, p, g, lr, NULL);
}
