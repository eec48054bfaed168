/* train.c — the training loop (see include/tinyalign/train.h for the step anatomy).
 *
 * Implements: run setup from a resolved Config (tokenizer, data, model init from scratch /
 * checkpoint / Hugging Face dir, reference model, AdamW with decay on 2-D matmul weights),
 * the step loop with gradient accumulation, non-finite step skipping, logging, eval with
 * early stopping and keep-best, checkpoint cadence, --stop-after, signals and resume.
 * Does not implement: the loss math (objective module), the reference log-probs
 * (reference module), file formats (checkpoint, data modules).
 */
#define _POSIX_C_SOURCE 200809L
#include "tinyalign/train.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tinyalign/checkpoint.h"
#include "tinyalign/data.h"
#include "tinyalign/kernels.h"
#include "tinyalign/log.h"
#include "tinyalign/model.h"
#include "tinyalign/model_io.h"
#include "tinyalign/objective.h"
#include "tinyalign/optim.h"
#include "tinyalign/reference.h"
#include "tinyalign/sample.h"
#include "tinyalign/tokenizer.h"

/* Where examples come from: token-shard windows or a JSONL dataset. */
typedef struct {
    TokenData *td; /* windows of split td_split */
    int td_split;
    Dataset *ds;
    size_t n;             /* examples */
    int rows_per_example; /* 1, or 2 for preference pairs */
} Source;

typedef struct {
    Config cfg;
    TrainOptions opt;
    char *config_json;
    Tokenizer *tok;
    char tokenizer_path[4096];
    TokenData *td_train, *td_val;
    Dataset *ds_train, *ds_val;
    Source train, val;
    int have_val;
    GPT2 model;
    AdamW optim;
    Reference ref;
    int need_ref;
    int K;          /* grad accumulation */
    int rows;       /* rows per micro-batch */
    int T;          /* max sequence length of a batch */
    Batch *micro;   /* (K) micro-batches of one step */
    float *ref_logp; /* (K * rows) reference sequence log-probs of the step */
    Batch evalb;
    uint32_t *perm;
    int64_t perm_epoch;
    TrainState st;
    Logger log;
    FILE *info; /* where setup reports (stdout for train, stderr for eval) */
} Trainer;

static void source_fill(const Source *s, const uint32_t *ids, int n, Batch *b) {
    if (s->td) token_data_fill(s->td, s->td_split, ids, n, b);
    else dataset_fill(s->ds, ids, n, b);
}

/* ---- setup ------------------------------------------------------------------------- */

