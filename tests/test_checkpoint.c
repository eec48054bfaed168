/* test_checkpoint.c — checkpoint directories (include/tinyalign/checkpoint.h) on a tiny
 * model: keep_last_n with keep_best leaves exactly the expected step directories (best is
 * marked before pruning), every file's size and CRC32 in state.json (computed while
 * writing) equal those of the file on disk, reading the run config does not verify while
 * loading the state does, and checkpoint_resolve accepts every documented form of a model
 * path and refuses the rest with one message listing them.
 * Scratch files go to $TA_REF/checkpoint (default build/ref/checkpoint). */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testhelp.h"
#include "tinyalign/checkpoint.h"
#include "tinyalign/model_io.h"

static char g_dir[2048];
static GPT2 g_model;
static AdamW g_opt;

/* g_dir/<fmt % a> in one of 8 rotating buffers (copy what must live longer). */
static char *path(const char *fmt, const char *a) {
    static char bufs[8][4096];
    static int k;
    char *p = bufs[k++ % 8];
    char rel[2048];
    snprintf(rel, sizeof rel, fmt, a);
    snprintf(p, 4096, "%s/%s", g_dir, rel);
    return p;
}

static void setup(void) {
    GPT2Config c = {.n_layer = 1, .n_head = 2, .d_model = 8, .vocab_size = 20, .max_seq_len = 8};
    TaError err;
    TA_ASSERT(gpt2_config_check(&c, &err) == TA_OK);
    gpt2_init(&g_model, &c, 0);
    gpt2_init_weights(&g_model, 5);
    AdamWConfig oc = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .max_steps = 10};
    adamw_init(&g_opt, &oc, g_model.num_params);
    for (size_t i = 0; i < g_model.num_params; i++) g_opt.m[i] = (float)i, g_opt.v[i] = 0.5f;
}

static int save(const char *run, long step, int keep, int best, TaError *err) {
    TrainState st;
    memset(&st, 0, sizeof st);
    st.step = step;
    ta_rng_seed(&st.rng, 1); /* as a run starts: a seeded RNG, no best loss yet */
    st.best_val = INFINITY;
    st.best_step = -1;
    CheckpointContents cc = {.model = &g_model, .optim = &g_opt, .state = &st,
                             .config_json = "{\"run\": {\"seed\": 1}}"};
    return checkpoint_save(run, &cc, keep, best, NULL, 0, err);
}

/* "1 4" for step-00000001 and step-00000004 under run/checkpoints (ascending). */
static void list_steps(const char *run, char *out, size_t cap) {
    char ck[4096];
    snprintf(ck, sizeof ck, "%s/checkpoints", run);
    int seen[64] = {0};
    DIR *d = opendir(ck);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        int s;
        if (sscanf(e->d_name, "step-%d", &s) == 1 && s >= 0 && s < 64 && !strchr(e->d_name, '.'))
            seen[s] = 1;
    }
    if (d) closedir(d);
    out[0] = '\0';
    for (int s = 0; s < 64; s++)
        if (seen[s]) snprintf(out + strlen(out), cap - strlen(out), "%s%d", out[0] ? " " : "", s);
}

static void rm_rf(const char *p) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    TA_ASSERT(system(cmd) == 0);
}

/* keep_last_n = 1 with keep_best, best at steps 1 and 4: after each save the newest step
 * and the best one remain; when the new step is the best, the old best goes at once
 * (pruning before marking kept it one save too long). */
