/* step.c — one training step and the forward-only evaluation that shares its path (see
 * include/tinyalign/train.h for the anatomy). `train`, `bench` and the model tests call
 * exactly this code, so `make bench` times what a training run does.
 * Implements: the order of a step, the data-parallel hook points, non-finite detection,
 * clipping and the update. Does not implement: where rows come from (the StepSource of
 * the caller), the losses (objective module), the frozen models (reference module), the
 * schedule around steps (train_loop.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/dist.h"
#include "tinyalign/kernels.h"
#include "tinyalign/train.h"

/* What the GRADS hook sums besides the gradients: doubles only, so one array. */
typedef struct {
    ObjectiveStats stats;
    double tokens;    /* B*T positions run */
    double nonfinite; /* > 0: some micro-batch (on some rank) had a non-finite loss */
} StepSums;
_Static_assert(sizeof(ObjectiveNorm) % sizeof(double) == 0, "ObjectiveNorm: doubles only");
_Static_assert(sizeof(ObjectiveStats) % sizeof(double) == 0, "ObjectiveStats: doubles only");
_Static_assert(sizeof(StepSums) == sizeof(ObjectiveStats) + 2 * sizeof(double), "no padding");

void train_step_init(TrainStep *t, const StepSetup *s) {
    TA_ASSERT(s->model && s->model->grads_memory && s->objective && s->K >= 1 && s->rows >= 1 &&
              s->T >= 1);
    memset(t, 0, sizeof *t);
    t->s = *s;
    /* the micro-batches hold every rank's rows, the activations this rank's part */
    gpt2_alloc_acts(s->model, dist_part_rows(s->rows, objective_is_pairwise(s->objective), s->parts),
                    s->T);
    const int score = objective_uses_score_head(s->objective);
    TA_ASSERT(!score || (s->model->config.score_head && s->model->hidden_only));
    t->micro = ta_calloc(sizeof(Batch) * (size_t)s->K, "micro-batches");
    for (int k = 0; k < s->K; k++) {
        batch_alloc(&t->micro[k], s->rows, s->T);
        t->micro[k].layout = score ? ROWS_SCORE : ROWS_LM;
    }
    t->ref_logp = ta_calloc(sizeof(float) * (size_t)s->rows, "reference log-probs");
    t->scores = ta_calloc(sizeof(float) * (size_t)s->rows, "rewards");
    t->dscores = ta_calloc(sizeof(float) * (size_t)s->rows, "reward gradients");
}

void train_step_free(TrainStep *t) {
    if (t->micro)
        for (int k = 0; k < t->s.K; k++) batch_free(&t->micro[k]);
    free(t->micro);
    free(t->ref_logp);
    free(t->scores);
    free(t->dscores);
    memset(t, 0, sizeof *t);
}

void train_optim_init(AdamW *o, const AdamWConfig *cfg, const GPT2 *m) {
    adamw_init(o, cfg, m->num_params);
    size_t off = 0;
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) {
        int decay = i == P_QKVW || i == P_ATTPROJW || i == P_FCW || i == P_FCPROJW || i == P_SCORE;
        adamw_set_decay(o, off, m->param_sizes[i], decay);
        off += m->param_sizes[i];
    }
}

/* Micro-batch k of src, and of it this rank's part (the whole batch in one process). The
 * whole batch is checked before it is cut, so a bad row stops every rank, not one. */
static int fill_part(TrainStep *t, const StepSource *src, int k, Batch *b, TaError *err) {
    int rc = src->fill(src->ctx, k, b, err);
    if (rc != TA_OK || t->s.parts <= 1) return rc;
    if ((rc = objective_check_batch(t->s.objective, b, err)) != TA_OK) return rc;
    dist_shard_batch(b, t->s.part, t->s.parts);
    return TA_OK;
}

static int sync(const TrainStep *t, StepSyncPoint p, float *grads, size_t n_grads, double *sums,
                size_t n_sums, TaError *err) {
    if (!t->s.allreduce) return TA_OK;
    return t->s.allreduce(t->s.allreduce_ctx, p, grads, n_grads, sums, n_sums, err);
}

/* The logit head of run_micro for one chunk of token rows of a chunked LM head
 * (gpt2_head_chunks / gpt2_backward_chunks): the same call as the whole-batch one, on
 * rows [row0, row0 + n) of every per-row array. */
typedef struct {
    const CfgObjective *o;
    const Batch *b;
    GPT2 *m;
    const float *dlogp, *guide, *base; /* guide / base logits: (B*T, Vp), whole batch */
    const ObjectiveNorm *norm;
    ObjectiveStats *st;
} HeadChunk;