static int path_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static int open_data(Trainer *t, TaError *err) {
    const Config *c = &t->cfg;
    int rc;
    if (c->data.format == CFG_DATA_TOKENS) {
        t->T = c->data.max_len;
        rc = token_data_open(&t->td_train, c->data.train, t->T,
                             c->data.val[0] ? 0.0 : c->data.val_fraction, 0, err);
        if (rc != TA_OK) return rc;
        t->train = (Source){.td = t->td_train, .td_split = 0,
                            .n = token_data_num_windows(t->td_train, 0), .rows_per_example = 1};
        if (c->data.val[0]) {
            if ((rc = token_data_open(&t->td_val, c->data.val, t->T, 0.0, 0, err)) != TA_OK)
                return rc;
            t->val = (Source){.td = t->td_val, .n = token_data_num_windows(t->td_val, 0),
                              .rows_per_example = 1};
            t->have_val = 1;
        } else if (c->data.val_fraction > 0) {
            t->val = (Source){.td = t->td_train, .td_split = 1,
                              .n = token_data_num_windows(t->td_train, 1), .rows_per_example = 1};
            t->have_val = 1;
        }
        fprintf(t->info, "data: %s: %llu tokens, %zu training windows of %d tokens%s%zu validation windows\n",
               c->data.train, (unsigned long long)token_data_num_tokens(t->td_train), t->train.n,
               t->T + 1, t->have_val ? ", " : " (no validation: set data.val or data.val_fraction), ",
               t->have_val ? t->val.n : (size_t)0);
        return TA_OK;
    }
    if (!t->tok)
        return ta_err(err, TA_EINPUT,
                      "data.format \"%s\" needs a tokenizer: set tokenizer.model (or start from a "
                      "checkpoint that carries tokenizer.model)",
                      config_choice_name("data.format", c->data.format));
    DatasetKind kind = c->data.format == CFG_DATA_SFT ? DS_SFT
                       : c->data.format == CFG_DATA_PREFERENCE ? DS_PREFERENCE : DS_MULTI;
    DatasetOptions dopt = {.max_len = c->data.max_len, .max_prompt_len = c->data.max_prompt_len,
                           .truncation_mode = c->data.truncation_mode == CFG_TRUNC_KEEP_START
                                                  ? TRUNC_KEEP_START : TRUNC_KEEP_END};
    if ((rc = dataset_load(&t->ds_train, c->data.train, kind, t->tok, &dopt, err)) != TA_OK) return rc;
    t->T = c->data.max_len - 1;
    t->train = (Source){.ds = t->ds_train, .n = dataset_size(t->ds_train),
                        .rows_per_example = dataset_rows_per_example(t->ds_train)};
    fprintf(t->info, "data: %s: %zu examples, %zu truncated (max_len %d, max_prompt_len %d)\n", c->data.train,
           t->train.n, dataset_num_truncated(t->ds_train), c->data.max_len, c->data.max_prompt_len);
    if (c->data.val[0]) {
        if ((rc = dataset_load(&t->ds_val, c->data.val, kind, t->tok, &dopt, err)) != TA_OK) return rc;
        t->val = (Source){.ds = t->ds_val, .n = dataset_size(t->ds_val),
                          .rows_per_example = dataset_rows_per_example(t->ds_val)};
        t->have_val = 1;
        fprintf(t->info, "data: %s: %zu validation examples, %zu truncated\n", c->data.val, t->val.n,
               dataset_num_truncated(t->ds_val));
    } else if (c->data.val_fraction > 0) {
        /* hold out the last fraction of the (unshuffled) file */
        size_t nval = (size_t)((double)t->train.n * c->data.val_fraction);
        if (nval == 0) nval = 1;
        if (nval >= t->train.n)
            return ta_err(err, TA_EINPUT, "%s: too few examples (%zu) for data.val_fraction %g",
                          c->data.train, t->train.n, c->data.val_fraction);
        t->val = t->train;
        t->val.n = nval;
        t->train.n -= nval;
        t->have_val = 2; /* val ids are offset by train.n */
    }
    return TA_OK;
}

/* Model dimensions, weights and tokenizer from model.init. */
static int init_model(Trainer *t, TaError *err) {
    const Config *c = &t->cfg;
    int rc;
    if (c->model.init == CFG_INIT_SCRATCH) {
        GPT2Config mc;
        config_to_gpt2(c, &mc);
        if (mc.vocab_size == 0) {
            if (t->tok) mc.vocab_size = tokenizer_vocab_size(t->tok);
            else if (t->td_train) mc.vocab_size = token_data_vocab_size(t->td_train);
        }
        if ((rc = gpt2_config_check(&mc, err)) != TA_OK) return rc;
        gpt2_init(&t->model, &mc, 1);
        gpt2_init_weights(&t->model, (uint64_t)c->run.seed);
    } else {
        char dir[4096];
        if ((rc = checkpoint_resolve(c->model.path, dir, sizeof dir, err)) != TA_OK) return rc;
        if ((rc = model_load_dir(&t->model, dir, 1, err)) != TA_OK) return rc;
        fprintf(t->info, "model: loaded %s\n", dir);
        if (!t->tokenizer_path[0]) {
            char p[4096];
            ta_pathf(p, sizeof p, "%s/tokenizer.model", dir);
            if (path_exists(p)) ta_pathf(t->tokenizer_path, sizeof t->tokenizer_path, "%s", p);
        }
    }
    return TA_OK;
}

