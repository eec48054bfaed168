/* logsoftmax.c — log-softmax of the LM head over the real vocabulary, the gathered
 * log-prob of each target, and the generic "dL/dlogp -> dlogits" conversion that every
 * token-level loss head uses. Padded columns (v >= V) never enter a sum and always get
 * zero gradient. PyTorch: lp = logits[..., :V].log_softmax(-1).gather(-1, targets). */
#include <math.h>
#include <string.h>

#include "tinyalign/kernels.h"
#include "vecmath.h"

void logsoftmax_gather(float *logp, float *lse, const float *logits, const int *targets,
                       int N, int V, int Vp) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *l = logits + (size_t)n * Vp;
        float maxv = -INFINITY;
        for (int v = 0; v < V; v++)
            if (l[v] > maxv) maxv = l[v];
        /* sum in double: V can be 50k and this is the loss everyone reads */
        double sum = 0.0;
        for (int v = 0; v < V; v++) sum += (double)expf(l[v] - maxv);
        float z = maxv + (float)log(sum);
        lse[n] = z;
        int y = targets ? targets[n] : -1;
        logp[n] = y >= 0 ? l[y] - z : 0.0f;
    }
}

/* The same with the exponentials vectorised (ta_exp_vec, ~2 ulp) and the sum in 8 double
 * lanes: the max and logsumexp differ from the above in the last bits only. Used by the
 * oneDNN paths; OpenBLAS fp32 keeps the kernel above (the bits of its checkpoints). */
void logsoftmax_gather_vec(float *logp, float *lse, const float *logits, const int *targets,
                           int N, int V, int Vp) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *l = logits + (size_t)n * Vp;
        float maxv = ta_max_lanes(l, V);
        float z = maxv + (float)log(ta_sum_exp_lanes(l, V, maxv));
        lse[n] = z;
        int y = targets ? targets[n] : -1;
        logp[n] = y >= 0 ? l[y] - z : 0.0f;
    }
}

/* d logp[n] / d logits[n,v] = 1[v == y] - softmax_v, so
 * dlogits[n,v] = dlogp[n] * (1[v == y] - exp(l[v] - lse[n])). */
void logits_to_dlogits(float *logits, const float *lse, const int *targets, const float *dlogp,
                       int N, int V, int Vp) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *l = logits + (size_t)n * Vp;
        int y = targets ? targets[n] : -1;
        float g = dlogp[n];
        if (y < 0 || g == 0.0f) {
            memset(l, 0, sizeof(float) * (size_t)Vp);
            continue;
        }
        float z = lse[n];
        for (int v = 0; v < V; v++) l[v] = -g * expf(l[v] - z);
        l[y] += g;
        for (int v = V; v < Vp; v++) l[v] = 0.0f;
    }
}