static void test_keep_last_with_best(void) {
    char run[4096];
    snprintf(run, sizeof run, "%s", path("keep", NULL));
    rm_rf(run);
    static const int best_at[7] = {0, 1, 0, 0, 1, 0, 0};
    static const char *want[7] = {"", "1", "1 2", "1 3", "4", "4 5", "4 6"};
    TaError err = {0};
    char got[256];
    for (int s = 1; s <= 6; s++) {
        T_CHECK(save(run, s, 1, best_at[s], &err) == TA_OK, "%s", err.msg);
        list_steps(run, got, sizeof got);
        T_CHECK(!strcmp(got, want[s]), "after step %d: step dirs \"%s\", expected \"%s\"", s, got,
                want[s]);
    }
    size_t n;
    char *best = ta_read_file(path("keep/checkpoints/best", NULL), &n, &err);
    char *latest = ta_read_file(path("keep/checkpoints/latest", NULL), &n, &err);
    T_CHECK(best && latest && !strcmp(best, "step-00000004\n") && !strcmp(latest, "step-00000006\n"),
            "best \"%s\", latest \"%s\"", best ? best : "?", latest ? latest : "?");
    free(best);
    free(latest);
    /* without keep_best: only the newest */
    snprintf(run, sizeof run, "%s", path("keep2", NULL));
    rm_rf(run);
    for (int s = 1; s <= 3; s++) T_CHECK(save(run, s, 2, 0, &err) == TA_OK, "%s", err.msg);
    list_steps(run, got, sizeof got);
    T_CHECK(!strcmp(got, "2 3"), "keep_last_n 2: \"%s\"", got);
}

/* state.json lists every file with the size and CRC32 of its bytes on disk (computed
 * while writing, so this is the independent check); the format keys old engines wrote
 * are all there. */
static void test_digests_match_files(void) {
    const char *run = path("crc", NULL);
    rm_rf(run);
    TaError err = {0};
    T_CHECK(save(run, 3, 0, 0, &err) == TA_OK, "%s", err.msg);
    size_t n;
    char *text = ta_read_file(path("crc/checkpoints/step-00000003/state.json", NULL), &n, &err);
    T_CHECK(text, "%s", err.msg);
    cJSON *st = cJSON_Parse(text);
    free(text);
    T_CHECK(st, "state.json is not JSON");
    static const char *keys[] = {"format", "format_version", "engine_version", "train_state",
                                 "config", "files"};
    for (int i = 0; i < 6; i++)
        T_CHECK(cJSON_GetObjectItemCaseSensitive(st, keys[i]), "state.json lacks \"%s\"", keys[i]);
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(st, "files"), *f;
    int count = 0, ok = 1;
    char bad[256] = "";
    cJSON_ArrayForEach(f, files) {
        char p[4096], hex[16];
        snprintf(p, sizeof p, "%s/checkpoints/step-00000003/%s", run, f->string);
        char *bytes = ta_read_file(p, &n, &err);
        if (!bytes) { ok = 0; snprintf(bad, sizeof bad, "%s unreadable", f->string); break; }
        snprintf(hex, sizeof hex, "%08x", ta_crc32(0, bytes, n));
        free(bytes);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(f, "crc32");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(f, "bytes");
        if (!cJSON_IsString(c) || strcmp(c->valuestring, hex) || !cJSON_IsNumber(b) ||
            (size_t)b->valuedouble != n) {
            ok = 0;
            snprintf(bad, sizeof bad, "%s: file %s / %zu bytes", f->string, hex, n);
            break;
        }
        count++;
    }
    cJSON_Delete(st);
    T_CHECK(ok, "%s", bad);
    T_CHECK(count == 3, "%d files listed, expected model, optim, config", count);
    TrainState s;
    int verified = 0;
    T_CHECK(checkpoint_load_state(path("crc/checkpoints/step-00000003", NULL), &s, NULL, &verified,
                                  &err) == TA_OK && s.step == 3 && verified, "%s", err.msg);
}

/* The run config is read without verifying the files (so a resume verifies once, when
 * the trainer loads the state); loading the state verifies. */
