/* train_setup.c — building a training run (a Trainer) from a resolved Config.
 *
 * Implements: the tokenizer, the data (token shards or JSONL datasets, one file or a
 * mixture, the held-out validation split) with their reports (pair and SFT weights, NADO
 * labels), the model from model.init (scratch, checkpoint or Hugging Face dir, a reward
 * model's score head), the vocabulary checks, AdamW, the step, the auxiliary models,
 * resume from a checkpoint (config, data and auxiliary-model checks), train.eval_generate;
 * trainer_free.
 * Does not implement: the data order (train_order.c), the schedule (train_loop.c), the ranks'
 * agreements (train_dist.c), file formats (checkpoint, data modules).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tinyalign/model_io.h"
#include "train_impl.h"

/* The training data's name in messages: its path, or "a.jsonl + b.jsonl + ...". */
static void data_name(const Config *c, char *buf, size_t cap) {
    buf[0] = '\0';
    for (int i = 0; i < c->data.train.n; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, cap - len, "%s%s", i ? " + " : "", c->data.train.paths[i]);
    }
}

/* ---- setup ------------------------------------------------------------------------- */

static int path_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* DDPO / DORPO read the pairs' "weight": say how many weigh 0, and warn when the weights
 * cannot favour any pair (no field, or all equal), i.e. the run is DPO / ORPO. */
static void report_pair_weights(const Trainer *t) {
    const Config *c = &t->cfg;
    const Dataset *d = t->ds_train;
    char name[1024];
    data_name(c, name, sizeof name);
    int ddpo = c->objective.type == CFG_OBJ_DDPO;
    const char *plain = ddpo ? "dpo" : "orpo";
    PairWeightStats ws = {0};
    for (size_t i = 0; i < dataset_size(d); i++) pair_weights_add(&ws, dataset_weight(d, i));
    char line[256];
    pair_weights_describe(&ws, line, sizeof line);
    size_t given = dataset_num_weighted(d);
    fprintf(t->info, "data: %s: %s", name, line);
    if (given && given < ws.pairs)
        fprintf(t->info, " (%zu %s without a \"weight\" field: weight 1)", ws.pairs - given,
                ws.pairs - given == 1 ? "pair" : "pairs");
    fprintf(t->info, "\n");
    const char *type = config_choice_name("objective.type", c->objective.type);
    if (given == 0)
        fprintf(stderr, "warning: %s: no pair has a \"weight\" field, so every pair weighs 1: "
                        "this %s run equals %s (make weighted pairs with `tinyalign curate "
                        "pairs`)\n", name, type, plain);
    else if (ws.min == ws.max && ws.min == 1.0)
        fprintf(stderr, "warning: %s: every pair has weight 1: this %s run equals %s\n",
                name, type, plain);
    else if (ws.min == ws.max)
        fprintf(stderr, "warning: %s: every pair has weight %g: no pair is favoured, this %s "
                        "run equals %s with %s scaled by %g\n", name, ws.min, type, plain,
                ddpo ? "the loss" : "the NLL and the log-odds ratio", ws.min);
}

/* nado reads each response's "score" as its sequence label C: every one must be 0 or 1
 * (an oracle's verdict; FILE:LINE responses[j] otherwise). One summary line; a warning when
 * every label is the same (the BCE then has one target and the guide learns nothing about
 * the constraint). */
static int check_nado_labels(const Trainer *t, const Dataset *d, TaError *err) {
    size_t n = 0, pos = 0;
    for (size_t i = 0; i < dataset_num_rows(d); i++) {
        DataRow row;
        dataset_row(d, i, &row);
        for (int j = 0; j < row.n_responses; j++) {
            DataResponse r;
            dataset_response(d, row.first + (size_t)j, &r);
            if (!r.has_score)
                return ta_err(err, TA_EINPUT,
                              "%s:%ld: responses[%d] has no \"score\": objective nado needs a 0/1 "
                              "label per response (label the samples with `tinyalign score "
                              "--scorer ORACLE`)", dataset_path(d), row.line, j);
            if (r.score != 0.0 && r.score != 1.0)
                return ta_err(err, TA_EINPUT,
                              "%s:%ld: responses[%d].score is %.17g: objective nado needs labels 0 or "
                              "1 (the oracle must answer 0/1)", dataset_path(d), row.line, j, r.score);
            n++;
            pos += r.score == 1.0;
        }
    }
    fprintf(t->info, "data: %s: %zu labelled responses, %zu satisfy the constraint (%.1f%%)\n",
            dataset_path(d), n, pos, n ? 100.0 * (double)pos / (double)n : 0.0);
    if (n > 0 && (pos == 0 || pos == n))
        fprintf(stderr, "warning: %s: every label is %d: the NADO head learns nothing about the "
                        "constraint (sample more, or from a model that sometimes %s it)\n",
                dataset_path(d), pos ? 1 : 0, pos ? "violates" : "satisfies");
    return TA_OK;
}

