/* generate.c — batched generation of n responses per prompt over the KV cache.
 *
 * A SampleGen holds a GPT2Decode with one cache slot per concurrently decoded sequence
 * (opt.batch of them) and per slot the sampler scratch, the RNG and the generated ids.
 * sample_gen_run is continuous batching:
 *   1. free slots take the next sequences (prompt-major: prompt i's samples 0..n-1, then
 *      prompt i+1's ...). The samples of one prompt launched together form a group: the
 *      first one's prompt is prefilled (prompt tokens as rows, several prompts packed into
 *      one call of up to R rows), then its cache is copied to the others; every member
 *      samples its first token from the group's last-position logits;
 *   2. one decode step feeds every active sequence its last token (N = active sequences),
 *      and each samples its next token from its row of logits (sequences in parallel:
 *      each has its own scratch and RNG);
 *   3. a sequence that stops (EOS, max_new_tokens, max_seq_len, stop string) writes its
 *      result and frees its slot at once.
 * Nothing is allocated per token on the model path; with stop strings, the generated ids
 * are decoded after each token (the tokenizer allocates the string) to search them.
 * Not here: beam search, speculative decoding, prefix caching across calls.
 */
#include <stdlib.h>
#include <string.h>

#include "tinyalign/data.h"
#include "tinyalign/sample.h"
#include "tinyalign/tokenizer.h"

#define PREFILL_ROWS 64 /* rows per call: prefill chunks (and at least the batch) */

typedef struct {
    int active;
    int prompt;     /* index of the prompt in the current run */
    int sample;     /* j in 0..n-1 */
    int plen;       /* prompt tokens */
    int *gen;       /* (max_new_tokens) generated ids */
    int n_gen;
    int next;       /* the token to feed at the next step */
    SampleWork work;
    TaRng rng;
    int group;      /* launch group (prefill sharing) */
} Slot;

struct SampleGen {
    const GPT2 *model;
    const Tokenizer *tok;
    SampleOptions opt;
    int Vs;             /* sampled vocabulary: min(V, tokenizer vocabulary) */
    int max_prompt_len;
    GPT2Decode dec;
    Slot *slots;        /* (S) */
    int *row_seq;       /* (R) */
    int *row_tok;       /* (R) */
    int *row_group;     /* (R) group whose prefill ends at this row, else -1 */
    unsigned char *row_want; /* (R) */
    int *group_lead;    /* (S) leader slot of each launch group */
    int *list;          /* (S) scratch list of slots */
    int *tokens;        /* (S) tokens fed / slots sampled in one round */
    const float **rows; /* (S) logits row of each slot sampled in one round */
    SampleProgressFn progress;
    void *progress_ctx;
};

const char *sample_finish_name(SampleFinish f) {
    return f == SAMPLE_EOS ? "eos" : f == SAMPLE_LENGTH ? "length" : "stop";
}

void sample_result_free(SampleResult *r) {
    free(r->ids);
    free(r->text);
    memset(r, 0, sizeof *r);
}

int sample_gen_init(SampleGen **out, const GPT2 *model, const Tokenizer *tok,
                    const SampleOptions *opt, int max_prompt_len, TaError *err) {
    *out = NULL;
    int rc = sample_options_check(opt, err);
    if (rc != TA_OK) return rc;
    const GPT2Config *c = &model->config;
    if (max_prompt_len < 1 || max_prompt_len >= c->max_seq_len)
        return ta_err(err, TA_EINPUT,
                      "prompts of %d tokens: the model's max_seq_len is %d (a prompt, BOS "
                      "included, must have 1 to %d tokens to leave room for generation)",
                      max_prompt_len, c->max_seq_len, c->max_seq_len - 1);
    if (opt->n_stop > 0 && !tok)
        return ta_err(err, TA_EINPUT, "stop strings need a tokenizer to decode the text");
    int Vs = c->vocab_size;
    SampleOptions o = *opt;
    if (tok) {
        int tv = tokenizer_vocab_size(tok);
        if (tv > c->vocab_size)
            return ta_err(err, TA_EINPUT,
                          "the tokenizer %s has %d pieces but the model's vocabulary is %d",
                          tokenizer_path(tok), tv, c->vocab_size);
        Vs = tv;
        o.eos_id = tokenizer_eos_id(tok);
    }
    SampleGen *g = ta_calloc(sizeof *g, "generator");
    g->model = model;
    g->tok = tok;
    g->opt = o;
    g->Vs = Vs;
    g->max_prompt_len = max_prompt_len;
    const int S = o.batch, R = S > PREFILL_ROWS ? S : PREFILL_ROWS;
    long cache = (long)max_prompt_len + o.max_new_tokens;
    if (cache > c->max_seq_len) cache = c->max_seq_len;
    gpt2_decode_init(&g->dec, model, S, (int)cache, R);
    g->slots = ta_calloc(sizeof(Slot) * (size_t)S, "generator slots");
    for (int s = 0; s < S; s++) {
        g->slots[s].gen = ta_malloc(sizeof(int) * (size_t)o.max_new_tokens, "generated ids");
        sample_work_init(&g->slots[s].work, Vs);
    }
    g->row_seq = ta_malloc(sizeof(int) * (size_t)R, "rows");
    g->row_tok = ta_malloc(sizeof(int) * (size_t)R, "rows");
    g->row_group = ta_malloc(sizeof(int) * (size_t)R, "rows");
    g->row_want = ta_malloc((size_t)R, "rows");
    g->group_lead = ta_malloc(sizeof(int) * (size_t)S, "groups");
    g->list = ta_malloc(sizeof(int) * (size_t)S, "slot list");
    g->tokens = ta_malloc(sizeof(int) * (size_t)S, "tokens");
    g->rows = ta_malloc(sizeof(float *) * (size_t)S, "logits rows");
    *out = g;
    return TA_OK;
}

