/* test_curate.c — diversity curation and metrics (include/tinyalign/curate.h, diversity.h):
 *   - deviation and weights on hand-computed cases: one source, two sources (geometric
 *     mean), ties (all equal -> 1, N = 2, float noise), the degenerate all-zero case, and on
 *     random prompts the invariants mean 1 / sum N / least deviating 0; copies of a
 *     response tie bitwise;
 *   - the lexical embedding (norm 1, deterministic, UTF-8, the empty text) against tools/ref_curate.py;
 *   - pairing: hand cases (gap, fallback, equal scores, identical texts), invariants on
 *     random prompts (disjoint, chosen better, gap kept unless the fallback is reported,
 *     n/2 pairs), determinism per seed, gap -1 (all pairs, 100 distinct at most);
 *   - DivPO: k / m formulas, exactly the right responses on a hand-made pool with a
 *     recorded criterion (called on High then Low), and deviation recomputed inside a pool
 *     through curate_divpo_run on a hand-made file;
 *   - metrics: distinct-n and n-gram diversity exactly on hand strings, the gzip encoder
 *     byte-identical to Python's gzip.compress(data, 9, mtime=0) and decodable by it;
 *     diversity_metrics with the default sources = with them given, any field: source;
 *   - the commands on files: fields added / kept / replaced, weights over the paired
 *     multiset, floors, caps, --source none, the responses' own weights;
 *   - bad input: empty file, NaN, lengths that differ, zero vector, missing score / field,
 *     non-finite numbers, invalid UTF-8, single-response prompts (skipped and counted),
 *     no pairs at all: TA_EINPUT naming FILE:LINE.
 * Env: TA_ROOT (repo root, default "."), TA_REF (scratch, default build/ref), PYTHON. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>

#include "testhelp.h"
#include "tinyalign/common.h"
#include "tinyalign/curate.h"
#include "tinyalign/data.h"
#include "tinyalign/diversity.h"

static char g_dir[2048], g_root[2048];
static const char *g_py;

static const char *env_or(const char *k, const char *def) {
    const char *v = getenv(k);
    return v && *v ? v : def;
}

/* Writes content to g_dir/name; path receives the full path. */
static void write_file(char *path, size_t cap, const char *name, const char *content) {
    snprintf(path, cap, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    TA_ASSERT(f);
    fputs(content, f);
    fclose(f);
}

static char *read_text(const char *path) {
    TaError err = {0};
    size_t n;
    return ta_read_file(path, &n, &err);
}

static int run_cmd(const char *cmd) {
    int rc = system(cmd);
    return rc == -1 ? -1 : (WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
}

static int near(double a, double b, double tol) { return fabs(a - b) <= tol; }

/* ---- deviation and weights ---------------------------------------------------------------- */
static void test_source_parse(void) {
    CurateSource s;
    TaError err = {0};
    T_CHECK(curate_source_parse(&s, "field:style_embedding", &err) == TA_OK &&
                s.kind == CURATE_SRC_FIELD && !strcmp(s.arg, "style_embedding") &&
                !strcmp(s.spec, "field:style_embedding"), "field");
    T_CHECK(curate_source_parse(&s, "model:runs/x", &err) == TA_OK && s.kind == CURATE_SRC_MODEL &&
                !strcmp(s.arg, "runs/x"), "model");
    T_CHECK(curate_source_parse(&s, "lexical", &err) == TA_OK && s.kind == CURATE_SRC_LEXICAL,
            "lexical");
    T_CHECK(curate_source_parse(&s, "field:", &err) == TA_EINPUT && strstr(err.msg, "empty"),
            "empty name: %s", err.msg);
    T_CHECK(curate_source_parse(&s, "semantic", &err) == TA_EINPUT &&
                strstr(err.msg, "field:NAME") && strstr(err.msg, "lexical"), "%s", err.msg);
}

/* e1 = (1,0), e2 = (0,1), e3 = (1,1)/sqrt2 (given unnormalised as (2,2)):
 * d1 = d2 = (1 + (1 - 1/sqrt2)) / 2, d3 = 1 - 1/sqrt2; weights 1.5, 1.5, 0. */
static void test_deviation_hand(void) {
    const float emb[] = {1, 0, 0, 1, 2, 2};
    const int idx[] = {0, 1, 2};
    double dev[3], w[3], u[3];
    curate_deviation(dev, emb, 2, idx, 3);
    double r = 1.0 / sqrt(2.0);
    T_CHECK(near(dev[0], (2 - r) / 2, 1e-12) && near(dev[1], (2 - r) / 2, 1e-12) &&
                near(dev[2], 1 - r, 1e-12),
            "dev %.17g %.17g %.17g", dev[0], dev[1], dev[2]);
    T_CHECK(curate_weights(w, u, dev, 1, 3) == 0, "not degenerate");
    T_CHECK(near(w[0], 1.5, 1e-12) && near(w[1], 1.5, 1e-12) && w[2] == 0.0,
            "weights %.17g %.17g %.17g", w[0], w[1], w[2]);
    T_CHECK(u[0] == 1.0 && u[1] == 1.0 && u[2] == 0.0, "u");
    /* a multiset: response 2 twice -> its copies are 0 apart */
    const int idx2[] = {0, 2, 2};
    curate_deviation(dev, emb, 2, idx2, 3);
    T_CHECK(near(dev[0], 1 - r, 1e-12) && near(dev[1], (1 - r) / 2, 1e-12) && dev[1] == dev[2],
            "multiset dev %.17g %.17g %.17g", dev[0], dev[1], dev[2]);
}

static void test_weights_single_source(void) {
    const double dev[] = {0.2, 0.5, 0.5, 0.8}; /* min-max -> (s+1)/2 = 0, .5, .5, 1 */
    double w[4];
    curate_weights(w, NULL, dev, 1, 4);
    T_CHECK(w[0] == 0 && near(w[1], 1, 1e-12) && near(w[2], 1, 1e-12) && near(w[3], 2, 1e-12),
            "%g %g %g %g", w[0], w[1], w[2], w[3]);
}

static void test_weights_ties(void) {
    double w[4];
    const double eq[] = {0.7, 0.7, 0.7, 0.7};
    curate_weights(w, NULL, eq, 1, 4);
    for (int i = 0; i < 4; i++) T_CHECK(w[i] == 1.0, "all equal: w[%d] = %g", i, w[i]);
    const double noisy[] = {1.0, 1.0 + 1e-13, 1.0 - 1e-13}; /* float noise ties */
    curate_weights(w, NULL, noisy, 1, 3);
    for (int i = 0; i < 3; i++) T_CHECK(w[i] == 1.0, "noise: w[%d] = %g", i, w[i]);
    /* regular triangle: every deviation 1.5 -> weights 1 */
    const float tri[] = {1, 0, -0.5f, 0.8660254f, -0.5f, -0.8660254f};
    const int idx[] = {0, 1, 2};
    double dev[3];
    curate_deviation(dev, tri, 2, idx, 3);
    curate_weights(w, NULL, dev, 1, 3);
    for (int i = 0; i < 3; i++) T_CHECK(w[i] == 1.0, "triangle: w[%d] = %.17g", i, w[i]);
    /* N = 2 always ties (distance is symmetric): one pair alone is plain DPO */
    const float two[] = {1, 0, 0.3f, 0.9f};
    curate_deviation(dev, two, 2, idx, 2);
    curate_weights(w, NULL, dev, 1, 2);
    T_CHECK(w[0] == 1.0 && w[1] == 1.0, "N=2: %g %g", w[0], w[1]);
    /* two sources that both tie: weights 1 */
    const double both[] = {0.3, 0.3, 0.3, 0.9, 0.9, 0.9};
    curate_weights(w, NULL, both, 2, 3);
    for (int i = 0; i < 3; i++) T_CHECK(near(w[i], 1.0, 1e-15), "two tied sources: %g", w[i]);
}

/* K = 2, n = 4: source 1 dev (0,1,2,3) -> x1 = (0, 1/3, 2/3, 1); source 2 dev (2,2,0,1) ->
 * x2 = (1, 1, 0, 1/2); u = sqrt(x1 x2) = (0, sqrt(1/3), 0, sqrt(1/2)); w = 4u / sum u. */
static void test_weights_two_sources(void) {
    const double dev[] = {0, 1, 2, 3, 2, 2, 0, 1};
    double w[4], u[4];
    T_CHECK(curate_weights(w, u, dev, 2, 4) == 0, "not degenerate");
    double u1 = sqrt(1.0 / 3), u3 = sqrt(0.5), s = u1 + u3;
    T_CHECK(u[0] == 0 && near(u[1], u1, 1e-15) && u[2] == 0 && near(u[3], u3, 1e-15), "u");
    T_CHECK(w[0] == 0 && near(w[1], 4 * u1 / s, 1e-12) && w[2] == 0 && near(w[3], 4 * u3 / s, 1e-12),
            "%.17g %.17g %.17g %.17g", w[0], w[1], w[2], w[3]);
    T_CHECK(near(w[0] + w[1] + w[2] + w[3], 4, 1e-12), "sum N");
    /* a tying source (x = 1/2 everywhere) keeps the other's order, but through the square
     * root: x1 = (0, 1/2, 1) -> u ~ (0, sqrt(1/2), 1) -> w = 3u / sum u, not 3 x1 / sum x1 */
    const double half[] = {0.1, 0.2, 0.3, 5, 5, 5};
    curate_weights(w, u, half, 2, 3);
    double h = sqrt(0.5);
    T_CHECK(w[0] == 0 && near(w[1], 3 * h / (h + 1), 1e-12) && near(w[2], 3 / (h + 1), 1e-12),
            "%g %g %g", w[0], w[1], w[2]);
}

static void test_weights_degenerate(void) {
    /* each response is the minimum of one source: u = 0 everywhere -> all weights 0 */
    const double dev[] = {0, 1, 1, 0};
    double w[2];
    T_CHECK(curate_weights(w, NULL, dev, 2, 2) == 1, "reported degenerate");
    T_CHECK(w[0] == 0 && w[1] == 0, "%g %g", w[0], w[1]);
}

static void test_weights_random_invariants(void) {
    TaRng r;
    ta_rng_seed(&r, 7);
    int checked = 0;
    for (int trial = 0; trial < 300; trial++) {
        int n = 2 + (int)ta_rng_below(&r, 20), K = 1 + (int)ta_rng_below(&r, 3), D = 5;
        float emb[22 * 5];
        for (int i = 0; i < n * D; i++) emb[i] = (float)ta_rng_normal(&r);
        int idx[22];
        for (int i = 0; i < n; i++) idx[i] = i;
        double dev[3 * 22], w[22];
        for (int k = 0; k < K; k++) {
            for (int i = 0; i < n * D; i++) emb[i] = (float)ta_rng_normal(&r);
            curate_deviation(dev + k * n, emb, D, idx, n);
        }
        int deg = curate_weights(w, NULL, dev, K, n);
        double sum = 0, lo = 1e9;
        for (int i = 0; i < n; i++) {
            T_CHECK(w[i] >= 0, "negative weight");
            sum += w[i];
            lo = fmin(lo, w[i]);
        }
        if (deg) {
            T_CHECK(sum == 0, "degenerate prompt has non-zero weights");
            continue;
        }
        T_CHECK(near(sum / n, 1.0, 1e-12), "trial %d (n %d, K %d): mean %.17g", trial, n, K, sum / n);
        if (n > 2) T_CHECK(lo == 0.0, "trial %d: least-deviating weight %g", trial, lo);
        /* single source: the least deviating response is the one with weight 0 */
        if (K == 1 && n > 2) {
            int amin = 0;
            for (int i = 1; i < n; i++)
                if (dev[i] < dev[amin]) amin = i;
            T_CHECK(w[amin] == 0.0, "argmin dev has weight %g", w[amin]);
        }
        checked++;
    }
    T_CHECK(checked > 200, "only %d non-degenerate trials", checked);
}

static void test_duplicates_tie(void) {
    /* responses 1 and 3 are copies: bitwise-equal deviations whatever their positions */
    float emb[5 * 7];
    TaRng r;
    ta_rng_seed(&r, 3);
    for (int i = 0; i < 5 * 7; i++) emb[i] = (float)ta_rng_normal(&r);
    memcpy(emb + 3 * 7, emb + 1 * 7, 7 * sizeof(float));
    const int idx[] = {0, 1, 2, 3, 4};
    double dev[5];
    curate_deviation(dev, emb, 7, idx, 5);
    T_CHECK(dev[1] == dev[3], "copies differ: %.17g vs %.17g", dev[1], dev[3]);
    const int idx2[] = {3, 4, 1, 0, 2};
    double dev2[5];
    curate_deviation(dev2, emb, 7, idx2, 5);
    T_CHECK(dev2[0] == dev2[2] && dev2[0] == dev[1], "order changed the copies' deviation");
}

/* ---- lexical embedding ----------------------------------------------------------------- */
static double cosf_(const float *a, const float *b, int n) {
    double d = 0, na = 0, nb = 0;
    for (int i = 0; i < n; i++) d += a[i] * b[i], na += a[i] * a[i], nb += b[i] * b[i];
    return d / sqrt(na * nb);
}

static void test_lexical(void) {
    static const char *texts[] = {"the cat sat on the mat", "the cat sat on the hat", "ans 123.",
                                  "a", "  spaced\tout\n words  ", "café 東京 🙂 мир",
                                  "completely different words here", ""};
    enum { NT = 8, D = CURATE_LEXICAL_DIM };
    static float v[NT][D], again[D];
    for (int i = 0; i < NT; i++) {
        curate_lexical_embed(v[i], texts[i]);
        double ss = 0;
        for (int c = 0; c < D; c++) ss += (double)v[i][c] * v[i][c];
        T_CHECK(near(ss, 1.0, 1e-6), "norm of %s: %g", texts[i], ss);
    }
    curate_lexical_embed(again, texts[0]);
    T_CHECK(!memcmp(again, v[0], sizeof again), "not deterministic");
    double c01 = cosf_(v[0], v[1], D), c06 = cosf_(v[0], v[6], D);
    T_CHECK(c01 > 0.6 && c01 < 0.999 && c06 < 0.3, "cos near %g, far %g", c01, c06);
    /* against tools/ref_curate.py lexical */
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < NT; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(texts[i]));
    char *js = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    char in[2200], out[2200], cmd[8192];
    write_file(in, sizeof in, "lex_in.json", js);
    free(js);
    snprintf(out, sizeof out, "%s/lex_out.json", g_dir);
    snprintf(cmd, sizeof cmd, "%s %s/tools/ref_curate.py lexical --in %s --out %s", g_py, g_root,
             in, out);
    T_CHECK(run_cmd(cmd) == 0, "%s failed", cmd);
    char *txt = read_text(out);
    T_CHECK(txt, "no %s", out);
    cJSON *ref = cJSON_Parse(txt);
    free(txt);
    T_CHECK(cJSON_GetArraySize(ref) == NT, "ref size");
    double worst = 0;
    for (int i = 0; i < NT; i++) {
        cJSON *row = cJSON_GetArrayItem(ref, i);
        for (int c = 0; c < D; c++)
            worst = fmax(worst, fabs(cJSON_GetArrayItem(row, c)->valuedouble - v[i][c]));
    }
    cJSON_Delete(ref);
    T_CHECK(worst < 1e-6, "lexical differs from python by %g", worst);
}

/* ---- pairing -------------------------------------------------------------------------- */
static void test_pairs_hand(void) {
    CuratePair p[8];
    TaRng r;
    int fb;
    const double s1[] = {1, 2, 10};
    for (int seed = 0; seed < 20; seed++) {
        ta_rng_seed(&r, (uint64_t)seed);
        int n = curate_sample_pairs(p, s1, NULL, 3, 5, &r, &fb);
        T_CHECK(n == 1 && p[0].chosen == 2 && (p[0].rejected == 0 || p[0].rejected == 1) && !fb,
                "seed %d: %d pairs (%d, %d) fb %d", seed, n, p[0].chosen, p[0].rejected, fb);
    }
    const double s2[] = {1, 2};
    ta_rng_seed(&r, 1);
    T_CHECK(curate_sample_pairs(p, s2, NULL, 2, 5, &r, &fb) == 1 && fb && p[0].chosen == 1 &&
                p[0].rejected == 0, "fallback");
    const double s3[] = {4, 4, 4, 4};
    T_CHECK(curate_sample_pairs(p, s3, NULL, 4, 0, &r, &fb) == 0, "equal scores pair");
    T_CHECK(curate_sample_pairs(p, s3, NULL, 4, -1, &r, &fb) == 0, "equal scores, all pairs");
    /* identical texts are never paired: only (0 or 1) with 2 */
    const double s4[] = {1, 9, 20};
    const char *t4[] = {"same", "same", "other"};
    for (int seed = 0; seed < 20; seed++) {
        ta_rng_seed(&r, (uint64_t)seed);
        int n = curate_sample_pairs(p, s4, t4, 3, 100, &r, &fb);
        T_CHECK(n == 1 && p[0].chosen == 2, "identical texts paired");
    }
    const char *t5[] = {"x", "x"};
    T_CHECK(curate_sample_pairs(p, s2, t5, 2, 0, &r, &fb) == 0, "identical pair emitted");
}

static void test_pairs_invariants(void) {
    TaRng r, q;
    ta_rng_seed(&q, 11);
    int differ = 0;
    for (int trial = 0; trial < 200; trial++) {
        int n = 2 + (int)ta_rng_below(&q, 30);
        double s[32], gap = (double)ta_rng_below(&q, 12);
        int distinct = trial % 2;
        for (int i = 0; i < n; i++)
            s[i] = distinct ? (double)i * 1.5 + ta_rng_f64(&q) : (double)ta_rng_below(&q, 25);
        CuratePair a[16], b[16];
        int fb, fb2;
        ta_rng_seed(&r, curate_prompt_seed(42, (size_t)trial));
        int na = curate_sample_pairs(a, s, NULL, n, gap, &r, &fb);
        uint8_t used[32] = {0};
        for (int t = 0; t < na; t++) {
            T_CHECK(!used[a[t].chosen] && !used[a[t].rejected], "trial %d: not disjoint", trial);
            used[a[t].chosen] = used[a[t].rejected] = 1;
            T_CHECK(s[a[t].chosen] > s[a[t].rejected], "trial %d: chosen not better", trial);
            if (!fb) T_CHECK(s[a[t].chosen] - s[a[t].rejected] >= gap, "trial %d: gap", trial);
        }
        if (distinct) T_CHECK(na == n / 2, "trial %d: %d pairs of %d responses", trial, na, n);
        ta_rng_seed(&r, curate_prompt_seed(42, (size_t)trial));
        int nb = curate_sample_pairs(b, s, NULL, n, gap, &r, &fb2);
        T_CHECK(na == nb && fb == fb2 && !memcmp(a, b, (size_t)na * sizeof *a),
                "trial %d: same seed, different pairs", trial);
        ta_rng_seed(&r, curate_prompt_seed(43, (size_t)trial));
        nb = curate_sample_pairs(b, s, NULL, n, gap, &r, &fb2);
        if (nb != na || memcmp(a, b, (size_t)na * sizeof *a)) differ++;
    }
    T_CHECK(differ > 100, "another seed changed only %d of 200 pairings", differ);
}

static void test_pairs_all_pairs(void) {
    CuratePair p[CURATE_ALL_PAIRS_MAX];
    TaRng r;
    int fb;
    double s[20];
    for (int i = 0; i < 20; i++) s[i] = i;
    ta_rng_seed(&r, 5);
    T_CHECK(curate_sample_pairs(p, s, NULL, 10, -1, &r, &fb) == 45, "10 responses -> 45 pairs");
    int n = curate_sample_pairs(p, s, NULL, 20, -1, &r, &fb);
    T_CHECK(n == CURATE_ALL_PAIRS_MAX, "20 responses -> %d pairs", n);
    uint8_t seen[20][20] = {{0}};
    for (int t = 0; t < n; t++) {
        T_CHECK(s[p[t].chosen] > s[p[t].rejected], "order");
        T_CHECK(!seen[p[t].chosen][p[t].rejected], "pair drawn twice");
        seen[p[t].chosen][p[t].rejected] = 1;
    }
}

/* ---- DivPO --------------------------------------------------------------------------------- */
typedef struct {
    const double *d; /* per response */
    int calls, pools[2][16], sizes[2];
} RecCtx;

static int rec_div(double *d, const int *idx, int n, void *ctx, TaError *err) {
    (void)err;
    RecCtx *c = ctx;
    if (c->calls < 2) {
        memcpy(c->pools[c->calls], idx, (size_t)n * sizeof(int));
        c->sizes[c->calls] = n;
    }
    c->calls++;
    for (int a = 0; a < n; a++) d[a] = c->d[idx[a]];
    return TA_OK;
}

static int in_set(int x, const int *s, int n) {
    for (int i = 0; i < n; i++)
        if (s[i] == x) return 1;
    return 0;
}

static void test_divpo_hand(void) {
    /* 12 responses, rho 25 -> k = int(min(max(2, 3), 6)) = 3, m = 2.
     * scores: High = {11 (s 30), 4 (29), 7 (28)}, Low = {2 (0), 9 (1), 0 (2)} */
    const double sc[12] = {2, 10, 0, 11, 29, 12, 13, 28, 14, 1, 15, 30};
    const double dv[12] = {0.9, 0, 0.2, 0, 0.5, 0, 0, 0.7, 0, 0.1, 0, 0.3};
    RecCtx c = {.d = dv};
    CuratePair p[2];
    TaRng r;
    TaError err = {0};
    ta_rng_seed(&r, 1);
    int m = curate_divpo_select(p, sc, 12, 25, 2, rec_div, &c, &r, &err);
    T_CHECK(m == 2 && c.calls == 2, "m %d, calls %d", m, c.calls);
    T_CHECK(c.sizes[0] == 3 && c.pools[0][0] == 11 && c.pools[0][1] == 4 && c.pools[0][2] == 7,
            "High pool");
    T_CHECK(c.sizes[1] == 3 && c.pools[1][0] == 2 && c.pools[1][1] == 9 && c.pools[1][2] == 0,
            "Low pool");
    /* chosen: most diverse of High = 7 (0.7), 4 (0.5); rejected: least of Low = 9 (0.1), 2 (0.2) */
    int ch[2] = {p[0].chosen, p[1].chosen}, rj[2] = {p[0].rejected, p[1].rejected};
    T_CHECK(in_set(7, ch, 2) && in_set(4, ch, 2), "chosen %d %d", ch[0], ch[1]);
    T_CHECK(in_set(9, rj, 2) && in_set(2, rj, 2), "rejected %d %d", rj[0], rj[1]);
    /* shuffling: over seeds both zip orders appear */
    int orders = 0;
    for (int seed = 0; seed < 30; seed++) {
        ta_rng_seed(&r, (uint64_t)seed);
        c.calls = 0;
        curate_divpo_select(p, sc, 12, 25, 2, rec_div, &c, &r, &err);
        orders |= 1 << ((p[0].chosen == 7) * 2 + (p[0].rejected == 9));
    }
    T_CHECK(orders == 15, "zip orders seen: %x", orders);
    /* k and m */
    struct { int n, maxp; double rho; int m; } km[] = {
        {4, 2, 25, 2}, {3, 2, 25, 1}, {2, 2, 25, 1}, {100, 2, 25, 2}, {100, 40, 25, 40},
        {100, 10, 25, 10}, {100, 60, 25, 50}, {10, 1, 50, 1}, {7, 5, 100, 3}};
    double s100[100];
    double d100[100] = {0};
    for (int i = 0; i < 100; i++) s100[i] = i;
    RecCtx c2 = {.d = d100};
    CuratePair pp[64];
    for (size_t t = 0; t < sizeof km / sizeof km[0]; t++) {
        int got = curate_divpo_select(pp, s100, km[t].n, km[t].rho, km[t].maxp, rec_div, &c2, &r, &err);
        T_CHECK(got == km[t].m, "n %d maxp %d rho %g: m %d, expected %d", km[t].n, km[t].maxp,
                km[t].rho, got, km[t].m);
    }
    T_CHECK(curate_divpo_select(pp, s100, 1, 25, 2, rec_div, &c2, &r, &err) == 0, "n = 1");
}

/* High = 3 best of 12: A (1,0), B (1,0.1), C (0,1): in-pool deviation makes C the most
 * deviating; Low = 3 worst: D (0,1), E (0.1,1), F (1,0): in-pool E is the least deviating
 * (dev_E = (0.005 + 0.9005) / 2 < dev_D = (0.005 + 1) / 2 < dev_F = 1). The six middle
 * responses point elsewhere and must not matter. */
static void test_divpo_in_pool(void) {
    static const char *data =
        "{\"prompt\": \"p\", \"responses\": ["
        "{\"text\": \"A\", \"score\": 30, \"embedding\": [1, 0]},"
        "{\"text\": \"m1\", \"score\": 10, \"embedding\": [0.7, 0.7]},"
        "{\"text\": \"D\", \"score\": 0, \"embedding\": [0, 1]},"
        "{\"text\": \"B\", \"score\": 29, \"embedding\": [1, 0.1]},"
        "{\"text\": \"m2\", \"score\": 11, \"embedding\": [0.7, 0.72]},"
        "{\"text\": \"E\", \"score\": 1, \"embedding\": [0.1, 1]},"
        "{\"text\": \"m3\", \"score\": 12, \"embedding\": [0.6, 0.7]},"
        "{\"text\": \"C\", \"score\": 28, \"embedding\": [0, 1]},"
        "{\"text\": \"m4\", \"score\": 13, \"embedding\": [-1, 0.1]},"
        "{\"text\": \"F\", \"score\": 2, \"embedding\": [1, 0]},"
        "{\"text\": \"m5\", \"score\": 14, \"embedding\": [0.2, -1]},"
        "{\"text\": \"m6\", \"score\": 15, \"embedding\": [0.5, 0.5]}]}\n";
    char in[2200], out[2200];
    write_file(in, sizeof in, "divpo_pool.jsonl", data);
    snprintf(out, sizeof out, "%s/divpo_pool.out.jsonl", g_dir);
    CurateDivpoOptions o;
    curate_divpo_defaults(&o);
    o.in = in, o.out = out, o.max_pairs = 1;
    CurateDivpoStats st;
    TaError err = {0};
    T_CHECK(curate_divpo_run(&o, &st, &err) == TA_OK, "%s", err.msg);
    T_CHECK(st.pairs == 1, "%zu pairs", st.pairs);
    char *txt = read_text(out);
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    T_CHECK(j, "output not JSON");
    const char *ch = cJSON_GetObjectItem(j, "chosen")->valuestring;
    const char *rj = cJSON_GetObjectItem(j, "rejected")->valuestring;
    int ok = !strcmp(ch, "C") && !strcmp(rj, "E") && !cJSON_GetObjectItem(j, "weight") &&
             cJSON_GetObjectItem(j, "chosen_score")->valuedouble == 28;
    char msg[256];
    snprintf(msg, sizeof msg, "chosen %s rejected %s", ch, rj);
    cJSON_Delete(j);
    T_CHECK(ok, "%s (expected C vs E)", msg);
}

/* ---- metrics ---------------------------------------------------------------------------- */
static void test_ngram_metrics(void) {
    const char *t[] = {"a b a", "a  b\tc"};
    /* inside each text: 1-grams a b a a b c (3 unique / 6); 2-grams ab ba | ab bc (3/4);
     * 3-grams aba | abc (2/2); no 4-gram (0) */
    T_CHECK(diversity_distinct_n(t, 2, 1) == 0.5, "d1 %g", diversity_distinct_n(t, 2, 1));
    T_CHECK(diversity_distinct_n(t, 2, 2) == 0.75, "d2");
    T_CHECK(diversity_distinct_n(t, 2, 3) == 1.0, "d3");
    T_CHECK(isnan(diversity_distinct_n(t, 2, 4)), "d4 without 4-grams is undefined, not 0");
    /* per response: the distinct-n above, the missing 4-grams counting 0: 0.5 + 0.75 + 1 */
    T_CHECK(diversity_ngram_diversity(t, 2) == 2.25, "ngram diversity %.17g",
            diversity_ngram_diversity(t, 2));
    /* joined (the authors' form), a b a a b c: 3/6 + 4/5 (ab ba aa ab bc) + 4/4 + 3/3 = 3.3:
     * the 2-gram "a a" and every 3-, 4-gram span the two responses */
    T_CHECK(near(diversity_ngram_diversity_joined(t, 2), 3.3, 1e-15), "joined %.17g",
            diversity_ngram_diversity_joined(t, 2));
    /* one-word answers: per response only 1-grams (all distinct: 1); joined counts the
     * pairs and triples of neighbouring answers as 2- and 3-grams: 1 + 1 + 1, no 4-gram */
    const char *words1[] = {"381", "ans", "902"};
    T_CHECK(diversity_ngram_diversity(words1, 3) == 1.0 &&
                diversity_ngram_diversity_joined(words1, 3) == 3.0,
            "one-word answers %g %g", diversity_ngram_diversity(words1, 3),
            diversity_ngram_diversity_joined(words1, 3));
    const char *same[] = {"x y", "x y", "x y"};
    T_CHECK(near(diversity_distinct_n(same, 3, 1), 2.0 / 6, 1e-15), "same d1");
    T_CHECK(near(diversity_distinct_n(same, 3, 2), 1.0 / 3, 1e-15), "same d2");
    /* per response: 2/6 + 1/3 (3 x "x y"), no 3-gram; joined x y x y x y: 2/6 + 2/5 + 2/4 + 2/3 */
    T_CHECK(near(diversity_ngram_diversity(same, 3), 2.0 / 6 + 1.0 / 3, 1e-15), "same ngram diversity");
    T_CHECK(near(diversity_ngram_diversity_joined(same, 3), 2.0 / 6 + 2.0 / 5 + 2.0 / 4 + 2.0 / 3, 1e-15),
            "same ngram diversity joined");
    /* tokens compare exactly: "ab" "a b" differ; multi-byte tokens */
    const char *u[] = {"東京 東京 мир", "東京"};
    T_CHECK(near(diversity_distinct_n(u, 2, 1), 0.5, 1e-15), "utf-8 d1");
    const char *blank[] = {"   ", "\n"};
    T_CHECK(isnan(diversity_distinct_n(blank, 2, 1)) && diversity_ngram_diversity(blank, 2) == 0 &&
                diversity_ngram_diversity_joined(blank, 2) == 0,
            "no tokens");
}

static void test_gzip_matches_python(void) {
    static const char *cases[] = {
        "", "a", "hello world hello world hello",
        "ans 246. 512 246 ans 615. ans 609. 156 552 ans 246. ans 714. ans 336. 408 984",
        "151 596 610 502 421 ans 502. 403 ans 502. ans 439. 609 223 632",
        "The quick brown fox jumps over the lazy dog. The quick brown fox jumps again.",
        "café 東京 🙂 мир café 東京 🙂 мир"};
    char path[2200], gz[2200], ref[2200], cmd[16384];
    int nc = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < nc + 2; i++) {
        /* two generated cases: a long repetitive text and pseudo-random bytes */
        size_t len;
        char *buf;
        if (i < nc) {
            len = strlen(cases[i]);
            buf = ta_malloc(len + 1, "case");
            memcpy(buf, cases[i], len + 1);
        } else {
            len = i == nc ? 120000 : 7000;
            buf = ta_malloc(len + 1, "case");
            TaRng r;
            ta_rng_seed(&r, (uint64_t)i);
            static const char *words[] = {"ans", "12", "number", "the", "7.", "digit"};
            size_t o = 0;
            while (o < len) {
                if (i == nc) {
                    const char *w = words[ta_rng_below(&r, 6)];
                    for (size_t k = 0; w[k] && o < len; k++) buf[o++] = w[k];
                    if (o < len) buf[o++] = ' ';
                } else {
                    buf[o++] = (char)ta_rng_below(&r, 256);
                }
            }
        }
        snprintf(path, sizeof path, "%s/gz_%d.bin", g_dir, i);
        FILE *f = fopen(path, "wb");
        TA_ASSERT(f);
        fwrite(buf, 1, len, f);
        fclose(f);
        size_t glen;
        unsigned char *g = diversity_gzip(buf, len, &glen);
        snprintf(gz, sizeof gz, "%s/gz_%d.ours.gz", g_dir, i);
        f = fopen(gz, "wb");
        fwrite(g, 1, glen, f);
        fclose(f);
        snprintf(ref, sizeof ref, "%s/gz_%d.py.gz", g_dir, i);
        snprintf(cmd, sizeof cmd,
                 "%s %s/tools/ref_curate.py gzip --in %s --out %s && "
                 "%s -c 'import gzip,sys; a=open(sys.argv[1],\"rb\").read(); "
                 "assert gzip.decompress(open(sys.argv[2],\"rb\").read()) == a' %s %s && cmp -s %s %s",
                 g_py, g_root, path, ref, g_py, path, gz, gz, ref);
        int rc = run_cmd(cmd);
        T_CHECK(rc == 0, "case %d (%zu bytes, ours %zu): not byte-identical to python's gzip or not "
                "decodable", i, len, glen);
        if (len) {
            const char *one[] = {buf};
            T_CHECK(buf[0] == '\0' || i >= nc ||
                        near(diversity_compression_ratio(one, 1), (double)len / (double)glen, 1e-15),
                    "ratio");
        }
        free(g);
        free(buf);
    }
    const char *empty[] = {""};
    T_CHECK(diversity_compression_ratio(empty, 1) == 0, "empty ratio");
    /* joined by spaces */
    const char *two[] = {"ab", "ab"};
    size_t glen;
    unsigned char *g = diversity_gzip("ab ab", 5, &glen);
    free(g);
    T_CHECK(near(diversity_compression_ratio(two, 2), 5.0 / (double)glen, 1e-15), "join");
}

