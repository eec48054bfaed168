/* test_kernels.c — every kernel's forward against a naive double-precision reference, and
 * every backward against central finite differences of that double reference.
 *
 * For a kernel y = f(x1, x2, ...) the scalar probe is L = sum(y * w) with fixed random w;
 * the float backward is run with dout = w, and each input gradient is compared with
 * (L(x + h e_i) - L(x - h e_i)) / 2h evaluated entirely in double (h = 1e-6, so the FD
 * error is ~1e-10 and the comparison measures the float kernel). Tolerances are written
 * next to each check: |grad - fd| <= atol + rtol |fd|, atol relative to max |fd|. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testhelp.h"
#include "tinyalign/common.h"
#include "tinyalign/kernels.h"
#include "tinyalign/optim.h"

static TaRng RNG;

static float *rand_f(size_t n, float scale) {
    float *p = ta_malloc(n * sizeof(float), "t");
    for (size_t i = 0; i < n; i++) p[i] = (float)ta_rng_normal(&RNG) * scale;
    return p;
}
static double *to_d(const float *f, size_t n) {
    double *d = ta_malloc(n * sizeof(double), "t");
    for (size_t i = 0; i < n; i++) d[i] = f[i];
    return d;
}

/* A differentiable double-precision probe: loss(ctx, x) with x the packed inputs. */
typedef double (*ProbeFn)(void *ctx, const double *x);

/* Compares grad (float, packed like x) with central differences of f. Returns 1 if ok. */
static int fd_check(const char *what, ProbeFn f, void *ctx, double *x, size_t n,
                    const float *grad, double atol_rel, double rtol, char *msg, size_t cap) {
    const double h = 1e-6;
    double *fd = ta_malloc(n * sizeof(double), "fd");
    double mx = 0;
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + h;
        double lp = f(ctx, x);
        x[i] = x0 - h;
        double lm = f(ctx, x);
        x[i] = x0;
        fd[i] = (lp - lm) / (2 * h);
        if (fabs(fd[i]) > mx) mx = fabs(fd[i]);
    }
    int ok = 1;
    double atol = atol_rel * mx + 1e-7;
    for (size_t i = 0; i < n && ok; i++) {
        double d = fabs(grad[i] - fd[i]);
        if (!(d <= atol + rtol * fabs(fd[i]))) {
            snprintf(msg, cap, "%s: d/dx[%zu] backward %.9g vs finite difference %.9g (max|fd| %.3g)",
                     what, i, grad[i], fd[i], mx);
            ok = 0;
        }
    }
    free(fd);
    return ok;
}

static int fwd_check(const char *what, const float *got, const double *ref, size_t n, double atol,
                     double rtol, char *msg, size_t cap) {
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - ref[i]);
        if (!(d <= atol + rtol * fabs(ref[i]))) {
            snprintf(msg, cap, "%s forward: y[%zu] %.9g vs double reference %.9g", what, i, got[i], ref[i]);
            return 0;
        }
    }
    return 1;
}

static double dot_d(const double *y, const float *w, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += y[i] * w[i];
    return s;
}