static int check_vocab(Trainer *t, TaError *err) {
    const GPT2Config *mc = &t->model.config;
    if (t->tok && tokenizer_vocab_size(t->tok) > mc->vocab_size)
        return ta_err(err, TA_EINPUT,
                      "tokenizer %s has %d pieces but the model's vocab_size is %d",
                      t->tokenizer_path, tokenizer_vocab_size(t->tok), mc->vocab_size);
    if (t->td_train && token_data_vocab_size(t->td_train) > mc->vocab_size)
        return ta_err(err, TA_EINPUT, "%s: shard vocabulary %d exceeds the model's vocab_size %d",
                      t->cfg.data.train, token_data_vocab_size(t->td_train), mc->vocab_size);
    if (t->td_val && token_data_vocab_size(t->td_val) > mc->vocab_size)
        return ta_err(err, TA_EINPUT, "%s: shard vocabulary %d exceeds the model's vocab_size %d",
                      t->cfg.data.val, token_data_vocab_size(t->td_val), mc->vocab_size);
    if (t->T > mc->max_seq_len)
        return ta_err(err, TA_EINPUT,
                      "data.max_len %d needs %d positions but the model's max_seq_len is %d",
                      t->cfg.data.max_len, t->T, mc->max_seq_len);
    return TA_OK;
}

static void init_optim(Trainer *t) {
    AdamWConfig oc;
    config_to_adamw(&t->cfg, &oc);
    adamw_init(&t->optim, &oc, t->model.num_params);
    /* weight decay only on the 2-D matmul weights (not biases, LayerNorms, embeddings) */
    size_t off = 0;
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) {
        int decay = i == P_QKVW || i == P_ATTPROJW || i == P_FCW || i == P_FCPROJW;
        adamw_set_decay(&t->optim, off, t->model.param_sizes[i], decay);
        off += t->model.param_sizes[i];
    }
}

/* ---- data order ---------------------------------------------------------------------- */

/* Next n example ids of the training order, advancing the cursor across epochs. */
static void next_ids(Trainer *t, uint32_t *ids, int n) {
    for (int i = 0; i < n; i++) {
        if (t->st.cursor.pos >= (int64_t)t->train.n) {
            t->st.cursor.epoch++;
            t->st.cursor.pos = 0;
        }
        if (t->perm_epoch != t->st.cursor.epoch) {
            data_epoch_permutation(t->perm, t->train.n, (uint64_t)t->cfg.run.seed,
                                   t->st.cursor.epoch, t->cfg.data.shuffle);
            t->perm_epoch = t->st.cursor.epoch;
        }
        ids[i] = t->perm[t->st.cursor.pos++];
    }
}

/* ---- one pass of model + loss head over a batch --------------------------------------- */

/* Forward (and, when backward, the loss head's dlogp -> dlogits -> model backward) of one
 * micro-batch. ref_logp: the batch's reference sequence log-probs or NULL. */
static int run_batch(Trainer *t, const Batch *b, const float *ref_logp, const ObjectiveNorm *norm,
                     ObjectiveStats *stats, int backward, TaError *err) {
    GPT2 *m = &t->model;
    int rc = gpt2_forward(m, b->tokens, b->targets, b->B, b->T, err);
    if (rc != TA_OK) return rc;
    rc = objective_forward_backward(&t->cfg.objective, b, m->acts.logp, ref_logp, norm,
                                    m->acts.dlogp, stats, err);
    if (rc != TA_OK) return rc;
    if (backward) {
        logits_to_dlogits(m->acts.logits, m->acts.lse, b->targets, m->acts.dlogp, b->B * b->T,
                          m->config.vocab_size, m->config.padded_vocab_size);
        gpt2_backward(m);
    }
    return TA_OK;
}

/* Validation: the first eval_batches batches of the validation set, in file order.
 * Returns the mean loss; fills metrics. */
static int evaluate(Trainer *t, ObjectiveMetrics *out, TaError *err) {
    const int per = t->cfg.train.batch_size;
    size_t total = t->val.n;
    size_t limit = (size_t)t->cfg.train.eval_batches * per;
    if (total > limit) total = limit;
    uint32_t *ids = ta_malloc(sizeof(uint32_t) * (size_t)per, "eval ids");
    ObjectiveNorm norm = {0};
    ObjectiveStats stats = {0};
    size_t offset = t->have_val == 2 ? t->train.n : 0;
    int rc = TA_OK;
    /* two passes: normalisers over the whole eval set, then the losses */
    for (int pass = 0; pass < 2 && rc == TA_OK; pass++)
        for (size_t i = 0; i < total && rc == TA_OK; i += (size_t)per) {
            int n = (int)(total - i < (size_t)per ? total - i : (size_t)per);
            for (int j = 0; j < n; j++) ids[j] = (uint32_t)(offset + i + (size_t)j);
            source_fill(&t->val, ids, n, &t->evalb);
            if (pass == 0) {
                rc = objective_norm_add(&norm, &t->cfg.objective, &t->evalb, err);
                continue;
            }
            const float *ref = NULL;
            if (t->need_ref) {
                rc = reference_logps(&t->ref, t->val.ds, &t->evalb, t->ref_logp, err);
                ref = t->ref_logp;
            }
            if (rc == TA_OK) rc = run_batch(t, &t->evalb, ref, &norm, &stats, 0, err);
        }
    free(ids);
    if (rc == TA_OK) objective_stats_finish(&t->cfg.objective, &stats, out);
    return rc;
}