/* SFT rows with a "weight": say how many weigh 0 (they contribute nothing) and the range. */
static void report_sft_weights(Trainer *t) {
    const Dataset *d = t->ds_train;
    size_t given = dataset_num_weighted(d);
    if (!given) return;
    PairWeightStats ws = {0};
    for (size_t i = 0; i < dataset_size(d); i++) pair_weights_add(&ws, dataset_weight(d, i));
    t->n_zero_weight = ws.zero;
    fprintf(t->info, "data: \"weight\" on %zu of %zu examples (others 1), weights in [%g, %g]; "
            "%zu weigh 0 and contribute nothing\n", given, ws.pairs, ws.min, ws.max, ws.zero);
}

static int open_data(Trainer *t, TaError *err) {
    const Config *c = &t->cfg;
    int rc;
    if (c->data.format == CFG_DATA_TOKENS) {
        t->T = c->data.max_len;
        rc = token_data_open(&t->td_train, c->data.train.paths[0], t->T,
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
               c->data.train.paths[0], (unsigned long long)token_data_num_tokens(t->td_train), t->train.n,
               t->T + 1, t->have_val ? ", " : " (no validation: set data.val or data.val_fraction), ",
               t->have_val ? t->val.n : (size_t)0);
        t->n_mix = 1;
        t->mix[0] = (MixSource){.first = 0, .n = t->train.n, .ratio = 1.0,
                                .seed = (uint64_t)c->run.seed, .perm_epoch = -1,
                                .perm = ta_malloc(sizeof(uint32_t) * (t->train.n + 1), "example order")};
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
    const int n_src = c->data.train.n;
    rc = dataset_load_files(&t->ds_train, (const char *const *)c->data.train.paths, n_src, kind,
                            t->tok, &dopt, err);
    if (rc != TA_OK) return rc;
    /* a reward model reads each row's last token as an input too (ROWS_SCORE) */
    t->T = objective_uses_score_head(&c->objective) ? c->data.max_len : c->data.max_len - 1;
    t->train = (Source){.ds = t->ds_train, .n = dataset_size(t->ds_train),
                        .rows_per_example = dataset_rows_per_example(t->ds_train)};
    fprintf(t->info, "data: %s: %zu examples, %zu truncated (max_len %d, max_prompt_len %d)\n",
            dataset_path(t->ds_train), t->train.n, dataset_num_truncated(t->ds_train),
            c->data.max_len, c->data.max_prompt_len);
    if (c->objective.type == CFG_OBJ_NADO && (rc = check_nado_labels(t, t->ds_train, err)) != TA_OK)
        return rc;
    if (c->data.val[0]) {
        if ((rc = dataset_load(&t->ds_val, c->data.val, kind, t->tok, &dopt, err)) != TA_OK) return rc;
        if (c->objective.type == CFG_OBJ_NADO && (rc = check_nado_labels(t, t->ds_val, err)) != TA_OK)
            return rc;
        t->val = (Source){.ds = t->ds_val, .n = dataset_size(t->ds_val),
                          .rows_per_example = dataset_rows_per_example(t->ds_val)};
        t->have_val = 1;
    }
    /* the training files: with data.val_fraction each holds out its last examples (in file
     * order), which together are the validation set */
    t->n_mix = n_src;
    t->val_ids = ta_malloc(sizeof(uint32_t) * (t->train.n + 1), "validation ids");
    size_t n_train = 0, n_val = 0;
    double wsum = 0;
    for (int k = 0; k < n_src; k++) wsum += c->data.train.weights[k];
    for (int k = 0; k < n_src; k++) {
        const char *path = dataset_source_path(t->ds_train, k);
        size_t first = dataset_source_first(t->ds_train, k), n = dataset_source_size(t->ds_train, k);
        size_t nval = 0;
        if (!c->data.val[0] && c->data.val_fraction > 0) {
            nval = (size_t)((double)n * c->data.val_fraction);
            if (nval == 0) nval = 1;
            if (nval >= n)
                return ta_err(err, TA_EINPUT, "%s: too few examples (%zu) for data.val_fraction %g",
                              path, n, c->data.val_fraction);
            for (size_t i = 0; i < nval; i++) t->val_ids[n_val++] = (uint32_t)(first + n - nval + i);
        }
        MixSource *m = &t->mix[k];
        m->first = first;
        m->n = n - nval;
        m->ratio = c->data.train.weights[k];
        m->seed = (uint64_t)c->run.seed + (uint64_t)k * 0x632BE59BD9B4E019ull;
        m->perm = ta_malloc(sizeof(uint32_t) * m->n, "example order");
        m->perm_epoch = -1;
        n_train += m->n;
        /* "loss" (checked against the objective by the config): "kl" rows feed the
         * attribute KL only (as prefixes: NLL weight 0), "nll" rows the NLL only */
        const CfgSourceLoss sl = c->data.train.loss ? c->data.train.loss[k] : CFG_SRC_LOSS_ALL;
        dataset_set_source_feeds(t->ds_train, k, sl == CFG_SRC_LOSS_KL    ? ROW_FEEDS_KL
                                                 : sl == CFG_SRC_LOSS_NLL ? ROW_FEEDS_NLL
                                                                          : ROW_FEEDS_ALL);
        if (n_src > 1)
            fprintf(t->info, "data:   source %d: %s: %zu examples%s, weight %g (%.1f%% of the "
                    "examples drawn)%s\n", k, path, m->n, nval ? " for training" : "", m->ratio,
                    100.0 * m->ratio / wsum,
                    sl == CFG_SRC_LOSS_KL    ? ", rows feed the attribute KL term only"
                    : sl == CFG_SRC_LOSS_NLL ? ", rows feed the NLL term only"
                                             : "");
    }
    t->train.n = n_train;
    if (n_val) {
        t->val = t->train;
        t->val.n = n_val;
        t->have_val = 2; /* validation ids: val_ids */
    }
    if (t->have_val == 1)
        fprintf(t->info, "data: %s: %zu validation examples, %zu truncated\n", c->data.val, t->val.n,
                dataset_num_truncated(t->ds_val));
    else if (t->have_val == 2)
        fprintf(t->info, "data: %zu validation examples held out (data.val_fraction %g%s)\n", n_val,
                c->data.val_fraction, n_src > 1 ? " of every source" : "");
    if (kind == DS_PREFERENCE &&
        (c->objective.type == CFG_OBJ_DDPO || c->objective.type == CFG_OBJ_DORPO))
        report_pair_weights(t);
    if (kind == DS_SFT) report_sft_weights(t);
    if (kind == DS_PREFERENCE && objective_uses_score_head(&c->objective) &&
        dataset_num_margins(t->ds_train))
        fprintf(t->info, "data: %zu pairs carry a \"margin\" (r_chosen - r_rejected is pushed "
                "above it)\n", dataset_num_margins(t->ds_train));
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
        mc.score_head = objective_uses_score_head(&c->objective);
        if ((rc = gpt2_config_check(&mc, err)) != TA_OK) return rc;
        gpt2_init(&t->model, &mc, 1);
        gpt2_init_weights(&t->model, (uint64_t)c->run.seed);
    } else {
        char dir[4096];
        if ((rc = checkpoint_resolve(c->model.path, dir, sizeof dir, err)) != TA_OK) return rc;
        if ((rc = model_load_dir(&t->model, dir, 1, err)) != TA_OK) return rc;
        fprintf(t->info, "model: loaded %s\n", dir);
        /* a reward model trains the trunk plus a scalar head: a language model gets a fresh
         * head (N(0, 0.02), as Hugging Face initialises GPT2ForSequenceClassification's);
         * the other objectives train the LM head, so a reward model's head is set aside */
        int want = objective_uses_score_head(&c->objective);
        if (want != t->model.config.score_head) {
            gpt2_set_score_head(&t->model, want, (uint64_t)c->run.seed);
            fprintf(t->info, want ? "model: added a fresh reward head score.weight (1, %d), "
                                    "N(0, 0.02)\n"
                                  : "model: dropped the reward head score.weight (1, %d): "
                                    "objective.type trains the language model\n",
                    t->model.config.d_model);
        }
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
                      t->cfg.data.train.paths[0], token_data_vocab_size(t->td_train), mc->vocab_size);
    if (t->td_val && token_data_vocab_size(t->td_val) > mc->vocab_size)
        return ta_err(err, TA_EINPUT, "%s: shard vocabulary %d exceeds the model's vocab_size %d",
                      t->cfg.data.val, token_data_vocab_size(t->td_val), mc->vocab_size);
    if (t->T > mc->max_seq_len)
        return ta_err(err, TA_EINPUT,
                      "data.max_len %d needs %d positions but the model's max_seq_len is %d",
                      t->cfg.data.max_len, t->T, mc->max_seq_len);
    return TA_OK;
}

