/* reward.c — the reward model's loss: the Bradley-Terry pairwise loss of TRL's
 * RewardTrainer, written from the formula (see objective_scores_forward_backward in
 * include/tinyalign/objective.h for the contract).
 *
 * Per pair i (chosen row i, rejected row P+i), rewards r_c, r_r read by the score head at
 * each row's last token, margin m_i (the pair's "margin" field, 0 without one):
 *   Delta = r_c - r_r - m
 *   l_i   = -log sigmoid(Delta) + coef (r_c + r_r)^2          (coef = center_rewards_coefficient)
 *   L     = (1/N_pairs) sum_i l_i                              (N_pairs over the whole step)
 * PyTorch (TRL): loss = -F.logsigmoid(r_c - r_r - margin).mean()
 *                       + coef * torch.mean((r_c + r_r) ** 2)
 * Backward, on paper:
 *   d(-log sigmoid(u))/du = -(1 - sigmoid(u)) = -sigmoid(-u),  dDelta/dr_c = 1, dDelta/dr_r = -1
 *   d(coef (r_c + r_r)^2)/dr_c = d/dr_r = 2 coef (r_c + r_r)
 *   dL/dr_c = (-sigmoid(-Delta) + 2 coef (r_c + r_r)) / N_pairs
 *   dL/dr_r = (+sigmoid(-Delta) + 2 coef (r_c + r_r)) / N_pairs
 * and the model takes it from there (gpt2_score_backward: the score head's gradient and
 * d(hidden at the last token) down the trunk).
 * log sigmoid and sigmoid are the overflow-free forms of objective.c. Pair weights are not
 * used (TRL has none); the "accuracy" metric compares r_c > r_r without the margin, as
 * TRL's compute_accuracy compares the two rewards.
 */
#include "objective_impl.h"

static double io_score(const ObjIO *io, int r) {
    return io->score_f ? (double)io->score_f[r] : io->score_d[r];
}

static void io_dscore(const ObjIO *io, int r, double g) {
    if (io->dscore_f) io->dscore_f[r] = (float)g;
    else if (io->dscore_d) io->dscore_d[r] = g;
}

void obj_reward(const CfgObjective *o, const Batch *b, const ObjIO *io, const ObjectiveNorm *n,
                ObjectiveStats *st) {
    const int P = b->n_pairs;
    const double inv = 1.0 / n->n_pairs, coef = o->center_rewards_coefficient;
    for (int i = 0; i < P; i++) {
        const double rc = io_score(io, i), rr = io_score(io, P + i);
        const double m = b->margins ? (double)b->margins[i] : 0.0;
        const double delta = rc - rr - m, sum = rc + rr;
        st->loss += (-obj_log_sigmoid(delta) + coef * sum * sum) * inv;
        const double s = obj_sigmoid(-delta), center = 2.0 * coef * sum;
        io_dscore(io, i, (-s + center) * inv);
        io_dscore(io, P + i, (s + center) * inv);
        st->pairs += 1;
        st->reward_chosen += rc;
        st->reward_rejected += rr;
        st->reward_correct += rc > rr;
    }
}