static void test_read_config_does_not_verify(void) {
    const char *run = path("flip", NULL);
    rm_rf(run);
    TaError err = {0};
    T_CHECK(save(run, 2, 0, 0, &err) == TA_OK, "%s", err.msg);
    const char *dir = path("flip/checkpoints/step-00000002", NULL);
    char mp[4200];
    snprintf(mp, sizeof mp, "%s/model.safetensors", dir);
    FILE *f = fopen(mp, "r+b");
    T_CHECK(f && fseek(f, 200, SEEK_SET) == 0, "open %s", mp);
    int c = fgetc(f);
    fseek(f, 200, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
    char *json = NULL;
    T_CHECK(checkpoint_read_config(dir, &json, &err) == TA_OK && json && strstr(json, "\"seed\""),
            "read_config: %s", err.msg);
    free(json);
    TrainState s;
    T_CHECK(checkpoint_load_state(dir, &s, NULL, NULL, &err) == TA_EINPUT &&
                strstr(err.msg, "checksum mismatch") && strstr(err.msg, "model.safetensors"),
            "load_state after a flipped byte: %s", err.msg);
}

/* Rewrites dir/state.json with the text edit() makes of it. */
static int rewrite_state(const char *dir, void (*edit)(char **text)) {
    char p[4200];
    snprintf(p, sizeof p, "%s/state.json", dir);
    size_t n;
    TaError err = {0};
    char *text = ta_read_file(p, &n, &err);
    if (!text) return 0;
    edit(&text);
    int ok = ta_write_file_atomic(p, text, strlen(text), &err) == TA_OK;
    free(text);
    return ok;
}
static void edit_seed(char **t) { /* the config's seed 1 -> 2 */
    char *at = strstr(*t, "\"seed\":\t1");
    if (at) at[8] = '2';
}
static void edit_add(char **t) { /* a member added in front of "format" */
    char *n = malloc(strlen(*t) + 32);
    snprintf(n, strlen(*t) + 32, "{\"extra\": 1,%s", *t + 1);
    free(*t);
    *t = n;
}
static void edit_space(char **t) { /* a space after the first brace */
    char *n = malloc(strlen(*t) + 2);
    snprintf(n, strlen(*t) + 2, "{ %s", *t + 1);
    free(*t);
    *t = n;
}
static void edit_break(char **t) { (*t)[1] = '{'; } /* no longer JSON */

/* An edit of state.json is refused, naming the value that changed (state.sum). */
static void test_state_sum_names_the_change(void) {
    static const struct {
        void (*edit)(char **);
        const char *want;
    } cases[] = {{edit_seed, "the value of config.run.seed changed"},
                 {edit_add, "format is missing or renamed (extra is in its place)"},
                 {edit_space, "its bytes changed outside the values"},
                 {edit_break, "it is no longer valid JSON"}};
    TaError err = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *run = path("sum", NULL);
        rm_rf(run);
        T_CHECK(save(run, 4, 0, 0, &err) == TA_OK, "%s", err.msg);
        const char *dir = path("sum/checkpoints/step-00000004", NULL);
        T_CHECK(rewrite_state(dir, cases[i].edit), "rewrite");
        TrainState s;
        T_CHECK(checkpoint_load_state(dir, &s, NULL, NULL, &err) == TA_EINPUT &&
                    strstr(err.msg, "state.json: edited or damaged after it was written") &&
                    strstr(err.msg, cases[i].want) && !strchr(err.msg, '\n'),
                "case %zu: %s", i, err.msg);
    }
    /* state.sum itself damaged: its last line catches it */
    const char *run = path("sum", NULL);
    rm_rf(run);
    T_CHECK(save(run, 4, 0, 0, &err) == TA_OK, "%s", err.msg);
    char sp[4200];
    snprintf(sp, sizeof sp, "%s/state.sum", path("sum/checkpoints/step-00000004", NULL));
    FILE *f = fopen(sp, "r+b");
    T_CHECK(f && fseek(f, 40, SEEK_SET) == 0, "open %s", sp);
    fputc('#', f);
    fclose(f);
    TrainState s;
    T_CHECK(checkpoint_load_state(path("sum/checkpoints/step-00000004", NULL), &s, NULL, NULL, &err) ==
                TA_EINPUT && strstr(err.msg, "state.sum: damaged"), "%s", err.msg);
}

/* checkpoint_check_state against an independent replay of the trainer's data cursor
 * (next_ids in train_order.c: draw perm[pos++], wrapping to the next epoch lazily when pos
 * reaches n): every real cursor passes, every off-by-one epoch or pos is refused, and the
 * arithmetic stays defined for any step (UBSan in make asan-test). */
