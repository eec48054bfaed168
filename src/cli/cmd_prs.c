/* cmd_prs.c — `tinyalign prs`: preference-guided reflective sampling (prs.h) and its
 * random-sampling baselines at the same budget, from a model directory, scored by a scorer
 * spec. Loads the model and the tokenizer, parses the flags (sample's sampling flags with
 * the paper's defaults), and hands the rest to prs_run.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tinyalign/checkpoint.h"
#include "tinyalign/cli.h"
#include "tinyalign/model_io.h"
#include "tinyalign/prs.h"
#include "tinyalign/tokenizer.h"

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("tinyalign prs: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

static const char *ABOUT =
    "Preference-guided reflective sampling (Ye & Ng, EMNLP 2024, arXiv 2408.12163): best-of-N\n"
    "as a tree. Layer 0 samples N0 responses to the prompt with the preference appended;\n"
    "every response is scored; the model (or a critic program) writes feedback on the best\n"
    "one against the preference; layer 1 samples N - N0 refinements conditioned on it\n"
    "(--depth > 2 repeats feedback + refinement from the current best). --mode rand and\n"
    "rand-no-pref are the paper's baselines: N i.i.d. samples with / without the preference.\n";

static const char *NOTES =
    "templates (FILE or TEXT): placeholders {prompt} (the row's prompt), {preference},\n"
    "{question} (the filled query), {answer} (the best response so far), {feedback}, and\n"
    "any field of the prompt row; {{ }} for braces. The defaults paraphrase the paper's\n"
    "prompts. The query needs {prompt}; feedback needs {question} and {answer}; revise\n"
    "needs {question}, {answer} and {feedback} (without {feedback} under --feedback none).\n"
    "The preference is the row's \"preference\" field, else --preference.\n"
    "Scorer requests carry the row's prompt (not the query) and its fields, plus\n"
    "\"preference\". A critic program (--feedback cmd:PROGRAM) gets the same requests for\n"
    "the best response and prints {\"score\": x, \"feedback\": \"...\"} per line.\n"
    "output: the multi-response format (curate best / pairs / diversity read it); each\n"
    "response has \"score\", the scorer's fields, \"layer\", \"parent\" (the index of the\n"
    "response it refines, null in layer 0) and \"feedback\" (what it was conditioned on);\n"
    "each line adds \"filled_prompt\" (the query) and \"preference\". The summary file has\n"
    "the mean best score after each layer and every prompt's best per layer.\n"
    "Layer 0 (all of --mode rand) equals `tinyalign sample --seed S` on the queries.\n"
    "exit status: 0 ok, 1 runtime failure, 2 bad arguments or input\n";

int cmd_prs(int argc, char **argv) {
    const char *model_arg = NULL, *tok_arg = NULL, *feedback_arg = NULL, *summary = NULL;
    int threads, quiet = 0, mode = 0;
    CliList stops;
    PrsOptions o;
    prs_options_default(&o);
    char sdef_t[32], sdef_k[32], sdef_pp[32];
    snprintf(sdef_t, sizeof sdef_t, "%g", o.sample.temperature);
    snprintf(sdef_k, sizeof sdef_k, "%d", o.sample.top_k);
    snprintf(sdef_pp, sizeof sdef_pp, "%g", o.sample.presence_penalty);
    SampleOptions *s = &o.sample;
    const CliOpt opts[] = {
        {.name = "--model", .kind = CLI_STR, .dst = &model_arg, .meta = "MODEL", .flags = CLI_REQUIRED,
         .help = CHECKPOINT_MODEL_HELP},
        {.name = "--tokenizer", .kind = CLI_STR, .dst = &tok_arg, .meta = "PATH",
         .help = "SentencePiece model (default: the model directory's tokenizer.model)"},
        {.name = "--prompts", .kind = CLI_STR, .dst = &o.prompts, .meta = "FILE.jsonl",
         .flags = CLI_REQUIRED, .help = "one {\"prompt\": ..., \"preference\"?: ...} object per line"},
        {.name = "--scorer", .kind = CLI_STR, .dst = &o.scorer, .meta = "SPEC", .flags = CLI_REQUIRED,
         .help = "the reward (see below)"},
        {.name = "--out", .kind = CLI_STR, .dst = &o.out, .meta = "FILE.jsonl", .flags = CLI_REQUIRED,
         .help = "every response with its score and place in the tree"},
        {.name = "--summary", .kind = CLI_STR, .dst = &summary, .meta = "FILE.json",
         .help = "JSON summary (default: OUT with .summary.json)"},
        {.name = "--mode", .kind = CLI_CHOICE, .dst = &mode, .meta = "MODE", .def = "prs",
         .choices = "prs|rand|rand-no-pref",
         .help = "prs: the tree; rand: N samples with the preference;\n"
                 "rand-no-pref: N samples of the bare prompt"},
        {.name = "--n", .kind = CLI_INT, .dst = &o.n, .meta = "N", .def = "16", .lo = -1e9, .hi = 1e9,
         .help = "responses per prompt (the budget, >= 2)"},
        {.name = "--n0", .kind = CLI_INT, .dst = &o.n0, .meta = "N0", .def = "-1", .lo = -1e9, .hi = 1e9,
         .flags = CLI_NODEFAULT, .help = "layer-0 samples, in [1, N-1] (default N/2)"},
        {.name = "--depth", .kind = CLI_INT, .dst = &o.depth, .meta = "D", .def = "2", .lo = -1e9,
         .hi = 1e9, .help = "layers; N - N0 is split over layers 1..D-1"},
        {.name = "--preference", .kind = CLI_STR, .dst = &o.preference, .meta = "TEXT",
         .flags = CLI_TEXT, .help = "the preference of rows without a \"preference\" field"},
        {.name = "--feedback", .kind = CLI_STR, .dst = &feedback_arg, .meta = "SRC", .def = "model",
         .flags = CLI_TEXT,
         .help = "model (the policy critiques), cmd:PROGRAM (a critic), or\n"
                 "none (PRS without feedback)"},
        {.name = "--query-template", .kind = CLI_STR, .dst = &o.query_template, .meta = "FILE|TEXT",
         .help = "layer-0 prompt (default \"{prompt}\\n\\n{preference}\")"},
        {.name = "--feedback-template", .kind = CLI_STR, .dst = &o.feedback_template,
         .meta = "FILE|TEXT", .help = "the feedback prompt (default: the paper's, paraphrased)"},
        {.name = "--revise-template", .kind = CLI_STR, .dst = &o.revise_template, .meta = "FILE|TEXT",
         .help = "the refinement prompt (default: the paper's, paraphrased)"},
        {.name = "--feedback-max-new-tokens", .kind = CLI_INT, .dst = &o.feedback_max_new_tokens,
         .meta = "N", .def = "0", .lo = 0, .hi = 1 << 24, .flags = CLI_NODEFAULT,
         .help = "feedback length (default --max-new-tokens)"},
        {.name = "--max-new-tokens", .kind = CLI_INT, .dst = &s->max_new_tokens, .meta = "N", .def = "128",
         .lo = 1, .hi = 1 << 24, .help = "generated tokens per response"},
        {.name = "--min-new-tokens", .kind = CLI_INT, .dst = &s->min_new_tokens, .meta = "N", .def = "0",
         .lo = 0, .hi = 1 << 24, .help = "no EOS before N tokens"},
        {.name = "--temperature", .kind = CLI_DOUBLE, .dst = &s->temperature, .meta = "T", .def = sdef_t,
         .help = ">= 0; 0 = greedy"},
        {.name = "--top-k", .kind = CLI_INT, .dst = &s->top_k, .meta = "K", .def = sdef_k, .lo = -1e9,
         .hi = 1e9, .help = "keep the K most likely tokens; 0 = off"},
        {.name = "--top-p", .kind = CLI_DOUBLE, .dst = &s->top_p, .meta = "P", .def = "1",
         .help = "nucleus, in (0, 1]; 1 = off"},
        {.name = "--min-p", .kind = CLI_DOUBLE, .dst = &s->min_p, .meta = "P", .def = "0",
         .help = "in [0, 1); 0 = off"},
        {.name = "--repetition-penalty", .kind = CLI_DOUBLE, .dst = &s->repetition_penalty, .meta = "R",
         .def = "1", .help = "> 0; 1 = off"},
        {.name = "--presence-penalty", .kind = CLI_DOUBLE, .dst = &s->presence_penalty, .meta = "A",
         .def = sdef_pp, .help = "subtract A from tokens already generated; 0 = off"},
        {.name = "--stop", .kind = CLI_LIST, .dst = &stops, .meta = "STR", .flags = CLI_TEXT,
         .help = "stop when the text contains STR; repeatable"},
        {.name = "--seed", .kind = CLI_U64, .dst = &s->seed, .meta = "S", .def = "0",
         .help = "results do not depend on --batch (<= 16) or --threads"},
        {.name = "--batch", .kind = CLI_INT, .dst = &s->batch, .meta = "B", .def = "8", .lo = 1, .hi = 4096,
         .help = "sequences decoded together"},
        {.name = "--score-batch", .kind = CLI_INT, .dst = &o.scorer_opt.batch_size, .meta = "N",
         .def = "0", .lo = 0, .hi = 1 << 30, .flags = CLI_NODEFAULT,
         .help = "requests per scorer call (default: a cmd: program gets\n"
                 "a whole layer at once; model kinds: 16 rows a forward)"},
        {.name = "--score-timeout", .kind = CLI_DOUBLE, .dst = &o.scorer_opt.timeout_s, .meta = "S",
         .def = "600", .help = "seconds one program call may take; 0 = none"},
        {.name = "--threads", .kind = CLI_INT, .dst = &threads, .meta = "N", .def = "0", .lo = 0,
         .hi = 1024, .help = "threads; 0 = all cores"},
        {.name = "--keep-prompts", .kind = CLI_FLAG, .dst = &o.keep_prompts,
         .help = "add \"input\" (the prompt text a response was generated\n"
                 "from) and \"feedback_input\" to every response"},
        {.name = "--quiet", .kind = CLI_FLAG, .dst = &quiet, .help = "no progress or summary on stderr"},
        {0}};
    const CliSpec spec = {
        .prog = "tinyalign prs",
        .usage = "tinyalign prs --model MODEL --prompts P.jsonl --scorer SPEC --out OUT.jsonl\n"
                 "                     [--n N] [--n0 N0] [--depth D] [--mode prs|rand|rand-no-pref]\n"
                 "                     [--preference TEXT] [--feedback model|cmd:PROGRAM|none] ...",
        .about = ABOUT,
        .opts = opts,
        .notes = NOTES,
    };
    /* the scorer help after the template notes */
    char notes[4096];
    snprintf(notes, sizeof notes, "%s%s\n", NOTES, SCORER_SPEC_HELP);
    CliSpec sp = spec;
    sp.notes = notes;
    int rc = cli_parse(&sp, argc, argv);
    for (int i = 0; i < stops.n && rc == CLI_RUN; i++) {
        if (s->n_stop == SAMPLE_MAX_STOP) rc = fail(TA_EINPUT, "at most %d --stop strings", SAMPLE_MAX_STOP);
        else if (!stops.items[i][0]) rc = fail(TA_EINPUT, "--stop: empty string");
        else s->stop[s->n_stop++] = stops.items[i];
    }
    free(stops.items);
    if (rc != CLI_RUN) return rc;
    o.mode = (PrsMode)mode;
    if (!strcmp(feedback_arg, "model")) o.feedback = PRS_FEEDBACK_MODEL;
    else if (!strcmp(feedback_arg, "none")) o.feedback = PRS_FEEDBACK_NONE;
    else if (!strncmp(feedback_arg, "cmd:", 4)) o.feedback = PRS_FEEDBACK_CMD, o.critic = feedback_arg;
    else return fail(TA_EINPUT, "--feedback must be model, none or cmd:PROGRAM, got \"%s\"", feedback_arg);
    if (o.mode != PRS_MODE_TREE && (o.n0 != -1 || o.feedback != PRS_FEEDBACK_MODEL))
        return fail(TA_EINPUT, "--%s only applies to --mode prs", o.n0 != -1 ? "n0" : "feedback");
    char sum_path[4200];
    if (summary) {
        o.summary = summary;
    } else {
        size_t L = strlen(o.out);
        if (L > 6 && !strcmp(o.out + L - 6, ".jsonl")) L -= 6;
        snprintf(sum_path, sizeof sum_path, "%.*s.summary.json", (int)L, o.out);
        o.summary = sum_path;
    }
    TaError err = {0};
    int sizes[PRS_MAX_DEPTH], layers; /* budget errors before loading anything */
    if (prs_layer_sizes(o.mode, o.n, o.n0 == -1 ? o.n / 2 : o.n0, o.depth, sizes, &layers, &err) != TA_OK)
        return fail(TA_EINPUT, "%s", err.msg);
    o.sample.n = 1;
    if (sample_options_check(&o.sample, &err) != TA_OK) return fail(TA_EINPUT, "%s", err.msg);
    ta_set_threads(threads);
    o.log = quiet ? NULL : stderr;

    char dir[4096];
    if (checkpoint_resolve(model_arg, dir, sizeof dir, &err) != TA_OK)
        return fail(TA_EINPUT, "--model %s", err.msg);
    GPT2 m;
    memset(&m, 0, sizeof m);
    if (model_load_dir(&m, dir, 0, &err) != TA_OK) return fail(err.code ? err.code : TA_EINPUT, "%s", err.msg);
    char tpath[4200];
    if (tok_arg) snprintf(tpath, sizeof tpath, "%s", tok_arg);
    else snprintf(tpath, sizeof tpath, "%s/tokenizer.model", dir);
    struct stat stt;
    Tokenizer *tok = NULL;
    if (!tok_arg && stat(tpath, &stt) != 0) {
        rc = fail(TA_EINPUT, "no tokenizer: %s does not exist (pass --tokenizer PATH)", tpath);
    } else if (tokenizer_load(&tok, tpath, &err) != TA_OK) {
        rc = fail(TA_EINPUT, "%s", err.msg);
    } else {
        rc = prs_run(&m, tok, &o, NULL, &err);
        if (rc != TA_OK) fail(rc, "%s", err.msg);
    }
    tokenizer_free(tok);
    gpt2_free(&m);
    return rc;
}