/* ---- checkpoints ----------------------------------------------------------------------- */

static int save(Trainer *t, int is_best, char *dir_out, size_t cap, TaError *err) {
    CheckpointContents cc = {.model = &t->model,
                             .optim = &t->optim,
                             .state = &t->st,
                             .config_json = t->config_json,
                             .tokenizer_path = t->tokenizer_path[0] ? t->tokenizer_path : NULL,
                             .ref = reference_drifts(&t->ref) ? reference_model(&t->ref) : NULL};
    char dir[4096];
    double t0 = ta_now();
    int rc = checkpoint_save(t->cfg.run.out_dir, &cc, t->cfg.train.keep_last_n, is_best, dir,
                             sizeof dir, err);
    if (rc == TA_OK) {
        fprintf(stderr, "checkpoint: %s (%.2fs)\n", dir, ta_now() - t0);
        if (dir_out) ta_pathf(dir_out, cap, "%s", dir);
    }
    return rc;
}

static int resume_from_checkpoint(Trainer *t, TaError *err) {
    char dir[4096];
    int rc = checkpoint_resolve(t->opt.resume_from ? t->opt.resume_from : t->cfg.run.out_dir,
                                dir, sizeof dir, err);
    if (rc != TA_OK) return rc;
    char *saved_json = NULL;
    if ((rc = checkpoint_load_state(dir, &t->st, &saved_json, err)) != TA_OK) return rc;
    if (saved_json) {
        Config saved;
        char where[4200];
        ta_pathf(where, sizeof where, "%s/state.json", dir);
        rc = config_load_string(&saved, saved_json, where, err);
        free(saved_json);
        if (rc != TA_OK) return rc;
        char diff[4096];
        int nd = config_diff_math(&saved, &t->cfg, diff, sizeof diff);
        config_free(&saved);
        if (nd > 0 && !t->opt.force)
            return ta_err(err, TA_EINPUT,
                          "refusing to resume %s: %d config key(s) that change the training math "
                          "differ from the checkpoint:\n%s\n(pass --force to resume anyway)",
                          dir, nd, diff);
        if (nd > 0) fprintf(stderr, "warning: resuming with changed config (--force):\n%s\n", diff);
    }
    GPT2 *refm = reference_drifts(&t->ref) ? reference_model(&t->ref) : NULL;
    if ((rc = checkpoint_load_weights(dir, &t->model, &t->optim, refm, err)) != TA_OK) return rc;
    fprintf(stderr, "resumed from %s at step %ld (epoch %lld, example %lld)\n", dir, t->st.step,
            (long long)t->st.cursor.epoch, (long long)t->st.cursor.pos);
    return TA_OK;
}

/* ---- the run -------------------------------------------------------------------------- */

static void trainer_free(Trainer *t) {
    if (t->micro)
        for (int k = 0; k < t->K; k++) batch_free(&t->micro[k]);
    free(t->micro);
    free(t->ref_logp);
    batch_free(&t->evalb);
    free(t->perm);
    reference_free(&t->ref);
    adamw_free(&t->optim);
    gpt2_free(&t->model);
    token_data_free(t->td_train);
    token_data_free(t->td_val);
    dataset_free(t->ds_train);
    dataset_free(t->ds_val);
    tokenizer_free(t->tok);
    log_close(&t->log);
    free(t->config_json);
    config_free(&t->cfg);
}