/* ---- encoder ------------------------------------------------------------------------- */
typedef struct { int B, T, C, V; const int *inp; const float *w; double *y; } EncCtx;
/* x = [wte (V*C), wpe (T*C)] */
static double enc_probe(void *vc, const double *x) {
    EncCtx *c = vc;
    const double *wte = x, *wpe = x + (size_t)c->V * c->C;
    for (int b = 0; b < c->B; b++)
        for (int t = 0; t < c->T; t++)
            for (int k = 0; k < c->C; k++)
                c->y[((size_t)b * c->T + t) * c->C + k] =
                    wte[(size_t)c->inp[b * c->T + t] * c->C + k] + wpe[(size_t)t * c->C + k];
    return dot_d(c->y, c->w, (size_t)c->B * c->T * c->C);
}
static void t_encoder(void) {
    int B = 2, T = 5, C = 40, V = 7; /* C not a multiple of the 32-channel block */
    int inp[10] = {1, 3, 3, 0, 6, 3, 2, 1, 1, 5}; /* repeated ids exercise the scatter-add */
    float *wte = rand_f((size_t)V * C, 1), *wpe = rand_f((size_t)T * C, 1);
    float *w = rand_f((size_t)B * T * C, 1), *y = ta_malloc(sizeof(float) * B * T * C, "t");
    encoder_forward(y, inp, wte, wpe, B, T, C);
    float *g = ta_calloc(sizeof(float) * ((size_t)V * C + T * C), "t");
    encoder_backward(g, g + (size_t)V * C, w, inp, B, T, C);
    double *x = ta_malloc(sizeof(double) * ((size_t)V * C + T * C), "t");
    for (int i = 0; i < V * C; i++) x[i] = wte[i];
    for (int i = 0; i < T * C; i++) x[V * C + i] = wpe[i];
    EncCtx c = {B, T, C, V, inp, w, ta_malloc(sizeof(double) * B * T * C, "t")};
    enc_probe(&c, x);
    char msg[512];
    int ok = fwd_check("encoder", y, c.y, (size_t)B * T * C, 0, 1e-6, msg, sizeof msg) && /* one float add */
             fd_check("encoder", enc_probe, &c, x, (size_t)V * C + T * C, g, 1e-6, 1e-6, msg, sizeof msg);
    free(wte); free(wpe); free(w); free(y); free(g); free(x); free(c.y);
    T_CHECK(ok, "%s", msg);
}

/* ---- layernorm ----------------------------------------------------------------------- */
typedef struct { int N, C; const float *w; double *y; } LnCtx;
/* x = [inp (N*C), weight (C), bias (C)] */
static double ln_probe(void *vc, const double *x) {
    LnCtx *c = vc;
    const double *in = x, *wt = x + (size_t)c->N * c->C, *bi = wt + c->C;
    for (int n = 0; n < c->N; n++) {
        const double *r = in + (size_t)n * c->C;
        double m = 0, v = 0;
        for (int k = 0; k < c->C; k++) m += r[k];
        m /= c->C;
        for (int k = 0; k < c->C; k++) v += (r[k] - m) * (r[k] - m);
        v /= c->C;
        double s = 1.0 / sqrt(v + 1e-5);
        for (int k = 0; k < c->C; k++) c->y[(size_t)n * c->C + k] = (r[k] - m) * s * wt[k] + bi[k];
    }
    return dot_d(c->y, c->w, (size_t)c->N * c->C);
}
static void t_layernorm(void) {
    int N = 6, C = 37; /* odd C exercises the channel-block tail */
    size_t NC = (size_t)N * C;
    float *in = rand_f(NC, 2), *wt = rand_f(C, 1), *bi = rand_f(C, 1), *w = rand_f(NC, 1);
    float *y = ta_malloc(NC * 4, "t"), *mean = ta_malloc(N * 4, "t"), *rstd = ta_malloc(N * 4, "t");
    layernorm_forward(y, mean, rstd, in, wt, bi, N, C);
    float *g = ta_calloc((NC + 2 * C) * 4, "t");
    layernorm_backward(g, g + NC, g + NC + C, w, in, wt, mean, rstd, N, C);
    double *x = ta_malloc((NC + 2 * C) * 8, "t");
    for (size_t i = 0; i < NC; i++) x[i] = in[i];
    for (int i = 0; i < C; i++) { x[NC + i] = wt[i]; x[NC + C + i] = bi[i]; }
    LnCtx c = {N, C, w, ta_malloc(NC * 8, "t")};
    ln_probe(&c, x);
    char msg[512];
    int ok = fwd_check("layernorm", y, c.y, NC, 1e-5, 1e-5, msg, sizeof msg) && /* float stats */
             fd_check("layernorm", ln_probe, &c, x, NC + 2 * C, g, 1e-5, 1e-4, msg, sizeof msg);
    free(in); free(wt); free(bi); free(w); free(y); free(mean); free(rstd); free(g); free(x); free(c.y);
    T_CHECK(ok, "%s", msg);
}

