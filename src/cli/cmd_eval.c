/* cmd_eval.c — `tinyalign eval CONFIG [--checkpoint MODEL] [--set k=v ...] [--max-batches N]`:
 * the objective's metrics (TRL names) on the config's validation data as one JSON object
 * on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/checkpoint.h"
#include "tinyalign/cli.h"
#include "tinyalign/config.h"
#include "tinyalign/curate.h"
#include "tinyalign/diversity.h"
#include "tinyalign/train.h"

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
    const char *path, *ckpt = NULL, *div = NULL;
    CliList sets, srcs;
    int max_batches = 0, no_per_prompt = 0;
    const CliOpt opts[] = {
        {.name = "--checkpoint", .kind = CLI_STR, .dst = &ckpt, .meta = "MODEL",
         .help = "the policy weights to score:\n" CHECKPOINT_MODEL_HELP},
        {.name = "--set", .kind = CLI_LIST, .dst = &sets, .meta = "k=v",
         .help = "override one config key (repeatable)"},
        {.name = "--max-batches", .kind = CLI_INT, .dst = &max_batches, .meta = "N", .lo = 1,
         .hi = 1 << 30, .help = "batches of the validation data to score (default:\n"
                                "train.eval_batches)"},
        {.name = "--diversity", .kind = CLI_STR, .dst = &div, .meta = "MULTI.jsonl",
         .help = "diversity metrics of a multi-response file instead (no CONFIG)"},
        {.name = "--source", .kind = CLI_LIST, .dst = &srcs, .meta = "S",
         .help = "--diversity: embedding source, repeatable: lexical, field:NAME,\n"
                 "model:MODEL (default: lexical, plus field:embedding when every\n"
                 "response has one)"},
        {.name = "--no-per-prompt", .kind = CLI_FLAG, .dst = &no_per_prompt,
         .help = "--diversity: leave the per-prompt list out"},
        {0}};
    const CliSpec spec = {
        .prog = "tinyalign eval",
        .usage = "tinyalign eval CONFIG.json [--checkpoint MODEL] [--set section.key=value ...]\n"
                 "                      [--max-batches N]\n"
                 "       tinyalign eval --diversity MULTI.jsonl [--source S ...] [--no-per-prompt]",
        .about = "Prints the objective's metrics (loss, rewards/accuracies, ... with TRL's names) on\n"
                 "data.val (or, without one, data.train) as one JSON object. The model and its\n"
                 "reference are built as CONFIG says; --checkpoint then replaces the policy\n"
                 "weights, so a DPO run's config evaluates its checkpoints against the same\n"
                 "reference.\n"
                 "--diversity: diversity metrics of a multi-response file (e.g. the output of\n"
                 "`tinyalign sample --prompts P.jsonl --n N --out S.jsonl`): mean pairwise\n"
                 "embedding distance per source, distinct-1..4, n-gram diversity and gzip\n"
                 "compression ratio, per prompt and overall.\n",
        .opts = opts,
        .positional = "CONFIG.json",
        .pos_dst = &path,
    };
    int status = cli_parse(&spec, argc, argv);
    if (status != CLI_RUN) goto end;
    status = TA_EINPUT;
    if (div) {
        if (path) {
            cli_usage_error(&spec, "--diversity takes no config");
            goto end;
        }
        status = eval_diversity(div, srcs.items, srcs.n, !no_per_prompt);
        goto end;
    }
    if (!path) {
        cli_help(&spec, stderr);
        goto end;
    }
    Config cfg;
    TaError err = {0};
    char dir[4096]; /* a bad --checkpoint is reported before the data are loaded */
    if (ckpt && checkpoint_resolve(ckpt, dir, sizeof dir, &err) != TA_OK) {
        fprintf(stderr, "tinyalign eval: --checkpoint %s\n", err.msg);
        goto end;
    }
    if (config_load(&cfg, path, sets.items, sets.n, &err) != TA_OK) {
        fprintf(stderr, "tinyalign eval: %s\n", err.msg);
        goto end;
    }
    char *json = NULL;
    int rc = train_eval(&cfg, ckpt ? dir : NULL, max_batches, &json, &err);
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
    free(sets.items);
    free(srcs.items);
    return status;
}
