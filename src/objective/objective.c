/* objective.c — the loss-head dispatcher: batch validation, the step normalisers, the
 * finite checks, float/double plumbing, and the TRL-named metrics. The math of each loss
 * family lives in sft.c (pretrain, sft), dpo.c (dpo, ddpo), orpo.c (orpo, dorpo),
 * reward.c (the reward model), attribute.c (the logit head: the attribute-control KL) and
 * nado.c (the NADO head).
 *
 * Validation happens before anything is written, so an error leaves dlogp and the stats
 * untouched: a malformed batch is TA_EINPUT (the data is wrong), a non-finite log-prob or
 * reference value is TA_ERUNTIME (the model diverged) — never a silent NaN.
 */
#include <math.h>
#include <string.h>

#include "objective_impl.h"

static const char *type_name(CfgObjectiveType t) {
    switch (t) {
    case CFG_OBJ_PRETRAIN: return "pretrain";
    case CFG_OBJ_SFT: return "sft";
    case CFG_OBJ_DPO: return "dpo";
    case CFG_OBJ_ORPO: return "orpo";
    case CFG_OBJ_DDPO: return "ddpo";
    case CFG_OBJ_DORPO: return "dorpo";
    case CFG_OBJ_NADO: return "nado";
    case CFG_OBJ_REWARD: return "reward";
    }
    return "?";
}

int objective_needs_reference(const CfgObjective *o) {
    return o->type == CFG_OBJ_DPO || o->type == CFG_OBJ_DDPO;
}

int objective_uses_score_head(const CfgObjective *o) { return o->type == CFG_OBJ_REWARD; }

int objective_needs_guide(const CfgObjective *o) {
    return o->attribute.guide && o->attribute.guide[0];
}

int objective_has_logit_head(const CfgObjective *o) {
    return objective_needs_guide(o) || o->type == CFG_OBJ_NADO;
}

int objective_needs_base(const CfgObjective *o) {
    return o->type == CFG_OBJ_NADO ||
           (objective_needs_guide(o) && o->attribute.q_base == CFG_QBASE_BASE);
}

int objective_is_pairwise(const CfgObjective *o) {
    return o->type == CFG_OBJ_DPO || o->type == CFG_OBJ_DDPO || o->type == CFG_OBJ_ORPO ||
           o->type == CFG_OBJ_DORPO || o->type == CFG_OBJ_REWARD;
}

static int is_weighted(const CfgObjective *o) {
    return o->type == CFG_OBJ_DDPO || o->type == CFG_OBJ_DORPO;
}

static const char *const METRIC_NAMES[OBJ_METRIC_COUNT] = {
    "loss",           "nll_loss",       "rewards/chosen",  "rewards/rejected",
    "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected",
    "log_odds_ratio", "log_odds_chosen", "weights/mean", "kl",
    "bce",            "consistency",    "accuracy",
};

const char *objective_metric_name(ObjectiveMetricId id) {
    TA_ASSERT(id >= 0 && id < OBJ_METRIC_COUNT);
    return METRIC_NAMES[id];
}

/* ---- shared row helpers (objective_impl.h) ------------------------------------------ */

static double io_logp(const ObjIO *io, size_t i) {
    return io->logp_f ? (double)io->logp_f[i] : io->logp_d[i];
}

void obj_row_sums(const ObjIO *io, const Batch *b, int row, ObjRowSums *out) {
    memset(out, 0, sizeof *out);
    size_t base = (size_t)row * b->T;
    for (int t = 0; t < b->T; t++) {
        size_t i = base + t;
        if (b->targets[i] < 0) continue;
        double lp = io_logp(io, i);
        out->s_full += lp;
        out->n_full++;
        if (b->loss_mask && b->loss_mask[i]) {
            out->s_resp += lp;
            out->n_resp++;
        }
    }
}

static double row_weight(const Batch *b, int r) { return b->weights ? (double)b->weights[r] : 1.0; }
double obj_row_weight(const Batch *b, int r) {
    return b->feeds && b->feeds[r] == ROW_FEEDS_KL ? 0.0 : row_weight(b, r);
}
double obj_row_kl_weight(const Batch *b, int r) {
    return b->feeds && b->feeds[r] == ROW_FEEDS_NLL ? 0.0 : row_weight(b, r);
}

