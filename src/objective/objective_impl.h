/* objective_impl.h — what the loss-family files (sft.c, dpo.c, orpo.c, reward.c) share with
 * the dispatcher objective.c. Private to src/objective/.
 *
 * Every loss here is a function of per-row sums of logp over the row's response tokens
 * (loss_mask) and over its full tokens (target >= 0), so a family computes, per row, one
 * gradient constant for response tokens and one for the other (prompt) target tokens, and
 * obj_write_row spreads them over the row. The same code serves float and double callers
 * through ObjIO (exactly one of each f/d pointer pair is set). */
#ifndef TINYALIGN_OBJECTIVE_IMPL_H
#define TINYALIGN_OBJECTIVE_IMPL_H

#include "tinyalign/objective.h"

typedef struct {
    const float *logp_f;  /* (B,T) */
    const double *logp_d; /* (B,T) */
    const float *ref_f;   /* (B) or NULL */
    const double *ref_d;  /* (B) or NULL */
    float *dlogp_f;       /* (B,T) or NULL */
    double *dlogp_d;      /* (B,T) or NULL */
    const float *score_f; /* (B) reward: each row's scalar, or NULL */
    const double *score_d;
    float *dscore_f;      /* (B) reward: dL/dr, or NULL */
    double *dscore_d;
} ObjIO;

/* Sums of one row: s_resp = sum of logp over loss_mask tokens (n_resp of them),
 * s_full = over all target >= 0 tokens (n_full), accumulated in double. */
typedef struct {
    double s_resp, s_full;
    int n_resp, n_full;
} ObjRowSums;

void obj_row_sums(const ObjIO *io, const Batch *b, int row, ObjRowSums *out);
/* Reference sum of a row (io must carry a reference). */
double obj_ref(const ObjIO *io, int row);
/* dlogp[row,t] = g_resp on response tokens, g_other on the other target >= 0 tokens, 0 on
 * padding. No-op when io has no dlogp. */
void obj_write_row(const ObjIO *io, const Batch *b, int row, double g_resp, double g_other);

/* Numerically stable scalar pieces. */
double obj_log_sigmoid(double u); /* log σ(u) = -softplus(-u) */
double obj_sigmoid(double u);
double obj_log1mexp(double a);    /* log(1 - e^a), a < 0 (Maechler's two-branch form) */
/* logsumexp of a row of V logits (max-shifted, summed in double) (attribute.c). */
double obj_row_lse_f(const float *x, int V);
double obj_row_lse_d(const double *x, int V);

/* The families; batches are validated and normalisers checked before they run. */
void obj_pretrain(const CfgObjective *o, const Batch *b, const ObjIO *io,
                  const ObjectiveNorm *n, ObjectiveStats *st);
void obj_sft(const CfgObjective *o, const Batch *b, const ObjIO *io, const ObjectiveNorm *n,
             ObjectiveStats *st);
void obj_dpo(const CfgObjective *o, const Batch *b, const ObjIO *io, const ObjectiveNorm *n,
             ObjectiveStats *st); /* dpo and ddpo */
void obj_orpo(const CfgObjective *o, const Batch *b, const ObjIO *io, const ObjectiveNorm *n,
              ObjectiveStats *st); /* orpo and dorpo */
void obj_reward(const CfgObjective *o, const Batch *b, const ObjIO *io, const ObjectiveNorm *n,
                ObjectiveStats *st); /* the reward model's Bradley-Terry loss */
/* The NLL weight of sft row r: its "weight" (1 without weights), 0 for a row that feeds
 * the KL only (Batch.feeds ROW_FEEDS_KL). */
double obj_row_weight(const Batch *b, int r);
/* The KL weight of sft row r under objective.attribute: its "weight" (1 without weights),
 * 0 for a row that feeds the NLL only (ROW_FEEDS_NLL). */
double obj_row_kl_weight(const Batch *b, int r);
/* nado's fast path: no log-prob term (dlogp stays 0), counts the response tokens. */
void obj_nado(const CfgObjective *o, const Batch *b, const ObjIO *io, const ObjectiveNorm *n,
              ObjectiveStats *st);

/* The float or the double arrays of one logit-head call (exactly one of each pair set):
 * the policy's logits (dlogits in place), their lse, dL/dlogp, and the frozen models'
 * logits of the same rows (guide: objective.attribute; base: nado's p_base or the
 * attribute's q_base base). */
typedef struct {
    float *lf;
    const float *lse_f, *dlogp_f, *guide_f, *base_f;
    double *ld;
    const double *lse_d, *dlogp_d, *guide_d, *base_d;
} LogitIO;

/* nado's logit head over token rows [row0, row0 + nrows), whole batch rows (nado.c). */
int obj_nado_logits(const CfgObjective *o, const Batch *b, int row0, int nrows, const LogitIO *io,
                    int V, int Vp, const ObjectiveNorm *norm, ObjectiveStats *stats, TaError *err);

#endif
