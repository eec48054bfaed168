/* test_nado.c — the NADO head (objective.type nado) and the attribute KL with q built on a
 * base model (objective.attribute.q_base base), against an independent PyTorch reference
 * (tools/ref_nado.py, generated on every `make test`) and against a naive double
 * implementation of the formulas written here:
 *   nado_parity_*      loss, bce, consistency, accuracy and dL/dr of the float head vs
 *                      PyTorch autograd (alpha_reg 1, 0.5 with E stop-gradded, 0, 2.5)
 *   nado_fd_*          the double head's loss == the naive loss; central differences of the
 *                      naive loss (with E held at its unperturbed value for the
 *                      stop-gradient variant) against the head's analytic dL/dr
 *   nado_rows_bitwise  any split into whole batch rows gives the same bits; two
 *                      micro-batches == one batch (dlogits identical, sums to rounding)
 *   nado_bad_input     labels not 0/1, a missing base, alpha_reg < 0, non-finite logits
 *   attr_base_*        q_base base: loss, nll_loss, kl and dlogits vs PyTorch; central
 *                      differences with q held fixed
 */
#include <math.h>
#include <string.h>

#include "objtest.h"
#include "refio.h"

#define VP 32 /* padded vocabulary of the C side (the reference has V = 24 columns) */

static RefFile REF;
static int B, T, V;
static int *TARGETS;
static uint8_t *MASK;
static float *LABELS, *R, *BASE, *GUIDE;
static int CUR;

static Batch make_batch(int rows, int *targets, uint8_t *mask, float *labels) {
    Batch b = objtest_batch(rows, T, 0, targets, mask);
    b.labels = labels;
    return b;
}

static void nado_cfg(CfgObjective *o, int k) {
    const float *c = (const float *)ref_get(&REF, "nado_cfgs")->data + (size_t)k * 2;
    memset(o, 0, sizeof *o);
    o->type = CFG_OBJ_NADO;
    o->nado.alpha_reg = c[0];
    o->nado.stop_grad_expectation = c[1] != 0;
}

/* The training path on float logits (rows,T,V): objtest_run_float without reference
 * log-probs, the logit head over chunks of rows_per_call whole rows (0 = one call).
 * dr_out (rows,T,V) may be NULL. */
static int run_float(const CfgObjective *o, const Batch *b, const float *logits, const float *guide,
                     const float *base, const ObjectiveNorm *norm, int rows_per_call, float *dr_out,
                     float *padded_out, ObjectiveStats *st, TaError *err) {
    return objtest_run_float(o, b, V, VP, logits, guide, base, NULL, norm, rows_per_call, dr_out,
                             padded_out, st, err);
}

/* ---- nado vs PyTorch --------------------------------------------------------------------- */

static void t_nado_parity(void) {
    CfgObjective o;
    nado_cfg(&o, CUR);
    Batch b = make_batch(B, TARGETS, MASK, LABELS);
    ObjectiveNorm norm = {0};
    ObjectiveStats st = {0};
    TaError err;
    T_CHECK(objective_norm_add(&norm, &o, &b, &err) == TA_OK, "norm: %s", err.msg);
    size_t n = (size_t)B * T * V;
    float *dr = ta_malloc(n * sizeof(float), "dr");
    int rc = run_float(&o, &b, R, NULL, BASE, &norm, 0, dr, NULL, &st, &err);
    T_CHECK(rc == TA_OK, "heads: %s", err.msg);
    ObjectiveMetrics m;
    objective_stats_finish(&o, &st, &m);
    const float *want = (const float *)ref_get(&REF, "nado_out")->data + (size_t)CUR * 4;
    T_CHECK(close_d(st.loss, want[0], 1e-6, 1e-5), "loss %.9g vs PyTorch %.9g", st.loss, want[0]);
    T_CHECK(m.m[OBJ_METRIC_LOSS].present && m.m[OBJ_METRIC_LOSS].value == st.loss, "loss metric");
    T_CHECK(m.m[OBJ_METRIC_BCE].present && close_d(m.m[OBJ_METRIC_BCE].value, want[1], 1e-6, 1e-5),
            "bce %.9g vs PyTorch %.9g", m.m[OBJ_METRIC_BCE].value, want[1]);
    T_CHECK(m.m[OBJ_METRIC_CONSISTENCY].present &&
                close_d(m.m[OBJ_METRIC_CONSISTENCY].value, want[2], 1e-6, 1e-5),
            "consistency %.9g vs PyTorch %.9g", m.m[OBJ_METRIC_CONSISTENCY].value, want[2]);
    T_CHECK(m.m[OBJ_METRIC_ACCURACY].present && (float)m.m[OBJ_METRIC_ACCURACY].value == want[3],
            "accuracy %.9g vs PyTorch %.9g", m.m[OBJ_METRIC_ACCURACY].value, want[3]);
    T_CHECK(!m.m[OBJ_METRIC_NLL].present && !m.m[OBJ_METRIC_KL].present,
            "nado reports no nll_loss / kl");
    char name[32], msg[256];
    snprintf(name, sizeof name, "nado_dr.%d", CUR);
    const float *rd = ref_get(&REF, name)->data;
    int ok = compare("dL/dr", dr, rd, n, 1e-5 * max_abs(rd, n), 1e-4, msg, sizeof msg);
    free(dr);
    T_CHECK(ok, "dL/dr: %s", msg);
}

