/* train.c — a training run and an evaluation (train_run, train_eval in
 * include/tinyalign/train.h).
 *
 * Implements: the order of a run: setup, the ranks' agreements, the run directory
 * (config.json, metrics.jsonl and its "data" line), the loop, the summary; and train_eval,
 * one evaluation of a config's model or a checkpoint.
 * Does not implement: the parts, one file each (see train_impl.h): building the run
 * (train_setup.c), the data order (train_order.c), the schedule (train_loop.c), data
 * parallelism (train_dist.c); the step itself (step.c), the loss math (objective module),
 * the frozen models (reference module), file formats (checkpoint, data modules).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tinyalign/model_io.h"
#include "train_impl.h"

int train_run(const Config *cfg, const TrainOptions *opt, TaError *err) {
    Trainer t;
    memset(&t, 0, sizeof t);
    config_copy(&t.cfg, cfg);
    t.opt = *opt;
    t.info = stdout;
    train_signals_install();
    int rc = TA_OK;
    if (!t.opt.resume) {
        char latest[4200];
        ta_pathf(latest, sizeof latest, "%s/checkpoints/latest", t.cfg.run.out_dir);
        if (access(latest, F_OK) == 0)
            rc = ta_err(err, TA_EINPUT,
                        "run.out_dir \"%s\" already holds a run (checkpoints/latest): continue it "
                        "with --resume, or choose another run.out_dir (or delete the directory)",
                        t.cfg.run.out_dir);
    }
    if (rc == TA_OK) rc = trainer_setup(&t, err);
    if (rc == TA_OK) rc = trainer_open_eval_generate(&t, err);
    rc = trainer_dist_setup(&t, rc, err);
    /* only a run that set up cleanly touches its directory; data parallel: rank 0 */
    const int agreed = rc == TA_OK, writer = dist_rank(t.opt.dist) == 0;
    if (rc == TA_OK && writer) rc = ta_mkdirs(t.cfg.run.out_dir, err);
    if (rc == TA_OK && writer) {
        char p[4096];
        ta_pathf(p, sizeof p, "%s/config.json", t.cfg.run.out_dir);
        rc = ta_write_file_atomic(p, t.config_json, strlen(t.config_json), err);
    }
    if (rc == TA_OK && writer)
        rc = log_open(&t.log, t.cfg.run.out_dir, t.opt.resume ? t.st.step : -1, err);
    if (rc == TA_OK && writer && !t.opt.resume) {
        /* what the run trains on, once, as step 0 */
        MetricKV kv[6];
        int n = 0;
        kv[n++] = (MetricKV){"train_examples", (double)t.train.n};
        kv[n++] = (MetricKV){"val_examples", t.have_val ? (double)t.val.n : 0.0};
        if (t.ds_train)
            kv[n++] = (MetricKV){"truncated", (double)dataset_num_truncated(t.ds_train)};
        if (t.ds_train && dataset_kind(t.ds_train) == DS_SFT)
            kv[n++] = (MetricKV){"zero_weight_examples", (double)t.n_zero_weight};
        kv[n++] = (MetricKV){"params", (double)t.model.num_params};
        /* a mixture: every file with its training examples and ratio */
        TaBuf extra = {0};
        for (int k = 0; t.n_mix > 1 && k < t.n_mix; k++) {
            ta_buf_puts(&extra, k ? ", " : "\"sources\": [");
            ta_buf_puts(&extra, "{\"path\": ");
            ta_buf_json_string(&extra, t.cfg.data.train.paths[k]);
            const CfgSourceLoss sl = t.cfg.data.train.loss[k];
            ta_buf_printf(&extra, ", \"examples\": %zu, \"weight\": %.17g, \"loss\": \"%s\"}",
                          t.mix[k].n, t.mix[k].ratio,
                          sl == CFG_SRC_LOSS_KL ? "kl" : sl == CFG_SRC_LOSS_NLL ? "nll" : "all");
            if (k == t.n_mix - 1) ta_buf_puts(&extra, "]");
        }
        log_metrics(&t.log, "data", 0, kv, n, extra.p);
        free(extra.p);
    }
    if (agreed) rc = trainer_dist_run_dir(&t, rc, err);
    int status;
    if (rc != TA_OK) {
        status = rc == TA_EINPUT ? 2 : 1;
    } else {
        t.t_session = ta_now();
        t.wall_before = t.st.wall_seconds;
        t.start_step = t.st.step;
        t.start_tokens = t.st.tokens_seen;
        status = trainer_loop(&t, err);
        if (status == 0 && t.st.step >= t.cfg.train.max_steps)
            fprintf(stderr, "done: %ld steps, %llu tokens, checkpoints in %s/checkpoints\n",
                    t.st.step, (unsigned long long)t.st.tokens_seen, t.cfg.run.out_dir);
        if (dist_rank(t.opt.dist) == 0) trainer_summary(&t, status); /* rank 0 writes (dist.h) */
    }
    trainer_free(&t);
    return status;
}