/* ---- files -------------------------------------------------------------------------------- */
static const char *FILE_A =
    "{\"prompt\": \"p0\", \"id\": 7, \"responses\": ["
    "{\"text\": \"r0\", \"score\": 1, \"embedding\": [1, 0], \"style\": [1, 0, 0], \"weight\": 9, "
    "\"deviation/old\": 3, \"keep\": \"yes\"},"
    "{\"text\": \"r1\", \"score\": 7, \"embedding\": [0, 1], \"style\": [0, 1, 0]},"
    "{\"text\": \"r2\", \"score\": 20, \"embedding\": [2, 2], \"style\": [1, 1, 0]}]}\n"
    "\n"
    "{\"prompt\": \"single\", \"responses\": [{\"text\": \"only\", \"score\": 3, "
    "\"embedding\": [1, 1], \"style\": [0, 0, 1]}]}\n"
    "{\"prompt\": \"p2\", \"responses\": ["
    "{\"text\": \"a\", \"score\": 0, \"embedding\": [1, 0], \"style\": [1, 0, 0]},"
    "{\"text\": \"b\", \"score\": 10, \"embedding\": [0.8, 0.6], \"style\": [0, 1, 0]},"
    "{\"text\": \"c\", \"score\": 20, \"embedding\": [0, 1], \"style\": [0, 0, 1]},"
    "{\"text\": \"d\", \"score\": 30, \"embedding\": [-1, 0], \"style\": [1, 1, 1]}]}\n";

