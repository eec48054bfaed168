/* test_sample.c — KV-cache decoding and the samplers.
 *
 * decode/...: logits from gpt2_decode_forward (packed prefill of prompts of different
 *   lengths, prefill split over calls, one-token steps, cache copies) equal gpt2_forward's
 *   at every position of every sequence: |diff| <= 1e-5 * max|logit of the row| + 1e-6
 *   (float32 sums in another order; ~1e-7 relative seen), padded columns exactly 0, and
 *   the same bits at 1 and 2 threads; bad rows are rejected without changing state.
 * sampler/...: on hand-made logits, every filter keeps exactly the expected set (top-k with
 *   ties -> lower ids, top-p inclusive at the boundary as HF, min-p relative to the max),
 *   the penalties give exact values, greedy breaks ties to the lowest id, padded / NaN
 *   logits are never chosen, the empirical distribution of draws matches the kept
 *   probabilities, and seeds are reproducible.
 * generate/...: on a random model: same seed -> same ids; results independent of the batch
 *   size and the thread count; n samples of a prompt differ; EOS and max_new_tokens stop;
 *   bad options / prompts are TA_EINPUT.
 * sample_texts/...: the trainer's entry point, with a tokenizer trained here (60 pieces for
 *   a 100-token model: sampling stays inside the tokenizer's ids): same texts as the
 *   generator, the policy's weights, gradients and activations untouched, errors.
 * (Stop strings, the CLI and greedy parity with PyTorch: tests/cli/sample.sh.)
 * Scratch files: $TA_REF/sample (default build/ref/sample).
 */
#include <math.h>
#include <string.h>

#include "testhelp.h"
#include "tinyalign/common.h"
#include "tinyalign/model.h"
#include "tinyalign/data.h"
#include "tinyalign/sample.h"
#include "tinyalign/tokenizer.h"

static GPT2Config CFG = {.n_layer = 2, .n_head = 4, .d_model = 64, .vocab_size = 100,
                         .max_seq_len = 40};
static GPT2 M; /* random weights, LayerNorm and biases perturbed away from 1/0 */

static void setup_model(void) {
    TaError err;
    TA_ASSERT(gpt2_config_check(&CFG, &err) == TA_OK);
    gpt2_init(&M, &CFG, 0);
    gpt2_init_weights(&M, 7);
    TaRng r;
    ta_rng_seed(&r, 99);
    ParamTensors *p = &M.params;
    float *perturb[] = {p->ln1w, p->ln1b, p->ln2w, p->ln2b, p->qkvb, p->attprojb, p->fcb,
                        p->fcprojb, p->lnfw, p->lnfb};
    int idx[] = {P_LN1W, P_LN1B, P_LN2W, P_LN2B, P_QKVB, P_ATTPROJB, P_FCB, P_FCPROJB, P_LNFW,
                 P_LNFB};
    for (int k = 0; k < 10; k++)
        for (size_t i = 0; i < M.param_sizes[idx[k]]; i++)
            perturb[k][i] += 0.1f * (float)ta_rng_normal(&r);
    /* larger embeddings: peaked, position-dependent logits */
    for (size_t i = 0; i < (size_t)CFG.vocab_size * CFG.d_model; i++) p->wte[i] *= 10.0f;
}

/* ---- decode parity ------------------------------------------------------------------ */
#define NSEQ 3
static const int SEQ_LEN[NSEQ] = {17, 12, 40}; /* the last one fills max_seq_len */
static const int PREFILL[NSEQ] = {5, 1, 9};
static int SEQ[NSEQ][40];
static float *REF_LOGITS[NSEQ]; /* (len, Vp) from gpt2_forward */

static void make_reference(void) {
    TaRng r;
    ta_rng_seed(&r, 3);
    GPT2 f;
    gpt2_init(&f, &CFG, 0);
    memcpy(f.params_memory, M.params_memory, M.num_params * sizeof(float));
    gpt2_alloc_acts(&f, 1, CFG.max_seq_len);
    for (int s = 0; s < NSEQ; s++) {
        for (int t = 0; t < SEQ_LEN[s]; t++) SEQ[s][t] = (int)ta_rng_below(&r, CFG.vocab_size);
        TaError err;
        TA_ASSERT(gpt2_forward(&f, SEQ[s], NULL, 1, SEQ_LEN[s], &err) == TA_OK);
        size_t n = (size_t)SEQ_LEN[s] * CFG.padded_vocab_size;
        REF_LOGITS[s] = ta_malloc(n * sizeof(float), "ref");
        memcpy(REF_LOGITS[s], f.acts.logits, n * sizeof(float));
    }
    gpt2_free(&f);
}

static double WORST_REL = 0.0;
/* Compares one logits row (Vp) with the reference row of (seq, pos); 1 when within tol. */
static int row_ok(const float *got, int s, int pos, char *msg, size_t cap) {
    const int V = CFG.vocab_size, Vp = CFG.padded_vocab_size;
    const float *ref = REF_LOGITS[s] + (size_t)pos * Vp;
    double mx = 0;
    for (int v = 0; v < V; v++) mx = fmax(mx, fabs(ref[v]));
    for (int v = 0; v < V; v++) {
        double d = fabs((double)got[v] - ref[v]);
        WORST_REL = fmax(WORST_REL, d / mx);
        if (!(d <= 1e-5 * mx + 1e-6)) {
            snprintf(msg, cap, "seq %d pos %d token %d: %.8g vs full forward %.8g (max|row| %.3g)",
                     s, pos, v, got[v], ref[v], mx);
            return 0;
        }
    }
    for (int v = V; v < Vp; v++)
        if (got[v] != 0.0f) {
            snprintf(msg, cap, "seq %d pos %d padded logit %d = %g", s, pos, v, got[v]);
            return 0;
        }
    return 1;
}

/* Prefill (packed, in calls of at most R rows), then one token per step for every
 * unfinished sequence; checks every row's logits. Sequence s lives in slot slot[s]. */