/* ---- matmul -------------------------------------------------------------------------- */
typedef struct { int N, C, OC; const float *w; double *y; } MmCtx;
/* x = [inp (N*C), weight (OC*C), bias (OC)] */
static double mm_probe(void *vc, const double *x) {
    MmCtx *c = vc;
    const double *in = x, *wt = x + (size_t)c->N * c->C, *bi = wt + (size_t)c->OC * c->C;
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->OC; o++) {
            double s = bi[o];
            for (int k = 0; k < c->C; k++) s += in[(size_t)n * c->C + k] * wt[(size_t)o * c->C + k];
            c->y[(size_t)n * c->OC + o] = s;
        }
    return dot_d(c->y, c->w, (size_t)c->N * c->OC);
}
static void t_matmul(void) {
    int N = 7, C = 13, OC = 70; /* OC > 64 exercises the bias-block tail */
    size_t nin = (size_t)N * C, nw = (size_t)OC * C, nx = nin + nw + OC;
    float *in = rand_f(nin, 1), *wt = rand_f(nw, 1), *bi = rand_f(OC, 1), *w = rand_f((size_t)N * OC, 1);
    float *y = ta_malloc((size_t)N * OC * 4, "t"), *yn = ta_malloc((size_t)N * OC * 4, "t");
    matmul_forward(y, in, wt, bi, N, C, OC);
    matmul_forward_naive(yn, in, wt, bi, N, C, OC);
    float *g = ta_calloc(nx * 4, "t");
    matmul_backward(g, g + nin, g + nin + nw, w, in, wt, N, C, OC);
    double *x = ta_malloc(nx * 8, "t");
    for (size_t i = 0; i < nin; i++) x[i] = in[i];
    for (size_t i = 0; i < nw; i++) x[nin + i] = wt[i];
    for (int i = 0; i < OC; i++) x[nin + nw + i] = bi[i];
    MmCtx c = {N, C, OC, w, ta_malloc((size_t)N * OC * 8, "t")};
    mm_probe(&c, x);
    char msg[512];
    int ok = fwd_check("matmul (sgemm)", y, c.y, (size_t)N * OC, 1e-5, 1e-5, msg, sizeof msg) &&
             fwd_check("matmul (naive)", yn, c.y, (size_t)N * OC, 1e-6, 1e-6, msg, sizeof msg) &&
             fd_check("matmul", mm_probe, &c, x, nx, g, 1e-5, 1e-5, msg, sizeof msg);
    free(in); free(wt); free(bi); free(w); free(y); free(yn); free(g); free(x); free(c.y);
    T_CHECK(ok, "%s", msg);
}

/* ---- score head (a reward model's scalar at each row's last token) ------------------- */
typedef struct { int B, T, C; const int *last; const float *w; double *y; } ScoreCtx;
/* x = [inp (B,T,C), weight (C)] */
static double score_probe(void *vc, const double *x) {
    ScoreCtx *c = vc;
    const double *in = x, *wt = x + (size_t)c->B * c->T * c->C;
    for (int b = 0; b < c->B; b++) {
        double s = 0;
        for (int k = 0; k < c->C; k++) s += in[((size_t)b * c->T + c->last[b]) * c->C + k] * wt[k];
        c->y[b] = s;
    }
    return dot_d(c->y, c->w, (size_t)c->B);
}
static void t_score(void) {
    int B = 4, T = 6, C = 19;
    int last[4] = {5, 0, 3, 3}; /* first, last and a repeated position */
    size_t nin = (size_t)B * T * C, nx = nin + C;
    float *in = rand_f(nin, 1), *wt = rand_f(C, 1), *w = rand_f(B, 1), *y = ta_malloc(B * 4, "t");
    score_forward(y, in, last, wt, B, T, C);
    float *g = ta_calloc(nx * 4, "t");
    score_backward(g, g + nin, w, in, last, wt, B, T, C);
    double *x = ta_malloc(nx * 8, "t");
    for (size_t i = 0; i < nin; i++) x[i] = in[i];
    for (int i = 0; i < C; i++) x[nin + i] = wt[i];
    ScoreCtx c = {B, T, C, last, w, ta_malloc((size_t)B * 8, "t")};
    score_probe(&c, x);
    char msg[512];
    int ok = fwd_check("score", y, c.y, (size_t)B, 1e-6, 1e-6, msg, sizeof msg) &&
             fd_check("score", score_probe, &c, x, nx, g, 1e-6, 1e-6, msg, sizeof msg);
    /* positions other than each row's last get exactly no gradient */
    for (int b = 0; ok && b < B; b++)
        for (int t = 0; t < T; t++)
            for (int k = 0; t != last[b] && k < C; k++)
                if (g[((size_t)b * T + t) * C + k] != 0.0f) {
                    snprintf(msg, sizeof msg, "row %d position %d (not its last) has a gradient", b, t);
                    ok = 0;
                }
    free(in); free(wt); free(w); free(y); free(g); free(x); free(c.y);
    T_CHECK(ok, "%s", msg);
}