static cJSON *load_lines(const char *path, int *n) {
    *n = 0;
    char *txt = read_text(path);
    if (!txt) return NULL;
    cJSON *arr = cJSON_CreateArray();
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n"))
        cJSON_AddItemToArray(arr, cJSON_Parse(line));
    free(txt);
    *n = cJSON_GetArraySize(arr);
    return arr;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void test_deviation_run(void) {
    char in[2200], out[2200];
    write_file(in, sizeof in, "a.jsonl", FILE_A);
    snprintf(out, sizeof out, "%s/a.dev.jsonl", g_dir);
    CurateDeviationOptions o = {.in = in, .out = out};
    CurateDeviationStats st;
    TaError err = {0};
    T_CHECK(curate_deviation_run(&o, &st, &err) == TA_OK, "%s", err.msg);
    T_CHECK(st.prompts == 3 && st.responses == 8 && st.skipped_single == 1, "stats");
    int n;
    cJSON *L = load_lines(out, &n);
    T_CHECK(L && n == 3, "lines %d", n);
    cJSON *l0 = cJSON_GetArrayItem(L, 0);
    cJSON *rs = cJSON_GetObjectItem(l0, "responses");
    T_CHECK(num(l0, "id") == 7, "top-level field lost");
    cJSON *r0 = cJSON_GetArrayItem(rs, 0), *r2 = cJSON_GetArrayItem(rs, 2);
    double rr = 1.0 / sqrt(2.0);
    T_CHECK(near(num(r0, "deviation"), (2 - rr) / 2, 1e-12) && near(num(r0, "weight"), 1.5, 1e-12),
            "r0 dev %g w %g", num(r0, "deviation"), num(r0, "weight"));
    T_CHECK(num(r2, "weight") == 0 && near(num(r2, "deviation"), 1 - rr, 1e-12), "r2");
    T_CHECK(!cJSON_GetObjectItem(r0, "deviation/old") &&
                !strcmp(cJSON_GetObjectItem(r0, "keep")->valuestring, "yes") &&
                cJSON_GetArraySize(cJSON_GetObjectItem(r0, "style")) == 3,
            "stale field kept or user field lost");
    cJSON *single = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(L, 1), "responses"), 0);
    T_CHECK(!cJSON_GetObjectItem(single, "weight") && !cJSON_GetObjectItem(single, "deviation"),
            "single-response prompt changed");
    cJSON_Delete(L);
    /* two sources: per-source keys and the geometric-mean weights of curate_weights */
    CurateSource src[2];
    curate_source_parse(&src[0], "field:embedding", &err);
    curate_source_parse(&src[1], "field:style", &err);
    memcpy(o.sources, src, sizeof src);
    o.n_sources = 2;
    T_CHECK(curate_deviation_run(&o, &st, &err) == TA_OK, "%s", err.msg);
    L = load_lines(out, &n);
    rs = cJSON_GetObjectItem(cJSON_GetArrayItem(L, 2), "responses");
    double dev[8], w[4], sum = 0;
    for (int j = 0; j < 4; j++) {
        cJSON *r = cJSON_GetArrayItem(rs, j);
        dev[j] = num(r, "deviation/field:embedding");
        dev[4 + j] = num(r, "deviation/field:style");
        T_CHECK(!cJSON_GetObjectItem(r, "deviation"), "plain deviation with two sources");
    }
    curate_weights(w, NULL, dev, 2, 4);
    for (int j = 0; j < 4; j++) {
        double got = num(cJSON_GetArrayItem(rs, j), "weight");
        T_CHECK(got == w[j], "weight %d: %.17g vs %.17g", j, got, w[j]);
        sum += got;
    }
    T_CHECK(near(sum, 4, 1e-12), "sum %g", sum);
    cJSON_Delete(L);
}