static void run_decode(int R, const int *slot, int use_copy) {
    GPT2Decode d;
    gpt2_decode_init(&d, &M, 4, CFG.max_seq_len, R);
    int rows_s[64], rows_t[64], rows_seq[64], rows_pos[64], n = 0;
    char msg[512];
    TaError err;
    /* prefill: all prompts' tokens as rows, flushed every R rows */
    for (int s = 0; s < NSEQ; s++)
        for (int t = 0; t < PREFILL[s]; t++) {
            rows_s[n] = slot[s];
            rows_t[n] = SEQ[s][t];
            rows_seq[n] = s;
            rows_pos[n] = t;
            n++;
            int last = s == NSEQ - 1 && t == PREFILL[s] - 1;
            if (n < R && !last) continue;
            T_CHECK(gpt2_decode_forward(&d, rows_s, rows_t, n, NULL, &err) == TA_OK, "%s", err.msg);
            T_CHECK(d.n_logits == n, "n_logits %d", d.n_logits);
            for (int i = 0; i < n; i++)
                T_CHECK(row_ok(d.logits + (size_t)i * CFG.padded_vocab_size, rows_seq[i],
                               rows_pos[i], msg, sizeof msg), "prefill R=%d: %s", R, msg);
            n = 0;
        }
    if (use_copy) { /* sequence 0 continues in slot 3, a copy of its prefilled cache */
        gpt2_decode_copy(&d, 3, slot[0]);
        gpt2_decode_reset(&d, slot[0]); /* the original is emptied: only the copy is used */
    }
    for (int pos = 1; pos < CFG.max_seq_len; pos++) {
        n = 0;
        for (int s = 0; s < NSEQ; s++)
            if (pos >= PREFILL[s] && pos < SEQ_LEN[s]) {
                rows_s[n] = (use_copy && s == 0) ? 3 : slot[s];
                rows_t[n] = SEQ[s][pos];
                rows_seq[n] = s;
                n++;
            }
        if (n == 0) continue;
        /* even positions: a decode step (the streaming matmul); odd positions: the general
         * rows with the logits of every other row only (compaction) */
        unsigned char want[8];
        for (int i = 0; i < n; i++) want[i] = (pos % 2 == 0) || (i % 2 == 0);
        if (pos % 2 == 0)
            T_CHECK(gpt2_decode_step(&d, rows_s, rows_t, n, &err) == TA_OK, "%s", err.msg);
        else
            T_CHECK(gpt2_decode_forward(&d, rows_s, rows_t, n, want, &err) == TA_OK, "%s", err.msg);
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (!want[i]) continue;
            T_CHECK(row_ok(d.logits + (size_t)k * CFG.padded_vocab_size, rows_seq[i], pos, msg,
                           sizeof msg), "step: %s", msg);
            k++;
        }
        T_CHECK(k == d.n_logits, "n_logits %d, expected %d", d.n_logits, k);
    }
    gpt2_decode_free(&d);
}

static void t_decode_packed(void) {
    const int slot[NSEQ] = {0, 1, 2};
    run_decode(64, slot, 0);
}
static void t_decode_split_prefill(void) {
    const int slot[NSEQ] = {2, 0, 1};
    run_decode(4, slot, 0); /* prompts cut across calls of 4 rows */
}
static void t_decode_copy(void) {
    const int slot[NSEQ] = {1, 2, 0};
    run_decode(8, slot, 1);
    printf("  worst |diff| / max|row| over all decode checks: %.3g\n", WORST_REL);
}

/* Prefill 4 tokens, then decode steps to position 11, with nseq sequences (SEQ[0..nseq))
 * at `threads` threads; returns a copy of sequence 0's last logits row. */
static float *step_logits(int nseq, int threads) {
    int saved = ta_get_threads();
    ta_set_threads(threads);
    GPT2Decode d;
    gpt2_decode_init(&d, &M, NSEQ, CFG.max_seq_len, 16);
    int s[NSEQ] = {0, 1, 2}, t[NSEQ];
    TaError err;
    for (int i = 0; i < nseq; i++) {
        int ss[4] = {i, i, i, i};
        TA_ASSERT(gpt2_decode_forward(&d, ss, SEQ[i], 4, NULL, &err) == TA_OK);
    }
    for (int pos = 4; pos < 12; pos++) {
        for (int i = 0; i < nseq; i++) t[i] = SEQ[i][pos];
        TA_ASSERT(gpt2_decode_step(&d, s, t, nseq, &err) == TA_OK);
    }
    float *out = ta_malloc(sizeof(float) * CFG.padded_vocab_size, "t");
    memcpy(out, d.logits, sizeof(float) * CFG.padded_vocab_size);
    gpt2_decode_free(&d);
    ta_set_threads(saved);
    return out;
}

/* A sequence's step logits have the same bits at 1 and 2 threads and alone or batched. */
static void t_decode_threads_and_batch(void) {
    float *a = step_logits(NSEQ, 1), *b = step_logits(NSEQ, 2), *c = step_logits(1, 2);
    size_t bytes = sizeof(float) * CFG.padded_vocab_size;
    int same_threads = !memcmp(a, b, bytes), same_batch = !memcmp(a, c, bytes);
    free(a);
    free(b);
    free(c);
    T_CHECK(same_threads, "logits differ between 1 and 2 threads");
    T_CHECK(same_batch, "a sequence's logits differ between a step of 3 rows and of 1 row");
}

static void t_decode_bad_rows(void) {
    GPT2Decode d;
    gpt2_decode_init(&d, &M, 2, 4, 8);
    TaError err = {0};
    int s[5] = {0, 0, 0, 0, 0}, t[5] = {1, 2, 3, 4, 5};
    int bad_tok[2] = {1, CFG.vocab_size}, bad_seq[2] = {0, 2};
    int rc = gpt2_decode_forward(&d, s, bad_tok, 2, NULL, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "token id 100"), "bad token: %d %s", rc, err.msg);
    rc = gpt2_decode_forward(&d, bad_seq, t, 2, NULL, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "sequence 2"), "bad sequence: %d %s", rc, err.msg);
    int dup[2] = {1, 1};
    rc = gpt2_decode_step(&d, dup, t, 2, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "both sequence 1"), "step with a sequence twice: %d %s",
            rc, err.msg);
    rc = gpt2_decode_forward(&d, s, t, 5, NULL, &err); /* 5 positions > maxT 4 */
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "full"), "overflow: %d %s", rc, err.msg);
    T_CHECK(d.lens[0] == 0 && d.lens[1] == 0, "state changed by rejected calls: %d %d", d.lens[0],
            d.lens[1]);
    rc = gpt2_decode_forward(&d, s, t, 4, NULL, &err);
    T_CHECK(rc == TA_OK && d.lens[0] == 4, "a full sequence of maxT rows: %d %s", rc, err.msg);
    gpt2_decode_free(&d);
}

