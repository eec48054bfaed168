/* attribute.c — the logit head (objective_logits_forward_backward): turns the fast path's
 * dL/dlogp into dlogits for every objective, and adds the attribute-control KL of Meng et
 * al. 2024 (arXiv 2410.05559) on sft / pretrain when objective.attribute.guide is set.
 * Not here: the guide model (reference module), its training (nado.c), guided decoding.
 *
 * The KL term. At every token the NLL counts (loss_mask for sft, target >= 0 for
 * pretrain), with policy logits l (V), p = softmax(l), and the guide's logits r (V) read as
 * R_v = sigmoid(r_v) ~ Pr[the constraint will hold | prefix, next token v]:
 *   q_v  = p_v R_v / Z,  Z = sum_v p_v R_v            (the "desired" next-token distribution)
 *   KL_t = sum_v q_v log(q_v / p_v) = sum_v q_v (log R_v - log Z) = S / Z - log Z,
 *          S = sum_v p_v R_v log R_v
 *   L    = NLL + lambda (1/N) sum_t KL_t              (N = the KL's token count of the step)
 * With sft row weights (sft.c) both terms of a row are scaled by its weight w_r, and N
 * counts the completion tokens of rows with w_r > 0: a weight scales every token loss of
 * its row, and N is the NLL's normaliser too (the same tokens).
 * Rows may feed one term only (Batch.feeds, from a data.train source's "loss"): "kl" rows
 * (e.g. sequences sampled from the current model: the method's "prefixes from samples")
 * have NLL weight 0 and KL weight w_r, "nll" rows (the corpus, then) the other way round.
 * The KL is normalised by ITS tokens, N_kl = completion tokens of the rows with a KL weight
 * > 0, while the NLL keeps its own N (the tokens of the rows with an NLL weight > 0):
 *   L = (1/N) sum_{corpus tokens} w_r NLL_t + lambda (1/N_kl) sum_{KL tokens} w_r KL_t
 * so lambda weighs the mean per-token KL against the mean per-token NLL whatever the
 * mixing ratio of the sources, and a run with prefixes from samples is comparable with one
 * from the corpus at the same lambda. (Dividing by the NLL's N instead would make the KL's
 * strength grow with the share of sample rows.) Without KL-only rows N_kl = N exactly: the
 * same sums in the same order, so such runs keep their bits. A step whose rows all feed
 * the NLL only (N_kl = 0) adds no KL, like a step whose rows all weigh 0.
 * PyTorch: lp = l.log_softmax(-1); q = (lp.detach() + F.logsigmoid(r)).softmax(-1);
 *          kl = (q * (q.log() - lp)).sum(-1)
 *
 * Gradient. q is built from stop_grad(p): it is a constant target here.
 *   KL_t = sum_v q_v log q_v - sum_v q_v log p_v,       log p_v = l_v - logsumexp(l)
 *   d log p_v / d l_u = 1[u = v] - p_u
 *   dKL_t / dl_u = -sum_v q_v (1[u = v] - p_u) = -q_u + p_u sum_v q_v = p_u - q_u
 * so dL/dl_u = lambda/N (p_u - q_u), added to the fast path's dlogp (1[u = y] - p_u).
 * (Differentiating through q too would add q_u (log R_u - sum_v q_v log R_v); the method
 * distils toward q, so that term is deliberately absent, as in the stop-gradient above.)
 * Check: R = 1[v not in B] gives q = p with B zeroed and renormalised, Z = 1 - p(B),
 * KL_t = -log(1 - p(B)) (tests/test_objective.c).
 *
 * q_base "base" (the open choice (i) of the method): the p inside q is a frozen base
 * model's softmax pb (the model the NADO was trained on) instead of stop_grad(p):
 *   q_v = pb_v R_v / Z,  Z = sum_v pb_v R_v,
 *   KL_t = sum_v q_v (log pb_v + log R_v - log Z - log p_v) = S / Z - log Z,
 *          S = sum_v pb_v R_v (log pb_v + log R_v - log p_v)
 * and, q being a constant target either way, the same gradient lambda/N (p_v - q_v). The
 * base's log-softmax is taken here (its logsumexp in double, one pass per row).
 *
 * Numerics: log R and R come from one e = exp(-|r|): log R = min(r, 0) - log1p(e),
 * R = 1/(1+e) for r >= 0, e/(1+e) below, so R = 0 never meets log R = -inf. Z and S are
 * summed in double. Z = 0 (the guide forbids every token) or any non-finite term is
 * TA_ERUNTIME, so the trainer skips the step like any non-finite loss. Tokens go in fixed
 * blocks whose partial sums are added in block order: the same bits at any thread count.
 * The per-token math is written once (LOGIT_ROW) for float (training) and double (the
 * finite-difference test).
 */
#include <math.h>
#include <string.h>

#include "objective_impl.h"
#include "tinyalign/kernels.h"

