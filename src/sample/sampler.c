/* sampler.c — the token samplers on one row of logits: options, penalties, greedy,
 * temperature, top-k, top-p, min-p and the draw (the pipeline and its order are in
 * sample.h). Everything works on the real vocabulary only, in scratch sized at init.
 *
 * Cost per token: penalties O(V) (a scan of the marks); greedy O(V); otherwise O(V) exps
 * plus, for top-k, an O(V) selection, and for top-p a sort of only the tokens that can be
 * in the nucleus (those with probability >= a threshold whose set already holds mass
 * >= p; the threshold is lowered until it does), so a peaked distribution over 50k
 * tokens sorts a handful of them.
 * PyTorch equivalents (HF LogitsProcessors): RepetitionPenaltyLogitsProcessor,
 * TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper, MinPLogitsWarper,
 * torch.multinomial; presence penalty as vLLM's.
 * Not here: frequency penalty, beam search, logit bias, typical / eta sampling.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/sample.h"

void sample_options_default(SampleOptions *o) {
    memset(o, 0, sizeof *o);
    o->n = 1;
    o->max_new_tokens = 128;
    o->temperature = 1.0;
    o->top_k = 0;
    o->top_p = 1.0;
    o->min_p = 0.0;
    o->repetition_penalty = 1.0;
    o->presence_penalty = 0.0;
    o->seed = 0;
    o->batch = 8;
    o->eos_id = -1;
}

int sample_options_check(const SampleOptions *o, TaError *err) {
    if (o->n < 1) return ta_err(err, TA_EINPUT, "n (responses per prompt) must be >= 1, got %d", o->n);
    if (o->max_new_tokens < 1)
        return ta_err(err, TA_EINPUT, "max_new_tokens must be >= 1, got %d", o->max_new_tokens);
    if (o->min_new_tokens < 0 || o->min_new_tokens > o->max_new_tokens)
        return ta_err(err, TA_EINPUT, "min_new_tokens must be in [0, max_new_tokens = %d], got %d",
                      o->max_new_tokens, o->min_new_tokens);
    if (!(o->temperature >= 0) || !isfinite(o->temperature))
        return ta_err(err, TA_EINPUT, "temperature must be >= 0 (0 = greedy), got %g",
                      o->temperature);
    if (o->top_k < 0) return ta_err(err, TA_EINPUT, "top_k must be >= 0 (0 = off), got %d", o->top_k);
    if (!(o->top_p > 0 && o->top_p <= 1))
        return ta_err(err, TA_EINPUT, "top_p must be in (0, 1] (1 = off), got %g", o->top_p);
    if (!(o->min_p >= 0 && o->min_p < 1))
        return ta_err(err, TA_EINPUT, "min_p must be in [0, 1) (0 = off), got %g", o->min_p);
    if (!(o->repetition_penalty > 0) || !isfinite(o->repetition_penalty))
        return ta_err(err, TA_EINPUT, "repetition_penalty must be > 0 (1 = off), got %g",
                      o->repetition_penalty);
    if (!isfinite(o->presence_penalty))
        return ta_err(err, TA_EINPUT, "presence_penalty must be a finite number, got %g",
                      o->presence_penalty);
    if (o->n_stop < 0 || o->n_stop > SAMPLE_MAX_STOP)
        return ta_err(err, TA_EINPUT, "at most %d stop strings, got %d", SAMPLE_MAX_STOP, o->n_stop);
    for (int i = 0; i < o->n_stop; i++)
        if (!o->stop[i] || !o->stop[i][0])
            return ta_err(err, TA_EINPUT, "stop string %d is empty", i + 1);
    if (o->batch < 1) return ta_err(err, TA_EINPUT, "batch must be >= 1, got %d", o->batch);
    return TA_OK;
}

void sample_work_init(SampleWork *w, int V) {
    TA_ASSERT(V >= 1);
    memset(w, 0, sizeof *w);
    w->V = V;
    w->logits = ta_malloc(sizeof(float) * (size_t)V, "sampler logits");
    w->cand = ta_malloc(sizeof(SampleCand) * (size_t)V, "sampler candidates");
    w->ids = ta_malloc(sizeof(int) * (size_t)V, "sampler ids");
    w->probs = ta_malloc(sizeof(double) * (size_t)V, "sampler probabilities");
    w->seen = ta_calloc((size_t)V, "sampler marks");
}

void sample_work_free(SampleWork *w) {
    free(w->logits);
    free(w->cand);
    free(w->ids);
    free(w->probs);
    free(w->seen);
    memset(w, 0, sizeof *w);
}

void sample_work_start(SampleWork *w, const int *prompt, int n) {
    memset(w->seen, 0, (size_t)w->V);
    w->n_gen = 0;
    for (int i = 0; i < n; i++)
        if (prompt[i] >= 0 && prompt[i] < w->V) w->seen[prompt[i]] |= 1;
}

void sample_work_add(SampleWork *w, int token) {
    if (token >= 0 && token < w->V) w->seen[token] |= 3;
    w->n_gen++;
}

void sample_apply_penalties(float *logits, int V, const uint8_t *seen, double repetition,
                            double presence) {
    const float r = (float)repetition, a = (float)presence;
    const int rep = repetition != 1.0, pres = presence != 0.0;
    if (!rep && !pres) return;
    for (int v = 0; v < V; v++) {
        if (!seen[v]) continue;
        float l = logits[v];
        /* HF: torch.where(score < 0, score * penalty, score / penalty) */
        if (rep) l = l < 0 ? l * r : l / r;
        if (pres && (seen[v] & 2)) l -= a;
        logits[v] = l;
    }
}

