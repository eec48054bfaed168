/* train_order.c — the data order of a training run, and the batches it feeds the step.
 *
 * One source: example ids in a seeded permutation per epoch
 * (data_epoch_permutation(seed, epoch)), the cursor {epoch, pos} walking it. A mixture of S
 * files with ratios w_s (data.train as a list): every file keeps its own cursor over its own
 * permutations (file 0 seeded with run.seed, file s with run.seed + s * 0x632BE59BD9B4E019),
 * and the next example comes from the file s that minimises (n_s + 1) / w_s, n_s = the
 * examples drawn from it so far (= epoch_s * N_s + pos_s), ties to the lowest s, files of
 * ratio 0 never: a deterministic interleaving (stride scheduling) in which every prefix of
 * the order holds each file within one example of its share w_s / sum w. The order is a
 * pure function of (run.seed, the cursors): a checkpoint stores the cursors, a resume
 * continues bit-exactly, and data-parallel ranks can each walk it. One file is the S = 1
 * case, identical to the plain order. Validation reads the first train.eval_batches batches
 * of the validation set, in file order.
 * Does not implement: opening the data and splitting off validation (train_setup.c), the
 * permutation itself (data module), the cursors' storage (checkpoint module).
 */
#include "train_impl.h"

static void source_fill(const Source *s, const uint32_t *ids, int n, Batch *b) {
    if (s->td) token_data_fill(s->td, s->td_split, ids, n, b);
    else dataset_fill(s->ds, ids, n, b);
}

/* The cursor of mixture file s in the checkpoint state. */
static DataCursor *cursor_of(Trainer *t, int s) {
    TA_ASSERT(s >= 0 && s < t->n_mix);
    return s == 0 ? &t->st.cursor : &t->st.more_cursors[s - 1];
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
int trainer_check_mix_cursors(Trainer *t, uint64_t used, const char *file, TaError *err) {
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
double trainer_epochs_done(Trainer *t) {
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
int trainer_fill_train(void *ctx, int k, Batch *b, TaError *err) {
    Trainer *t = ctx;
    (void)k;
    (void)err;
    next_ids(t, t->ids, t->cfg.train.batch_size);
    source_fill(&t->train, t->ids, t->cfg.train.batch_size, b);
    return TA_OK;
}

/* Validation: the first eval_batches batches of the validation set, in file order. */
size_t trainer_eval_examples(const Trainer *t) {
    size_t limit = (size_t)t->cfg.train.eval_batches * t->cfg.train.batch_size;
    return t->val.n < limit ? t->val.n : limit;
}

static int fill_eval(void *ctx, int k, Batch *b, TaError *err) {
    Trainer *t = ctx;
    (void)err;
    const size_t per = (size_t)t->cfg.train.batch_size, total = trainer_eval_examples(t);
    size_t i = (size_t)k * per;
    int n = (int)(total - i < per ? total - i : per);
    for (int j = 0; j < n; j++)
        t->ids[j] = t->have_val == 2 ? t->val_ids[i + (size_t)j] : (uint32_t)(i + (size_t)j);
    source_fill(&t->val, t->ids, n, b);
    return TA_OK;
}

int trainer_evaluate(Trainer *t, ObjectiveMetrics *out, TaError *err) {
    StepSource src = {.fill = fill_eval, .ctx = t, .set = t->val.ds};
    size_t per = (size_t)t->cfg.train.batch_size;
    return train_step_eval(&t->step, &src, (int)((trainer_eval_examples(t) + per - 1) / per), out,
                           err);
}
