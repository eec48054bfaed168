/* test_objective.c — the loss heads against an independent PyTorch reference
 * (tools/ref_objectives.py, generated on every `make test`) and against themselves:
 *   parity_*   loss, TRL metrics and dlogits of every objective / variant vs PyTorch
 *              (float path: logsoftmax_gather -> objective -> logits_to_dlogits)
 *   fd_*       central finite differences of the double-precision path, loss as a function
 *              of every logit, against its own analytic dlogits
 *              (the attribute KL: its q is a stop-gradient target, so the differentiated
 *              function holds q fixed at the unperturbed logits)
 *   accumulate_*  4 micro-batches of 2 pairs == 1 batch of 8 pairs (dlogits bit-identical,
 *              loss and metrics to double rounding)
 *   orpo near P -> 1, DDPO(w = 1) == DPO bitwise, the metric table, bad input; the logit
 *   head: the one-step banned-set case (q = p with B zeroed, KL = -log(1 - p(B))), lambda 0
 *   == plain sft bitwise, any split of the token rows into chunks gives the same bits.
 *   SFT row weights (sft_weighted*: rows of weight 0 included) in the same three families,
 *   and weight-1 rows == no weights, bitwise. Rows that feed one term only
 *   (sft_attribute_klrows: data.train sources with "loss": "kl" / "nll", the KL over its
 *   own tokens) mixed with rows that feed both, in the same three families; such rows need
 *   sft + a guide.
 *   reward_*   the reward model's Bradley-Terry head on per-row scalars: loss, metrics and
 *              dL/dreward vs PyTorch, central differences of the double path, 4
 *              micro-batches == 1 batch, bad input.
 * The random inputs (logits, targets, masks, reference log-probs, weights) come from the
 * reference file; the C side recomputes everything. */
#include <math.h>
#include <string.h>

#include "objtest.h"
#include "refio.h"

#define VP 64 /* padded vocabulary of the C side (the reference has V = 40 columns) */

/* Variant names in tools/ref_objectives.py VARIANTS order (labels only: the configs
 * themselves are read from the file). */
static const char *VNAMES[] = {
    "pretrain",    "sft",           "dpo_sigmoid", "dpo_ipo",      "dpo_hinge",
    "dpo_cdpo",    "dpo_robust",    "dpo_rpo",     "orpo_response", "orpo_full",
    "ddpo",        "dorpo_clean",   "dorpo_quirk", "dorpo_clean_full", "ddpo_robust_rpo",
    "sft_attribute", "pretrain_attribute", "sft_weighted", "sft_attribute_weighted",
    "sft_attribute_klrows",
};
#define NVAR ((int)(sizeof VNAMES / sizeof VNAMES[0]))

/* ref_objectives.py METRICS order */
static const char *MNAMES[OBJ_METRIC_COUNT] = {
    "loss", "nll_loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies",
    "rewards/margins", "logps/chosen", "logps/rejected", "log_odds_ratio", "log_odds_chosen",
    "weights/mean", "kl", "bce", "consistency", "accuracy"};

static RefFile REF;
static int B, T, V, P;
static float *LOGITS;   /* (B,T,V) from the file */
static int *TARGETS;    /* (B,T) */
static uint8_t *MASK;   /* (B,T) */
static float *REFLP;    /* (B) */
static float *WEIGHTS;  /* (B) the running variant's row weights (the pair weights otherwise) */
static float *PAIR_WEIGHTS; /* (B) the pair weights, on both rows */
static float *GUIDE;    /* (B,T,V) a guide model's logits (objective.attribute) */
static uint8_t FEEDS[64]; /* (B) the running variant's Batch.feeds (RowFeeds) */
static int CUR;         /* variant of the running case */

/* ---- helpers ------------------------------------------------------------------------ */

static int variant_index(const char *name) {
    for (int k = 0; k < NVAR; k++)
        if (!strcmp(VNAMES[k], name)) return k;
    TA_ASSERT(0 && "unknown variant");
    return -1;
}

static void cfg_from_row(CfgObjective *o, int k) {
    RefRecord *r = ref_get(&REF, "cfgs");
    TA_ASSERT(r && (int)r->dims[0] == NVAR && r->dims[1] == 10);
    const float *c = (const float *)r->data + (size_t)k * 10;
    memset(o, 0, sizeof *o);
    o->type = (CfgObjectiveType)(int)c[0];
    o->beta = c[1];
    o->loss_type = (CfgLossType)(int)c[2];
    o->label_smoothing = c[3];
    o->sft_weight = c[4];
    o->lambda = c[5];
    o->nll_scope = (CfgNllScope)(int)c[6];
    o->dorpo_match_trl_quirk = c[7] != 0;
    o->odds_clamp = c[8];
    if (c[9] >= 0) {
        o->attribute.guide = "guide";
        o->attribute.lambda = c[9];
    }
}

/* A Batch over caller-owned arrays (rows in the pair layout when n_pairs > 0). */
static Batch make_batch(int rows, int n_pairs, int *targets, uint8_t *mask, float *weights) {
    Batch b = objtest_batch(rows, T, n_pairs, targets, mask);
    b.weights = weights;
    return b;
}

/* Float path of one micro-batch (objtest_run_float, the logit head in one call). */
static int run_float(const CfgObjective *o, const Batch *b, const float *logits,
                     const float *guide, const float *ref, const ObjectiveNorm *norm,
                     float *dlogits_out, ObjectiveStats *st, TaError *err) {
    return objtest_run_float(o, b, V, VP, logits, guide, NULL, ref, norm, 0, dlogits_out, NULL,
                             st, err);
}

/* Double log-softmax of one position: logp of target y and the softmax into p (V). */
static double row_logp_d(const double *l, int y, double *p) {
    double mx = -INFINITY, s = 0;
    for (int v = 0; v < V; v++) mx = fmax(mx, l[v]);
    for (int v = 0; v < V; v++) s += exp(l[v] - mx);
    double lse = mx + log(s);
    if (p)
        for (int v = 0; v < V; v++) p[v] = exp(l[v] - lse);
    return y >= 0 ? l[y] - lse : 0.0;
}

/* Double path loss (stats.loss) for double logits (rows,T,V); optional analytic dlogits. */
static double loss_d(const CfgObjective *o, const Batch *b, const double *logits, const double *lp,
                     const double *ref, const ObjectiveNorm *norm, double *dlogits) {
    size_t N = (size_t)b->B * b->T;
    ObjectiveStats st = {0};
    TaError err;
    double *dlp = dlogits ? ta_malloc(N * sizeof(double), "dlp") : NULL;
    int rc = objective_forward_backward_f64(o, b, lp, ref, norm, dlp, &st, &err);
    TA_ASSERT(rc == TA_OK);
    if (dlogits) {
        double *p = ta_malloc(V * sizeof(double), "p");
        for (size_t i = 0; i < N; i++) {
            row_logp_d(logits + i * V, b->targets[i], p);
            for (int v = 0; v < V; v++)
                dlogits[i * V + v] =
                    b->targets[i] < 0 ? 0.0 : dlp[i] * ((v == b->targets[i]) - p[v]);
        }
        free(p);
        free(dlp);
    }
    return st.loss;
}

static void load_inputs(void) {
    RefRecord *lg = ref_get(&REF, "logits"), *tg = ref_get(&REF, "targets"),
              *mk = ref_get(&REF, "loss_mask"), *rf = ref_get(&REF, "ref"),
              *wt = ref_get(&REF, "weights");
    TA_ASSERT(lg && tg && mk && rf && wt && lg->ndim == 3);
    B = (int)lg->dims[0];
    T = (int)lg->dims[1];
    V = (int)lg->dims[2];
    P = B / 2;
    TA_ASSERT(V <= VP);
    LOGITS = lg->data;
    TARGETS = tg->data;
    REFLP = rf->data;
    WEIGHTS = PAIR_WEIGHTS = wt->data;
    GUIDE = ref_get(&REF, "guide")->data;
    MASK = ta_malloc((size_t)B * T, "mask");
    for (int i = 0; i < B * T; i++) MASK[i] = (uint8_t)((int *)mk->data)[i];
}

static Batch full_batch(const CfgObjective *o) {
    Batch b = make_batch(B, objective_is_pairwise(o) ? P : 0, TARGETS, MASK, WEIGHTS);
    b.feeds = FEEDS;
    return b;
}

/* ---- parity with PyTorch ------------------------------------------------------------ */

