/* anchors.c — `curate anchors` (include/tinyalign/curate.h): anchored preference pairs for
 * self-explanations (AnchorAlign, Villa-Arenas et al. 2024, arXiv 2410.13216). Each prompt's
 * K scored samples are sorted into consistently correct (CC), variable (V) or consistently
 * incorrect (CI) by their `correct` flags, and one DPO pair is built per prompt by the
 * category's rule; CI prompts take their chosen response from a second file of "anchors"
 * (outputs generated with the gold label in the prompt, `sample --template`), kept only when
 * the judge scored them high enough. The two baselines of the paper (judge-only,
 * correctness-only) run on the same input. The rules, with every tie broken the same way:
 *
 *   highest(S) = the element of S with the largest score, the earliest in the file on ties;
 *   lowest(S)  = the smallest score, the earliest on ties; random(S) = S[below(|S|)] with S
 *   in file order and the prompt's own TaRng (curate_prompt_seed(seed, row index)).
 *   C = the correct responses, I = the incorrect ones, A = the prompt's kept anchors.
 *   rules anchor (default):
 *     CC (I empty):   chosen = highest(all), rejected = lowest(all); no pair when every score
 *                     is equal (nothing to learn about the explanation: counted as a tie);
 *     V:              chosen = highest(C), rejected = pick_v(I) (--v-rejected, default
 *                     highest: the incorrect output a judge alone would prefer);
 *     CI (C empty):   chosen = highest(A), rejected = pick_ci(I) (--ci-rejected, default
 *                     highest); no pair when A is empty (counted) or with --ci skip.
 *   rules judge-only:       chosen = highest(all), rejected = lowest(all) for every prompt,
 *                           correctness ignored (no pair when all scores are equal);
 *   rules correctness-only: V prompts only: chosen = random(C), rejected = random(I) (the
 *                           C draw first); CC and CI prompts give no pair.
 * A pair whose chosen and rejected texts are byte-identical is dropped (counted): the
 * preference loader rejects it and it carries no signal.
 * Not here: sampling the anchors (`sample --template`), judging (`score`), DPO (`train`).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "curate_impl.h"

static const char *const CATEGORY_NAMES[CURATE_N_CATEGORIES] = {"CC", "V", "CI"};
static const char *const RULES_NAMES[] = {"anchor", "judge-only", "correctness-only"};
static const char *const PICK_NAMES[] = {"highest", "lowest", "random"};

const char *curate_category_name(CurateCategory c) { return CATEGORY_NAMES[c]; }

void curate_anchors_defaults(CurateAnchorsOptions *o) {
    memset(o, 0, sizeof *o);
    o->rules = CURATE_RULES_ANCHOR;
    o->v_rejected = CURATE_PICK_HIGHEST;
    o->ci_rejected = CURATE_PICK_HIGHEST;
    o->score_field = "score";
    o->correct_field = "correct";
    o->seed = 42;
    o->anchor_min_score = NAN;
}

/* ---- the per-prompt rules (pure) --------------------------------------------------------- */
/* The index (into idx[0..n)) of the element picked from the scores of idx, or -1 when n == 0.
 * Strict comparisons keep the earliest on ties. */
static int pick(const double *score, const int *idx, int n, CuratePick how, TaRng *rng) {
    if (n == 0) return -1;
    if (how == CURATE_PICK_RANDOM) return idx[ta_rng_below(rng, (uint64_t)n)];
    int best = idx[0];
    for (int a = 1; a < n; a++) {
        double s = score[idx[a]];
        if (how == CURATE_PICK_HIGHEST ? s > score[best] : s < score[best]) best = idx[a];
    }
    return best;
}

CurateCategory curate_anchor_category(const int *correct, int n) {
    int c = 0;
    for (int a = 0; a < n; a++) c += correct[a] != 0;
    return c == n ? CURATE_CC : c == 0 ? CURATE_CI : CURATE_V;
}

