/* cmd_score.c — `tinyalign score`: adds a scorer's fields to every response of a
 * multi-response file (include/tinyalign/score.h: score_file_run). Argument parsing only.
 */
#include <stdio.h>
#include <string.h>

#include "tinyalign/cli.h"
#include "tinyalign/common.h"
#include "tinyalign/score.h"

static const char *ABOUT =
    "Scores every response of a multi-response file (what `tinyalign sample --prompts`\n"
    "writes) and writes it back with the score and the scorer's other fields added to\n"
    "each response; every other field of every line is kept as written. The whole file is\n"
    "scored in one scorer call: a cmd: program runs once per --batch-size requests, a\n"
    "model once per --batch-size rows. Output is written atomically (nothing on failure).\n";

static const char *NOTES =
    SCORER_SPEC_HELP "\n\n"
    "cmd: protocol: each request is one line {\"prompt\": ..., \"response\": ..., <the\n"
    "prompt row's own fields, e.g. \"answer\">}; the program prints one line\n"
    "{\"score\": <number>, <any fields: \"correct\": true, \"critique\": \"...\">} per\n"
    "request, in order. Its extra fields are stored on the response; boolean ones are\n"
    "summarised as rates. A non-zero exit, a timeout, a wrong number of lines, a line that\n"
    "is not JSON or a missing or non-finite score stops with an error naming the request.\n"
    "logprob: fields: logprob (= score), logprob_mean, tokens, logprob_full,\n"
    "logprob_full_mean, tokens_full, truncated. model: fields: truncated.\n"
    "exit status: 0 ok, 1 runtime failure, 2 bad input (spec, file, scorer output)\n";

int cmd_score(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *spec = NULL, *field = NULL, *tokenizer = NULL;
    int batch = 0, threads = 0, quiet = 0;
    double timeout = 600;
    const CliOpt opts[] = {
        {.name = "--in", .kind = CLI_STR, .dst = &in, .meta = "MULTI.jsonl", .flags = CLI_REQUIRED,
         .help = "{\"prompt\", \"responses\": [{\"text\", ...}], ...} lines"},
        {.name = "--scorer", .kind = CLI_STR, .dst = &spec, .meta = "SPEC", .flags = CLI_REQUIRED,
         .help = "cmd:PROGRAM [ARGS] | logprob:MODEL | banned:FILE | model:MODEL\n(see below)"},
        {.name = "--out", .kind = CLI_STR, .dst = &out, .meta = "OUT.jsonl", .flags = CLI_REQUIRED,
         .help = "the scored file (may be --in: written atomically)"},
        {.name = "--field", .kind = CLI_STR, .dst = &field, .meta = "NAME", .def = "score",
         .help = "store the score under NAME (several scorers in turn)"},
        {.name = "--batch-size", .kind = CLI_INT, .dst = &batch, .meta = "N", .def = "0", .lo = 0,
         .hi = 1 << 24, .help = "requests per program call / rows per forward;\n"
                                "0 = cmd: 256, model kinds: 16"},
        {.name = "--timeout", .kind = CLI_DOUBLE, .dst = &timeout, .meta = "S", .def = "600",
         .lo = 0, .hi = 1e9, .help = "cmd: seconds one program call may take; 0 = no limit"},
        {.name = "--tokenizer", .kind = CLI_STR, .dst = &tokenizer, .meta = "PATH",
         .help = "model kinds: SentencePiece model (default: MODEL/tokenizer.model)"},
        {.name = "--threads", .kind = CLI_INT, .dst = &threads, .meta = "N", .def = "0", .lo = 0,
         .hi = 1024, .help = "threads for model kinds; 0 = all cores"},
        {.name = "--quiet", .kind = CLI_FLAG, .dst = &quiet, .help = "no progress or summary"},
        {0}};
    const CliSpec cs = {.prog = "tinyalign score",
                        .usage = "tinyalign score --in MULTI.jsonl --scorer SPEC --out OUT.jsonl "
                                 "[options]",
                        .about = ABOUT, .opts = opts, .notes = NOTES};
    int rc = cli_parse(&cs, argc, argv);
    if (rc != CLI_RUN) return rc;
    if (!*field) return cli_usage_error(&cs, "--field needs a non-empty NAME");
    ta_set_threads(threads);
    ScoreFileOptions o = {.in = in, .out = out, .spec = spec, .field = field,
                          .log = quiet ? NULL : stderr, .progress = !quiet};
    scorer_options_default(&o.scorer);
    o.scorer.batch_size = batch;
    o.scorer.timeout_s = timeout;
    o.scorer.tokenizer = tokenizer;
    TaError err = {0};
    rc = score_file_run(&o, NULL, &err);
    if (rc != TA_OK) fprintf(stderr, "tinyalign score: %s\n", err.msg);
    return rc;
}
