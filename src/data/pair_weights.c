/* pair_weights.c — what the chosen weights of a preference set do to a deviation-weighted
 * run (DDPO / DORPO, Chung et al. 2025, arXiv 2503.17126): how many pairs weigh exactly 0
 * (the least deviating response of a prompt: its pair adds nothing to the DDPO loss, and
 * only its NLL vanishes in DORPO) and whether the weights differ at all (all equal: the
 * weighting favours no pair, so the run is DPO / ORPO). One summary, printed by both
 * `curate pairs` (as it writes the pairs) and `train` (as it reads them).
 * Not here: computing the weights (src/curate/deviation.c). */
#include <stdio.h>

#include "tinyalign/data.h"

void pair_weights_add(PairWeightStats *s, double w) {
    if (s->pairs == 0 || w < s->min) s->min = w;
    if (s->pairs == 0 || w > s->max) s->max = w;
    s->pairs++;
    s->zero += w == 0.0;
}

void pair_weights_describe(const PairWeightStats *s, char *buf, size_t cap) {
    double share = s->pairs ? 100.0 * (double)s->zero / (double)s->pairs : 0.0;
    snprintf(buf, cap, "chosen weight 0 in %zu of %zu pairs (%.1f%%), weights in [%.4g, %.4g]",
             s->zero, s->pairs, share, s->min, s->max);
}