/* ---- the naive double loss and finite differences ---------------------------------------- */

static double log_sigmoid(double u) { return (u < 0 ? u : 0.0) - log1p(exp(-fabs(u))); }

/* E and Ē at every position from r and base (double, (B,T,V), no padding). */
static void naive_expect(const double *r, const double *base, double *E, double *Eb) {
    for (int i = 0; i < B * T; i++) {
        const double *lb = base + (size_t)i * V, *ri = r + (size_t)i * V;
        double mx = -INFINITY, z = 0, e1 = 0, e0 = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, lb[v]);
        for (int v = 0; v < V; v++) z += exp(lb[v] - mx);
        for (int v = 0; v < V; v++) {
            double pb = exp(lb[v] - mx) / z;
            e1 += pb / (1 + exp(-ri[v]));
            e0 += pb / (1 + exp(ri[v]));
        }
        E[i] = e1;
        Eb[i] = e0;
    }
}

/* The loss straight from the formulas; E0/Eb0 (B*T) frozen expectations, or NULL. */
static double naive_nado_loss(const CfgObjective *o, const double *r, const double *base,
                              const double *E0, const double *Eb0) {
    double *E = ta_malloc(sizeof(double) * B * T, "E"), *Eb = ta_malloc(sizeof(double) * B * T, "Eb");
    if (E0) {
        memcpy(E, E0, sizeof(double) * B * T);
        memcpy(Eb, Eb0, sizeof(double) * B * T);
    } else {
        naive_expect(r, base, E, Eb);
    }
    double bce = 0, cons = 0, N = 0;
    for (int row = 0; row < B; row++) {
        double C = LABELS[row];
        for (int t = 0; t < T; t++) {
            int i = row * T + t;
            if (!MASK[i]) continue;
            N += 1;
            double a = r[(size_t)i * V + TARGETS[i]];
            bce += -(C * log_sigmoid(a) + (1 - C) * log_sigmoid(-a));
            if (t + 1 < T && MASK[i + 1])
                cons += E[i + 1] * (log(E[i + 1]) - log_sigmoid(a)) +
                        Eb[i + 1] * (log(Eb[i + 1]) - log_sigmoid(-a));
        }
    }
    free(E);
    free(Eb);
    return bce / N + o->nado.alpha_reg * cons / N;
}

