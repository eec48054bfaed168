/* batch.c — the Batch every data source fills (batch_alloc / batch_free) and the seeded
 * per-epoch example order (data_epoch_permutation). Both are shared by the token-shard
 * loader and the JSONL datasets.
 * Not here: filling batches (token_data.c, jsonl_dataset.c) or the cursor arithmetic
 * (the trainer walks DataCursor over the permutation). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/data.h"

void batch_alloc(Batch *b, int max_rows, int max_T) {
    TA_ASSERT(max_rows > 0 && max_T > 0);
    memset(b, 0, sizeof *b);
    size_t cells = (size_t)max_rows * (size_t)max_T;
    b->max_rows = max_rows;
    b->max_T = max_T;
    b->tokens = ta_calloc(cells * sizeof(int), "batch tokens");
    b->targets = ta_calloc(cells * sizeof(int), "batch targets");
    b->loss_mask = ta_calloc(cells, "batch loss mask");
    b->lengths = ta_calloc((size_t)max_rows * sizeof(int), "batch lengths");
    b->weights = ta_calloc((size_t)max_rows * sizeof(float), "batch weights");
    b->margins = ta_calloc((size_t)max_rows * sizeof(float), "batch margins");
    b->example_ids = ta_calloc((size_t)max_rows * sizeof(int64_t), "batch example ids");
    b->labels = ta_malloc((size_t)max_rows * sizeof(float), "batch labels");
    b->feeds = ta_calloc((size_t)max_rows, "batch feeds");
    for (int r = 0; r < max_rows; r++) b->labels[r] = NAN;
}

void batch_free(Batch *b) {
    if (!b) return;
    free(b->tokens);
    free(b->targets);
    free(b->loss_mask);
    free(b->lengths);
    free(b->weights);
    free(b->margins);
    free(b->example_ids);
    free(b->labels);
    free(b->feeds);
    memset(b, 0, sizeof *b);
}

/* The permutation of one epoch: identity, or a Fisher-Yates shuffle whose RNG is seeded
 * from seed and epoch mixed through the golden-ratio constant (splitmix64 inside
 * ta_rng_seed then spreads the bits), so every epoch has its own order and (seed, epoch)
 * alone reproduces it — a DataCursor is enough to resume. */
void data_epoch_permutation(uint32_t *perm, size_t n, uint64_t seed, int64_t epoch, int shuffle) {
    TA_ASSERT(n <= (size_t)UINT32_MAX + 1u);
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    if (!shuffle || n < 2) return;
    TaRng r;
    ta_rng_seed(&r, (seed * 0x9E3779B97F4A7C15ull) ^ (uint64_t)(epoch + 1));
    ta_rng_shuffle_u32(&r, perm, n);
}
