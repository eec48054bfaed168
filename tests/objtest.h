/* objtest.h — helpers shared by the loss-head tests (test_objective.c, test_nado.c):
 * tolerances, padded vocabularies, Batches over caller-owned arrays, and the float path of
 * the heads as the trainer runs it. Test-only, header-only (static inline: a test that
 * uses some of them compiles without unused-function warnings). */
#ifndef TINYALIGN_OBJTEST_H
#define TINYALIGN_OBJTEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testhelp.h"
#include "tinyalign/common.h"
#include "tinyalign/kernels.h"
#include "tinyalign/objective.h"

/* |got - ref| <= atol + rtol |ref|; NaN fails. */
static inline int close_d(double got, double ref, double atol, double rtol) {
    return fabs(got - ref) <= atol + rtol * fabs(ref);
}

static inline float max_abs(const float *x, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

/* |got - ref| <= atol + rtol |ref| elementwise; on failure the worst element goes to msg. */
static inline int compare(const char *what, const float *got, const float *ref, size_t n,
                          double atol, double rtol, char *msg, size_t cap) {
    double worst = -1;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        double ex = isnan(d) ? INFINITY : d - (atol + rtol * fabs((double)ref[i]));
        if (ex > 0 && ex > worst) { worst = ex; wi = i; }
    }
    if (worst > 0)
        snprintf(msg, cap, "%s: element %zu got %.9g, reference %.9g (atol %.2g, rtol %.2g)",
                 what, wi, got[wi], ref[wi], atol, rtol);
    return !(worst > 0);
}

/* (N, V) -> (N, VP) with junk in the padded columns (which must never count). */
static inline float *pad_vocab(const float *x, size_t N, int V, int VP, float junk) {
    float *out = ta_malloc(N * VP * sizeof(float), "padded");
    for (size_t i = 0; i < N; i++)
        for (int v = 0; v < VP; v++) out[i * VP + v] = v < V ? x[i * V + v] : junk;
    return out;
}

/* A Batch of rows x T over caller-owned arrays (the pair layout when n_pairs > 0); the
 * caller sets weights / labels. */
static inline Batch objtest_batch(int rows, int T, int n_pairs, int *targets, uint8_t *mask) {
    Batch b;
    memset(&b, 0, sizeof b);
    b.B = b.max_rows = rows;
    b.T = b.max_T = T;
    b.targets = targets;
    b.loss_mask = mask;
    b.n_pairs = n_pairs;
    return b;
}

/* The float path of one micro-batch: pad logits (rows,T,V) to VP, log-softmax, the loss
 * head (ref (rows) reference log-probs or NULL), then the logit head over chunks of
 * rows_per_call whole rows (0 = one call; guide, base (rows,T,V) or NULL). Checks the
 * padded columns of dlogits are 0. dlogits_out (rows,T,V) and padded_out (rows,T,VP) may
 * be NULL. */
static inline int objtest_run_float(const CfgObjective *o, const Batch *b, int V, int VP,
                                    const float *logits, const float *guide, const float *base,
                                    const float *ref, const ObjectiveNorm *norm,
                                    int rows_per_call, float *dlogits_out, float *padded_out,
                                    ObjectiveStats *st, TaError *err) {
    size_t N = (size_t)b->B * b->T;
    float *lg = pad_vocab(logits, N, V, VP, 1e3f);
    float *gd = guide ? pad_vocab(guide, N, V, VP, -1e3f) : NULL;
    float *bs = base ? pad_vocab(base, N, V, VP, -1e3f) : NULL;
    float *lse = ta_malloc(N * sizeof(float), "lse"), *lp = ta_malloc(N * sizeof(float), "lp");
    float *dlp = ta_malloc(N * sizeof(float), "dlp");
    logsoftmax_gather(lp, lse, lg, b->targets, (int)N, V, VP);
    int rc = objective_forward_backward(o, b, lp, ref, norm, dlp, st, err);
    int step = rows_per_call > 0 ? rows_per_call * b->T : (int)N;
    for (int r0 = 0; r0 < (int)N && rc == TA_OK; r0 += step) {
        int nr = (int)N - r0 < step ? (int)N - r0 : step;
        size_t off = (size_t)r0 * VP;
        rc = objective_logits_forward_backward(o, b, r0, nr, lg + off, lse + r0, dlp + r0,
                                               gd ? gd + off : NULL, bs ? bs + off : NULL, V, VP,
                                               norm, st, err);
    }
    if (rc == TA_OK) {
        for (size_t i = 0; i < N; i++) {
            for (int v = V; v < VP; v++) TA_ASSERT(lg[i * VP + v] == 0.0f);
            if (dlogits_out) memcpy(dlogits_out + i * V, lg + i * VP, V * sizeof(float));
        }
        if (padded_out) memcpy(padded_out, lg, N * VP * sizeof(float));
    }
    free(lg); free(gd); free(bs); free(lse); free(lp); free(dlp);
    return rc;
}

#endif
