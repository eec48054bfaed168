/* test_iwsi.c — the self-improvement filters (include/tinyalign/curate.h: curate vote,
 * curate dsweight) on hand-computed cases:
 *   - answer extraction: the default regex on "The answer is N." with several matches (the
 *     last wins), none, negative numbers, thousands commas, decimals, "$", text around in
 *     UTF-8, a UTF-8 regex; canonical forms; a regex that does not compile or has no group;
 *   - the vote: majority, the tie rule (earliest first occurrence), entropy, no answers;
 *   - w and DS: l = 0, L_v = 0, both clip bounds of w (0 and 2), the DS cap at 5 and the
 *     w = 1 / w = 0.2 / w = 2 edges, exactly as written in the header;
 *   - the keep threshold: floor(n k) with Python's int() rounding (0.29 * 100 = 28.99..),
 *     ties at the threshold dropped, k = 1 keeps all, a threshold at the minimum keeps none;
 *   - the random control: exactly floor(n k) kept, the same mask for the same seed, another
 *     for another seed, k = 1 all.
 * tests/cli/iwsi.sh runs the commands end to end against tools/ref_iwsi.py. */
#include <stdint.h>

#include "testhelp.h"
#include "tinyalign/common.h"
#include "tinyalign/curate.h"

static CurateAnswerRe g_re;

/* extract(text) equals want (NULL = no answer) */
static int ex_is(const char *text, const char *want) {
    char *a = curate_answer_extract(&g_re, text);
    int ok = want ? (a && !strcmp(a, want)) : a == NULL;
    if (!ok) fprintf(stderr, "extract(\"%s\") = %s, want %s\n", text, a ? a : "NULL", want ? want : "NULL");
    free(a);
    return ok;
}

static void test_extract_default(void) {
    T_CHECK(ex_is(" 3*4 = 12. 5+12 = 17. The answer is 17.", "17"), "simple");
    T_CHECK(ex_is("The answer is 3. No wait, the answer is 5.", "5"), "several matches: the last");
    T_CHECK(ex_is("no answer here, 42", NULL), "none");
    T_CHECK(ex_is("The answer is -7.", "-7"), "negative");
    T_CHECK(ex_is("The answer is 1,234.", "1234"), "thousands comma");
    T_CHECK(ex_is("The answer is 2.50 dollars", "2.5"), "decimal in shortest form");
    T_CHECK(ex_is("The answer is $12.", "12"), "dollar");
    T_CHECK(ex_is("the answer is 054", "54"), "lower case, leading zero");
    T_CHECK(ex_is("The answer is -0.", "0"), "-0 is 0");
    T_CHECK(ex_is("Réponse ☃ — The answer is 9 ✓", "9"), "UTF-8 around");
    T_CHECK(ex_is("The answer is −5.", NULL), "a unicode minus is not a number");
    T_CHECK(ex_is("The answer is x", NULL), "not a number");
    T_CHECK(ex_is("", NULL), "empty");
}

static void test_extract_custom(void) {
    CurateAnswerRe re;
    TaError err = {0};
    T_CHECK(curate_answer_compile(&re, "答案是(-?[0-9]+)", &err) == TA_OK, "%s", err.msg);
    char *a = curate_answer_extract(&re, "计算: 答案是12, 不, 答案是-3。");
    int ok = a && !strcmp(a, "-3");
    free(a);
    curate_answer_free(&re);
    T_CHECK(ok, "UTF-8 regex, last match");
    T_CHECK(curate_answer_compile(&re, "#### ([a-z]+)", &err) == TA_OK, "%s", err.msg);
    a = curate_answer_extract(&re, "#### yes");
    ok = a && !strcmp(a, "yes");
    free(a);
    curate_answer_free(&re);
    T_CHECK(ok, "text answers");
    T_CHECK(curate_answer_compile(&re, "The answer is ([0-9]+", &err) == TA_EINPUT &&
                strstr(err.msg, "--answer-regex") && strstr(err.msg, "does not compile"),
            "bad regex: %s", err.msg);
    T_CHECK(curate_answer_compile(&re, "The answer is [0-9]+", &err) == TA_EINPUT &&
                strstr(err.msg, "no capture group"),
            "no group: %s", err.msg);
    curate_answer_free(&re); /* safe on the zeroed struct a failure leaves */
    char *c = curate_answer_canonical("  1e3 ", 6);
    ok = c && !strcmp(c, "1000");
    free(c);
    T_CHECK(ok, "canonical 1e3");
    T_CHECK(curate_answer_canonical(" ,, ", 4) == NULL, "blank -> no answer");
}

static void test_vote(void) {
    int count, parsed;
    double h;
    const char *a1[] = {"7", "5", "5", "7", NULL};
    T_CHECK(curate_vote_majority(a1, 5, &count, &h, &parsed) == 0 && count == 2 && parsed == 4,
            "tie 2-2: the answer seen first (7, index 0)");
    T_CHECK(fabs(h - log(2.0)) < 1e-15, "entropy ln 2, got %.17g", h);
    const char *a2[] = {NULL, "5", "7", "7", "5"};
    T_CHECK(curate_vote_majority(a2, 5, &count, NULL, NULL) == 1 && count == 2, "tie: 5 first");
    const char *a3[] = {"1", "2", "2", "3", "2"};
    T_CHECK(curate_vote_majority(a3, 5, &count, &h, &parsed) == 1 && count == 3 && parsed == 5,
            "majority");
    double want = -(0.6 * log(0.6) + 2 * 0.2 * log(0.2));
    T_CHECK(fabs(h - want) < 1e-15, "entropy %.17g vs %.17g", h, want);
    const char *a4[] = {NULL, NULL};
    T_CHECK(curate_vote_majority(a4, 2, &count, &h, &parsed) == -1 && parsed == 0 && count == 0 &&
                h == 0,
            "no answers");
    const char *a5[] = {"4"};
    T_CHECK(curate_vote_majority(a5, 1, &count, &h, &parsed) == 0 && h == 0, "one answer");
}