void sample_gen_free(SampleGen *g) {
    if (!g) return;
    for (int s = 0; s < g->opt.batch && g->slots; s++) {
        free(g->slots[s].gen);
        sample_work_free(&g->slots[s].work);
    }
    free(g->slots);
    gpt2_decode_free(&g->dec);
    free(g->row_seq);
    free(g->row_tok);
    free(g->row_group);
    free(g->row_want);
    free(g->group_lead);
    free(g->list);
    free(g->tokens);
    free(g->rows);
    free(g);
}

void sample_gen_set_progress(SampleGen *g, SampleProgressFn fn, void *ctx) {
    g->progress = fn;
    g->progress_ctx = ctx;
}

size_t sample_gen_bytes(const SampleGen *g) {
    size_t per_slot = (size_t)g->Vs * (sizeof(float) + sizeof(SampleCand) + sizeof(int) +
                                       sizeof(double) + 1) +
                      sizeof(int) * (size_t)g->opt.max_new_tokens;
    return gpt2_decode_bytes(&g->dec) + per_slot * (size_t)g->opt.batch;
}

/* Copies s[0..n) replacing every invalid UTF-8 sequence (overlong forms, surrogates,
 * > U+10FFFF, stray or missing continuation bytes) by U+FFFD. Returns a malloc'd string. */
static char *utf8_clean(const char *s, size_t n) {
    char *o = ta_malloc(3 * n + 1, "text");
    size_t k = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                                  : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        int ok = len > 0 && i + len <= n;
        for (size_t j = 1; ok && j < len; j++) ok = (u[i + j] & 0xC0) == 0x80;
        if (ok && len == 3) {
            unsigned c1 = u[i + 1];
            ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0); /* overlong, surrogate */
        }
        if (ok && len == 4) {
            unsigned c1 = u[i + 1];
            ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
        }
        if (ok) {
            memcpy(o + k, s + i, len);
            k += len;
            i += len;
        } else {
            memcpy(o + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i += 1;
        }
    }
    o[k] = '\0';
    return o;
}

/* Decodes the generated ids (without a final EOS) and, if want_stop, finds the earliest
 * stop string: returns 1 and cuts the text there when one is found. *text malloc'd. */
static int decode_text(const SampleGen *g, const Slot *sl, int n_ids, int want_stop,
                       char **text) {
    char *raw = NULL;
    TaError err;
    int rc = tokenizer_decode(g->tok, sl->gen, n_ids, &raw, &err);
    TA_ASSERT(rc == TA_OK); /* ids < tokenizer vocabulary by construction */
    size_t len = strlen(raw);
    int stopped = 0;
    if (want_stop) {
        size_t at = len;
        for (int i = 0; i < g->opt.n_stop; i++) {
            const char *m = strstr(raw, g->opt.stop[i]);
            if (m && (size_t)(m - raw) < at) at = (size_t)(m - raw);
        }
        if (at < len) {
            len = at;
            stopped = 1;
        }
    }
    *text = utf8_clean(raw, len);
    free(raw);
    return stopped;
}

