/* cmd_train.c — `tinyalign train CONFIG [--set k=v ...] [--resume] [--stop-after K]
 * [--force]` and `tinyalign resume RUN_DIR [--stop-after K]`. Argument parsing only; the
 * run itself is train_run (src/train/train.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/checkpoint.h"
#include "tinyalign/cli.h"
#include "tinyalign/config.h"
#include "tinyalign/train.h"

static void usage_train(FILE *f) {
    fprintf(f,
            "usage: tinyalign train CONFIG.json [--set section.key=value ...] [--resume]\n"
            "                       [--stop-after K] [--force] [--quiet]\n"
            "       tinyalign train --help-config      (every config key, type and default)\n\n"
            "Trains as CONFIG says. The resolved config (every default filled in) is printed and\n"
            "saved to <run.out_dir>/config.json; checkpoints go to <run.out_dir>/checkpoints/.\n"
            "  --set k=v       override one config key (repeatable; same checks as the file)\n"
            "  --resume        continue from <run.out_dir>/checkpoints/latest (bit-exact)\n"
            "  --stop-after K  save and exit 0 once K steps are done (the schedule still spans\n"
            "                  train.max_steps), as an interrupt would\n"
            "  --force         resume even when keys that change the math differ\n"
            "Ctrl-C (or SIGTERM) finishes the current step, saves and exits 130 (143);\n"
            "a second Ctrl-C exits at once.\n");
}

static int parse_long(const char *s, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0) return 0;
    *out = v;
    return 1;
}

int cmd_train(int argc, char **argv) {
    const char *path = NULL;
    const char **sets = calloc((size_t)argc + 1, sizeof(char *));
    int nsets = 0;
    TrainOptions opt = {.stop_after = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage_train(stdout);
            free(sets);
            return 0;
        } else if (!strcmp(a, "--help-config")) {
            config_print_help(stdout);
            free(sets);
            return 0;
        } else if (!strcmp(a, "--set") && i + 1 < argc) {
            sets[nsets++] = argv[++i];
        } else if (!strncmp(a, "--set=", 6)) {
            sets[nsets++] = a + 6;
        } else if (!strcmp(a, "--resume")) {
            opt.resume = 1;
        } else if (!strcmp(a, "--force")) {
            opt.force = 1;
        } else if (!strcmp(a, "--quiet")) {
            opt.quiet = 1;
        } else if (!strcmp(a, "--stop-after") && i + 1 < argc) {
            if (!parse_long(argv[++i], &opt.stop_after)) {
                fprintf(stderr, "tinyalign train: --stop-after needs a step count >= 0, got \"%s\"\n", argv[i]);
                free(sets);
                return 2;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "tinyalign train: unknown or incomplete option \"%s\" (see --help)\n", a);
            free(sets);
            return 2;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "tinyalign train: more than one config given (\"%s\", \"%s\")\n", path, a);
            free(sets);
            return 2;
        }
    }
    if (!path) {
        usage_train(stderr);
        free(sets);
        return 2;
    }
    Config cfg;
    TaError err = {0};
    int rc = config_load(&cfg, path, sets, nsets, &err);
    free(sets);
    if (rc != TA_OK) {
        fprintf(stderr, "tinyalign train: %s\n", err.msg);
        return 2;
    }
    int status = train_run(&cfg, &opt, &err);
    if (status == 1 || status == 2) fprintf(stderr, "tinyalign train: %s\n", err.msg);
    config_free(&cfg);
    return status;
}

int cmd_resume(int argc, char **argv) {
    const char *run_dir = NULL;
    TrainOptions opt = {.stop_after = -1, .resume = 1, .quiet = 1};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: tinyalign resume RUN_DIR [--stop-after K]\n"
                   "Continues the run in RUN_DIR from RUN_DIR/checkpoints/latest with the config\n"
                   "saved in that checkpoint; bit-identical to a run that never stopped.\n");
            return 0;
        } else if (!strcmp(argv[i], "--stop-after") && i + 1 < argc) {
            if (!parse_long(argv[++i], &opt.stop_after)) {
                fprintf(stderr, "tinyalign resume: --stop-after needs a step count >= 0\n");
                return 2;
            }
        } else if (argv[i][0] == '-' || run_dir) {
            fprintf(stderr, "tinyalign resume: unexpected argument \"%s\" (see --help)\n", argv[i]);
            return 2;
        } else {
            run_dir = argv[i];
        }
    }
    if (!run_dir) {
        fprintf(stderr, "usage: tinyalign resume RUN_DIR [--stop-after K]\n");
        return 2;
    }
    TaError err = {0};
    char dir[4096];
    char *json = NULL;
    TrainState st;
    if (checkpoint_resolve(run_dir, dir, sizeof dir, &err) != TA_OK ||
        checkpoint_load_state(dir, &st, &json, &err) != TA_OK) {
        fprintf(stderr, "tinyalign resume: %s\n", err.msg);
        return 2;
    }
    if (!json) {
        fprintf(stderr, "tinyalign resume: %s/state.json holds no run config\n", dir);
        return 2;
    }
    Config cfg;
    char where[4200];
    snprintf(where, sizeof where, "%s/state.json", dir);
    int rc = config_load_string(&cfg, json, where, &err);
    free(json);
    if (rc != TA_OK) {
        fprintf(stderr, "tinyalign resume: %s\n", err.msg);
        return 2;
    }
    /* the run continues where it lies now (a copied or moved run, a relative out_dir):
     * RUN_DIR/checkpoints/step-N -> RUN_DIR */
    char run[4096];
    snprintf(run, sizeof run, "%s", dir);
    char *slash = strrchr(run, '/');
    if (slash) *slash = '\0';
    slash = strrchr(run, '/');
    if (slash && !strcmp(slash + 1, "checkpoints")) *slash = '\0';
    else if (!slash && !strcmp(run, "checkpoints")) snprintf(run, sizeof run, ".");
    free(cfg.run.out_dir);
    cfg.run.out_dir = strdup(run);
    opt.resume_from = dir;
    int status = train_run(&cfg, &opt, &err);
    if (status == 1 || status == 2) fprintf(stderr, "tinyalign resume: %s\n", err.msg);
    config_free(&cfg);
    return status;
}
