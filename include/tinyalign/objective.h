/* objective.h — loss heads: pretrain, sft (with per-example weights), dpo (sigmoid / cDPO
 * label smoothing, ipo, hinge, robust, + optional NLL on chosen = TRL rpo_alpha), orpo, the
 * deviation-weighted ddpo and dorpo, the attribute-control KL on sft / pretrain
 * (objective.attribute), the reward model's Bradley-Terry loss (reward), and nado (a NADO
 * guide trained on labelled samples: BCE + consistency, a logit-level head).
 *
 * Three kinds of head. The reward objective reads one scalar per row, the reward model's
 * score head at the row's last token (batches in the ROWS_SCORE layout), through
 * objective_scores_forward_backward, which returns dL/dreward (B); the model's LM head is
 * not run at all. Every other objective runs two heads, in this order, on every micro-batch:
 *  1. The fast path, objective_forward_backward: a head over the per-token target
 *     log-probs logp (B,T) (logsoftmax_gather), returning dL/dlogp (B,T). Every objective
 *     here except the KL term is a function of per-row sums of logp over two token sets:
 *       response tokens  loss_mask[b,t] == 1     (completion only; prompt and padding out)
 *       full tokens      targets[b,t] >= 0       (prompt + completion; padding out)
 *     so dL/dlogp is one constant per (row, set), written once per token.
 *  2. The logit head, objective_logits_forward_backward: reads the logits of a range of
 *     token rows (and a guide model's logits for the same rows), adds its own loss terms,
 *     and writes dlogits IN PLACE: dL/dlogp's part (what logits_to_dlogits does) plus the
 *     gradient of the logit-level terms. Without a logit-level term it is exactly
 *     logits_to_dlogits. It works on any range of rows, so an LM head computed in chunks
 *     of rows can call it per chunk and never hold (B,T,V) logits at once.
 *
 * One optimizer step = K micro-batches. The normalisers (token counts, pair counts, the
 * batch-mean weight) are taken over the WHOLE step first, so the K micro-batches give
 * exactly the gradient and the loss/metrics of one big batch (the gradient of a token does
 * not depend on how the step is split; sums differ only by rounding). Usage per step (the
 * training step, include/tinyalign/train.h, is the one caller in the engine):
 *
 *     ObjectiveNorm norm = {0};  ObjectiveStats st = {0};
 *     for k: objective_norm_add(&norm, o, &mb[k], &err);              // counts only
 *     for k: forward(mb[k]) -> logits, lse, logp;
 *            objective_forward_backward(o, &mb[k], logp, ref_k, &norm, dlogp, &st, &err);
 *            objective_logits_forward_backward(o, &mb[k], 0, B*T, logits, lse, dlogp,
 *                                              guide_logits, base_logits, V, Vp, &norm,
 *                                              &st, &err);
 *            backward (gradients accumulate, NOT divided by K)
 *     objective_stats_finish(o, &st, &metrics);                        // loss + TRL metrics
 *
 * ObjectiveNorm and ObjectiveStats are plain arrays of doubles that are sums, so data-
 * parallel ranks combine them with one MPI_Allreduce(MPI_SUM) each (norm before the
 * forward passes, stats before finish). A zeroed struct is an empty one.
 *
 * Preference batches use data.h's pair layout: rows [0,P) chosen, [P,2P) rejected, row i
 * and P+i one pair; the pair weight is weights[i] (the chosen row's).
 * Sequence-level reference log-probs ref_seq_logp (B) are SUMS of the reference model's
 * logp over each row's response tokens (objective_sequence_logps defines exactly that);
 * ipo averages them itself.
 *
 * Not here: the reference and guide models themselves (reference module).
 */
#ifndef TINYALIGN_OBJECTIVE_H
#define TINYALIGN_OBJECTIVE_H

#include "tinyalign/common.h"
#include "tinyalign/config.h"
#include "tinyalign/data.h"

/* Normalisers of one optimizer step (sums over all its micro-batches). */
typedef struct {
    double n_rows;               /* rows */
    double n_pairs;              /* preference pairs (0 for pretrain / sft) */
    double n_full_tokens;        /* positions with target >= 0, all rows      (pretrain) */
    double n_loss_tokens;        /* positions with loss_mask = 1, all rows     (sft)      */
    double n_full_tokens_chosen; /* target >= 0 positions of chosen rows  (orpo full, dorpo quirk) */
    double n_loss_tokens_chosen; /* loss_mask positions of chosen rows    (dpo sft_weight, orpo) */
    double n_loss_tokens_w;      /* loss_mask positions of rows with an NLL weight > 0 (sft:
                                  * weight > 0, not KL-only) */
    double sum_weights;          /* sum over pairs of the pair weight (chosen row's weight) */
    double n_kl_tokens_w;        /* loss_mask positions of the rows with a KL weight > 0
                                  * (obj_row_kl_weight: weight > 0, not NLL-only): the
                                  * attribute KL's N (sft); = n_loss_tokens_w when every row
                                  * feeds all terms (Batch.feeds) */
} ObjectiveNorm;