/* ---- attention ----------------------------------------------------------------------- */
typedef struct { int B, T, C, NH; const float *w; double *y; } AttCtx;
/* x = qkv (B,T,3C) */
static double att_probe(void *vc, const double *x) {
    AttCtx *c = vc;
    int B = c->B, T = c->T, C = c->C, NH = c->NH, hs = C / NH;
    double sc = 1.0 / sqrt((double)hs), a[64];
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const double *q = x + ((size_t)b * T + t) * 3 * C + h * hs;
                double mx = -INFINITY, sum = 0;
                for (int t2 = 0; t2 <= t; t2++) {
                    const double *k = x + ((size_t)b * T + t2) * 3 * C + C + h * hs;
                    double s = 0;
                    for (int i = 0; i < hs; i++) s += q[i] * k[i];
                    a[t2] = s * sc;
                    if (a[t2] > mx) mx = a[t2];
                }
                for (int t2 = 0; t2 <= t; t2++) { a[t2] = exp(a[t2] - mx); sum += a[t2]; }
                for (int i = 0; i < hs; i++) {
                    double s = 0;
                    for (int t2 = 0; t2 <= t; t2++)
                        s += a[t2] / sum * x[((size_t)b * T + t2) * 3 * C + 2 * C + h * hs + i];
                    c->y[((size_t)b * T + t) * C + h * hs + i] = s;
                }
            }
    return dot_d(c->y, c->w, (size_t)B * T * C);
}
typedef void (*AttFwd)(float *, float *, const float *, int, int, int, int);
typedef void (*AttBwd)(float *, float *, const float *, const float *, const float *, int, int,
                       int, int);
