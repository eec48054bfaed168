/* dpo.c — DPO (Rafailov et al. 2023, arXiv 2305.18290) and its variants, and DDPO
 * (Chung et al. 2025, arXiv 2503.17126): the pair losses of
 * TRL's DPOTrainer.dpo_loss, written from the formulas.
 *
 * Per pair i (chosen row i, rejected row P+i), with S = Σ_{response tokens} logp and
 * Sref the reference's same sum (ref_seq_logp):
 *   Δ = (S_w - Sref_w) - (S_l - Sref_l),  u = β Δ
 *   sigmoid  ℓ = -(1-ε) logσ(u) - ε logσ(-u)              (ε = label_smoothing: cDPO; ε=0: DPO)
 *   robust   ℓ = (-(1-ε) logσ(u) + ε logσ(-u)) / (1-2ε)   (TRL "robust", Chowdhury et al. rDPO)
 *   hinge    ℓ = max(0, 1 - u)                            (SLiC; ε ignored)
 *   ipo      ℓ = (Δ - 1/(2β))^2 with S and Sref the MEAN over response tokens instead of the
 *            sum (TRL averages log-probs for ipo only; ε ignored)
 *   L = (1/N_pairs) Σ_i w_i ℓ_i  +  sft_weight · (-(1/N_c) Σ_{chosen response tokens} logp)
 * where w_i = 1 for dpo and the pair weight for ddpo (outside the loss, plain mean over
 * pairs, not divided by Σw), N_pairs and N_c (chosen response tokens) are over the step.
 * The sft_weight term is TRL's rpo_alpha NLL (token mean over the chosen completions).
 *
 * Backward: dℓ/dΔ = β dℓ/du for sigmoid/robust/hinge with
 *   sigmoid dℓ/du = -(1-ε) σ(-u) + ε σ(u)
 *   robust  dℓ/du = (-(1-ε) σ(-u) - ε σ(u)) / (1-2ε)
 *   hinge   dℓ/du = -1 if u < 1 else 0          (0 at the kink, as torch.relu)
 *   ipo     dℓ/dΔ = 2 (Δ - 1/(2β))
 * dS_w = +dΔ, dS_l = -dΔ, and dS/dlogp = 1 per response token (ipo: 1/|y|).
 * Implicit rewards (metrics): r = β (S - Sref) (ipo: with the means).
 */
#include <math.h>

#include "objective_impl.h"

/* Pair loss ℓ(Δ) and dℓ/dΔ for the configured loss type. */
static double pair_loss(const CfgObjective *o, double delta, double *dldelta) {
    double beta = o->beta, eps = o->label_smoothing;
    double u = beta * delta;
    switch (o->loss_type) {
    case CFG_LOSS_SIGMOID:
        *dldelta = beta * (-(1.0 - eps) * obj_sigmoid(-u) + eps * obj_sigmoid(u));
        return -(1.0 - eps) * obj_log_sigmoid(u) - eps * obj_log_sigmoid(-u);
    case CFG_LOSS_ROBUST:
        *dldelta = beta * (-(1.0 - eps) * obj_sigmoid(-u) - eps * obj_sigmoid(u)) / (1.0 - 2.0 * eps);
        return (-(1.0 - eps) * obj_log_sigmoid(u) + eps * obj_log_sigmoid(-u)) / (1.0 - 2.0 * eps);
    case CFG_LOSS_HINGE:
        *dldelta = u < 1.0 ? -beta : 0.0;
        return u < 1.0 ? 1.0 - u : 0.0;
    case CFG_LOSS_IPO: {
        double d = delta - 1.0 / (2.0 * beta);
        *dldelta = 2.0 * d;
        return d * d;
    }
    }
    TA_ASSERT(0 && "unknown loss type");
    return 0.0;
}

void obj_dpo(const CfgObjective *o, const Batch *b, const ObjIO *io, const ObjectiveNorm *n,
             ObjectiveStats *st) {
    int P = b->n_pairs;
    int ipo = o->loss_type == CFG_LOSS_IPO;
    int weighted = o->type == CFG_OBJ_DDPO;
    double inv_pairs = 1.0 / n->n_pairs;
    double inv_chosen_tokens = o->sft_weight > 0 ? 1.0 / n->n_loss_tokens_chosen : 0.0;
    for (int i = 0; i < P; i++) {
        int rw = i, rl = P + i;
        ObjRowSums sw, sl;
        obj_row_sums(io, b, rw, &sw);
        obj_row_sums(io, b, rl, &sl);
        /* ipo works on per-token means of policy and reference alike */
        double scale_w = ipo ? 1.0 / sw.n_resp : 1.0, scale_l = ipo ? 1.0 / sl.n_resp : 1.0;
        /* The float path's reference sums arrive rounded to float (objective_sequence_logps
         * of the reference model): round the policy's sums the same way, so that a policy
         * equal to its reference gives exactly Δ = 0 and zero rewards. */
        double pw = io->ref_f ? (double)(float)sw.s_resp : sw.s_resp;
        double pl = io->ref_f ? (double)(float)sl.s_resp : sl.s_resp;
        double Sw = pw * scale_w, Sl = pl * scale_l;
        double Rw = obj_ref(io, rw) * scale_w, Rl = obj_ref(io, rl) * scale_l;
        double delta = (Sw - Rw) - (Sl - Rl);
        double dl = 0.0;
        double l = pair_loss(o, delta, &dl);
        double w = weighted ? (double)b->weights[i] : 1.0;
        st->loss += w * l * inv_pairs;
        double gdelta = w * dl * inv_pairs; /* dL/dΔ */
        double gw = gdelta * scale_w, gl = -gdelta * scale_l;
        if (o->sft_weight > 0) {
            double nll = -sw.s_resp * inv_chosen_tokens;
            st->loss += o->sft_weight * nll;
            st->nll += nll;
            gw += -o->sft_weight * inv_chosen_tokens;
        }
        obj_write_row(io, b, rw, gw, 0.0);
        obj_write_row(io, b, rl, gl, 0.0);

        double rew_w = o->beta * (Sw - Rw), rew_l = o->beta * (Sl - Rl);
        st->pairs += 1;
        st->tokens += sw.n_resp + sl.n_resp;
        st->reward_chosen += rew_w;
        st->reward_rejected += rew_l;
        st->reward_correct += rew_w > rew_l;
        st->logp_chosen += Sw;
        st->logp_rejected += Sl;
        st->weight += w;
    }
}