static void t_parity(void) {
    CfgObjective o;
    cfg_from_row(&o, CUR);
    Batch b = full_batch(&o);
    TaError err;
    ObjectiveNorm norm = {0};
    ObjectiveStats st = {0};
    T_CHECK(objective_norm_add(&norm, &o, &b, &err) == TA_OK, "norm_add: %s", err.msg);
    size_t n = (size_t)B * T * V;
    float *dl = ta_malloc(n * sizeof(float), "dl");
    int rc = run_float(&o, &b, LOGITS, GUIDE, objective_needs_reference(&o) ? REFLP : NULL, &norm,
                       dl, &st, &err);
    T_CHECK(rc == TA_OK, "forward_backward: %s", err.msg);
    ObjectiveMetrics m;
    objective_stats_finish(&o, &st, &m);
    double ref_loss = ((float *)ref_get(&REF, "losses")->data)[CUR];
    /* float32 log-probs summed in double: ~1e-7 relative per token, ~3e-7 seen on the loss */
    T_CHECK(close_d(st.loss, ref_loss, 1e-6, 1e-5), "loss %.9g vs PyTorch %.9g", st.loss, ref_loss);
    T_CHECK(m.m[OBJ_METRIC_LOSS].value == st.loss, "metric loss != stats loss");
    const float *rm = (const float *)ref_get(&REF, "metrics")->data + (size_t)CUR * OBJ_METRIC_COUNT;
    for (int i = 0; i < OBJ_METRIC_COUNT; i++) {
        T_CHECK(!strcmp(m.m[i].name, MNAMES[i]), "metric %d named %s, expected %s", i, m.m[i].name,
                MNAMES[i]);
        T_CHECK(m.m[i].present == !isnan(rm[i]), "metric %s: present=%d but PyTorch %s it",
                MNAMES[i], m.m[i].present, isnan(rm[i]) ? "does not define" : "defines");
        if (m.m[i].present)
            T_CHECK(close_d(m.m[i].value, rm[i], 2e-6, 1e-5), "metric %s: %.9g vs PyTorch %.9g",
                    MNAMES[i], m.m[i].value, (double)rm[i]);
    }
    char name[32], msg[512];
    snprintf(name, sizeof name, "dlogits.%d", CUR);
    const float *rd = ref_get(&REF, name)->data;
    /* float32 softmax times a double-computed dlogp: relative 1e-5 of each element plus 1e-5
     * of the largest gradient (the cancellation in 1[v=y] - softmax_v) */
    int ok = compare("dlogits", dl, rd, n, 1e-5 * max_abs(rd, n), 1e-5, msg, sizeof msg);
    free(dl);
    T_CHECK(ok, "%s", msg);
}

/* ---- finite differences of the double path ------------------------------------------ */

/* Central differences of stats.loss w.r.t. every logit of (rows,T,V) double logits vs the
 * analytic dlogits of the double path. h and the tolerance are the caller's. */
static int fd_check(const CfgObjective *o, const Batch *b, double *logits, const double *ref,
                    double h, double atol, double rtol, char *msg, size_t cap) {
    size_t N = (size_t)b->B * b->T;
    double *lp = ta_malloc(N * sizeof(double), "lp"), *an = ta_malloc(N * V * sizeof(double), "an");
    for (size_t i = 0; i < N; i++) lp[i] = row_logp_d(logits + i * V, b->targets[i], NULL);
    ObjectiveNorm norm = {0};
    TaError err;
    TA_ASSERT(objective_norm_add(&norm, o, b, &err) == TA_OK);
    loss_d(o, b, logits, lp, ref, &norm, an);
    int ok = 1;
    for (size_t i = 0; i < N && ok; i++)
        for (int v = 0; v < V && ok; v++) {
            double *x = &logits[i * V + v], x0 = *x, save = lp[i];
            *x = x0 + h;
            lp[i] = row_logp_d(logits + i * V, b->targets[i], NULL);
            double lplus = loss_d(o, b, logits, lp, ref, &norm, NULL);
            *x = x0 - h;
            lp[i] = row_logp_d(logits + i * V, b->targets[i], NULL);
            double lminus = loss_d(o, b, logits, lp, ref, &norm, NULL);
            *x = x0;
            lp[i] = save;
            double fd = (lplus - lminus) / (2 * h), a = an[i * V + v];
            if (!close_d(a, fd, atol, rtol)) {
                snprintf(msg, cap, "row %zu pos %zu v %d: analytic %.12g, finite difference %.12g",
                         i / b->T, i % b->T, v, a, fd);
                ok = 0;
            }
        }
    free(lp);
    free(an);
    return ok;
}

/* The attribute variants: L(l) = fast-path loss(l) + lambda/N sum_t sum_v q0 log(q0 / p(l))
 * over the NLL's tokens, q0 = softmax(log p + log sigmoid(r)) computed here at the
 * unperturbed logits and then held fixed (it is a stop-gradient target). Checks the head's
 * loss equals L(l0), then central differences of L against the heads' analytic dlogits
 * (objective_forward_backward_f64 + objective_logits_forward_backward_f64). */
static double attr_loss_frozen(const CfgObjective *o, const Batch *b, const double *logits,
                               const double *q0, const ObjectiveNorm *norm) {
    size_t N = (size_t)b->B * b->T;
    double *lp = ta_malloc(N * sizeof(double), "lp"), *p = ta_malloc(V * sizeof(double), "p");
    double kl = 0, n = 0;
    for (size_t i = 0; i < N; i++) {
        lp[i] = row_logp_d(logits + i * V, b->targets[i], p);
        /* sft: the row's weight scales its KL terms, as its NLL, unless the row feeds the
         * NLL only (KL-only rows do have KL terms); n = the KL's tokens (rows with w > 0) */
        double w = o->type == CFG_OBJ_SFT && b->weights ? b->weights[i / b->T] : 1.0;
        if (b->feeds && b->feeds[i / b->T] == ROW_FEEDS_NLL) w = 0;
        int counted = o->type == CFG_OBJ_SFT ? b->loss_mask[i] : b->targets[i] >= 0;
        n += counted && w > 0;
        for (int v = 0; counted && v < V; v++)
            if (q0[i * V + v] > 0) kl += w * q0[i * V + v] * (log(q0[i * V + v]) - log(p[v]));
    }
    double l = loss_d(o, b, logits, lp, NULL, norm, NULL) + o->attribute.lambda * kl / n;
    free(lp);
    free(p);
    return l;
}

static int fd_attribute(const CfgObjective *o, const Batch *b, double *logits, char *msg,
                        size_t cap) {
    size_t N = (size_t)b->B * b->T, n = N * V;
    double *q0 = ta_malloc(n * sizeof(double), "q0"), *an = ta_malloc(n * sizeof(double), "an");
    double *lp = ta_malloc(N * sizeof(double), "lp"), *lse = ta_malloc(N * sizeof(double), "lse");
    double *dlp = ta_malloc(N * sizeof(double), "dlp"), *gd = ta_malloc(n * sizeof(double), "gd");
    for (size_t i = 0; i < n; i++) gd[i] = GUIDE[i];
    for (size_t i = 0; i < N; i++) {
        double *p = q0 + i * V, z = 0;
        lp[i] = row_logp_d(logits + i * V, b->targets[i], p);
        lse[i] = logits[i * V] - log(p[0]);
        for (int v = 0; v < V; v++) z += p[v] /= 1 + exp(-gd[i * V + v]); /* p R */
        for (int v = 0; v < V; v++) p[v] /= z;
    }
    ObjectiveNorm norm = {0};
    ObjectiveStats st = {0};
    TaError err;
    TA_ASSERT(objective_norm_add(&norm, o, b, &err) == TA_OK);
    memcpy(an, logits, n * sizeof(double));
    int ok = objective_forward_backward_f64(o, b, lp, NULL, &norm, dlp, &st, &err) == TA_OK &&
             objective_logits_forward_backward_f64(o, b, 0, (int)N, an, lse, dlp, gd, NULL, V, V, &norm,
                                                   &st, &err) == TA_OK;
    if (!ok) snprintf(msg, cap, "heads failed: %.400s", err.msg);
    double l0 = attr_loss_frozen(o, b, logits, q0, &norm);
    if (ok && !close_d(st.loss, l0, 1e-13, 1e-12)) {
        snprintf(msg, cap, "head loss %.15g vs NLL + lambda KL(q0 || p) %.15g", st.loss, l0);
        ok = 0;
    }
    for (size_t i = 0; i < n && ok; i++) {
        double x0 = logits[i], h = 1e-5;
        logits[i] = x0 + h;
        double lplus = attr_loss_frozen(o, b, logits, q0, &norm);
        logits[i] = x0 - h;
        double lminus = attr_loss_frozen(o, b, logits, q0, &norm);
        logits[i] = x0;
        double fd = (lplus - lminus) / (2 * h);
        if (!close_d(an[i], fd, 1e-9, 1e-6)) {
            snprintf(msg, cap, "row %zu pos %zu v %zu: analytic %.12g, finite difference %.12g",
                     i / V / b->T, i / V % b->T, i % V, an[i], fd);
            ok = 0;
        }
    }
    free(q0); free(an); free(lp); free(lse); free(dlp); free(gd);
    return ok;
}

static void t_fd(void) {
    CfgObjective o;
    cfg_from_row(&o, CUR);
    Batch b = full_batch(&o);
    if (objective_has_logit_head(&o)) {
        size_t n = (size_t)B * T * V;
        double *lg = ta_malloc(n * sizeof(double), "lg");
        for (size_t i = 0; i < n; i++) lg[i] = LOGITS[i];
        char msg[512];
        int ok = fd_attribute(&o, &b, lg, msg, sizeof msg);
        free(lg);
        T_CHECK(ok, "%s", msg);
        return;
    }
    size_t n = (size_t)B * T * V;
    double *lg = ta_malloc(n * sizeof(double), "lg"), ref[64];
    for (size_t i = 0; i < n; i++) lg[i] = LOGITS[i];
    for (int r = 0; r < B; r++) ref[r] = REFLP[r];
    char msg[512];
    /* h = 1e-5: truncation ~h^2 f''' ~ 1e-10, round-off ~1e-16 |L| / h ~ 1e-10 */
    int ok = fd_check(&o, &b, lg, objective_needs_reference(&o) ? ref : NULL, 1e-5, 1e-9, 1e-6,
                      msg, sizeof msg);
    free(lg);
    T_CHECK(ok, "%s", msg);
}