double obj_ref(const ObjIO *io, int row) {
    TA_ASSERT(io->ref_f || io->ref_d);
    return io->ref_f ? (double)io->ref_f[row] : io->ref_d[row];
}

void obj_write_row(const ObjIO *io, const Batch *b, int row, double g_resp, double g_other) {
    if (!io->dlogp_f && !io->dlogp_d) return;
    size_t base = (size_t)row * b->T;
    for (int t = 0; t < b->T; t++) {
        size_t i = base + t;
        double g = b->targets[i] < 0 ? 0.0 : (b->loss_mask && b->loss_mask[i]) ? g_resp : g_other;
        if (io->dlogp_f) io->dlogp_f[i] = (float)g;
        else io->dlogp_d[i] = g;
    }
}

/* log σ(u) = -softplus(-u) = min(u, 0) - log1p(exp(-|u|)): no overflow for any u. */
double obj_log_sigmoid(double u) { return (u < 0 ? u : 0.0) - log1p(exp(-fabs(u))); }

double obj_sigmoid(double u) {
    if (u >= 0) return 1.0 / (1.0 + exp(-u));
    double e = exp(u);
    return e / (1.0 + e);
}

/* log(1 - e^a) for a < 0: log(-expm1(a)) near 0 (a > -ln 2), where 1 - e^a cancels;
 * log1p(-exp(a)) further out, where e^a is small (Mächler 2012, "Accurately computing log(1 - exp(-|a|))", the
 * Rmpfr package vignette). */
double obj_log1mexp(double a) {
    return a > -M_LN2 ? log(-expm1(a)) : log1p(-exp(a));
}

/* ---- validation and counts ---------------------------------------------------------- */

static int check_config(const CfgObjective *o, TaError *err) {
    const char *tn = type_name(o->type);
    if (o->type < CFG_OBJ_PRETRAIN || o->type > CFG_OBJ_NADO)
        return ta_err(err, TA_EINPUT, "objective.type: unknown objective %d", (int)o->type);
    if (o->type == CFG_OBJ_DPO || o->type == CFG_OBJ_DDPO) {
        if (!(o->beta > 0) || !isfinite(o->beta))
            return ta_err(err, TA_EINPUT, "objective.beta: %s needs a finite beta > 0, got %g", tn,
                          o->beta);
        if (!(o->label_smoothing >= 0 && o->label_smoothing < 0.5))
            return ta_err(err, TA_EINPUT,
                          "objective.label_smoothing: expected 0 <= eps < 0.5, got %g",
                          o->label_smoothing);
        if (!(o->sft_weight >= 0) || !isfinite(o->sft_weight))
            return ta_err(err, TA_EINPUT, "objective.sft_weight: expected >= 0, got %g",
                          o->sft_weight);
        if (o->loss_type < CFG_LOSS_SIGMOID || o->loss_type > CFG_LOSS_ROBUST)
            return ta_err(err, TA_EINPUT, "objective.loss_type: unknown loss type %d",
                          (int)o->loss_type);
    }
    if (o->type == CFG_OBJ_ORPO || o->type == CFG_OBJ_DORPO) {
        if (!(o->lambda >= 0) || !isfinite(o->lambda))
            return ta_err(err, TA_EINPUT, "objective.lambda: expected >= 0, got %g", o->lambda);
        if (!(o->odds_clamp > 0) || !isfinite(o->odds_clamp))
            return ta_err(err, TA_EINPUT, "objective.odds_clamp: expected > 0, got %g",
                          o->odds_clamp);
    }
    if (o->type == CFG_OBJ_NADO && (!(o->nado.alpha_reg >= 0) || !isfinite(o->nado.alpha_reg)))
        return ta_err(err, TA_EINPUT, "objective.nado.alpha_reg: expected >= 0, got %g",
                      o->nado.alpha_reg);
    if (o->type == CFG_OBJ_REWARD && (!(o->center_rewards_coefficient >= 0) ||
                                      !isfinite(o->center_rewards_coefficient)))
        return ta_err(err, TA_EINPUT,
                      "objective.center_rewards_coefficient: expected >= 0, got %g",
                      o->center_rewards_coefficient);
    if (objective_needs_guide(o)) {
        if (o->type != CFG_OBJ_SFT && o->type != CFG_OBJ_PRETRAIN)
            return ta_err(err, TA_EINPUT,
                          "objective.attribute.guide: applies to sft and pretrain, not %s", tn);
        if (!(o->attribute.lambda >= 0) || !isfinite(o->attribute.lambda))
            return ta_err(err, TA_EINPUT, "objective.attribute.lambda: expected >= 0, got %g",
                          o->attribute.lambda);
    }
    return TA_OK;
}