int sample_argmax(const float *x, int n) {
    int best = -1;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i]) && (best < 0 || x[i] > x[best])) best = i;
    return best;
}

/* a ranks before b: larger logit, then lower id. A total order (no NaN among candidates). */
static inline int cand_before(const SampleCand *a, const SampleCand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_rank(const void *x, const void *y) {
    const SampleCand *a = x, *b = y;
    return cand_before(a, b) ? -1 : cand_before(b, a) ? 1 : 0;
}

static int cmp_id(const void *x, const void *y) {
    const SampleCand *a = x, *b = y;
    return (a->id > b->id) - (a->id < b->id);
}

static inline void swap_cand(SampleCand *a, SampleCand *b) {
    SampleCand t = *a;
    *a = *b;
    *b = t;
}

/* Moves the k best candidates (rank order) to c[0..k), in no particular order.
 * Quickselect with a median-of-three pivot; keys are distinct, so it is exact. */
static void select_top_k(SampleCand *c, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        /* median of three to c[hi] as the pivot */
        if (cand_before(&c[mid], &c[lo])) swap_cand(&c[mid], &c[lo]);
        if (cand_before(&c[hi], &c[lo])) swap_cand(&c[hi], &c[lo]);
        if (cand_before(&c[mid], &c[hi])) swap_cand(&c[mid], &c[hi]);
        SampleCand pivot = c[hi];
        int s = lo;
        for (int i = lo; i < hi; i++)
            if (cand_before(&c[i], &pivot)) swap_cand(&c[i], &c[s++]);
        swap_cand(&c[s], &c[hi]); /* pivot at s: c[lo..s) rank before it */
        if (s == k - 1 || s == k) return;
        if (s > k) hi = s - 1;
        else lo = s + 1;
    }
}