static void check_attention(AttFwd fwd, AttBwd bwd, const char *what) {
    int B = 2, T = 6, C = 20, NH = 2; /* hs = 10: exercises the 8-wide dot tail */
    size_t nx = (size_t)B * T * 3 * C, ny = (size_t)B * T * C;
    float *in = rand_f(nx, 1), *w = rand_f(ny, 1), *y = ta_malloc(ny * 4, "t");
    float *att = ta_malloc((size_t)B * NH * T * T * 4, "t"), *scr = ta_malloc((size_t)B * NH * T * T * 4, "t");
    fwd(y, att, in, B, T, C, NH);
    float *g = ta_calloc(nx * 4, "t");
    bwd(g, scr, w, in, att, B, T, C, NH);
    double *x = to_d(in, nx);
    AttCtx c = {B, T, C, NH, w, ta_malloc(ny * 8, "t")};
    att_probe(&c, x);
    char msg[512];
    int ok = fwd_check(what, y, c.y, ny, 1e-6, 1e-5, msg, sizeof msg) &&
             fd_check(what, att_probe, &c, x, nx, g, 1e-5, 1e-4, msg, sizeof msg);
    /* causal mask: att above the diagonal is exactly zero, rows sum to 1 */
    for (int bh = 0; bh < B * NH && ok; bh++)
        for (int t = 0; t < T; t++) {
            double s = 0;
            for (int t2 = 0; t2 < T; t2++) {
                float v = att[((size_t)bh * T + t) * T + t2];
                if (t2 > t && v != 0.0f) { ok = 0; snprintf(msg, sizeof msg, "att[%d][%d] above diagonal = %g", t, t2, v); }
                s += v;
            }
            if (fabs(s - 1) > 1e-6) { ok = 0; snprintf(msg, sizeof msg, "att row sums to %g", s); }
        }
    free(in); free(w); free(y); free(att); free(scr); free(g); free(x); free(c.y);
    T_CHECK(ok, "%s", msg);
}
static void t_attention(void) { check_attention(attention_forward, attention_backward, "attention (sgemm)"); }
/* the batched-GEMM version on oneDNN, fp32 (the bf16 one is in test_bf16) */
static Backend *DNN;
static void att_gemm_fwd(float *y, float *att, const float *in, int B, int T, int C, int NH) {
    attention_forward_gemm(DNN, y, att, NULL, in, 0, B, T, C, NH);
}
static void att_gemm_bwd(float *g, float *scr, const float *dy, const float *in, const float *att,
                         int B, int T, int C, int NH) {
    attention_backward_gemm(DNN, g, scr, NULL, NULL, dy, in, att, 0, B, T, C, NH);
}
static void t_attention_gemm(void) {
    check_attention(att_gemm_fwd, att_gemm_bwd, "attention (batched GEMM, oneDNN fp32)");
}
static void t_attention_naive(void) {
    check_attention(attention_forward_naive, attention_backward_naive, "attention (naive)");
}
/* The fast paths against the naive loops at a realistic shape (T=64, hs=32). */
static void attention_vs_naive(AttFwd fwd, AttBwd bwd, const char *what) {
    int B = 2, T = 64, C = 96, NH = 3;
    size_t nx = (size_t)B * T * 3 * C, ny = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    float *in = rand_f(nx, 1), *dy = rand_f(ny, 1);
    float *y1 = ta_malloc(ny * 4, "t"), *y2 = ta_malloc(ny * 4, "t");
    float *a1 = ta_malloc(na * 4, "t"), *a2 = ta_malloc(na * 4, "t"), *scr = ta_malloc(na * 4, "t");
    float *g1 = ta_calloc(nx * 4, "t"), *g2 = ta_calloc(nx * 4, "t");
    fwd(y1, a1, in, B, T, C, NH);
    attention_forward_naive(y2, a2, in, B, T, C, NH);
    bwd(g1, scr, dy, in, a1, B, T, C, NH);
    attention_backward_naive(g2, scr, dy, in, a2, B, T, C, NH);
    double dy_max = 0, dg_max = 0, da_max = 0;
    for (size_t i = 0; i < ny; i++) dy_max = fmax(dy_max, fabs(y1[i] - y2[i]));
    for (size_t i = 0; i < na; i++) da_max = fmax(da_max, fabs(a1[i] - a2[i]));
    for (size_t i = 0; i < nx; i++) dg_max = fmax(dg_max, fabs(g1[i] - g2[i]));
    free(in); free(dy); free(y1); free(y2); free(a1); free(a2); free(scr); free(g1); free(g2);
    /* float32 with different summation orders: a few ulps of O(1) values */
    T_CHECK(dy_max < 1e-5 && da_max < 1e-6 && dg_max < 1e-4,
            "%s vs naive: out %.3g, att %.3g, grad %.3g", what, dy_max, da_max, dg_max);
}
static void t_attention_fast_vs_naive(void) {
    attention_vs_naive(attention_forward, attention_backward, "sgemm");
}
static void t_attention_gemm_vs_naive(void) {
    attention_vs_naive(att_gemm_fwd, att_gemm_bwd, "batched GEMM");
}