static int setup(Trainer *t, TaError *err) {
    Config *c = &t->cfg;
    int rc;
    ta_set_threads(c->run.threads);
    t->config_json = config_to_json(c);
    if (!t->opt.quiet) fprintf(t->info, "resolved config:\n%s\n", t->config_json);
    if (c->tokenizer.type == CFG_TOK_SENTENCEPIECE && c->tokenizer.model[0])
        ta_pathf(t->tokenizer_path, sizeof t->tokenizer_path, "%s", c->tokenizer.model);
    /* a loaded model may bring its tokenizer; a scratch model takes its vocabulary from
     * the tokenizer or the shards, so it is built after the data */
    if (c->model.init != CFG_INIT_SCRATCH && (rc = init_model(t, err)) != TA_OK) return rc;
    int want_samples = c->train.sample_every > 0 && c->train.sample_prompts.n > 0;
    if (t->tokenizer_path[0] && (c->data.format != CFG_DATA_TOKENS || want_samples))
        if ((rc = tokenizer_load(&t->tok, t->tokenizer_path, err)) != TA_OK) return rc;
    if (want_samples && !t->tok)
        return ta_err(err, TA_EINPUT,
                      "train.sample_every needs a tokenizer: set tokenizer.model (or start from a "
                      "checkpoint that carries tokenizer.model)");
    if ((rc = open_data(t, err)) != TA_OK) return rc;
    if (c->model.init == CFG_INIT_SCRATCH && (rc = init_model(t, err)) != TA_OK) return rc;
    if ((rc = check_vocab(t, err)) != TA_OK) return rc;
    if (t->train.n == 0) return ta_err(err, TA_EINPUT, "%s: no training examples", c->data.train);
    if ((rc = gpt2_set_compute(&t->model, c->model.backend, c->model.precision, err)) != TA_OK)
        return rc;

    t->K = c->train.grad_accum;
    t->rows = c->train.batch_size * t->train.rows_per_example;
    t->micro = ta_calloc(sizeof(Batch) * (size_t)t->K, "micro-batches");
    for (int k = 0; k < t->K; k++) batch_alloc(&t->micro[k], t->rows, t->T);
    batch_alloc(&t->evalb, t->rows, t->T);
    t->ref_logp = ta_calloc(sizeof(float) * (size_t)t->rows, "reference log-probs");
    t->perm = ta_malloc(sizeof(uint32_t) * t->train.n, "example order");
    t->perm_epoch = -1;
    gpt2_alloc_acts(&t->model, t->rows, t->T);
    init_optim(t);

    t->need_ref = objective_needs_reference(&c->objective);
    if (t->need_ref) {
        ReferenceSetup rs = {.cfg = &c->objective.reference, .policy = &t->model,
                             .train = t->train.ds, .val = t->ds_val,
                             .data_path = c->data.train, .val_path = c->data.val,
                             .max_rows = t->rows, .max_T = t->T};
        if ((rc = reference_init(&t->ref, &rs, err)) != TA_OK) return rc;
    }

    memset(&t->st, 0, sizeof t->st);
    t->st.best_val = INFINITY;
    t->st.best_step = -1;
    ta_rng_seed(&t->st.rng, (uint64_t)c->run.seed ^ 0x5EEDu);
    if (t->opt.resume && (rc = resume_from_checkpoint(t, err)) != TA_OK) return rc;
    if (t->need_ref && !reference_drifts(&t->ref)) {
        /* a fixed reference is rebuilt from model.path / reference.path on every start:
         * make sure a resume gets the same weights (a run directory's `latest` may move) */
        if (t->opt.resume && t->st.ref_crc && t->st.ref_crc != t->ref.init_crc && !t->opt.force)
            return ta_err(err, TA_EINPUT,
                          "refusing to resume: the reference model built from the config "
                          "(objective.reference.path or model.path: \"%s\") is not the one this "
                          "run started with (weights CRC32 %08x, checkpoint says %08x); point the "
                          "config at the original checkpoint directory (or pass --force)",
                          c->objective.reference.path[0] ? c->objective.reference.path
                                                         : c->model.path,
                          t->ref.init_crc, t->st.ref_crc);
        t->st.ref_crc = t->ref.init_crc;
    }
    char mem[512];
    gpt2_memory_report(&t->model, mem, sizeof mem);
    char info[512], how[160];
    ta_runtime_info(info, sizeof info);
    backend_describe(t->model.be, how, sizeof how);
    fprintf(t->info, "%s\n%s\nmatmuls: %s\nobjective: %s | %d example(s) x %d accumulation = %d rows of T=%d per step\n",
           mem, info, how, config_choice_name("objective.type", c->objective.type),
           c->train.batch_size, t->K, t->rows * t->K, t->T);
    fflush(t->info);
    return TA_OK;
}