static int head_chunk(void *ctx, int row0, int n, float *logits, TaError *err) {
    HeadChunk *h = ctx;
    const int Vp = h->m->config.padded_vocab_size;
    double t0 = h->m->prof ? ta_now() : 0.0;
    int rc = objective_logits_forward_backward(
        h->o, h->b, row0, n, logits, h->m->acts.lse + row0, h->dlogp ? h->dlogp + row0 : NULL,
        h->guide ? h->guide + (size_t)row0 * Vp : NULL, h->base ? h->base + (size_t)row0 * Vp : NULL,
        h->m->config.vocab_size, Vp, h->norm, h->st, err);
    if (h->m->prof && h->dlogp) h->m->prof->bwd[K_LOGSOFTMAX] += ta_now() - t0;
    return rc;
}

/* One micro-batch of a reward model: forward to the final LayerNorm, the score head at each
 * row's last token (b->lengths, ROWS_SCORE), the Bradley-Terry head, and (backward) from
 * dL/dreward down the trunk. No LM head. Errors as run_micro's. */
static int run_micro_scores(TrainStep *t, const Batch *b, const ObjectiveNorm *norm,
                            ObjectiveStats *st, int backward, int *bad, TaError *err) {
    GPT2 *m = t->s.model;
    int rc = gpt2_forward_hidden(m, b->tokens, b->B, b->T, err);
    if (rc != TA_OK) return rc;
    gpt2_score_forward(m, b->lengths, t->scores);
    rc = objective_scores_forward_backward(t->s.objective, b, t->scores, norm,
                                           backward ? t->dscores : NULL, st, err);
    if (rc == TA_ERUNTIME) { /* a non-finite reward: a bad step, not a crash */
        *bad = 1;
        return TA_OK;
    }
    if (rc == TA_OK && backward) gpt2_score_backward(m, b->lengths, t->dscores);
    return rc;
}

/* One micro-batch: the auxiliary models' forwards, the policy's forward, the loss head over
 * log-probs, the logit head and (backward) the policy's backward. A non-finite loss term
 * sets *bad (its message in err) and returns TA_OK; any other error is returned. */
static int run_micro(TrainStep *t, const Batch *b, const void *set, const ObjectiveNorm *norm,
                     ObjectiveStats *st, int backward, int *bad, TaError *err) {
    GPT2 *m = t->s.model;
    const CfgObjective *o = t->s.objective;
    if (objective_uses_score_head(o)) return run_micro_scores(t, b, norm, st, backward, bad, err);
    AuxModels *aux = t->s.aux;
    int rc = aux ? aux_models_forward(aux, b, set, t->ref_logp, err) : TA_OK;
    if (rc != TA_OK) return rc;
    const float *ref = aux && aux->has_ref ? t->ref_logp : NULL;
    const float *guide = aux ? aux_models_guide_logits(aux) : NULL;
    const float *base = aux ? aux_models_base_logits(aux) : NULL;
    if ((rc = gpt2_forward(m, b->tokens, b->targets, b->B, b->T, err)) != TA_OK) return rc;
    float *dlogp = backward ? m->acts.dlogp : NULL;
    rc = objective_forward_backward(o, b, m->acts.logp, ref, norm, dlogp, st, err);
    if (rc == TA_OK && gpt2_lm_chunked(m)) {
        /* model.lm_head_chunk: the logits exist a chunk of rows at a time, recomputed
         * here; the backward runs inside, chunk by chunk (forward-only without a logit-
         * level term there is nothing to recompute) */
        HeadChunk h = {.o = o, .b = b, .m = m, .dlogp = dlogp, .guide = guide, .base = base,
                       .norm = norm, .st = st};
        if (backward)
            rc = gpt2_backward_chunks(m, head_chunk, &h, err);
        else if (objective_has_logit_head(o))
            rc = gpt2_head_chunks(m, head_chunk, &h, err);
        if (rc == TA_ERUNTIME) { /* as below; the gradients of this step are discarded */
            *bad = 1;
            return TA_OK;
        }
        return rc;
    }
    if (rc == TA_OK) {
        double t0 = m->prof ? ta_now() : 0.0;
        rc = objective_logits_forward_backward(o, b, 0, b->B * b->T, m->acts.logits, m->acts.lse,
                                               dlogp, guide, base, m->config.vocab_size,
                                               m->config.padded_vocab_size, norm, st, err);
        if (m->prof && backward) m->prof->bwd[K_LOGSOFTMAX] += ta_now() - t0;
    }
    if (rc == TA_ERUNTIME) { /* non-finite log-probs or KL: a bad step, not a crash */
        *bad = 1;
        return TA_OK;
    }
    if (rc != TA_OK) return rc;
    if (backward) gpt2_backward(m);
    return TA_OK;
}

