/* train_loop.c — the schedule around train_step.
 *
 * Implements: the loop of steps with logging (progress with ETA and tokens/s, metrics.jsonl),
 * non-finite step limits, eval with early stopping and keep-best, task metrics
 * (train.eval_generate, computed by the score module), sampling, checkpoint cadence and
 * write failures, --stop-after, signals (SIGINT / SIGTERM save and exit 128 + signal), and
 * the run summary (summary.json). Under MPI rank 0 logs and writes, every rank stops
 * together.
 * Does not implement: the step itself (step.c), the data order (train_order.c), building the
 * run (train_setup.c), file formats (checkpoint, log modules).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tinyalign/sample.h"
#include "train_impl.h"

/* ---- checkpoints ----------------------------------------------------------------------- */

/* A write failed (disk full, read-only or vanished directory): the run stops. Extends the
 * message with what is safe: checkpoint_save leaves the previous checkpoint and `latest`
 * untouched, so the last good checkpoint resumes bit-exactly once the cause is fixed. */
static int stop_message(const Trainer *t, const char *what, TaError *err) {
    char inner[sizeof err->msg];
    snprintf(inner, sizeof inner, "%s", err->msg);
    if (t->last_ckpt[0])
        return ta_err(err, TA_ERUNTIME,
                      "%s %ld failed: %s; the run stops. The last good checkpoint, %s, is "
                      "intact: fix the cause and continue with `tinyalign resume %s`",
                      what, t->st.step, inner, t->last_ckpt, t->cfg.run.out_dir);
    return ta_err(err, TA_ERUNTIME, "%s %ld failed: %s; the run stops (no checkpoint was "
                  "written yet)", what, t->st.step, inner);
}

static int save(Trainer *t, int is_best, char *dir_out, size_t cap, TaError *err) {
    /* data parallel: rank 0 writes, every rank learns whether it could (the same verdict) */
    if (dist_rank(t->opt.dist) != 0) {
        int rc = dist_max(t->opt.dist, TA_OK);
        return rc == TA_OK ? rc : ta_err(err, rc, "rank 0 could not write the checkpoint");
    }
    CheckpointContents cc = {.model = &t->model,
                             .optim = &t->optim,
                             .state = &t->st,
                             .config_json = t->config_json,
                             .tokenizer_path = t->tokenizer_path[0] ? t->tokenizer_path : NULL,
                             .ref = aux_models_drifting(&t->aux)};
    char dir[4096];
    double t0 = ta_now();
    t->st.wall_seconds = t->wall_before + (t0 - t->t_session);
    int rc = checkpoint_save(t->cfg.run.out_dir, &cc, t->cfg.train.keep_last_n, is_best, dir,
                             sizeof dir, err);
    if (rc == TA_OK) {
        fprintf(stderr, "checkpoint: %s (%.2fs)\n", dir, ta_now() - t0);
        if (dir_out) ta_pathf(dir_out, cap, "%s", dir);
        ta_pathf(t->last_ckpt, sizeof t->last_ckpt, "%s", dir);
    } else {
        rc = stop_message(t, "the checkpoint of step", err);
    }
    return dist_max(t->opt.dist, rc);
}

/* ---- the schedule -------------------------------------------------------------------- */

/* The objective's present metrics as MetricKV, "loss" first; skip_loss leaves it out. */
static int metrics_kv(const ObjectiveMetrics *om, MetricKV *kv, int cap, int skip_loss) {
    int n = 0;
    for (int i = skip_loss ? 1 : 0; i < OBJ_METRIC_COUNT && n < cap; i++)
        if (om->m[i].present) kv[n++] = (MetricKV){om->m[i].name, om->m[i].value};
    return n;
}

/* The objective's headline metrics (objective_headline) as MetricKV, for progress lines. */
static int headline_kv(const ObjectiveMetrics *om, MetricKV *kv, int cap) {
    ObjectiveMetricId ids[8];
    int n = objective_headline(om, ids, cap < 8 ? cap : 8);
    for (int i = 0; i < n; i++) kv[i] = (MetricKV){om->m[ids[i]].name, om->m[ids[i]].value};
    return n;
}