/* ---- resume -------------------------------------------------------------------------- */

static int resume_from_checkpoint(Trainer *t, TaError *err) {
    char dir[4096];
    int rc = checkpoint_resolve(t->opt.resume_from ? t->opt.resume_from : t->cfg.run.out_dir,
                                dir, sizeof dir, err);
    if (rc != TA_OK) return rc;
    char *saved_json = NULL, where[4200];
    int verified = 0, same_batches = 1;
    ta_pathf(where, sizeof where, "%s/state.json", dir);
    if ((rc = checkpoint_load_state(dir, &t->st, &saved_json, &verified, err)) != TA_OK) return rc;
    if (saved_json) {
        Config saved;
        rc = config_load_string(&saved, saved_json, where, err);
        free(saved_json);
        if (rc != TA_OK) return rc;
        char diff[4096];
        int nd = config_diff_math(&saved, &t->cfg, diff, sizeof diff);
        same_batches = saved.train.batch_size == t->cfg.train.batch_size &&
                       saved.train.grad_accum == t->cfg.train.grad_accum;
        config_free(&saved);
        if (nd > 0 && !t->opt.force)
            return ta_err(err, TA_EINPUT,
                          "refusing to resume %s: %d config key(s) that change the training math "
                          "differ from the checkpoint:\n%s\n(pass --force to resume anyway)",
                          dir, nd, diff);
        if (nd > 0) fprintf(stderr, "warning: resuming with changed config (--force):\n%s\n", diff);
    }
    /* the state against this run: its data and config (checkpoint_check_state) */
    const uint64_t n = t->train.n, had = t->st.train_examples;
    char name[1024];
    data_name(&t->cfg, name, sizeof name);
    if (had && had != n) {
        if (!t->opt.force)
            return ta_err(err, TA_EINPUT,
                          "refusing to resume %s: the run was trained on %llu %s of %s, which "
                          "now has %llu: the data order would not continue (pass --force to "
                          "resume anyway)", dir, (unsigned long long)had,
                          t->train.td ? "windows" : "examples", name, (unsigned long long)n);
        fprintf(stderr, "warning: resuming on other data (--force): %llu training examples, "
                "the run had %llu\n", (unsigned long long)n, (unsigned long long)had);
    }
    const int same_files = t->st.n_more_cursors == t->n_mix - 1;
    if (!same_files) { /* only with --force: data.train changed */
        fprintf(stderr, "warning: %s holds data cursors for %d file(s), the config has %d: the "
                "files beyond the first start from their beginning\n", dir,
                t->st.n_more_cursors + 1, t->n_mix);
        for (int s = t->st.n_more_cursors; s < t->n_mix - 1; s++)
            t->st.more_cursors[s] = (DataCursor){0, 0};
        t->st.n_more_cursors = t->n_mix - 1;
    }
    /* a mixture's first cursor walks its first file only: its cursors are checked here */
    const int same_order = had == n && same_batches && same_files;
    const uint64_t per_step = (uint64_t)t->cfg.train.batch_size * (uint64_t)t->K;
    StateLimits lim = {.max_steps = t->cfg.train.max_steps, .examples = t->n_mix > 1 ? 0 : n,
                       .per_step = per_step,
                       .max_tokens_per_step = (uint64_t)t->rows * (uint64_t)t->T * (uint64_t)t->K,
                       .same_order = same_order};
    if ((rc = checkpoint_check_state(&t->st, &lim, where, err)) != TA_OK) return rc;
    if (t->n_mix > 1 && same_order &&
        (rc = trainer_check_mix_cursors(t, (uint64_t)t->st.step * per_step, where, err)) != TA_OK)
        return rc;
    if (!verified)
        fprintf(stderr, "warning: %s was written by an earlier build, without state.sum: its "
                "values are range-checked, but edits cannot be detected\n", where);
    GPT2 *refm = aux_models_drifting(&t->aux);
    if ((rc = checkpoint_load_weights(dir, &t->model, &t->optim, refm, err)) != TA_OK) return rc;
    ta_pathf(t->last_ckpt, sizeof t->last_ckpt, "%s", dir);
    fprintf(stderr, "resumed from %s at step %ld (epoch %lld, example %lld)\n", dir, t->st.step,
            (long long)t->st.cursor.epoch, (long long)t->st.cursor.pos);
    return TA_OK;
}