int curate_anchor_rule(const double *score, const int *correct, int n, const double *anchor_score,
                       int n_anchors, const CurateAnchorsOptions *o, TaRng *rng,
                       CuratePair *out) {
    enum { SMALL = 64 };
    int small[2 * SMALL];
    int *buf = n <= SMALL ? small : ta_malloc(sizeof(int) * 2 * (size_t)n, "anchors");
    int *all = buf, *cor = buf + n, *inc = NULL;
    int nc = 0, ni = 0;
    for (int a = 0; a < n; a++) all[a] = a;
    /* correct ones first in cor[0..nc), the incorrect ones after them in file order */
    for (int a = 0; a < n; a++)
        if (correct[a]) cor[nc++] = a;
    inc = cor + nc;
    for (int a = 0; a < n; a++)
        if (!correct[a]) inc[ni++] = a;
    CurateCategory cat = nc == n ? CURATE_CC : nc == 0 ? CURATE_CI : CURATE_V;
    int rc = CURATE_RULE_PAIR;
    out->chosen = out->rejected = -1;
    if (o->rules == CURATE_RULES_JUDGE_ONLY || (o->rules == CURATE_RULES_ANCHOR && cat == CURATE_CC)) {
        out->chosen = pick(score, all, n, CURATE_PICK_HIGHEST, rng);
        out->rejected = pick(score, all, n, CURATE_PICK_LOWEST, rng);
        if (score[out->chosen] == score[out->rejected]) rc = CURATE_RULE_TIE;
    } else if (o->rules == CURATE_RULES_CORRECTNESS_ONLY) {
        if (cat != CURATE_V) {
            rc = CURATE_RULE_ONE_SIDED;
        } else {
            out->chosen = pick(score, cor, nc, CURATE_PICK_RANDOM, rng);
            out->rejected = pick(score, inc, ni, CURATE_PICK_RANDOM, rng);
        }
    } else if (cat == CURATE_V) {
        out->chosen = pick(score, cor, nc, CURATE_PICK_HIGHEST, rng);
        out->rejected = pick(score, inc, ni, o->v_rejected, rng);
    } else { /* CI */
        if (o->ci_skip) {
            rc = CURATE_RULE_CI_SKIPPED;
        } else if (n_anchors == 0) {
            rc = CURATE_RULE_NO_ANCHOR;
        } else {
            int *aidx = ta_malloc(sizeof(int) * (size_t)n_anchors, "anchors");
            for (int a = 0; a < n_anchors; a++) aidx[a] = a;
            out->chosen = CURATE_ANCHOR_BASE + pick(anchor_score, aidx, n_anchors,
                                                    CURATE_PICK_HIGHEST, rng);
            free(aidx);
            out->rejected = pick(score, inc, ni, o->ci_rejected, rng);
        }
    }
    if (buf != small) free(buf);
    return rc;
}

/* ---- reading the fields ------------------------------------------------------------------- */
/* score and correct of response j of row (FILE:LINE responses[j] in every message). */
static int read_judged(const Dataset *d, const DataRow *row, int j, const CurateAnchorsOptions *o,
                       double *score, int *correct, TaError *err) {
    DataResponse x;
    dataset_response(d, row->first + (size_t)j, &x);
    const char *fields[2] = {o->score_field, o->correct_field};
    for (int k = 0; k < 2; k++) {
        const DataField *f = data_fields_find(&x.extra, fields[k]);
        if (!f)
            return ta_err(err, TA_EINPUT,
                          "%s:%ld: responses[%d] has no \"%s\"; curate anchors needs a judge "
                          "score and a correct flag on every response (a cmd: scorer returning "
                          "{\"score\": ..., \"correct\": true|false})",
                          dataset_path(d), row->line, j, fields[k]);
        TaError e = {0};
        int rc = k == 0 ? data_field_number(f, score, &e) : data_field_bool(f, correct, &e);
        if (rc != TA_OK)
            return ta_err(err, TA_EINPUT, "%s:%ld: responses[%d]: %s", dataset_path(d), row->line,
                          j, e.msg);
    }
    return TA_OK;
}

/* ---- anchors: the kept ones, grouped by prompt -------------------------------------------- */
typedef struct {
    const char *prompt, *text;
    double score;
    int correct;
    size_t pos; /* in the anchor file: ties keep file order */
} Anchor;

typedef struct {
    Dataset *d;
    Anchor *a;     /* (n) kept anchors sorted by (prompt, pos) */
    size_t n;
    uint8_t *used; /* (n) matched by a prompt of --in */
} Anchors;

