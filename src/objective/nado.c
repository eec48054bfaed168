/* nado.c — objective.type nado: training a NADO guide (Meng et al. 2022, arXiv 2205.14219,
 * the auxiliary model of Meng et al. 2024, arXiv 2410.05559) on sequences sampled from a
 * base model and labelled by a sequence-level 0/1 oracle C(x, y).
 * Not here: sampling and labelling (sample, score), the frozen base model (reference
 * module), the use of a trained guide (attribute.c: the KL regulariser; sample: guided
 * decoding).
 *
 * The model. A GPT-2 whose V output logits r_t at position t (prefix x, y_<=t) are read as
 * sigmoid logits: sigmoid(r_t[v]) ~ R(x, y_<=t, v) = Pr[C(x, y) = 1 | prefix, next token
 * v], the probability that a continuation of the base model from this prefix and this
 * next token ends up satisfying C. In the batch layout position t has input tokens[t] and
 * target y_t = targets[t] (the token after it), so
 *   a_t = r_t[y_t]        the guide's value of the prefix that ends with y_t
 * and the expectation of the same quantity one step further, under the base model pb:
 *   E_t = sum_v pb_{t+1}(v) sigmoid(r_{t+1}[v]),   Ē_t = sum_v pb_{t+1}(v) sigmoid(-r_{t+1}[v])
 * (pb_{t+1} = softmax of the base model's logits at position t+1, whose prefix ends with
 * y_t; E_t + Ē_t = 1, both summed separately so that neither is a difference near 0).
 *
 * The loss. For a row with label C in {0, 1} (Batch.labels: the response's "score"),
 * over its response positions t (loss_mask: the response tokens and the EOS):
 *   BCE_t = -[C log sigmoid(a_t) + (1 - C) log sigmoid(-a_t)]         (label broadcast)
 * and over the pairs (t, t+1) of response positions (both loss_mask; the last position,
 * whose next position is outside the sequence, has no pair: as the authors' code does
 * with mask[:, 1:]):
 *   K_t = KL_Bern(E_t || sigmoid(a_t))
 *       = E_t (log E_t - log sigmoid(a_t)) + Ē_t (log Ē_t - log sigmoid(-a_t))
 *   L = (1/N) sum_t BCE_t + alpha_reg (1/N) sum_t K_t,   N = response tokens of the step
 * (the authors sum over positions and average over sequences; we divide by the step's
 * token count, as sft does, so the ratio of the two terms, and so alpha_reg, is the same
 * and only the overall scale differs).
 * PyTorch (float64, lp_b = base log-softmax, r = logits, y = targets, C per row):
 *   a  = r.gather(-1, y)                               # (B,T)
 *   E  = (lp_b.exp() * r.sigmoid()).sum(-1)            # (B,T): E[:, t] is E_{t-1} above
 *   Eb = (lp_b.exp() * (-r).sigmoid()).sum(-1)
 *   bce = -(C * F.logsigmoid(a) + (1 - C) * F.logsigmoid(-a)) * mask
 *   K = E[:, 1:] * (E[:, 1:].log() - F.logsigmoid(a[:, :-1]))
 *     + Eb[:, 1:] * (Eb[:, 1:].log() - F.logsigmoid(-a[:, :-1]))      (* mask[:,:-1]*mask[:,1:])
 *
 * Gradients (derived on paper, checked by tests/test_nado.c against PyTorch autograd and
 * central differences in double). With s = sigmoid(a), d log sigmoid(a)/da = 1 - s and
 * d log sigmoid(-a)/da = -s:
 *   dBCE_t/da_t = -C (1 - s_t) + (1 - C) s_t = s_t - C
 *   dK_t/da_t   = -E_t (1 - s_t) + Ē_t s_t = s_t (E_t + Ē_t) - E_t   (= s_t - E_t)
 *   dK_t/dE_t   = log E_t + 1 - log sigmoid(a_t),  dK_t/dĒ_t = log Ē_t + 1 - log sigmoid(-a_t)
 *   dE_t/dr_{t+1}[v] = pb_v sigmoid(r_v) sigmoid(-r_v) = -dĒ_t/dr_{t+1}[v]  =: w_v
 *   dK_t/dr_{t+1}[v] = w_v (log E_t - log Ē_t - log sigmoid(a_t) + log sigmoid(-a_t))
 *                    = w_v (logit(E_t) - a_t)           (log sigmoid(a) - log sigmoid(-a) = a)
 * so the logit row of position t receives
 *   dL/dr_t[v] = (alpha/N) (logit(E_{t-1}) - a_{t-1}) w_{t,v}     if (t-1, t) is a pair
 *              + 1[v = y_t] ((s_t - C) + alpha (s_t (E_t + Ē_t) - E_t)) / N
 *                                                               (the last term if (t, t+1) is)
 * The authors' code (constrDecoding, LCG/models/decoder/modeling_cdgpt.py) does NOT detach
 * E: the consistency term also moves r_{t+1} toward sigmoid(a_t). That is the default;
 * objective.nado.stop_grad_expectation = true makes E_t a constant target (the first line
 * above is then 0: the term only moves a_t).
 *
 * Metrics: bce and consistency (each / N), and accuracy: at each row's last response
 * position (the EOS when the row has one, where R should equal C exactly),
 * sigmoid(a) > 1/2 iff C = 1.
 *
 * Work and order. A row's gradient needs the scalars a_{t-1} and E_t, Ē_t, E_{t+1} of its
 * neighbours, so the head walks each batch row's positions in order, computing E_{t+1}
 * from row t+1 (still untouched) before overwriting row t with its dlogits; batch rows are
 * independent (parallel), hence the contract that a call covers whole batch rows. Per
 * response position: the base row's logsumexp, E from its row, and (with gradients) the
 * w pass: about 5 V exponentials. Per-row partial sums are added in row order (the same
 * bits at any thread count). Non-finite terms are TA_ERUNTIME naming row and position.
 */