int objective_check_batch(const CfgObjective *o, const Batch *b, TaError *err) {
    const char *tn = type_name(o->type);
    int rc = check_config(o, err);
    if (rc) return rc;
    if (b->B <= 0 || b->T <= 0 || !b->targets)
        return ta_err(err, TA_EINPUT, "%s: empty batch (B=%d, T=%d)", tn, b->B, b->T);
    int needs_mask = o->type != CFG_OBJ_PRETRAIN;
    if (needs_mask && !b->loss_mask)
        return ta_err(err, TA_EINPUT, "%s: the batch has no loss mask (completion tokens)", tn);
    if (b->loss_mask) {
        for (int r = 0; r < b->B; r++)
            for (int t = 0; t < b->T; t++) {
                size_t i = (size_t)r * b->T + t;
                if (b->loss_mask[i] && b->targets[i] < 0)
                    return ta_err(err, TA_EINPUT,
                                  "%s: batch row %d position %d: loss_mask set where there is "
                                  "no target (padding)", tn, r, t);
            }
    }
    if (o->type == CFG_OBJ_NADO) {
        if (!b->labels)
            return ta_err(err, TA_EINPUT, "nado: the batch carries no sequence labels");
        for (int r = 0; r < b->B; r++)
            if (b->labels[r] != 0.0f && b->labels[r] != 1.0f)
                return ta_err(err, TA_EINPUT,
                              "nado: batch row %d: label %g, expected 0 or 1 (the response's "
                              "\"score\" from a 0/1 oracle)", r, (double)b->labels[r]);
    }
    for (int r = 0; b->feeds && r < b->B; r++)
        if (b->feeds[r] != ROW_FEEDS_ALL && !(o->type == CFG_OBJ_SFT && objective_needs_guide(o)))
            return ta_err(err, TA_EINPUT,
                          "%s: batch row %d feeds the attribute %s term only (a data.train "
                          "source with \"loss\": \"%s\"), which needs objective sft with "
                          "objective.attribute.guide", tn, r,
                          b->feeds[r] == ROW_FEEDS_KL ? "KL" : "NLL",
                          b->feeds[r] == ROW_FEEDS_KL ? "kl" : "nll");
    if (o->type == CFG_OBJ_SFT && b->weights)
        for (int r = 0; r < b->B; r++)
            if (!isfinite(b->weights[r]) || b->weights[r] < 0)
                return ta_err(err, TA_EINPUT, "sft: batch row %d: weight %g (expected finite and "
                              ">= 0)", r, (double)b->weights[r]);
    if (objective_uses_score_head(o)) {
        if (b->layout != ROWS_SCORE || !b->lengths)
            return ta_err(err, TA_EINPUT, "%s: the batch is not in the scoring layout (each "
                          "row's last token as an input)", tn);
        for (int r = 0; r < b->B; r++)
            if (b->lengths[r] < 0 || b->lengths[r] >= b->T)
                return ta_err(err, TA_EINPUT, "%s: batch row %d: last position %d outside "
                              "[0, %d)", tn, r, b->lengths[r], b->T);
        for (int r = 0; b->margins && r < b->B; r++)
            if (!isfinite(b->margins[r]))
                return ta_err(err, TA_EINPUT, "%s: batch row %d: margin %g is not finite", tn, r,
                              (double)b->margins[r]);
    } else if (b->layout != ROWS_LM) {
        return ta_err(err, TA_EINPUT, "%s: the batch is in the scoring layout; this objective "
                      "reads next-token log-probs", tn);
    }
    if (!objective_is_pairwise(o)) return TA_OK;
    int P = b->n_pairs;
    if (P <= 0 || b->B != 2 * P)
        return ta_err(err, TA_EINPUT,
                      "%s: expected a preference batch of 2 x n_pairs rows (chosen then "
                      "rejected), got B=%d rows and n_pairs=%d", tn, b->B, P);
    for (int r = 0; r < b->B; r++) {
        int n = 0;
        for (int t = 0; t < b->T; t++) n += b->loss_mask[(size_t)r * b->T + t] != 0;
        if (n == 0)
            return ta_err(err, TA_EINPUT,
                          "%s: pair %d: the %s response (batch row %d) has no completion "
                          "tokens (loss_mask all 0); its log-prob is undefined", tn,
                          r % P, r < P ? "chosen" : "rejected", r);
    }
    if (is_weighted(o)) {
        if (!b->weights)
            return ta_err(err, TA_EINPUT, "%s: the batch carries no pair weights", tn);
        for (int i = 0; i < P; i++)
            if (!isfinite(b->weights[i]) || b->weights[i] < 0)
                return ta_err(err, TA_EINPUT,
                              "%s: pair %d: weight %g (expected finite and >= 0)", tn, i,
                              (double)b->weights[i]);
    }
    return TA_OK;
}