/* ---- gradient accumulation ---------------------------------------------------------- */

/* 4 micro-batches (2 pairs each; 4 rows each for pretrain/sft) vs the whole batch. */
static void t_accumulate(void) {
    CfgObjective o;
    cfg_from_row(&o, CUR);
    int pairwise = objective_is_pairwise(&o);
    const int K = 4, per = pairwise ? P / K : B / K; /* pairs (or rows) per micro-batch */
    TA_ASSERT(per * K == (pairwise ? P : B));
    const float *ref = objective_needs_reference(&o) ? REFLP : NULL;
    TaError err;
    size_t n = (size_t)B * T * V;

    Batch big = full_batch(&o);
    ObjectiveNorm nb = {0};
    ObjectiveStats sb = {0};
    float *dbig = ta_malloc(n * sizeof(float), "dbig"), *dacc = ta_malloc(n * sizeof(float), "dacc");
    T_CHECK(objective_norm_add(&nb, &o, &big, &err) == TA_OK, "%s", err.msg);
    T_CHECK(run_float(&o, &big, LOGITS, GUIDE, ref, &nb, dbig, &sb, &err) == TA_OK, "%s", err.msg);

    /* micro-batch k's rows: pairwise -> chosen k*per.., rejected P + k*per..; else k*per.. */
    int rows = pairwise ? 2 * per : per;
    int *map = ta_malloc(sizeof(int) * K * rows, "map");
    for (int k = 0; k < K; k++)
        for (int j = 0; j < rows; j++)
            map[k * rows + j] = pairwise ? (j < per ? k * per + j : P + k * per + (j - per))
                                         : k * per + j;
    int *tg = ta_malloc(sizeof(int) * K * rows * T, "tg");
    uint8_t *mk = ta_malloc((size_t)K * rows * T, "mk");
    float *wt = ta_malloc(sizeof(float) * K * rows, "wt"), *rf = ta_malloc(sizeof(float) * K * rows, "rf");
    uint8_t ko[64];
    float *lg = ta_malloc(sizeof(float) * K * rows * T * V, "lg");
    float *gd = ta_malloc(sizeof(float) * K * rows * T * V, "gd");
    float *dl = ta_malloc(sizeof(float) * K * rows * T * V, "dl");
    for (int q = 0; q < K * rows; q++) {
        int r = map[q];
        memcpy(tg + (size_t)q * T, TARGETS + (size_t)r * T, sizeof(int) * T);
        memcpy(mk + (size_t)q * T, MASK + (size_t)r * T, T);
        memcpy(lg + (size_t)q * T * V, LOGITS + (size_t)r * T * V, sizeof(float) * T * V);
        memcpy(gd + (size_t)q * T * V, GUIDE + (size_t)r * T * V, sizeof(float) * T * V);
        wt[q] = WEIGHTS[r];
        ko[q] = FEEDS[r];
        rf[q] = REFLP[r];
    }
    Batch mb[4];
    ObjectiveNorm na = {0};
    ObjectiveStats sa = {0};
    for (int k = 0; k < K; k++) {
        mb[k] = make_batch(rows, pairwise ? per : 0, tg + (size_t)k * rows * T,
                           mk + (size_t)k * rows * T, wt + k * rows);
        mb[k].feeds = ko + k * rows;
        T_CHECK(objective_norm_add(&na, &o, &mb[k], &err) == TA_OK, "%s", err.msg);
    }
    T_CHECK(!memcmp(&na, &nb, sizeof na), "normalisers of the micro-batches differ from the big batch's");
    for (int k = 0; k < K; k++)
        T_CHECK(run_float(&o, &mb[k], lg + (size_t)k * rows * T * V, gd + (size_t)k * rows * T * V,
                          ref ? rf + k * rows : NULL, &na, dl + (size_t)k * rows * T * V, &sa,
                          &err) == TA_OK, "%s", err.msg);
    for (int q = 0; q < K * rows; q++)
        memcpy(dacc + (size_t)map[q] * T * V, dl + (size_t)q * T * V, sizeof(float) * T * V);
    int same = !memcmp(dacc, dbig, n * sizeof(float));
    ObjectiveMetrics ma, mbig;
    objective_stats_finish(&o, &sa, &ma);
    objective_stats_finish(&o, &sb, &mbig);
    free(dbig); free(dacc); free(map); free(tg); free(mk); free(wt); free(rf); free(lg); free(gd);
    free(dl);
    /* a token's dlogp depends only on its pair and the step normaliser: identical bits */
    T_CHECK(same, "accumulated dlogits differ from the big batch's");
    for (int i = 0; i < OBJ_METRIC_COUNT; i++) {
        T_CHECK(ma.m[i].present == mbig.m[i].present, "metric %s presence differs", MNAMES[i]);
        T_CHECK(close_d(ma.m[i].value, mbig.m[i].value, 1e-13, 1e-12),
                "metric %s: accumulated %.17g vs big batch %.17g", MNAMES[i], ma.m[i].value,
                mbig.m[i].value);
    }
}

/* ---- ORPO near P -> 1 --------------------------------------------------------------- */

static void t_orpo_saturated(void) {
    RefRecord *lgr = ref_get(&REF, "sat.logits"), *tgr = ref_get(&REF, "sat.targets"),
              *mkr = ref_get(&REF, "sat.loss_mask");
    T_CHECK(lgr && tgr && mkr, "sat records missing");
    int sB = (int)lgr->dims[0], sT = (int)lgr->dims[1];
    int saveT = T;
    T = sT;
    uint8_t mk[64];
    for (int i = 0; i < sB * sT; i++) mk[i] = (uint8_t)((int *)mkr->data)[i];
    float ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    Batch b = make_batch(sB, sB / 2, tgr->data, mk, ones);
    CfgObjective o = {.type = CFG_OBJ_ORPO, .lambda = 0.25, .odds_clamp = 1e-6, .beta = 0.1};
    ObjectiveNorm norm = {0};
    TaError err;
    int rc = objective_norm_add(&norm, &o, &b, &err);
    size_t N = (size_t)sB * sT, n = N * V;
    /* float path: A of the 22-nat row rounds to 0 (or -ulp): clamped, finite */
    float *dl = ta_malloc(n * sizeof(float), "dl");
    ObjectiveStats st = {0};
    if (rc == TA_OK) rc = run_float(&o, &b, lgr->data, NULL, NULL, &norm, dl, &st, &err);
    int finite = 1;
    for (size_t i = 0; i < n; i++) finite &= isfinite(dl[i]) != 0;
    double ref_loss = ((float *)ref_get(&REF, "sat.loss")->data)[0];
    double floss = st.loss;
    free(dl);
    /* double path from the same logits: A = -1e-9 exactly as PyTorch (float64) sees it */
    double *lg = ta_malloc(n * sizeof(double), "lg"), *an = ta_malloc(n * sizeof(double), "an");
    double *lp = ta_malloc(N * sizeof(double), "lp");
    for (size_t i = 0; i < n; i++) lg[i] = ((float *)lgr->data)[i];
    for (size_t i = 0; i < N; i++) lp[i] = row_logp_d(lg + i * V, b.targets[i], NULL);
    double dloss = rc == TA_OK ? loss_d(&o, &b, lg, lp, NULL, &norm, an) : NAN;
    float *anf = ta_malloc(n * sizeof(float), "anf");
    for (size_t i = 0; i < n; i++) anf[i] = (float)an[i];
    char msg[512];
    const float *rd = ref_get(&REF, "sat.dlogits")->data;
    int ok = compare("sat dlogits (double path)", anf, rd, n, 1e-7 * max_abs(rd, n), 1e-6, msg,
                     sizeof msg);
    /* the same batch with logp forced to exactly 0 (A = 0) on every response token, and far
     * out (A = -1000): still finite */
    double *dlp = ta_malloc(N * sizeof(double), "dlp");
    int extreme_ok = 1;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < N; i++) lp[i] = b.targets[i] < 0 ? 0 : mk[i] ? (pass ? -1000.0 : 0.0) : -1.0;
        ObjectiveStats s2 = {0};
        extreme_ok &= objective_forward_backward_f64(&o, &b, lp, NULL, &norm, dlp, &s2, &err) == TA_OK;
        extreme_ok &= isfinite(s2.loss) != 0;
        for (size_t i = 0; i < N; i++) extreme_ok &= isfinite(dlp[i]) != 0;
    }
    T = saveT;
    free(lg); free(an); free(lp); free(anf); free(dlp);
    T_CHECK(rc == TA_OK, "%s", err.msg);
    T_CHECK(finite && isfinite(floss), "float path not finite: loss %g", floss);
    T_CHECK(close_d(floss, ref_loss, 1e-5, 1e-5), "float loss %.9g vs PyTorch %.9g", floss, ref_loss);
    T_CHECK(close_d(dloss, ref_loss, 1e-7, 1e-6), "double loss %.12g vs PyTorch %.12g", dloss, ref_loss);
    T_CHECK(ok, "%s", msg);
    T_CHECK(extreme_ok, "A = 0 or A = -1000 gave an error or a non-finite value");
}