/* ---- samplers on hand-made logits ------------------------------------------------- */

/* Runs sample_filter and compares the kept ids with want (ascending, -1 terminated). */
static int kept_is(SampleWork *w, const float *l, const SampleOptions *o, const int *want,
                   char *msg, size_t cap) {
    int n = sample_filter(w, l, o);
    int m = 0;
    while (want[m] >= 0) m++;
    int ok = n == m;
    for (int i = 0; ok && i < n; i++) ok = w->ids[i] == want[i];
    if (!ok) {
        int k = snprintf(msg, cap, "kept {");
        for (int i = 0; i < n && k < (int)cap - 16; i++) k += snprintf(msg + k, cap - k, "%d ", w->ids[i]);
        k += snprintf(msg + k, cap - k, "}, expected {");
        for (int i = 0; i < m && k < (int)cap - 16; i++) k += snprintf(msg + k, cap - k, "%d ", want[i]);
        snprintf(msg + k, cap - k, "}");
    }
    return ok;
}

static SampleOptions opts(double T, int k, double p, double minp) {
    SampleOptions o;
    sample_options_default(&o);
    o.temperature = T;
    o.top_k = k;
    o.top_p = p;
    o.min_p = minp;
    return o;
}

static void t_top_k_ties(void) {
    SampleWork w;
    sample_work_init(&w, 8);
    char msg[256];
    /* ids:             0     1    2    3    4     5    6    7 */
    const float l[8] = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f, 2.0f, 2.0f, 0.5f};
    SampleOptions o = opts(1.0, 1, 1.0, 0.0);
    T_CHECK(kept_is(&w, l, &o, (int[]){1, -1}, msg, sizeof msg), "k=1: %s", msg);
    o.top_k = 2;
    T_CHECK(kept_is(&w, l, &o, (int[]){1, 3, -1}, msg, sizeof msg), "k=2: %s", msg);
    o.top_k = 3; /* three 2.0s tie for the last place: the lowest id (2) wins */
    T_CHECK(kept_is(&w, l, &o, (int[]){1, 2, 3, -1}, msg, sizeof msg), "k=3: %s", msg);
    o.top_k = 4;
    T_CHECK(kept_is(&w, l, &o, (int[]){1, 2, 3, 5, -1}, msg, sizeof msg), "k=4: %s", msg);
    o.top_k = 5;
    T_CHECK(kept_is(&w, l, &o, (int[]){1, 2, 3, 5, 6, -1}, msg, sizeof msg), "k=5: %s", msg);
    o.top_k = 8;
    T_CHECK(kept_is(&w, l, &o, (int[]){0, 1, 2, 3, 4, 5, 6, 7, -1}, msg, sizeof msg), "k=8: %s", msg);
    o.top_k = 100; /* k >= V: off */
    T_CHECK(kept_is(&w, l, &o, (int[]){0, 1, 2, 3, 4, 5, 6, 7, -1}, msg, sizeof msg), "k=100: %s", msg);
    /* all equal: the k lowest ids */
    const float eq[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    o.top_k = 3;
    T_CHECK(kept_is(&w, eq, &o, (int[]){0, 1, 2, -1}, msg, sizeof msg), "equal, k=3: %s", msg);
    /* the kept probabilities are the softmax over the kept set */
    o.top_k = 2;
    sample_filter(&w, l, &o);
    T_CHECK(fabs(w.probs[0] - 0.5) < 1e-15 && fabs(w.probs[1] - 0.5) < 1e-15, "probs %g %g",
            w.probs[0], w.probs[1]);
    /* larger random rows: top-k agrees with a full sort */
    sample_work_free(&w);
    const int V = 5000;
    sample_work_init(&w, V);
    float *big = ta_malloc(sizeof(float) * V, "t");
    TaRng r;
    ta_rng_seed(&r, 11);
    for (int i = 0; i < V; i++) big[i] = (float)(int)(ta_rng_normal(&r) * 4); /* many ties */
    for (int k = 1; k <= 300; k += 37) {
        o.top_k = k;
        int n = sample_filter(&w, big, &o);
        T_CHECK(n == k, "k=%d kept %d", k, n);
        /* reference: count tokens ranking before each kept one */
        for (int i = 0; i < n; i++) {
            int id = w.ids[i], before = 0;
            for (int v = 0; v < V; v++)
                before += big[v] > big[id] || (big[v] == big[id] && v < id);
            T_CHECK(before < k, "k=%d kept id %d which has %d better tokens", k, id, before);
        }
    }
    free(big);
    sample_work_free(&w);
}

