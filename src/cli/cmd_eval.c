/* cmd_eval.c — `tinyalign eval CONFIG [--checkpoint DIR] [--set k=v ...] [--max-batches N]`:
 * the objective's metrics (TRL names) on the config's validation data as one JSON object
 * on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/cli.h"
#include "tinyalign/config.h"
#include "tinyalign/curate.h"
#include "tinyalign/diversity.h"
#include "tinyalign/train.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: tinyalign eval CONFIG.json [--checkpoint DIR] [--set section.key=value ...]\n"
            "                      [--max-batches N]\n"
            "       tinyalign eval --diversity MULTI.jsonl [--source S ...] [--no-per-prompt]\n"
            "Prints the objective's metrics (loss, rewards/accuracies, ... with TRL's names) on\n"
            "data.val (or, without one, data.train) as one JSON object. The model and its\n"
            "reference are built as CONFIG says; --checkpoint DIR (a run or checkpoint\n"
            "directory) then replaces the policy weights, so a DPO run's config evaluates its\n"
            "checkpoints against the same reference. --max-batches defaults to\n"
            "train.eval_batches.\n"
            "--diversity: diversity metrics of a multi-response file (e.g. the output of\n"
            "`tinyalign sample --prompts P.jsonl --n N --out S.jsonl`): mean pairwise embedding\n"
            "distance per source (lexical, field:NAME, model:DIR), distinct-1..4, n-gram\n"
            "diversity and gzip compression ratio, per prompt and overall.\n");
}

/* Diversity metrics of a multi-response file, as one JSON object. */
static int eval_diversity(const char *path, const char *const *sources, int nsrc, int per_prompt) {
    TaError err = {0};
    DiversityOptions opt;
    memset(&opt, 0, sizeof opt);
    for (int i = 0; i < nsrc; i++) {
        if (opt.n_sources >= CURATE_MAX_SOURCES) {
            fprintf(stderr, "tinyalign eval: at most %d --source\n", CURATE_MAX_SOURCES);
            return 2;
        }
        if (curate_source_parse(&opt.sources[opt.n_sources++], sources[i], &err) != TA_OK) {
            fprintf(stderr, "tinyalign eval: %s\n", err.msg);
            return 2;
        }
    }
    Dataset *set = NULL;
    DiversityReport rep;
    memset(&rep, 0, sizeof rep);
    int rc = dataset_load(&set, path, DS_MULTI, NULL, NULL, &err);
    if (rc == TA_OK) rc = diversity_metrics(set, &opt, &rep, &err);
    if (rc != TA_OK) {
        fprintf(stderr, "tinyalign eval: %s\n", err.msg);
        dataset_free(set);
        return rc == TA_EINPUT ? 2 : 1;
    }
    char *json = diversity_report_json(&rep, per_prompt);
    printf("%s\n", json);
    free(json);
    diversity_report_free(&rep);
    dataset_free(set);
    return 0;
}

int cmd_eval(int argc, char **argv) {
    const char *path = NULL, *ckpt = NULL, *div = NULL;
    const char **sets = calloc((size_t)argc + 1, sizeof(char *));
    const char **srcs = calloc((size_t)argc + 1, sizeof(char *));
    int nsets = 0, nsrc = 0, max_batches = 0, status = 2, per_prompt = 1;
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
        } else if (!strcmp(a, "--diversity") && i + 1 < argc) {
            div = argv[++i];
        } else if (!strcmp(a, "--source") && i + 1 < argc) {
            srcs[nsrc++] = argv[++i];
        } else if (!strcmp(a, "--no-per-prompt")) {
            per_prompt = 0;
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
    if (div) {
        if (path) {
            fprintf(stderr, "tinyalign eval: --diversity takes no config\n");
            goto end;
        }
        status = eval_diversity(div, srcs, nsrc, per_prompt);
        goto end;
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
    free(srcs);
    return status;
}
