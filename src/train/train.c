/* train.c — a training run around the step (see include/tinyalign/train.h).
 *
 * Implements: run setup from a resolved Config (tokenizer, data, model init from scratch /
 * checkpoint / Hugging Face dir, a reward model's score head, the auxiliary models,
 * AdamW), the data order (one file, or a mixture of files), and the schedule around
 * train_step: logging, eval with early stopping and keep-best, task metrics
 * (train.eval_generate, computed by the score module), sampling, checkpoint cadence,
 * --stop-after, non-finite step limits, signals and resume; under MPI (dist.h) the
 * agreements of the ranks at start, the shared stop, and rank 0 as the writer.
 *
 * The data order. One source: example ids in a seeded permutation per epoch
 * (data_epoch_permutation(seed, epoch)), the cursor {epoch, pos} walking it. A mixture of S
 * files with ratios w_s (data.train as a list): every file keeps its own cursor over its own
 * permutations (file 0 seeded with run.seed, file s with run.seed + s * 0x632BE59BD9B4E019),
 * and the next example comes from the file s that minimises (n_s + 1) / w_s, n_s = the
 * examples drawn from it so far (= epoch_s * N_s + pos_s), ties to the lowest s, files of
 * ratio 0 never: a deterministic interleaving (stride scheduling) in which every prefix of
 * the order holds each file within one example of its share w_s / sum w. The order is a
 * pure function of (run.seed, the cursors): a checkpoint stores the cursors, a resume
 * continues bit-exactly, and data-parallel ranks can each walk it. One file is the S = 1
 * case, identical to the plain order.
 * Does not implement: the step itself (step.c), the loss math (objective module), the
 * frozen models (reference module), file formats (checkpoint, data modules).
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
#include "tinyalign/dist.h"
#include "tinyalign/kernels.h"
#include "tinyalign/log.h"
#include "tinyalign/model.h"
#include "tinyalign/model_io.h"
#include "tinyalign/objective.h"
#include "tinyalign/optim.h"
#include "tinyalign/reference.h"
#include "tinyalign/sample.h"
#include "tinyalign/score.h"
#include "tinyalign/tokenizer.h"

/* Where examples come from: token-shard windows or a JSONL dataset. */
typedef struct {
    TokenData *td; /* windows of split td_split */
    int td_split;
    Dataset *ds;
    size_t n;             /* examples */
    int rows_per_example; /* 1, or 2 for preference pairs */
} Source;

/* One file of the training mixture: its training examples are dataset ids
 * [first, first + n), drawn in its own permutations. */
typedef struct {
    size_t first, n;
    double ratio;        /* the mixing weight */
    uint64_t seed;       /* its shuffling seed */
    uint32_t *perm;      /* (n) the order of epoch perm_epoch */
    int64_t perm_epoch;  /* -1: none yet */
} MixSource;

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
    AuxModels aux;  /* frozen auxiliary models: DPO reference, attribute guide */
    RefExampleSet sets[2]; /* the datasets a cached reference caches (train, val) */
    TrainStep step;
    int K;          /* grad accumulation */
    int rows;       /* rows per micro-batch */
    int T;          /* max sequence length of a batch */
    uint32_t *ids;  /* (batch_size) example ids of one micro-batch */
    MixSource mix[DATA_MAX_SOURCES]; /* the training files (1 for a plain data.train) */
    int n_mix;
    uint32_t *val_ids; /* (val.n) dataset ids of the held-out examples (data.val_fraction) */
    size_t n_zero_weight; /* sft examples of weight 0 */
    ScoreEval *egen; /* train.eval_generate, or NULL */
    TrainState st;
    char last_ckpt[4096]; /* the newest checkpoint this run wrote or resumed from ("" none) */
    Logger log;
    FILE *info; /* where setup reports (stdout for train, stderr for eval) */
    /* this session, for the run summary */
    double t_session;        /* ta_now() when the loop started */
    double wall_before;      /* st.wall_seconds when the loop started */
    long start_step;         /* st.step when the loop started */
    uint64_t start_tokens;   /* st.tokens_seen when the loop started */
    const char *stop_reason; /* why the loop ended (RunSummary.exit_reason) */
    int stop_signal;         /* SIGINT / SIGTERM when a signal ended it */
} Trainer;

static void source_fill(const Source *s, const uint32_t *ids, int n, Batch *b) {
    if (s->td) token_data_fill(s->td, s->td_split, ids, n, b);
    else dataset_fill(s->ds, ids, n, b);
}