static void t_top_p_boundary(void) {
    SampleWork w;
    sample_work_init(&w, 4);
    char msg[256];
    const float eq[4] = {0, 0, 0, 0}; /* probabilities exactly 0.25 each */
    SampleOptions o = opts(1.0, 0, 0.5, 0.0);
    /* cumulative 0.25, 0.5, ...: p = 0.5 is reached by two tokens (inclusive, as HF) */
    T_CHECK(kept_is(&w, eq, &o, (int[]){0, 1, -1}, msg, sizeof msg), "p=0.5: %s", msg);
    o.top_p = 0.5000001;
    T_CHECK(kept_is(&w, eq, &o, (int[]){0, 1, 2, -1}, msg, sizeof msg), "p=0.5000001: %s", msg);
    o.top_p = 0.25;
    T_CHECK(kept_is(&w, eq, &o, (int[]){0, -1}, msg, sizeof msg), "p=0.25: %s", msg);
    o.top_p = 1e-9; /* always at least the top token */
    T_CHECK(kept_is(&w, eq, &o, (int[]){0, -1}, msg, sizeof msg), "p=1e-9: %s", msg);
    o.top_p = 1.0;
    T_CHECK(kept_is(&w, eq, &o, (int[]){0, 1, 2, 3, -1}, msg, sizeof msg), "p=1: %s", msg);
    /* probabilities 1/2, 1/4, 1/8, 1/8 for ids 2, 0, 3, 1: logits ln of them */
    const float l[4] = {logf(0.25f), logf(0.125f), logf(0.5f), logf(0.125f)};
    o.top_p = 0.5 - 1e-6;
    T_CHECK(kept_is(&w, l, &o, (int[]){2, -1}, msg, sizeof msg), "p=0.5-: %s", msg);
    o.top_p = 0.5 + 1e-6;
    T_CHECK(kept_is(&w, l, &o, (int[]){0, 2, -1}, msg, sizeof msg), "p=0.5+: %s", msg);
    o.top_p = 0.75 + 1e-6; /* the tie at 1/8 is broken by id: 1 before 3 */
    T_CHECK(kept_is(&w, l, &o, (int[]){0, 1, 2, -1}, msg, sizeof msg), "p=0.75+: %s", msg);
    o.top_p = 0.9;
    o.temperature = 0.5; /* temperature first: probabilities 16:4:1:1 /22 -> 0.727, 0.909 */
    T_CHECK(kept_is(&w, l, &o, (int[]){0, 2, -1}, msg, sizeof msg), "T=0.5 p=0.9: %s", msg);
    o.top_p = 0.72;
    T_CHECK(kept_is(&w, l, &o, (int[]){2, -1}, msg, sizeof msg), "T=0.5 p=0.72: %s", msg);
    o.temperature = 1.0;
    o.top_k = 2; /* top-k before top-p: within {2, 0} (2/3, 1/3), p = 0.6 keeps only 2 */
    o.top_p = 0.6;
    T_CHECK(kept_is(&w, l, &o, (int[]){2, -1}, msg, sizeof msg), "k=2 p=0.6: %s", msg);
    o.top_p = 0.7;
    T_CHECK(kept_is(&w, l, &o, (int[]){0, 2, -1}, msg, sizeof msg), "k=2 p=0.7: %s", msg);
    sample_work_free(&w);
    /* a long flat tail (the threshold search must fall back to lower thresholds) */
    const int V = 20000;
    sample_work_init(&w, V);
    float *big = ta_malloc(sizeof(float) * V, "t");
    for (int i = 0; i < V; i++) big[i] = i == 7 ? 5.0f : -(float)(i % 13) * 0.01f;
    o = opts(1.0, 0, 0.99, 0.0);
    int n = sample_filter(&w, big, &o);
    /* reference: full sort by rank */
    double tot = 0;
    for (int i = 0; i < V; i++) tot += exp((double)big[i]);
    /* rank order: token 7, then level 0 (logit 0), level 1 (-0.01), ..., ids ascending */
    int *ord = ta_malloc(sizeof(int) * V, "t");
    int m = 0;
    ord[m++] = 7;
    for (int lvl = 0; lvl < 13; lvl++)
        for (int i = 0; i < V; i++)
            if (i != 7 && i % 13 == lvl) ord[m++] = i;
    double cum = 0;
    int want = 0;
    while (want < V && cum < 0.99 * tot) cum += exp((double)big[ord[want++]]);
    free(ord);
    free(big);
    sample_work_free(&w);
    T_CHECK(n == want, "flat tail: kept %d, expected %d", n, want);
}

static void t_min_p(void) {
    SampleWork w;
    sample_work_init(&w, 5);
    char msg[256];
    /* probabilities relative to the max: 1, 0.5, 0.25, 0.1, 0.5 */
    const float l[5] = {0.0f, logf(0.5f), logf(0.25f), logf(0.1f), logf(0.5f)};
    SampleOptions o = opts(1.0, 0, 1.0, 0.5 - 1e-6);
    T_CHECK(kept_is(&w, l, &o, (int[]){0, 1, 4, -1}, msg, sizeof msg), "min_p 0.5-: %s", msg);
    o.min_p = 0.5 + 1e-6;
    T_CHECK(kept_is(&w, l, &o, (int[]){0, -1}, msg, sizeof msg), "min_p 0.5+: %s", msg);
    o.min_p = 0.2;
    T_CHECK(kept_is(&w, l, &o, (int[]){0, 1, 2, 4, -1}, msg, sizeof msg), "min_p 0.2: %s", msg);
    o.min_p = 0.05;
    T_CHECK(kept_is(&w, l, &o, (int[]){0, 1, 2, 3, 4, -1}, msg, sizeof msg), "min_p 0.05: %s", msg);
    /* temperature 0.5 squares the ratios: 1, 0.25, 0.0625, 0.01, 0.25 */
    o.temperature = 0.5;
    o.min_p = 0.2;
    T_CHECK(kept_is(&w, l, &o, (int[]){0, 1, 4, -1}, msg, sizeof msg), "T=0.5 min_p 0.2: %s", msg);
    /* kept probabilities renormalised: 1 : 0.25 : 0.25 */
    sample_filter(&w, l, &o);
    T_CHECK(fabs(w.probs[0] - 1 / 1.5) < 1e-6 && fabs(w.probs[1] - 0.25 / 1.5) < 1e-6,
            "probs %.9g %.9g", w.probs[0], w.probs[1]);
    sample_work_free(&w);
}