static int cmp_anchor(const void *x, const void *y) {
    const Anchor *a = x, *b = y;
    int c = strcmp(a->prompt, b->prompt);
    if (c) return c;
    return (a->pos > b->pos) - (a->pos < b->pos);
}

static void anchors_free(Anchors *A) {
    free(A->a);
    free(A->used);
    dataset_free(A->d);
    memset(A, 0, sizeof *A);
}

/* Loads the anchor file and keeps the responses with score >= the minimum and (unless
 * any_label) correct, counting the others in st. */
static int anchors_load(Anchors *A, const CurateAnchorsOptions *o, CurateAnchorsStats *st,
                        TaError *err) {
    memset(A, 0, sizeof *A);
    int rc = dataset_load(&A->d, o->anchors, DS_MULTI, NULL, NULL, err);
    if (rc) return rc;
    size_t nr = dataset_size(A->d);
    A->a = ta_malloc(sizeof(Anchor) * (nr ? nr : 1), "anchors");
    A->used = calloc(nr ? nr : 1, 1);
    TA_ASSERT(A->used != NULL);
    st->anchor_rows = dataset_num_rows(A->d);
    st->anchor_responses = nr;
    for (size_t i = 0; i < st->anchor_rows && rc == TA_OK; i++) {
        DataRow row;
        dataset_row(A->d, i, &row);
        for (int j = 0; j < row.n_responses && rc == TA_OK; j++) {
            double s;
            int c;
            if ((rc = read_judged(A->d, &row, j, o, &s, &c, err))) break;
            if (!(s >= o->anchor_min_score)) {
                st->anchors_below_min++;
            } else if (!c && !o->anchor_any_label) {
                st->anchors_wrong_label++;
            } else {
                DataResponse x;
                dataset_response(A->d, row.first + (size_t)j, &x);
                A->a[A->n] = (Anchor){row.prompt, x.text, s, c, A->n};
                A->n++;
            }
        }
    }
    st->anchors_kept = A->n;
    qsort(A->a, A->n, sizeof(Anchor), cmp_anchor);
    return rc;
}

/* The kept anchors of a prompt: *first and the count (0 when none). */
static size_t anchors_find(const Anchors *A, const char *prompt, size_t *first) {
    size_t lo = 0, hi = A->n; /* lower bound */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(A->a[mid].prompt, prompt) < 0) lo = mid + 1;
        else hi = mid;
    }
    size_t e = lo;
    while (e < A->n && !strcmp(A->a[e].prompt, prompt)) e++;
    *first = lo;
    return e - lo;
}

/* ---- output ------------------------------------------------------------------------------- */
static void put_bool(TaBuf *b, const char *key, int v) {
    ta_buf_printf(b, ",\"%s\":%s", key, v ? "true" : "false");
}

/* OUT.jsonl -> OUT.summary.json (else OUT + ".summary.json"), malloc'd. */
char *curate_anchors_summary_path(const char *out) {
    size_t n = strlen(out);
    int jl = n > 6 && !strcmp(out + n - 6, ".jsonl");
    size_t keep = jl ? n - 6 : n;
    char *p = ta_malloc(keep + sizeof ".summary.json", "anchors");
    memcpy(p, out, keep);
    memcpy(p + keep, ".summary.json", sizeof ".summary.json");
    return p;
}

static void put_counts(TaBuf *b, const char *key, const size_t *c, int with_total) {
    size_t t = 0;
    ta_buf_printf(b, ",\"%s\":{", key);
    for (int k = 0; k < CURATE_N_CATEGORIES; k++) {
        ta_buf_printf(b, "%s\"%s\":%zu", k ? "," : "", CATEGORY_NAMES[k], c[k]);
        t += c[k];
    }
    if (with_total) ta_buf_printf(b, ",\"total\":%zu", t);
    ta_buf_puts(b, "}");
}

