/* fuzz_shard.c — token shards: shard_open (magic, version, token width, vocab, length,
 * every id < vocab), then the shard as a TokenData stream (token_data_open with a
 * validation split, windows of T + 1 = 5 tokens) filled into batches.
 * Oracles: a refusal is TA_EINPUT with a message; every id read from an accepted shard is
 * below its vocab_size; every batch token is an id of the stream. */
#include "fuzz.h"
#include "tinyalign/data.h"
#include "tinyalign/shard.h"

FUZZ_TARGET(shard) {
    const char *path = fuzz_write("x.bin", data, size);
    Shard s;
    TaError err = {0};
    int rc = shard_open(&s, path, &err);
    fuzz_check_refusal(rc, &err);
    if (rc != TA_OK) return 0;
    const uint32_t V = s.vocab_size;
    int buf[256];
    for (uint64_t i = 0; i < s.num_tokens; i += 256) {
        size_t n = s.num_tokens - i < 256 ? (size_t)(s.num_tokens - i) : 256;
        shard_read(&s, i, n, buf);
        for (size_t k = 0; k < n; k++)
            FUZZ_CHECK(buf[k] >= 0 && (uint32_t)buf[k] < V, "id %d >= vocab %u", buf[k], V);
    }
    shard_close(&s);
    const int T = 4;
    TokenData *td = NULL;
    rc = token_data_open(&td, path, T, 0.25, 0, &err);
    fuzz_check_refusal(rc, &err);
    if (rc != TA_OK) return 0;
    Batch b;
    batch_alloc(&b, 4, T);
    for (int split = 0; split < 2; split++) {
        size_t nw = token_data_num_windows(td, split);
        uint32_t ids[4];
        for (size_t w = 0; w < nw && w < 64; w += 4) {
            int n = (int)(nw - w < 4 ? nw - w : 4);
            for (int j = 0; j < n; j++) ids[j] = (uint32_t)(w + (size_t)j);
            token_data_fill(td, split, ids, n, &b);
            for (int k = 0; k < n * T; k++)
                FUZZ_CHECK(b.tokens[k] >= 0 && (uint32_t)b.tokens[k] < V && b.targets[k] >= 0 &&
                               (uint32_t)b.targets[k] < V, "batch id out of range");
        }
    }
    batch_free(&b);
    token_data_free(td);
    return 0;
}
