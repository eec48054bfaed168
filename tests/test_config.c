/* test_config.c — the config module: defaults and round trip through config_to_json,
 * a full config, every kind of bad input (exact messages where the wording matters),
 * model presets, --set overrides, config_diff_math, the key listing. Test configs are
 * written to a fresh temp directory. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testhelp.h"
#include "tinyalign/config.h"

static char g_dir[256];
static char g_path[512]; /* the last written file */

/* Writes text to g_dir/name; returns the path (static, overwritten by the next call). */
static const char *write_cfg(const char *name, const char *text) {
    snprintf(g_path, sizeof g_path, "%s/%s", g_dir, name);
    FILE *f = fopen(g_path, "w");
    if (!f) { perror(g_path); exit(1); }
    fputs(text, f);
    fclose(f);
    return g_path;
}

/* Minimal valid body pieces. */
#define DATA_OK "\"data\": {\"train\": \"data/train.bin\"}"

/* Loads text as a config file; expects TA_EINPUT and a message equal to
 * "<path>: " + want (or containing want when exact is 0). */
static int expect_err(const char *text, const char *const *sets, int n_sets, const char *want,
                      int exact, char *why, size_t cap) {
    const char *path = write_cfg("x.json", text);
    Config c;
    TaError err = {0};
    int rc = config_load(&c, path, sets, n_sets, &err);
    char full[1200];
    snprintf(full, sizeof full, "%s: %s", path, want);
    if (rc != TA_EINPUT) {
        snprintf(why, cap, "rc %d (want TA_EINPUT), msg \"%s\"", rc, err.msg);
        config_free(&c);
        return 0;
    }
    int ok = exact ? !strcmp(err.msg, full) : strstr(err.msg, want) != NULL;
    if (!ok) snprintf(why, cap, "got \"%.900s\", want %s\"%.900s\"", err.msg, exact ? "" : "a part ", exact ? full : want);
    return ok;
}

/* The message contains want. */
#define EXPECT_PART(text, want)                                                      \
    do {                                                                             \
        char why_[2048];                                                             \
        T_CHECK(expect_err(text, NULL, 0, want, 0, why_, sizeof why_), "%s", why_);   \
    } while (0)

#define EXPECT_ERR(text, want)                                                       \
    do {                                                                             \
        char why_[2048];                                                             \
        T_CHECK(expect_err(text, NULL, 0, want, 1, why_, sizeof why_), "%s", why_);   \
    } while (0)

/* --set errors are named "--set", not the file. */
static int expect_set_err(const char *set, const char *want, char *why, size_t cap) {
    const char *path = write_cfg("s.json", "{" DATA_OK "}");
    Config c;
    TaError err = {0};
    const char *sets[1] = {set};
    int rc = config_load(&c, path, sets, 1, &err);
    if (rc != TA_EINPUT) {
        snprintf(why, cap, "rc %d for --set %s", rc, set);
        config_free(&c);
        return 0;
    }
    if (strcmp(err.msg, want)) {
        snprintf(why, cap, "got \"%s\", want \"%s\"", err.msg, want);
        return 0;
    }
    return 1;
}

#define EXPECT_SET_ERR(set, want)                                                    \
    do {                                                                             \
        char why_[2048];                                                             \
        T_CHECK(expect_set_err(set, want, why_, sizeof why_), "%s", why_);           \
    } while (0)

/* Loads text (must succeed) into *c. */
static int load_ok(const char *text, const char *const *sets, int n_sets, Config *c, TaError *err) {
    const char *path = write_cfg("ok.json", text);
    return config_load(c, path, sets, n_sets, err);
}

/* ------------------------------------------------------------------------------------ */
static void test_defaults(void) {
    Config c;
    config_init_defaults(&c);
    T_CHECK(!strcmp(c.run.name, "run") && !strcmp(c.run.out_dir, "runs/run"), "run defaults");
    T_CHECK(c.run.seed == 1337 && c.run.threads == 0, "seed/threads");
    T_CHECK(c.model.init == CFG_INIT_SCRATCH && c.model.n_layer == 4 && c.model.n_head == 4 &&
                c.model.d_model == 128 && c.model.vocab_size == 0 && c.model.max_seq_len == 256,
            "model defaults");
    T_CHECK(c.tokenizer.type == CFG_TOK_SENTENCEPIECE && !strcmp(c.tokenizer.model, ""), "tok");
    T_CHECK(c.data.format == CFG_DATA_TOKENS && c.data.max_len == 256 &&
                c.data.max_prompt_len == 128 && c.data.shuffle && c.data.val_fraction == 0.0 &&
                c.data.truncation_mode == CFG_TRUNC_KEEP_END,
            "data defaults");
    T_CHECK(c.objective.type == CFG_OBJ_PRETRAIN && c.objective.beta == 0.1 &&
                c.objective.loss_type == CFG_LOSS_SIGMOID && c.objective.lambda == 0.1 &&
                c.objective.odds_clamp == 1e-6 && !c.objective.dorpo_match_trl_quirk &&
                c.objective.nll_scope == CFG_NLL_RESPONSE,
            "objective defaults");
    T_CHECK(c.objective.reference.mode == CFG_REF_SNAPSHOT &&
                c.objective.reference.sync_steps == 512 && c.objective.reference.sync_alpha == 0.6,
            "reference defaults");
    T_CHECK(c.optim.lr == 3e-4 && c.optim.betas[0] == 0.9 && c.optim.betas[1] == 0.999 &&
                c.optim.eps == 1e-8 && c.optim.schedule == SCHED_COSINE &&
                c.optim.grad_clip == 1.0 && c.optim.min_lr_ratio == 0.0,
            "optim defaults");
    T_CHECK(c.train.batch_size == 8 && c.train.grad_accum == 1 && c.train.max_steps == 1000 &&
                c.train.log_every == 10 && c.train.eval_every == 100 &&
                c.train.eval_batches == 20 && c.train.save_every == 200 &&
                c.train.keep_last_n == 3 && c.train.patience == 0 && c.train.max_bad_steps == 5 &&
                c.train.sample_prompts.n == 0 && c.train.sample_max_new_tokens == 64 &&
                c.train.sample_temperature == 1.0,
            "train defaults");
    config_free(&c);
    Config z;
    memset(&z, 0, sizeof z);
    config_free(&z); /* safe on zeroed */
    config_free(&z);
}