/* Records token t for slot s: returns 1 when the sequence finished (result written to
 * out), 0 when it continues (t becomes the next input). Thread-safe across slots. */
static int take_token(SampleGen *g, Slot *sl, int t, SampleResult *out) {
    const SampleOptions *o = &g->opt;
    sl->gen[sl->n_gen++] = t;
    sample_work_add(&sl->work, t);
    int finish = -1;
    char *text = NULL;
    if (t == o->eos_id) {
        finish = SAMPLE_EOS;
    } else if (o->n_stop > 0 && decode_text(g, sl, sl->n_gen, 1, &text)) {
        finish = SAMPLE_STOP;
    } else if (sl->n_gen >= o->max_new_tokens || sl->plen + sl->n_gen >= g->dec.maxT) {
        finish = SAMPLE_LENGTH;
    }
    if (finish < 0) {
        free(text);
        sl->next = t;
        return 0;
    }
    SampleResult *r = &out[(size_t)sl->prompt * o->n + sl->sample];
    r->num_tokens = sl->n_gen;
    r->finish = (SampleFinish)finish;
    r->ids = ta_malloc(sizeof(int) * (size_t)sl->n_gen, "result ids");
    memcpy(r->ids, sl->gen, sizeof(int) * (size_t)sl->n_gen);
    if (g->tok && !text) decode_text(g, sl, sl->n_gen - (finish == SAMPLE_EOS), 0, &text);
    r->text = text;
    sl->active = 0;
    return 1;
}

/* Samples one token for each slot list[i] from logits row rows[i]; returns how many
 * finished, or -1 when a row had no finite logit. */
static int sample_round(SampleGen *g, const int *list, const float *const *rows, int n,
                        SampleResult *out) {
    int finished = 0, bad = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : finished, bad) if (n > 1)
    for (int i = 0; i < n; i++) {
        Slot *sl = &g->slots[list[i]];
        int t = sample_next(&sl->work, rows[i], &g->opt, &sl->rng);
        if (t < 0) {
            bad++;
            continue;
        }
        finished += take_token(g, sl, t, out);
    }
    return bad ? -1 : finished;
}