static void test_check_state_cursor(void) {
    const uint64_t n = 5, per_step = 2;
    int64_t epoch = 0, pos = 0;
    TaError err = {0};
    for (long step = 0; step <= 12; step++) {
        if (step > 0)
            for (uint64_t k = 0; k < per_step; k++) {
                if (pos >= (int64_t)n) epoch++, pos = 0;
                pos++;
            }
        TrainState s;
        memset(&s, 0, sizeof s);
        s.step = step;
        s.cursor = (DataCursor){epoch, pos};
        StateLimits lim = {.max_steps = 12, .examples = n, .per_step = per_step,
                           .max_tokens_per_step = 10, .same_order = 1};
        T_CHECK(checkpoint_check_state(&s, &lim, "state.json", &err) == TA_OK, "step %ld (%lld, %lld): %s",
                step, (long long)epoch, (long long)pos, err.msg);
        for (int d = -1; d <= 1; d += 2) {
            TrainState x = s;
            x.cursor.pos += d;
            if (x.cursor.pos >= 0)
                T_CHECK(checkpoint_check_state(&x, &lim, "state.json", &err) == TA_EINPUT &&
                            strstr(err.msg, "train_state.pos"), "step %ld pos %+d accepted", step, d);
            x = s;
            x.cursor.epoch += d;
            if (x.cursor.epoch >= 0)
                T_CHECK(checkpoint_check_state(&x, &lim, "state.json", &err) == TA_EINPUT &&
                            strstr(err.msg, "train_state.epoch"), "step %ld epoch %+d accepted", step, d);
        }
    }
    /* beyond max_steps; tokens beyond what the steps hold; a product that overflows */
    TrainState s;
    memset(&s, 0, sizeof s);
    StateLimits lim = {.max_steps = 10, .examples = 7, .per_step = 3, .max_tokens_per_step = 4};
    s.step = 11;
    T_CHECK(checkpoint_check_state(&s, &lim, "f", &err) == TA_EINPUT && strstr(err.msg, "max_steps"), "%s", err.msg);
    s.step = 2;
    s.tokens_seen = 9;
    T_CHECK(checkpoint_check_state(&s, &lim, "f", &err) == TA_EINPUT && strstr(err.msg, "tokens_seen"), "%s", err.msg);
    lim.max_steps = 1L << 53;
    lim.per_step = 1ull << 40;
    s.step = 1L << 53;
    s.tokens_seen = 0;
    T_CHECK(checkpoint_check_state(&s, &lim, "f", &err) == TA_EINPUT && strstr(err.msg, "beyond any run"),
            "%s", err.msg);
}