static void test_pairs_run(void) {
    char in[2200], out[2200];
    write_file(in, sizeof in, "a.jsonl", FILE_A);
    snprintf(out, sizeof out, "%s/a.pairs.jsonl", g_dir);
    CuratePairsOptions o;
    curate_pairs_defaults(&o);
    o.in = in, o.out = out, o.gap = 0;
    CuratePairsStats st;
    TaError err = {0};
    T_CHECK(curate_pairs_run(&o, &st, &err) == TA_OK, "%s", err.msg);
    T_CHECK(st.weights_from == 0, "with embeddings, weights are computed");
    T_CHECK(st.pairs == 3 && st.skipped_single == 1 && st.prompts == 3, "stats: %zu pairs", st.pairs);
    int n;
    cJSON *L = load_lines(out, &n);
    T_CHECK(L && n == 3, "lines");
    /* prompt p2: 2 disjoint pairs over all 4 responses -> the multiset is every response;
     * prompt p0: 1 pair -> N = 2 -> weight 1 */
    const float e2[] = {1, 0, 0.8f, 0.6f, 0, 1, -1, 0};
    const int idx[] = {0, 1, 2, 3};
    double dev[4], w[4];
    curate_deviation(dev, e2, 2, idx, 4);
    curate_weights(w, NULL, dev, 1, 4);
    const char *names = "abcd";
    for (int t = 0; t < n; t++) {
        cJSON *p = cJSON_GetArrayItem(L, t);
        const char *prompt = cJSON_GetObjectItem(p, "prompt")->valuestring;
        const char *c = cJSON_GetObjectItem(p, "chosen")->valuestring;
        T_CHECK(num(p, "chosen_score") > num(p, "rejected_score"), "order");
        if (!strcmp(prompt, "p0")) {
            T_CHECK(num(p, "weight") == 1.0, "single pair weight %g", num(p, "weight"));
        } else {
            int j = (int)(strchr(names, c[0]) - names);
            T_CHECK(near(num(p, "weight"), w[j], 1e-12), "p2 chosen %s: %g vs %g", c,
                    num(p, "weight"), w[j]);
        }
    }
    cJSON_Delete(L);
    /* cap 1 pair per prompt: p2's weight is now over 2 responses -> 1 */
    o.max_pairs_per_prompt = 1;
    T_CHECK(curate_pairs_run(&o, &st, &err) == TA_OK && st.pairs == 2 && st.capped_prompts == 1,
            "cap");
    L = load_lines(out, &n);
    for (int t = 0; t < n; t++) T_CHECK(num(cJSON_GetArrayItem(L, t), "weight") == 1.0, "capped weight");
    cJSON_Delete(L);
    /* sort-with-score keeps p2's pair with the best chosen (d, 30) */
    o.sort_with_score = 1;
    T_CHECK(curate_pairs_run(&o, &st, &err) == TA_OK, "%s", err.msg);
    L = load_lines(out, &n);
    T_CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(L, 1), "chosen")->valuestring, "d"),
            "sort-with-score");
    cJSON_Delete(L);
    /* floor: chosen weights below W become W */
    o.max_pairs_per_prompt = 0, o.sort_with_score = 0, o.min_weight = 0.75;
    T_CHECK(curate_pairs_run(&o, &st, &err) == TA_OK, "%s", err.msg);
    L = load_lines(out, &n);
    for (int t = 0; t < n; t++) T_CHECK(num(cJSON_GetArrayItem(L, t), "weight") >= 0.75, "floor");
    cJSON_Delete(L);
    /* --source none: no weight field */
    o.min_weight = -1, o.no_weights = 1;
    T_CHECK(curate_pairs_run(&o, &st, &err) == TA_OK && st.weights_from == 2, "none");
    L = load_lines(out, &n);
    T_CHECK(!cJSON_GetObjectItem(cJSON_GetArrayItem(L, 0), "weight"), "weight written");
    cJSON_Delete(L);
    /* responses' own weights (from curate deviation) */
    char dev_out[2200];
    snprintf(dev_out, sizeof dev_out, "%s/a.dev2.jsonl", g_dir);
    CurateDeviationOptions d = {.in = in, .out = dev_out};
    T_CHECK(curate_deviation_run(&d, NULL, &err) == TA_OK, "%s", err.msg);
    o.in = dev_out, o.no_weights = 0;
    T_CHECK(curate_pairs_run(&o, &st, &err) == TA_OK && st.weights_from == 1, "own weights");
    L = load_lines(out, &n);
    for (int t = 0; t < n; t++) {
        cJSON *p = cJSON_GetArrayItem(L, t);
        if (!strcmp(cJSON_GetObjectItem(p, "prompt")->valuestring, "p0") &&
            !strcmp(cJSON_GetObjectItem(p, "chosen")->valuestring, "r2"))
            T_CHECK(num(p, "weight") == 0, "r2's own weight is 0, got %g", num(p, "weight"));
    }
    cJSON_Delete(L);
}