/* The cursor of mixture file s in the checkpoint state. */
static DataCursor *cursor_of(Trainer *t, int s) {
    TA_ASSERT(s >= 0 && s < t->n_mix);
    return s == 0 ? &t->st.cursor : &t->st.more_cursors[s - 1];
}

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

/* ---- data order ---------------------------------------------------------------------- */

/* The mixture file the next example comes from: the s minimising (n_s + 1) / w_s over the
 * files with w_s > 0, n_s = examples drawn from s so far, ties to the lowest s (see the top
 * of this file). One file: 0. */
static int mix_pick(const MixSource *mix, int n_mix, const double *drawn) {
    int best = -1;
    double best_key = 0;
    for (int s = 0; s < n_mix; s++) {
        if (!(mix[s].ratio > 0)) continue;
        double key = (drawn[s] + 1.0) / mix[s].ratio;
        if (best < 0 || key < best_key) best = s, best_key = key;
    }
    TA_ASSERT(best >= 0);
    return best;
}

static int next_source(Trainer *t) {
    double drawn[DATA_MAX_SOURCES];
    for (int s = 0; s < t->n_mix; s++) {
        const DataCursor *c = cursor_of(t, s);
        drawn[s] = (double)c->epoch * (double)t->mix[s].n + (double)c->pos;
    }
    return mix_pick(t->mix, t->n_mix, drawn);
}

/* A resumed mixture's cursors against the order: after `used` draws from the start, file s
 * has given d_s examples (a pure function of the ratios), so its cursor must be at epoch
 * (d_s - 1) / N_s, position d_s - epoch * N_s (next_ids wraps lazily, on the next draw),
 * or (0, 0) before its first. TA_EINPUT naming the first cursor that differs. */
static int check_mix_cursors(Trainer *t, uint64_t used, const char *file, TaError *err) {
    double drawn[DATA_MAX_SOURCES] = {0};
    for (uint64_t i = 0; i < used; i++) drawn[mix_pick(t->mix, t->n_mix, drawn)] += 1.0;
    for (int s = 0; s < t->n_mix; s++) {
        const uint64_t d = (uint64_t)drawn[s], N = t->mix[s].n;
        const uint64_t e = d ? (d - 1) / N : 0, pos = d - e * N;
        const DataCursor *c = cursor_of(t, s);
        if ((uint64_t)c->epoch != e || (uint64_t)c->pos != pos)
            return ta_err(err, TA_EINPUT,
                          "%s: train_state.sources[%d] (%s) is at epoch %lld, example %lld, but "
                          "after %llu examples of the mixture that file is at epoch %llu, example "
                          "%llu (edited or damaged checkpoint)", file, s,
                          dataset_source_path(t->ds_train, s), (long long)c->epoch,
                          (long long)c->pos, (unsigned long long)used, (unsigned long long)e,
                          (unsigned long long)pos);
    }
    return TA_OK;
}

/* Next n example ids of the training order, advancing the cursors across epochs. */
static void next_ids(Trainer *t, uint32_t *ids, int n) {
    for (int i = 0; i < n; i++) {
        const int s = t->n_mix > 1 ? next_source(t) : 0;
        MixSource *m = &t->mix[s];
        DataCursor *c = cursor_of(t, s);
        if (c->pos >= (int64_t)m->n) {
            c->epoch++;
            c->pos = 0;
        }
        if (m->perm_epoch != c->epoch) {
            data_epoch_permutation(m->perm, m->n, m->seed, c->epoch, t->cfg.data.shuffle);
            m->perm_epoch = c->epoch;
        }
        ids[i] = (uint32_t)(m->first + m->perm[c->pos++]);
    }
}

/* Training progress in epochs: examples drawn / training examples (one file: the epoch
 * plus the position in it). */
static double epochs_done(Trainer *t) {
    if (t->n_mix <= 1)
        return (double)t->st.cursor.epoch + (double)t->st.cursor.pos / (double)t->train.n;
    double drawn = 0;
    for (int s = 0; s < t->n_mix; s++) {
        const DataCursor *c = cursor_of(t, s);
        drawn += (double)c->epoch * (double)t->mix[s].n + (double)c->pos;
    }
    return drawn / (double)t->train.n;
}

/* StepSource.fill of training: the next batch_size examples of the data order. */
static int fill_train(void *ctx, int k, Batch *b, TaError *err) {
    Trainer *t = ctx;
    (void)k;
    (void)err;
    next_ids(t, t->ids, t->cfg.train.batch_size);
    source_fill(&t->train, t->ids, t->cfg.train.batch_size, b);
    return TA_OK;
}

