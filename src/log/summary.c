/* summary.c — the run summary (include/tinyalign/log.h): what a run did, printed when it
 * ends and written to <out_dir>/summary.json, whatever ended it (max_steps, --stop-after,
 * early stopping, a signal, non-finite steps, an error).
 *
 * The newest "train", "eval" and "eval_generate" records come from the logger (the lines it
 * last wrote or, after a resume, kept), so a summary covers the whole run, not just this
 * session; wall time and tokens are given for this session and for the run.
 * Not here: deciding why the run stopped (the trainer), the metrics themselves.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "tinyalign/jsonl.h"
#include "tinyalign/log.h"

/* Peak resident set size of this process in MiB (Linux: ru_maxrss is in KiB). */
static double peak_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0.0;
    return (double)ru.ru_maxrss / 1024.0;
}

/* A number with %.9g digits (cJSON would print 17), or null when not finite. */
static void add_num(cJSON *o, const char *k, double v) {
    char buf[64];
    if (!isfinite(v)) {
        cJSON_AddNullToObject(o, k);
        return;
    }
    snprintf(buf, sizeof buf, "%.9g", v);
    cJSON_AddItemToObject(o, k, cJSON_CreateRaw(buf));
}

static void add_str(cJSON *o, const char *k, const char *v) {
    if (v && *v) cJSON_AddStringToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

/* The logger's record line as an object without "kind" (NULL when there is none or it
 * does not parse, which only a damaged metrics.jsonl would cause). */
static cJSON *record(const char *line) {
    if (!line) return NULL;
    cJSON *o = NULL;
    if (jsonl_parse_object("metrics.jsonl", 0, line, strlen(line), &o, NULL) != TA_OK)
        return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(o, "kind");
    return o;
}

/* "name v | name v ..." of a record's numbers, leaving out the keys in skip. */
static void print_record(FILE *f, const char *title, const cJSON *rec, const char *const *skip) {
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(rec, "step");
    fprintf(f, "  %s (step %.0f):", title, cJSON_IsNumber(st) ? st->valuedouble : 0.0);
    int n = 0;
    for (const cJSON *e = rec->child; e; e = e->next) {
        int skipped = !cJSON_IsNumber(e);
        for (int i = 0; skip[i] && !skipped; i++) skipped = !strcmp(e->string, skip[i]);
        if (skipped) continue;
        fprintf(f, "%s %s %.4g", n++ ? " |" : "", e->string, e->valuedouble);
    }
    fputc('\n', f);
}

static void print_summary(FILE *f, const RunSummary *s, const cJSON *train, const cJSON *eval,
                          const cJSON *gen, double final_val, long final_step, double rss, const char *path) {
    char el[32], tot[32], why[64];
    log_format_duration(s->session_s, el, sizeof el);
    log_format_duration(s->total_s, tot, sizeof tot);
    if (s->signal) snprintf(why, sizeof why, "stopped by %s", s->signal);
    else snprintf(why, sizeof why, "%s", s->exit_reason);
    double tps = s->session_s > 0 ? (double)s->session_tokens / s->session_s : 0.0;
    fprintf(f, "summary: %s at step %ld/%ld | %llu tokens | %s this session (%s in all) | "
               "%.1fk tok/s | peak RSS %.0f MiB\n",
            why, s->step, s->max_steps, (unsigned long long)s->tokens_seen, el, tot,
            tps / 1000.0, rss);
    if (isfinite(s->best_val))
        fprintf(f, "  val loss: final %.4f (step %ld) | best %.4f (step %ld)\n", final_val,
                final_step, s->best_val, s->best_step);
    static const char *const SKIP_TRAIN[] = {"step", "epoch", "tokens", "tok_per_s",
                                             "elapsed_s", NULL};
    static const char *const SKIP_EVAL[] = {"step", NULL};
    if (train) print_record(f, "train", train, SKIP_TRAIN);
    if (eval) print_record(f, "eval", eval, SKIP_EVAL);
    if (gen) print_record(f, "eval_generate", gen, SKIP_EVAL);
    if (s->latest)
        fprintf(f, "  checkpoints: latest %s%s%s\n", s->latest, s->best ? " | best " : "",
                s->best ? s->best : "");
    fprintf(f, "  -> %s\n", path);
    fflush(f);
}

int log_summary(const Logger *lg, const RunSummary *s, FILE *f, TaError *err) {
    cJSON *train = record(lg->last_train), *eval = record(lg->last_eval),
          *gen = record(lg->last_eval_generate);
    /* the final validation loss is the newest eval record's */
    double final_val = NAN;
    long final_step = -1;
    if (eval) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(eval, "loss");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(eval, "step");
        if (cJSON_IsNumber(l)) final_val = l->valuedouble;
        if (cJSON_IsNumber(st)) final_step = (long)st->valuedouble;
    }
    double rss = peak_rss_mib();
    long steps = s->step - s->session_start_step;

    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", "tinyalign-summary");
    cJSON_AddNumberToObject(o, "version", 1);
    add_str(o, "out_dir", s->out_dir);
    add_str(o, "objective", s->objective);
    add_str(o, "exit_reason", s->exit_reason);
    if (s->signal) cJSON_AddStringToObject(o, "signal", s->signal);
    cJSON_AddNumberToObject(o, "exit_status", s->exit_status);
    cJSON_AddNumberToObject(o, "step", (double)s->step);
    cJSON_AddNumberToObject(o, "max_steps", (double)s->max_steps);
    cJSON_AddNumberToObject(o, "tokens_seen", (double)s->tokens_seen);
    cJSON *se = cJSON_AddObjectToObject(o, "session");
    cJSON_AddNumberToObject(se, "start_step", (double)s->session_start_step);
    cJSON_AddNumberToObject(se, "steps", (double)steps);
    cJSON_AddNumberToObject(se, "tokens", (double)s->session_tokens);
    add_num(se, "wall_s", s->session_s);
    add_num(se, "tok_per_s", s->session_s > 0 ? (double)s->session_tokens / s->session_s : 0.0);
    add_num(se, "peak_rss_mib", rss);
    add_num(o, "total_wall_s", s->total_s);
    if (isfinite(s->best_val)) {
        cJSON *v = cJSON_AddObjectToObject(o, "val_loss");
        add_num(v, "final", final_val);
        cJSON_AddNumberToObject(v, "final_step", (double)final_step);
        add_num(v, "best", s->best_val);
        cJSON_AddNumberToObject(v, "best_step", (double)s->best_step);
    } else {
        cJSON_AddNullToObject(o, "val_loss");
    }
    cJSON_AddItemToObject(o, "train", train ? cJSON_Duplicate(train, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "eval", eval ? cJSON_Duplicate(eval, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "eval_generate", gen ? cJSON_Duplicate(gen, 1) : cJSON_CreateNull());
    cJSON *ck = cJSON_AddObjectToObject(o, "checkpoints");
    add_str(ck, "latest", s->latest);
    add_str(ck, "best", s->best);

    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    TA_ASSERT(text != NULL);
    size_t n = strlen(text);
    text = ta_realloc(text, n + 2, "summary");
    text[n++] = '\n';
    char path[4096];
    ta_pathf(path, sizeof path, "%s/summary.json", s->out_dir);
    int rc = ta_write_file_atomic(path, text, n, err);
    free(text);
    if (rc == TA_OK && f) print_summary(f, s, train, eval, gen, final_val, final_step, rss, path);
    cJSON_Delete(train);
    cJSON_Delete(eval);
    cJSON_Delete(gen);
    return rc;
}