/* The objective's present metrics as MetricKV, "loss" first; skip_loss leaves it out. */
static int metrics_kv(const ObjectiveMetrics *om, MetricKV *kv, int cap, int skip_loss) {
    int n = 0;
    for (int i = skip_loss ? 1 : 0; i < OBJ_METRIC_COUNT && n < cap; i++)
        if (om->m[i].present) kv[n++] = (MetricKV){om->m[i].name, om->m[i].value};
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
    char **texts = ta_calloc(sizeof(char *) * (size_t)n, "samples");
    int rc = sample_texts(&t->model, t->tok, (const char *const *)tc->sample_prompts.items, n,
                          &so, texts, err);
    if (rc == TA_OK) {
        size_t cap = 1024;
        for (int i = 0; i < n; i++)
            cap += 2 * (strlen(tc->sample_prompts.items[i]) + strlen(texts[i])) * 3 + 64;
        char *json = ta_calloc(cap, "sample json");
        strcat(json, "\"samples\": [");
        for (int i = 0; i < n; i++) {
            fprintf(stderr, "sample step %ld | %s%s\n", t->st.step, tc->sample_prompts.items[i], texts[i]);
            strcat(json, i ? ", {\"prompt\": " : "{\"prompt\": ");
            log_json_string(json, cap, tc->sample_prompts.items[i]);
            strcat(json, ", \"text\": ");
            log_json_string(json, cap, texts[i]);
            strcat(json, "}");
        }
        strcat(json, "]");
        log_metrics(&t->log, "sample", t->st.step, NULL, 0, json);
        free(json);
    }
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
    return rc;
}