/* FD of the double path on the saturated batch (one clamped row, one at A ~ -1e-3). */
static void t_fd_orpo_saturated(void) {
    RefRecord *lgr = ref_get(&REF, "sat.logits"), *tgr = ref_get(&REF, "sat.targets"),
              *mkr = ref_get(&REF, "sat.loss_mask");
    int sB = (int)lgr->dims[0], sT = (int)lgr->dims[1], saveT = T;
    T = sT;
    uint8_t mk[64];
    for (int i = 0; i < sB * sT; i++) mk[i] = (uint8_t)((int *)mkr->data)[i];
    Batch b = make_batch(sB, sB / 2, tgr->data, mk, NULL);
    CfgObjective o = {.type = CFG_OBJ_ORPO, .lambda = 0.25, .odds_clamp = 1e-6};
    size_t n = (size_t)sB * sT * V;
    double *lg = ta_malloc(n * sizeof(double), "lg");
    for (size_t i = 0; i < n; i++) lg[i] = ((float *)lgr->data)[i];
    char msg[512];
    /* dlogodds/dA ~ 600 and its derivative ~4e5 at A ~ -1.6e-3: a smaller step */
    int ok = fd_check(&o, &b, lg, NULL, 1e-7, 1e-8, 1e-5, msg, sizeof msg);
    T = saveT;
    free(lg);
    T_CHECK(ok, "%s", msg);
}

/* ---- DDPO with unit weights is DPO, to the bit --------------------------------------- */

static void t_ddpo_unit_weights_is_dpo(void) {
    float ones[64];
    for (int i = 0; i < B; i++) ones[i] = 1.0f;
    Batch b = make_batch(B, P, TARGETS, MASK, ones);
    size_t n = (size_t)B * T * V;
    float *d1 = ta_malloc(n * sizeof(float), "d1"), *d2 = ta_malloc(n * sizeof(float), "d2");
    for (int lt = CFG_LOSS_SIGMOID; lt <= CFG_LOSS_ROBUST; lt++) {
        CfgObjective dpo = {.type = CFG_OBJ_DPO, .beta = 0.1, .loss_type = (CfgLossType)lt,
                            .label_smoothing = lt == CFG_LOSS_IPO || lt == CFG_LOSS_HINGE ? 0 : 0.1,
                            .sft_weight = 0.3};
        CfgObjective ddpo = dpo;
        ddpo.type = CFG_OBJ_DDPO;
        ObjectiveNorm n1 = {0}, n2 = {0};
        ObjectiveStats s1 = {0}, s2 = {0};
        TaError err;
        T_CHECK(objective_norm_add(&n1, &dpo, &b, &err) == TA_OK, "%s", err.msg);
        T_CHECK(objective_norm_add(&n2, &ddpo, &b, &err) == TA_OK, "%s", err.msg);
        T_CHECK(run_float(&dpo, &b, LOGITS, NULL, REFLP, &n1, d1, &s1, &err) == TA_OK, "%s", err.msg);
        T_CHECK(run_float(&ddpo, &b, LOGITS, NULL, REFLP, &n2, d2, &s2, &err) == TA_OK, "%s", err.msg);
        T_CHECK(!memcmp(d1, d2, n * sizeof(float)), "loss type %d: dlogits differ", lt);
        T_CHECK(!memcmp(&s1, &s2, sizeof s1), "loss type %d: stats differ (loss %.17g vs %.17g)", lt,
                s1.loss, s2.loss);
    }
    free(d1);
    free(d2);
}

/* ---- metrics table ------------------------------------------------------------------ */