/* diversity_metrics on a Dataset: default sources = explicit lexical + field:embedding,
 * hand-computed values, and any field: source of the one multi-response reader. */
static void test_metrics_dataset(void) {
    char in[2200];
    write_file(in, sizeof in, "m.jsonl",
               "{\"prompt\": \"p\", \"responses\": [{\"text\": \"a b a\", \"embedding\": [1, 0], \"style\": [1, 1]},"
               "{\"text\": \"a  b\\tc\", \"embedding\": [0, 1], \"style\": [1, 1]}]}\n"
               "{\"prompt\": \"q\", \"responses\": [{\"text\": \"solo\", \"embedding\": [1, 1], \"style\": [1, 0]}]}\n"
               "{\"prompt\": \"r\", \"responses\": [{\"text\": \"x y\", \"embedding\": [1, 1], \"style\": [1, 0]},"
               "{\"text\": \"x y\", \"embedding\": [1, 1], \"style\": [0, 1]}, {\"text\": \"x z\", \"embedding\": [1, -1]}]}\n");
    Dataset *d = NULL;
    TaError err = {0};
    T_CHECK(dataset_load(&d, in, DS_MULTI, NULL, NULL, &err) == TA_OK, "%s", err.msg);
    DiversityReport a, b;
    T_CHECK(diversity_metrics(d, NULL, &a, &err) == TA_OK, "%s", err.msg);
    DiversityOptions ob = {.n_sources = 2};
    curate_source_parse(&ob.sources[0], "lexical", &err);
    curate_source_parse(&ob.sources[1], "field:embedding", &err);
    T_CHECK(diversity_metrics(d, &ob, &b, &err) == TA_OK, "%s", err.msg);
    T_CHECK(a.n_sources == 2 && !strcmp(a.sources[1].spec, "field:embedding"), "default sources");
    T_CHECK(a.n_scored == 2 && a.skipped_single == 1 && a.n_responses == 5, "counts");
    T_CHECK(!memcmp(&a.overall, &b.overall, sizeof a.overall), "defaults != explicit sources");
    T_CHECK(a.per_prompt[0].distinct[0] == 0.5 && a.per_prompt[0].ngram_diversity == 2.25 &&
                near(a.per_prompt[0].ngram_diversity_joined, 3.3, 1e-15),
            "per-prompt values");
    /* prompt p: the two embeddings are orthogonal -> distance 1; prompt r: (1,1) (1,1) (1,-1):
     * pairs 0, 1, 1 -> mean 2/3 */
    T_CHECK(near(a.per_prompt[0].emb_distance[1], 1.0, 1e-12) &&
                near(a.per_prompt[1].emb_distance[1], 2.0 / 3, 1e-12),
            "embedding distance %g %g", a.per_prompt[0].emb_distance[1],
            a.per_prompt[1].emb_distance[1]);
    T_CHECK(a.per_prompt[1].line == 3, "line %ld", a.per_prompt[1].line);
    /* distinct-3: p has 3-grams (1.0), r's two-word answers none (undefined, not 0): the
     * overall mean is over p alone; nobody has 4-grams */
    T_CHECK(isnan(a.per_prompt[1].distinct[2]) && a.overall.distinct[2] == 1.0 &&
                isnan(a.overall.distinct[3]) && near(a.overall.distinct[1], (0.75 + 2.0 / 3) / 2, 1e-15),
            "distinct-3 %g %g, distinct-4 %g", a.per_prompt[1].distinct[2],
            a.overall.distinct[2], a.overall.distinct[3]);
    char *js = diversity_report_json(&a, 1);
    cJSON *j = cJSON_Parse(js);
    free(js);
    cJSON *pp = j ? cJSON_GetArrayItem(cJSON_GetObjectItem(j, "per_prompt"), 1) : NULL;
    T_CHECK(j && cJSON_GetArraySize(cJSON_GetObjectItem(j, "per_prompt")) == 2 &&
                cJSON_GetObjectItem(cJSON_GetObjectItem(j, "overall"), "embedding_distance/lexical") &&
                cJSON_IsNull(cJSON_GetObjectItem(pp, "distinct_3")) &&
                cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "overall"), "distinct_4")),
            "json (undefined distinct-n as null)");
    cJSON_Delete(j);
    diversity_report_free(&a);
    diversity_report_free(&b);
    /* any vector field: the last response of line 3 has no "style" */
    DiversityOptions o = {.n_sources = 1};
    curate_source_parse(&o.sources[0], "field:style", &err);
    T_CHECK(diversity_metrics(d, &o, &a, &err) == TA_EINPUT && strstr(err.msg, ":3: responses[2] has no field \"style\""),
            "field:style: %s", err.msg);
    dataset_free(d);
}