static void t_penalties(void) {
    const int V = 6;
    float l[6] = {2.0f, -2.0f, 3.0f, -1.0f, 0.0f, 1.5f};
    uint8_t seen[6] = {1, 1, 3, 3, 0, 0}; /* 0,1 in the prompt; 2,3 generated; 4,5 unseen */
    sample_apply_penalties(l, V, seen, 2.0, 0.0);
    const float want_rep[6] = {1.0f, -4.0f, 1.5f, -2.0f, 0.0f, 1.5f};
    for (int v = 0; v < V; v++) T_CHECK(l[v] == want_rep[v], "repetition: logit %d = %g, want %g", v, l[v], want_rep[v]);
    sample_apply_penalties(l, V, seen, 1.0, 0.5); /* presence: generated tokens only */
    const float want_pres[6] = {1.0f, -4.0f, 1.0f, -2.5f, 0.0f, 1.5f};
    for (int v = 0; v < V; v++) T_CHECK(l[v] == want_pres[v], "presence: logit %d = %g, want %g", v, l[v], want_pres[v]);
    /* both at once, repetition first: (3 / 2) - 0.5 = 1 for token 2 */
    float l2[6] = {2.0f, -2.0f, 3.0f, -1.0f, 0.0f, 1.5f};
    sample_apply_penalties(l2, V, seen, 2.0, 0.5);
    for (int v = 0; v < V; v++) T_CHECK(l2[v] == want_pres[v], "both: logit %d = %g, want %g", v, l2[v], want_pres[v]);
    /* through SampleWork marks: repeated tokens are penalised once */
    SampleWork w;
    sample_work_init(&w, V);
    int prompt[4] = {0, 0, 1, 0};
    sample_work_start(&w, prompt, 4);
    sample_work_add(&w, 2);
    sample_work_add(&w, 2);
    sample_work_add(&w, 3);
    T_CHECK(!memcmp(w.seen, seen, 6), "marks %d %d %d %d %d %d", w.seen[0], w.seen[1], w.seen[2],
            w.seen[3], w.seen[4], w.seen[5]);
    /* min_new_tokens: EOS (id 5 here) masked while n_gen (3 adds so far) < min */
    SampleOptions g = opts(0.0, 0, 1.0, 0.0);
    g.eos_id = 5;
    const float eos_best[6] = {0.0f, 1.0f, 0.5f, 0.0f, 0.0f, 9.0f};
    TaRng rr;
    ta_rng_seed(&rr, 2);
    T_CHECK(w.n_gen == 3, "n_gen %d", w.n_gen);
    g.min_new_tokens = 4;
    T_CHECK(sample_next(&w, eos_best, &g, &rr) == 1, "EOS not masked below min_new_tokens");
    g.min_new_tokens = 3;
    T_CHECK(sample_next(&w, eos_best, &g, &rr) == 5, "EOS masked at min_new_tokens");
    /* greedy after penalties: token 2 (3.0) falls to 1.0, token 5 (1.5) wins */
    SampleOptions o = opts(0.0, 0, 1.0, 0.0);
    o.repetition_penalty = 2.0;
    o.presence_penalty = 0.5;
    const float raw[6] = {2.0f, -2.0f, 3.0f, -1.0f, 0.0f, 1.5f};
    TaRng r;
    ta_rng_seed(&r, 1);
    int t = sample_next(&w, raw, &o, &r);
    T_CHECK(t == 5, "greedy after penalties chose %d, expected 5", t);
    o.repetition_penalty = 1.0;
    o.presence_penalty = 0.0;
    t = sample_next(&w, raw, &o, &r);
    T_CHECK(t == 2, "greedy without penalties chose %d, expected 2", t);
    sample_work_free(&w);
}

static void t_greedy_ties_nan_padding(void) {
    const float a[5] = {1.0f, 4.0f, NAN, 4.0f, -INFINITY};
    T_CHECK(sample_argmax(a, 5) == 1, "argmax tie -> %d, expected 1", sample_argmax(a, 5));
    const float b[3] = {NAN, NAN, -5.0f};
    T_CHECK(sample_argmax(b, 3) == 2, "argmax with NaNs -> %d", sample_argmax(b, 3));
    const float c[2] = {NAN, NAN};
    T_CHECK(sample_argmax(c, 2) == -1, "all NaN -> %d", sample_argmax(c, 2));
    /* V = 3 real tokens; entries beyond V (padding) are never looked at even if huge */
    SampleWork w;
    sample_work_init(&w, 3);
    const float l[6] = {0.0f, 1.0f, NAN, 100.0f, 100.0f, 100.0f};
    SampleOptions o = opts(1.0, 0, 1.0, 0.0);
    TaRng r;
    ta_rng_seed(&r, 5);
    for (int i = 0; i < 200; i++) {
        int t = sample_next(&w, l, &o, &r);
        T_CHECK(t == 0 || t == 1, "sampled %d (NaN or padded)", t);
    }
    o.temperature = 0.0;
    T_CHECK(sample_next(&w, l, &o, &r) == 1, "greedy over padding");
    sample_work_free(&w);
}

/* Draw frequencies match the kept probabilities (chi-square-like bound), and the same
 * seed gives the same draws. */
static void t_draw_distribution(void) {
    SampleWork w;
    sample_work_init(&w, 6);
    const float l[6] = {0.0f, 1.0f, 2.0f, -1.0f, 0.5f, 1.5f};
    SampleOptions o = opts(0.8, 4, 0.95, 0.05);
    int n = sample_filter(&w, l, &o);
    double p[6] = {0};
    for (int i = 0; i < n; i++) p[w.ids[i]] = w.probs[i];
    TaRng r;
    ta_rng_seed(&r, 42);
    const int N = 200000;
    int cnt[6] = {0};
    for (int i = 0; i < N; i++) cnt[sample_next(&w, l, &o, &r)]++;
    for (int v = 0; v < 6; v++) {
        double e = p[v] * N, sd = sqrt(N * p[v] * (1 - p[v])) + 1e-9;
        T_CHECK(fabs(cnt[v] - e) <= 5 * sd, "token %d drawn %d times, expected %.0f (p %.4f)", v,
                cnt[v], e, p[v]);
        if (p[v] == 0) T_CHECK(cnt[v] == 0, "token %d outside the kept set drawn", v);
    }
    TaRng a, b;
    ta_rng_seed(&a, 9);
    ta_rng_seed(&b, 9);
    for (int i = 0; i < 100; i++)
        T_CHECK(sample_next(&w, l, &o, &a) == sample_next(&w, l, &o, &b), "same seed, draw %d differs", i);
    T_CHECK(sample_seq_seed(1, 0, 1) != sample_seq_seed(1, 1, 0) &&
                sample_seq_seed(1, 0, 0) != sample_seq_seed(2, 0, 0),
            "sequence seeds collide");
    sample_work_free(&w);
}