int train_step(TrainStep *t, const StepSource *src, long step, StepResult *res, TaError *err) {
    const StepSetup *s = &t->s;
    GPT2 *m = s->model;
    memset(res, 0, sizeof *res);
    /* 1-2. the K micro-batches and the normalisers over all of them */
    ObjectiveNorm norm = {0};
    int rc;
    for (int k = 0; k < s->K; k++) {
        if ((rc = fill_part(t, src, k, &t->micro[k], err)) != TA_OK) return rc;
        if (t->micro[k].B > 0 &&
            (rc = objective_norm_add(&norm, s->objective, &t->micro[k], err)) != TA_OK)
            return rc;
    }
    rc = sync(t, STEP_SYNC_NORM, NULL, 0, (double *)&norm, sizeof norm / sizeof(double), err);
    if (rc != TA_OK) return rc;
    /* 3. forward / backward, gradients accumulate (the normaliser already spans the step) */
    gpt2_zero_grad(m);
    StepSums sums = {0};
    for (int k = 0; k < s->K && !sums.nonfinite; k++) {
        int bad = 0;
        if (t->micro[k].B == 0) continue; /* this rank's part of the micro-batch is empty */
        if ((rc = run_micro(t, &t->micro[k], src->set, &norm, &sums.stats, 1, &bad, err)) != TA_OK)
            return rc;
        if (bad) {
            sums.nonfinite = 1;
            snprintf(res->why, sizeof res->why, "%.255s", err->msg);
        }
        sums.tokens += (double)t->micro[k].B * (double)t->micro[k].T;
    }
    /* 4. data parallel: gradients and sums of every rank */
    rc = sync(t, STEP_SYNC_GRADS, m->grads_memory, m->num_params, (double *)&sums,
              sizeof sums / sizeof(double), err);
    if (rc != TA_OK) return rc;
    /* 5. norm, non-finite check, clip, update */
    objective_stats_finish(s->objective, &sums.stats, &res->metrics);
    res->tokens = (uint64_t)sums.tokens;
    res->nonfinite = sums.nonfinite > 0;
    res->loss = res->nonfinite ? NAN : res->metrics.m[OBJ_METRIC_LOSS].value;
    double t0 = ta_now();
    res->grad_norm = res->nonfinite ? NAN : grad_global_norm(m->grads_memory, m->num_params);
    res->lr = s->optim ? lr_at_step(&s->optim->cfg, step) : 0.0;
    if (!isfinite(res->loss) || !isfinite(res->grad_norm)) {
        res->nonfinite = 1;
    } else if (s->optim) {
        grad_clip_scale(m->grads_memory, m->num_params, res->grad_norm, s->optim->cfg.grad_clip);
        double t1 = ta_now();
        res->seconds_norm = t1 - t0;
        /* a bf16 model's bf16 weights are refreshed in the same pass, once per step */
        adamw_update_bf16(s->optim, m->params_memory, m->grads_memory, res->lr, m->params_bf16);
        res->seconds_update = ta_now() - t1;
    }
    /* 6. the auxiliary models that follow the policy (TR-DPO) */
    if (s->aux) res->ref_synced = aux_models_after_update(s->aux, m, step + 1);
    return TA_OK;
}

int train_step_eval(TrainStep *t, const StepSource *src, int n, ObjectiveMetrics *out,
                    TaError *err) {
    const CfgObjective *o = t->s.objective;
    Batch *b = &t->micro[0];
    ObjectiveNorm norm = {0};
    StepSums sums = {0};
    char why[256] = "";
    int rc = TA_OK;
    /* two passes: normalisers over the whole evaluation set, then the losses */
    for (int k = 0; k < n && rc == TA_OK; k++)
        if ((rc = fill_part(t, src, k, b, err)) == TA_OK && b->B > 0)
            rc = objective_norm_add(&norm, o, b, err);
    if (rc == TA_OK)
        rc = sync(t, STEP_SYNC_NORM, NULL, 0, (double *)&norm, sizeof norm / sizeof(double), err);
    for (int k = 0; k < n && rc == TA_OK && !sums.nonfinite; k++) {
        int bad = 0;
        if ((rc = fill_part(t, src, k, b, err)) == TA_OK && b->B > 0)
            rc = run_micro(t, b, src->set, &norm, &sums.stats, 0, &bad, err);
        if (bad) {
            sums.nonfinite = 1;
            snprintf(why, sizeof why, "%.255s", err->msg);
        }
        sums.tokens += (double)b->B * (double)b->T;
    }
    if (rc != TA_OK) return rc;
    rc = sync(t, STEP_SYNC_GRADS, NULL, 0, (double *)&sums, sizeof sums / sizeof(double), err);
    if (rc != TA_OK) return rc;
    if (sums.nonfinite > 0)
        return ta_err(err, TA_ERUNTIME, "evaluation: %s", *why ? why : "non-finite loss");
    objective_stats_finish(o, &sums.stats, out);
    return TA_OK;
}
