/* test_prs.c — PRS's bookkeeping (prs.h): the budget split over layers (exactly N, N0 in
 * layer 0, the rest spread evenly with the remainder to the earlier layers, the baselines'
 * single layer) against a brute-force count, every bad (N, N0, depth) refused with the
 * flag named; the best index (first on ties, NaN never); each template role's required
 * placeholders; the default templates pass their own checks and fill as expected.
 */
#include <math.h>
#include <string.h>

#include "testhelp.h"
#include "tinyalign/prs.h"

static void test_layer_sizes(void) {
    TaError err = {0};
    int sizes[PRS_MAX_DEPTH], layers;
    for (int n = 2; n <= 40; n++)
        for (int n0 = 1; n0 < n; n0++)
            for (int depth = 2; depth <= 6 && depth - 1 <= n - n0; depth++) {
                T_CHECK(prs_layer_sizes(PRS_MODE_TREE, n, n0, depth, sizes, &layers, &err) == TA_OK,
                        "n %d n0 %d depth %d: %s", n, n0, depth, err.msg);
                T_CHECK(layers == depth, "layers %d", layers);
                int sum = 0, mn = 1 << 30, mx = 0;
                for (int l = 0; l < layers; l++) sum += sizes[l];
                for (int l = 1; l < layers; l++) {
                    mn = sizes[l] < mn ? sizes[l] : mn;
                    mx = sizes[l] > mx ? sizes[l] : mx;
                    if (l > 1) T_CHECK(sizes[l] <= sizes[l - 1], "earlier layers get the remainder");
                }
                T_CHECK(sum == n && sizes[0] == n0, "n %d n0 %d depth %d: sum %d", n, n0, depth, sum);
                T_CHECK(mn >= 1 && mx - mn <= 1, "uneven split %d..%d", mn, mx);
            }
    T_CHECK(prs_layer_sizes(PRS_MODE_TREE, 16, 8, 2, sizes, &layers, &err) == TA_OK &&
            sizes[0] == 8 && sizes[1] == 8, "16 = 8 + 8");
    T_CHECK(prs_layer_sizes(PRS_MODE_TREE, 10, 3, 3, sizes, &layers, &err) == TA_OK &&
            sizes[0] == 3 && sizes[1] == 4 && sizes[2] == 3, "10 = 3 + 4 + 3");
    T_CHECK(prs_layer_sizes(PRS_MODE_RAND, 7, 3, 3, sizes, &layers, &err) == TA_OK && layers == 1 &&
            sizes[0] == 7, "rand: one layer of n");
    T_CHECK(prs_layer_sizes(PRS_MODE_RAND_NO_PREF, 2, 0, 0, sizes, &layers, &err) == TA_OK &&
            layers == 1 && sizes[0] == 2, "rand-no-pref: one layer");
}

static void test_layer_sizes_errors(void) {
    int sizes[PRS_MAX_DEPTH], layers;
    struct { PrsMode m; int n, n0, depth; const char *want; } cases[] = {
        {PRS_MODE_TREE, 1, 1, 2, "--n must be >= 2"},
        {PRS_MODE_RAND, 1, 0, 2, "--n must be >= 2"},
        {PRS_MODE_TREE, 8, 0, 2, "--n0 must be in [1, N-1] = [1, 7]"},
        {PRS_MODE_TREE, 8, 8, 2, "--n0 must be in [1, N-1]"},
        {PRS_MODE_TREE, 8, 4, 1, "--depth must be in [2, 64]"},
        {PRS_MODE_TREE, 8, 4, 65, "--depth must be in [2, 64]"},
        {PRS_MODE_TREE, 8, 6, 4, "--depth 4 needs at least one refinement per layer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TaError err = {0};
        int rc = prs_layer_sizes(cases[i].m, cases[i].n, cases[i].n0, cases[i].depth, sizes, &layers, &err);
        T_CHECK(rc == TA_EINPUT && strstr(err.msg, cases[i].want), "case %zu: rc %d, \"%s\"", i, rc, err.msg);
    }
}

static void test_best(void) {
    const double a[] = {0.5, 2, -1, 2, 1.5};
    T_CHECK(prs_best(a, 5) == 1, "first of the tied maxima");
    const double b[] = {NAN, -3, NAN, -2};
    T_CHECK(prs_best(b, 4) == 3, "NaN never chosen");
    const double c[] = {NAN};
    T_CHECK(prs_best(c, 1) == -1 && prs_best(a, 0) == -1, "nothing to choose");
}

static int check(const char *text, const char *role, int with_fb, char *msg) {
    SampleTemplate t = {0};
    TaError err = {0};
    int rc = sample_template_parse(&t, text, &err);
    if (rc == TA_OK) rc = prs_template_check(&t, "--x-template", role, with_fb, &err);
    strcpy(msg, err.msg);
    sample_template_free(&t);
    return rc;
}

static void test_templates(void) {
    char m[1024];
    T_CHECK(check(PRS_QUERY_TEMPLATE, "query", 1, m) == TA_OK, "%s", m);
    T_CHECK(check(PRS_FEEDBACK_TEMPLATE, "feedback", 1, m) == TA_OK, "%s", m);
    T_CHECK(check(PRS_REVISE_TEMPLATE, "revise", 1, m) == TA_OK, "%s", m);
    T_CHECK(check(PRS_REVISE_NOFB_TEMPLATE, "revise", 0, m) == TA_OK, "%s", m);
    T_CHECK(check("{preference} only", "query", 1, m) == TA_EINPUT &&
            strstr(m, "--x-template: the query template has no {prompt}"), "%s", m);
    T_CHECK(check("{question}", "feedback", 1, m) == TA_EINPUT &&
            strstr(m, "no {answer} placeholder (it needs {question} and {answer})"), "%s", m);
    T_CHECK(check("{question} {answer}", "revise", 1, m) == TA_EINPUT &&
            strstr(m, "no {feedback} placeholder (it needs {question}, {answer} and {feedback})"), "%s", m);
    T_CHECK(check("{question} {answer} {feedback}", "revise", 0, m) == TA_EINPUT &&
            strstr(m, "--feedback none"), "%s", m);
    T_CHECK(check("{question} {answer}", "revise", 0, m) == TA_OK, "%s", m);
    /* the default revise template fills every part in order */
    SampleTemplate t = {0};
    TaError err = {0};
    const DataField f[] = {{"question", "", "\"Q?\""}, {"answer", "", "\"A.\""},
                           {"preference", "", "\"short\""}, {"feedback", "", "\"- shorter\""}};
    const DataFields fs = {f, 4};
    char *out = NULL;
    T_CHECK(sample_template_parse(&t, PRS_REVISE_TEMPLATE, &err) == TA_OK, "%s", err.msg);
    int rc = sample_template_fill(&t, "x", &fs, &out, &err);
    sample_template_free(&t);
    T_CHECK(rc == TA_OK, "%s", err.msg);
    const char *want = "[Question]\nQ?\n\n[Reference answer]\nA.\n\n[User preference]\nshort\n\n"
                       "[Feedback]\n- shorter\n\n";
    int ok = !strncmp(out, want, strlen(want)) && strstr(out, "[Improved answer]\n");
    free(out);
    T_CHECK(ok, "revise fill");
}

int main(void) {
    t_run("prs_layer_sizes", test_layer_sizes);
    t_run("prs_layer_sizes_errors", test_layer_sizes_errors);
    t_run("prs_best", test_best);
    t_run("prs_templates", test_templates);
    return t_done();
}