/* Running sums of one step (zero it at the start of the step: = {0}). Pair quantities are sums over pairs; loss and nll are already
 * normalised by the step's ObjectiveNorm, so after the last micro-batch `loss` IS the step
 * loss. All fields are sums of doubles (a data-parallel all-reduce adds them). */
typedef struct {
    double loss;            /* the objective value */
    double nll;             /* the (unweighted) NLL term, normalised as the objective does */
    double pairs;           /* pairs seen */
    double rows;            /* rows seen */
    double tokens;          /* loss tokens seen (pretrain: target tokens) */
    double reward_chosen;   /* sum of implicit rewards r_w (dpo: beta(S_w - Sref_w); orpo: lambda A_w) */
    double reward_rejected; /* sum of r_l */
    double reward_correct;  /* pairs with r_w > r_l */
    double logp_chosen;     /* sum of S_w (dpo), A_w (ipo, orpo) */
    double logp_rejected;
    double log_odds_ratio;  /* sum of logsigmoid(z) (dorpo: logsigmoid(w z)) */
    double log_odds_chosen; /* sum of z */
    double weight;          /* sum of pair weights */
    double kl;              /* attribute: sum_t KL(q_t || p_t), normalised like nll */
    double bce;             /* nado: the BCE term, normalised (1/N) */
    double consistency;     /* nado: the consistency term, normalised (1/N) */
    double acc_correct;     /* nado: rows whose sigmoid(r) at the last position is on the
                             * label's side of 1/2 */
    double acc_rows;        /* nado: rows counted for accuracy */
} ObjectiveStats;

/* Metrics with TRL's names, in a fixed order; `present` says which ones the objective
 * has, so a trainer writes every present one to metrics.jsonl without knowing the
 * objective:  for (i = 0; i < OBJ_METRIC_COUNT; i++) if (m.m[i].present) put(m.m[i].name,
 * m.m[i].value);  and reads one directly as m.m[OBJ_METRIC_LOSS].value. */
typedef enum {
    OBJ_METRIC_LOSS = 0,          /* "loss" */
    OBJ_METRIC_NLL,               /* "nll_loss" */
    OBJ_METRIC_REWARDS_CHOSEN,    /* "rewards/chosen"     mean r_w */
    OBJ_METRIC_REWARDS_REJECTED,  /* "rewards/rejected"   mean r_l */
    OBJ_METRIC_REWARDS_ACCURACY,  /* "rewards/accuracies" fraction of pairs with r_w > r_l */
    OBJ_METRIC_REWARDS_MARGIN,    /* "rewards/margins"    mean (r_w - r_l) */
    OBJ_METRIC_LOGPS_CHOSEN,      /* "logps/chosen"       mean S_w (dpo) or A_w (ipo, orpo) */
    OBJ_METRIC_LOGPS_REJECTED,    /* "logps/rejected" */
    OBJ_METRIC_LOG_ODDS_RATIO,    /* "log_odds_ratio"     mean logsigmoid(z) (dorpo: of w z) */
    OBJ_METRIC_LOG_ODDS_CHOSEN,   /* "log_odds_chosen"    mean z */
    OBJ_METRIC_WEIGHTS_MEAN,      /* "weights/mean"       mean pair weight (ddpo, dorpo) */
    OBJ_METRIC_KL,                /* "kl"                 attribute: mean KL(q_t || p_t) per KL token */
    OBJ_METRIC_BCE,               /* "bce"                nado: mean BCE per response token */
    OBJ_METRIC_CONSISTENCY,       /* "consistency"        nado: consistency term / N */
    OBJ_METRIC_ACCURACY,          /* "accuracy"           reward: fraction of pairs with r_c > r_r;
                                   *                      nado: sigmoid(r) at each row's last
                                   *                      position vs its label, fraction right */
    OBJ_METRIC_COUNT
} ObjectiveMetricId;

typedef struct {
    const char *name; /* static string, TRL's name */
    double value;     /* 0 when not present */
    int present;      /* 1 if this objective defines the metric */
} ObjectiveMetric;

typedef struct {
    ObjectiveMetric m[OBJ_METRIC_COUNT]; /* indexed by ObjectiveMetricId */
} ObjectiveMetrics;

/* The headline metrics a progress line shows next to the loss: the present ones among
 * rewards/accuracies, rewards/margins (the pairwise objectives), nll_loss and kl
 * (attribute control, ORPO's NLL), in that order, at most cap. Fills ids; returns how
 * many. */
int objective_headline(const ObjectiveMetrics *m, ObjectiveMetricId *ids, int cap);