static void t_metric_table(void) {
    for (int i = 0; i < OBJ_METRIC_COUNT; i++)
        T_CHECK(!strcmp(objective_metric_name((ObjectiveMetricId)i), MNAMES[i]), "name %d", i);
    /* which metrics each objective defines */
    struct { CfgObjective o; const char *expect; } cases[] = {
        {{.type = CFG_OBJ_PRETRAIN}, "loss"},
        {{.type = CFG_OBJ_SFT}, "loss"},
        {{.type = CFG_OBJ_DPO, .beta = 0.1}, "loss rewards/chosen rewards/rejected rewards/accuracies rewards/margins logps/chosen logps/rejected"},
        {{.type = CFG_OBJ_DPO, .beta = 0.1, .sft_weight = 1}, "loss nll_loss rewards/chosen rewards/rejected rewards/accuracies rewards/margins logps/chosen logps/rejected"},
        {{.type = CFG_OBJ_DDPO, .beta = 0.1}, "loss rewards/chosen rewards/rejected rewards/accuracies rewards/margins logps/chosen logps/rejected weights/mean"},
        {{.type = CFG_OBJ_ORPO, .lambda = 0.1, .odds_clamp = 1e-6}, "loss nll_loss rewards/chosen rewards/rejected rewards/accuracies rewards/margins logps/chosen logps/rejected log_odds_ratio log_odds_chosen"},
        {{.type = CFG_OBJ_DORPO, .lambda = 0.1, .odds_clamp = 1e-6}, "loss nll_loss rewards/chosen rewards/rejected rewards/accuracies rewards/margins logps/chosen logps/rejected log_odds_ratio log_odds_chosen weights/mean"},
        {{.type = CFG_OBJ_SFT, .attribute = {.guide = "g", .lambda = 0.5}}, "loss nll_loss kl"},
        {{.type = CFG_OBJ_PRETRAIN, .attribute = {.guide = "g", .lambda = 0}}, "loss nll_loss kl"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Batch b = full_batch(&cases[c].o);
        ObjectiveNorm norm = {0};
        ObjectiveStats st = {0};
        TaError err;
        T_CHECK(objective_norm_add(&norm, &cases[c].o, &b, &err) == TA_OK, "%s", err.msg);
        T_CHECK(run_float(&cases[c].o, &b, LOGITS, GUIDE, REFLP, &norm, NULL, &st, &err) == TA_OK, "%s", err.msg);
        ObjectiveMetrics m;
        objective_stats_finish(&cases[c].o, &st, &m);
        char got[512] = "";
        for (int i = 0; i < OBJ_METRIC_COUNT; i++)
            if (m.m[i].present) {
                if (*got) strcat(got, " ");
                strcat(got, m.m[i].name);
                T_CHECK(isfinite(m.m[i].value), "case %zu: %s not finite", c, m.m[i].name);
            }
        T_CHECK(!strcmp(got, cases[c].expect), "case %zu: metrics \"%s\", expected \"%s\"", c, got,
                cases[c].expect);
    }
    CfgObjective o = {.type = CFG_OBJ_DPO};
    T_CHECK(objective_needs_reference(&o), "dpo needs a reference");
    o.type = CFG_OBJ_DDPO;
    T_CHECK(objective_needs_reference(&o), "ddpo needs a reference");
    o.type = CFG_OBJ_ORPO;
    T_CHECK(!objective_needs_reference(&o) && objective_is_pairwise(&o), "orpo");
    o.type = CFG_OBJ_SFT;
    T_CHECK(!objective_needs_reference(&o) && !objective_is_pairwise(&o), "sft");
}

/* forward-only (dlogp NULL) gives the same sums; objective_sequence_logps is S. */
static void t_forward_only_and_seq_logps(void) {
    CfgObjective o = {.type = CFG_OBJ_DORPO, .lambda = 0.3, .odds_clamp = 1e-6};
    Batch b = full_batch(&o);
    size_t N = (size_t)B * T;
    float *lg = ta_malloc(N * VP * sizeof(float), "lg"), *lse = ta_malloc(N * sizeof(float), "lse");
    float *lp = ta_malloc(N * sizeof(float), "lp"), *dlp = ta_malloc(N * sizeof(float), "dlp");
    for (size_t i = 0; i < N; i++)
        for (int v = 0; v < VP; v++) lg[i * VP + v] = v < V ? LOGITS[i * V + v] : 0;
    logsoftmax_gather(lp, lse, lg, TARGETS, (int)N, V, VP);
    ObjectiveNorm norm = {0};
    ObjectiveStats s1 = {0}, s2 = {0};
    TaError err;
    int rc = objective_norm_add(&norm, &o, &b, &err);
    if (rc == TA_OK) rc = objective_forward_backward(&o, &b, lp, NULL, &norm, dlp, &s1, &err);
    if (rc == TA_OK) rc = objective_forward_backward(&o, &b, lp, NULL, &norm, NULL, &s2, &err);
    float seq[64];
    objective_sequence_logps(seq, &b, lp);
    double worst = 0;
    for (int r = 0; r < B; r++) {
        double s = 0;
        for (int t = 0; t < T; t++) s += MASK[r * T + t] ? lp[r * T + t] : 0;
        worst = fmax(worst, fabs(s - seq[r]));
    }
    free(lg); free(lse); free(lp); free(dlp);
    T_CHECK(rc == TA_OK, "%s", err.msg);
    T_CHECK(!memcmp(&s1, &s2, sizeof s1), "forward-only stats differ");
    T_CHECK(worst < 1e-5, "objective_sequence_logps off by %g", worst);
}

/* ---- bad input ---------------------------------------------------------------------- */

/* Runs o on a (possibly damaged) copy of the batch; expects rc and a message containing
 * `needle`, and stats untouched. */
static int expect_fail(const CfgObjective *o, Batch *b, const float *lp, const float *ref,
                       int expect_rc, const char *needle, char *why, size_t cap) {
    TaError err = {0};
    ObjectiveNorm norm = {0};
    ObjectiveStats st = {0}, zero = {0};
    float dlp[1024];
    int rc = objective_norm_add(&norm, o, b, &err);
    if (rc == TA_OK) {
        rc = objective_forward_backward(o, b, lp, ref, &norm, dlp, &st, &err);
    }
    if (rc != expect_rc || !strstr(err.msg, needle) || memcmp(&st, &zero, sizeof st)) {
        snprintf(why, cap, "rc %d (want %d), message \"%s\" (want \"%s\")", rc, expect_rc, err.msg,
                 needle);
        return 0;
    }
    return 1;
}

static void t_bad_input(void) {
    size_t N = (size_t)B * T;
    TA_ASSERT(N <= 1024);
    int tg[1024];
    uint8_t mk[1024];
    float lp[1024], wt[64], rf[64];
    char why[1400];
    CfgObjective dpo = {.type = CFG_OBJ_DPO, .beta = 0.1};
    CfgObjective ddpo = {.type = CFG_OBJ_DDPO, .beta = 0.1};
    CfgObjective orpo = {.type = CFG_OBJ_ORPO, .lambda = 0.1, .odds_clamp = 1e-6};
    CfgObjective dorpo = {.type = CFG_OBJ_DORPO, .lambda = 0.1, .odds_clamp = 1e-6};
    CfgObjective sft = {.type = CFG_OBJ_SFT};
#define RESET()                                                                       \
    do {                                                                              \
        memcpy(tg, TARGETS, N * sizeof(int));                                         \
        memcpy(mk, MASK, N);                                                          \
        memcpy(wt, WEIGHTS, B * sizeof(float));                                       \
        memcpy(rf, REFLP, B * sizeof(float));                                         \
        for (size_t i = 0; i < N; i++) lp[i] = tg[i] < 0 ? 0.0f : -1.5f;              \
    } while (0)
#define EXPECT(o, b, ref, rc, needle) \
    T_CHECK(expect_fail(o, b, lp, ref, rc, needle, why, sizeof why), "%s:%d %s", #o, __LINE__, why)
    Batch b = make_batch(B, P, tg, mk, wt);

    /* a chosen / a rejected response without completion tokens */
    RESET();
    memset(mk + 2 * T, 0, T); /* row 2 = pair 2 chosen */
    EXPECT(&dpo, &b, rf, TA_EINPUT, "pair 2: the chosen response (batch row 2) has no completion");
    EXPECT(&orpo, &b, rf, TA_EINPUT, "pair 2");
    RESET();
    memset(mk + (size_t)(P + 5) * T, 0, T);
    EXPECT(&dorpo, &b, rf, TA_EINPUT, "pair 5: the rejected response");
    /* non-finite log-prob / reference */
    RESET();
    lp[1 * T + 0] = NAN;
    EXPECT(&dpo, &b, rf, TA_ERUNTIME, "non-finite log-prob nan at batch row 1 position 0");
    EXPECT(&orpo, &b, rf, TA_ERUNTIME, "non-finite log-prob");
    RESET();
    lp[(size_t)(P + 1) * T] = -INFINITY;
    EXPECT(&ddpo, &b, rf, TA_ERUNTIME, "non-finite log-prob -inf");
    RESET();
    rf[P + 3] = INFINITY;
    EXPECT(&dpo, &b, rf, TA_ERUNTIME, "non-finite reference log-prob inf for batch row 11");
    RESET();
    EXPECT(&dpo, &b, NULL, TA_EINPUT, "needs the reference");
    /* weights */
    RESET();
    wt[4] = -0.5f;
    EXPECT(&ddpo, &b, rf, TA_EINPUT, "pair 4: weight -0.5");
    EXPECT(&dorpo, &b, rf, TA_EINPUT, "pair 4: weight -0.5");
    wt[4] = NAN;
    EXPECT(&ddpo, &b, rf, TA_EINPUT, "pair 4: weight nan");
    /* layout */
    RESET();
    Batch odd = make_batch(B - 1, P, tg, mk, wt);
    EXPECT(&dpo, &odd, rf, TA_EINPUT, "2 x n_pairs rows");
    Batch nopairs = make_batch(B, 0, tg, mk, wt);
    EXPECT(&orpo, &nopairs, rf, TA_EINPUT, "2 x n_pairs rows");
    RESET();
    {
        size_t pad = 0;
        while (pad < N && tg[pad] >= 0) pad++;
        TA_ASSERT(pad < N);
        mk[pad] = 1;
    }
    EXPECT(&dpo, &b, rf, TA_EINPUT, "loss_mask set where there is no target");
    /* sft with no completion token in the whole step */
    RESET();
    memset(mk, 0, N);
    Batch sb = make_batch(B, 0, tg, mk, wt);
    EXPECT(&sft, &sb, NULL, TA_EINPUT, "no completion tokens");
    /* parameters */
    RESET();
    CfgObjective robust = {.type = CFG_OBJ_DPO, .beta = 0.1, .loss_type = CFG_LOSS_ROBUST,
                           .label_smoothing = 0.5};
    EXPECT(&robust, &b, rf, TA_EINPUT, "label_smoothing");
    /* a normaliser that does not contain the micro-batch (objective_norm_add forgotten) */
    {
        ObjectiveNorm empty = {0};
        ObjectiveStats st = {0};
        TaError err;
        int rc = objective_forward_backward(&dpo, &b, lp, rf, &empty, NULL, &st, &err);
        T_CHECK(rc == TA_ERUNTIME && strstr(err.msg, "objective_norm_add"), "empty norm: rc %d %s",
                rc, err.msg);
    }
    /* objective_norm_add leaves n unchanged on a bad batch */
    {
        ObjectiveNorm n1 = {0}, n0;
        TaError err;
        T_CHECK(objective_norm_add(&n1, &dpo, &b, &err) == TA_OK, "%s", err.msg);
        n0 = n1;
        memset(mk + T, 0, T);
        T_CHECK(objective_norm_add(&n1, &dpo, &b, &err) == TA_EINPUT, "bad batch accepted");
        T_CHECK(!memcmp(&n0, &n1, sizeof n0), "norm changed by a rejected batch");
    }
#undef RESET
#undef EXPECT
}

/* ---- the logit head ----------------------------------------------------------------- */

/* One token, a one-step constraint "next token not in Bset": r = +40 outside Bset, -40 in it,
 * so R = 1[v not in Bset] to float precision. Then q = p with Bset zeroed and renormalised
 * and KL = -log(1 - p(Bset)). With dlogp = 0 and lambda = N = 1 the head leaves dlogits =
 * p - q, so q = p - dlogits. Float and double paths. */
static void t_attribute_banned_set(void) {
    enum { NV = 12 };
    const int banned[NV] = {0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0}; /* Bset = {2, 5, 7} */
    double ld[NV], gd[NV], pd[NV], dlp_d = 0, mx = -INFINITY, z = 0, pB = 0;
    float lf[NV], gf[NV], dlp_f = 0;
    for (int v = 0; v < NV; v++) {
        ld[v] = LOGITS[v]; /* any logits */
        lf[v] = (float)ld[v];
        gd[v] = gf[v] = banned[v] ? -40.0f : 40.0f;
        mx = fmax(mx, ld[v]);
    }
    for (int v = 0; v < NV; v++) z += exp(ld[v] - mx);
    double lse = mx + log(z);
    for (int v = 0; v < NV; v++) {
        pd[v] = exp(ld[v] - lse);
        if (banned[v]) pB += pd[v];
    }
    int tg = 3;
    uint8_t mk = 1;
    Batch b = make_batch(1, 0, &tg, &mk, NULL);
    b.T = 1;
    CfgObjective o = {.type = CFG_OBJ_SFT, .attribute = {.guide = "g", .lambda = 1.0}};
    ObjectiveNorm norm = {0};
    ObjectiveStats sd = {0}, sf = {0};
    TaError err;
    float lsef = (float)lse;
    int rc = objective_norm_add(&norm, &o, &b, &err);
    if (rc == TA_OK)
        rc = objective_logits_forward_backward_f64(&o, &b, 0, 1, ld, &lse, &dlp_d, gd, NULL, NV, NV,
                                                   &norm, &sd, &err);
    if (rc == TA_OK)
        rc = objective_logits_forward_backward(&o, &b, 0, 1, lf, &lsef, &dlp_f, gf, NULL, NV, NV, &norm,
                                               &sf, &err);
    T_CHECK(rc == TA_OK, "%s", err.msg);
    double want_kl = -log(1 - pB);
    T_CHECK(norm.n_loss_tokens == 1, "one token");
    T_CHECK(close_d(sd.kl, want_kl, 1e-14, 1e-12), "double KL %.17g vs -log(1 - p(B)) %.17g", sd.kl,
            want_kl);
    T_CHECK(close_d(sf.kl, want_kl, 1e-7, 1e-6), "float KL %.9g vs -log(1 - p(B)) %.9g", sf.kl,
            want_kl);
    T_CHECK(sd.loss == sd.kl, "loss %.17g != lambda KL %.17g", sd.loss, sd.kl);
    for (int v = 0; v < NV; v++) {
        double want_q = banned[v] ? 0.0 : pd[v] / (1 - pB);
        double qd = pd[v] - ld[v], qf = pd[v] - lf[v];
        T_CHECK(close_d(qd, want_q, 1e-15, 1e-12), "double q[%d] %.17g vs %.17g", v, qd, want_q);
        T_CHECK(close_d(qf, want_q, 1e-7, 1e-5), "float q[%d] %.9g vs %.9g", v, qf, want_q);
    }
}

/* lambda = 0: the KL is reported but adds nothing: dlogits and loss equal plain sft's bits. */
static void t_attribute_lambda0_is_sft(void) {
    CfgObjective sft = {.type = CFG_OBJ_SFT};
    CfgObjective att = {.type = CFG_OBJ_SFT, .attribute = {.guide = "g", .lambda = 0.0}};
    Batch b = full_batch(&sft);
    size_t n = (size_t)B * T * V;
    float *d1 = ta_malloc(n * sizeof(float), "d1"), *d2 = ta_malloc(n * sizeof(float), "d2");
    ObjectiveNorm n1 = {0}, n2 = {0};
    ObjectiveStats s1 = {0}, s2 = {0};
    TaError err;
    T_CHECK(objective_norm_add(&n1, &sft, &b, &err) == TA_OK, "%s", err.msg);
    T_CHECK(objective_norm_add(&n2, &att, &b, &err) == TA_OK, "%s", err.msg);
    T_CHECK(run_float(&sft, &b, LOGITS, NULL, NULL, &n1, d1, &s1, &err) == TA_OK, "%s", err.msg);
    T_CHECK(run_float(&att, &b, LOGITS, GUIDE, NULL, &n2, d2, &s2, &err) == TA_OK, "%s", err.msg);
    int same = !memcmp(d1, d2, n * sizeof(float));
    free(d1);
    free(d2);
    T_CHECK(same, "dlogits differ from plain sft");
    T_CHECK(s1.loss == s2.loss && s2.nll == s1.loss && s2.kl > 0, "loss %.17g vs %.17g, kl %g",
            s1.loss, s2.loss, s2.kl);
}

/* The head over token rows [row0, row0 + nrows) in uneven chunks (as a chunked LM head would
 * call it) == one call over all rows: dlogits bitwise, KL to double rounding. */
static void t_attribute_chunked_rows(void) {
    CfgObjective o;
    cfg_from_row(&o, variant_index("sft_attribute"));
    TA_ASSERT(objective_has_logit_head(&o));
    Batch b = full_batch(&o);
    int N = B * T;
    float *lg1 = pad_vocab(LOGITS, (size_t)N, V, VP, 0), *lg2 = pad_vocab(LOGITS, (size_t)N, V, VP, 0);
    float *gd = pad_vocab(GUIDE, (size_t)N, V, VP, 0);
    float *lse = ta_malloc(N * sizeof(float), "lse"), *lp = ta_malloc(N * sizeof(float), "lp");
    float *dlp = ta_malloc(N * sizeof(float), "dlp");
    logsoftmax_gather(lp, lse, lg1, b.targets, N, V, VP);
    ObjectiveNorm norm = {0};
    ObjectiveStats s0 = {0}, s1 = {0}, s2 = {0};
    TaError err;
    int rc = objective_norm_add(&norm, &o, &b, &err);
    if (rc == TA_OK) rc = objective_forward_backward(&o, &b, lp, NULL, &norm, dlp, &s0, &err);
    s2 = s1 = s0;
    if (rc == TA_OK)
        rc = objective_logits_forward_backward(&o, &b, 0, N, lg1, lse, dlp, gd, NULL, V, VP, &norm, &s1,
                                               &err);
    const int cuts[] = {0, 7, 8, T + 5, N / 2, N - 1, N};
    for (int c = 0; c + 1 < (int)(sizeof cuts / sizeof cuts[0]) && rc == TA_OK; c++) {
        int r0 = cuts[c], nr = cuts[c + 1] - cuts[c];
        rc = objective_logits_forward_backward(&o, &b, r0, nr, lg2 + (size_t)r0 * VP, lse + r0,
                                               dlp + r0, gd + (size_t)r0 * VP, NULL, V, VP, &norm, &s2,
                                               &err);
    }
    int same = !memcmp(lg1, lg2, (size_t)N * VP * sizeof(float));
    free(lg1); free(lg2); free(gd); free(lse); free(lp); free(dlp);
    T_CHECK(rc == TA_OK, "%s", err.msg);
    T_CHECK(same, "chunked dlogits differ");
    T_CHECK(close_d(s2.kl, s1.kl, 1e-15, 1e-13) && close_d(s2.loss, s1.loss, 1e-15, 1e-13),
            "chunked kl %.17g vs %.17g", s2.kl, s1.kl);
}

/* Bad configs and guides: TA_EINPUT naming the key, TA_ERUNTIME naming row and position;
 * stats unchanged either way. */
static void t_attribute_bad_input(void) {
    CfgObjective o = {.type = CFG_OBJ_SFT, .attribute = {.guide = "g", .lambda = 0.5}};
    Batch b = full_batch(&o);
    int N = B * T;
    float *lg = pad_vocab(LOGITS, (size_t)N, V, VP, 0), *gd = pad_vocab(GUIDE, (size_t)N, V, VP, 0);
    float *lse = ta_malloc(N * sizeof(float), "lse"), *lp = ta_malloc(N * sizeof(float), "lp");
    float *dlp = ta_malloc(N * sizeof(float), "dlp");
    logsoftmax_gather(lp, lse, lg, b.targets, N, V, VP);
    ObjectiveNorm norm = {0};
    TaError err;
    TA_ASSERT(objective_norm_add(&norm, &o, &b, &err) == TA_OK);
    TA_ASSERT(objective_forward_backward(&o, &b, lp, NULL, &norm, dlp, &(ObjectiveStats){0}, &err) == TA_OK);
    struct { CfgObjective o; int guide; float poison; int rc; const char *needle; } cases[] = {
        {{.type = CFG_OBJ_SFT, .attribute = {.guide = "g", .lambda = -0.1}}, 1, 0, TA_EINPUT,
         "objective.attribute.lambda: expected >= 0, got -0.1"},
        {{.type = CFG_OBJ_SFT, .attribute = {.guide = "g", .lambda = NAN}}, 1, 0, TA_EINPUT,
         "objective.attribute.lambda"},
        {{.type = CFG_OBJ_SFT, .attribute = {.guide = "g", .lambda = 1}}, 0, 0, TA_EINPUT,
         "needs the guide model's logits"},
        {{.type = CFG_OBJ_SFT, .attribute = {.guide = "g", .lambda = 1}}, 1, NAN, TA_ERUNTIME,
         "non-finite KL at batch row 1 position"},
        /* a guide that forbids every token of one position: Z = 0 */
        {{.type = CFG_OBJ_SFT, .attribute = {.guide = "g", .lambda = 1}}, 1, -1e4f, TA_ERUNTIME,
         "non-finite KL at batch row 1 position"},
    };
    /* the first completion token of batch row 1 */
    int pos = T;
    while (!MASK[pos]) pos++;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float *g2 = pad_vocab(GUIDE, (size_t)N, V, VP, 0), *l2 = pad_vocab(LOGITS, (size_t)N, V, VP, 0);
        if (cases[c].poison != 0)
            for (int v = 0; v < (isnan(cases[c].poison) ? 1 : V); v++)
                g2[(size_t)pos * VP + v] = cases[c].poison;
        ObjectiveStats st = {0}, zero = {0};
        TaError e = {0};
        int rc = objective_logits_forward_backward(&cases[c].o, &b, 0, N, l2, lse, dlp,
                                                   cases[c].guide ? g2 : NULL, NULL, V, VP, &norm, &st,
                                                   &e);
        free(g2);
        free(l2);
        T_CHECK(rc == cases[c].rc && strstr(e.msg, cases[c].needle) &&
                    !memcmp(&st, &zero, sizeof st),
                "case %zu: rc %d (want %d), \"%s\" (want \"%s\")", c, rc, cases[c].rc, e.msg,
                cases[c].needle);
    }
    /* attribute on a pair objective */
    CfgObjective dpo = {.type = CFG_OBJ_DPO, .beta = 0.1, .attribute = {.guide = "g", .lambda = 1}};
    Batch pb = make_batch(B, P, TARGETS, MASK, WEIGHTS);
    ObjectiveNorm pn = {0};
    int rc = objective_norm_add(&pn, &dpo, &pb, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "objective.attribute.guide: applies to sft and pretrain"),
            "attribute on dpo: rc %d %s", rc, err.msg);
    /* KL-only rows (a data.train source with "loss": "kl") without a guide, or on dpo */
    uint8_t ko[64] = {0};
    ko[2] = ROW_FEEDS_KL;
    CfgObjective sft = {.type = CFG_OBJ_SFT};
    Batch kb = make_batch(B, 0, TARGETS, MASK, NULL);
    kb.feeds = ko;
    ObjectiveNorm kn = {0};
    rc = objective_norm_add(&kn, &sft, &kb, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "sft: batch row 2 feeds the attribute KL term only"),
            "KL-only row on plain sft: rc %d %s", rc, err.msg);
    ko[2] = ROW_FEEDS_NLL;
    rc = objective_norm_add(&kn, &sft, &kb, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "row 2 feeds the attribute NLL term only (a data."
                                              "train source with \"loss\": \"nll\")"),
            "NLL-only row on plain sft: rc %d %s", rc, err.msg);
    ko[2] = ROW_FEEDS_KL;
    dpo.attribute.guide = "";
    pb.feeds = ko;
    rc = objective_norm_add(&pn, &dpo, &pb, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "objective.attribute.guide"),
            "KL-only row on dpo: rc %d %s", rc, err.msg);
    free(lg); free(gd); free(lse); free(lp); free(dlp);
}