/* train.sample_every: one completion per configured prompt with the current weights,
 * printed and logged as a "sample" line. Seeded from (run.seed, step), never from the
 * trainer's RNG, so sampling does not change what a resumed run computes. */
static int sample_during_training(Trainer *t, TaError *err) {
    const CfgTrain *tc = &t->cfg.train;
    SampleOptions so;
    sample_options_default(&so);
    so.n = 1;
    so.max_new_tokens = tc->sample_max_new_tokens;
    so.temperature = tc->sample_temperature;
    so.seed = (uint64_t)t->cfg.run.seed * 1000003u + (uint64_t)t->st.step;
    int n = tc->sample_prompts.n;
    SampleResult *res = ta_calloc(sizeof *res * (size_t)n, "samples");
    int rc = sample_completions(&t->model, t->tok, (const char *const *)tc->sample_prompts.items,
                                n, &so, res, err);
    if (rc == TA_OK) {
        size_t cap = 1024;
        for (int i = 0; i < n; i++)
            cap += 2 * (strlen(tc->sample_prompts.items[i]) + strlen(res[i].text)) * 3 + 64;
        char *json = ta_calloc(cap, "sample json");
        strcat(json, "\"samples\": [");
        for (int i = 0; i < n; i++) {
            /* printed as the text continues the prompt; logged as sample's JSONL "text" */
            fprintf(stderr, "sample step %ld | %s%s\n", t->st.step, tc->sample_prompts.items[i],
                    res[i].continuation);
            strcat(json, i ? ", {\"prompt\": " : "{\"prompt\": ");
            log_json_string(json, cap, tc->sample_prompts.items[i]);
            strcat(json, ", \"text\": ");
            log_json_string(json, cap, res[i].text);
            strcat(json, "}");
        }
        strcat(json, "]");
        log_metrics(&t->log, "sample", t->st.step, NULL, 0, json);
        free(json);
    }
    for (int i = 0; i < n; i++) sample_result_free(&res[i]);
    free(res);
    return rc;
}

/* train.eval_generate: sample and score the prompts (score module), one "eval_generate"
 * line in metrics.jsonl. Seeded from (run.seed, step) like sample_every, never from the
 * trainer's RNG, and the policy is only read: a resumed run computes the same. */
static int eval_generate(Trainer *t, TaError *err) {
    MetricKV kv[80];
    int n = 0;
    char line[1024];
    uint64_t seed = (uint64_t)t->cfg.run.seed * 1000003u + (uint64_t)t->st.step;
    int rc = score_eval_run(t->egen, &t->model, seed, kv, 80, &n, line, sizeof line, err);
    if (rc != TA_OK) return rc;
    fprintf(stderr, "eval_generate step %ld: %s\n", t->st.step, line);
    log_metrics(&t->log, "eval_generate", t->st.step, kv, n, NULL);
    return TA_OK;
}

