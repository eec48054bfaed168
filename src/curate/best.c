/* best.c — `curate best` (include/tinyalign/curate.h): ReST-style selection (Gulcehre et
 * al. 2023, arXiv 2308.08998, "grow" then "improve" on the best samples): per prompt, the
 * best K responses by score, or all at or above a threshold, as SFT rows that keep the
 * prompt row's own fields (data.h's writers).
 * Not here: scoring (the score module), pairs (commands.c), weighting schemes beyond
 * copying a field into "weight".
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/curate.h"

void curate_best_defaults(CurateBestOptions *o) {
    memset(o, 0, sizeof *o);
    o->top = 1;
    o->score_field = "score";
}

typedef struct {
    double score;
    int index; /* within the prompt */
} Ranked;

static int cmp_ranked(const void *a, const void *b) {
    const Ranked *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index); /* ties: file order */
}

/* A number field of the response, else (row_too) of the row. */
static int number_field(const Dataset *d, const DataRow *row, const DataResponse *x, int j,
                        const char *key, int row_too, const char *what, double *out,
                        TaError *err) {
    const DataField *f = data_fields_find(&x->extra, key);
    if (!f && row_too) f = data_fields_find(&row->extra, key);
    if (!f)
        return ta_err(err, TA_EINPUT, "%s:%ld: responses[%d] has no \"%s\"%s", dataset_path(d),
                      row->line, j, key,
                      row_too ? " (nor has its row)"
                              : "; score the responses first (tinyalign score --field NAME)");
    TaError e = {0};
    if (data_field_number(f, out, &e) != TA_OK)
        return ta_err(err, TA_EINPUT, "%s:%ld: responses[%d]: %s (%s)", dataset_path(d), row->line,
                      j, e.msg, what);
    return TA_OK;
}

/* One SFT row. */
static void put_row(TaBuf *b, const DataRow *row, const char *prompt, const char *text,
                    const char *score_field, double score, int with_weight, double weight) {
    const char *skip[] = {"prompt", "completion", "weight", score_field, NULL};
    ta_buf_puts(b, "{\"prompt\":");
    jsonl_put_string(b, prompt);
    ta_buf_puts(b, ",\"completion\":");
    jsonl_put_string(b, text);
    if (with_weight) {
        ta_buf_puts(b, ",\"weight\":");
        jsonl_put_number(b, weight);
    }
    ta_buf_puts(b, ",");
    jsonl_put_string(b, score_field);
    ta_buf_puts(b, ":");
    jsonl_put_number(b, score);
    jsonl_put_fields(b, &row->extra, skip);
    ta_buf_puts(b, "}\n");
}

