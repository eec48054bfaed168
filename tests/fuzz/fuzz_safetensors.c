/* fuzz_safetensors.c — the safetensors reader (header length, JSON header, dtypes,
 * shapes, offsets, holes, metadata) and the two loaders on top of it: model weights
 * (model_load_safetensors: names, shapes, a tied lm_head, gaps reported by the missing
 * tensor's name) and AdamW state (optim_load_safetensors), for a fixed tiny GPT-2
 * (L=1, NH=1, C=4, V=8, T=4; the seeds are its files).
 * Oracles: a refusal is TA_EINPUT with a message; every tensor of an accepted file lies
 * inside the file and reads as floats without touching anything else (ASan). */
#include "fuzz.h"
#include "tinyalign/model.h"
#include "tinyalign/model_io.h"
#include "tinyalign/optim.h"
#include "tinyalign/safetensors.h"

static GPT2 st_model;
static AdamW st_optim;

FUZZ_INIT(safetensors) {
    GPT2Config c = {.max_seq_len = 4, .vocab_size = 8, .n_layer = 1, .n_head = 1, .d_model = 4};
    TaError err = {0};
    if (gpt2_config_check(&c, &err) != TA_OK) abort();
    gpt2_init(&st_model, &c, 0);
    AdamWConfig oc = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    adamw_init(&st_optim, &oc, st_model.num_params);
}

FUZZ_TARGET(safetensors) {
    const char *path = fuzz_write("x.safetensors", data, size);
    SafeTensors st;
    TaError err = {0};
    int rc = safetensors_open(&st, path, &err);
    fuzz_check_refusal(rc, &err);
    if (rc == TA_OK) {
        for (int i = 0; i < st.n; i++) {
            const SafeTensorInfo *t = &st.tensors[i];
            FUZZ_CHECK(st.data_start + t->end <= st.file_size && t->begin <= t->end,
                       "tensor %s [%zu, %zu] outside the file", t->name, t->begin, t->end);
            float *buf = malloc(t->numel * sizeof(float) + 1);
            if (!buf) abort();
            TaError e2 = {0};
            fuzz_check_refusal(safetensors_read_f32(&st, t, buf, &e2), &e2);
            free(buf);
            FUZZ_CHECK(safetensors_find(&st, t->name) != NULL, "find %s", t->name);
        }
        (void)safetensors_meta(&st, "format");
        safetensors_close(&st);
    }
    rc = model_load_safetensors(&st_model, path, &err);
    fuzz_check_refusal(rc, &err);
    rc = optim_load_safetensors(&st_optim, &st_model, path, &err);
    fuzz_check_refusal(rc, &err);
    return 0;
}
