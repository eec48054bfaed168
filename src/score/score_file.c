/* score_file.c — `tinyalign score` as a library call (score.h: score_file_run): read a
 * multi-response file with the data module's reader (every field kept), score every
 * response with one scorer call, write the file back with the score and the scorer's
 * fields added to each response (data.h's writers splice the kept fields back), atomically,
 * and summarise.
 * Not here: argument parsing (src/cli/cmd_score.c), the scorers (scorer_*.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "score_impl.h"

typedef struct {
    FILE *log;
    int tty;
    double t0, last;
    const char *unit;
} Progress;

static void on_progress(void *ctx, size_t done, size_t total) {
    Progress *p = ctx;
    double now = ta_now();
    int final = done == total;
    if (!final && now - p->last < (p->tty ? 0.25 : 5.0)) return;
    p->last = now;
    double dt = now - p->t0, rate = dt > 0 ? (double)done / dt : 0;
    char eta[32] = "";
    if (!final && rate > 0) snprintf(eta, sizeof eta, " | ETA %.0fs", (double)(total - done) / rate);
    fprintf(p->log, "%sscore: %zu/%zu %s | %.1f/s | %.1fs%s%s", p->tty ? "\r" : "", done, total,
            p->unit, rate, dt, eta, p->tty && !final ? "   " : "\n");
    fflush(p->log);
}

/* The scorer's fields must not overwrite the response text or the score. */
static int check_fields(const ScoreResult *r, const char *field, const char *spec,
                        const char *where, TaError *err) {
    for (int k = 0; k < r->n_fields; k++) {
        const char *key = r->fields[k].key;
        if (!strcmp(key, "text") || !strcmp(key, field))
            return ta_err(err, TA_EINPUT,
                          "scorer %s: its answer to %s has a field \"%s\", which would replace the "
                          "response's %s; rename it%s", spec, where, key,
                          strcmp(key, "text") ? "score" : "text",
                          strcmp(key, "text") ? " (or store the score elsewhere with --field)" : "");
    }
    return TA_OK;
}

/* One response: {"text", <its fields but the ones we set>, field: score, <scorer fields>} */
static void put_response(TaBuf *b, const DataResponse *x, const char *field,
                         const ScoreResult *r) {
    const char **skip = ta_malloc(sizeof(char *) * (size_t)(r->n_fields + 2), "skip list");
    skip[0] = field;
    for (int k = 0; k < r->n_fields; k++) skip[k + 1] = r->fields[k].key;
    skip[r->n_fields + 1] = NULL;
    jsonl_put_response_start(b, x, skip);
    free(skip);
    ta_buf_puts(b, ",");
    jsonl_put_string(b, field);
    ta_buf_puts(b, ":");
    jsonl_put_number(b, r->score);
    for (int k = 0; k < r->n_fields; k++) {
        ta_buf_puts(b, ",");
        jsonl_put_string(b, r->fields[k].key);
        ta_buf_puts(b, ":");
        ta_buf_puts(b, r->fields[k].value);
    }
    ta_buf_puts(b, "}");
}

int score_file_run(const ScoreFileOptions *o, ScoreSummary *sum, TaError *err) {
    const char *field = o->field && *o->field ? o->field : "score";
    if (!strcmp(field, "text"))
        return ta_err(err, TA_EINPUT, "--field text would replace the response text; choose "
                      "another name");
    ScoreSummary zs;
    if (!sum) sum = &zs;
    memset(sum, 0, sizeof *sum);
    Dataset *d = NULL;
    Scorer *s = NULL;
    ScoreRequest *req = NULL;
    ScoreResult *res = NULL;
    char **where = NULL;
    DataRow *rowv = NULL;
    TaBuf out = {0};
    size_t n = 0;
    Progress pr = {.log = o->log, .tty = o->log && isatty(fileno(o->log)), .unit = "responses"};
    ScorerOptions so = o->scorer;
    if (o->log && o->progress) so.progress = on_progress, so.progress_ctx = &pr;
    int rc = scorer_open(&s, o->spec, &so, err);
    if (rc != TA_OK) goto end;
    if ((rc = dataset_load(&d, o->in, DS_MULTI, NULL, NULL, err)) != TA_OK) goto end;
    n = dataset_size(d);
    req = ta_calloc(sizeof *req * n, "score requests");
    res = ta_calloc(sizeof *res * n, "score results");
    where = ta_calloc(sizeof *where * n, "score requests");
    const size_t rows = dataset_num_rows(d);
    rowv = ta_malloc(sizeof(DataRow) * (rows ? rows : 1), "score rows");
    for (size_t i = 0; i < rows; i++) {
        DataRow *row = &rowv[i]; /* its fields point into the dataset, alive until the end */
        dataset_row(d, i, row);
        for (int j = 0; j < row->n_responses; j++) {
            size_t r = row->first + (size_t)j;
            DataResponse x;
            dataset_response(d, r, &x);
            size_t cap = strlen(o->in) + 64;
            where[r] = ta_malloc(cap, "score requests");
            snprintf(where[r], cap, "%s:%ld responses[%d]", o->in, row->line, j);
            req[r] = (ScoreRequest){.prompt = row->prompt, .response = x.text,
                                    .fields = &row->extra, .where = where[r]};
        }
    }
    if (o->log)
        fprintf(o->log, "score: %s: %zu prompt%s, %zu response%s; scorer %s\n", o->in, rows,
                rows == 1 ? "" : "s", n, n == 1 ? "" : "s", scorer_spec(s)->text);
    pr.t0 = pr.last = ta_now();
    rc = scorer_score(s, req, n, res, err);
    for (size_t r = 0; r < n && rc == TA_OK; r++)
        rc = check_fields(&res[r], field, scorer_spec(s)->text, where[r], err);
    if (rc == TA_OK) {
        for (size_t i = 0; i < rows; i++) {
            const DataRow *row = &rowv[i];
            jsonl_put_row_start(&out, row, NULL);
            for (int j = 0; j < row->n_responses; j++) {
                size_t r = row->first + (size_t)j;
                DataResponse x;
                dataset_response(d, r, &x);
                if (j) ta_buf_puts(&out, ",");
                put_response(&out, &x, field, &res[r]);
                score_summary_add(sum, &res[r]);
            }
            jsonl_put_row_end(&out, row, NULL);
        }
        rc = ta_write_file_atomic(o->out, out.p ? out.p : "", out.n, err);
    }
    if (rc == TA_OK && o->log) {
        char line[1024];
        score_summary_describe(sum, field, line, sizeof line);
        ScorerStats st;
        scorer_stats(s, &st);
        fprintf(o->log, "score: %s -> %s\n", line, o->out);
        fprintf(o->log, "score: %ld %s%s in %.2fs (%.1f responses/s", st.calls,
                scorer_spec(s)->kind == SCORER_CMD ? "program call" : "batch",
                st.calls == 1 ? "" : scorer_spec(s)->kind == SCORER_CMD ? "s" : "es", st.seconds,
                st.seconds > 0 ? (double)st.requests / st.seconds : 0.0);
        if (st.tokens) fprintf(o->log, ", %.0f tokens/s", (double)st.tokens / st.seconds);
        if (st.unique < st.requests)
            fprintf(o->log, "; %zu identical responses scored once", st.requests - st.unique);
        fprintf(o->log, ")\n");
    }
end:
    for (size_t r = 0; r < n && res; r++) score_result_free(&res[r]);
    for (size_t r = 0; r < n && where; r++) free(where[r]);
    free(where);
    free(rowv);
    free(res);
    free(req);
    free(out.p);
    scorer_close(s);
    dataset_free(d);
    return rc;
}