/* 1 for dpo and ddpo (they need ref_seq_logp), 0 otherwise. */
int objective_needs_reference(const CfgObjective *o);
/* 1 for reward: the model is a reward model (score head), batches are ROWS_SCORE and the
 * loss goes through objective_scores_forward_backward. */
int objective_uses_score_head(const CfgObjective *o);
/* 1 when the objective has a logit-level term (objective.attribute.guide set, or nado):
 * the logit head then needs the frozen models' logits (objective_needs_guide / _base). */
int objective_has_logit_head(const CfgObjective *o);
/* 1 when the logit head reads a guide's logits (objective.attribute.guide set). */
int objective_needs_guide(const CfgObjective *o);
/* 1 when it reads a frozen base model's logits: nado (p_base), or the attribute KL with
 * q_base "base". */
int objective_needs_base(const CfgObjective *o);
/* 1 for the pairwise objectives (dpo, orpo, ddpo, dorpo, reward): batches in the pair layout. */
int objective_is_pairwise(const CfgObjective *o);
/* The TRL name of a metric id ("loss", "rewards/chosen", ...). */
const char *objective_metric_name(ObjectiveMetricId id);

/* Validates micro-batch b for objective o: pair layout (B == 2 n_pairs > 0), at least one
 * response token in every row of a pair, loss_mask only where target >= 0, pair weights
 * finite and >= 0 (ddpo, dorpo), row weights finite and >= 0 (sft), the ROWS_SCORE layout
 * with each row's last position inside the batch and finite margins (reward), sane
 * objective parameters. Returns TA_OK, or TA_EINPUT with a message naming the pair / row.
 * (objective_forward_backward runs it too.) */
int objective_check_batch(const CfgObjective *o, const Batch *b, TaError *err);

/* Adds micro-batch b's counts to n (call for every micro-batch of the step before the
 * first objective_forward_backward). Validates b first (objective_check_batch): TA_OK, or
 * TA_EINPUT with a message naming the pair / row, n unchanged. */
int objective_norm_add(ObjectiveNorm *n, const CfgObjective *o, const Batch *b, TaError *err);

/* Loss head for one micro-batch.
 *   logp          (B,T) target log-probs of the policy (batch layout, stride T)
 *   ref_seq_logp  (B)   reference response log-prob sums, or NULL when
 *                       !objective_needs_reference(o)
 *   norm          the whole step's normalisers (objective_norm_add on every micro-batch)
 *   dlogp         (B,T) out: dL/dlogp of the step loss (0 at unused positions); may be NULL
 *                 for a forward-only evaluation
 *   stats         in/out: this micro-batch's sums are added
 * Returns TA_OK; TA_EINPUT for a malformed batch (as objective_norm_add) or a missing
 * reference; TA_ERUNTIME for a non-finite logp / reference value (names row and position)
 * or an empty normaliser. On error dlogp and stats are left unchanged. */
int objective_forward_backward(const CfgObjective *o, const Batch *b, const float *logp,
                               const float *ref_seq_logp, const ObjectiveNorm *norm,
                               float *dlogp, ObjectiveStats *stats, TaError *err);

/* The same in double precision (logp, ref, dlogp all double): the finite-difference tests
 * use it, and so can any caller holding double log-probs. Same math, same code. */
int objective_forward_backward_f64(const CfgObjective *o, const Batch *b, const double *logp,
                                   const double *ref_seq_logp, const ObjectiveNorm *norm,
                                   double *dlogp, ObjectiveStats *stats, TaError *err);