/* ---- gelu, residual ------------------------------------------------------------------ */
typedef struct { size_t n; const float *w; double *y; } PwCtx;
static double gelu_probe(void *vc, const double *x) {
    PwCtx *c = vc;
    for (size_t i = 0; i < c->n; i++)
        c->y[i] = 0.5 * x[i] * (1 + tanh(sqrt(2 / M_PI) * (x[i] + 0.044715 * x[i] * x[i] * x[i])));
    return dot_d(c->y, c->w, c->n);
}
static void t_gelu(void) {
    size_t n = 300;
    float *in = rand_f(n, 2.5f), *w = rand_f(n, 1), *y = ta_malloc(n * 4, "t");
    in[0] = 0; in[1] = -8; in[2] = 8; /* zero and the saturated tails */
    gelu_forward(y, in, n);
    float *g = ta_calloc(n * 4, "t");
    gelu_backward(g, in, w, n);
    double *x = to_d(in, n);
    PwCtx c = {n, w, ta_malloc(n * 8, "t")};
    gelu_probe(&c, x);
    char msg[512];
    int ok = fwd_check("gelu", y, c.y, n, 1e-6, 1e-6, msg, sizeof msg) &&
             fd_check("gelu", gelu_probe, &c, x, n, g, 1e-6, 1e-5, msg, sizeof msg);
    free(in); free(w); free(y); free(g); free(x); free(c.y);
    T_CHECK(ok, "%s", msg);
}
static double res_probe(void *vc, const double *x) {
    PwCtx *c = vc;
    for (size_t i = 0; i < c->n; i++) c->y[i] = x[i] + x[c->n + i];
    return dot_d(c->y, c->w, c->n);
}
static void t_residual(void) {
    size_t n = 50;
    float *a = rand_f(2 * n, 1), *w = rand_f(n, 1), *y = ta_malloc(n * 4, "t");
    residual_forward(y, a, a + n, n);
    float *g = ta_calloc(2 * n * 4, "t");
    residual_backward(g, g + n, w, n);
    double *x = to_d(a, 2 * n);
    PwCtx c = {n, w, ta_malloc(n * 8, "t")};
    res_probe(&c, x);
    char msg[512];
    int ok = fwd_check("residual", y, c.y, n, 0, 1e-7, msg, sizeof msg) &&
             fd_check("residual", res_probe, &c, x, 2 * n, g, 1e-7, 1e-7, msg, sizeof msg);
    free(a); free(w); free(y); free(g); free(x); free(c.y);
    T_CHECK(ok, "%s", msg);
}

/* ---- softmax + cross-entropy (log-softmax gather, dlogits) ---------------------------- */
typedef struct { int N, V, Vp; const int *tg; } CeCtx;
/* x = logits (N, Vp); loss = mean over rows with target >= 0 of -log softmax(x[:V])[y] */
static double ce_probe(void *vc, const double *x) {
    CeCtx *c = vc;
    double loss = 0;
    int cnt = 0;
    for (int n = 0; n < c->N; n++) {
        if (c->tg[n] < 0) continue;
        const double *l = x + (size_t)n * c->Vp;
        double mx = -INFINITY, s = 0;
        for (int v = 0; v < c->V; v++) if (l[v] > mx) mx = l[v];
        for (int v = 0; v < c->V; v++) s += exp(l[v] - mx);
        loss -= l[c->tg[n]] - mx - log(s);
        cnt++;
    }
    return loss / cnt;
}
typedef void (*GatherFn)(float *, float *, const float *, const int *, int, int, int);
static void softmax_ce(GatherFn gather) {
    int N = 5, V = 50, Vp = 64;
    int tg[5] = {3, -1, 49, 0, 17}; /* one masked row */
    float *lg = rand_f((size_t)N * Vp, 3);
    for (int n = 0; n < N; n++) for (int v = V; v < Vp; v++) lg[(size_t)n * Vp + v] = 100.0f; /* padding must be ignored */
    double *x = to_d(lg, (size_t)N * Vp);
    float logp[5], lse[5], dlogp[5];
    gather(logp, lse, lg, tg, N, V, Vp);
    double loss = 0;
    for (int n = 0; n < N; n++) { loss -= logp[n]; dlogp[n] = tg[n] >= 0 ? -1.0f / 4 : 0.0f; }
    loss /= 4;
    CeCtx c = {N, V, Vp, tg};
    double ref = ce_probe(&c, x);
    T_CHECK(fabs(loss - ref) <= 1e-6 * fabs(ref), "loss %.9g vs double %.9g", loss, ref);
    logits_to_dlogits(lg, lse, tg, dlogp, N, V, Vp); /* in place */
    char msg[512];
    int ok = fd_check("softmax+CE", ce_probe, &c, x, (size_t)N * Vp, lg, 1e-5, 1e-4, msg, sizeof msg);
    free(x);
    T_CHECK(ok, "%s", msg);
    for (int n = 0; n < N; n++)
        for (int v = V; v < Vp; v++) T_CHECK(lg[(size_t)n * Vp + v] == 0.0f, "padded dlogit nonzero");
    free(lg);
}
static void t_softmax_ce(void) { softmax_ce(logsoftmax_gather); }
static void t_softmax_ce_vec(void) { softmax_ce(logsoftmax_gather_vec); }
/* the vectorised gather against the scalar one on GPT-2-sized rows: a few ulps */
static void t_logsoftmax_vec_vs_scalar(void) {
    int N = 7, V = 50257, Vp = 50304;
    float *lg = rand_f((size_t)N * Vp, 4);
    int tg[7] = {0, 50256, 123, -1, 7, 40000, 3};
    float lp1[7], lse1[7], lp2[7], lse2[7];
    logsoftmax_gather(lp1, lse1, lg, tg, N, V, Vp);
    logsoftmax_gather_vec(lp2, lse2, lg, tg, N, V, Vp);
    free(lg);
    for (int n = 0; n < N; n++)
        T_CHECK(fabsf(lse1[n] - lse2[n]) <= 4e-7f * fabsf(lse1[n]) && fabsf(lp1[n] - lp2[n]) <= 4e-7f * fabsf(lse1[n]),
                "row %d: lse %.9g vs %.9g, logp %.9g vs %.9g", n, lse1[n], lse2[n], lp1[n], lp2[n]);
}

