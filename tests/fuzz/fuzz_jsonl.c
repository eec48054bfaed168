/* fuzz_jsonl.c — the JSONL readers: one input file read as each dataset kind (SFT,
 * preference, multi-response, prompts; dataset_load: line splitting, JSON, UTF-8, fields,
 * the row convention with a real byte-fallback tokenizer), then every example of a loaded
 * dataset put through dataset_fill, and every multi / prompt row written back with the
 * row writers (the kept fields spliced in as they were read).
 * Oracles: a refusal is TA_EINPUT with a message; every batch token is a vocabulary id
 * and every row fits max_len; every line the writers produce is valid UTF-8 and valid
 * JSON whose "prompt" is the row's prompt. */
#include <cjson/cJSON.h>

#include "fuzz.h"
#include "tinyalign/data.h"
#include "tinyalign/tokenizer.h"

static Tokenizer *jsonl_tok;

FUZZ_INIT(jsonl) {
    char p[4096];
    TaError err = {0};
    snprintf(p, sizeof p, "%s/tests/fuzz/corpus/tokenizer/bpe300_bytes.model", fuzz_root());
    if (tokenizer_load(&jsonl_tok, p, &err) != TA_OK) {
        fprintf(stderr, "fuzz_jsonl: %s (run from the repository root or set TA_ROOT)\n", err.msg);
        abort();
    }
}

/* Writes every row of d back (as sample and curate do) and checks each line. */
static void jsonl_write_back(const Dataset *d) {
    const int multi = dataset_kind(d) == DS_MULTI;
    for (size_t i = 0; i < dataset_num_rows(d); i++) {
        DataRow r;
        dataset_row(d, i, &r);
        TaBuf b = {0};
        static const char *const skip[] = {"weight", NULL};
        jsonl_put_row_start(&b, &r, skip);
        for (int j = 0; j < r.n_responses && multi; j++) {
            DataResponse x;
            dataset_response(d, r.first + (size_t)j, &x);
            if (j) ta_buf_puts(&b, ",");
            jsonl_put_response_start(&b, &x, skip);
            ta_buf_puts(&b, ",\"weight\":");
            jsonl_put_number(&b, x.has_score ? x.score : 1.0);
            ta_buf_puts(&b, "}");
        }
        jsonl_put_row_end(&b, &r, skip);
        FUZZ_CHECK(ta_utf8_invalid_at(b.p, b.n) < 0, "written line is not UTF-8: %s", b.p);
        cJSON *o = cJSON_ParseWithLength(b.p, b.n);
        FUZZ_CHECK(o != NULL, "written line is not JSON: %s", b.p);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "prompt");
        FUZZ_CHECK(cJSON_IsString(p) && !strcmp(p->valuestring, r.prompt),
                   "written prompt differs: %s", b.p);
        cJSON_Delete(o);
        free(b.p);
    }
}

/* Every example through dataset_fill, 3 at a time. */
static void jsonl_fill_all(const Dataset *d, const DatasetOptions *o) {
    const int per = 3, V = tokenizer_vocab_size(jsonl_tok);
    Batch b;
    batch_alloc(&b, per * dataset_rows_per_example(d), o->max_len - 1);
    uint32_t ids[3];
    size_t n = dataset_size(d);
    for (size_t i = 0; i < n; i += per) {
        int k = (int)(n - i < (size_t)per ? n - i : (size_t)per);
        for (int j = 0; j < k; j++) ids[j] = (uint32_t)(i + (size_t)j);
        dataset_fill(d, ids, k, &b);
        FUZZ_CHECK(b.T >= 1 && b.T <= o->max_len - 1, "batch T %d", b.T);
        for (int r = 0; r < b.B; r++) {
            FUZZ_CHECK(b.lengths[r] >= 1 && b.lengths[r] <= b.T, "row length %d", b.lengths[r]);
            for (int t = 0; t < b.T; t++) {
                int tok = b.tokens[(size_t)r * b.T + t], tgt = b.targets[(size_t)r * b.T + t];
                FUZZ_CHECK(tok >= 0 && tok < V && tgt >= -1 && tgt < V, "id %d / %d", tok, tgt);
            }
        }
    }
    batch_free(&b);
}

FUZZ_TARGET(jsonl) {
    const char *path = fuzz_write("data.jsonl", data, size);
    static const DatasetKind kinds[] = {DS_SFT, DS_PREFERENCE, DS_MULTI, DS_PROMPTS};
    /* small limits, so truncation (both modes) is exercised by short lines */
    DatasetOptions opt = {.max_len = 12, .max_prompt_len = 5,
                          .truncation_mode = size % 2 ? TRUNC_KEEP_START : TRUNC_KEEP_END};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        const int prompts = kinds[k] == DS_PROMPTS;
        Dataset *d = NULL;
        TaError err = {0};
        int rc = dataset_load(&d, path, kinds[k], prompts ? NULL : jsonl_tok, prompts ? NULL : &opt,
                              &err);
        fuzz_check_refusal(rc, &err);
        if (rc != TA_OK) continue;
        if (!prompts) jsonl_fill_all(d, &opt);
        if (kinds[k] == DS_MULTI || prompts) jsonl_write_back(d);
        dataset_free(d);
    }
    return 0;
}