/* obj_row_lse_f / _d (objective_impl.h). */
#define ROW_LSE(NAME, REAL, EXP)                                                             \
    double NAME(const REAL *x, int V) {                                               \
        REAL mx = x[0];                                                                      \
        for (int v = 1; v < V; v++) mx = x[v] > mx ? x[v] : mx;                              \
        double s = 0.0;                                                                      \
        for (int v = 0; v < V; v++) s += (double)EXP(x[v] - mx);                             \
        return (double)mx + log(s);                                                          \
    }
ROW_LSE(obj_row_lse_f, float, expf)
ROW_LSE(obj_row_lse_d, double, exp)

/* One token row: returns KL_t (0 when !kl). With grad, overwrites l (Vp) by dlogits:
 * g (1[v = y] - p_v) + c (p_v - q_v), g = dL/dlogp of the row, c = lambda/N (0: plain).
 * lb: the base's logits of the row (q_base base), NULL for q_base policy. */
#define LOGIT_ROW(NAME, REAL, EXP, LOG1P, LSE)                                               \
    static double NAME(REAL *l, REAL lse, const REAL *r, const REAL *lb, int y, REAL g,      \
                       REAL c, int kl, int V, int Vp, int grad) {                           \
        if (!kl) { /* logits_to_dlogits, same expression */                                 \
            if (!grad) return 0.0;                                                          \
            if (y < 0 || g == 0) {                                                          \
                memset(l, 0, sizeof(REAL) * (size_t)Vp);                                    \
                return 0.0;                                                                 \
            }                                                                               \
            for (int v = 0; v < V; v++) l[v] = -g * EXP(l[v] - lse);                        \
            l[y] += g;                                                                      \
            for (int v = V; v < Vp; v++) l[v] = 0;                                          \
            return 0.0;                                                                     \
        }                                                                                   \
        const REAL lseb = lb ? (REAL)LSE(lb, V) : 0;                                        \
        double Z = 0.0, S = 0.0;                                                            \
        for (int v = 0; v < V; v++) {                                                       \
            REAL p = EXP(l[v] - lse), e = EXP(r[v] < 0 ? r[v] : -r[v]);                     \
            REAL R = r[v] >= 0 ? 1 / (1 + e) : e / (1 + e);                                \
            REAL logR = (r[v] < 0 ? r[v] : 0) - LOG1P(e);                                   \
            REAL p0 = lb ? EXP(lb[v] - lseb) : p;                                           \
            double w = (double)(p0 * R);                                                    \
            Z += w;                                                                         \
            S += w * (lb ? (double)(lb[v] - lseb) + (double)logR - (double)(l[v] - lse)     \
                         : (double)logR);                                                   \
            if (grad) l[v] = p; /* kept for the second pass */                              \
        }                                                                                   \
        double klt = S / Z - log(Z);                                                        \
        if (!grad) return klt;                                                              \
        REAL invZ = (REAL)(1.0 / Z);                                                        \
        for (int v = 0; v < V; v++) {                                                       \
            REAL p = l[v], e = EXP(r[v] < 0 ? r[v] : -r[v]);                                \
            REAL p0 = lb ? EXP(lb[v] - lseb) : p;                                           \
            REAL q = p0 * (r[v] >= 0 ? 1 / (1 + e) : e / (1 + e)) * invZ;                   \
            l[v] = -g * p + c * (p - q);                                                    \
        }                                                                                   \
        l[y] += g;                                                                          \
        for (int v = V; v < Vp; v++) l[v] = 0;                                              \
        return klt;                                                                         \
    }

LOGIT_ROW(logit_row_f, float, expf, log1pf, obj_row_lse_f)
LOGIT_ROW(logit_row_d, double, exp, log1p, obj_row_lse_d)

enum { BLOCK = 32, SUPER = 256 }; /* tokens per partial KL sum; partial sums per pass */