static void test_defaults_round_trip(void) {
    Config c, d;
    config_init_defaults(&c);
    free(c.data.train.paths[0]);
    c.data.train.paths[0] = strdup("data/train.bin"); /* the one required key */
    char *js = config_to_json(&c);
    TaError err = {0};
    int rc = config_load_string(&d, js, "resolved.json", &err);
    T_CHECK(rc == TA_OK, "reload failed: %s\n%s", err.msg, js);
    char diff[2048];
    int nd = config_diff(&c, &d, 0, diff, sizeof diff);
    char *js2 = config_to_json(&d);
    int same = !strcmp(js, js2);
    T_CHECK(nd == 0, "round trip changed %d keys:\n%s", nd, diff);
    T_CHECK(same, "JSON differs:\n%s\n---\n%s", js, js2);
    T_CHECK(strstr(js, "\"lr\": 0.0003,") && strstr(js, "\"betas\": [0.9, 0.999]") &&
                strstr(js, "\"eps\": 1e-8") && strstr(js, "\"grad_clip\": 1.0") && strstr(js, "\"out_dir\": \"runs/run\"") &&
                strstr(js, "\"reference\": {\n      \"mode\": \"snapshot\""),
            "unexpected layout:\n%s", js);
    /* Every key of the schema appears in the resolved JSON. */
    int n;
    const ConfigKey *keys = config_keys(&n);
    for (int i = 0; i < n; i++) {
        char q[128];
        snprintf(q, sizeof q, "\"%s\":", strrchr(keys[i].path, '.') + 1);
        T_CHECK(strstr(js, q), "key %s missing from config_to_json", keys[i].path);
    }
    free(js);
    free(js2);
    config_free(&c);
    config_free(&d);
    /* No data.train at all: a clear "required" error. */
    rc = config_load_string(&d, "{}", "empty.json", &err);
    T_CHECK(rc == TA_EINPUT && !strcmp(err.msg, "empty.json: \"data.train\" is required "
                                                "(training data: path or glob, or [{\"path\": P, "
                                                "\"weight\": w, \"loss\": \"all\"|\"nll\"|\"kl\"}, "
                                                "...] to mix files (nll, kl: rows feed only that "
                                                "term of objective.attribute))"),
            "%s", err.msg);
}

static const char *FULL =
    "{\n"
    "  \"run\": {\"name\": \"dpo-demo\", \"seed\": 42, \"threads\": 2},\n"
    "  \"model\": {\"init\": \"checkpoint\", \"path\": \"runs/sft/ckpt\", \"n_layer\": 6,\n"
    "            \"n_head\": 6, \"d_model\": 384, \"vocab_size\": 8192, \"max_seq_len\": 512},\n"
    "  \"tokenizer\": {\"type\": \"sentencepiece\", \"model\": \"models/tiny/spm.model\"},\n"
    "  \"data\": {\"format\": \"preference\", \"train\": \"data/p*.jsonl\", \"val\": \"data/v.jsonl\",\n"
    "           \"max_len\": 384, \"max_prompt_len\": 200, \"truncation_mode\": \"keep_start\",\n"
    "           \"shuffle\": false},\n"
    "  \"objective\": {\"type\": \"dorpo\", \"beta\": 0.25, \"loss_type\": \"robust\",\n"
    "                \"label_smoothing\": 0.1, \"sft_weight\": 1.0, \"lambda\": 0.5,\n"
    "                \"nll_scope\": \"full\", \"dorpo_match_trl_quirk\": true, \"odds_clamp\": 1e-5,\n"
    "                \"reference\": {\"mode\": \"sync\", \"path\": \"ref/\", \"cache_dir\": \"cache\",\n"
    "                              \"sync_steps\": 64, \"sync_alpha\": 1.0}},\n"
    "  \"optim\": {\"lr\": 5e-6, \"betas\": [0.8, 0.95], \"eps\": 1e-6, \"weight_decay\": 0.1,\n"
    "            \"schedule\": \"linear\", \"warmup_steps\": 10, \"min_lr_ratio\": 0.1,\n"
    "            \"grad_clip\": 0},\n"
    "  \"train\": {\"batch_size\": 4, \"grad_accum\": 2, \"max_steps\": 300, \"log_every\": 5,\n"
    "            \"eval_every\": 50, \"eval_batches\": 7, \"save_every\": 0, \"keep_last_n\": 2,\n"
    "            \"patience\": 3, \"min_delta\": 0.01, \"keep_best\": true, \"max_bad_steps\": 2,\n"
    "            \"sample_every\": 25, \"sample_prompts\": [\"Once upon\", \"say \\\"hi\\\"\\n\"],\n"
    "            \"sample_max_new_tokens\": 32, \"sample_temperature\": 0.7}\n"
    "}\n";

static void test_full_config(void) {
    Config c;
    TaError err = {0};
    T_CHECK(load_ok(FULL, NULL, 0, &c, &err) == TA_OK, "%s", err.msg);
    T_CHECK(!strcmp(c.run.name, "dpo-demo") && !strcmp(c.run.out_dir, "runs/dpo-demo") &&
                c.run.seed == 42 && c.run.threads == 2,
            "run");
    T_CHECK(c.model.init == CFG_INIT_CHECKPOINT && !strcmp(c.model.path, "runs/sft/ckpt") &&
                c.model.n_layer == 6 && c.model.n_head == 6 && c.model.d_model == 384 &&
                c.model.vocab_size == 8192 && c.model.max_seq_len == 512,
            "model");
    T_CHECK(!strcmp(c.tokenizer.model, "models/tiny/spm.model"), "tokenizer");
    T_CHECK(c.data.format == CFG_DATA_PREFERENCE && !strcmp(c.data.train.paths[0], "data/p*.jsonl") &&
                !strcmp(c.data.val, "data/v.jsonl") && c.data.max_len == 384 &&
                c.data.max_prompt_len == 200 && c.data.truncation_mode == CFG_TRUNC_KEEP_START &&
                !c.data.shuffle,
            "data");
    T_CHECK(c.objective.type == CFG_OBJ_DORPO && c.objective.beta == 0.25 &&
                c.objective.loss_type == CFG_LOSS_ROBUST && c.objective.label_smoothing == 0.1 &&
                c.objective.sft_weight == 1.0 && c.objective.lambda == 0.5 &&
                c.objective.nll_scope == CFG_NLL_FULL && c.objective.dorpo_match_trl_quirk &&
                c.objective.odds_clamp == 1e-5,
            "objective");
    T_CHECK(c.objective.reference.mode == CFG_REF_SYNC &&
                !strcmp(c.objective.reference.path, "ref/") &&
                !strcmp(c.objective.reference.cache_dir, "cache") &&
                c.objective.reference.sync_steps == 64 && c.objective.reference.sync_alpha == 1.0,
            "reference");
    T_CHECK(c.optim.lr == 5e-6 && c.optim.betas[0] == 0.8 && c.optim.betas[1] == 0.95 &&
                c.optim.eps == 1e-6 && c.optim.weight_decay == 0.1 &&
                c.optim.schedule == SCHED_LINEAR && c.optim.warmup_steps == 10 &&
                c.optim.min_lr_ratio == 0.1 && c.optim.grad_clip == 0.0,
            "optim");
    T_CHECK(c.train.batch_size == 4 && c.train.grad_accum == 2 && c.train.max_steps == 300 &&
                c.train.log_every == 5 && c.train.eval_every == 50 && c.train.eval_batches == 7 &&
                c.train.save_every == 0 && c.train.keep_last_n == 2 && c.train.patience == 3 &&
                c.train.min_delta == 0.01 && c.train.keep_best && c.train.max_bad_steps == 2 &&
                c.train.sample_every == 25 && c.train.sample_max_new_tokens == 32 &&
                c.train.sample_temperature == 0.7,
            "train");
    T_CHECK(c.train.sample_prompts.n == 2 && !strcmp(c.train.sample_prompts.items[0], "Once upon") &&
                !strcmp(c.train.sample_prompts.items[1], "say \"hi\"\n"),
            "sample_prompts");
    /* Round trip of a non-default config, and copy. */
    char *js = config_to_json(&c);
    Config d, e;
    int rc = config_load_string(&d, js, "resolved.json", &err);
    T_CHECK(rc == TA_OK, "%s", err.msg);
    char diff[1024];
    T_CHECK(config_diff(&c, &d, 0, diff, sizeof diff) == 0, "round trip: %s", diff);
    config_copy(&e, &c);
    T_CHECK(config_diff(&c, &e, 0, diff, sizeof diff) == 0, "copy: %s", diff);
    T_CHECK(e.run.name != c.run.name && e.train.sample_prompts.items != c.train.sample_prompts.items,
            "copy is shallow");
    /* Conversions. */
    AdamWConfig a;
    config_to_adamw(&c, &a);
/* exact, whether AdamWConfig holds doubles or floats */
#define SAME(x, v) ((double)(x) == (sizeof(x) == sizeof(double) ? (double)(v) : (double)(float)(v)))
    T_CHECK(SAME(a.lr, 5e-6) && SAME(a.beta1, 0.8) && SAME(a.beta2, 0.95) && SAME(a.eps, 1e-6) &&
                SAME(a.weight_decay, 0.1) && a.schedule == SCHED_LINEAR && a.warmup_steps == 10 &&
                a.max_steps == 300 && SAME(a.min_lr_ratio, 0.1) && SAME(a.grad_clip, 0.0),
            "adamw: lr %.17g b1 %.17g b2 %.17g eps %.17g wd %.17g", (double)a.lr, (double)a.beta1,
            (double)a.beta2, (double)a.eps, (double)a.weight_decay);
#undef SAME
    GPT2Config g;
    config_to_gpt2(&c, &g);
    T_CHECK(g.n_layer == 6 && g.n_head == 6 && g.d_model == 384 && g.vocab_size == 8192 &&
                g.max_seq_len == 512 && g.padded_vocab_size == 0,
            "gpt2");
    T_CHECK(!strcmp(config_choice_name("objective.type", c.objective.type), "dorpo") &&
                !strcmp(config_choice_name("optim.schedule", SCHED_COSINE), "cosine") &&
                !strcmp(config_choice_name("optim.lr", 0), "?"),
            "choice names");
    free(js);
    config_free(&c);
    config_free(&d);
    config_free(&e);
}