int train_eval(const Config *cfg, const char *checkpoint, int max_batches, Dist *dist,
               char **json_out, TaError *err) {
    Trainer t;
    memset(&t, 0, sizeof t);
    config_copy(&t.cfg, cfg);
    t.opt = (TrainOptions){.stop_after = -1, .quiet = 1, .dist = dist};
    t.info = stderr;
    *json_out = NULL;
    int rc = TA_OK;
    if (checkpoint && *checkpoint && objective_uses_score_head(&t.cfg.objective)) {
        /* said before anything is loaded: the checkpoint must be a reward model */
        char dir[4096], p[4200];
        GPT2Config cc;
        rc = checkpoint_resolve(checkpoint, dir, sizeof dir, err);
        ta_pathf(p, sizeof p, "%s/config.json", dir);
        if (rc == TA_OK && (rc = model_config_read(&cc, p, err)) == TA_OK && !cc.score_head)
            rc = ta_err(err, TA_EINPUT,
                        "--checkpoint %s is not a reward model: it has no scalar head "
                        "(score.weight); objective.type \"reward\" evaluates reward models",
                        dir);
    }
    if (rc == TA_OK) rc = trainer_setup(&t, err);
    rc = trainer_dist_setup(&t, rc, err); /* collective: every rank, whatever rc */
    if (rc == TA_OK && !t.have_val) {
        /* no validation data: evaluate the training file itself */
        t.val = t.train;
        t.have_val = 1;
    }
    /* the whole set unless max_batches says otherwise (train.eval_batches is the training
     * loop's periodic sample of it) */
    const size_t per = (size_t)t.cfg.train.batch_size;
    if (rc == TA_OK)
        t.cfg.train.eval_batches = max_batches > 0 ? max_batches : (int)((t.val.n + per - 1) / per);
    if (rc == TA_OK && checkpoint && *checkpoint) {
        /* the config's model (and so its reference) stays; the policy becomes checkpoint */
        char dir[4096];
        rc = checkpoint_resolve(checkpoint, dir, sizeof dir, err);
        if (rc == TA_OK) {
            char p[4200];
            ta_pathf(p, sizeof p, "%s/model.safetensors", dir);
            rc = model_load_safetensors(&t.model, p, err);
        }
        rc = dist_agree(dist, rc, NULL, 0, err); /* every rank must see it */
    }
    ObjectiveMetrics m;
    if (rc == TA_OK) rc = trainer_evaluate(&t, &m, err);
    if (rc == TA_OK) {
        char *buf = ta_malloc(4096, "eval json");
        int n = snprintf(buf, 4096, "{\"examples\": %zu", trainer_eval_examples(&t));
        for (int i = 0; i < OBJ_METRIC_COUNT; i++)
            if (m.m[i].present)
                n += snprintf(buf + n, 4096 - (size_t)n, ", \"%s\": %.9g", m.m[i].name, m.m[i].value);
        snprintf(buf + n, 4096 - (size_t)n, "}");
        *json_out = buf;
    }
    trainer_free(&t);
    return rc;
}