static int logit_head(const CfgObjective *o, const Batch *b, int row0, int nrows,
                      const LogitIO *io, int V, int Vp, const ObjectiveNorm *norm,
                      ObjectiveStats *stats, TaError *err) {
    TA_ASSERT(row0 >= 0 && nrows >= 0 && (size_t)row0 + nrows <= (size_t)b->B * b->T);
    if (o->type == CFG_OBJ_NADO)
        return obj_nado_logits(o, b, row0, nrows, io, V, Vp, norm, stats, err);
    const int grad = io->dlogp_f || io->dlogp_d;
    const int *tg = b->targets + row0;
    if (!objective_has_logit_head(o)) {
        if (grad && io->lf)
            logits_to_dlogits(io->lf, io->lse_f, tg, io->dlogp_f, nrows, V, Vp);
        else if (grad)
            for (int i = 0; i < nrows; i++)
                logit_row_d(io->ld + (size_t)i * Vp, io->lse_d[i], NULL, NULL, tg[i],
                            io->dlogp_d[i], 0.0, 0, V, Vp, 1);
        return TA_OK;
    }
    int rc = objective_check_batch(o, b, err);
    if (rc) return rc;
    if (!io->guide_f && !io->guide_d)
        return ta_err(err, TA_EINPUT,
                      "objective.attribute: the logit head needs the guide model's logits");
    const int use_base = objective_needs_base(o);
    if (use_base && !io->base_f && !io->base_d)
        return ta_err(err, TA_EINPUT,
                      "objective.attribute.q_base \"base\": the logit head needs the base model's "
                      "logits");
    const int sft = o->type == CFG_OBJ_SFT;
    const double N = sft ? norm->n_kl_tokens_w : norm->n_full_tokens;
    if (!(N > 0) && sft && norm->n_loss_tokens > 0) { /* every row weighs 0: nothing to learn */
        if (grad && io->lf) logits_to_dlogits(io->lf, io->lse_f, tg, io->dlogp_f, nrows, V, Vp);
        for (int i = 0; grad && !io->lf && i < nrows; i++)
            logit_row_d(io->ld + (size_t)i * Vp, io->lse_d[i], NULL, NULL, tg[i],
                        io->dlogp_d[i], 0.0, 0, V, Vp, 1);
        return TA_OK;
    }
    if (!(N > 0))
        return ta_err(err, TA_EINPUT, "objective.attribute: no %s tokens in the step's batch",
                      sft ? "completion" : "target");
    const double c = o->attribute.lambda / N;
    const uint8_t *mask = b->loss_mask ? b->loss_mask + row0 : NULL;
    double total = 0.0;
    for (int s0 = 0; s0 < nrows; s0 += BLOCK * SUPER) {
        int nb = (nrows - s0 + BLOCK - 1) / BLOCK;
        if (nb > SUPER) nb = SUPER;
        double part[SUPER];
        int bad[SUPER];
#pragma omp parallel for schedule(static)
        for (int k = 0; k < nb; k++) {
            double acc = 0.0;
            bad[k] = -1;
            int i1 = s0 + (k + 1) * BLOCK < nrows ? s0 + (k + 1) * BLOCK : nrows;
            for (int i = s0 + k * BLOCK; i < i1; i++) {
                /* sft: the row's weight scales its KL terms (x * 1.0 == x: unweighted rows
                 * keep their bits); a weight-0 row has none, nor has an NLL-only row */
                const double w = sft ? obj_row_kl_weight(b, (row0 + i) / b->T) : 1.0;
                int kl = (sft ? (mask && mask[i]) : tg[i] >= 0) && w > 0;
                size_t off = (size_t)i * Vp;
                double t;
                if (io->lf)
                    t = logit_row_f(io->lf + off, io->lse_f[i], io->guide_f + off,
                                    use_base ? io->base_f + off : NULL, tg[i],
                                    grad ? io->dlogp_f[i] : 0.0f, (float)(c * w), kl, V, Vp,
                                    grad);
                else
                    t = logit_row_d(io->ld + off, io->lse_d[i], io->guide_d + off,
                                    use_base ? io->base_d + off : NULL, tg[i],
                                    grad ? io->dlogp_d[i] : 0.0, c * w, kl, V, Vp, grad);
                if (!isfinite(t) && bad[k] < 0) bad[k] = i;
                acc += t * w;
            }
            part[k] = acc;
        }
        for (int k = 0; k < nb; k++) {
            if (bad[k] >= 0) {
                int n = row0 + bad[k];
                return ta_err(err, TA_ERUNTIME,
                              "attribute: non-finite KL at batch row %d position %d (the guide "
                              "gives R = 0 to every token, or logits are not finite)",
                              n / b->T, n % b->T);
            }
            total += part[k];
        }
    }
    double kl_mean = total / N;
    stats->kl += kl_mean;
    stats->loss += o->attribute.lambda * kl_mean;
    return TA_OK;
}

int objective_logits_forward_backward(const CfgObjective *o, const Batch *b, int row0, int nrows,
                                      float *logits, const float *lse, const float *dlogp,
                                      const float *guide_logits, const float *base_logits, int V,
                                      int Vp, const ObjectiveNorm *norm, ObjectiveStats *stats,
                                      TaError *err) {
    TA_ASSERT(o && b && logits && lse && norm && stats);
    LogitIO io = {.lf = logits, .lse_f = lse, .dlogp_f = dlogp, .guide_f = guide_logits,
                  .base_f = base_logits};
    return logit_head(o, b, row0, nrows, &io, V, Vp, norm, stats, err);
}

int objective_logits_forward_backward_f64(const CfgObjective *o, const Batch *b, int row0,
                                          int nrows, double *logits, const double *lse,
                                          const double *dlogp, const double *guide_logits,
                                          const double *base_logits, int V, int Vp,
                                          const ObjectiveNorm *norm, ObjectiveStats *stats,
                                          TaError *err) {
    TA_ASSERT(o && b && logits && lse && norm && stats);
    LogitIO io = {.ld = logits, .lse_d = lse, .dlogp_d = dlogp, .guide_d = guide_logits,
                  .base_d = base_logits};
    return logit_head(o, b, row0, nrows, &io, V, Vp, norm, stats, err);
}
