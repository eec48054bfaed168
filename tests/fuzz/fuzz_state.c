/* fuzz_state.c — a checkpoint's state: state.json (checkpoint_load_state: state.sum,
 * format, engine version, the listed files' names, sizes and CRC32s, every train_state
 * value) and the checks against a resumed run (checkpoint_check_state), plus state.sum
 * itself. The first input byte picks what the rest is:
 *   0  state.json, no state.sum (a format-1 checkpoint of an earlier build);
 *   1  state.json, with the seed checkpoint's state.sum (an edit: named by the sum);
 *   2  state.json, with a state.sum computed for it (what a forger who recomputes the
 *      CRC32s would write: only the range checks stand between it and the trainer);
 *   3  state.sum, beside the seed checkpoint's state.json.
 * The directory also holds the seed checkpoint's model.safetensors, optim.safetensors and
 * config.json (tests/fuzz/checkpoint/, written by make_seeds.py), so the seed's "files"
 * verify.
 * Oracles: a refusal is TA_EINPUT with a message; an accepted state has every value in
 * range (step, epoch, pos in [0, 2^53], best_step in [-1, step], rng not all zero) and
 * passes or is refused by checkpoint_check_state without overflow (UBSan). */
#include "fuzz.h"
#include "../../src/checkpoint/checkpoint_impl.h"
#include "tinyalign/checkpoint.h"

static char state_dir[600];
static char *state_seed;
static size_t state_seed_len;

static void state_copy(const char *from, const char *to) {
    char src[4096], dst[1024];
    size_t n;
    TaError err = {0};
    snprintf(src, sizeof src, "%s/tests/fuzz/checkpoint/%s", fuzz_root(), from);
    snprintf(dst, sizeof dst, "%s/%s", state_dir, to);
    char *b = ta_read_file(src, &n, &err);
    if (!b || ta_write_file_atomic(dst, b, n, &err) != TA_OK) {
        fprintf(stderr, "fuzz_state: %s\n", err.msg);
        abort();
    }
    free(b);
}

FUZZ_INIT(state) {
    snprintf(state_dir, sizeof state_dir, "%s/step-00000002", fuzz_dir());
    TaError err = {0};
    if (ta_mkdirs(state_dir, &err) != TA_OK) abort();
    state_copy("model.safetensors", "model.safetensors");
    state_copy("optim.safetensors", "optim.safetensors");
    state_copy("config.json", "config.json");
    char p[4096];
    snprintf(p, sizeof p, "%s/tests/fuzz/checkpoint/state.json", fuzz_root());
    state_seed = ta_read_file(p, &state_seed_len, &err);
    if (!state_seed) abort();
}

static void state_put(const char *name, const void *data, size_t n) {
    char p[1024];
    TaError err = {0};
    snprintf(p, sizeof p, "%s/%s", state_dir, name);
    if (ta_write_file_atomic(p, data, n, &err) != TA_OK) abort();
}

FUZZ_TARGET(state) {
    if (size < 1) return 0;
    const int mode = data[0] & 3;
    const char *body = (const char *)data + 1;
    const size_t n = size - 1;
    char p[1024];
    snprintf(p, sizeof p, "%s/state.sum", state_dir);
    unlink(p);
    if (mode == 3) {
        state_put("state.json", state_seed, state_seed_len);
        state_put("state.sum", body, n);
    } else {
        state_put("state.json", body, n);
        const char *sum_of = mode == 1 ? state_seed : mode == 2 ? body : NULL;
        size_t sum_len = mode == 1 ? state_seed_len : n;
        cJSON *tree = sum_of ? cJSON_ParseWithLength(sum_of, sum_len) : NULL;
        if (tree) {
            size_t sl;
            char *sum = state_sum_text(sum_of, sum_len, tree, &sl);
            state_put("state.sum", sum, sl);
            free(sum);
            cJSON_Delete(tree);
        }
    }
    TrainState s;
    char *cfg = NULL;
    int verified = -1;
    TaError err = {0};
    int rc = checkpoint_load_state(state_dir, &s, &cfg, &verified, &err);
    fuzz_check_refusal(rc, &err);
    if (rc == TA_OK) {
        FUZZ_CHECK(verified == 0 || verified == 1, "verified %d", verified);
        FUZZ_CHECK(s.step >= 0 && s.step == 2 && s.cursor.epoch >= 0 && s.cursor.pos >= 0 &&
                       s.best_step >= -1 && s.best_step <= s.step && s.bad_steps >= 0 &&
                       s.evals_since_best >= 0 && s.ref_syncs >= 0 && s.ref_syncs <= s.step &&
                       (s.rng.s[0] | s.rng.s[1] | s.rng.s[2] | s.rng.s[3]) != 0 &&
                       s.n_aux_crc >= 0 && s.n_aux_crc <= CHECKPOINT_MAX_AUX,
                   "accepted state out of range: step %ld epoch %lld pos %lld", s.step,
                   (long long)s.cursor.epoch, (long long)s.cursor.pos);
        /* the run the seed came from: 2 steps of 2 examples, 49 windows of 5 tokens */
        static const StateLimits lims[] = {
            {.max_steps = 2, .examples = 49, .per_step = 2, .max_tokens_per_step = 8, .same_order = 1},
            {.max_steps = 1, .examples = 1, .per_step = 1 << 30, .max_tokens_per_step = ~0ull},
            {.max_steps = 1L << 40, .examples = ~0ull, .per_step = ~0ull, .max_tokens_per_step = 1,
             .same_order = 1}};
        for (size_t i = 0; i < sizeof lims / sizeof lims[0]; i++) {
            TaError e2 = {0};
            fuzz_check_refusal(checkpoint_check_state(&s, &lims[i], "state.json", &e2), &e2);
        }
    }
    free(cfg);
    char *json = NULL;
    rc = checkpoint_read_config(state_dir, &json, &err);
    fuzz_check_refusal(rc, &err);
    free(json);
    return 0;
}