int sample_gen_run(SampleGen *g, const int *const *prompts, const int *lens, int n_prompts,
                   long first_index, SampleResult *out, double *decode_s, TaError *err) {
    const GPT2Config *c = &g->model->config;
    const SampleOptions *o = &g->opt;
    const int S = o->batch, Vp = c->padded_vocab_size;
    if (decode_s) *decode_s = 0.0;
    for (int i = 0; i < n_prompts; i++) {
        if (lens[i] < 1 || lens[i] > g->max_prompt_len)
            return ta_err(err, TA_EINPUT,
                          "prompt %ld has %d tokens: expected 1 to %d (the model's max_seq_len "
                          "is %d)", first_index + i, lens[i], g->max_prompt_len, c->max_seq_len);
        for (int t = 0; t < lens[i]; t++)
            if (prompts[i][t] < 0 || prompts[i][t] >= c->vocab_size)
                return ta_err(err, TA_EINPUT, "prompt %ld: token id %d outside [0, %d)",
                              first_index + i, prompts[i][t], c->vocab_size);
    }
    const long total = (long)n_prompts * o->n;
    memset(out, 0, sizeof *out * (size_t)total);
    for (int s = 0; s < S; s++) g->slots[s].active = 0;
    long next = 0, done = 0, tokens = 0;
    const float **rows = g->rows;
    TaError ferr;
    while (done < total) {
        /* 1. launch: fill free slots, group by prompt, prefill each group's leader */
        int n_groups = 0, n_launch = 0;
        for (int s = 0; s < S && next < total; s++) {
            Slot *sl = &g->slots[s];
            if (sl->active) continue;
            int pi = (int)(next / o->n), j = (int)(next % o->n);
            next++;
            sl->active = 1;
            sl->prompt = pi;
            sl->sample = j;
            sl->plen = lens[pi];
            sl->n_gen = 0;
            sample_work_start(&sl->work, prompts[pi], lens[pi]);
            ta_rng_seed(&sl->rng, sample_seq_seed(o->seed, (uint64_t)(first_index + pi), (uint64_t)j));
            if (n_groups == 0 || g->slots[g->group_lead[n_groups - 1]].prompt != pi) {
                g->group_lead[n_groups++] = s;
                gpt2_decode_reset(&g->dec, s);
            }
            sl->group = n_groups - 1;
            g->list[n_launch++] = s;
        }
        if (n_launch > 0) {
            int r = 0;
            for (int gi = 0; gi < n_groups; gi++) {
                const Slot *lead = &g->slots[g->group_lead[gi]];
                for (int t = 0; t < lead->plen; t++) {
                    g->row_seq[r] = g->group_lead[gi];
                    g->row_tok[r] = prompts[lead->prompt][t];
                    g->row_want[r] = t == lead->plen - 1;
                    g->row_group[r] = t == lead->plen - 1 ? gi : -1;
                    r++;
                    if (r < g->dec.R && !(t == lead->plen - 1 && gi == n_groups - 1)) continue;
                    /* flush: run the rows, then every group finished here samples */
                    if (gpt2_decode_forward(&g->dec, g->row_seq, g->row_tok, r, g->row_want,
                                            &ferr) != TA_OK)
                        TA_ASSERT(0 && "prefill rows validated above");
                    int n = 0;
                    for (int k = 0; k < g->dec.n_logits; k++) {
                        int grp = g->row_group[g->dec.row_keep[k]];
                        for (int m = 0; m < n_launch; m++) {
                            int s = g->list[m];
                            if (g->slots[s].group != grp) continue;
                            gpt2_decode_copy(&g->dec, s, g->group_lead[grp]);
                            rows[n] = g->dec.logits + (size_t)k * Vp;
                            g->tokens[n++] = s;
                        }
                    }
                    int f = sample_round(g, g->tokens, rows, n, out);
                    if (f < 0) goto bad_logits;
                    done += f;
                    tokens += n;
                    r = 0;
                }
            }
        }
        /* 2. one decode step for every active sequence */
        int n = 0;
        for (int s = 0; s < S; s++)
            if (g->slots[s].active) {
                g->list[n] = s;
                g->tokens[n++] = g->slots[s].next;
            }
        if (n == 0) continue;
        double t0 = ta_now();
        if (gpt2_decode_step(&g->dec, g->list, g->tokens, n, &ferr) != TA_OK)
            TA_ASSERT(0 && "decode rows are in range by construction");
        for (int i = 0; i < n; i++) rows[i] = g->dec.logits + (size_t)i * Vp;
        int f = sample_round(g, g->list, rows, n, out);
        if (decode_s) *decode_s += ta_now() - t0;
        if (f < 0) goto bad_logits;
        done += f;
        tokens += n;
        if (g->progress) g->progress(g->progress_ctx, done, total, tokens);
    }
    if (g->progress) g->progress(g->progress_ctx, done, total, tokens);
    return TA_OK;
bad_logits:
    for (long i = 0; i < total; i++) sample_result_free(&out[i]);
    return ta_err(err, TA_ERUNTIME,
                  "the model produced no finite logit (NaN weights or activations?)");
}

int sample_texts(const GPT2 *policy, const Tokenizer *tok, const char *const *prompts, int n,
                 const SampleOptions *opt, char **out_texts, TaError *err) {
    int rc = sample_options_check(opt, err);
    if (rc != TA_OK) return rc;
    if (n <= 0) return TA_OK;
    int **ids = ta_calloc(sizeof(int *) * (size_t)n, "prompt ids");
    int *lens = ta_calloc(sizeof(int) * (size_t)n, "prompt lengths");
    SampleResult *res = NULL;
    SampleGen *g = NULL;
    int maxlen = 1;
    for (int i = 0; i < n; i++) {
        TaError e = {0};
        rc = row_encode_generation_prompt(tok, prompts[i], policy->config.max_seq_len, &ids[i],
                                          &lens[i], &e);
        if (rc != TA_OK) {
            ta_err(err, rc, "sample prompt %d: %s", i + 1, e.msg);
            goto end;
        }
        if (lens[i] > maxlen) maxlen = lens[i];
    }
    rc = sample_gen_init(&g, policy, tok, opt, maxlen, err);
    if (rc != TA_OK) goto end;
    res = ta_calloc(sizeof *res * (size_t)n * opt->n, "results");
    rc = sample_gen_run(g, (const int *const *)ids, lens, n, 0, res, NULL, err);
    if (rc != TA_OK) goto end;
    for (size_t i = 0; i < (size_t)n * opt->n; i++) {
        out_texts[i] = res[i].text;
        res[i].text = NULL;
        sample_result_free(&res[i]);
    }
end:
    free(res);
    sample_gen_free(g);
    for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
    free(lens);
    return rc;
}