#include <math.h>
#include <string.h>

#include "objective_impl.h"

void obj_nado(const CfgObjective *o, const Batch *b, const ObjIO *io, const ObjectiveNorm *n,
              ObjectiveStats *st) {
    (void)o;
    (void)n;
    for (int r = 0; r < b->B; r++) {
        ObjRowSums s;
        obj_row_sums(io, b, r, &s);
        st->tokens += s.n_resp;
    }
}

/* Sums of one batch row. */
typedef struct {
    double bce, cons;   /* sum_t BCE_t, sum_t K_t (not yet / N) */
    int correct, last;  /* accuracy at the last response position: right, counted */
    int bad;            /* first position with a non-finite term, or -1 */
} NadoRowSums;

/* x log x with 0 log 0 = 0. */
static double xlogx(double x) { return x > 0 ? x * log(x) : 0.0; }

/* E and Ē of one position from its guide logits r (V) and base logits lb (V); *lseb gets
 * the base row's logsumexp (reused by the gradient pass). */
#define NADO_EXPECT(NAME, REAL, EXP, LSE)                                                     \
    static void NAME(const REAL *r, const REAL *lb, int V, double *E, double *Eb,            \
                     REAL *lseb) {                                                           \
        const REAL lse = (REAL)LSE(lb, V);                                                   \
        double e1 = 0.0, e0 = 0.0;                                                           \
        for (int v = 0; v < V; v++) {                                                        \
            REAL pb = EXP(lb[v] - lse), e = EXP(r[v] < 0 ? r[v] : -r[v]);                    \
            REAL sp = r[v] >= 0 ? 1 / (1 + e) : e / (1 + e); /* sigmoid(r)  */                \
            REAL sn = r[v] >= 0 ? e / (1 + e) : 1 / (1 + e); /* sigmoid(-r) */                \
            e1 += (double)(pb * sp);                                                         \
            e0 += (double)(pb * sn);                                                         \
        }                                                                                    \
        *E = e1;                                                                             \
        *Eb = e0;                                                                            \
        *lseb = lse;                                                                         \
    }