static void test_missing_file(void) {
    char path[512], want[700];
    snprintf(path, sizeof path, "%s/nope.json", g_dir);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
    Config c;
    TaError err = {0};
    int rc = config_load(&c, path, NULL, 0, &err);
    T_CHECK(rc == TA_EINPUT && !strcmp(err.msg, want), "rc %d \"%s\"", rc, err.msg);
    rc = config_load(&c, g_dir, NULL, 0, &err); /* a directory */
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, g_dir), "directory: rc %d \"%s\"", rc, err.msg);
}

static void test_invalid_json(void) {
    char why[2048];
    const char *path = write_cfg("bad.json", "{\n  \"run\": {\"name\": \"x\",}\n}\n");
    Config c;
    TaError err = {0};
    int rc = config_load(&c, path, NULL, 0, &err);
    char want[700];
    snprintf(want, sizeof want, "%s:2:23: invalid JSON near '}'", path);
    T_CHECK(rc == TA_EINPUT && !strcmp(err.msg, want), "got \"%s\", want \"%s\"", err.msg, want);
    /* missing comma on line 3 */
    path = write_cfg("bad2.json", "{\n  \"optim\": {\"lr\": 1e-3},\n  \"train\": {\"batch_size\": 8 \"grad_accum\": 2}\n}\n");
    rc = config_load(&c, path, NULL, 0, &err);
    snprintf(want, sizeof want, "%s:3:29: invalid JSON near '\"grad_accum\": 2}'", path);
    T_CHECK(rc == TA_EINPUT && !strcmp(err.msg, want), "got \"%s\", want \"%s\"", err.msg, want);
    /* truncated */
    path = write_cfg("bad3.json", "{\"optim\": {\"lr\": 1e-3");
    rc = config_load(&c, path, NULL, 0, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, path) && strstr(err.msg, ":1:") &&
                strstr(err.msg, "invalid JSON"),
            "%s", err.msg);
    /* empty file, not an object */
    T_CHECK(expect_err("  \n", NULL, 0, "empty file, expected a JSON object", 0, why, sizeof why), "%s", why);
    T_CHECK(expect_err("[1, 2]", NULL, 0, "must be a JSON object", 0, why, sizeof why), "%s", why);
}

static void test_wrong_type(void) {
    EXPECT_ERR("{" DATA_OK ", \"train\": {\"batch_size\": \"eight\"}}",
               "\"train.batch_size\" must be an integer >= 1, got \"eight\" (string)");
    EXPECT_ERR("{" DATA_OK ", \"train\": {\"batch_size\": 2.5}}",
               "\"train.batch_size\" must be an integer >= 1, got 2.5 (number)");
    EXPECT_ERR("{" DATA_OK ", \"data\": {\"shuffle\": 1}}",
               "duplicate key \"data\"");
    EXPECT_ERR("{\"data\": {\"train\": \"a\", \"shuffle\": 1}}",
               "\"data.shuffle\" must be true or false, got 1 (number)");
    EXPECT_ERR("{\"data\": {\"train\": 7}}", "\"data.train\" must be a non-empty string, or a list "
               "of 1 to 16 files to mix (\"path\" or {\"path\": ..., \"weight\": w >= 0, \"loss\": "
               "\"all\" | \"nll\" | \"kl\"}), got 7 (number)");
    EXPECT_ERR("{\"data\": {\"train\": \"\"}}", "\"data.train\" must be a non-empty string, or a "
               "list of 1 to 16 files to mix (\"path\" or {\"path\": ..., \"weight\": w >= 0, "
               "\"loss\": \"all\" | \"nll\" | \"kl\"}), got \"\" (string)");
    EXPECT_ERR("{" DATA_OK ", \"optim\": {\"betas\": 0.9}}",
               "\"optim.betas\" must be an array of 2 numbers, each in [0, 1), got 0.9 (number)");
    EXPECT_ERR("{" DATA_OK ", \"train\": {\"sample_prompts\": [\"a\", 1]}}",
               "\"train.sample_prompts\" must be an array of strings, got [\"a\", 1] (array)");
    EXPECT_ERR("{" DATA_OK ", \"optim\": 3}",
               "\"optim\" must be an object (a section with keys lr, betas, eps, weight_decay, "
               "schedule, warmup_steps, min_lr_ratio, grad_clip), got 3 (number)");
    EXPECT_ERR("{" DATA_OK ", \"objective\": {\"reference\": \"snapshot\"}}",
               "\"objective.reference\" must be an object (a section with keys mode, path, "
               "cache_dir, sync_steps, sync_alpha), got \"snapshot\" (string)");
    EXPECT_ERR("{" DATA_OK ", \"run\": {\"seed\": null}}",
               "\"run.seed\" must be an integer >= 0, got null (null)");
    EXPECT_ERR("{" DATA_OK ", \"train\": {\"max_steps\": 1e12}}",
               "\"train.max_steps\" must be an integer >= 1, got 1000000000000 (number) "
               "(the largest allowed is 2147483647)");
    EXPECT_ERR("{" DATA_OK ", \"optim\": {\"lr\": 1e-3, \"lr\": 2e-3}}", "duplicate key \"optim.lr\"");
}

