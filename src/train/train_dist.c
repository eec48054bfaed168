/* train_dist.c — a training run under data parallelism (include/tinyalign/dist.h).
 *
 * Implements: the step's gradient sum hook, the ranks' agreement on the config and command
 * line (train_agree_config) and, after setup, on the data, weights and training state, the
 * shared verdict on a failure only rank 0 can have, and the run directory check.
 * Does not implement: the transport and the agreement protocol (dist.c, dist_mpi.c,
 * dist_single.c), who writes what (rank 0: train.c, train_loop.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train_impl.h"

/* The step's hook (StepAllReduce) and the cached reference's sum: dist_sum, rank order. */
int trainer_step_allreduce(void *ctx, StepSyncPoint p, float *grads, size_t n_grads,
                           double *sums, size_t n_sums, TaError *err) {
    (void)p;
    return dist_sum(ctx, grads, n_grads, sums, n_sums, err);
}

static int cache_allsum(void *ctx, float *v, size_t n, TaError *err) {
    return dist_sum(ctx, v, n, NULL, 0, err);
}

int train_agree_config(Dist *d, int rc, const Config *cfg, const char *options, TaError *err) {
    if (dist_size(d) == 1) return rc;
    char *json = rc == TA_OK ? config_to_json(cfg) : NULL;
    const DistKey keys[2] = {
        {"config", json ? ta_fnv1a(TA_FNV1A_INIT, json, strlen(json)) : 0, json,
         "start every rank with the same CONFIG and --set options (the resolved config, "
         "run.out_dir included, must be identical)"},
        {"command line", ta_fnv1a(TA_FNV1A_INIT, options, strlen(options)), options,
         "start every rank with the same command and options"}};
    rc = dist_agree(d, rc, keys, 2, err);
    free(json);
    return rc;
}

/* After setup, collective: the ranks compare how setup went and what they loaded (a rank
 * that sees other data, weights or checkpoint stops the job with one message), then build
 * a cached reference together. Returns the same status on every rank. */
int trainer_dist_setup(Trainer *t, int rc, TaError *err) {
    Dist *d = t->opt.dist;
    if (dist_size(d) == 1) return rc;
    uint64_t data = TA_FNV1A_INIT;
    char state[256] = "";
    if (rc == TA_OK) {
        const Dataset *ds[2] = {t->ds_train, t->ds_val};
        const TokenData *td[2] = {t->td_train, t->td_val};
        for (int i = 0; i < 2; i++) {
            uint64_t v = ds[i] ? dataset_hash(ds[i]) : td[i] ? token_data_num_tokens(td[i]) : 0;
            data = ta_fnv1a(data, &v, sizeof v);
        }
        /* one item per line: the message quotes the first that differs */
        uint32_t aux = 0;
        for (int i = 0; i < t->st.n_aux_crc; i++)
            aux = ta_crc32(aux, &t->st.aux_crc[i].crc, sizeof t->st.aux_crc[i].crc);
        uint32_t more = 0; /* the cursors of a mixture's other files */
        for (int i = 0; i < t->st.n_more_cursors; i++)
            more = ta_crc32(more, &t->st.more_cursors[i], sizeof t->st.more_cursors[i]);
        snprintf(state, sizeof state,
                 "step %ld, epoch %lld, example %lld\nmixture cursors %08x\nweights CRC32 "
                 "%08x\nauxiliary models %08x\n",
                 t->st.step, (long long)t->st.cursor.epoch, (long long)t->st.cursor.pos, more,
                 ta_crc32(0, t->model.params_memory, t->model.num_params * sizeof(float)), aux);
    }
    const DistKey keys[2] = {
        {"training data", data, NULL,
         "data.train and data.val must be the same files on every node (a shared filesystem, "
         "or copies at the same paths)"},
        {"model weights or training state", ta_fnv1a(TA_FNV1A_INIT, state, strlen(state)), state,
         "every rank must load the same model.path and, on resume, the same checkpoint: put "
         "run.out_dir on a shared filesystem, or copy the run directory to the same path on "
         "every node"}};
    rc = dist_agree(d, rc, keys, 2, err);
    if (rc == TA_OK) rc = aux_models_share(&t->aux, cache_allsum, d, err);
    if (rc == TA_OK)
        fprintf(t->info,
                "data parallel: %d ranks x %d thread%s, %d of the %d examples of each "
                "micro-batch per rank, %.2f MiB of gradients summed per step; stop cleanly with "
                "kill -INT %ld (rank 0)\n",
                dist_size(d), ta_get_threads(), ta_get_threads() == 1 ? "" : "s",
                t->cfg.train.batch_size / dist_size(d),
                t->cfg.train.batch_size, (double)t->model.num_params * 4.0 / 1048576.0,
                (long)getpid());
    return rc;
}

/* Collective in a step's schedule: a failure that only rank 0 can have (its metrics.jsonl,
 * its eval_generate) stops every rank. The largest status wins; a rank that did not fail
 * gets an empty message (rank 0 reports its own at dist_finish). */
int trainer_dist_status(Trainer *t, int rc, TaError *err) {
    if (dist_size(t->opt.dist) == 1) return rc;
    int job = dist_max(t->opt.dist, rc);
    if (job != TA_OK && rc == TA_OK) {
        err->code = job;
        err->msg[0] = '\0';
    }
    return job;
}

/* After rank 0 created the run directory (rc: how that went, on rank 0), collective: every
 * rank learns the outcome, and rank 0 warns when some rank cannot see the directory (a
 * resume needs the checkpoints on every rank). */
int trainer_dist_run_dir(Trainer *t, int rc, TaError *err) {
    Dist *d = t->opt.dist;
    if (dist_size(d) == 1) return rc;
    if ((rc = dist_max(d, rc)) != TA_OK) return rc;
    char p[4200];
    ta_pathf(p, sizeof p, "%s/config.json", t->cfg.run.out_dir);
    int seen = dist_count(d, access(p, F_OK) == 0);
    if (seen < dist_size(d))
        fprintf(stderr, "warning: %d of %d ranks do not see run.out_dir \"%s\" (not on a shared "
                        "filesystem?): rank 0 writes the checkpoints there, and a resume needs "
                        "them at the same path on every rank (copy the run directory first)\n",
                dist_size(d) - seen, dist_size(d), t->cfg.run.out_dir);
    (void)err;
    return TA_OK;
}