/* ---- bad input ------------------------------------------------------------------------- */
typedef struct {
    const char *name, *content, *cmd; /* cmd: deviation, pairs, divpo, diversity */
    const char *want1, *want2;        /* substrings of the message ("FILE" = the path) */
} BadCase;

static const BadCase BAD[] = {
    {"empty_file", "", "deviation", "no examples", NULL},
    {"blank_lines_only", "\n  \n\n", "pairs", "no examples", NULL},
    {"nan_embedding",
     "{\"prompt\": \"p\", \"responses\": [{\"text\": \"a\", \"embedding\": [1, 0]}]}\n"
     "{\"prompt\": \"p\", \"responses\": [{\"text\": \"a\", \"embedding\": [NaN, 0]}]}\n",
     "deviation", ":2:", "JSON"},
    {"infinite_embedding",
     "{\"prompt\": \"p\", \"responses\": [{\"text\": \"a\", \"embedding\": [1e999, 0]},"
     "{\"text\": \"b\", \"embedding\": [1, 0]}]}\n",
     "deviation", ":1:", "responses[0].embedding[0]\" must be a finite number"},
    {"lengths_differ",
     "{\"prompt\": \"p\", \"responses\": [{\"text\": \"a\", \"embedding\": [1, 0]},"
     "{\"text\": \"b\", \"embedding\": [1, 0]}]}\n"
     "{\"prompt\": \"q\", \"responses\": [{\"text\": \"a\", \"embedding\": [1, 0]},"
     "{\"text\": \"b\", \"embedding\": [1, 0, 3]}]}\n",
     "deviation", ":2:", "responses[1].embedding\" has 3 numbers, but the first one (line 1) has 2"},
    {"zero_vector",
     "{\"prompt\": \"p\", \"responses\": [{\"text\": \"a\", \"embedding\": [1, 0]},"
     "{\"text\": \"b\", \"embedding\": [0, 0]}]}\n",
     "deviation", ":1:", "responses[1].embedding\" is a zero vector"},
    {"missing_embedding",
     "{\"prompt\": \"p\", \"responses\": [{\"text\": \"a\", \"embedding\": [1, 0]}, {\"text\": \"b\"}]}\n",
     "deviation", ":1:", "responses[1] has no field \"embedding\""},
    {"embedding_not_array",
     "{\"prompt\": \"p\", \"responses\": [{\"text\": \"a\", \"embedding\": \"x\"}]}\n",
     "deviation", ":1:", "must be an array of numbers, found a string"},
    {"missing_score",
     "{\"prompt\": \"p\", \"responses\": [{\"text\": \"a\", \"score\": 1, \"embedding\": [1, 0]}]}\n"
     "{\"prompt\": \"p\", \"responses\": [{\"text\": \"a\", \"score\": 1, \"embedding\": [1, 0]},"
     "{\"text\": \"b\", \"embedding\": [0, 1]}]}\n",
     "pairs", ":2:", "responses[1] has no \"score\""},
    {"score_not_number",
     "{\"prompt\": \"p\", \"responses\": [{\"text\": \"a\", \"score\": \"5\"}]}\n", "pairs", ":1:",
     "responses[0].score\" must be a number, found a string"},
    {"empty_responses", "{\"prompt\": \"p\", \"responses\": []}\n", "deviation", ":1:",
     "\"responses\" is empty"},
    {"missing_prompt", "{\"responses\": [{\"text\": \"a\"}]}\n", "diversity", ":1:",
     "missing field \"prompt\""},
    {"bad_utf8", "{\"prompt\": \"p\xff\", \"responses\": [{\"text\": \"a\"}]}\n", "diversity",
     ":1:", "not valid UTF-8"},
    {"not_object", "[1, 2]\n", "deviation", ":1:", "expected a JSON object"},
    {"no_pairs_at_all",
     "{\"prompt\": \"p\", \"responses\": [{\"text\": \"a\", \"score\": 1, \"embedding\": [1, 0]}]}\n"
     "{\"prompt\": \"q\", \"responses\": [{\"text\": \"a\", \"score\": 2, \"embedding\": [1, 0]},"
     "{\"text\": \"b\", \"score\": 2, \"embedding\": [0, 1]}]}\n",
     "pairs", "no pairs: 1 prompt with a single response, 1 without", NULL},
    {"divpo_no_pairs",
     "{\"prompt\": \"q\", \"responses\": [{\"text\": \"a\", \"score\": 2, \"embedding\": [1, 0]},"
     "{\"text\": \"b\", \"score\": 2, \"embedding\": [0, 1]}]}\n",
     "divpo", "no pairs", "1 pairs dropped for equal scores"},
};
enum { NBAD = sizeof BAD / sizeof BAD[0] };
static int g_bad;

