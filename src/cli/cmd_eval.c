/* cmd_eval.c — `tinyalign eval CONFIG [--checkpoint DIR] [--set k=v ...] [--max-batches N]`:
 * the objective's metrics (TRL names) on the config's validation data as one JSON object
 * on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/cli.h"
#include "tinyalign/config.h"
#include "tinyalign/train.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: tinyalign eval CONFIG.json [--checkpoint DIR] [--set section.key=value ...]\n"
            "                      [--max-batches N]\n"
            "Prints the objective's metrics (loss, rewards/accuracies, ... with TRL's names) on\n"
            "data.val (or, without one, data.train) as one JSON object. The model and its\n"
            "reference are built as CONFIG says; --checkpoint DIR (a run or checkpoint\n"
            "directory) then replaces the policy weights, so a DPO run's config evaluates its\n"
            "checkpoints against the same reference. --max-batches defaults to\n"
            "train.eval_batches.\n");
}

int cmd_eval(int argc, char **argv) {
    const char *path = NULL, *ckpt = NULL;
    const char **sets = calloc((size_t)argc + 1, sizeof(char *));
    int nsets = 0, max_batches = 0, status = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            status = 0;
            goto end;
        } else if (!strcmp(a, "--checkpoint") && i + 1 < argc) {
            ckpt = argv[++i];
        } else if (!strcmp(a, "--set") && i + 1 < argc) {
            sets[nsets++] = argv[++i];
        } else if (!strcmp(a, "--max-batches") && i + 1 < argc) {
            max_batches = atoi(argv[++i]);
            if (max_batches <= 0) {
                fprintf(stderr, "tinyalign eval: --max-batches needs a positive count\n");
                goto end;
            }
        } else if (a[0] == '-' || path) {
            fprintf(stderr, "tinyalign eval: unexpected argument \"%s\" (see --help)\n", a);
            goto end;
        } else {
            path = a;
        }
    }
    if (!path) {
        usage(stderr);
        goto end;
    }
    Config cfg;
    TaError err = {0};
    if (config_load(&cfg, path, sets, nsets, &err) != TA_OK) {
        fprintf(stderr, "tinyalign eval: %s\n", err.msg);
        goto end;
    }
    char *json = NULL;
    int rc = train_eval(&cfg, ckpt, max_batches, &json, &err);
    config_free(&cfg);
    if (rc != TA_OK) {
        fprintf(stderr, "tinyalign eval: %s\n", err.msg);
        status = rc == TA_EINPUT ? 2 : 1;
        goto end;
    }
    printf("%s\n", json);
    free(json);
    status = 0;
end:
    free(sets);
    return status;
}
