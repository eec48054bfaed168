/* select.c — which responses become preference pairs (include/tinyalign/curate.h):
 * the disjoint random pairing with a score gap of Chung et al. 2025 (arXiv 2503.17126; their
 * sample_pairs_with_gap, with its fallback and the gap = -1 "all pairs" mode), and DivPO's
 * selection (Lanchantin et al. 2025, arXiv 2501.18101, as Chung et al. re-implement it:
 * High / Low pools by score, most diverse chosen vs least diverse rejected, shuffled and
 * zipped).
 * Every draw goes through the caller's TaRng in a fixed order, which tools/ref_curate.py
 * replays to reproduce the pairs exactly.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/curate.h"

static int same_text(const char *const *texts, int i, int j) {
    return texts && !strcmp(texts[i], texts[j]);
}

static CuratePair make_pair(const double *scores, int i, int j) {
    CuratePair p;
    if (scores[i] > scores[j]) p.chosen = i, p.rejected = j;
    else p.chosen = j, p.rejected = i;
    return p;
}

int curate_sample_pairs(CuratePair *out, const double *scores, const char *const *texts, int n,
                        double gap, TaRng *rng, int *fallback) {
    if (fallback) *fallback = 0;
    if (n < 2) return 0;
    TA_ASSERT(gap >= 0 || gap == -1);
    size_t cap = (size_t)n * (size_t)(n - 1) / 2;
    int *ci = ta_malloc(cap * sizeof(int), "pair candidates");
    int *cj = ta_malloc(cap * sizeof(int), "pair candidates");
    int np = 0;
    if (gap == -1) {
        /* every pair with different scores; at most CURATE_ALL_PAIRS_MAX drawn */
        size_t nc = 0;
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
                if (scores[i] != scores[j] && !same_text(texts, i, j)) ci[nc] = i, cj[nc++] = j;
        size_t take = nc;
        if (nc > CURATE_ALL_PAIRS_MAX) {
            take = CURATE_ALL_PAIRS_MAX;
            for (size_t t = 0; t < take; t++) { /* partial Fisher-Yates */
                size_t k = t + (size_t)ta_rng_below(rng, nc - t);
                int a = ci[t], b = cj[t];
                ci[t] = ci[k], cj[t] = cj[k];
                ci[k] = a, cj[k] = b;
            }
        }
        for (size_t t = 0; t < take; t++) out[np++] = make_pair(scores, ci[t], cj[t]);
        goto end;
    }
    uint8_t *avail = ta_malloc((size_t)n, "pair candidates");
    memset(avail, 1, (size_t)n);
    int left = n;
    while (left >= 2) {
        size_t nc = 0;
        for (int i = 0; i < n; i++) {
            if (!avail[i]) continue;
            for (int j = i + 1; j < n; j++)
                if (avail[j] && scores[i] != scores[j] && fabs(scores[i] - scores[j]) >= gap &&
                    !same_text(texts, i, j))
                    ci[nc] = i, cj[nc++] = j;
        }
        if (nc == 0) { /* the fallback ignores the gap */
            for (int i = 0; i < n; i++) {
                if (!avail[i]) continue;
                for (int j = i + 1; j < n; j++)
                    if (avail[j] && scores[i] != scores[j] && !same_text(texts, i, j))
                        ci[nc] = i, cj[nc++] = j;
            }
            if (nc == 0) break;
            if (fallback) *fallback = 1;
        }
        size_t k = (size_t)ta_rng_below(rng, nc);
        out[np++] = make_pair(scores, ci[k], cj[k]);
        avail[ci[k]] = avail[cj[k]] = 0;
        left -= 2;
    }
    free(avail);
end:
    free(ci);
    free(cj);
    return np;
}

/* ---- DivPO ------------------------------------------------------------------------------ */
typedef struct {
    double key;
    int pos;
} Ranked;

/* descending key, ties by position */
static int cmp_desc(const void *a, const void *b) {
    const Ranked *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

int curate_divpo_select(CuratePair *out, const double *scores, int n, double rho, int max_pairs,
                        CurateDiversityFn div, void *ctx, TaRng *rng, TaError *err) {
    if (n < 2 || max_pairs < 1) return 0;
    /* k = int(min(max(max_pair_num, n * rho / 100), n / 2)); m = min(max_pair_num, k) */
    int k = (int)fmin(fmax((double)max_pairs, (double)n * rho / 100.0), (double)n / 2.0);
    int m = max_pairs < k ? max_pairs : k;
    if (m < 1) return 0;
    Ranked *r = ta_malloc((size_t)n * sizeof(Ranked), "divpo");
    for (int i = 0; i < n; i++) r[i].key = scores[i], r[i].pos = i;
    qsort(r, (size_t)n, sizeof(Ranked), cmp_desc); /* order by score desc, ties by index */
    int *high = ta_malloc((size_t)k * sizeof(int), "divpo");
    int *low = ta_malloc((size_t)k * sizeof(int), "divpo");
    for (int t = 0; t < k; t++) high[t] = r[t].pos, low[t] = r[n - 1 - t].pos;
    double *dh = ta_malloc((size_t)k * sizeof(double), "divpo");
    double *dl = ta_malloc((size_t)k * sizeof(double), "divpo");
    Ranked *q = ta_malloc((size_t)k * sizeof(Ranked), "divpo");
    uint32_t *ch = ta_malloc((size_t)m * sizeof(uint32_t), "divpo");
    uint32_t *rj = ta_malloc((size_t)m * sizeof(uint32_t), "divpo");
    int rc = m;
    if (div(dh, high, k, ctx, err) != TA_OK || div(dl, low, k, ctx, err) != TA_OK) {
        rc = -1;
        goto end;
    }
    /* the m most diverse of High */
    for (int t = 0; t < k; t++) q[t].key = dh[t], q[t].pos = t;
    qsort(q, (size_t)k, sizeof(Ranked), cmp_desc);
    for (int t = 0; t < m; t++) ch[t] = (uint32_t)high[q[t].pos];
    /* the m least diverse of Low (ascending key = descending -key; ties by position) */
    for (int t = 0; t < k; t++) q[t].key = -dl[t], q[t].pos = t;
    qsort(q, (size_t)k, sizeof(Ranked), cmp_desc);
    for (int t = 0; t < m; t++) rj[t] = (uint32_t)low[q[t].pos];
    ta_rng_shuffle_u32(rng, ch, (size_t)m);
    ta_rng_shuffle_u32(rng, rj, (size_t)m);
    for (int t = 0; t < m; t++) out[t].chosen = (int)ch[t], out[t].rejected = (int)rj[t];
end:
    free(r);
    free(high);
    free(low);
    free(dh);
    free(dl);
    free(q);
    free(ch);
    free(rj);
    return rc;
}
