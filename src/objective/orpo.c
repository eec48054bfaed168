/* orpo.c — ORPO (Hong et al. 2024, arXiv 2403.07691) and DORPO (Chung et al. 2025,
 * arXiv 2503.17126), written from the formulas.
 *
 * Per pair i (chosen row i, rejected row P+i), A = mean logp over the row's response
 * tokens (loss_mask), P = e^A the geometric-mean token probability:
 *   logodds(A) = A - log(1 - e^A)       log(1 - e^A) by obj_log1mexp: log(-expm1(A)) for
 *                                        A > -ln 2, log1p(-exp(A)) otherwise
 *   A is clamped to A <= -c (c = odds_clamp, default 1e-6) before the log-odds: at A -> 0
 *   (a memorised chosen response) log(1 - e^A) -> -inf and 1/(1-P) explodes. The clamp is
 *   a real clamp: where it is active that row's odds-ratio gradient is 0 (torch.clamp's
 *   derivative); the reference codes do not clamp and produce inf/NaN there.
 *   z = logodds(A_w) - logodds(A_l)
 *   orpo   L = NLL + λ (1/N_pairs) Σ_i -logσ(z_i)
 *          NLL = -(1/N) Σ logp over the chosen rows' response tokens (nll_scope response,
 *          N = chosen response tokens of the step) or all their target tokens, prompt
 *          included (nll_scope full, N = chosen target tokens of the step: TRL's ORPOTrainer)
 *   dorpo  weight w_i inside the sigmoid: ℓ_or,i = -logσ(w_i z_i), and on the NLL:
 *          clean (default)   L = (1/N_pairs) Σ_i [ w_i NLL_i + λ ℓ_or,i ],  NLL_i = the mean
 *                            NLL over row i's own tokens (response, or full with nll_scope full)
 *          quirk (dorpo_match_trl_quirk, the reference DORPO code)
 *                            L = mean_step(w) · NLL_full + λ (1/N_pairs) Σ_i ℓ_or,i
 *                            NLL_full = token mean over prompt+response of the chosen rows
 *                            (nll_scope is ignored), mean_step(w) = Σw / N_pairs of the step
 *
 * Backward: dlogodds/dA = 1/(1-e^A) = -1/expm1(A);
 *   dℓ_or/dz = -w σ(-w z);  dA/dlogp = 1/|y| per response token.
 * Metrics as TRL's ORPOTrainer: rewards = λ A (no reference), logps = A, log_odds_chosen = z,
 * log_odds_ratio = logσ(w z), nll_loss = the unweighted NLL as normalised above.
 */
#include <math.h>

#include "objective_impl.h"

/* logodds of the clamped mean log-prob, and its derivative w.r.t. the unclamped A. */
static double log_odds(double A, double clamp, double *dA) {
    double a = A;
    int clamped = a > -clamp;
    if (clamped) a = -clamp;
    *dA = clamped ? 0.0 : -1.0 / expm1(a);
    return a - obj_log1mexp(a);
}

void obj_orpo(const CfgObjective *o, const Batch *b, const ObjIO *io, const ObjectiveNorm *n,
              ObjectiveStats *st) {
    int P = b->n_pairs;
    int dorpo = o->type == CFG_OBJ_DORPO;
    int quirk = dorpo && o->dorpo_match_trl_quirk;
    int full = quirk || o->nll_scope == CFG_NLL_FULL;
    double inv_pairs = 1.0 / n->n_pairs;
    double lambda = o->lambda;
    /* token normaliser of the batch-level NLL (orpo, dorpo quirk) */
    double inv_nll_tokens = 1.0 / (full ? n->n_full_tokens_chosen : n->n_loss_tokens_chosen);
    double mean_w = quirk ? n->sum_weights / n->n_pairs : 1.0;
    for (int i = 0; i < P; i++) {
        int rw = i, rl = P + i;
        ObjRowSums sw, sl;
        obj_row_sums(io, b, rw, &sw);
        obj_row_sums(io, b, rl, &sl);
        double Aw = sw.s_resp / sw.n_resp, Al = sl.s_resp / sl.n_resp;
        double dlo_w, dlo_l;
        double z = log_odds(Aw, o->odds_clamp, &dlo_w) - log_odds(Al, o->odds_clamp, &dlo_l);
        double w = dorpo ? (double)b->weights[i] : 1.0;
        double lor = obj_log_sigmoid(w * z);
        st->loss += lambda * -lor * inv_pairs;
        double gz = lambda * (-w * obj_sigmoid(-w * z)) * inv_pairs; /* dL/dz */
        double gw = gz * dlo_w / sw.n_resp;                         /* per chosen response token */
        double gl = -gz * dlo_l / sl.n_resp;                        /* per rejected response token */

        /* the NLL on the chosen row */
        double nll_sum = -(full ? sw.s_full : sw.s_resp);
        double g_nll; /* dL/dlogp on each NLL token */
        if (dorpo && !quirk) {
            double inv_row = 1.0 / (full ? sw.n_full : sw.n_resp);
            double nll_i = nll_sum * inv_row;
            st->loss += w * nll_i * inv_pairs;
            st->nll += nll_i * inv_pairs;
            g_nll = -w * inv_row * inv_pairs;
        } else {
            st->loss += mean_w * nll_sum * inv_nll_tokens;
            st->nll += nll_sum * inv_nll_tokens;
            g_nll = -mean_w * inv_nll_tokens;
        }
        obj_write_row(io, b, rw, gw + g_nll, full ? g_nll : 0.0);
        obj_write_row(io, b, rl, gl, 0.0);

        st->pairs += 1;
        st->tokens += sw.n_resp + sl.n_resp;
        st->reward_chosen += lambda * Aw;
        st->reward_rejected += lambda * Al;
        st->reward_correct += lambda * Aw > lambda * Al;
        st->logp_chosen += Aw;
        st->logp_rejected += Al;
        st->log_odds_ratio += lor;
        st->log_odds_chosen += z;
        st->weight += w;
    }
}