/* Every accepted form resolves to the directory it stands for. */
static void test_resolve_forms(void) {
    char run[4096];
    snprintf(run, sizeof run, "%s", path("forms", NULL));
    rm_rf(run);
    TaError err = {0};
    T_CHECK(save(run, 1, 0, 1, &err) == TA_OK && save(run, 2, 0, 0, &err) == TA_OK, "%s", err.msg);
    const char *plain = path("forms_plain", NULL);
    rm_rf(plain);
    T_CHECK(model_save_dir(&g_model, plain, &err) == TA_OK, "%s", err.msg);
    struct {
        const char *in, *want;
    } cases[] = {
        {"forms", "forms/checkpoints/step-00000002"},
        {"forms/checkpoints", "forms/checkpoints/step-00000002"},
        {"forms/checkpoints/latest", "forms/checkpoints/step-00000002"},
        {"forms/checkpoints/best", "forms/checkpoints/step-00000001"},
        {"forms/checkpoints/step-00000001", "forms/checkpoints/step-00000001"},
        {"forms_plain", "forms_plain"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char in[4096], want[4096], out[4096];
        snprintf(in, sizeof in, "%s", path("%s", cases[i].in));
        snprintf(want, sizeof want, "%s", path("%s", cases[i].want));
        T_CHECK(checkpoint_resolve(in, out, sizeof out, &err) == TA_OK, "%s: %s", cases[i].in, err.msg);
        T_CHECK(!strcmp(out, want), "%s resolved to %s, expected %s", cases[i].in, out, want);
    }
    /* a crash between the two renames of a re-save: latest names a step that is only .old */
    char step[4096], old[4200], out[4096];
    snprintf(step, sizeof step, "%s", path("forms/checkpoints/step-00000002", NULL));
    snprintf(old, sizeof old, "%s.old", step);
    T_CHECK(rename(step, old) == 0, "rename");
    T_CHECK(checkpoint_resolve(run, out, sizeof out, &err) == TA_OK && !strcmp(out, step) &&
                access(step, F_OK) == 0, "step-N.old not recovered: %s", err.msg);
}

/* What fits no form: one message naming the path and listing the accepted forms. */
static void test_resolve_errors(void) {
    char out[4096];
    TaError err = {0};
    char empty[4096];
    snprintf(empty, sizeof empty, "%s", path("empty_dir", NULL));
    rm_rf(empty);
    mkdir(empty, 0755);
    T_CHECK(checkpoint_resolve(empty, out, sizeof out, &err) == TA_EINPUT &&
                strstr(err.msg, empty) && strstr(err.msg, "not a model directory") &&
                strstr(err.msg, CHECKPOINT_MODEL_FORMS), "empty dir: %s", err.msg);
    const char *nope = path("no_such_dir", NULL);
    T_CHECK(checkpoint_resolve(nope, out, sizeof out, &err) == TA_EINPUT &&
                strstr(err.msg, "no such directory") && strstr(err.msg, CHECKPOINT_MODEL_FORMS),
            "missing: %s", err.msg);
    /* a pointer file with garbage is not followed; the message shows a short escaped
     * excerpt (no raw control bytes, cut at 40 bytes) and the size */
    const char *garbage = path("empty_dir/latest", NULL);
    FILE *f = fopen(garbage, "wb");
    T_CHECK(f, "create %s", garbage);
    fputs("../../etc\n\x01\x02\x1b[2J", f);
    for (int i = 0; i < 200; i++) fputc(0x80 + i % 64, f);
    fclose(f);
    T_CHECK(checkpoint_resolve(garbage, out, sizeof out, &err) == TA_EINPUT &&
                strstr(err.msg, "not a checkpoint pointer") &&
                strstr(err.msg, "\"../../etc\\x0A\\x01\\x02\\x1B[2J\\x80") &&
                strstr(err.msg, "...\" (216 bytes)") && strlen(err.msg) < 600,
            "garbage pointer: %s", err.msg);
    for (const char *c = err.msg; *c; c++)
        T_CHECK((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7F, "raw byte %02x in: %s",
                (unsigned char)*c, err.msg);
    /* inside a run directory: the same message, naming RUN/checkpoints/latest */
    char run_ck[4096];
    snprintf(run_ck, sizeof run_ck, "%s", path("empty_dir/checkpoints", NULL));
    mkdir(run_ck, 0755);
    char latest2[4200];
    snprintf(latest2, sizeof latest2, "%s/latest", run_ck);
    T_CHECK(rename(garbage, latest2) == 0, "rename");
    T_CHECK(checkpoint_resolve(empty, out, sizeof out, &err) == TA_EINPUT &&
                strstr(err.msg, latest2) && strstr(err.msg, "not a checkpoint pointer"),
            "garbage latest in a run: %s", err.msg);
    rm_rf(run_ck);
    /* latest naming a directory that is gone */
    f = fopen(garbage, "wb");
    fputs("step-00000009\n", f);
    fclose(f);
    T_CHECK(checkpoint_resolve(empty, out, sizeof out, &err) == TA_EINPUT &&
                strstr(err.msg, "names step-00000009, which does not exist"), "dangling: %s", err.msg);
    /* a model directory is not a training checkpoint */
    char *json = NULL;
    T_CHECK(checkpoint_read_config(path("forms_plain", NULL), &json, &err) == TA_EINPUT &&
                strstr(err.msg, "no state.json"), "plain dir as a checkpoint: %s", err.msg);
}

int main(void) {
    const char *ref = getenv("TA_REF");
    snprintf(g_dir, sizeof g_dir, "%s/checkpoint", ref && *ref ? ref : "build/ref");
    TaError err;
    TA_ASSERT(ta_mkdirs(g_dir, &err) == TA_OK);
    setup();
    t_run("keep_last_n_1_with_keep_best", test_keep_last_with_best);
    t_run("digests_written_equal_files", test_digests_match_files);
    t_run("read_config_does_not_verify_load_state_does", test_read_config_does_not_verify);
    t_run("state_sum_names_the_change", test_state_sum_names_the_change);
    t_run("check_state_cursor_equals_trainer_replay", test_check_state_cursor);
    t_run("resolve_every_form", test_resolve_forms);
    t_run("resolve_errors_list_the_forms", test_resolve_errors);
    adamw_free(&g_opt);
    gpt2_free(&g_model);
    return t_done();
}