/* Every kernel of ours (the BLAS calls aside) at 1 and at 2 threads on shapes that split
 * across threads: identical bits. This is what makes a run at a fixed thread count
 * reproducible and, where OpenBLAS's sgemm is thread-invariant too, a run at any thread
 * count (tests/test_gpt2.c). Outputs are written into one buffer per thread count. */
static size_t run_kernels_at(int threads, float *out) {
    enum { B = 3, T = 40, C = 48, NH = 4, V = 70, Vp = 128, OC = 100 };
    const size_t BT = (size_t)B * T, N = BT;
    TaRng saved = RNG;
    ta_rng_seed(&RNG, 7); /* the same inputs at both thread counts */
    ta_set_threads(threads);
    size_t o = 0;
    float *x = rand_f(BT * 3 * C, 1), *w = rand_f(4 * C, 1), *dy = rand_f(BT * 4 * C, 1);
    float *wte = rand_f((size_t)V * C, 1), *wpe = rand_f((size_t)T * C, 1);
    int tok[B * T], tg[B * T];
    for (size_t i = 0; i < BT; i++) {
        tok[i] = (int)ta_rng_below(&RNG, V);
        tg[i] = i % 7 == 3 ? -1 : (int)ta_rng_below(&RNG, V);
    }
    /* encoder */
    encoder_forward(out + o, tok, wte, wpe, B, T, C);
    o += BT * C;
    memset(out + o, 0, ((size_t)V + T) * C * 4);
    encoder_backward(out + o, out + o + (size_t)V * C, dy, tok, B, T, C);
    o += ((size_t)V + T) * C;
    /* layernorm */
    layernorm_forward(out + o, out + o + BT * C, out + o + BT * C + BT, x, w, w + C, (int)BT, C);
    float *mean = out + o + BT * C, *rstd = mean + BT;
    o += BT * C + 2 * BT;
    memset(out + o, 0, (BT * C + 2 * C) * 4);
    layernorm_backward(out + o, out + o + BT * C, out + o + BT * C + C, dy, x, w, mean, rstd,
                       (int)BT, C);
    o += BT * C + 2 * C;
    /* attention */
    float *att = out + o + BT * C, *scr = ta_malloc((size_t)B * NH * T * T * 4, "t");
    attention_forward(out + o, att, x, B, T, C, NH);
    o += BT * C + (size_t)B * NH * T * T;
    memset(out + o, 0, BT * 3 * C * 4);
    attention_backward(out + o, scr, dy, x, att, B, T, C, NH);
    o += BT * 3 * C;
    /* gelu, residual */
    gelu_forward(out + o, dy, BT * 4 * C);
    o += BT * 4 * C;
    memset(out + o, 0, BT * 4 * C * 4);
    gelu_backward(out + o, dy, dy, BT * 4 * C);
    o += BT * 4 * C;
    residual_forward(out + o, x, dy, BT * C);
    o += BT * C;
    /* bias gradient of a matmul (ours; the weight gradients are sgemm) */
    float *dw = ta_calloc((size_t)OC * C * 4, "t");
    memset(out + o, 0, OC * 4);
    matmul_backward(NULL, dw, out + o, dy, x, wte, (int)N, C, OC);
    o += OC;
    /* log-softmax, dlogits */
    float *lg = rand_f(N * Vp, 3), *dlp = rand_f(N, 1);
    logsoftmax_gather(out + o, out + o + N, lg, tg, (int)N, V, Vp);
    float *lse = out + o + N;
    o += 2 * N;
    logits_to_dlogits(lg, lse, tg, dlp, (int)N, V, Vp);
    memcpy(out + o, lg, N * Vp * 4);
    o += N * Vp;
    /* gradient norm, clip, AdamW */
    float *g = rand_f(300000, 1e-3f), *p = rand_f(300000, 1);
    out[o++] = (float)grad_global_norm(g, 300000);
    grad_clip_scale(g, 300000, 2.0, 0.5);
    AdamWConfig oc = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};
    AdamW opt;
    adamw_init(&opt, &oc, 300000);
    adamw_set_decay(&opt, 1000, 200000, 1);
    adamw_update(&opt, p, g, 1e-3);
    memcpy(out + o, p, 300000 * 4);
    o += 300000;
    adamw_free(&opt);
    free(x); free(w); free(dy); free(wte); free(wpe); free(scr); free(dw); free(lg); free(dlp);
    free(g); free(p);
    RNG = saved;
    return o;
}