static void t_nado_fd(void) {
    CfgObjective o;
    nado_cfg(&o, CUR);
    Batch b = make_batch(B, TARGETS, MASK, LABELS);
    size_t N = (size_t)B * T, n = N * V;
    double *r = ta_malloc(n * sizeof(double), "r"), *bs = ta_malloc(n * sizeof(double), "base");
    double *an = ta_malloc(n * sizeof(double), "an"), *lp = ta_calloc(N * sizeof(double), "lp");
    double *lse = ta_calloc(N * sizeof(double), "lse"), *dlp = ta_calloc(N * sizeof(double), "dlp");
    double *E0 = ta_malloc(N * sizeof(double), "E0"), *Eb0 = ta_malloc(N * sizeof(double), "Eb0");
    for (size_t i = 0; i < n; i++) r[i] = R[i], bs[i] = BASE[i];
    ObjectiveNorm norm = {0};
    ObjectiveStats st = {0};
    TaError err;
    T_CHECK(objective_norm_add(&norm, &o, &b, &err) == TA_OK, "norm: %s", err.msg);
    memcpy(an, r, n * sizeof(double));
    int rc = objective_forward_backward_f64(&o, &b, lp, NULL, &norm, dlp, &st, &err);
    if (rc == TA_OK)
        rc = objective_logits_forward_backward_f64(&o, &b, 0, (int)N, an, lse, dlp, NULL, bs, V, V,
                                                   &norm, &st, &err);
    T_CHECK(rc == TA_OK, "heads: %s", err.msg);
    naive_expect(r, bs, E0, Eb0);
    const int frozen = o.nado.stop_grad_expectation;
    double l0 = naive_nado_loss(&o, r, bs, NULL, NULL);
    T_CHECK(close_d(st.loss, l0, 1e-13, 1e-12), "head loss %.15g vs naive %.15g", st.loss, l0);
    char msg[256] = "";
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        double x0 = r[i], h = 1e-5;
        r[i] = x0 + h;
        double lplus = naive_nado_loss(&o, r, bs, frozen ? E0 : NULL, frozen ? Eb0 : NULL);
        r[i] = x0 - h;
        double lminus = naive_nado_loss(&o, r, bs, frozen ? E0 : NULL, frozen ? Eb0 : NULL);
        r[i] = x0;
        double fd = (lplus - lminus) / (2 * h);
        if (!close_d(an[i], fd, 1e-9, 1e-6)) {
            snprintf(msg, sizeof msg, "row %zu pos %zu v %zu: analytic %.12g, finite difference %.12g",
                     i / V / T, i / V % T, i % V, an[i], fd);
            ok = 0;
        }
    }
    free(r); free(bs); free(an); free(lp); free(lse); free(dlp); free(E0); free(Eb0);
    T_CHECK(ok, "%s", msg);
}

/* ---- chunks of rows and micro-batches ---------------------------------------------------- */

static void t_nado_rows_bitwise(void) {
    CfgObjective o;
    nado_cfg(&o, 0);
    Batch b = make_batch(B, TARGETS, MASK, LABELS);
    ObjectiveNorm norm = {0};
    TaError err;
    T_CHECK(objective_norm_add(&norm, &o, &b, &err) == TA_OK, "norm: %s", err.msg);
    size_t n = (size_t)B * T * VP;
    float *one = ta_malloc(n * sizeof(float), "one"), *split = ta_malloc(n * sizeof(float), "split");
    ObjectiveStats s1 = {0}, s2 = {0};
    int rc = run_float(&o, &b, R, NULL, BASE, &norm, 0, NULL, one, &s1, &err);
    for (int per = 1; per <= 4 && rc == TA_OK; per++) {
        memset(&s2, 0, sizeof s2);
        rc = run_float(&o, &b, R, NULL, BASE, &norm, per, NULL, split, &s2, &err);
        T_CHECK(rc == TA_OK && !memcmp(one, split, n * sizeof(float)),
                "calls of %d rows: dlogits differ (rc %d)", per, rc);
        T_CHECK(close_d(s2.loss, s1.loss, 1e-15, 1e-13) && s2.acc_correct == s1.acc_correct,
                "calls of %d rows: loss %.17g vs %.17g", per, s2.loss, s1.loss);
    }
    T_CHECK(rc == TA_OK, "%s", err.msg);
    /* two micro-batches (rows [0,3) and [3,6)) under the step's normaliser == one batch */
    Batch b1 = make_batch(3, TARGETS, MASK, LABELS);
    Batch b2 = make_batch(3, TARGETS + 3 * T, MASK + 3 * T, LABELS + 3);
    ObjectiveNorm n2 = {0};
    T_CHECK(objective_norm_add(&n2, &o, &b1, &err) == TA_OK &&
                objective_norm_add(&n2, &o, &b2, &err) == TA_OK, "norm: %s", err.msg);
    ObjectiveStats s3 = {0};
    rc = run_float(&o, &b1, R, NULL, BASE, &n2, 0, NULL, split, &s3, &err);
    if (rc == TA_OK)
        rc = run_float(&o, &b2, R + (size_t)3 * T * V, NULL, BASE + (size_t)3 * T * V, &n2, 0,
                       NULL, split + n / 2, &s3, &err);
    int same = !memcmp(one, split, n * sizeof(float));
    free(one);
    free(split);
    T_CHECK(rc == TA_OK, "micro-batches: %s", err.msg);
    T_CHECK(same, "two micro-batches: dlogits differ from one batch");
    T_CHECK(close_d(s3.loss, s1.loss, 1e-15, 1e-12) && close_d(s3.bce, s1.bce, 1e-15, 1e-12) &&
                s3.acc_rows == s1.acc_rows,
            "two micro-batches: loss %.17g vs %.17g", s3.loss, s1.loss);
}