static void test_unknown_keys(void) {
    EXPECT_ERR("{" DATA_OK ", \"optm\": {}}", "unknown key \"optm\"; did you mean \"optim\"?");
    EXPECT_ERR("{" DATA_OK ", \"optimizer\": {}}", "unknown key \"optimizer\"; did you mean \"optim\"?");
    EXPECT_ERR("{" DATA_OK ", \"optim\": {\"learnig_rate\": 1e-3}}",
               "unknown key \"optim.learnig_rate\"; did you mean \"optim.lr\"?");
    EXPECT_ERR("{" DATA_OK ", \"train\": {\"bacth_size\": 4}}",
               "unknown key \"train.bacth_size\"; did you mean \"train.batch_size\"?");
    EXPECT_ERR("{" DATA_OK ", \"train\": {\"gradient_accumulation_steps\": 4}}",
               "unknown key \"train.gradient_accumulation_steps\"; did you mean \"train.grad_accum\"?");
    EXPECT_ERR("{" DATA_OK ", \"objective\": {\"reference\": {\"mdoe\": \"cached\"}}}",
               "unknown key \"objective.reference.mdoe\"; did you mean \"objective.reference.mode\"?");
    EXPECT_ERR("{" DATA_OK ", \"objective\": {\"loss\": \"ipo\"}}",
               "unknown key \"objective.loss\"; did you mean \"objective.loss_type\"?");
    EXPECT_ERR("{" DATA_OK ", \"objective\": {\"referense\": {}}}",
               "unknown key \"objective.referense\"; did you mean \"objective.reference\"?");
    EXPECT_ERR("{" DATA_OK ", \"Train\": {}}", "unknown key \"Train\"; did you mean \"train\"?");
    /* wrong section: the key lives elsewhere */
    EXPECT_ERR("{" DATA_OK ", \"train\": {\"lr\": 1e-3}}",
               "unknown key \"train.lr\"; did you mean \"optim.lr\"?");
    EXPECT_ERR("{" DATA_OK ", \"model\": {\"n_embd\": 64}}",
               "unknown key \"model.n_embd\"; did you mean \"model.d_model\"?");
    /* nothing close: list the valid keys */
    EXPECT_ERR("{" DATA_OK ", \"objective\": {\"deviation\": {}}}",
               "unknown key \"objective.deviation\" (valid keys in \"objective\": type, beta, "
               "loss_type, label_smoothing, sft_weight, lambda, nll_scope, "
               "dorpo_match_trl_quirk, odds_clamp, center_rewards_coefficient, reference, "
               "attribute, nado)");
    EXPECT_ERR("{" DATA_OK ", \"zzzzzz\": 1}",
               "unknown section \"zzzzzz\" (valid sections: run, model, tokenizer, data, "
               "objective, optim, train)");
}

static void test_out_of_range(void) {
    EXPECT_ERR("{" DATA_OK ", \"optim\": {\"lr\": 0}}", "\"optim.lr\" must be a number > 0, got 0 (number)");
    EXPECT_ERR("{" DATA_OK ", \"optim\": {\"lr\": -0.001}}",
               "\"optim.lr\" must be a number > 0, got -0.001 (number)");
    EXPECT_ERR("{" DATA_OK ", \"train\": {\"batch_size\": 0}}",
               "\"train.batch_size\" must be an integer >= 1, got 0 (number)");
    EXPECT_ERR("{" DATA_OK ", \"train\": {\"grad_accum\": 0}}",
               "\"train.grad_accum\" must be an integer >= 1, got 0 (number)");
    EXPECT_ERR("{" DATA_OK ", \"optim\": {\"betas\": [0.9, 1.0]}}",
               "\"optim.betas\" must be an array of 2 numbers, each in [0, 1), got [0.9, 1] (array)");
    EXPECT_ERR("{" DATA_OK ", \"optim\": {\"betas\": [0.9]}}",
               "\"optim.betas\" must be an array of 2 numbers, each in [0, 1), got [0.9] (array)");
    EXPECT_ERR("{" DATA_OK ", \"data\": {\"val_fraction\": 0.6}}", "duplicate key \"data\"");
    EXPECT_ERR("{\"data\": {\"train\": \"t\", \"val_fraction\": 0.6}}",
               "\"data.val_fraction\" must be a number in [0, 0.5], got 0.6 (number)");
    EXPECT_ERR("{" DATA_OK ", \"objective\": {\"reference\": {\"sync_alpha\": 0}}}",
               "\"objective.reference.sync_alpha\" must be a number in (0, 1], got 0 (number)");
    EXPECT_ERR("{" DATA_OK ", \"objective\": {\"label_smoothing\": 0.5}}",
               "\"objective.label_smoothing\" must be a number in [0, 0.5), got 0.5 (number)");
    EXPECT_ERR("{" DATA_OK ", \"objective\": {\"type\": \"dpoo\"}}",
               "\"objective.type\" must be one of \"pretrain\", \"sft\", \"dpo\", \"orpo\", "
               "\"ddpo\", \"dorpo\", \"reward\", \"nado\", got \"dpoo\" (string); did you mean "
               "\"dpo\"?");
    EXPECT_ERR("{" DATA_OK ", \"optim\": {\"schedule\": \"exponential\"}}",
               "\"optim.schedule\" must be one of \"constant\", \"linear\", \"cosine\", got "
               "\"exponential\" (string)");
}

static void test_cross_checks(void) {
    EXPECT_ERR("{" DATA_OK ", \"model\": {\"d_model\": 130}}",
               "\"model.d_model\" (130) must be a multiple of \"model.n_head\" (4)");
    EXPECT_ERR("{\"data\": {\"train\": \"t\", \"max_len\": 512}}",
               "\"data.max_len\" (512) must be <= \"model.max_seq_len\" (256)");
    EXPECT_ERR("{" DATA_OK ", \"model\": {\"init\": \"hf\"}}",
               "\"model.path\" is required when \"model.init\" is \"hf\"");
    EXPECT_ERR("{\"data\": {\"train\": \"t\", \"format\": \"sft\"}}",
               "\"tokenizer.model\" is required when \"tokenizer.type\" is \"sentencepiece\" and "
               "\"data.format\" is \"sft\"");
    EXPECT_ERR("{\"data\": {\"train\": \"t\", \"val\": \"v\", \"val_fraction\": 0.1}}",
               "\"data.val_fraction\" (0.1) must be 0 when \"data.val\" is set (\"v\")");
    EXPECT_ERR("{" DATA_OK ", \"objective\": {\"type\": \"dpo\"}}",
               "\"objective.type\" \"dpo\" needs pairs: \"data.format\" must be \"preference\" "
               "or \"multi\", got \"tokens\"");
    EXPECT_ERR("{" DATA_OK ", \"objective\": {\"type\": \"nado\", \"nado\": {\"base\": \"b\"}}}",
               "\"objective.type\" \"nado\" learns from labelled samples: \"data.format\" must "
               "be \"multi\" (responses with a 0/1 \"score\", as `tinyalign score` writes them), "
               "got \"tokens\"");
    EXPECT_ERR("{\"data\": {\"train\": \"t\", \"format\": \"multi\"}, \"tokenizer\": {\"model\": "
               "\"m\"}, \"objective\": {\"type\": \"nado\"}}",
               "\"objective.nado.base\" is required when \"model.init\" is \"scratch\" (the base "
               "model whose samples the NADO learns from; \"\" means the initial model, which "
               "here is random)");
    EXPECT_ERR("{" DATA_OK ", \"objective\": {\"attribute\": {\"guide\": \"g\", \"base\": \"b\"}}}",
               "\"objective.attribute.base\" (\"b\") is only read when "
               "\"objective.attribute.q_base\" is \"base\"");
    EXPECT_ERR("{" DATA_OK ", \"objective\": {\"attribute\": {\"q_base\": \"base\"}}}",
               "\"objective.attribute.q_base\" \"base\" needs a guide: set "
               "\"objective.attribute.guide\"");
    EXPECT_ERR("{" DATA_OK ", \"objective\": {\"nado\": {\"alpha_reg\": -1}}}",
               "\"objective.nado.alpha_reg\" must be a number >= 0, got -1 (number)");
    EXPECT_ERR("{" DATA_OK ", \"objective\": {\"attribute\": {\"q_base\": \"pollicy\"}}}",
               "\"objective.attribute.q_base\" must be one of \"policy\", \"base\", got "
               "\"pollicy\" (string); did you mean \"policy\"?");
    EXPECT_ERR("{" DATA_OK ", \"train\": {\"patience\": 2, \"eval_every\": 0}}",
               "\"train.patience\" (2) needs evaluations: set \"train.eval_every\" > 0");
    /* max_len > max_seq_len is fine when the dims come from a checkpoint */
    Config c;
    TaError err = {0};
    T_CHECK(load_ok("{\"model\": {\"init\": \"checkpoint\", \"path\": \"ck\"}, "
                    "\"data\": {\"train\": \"t\", \"max_len\": 1024}}",
                    NULL, 0, &c, &err) == TA_OK,
            "%s", err.msg);
    config_free(&c);
}

