/* token_data.c — pretraining data from token shards: every shard matching a glob, sorted
 * by name, forms one token stream cut into windows of T + 1 tokens at stride T
 * (tokens = window[0..T), targets = window[1..T]). The last val_fraction of the windows
 * is the validation split. Windows may span shard boundaries.
 * Does not: shuffle (the trainer draws window ids from data_epoch_permutation), tokenize
 * (see `tinyalign tokenize`), or read JSONL (jsonl_dataset.c). */
#include <glob.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/data.h"
#include "tinyalign/shard.h"

struct TokenData {
    int T;
    int nshards;
    Shard *shards;
    uint64_t *starts; /* (nshards + 1) global offset of each shard; starts[n] = total */
    size_t nwin_train, nwin_val;
    int vocab_size;
};

int token_data_open(TokenData **out, const char *pattern, int T, double val_fraction,
                    int vocab_size, TaError *err) {
    *out = NULL;
    glob_t g;
    memset(&g, 0, sizeof g);
    int rc = glob(pattern, 0, NULL, &g);
    if (rc != 0 || g.gl_pathc == 0) {
        globfree(&g);
        return ta_err(err, TA_EINPUT, "%s: no token shard matches this path/pattern", pattern);
    }
    TokenData *d = ta_calloc(sizeof *d, "token data");
    d->T = T;
    d->nshards = (int)g.gl_pathc;
    d->shards = ta_calloc(sizeof(Shard) * g.gl_pathc, "shards");
    d->starts = ta_calloc(sizeof(uint64_t) * (g.gl_pathc + 1), "shard offsets");
    for (size_t i = 0; i < g.gl_pathc; i++) {
        if (shard_open(&d->shards[i], g.gl_pathv[i], err) != TA_OK) goto fail;
        const Shard *s = &d->shards[i];
        if (vocab_size > 0 && (int)s->vocab_size > vocab_size) {
            ta_err(err, TA_EINPUT,
                   "%s: shard vocabulary is %u but the model's vocab_size is %d (tokenized with "
                   "a different tokenizer?)", g.gl_pathv[i], s->vocab_size, vocab_size);
            goto fail;
        }
        if ((int)s->vocab_size > d->vocab_size) d->vocab_size = (int)s->vocab_size;
        d->starts[i + 1] = d->starts[i] + s->num_tokens;
    }
    uint64_t total = d->starts[d->nshards];
    size_t nwin = total > 0 ? (size_t)((total - 1) / (uint64_t)T) : 0;
    size_t nval = (size_t)((double)nwin * val_fraction);
    if (val_fraction > 0 && nval == 0) nval = 1;
    if (nwin < 1 || nwin - nval < 1) {
        ta_err(err, TA_EINPUT,
               "%s: %llu tokens make %zu window(s) of T+1 = %d tokens; need at least %d (use "
               "more data or a smaller data.max_len)", pattern, (unsigned long long)total, nwin,
               T + 1, val_fraction > 0 ? 2 : 1);
        goto fail;
    }
    d->nwin_val = nval;
    d->nwin_train = nwin - nval;
    globfree(&g);
    *out = d;
    return TA_OK;
fail:
    globfree(&g);
    token_data_free(d);
    return TA_EINPUT;
}

void token_data_free(TokenData *d) {
    if (!d) return;
    for (int i = 0; i < d->nshards; i++) shard_close(&d->shards[i]);
    free(d->shards);
    free(d->starts);
    free(d);
}

size_t token_data_num_windows(const TokenData *d, int split) {
    return split == 0 ? d->nwin_train : d->nwin_val;
}
uint64_t token_data_num_tokens(const TokenData *d) { return d->starts[d->nshards]; }
int token_data_vocab_size(const TokenData *d) { return d->vocab_size; }

/* Copies n tokens of the global stream starting at pos into out. */
static void read_stream(const TokenData *d, uint64_t pos, size_t n, int *out) {
    int s = 0;
    while (s + 1 < d->nshards && d->starts[s + 1] <= pos) s++;
    while (n > 0) {
        TA_ASSERT(s < d->nshards);
        uint64_t in_shard = pos - d->starts[s];
        uint64_t avail = d->shards[s].num_tokens - in_shard;
        size_t take = avail < n ? (size_t)avail : n;
        if (take > 0) shard_read(&d->shards[s], in_shard, take, out);
        out += take;
        pos += take;
        n -= take;
        s++;
    }
}

void token_data_fill(const TokenData *d, int split, const uint32_t *ids, int n, Batch *b) {
    const int T = d->T;
    TA_ASSERT(n <= b->max_rows && T <= b->max_T && b->layout == ROWS_LM);
    int *tmp = b->targets; /* borrow: read T+1 tokens, then split */
    b->B = n;
    b->T = T;
    b->n_pairs = 0;
    for (int r = 0; r < n; r++) {
        size_t w = ids[r] + (split == 1 ? d->nwin_train : 0);
        TA_ASSERT(w < d->nwin_train + d->nwin_val);
        int *row_tok = b->tokens + (size_t)r * T;
        int *row_tgt = tmp + (size_t)r * T;
        int first;
        read_stream(d, (uint64_t)w * T, 1, &first);
        row_tok[0] = first;
        /* tokens[1..T) and targets[0..T) are the same stream slice shifted by one */
        read_stream(d, (uint64_t)w * T + 1, (size_t)T, row_tgt);
        memcpy(row_tok + 1, row_tgt, sizeof(int) * (size_t)(T - 1));
        memset(b->loss_mask + (size_t)r * T, 1, (size_t)T);
        b->lengths[r] = T;
        b->weights[r] = 1.0f;
        b->labels[r] = NAN;
        b->feeds[r] = ROW_FEEDS_ALL;
        b->margins[r] = 0.0f;
        b->example_ids[r] = (int64_t)w;
    }
}