int trainer_loop(Trainer *t, TaError *err) {
    const Config *c = &t->cfg;
    const int writer = dist_rank(t->opt.dist) == 0; /* rank 0 logs and writes (dist.h) */
    const long max_steps = c->train.max_steps;
    int rc = TA_OK, status = 0;
    double t_last = ta_now();
    uint64_t tokens_last = t->st.tokens_seen;
    double step_time_avg = 0;
    /* a resumed run starts on a step whose checkpoint already exists */
    long saved_at_step = t->opt.resume ? t->st.step : -1;
    t->stop_reason = "completed";
    if (t->opt.stop_after >= 0 && t->st.step >= t->opt.stop_after) {
        fprintf(stderr, "already at step %ld (--stop-after %ld): nothing to do\n", t->st.step,
                t->opt.stop_after);
        t->stop_reason = "stop_after";
        return 0;
    }
    char dir[4096];

    while (t->st.step < max_steps) {
        int sig = dist_max(t->opt.dist, train_signal_pending()); /* a signal on any rank */
        if (sig) {
            fprintf(stderr, "\n%s received: saving a checkpoint at step %ld\n",
                    sig == SIGINT ? "SIGINT" : "SIGTERM", t->st.step);
            t->stop_reason = "signal";
            t->stop_signal = sig;
            if (saved_at_step != t->st.step && (rc = save(t, 0, NULL, 0, err)) != TA_OK) break;
            status = 128 + sig;
            break;
        }
        double t0 = ta_now();
        /* 1. one step: micro-batches, auxiliary models, forward, heads, backward, update */
        StepResult r;
        StepSource src = {.fill = trainer_fill_train, .ctx = t, .set = t->train.ds};
        if ((rc = train_step(&t->step, &src, t->st.step, &r, err)) != TA_OK) break;
        if (r.why[0]) fprintf(stderr, "warning: %s\n", r.why);
        const ObjectiveMetrics om = r.metrics;
        const double loss = r.loss, gnorm = r.grad_norm, lr = r.lr;
        if (r.nonfinite) {
            t->st.bad_steps++;
            fprintf(stderr, "warning: step %ld: non-finite %s (%g, grad norm %g): update skipped (%d in a row, limit %d)\n",
                    t->st.step + 1, isfinite(loss) ? "gradient" : "loss", loss, gnorm,
                    t->st.bad_steps, c->train.max_bad_steps);
            if (t->st.bad_steps >= c->train.max_bad_steps) {
                rc = ta_err(err, TA_ERUNTIME,
                            "stopping: %d consecutive non-finite steps (train.max_bad_steps); the "
                            "last good checkpoint is untouched (try a lower optim.lr)",
                            t->st.bad_steps);
                t->stop_reason = "nonfinite";
                break;
            }
        } else {
            t->st.bad_steps = 0;
        }
        t->st.step++;
        t->st.tokens_seen += r.tokens;
        t->st.ref_syncs += r.ref_synced;
        double dt = ta_now() - t0;
        step_time_avg = step_time_avg == 0 ? dt : 0.9 * step_time_avg + 0.1 * dt;

        /* 3. log */
        if (t->st.step % c->train.log_every == 0 || t->st.step == max_steps) {
            double now = ta_now();
            double tps = (double)(t->st.tokens_seen - tokens_last) / (now - t_last + 1e-9);
            double eta = step_time_avg * (double)(max_steps - t->st.step);
            MetricKV kv[48];
            int n = 0;
            kv[n++] = (MetricKV){"loss", loss};
            kv[n++] = (MetricKV){"lr", lr};
            kv[n++] = (MetricKV){"grad_norm", gnorm};
            kv[n++] = (MetricKV){"epoch", trainer_epochs_done(t)};
            kv[n++] = (MetricKV){"tokens", (double)t->st.tokens_seen};
            n += metrics_kv(&om, kv + n, 40, 1);
            kv[n++] = (MetricKV){"tok_per_s", tps};
            kv[n++] = (MetricKV){"elapsed_s", now - t->log.t_start};
            log_metrics(&t->log, "train", t->st.step, kv, n, NULL);
            MetricKV head[4];
            int nh = headline_kv(&om, head, 4);
            log_progress(&t->log, t->st.step, max_steps, loss, lr, gnorm, tps, eta, head, nh);
            t_last = now;
            tokens_last = t->st.tokens_seen;
        }
        /* 4. eval, early stopping, keep-best */
        int stop_early = 0, is_best = 0;
        int eval_due = c->train.eval_every > 0 &&
                       (t->st.step % c->train.eval_every == 0 || t->st.step == max_steps);
        if (t->have_val && eval_due) {
            ObjectiveMetrics ev;
            if ((rc = trainer_evaluate(t, &ev, err)) != TA_OK) break;
            MetricKV kv[40];
            int n = metrics_kv(&ev, kv, 40, 0);
            log_metrics(&t->log, "eval", t->st.step, kv, n, NULL);
            double vloss = ev.m[OBJ_METRIC_LOSS].value;
            if (vloss < t->st.best_val - c->train.min_delta) {
                t->st.best_val = vloss;
                t->st.best_step = t->st.step;
                t->st.evals_since_best = 0;
                is_best = 1;
            } else {
                t->st.evals_since_best++;
            }
            MetricKV head[4];
            int nh = headline_kv(&ev, head, 4);
            char extra[256] = "";
            for (int i = 0, o = 0; i < nh && o < (int)sizeof extra - 48; i++)
                o += snprintf(extra + o, sizeof extra - (size_t)o, " | %s %.4g", head[i].name,
                              head[i].value);
            fprintf(stderr, "eval step %ld: val loss %.4f%s (best %.4f at step %ld)\n",
                    t->st.step, vloss, extra, t->st.best_val, t->st.best_step);
            if (c->train.patience > 0 && t->st.evals_since_best >= c->train.patience) {
                fprintf(stderr, "early stopping: no improvement > %g in %d evals\n",
                        c->train.min_delta, c->train.patience);
                stop_early = 1;
            }
        }
        /* eval_generate: rank 0 samples and scores (a cmd: scorer runs once, on rank 0's
         * node); the weights are the same on every rank */
        if (t->egen && eval_due &&
            (rc = trainer_dist_status(t, writer ? eval_generate(t, err) : TA_OK, err)) != TA_OK)
            break;
        if (t->tok && c->train.sample_every > 0 && c->train.sample_prompts.n > 0 &&
            t->st.step % c->train.sample_every == 0 && (rc = sample_during_training(t, err)) != TA_OK)
            break;
        if ((rc = log_check(&t->log, err)) != TA_OK) rc = stop_message(t, "logging step", err);
        if ((rc = trainer_dist_status(t, rc, err)) != TA_OK) break; /* rank 0's log */
        /* 5. checkpoint */
        int stop_now = stop_early || (t->opt.stop_after >= 0 && t->st.step >= t->opt.stop_after);
        int due = (c->train.save_every > 0 && t->st.step % c->train.save_every == 0) ||
                  t->st.step == max_steps || stop_now || (is_best && c->train.keep_best);
        if (due) {
            if ((rc = save(t, is_best && c->train.keep_best, dir, sizeof dir, err)) != TA_OK) break;
            saved_at_step = t->st.step;
        }
        if (stop_now) {
            t->stop_reason = stop_early ? "early_stopping" : "stop_after";
            if (!stop_early)
                fprintf(stderr, "stopped after step %ld (--stop-after); resume with: tinyalign resume %s\n",
                        t->st.step, c->run.out_dir);
            break;
        }
    }
    if (rc != TA_OK && strcmp(t->stop_reason, "nonfinite")) t->stop_reason = "error";
    if (rc != TA_OK) return rc == TA_EINPUT ? 2 : 1;
    return status;
}