static void test_preset(void) {
    char ppath[512], text[1024];
    snprintf(ppath, sizeof ppath, "%s", write_cfg("small.json",
             "{\"n_layer\": 6, \"n_head\": 6, \"d_model\": 384, \"max_seq_len\": 512, \"vocab_size\": 8192}"));
    /* preset fills what is not set; explicit n_layer wins */
    snprintf(text, sizeof text,
             "{\"model\": {\"preset\": \"%s\", \"n_layer\": 2}, " DATA_OK "}", ppath);
    Config c;
    TaError err = {0};
    T_CHECK(load_ok(text, NULL, 0, &c, &err) == TA_OK, "%s", err.msg);
    T_CHECK(c.model.n_layer == 2 && c.model.n_head == 6 && c.model.d_model == 384 &&
                c.model.max_seq_len == 512 && c.model.vocab_size == 8192 &&
                !strcmp(c.model.preset, ppath),
            "preset fill: L %d NH %d C %d T %d V %d", c.model.n_layer, c.model.n_head,
            c.model.d_model, c.model.max_seq_len, c.model.vocab_size);
    /* round trip keeps the resolved dims */
    char *js = config_to_json(&c);
    Config d;
    T_CHECK(config_load_string(&d, js, "r.json", &err) == TA_OK, "%s", err.msg);
    T_CHECK(config_diff(&c, &d, 0, NULL, 0) == 0, "preset round trip");
    free(js);
    config_free(&c);
    config_free(&d);
    /* --set beats the preset too */
    const char *sets[] = {"model.d_model=192"};
    T_CHECK(load_ok(text, sets, 1, &c, &err) == TA_OK, "%s", err.msg);
    T_CHECK(c.model.d_model == 192 && c.model.n_head == 6, "--set over preset");
    config_free(&c);
    /* the shipped presets load */
    static const char *const shipped[] = {"models/tiny.json", "models/small.json", "models/gpt2-124m.json"};
    for (int i = 0; i < 3; i++) {
        char root[512];
        const char *r = getenv("TA_ROOT");
        snprintf(root, sizeof root, "%s/%s", r ? r : ".", shipped[i]);
        if (access(root, R_OK) != 0) continue; /* run from elsewhere */
        snprintf(text, sizeof text, "{\"model\": {\"preset\": \"%s\"}, " DATA_OK "}", root);
        T_CHECK(load_ok(text, NULL, 0, &c, &err) == TA_OK, "%s: %s", shipped[i], err.msg);
        config_free(&c);
    }
    /* errors name the preset file */
    char want[1024], why[2048];
    snprintf(text, sizeof text, "{\"model\": {\"preset\": \"%s/none.json\"}, " DATA_OK "}", g_dir);
    snprintf(want, sizeof want,
             "\"model.preset\": %s/none.json: cannot open: No such file or directory", g_dir);
    T_CHECK(expect_err(text, NULL, 0, want, 1, why, sizeof why), "%s", why);

    snprintf(ppath, sizeof ppath, "%s", write_cfg("bad_preset.json", "{\"n_layers\": 6}"));
    snprintf(text, sizeof text, "{\"model\": {\"preset\": \"%s\"}, " DATA_OK "}", ppath);
    snprintf(want, sizeof want, "%s: unknown key \"n_layers\"; did you mean \"n_layer\"?", ppath);
    T_CHECK(load_ok(text, NULL, 0, &c, &err) == TA_EINPUT && !strcmp(err.msg, want),
            "got \"%s\" want \"%s\"", err.msg, want);

    snprintf(ppath, sizeof ppath, "%s", write_cfg("bad_preset2.json", "{\"n_head\": \"four\"}"));
    snprintf(text, sizeof text, "{\"model\": {\"preset\": \"%s\"}, " DATA_OK "}", ppath);
    snprintf(want, sizeof want, "%s: \"n_head\" must be an integer >= 1, got \"four\" (string)", ppath);
    T_CHECK(load_ok(text, NULL, 0, &c, &err) == TA_EINPUT && !strcmp(err.msg, want),
            "got \"%s\" want \"%s\"", err.msg, want);

    snprintf(ppath, sizeof ppath, "%s", write_cfg("bad_preset3.json", "{\"n_head\": 4,\n\"init\": 1}"));
    snprintf(text, sizeof text, "{\"model\": {\"preset\": \"%s\"}, " DATA_OK "}", ppath);
    T_CHECK(load_ok(text, NULL, 0, &c, &err) == TA_EINPUT && strstr(err.msg, ppath) &&
                strstr(err.msg, "unknown key \"init\" (a model preset has: n_layer, n_head, "
                                "d_model, vocab_size, max_seq_len)"),
            "%s", err.msg);

    snprintf(ppath, sizeof ppath, "%s", write_cfg("bad_preset4.json", "{\"n_head\": 4,\n}"));
    snprintf(text, sizeof text, "{\"model\": {\"preset\": \"%s\"}, " DATA_OK "}", ppath);
    snprintf(want, sizeof want, "%s:2:1: invalid JSON near '}'", ppath);
    T_CHECK(load_ok(text, NULL, 0, &c, &err) == TA_EINPUT && !strcmp(err.msg, want),
            "got \"%s\" want \"%s\"", err.msg, want);
}