int curate_best_run(const CurateBestOptions *opt, CurateBestStats *st, TaError *err) {
    CurateBestStats z;
    if (!st) st = &z;
    memset(st, 0, sizeof *st);
    const char *sf = opt->score_field && *opt->score_field ? opt->score_field : "score";
    if (opt->top < 0) return ta_err(err, TA_EINPUT, "--top must be >= 0, got %d", opt->top);
    if (opt->top == 0 && !opt->has_threshold)
        return ta_err(err, TA_EINPUT, "--top 0 (no cap) needs --threshold S");
    if (opt->has_threshold && !isfinite(opt->threshold))
        return ta_err(err, TA_EINPUT, "--threshold must be a finite number");
    Dataset *d = NULL;
    TaBuf out = {0};
    Ranked *rk = NULL;
    int rc = dataset_load(&d, opt->in, DS_MULTI, NULL, NULL, err);
    if (rc != TA_OK) return rc;
    st->prompts = dataset_num_rows(d);
    st->responses = dataset_size(d);
    int maxn = 1;
    for (size_t i = 0; i < st->prompts; i++) {
        DataRow row;
        dataset_row(d, i, &row);
        if (row.n_responses > maxn) maxn = row.n_responses;
    }
    rk = ta_malloc(sizeof(Ranked) * (size_t)maxn, "curate best");
    const char **chosen = ta_malloc(sizeof(char *) * (size_t)maxn, "curate best");
    for (size_t i = 0; i < st->prompts && rc == TA_OK; i++) {
        DataRow row;
        dataset_row(d, i, &row);
        const char *prompt = row.prompt;
        char *pbuf = NULL;
        if (opt->prompt_field) {
            const DataField *f = data_fields_find(&row.extra, opt->prompt_field);
            if (!f || f->value[0] != '"') {
                rc = ta_err(err, TA_EINPUT, "%s:%ld: --prompt-field %s: the row has %s", opt->in,
                            row.line, opt->prompt_field, f ? "it, but not as a string" : "no such field");
                break;
            }
            prompt = pbuf = data_field_text(f);
        }
        /* rank */
        for (int j = 0; j < row.n_responses && rc == TA_OK; j++) {
            DataResponse x;
            dataset_response(d, row.first + (size_t)j, &x);
            rk[j].index = j;
            if (!strcmp(sf, "score") && x.has_score) rk[j].score = x.score;
            else rc = number_field(d, &row, &x, j, sf, 0, "--score-field", &rk[j].score, err);
        }
        if (rc == TA_OK) qsort(rk, (size_t)row.n_responses, sizeof(Ranked), cmp_ranked);
        /* select */
        int taken = 0, above = 0;
        for (int a = 0; a < row.n_responses && rc == TA_OK; a++) {
            if (opt->top > 0 && taken == opt->top) break;
            if (opt->has_threshold && !(rk[a].score >= opt->threshold)) break; /* sorted */
            above = 1;
            DataResponse x;
            dataset_response(d, row.first + (size_t)rk[a].index, &x);
            int dup = 0;
            for (int q = 0; q < taken && opt->unique && !dup; q++) dup = !strcmp(chosen[q], x.text);
            if (dup) {
                st->skipped_duplicate++;
                continue;
            }
            double w = 1.0;
            if (opt->weight_field) {
                rc = number_field(d, &row, &x, rk[a].index, opt->weight_field, 1, "--weight-field", &w,
                                  err);
                if (rc == TA_OK && !(w >= 0))
                    rc = ta_err(err, TA_EINPUT, "%s:%ld: responses[%d]: --weight-field %s = %g; "
                                "weights must be >= 0", opt->in, row.line, rk[a].index,
                                opt->weight_field, w);
                if (rc != TA_OK) break;
            }
            put_row(&out, &row, prompt, x.text, sf, rk[a].score, opt->weight_field != NULL, w);
            chosen[taken++] = x.text;
            st->score_sum += rk[a].score;
        }
        free(pbuf);
        st->rows += (size_t)taken;
        st->kept_prompts += taken > 0;
        st->dropped_threshold += opt->has_threshold && !above && row.n_responses > 0;
    }
    free(chosen);
    if (rc == TA_OK && st->rows == 0)
        rc = ta_err(err, TA_EINPUT, "%s: no response selected (%zu prompts%s); nothing written "
                    "to %s", opt->in, st->prompts,
                    opt->has_threshold ? ", none with a score >= the threshold" : "", opt->out);
    if (rc == TA_OK) rc = ta_write_file_atomic(opt->out, out.p ? out.p : "", out.n, err);
    if (rc == TA_OK && opt->log) {
        char how[128];
        if (opt->top > 0 && opt->has_threshold)
            snprintf(how, sizeof how, "top %d with %s >= %g", opt->top, sf, opt->threshold);
        else if (opt->top > 0) snprintf(how, sizeof how, "top %d by %s", opt->top, sf);
        else snprintf(how, sizeof how, "every response with %s >= %g", sf, opt->threshold);
        fprintf(opt->log, "curate best: %zu prompts, %zu responses -> %zu SFT rows (%s) -> %s\n",
                st->prompts, st->responses, st->rows, how, opt->out);
        fprintf(opt->log, "  prompts kept %zu, dropped %zu", st->kept_prompts,
                st->prompts - st->kept_prompts);
        if (st->dropped_threshold)
            fprintf(opt->log, " (%zu with no response >= %g)", st->dropped_threshold, opt->threshold);
        fprintf(opt->log, "; mean selected %s %.6g\n", sf, st->score_sum / (double)st->rows);
        if (st->skipped_duplicate)
            fprintf(opt->log, "  passed over %zu repeated texts (--unique)\n", st->skipped_duplicate);
    }
    free(rk);
    free(out.p);
    dataset_free(d);
    return rc;
}
