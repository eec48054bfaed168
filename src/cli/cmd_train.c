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

/* The options every rank of an MPI job must share (train_agree_config). */
static const char *run_options(const TrainOptions *o, char *buf, size_t cap) {
    snprintf(buf, cap, "resume %d\nstop_after %ld\nforce %d\n", o->resume, o->stop_after,
             o->force);
    return buf;
}

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
                 "a second Ctrl-C exits at once.\n\n"
                 "Data parallel over MPI: mpirun -np N build/tinyalign-mpi train CONFIG.json\n"
                 "runs the same optimisation on N processes (train.batch_size is the global\n"
                 "batch and must be a multiple of N); rank 0 writes; stop it with kill -INT on\n"
                 "any rank (the PID is printed at start). README: \"Several machines\".\n",
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
    char options[256];
    /* under mpirun every rank gets here: they agree on the config, then train together */
    rc = dist_init(&opt.dist, "tinyalign train", &err);
    int loaded = rc == TA_OK && (rc = config_load(&cfg, path, sets.items, sets.n, &err)) == TA_OK;
    free(sets.items);
    rc = train_agree_config(opt.dist, rc, &cfg, run_options(&opt, options, sizeof options), &err);
    int status = rc != TA_OK ? rc : train_run(&cfg, &opt, &err);
    status = dist_finish(opt.dist, status, &err); /* rank 0 reports */
    if ((status == 1 || status == 2) && err.msg[0]) fprintf(stderr, "tinyalign train: %s\n", err.msg);
    if (loaded) config_free(&cfg);
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
    Config cfg;
    char options[256];
    /* under mpirun every rank gets here and must see the run; only the config here:
     * train_run verifies the checkpoint (once) when it loads it */
    rc = dist_init(&opt.dist, "tinyalign resume", &err);
    if (rc == TA_OK && (checkpoint_resolve(run_dir, dir, sizeof dir, &err) != TA_OK ||
                        checkpoint_read_config(dir, &json, &err) != TA_OK))
        rc = TA_EINPUT;
    if (rc == TA_OK) {
        char where[4200];
        snprintf(where, sizeof where, "%s/state.json", dir);
        rc = config_load_string(&cfg, json, where, &err);
        free(json);
    }
    if (rc != TA_OK) { /* the ranks still agree, so that rank 0 reports once */
        rc = train_agree_config(opt.dist, rc, NULL, run_options(&opt, options, sizeof options), &err);
        rc = dist_finish(opt.dist, rc, &err);
        if (err.msg[0]) fprintf(stderr, "tinyalign resume: %s\n", err.msg);
        return rc;
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
    rc = train_agree_config(opt.dist, TA_OK, &cfg, run_options(&opt, options, sizeof options),
                            &err);
    int status = rc != TA_OK ? rc : train_run(&cfg, &opt, &err);
    status = dist_finish(opt.dist, status, &err); /* rank 0 reports */
    if ((status == 1 || status == 2) && err.msg[0]) fprintf(stderr, "tinyalign resume: %s\n", err.msg);
    config_free(&cfg);
    return status;
}