static void test_overrides(void) {
    const char *sets[] = {
        "optim.lr=1e-4",                        /* number */
        "run.name=exp 2",                       /* bare string */
        "optim.betas=[0.85, 0.9]",              /* array */
        "data.shuffle=false",                   /* bool */
        "objective.type=dpo",                   /* enum, bare */
        "data.format=\"preference\"",           /* quoted string */
        "objective.reference.mode=cached",      /* nested */
        "train.sample_prompts=[\"a\", \"b c\"]", /* list */
        "tokenizer.model=2024",                 /* number-looking text for a string key */
        "train.batch_size=4", "train.batch_size=16", /* the last one wins */
    };
    Config c;
    TaError err = {0};
    int rc = load_ok("{\"data\": {\"train\": \"t\"}, \"optim\": {\"lr\": 0.5}}", sets,
                     (int)(sizeof sets / sizeof sets[0]), &c, &err);
    T_CHECK(rc == TA_OK, "%s", err.msg);
    T_CHECK(c.optim.lr == 1e-4, "lr %g", c.optim.lr);
    T_CHECK(!strcmp(c.run.name, "exp 2") && !strcmp(c.run.out_dir, "runs/exp 2"), "name");
    T_CHECK(c.optim.betas[0] == 0.85 && c.optim.betas[1] == 0.9, "betas");
    T_CHECK(!c.data.shuffle, "shuffle");
    T_CHECK(c.objective.type == CFG_OBJ_DPO && c.data.format == CFG_DATA_PREFERENCE, "enums");
    T_CHECK(c.objective.reference.mode == CFG_REF_CACHED, "nested");
    T_CHECK(c.train.sample_prompts.n == 2 && !strcmp(c.train.sample_prompts.items[1], "b c"), "list");
    T_CHECK(!strcmp(c.tokenizer.model, "2024"), "string key from number text");
    T_CHECK(c.train.batch_size == 16, "last --set wins");
    config_free(&c);
    /* --set on an empty config (no file) */
    const char *sets2[] = {"data.train=x.bin"};
    T_CHECK(config_load(&c, NULL, sets2, 1, &err) == TA_OK, "%s", err.msg);
    T_CHECK(c.data.train.n == 1 && !strcmp(c.data.train.paths[0], "x.bin"), "no-file load");
    config_free(&c);

    EXPECT_SET_ERR("optim.learnig_rate=1e-3",
                   "--set: unknown key \"optim.learnig_rate\"; did you mean \"optim.lr\"?");
    EXPECT_SET_ERR("optm.lr=1e-3", "--set: unknown key \"optm.lr\"; did you mean \"optim.lr\"?");
    EXPECT_SET_ERR("train.batch_size=eight",
                   "--set: \"train.batch_size\" must be an integer >= 1, got \"eight\" (string)");
    EXPECT_SET_ERR("optim.lr=-1", "--set: \"optim.lr\" must be a number > 0, got -1 (number)");
    EXPECT_SET_ERR("optim.betas=0.9",
                   "--set: \"optim.betas\" must be an array of 2 numbers, each in [0, 1), got 0.9 (number)");
    EXPECT_SET_ERR("data.shuffle=yes", "--set: \"data.shuffle\" must be true or false, got \"yes\" (string)");
    EXPECT_SET_ERR("optim.schedule=cosin",
                   "--set: \"optim.schedule\" must be one of \"constant\", \"linear\", \"cosine\", "
                   "got \"cosin\" (string); did you mean \"cosine\"?");
    EXPECT_SET_ERR("optim", "--set \"optim\": expected section.key=value (e.g. optim.lr=1e-4)");
    EXPECT_SET_ERR("optim=1", "--set: \"optim\" is a section; set one of its keys, e.g. --set "
                              "optim.KEY=VALUE (keys: lr, betas, eps, weight_decay, schedule, "
                              "warmup_steps, min_lr_ratio, grad_clip)");
    /* an unknown section inside a key path: name it and list what exists (never an empty
     * list) */
    EXPECT_SET_ERR("nope.key=1", "--set: unknown section \"nope\" in \"nope.key\" (valid sections: "
                                 "run, model, tokenizer, data, objective, optim, train)");
    EXPECT_SET_ERR("optim.x.y=1", "--set: unknown key \"optim.x.y\" (\"optim\" has no section \"x\"; "
                                  "its keys: lr, betas, eps, weight_decay, schedule, warmup_steps, "
                                  "min_lr_ratio, grad_clip)");
    /* text must be valid UTF-8: --set values and config files alike */
    EXPECT_SET_ERR("run.name=a\xff", "--set \"run.name=a\\xFF\": not valid UTF-8 (byte 11: 0xFF)");
    {
        char why[2048];
        T_CHECK(expect_err("{" DATA_OK ",\n \"run\": {\"name\": \"\xc3\xa9t\xc3\"}}", NULL, 0,
                           "2:21: not valid UTF-8 (byte 0xC3); a config is a UTF-8 JSON file", 0,
                           why, sizeof why),
                "%s", why);
    }
    /* cross-key errors caused by --set name --set */
    EXPECT_SET_ERR("model.d_model=130",
                   "--set: \"model.d_model\" (130) must be a multiple of \"model.n_head\" (4)");
    /* --set replaces a non-object section in the tree */
    const char *sets3[] = {"objective.reference.mode=sync"};
    rc = load_ok("{" DATA_OK ", \"objective\": {\"reference\": 5}}", sets3, 1, &c, &err);
    T_CHECK(rc == TA_OK && c.objective.reference.mode == CFG_REF_SYNC, "%s", err.msg);
    config_free(&c);
}

static void test_diff_math(void) {
    Config a, b;
    TaError err = {0};
    const char *base = "{" DATA_OK ", \"optim\": {\"lr\": 0.001}}";
    T_CHECK(load_ok(base, NULL, 0, &a, &err) == TA_OK, "%s", err.msg);
    /* non-math changes only */
    const char *nonmath[] = {"run.name=other",       "run.out_dir=/tmp/x",     "run.threads=7",
                             "train.log_every=1",    "train.save_every=5",     "train.keep_last_n=9",
                             "train.eval_every=3",   "train.eval_batches=2",   "train.sample_every=4",
                             "train.sample_prompts=[\"p\"]", "train.sample_max_new_tokens=9",
                             "train.sample_temperature=0", "train.keep_best=true",
                             "model.preset=" /* the dims it sets are what count */};
    T_CHECK(load_ok(base, nonmath, (int)(sizeof nonmath / sizeof nonmath[0]), &b, &err) == TA_OK,
            "%s", err.msg);
    char buf[2048];
    int n = config_diff_math(&a, &b, buf, sizeof buf);
    T_CHECK(n == 0, "non-math keys reported: %s", buf);
    T_CHECK(config_diff(&a, &b, 0, NULL, 0) == 13, "all-keys diff count %d",
            config_diff(&a, &b, 0, NULL, 0));
    config_free(&b);
    /* math changes */
    const char *math[] = {"optim.lr=0.002", "train.batch_size=4", "data.train=other.bin",
                          "optim.betas=[0.9, 0.95]", "objective.reference.sync_steps=8",
                          "run.threads=1"};
    T_CHECK(load_ok(base, math, (int)(sizeof math / sizeof math[0]), &b, &err) == TA_OK, "%s", err.msg);
    n = config_diff_math(&a, &b, buf, sizeof buf);
    const char *want = "data.train: \"data/train.bin\" -> \"other.bin\"\n"
                       "objective.reference.sync_steps: 512 -> 8\n"
                       "optim.lr: 0.001 -> 0.002\n"
                       "optim.betas: [0.9, 0.999] -> [0.9, 0.95]\n"
                       "train.batch_size: 8 -> 4";
    T_CHECK(n == 5 && !strcmp(buf, want), "n %d:\n%s\nwant:\n%s", n, buf, want);
    /* truncation keeps the count */
    char small[8];
    T_CHECK(config_diff_math(&a, &b, small, sizeof small) == 5 && strlen(small) == 7, "truncation");
    config_free(&a);
    config_free(&b);
    /* every schema row is either math or listed as non-math */
    int nk;
    const ConfigKey *keys = config_keys(&nk);
    static const char *const NONMATH[] = {
        "run.name", "run.out_dir", "run.threads", "model.preset", "objective.reference.cache_dir",
        "train.log_every", "train.eval_every", "train.eval_batches", "train.save_every",
        "train.keep_last_n", "train.keep_best", "train.sample_every", "train.sample_prompts",
        "train.sample_max_new_tokens", "train.sample_temperature", "train.eval_generate.scorer",
        "train.eval_generate.prompts", "train.eval_generate.max_prompts", "train.eval_generate.n",
        "train.eval_generate.temperature", "train.eval_generate.greedy",
        "train.eval_generate.max_new_tokens", "train.eval_generate.template", NULL};
    for (int i = 0; i < nk; i++) {
        int listed = 0;
        for (int j = 0; NONMATH[j]; j++) listed |= !strcmp(NONMATH[j], keys[i].path);
        T_CHECK(listed == !(keys[i].flags & CFG_MATH), "math flag of %s", keys[i].path);
    }
}

