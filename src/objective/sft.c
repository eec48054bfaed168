/* sft.c — the two plain likelihood heads.
 *
 *   pretrain  L = -(1/N) Σ logp[b,t] over every position with a target (target >= 0),
 *             N = target positions of the whole step (token mean over the big batch).
 *   sft       the same over completion tokens only (loss_mask), N = loss tokens of the step.
 *
 * PyTorch: F.cross_entropy(logits.view(-1, V), targets.view(-1), ignore_index=-1,
 * reduction="sum") / N, with targets of prompt tokens set to -1 for sft.
 * dL/dlogp = -1/N on every counted token (the row helper spreads it).
 * With objective.attribute the NLL is also reported as nll_loss; the KL term is added by
 * the logit head (attribute.c) over the same tokens with the same N.
 */
#include "objective_impl.h"

void obj_pretrain(const CfgObjective *o, const Batch *b, const ObjIO *io,
                  const ObjectiveNorm *n, ObjectiveStats *st) {
    double inv = 1.0 / n->n_full_tokens;
    for (int r = 0; r < b->B; r++) {
        ObjRowSums s;
        obj_row_sums(io, b, r, &s);
        st->loss += -s.s_full * inv;
        if (objective_has_logit_head(o)) st->nll += -s.s_full * inv;
        st->tokens += s.n_full;
        obj_write_row(io, b, r, -inv, -inv);
    }
}

void obj_sft(const CfgObjective *o, const Batch *b, const ObjIO *io, const ObjectiveNorm *n,
             ObjectiveStats *st) {
    double inv = 1.0 / n->n_loss_tokens;
    for (int r = 0; r < b->B; r++) {
        ObjRowSums s;
        obj_row_sums(io, b, r, &s);
        st->loss += -s.s_resp * inv;
        if (objective_has_logit_head(o)) st->nll += -s.s_resp * inv;
        st->tokens += s.n_resp;
        obj_write_row(io, b, r, -inv, 0.0);
    }
}