/* The comparator used above fails on a corrupted reference (guards against a vacuous pass). */
static void t_comparator_detects_corruption(void) {
    char name[32], msg[512];
    snprintf(name, sizeof name, "dlogits.%d", 2);
    RefRecord *r = ref_get(&REF, name);
    size_t n = r->n;
    float *bad = ta_malloc(n * sizeof(float), "bad");
    memcpy(bad, r->data, n * sizeof(float));
    T_CHECK(compare("same", bad, r->data, n, 0, 0, msg, sizeof msg), "identical arrays differ");
    bad[n / 3] += 1e-3f * max_abs(r->data, n);
    int caught = !compare("corrupt", bad, r->data, n, 1e-5 * max_abs(r->data, n), 1e-5, msg, sizeof msg);
    bad[n / 3] = NAN;
    caught &= !compare("nan", bad, r->data, n, 1.0, 1.0, msg, sizeof msg);
    free(bad);
    T_CHECK(caught, "comparator missed a corruption");
}

/* ---- SFT row weights ------------------------------------------------------------------ */

/* All-ones row weights give exactly the bits of a batch without weights (plain SFT). */
static void t_sft_unit_weights_bitwise(void) {
    float ones[64];
    for (int i = 0; i < B; i++) ones[i] = 1.0f;
    size_t n = (size_t)B * T * V;
    float *d1 = ta_malloc(n * sizeof(float), "d1"), *d2 = ta_malloc(n * sizeof(float), "d2");
    CfgObjective cases[2] = {{.type = CFG_OBJ_SFT},
                             {.type = CFG_OBJ_SFT, .attribute = {.guide = "g", .lambda = 0.7}}};
    for (int c = 0; c < 2; c++) {
        Batch b1 = make_batch(B, 0, TARGETS, MASK, ones), b2 = make_batch(B, 0, TARGETS, MASK, NULL);
        ObjectiveNorm n1 = {0}, n2 = {0};
        ObjectiveStats s1 = {0}, s2 = {0};
        TaError err;
        T_CHECK(objective_norm_add(&n1, &cases[c], &b1, &err) == TA_OK, "%s", err.msg);
        T_CHECK(objective_norm_add(&n2, &cases[c], &b2, &err) == TA_OK, "%s", err.msg);
        T_CHECK(!memcmp(&n1, &n2, sizeof n1), "normalisers differ");
        T_CHECK(run_float(&cases[c], &b1, LOGITS, GUIDE, NULL, &n1, d1, &s1, &err) == TA_OK, "%s", err.msg);
        T_CHECK(run_float(&cases[c], &b2, LOGITS, GUIDE, NULL, &n2, d2, &s2, &err) == TA_OK, "%s", err.msg);
        T_CHECK(!memcmp(d1, d2, n * sizeof(float)), "case %d: dlogits differ", c);
        T_CHECK(!memcmp(&s1, &s2, sizeof s1), "case %d: stats differ (loss %.17g vs %.17g)", c,
                s1.loss, s2.loss);
    }
    /* every row of weight 0: loss 0, gradient 0 (nothing to learn), not an error */
    float zeros[64] = {0};
    Batch bz = make_batch(B, 0, TARGETS, MASK, zeros);
    ObjectiveNorm nz = {0};
    ObjectiveStats sz = {0};
    TaError err;
    T_CHECK(objective_norm_add(&nz, &cases[1], &bz, &err) == TA_OK, "%s", err.msg);
    T_CHECK(run_float(&cases[1], &bz, LOGITS, GUIDE, NULL, &nz, d1, &sz, &err) == TA_OK, "%s", err.msg);
    T_CHECK(sz.loss == 0 && max_abs(d1, n) == 0, "all-zero weights: loss %g, max |dlogit| %g",
            sz.loss, max_abs(d1, n));
    /* a negative or non-finite weight is bad input naming the row */
    float bad[64];
    memcpy(bad, ones, sizeof bad);
    bad[5] = -1;
    Batch bb = make_batch(B, 0, TARGETS, MASK, bad);
    ObjectiveNorm nb = {0};
    T_CHECK(objective_norm_add(&nb, &cases[0], &bb, &err) == TA_EINPUT &&
                strstr(err.msg, "sft: batch row 5: weight -1"), "negative weight: %s", err.msg);
    free(d1);
    free(d2);
}