/* Several mistakes are reported in one run: every --set and every key of the file, each on
 * its own line naming the key, in file order after the --set ones; the cross-key checks wait
 * until every key is valid; beyond what fits, a count of the rest. */
static void test_several_errors(void) {
    const char *path = write_cfg("many.json",
                                 "{\"run\": {\"seeed\": 3}, \"model\": {\"n_layer\": -1},\n"
                                 " \"data\": {\"trian\": \"a.bin\", \"max_len\": \"long\"},\n"
                                 " \"optim\": {\"lr\": -1, \"schedule\": \"cosin\"},\n"
                                 " \"train\": {\"batch_size\": 0, \"patience\": 2}}");
    const char *sets[2] = {"optim.betas=3", "train.max_stepz=4"};
    Config c;
    TaError err = {0};
    T_CHECK(config_load(&c, path, sets, 2, &err) == TA_EINPUT, "rc");
    static const char *const want[] = {
        "--set: \"optim.betas\"", "--set: unknown key \"train.max_stepz\"; did you mean \"train.max_steps\"?",
        "unknown key \"run.seeed\"", "\"model.n_layer\" must be", "unknown key \"data.trian\"",
        "\"data.max_len\" must be", "\"optim.lr\" must be", "\"optim.schedule\" must be",
        "\"train.batch_size\" must be", "\"data.train\" is required", NULL};
    /* every line in order; the ones that do not fit in a TaError (1024 bytes: it depends on
     * the scratch path's length) are counted on a last line "... and K more errors (10 in all)" */
    const char *line = err.msg;
    int n = 0, counted = 0;
    for (; want[n] && line; n++) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char one[1024];
        snprintf(one, sizeof one, "%.*s", (int)len, line);
        line = nl ? nl + 1 : NULL;
        if (!strncmp(one, "... and ", 8)) {
            char tail[96];
            snprintf(tail, sizeof tail, "... and %d more error%s (10 in all)", 10 - n, 10 - n == 1 ? "" : "s");
            T_CHECK(!strcmp(one, tail) && !line, "last line \"%s\", want \"%s\"", one, tail);
            counted = 10 - n;
            break;
        }
        T_CHECK(strstr(one, want[n]) != NULL, "line %d: \"%s\" lacks \"%s\"", n + 1, one, want[n]);
        if (n >= 2) T_CHECK(!strncmp(one, path, strlen(path)), "line %d names the file: %s", n + 1, one);
    }
    T_CHECK(n + counted == 10 && n >= 7 && !line, "%d lines matched, %d counted, message:\n%s", n,
            counted, err.msg);
    /* train.patience without eval_every is a cross-key error: not reported while keys are bad */
    T_CHECK(!strstr(err.msg, "patience"), "cross check ran on bad keys:\n%s", err.msg);
    /* once the keys are right, every cross-key failure is reported */
    path = write_cfg("cross.json", "{" DATA_OK ", \"model\": {\"d_model\": 30, \"n_head\": 4},\n"
                                   " \"train\": {\"patience\": 2, \"keep_best\": true, \"eval_every\": 0}}");
    T_CHECK(config_load(&c, path, NULL, 0, &err) == TA_EINPUT && strstr(err.msg, "\"model.d_model\" (30)") &&
                strstr(err.msg, "\"train.patience\" (2)") && strstr(err.msg, "\"train.keep_best\" needs"),
            "%s", err.msg);
    /* 30 unknown keys: as many lines as fit (at most 20), then the count */
    char text[4096] = "{\"run\": {";
    for (int i = 0; i < 30; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s\"zz%02d\": 1", i ? ", " : "", i);
    strcat(text, "}, " DATA_OK "}");
    path = write_cfg("thirty.json", text);
    T_CHECK(config_load(&c, path, NULL, 0, &err) == TA_EINPUT, "rc");
    const char *more = strstr(err.msg, "\n... and ");
    int lines = 1;
    for (const char *p = err.msg; *p; p++) lines += *p == '\n';
    T_CHECK(more && strstr(more, "(30 in all)") && lines >= 3 && lines <= 21 &&
                strstr(err.msg, "unknown key \"run.zz00\""),
            "%d lines:\n%s", lines, err.msg);
}

