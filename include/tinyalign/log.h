/* log.h — what a run tells its user: the progress line on stderr and one JSON object per
 * logged step / eval in <out_dir>/metrics.jsonl.
 *
 * metrics.jsonl lines are {"kind": "train"|"eval"|"sample", "step": N, <name>: <value>...}
 * with numbers printed %.9g (float32 round-trips). Everything except the wall-clock fields
 * ("tok_per_s", "elapsed_s") is bit-identical between a straight run and a stopped and
 * resumed one; on resume the file is cut back to the checkpoint's step first, so a crash
 * between a checkpoint and a later log line never leaves duplicates.
 */
#ifndef TINYALIGN_LOG_H
#define TINYALIGN_LOG_H
#include <stdio.h>

#include "tinyalign/common.h"

typedef struct {
    const char *name;
    double value;
} MetricKV;

typedef struct {
    FILE *metrics;    /* <out_dir>/metrics.jsonl, append mode */
    double t_start;   /* ta_now() at log_open */
    int write_errno;  /* the first failed write to metrics.jsonl (disk full ...), 0: none */
    char path[4096];  /* metrics.jsonl, for messages */
} Logger;

/* Opens (creating) <out_dir>/metrics.jsonl. When resume_step >= 0, first drops every line
 * whose "step" is greater than resume_step, and a last line cut short by a crash or a
 * full disk (no newline). */
int log_open(Logger *lg, const char *out_dir, long resume_step, TaError *err);
void log_close(Logger *lg); /* safe on a zeroed Logger */

/* Appends one JSON line {"kind": kind, "step": step, kv...}; extra_json (may be NULL) is a
 * pre-formatted `"key": value` fragment appended verbatim (e.g. sample texts). Flushed.
 * A failed write is remembered in write_errno (see log_check). */
void log_metrics(Logger *lg, const char *kind, long step, const MetricKV *kv, int n,
                 const char *extra_json);

/* TA_OK, or TA_ERUNTIME naming metrics.jsonl and the system's reason when a write to it
 * has failed since log_open (the trainer then stops rather than lose metrics silently). */
int log_check(const Logger *lg, TaError *err);

/* The progress line: "step 120/1000 | loss 3.2145 | lr 3.00e-04 | gnorm 0.812 |
 * 41.2k tok/s | 12.3 s elapsed | ETA 1m31s" plus up to a few extra metrics. One full line
 * per logged step, never redrawn in place: eval, checkpoint and sample lines interleave
 * with it, and a log redirected to a file stays readable. */
void log_progress(Logger *lg, long step, long max_steps, double loss, double lr, double gnorm,
                  double tok_per_s, double eta_s, const MetricKV *extra, int n_extra);

/* Formats seconds as "1h02m", "3m05s" or "12.3s". */
void log_format_duration(double s, char *buf, size_t cap);

/* Appends the JSON string literal of s (ta_buf_json_string) to buf (size cap,
 * NUL-terminated); leaves buf unchanged when it does not fit. */
void log_json_string(char *buf, size_t cap, const char *s);

#endif