int sample_filter(SampleWork *w, const float *logits, const SampleOptions *o) {
    const int V = w->V;
    TA_ASSERT(o->temperature > 0);
    SampleCand *c = w->cand;
    int n = 0;
    for (int v = 0; v < V; v++)
        if (!isnan(logits[v]) && logits[v] > -INFINITY)
            c[n++] = (SampleCand){.p = 0.0, .logit = logits[v], .id = v};
    if (n == 0) return 0;
    int id_sorted = 1; /* c is in ascending id order */

    /* 5. top-k (on the logits: their order is the probabilities' for any T > 0) */
    if (o->top_k > 0 && o->top_k < n) {
        select_top_k(c, n, o->top_k);
        n = o->top_k;
        id_sorted = 0;
    }
    /* 4. temperature and the unnormalised probabilities p = exp((l - lmax) / T) */
    float lmax = c[0].logit;
    for (int i = 1; i < n; i++)
        if (c[i].logit > lmax) lmax = c[i].logit;
    const double invT = 1.0 / o->temperature;
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        c[i].p = exp(((double)c[i].logit - (double)lmax) * invT);
        total += c[i].p;
    }
    /* 6. top-p: smallest prefix in rank order with cumulative probability >= p. Only
     * tokens with p >= tau can be in it once those alone hold mass >= p * total: find
     * such a tau (the largest p is 1), partition them to the front, sort only them. */
    if (o->top_p < 1.0) {
        const double target = o->top_p * total;
        int kept = -1;
        for (double tau = 1.0 / 16; kept < 0; tau /= 256) {
            int m = 0;
            double mass = 0.0;
            if (tau > 1e-300)
                for (int i = 0; i < n; i++)
                    if (c[i].p >= tau) mass += c[i].p;
            int all = !(tau > 1e-300) || mass >= total;
            if (!all && mass < target) continue;
            if (!all) {
                for (int i = 0; i < n; i++)
                    if (c[i].p >= tau) swap_cand(&c[i], &c[m++]);
            } else {
                m = n;
            }
            qsort(c, (size_t)m, sizeof *c, cmp_rank);
            double cum = 0.0;
            int j = 0;
            while (j < m && cum < target) cum += c[j++].p;
            if (cum >= target || m == n) kept = j; /* else rounding: retry with all */
            else tau = 0.0;
        }
        n = kept;
        id_sorted = 0;
    }
    /* 7. min-p relative to the largest probability (p = 1 for the argmax, always kept) */
    if (o->min_p > 0.0) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (c[i].p >= o->min_p) c[m++] = c[i];
        n = m;
    }
    if (!id_sorted) qsort(c, (size_t)n, sizeof *c, cmp_id);
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += c[i].p;
    for (int i = 0; i < n; i++) {
        w->ids[i] = c[i].id;
        w->probs[i] = c[i].p / sum;
    }
    return n;
}

int sample_next(SampleWork *w, const float *logits, const SampleOptions *o, TaRng *rng) {
    const int V = w->V;
    const float *l = logits;
    const int no_eos = w->n_gen < o->min_new_tokens && o->eos_id >= 0 && o->eos_id < V;
    if (o->repetition_penalty != 1.0 || o->presence_penalty != 0.0 || no_eos) {
        memcpy(w->logits, logits, sizeof(float) * (size_t)V);
        if (no_eos) w->logits[o->eos_id] = -INFINITY; /* 0. min_new_tokens */
        sample_apply_penalties(w->logits, V, w->seen, o->repetition_penalty, o->presence_penalty);
        l = w->logits;
    }
    if (o->temperature == 0.0) return sample_argmax(l, V);
    int n = sample_filter(w, l, o);
    if (n == 0) return -1;
    const double u = ta_rng_f64(rng);
    double cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += w->probs[i];
        if (u < cum) return w->ids[i];
    }
    return w->ids[n - 1];
}

uint64_t sample_seq_seed(uint64_t seed, uint64_t prompt_index, uint64_t sample_index) {
    /* splitmix64 finaliser over the three numbers, each step mixing in one of them */
    uint64_t x = seed;
    const uint64_t in[2] = {prompt_index, sample_index};
    for (int i = 0; i < 3; i++) {
        x += 0x9e3779b97f4a7c15ULL + (i ? in[i - 1] * 0xd1b54a32d192ed03ULL : 0);
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
        x ^= x >> 31;
    }
    return x;
}