static void count_batch(ObjectiveNorm *n, const CfgObjective *o, const Batch *b) {
    int pairwise = objective_is_pairwise(o);
    int P = pairwise ? b->n_pairs : 0;
    n->n_rows += b->B;
    n->n_pairs += P;
    for (int r = 0; r < b->B; r++) {
        double full = 0, resp = 0;
        for (int t = 0; t < b->T; t++) {
            size_t i = (size_t)r * b->T + t;
            if (b->targets[i] < 0) continue;
            full += 1;
            if (b->loss_mask && b->loss_mask[i]) resp += 1;
        }
        n->n_full_tokens += full;
        n->n_loss_tokens += resp;
        if (obj_row_weight(b, r) > 0) n->n_loss_tokens_w += resp;
        if (obj_row_kl_weight(b, r) > 0) n->n_kl_tokens_w += resp;
        if (pairwise && r < P) {
            n->n_full_tokens_chosen += full;
            n->n_loss_tokens_chosen += resp;
            n->sum_weights += b->weights ? (double)b->weights[r] : 1.0;
        }
    }
}

int objective_norm_add(ObjectiveNorm *n, const CfgObjective *o, const Batch *b, TaError *err) {
    int rc = objective_check_batch(o, b, err);
    if (rc) return rc;
    count_batch(n, o, b);
    return TA_OK;
}

/* ---- the loss head ------------------------------------------------------------------ */