static int train_loop(Trainer *t, TaError *err) {
    const Config *c = &t->cfg;
    const long max_steps = c->train.max_steps;
    uint32_t *ids = ta_malloc(sizeof(uint32_t) * (size_t)c->train.batch_size, "ids");
    int rc = TA_OK, status = 0;
    double t_last = ta_now();
    long step_last = t->st.step;
    uint64_t tokens_last = t->st.tokens_seen;
    double step_time_avg = 0;
    /* a resumed run starts on a step whose checkpoint already exists */
    long saved_at_step = t->opt.resume ? t->st.step : -1;
    if (t->opt.stop_after >= 0 && t->st.step >= t->opt.stop_after) {
        fprintf(stderr, "already at step %ld (--stop-after %ld): nothing to do\n", t->st.step,
                t->opt.stop_after);
        free(ids);
        return 0;
    }
    char dir[4096];

    while (t->st.step < max_steps) {
        int sig = train_signal_pending();
        if (sig) {
            fprintf(stderr, "\n%s received: saving a checkpoint at step %ld\n",
                    sig == SIGINT ? "SIGINT" : "SIGTERM", t->st.step);
            if (saved_at_step != t->st.step && (rc = save(t, 0, NULL, 0, err)) != TA_OK) break;
            status = 128 + sig;
            break;
        }
        double t0 = ta_now();
        /* 1. the K micro-batches of this step and the normalisers over all of them */
        ObjectiveNorm norm = {0};
        ObjectiveStats stats = {0};
        for (int k = 0; k < t->K && rc == TA_OK; k++) {
            next_ids(t, ids, c->train.batch_size);
            source_fill(&t->train, ids, c->train.batch_size, &t->micro[k]);
            rc = objective_norm_add(&norm, &c->objective, &t->micro[k], err);
        }
        if (rc != TA_OK) break;
        /* 2. forward/backward, gradients accumulate */
        gpt2_zero_grad(&t->model);
        uint64_t step_tokens = 0;
        int nonfinite = 0;
        for (int k = 0; k < t->K && rc == TA_OK && !nonfinite; k++) {
            const float *ref = NULL;
            if (t->need_ref) {
                rc = reference_logps(&t->ref, t->train.ds, &t->micro[k], t->ref_logp, err);
                ref = t->ref_logp;
            }
            if (rc == TA_OK) rc = run_batch(t, &t->micro[k], ref, &norm, &stats, 1, err);
            if (rc == TA_ERUNTIME) { /* non-finite log-probs: a bad step, not a crash */
                fprintf(stderr, "warning: %s\n", err->msg);
                nonfinite = 1;
                rc = TA_OK;
            }
            step_tokens += (uint64_t)t->micro[k].B * (uint64_t)t->micro[k].T;
        }
        if (rc != TA_OK) break;
        /* (a data-parallel gradient all-reduce belongs exactly here) */
        ObjectiveMetrics om;
        objective_stats_finish(&c->objective, &stats, &om);
        double loss = nonfinite ? NAN : om.m[OBJ_METRIC_LOSS].value;
        double gnorm = nonfinite ? NAN : grad_global_norm(t->model.grads_memory, t->model.num_params);
        double lr = lr_at_step(&t->optim.cfg, t->st.step);
        if (!isfinite(loss) || !isfinite(gnorm)) {
            t->st.bad_steps++;
            fprintf(stderr, "warning: step %ld: non-finite %s (%g, grad norm %g): update skipped (%d in a row, limit %d)\n",
                    t->st.step + 1, isfinite(loss) ? "gradient" : "loss", loss, gnorm,
                    t->st.bad_steps, c->train.max_bad_steps);
            if (t->st.bad_steps >= c->train.max_bad_steps) {
                rc = ta_err(err, TA_ERUNTIME,
                            "stopping: %d consecutive non-finite steps (train.max_bad_steps); the "
                            "last good checkpoint is untouched (try a lower optim.lr)",
                            t->st.bad_steps);
                break;
            }
        } else {
            t->st.bad_steps = 0;
            grad_clip_scale(t->model.grads_memory, t->model.num_params, gnorm, c->optim.grad_clip);
            /* a bf16 model's bf16 weights are refreshed in the same pass, once per step */
            adamw_update_bf16(&t->optim, t->model.params_memory, t->model.grads_memory, lr,
                              t->model.params_bf16);
        }
        t->st.step++;
        t->st.tokens_seen += step_tokens;
        if (t->need_ref) reference_after_step(&t->ref, &t->model, t->st.step, &t->st.ref_syncs);
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
            kv[n++] = (MetricKV){"epoch", (double)t->st.cursor.epoch +
                                              (double)t->st.cursor.pos / (double)t->train.n};
            kv[n++] = (MetricKV){"tokens", (double)t->st.tokens_seen};
            int n_obj = metrics_kv(&om, kv + n, 40, 1);
            n += n_obj;
            kv[n++] = (MetricKV){"tok_per_s", tps};
            kv[n++] = (MetricKV){"elapsed_s", now - t->log.t_start};
            log_metrics(&t->log, "train", t->st.step, kv, n, NULL);
            log_progress(&t->log, t->st.step, max_steps, loss, lr, gnorm, tps, eta,
                         kv + 5, n_obj < 3 ? n_obj : 3);
            t_last = now;
            tokens_last = t->st.tokens_seen;
            step_last = t->st.step;
        }
        /* 4. eval, early stopping, keep-best */
        int stop_early = 0, is_best = 0;
        if (t->have_val && c->train.eval_every > 0 &&
            (t->st.step % c->train.eval_every == 0 || t->st.step == max_steps)) {
            ObjectiveMetrics ev;
            if ((rc = evaluate(t, &ev, err)) != TA_OK) break;
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
            fprintf(stderr, "eval step %ld: val loss %.4f (best %.4f at step %ld)\n", t->st.step,
                    vloss, t->st.best_val, t->st.best_step);
            if (c->train.patience > 0 && t->st.evals_since_best >= c->train.patience) {
                fprintf(stderr, "early stopping: no improvement > %g in %d evals\n",
                        c->train.min_delta, c->train.patience);
                stop_early = 1;
            }
        }
        if (t->tok && c->train.sample_every > 0 && c->train.sample_prompts.n > 0 &&
            t->st.step % c->train.sample_every == 0 && (rc = sample_during_training(t, err)) != TA_OK)
            break;
        /* 5. checkpoint */
        int stop_now = stop_early || (t->opt.stop_after >= 0 && t->st.step >= t->opt.stop_after);
        int due = (c->train.save_every > 0 && t->st.step % c->train.save_every == 0) ||
                  t->st.step == max_steps || stop_now || (is_best && c->train.keep_best);
        if (due) {
            if ((rc = save(t, is_best && c->train.keep_best, dir, sizeof dir, err)) != TA_OK) break;
            saved_at_step = t->st.step;
        }
        if (stop_now) {
            if (!stop_early)
                fprintf(stderr, "stopped after step %ld (--stop-after); resume with: tinyalign resume %s\n",
                        t->st.step, c->run.out_dir);
            break;
        }
    }
    (void)step_last;
    free(ids);
    if (rc != TA_OK) return rc == TA_EINPUT ? 2 : 1;
    return status;
}

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
    if (rc == TA_OK) rc = setup(&t, err);
    /* only a run that set up cleanly touches its directory */
    if (rc == TA_OK) rc = ta_mkdirs(t.cfg.run.out_dir, err);
    if (rc == TA_OK) {
        char p[4096];
        ta_pathf(p, sizeof p, "%s/config.json", t.cfg.run.out_dir);
        rc = ta_write_file_atomic(p, t.config_json, strlen(t.config_json), err);
    }
    if (rc == TA_OK)
        rc = log_open(&t.log, t.cfg.run.out_dir, t.opt.resume ? t.st.step : -1, err);
    if (rc == TA_OK && !t.opt.resume) {
        /* what the run trains on, once, as step 0 */
        MetricKV kv[4];
        int n = 0;
        kv[n++] = (MetricKV){"train_examples", (double)t.train.n};
        kv[n++] = (MetricKV){"val_examples", t.have_val ? (double)t.val.n : 0.0};
        if (t.ds_train)
            kv[n++] = (MetricKV){"truncated", (double)dataset_num_truncated(t.ds_train)};
        kv[n++] = (MetricKV){"params", (double)t.model.num_params};
        log_metrics(&t.log, "data", 0, kv, n, NULL);
    }
    int status;
    if (rc != TA_OK) status = rc == TA_EINPUT ? 2 : 1;
    else status = train_loop(&t, err);
    if (status == 0 && t.st.step >= t.cfg.train.max_steps)
        fprintf(stderr, "done: %ld steps, %llu tokens, checkpoints in %s/checkpoints\n", t.st.step,
                (unsigned long long)t.st.tokens_seen, t.cfg.run.out_dir);
    trainer_free(&t);
    return status;
}