static void t_options_check(void) {
    SampleOptions o;
    TaError err;
    const char *needle[11] = {"n (responses", "max_new_tokens", "temperature", "top_k", "top_p",
                              "top_p", "min_p", "min_p", "repetition_penalty", "batch",
                              "min_new_tokens"};
    for (int i = 0; i < 11; i++) {
        sample_options_default(&o);
        switch (i) {
        case 0: o.n = 0; break;
        case 1: o.max_new_tokens = 0; break;
        case 2: o.temperature = -0.1; break;
        case 3: o.top_k = -1; break;
        case 4: o.top_p = 0.0; break;
        case 5: o.top_p = 1.01; break;
        case 6: o.min_p = 1.0; break;
        case 7: o.min_p = -0.1; break;
        case 8: o.repetition_penalty = 0.0; break;
        case 9: o.batch = 0; break;
        case 10: o.min_new_tokens = o.max_new_tokens + 1; break;
        }
        int rc = sample_options_check(&o, &err);
        T_CHECK(rc == TA_EINPUT && strstr(err.msg, needle[i]), "case %d accepted or bad message: %s", i, err.msg);
    }
    sample_options_default(&o);
    T_CHECK(sample_options_check(&o, &err) == TA_OK, "defaults rejected: %s", err.msg);
    o.top_p = 1.0;
    o.min_p = 0.0;
    o.temperature = 0.0;
    T_CHECK(sample_options_check(&o, &err) == TA_OK, "edge values rejected: %s", err.msg);
}

/* ---- generation on the random model (ids only, no tokenizer) ------------------------ */
static const int P0[] = {1, 2, 3, 4, 5}, P1[] = {9}, P2[] = {7, 7, 8, 30, 31, 32, 33, 34, 35, 36};
static const int *PROMPTS[3] = {P0, P1, P2};
static const int PLENS[3] = {5, 1, 10};

static SampleResult *generate(const SampleOptions *o, int threads, int first_index) {
    int saved = ta_get_threads();
    ta_set_threads(threads);
    SampleGen *g;
    TaError err;
    TA_ASSERT(sample_gen_init(&g, &M, NULL, o, 10, &err) == TA_OK);
    SampleResult *res = ta_calloc(sizeof *res * 3 * o->n, "t");
    TA_ASSERT(sample_gen_run(g, PROMPTS, PLENS, 3, first_index, res, NULL, &err) == TA_OK);
    sample_gen_free(g);
    ta_set_threads(saved);
    return res;
}

static int same_results(const SampleResult *a, const SampleResult *b, int n, char *msg, size_t cap) {
    for (int i = 0; i < n; i++) {
        if (a[i].num_tokens != b[i].num_tokens || a[i].finish != b[i].finish ||
            memcmp(a[i].ids, b[i].ids, sizeof(int) * a[i].num_tokens)) {
            snprintf(msg, cap, "response %d differs (%d vs %d tokens, %s vs %s)", i, a[i].num_tokens,
                     b[i].num_tokens, sample_finish_name(a[i].finish), sample_finish_name(b[i].finish));
            return 0;
        }
    }
    return 1;
}

static void free_results(SampleResult *r, int n) {
    for (int i = 0; i < n; i++) sample_result_free(&r[i]);
    free(r);
}

static void t_generate_reproducible(void) {
    SampleOptions o = opts(1.0, 20, 0.95, 0.0);
    o.n = 3;
    o.max_new_tokens = 25;
    o.seed = 1234;
    o.repetition_penalty = 1.1;
    char msg[256];
    o.batch = 4;
    SampleResult *a = generate(&o, 2, 0);
    SampleResult *b = generate(&o, 2, 0);
    int same = same_results(a, b, 9, msg, sizeof msg);
    T_CHECK(same, "same seed: %s", msg);
    /* batch 1 and batch 9 (one decode step per sequence vs all nine together), 1 thread */
    o.batch = 1;
    SampleResult *c = generate(&o, 1, 0);
    o.batch = 9;
    SampleResult *d = generate(&o, 2, 0);
    int same_c = same_results(a, c, 9, msg, sizeof msg);
    T_CHECK(same_c, "batch 4/2 threads vs batch 1/1 thread: %s", msg);
    int same_d = same_results(a, d, 9, msg, sizeof msg);
    T_CHECK(same_d, "batch 4 vs batch 9: %s", msg);
    /* the samples of one prompt differ; another seed differs */
    int distinct = 0;
    for (int i = 0; i < 3; i++)
        distinct += !(a[3 * i].num_tokens == a[3 * i + 1].num_tokens &&
                      !memcmp(a[3 * i].ids, a[3 * i + 1].ids, sizeof(int) * a[3 * i].num_tokens));
    T_CHECK(distinct >= 2, "samples of the same prompt are identical");
    o.seed = 1235;
    SampleResult *e = generate(&o, 2, 0);
    T_CHECK(!same_results(a, e, 9, msg, sizeof msg), "another seed gave the same responses");
    /* prompt indices are global: a run starting at index 5 differs */
    o.seed = 1234;
    SampleResult *f = generate(&o, 2, 5);
    T_CHECK(!same_results(a, f, 9, msg, sizeof msg), "first_index ignored");
    free_results(a, 9);
    free_results(b, 9);
    free_results(c, 9);
    free_results(d, 9);
    free_results(e, 9);
    free_results(f, 9);
}

/* Greedy generation equals argmax over gpt2_forward of the growing sequence. */
static void t_generate_greedy_vs_forward(void) {
    SampleOptions o = opts(0.0, 0, 1.0, 0.0);
    o.max_new_tokens = 20;
    o.batch = 2;
    SampleResult *a = generate(&o, 2, 0);
    GPT2 f;
    gpt2_init(&f, &CFG, 0);
    memcpy(f.params_memory, M.params_memory, M.num_params * sizeof(float));
    gpt2_alloc_acts(&f, 1, CFG.max_seq_len);
    for (int i = 0; i < 3; i++) {
        int seq[40];
        memcpy(seq, PROMPTS[i], sizeof(int) * PLENS[i]);
        int n = PLENS[i];
        T_CHECK(a[i].num_tokens == 20 && a[i].finish == SAMPLE_LENGTH, "prompt %d: %d tokens, %s", i,
                a[i].num_tokens, sample_finish_name(a[i].finish));
        for (int k = 0; k < 20; k++) {
            TaError err;
            TA_ASSERT(gpt2_forward(&f, seq, NULL, 1, n, &err) == TA_OK);
            const float *row = f.acts.logits + (size_t)(n - 1) * CFG.padded_vocab_size;
            int t = sample_argmax(row, CFG.vocab_size);
            T_CHECK(a[i].ids[k] == t, "prompt %d token %d: decode %d, full forward %d", i, k,
                    a[i].ids[k], t);
            seq[n++] = t;
        }
    }
    gpt2_free(&f);
    free_results(a, 3);
}