NADO_EXPECT(expect_f, float, expf, obj_row_lse_f)
NADO_EXPECT(expect_d, double, exp, obj_row_lse_d)

/* One batch row: l (T, Vp) the guide's logits (dlogits in place with grad), lb (T, Vp) the
 * base's, tg / m (T) targets and loss mask, C the label; alpha, invN as in the loss. */
#define NADO_ROW(NAME, REAL, EXP, EXPECT)                                                     \
    static void NAME(REAL *l, const REAL *lb, const int *tg, const uint8_t *m, double C,     \
                     double alpha, int stop, double invN, int T, int V, int Vp, int grad,    \
                     NadoRowSums *out) {                                                     \
        memset(out, 0, sizeof *out);                                                         \
        out->bad = -1;                                                                       \
        int m_prev = 0;                        /* position t-1 is a response position */     \
        double a_prev = 0.0;                   /* a_{t-1} */                                 \
        double E_cur = 0.0, Eb_cur = 0.0;      /* E_{t-1}, Ē_{t-1}: from row t */            \
        REAL lse_cur = 0;                      /* the base's logsumexp of row t */           \
        for (int t = 0; t < T; t++) {                                                        \
            REAL *lt = l + (size_t)t * Vp;                                                   \
            const REAL *bt = lb + (size_t)t * Vp;                                            \
            if (!m[t]) {                                                                     \
                if (grad) memset(lt, 0, sizeof(REAL) * (size_t)Vp);                          \
                m_prev = 0;                                                                  \
                continue;                                                                    \
            }                                                                                \
            const int y = tg[t], left = m_prev, right = t + 1 < T && m[t + 1];               \
            const double a = (double)lt[y];                                                  \
            const double ls_p = (a < 0 ? a : 0.0) - log1p(exp(-fabs(a))); /* log s(a)  */    \
            const double ls_n = ls_p - a;                                  /* log s(-a) */   \
            const double s = exp(ls_p);                                                      \
            double bce = -(C * ls_p + (1 - C) * ls_n), K = 0.0, E_next = 0.0, Eb_next = 0.0; \
            REAL lse_next = 0;                                                               \
            if (right) { /* pair (t, t+1): E_t from row t+1, not yet overwritten */          \
                EXPECT(lt + Vp, bt + Vp, V, &E_next, &Eb_next, &lse_next);                   \
                K = xlogx(E_next) - E_next * ls_p + xlogx(Eb_next) - Eb_next * ls_n;         \
            }                                                                                \
            out->bce += bce;                                                                 \
            out->cons += K;                                                                  \
            if (!isfinite(bce) || !isfinite(K)) {                                            \
                if (out->bad < 0) out->bad = t;                                              \
            }                                                                                \
            if (!right) { /* the row's last response position */                             \
                out->last += 1;                                                              \
                out->correct += (a > 0) == (C == 1.0);                                       \
            }                                                                                \
            if (grad) {                                                                      \
                /* from the pair (t-1, t): dK_{t-1}/dr_t[v] = (logit(E_{t-1}) - a_{t-1}) w_v */ \
                const double gl = left && !stop                                              \
                                      ? alpha * invN * (log(E_cur) - log(Eb_cur) - a_prev)   \
                                      : 0.0;                                                 \
                if (gl != 0.0 && isfinite(gl)) {                                             \
                    const REAL glr = (REAL)gl;                                               \
                    for (int v = 0; v < V; v++) {                                            \
                        REAL pb = EXP(bt[v] - lse_cur), e = EXP(lt[v] < 0 ? lt[v] : -lt[v]); \
                        REAL sg = 1 / (1 + e); /* sigmoid(|r|) */                            \
                        lt[v] = glr * pb * sg * (e * sg); /* w = pb s(r) s(-r) */            \
                    }                                                                        \
                } else { /* no pair, stop-grad, or E_{t-1} = 0 / 1 exactly: then w = 0 */   \
                    memset(lt, 0, sizeof(REAL) * (size_t)V);                                 \
                }                                                                            \
                double gy = (s - C) + (right ? alpha * (s * (E_next + Eb_next) - E_next) : 0.0); \
                lt[y] += (REAL)(gy * invN);                                                  \
                for (int v = V; v < Vp; v++) lt[v] = 0;                                      \
            }                                                                                \
            m_prev = 1;                                                                      \
            a_prev = a;                                                                      \
            E_cur = E_next;                                                                  \
            Eb_cur = Eb_next;                                                                \
            lse_cur = lse_next;                                                              \
        }                                                                                    \
    }