int train_eval(const Config *cfg, const char *checkpoint, int max_batches, char **json_out,
               TaError *err) {
    Trainer t;
    memset(&t, 0, sizeof t);
    config_copy(&t.cfg, cfg);
    t.opt = (TrainOptions){.stop_after = -1, .quiet = 1};
    t.info = stderr;
    if (max_batches > 0) t.cfg.train.eval_batches = max_batches;
    *json_out = NULL;
    int rc = setup(&t, err);
    if (rc == TA_OK && !t.have_val) {
        /* no validation data: evaluate the training file itself */
        t.val = t.train;
        t.have_val = 1;
    }
    if (rc == TA_OK && checkpoint && *checkpoint) {
        /* the config's model (and so its reference) stays; the policy becomes checkpoint */
        char dir[4096];
        rc = checkpoint_resolve(checkpoint, dir, sizeof dir, err);
        if (rc == TA_OK) {
            char p[4200];
            ta_pathf(p, sizeof p, "%s/model.safetensors", dir);
            rc = model_load_safetensors(&t.model, p, err);
        }
    }
    ObjectiveMetrics m;
    if (rc == TA_OK) rc = evaluate(&t, &m, err);
    if (rc == TA_OK) {
        char *buf = ta_malloc(4096, "eval json");
        int n = snprintf(buf, 4096, "{\"examples\": %zu",
                         t.val.n < (size_t)t.cfg.train.eval_batches * t.cfg.train.batch_size
                             ? t.val.n : (size_t)t.cfg.train.eval_batches * t.cfg.train.batch_size);
        for (int i = 0; i < OBJ_METRIC_COUNT; i++)
            if (m.m[i].present)
                n += snprintf(buf + n, 4096 - (size_t)n, ", \"%s\": %.9g", m.m[i].name, m.m[i].value);
        snprintf(buf + n, 4096 - (size_t)n, "}");
        *json_out = buf;
    }
    trainer_free(&t);
    return rc;
}
