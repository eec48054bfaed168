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

static const char *STOP_AFTER_HELP =
    "save and exit 0 once K steps are done, as an interrupt would;\n"
    "the schedule still spans train.max_steps (default: run to the end)";

int cmd_train(int argc, char **argv) {
    const char *path;
    CliList sets;
    int help_config = 0;
    TrainOptions opt = {.stop_after = -1};
    const CliOpt opts[] = {
        {.name = "--set", .kind = CLI_LIST, .dst = &sets, .meta = "k=v",
         .help = "override one config key (repeatable; same checks as the file)"},
        {.name = "--resume", .kind = CLI_FLAG, .dst = &opt.resume,
         .help = "continue from <run.out_dir>/checkpoints/latest (bit-exact)"},
        {.name = "--stop-after", .kind = CLI_LONG, .dst = &opt.stop_after, .meta = "K",
         .lo = 0, .hi = 1e15, .help = STOP_AFTER_HELP},
        {.name = "--force", .kind = CLI_FLAG, .dst = &opt.force,
         .help = "resume even when keys that change the math differ"},
        {.name = "--quiet", .kind = CLI_FLAG, .dst = &opt.quiet,
         .help = "do not print the resolved config"},
        {.name = "--help-config", .kind = CLI_FLAG, .dst = &help_config,
         .help = "every config key with its type, default and meaning"},
        {0}};
    const CliSpec spec = {
        .prog = "tinyalign train",
        .usage = "tinyalign train CONFIG.json [--set section.key=value ...] [--resume]\n"
                 "                       [--stop-after K] [--force] [--quiet]\n"
                 "       tinyalign train --help-config",
        .about = "Trains as CONFIG says. The resolved config (every default filled in) is printed\n"
                 "and saved to <run.out_dir>/config.json; checkpoints go to\n"
                 "<run.out_dir>/checkpoints/.\n",
        .opts = opts,
        .notes = "Ctrl-C (or SIGTERM) finishes the current step, saves and exits 130 (143);\n"
                 "a second Ctrl-C exits at once.\n",
        .positional = "CONFIG.json",
        .pos_dst = &path,
    };
    int rc = cli_parse(&spec, argc, argv);
    if (rc == CLI_RUN && help_config) {
        config_print_help(stdout);
        rc = TA_OK;
    } else if (rc == CLI_RUN && !path) {
        cli_help(&spec, stderr);
        rc = TA_EINPUT;
    }
    if (rc != CLI_RUN) {
        free(sets.items);
        return rc;
    }
    Config cfg;
    TaError err = {0};
    rc = config_load(&cfg, path, sets.items, sets.n, &err);
    free(sets.items);
    if (rc != TA_OK) {
        fprintf(stderr, "tinyalign train: %s\n", err.msg);
        return TA_EINPUT;
    }
    int status = train_run(&cfg, &opt, &err);
    if (status == 1 || status == 2) fprintf(stderr, "tinyalign train: %s\n", err.msg);
    config_free(&cfg);
    return status;
}

int cmd_resume(int argc, char **argv) {
    const char *run_dir;
    TrainOptions opt = {.stop_after = -1, .resume = 1, .quiet = 1};
    const CliOpt opts[] = {
        {.name = "--stop-after", .kind = CLI_LONG, .dst = &opt.stop_after, .meta = "K",
         .lo = 0, .hi = 1e15, .help = STOP_AFTER_HELP},
        {0}};
    const CliSpec spec = {
        .prog = "tinyalign resume",
        .usage = "tinyalign resume RUN [--stop-after K]",
        .about = "Continues a run from its latest checkpoint with the config saved in that\n"
                 "checkpoint; bit-identical to a run that never stopped. RUN is a run directory,\n"
                 "its checkpoints/latest (or best), or one checkpoint directory\n"
                 "(RUN_DIR/checkpoints/step-N): the run continues in the directory where it lies\n"
                 "now, so a copied or moved run resumes in place.\n",
        .opts = opts,
        .positional = "RUN",
        .pos_dst = &run_dir,
    };
    int rc = cli_parse(&spec, argc, argv);
    if (rc == CLI_RUN && !run_dir) rc = cli_usage_error(&spec, "RUN (a run directory) is required");
    if (rc != CLI_RUN) return rc;
    TaError err = {0};
    char dir[4096];
    char *json = NULL;
    /* only the config here: train_run verifies the checkpoint (once) when it loads it */
    if (checkpoint_resolve(run_dir, dir, sizeof dir, &err) != TA_OK ||
        checkpoint_read_config(dir, &json, &err) != TA_OK) {
        fprintf(stderr, "tinyalign resume: %s\n", err.msg);
        return TA_EINPUT;
    }
    Config cfg;
    char where[4200];
    snprintf(where, sizeof where, "%s/state.json", dir);
    rc = config_load_string(&cfg, json, where, &err);
    free(json);
    if (rc != TA_OK) {
        fprintf(stderr, "tinyalign resume: %s\n", err.msg);
        return TA_EINPUT;
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
    cfg.run.out_dir = ta_strdup(run, "run directory");
    opt.resume_from = dir;
    int status = train_run(&cfg, &opt, &err);
    if (status == 1 || status == 2) fprintf(stderr, "tinyalign resume: %s\n", err.msg);
    config_free(&cfg);
    return status;
}