NADO_ROW(nado_row_f, float, expf, expect_f)
NADO_ROW(nado_row_d, double, exp, expect_d)

enum { SUPER = 256 }; /* batch rows per pass (partial sums on the stack) */

int obj_nado_logits(const CfgObjective *o, const Batch *b, int row0, int nrows, const LogitIO *io,
                    int V, int Vp, const ObjectiveNorm *norm, ObjectiveStats *stats,
                    TaError *err) {
    const int T = b->T;
    TA_ASSERT(row0 % T == 0 && nrows % T == 0 && "nado: the logit head takes whole batch rows");
    int rc = objective_check_batch(o, b, err);
    if (rc) return rc;
    if (!io->base_f && !io->base_d)
        return ta_err(err, TA_EINPUT, "nado: the logit head needs the base model's logits");
    const double N = norm->n_loss_tokens;
    if (!(N > 0))
        return ta_err(err, TA_EINPUT, "nado: no completion tokens in the step's batch");
    const int grad = io->dlogp_f || io->dlogp_d;
    const double alpha = o->nado.alpha_reg, invN = 1.0 / N;
    const int stop = o->nado.stop_grad_expectation;
    const int r0 = row0 / T, nr = nrows / T;
    double bce = 0.0, cons = 0.0, correct = 0.0, last = 0.0;
    for (int s0 = 0; s0 < nr; s0 += SUPER) {
        const int nb = nr - s0 < SUPER ? nr - s0 : SUPER;
        NadoRowSums part[SUPER];
#pragma omp parallel for schedule(dynamic, 1)
        for (int k = 0; k < nb; k++) {
            const int r = r0 + s0 + k;
            const size_t off = (size_t)(s0 + k) * T * Vp; /* within the call's arrays */
            const size_t bo = (size_t)r * T;              /* within the batch */
            if (io->lf)
                nado_row_f(io->lf + off, io->base_f + off, b->targets + bo, b->loss_mask + bo,
                           b->labels[r], alpha, stop, invN, T, V, Vp, grad, &part[k]);
            else
                nado_row_d(io->ld + off, io->base_d + off, b->targets + bo, b->loss_mask + bo,
                           b->labels[r], alpha, stop, invN, T, V, Vp, grad, &part[k]);
        }
        for (int k = 0; k < nb; k++) {
            if (part[k].bad >= 0)
                return ta_err(err, TA_ERUNTIME,
                              "nado: non-finite loss at batch row %d position %d (the guide's or "
                              "the base model's logits are not finite)",
                              r0 + s0 + k, part[k].bad);
            bce += part[k].bce;
            cons += part[k].cons;
            correct += part[k].correct;
            last += part[k].last;
        }
    }
    stats->bce += bce * invN;
    stats->consistency += cons * invN;
    stats->loss += bce * invN + alpha * cons * invN;
    stats->acc_correct += correct;
    stats->acc_rows += last;
    return TA_OK;
}