/* Logit head over token rows [row0, row0 + nrows) of micro-batch b (token row n = r*T + t
 * of the flattened (B*T, Vp) logits; the range may cut through batch rows, except for
 * nado, whose consistency term couples positions t and t+1 of a sequence: its ranges must
 * be whole batch rows, row0 and nrows multiples of T). All arrays hold just those rows:
 *   logits        (nrows, Vp) the policy's logits; with dlogp != NULL overwritten IN PLACE
 *                 by dL/dlogits (padded columns v >= V set to 0)
 *   lse           (nrows)     their logsumexp over the V real columns (logsoftmax_gather)
 *   dlogp         (nrows)     dL/dlogp from objective_forward_backward, or NULL for a
 *                             forward-only evaluation (logits are then left unchanged)
 *   guide_logits  (nrows, Vp) the guide model's logits of the same rows; required when
 *                             objective_needs_guide(o), ignored otherwise
 *   base_logits   (nrows, Vp) the frozen base model's logits of the same rows; required
 *                             when objective_needs_base(o), ignored otherwise
 *   norm          the whole step's normalisers; stats: the logit-level terms are added
 * dlogits[n,v] = dlogp[n] (1[v = y_n] - p_v) + (gradient of the logit-level terms).
 * attribute (the KL regulariser of Meng et al. 2024, arXiv 2410.05559): for each NLL token
 * (loss_mask for sft, target >= 0 for pretrain), with p = softmax(logits), R = sigmoid(r),
 * and p0 = p (q_base policy) or the base model's softmax pb (q_base base):
 *   q = p0 R / Z, Z = sum_v p0_v R_v (q is a constant target: stop_grad),
 *   KL_t = sum_v q_v log(q_v / p_v)     (= sum_v q_v log R_v - log Z when p0 = p)
 *   L += lambda (1/N) sum_t KL_t,  dL/dlogit_v = lambda/N (p_v - q_v)
 * with N the NLL's token normaliser of the step (so K micro-batches == one big batch).
 * nado (Meng et al. 2022, arXiv 2205.14219): the logits are the NADO's r, read as
 * sigmoid logits; for each row with label C in {0, 1} (Batch.labels) and each response
 * position t (loss_mask), a_t = r_t[y_t], and for each pair of response positions (t, t+1)
 *   E_t = sum_v pb_{t+1}(v) sigmoid(r_{t+1}[v])          (pb = the base's softmax)
 *   L = (1/N) sum_t BCE(a_t, C) + alpha_reg (1/N) sum_(t,t+1) KL_Bern(E_t || sigmoid(a_t))
 * with N the response tokens of the step; the derivation is in src/objective/nado.c.
 * Returns TA_OK; TA_EINPUT (bad config, missing guide / base logits); TA_ERUNTIME when a
 * term is not finite (names the row and position; the logits rows are then unspecified,
 * stats unchanged). */
int objective_logits_forward_backward(const CfgObjective *o, const Batch *b, int row0, int nrows,
                                      float *logits, const float *lse, const float *dlogp,
                                      const float *guide_logits, const float *base_logits, int V,
                                      int Vp, const ObjectiveNorm *norm, ObjectiveStats *stats,
                                      TaError *err);
/* The same in double precision (the finite-difference tests). */
int objective_logits_forward_backward_f64(const CfgObjective *o, const Batch *b, int row0,
                                          int nrows, double *logits, const double *lse,
                                          const double *dlogp, const double *guide_logits,
                                          const double *base_logits, int V, int Vp,
                                          const ObjectiveNorm *norm, ObjectiveStats *stats,
                                          TaError *err);

/* The reward model's loss head (objective.type reward) for one micro-batch in the pair
 * layout and the ROWS_SCORE layout:
 *   scores   (B) each row's reward r (the score head at the row's last token)
 *   dscores  (B) out: dL/dr of the step loss; may be NULL (forward-only evaluation)
 * Per pair i (chosen row i, rejected row P+i) with margin m_i (the pair's "margin", 0
 * without one), Delta_i = r_c - r_r - m_i, N_pairs over the whole step:
 *   L = (1/N_pairs) sum_i [ -log sigmoid(Delta_i) + coef (r_c + r_r)^2 ]
 * (TRL RewardTrainer: the Bradley-Terry loss, minus the margin of Touvron et al. 2023
 * (Llama 2, arXiv 2307.09288), plus center_rewards_coefficient of Eisenstein et al. 2023
 * (arXiv 2312.09244)); pair weights are not used. Gradient (from the formula):
 *   dL/dr_c = (1/N_pairs) ( -sigmoid(-Delta_i) + 2 coef (r_c + r_r) )
 *   dL/dr_r = (1/N_pairs) ( +sigmoid(-Delta_i) + 2 coef (r_c + r_r) )
 * Metrics: rewards/chosen, rewards/rejected (means), rewards/margins (mean r_c - r_r),
 * accuracy (fraction of pairs with r_c > r_r; a tie counts as wrong; margins not applied).
 * Returns TA_OK; TA_EINPUT (malformed batch, not a reward objective); TA_ERUNTIME for a
 * non-finite score (names the row). On error dscores and stats are unchanged. */
int objective_scores_forward_backward(const CfgObjective *o, const Batch *b, const float *scores,
                                      const ObjectiveNorm *norm, float *dscores,
                                      ObjectiveStats *stats, TaError *err);
/* The same in double precision (the finite-difference test). */
int objective_scores_forward_backward_f64(const CfgObjective *o, const Batch *b,
                                          const double *scores, const ObjectiveNorm *norm,
                                          double *dscores, ObjectiveStats *stats, TaError *err);

/* Means and TRL names from a step's sums (pair metrics are present only when pairs > 0). */
void objective_stats_finish(const CfgObjective *o, const ObjectiveStats *s, ObjectiveMetrics *out);

/* seq_logp (B) = per-row sum of logp over response tokens (loss_mask), summed in double:
 * THE definition of S used by every loss here, for the reference module to cache. */
void objective_sequence_logps(float *seq_logp, const Batch *b, const float *logp);

#endif