/* ---- the run ------------------------------------------------------------------------ */

void trainer_free(Trainer *t) {
    score_eval_close(t->egen);
    train_step_free(&t->step);
    free(t->ids);
    for (int k = 0; k < t->n_mix; k++) free(t->mix[k].perm);
    free(t->val_ids);
    aux_models_free(&t->aux);
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

int trainer_setup(Trainer *t, TaError *err) {
    Config *c = &t->cfg;
    int rc;
    const int parts = dist_size(t->opt.dist);
    if (c->train.batch_size % parts != 0)
        return ta_err(err, TA_EINPUT,
                      "train.batch_size %d cannot be split among %d ranks: it is the global batch "
                      "(examples per micro-batch; pairs for preference data) and every rank takes "
                      "the same share, so it must be a multiple of the number of ranks",
                      c->train.batch_size, parts);
    ta_set_threads(c->run.threads);
    t->config_json = config_to_json(c);
    if (!t->opt.quiet) fprintf(t->info, "resolved config:\n%s\n", t->config_json);
    if (c->tokenizer.type == CFG_TOK_SENTENCEPIECE && c->tokenizer.model[0])
        ta_pathf(t->tokenizer_path, sizeof t->tokenizer_path, "%s", c->tokenizer.model);
    /* a loaded model may bring its tokenizer; a scratch model takes its vocabulary from
     * the tokenizer or the shards, so it is built after the data */
    if (c->model.init != CFG_INIT_SCRATCH && (rc = init_model(t, err)) != TA_OK) return rc;
    int want_samples = (c->train.sample_every > 0 && c->train.sample_prompts.n > 0) ||
                       c->train.eval_generate.scorer[0];
    if (t->tokenizer_path[0] && (c->data.format != CFG_DATA_TOKENS || want_samples))
        if ((rc = tokenizer_load(&t->tok, t->tokenizer_path, err)) != TA_OK) return rc;
    if (want_samples && !t->tok)
        return ta_err(err, TA_EINPUT,
                      "%s needs a tokenizer: set tokenizer.model (or start from a checkpoint that "
                      "carries tokenizer.model)", c->train.eval_generate.scorer[0]
                                                      ? "train.eval_generate" : "train.sample_every");
    if ((rc = open_data(t, err)) != TA_OK) return rc;
    if (c->model.init == CFG_INIT_SCRATCH && (rc = init_model(t, err)) != TA_OK) return rc;
    t->model.hidden_only = objective_uses_score_head(&c->objective); /* no LM head to run */
    if ((rc = check_vocab(t, err)) != TA_OK) return rc;
    if (t->train.n == 0)
        return ta_err(err, TA_EINPUT, "%s: no training examples", c->data.train.paths[0]);
    if ((rc = gpt2_set_compute(&t->model, c->model.backend, c->model.precision, err)) != TA_OK)
        return rc;

    t->K = c->train.grad_accum;
    t->rows = c->train.batch_size * t->train.rows_per_example;
    t->ids = ta_malloc(sizeof(uint32_t) * (size_t)c->train.batch_size, "ids");
    AdamWConfig oc;
    config_to_adamw(c, &oc);
    train_optim_init(&t->optim, &oc, &t->model);
    StepSetup ss = {.model = &t->model, .optim = &t->optim, .objective = &c->objective,
                    .aux = &t->aux, .K = t->K, .rows = t->rows, .T = t->T};
    if (parts > 1) { /* data parallel: this rank's part of each micro-batch, summed */
        ss.allreduce = trainer_step_allreduce;
        ss.allreduce_ctx = t->opt.dist;
        ss.part = dist_rank(t->opt.dist);
        ss.parts = parts;
    }
    gpt2_set_lm_chunk(&t->model, c->model.lm_head_chunk);
    train_step_init(&t->step, &ss); /* allocates the policy's activations */

    int n_sets = 0;
    if (t->ds_train) t->sets[n_sets++] = ref_example_set_dataset(t->ds_train, c->data.train.paths[0]);
    if (t->ds_val) t->sets[n_sets++] = ref_example_set_dataset(t->ds_val, c->data.val);
    AuxSetup as = {.cfg = &c->objective, .policy_path = c->model.path, .policy = &t->model,
                   .sets = t->sets, .n_sets = n_sets, .max_T = t->T, .part = ss.part,
                   .parts = ss.parts,
                   .max_rows = dist_part_rows(t->rows, objective_is_pairwise(&c->objective), parts)};
    if ((rc = aux_models_init(&t->aux, &as, err)) != TA_OK) return rc;

    memset(&t->st, 0, sizeof t->st);
    t->st.n_more_cursors = t->n_mix - 1;
    t->st.best_val = INFINITY;
    t->st.best_step = -1;
    ta_rng_seed(&t->st.rng, (uint64_t)c->run.seed ^ 0x5EEDu);
    if (t->opt.resume && (rc = resume_from_checkpoint(t, err)) != TA_OK) return rc;
    t->st.train_examples = t->train.n; /* recorded with the state, checked on resume */
    /* a fixed auxiliary model is rebuilt from the config on every start: make sure a resume
     * gets the same weights (a run directory's `latest` may have moved) */
    AuxIdentity ids[CHECKPOINT_MAX_AUX];
    int n_ids = aux_models_identities(&t->aux, ids, CHECKPOINT_MAX_AUX);
    for (int i = 0; t->opt.resume && !t->opt.force && i < n_ids; i++)
        for (int j = 0; j < t->st.n_aux_crc; j++)
            if (!strcmp(t->st.aux_crc[j].role, ids[i].role) && t->st.aux_crc[j].crc != ids[i].crc)
                return ta_err(err, TA_EINPUT,
                              "refusing to resume: the %s model built from the config (%s: "
                              "\"%s\") is not the one this run started with (weights CRC32 "
                              "%08x, checkpoint says %08x); point the config at the original "
                              "model directory (or pass --force)",
                              ids[i].role, ids[i].key, ids[i].path, ids[i].crc,
                              t->st.aux_crc[j].crc);
    t->st.n_aux_crc = 0;
    for (int i = 0; i < n_ids; i++) {
        AuxCrc *a = &t->st.aux_crc[t->st.n_aux_crc++];
        snprintf(a->role, sizeof a->role, "%s", ids[i].role);
        a->crc = ids[i].crc;
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

/* train.eval_generate: its own prompt file, or the validation data read as prompt rows
 * (data.val, or the held-out tail of data.train). The sampling and scoring live in the score
 * module (score_eval_*). */
int trainer_open_eval_generate(Trainer *t, TaError *err) {
    const Config *c = &t->cfg;
    const CfgEvalGenerate *g = &c->train.eval_generate;
    if (!g->scorer[0]) return TA_OK;
    ScoreEvalConfig ec = {.scorer = g->scorer, .prompts = g->prompts,
                          .max_prompts = g->max_prompts, .n = g->n,
                          .temperature = g->temperature, .greedy = g->greedy,
                          .max_new_tokens = g->max_new_tokens, .template_text = g->template_,
                          .key = "train.eval_generate"};
    if (!g->prompts[0]) { /* a mixture without data.val: the held-out tail of its first file */
        ec.prompts = c->data.val[0] ? c->data.val : c->data.train.paths[0];
        ec.first_row = c->data.val[0] ? 0 : t->n_mix > 1 ? t->mix[0].n : t->train.n;
    }
    int rc = score_eval_open(&t->egen, &ec, t->tok, t->model.config.max_seq_len, err);
    if (rc == TA_OK)
        fprintf(t->info, "eval_generate: every %d steps, prompts from %s, scorer %s\n",
                c->train.eval_every, ec.prompts, g->scorer);
    return rc;
}