static void test_w_ds(void) {
    /* L_v = 1: w = 1 / l clipped to [0, 2] */
    static const struct {
        double lv, l, w, ds;
    } c[] = {
        {1, 0, 0, 5},          /* l = 0: w = 0, DS = the cap */
        {0, 1, 0, 5},          /* L_v = 0 */
        {1, -1, 0, 5},         /* a negative loss cannot happen; treated as l = 0 */
        {1, 0.25, 2, 2},       /* w = 4 clipped at 2 */
        {1, 0.5, 2, 2},        /* w = 2 exactly */
        {1, 0.8, 1.25, 1.25},  /* w > 1: DS = w */
        {1, 1, 1, 1},          /* w = 1: not > 1, DS = 1 / w = 1 */
        {1, 2, 0.5, 2},        /* DS = 1 / w */
        {1, 4, 0.25, 4},
        {1, 5, 0.2, 5},        /* 1 / w = 5: the cap */
        {1, 10, 0.1, 5},       /* 1 / w = 10 capped */
        {3, 2, 1.5, 1.5},
        {0.6, 1.2, 0.5, 2},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        double w = curate_ds_iw(c[i].lv, c[i].l), ds = curate_ds_extent(w);
        T_CHECK(w == c[i].w && ds == c[i].ds, "case %zu: L_v %g l %g -> w %.17g DS %.17g, want %g %g",
                i, c[i].lv, c[i].l, w, ds, c[i].w, c[i].ds);
    }
    T_CHECK(curate_ds_extent(0.3) == 1 / 0.3, "DS(0.3) = 1/0.3 exactly");
}

static void test_threshold(void) {
    const double ds[] = {1.5, 1.1, 3, 2, 2, 5, 1.2, 1.3, 4, 2.5};
    /* sorted: 1.1 1.2 1.3 1.5 2 2 2.5 3 4 5 */
    T_CHECK(curate_ds_threshold(ds, 10, 0.79) == 3, "k 0.79: index floor(7.9) = 7 -> 3");
    T_CHECK(curate_ds_threshold(ds, 10, 0.5) == 2, "k 0.5: index 5 -> 2 (both 2s then dropped)");
    int kept = 0;
    for (int i = 0; i < 10; i++) kept += ds[i] < curate_ds_threshold(ds, 10, 0.5);
    T_CHECK(kept == 4, "ties at the threshold dropped: kept %d", kept);
    T_CHECK(isinf(curate_ds_threshold(ds, 10, 1)), "k 1 keeps all");
    T_CHECK(curate_ds_threshold(ds, 10, 0.05) == 1.1, "index 0: the minimum, nothing kept");
    T_CHECK(isinf(curate_ds_threshold(ds, 0, 0.5)), "empty");
    double v[100];
    for (int i = 0; i < 100; i++) v[i] = 1 + i; /* sorted already: v[j] = j + 1 */
    /* 0.29 * 100 = 28.999999999999996 in double: Python's int() gives 28 */
    T_CHECK(curate_ds_threshold(v, 100, 0.29) == 29, "floor(0.29 * 100) = 28 -> value 29");
    T_CHECK(curate_ds_threshold(v, 100, 0.79) == 80, "floor(79.0) = 79 -> value 80");
}

static void test_random_keep(void) {
    uint8_t a[101], b[101], c[101];
    size_t m = curate_random_keep(a, 101, 0.79, 7);
    size_t ones = 0;
    for (int i = 0; i < 101; i++) ones += a[i];
    T_CHECK(m == 79 && ones == 79, "floor(101 * 0.79) = 79 kept, got %zu / %zu", m, ones);
    curate_random_keep(b, 101, 0.79, 7);
    T_CHECK(!memcmp(a, b, sizeof a), "same seed, same mask");
    curate_random_keep(c, 101, 0.79, 8);
    T_CHECK(memcmp(a, c, sizeof a), "another seed, another mask");
    T_CHECK(curate_random_keep(c, 101, 1, 8) == 101, "k 1 keeps all");
    for (int i = 0; i < 101; i++) T_CHECK(c[i] == 1, "k 1: item %d dropped", i);
    T_CHECK(curate_random_keep(c, 0, 0.5, 1) == 0, "empty");
}

int main(void) {
    TaError err = {0};
    if (curate_answer_compile(&g_re, NULL, &err) != TA_OK) {
        printf("FAIL default_regex: %s\n", err.msg);
        return 1;
    }
    t_run("iwsi_extract_default_regex", test_extract_default);
    t_run("iwsi_extract_custom_regex_and_errors", test_extract_custom);
    t_run("iwsi_vote_majority_ties_entropy", test_vote);
    t_run("iwsi_w_and_ds_hand_cases", test_w_ds);
    t_run("iwsi_keep_threshold", test_threshold);
    t_run("iwsi_random_control_deterministic", test_random_keep);
    curate_answer_free(&g_re);
    return t_done();
}