/* What the run did, printed and written to <out_dir>/summary.json (log_summary), whatever
 * ended the loop. A data-parallel run calls it on rank 0 only. */
void trainer_summary(Trainer *t, int status) {
    char latest[4200], best[4200], p[4200];
    TaError e = {0};
    ta_pathf(p, sizeof p, "%s/checkpoints/latest", t->cfg.run.out_dir);
    int have_latest = access(p, F_OK) == 0 && checkpoint_resolve(p, latest, sizeof latest, &e) == TA_OK;
    ta_pathf(p, sizeof p, "%s/checkpoints/best", t->cfg.run.out_dir);
    int have_best = access(p, F_OK) == 0 && checkpoint_resolve(p, best, sizeof best, &e) == TA_OK;
    double now = ta_now();
    RunSummary s = {
        .out_dir = t->cfg.run.out_dir,
        .objective = config_choice_name("objective.type", t->cfg.objective.type),
        .exit_reason = t->stop_reason ? t->stop_reason : "error",
        .signal = t->stop_signal == SIGINT ? "SIGINT" : t->stop_signal == SIGTERM ? "SIGTERM" : NULL,
        .exit_status = status,
        .step = t->st.step,
        .max_steps = t->cfg.train.max_steps,
        .session_start_step = t->start_step,
        .tokens_seen = t->st.tokens_seen,
        .session_tokens = t->st.tokens_seen - t->start_tokens,
        .session_s = now - t->t_session,
        .total_s = t->wall_before + (now - t->t_session),
        .best_val = t->st.best_val,
        .best_step = t->st.best_step,
        .latest = have_latest ? latest : NULL,
        .best = have_best ? best : NULL,
    };
    /* after an error, its one message is all the user sees (summary.json is still written,
     * when it can be: a full disk may refuse it too) */
    int quiet = !strcmp(s.exit_reason, "error");
    if (log_summary(&t->log, &s, quiet ? NULL : stderr, &e) != TA_OK && !quiet)
        fprintf(stderr, "warning: %s\n", e.msg);
}