/* ---- the reward model's head --------------------------------------------------------- */

static const float *RSCORES, *RMARGINS;
static int NREWARD;

/* A reward micro-batch over caller arrays: pair layout, ROWS_SCORE, each row's last position
 * (lengths) inside [0, T) (the loss reads only the scores; lengths are validated). */
static Batch reward_batch(int rows, int pairs, int *targets, uint8_t *mask, float *margins,
                          int *lengths) {
    Batch b = make_batch(rows, pairs, targets, mask, NULL);
    b.layout = ROWS_SCORE;
    b.margins = margins;
    b.lengths = lengths;
    for (int r = 0; r < rows; r++) {
        int n = 0;
        while (n < T && targets[(size_t)r * T + n] >= 0) n++;
        lengths[r] = n < T ? n : T - 1;
    }
    return b;
}

static void reward_cfg(int k, CfgObjective *o, const float **margins) {
    const float *c = (const float *)ref_get(&REF, "reward.cfgs")->data + 2 * k;
    *o = (CfgObjective){.type = CFG_OBJ_REWARD, .center_rewards_coefficient = c[0]};
    *margins = c[1] != 0 ? RMARGINS : NULL;
}

static void t_reward_parity(void) {
    for (int k = 0; k < NREWARD; k++) {
        CfgObjective o;
        const float *mg;
        reward_cfg(k, &o, &mg);
        int len[64];
        Batch b = reward_batch(B, P, TARGETS, MASK, (float *)mg, len);
        ObjectiveNorm norm = {0};
        ObjectiveStats st = {0};
        TaError err;
        float ds[64];
        T_CHECK(objective_norm_add(&norm, &o, &b, &err) == TA_OK, "%s", err.msg);
        T_CHECK(objective_scores_forward_backward(&o, &b, RSCORES, &norm, ds, &st, &err) == TA_OK,
                "%s", err.msg);
        ObjectiveMetrics m;
        objective_stats_finish(&o, &st, &m);
        double ref_loss = ((float *)ref_get(&REF, "reward.losses")->data)[k];
        T_CHECK(close_d(st.loss, ref_loss, 1e-6, 1e-6), "variant %d: loss %.9g vs PyTorch %.9g", k,
                st.loss, ref_loss);
        const float *rm = (const float *)ref_get(&REF, "reward.metrics")->data + (size_t)k * OBJ_METRIC_COUNT;
        for (int i = 0; i < OBJ_METRIC_COUNT; i++) {
            T_CHECK(m.m[i].present == !isnan(rm[i]), "variant %d: metric %s present=%d, PyTorch %s it",
                    k, MNAMES[i], m.m[i].present, isnan(rm[i]) ? "does not define" : "defines");
            if (m.m[i].present)
                T_CHECK(close_d(m.m[i].value, rm[i], 1e-6, 1e-6), "variant %d: %s %.9g vs PyTorch %.9g",
                        k, MNAMES[i], m.m[i].value, (double)rm[i]);
        }
        char msg[512];
        const float *rd = (const float *)ref_get(&REF, "reward.dscores")->data + (size_t)k * B;
        T_CHECK(compare("dL/dreward", ds, rd, (size_t)B, 1e-7, 1e-6, msg, sizeof msg), "variant %d: %s", k, msg);
    }
}

/* Central differences of the double path's loss in every reward vs its analytic dL/dr. */
static void t_reward_fd(void) {
    for (int k = 0; k < NREWARD; k++) {
        CfgObjective o;
        const float *mg;
        reward_cfg(k, &o, &mg);
        int len[64];
        Batch b = reward_batch(B, P, TARGETS, MASK, (float *)mg, len);
        ObjectiveNorm norm = {0};
        TaError err;
        T_CHECK(objective_norm_add(&norm, &o, &b, &err) == TA_OK, "%s", err.msg);
        double r[64], an[64];
        for (int i = 0; i < B; i++) r[i] = RSCORES[i];
        ObjectiveStats st = {0};
        T_CHECK(objective_scores_forward_backward_f64(&o, &b, r, &norm, an, &st, &err) == TA_OK, "%s", err.msg);
        for (int i = 0; i < B; i++) {
            const double h = 1e-6, x0 = r[i];
            ObjectiveStats sp = {0}, sm = {0};
            r[i] = x0 + h;
            objective_scores_forward_backward_f64(&o, &b, r, &norm, NULL, &sp, &err);
            r[i] = x0 - h;
            objective_scores_forward_backward_f64(&o, &b, r, &norm, NULL, &sm, &err);
            r[i] = x0;
            double fd = (sp.loss - sm.loss) / (2 * h);
            T_CHECK(close_d(an[i], fd, 1e-9, 1e-6), "variant %d row %d: analytic %.12g, finite "
                    "difference %.12g", k, i, an[i], fd);
        }
    }
}

