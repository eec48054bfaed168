/* log.h — what a run tells its user: the progress line on stderr, one JSON object per
 * logged step / eval in <out_dir>/metrics.jsonl, and the run summary at the end
 * (<out_dir>/summary.json, src/log/summary.c).
 *
 * metrics.jsonl lines are {"kind": K, "step": N, <name>: <value>...} with numbers printed
 * %.9g (float32 round-trips; a non-finite value is null). Kinds:
 *   "data"    once, at step 0 of a fresh run: train_examples, val_examples, truncated
 *             (JSONL data), params
 *   "train"   every train.log_every steps: loss, lr, grad_norm, epoch, tokens, the
 *             objective's metrics, tok_per_s, elapsed_s
 *   "eval"    every train.eval_every steps: loss and the objective's metrics on the
 *             validation data
 *   "eval_generate"  every train.eval_every steps with train.eval_generate.scorer: the
 *             task metrics of sampled responses (eval/score_mean, ...; src/train)
 *   "sample"  every train.sample_every steps: "samples": [{"prompt", "text"}]
 * Everything except the wall-clock fields ("tok_per_s", "elapsed_s") is bit-identical
 * between a straight run and a stopped and resumed one; on resume the file is cut back to
 * the checkpoint's step first, so a crash between a checkpoint and a later log line never
 * leaves duplicates. A fresh run starts the file empty.
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
    char *last_train; /* the newest "train" / "eval" / "eval_generate" line (JSON text, */
    char *last_eval;  /* no newline; NULL: none yet), kept for the run summary; resumed */
    char *last_eval_generate; /* from the file */
} Logger;

/* Opens <out_dir>/metrics.jsonl. A fresh run (resume_step < 0) starts it empty; when
 * resume_step >= 0, first drops every line whose "step" is greater than resume_step, and a
 * last line cut short by a crash or a full disk (no newline), and appends after the rest. */
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

/* ---- the run summary (src/log/summary.c) ----------------------------------------------- */

/* What a run did, filled by the trainer when the run ends, however it ends. */
typedef struct {
    const char *out_dir;
    const char *objective;    /* "dpo", ... */
    const char *exit_reason;  /* "completed" (max_steps), "stop_after", "early_stopping",
                                 "signal", "nonfinite" (train.max_bad_steps), "error" */
    const char *signal;       /* "SIGINT" / "SIGTERM" with exit_reason "signal", else NULL */
    int exit_status;          /* the process exit status */
    long step, max_steps;     /* optimizer steps done (over every session), planned */
    long session_start_step;  /* where this session started (0, or the resumed step) */
    uint64_t tokens_seen;     /* over every session */
    uint64_t session_tokens;  /* this session */
    double session_s;         /* wall time of this session */
    double total_s;           /* wall time over every session: each earlier session up to
                                 the checkpoint this one resumed from, plus this one */
    double best_val;          /* best validation loss (INFINITY: no evaluation yet) */
    long best_step;
    const char *latest, *best; /* checkpoint directories (NULL: none) */
} RunSummary;

/* Writes <out_dir>/summary.json atomically and prints the summary to f (may be NULL):
 *   {"format": "tinyalign-summary", "version": 1, "out_dir", "objective", "exit_reason",
 *    "signal"?, "exit_status", "step", "max_steps", "tokens_seen", "session":
 *    {"start_step", "steps", "tokens", "wall_s", "tok_per_s", "peak_rss_mib"},
 *    "total_wall_s", "val_loss": {"final", "final_step", "best", "best_step"} (null
 *    without an evaluation), "train": {the newest "train" record}, "eval": {the newest
 *    "eval" record}, "eval_generate": {the newest "eval_generate" record} (null when none),
 *    "checkpoints": {"latest", "best"} (null when none)}
 * The records are the logger's last lines of those kinds (lg->last_train, ...)
 * without "kind". Peak RSS is this process's (getrusage). In a data-parallel run only
 * rank 0 calls it. Returns TA_OK or TA_ERUNTIME (the file could not be written). */
int log_summary(const Logger *lg, const RunSummary *s, FILE *f, TaError *err);

#endif