static void test_bad(void) {
    const BadCase *c = &BAD[g_bad];
    char in[2200], out[2200];
    write_file(in, sizeof in, "bad.jsonl", c->content);
    snprintf(out, sizeof out, "%s/bad.out.jsonl", g_dir);
    remove(out);
    TaError err = {0};
    int rc;
    if (!strcmp(c->cmd, "deviation")) {
        CurateDeviationOptions o = {.in = in, .out = out};
        rc = curate_deviation_run(&o, NULL, &err);
    } else if (!strcmp(c->cmd, "pairs")) {
        CuratePairsOptions o;
        curate_pairs_defaults(&o);
        o.in = in, o.out = out;
        rc = curate_pairs_run(&o, NULL, &err);
    } else if (!strcmp(c->cmd, "divpo")) {
        CurateDivpoOptions o;
        curate_divpo_defaults(&o);
        o.in = in, o.out = out;
        rc = curate_divpo_run(&o, NULL, &err);
    } else {
        Dataset *d = NULL;
        DiversityReport r;
        rc = dataset_load(&d, in, DS_MULTI, NULL, NULL, &err);
        if (rc == TA_OK) {
            rc = diversity_metrics(d, NULL, &r, &err);
            if (rc == TA_OK) diversity_report_free(&r);
        }
        dataset_free(d);
    }
    T_CHECK(rc == TA_EINPUT, "rc %d (%s)", rc, err.msg);
    T_CHECK(strstr(err.msg, in), "message does not name the file: %s", err.msg);
    T_CHECK(strstr(err.msg, c->want1), "message lacks \"%s\": %s", c->want1, err.msg);
    T_CHECK(!c->want2 || strstr(err.msg, c->want2), "message lacks \"%s\": %s", c->want2, err.msg);
    T_CHECK(!strchr(err.msg, '\n'), "multi-line message");
    FILE *f = fopen(out, "rb");
    if (f) fclose(f);
    T_CHECK(!f, "an output file was written");
}

