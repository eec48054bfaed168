/* fuzz_model_config.c — a model directory's config.json (model_config_read: HF GPT-2
 * keys, the settings tinyalign cannot represent) and the dimension check behind every
 * model allocation (gpt2_config_check).
 * Oracles: a refusal is TA_EINPUT with a message; an accepted config has dimensions whose
 * parameter count fits memory arithmetic (no overflow of the slab sizes). */
#include "fuzz.h"
#include "tinyalign/model.h"
#include "tinyalign/model_io.h"

FUZZ_TARGET(model_config) {
    const char *path = fuzz_write("config.json", data, size);
    GPT2Config c;
    memset(&c, 0, sizeof c);
    TaError err = {0};
    int rc = model_config_read(&c, path, &err);
    fuzz_check_refusal(rc, &err);
    if (rc != TA_OK) return 0;
    rc = gpt2_config_check(&c, &err);
    fuzz_check_refusal(rc, &err);
    if (rc != TA_OK) return 0;
    double params = 12.0 * c.n_layer * (double)c.d_model * c.d_model +
                    ((double)c.padded_vocab_size + c.max_seq_len) * c.d_model;
    FUZZ_CHECK(params < 1e11 && c.padded_vocab_size >= c.vocab_size && c.padded_vocab_size % 64 == 0,
               "accepted dimensions L=%d C=%d V=%d Vp=%d T=%d", c.n_layer, c.d_model, c.vocab_size,
               c.padded_vocab_size, c.max_seq_len);
    return 0;
}