/* ---- bad input ----------------------------------------------------------------------------- */

static void t_nado_bad_input(void) {
    CfgObjective o;
    nado_cfg(&o, 0);
    float labels[64];
    memcpy(labels, LABELS, sizeof(float) * B);
    Batch b = make_batch(B, TARGETS, MASK, labels);
    ObjectiveNorm norm = {0};
    TaError err = {0};
    T_CHECK(objective_norm_add(&norm, &o, &b, &err) == TA_OK, "norm: %s", err.msg);
    ObjectiveStats st = {0}, zero = {0};
    labels[3] = 0.5f;
    int rc = run_float(&o, &b, R, NULL, BASE, &norm, 0, NULL, NULL, &st, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "batch row 3: label 0.5, expected 0 or 1"),
            "label 0.5: rc %d, %s", rc, err.msg);
    labels[3] = NAN;
    rc = run_float(&o, &b, R, NULL, BASE, &norm, 0, NULL, NULL, &st, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "batch row 3: label nan"), "label NaN: %s", err.msg);
    labels[3] = LABELS[3];
    rc = run_float(&o, &b, R, NULL, NULL, &norm, 0, NULL, NULL, &st, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "needs the base model's logits"), "no base: %s",
            err.msg);
    b.labels = NULL;
    rc = run_float(&o, &b, R, NULL, BASE, &norm, 0, NULL, NULL, &st, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "no sequence labels"), "no labels: %s", err.msg);
    b.labels = labels;
    o.nado.alpha_reg = -1;
    st = zero;
    rc = run_float(&o, &b, R, NULL, BASE, &norm, 0, NULL, NULL, &st, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "objective.nado.alpha_reg: expected >= 0, got -1"),
            "alpha_reg -1: %s", err.msg);
    T_CHECK(!memcmp(&st, &zero, sizeof st), "stats changed by a refused batch");
    nado_cfg(&o, 0);
    /* a non-finite base row at a response position: TA_ERUNTIME naming row and position */
    size_t n = (size_t)B * T * V;
    float *bad = ta_malloc(n * sizeof(float), "bad");
    memcpy(bad, BASE, n * sizeof(float));
    int pos = -1;
    for (int t = 1; t < T && pos < 0; t++)
        if (MASK[2 * T + t] && MASK[2 * T + t - 1]) pos = t;
    T_CHECK(pos > 0, "row 2 has no consistency pair");
    for (int v = 0; v < V; v++) bad[((size_t)2 * T + pos) * V + v] = NAN;
    rc = run_float(&o, &b, R, NULL, bad, &norm, 0, NULL, NULL, &st, &err);
    free(bad);
    char want[64];
    snprintf(want, sizeof want, "batch row 2 position %d", pos - 1);
    T_CHECK(rc == TA_ERUNTIME && strstr(err.msg, want), "NaN base: rc %d, %s (want %s)", rc,
            err.msg, want);
}

/* ---- the attribute KL with q_base base --------------------------------------------------- */

static void attr_cfg(CfgObjective *o, int k) {
    const float *c = (const float *)ref_get(&REF, "attr_cfgs")->data + (size_t)k * 2;
    memset(o, 0, sizeof *o);
    o->type = c[0] == 1 ? CFG_OBJ_SFT : CFG_OBJ_PRETRAIN;
    o->attribute.guide = "guide";
    o->attribute.lambda = c[1];
    o->attribute.q_base = CFG_QBASE_BASE;
    o->attribute.base = "base";
}