static void t_generate_eos_and_length(void) {
    /* take the greedy continuation of prompt 0, and declare its 4th token EOS */
    SampleOptions o = opts(0.0, 0, 1.0, 0.0);
    o.max_new_tokens = 12;
    SampleResult *a = generate(&o, 2, 0);
    int eos = a[0].ids[3], first = 0;
    while (a[0].ids[first] != eos) first++; /* first occurrence */
    o.eos_id = eos;
    SampleResult *b = generate(&o, 2, 0);
    T_CHECK(b[0].finish == SAMPLE_EOS && b[0].num_tokens == first + 1 && b[0].ids[first] == eos,
            "EOS: %s after %d tokens (expected eos after %d)", sample_finish_name(b[0].finish),
            b[0].num_tokens, first + 1);
    /* min_new_tokens: EOS is masked before that many tokens, so the response runs on */
    o.min_new_tokens = first + 2;
    SampleResult *m = generate(&o, 2, 0);
    int eos_early = 0;
    for (int k = 0; k < m[0].num_tokens && k < first + 2; k++) eos_early |= m[0].ids[k] == eos;
    T_CHECK(!eos_early && m[0].num_tokens >= first + 2, "min_new_tokens %d: EOS within the first "
            "tokens or stopped after %d", first + 2, m[0].num_tokens);
    for (int k = 0; k < first; k++) T_CHECK(m[0].ids[k] == a[0].ids[k], "min_new_tokens changed token %d", k);
    free_results(m, 3);
    o.min_new_tokens = 0;
    /* max_seq_len: a 10-token prompt and 40 new tokens stop at 40 tokens in all */
    o.eos_id = -1;
    o.max_new_tokens = 100;
    SampleResult *c = generate(&o, 2, 0);
    T_CHECK(c[2].finish == SAMPLE_LENGTH && c[2].num_tokens == CFG.max_seq_len - 10,
            "context limit: %s after %d tokens", sample_finish_name(c[2].finish), c[2].num_tokens);
    free_results(a, 3);
    free_results(b, 3);
    free_results(c, 3);
}

static void t_generate_bad_input(void) {
    SampleOptions o = opts(1.0, 0, 1.0, 0.0);
    SampleGen *g = NULL;
    TaError err;
    o.top_p = 2.0;
    T_CHECK(sample_gen_init(&g, &M, NULL, &o, 5, &err) == TA_EINPUT && !g, "bad top_p accepted");
    o.top_p = 1.0;
    T_CHECK(sample_gen_init(&g, &M, NULL, &o, CFG.max_seq_len, &err) == TA_EINPUT &&
                strstr(err.msg, "max_seq_len"),
            "prompt of max_seq_len accepted: %s", err.msg);
    T_CHECK(sample_gen_init(&g, &M, NULL, &o, 5, &err) == TA_OK, "%s", err.msg);
    SampleResult res[3];
    const int bad[2] = {1, 100};
    const int *pp[1] = {bad};
    int lens[1] = {2};
    int rc = sample_gen_run(g, pp, lens, 1, 0, res, NULL, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "token id 100"), "bad id: %s", err.msg);
    lens[0] = 6;
    rc = sample_gen_run(g, pp, lens, 1, 0, res, NULL, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "6 tokens"), "long prompt: %s", err.msg);
    lens[0] = 0;
    rc = sample_gen_run(g, pp, lens, 1, 0, res, NULL, &err);
    T_CHECK(rc == TA_EINPUT, "empty prompt accepted");
    sample_gen_free(g);
}

/* ---- sample_texts (the trainer's call) ------------------------------------------------ */
static Tokenizer *TOK;

static int setup_tokenizer(char *msg, size_t cap) {
    const char *ref = getenv("TA_REF") ? getenv("TA_REF") : "build/ref";
    char dir[1024], input[1100], prefix[1100], model[1200];
    snprintf(dir, sizeof dir, "%s/sample", ref);
    TaError err = {0};
    if (ta_mkdirs(dir, &err) != TA_OK) return snprintf(msg, cap, "%s", err.msg), -1;
    snprintf(input, sizeof input, "%s/corpus.txt", dir);
    FILE *f = fopen(input, "w");
    if (!f) return snprintf(msg, cap, "cannot write %s", input), -1;
    TaRng r;
    ta_rng_seed(&r, 17);
    const char *words[] = {"the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away"};
    for (int i = 0; i < 400; i++) {
        int n = 3 + (int)ta_rng_below(&r, 6);
        for (int k = 0; k < n; k++) fprintf(f, "%s%s", k ? " " : "", words[ta_rng_below(&r, 10)]);
        fputc('\n', f);
    }
    fclose(f);
    TokenizerTrainOptions o;
    tokenizer_train_defaults(&o);
    o.input = input;
    snprintf(prefix, sizeof prefix, "%s/spm", dir);
    o.model_prefix = prefix;
    o.vocab_size = 60;
    o.byte_fallback = 0;
    o.character_coverage = 1.0;
    if (tokenizer_train(&o, &err) != TA_OK) return snprintf(msg, cap, "%s", err.msg), -1;
    snprintf(model, sizeof model, "%s.model", prefix);
    if (tokenizer_load(&TOK, model, &err) != TA_OK) return snprintf(msg, cap, "%s", err.msg), -1;
    return 0;
}