static int forward_backward(const CfgObjective *o, const Batch *b, const ObjIO *io,
                            const ObjectiveNorm *norm, ObjectiveStats *stats, TaError *err) {
    const char *tn = type_name(o->type);
    int rc = objective_check_batch(o, b, err);
    if (rc) return rc;
    int has_ref = io->ref_f || io->ref_d;
    if (objective_needs_reference(o) && !has_ref)
        return ta_err(err, TA_EINPUT,
                      "%s: needs the reference model's sequence log-probs, none given", tn);

    /* The step's normaliser must contain this micro-batch (objective_norm_add was called
     * for it); otherwise the gradient scale would be wrong or infinite. */
    ObjectiveNorm mine = {0};
    count_batch(&mine, o, b);
    if (norm->n_rows < mine.n_rows || norm->n_pairs < mine.n_pairs ||
        norm->n_full_tokens < mine.n_full_tokens || norm->n_loss_tokens < mine.n_loss_tokens ||
        norm->n_full_tokens_chosen < mine.n_full_tokens_chosen ||
        norm->n_loss_tokens_chosen < mine.n_loss_tokens_chosen ||
        norm->n_loss_tokens_w < mine.n_loss_tokens_w || norm->n_kl_tokens_w < mine.n_kl_tokens_w)
        return ta_err(err, TA_ERUNTIME,
                      "%s: the step normaliser does not cover this micro-batch (call "
                      "objective_norm_add for every micro-batch of the step first)", tn);
    if (o->type == CFG_OBJ_PRETRAIN && norm->n_full_tokens <= 0)
        return ta_err(err, TA_EINPUT, "pretrain: no target tokens in the step's batch");
    if ((o->type == CFG_OBJ_SFT || o->type == CFG_OBJ_NADO) && norm->n_loss_tokens <= 0)
        return ta_err(err, TA_EINPUT,
                      "%s: no completion tokens (loss_mask) in the whole step's batch", tn);

    /* The kind of input must be the objective's: scores for reward, log-probs otherwise. */
    const int scores = io->score_f || io->score_d;
    if (scores != objective_uses_score_head(o))
        return ta_err(err, TA_EINPUT, "%s: %s", tn,
                      scores ? "this objective reads token log-probs, not per-row scores"
                             : "reward reads per-row scores (objective_scores_forward_backward)");
    /* Finite inputs: every position with a target (the model's output), every score, the
     * reference. */
    for (int r = 0; scores && r < b->B; r++) {
        double v = io->score_f ? (double)io->score_f[r] : io->score_d[r];
        if (!isfinite(v))
            return ta_err(err, TA_ERUNTIME, "%s: non-finite reward %g for batch row %d (the "
                          "model's activations are not finite)", tn, v, r);
    }
    for (int r = 0; !scores && r < b->B; r++)
        for (int t = 0; t < b->T; t++) {
            size_t i = (size_t)r * b->T + t;
            if (b->targets[i] < 0) continue;
            double lp = io_logp(io, i);
            if (!isfinite(lp))
                return ta_err(err, TA_ERUNTIME,
                              "%s: non-finite log-prob %g at batch row %d position %d (the "
                              "model's logits are not finite)", tn, lp, r, t);
        }
    if (has_ref && objective_needs_reference(o))
        for (int r = 0; r < b->B; r++) {
            double v = obj_ref(io, r);
            if (!isfinite(v))
                return ta_err(err, TA_ERUNTIME,
                              "%s: non-finite reference log-prob %g for batch row %d", tn, v, r);
        }

    size_t BT = (size_t)b->B * b->T;
    if (io->dlogp_f) memset(io->dlogp_f, 0, BT * sizeof(float));
    if (io->dlogp_d) memset(io->dlogp_d, 0, BT * sizeof(double));
    if (io->dscore_f) memset(io->dscore_f, 0, (size_t)b->B * sizeof(float));
    if (io->dscore_d) memset(io->dscore_d, 0, (size_t)b->B * sizeof(double));
    switch (o->type) {
    case CFG_OBJ_PRETRAIN: obj_pretrain(o, b, io, norm, stats); break;
    case CFG_OBJ_SFT: obj_sft(o, b, io, norm, stats); break;
    case CFG_OBJ_DPO:
    case CFG_OBJ_DDPO: obj_dpo(o, b, io, norm, stats); break;
    case CFG_OBJ_ORPO:
    case CFG_OBJ_DORPO: obj_orpo(o, b, io, norm, stats); break;
    case CFG_OBJ_NADO: obj_nado(o, b, io, norm, stats); break;
    case CFG_OBJ_REWARD: obj_reward(o, b, io, norm, stats); break;
    }
    stats->rows += b->B;
    return TA_OK;
}

int objective_forward_backward(const CfgObjective *o, const Batch *b, const float *logp,
                               const float *ref_seq_logp, const ObjectiveNorm *norm,
                               float *dlogp, ObjectiveStats *stats, TaError *err) {
    TA_ASSERT(o && b && logp && norm && stats);
    ObjIO io = {.logp_f = logp, .ref_f = ref_seq_logp, .dlogp_f = dlogp};
    return forward_backward(o, b, &io, norm, stats, err);
}

int objective_forward_backward_f64(const CfgObjective *o, const Batch *b, const double *logp,
                                   const double *ref_seq_logp, const ObjectiveNorm *norm,
                                   double *dlogp, ObjectiveStats *stats, TaError *err) {
    TA_ASSERT(o && b && logp && norm && stats);
    ObjIO io = {.logp_d = logp, .ref_d = ref_seq_logp, .dlogp_d = dlogp};
    return forward_backward(o, b, &io, norm, stats, err);
}

int objective_scores_forward_backward(const CfgObjective *o, const Batch *b, const float *scores,
                                      const ObjectiveNorm *norm, float *dscores,
                                      ObjectiveStats *stats, TaError *err) {
    TA_ASSERT(o && b && scores && norm && stats);
    ObjIO io = {.score_f = scores, .dscore_f = dscores};
    return forward_backward(o, b, &io, norm, stats, err);
}