static void summary_json(TaBuf *b, const CurateAnchorsOptions *o, const CurateAnchorsStats *st) {
    ta_buf_puts(b, "{\"command\":\"curate anchors\",\"in\":");
    jsonl_put_string(b, o->in);
    ta_buf_puts(b, ",\"out\":");
    jsonl_put_string(b, o->out);
    ta_buf_puts(b, ",\"anchors\":");
    if (o->anchors) jsonl_put_string(b, o->anchors);
    else ta_buf_puts(b, "null");
    ta_buf_printf(b, ",\"rules\":\"%s\",\"options\":{\"v_rejected\":\"%s\",\"ci\":\"%s\","
                     "\"ci_rejected\":\"%s\",\"anchor_min_score\":",
                  RULES_NAMES[o->rules], PICK_NAMES[o->v_rejected], o->ci_skip ? "skip" : "anchor",
                  PICK_NAMES[o->ci_rejected]);
    if (o->anchors) jsonl_put_number(b, o->anchor_min_score);
    else ta_buf_puts(b, "null");
    put_bool(b, "anchor_any_label", o->anchor_any_label);
    ta_buf_puts(b, ",\"score_field\":");
    jsonl_put_string(b, o->score_field);
    ta_buf_puts(b, ",\"correct_field\":");
    jsonl_put_string(b, o->correct_field);
    ta_buf_printf(b, ",\"seed\":%llu}", (unsigned long long)o->seed);
    ta_buf_printf(b, ",\"prompts\":%zu,\"responses\":%zu,\"k_min\":%d,\"k_max\":%d", st->prompts,
                  st->responses, st->k_min, st->k_max);
    put_counts(b, "categories", st->category, 0);
    ta_buf_puts(b, ",\"proportions\":{");
    for (int k = 0; k < CURATE_N_CATEGORIES; k++) {
        ta_buf_printf(b, "%s\"%s\":", k ? "," : "", CATEGORY_NAMES[k]);
        jsonl_put_number(b, st->prompts ? (double)st->category[k] / (double)st->prompts : 0);
    }
    ta_buf_puts(b, "}");
    put_counts(b, "pairs", st->pairs, 1);
    ta_buf_printf(b, ",\"skipped\":{\"tie\":%zu,\"identical\":%zu,\"ci_skip\":%zu,"
                     "\"ci_no_anchor\":%zu,\"one_sided\":%zu}",
                  st->skipped_tie, st->skipped_identical, st->ci_skipped, st->ci_no_anchor,
                  st->skipped_one_sided);
    ta_buf_printf(b, ",\"anchor_file\":{\"rows\":%zu,\"responses\":%zu,\"kept\":%zu,"
                     "\"below_min_score\":%zu,\"wrong_label\":%zu,\"kept_unmatched\":%zu}",
                  st->anchor_rows, st->anchor_responses, st->anchors_kept, st->anchors_below_min,
                  st->anchors_wrong_label, st->anchors_unmatched);
    size_t np = 0;
    for (int k = 0; k < CURATE_N_CATEGORIES; k++) np += st->pairs[k];
    ta_buf_puts(b, ",\"mean_chosen_score\":");
    jsonl_put_number(b, np ? st->chosen_score_sum / (double)np : 0);
    ta_buf_puts(b, ",\"mean_rejected_score\":");
    jsonl_put_number(b, np ? st->rejected_score_sum / (double)np : 0);
    ta_buf_puts(b, "}\n");
}

