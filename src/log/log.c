/* log.c — the progress line and metrics.jsonl (see include/tinyalign/log.h). */
#define _POSIX_C_SOURCE 200809L
#include "tinyalign/log.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int log_open(Logger *lg, const char *out_dir, long resume_step, TaError *err) {
    memset(lg, 0, sizeof *lg);
    char path[4096];
    ta_pathf(path, sizeof path, "%s/metrics.jsonl", out_dir);
    if (resume_step >= 0) {
        size_t len;
        char *text = ta_read_file(path, &len, NULL);
        if (text) {
            /* keep lines whose "step" <= resume_step */
            char *out = ta_malloc(len + 1, "metrics");
            size_t o = 0;
            char *line = text;
            while (*line) {
                char *nl = strchr(line, '\n');
                size_t ll = nl ? (size_t)(nl - line + 1) : strlen(line);
                const char *st = strstr(line, "\"step\": ");
                long s = st && st < line + ll ? strtol(st + 8, NULL, 10) : 0;
                if (s <= resume_step && nl) { /* a line without its newline was cut short */
                    memcpy(out + o, line, ll);
                    o += ll;
                }
                line += ll;
            }
            int rc = ta_write_file_atomic(path, out, o, err);
            free(out);
            free(text);
            if (rc != TA_OK) return rc;
        }
    }
    snprintf(lg->path, sizeof lg->path, "%s", path);
    lg->metrics = fopen(path, "a");
    if (!lg->metrics) return ta_err(err, TA_ERUNTIME, "%s: cannot open for appending", path);
    lg->t_start = ta_now();
    return TA_OK;
}

void log_close(Logger *lg) {
    if (lg->metrics) fclose(lg->metrics);
    memset(lg, 0, sizeof *lg);
}

static void put_number(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fprintf(f, "null"); /* JSON has no NaN/inf */
}

void log_metrics(Logger *lg, const char *kind, long step, const MetricKV *kv, int n,
                 const char *extra_json) {
    if (!lg->metrics) return;
    fprintf(lg->metrics, "{\"kind\": \"%s\", \"step\": %ld", kind, step);
    for (int i = 0; i < n; i++) {
        fprintf(lg->metrics, ", \"%s\": ", kv[i].name);
        put_number(lg->metrics, kv[i].value);
    }
    if (extra_json && *extra_json) fprintf(lg->metrics, ", %s", extra_json);
    fprintf(lg->metrics, "}\n");
    errno = 0;
    int fault = ta_fault_errno(lg->path); /* tests: a simulated failure (common.h) */
    if ((fault || fflush(lg->metrics) != 0 || ferror(lg->metrics)) && !lg->write_errno)
        lg->write_errno = fault ? fault : errno ? errno : EIO;
}

int log_check(const Logger *lg, TaError *err) {
    if (!lg->write_errno) return TA_OK;
    return ta_err(err, TA_ERUNTIME, "%s: write failed: %s (disk full?)", lg->path,
                  strerror(lg->write_errno));
}

void log_format_duration(double s, char *buf, size_t cap) {
    if (!isfinite(s) || s < 0) snprintf(buf, cap, "?");
    else if (s >= 3600) snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)(fmod(s, 3600) / 60));
    else if (s >= 60) snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(buf, cap, "%.1fs", s);
}

void log_progress(Logger *lg, long step, long max_steps, double loss, double lr, double gnorm,
                  double tok_per_s, double eta_s, const MetricKV *extra, int n_extra) {
    char eta[32], el[32], line[1024];
    log_format_duration(eta_s, eta, sizeof eta);
    log_format_duration(ta_now() - lg->t_start, el, sizeof el);
    int n = snprintf(line, sizeof line,
                     "step %ld/%ld | loss %.4f | lr %.2e | gnorm %.3f | %.1fk tok/s | %s | ETA %s",
                     step, max_steps, loss, lr, gnorm, tok_per_s / 1000.0, el, eta);
    for (int i = 0; i < n_extra && n < (int)sizeof line - 64; i++)
        n += snprintf(line + n, sizeof line - (size_t)n, " | %s %.4g", extra[i].name, extra[i].value);
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
}

void log_json_string(char *buf, size_t cap, const char *s) {
    TaBuf b = {0};
    ta_buf_json_string(&b, s);
    size_t o = strlen(buf);
    if (o + b.n < cap) memcpy(buf + o, b.p, b.n + 1);
    free(b.p);
}
