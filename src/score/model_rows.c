/* model_rows.c — a forward-only GPT-2 over the rows of scoring requests (score.h:
 * score_model_open, score_model_rows): the model directory and its tokenizer, data.h's row
 * convention for [BOS] prompt response [EOS], rows sorted by length so a batch carries
 * little padding, one forward per batch, and a callback that reads what it needs from the
 * activations (log-probs, hidden states, a reward head).
 * Not here: what is read (the scorer kinds, curate's model: sources), gradients, caches.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "score_impl.h"
#include "tinyalign/checkpoint.h"
#include "tinyalign/model_io.h"
#include "tinyalign/tokenizer.h"

enum { ROWS_DEFAULT_BATCH = 16 };
#define ROWS_MAX_ACT_BYTES ((size_t)512 << 20)
#define ROWS_LOGIT_CHUNK_BYTES ((size_t)32 << 20)

int score_model_open(ScoreModel *m, const char *path, const char *tokenizer, const char *what,
                     TaError *err) {
    memset(m, 0, sizeof *m);
    TaError e = {0};
    int rc;
    if ((rc = checkpoint_resolve(path, m->dir, sizeof m->dir, &e)) != TA_OK ||
        (rc = model_load_dir(&m->model, m->dir, 0, &e)) != TA_OK)
        return ta_err(err, rc, "%s: %s", what, e.msg);
    m->opened = 1;
    /* readers take logp (and lnf), never the logits of a whole batch: the LM head runs in
     * chunks of ~32 MiB of logits (at least 256 rows), not a (B*T, Vp) buffer that would be
     * the largest allocation of a scoring run (the same logp: the chunked forward computes
     * each row as the whole one does) */
    const size_t vp = (size_t)m->model.config.padded_vocab_size;
    const size_t chunk = ROWS_LOGIT_CHUNK_BYTES / (vp * sizeof(float));
    gpt2_set_lm_chunk(&m->model, chunk > 256 ? (int)chunk : 256);
    char tpath[4200];
    struct stat st;
    if (tokenizer) ta_pathf(tpath, sizeof tpath, "%s", tokenizer);
    else ta_pathf(tpath, sizeof tpath, "%s/tokenizer.model", m->dir);
    if (!tokenizer && stat(tpath, &st) != 0) {
        score_model_close(m);
        return ta_err(err, TA_EINPUT, "%s: the model directory %s has no tokenizer.model (pass "
                      "--tokenizer PATH)", what, m->dir);
    }
    if ((rc = tokenizer_load(&m->tok, tpath, &e)) != TA_OK) {
        score_model_close(m);
        return ta_err(err, rc, "%s: %s", what, e.msg);
    }
    const GPT2Config *c = &m->model.config;
    if (tokenizer_vocab_size(m->tok) > c->vocab_size) {
        rc = ta_err(err, TA_EINPUT, "%s: the tokenizer %s has %d pieces but the model's "
                    "vocabulary is %d", what, tokenizer_path(m->tok), tokenizer_vocab_size(m->tok),
                    c->vocab_size);
        score_model_close(m);
        return rc;
    }
    const DatasetOptions o = {.max_len = c->max_seq_len + 1,
                              .max_prompt_len = c->max_seq_len / 2 > 1 ? c->max_seq_len / 2 : 1,
                              .truncation_mode = TRUNC_KEEP_END};
    if ((rc = row_format_init(&m->fmt, m->tok, &o, &e)) != TA_OK) {
        score_model_close(m);
        return ta_err(err, rc, "%s: %s", what, e.msg);
    }
    return TA_OK;
}

void score_model_close(ScoreModel *m) {
    if (m->opened) gpt2_free(&m->model);
    tokenizer_free(m->tok);
    memset(m, 0, sizeof *m);
}

/* ---- rows ------------------------------------------------------------------------------- */
typedef struct {
    int64_t off;  /* into the token arena */
    int len;      /* L = len(seq) */
    int prompt_len;
    size_t req;
} EncRow;

static int cmp_len(const void *a, const void *b) {
    const EncRow *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return (x->req > y->req) - (x->req < y->req);
}

/* Activation bytes of one row of T positions (gpt2_alloc_acts' tensors, roughly): the
 * layers a model keeps (one for a model without gradients, as here) and, unless the LM head
 * runs in chunks (score_model_open sets that: a fixed buffer, not per row), the row's
 * logits. */
static size_t row_act_bytes(const GPT2 *m, int T) {
    const GPT2Config *c = &m->config;
    size_t C = (size_t)c->d_model, NH = (size_t)c->n_head;
    size_t L = m->grads_memory ? (size_t)c->n_layer : 1;
    size_t logits = m->lm_chunk > 0 || m->hidden_only ? 0 : (size_t)c->padded_vocab_size;
    return 4 * (size_t)T * (L * (17 * C + NH * (size_t)T + 4) + 2 * C + logits + 8);
}