static void print_log(FILE *L, const CurateAnchorsOptions *o, const CurateAnchorsStats *st,
                      const char *summary) {
    size_t np = 0;
    for (int k = 0; k < CURATE_N_CATEGORIES; k++) np += st->pairs[k];
    char how[256];
    if (o->rules == CURATE_RULES_ANCHOR)
        snprintf(how, sizeof how, "CC best vs worst; V best correct vs %s incorrect; CI %s",
                 PICK_NAMES[o->v_rejected],
                 o->ci_skip ? "skipped" : o->anchors ? "anchor vs incorrect" : "no --anchors: skipped");
    else if (o->rules == CURATE_RULES_JUDGE_ONLY)
        snprintf(how, sizeof how, "best vs worst judge score, correctness ignored");
    else
        snprintf(how, sizeof how, "random correct vs random incorrect, seed %llu",
                 (unsigned long long)o->seed);
    fprintf(L, "curate anchors: %zu prompts (K %d", st->prompts, st->k_min);
    if (st->k_max != st->k_min) fprintf(L, "-%d", st->k_max);
    fprintf(L, "), %zu responses -> %zu pairs, rules %s (%s) -> %s\n", st->responses, np,
            RULES_NAMES[o->rules], how, o->out);
    fprintf(L, "  category  prompts   share  pairs\n");
    for (int k = 0; k < CURATE_N_CATEGORIES; k++) {
        fprintf(L, "  %-8s %8zu  %5.1f%% %6zu", CATEGORY_NAMES[k], st->category[k],
                st->prompts ? 100.0 * (double)st->category[k] / (double)st->prompts : 0.0,
                st->pairs[k]);
        if (k == CURATE_CI && st->ci_no_anchor)
            fprintf(L, "  (%zu without a kept anchor)", st->ci_no_anchor);
        if (k == CURATE_CI && st->ci_skipped) fprintf(L, "  (--ci skip)");
        fputc('\n', L);
    }
    if (st->skipped_tie || st->skipped_identical || st->skipped_one_sided)
        fprintf(L, "  no pair: %zu prompts with all scores equal, %zu with identical chosen and "
                   "rejected texts, %zu without both a correct and an incorrect response\n",
                st->skipped_tie, st->skipped_identical, st->skipped_one_sided);
    if (o->anchors && o->rules == CURATE_RULES_ANCHOR) {
        fprintf(L, "  anchors %s: %zu responses in %zu rows; kept %zu (score >= %g%s), %zu below "
                   "the score, %zu with a wrong label\n",
                o->anchors, st->anchor_responses, st->anchor_rows, st->anchors_kept,
                o->anchor_min_score, o->anchor_any_label ? "" : ", correct", st->anchors_below_min,
                st->anchors_wrong_label);
        if (st->anchors_unmatched)
            fprintf(L, "  note: %zu kept anchors belong to no prompt of %s (matched by the "
                       "\"prompt\" text)\n", st->anchors_unmatched, o->in);
    }
    if (np)
        fprintf(L, "  mean judge score: chosen %.4g, rejected %.4g\n",
                st->chosen_score_sum / (double)np, st->rejected_score_sum / (double)np);
    fprintf(L, "  summary -> %s\n", summary);
}

