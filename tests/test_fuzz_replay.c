/* test_fuzz_replay.c — every committed fuzz input, replayed by the normal suite: the seeds
 * of each target (tests/fuzz/corpus/<target>/) and every past finding
 * (tests/fuzz/regress/<target>/, one file per bug, named after it), run through the same
 * target code libFuzzer runs (tests/fuzz/fuzz_*.c, compiled here with FUZZ_REPLAY). A
 * finding that comes back crashes, trips a sanitizer (in the ASan build) or an oracle
 * (abort), and this binary fails. One PASS line per target and directory, with the count. */
#define FUZZ_REPLAY 1
#include "fuzz/fuzz.h"

#include <dirent.h>

#include "testhelp.h"

#include "fuzz/fuzz_config.c"
#include "fuzz/fuzz_jsonl.c"
#include "fuzz/fuzz_model_config.c"
#include "fuzz/fuzz_safetensors.c"
#include "fuzz/fuzz_shard.c"
#include "fuzz/fuzz_state.c"
#include "fuzz/fuzz_tokenizer.c"

typedef struct {
    const char *name;
    int (*run)(const uint8_t *, size_t);
    void (*init)(void);
} Target;

static const Target TARGETS[] = {
    {"config", fuzz_config, NULL},
    {"jsonl", fuzz_jsonl, fuzz_jsonl_init},
    {"model_config", fuzz_model_config, NULL},
    {"safetensors", fuzz_safetensors, fuzz_safetensors_init},
    {"shard", fuzz_shard, NULL},
    {"state", fuzz_state, fuzz_state_init},
    {"tokenizer", fuzz_tokenizer, NULL},
};
static const Target *g_target;
static const char *g_kind; /* "corpus" or "regress" */

/* Runs every file of tests/fuzz/<kind>/<target>/ through the target. */
static void replay_dir(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/%s/%s", fuzz_root(), g_kind, g_target->name);
    DIR *d = opendir(dir);
    T_CHECK(d != NULL, "cannot read %s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        size_t len;
        TaError err = {0};
        char *buf = ta_read_file(p, &len, &err);
        if (!buf) continue; /* a subdirectory */
        g_target->run((const uint8_t *)buf, len);
        free(buf);
        n++;
    }
    closedir(d);
    T_CHECK(n > 0, "%s is empty", dir);
    printf("  (%s/%s: %d inputs)\n", g_kind, g_target->name, n);
}

int main(void) {
    for (size_t i = 0; i < sizeof TARGETS / sizeof TARGETS[0]; i++) {
        g_target = &TARGETS[i];
        if (g_target->init) g_target->init();
        char name[128];
        g_kind = "corpus";
        snprintf(name, sizeof name, "fuzz_seeds/%s", g_target->name);
        t_run(name, replay_dir);
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/tests/fuzz/regress/%s", fuzz_root(), g_target->name);
        struct stat sb;
        if (stat(dir, &sb) != 0) continue; /* no finding for this target */
        g_kind = "regress";
        snprintf(name, sizeof name, "fuzz_findings/%s", g_target->name);
        t_run(name, replay_dir);
    }
    return t_done();
}