/* 4 micro-batches of 2 pairs == the batch of 8 pairs: dL/dr bitwise, metrics to rounding. */
static void t_reward_accumulate(void) {
    CfgObjective o;
    const float *mg;
    reward_cfg(NREWARD - 1, &o, &mg); /* margins and centering */
    const int K = 4, per = P / K, rows = 2 * per;
    int len[64], lens[64];
    Batch big = reward_batch(B, P, TARGETS, MASK, (float *)mg, len);
    ObjectiveNorm nb = {0}, na = {0};
    ObjectiveStats sb = {0}, sa = {0};
    TaError err;
    float dbig[64], dacc[64];
    T_CHECK(objective_norm_add(&nb, &o, &big, &err) == TA_OK, "%s", err.msg);
    T_CHECK(objective_scores_forward_backward(&o, &big, RSCORES, &nb, dbig, &sb, &err) == TA_OK, "%s", err.msg);
    int tg[64 * 64];
    uint8_t mk[64 * 64];
    float sc[64], mgs[64], d[64];
    int map[64];
    for (int k = 0; k < K; k++)
        for (int j = 0; j < rows; j++) map[k * rows + j] = j < per ? k * per + j : P + k * per + (j - per);
    for (int q = 0; q < K * rows; q++) {
        memcpy(tg + (size_t)q * T, TARGETS + (size_t)map[q] * T, sizeof(int) * T);
        memcpy(mk + (size_t)q * T, MASK + (size_t)map[q] * T, T);
        sc[q] = RSCORES[map[q]];
        mgs[q] = mg[map[q]];
    }
    Batch mb[4];
    for (int k = 0; k < K; k++) {
        mb[k] = reward_batch(rows, per, tg + (size_t)k * rows * T, mk + (size_t)k * rows * T,
                             mgs + k * rows, lens + k * rows);
        T_CHECK(objective_norm_add(&na, &o, &mb[k], &err) == TA_OK, "%s", err.msg);
    }
    T_CHECK(!memcmp(&na, &nb, sizeof na), "normalisers differ");
    for (int k = 0; k < K; k++)
        T_CHECK(objective_scores_forward_backward(&o, &mb[k], sc + k * rows, &na, d + k * rows, &sa,
                                                  &err) == TA_OK, "%s", err.msg);
    for (int q = 0; q < K * rows; q++) dacc[map[q]] = d[q];
    T_CHECK(!memcmp(dacc, dbig, sizeof(float) * (size_t)B), "accumulated dL/dr differ");
    ObjectiveMetrics ma, mbig;
    objective_stats_finish(&o, &sa, &ma);
    objective_stats_finish(&o, &sb, &mbig);
    for (int i = 0; i < OBJ_METRIC_COUNT; i++)
        T_CHECK(ma.m[i].present == mbig.m[i].present &&
                    close_d(ma.m[i].value, mbig.m[i].value, 1e-13, 1e-12),
                "metric %s: accumulated %.17g vs big batch %.17g", MNAMES[i], ma.m[i].value,
                mbig.m[i].value);
}

static void t_reward_bad_input(void) {
    CfgObjective o = {.type = CFG_OBJ_REWARD};
    int len[64];
    float mg[64] = {0}, sc[64], ds[64];
    memcpy(sc, RSCORES, sizeof(float) * (size_t)B);
    Batch b = reward_batch(B, P, TARGETS, MASK, mg, len);
    ObjectiveNorm norm = {0};
    ObjectiveStats st = {0};
    TaError err;
    T_CHECK(objective_norm_add(&norm, &o, &b, &err) == TA_OK, "%s", err.msg);
    /* next-token rows (ROWS_LM) cannot be scored */
    Batch lm = b;
    lm.layout = ROWS_LM;
    ObjectiveNorm n2 = {0};
    T_CHECK(objective_norm_add(&n2, &o, &lm, &err) == TA_EINPUT && strstr(err.msg, "scoring layout"),
            "LM rows: %s", err.msg);
    /* the wrong entry point either way */
    float lp[64 * 64] = {0};
    T_CHECK(objective_forward_backward(&o, &b, lp, NULL, &norm, NULL, &st, &err) == TA_EINPUT &&
                strstr(err.msg, "reward reads per-row scores"), "logp path: %s", err.msg);
    CfgObjective sft = {.type = CFG_OBJ_SFT};
    Batch bs = make_batch(B, 0, TARGETS, MASK, NULL);
    ObjectiveNorm n3 = {0};
    T_CHECK(objective_norm_add(&n3, &sft, &bs, &err) == TA_OK, "%s", err.msg);
    T_CHECK(objective_scores_forward_backward(&sft, &bs, sc, &n3, ds, &st, &err) == TA_EINPUT,
            "sft with scores: %s", err.msg);
    /* a non-finite reward is a runtime failure naming the row; nothing is written */
    sc[6] = NAN;
    ds[0] = 42;
    T_CHECK(objective_scores_forward_backward(&o, &b, sc, &norm, ds, &st, &err) == TA_ERUNTIME &&
                strstr(err.msg, "row 6") && ds[0] == 42 && st.loss == 0, "NaN reward: %s", err.msg);
    sc[6] = RSCORES[6];
    /* a non-finite margin, a last position outside the row, a negative coefficient */
    mg[2] = INFINITY;
    ObjectiveNorm n4 = {0};
    T_CHECK(objective_norm_add(&n4, &o, &b, &err) == TA_EINPUT && strstr(err.msg, "margin"),
            "inf margin: %s", err.msg);
    mg[2] = 0;
    len[1] = T;
    T_CHECK(objective_norm_add(&n4, &o, &b, &err) == TA_EINPUT && strstr(err.msg, "row 1: last position"),
            "last position: %s", err.msg);
    len[1] = 0;
    o.center_rewards_coefficient = -1;
    T_CHECK(objective_norm_add(&n4, &o, &b, &err) == TA_EINPUT &&
                strstr(err.msg, "center_rewards_coefficient"), "coef: %s", err.msg);
}

/* FEEDS = the variant's row_feeds (NULL: every row feeds every term). */
static void set_feeds(const float *k) {
    for (int r = 0; r < B; r++) FEEDS[r] = k ? (uint8_t)k[r] : ROW_FEEDS_ALL;
}

int main(void) {
    if (ref_load(&REF, ref_path("objectives")) != 0) {
        printf("FAIL objective_reference: cannot load %s (tools/ref_objectives.py)\n",
               ref_path("objectives"));
        return 1;
    }
    load_inputs();
    RefRecord *cf = ref_get(&REF, "cfgs");
    if (!cf || (int)cf->dims[0] != NVAR) {
        printf("FAIL objective_reference: %d variants in the file, the test knows %d\n",
               cf ? (int)cf->dims[0] : -1, NVAR);
        return 1;
    }
    RefRecord *rw = ref_get(&REF, "row_weights"), *rs = ref_get(&REF, "reward.scores");
    RefRecord *ko = ref_get(&REF, "row_feeds");
    if (!rw || (int)rw->dims[0] != NVAR || (int)rw->dims[1] != B || !rs || (int)rs->n != B ||
        !ko || (int)ko->dims[0] != NVAR || (int)ko->dims[1] != B || B > 64) {
        printf("FAIL objective_reference: row_weights / row_feeds / reward records missing or "
               "misshapen\n");
        return 1;
    }
    RSCORES = rs->data;
    RMARGINS = ref_get(&REF, "reward.margins")->data;
    NREWARD = (int)ref_get(&REF, "reward.cfgs")->dims[0];
    char name[64];
    /* each variant's batch carries its own row weights (pair weights, or sft row weights) */
    for (CUR = 0; CUR < NVAR; CUR++) {
        WEIGHTS = (float *)rw->data + (size_t)CUR * B;
        set_feeds((const float *)ko->data + (size_t)CUR * B);
        snprintf(name, sizeof name, "parity_%s", VNAMES[CUR]);
        t_run(name, t_parity);
    }
    for (CUR = 0; CUR < NVAR; CUR++) {
        WEIGHTS = (float *)rw->data + (size_t)CUR * B;
        set_feeds((const float *)ko->data + (size_t)CUR * B);
        snprintf(name, sizeof name, "fd_%s", VNAMES[CUR]);
        t_run(name, t_fd);
    }
    for (CUR = 0; CUR < NVAR; CUR++) {
        WEIGHTS = (float *)rw->data + (size_t)CUR * B;
        set_feeds((const float *)ko->data + (size_t)CUR * B);
        snprintf(name, sizeof name, "accumulate_%s", VNAMES[CUR]);
        t_run(name, t_accumulate);
    }
    WEIGHTS = PAIR_WEIGHTS;
    set_feeds(NULL);
    t_run("sft_unit_weights_bitwise", t_sft_unit_weights_bitwise);
    t_run("reward_parity", t_reward_parity);
    t_run("reward_fd", t_reward_fd);
    t_run("reward_accumulate", t_reward_accumulate);
    t_run("reward_bad_input", t_reward_bad_input);
    t_run("orpo_saturated_finite_and_parity", t_orpo_saturated);
    t_run("fd_orpo_saturated", t_fd_orpo_saturated);
    t_run("ddpo_unit_weights_is_dpo_bitwise", t_ddpo_unit_weights_is_dpo);
    t_run("metric_table", t_metric_table);
    t_run("forward_only_and_sequence_logps", t_forward_only_and_seq_logps);
    t_run("bad_input", t_bad_input);
    t_run("attribute_one_step_banned_set", t_attribute_banned_set);
    t_run("attribute_lambda0_is_sft_bitwise", t_attribute_lambda0_is_sft);
    t_run("attribute_chunked_rows_bitwise", t_attribute_chunked_rows);
    t_run("attribute_bad_input", t_attribute_bad_input);
    t_run("comparator_detects_corruption", t_comparator_detects_corruption);
    free(MASK);
    ref_free(&REF);
    return t_done();
}