/* ---- the command ------------------------------------------------------------------------- */
int curate_anchors_run(const CurateAnchorsOptions *o, CurateAnchorsStats *st, TaError *err) {
    CurateAnchorsStats z;
    if (!st) st = &z;
    memset(st, 0, sizeof *st);
    if ((unsigned)o->rules > CURATE_RULES_CORRECTNESS_ONLY ||
        (unsigned)o->v_rejected > CURATE_PICK_RANDOM || (unsigned)o->ci_rejected > CURATE_PICK_RANDOM)
        return ta_err(err, TA_EINPUT, "curate anchors: unknown rules or pick option");
    const int use_anchors = o->rules == CURATE_RULES_ANCHOR && !o->ci_skip && o->anchors;
    if (use_anchors && !isfinite(o->anchor_min_score))
        return ta_err(err, TA_EINPUT, "--anchors needs --anchor-min-score S (a finite number on "
                      "the judge's scale: anchors scored below it are not used)");
    Dataset *d = NULL;
    Anchors A = {0};
    TaBuf out = {0}, sum = {0};
    double *score = NULL, *ascore = NULL;
    int *correct = NULL;
    char *summary = o->summary ? NULL : curate_anchors_summary_path(o->out);
    const char *summary_path = o->summary ? o->summary : summary;
    int rc = dataset_load(&d, o->in, DS_MULTI, NULL, NULL, err);
    if (rc) goto end;
    if (use_anchors && (rc = anchors_load(&A, o, st, err))) goto end;
    st->prompts = dataset_num_rows(d);
    st->responses = dataset_size(d);
    int maxn = 2;
    for (size_t i = 0; i < st->prompts; i++) {
        DataRow row;
        dataset_row(d, i, &row);
        if (row.n_responses < 2) {
            rc = ta_err(err, TA_EINPUT, "%s:%ld: %d response%s; curate anchors needs K >= 2 "
                        "sampled responses per prompt to sort it into CC / V / CI (sample --n K)",
                        o->in, row.line, row.n_responses, row.n_responses == 1 ? "" : "s");
            goto end;
        }
        if (row.n_responses > maxn) maxn = row.n_responses;
        if (i == 0 || row.n_responses < st->k_min) st->k_min = row.n_responses;
        if (row.n_responses > st->k_max) st->k_max = row.n_responses;
    }
    score = ta_malloc(sizeof(double) * (size_t)maxn, "anchors");
    correct = ta_malloc(sizeof(int) * (size_t)maxn, "anchors");
    ascore = ta_malloc(sizeof(double) * (A.n ? A.n : 1), "anchors");
    static const char *const MORE[] = {"category", "chosen_correct", "rejected_correct",
                                       "chosen_from", NULL};
    for (size_t i = 0; i < st->prompts; i++) {
        DataRow row;
        dataset_row(d, i, &row);
        const int n = row.n_responses;
        for (int j = 0; j < n; j++)
            if ((rc = read_judged(d, &row, j, o, &score[j], &correct[j], err))) goto end;
        CurateCategory cat = curate_anchor_category(correct, n);
        st->category[cat]++;
        size_t af = 0, na = use_anchors ? anchors_find(&A, row.prompt, &af) : 0;
        for (size_t a = 0; a < na; a++) {
            ascore[a] = A.a[af + a].score;
            A.used[af + a] = 1;
        }
        TaRng rng;
        ta_rng_seed(&rng, curate_prompt_seed(o->seed, i));
        CuratePair p;
        int r = curate_anchor_rule(score, correct, n, ascore, (int)na, o, &rng, &p);
        if (r == CURATE_RULE_TIE) st->skipped_tie++;
        else if (r == CURATE_RULE_ONE_SIDED) st->skipped_one_sided++;
        else if (r == CURATE_RULE_CI_SKIPPED) st->ci_skipped++;
        else if (r == CURATE_RULE_NO_ANCHOR) st->ci_no_anchor++;
        if (r != CURATE_RULE_PAIR) continue;
        const Anchor *an = p.chosen >= CURATE_ANCHOR_BASE ? &A.a[af + (p.chosen - CURATE_ANCHOR_BASE)]
                                                          : NULL;
        DataResponse xc, xr;
        dataset_response(d, row.first + (size_t)p.rejected, &xr);
        if (!an) dataset_response(d, row.first + (size_t)p.chosen, &xc);
        const char *ct = an ? an->text : xc.text;
        double cs = an ? an->score : score[p.chosen];
        int cc = an ? an->correct : correct[p.chosen];
        if (!strcmp(ct, xr.text)) {
            st->skipped_identical++;
            continue;
        }
        curate_pair_begin(&out, &row, ct, xr.text, 0, 1.0, cs, score[p.rejected]);
        ta_buf_printf(&out, ",\"category\":\"%s\"", CATEGORY_NAMES[cat]);
        put_bool(&out, "chosen_correct", cc);
        put_bool(&out, "rejected_correct", correct[p.rejected]);
        ta_buf_printf(&out, ",\"chosen_from\":\"%s\"", an ? "anchor" : "sample");
        curate_pair_end(&out, &row, MORE);
        st->pairs[cat]++;
        st->chosen_score_sum += cs;
        st->rejected_score_sum += score[p.rejected];
    }
    for (size_t a = 0; a < A.n; a++) st->anchors_unmatched += !A.used[a];
    size_t np = st->pairs[0] + st->pairs[1] + st->pairs[2];
    if (np == 0) {
        rc = ta_err(err, TA_EINPUT,
                    "%s: no pairs (%zu prompts: CC %zu, V %zu, CI %zu; %zu with all scores "
                    "equal, %zu CI without an anchor, %zu without both a correct and an "
                    "incorrect response); nothing written to %s",
                    o->in, st->prompts, st->category[0], st->category[1], st->category[2],
                    st->skipped_tie, st->ci_no_anchor + st->ci_skipped, st->skipped_one_sided,
                    o->out);
        goto end;
    }
    summary_json(&sum, o, st);
    if ((rc = ta_write_file_atomic(o->out, out.p, out.n, err))) goto end;
    if ((rc = ta_write_file_atomic(summary_path, sum.p, sum.n, err))) goto end;
    if (o->log) print_log(o->log, o, st, summary_path);
end:
    free(score);
    free(correct);
    free(ascore);
    free(summary);
    free(out.p);
    free(sum.p);
    anchors_free(&A);
    dataset_free(d);
    return rc;
}