static void t_attr_base_parity(void) {
    CfgObjective o;
    attr_cfg(&o, CUR);
    Batch b = make_batch(B, TARGETS, MASK, LABELS);
    ObjectiveNorm norm = {0};
    ObjectiveStats st = {0};
    TaError err;
    T_CHECK(objective_norm_add(&norm, &o, &b, &err) == TA_OK, "norm: %s", err.msg);
    size_t n = (size_t)B * T * V;
    float *dl = ta_malloc(n * sizeof(float), "dl");
    int rc = run_float(&o, &b, R, GUIDE, BASE, &norm, 0, dl, NULL, &st, &err);
    T_CHECK(rc == TA_OK, "heads: %s", err.msg);
    const float *want = (const float *)ref_get(&REF, "attr_out")->data + (size_t)CUR * 3;
    T_CHECK(close_d(st.loss, want[0], 1e-6, 1e-5), "loss %.9g vs PyTorch %.9g", st.loss, want[0]);
    T_CHECK(close_d(st.nll, want[1], 1e-6, 1e-5), "nll %.9g vs PyTorch %.9g", st.nll, want[1]);
    T_CHECK(close_d(st.kl, want[2], 1e-6, 1e-5), "kl %.9g vs PyTorch %.9g", st.kl, want[2]);
    char name[32], msg[256];
    snprintf(name, sizeof name, "attr_dl.%d", CUR);
    const float *rd = ref_get(&REF, name)->data;
    int ok = compare("dlogits", dl, rd, n, 1e-5 * max_abs(rd, n), 1e-4, msg, sizeof msg);
    /* without the base's logits: refused */
    ObjectiveStats s2 = {0};
    rc = run_float(&o, &b, R, GUIDE, NULL, &norm, 0, NULL, NULL, &s2, &err);
    free(dl);
    T_CHECK(ok, "dlogits: %s", msg);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "q_base \"base\": the logit head needs the base"),
            "no base: %s", err.msg);
}

/* NLL + lambda/N sum_t KL(q0 || p(l)), q0 = softmax(log pb + log sigmoid(g)) fixed. */
static double attr_naive(const CfgObjective *o, const double *l, const double *q0) {
    double nll = 0, kl = 0, N = 0;
    for (int i = 0; i < B * T; i++) {
        int counted = o->type == CFG_OBJ_SFT ? MASK[i] : TARGETS[i] >= 0;
        if (!counted) continue;
        const double *li = l + (size_t)i * V;
        double mx = -INFINITY, z = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, li[v]);
        for (int v = 0; v < V; v++) z += exp(li[v] - mx);
        double lse = mx + log(z);
        nll -= li[TARGETS[i]] - lse;
        for (int v = 0; v < V; v++) {
            double q = q0[(size_t)i * V + v];
            if (q > 0) kl += q * (log(q) - (li[v] - lse));
        }
        N += 1;
    }
    return nll / N + o->attribute.lambda * kl / N;
}