static void t_sample_texts(void) {
    char msg[1200];
    T_CHECK(setup_tokenizer(msg, sizeof msg) == 0, "tokenizer: %s", msg);
    T_CHECK(tokenizer_vocab_size(TOK) == 60, "vocab %d", tokenizer_vocab_size(TOK));
    /* a training policy: gradients and activations allocated and holding values */
    GPT2 pol;
    gpt2_init(&pol, &CFG, 1);
    memcpy(pol.params_memory, M.params_memory, M.num_params * sizeof(float));
    gpt2_alloc_acts(&pol, 2, 8);
    for (size_t i = 0; i < pol.num_params; i++) pol.grads_memory[i] = (float)(i % 7);
    for (size_t i = 0; i < pol.num_acts; i++) pol.acts_memory[i] = (float)(i % 5);
    float *p0 = ta_malloc(pol.num_params * sizeof(float), "t"), *g0 = ta_malloc(pol.num_params * sizeof(float), "t");
    float *a0 = ta_malloc(pol.num_acts * sizeof(float), "t");
    memcpy(p0, pol.params_memory, pol.num_params * sizeof(float));
    memcpy(g0, pol.grads_memory, pol.num_params * sizeof(float));
    memcpy(a0, pol.acts_memory, pol.num_acts * sizeof(float));

    const char *prompts[3] = {"the cat", "", "a dog ran far away on the mat"};
    SampleOptions o = opts(4.0, 0, 0.99, 0.0); /* the model's logits are very peaked */
    o.n = 2;
    o.max_new_tokens = 12;
    o.seed = 77;
    char *texts[6] = {0}, *again[6] = {0};
    TaError err = {0};
    int rc = sample_texts(&pol, TOK, prompts, 3, &o, texts, &err);
    T_CHECK(rc == TA_OK, "sample_texts: %s", err.msg);
    rc = sample_texts(&pol, TOK, prompts, 3, &o, again, &err);
    T_CHECK(rc == TA_OK, "sample_texts again: %s", err.msg);
    int same_mem = !memcmp(p0, pol.params_memory, pol.num_params * sizeof(float)) &&
                   !memcmp(g0, pol.grads_memory, pol.num_params * sizeof(float)) &&
                   !memcmp(a0, pol.acts_memory, pol.num_acts * sizeof(float));
    free(p0);
    free(g0);
    free(a0);
    T_CHECK(same_mem, "the policy's parameters, gradients or activations changed");

    /* the same through the generator, with ids: texts equal, ids inside the tokenizer */
    SampleGen *g;
    T_CHECK(sample_gen_init(&g, &pol, TOK, &o, 20, &err) == TA_OK, "%s", err.msg);
    int *ids[3], lens[3];
    for (int i = 0; i < 3; i++) TA_ASSERT(row_encode_generation_prompt(TOK, prompts[i], 0, &ids[i], &lens[i], &err) == TA_OK);
    T_CHECK(lens[1] == 1 && ids[1][0] == tokenizer_bos_id(TOK), "empty prompt -> [BOS] (got %d ids)", lens[1]);
    SampleResult res[6];
    rc = sample_gen_run(g, (const int *const *)ids, lens, 3, 0, res, NULL, &err);
    sample_gen_free(g);
    T_CHECK(rc == TA_OK, "%s", err.msg);
    int distinct = 0;
    for (int i = 0; i < 6; i++) {
        T_CHECK(texts[i] && again[i] && !strcmp(texts[i], again[i]), "text %d not reproducible", i);
        T_CHECK(!strcmp(texts[i], res[i].text), "text %d: sample_texts \"%s\" vs generator \"%s\"", i,
                texts[i], res[i].text);
        for (int k = 0; k < res[i].num_tokens; k++)
            T_CHECK(res[i].ids[k] >= 0 && res[i].ids[k] < 60, "id %d outside the tokenizer", res[i].ids[k]);
        if (i % 2 == 1) distinct += strcmp(texts[i], texts[i - 1]) != 0;
    }
    T_CHECK(distinct >= 1, "the two samples of every prompt are identical");
    for (int i = 0; i < 6; i++) {
        free(texts[i]);
        free(again[i]);
        sample_result_free(&res[i]);
    }
    for (int i = 0; i < 3; i++) free(ids[i]);

    /* a prompt of max_seq_len tokens: TA_EINPUT, nothing written */
    char longp[400] = "";
    for (int i = 0; i < 45; i++) strcat(longp, "cat ");
    const char *bad[2] = {"the", longp};
    char *none[2] = {0};
    rc = sample_texts(&pol, TOK, bad, 2, &o, none, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "sample prompt 2") && !none[0] && !none[1],
            "long prompt: %d %s", rc, err.msg);
    o.temperature = -1;
    rc = sample_texts(&pol, TOK, prompts, 1, &o, none, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "temperature"), "bad options: %d %s", rc, err.msg);
    gpt2_free(&pol);
}

int main(void) {
    ta_set_threads(0);
    setup_model();
    make_reference();
    t_run("decode/packed_prefill_then_steps_equal_full_forward", t_decode_packed);
    t_run("decode/prefill_split_over_calls", t_decode_split_prefill);
    t_run("decode/cache_copy_and_compacted_logits", t_decode_copy);
    t_run("decode/steps_bitwise_same_at_1_2_threads_and_any_batch", t_decode_threads_and_batch);
    t_run("decode/bad_rows_rejected", t_decode_bad_rows);
    t_run("sampler/top_k_ties_to_lower_id", t_top_k_ties);
    t_run("sampler/top_p_boundary_inclusive", t_top_p_boundary);
    t_run("sampler/min_p_relative_to_max", t_min_p);
    t_run("sampler/repetition_and_presence_penalties_exact", t_penalties);
    t_run("sampler/greedy_ties_nan_padding", t_greedy_ties_nan_padding);
    t_run("sampler/draw_distribution_and_seed", t_draw_distribution);
    t_run("sampler/options_check", t_options_check);
    t_run("generate/reproducible_batch_and_thread_independent", t_generate_reproducible);
    t_run("generate/greedy_equals_full_forward_argmax", t_generate_greedy_vs_forward);
    t_run("generate/eos_and_length", t_generate_eos_and_length);
    t_run("generate/bad_input", t_generate_bad_input);
    t_run("sample_texts/shares_policy_weights_matches_generator", t_sample_texts);
    tokenizer_free(TOK);
    for (int s = 0; s < NSEQ; s++) free(REF_LOGITS[s]);
    gpt2_free(&M);
    return t_done();
}
