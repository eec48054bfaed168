/* vote.c — `curate vote` (include/tinyalign/curate.h): self-consistency over sampled chains
 * of thought (Wang et al. 2023, arXiv 2203.11171), the first filter of self-improvement
 * (Huang et al. 2022, arXiv 2210.11610, "LMSI") and of IWSI (Jiang et al., AAAI 2025, arXiv
 * 2408.09849): each response's final answer is extracted with a POSIX extended regex, the
 * most frequent answer of a prompt is its majority answer, and every response is marked
 * consistent with it or not.
 *
 * Extraction: the LAST match of the regex in the text, its first capture group, blanks
 * trimmed, commas removed; a group that reads entirely as a finite number (strtod) is
 * written in its shortest round-trip form ("054" -> "54", "3.50" -> "3.5", "1,000" ->
 * "1000", "-0" -> "0"), so equal numbers vote together; anything else votes as the trimmed
 * text. The last match, as the authors' code splits on the last "the answer is" (a model
 * may restate an intermediate "answer" before the final one). The gold "answer" of a row
 * goes through the same canonical form before it is compared.
 *
 * Vote: answers counted per prompt over the responses with one; ties go to the answer whose
 * first occurrence comes earliest in the response order (the authors' dict-in-insertion-
 * order, strict-greater scan). Vote entropy H = -sum_a p_a ln p_a over the shares of the
 * parsed answers, and H / ln(parsed) (normalised to [0, 1], the quantity the authors'
 * entropy filter thresholds; null when only one response parsed).
 *
 * Not here: the filters and DS weights (dsweight.c), sampling.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/curate.h"

int curate_answer_compile(CurateAnswerRe *a, const char *pattern, TaError *err) {
    memset(a, 0, sizeof *a);
    if (!pattern) pattern = CURATE_ANSWER_DEFAULT_RE;
    int rc = regcomp(&a->re, pattern, REG_EXTENDED);
    if (rc != 0) {
        char why[256];
        regerror(rc, &a->re, why, sizeof why);
        return ta_err(err, TA_EINPUT, "--answer-regex \"%s\" does not compile: %s", pattern, why);
    }
    if (a->re.re_nsub < 1) {
        regfree(&a->re);
        return ta_err(err, TA_EINPUT, "--answer-regex \"%s\" has no capture group; put the "
                      "answer in parentheses, e.g. \"The answer is (-?[0-9]+)\"", pattern);
    }
    a->compiled = 1;
    return TA_OK;
}

void curate_answer_free(CurateAnswerRe *a) {
    if (a->compiled) regfree(&a->re);
    memset(a, 0, sizeof *a);
}

char *curate_answer_canonical(const char *s, size_t n) {
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    char *o = ta_malloc(n + 1, "answer");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != ',') o[k++] = s[i];
    o[k] = 0;
    if (k == 0) {
        free(o);
        return NULL;
    }
    char *end;
    double v = strtod(o, &end);
    if (*end == 0 && isfinite(v) && !isspace((unsigned char)o[0])) {
        char buf[64];
        if (v == 0) v = 0; /* -0 -> 0 */
        snprintf(buf, sizeof buf, "%.15g", v);
        if (strtod(buf, NULL) != v) snprintf(buf, sizeof buf, "%.17g", v);
        free(o);
        return ta_strdup(buf, "answer");
    }
    return o;
}

char *curate_answer_extract(const CurateAnswerRe *a, const char *text) {
    const char *p = text, *best = NULL;
    size_t best_n = 0;
    int flags = 0;
    regmatch_t m[2];
    while (*p && regexec(&a->re, p, 2, m, flags) == 0) {
        if (m[1].rm_so >= 0) best = p + m[1].rm_so, best_n = (size_t)(m[1].rm_eo - m[1].rm_so);
        p += m[0].rm_eo > m[0].rm_so ? m[0].rm_eo : m[0].rm_so + 1; /* no empty-match loop */
        flags = REG_NOTBOL;
    }
    return best ? curate_answer_canonical(best, best_n) : NULL;
}

/* How many answers equal answers[i], when i is that answer's first occurrence; else 0. */
static int count_at_first(const char *const *answers, int n, int i) {
    if (!answers[i]) return 0;
    for (int j = 0; j < i; j++)
        if (answers[j] && !strcmp(answers[j], answers[i])) return 0;
    int c = 0;
    for (int j = i; j < n; j++) c += answers[j] && !strcmp(answers[j], answers[i]);
    return c;
}

int curate_vote_majority(const char *const *answers, int n, int *count, double *entropy,
                         int *parsed) {
    int best = -1, best_c = 0, np = 0;
    for (int i = 0; i < n; i++) np += answers[i] != NULL;
    double h = 0;
    for (int i = 0; i < n; i++) {
        int c = count_at_first(answers, n, i);
        if (!c) continue;
        if (c > best_c) best = i, best_c = c; /* strict: the earlier first occurrence wins ties */
        double q = (double)c / np;
        h -= q * log(q);
    }
    if (count) *count = best_c;
    if (entropy) *entropy = h > 0 ? h : 0.0;
    if (parsed) *parsed = np;
    return best;
}

/* ---- the command ------------------------------------------------------------------------ */
static const char *const ROW_SKIP[] = {"majority", "majority_count", "parsed", "vote_entropy",
                                       "vote_entropy_norm", NULL};