static void t_attr_base_fd(void) {
    CfgObjective o;
    attr_cfg(&o, CUR);
    Batch b = make_batch(B, TARGETS, MASK, LABELS);
    size_t N = (size_t)B * T, n = N * V;
    double *l = ta_malloc(n * sizeof(double), "l"), *q0 = ta_malloc(n * sizeof(double), "q0");
    double *an = ta_malloc(n * sizeof(double), "an"), *gd = ta_malloc(n * sizeof(double), "gd");
    double *bs = ta_malloc(n * sizeof(double), "bs"), *lp = ta_malloc(N * sizeof(double), "lp");
    double *lse = ta_malloc(N * sizeof(double), "lse"), *dlp = ta_malloc(N * sizeof(double), "dlp");
    for (size_t i = 0; i < n; i++) l[i] = R[i], gd[i] = GUIDE[i], bs[i] = BASE[i];
    for (size_t i = 0; i < N; i++) {
        const double *li = l + i * V, *bi = bs + i * V;
        double mx = -INFINITY, z = 0, mb = -INFINITY, zb = 0, zq = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, li[v]), mb = fmax(mb, bi[v]);
        for (int v = 0; v < V; v++) z += exp(li[v] - mx), zb += exp(bi[v] - mb);
        lse[i] = mx + log(z);
        lp[i] = TARGETS[i] >= 0 ? li[TARGETS[i]] - lse[i] : 0.0;
        for (int v = 0; v < V; v++)
            zq += q0[i * V + v] = exp(bi[v] - mb) / zb / (1 + exp(-gd[i * V + v]));
        for (int v = 0; v < V; v++) q0[i * V + v] /= zq;
    }
    ObjectiveNorm norm = {0};
    ObjectiveStats st = {0};
    TaError err;
    T_CHECK(objective_norm_add(&norm, &o, &b, &err) == TA_OK, "norm: %s", err.msg);
    memcpy(an, l, n * sizeof(double));
    int rc = objective_forward_backward_f64(&o, &b, lp, NULL, &norm, dlp, &st, &err);
    if (rc == TA_OK)
        rc = objective_logits_forward_backward_f64(&o, &b, 0, (int)N, an, lse, dlp, gd, bs, V, V,
                                                   &norm, &st, &err);
    T_CHECK(rc == TA_OK, "heads: %s", err.msg);
    double l0 = attr_naive(&o, l, q0);
    T_CHECK(close_d(st.loss, l0, 1e-13, 1e-12), "head loss %.15g vs naive %.15g", st.loss, l0);
    char msg[256] = "";
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        double x0 = l[i], h = 1e-5;
        l[i] = x0 + h;
        double lplus = attr_naive(&o, l, q0);
        l[i] = x0 - h;
        double lminus = attr_naive(&o, l, q0);
        l[i] = x0;
        double fd = (lplus - lminus) / (2 * h);
        if (!close_d(an[i], fd, 1e-9, 1e-6)) {
            snprintf(msg, sizeof msg, "element %zu: analytic %.12g, finite difference %.12g", i,
                     an[i], fd);
            ok = 0;
        }
    }
    free(l); free(q0); free(an); free(gd); free(bs); free(lp); free(lse); free(dlp);
    T_CHECK(ok, "%s", msg);
}

int main(void) {
    if (ref_load(&REF, ref_path("nado")) != 0) {
        printf("FAIL nado_reference: cannot load %s (run tools/ref_nado.py)\n", ref_path("nado"));
        return 1;
    }
    RefRecord *r = ref_get(&REF, "r");
    TA_ASSERT(r && r->ndim == 3);
    B = (int)r->dims[0];
    T = (int)r->dims[1];
    V = (int)r->dims[2];
    TA_ASSERT(V <= VP && B <= 64);
    R = r->data;
    BASE = ref_get(&REF, "base")->data;
    GUIDE = ref_get(&REF, "guide")->data;
    LABELS = ref_get(&REF, "labels")->data;
    TARGETS = ref_get(&REF, "targets")->data;
    const int *mk = ref_get(&REF, "loss_mask")->data;
    MASK = ta_malloc((size_t)B * T, "mask");
    for (int i = 0; i < B * T; i++) MASK[i] = (uint8_t)mk[i];
    int nn = (int)ref_get(&REF, "nado_cfgs")->dims[0], na = (int)ref_get(&REF, "attr_cfgs")->dims[0];
    static const char *NN[] = {"alpha1", "alpha0.5_stop_grad", "alpha0", "alpha2.5"};
    char name[64];
    for (CUR = 0; CUR < nn && CUR < 4; CUR++) {
        snprintf(name, sizeof name, "nado_parity_%s", NN[CUR]);
        t_run(name, t_nado_parity);
        snprintf(name, sizeof name, "nado_fd_%s", NN[CUR]);
        t_run(name, t_nado_fd);
    }
    t_run("nado_rows_bitwise", t_nado_rows_bitwise);
    t_run("nado_bad_input", t_nado_bad_input);
    static const char *NA[] = {"sft", "pretrain"};
    for (CUR = 0; CUR < na && CUR < 2; CUR++) {
        snprintf(name, sizeof name, "attr_base_parity_%s", NA[CUR]);
        t_run(name, t_attr_base_parity);
        snprintf(name, sizeof name, "attr_base_fd_%s", NA[CUR]);
        t_run(name, t_attr_base_fd);
    }
    free(MASK);
    ref_free(&REF);
    return t_done();
}