/* Validation: the first eval_batches batches of the validation set, in file order. */
static size_t eval_examples(const Trainer *t) {
    size_t limit = (size_t)t->cfg.train.eval_batches * t->cfg.train.batch_size;
    return t->val.n < limit ? t->val.n : limit;
}

static int fill_eval(void *ctx, int k, Batch *b, TaError *err) {
    Trainer *t = ctx;
    (void)err;
    const size_t per = (size_t)t->cfg.train.batch_size, total = eval_examples(t);
    size_t i = (size_t)k * per;
    int n = (int)(total - i < per ? total - i : per);
    for (int j = 0; j < n; j++)
        t->ids[j] = t->have_val == 2 ? t->val_ids[i + (size_t)j] : (uint32_t)(i + (size_t)j);
    source_fill(&t->val, t->ids, n, b);
    return TA_OK;
}

static int evaluate(Trainer *t, ObjectiveMetrics *out, TaError *err) {
    StepSource src = {.fill = fill_eval, .ctx = t, .set = t->val.ds};
    size_t per = (size_t)t->cfg.train.batch_size;
    return train_step_eval(&t->step, &src, (int)((eval_examples(t) + per - 1) / per), out, err);
}

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
        (rc = check_mix_cursors(t, (uint64_t)t->st.step * per_step, where, err)) != TA_OK)
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

/* ---- data parallel (dist.h) ------------------------------------------------------------ */

/* The step's hook (StepAllReduce) and the cached reference's sum: dist_sum, rank order. */
static int step_allreduce(void *ctx, StepSyncPoint p, float *grads, size_t n_grads,
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
static int dist_setup(Trainer *t, int rc, TaError *err) {
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
static int dist_agree_status(Trainer *t, int rc, TaError *err) {
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
static int dist_run_dir(Trainer *t, int rc, TaError *err) {
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

/* ---- the run -------------------------------------------------------------------------- */

static void trainer_free(Trainer *t) {
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

static int setup(Trainer *t, TaError *err) {
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
        ss.allreduce = step_allreduce;
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
static int open_eval_generate(Trainer *t, TaError *err) {
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

static int train_loop(Trainer *t, TaError *err) {
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
        StepSource src = {.fill = fill_train, .ctx = t, .set = t->train.ds};
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
            kv[n++] = (MetricKV){"epoch", epochs_done(t)};
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
            (rc = dist_agree_status(t, writer ? eval_generate(t, err) : TA_OK, err)) != TA_OK)
            break;
        if (t->tok && c->train.sample_every > 0 && c->train.sample_prompts.n > 0 &&
            t->st.step % c->train.sample_every == 0 && (rc = sample_during_training(t, err)) != TA_OK)
            break;
        if ((rc = log_check(&t->log, err)) != TA_OK) rc = stop_message(t, "logging step", err);
        if ((rc = dist_agree_status(t, rc, err)) != TA_OK) break; /* rank 0's log */
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
static void run_summary(Trainer *t, int status) {
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
    if (rc == TA_OK) rc = open_eval_generate(&t, err);
    rc = dist_setup(&t, rc, err);
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
    if (agreed) rc = dist_run_dir(&t, rc, err);
    int status;
    if (rc != TA_OK) {
        status = rc == TA_EINPUT ? 2 : 1;
    } else {
        t.t_session = ta_now();
        t.wall_before = t.st.wall_seconds;
        t.start_step = t.st.step;
        t.start_tokens = t.st.tokens_seen;
        status = train_loop(&t, err);
        if (status == 0 && t.st.step >= t.cfg.train.max_steps)
            fprintf(stderr, "done: %ld steps, %llu tokens, checkpoints in %s/checkpoints\n",
                    t.st.step, (unsigned long long)t.st.tokens_seen, t.cfg.run.out_dir);
        if (dist_rank(t.opt.dist) == 0) run_summary(&t, status); /* rank 0 writes (dist.h) */
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
    if (rc == TA_OK) rc = setup(&t, err);
    rc = dist_setup(&t, rc, err); /* collective: every rank, whatever rc */
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
    if (rc == TA_OK) rc = evaluate(&t, &m, err);
    if (rc == TA_OK) {
        char *buf = ta_malloc(4096, "eval json");
        int n = snprintf(buf, 4096, "{\"examples\": %zu", eval_examples(&t));
        for (int i = 0; i < OBJ_METRIC_COUNT; i++)
            if (m.m[i].present)
                n += snprintf(buf + n, 4096 - (size_t)n, ", \"%s\": %.9g", m.m[i].name, m.m[i].value);
        snprintf(buf + n, 4096 - (size_t)n, "}");
        *json_out = buf;
    }
    trainer_free(&t);
    return rc;
}