int score_model_rows(ScoreModel *m, const ScoreRequest *req, size_t n,
                     const ScoreRowsOptions *opt, ScoreRowsFn fn, void *ctx, TaError *err) {
    if (n == 0) return TA_OK;
    const GPT2Config *c = &m->model.config;
    const int eos_input = opt->eos_input != 0;
    RowFormat f = m->fmt;
    if (eos_input) f.opt.max_len = c->max_seq_len; /* the EOS takes a position */
    int *tok = NULL;
    EncRow *rows = ta_malloc(sizeof(EncRow) * n, "score rows");
    size_t ntok = 0, cap = 0;
    int rc = TA_OK;
    RowPrompt p = {0};
    const char *p_text = NULL;
    /* 1. encode: rows of one prompt string share its encoding */
    for (size_t i = 0; i < n && rc == TA_OK; i++) {
        TaError e = {0};
        char w[64];
        if (!p_text || req[i].prompt != p_text) {
            row_prompt_free(&p);
            p_text = NULL;
            if ((rc = row_prompt_encode(&f, req[i].prompt, &p, &e)) != TA_OK) {
                rc = ta_err(err, rc, "%s: %s", scorer_where(req, i, w, sizeof w), e.msg);
                break;
            }
            p_text = req[i].prompt;
        }
        if (ntok + (size_t)f.opt.max_len > cap) {
            cap = 2 * cap + (size_t)f.opt.max_len;
            tok = ta_realloc(tok, cap * sizeof(int), "score rows");
        }
        int len, cut;
        if ((rc = row_encode(&f, &p, req[i].response, "response", tok + ntok, &len, &cut, &e)) !=
            TA_OK) {
            rc = ta_err(err, rc, "%s: %s", scorer_where(req, i, w, sizeof w), e.msg);
            break;
        }
        if (opt->truncated) opt->truncated[i] = p.len < p.full_len || cut;
        rows[i] = (EncRow){.off = (int64_t)ntok, .len = len, .prompt_len = p.len, .req = i};
        ntok += (size_t)len;
    }
    row_prompt_free(&p);
    Batch b = {0};
    size_t *ids = NULL;
    if (rc != TA_OK) goto end;
    /* 2. shortest first: a batch's rows have nearly equal lengths */
    qsort(rows, n, sizeof(EncRow), cmp_len);
    const int Tmax = rows[n - 1].len - 1 + eos_input;
    int B = opt->batch_size > 0 ? opt->batch_size : ROWS_DEFAULT_BATCH;
    if (opt->batch_size <= 0) {
        size_t per = row_act_bytes(&m->model, Tmax);
        while (B > 1 && (size_t)B * per > ROWS_MAX_ACT_BYTES) B /= 2;
    }
    if ((size_t)B > n) B = (int)n;
    gpt2_alloc_acts(&m->model, B, Tmax);
    batch_alloc(&b, B, Tmax);
    b.layout = eos_input ? ROWS_SCORE : ROWS_LM; /* ROWS_SCORE: the last token is an input */
    ids = ta_malloc(sizeof(size_t) * (size_t)B, "score rows");
    /* 3. forward batch by batch */
    for (size_t first = 0; first < n && rc == TA_OK; first += (size_t)B) {
        int k = (int)(n - first < (size_t)B ? n - first : (size_t)B);
        int T = 1;
        for (int r = 0; r < k; r++)
            if (rows[first + r].len - 1 + eos_input > T) T = rows[first + r].len - 1 + eos_input;
        b.B = k;
        b.T = T;
        b.n_pairs = 0;
        uint64_t real = 0;
        for (int r = 0; r < k; r++) {
            const EncRow *e = &rows[first + r];
            batch_set_row(&b, r, tok + e->off, e->len, e->prompt_len, f.pad);
            b.weights[r] = 1.0f;
            b.example_ids[r] = (int64_t)e->req;
            ids[r] = e->req;
            real += (uint64_t)(e->len - 1 + eos_input);
        }
        TaError e = {0};
        /* a hidden-only model (a reward model) stops at the final LayerNorm */
        rc = m->model.hidden_only ? gpt2_forward_hidden(&m->model, b.tokens, b.B, b.T, &e)
                                  : gpt2_forward(&m->model, b.tokens, b.targets, b.B, b.T, &e);
        if (rc != TA_OK) {
            char w[64];
            rc = ta_err(err, rc, "%s: %s", scorer_where(req, ids[0], w, sizeof w), e.msg);
            break;
        }
        if (opt->tokens) *opt->tokens += real;
        if (opt->calls) (*opt->calls)++;
        if ((rc = fn(ctx, m, &b, ids, k, err)) != TA_OK) break;
        if (opt->progress) opt->progress(opt->progress_ctx, first + (size_t)k, n);
    }
end:
    batch_free(&b);
    free(ids);
    free(rows);
    free(tok);
    return rc;
}