int objective_scores_forward_backward_f64(const CfgObjective *o, const Batch *b,
                                          const double *scores, const ObjectiveNorm *norm,
                                          double *dscores, ObjectiveStats *stats, TaError *err) {
    TA_ASSERT(o && b && scores && norm && stats);
    ObjIO io = {.score_d = scores, .dscore_d = dscores};
    return forward_backward(o, b, &io, norm, stats, err);
}

void objective_sequence_logps(float *seq_logp, const Batch *b, const float *logp) {
    ObjIO io = {.logp_f = logp};
    for (int r = 0; r < b->B; r++) {
        ObjRowSums s;
        obj_row_sums(&io, b, r, &s);
        seq_logp[r] = (float)s.s_resp;
    }
}

/* ---- metrics ------------------------------------------------------------------------ */

int objective_headline(const ObjectiveMetrics *m, ObjectiveMetricId *ids, int cap) {
    static const ObjectiveMetricId ORDER[] = {OBJ_METRIC_REWARDS_ACCURACY,
                                              OBJ_METRIC_REWARDS_MARGIN, OBJ_METRIC_NLL,
                                              OBJ_METRIC_KL};
    int n = 0;
    for (size_t i = 0; i < sizeof ORDER / sizeof ORDER[0] && n < cap; i++)
        if (m->m[ORDER[i]].present) ids[n++] = ORDER[i];
    return n;
}

void objective_stats_finish(const CfgObjective *o, const ObjectiveStats *s, ObjectiveMetrics *out) {
    for (int i = 0; i < OBJ_METRIC_COUNT; i++)
        out->m[i] = (ObjectiveMetric){.name = METRIC_NAMES[i], .value = 0.0, .present = 0};
#define SET(id, v) (out->m[id].value = (v), out->m[id].present = 1)
    SET(OBJ_METRIC_LOSS, s->loss);
    int pairwise = objective_is_pairwise(o);
    int orpo = o->type == CFG_OBJ_ORPO || o->type == CFG_OBJ_DORPO;
    if (orpo || (objective_needs_reference(o) && o->sft_weight > 0) ||
        objective_needs_guide(o))
        SET(OBJ_METRIC_NLL, s->nll);
    if (objective_needs_guide(o)) SET(OBJ_METRIC_KL, s->kl);
    if (o->type == CFG_OBJ_NADO) {
        SET(OBJ_METRIC_BCE, s->bce);
        SET(OBJ_METRIC_CONSISTENCY, s->consistency);
        SET(OBJ_METRIC_ACCURACY, s->acc_rows > 0 ? s->acc_correct / s->acc_rows : 0.0);
    }
    if (objective_uses_score_head(o)) { /* TRL RewardTrainer's names */
        if (s->pairs > 0) {
            double np = s->pairs;
            SET(OBJ_METRIC_REWARDS_CHOSEN, s->reward_chosen / np);
            SET(OBJ_METRIC_REWARDS_REJECTED, s->reward_rejected / np);
            SET(OBJ_METRIC_REWARDS_MARGIN, (s->reward_chosen - s->reward_rejected) / np);
            SET(OBJ_METRIC_ACCURACY, s->reward_correct / np);
        }
    } else if (pairwise && s->pairs > 0) {
        double np = s->pairs;
        SET(OBJ_METRIC_REWARDS_CHOSEN, s->reward_chosen / np);
        SET(OBJ_METRIC_REWARDS_REJECTED, s->reward_rejected / np);
        SET(OBJ_METRIC_REWARDS_ACCURACY, s->reward_correct / np);
        SET(OBJ_METRIC_REWARDS_MARGIN, (s->reward_chosen - s->reward_rejected) / np);
        SET(OBJ_METRIC_LOGPS_CHOSEN, s->logp_chosen / np);
        SET(OBJ_METRIC_LOGPS_REJECTED, s->logp_rejected / np);
        if (orpo) {
            SET(OBJ_METRIC_LOG_ODDS_RATIO, s->log_odds_ratio / np);
            SET(OBJ_METRIC_LOG_ODDS_CHOSEN, s->log_odds_chosen / np);
        }
        if (is_weighted(o)) SET(OBJ_METRIC_WEIGHTS_MEAN, s->weight / np);
    }
#undef SET
}
