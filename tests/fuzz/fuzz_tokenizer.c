/* fuzz_tokenizer.c — the tokenizer model path: any bytes given as a SentencePiece .model
 * (tokenizer_load: the protobuf, its normalizer and vocabulary), then, when it loads,
 * encode / decode of a few texts (ASCII, multi-byte UTF-8, control characters), piece
 * look-ups and the special ids, and the row convention on top (row_format_init,
 * row_encode_generation_prompt).
 * Oracles: a refusal is TA_EINPUT (or a message) without a crash or an abort inside
 * SentencePiece; every id encode returns is < vocab_size; decode accepts them. */
#include "fuzz.h"
#include "tinyalign/data.h"
#include "tinyalign/tokenizer.h"

FUZZ_TARGET(tokenizer) {
    const char *path = fuzz_write("x.model", data, size);
    Tokenizer *tok = NULL;
    TaError err = {0};
    int rc = tokenizer_load(&tok, path, &err);
    fuzz_check_refusal(rc, &err);
    if (rc != TA_OK) return 0;
    static const char *const texts[] = {"", "a", "hello world", "caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac",
                                        "\xf0\x9f\x99\x82\t\n\r", "  ", "<s></s><unk><pad>"};
    const int V = tokenizer_vocab_size(tok);
    FUZZ_CHECK(V >= 0, "vocab %d", V);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int *ids = NULL, n = 0;
        TaError e2 = {0};
        if (tokenizer_encode(tok, texts[i], strlen(texts[i]), &ids, &n, &e2) != TA_OK) continue;
        for (int k = 0; k < n; k++) FUZZ_CHECK(ids[k] >= 0 && ids[k] < V, "id %d of %d", ids[k], V);
        char *back = NULL;
        if (tokenizer_decode(tok, ids, n, &back, &e2) == TA_OK) free(back);
        free(ids);
        int *g = NULL, gn = 0;
        if (row_encode_generation_prompt(tok, texts[i], 64, &g, &gn, &e2) == TA_OK) free(g);
    }
    for (int id = -1; id <= V && id < 64; id++) {
        const char *piece = tokenizer_id_to_piece(tok, id);
        if (piece) (void)tokenizer_piece_to_id(tok, piece);
    }
    (void)tokenizer_bos_id(tok);
    (void)tokenizer_pad_id(tok);
    (void)tokenizer_unk_id(tok);
    RowFormat f;
    DatasetOptions opt = {.max_len = 8, .max_prompt_len = 4};
    if (row_format_init(&f, tok, &opt, &err) == TA_OK) {
        RowPrompt p;
        if (row_prompt_encode(&f, "hello", &p, &err) == TA_OK) {
            int seq[8], len, cut;
            (void)row_encode(&f, &p, "world", "completion", seq, &len, &cut, &err);
            row_prompt_free(&p);
        }
    }
    tokenizer_free(tok);
    return 0;
}