static void t_threads_bitwise(void) {
    size_t cap = 4u << 20;
    float *a = ta_calloc(cap * 4, "t"), *b = ta_calloc(cap * 4, "t");
    int saved = ta_get_threads();
    size_t n = run_kernels_at(1, a);
    size_t n2 = run_kernels_at(2, b);
    ta_set_threads(saved);
    TA_ASSERT(n == n2 && n <= cap);
    size_t first = n;
    for (size_t i = 0; i < n && first == n; i++)
        if (memcmp(a + i, b + i, 4)) first = i;
    free(a);
    free(b);
    T_CHECK(first == n, "output %zu of %zu differs between 1 and 2 threads", first, n);
}

int main(void) {
    ta_rng_seed(&RNG, 42);
    ta_set_threads(0);
    t_run("fd/encoder", t_encoder);
    t_run("fd/layernorm", t_layernorm);
    t_run("fd/matmul", t_matmul);
    t_run("fd/score_head", t_score);
    t_run("fd/attention", t_attention);
    t_run("fd/attention_naive", t_attention_naive);
    t_run("attention/fast_vs_naive", t_attention_fast_vs_naive);
    TaError err;
    if (backend_init(&DNN, BACKEND_ONEDNN, PRECISION_FP32, &err) != TA_OK) {
        printf("FAIL backend/onednn_init: %s\n", err.msg);
        return 1;
    }
    t_run("fd/attention_batched_gemm_onednn", t_attention_gemm);
    t_run("attention/batched_gemm_vs_naive", t_attention_gemm_vs_naive);
    t_run("fd/gelu", t_gelu);
    t_run("fd/residual", t_residual);
    t_run("fd/softmax_cross_entropy", t_softmax_ce);
    t_run("fd/softmax_cross_entropy_vectorised", t_softmax_ce_vec);
    t_run("logsoftmax/vectorised_vs_scalar", t_logsoftmax_vec_vs_scalar);
    t_run("threads/our_kernels_1_vs_2_bitwise", t_threads_bitwise);
    backend_free(DNN);
    return t_done();
}