static const char *const RESP_SKIP[] = {"answer", "consistent", "correct", NULL};

int curate_vote_run(const CurateVoteOptions *opt, CurateVoteStats *st, TaError *err) {
    CurateVoteStats z;
    if (!st) st = &z;
    memset(st, 0, sizeof *st);
    CurateAnswerRe re;
    int rc = curate_answer_compile(&re, opt->regex, err);
    if (rc != TA_OK) return rc;
    Dataset *d = NULL;
    TaBuf out = {0};
    char **ans = NULL;
    if ((rc = dataset_load(&d, opt->in, DS_MULTI, NULL, NULL, err)) != TA_OK) goto end;
    st->prompts = dataset_num_rows(d);
    st->responses = dataset_size(d);
    ans = ta_calloc(sizeof(char *) * (st->responses ? st->responses : 1), "curate vote");
    for (size_t i = 0; i < st->prompts; i++) {
        DataRow row;
        dataset_row(d, i, &row);
        for (int j = 0; j < row.n_responses; j++) {
            DataResponse x;
            dataset_response(d, row.first + (size_t)j, &x);
            ans[row.first + (size_t)j] = curate_answer_extract(&re, x.text);
        }
        int count, parsed;
        double h;
        const char *const *a = (const char *const *)ans + row.first;
        int maj = curate_vote_majority(a, row.n_responses, &count, &h, &parsed);
        st->parsed += (size_t)parsed;
        if (maj < 0) {
            st->dropped_prompts++;
            continue;
        }
        char *gold = NULL;
        const DataField *g = data_fields_find(&row.extra, "answer");
        if (g) {
            char *t = data_field_text(g);
            gold = curate_answer_canonical(t, strlen(t));
            free(t);
            st->with_gold++;
            st->majority_correct += gold && !strcmp(gold, a[maj]);
        }
        st->kept_prompts++;
        jsonl_put_row_start(&out, &row, ROW_SKIP);
        for (int j = 0; j < row.n_responses; j++) {
            DataResponse x;
            dataset_response(d, row.first + (size_t)j, &x);
            if (j) ta_buf_puts(&out, ",");
            jsonl_put_response_start(&out, &x, RESP_SKIP);
            ta_buf_puts(&out, ",\"answer\":");
            if (a[j]) jsonl_put_string(&out, a[j]);
            else ta_buf_puts(&out, "null");
            int cons = a[j] && !strcmp(a[j], a[maj]);
            st->consistent += cons;
            ta_buf_printf(&out, ",\"consistent\":%s", cons ? "true" : "false");
            if (g) {
                int ok = a[j] && gold && !strcmp(a[j], gold);
                st->correct += ok;
                st->consistent_correct += ok && cons;
                ta_buf_printf(&out, ",\"correct\":%s", ok ? "true" : "false");
            }
            ta_buf_puts(&out, "}");
        }
        jsonl_put_row_end(&out, &row, ROW_SKIP);
        out.n -= 2; /* reopen the object ("}\n") to add the vote's fields */
        ta_buf_puts(&out, ",\"majority\":");
        jsonl_put_string(&out, a[maj]);
        ta_buf_printf(&out, ",\"majority_count\":%d,\"parsed\":%d,\"vote_entropy\":", count, parsed);
        jsonl_put_number(&out, h);
        ta_buf_puts(&out, ",\"vote_entropy_norm\":");
        if (parsed > 1) jsonl_put_number(&out, h / log((double)parsed));
        else ta_buf_puts(&out, "null");
        ta_buf_puts(&out, "}\n");
        free(gold);
    }
    if (st->kept_prompts == 0)
        rc = ta_err(err, TA_EINPUT, "%s: no response has an answer the regex \"%s\" finds (%zu "
                    "prompts, %zu responses); nothing written to %s (check --answer-regex)",
                    opt->in, opt->regex ? opt->regex : CURATE_ANSWER_DEFAULT_RE, st->prompts,
                    st->responses, opt->out);
    if (rc == TA_OK) rc = ta_write_file_atomic(opt->out, out.p ? out.p : "", out.n, err);
    if (rc == TA_OK && opt->log) {
        fprintf(opt->log, "curate vote: %zu prompts, %zu responses -> %s\n", st->prompts,
                st->responses, opt->out);
        fprintf(opt->log, "  answers parsed %zu of %zu (%.1f%%); prompts dropped (no answer) %zu\n",
                st->parsed, st->responses, 100.0 * (double)st->parsed / (double)st->responses,
                st->dropped_prompts);
        fprintf(opt->log, "  consistent with the majority %zu responses in %zu prompts\n",
                st->consistent, st->kept_prompts);
        if (st->with_gold)
            fprintf(opt->log, "  gold answers on %zu prompts: majority correct %.4f, responses "
                    "correct %zu, consistent and correct %zu of %zu consistent\n",
                    st->with_gold, (double)st->majority_correct / (double)st->with_gold,
                    st->correct, st->consistent_correct, st->consistent);
    }
end:
    if (ans)
        for (size_t r = 0; r < st->responses; r++) free(ans[r]);
    free(ans);
    free(out.p);
    dataset_free(d);
    curate_answer_free(&re);
    return rc;
}
