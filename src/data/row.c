/* row.c — the row convention (include/tinyalign/data.h): [BOS] prompt response [EOS] with
 * the prompt cut (step 1) and the response cut (step 2), a row written into a Batch, and
 * the generation prompt [BOS] prompt. Every caller that tokenizes a (prompt, response) —
 * the JSONL datasets, curate's model features, scorers, sampling — comes through here, so
 * the convention is written once.
 * Not here: reading files (jsonl_dataset.c), batching several rows (dataset_fill).
 */
#include <stdlib.h>
#include <string.h>

#include "tinyalign/data.h"
#include "tinyalign/tokenizer.h"

int row_format_init(RowFormat *f, const Tokenizer *tok, const DatasetOptions *opt, TaError *err) {
    memset(f, 0, sizeof *f);
    if (opt->max_len < 2)
        return ta_err(err, TA_EINPUT, "max_len=%d, expected >= 2", opt->max_len);
    if (opt->max_prompt_len < 1)
        return ta_err(err, TA_EINPUT, "max_prompt_len=%d, expected >= 1", opt->max_prompt_len);
    if (opt->truncation_mode != TRUNC_KEEP_END && opt->truncation_mode != TRUNC_KEEP_START)
        return ta_err(err, TA_EINPUT, "unknown truncation mode %d", (int)opt->truncation_mode);
    if (tokenizer_eos_id(tok) < 0)
        return ta_err(err, TA_EINPUT,
                      "the tokenizer %s has no EOS piece; rows [BOS] prompt response [EOS] end "
                      "every response with EOS", tokenizer_path(tok));
    f->tok = tok;
    f->opt = *opt;
    f->bos = tokenizer_bos_id(tok);
    f->eos = tokenizer_eos_id(tok);
    f->pad = tokenizer_pad_id(tok) >= 0 ? tokenizer_pad_id(tok) : f->eos;
    return TA_OK;
}

static int encode(const Tokenizer *tok, const char *field, const char *s, int **ids, int *n,
                  TaError *err) {
    TaError e = {0};
    int rc = tokenizer_encode(tok, s, strlen(s), ids, n, &e);
    if (rc != TA_OK) return ta_err(err, rc, "field \"%s\": %s", field, e.msg);
    return TA_OK;
}

int row_prompt_encode(const RowFormat *f, const char *prompt, RowPrompt *p, TaError *err) {
    memset(p, 0, sizeof *p);
    int *enc = NULL, n = 0;
    int rc = encode(f->tok, "prompt", prompt, &enc, &n, err);
    if (rc) return rc;
    const int has_bos = f->bos >= 0;
    /* step 1: keep at most max_prompt_len - |BOS| prompt tokens (>= 0: max_prompt_len >= 1) */
    int keep = n, start = 0;
    int room = f->opt.max_prompt_len - has_bos;
    if (n > room) {
        keep = room;
        start = f->opt.truncation_mode == TRUNC_KEEP_END ? n - room : 0;
    }
    p->ids = ta_malloc(sizeof(int) * (size_t)(has_bos + keep + 1), "prompt ids");
    if (has_bos) p->ids[0] = f->bos;
    memcpy(p->ids + has_bos, enc + start, sizeof(int) * (size_t)keep);
    p->len = has_bos + keep;
    p->full_len = has_bos + n;
    free(enc);
    return TA_OK;
}

void row_prompt_free(RowPrompt *p) {
    free(p->ids);
    memset(p, 0, sizeof *p);
}

int row_encode(const RowFormat *f, const RowPrompt *p, const char *response, const char *field,
               int *seq, int *len, int *cut, TaError *err) {
    const int P = p->len;
    const int budget = f->opt.max_len - P; /* room for response tokens + EOS */
    if (budget < 1)
        return ta_err(err, TA_EINPUT,
                      "response \"%s\" does not fit in max_len=%d after the prompt is cut to %d "
                      "tokens (the prompt has %d, max_prompt_len=%d; max_prompt_len must be < "
                      "max_len)",
                      field, f->opt.max_len, P, p->full_len, f->opt.max_prompt_len);
    int *r = NULL, nr = 0;
    int rc = encode(f->tok, field, response, &r, &nr, err);
    if (rc) return rc;
    /* step 2: resp_ids + [EOS] cut at its end to the budget (the EOS goes first) */
    const int keep = nr + 1 <= budget ? nr + 1 : budget;
    const int L = P + keep;
    if (L < 2) {
        free(r);
        return ta_err(err, TA_EINPUT,
                      "\"prompt\" and \"%s\" encode to %d token in all: nothing to predict",
                      field, L);
    }
    memcpy(seq, p->ids, sizeof(int) * (size_t)P);
    const int kr = keep < nr ? keep : nr;
    memcpy(seq + P, r, sizeof(int) * (size_t)kr);
    if (keep == nr + 1) seq[P + nr] = f->eos;
    free(r);
    *len = L;
    *cut = nr + 1 > budget;
    return TA_OK;
}

void batch_set_row(Batch *b, int b_row, const int *seq, int len, int prompt_len, int pad) {
    const int T = b->T, n = len - 1; /* positions with a target */
    const int score = b->layout == ROWS_SCORE; /* the last token is an input too */
    TA_ASSERT(b_row >= 0 && b_row < b->max_rows && n >= 1 && n + score <= T);
    int *tok = b->tokens + (size_t)b_row * T;
    int *tgt = b->targets + (size_t)b_row * T;
    uint8_t *m = b->loss_mask + (size_t)b_row * T;
    for (int t = 0; t < n; t++) {
        tok[t] = seq[t];
        tgt[t] = seq[t + 1];
        m[t] = t + 1 >= prompt_len; /* target seq[t+1] is a response token or EOS */
    }
    for (int t = n; t < T; t++) {
        tok[t] = pad;
        tgt[t] = -1;
        m[t] = 0;
    }
    if (score) tok[n] = seq[n];
    b->lengths[b_row] = n;
}

int row_encode_generation_prompt(const Tokenizer *tok, const char *prompt, int max_seq_len,
                                 int **ids, int *n, TaError *err) {
    *ids = NULL;
    *n = 0;
    int *enc = NULL, m = 0;
    int rc = encode(tok, "prompt", prompt, &enc, &m, err);
    if (rc) return rc;
    const int bos = tokenizer_bos_id(tok), k = bos >= 0;
    if (k + m < 1) {
        free(enc);
        return ta_err(err, TA_EINPUT, "empty prompt (and the tokenizer has no BOS to start from)");
    }
    if (max_seq_len > 0 && k + m >= max_seq_len) {
        free(enc);
        return ta_err(err, TA_EINPUT,
                      "the prompt has %d tokens (BOS included) but the model's max_seq_len is "
                      "%d: at most %d leave room to generate (prompts are not truncated)",
                      k + m, max_seq_len, max_seq_len - 1);
    }
    int *o = ta_malloc(sizeof(int) * (size_t)(k + m), "prompt ids");
    if (k) o[0] = bos;
    memcpy(o + k, enc, sizeof(int) * (size_t)m);
    free(enc);
    *ids = o;
    *n = k + m;
    return TA_OK;
}