/* data.train as a mixture: the list form, its round trip, and every bad input named by entry. */
static void test_data_sources(void) {
    const char *path = write_cfg("m.json",
        "{\"data\": {\"format\": \"sft\", \"train\": [{\"path\": \"a.jsonl\", \"weight\": 3}, "
        "\"b.jsonl\", {\"path\": \"c.jsonl\", \"weight\": 0}]}, \"tokenizer\": {\"model\": \"t.model\"}}");
    Config c, d;
    TaError err = {0};
    T_CHECK(config_load(&c, path, NULL, 0, &err) == TA_OK, "%s", err.msg);
    const CfgSources *s = &c.data.train;
    T_CHECK(s->n == 3 && s->list && !strcmp(s->paths[0], "a.jsonl") && s->weights[0] == 3 &&
                !strcmp(s->paths[1], "b.jsonl") && s->weights[1] == 1 && s->weights[2] == 0,
            "parsed sources");
    char *js = config_to_json(&c);
    T_CHECK(config_load_string(&d, js, "resolved.json", &err) == TA_OK, "%s\n%s", err.msg, js);
    T_CHECK(config_diff(&c, &d, 0, NULL, 0) == 0 && d.data.train.n == 3 && d.data.train.list,
            "round trip:\n%s", js);
    free(js);
    /* the list changes the math; a one-entry list is the plain path */
    Config e;
    const char *one[] = {"data.train=[\"a.jsonl\"]"}, *plain[] = {"data.train=a.jsonl"};
    T_CHECK(config_load(&e, path, one, 1, &err) == TA_OK, "%s", err.msg);
    T_CHECK(config_diff_math(&c, &e, NULL, 0) == 1, "a changed mixture is a math change");
    config_free(&d);
    T_CHECK(config_load(&d, path, plain, 1, &err) == TA_OK, "%s", err.msg);
    T_CHECK(config_diff_math(&d, &e, NULL, 0) == 0 && !d.data.train.list && e.data.train.list,
            "\"a\" and [\"a\"] are the same data");
    config_free(&c);
    config_free(&d);
    config_free(&e);
#define SRC(x) "{\"data\": {\"format\": \"sft\", \"train\": " x "}, \"tokenizer\": {\"model\": \"t\"}}"
    EXPECT_PART(SRC("[{\"path\": \"a\", \"weight\": 1}, {\"path\": \"b\", \"weight\": -2}]"),
               "\"data.train[1].weight\" must be a number >= 0 (a mixing ratio), got -2 (number)");
    EXPECT_PART(SRC("[{\"path\": \"a\", \"weight\": 0}, {\"path\": \"b\", \"weight\": 0}]"),
               "\"data.train\": the mixing weights sum to 0; they must sum to a positive number");
    EXPECT_PART(SRC("[{\"path\": \"a\", \"wieght\": 1}]"),
               "unknown key \"data.train[0].wieght\" (a source has \"path\", \"weight\" and \"loss\")");
    /* "loss": which terms a source's rows feed ("kl": the attribute KL only) */
    EXPECT_PART(SRC("[\"a\", {\"path\": \"b\", \"loss\": \"nl\"}]"),
               "\"data.train[1].loss\" must be \"all\" (every loss term), \"nll\" or \"kl\" "
               "(objective.attribute's NLL or KL term only), got \"nl\" (string)");
    EXPECT_PART(SRC("[\"a\", {\"path\": \"b\", \"loss\": \"kl\"}]"),
               "\"data.train[1].loss\" is \"kl\" (rows that feed the attribute KL term only), "
               "which needs \"objective.type\" \"sft\" with \"objective.attribute.guide\" set "
               "(got \"pretrain\", no guide)");
#define KLSRC(x) "{\"data\": {\"format\": \"sft\", \"train\": " x "}, \"tokenizer\": {\"model\": " \
    "\"t\"}, \"objective\": {\"type\": \"sft\", \"attribute\": {\"guide\": \"g\"}}}"
    EXPECT_PART(KLSRC("[{\"path\": \"a\", \"weight\": 0}, {\"path\": \"b\", \"loss\": \"kl\"}]"),
               "every \"data.train\" source of weight > 0 has \"loss\" \"kl\": nothing feeds the NLL");
    EXPECT_PART(KLSRC("[{\"path\": \"a\", \"loss\": \"nll\"}, {\"path\": \"b\", \"weight\": 0, "
                      "\"loss\": \"kl\"}]"),
               "every \"data.train\" source of weight > 0 has \"loss\" \"nll\": nothing feeds the KL");
    {
        Config k;
        const char *p2 = write_cfg("kl.json", KLSRC("[{\"path\": \"a\", \"loss\": \"nll\"}, "
                                                    "{\"path\": \"b\", \"weight\": 2, "
                                                    "\"loss\": \"kl\"}, \"c\"]"));
        T_CHECK(config_load(&k, p2, NULL, 0, &err) == TA_OK, "%s", err.msg);
        T_CHECK(k.data.train.loss[0] == CFG_SRC_LOSS_NLL && k.data.train.loss[1] == CFG_SRC_LOSS_KL &&
                    k.data.train.loss[2] == CFG_SRC_LOSS_ALL,
                "parsed loss kinds");
        char *kj = config_to_json(&k);
        Config k2;
        T_CHECK(config_load_string(&k2, kj, "resolved.json", &err) == TA_OK &&
                    config_diff(&k, &k2, 0, NULL, 0) == 0 && k2.data.train.loss[1] == CFG_SRC_LOSS_KL &&
                    k2.data.train.loss[0] == CFG_SRC_LOSS_NLL,
                "loss round trip:\n%s", kj);
        const char *all[] = {"data.train=[\"a\", {\"path\": \"b\", \"weight\": 2, \"loss\": "
                             "\"kl\"}, \"c\"]"};
        Config k3;
        T_CHECK(config_load(&k3, p2, all, 1, &err) == TA_OK, "%s", err.msg);
        T_CHECK(config_diff_math(&k, &k3, NULL, 0) == 1, "a source's loss kind is a math change");
        free(kj);
        config_free(&k);
        config_free(&k2);
        config_free(&k3);
    }
#undef KLSRC
    EXPECT_PART(SRC("[{\"weight\": 1}]"), "\"data.train[0].path\" must be a non-empty string, got nothing");
    EXPECT_PART(SRC("[\"a\", 3]"), "\"data.train[1]\" must be a path or {\"path\": ..., \"weight\": ...}, got 3");
    EXPECT_PART(SRC("[{\"path\": \"a\", \"weight\": \"x\"}]"),
               "\"data.train[0].weight\" must be a number >= 0 (a mixing ratio), got \"x\" (string)");
    EXPECT_PART(SRC("[]"), "\"data.train\" must be a non-empty string, or a list of 1 to 16 files");
    EXPECT_PART("{\"data\": {\"train\": [\"a\", \"b\"]}}",
               "\"data.train\" lists 2 sources, which needs a JSONL \"data.format\"");
    EXPECT_PART("{\"data\": {\"format\": \"sft\", \"train\": \"a\"}, \"tokenizer\": {\"model\": \"t\"}, "
               "\"objective\": {\"type\": \"reward\"}}",
               "\"objective.type\" \"reward\" trains on preference pairs: \"data.format\" must be "
               "\"preference\", got \"sft\"");
#undef SRC
}

static void test_help(void) {
    char *h = config_help_text();
    int n;
    const ConfigKey *keys = config_keys(&n);
    T_CHECK(n >= 60, "only %d keys", n);
    for (int i = 0; i < n; i++) {
        T_CHECK(keys[i].doc && keys[i].doc[0], "%s has no doc", keys[i].path);
        T_CHECK(strstr(h, keys[i].path), "%s not in help", keys[i].path);
        T_CHECK(config_key_find(keys[i].path) == &keys[i], "find %s", keys[i].path);
    }
    T_CHECK(strstr(h, "optim.lr") && strstr(h, "0.0003") && strstr(h, "(> 0)") &&
                strstr(h, "[pretrain|sft|dpo|orpo|ddpo|dorpo|reward|nado]"),
            "help content:\n%s", h);
    free(h);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s", "/tmp/ta_config_XXXXXX");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 1; }
    t_run("config_defaults", test_defaults);
    t_run("config_defaults_round_trip", test_defaults_round_trip);
    t_run("config_full", test_full_config);
    t_run("config_data_sources", test_data_sources);
    t_run("config_missing_file", test_missing_file);
    t_run("config_invalid_json_line_col", test_invalid_json);
    t_run("config_wrong_type", test_wrong_type);
    t_run("config_unknown_key_suggestions", test_unknown_keys);
    t_run("config_out_of_range_and_enums", test_out_of_range);
    t_run("config_cross_checks", test_cross_checks);
    t_run("config_model_preset", test_preset);
    t_run("config_set_overrides", test_overrides);
    t_run("config_diff_math", test_diff_math);
    t_run("config_help_lists_every_key", test_help);
    t_run("config_several_errors_in_one_run", test_several_errors);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return t_done();
}