static void test_single_response_counts(void) {
    char in[2200], out[2200];
    write_file(in, sizeof in, "singles.jsonl",
               "{\"prompt\": \"a\", \"responses\": [{\"text\": \"x\", \"score\": 1, \"embedding\": [1, 0]}]}\n"
               "{\"prompt\": \"b\", \"responses\": [{\"text\": \"x\", \"score\": 1, \"embedding\": [1, 0]},"
               "{\"text\": \"y\", \"score\": 9, \"embedding\": [0, 1]}]}\n"
               "{\"prompt\": \"c\", \"responses\": [{\"text\": \"z\", \"embedding\": [1, 1]}]}\n");
    snprintf(out, sizeof out, "%s/singles.out.jsonl", g_dir);
    TaError err = {0};
    CuratePairsOptions o;
    curate_pairs_defaults(&o);
    o.in = in, o.out = out;
    CuratePairsStats st;
    /* a single response without a score is fine: it is never paired */
    T_CHECK(curate_pairs_run(&o, &st, &err) == TA_OK, "%s", err.msg);
    T_CHECK(st.skipped_single == 2 && st.pairs == 1 && st.fallback_prompts == 0, "pairs stats");
    CurateDivpoOptions dv;
    curate_divpo_defaults(&dv);
    dv.in = in, dv.out = out;
    CurateDivpoStats ds;
    T_CHECK(curate_divpo_run(&dv, &ds, &err) == TA_OK && ds.skipped_single == 2 && ds.pairs == 1,
            "divpo stats: %s", err.msg);
    CurateDeviationOptions d = {.in = in, .out = out};
    CurateDeviationStats dst;
    T_CHECK(curate_deviation_run(&d, &dst, &err) == TA_OK && dst.skipped_single == 2, "deviation");
}

int main(void) {
    snprintf(g_root, sizeof g_root, "%s", env_or("TA_ROOT", "."));
    snprintf(g_dir, sizeof g_dir, "%s/curate", env_or("TA_REF", "build/ref"));
    g_py = env_or("PYTHON", "/usr/bin/python3");
    TaError err = {0};
    if (ta_mkdirs(g_dir, &err) != TA_OK) {
        printf("FAIL setup: %s\n", err.msg);
        return 1;
    }
    t_run("source_parse", test_source_parse);
    t_run("deviation_hand_three_vectors", test_deviation_hand);
    t_run("weights_single_source_hand", test_weights_single_source);
    t_run("weights_ties_give_one", test_weights_ties);
    t_run("weights_two_sources_geometric_mean", test_weights_two_sources);
    t_run("weights_degenerate_all_zero", test_weights_degenerate);
    t_run("weights_mean_one_min_zero_random", test_weights_random_invariants);
    t_run("duplicate_responses_tie_bitwise", test_duplicates_tie);
    t_run("lexical_embedding_vs_python", test_lexical);
    t_run("pairs_hand_gap_fallback_identical", test_pairs_hand);
    t_run("pairs_invariants_and_seeds", test_pairs_invariants);
    t_run("pairs_all_pairs_mode", test_pairs_all_pairs);
    t_run("divpo_hand_pool_and_k_m", test_divpo_hand);
    t_run("divpo_deviation_inside_pools", test_divpo_in_pool);
    t_run("ngram_metrics_exact", test_ngram_metrics);
    t_run("gzip_byte_identical_to_python", test_gzip_matches_python);
    t_run("deviation_run_fields", test_deviation_run);
    t_run("pairs_run_weights_over_paired_multiset", test_pairs_run);
    t_run("diversity_metrics_dataset_equals_file", test_metrics_dataset);
    t_run("single_response_prompts_skipped_counted", test_single_response_counts);
    for (g_bad = 0; g_bad < NBAD; g_bad++) {
        char name[128];
        snprintf(name, sizeof name, "bad_input_%s", BAD[g_bad].name);
        t_run(name, test_bad);
    }
    return t_done();
}
