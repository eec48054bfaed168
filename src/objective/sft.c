/* sft.c — the two plain likelihood heads.
 *
 *   pretrain  L = -(1/N) Σ logp[b,t] over every position with a target (target >= 0),
 *             N = target positions of the whole step (token mean over the big batch).
 *   sft       L = -(1/N) Σ_rows w_r Σ logp[r,t] over completion tokens (loss_mask), w_r the
 *             row's "weight" (1 without one), N = completion tokens of the step's rows
 *             with w_r > 0.
 *
 * PyTorch: F.cross_entropy(logits.view(-1, V), targets.view(-1), ignore_index=-1,
 * reduction="none") * w[row], summed, / N, with targets of prompt tokens set to -1 for sft.
 * dL/dlogp = -w_r/N on every counted token of row r (the row helper spreads it).
 *
 * Why this normaliser. A weight scales its row's token losses and the step still divides
 * by a token COUNT (not by Σ w n): so (1) a weight is an absolute factor: 0.5 pulls half as
 * hard as 1 whatever else shares the batch, and scaling every weight by c scales the loss
 * by c (with / Σ w_r n_r the weights would only be relative within a step, and a batch of
 * one row would ignore its weight); (2) weight-1 data are bit-identical to plain SFT (w = 1
 * multiplies exactly, N is the same count); (3) N is a sum over the whole step taken
 * before any forward, so K micro-batches give exactly one big batch's gradient; (4) a
 * weight-0 row contributes nothing, not even to N: it is as if absent. (A row of weight
 * 1e-9 does count in N: the only discontinuity, at exactly 0.) A step whose rows all weigh 0
 * has loss 0 and a zero gradient.
 * With objective.attribute the NLL is also reported as nll_loss; the KL term is added by
 * the logit head (attribute.c) over the same tokens with the same N. Rows that feed the
 * KL only (Batch.feeds, a data.train source with "loss": "kl") have NLL weight 0 here:
 * they are not in N and add nothing to the NLL (attribute.c normalises the KL).
 */
#include "objective_impl.h"

void obj_pretrain(const CfgObjective *o, const Batch *b, const ObjIO *io,
                  const ObjectiveNorm *n, ObjectiveStats *st) {
    double inv = 1.0 / n->n_full_tokens;
    for (int r = 0; r < b->B; r++) {
        ObjRowSums s;
        obj_row_sums(io, b, r, &s);
        st->loss += -s.s_full * inv;
        if (objective_needs_guide(o)) st->nll += -s.s_full * inv;
        st->tokens += s.n_full;
        obj_write_row(io, b, r, -inv, -inv);
    }
}

void obj_sft(const CfgObjective *o, const Batch *b, const ObjIO *io, const ObjectiveNorm *n,
             ObjectiveStats *st) {
    double inv = n->n_loss_tokens_w > 0 ? 1.0 / n->n_loss_tokens_w : 0.0;
    for (int r = 0; r < b->B; r++) {
        ObjRowSums s;
        obj_row_sums(io, b, r, &s);
        const double w = obj_row_weight(b, r); /* x * 1.0 == x: weight-1 rows keep their bits */
        st->loss += -s.s_resp * inv * w;
        if (objective_needs_guide(o)) st->nll += -s.s_resp * inv * w;
        st->tokens += s.n_resp;
        obj_write_row(io, b, r, -inv * w, 0.0);
    }
}
