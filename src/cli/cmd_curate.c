/* cmd_curate.c — `tinyalign curate deviation|pairs|divpo|diversity|best|vote|dsweight`: argument parsing for
 * the diversity-data commands of include/tinyalign/curate.h and diversity.h. Each
 * subcommand declares its options (one table, each entry tagged with the subcommands that
 * take it), fills an options struct and calls the library; the library writes outputs
 * atomically and the summary to stderr. `curate best` (ReST selection) and the
 * self-improvement filters `curate vote` / `curate dsweight` (IWSI) share the table.
 * Other curate subcommands (prs, anchors) plug into the SUBCOMMANDS table.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/checkpoint.h"
#include "tinyalign/cli.h"
#include "tinyalign/common.h"
#include "tinyalign/curate.h"
#include "tinyalign/diversity.h"

/* The subcommands and which options each takes. */
enum { SUB_DEVIATION = 1, SUB_PAIRS = 2, SUB_DIVPO = 4, SUB_DIVERSITY = 8, SUB_ALL = 15,
       SUB_BEST = 16, SUB_VOTE = 32, SUB_DSWEIGHT = 64 };

static const char *ABOUT_DEVIATION =
    "Adds to every response \"deviation\" (mean cosine distance to the prompt's other\n"
    "responses; \"deviation/<S>\" per source when several) and \"weight\" (as Chung et al.\n"
    "2025, arXiv 2503.17126, weight their DDPO pairs: per-prompt min-max, geometric mean\n"
    "over sources, rescaled to mean 1 per prompt; the least deviating response gets 0,\n"
    "all-equal deviations give 1). Every other field is kept. Prompts with one response\n"
    "are written unchanged (counted on stderr).\n";

static const char *ABOUT_PAIRS =
    "Disjoint preference pairs per prompt, drawn at random among responses whose scores\n"
    "differ by at least the gap (as Chung et al. 2025, arXiv 2503.17126, sample them: when\n"
    "none do, any two different scores; two identical texts are never paired), chosen =\n"
    "the higher score. Writes {\"prompt\", \"chosen\", \"rejected\", \"weight\",\n"
    "\"chosen_score\", \"rejected_score\"}; weight = the chosen's deviation weight computed\n"
    "over the multiset of the responses in that prompt's pairs (as the authors' code does),\n"
    "what objective.type ddpo / dorpo read. Every response needs a \"score\". Summary\n"
    "(histograms, skipped prompts) on stderr.\n"
    "Without --source: the responses' own \"weight\" fields when they all have one (from\n"
    "curate deviation: computed over ALL responses), else --source field:embedding;\n"
    "--source none: no weights (weight 1: plain DPO pairs).\n";

static const char *ABOUT_DIVPO =
    "DivPO pairs (Lanchantin et al. 2025, arXiv 2501.18101) as the DDPO authors\n"
    "re-implemented it (Chung et al. 2025, arXiv 2503.17126): per prompt of n responses,\n"
    "k = int(min(max(max_pairs, n*rho/100), n/2)), m = min(max_pairs, k); High = top-k\n"
    "by score, Low = bottom-k; the m most diverse of High (diversity recomputed inside\n"
    "High) vs the m least diverse of Low, shuffled and zipped. Writes {\"prompt\",\n"
    "\"chosen\", \"rejected\", \"chosen_score\", \"rejected_score\"} for plain DPO.\n";

static const char *ABOUT_BEST =
    "ReST-style selection (Gulcehre et al. 2023, arXiv 2308.08998): per prompt, the\n"
    "responses ranked by score (highest first; ties keep their order in the file), the\n"
    "best --top K of them, or every one with score >= --threshold S (both: the best K of\n"
    "those), written as SFT rows {\"prompt\", \"completion\", \"weight\"?, <score>, <the\n"
    "prompt row's own fields>}. Summary on stderr.\n";

static const char *ABOUT_VOTE =
    "Self-consistency (Wang et al. 2023, arXiv 2203.11171) over sampled chains of thought:\n"
    "each response's answer is the first capture group of the LAST match of --answer-regex\n"
    "(POSIX extended; blanks trimmed, commas removed, numbers in shortest form so 054, 54.0\n"
    "and 54 vote together); the most frequent answer of a prompt is its majority (ties: the\n"
    "answer that occurs first). Each response gets \"answer\" (or null) and \"consistent\";\n"
    "with a gold \"answer\" on the row also \"correct\". The row gets \"majority\",\n"
    "\"majority_count\", \"parsed\", \"vote_entropy\" (nats) and \"vote_entropy_norm\"\n"
    "(divided by ln(parsed); null with one answer). Prompts without any answer are dropped\n"
    "(counted). Every other field is kept. Summary on stderr.\n";

static const char *ABOUT_DSWEIGHT =
    "IWSI (Jiang et al., AAAI 2025, arXiv 2408.09849): the samples of curate vote filtered\n"
    "by distribution-shift extent. The loss model M_V (the model fine-tuned on a small\n"
    "labelled valid set) gives each sample its mean token loss l (over prompt + response as\n"
    "the authors' code; --loss-scope response: the response only) and L_v = the mean over\n"
    "--valid; w = clip(L_v / l, 0, 2), DS = w if w > 1 else min(1/w, 5). --filter ds keeps,\n"
    "among the consistent samples with w > 0, those with DS below the sorted DS at index\n"
    "floor(keep * n) (ties at the threshold dropped; keep 1 = all).\n"
    "Comparison filters: vote (every consistent sample: LMSI), groundtruth (answer ==\n"
    "gold), entropy (consistent samples of prompts with vote_entropy_norm <= --max-entropy),\n"
    "random (floor(keep * n) consistent samples at random, --seed: a data-size control).\n"
    "Writes SFT rows {\"prompt\", \"completion\", \"weight\", \"loss\", \"iw\", \"ds\",\n"
    "\"extracted\", \"consistent\", \"correct\"?, <the row's fields>}: the kept ones\n"
    "(weight 1), or with --all every response (weight 1 kept, 0 dropped). The DS\n"
    "distribution and the counts go to stderr.\n";

static const char *ABOUT_DIVERSITY =
    "Diversity of each prompt's responses and overall (the mean over prompts): mean pairwise\n"
    "embedding distance per source, distinct-1..4, n-gram diversity (sum over n = 1..4 of\n"
    "unique/total n-grams of the concatenation), gzip compression ratio of the space-joined\n"
    "texts (lower = more diverse). Default sources: lexical, plus field:embedding when every\n"
    "response has one. Prompts with one response are skipped (counted).\n";

/* Options shared by the subcommands. */
typedef struct {
    const char *in, *out, *tokenizer, *model;
    CliList source_specs;
    CurateSource sources[CURATE_MAX_SOURCES];
    int n_sources, source_none, threads;
    int json, no_per_prompt, sort_with_score, max_pairs_per_prompt, max_pairs, criterion;
    double gap, min_weight, rho, threshold;
    uint64_t seed;
    int top, unique;
    const char *score_field, *weight_field, *prompt_field;
    const char *answer_regex, *valid;
    int filter, loss_scope, write_all, batch_size;
    double keep, max_entropy;
} Args;

/* Returns CLI_RUN to continue, else an exit status. */
static int parse(int sub, const CliSpec *base, int argc, char **argv, Args *a) {
    static const char *const SOURCE_HELP =
        "embedding source, repeatable (several = geometric mean):\n"
        "  field:NAME   vectors in the data (the response's NAME field,\n"
        "               e.g. field:embedding, field:style_embedding)\n"
        "  model:MODEL  mean ln_f hidden state over the response tokens\n"
        "               of a tinyalign model (a run directory, its\n"
        "               checkpoints/latest, a checkpoint or model directory)\n"
        "  lexical      hashed character 3-grams + word uni/bigrams";
    const struct {
        unsigned subs;
        CliOpt o;
    } all[] = {
        {SUB_ALL | SUB_BEST | SUB_VOTE | SUB_DSWEIGHT, {.name = "--in", .kind = CLI_STR, .dst = &a->in, .meta = "FILE", .flags = CLI_REQUIRED,
                   .help = "multi-response JSONL {\"prompt\", \"responses\": [{\"text\", ...}]}"}},
        {(SUB_ALL & ~SUB_DIVERSITY) | SUB_BEST | SUB_VOTE | SUB_DSWEIGHT, {.name = "--out", .kind = CLI_STR, .dst = &a->out, .meta = "FILE",
                   .flags = CLI_REQUIRED, .help = "output (written atomically)"}},
        {SUB_BEST, {.name = "--top", .kind = CLI_INT, .dst = &a->top, .meta = "K", .def = "1", .lo = 0,
                   .hi = 2147483647, .help = "keep the K best responses per prompt; 0 = no cap\n"
                                             "(with --threshold)"}},
        {SUB_BEST, {.name = "--threshold", .kind = CLI_DOUBLE, .dst = &a->threshold, .meta = "S",
                   .help = "keep responses with score >= S (with --top K: at most K)"}},
        {SUB_BEST, {.name = "--score-field", .kind = CLI_STR, .dst = &a->score_field, .meta = "F",
                   .def = "score", .help = "the response field to rank by"}},
        {SUB_BEST, {.name = "--weight-field", .kind = CLI_STR, .dst = &a->weight_field, .meta = "F",
                   .help = "copy the response's (else the row's) field F, a number\n"
                           ">= 0, into the SFT row's \"weight\""}},
        {SUB_BEST, {.name = "--prompt-field", .kind = CLI_STR, .dst = &a->prompt_field, .meta = "F",
                   .help = "take the SFT prompt from the row's string field F\n"
                           "(e.g. filled_prompt from sample --template)"}},
        {SUB_BEST, {.name = "--unique", .kind = CLI_FLAG, .dst = &a->unique,
                   .help = "pass over a text already selected for the prompt"}},
        {SUB_VOTE, {.name = "--answer-regex", .kind = CLI_STR, .dst = &a->answer_regex, .meta = "RE",
                   .flags = CLI_TEXT, .help = "POSIX extended regex; its first group is the answer\n"
                                              "(default: \"" CURATE_ANSWER_DEFAULT_RE "\",\n"
                                              "i.e. \"The answer is N.\" with N like -1,234.5)"}},
        {SUB_DSWEIGHT, {.name = "--filter", .kind = CLI_CHOICE, .dst = &a->filter,
                   .choices = "ds|vote|groundtruth|entropy|random", .def = "ds",
                   .help = "ds (IWSI), vote (LMSI), groundtruth, entropy or random"}},
        {SUB_DSWEIGHT, {.name = "--model", .kind = CLI_STR, .dst = &a->model, .meta = "M_V",
                   .help = "the loss model (needed by --filter ds; with another filter\n"
                           "l, w and DS are still written):\n" CHECKPOINT_MODEL_HELP}},
        {SUB_DSWEIGHT, {.name = "--valid", .kind = CLI_STR, .dst = &a->valid, .meta = "FILE",
                   .help = "the labelled valid set, SFT rows {\"prompt\", \"completion\"}"}},
        {SUB_DSWEIGHT, {.name = "--keep", .kind = CLI_DOUBLE, .dst = &a->keep, .meta = "K",
                   .def = "0.79", .help = "fraction kept by ds and random, in (0, 1]"}},
        {SUB_DSWEIGHT, {.name = "--max-entropy", .kind = CLI_DOUBLE, .dst = &a->max_entropy,
                   .meta = "H", .help = "entropy: the largest vote_entropy_norm kept, in [0, 1]"}},
        {SUB_DSWEIGHT, {.name = "--loss-scope", .kind = CLI_CHOICE, .dst = &a->loss_scope,
                   .choices = "full|response", .def = "full",
                   .help = "the tokens l is the mean loss of: full = prompt + response\n"
                           "(as the authors' code), response = the response and EOS"}},
        {SUB_DSWEIGHT, {.name = "--all", .kind = CLI_FLAG, .dst = &a->write_all,
                   .help = "write every response, weight 1 kept / 0 dropped"}},
        {SUB_DSWEIGHT, {.name = "--batch-size", .kind = CLI_INT, .dst = &a->batch_size, .meta = "N",
                   .def = "0", .lo = 0, .hi = 1 << 20,
                   .help = "rows per forward of the loss model; 0 = 16"}},
        {SUB_PAIRS, {.name = "--gap", .kind = CLI_DOUBLE, .dst = &a->gap, .meta = "G", .def = "5",
                   .help = "minimum score difference; -1 = every pair with different\n"
                           "scores, at most 100 drawn per prompt"}},
        {SUB_PAIRS | SUB_DIVPO | SUB_DSWEIGHT, {.name = "--seed", .kind = CLI_U64, .dst = &a->seed, .meta = "S", .def = "42",
                   .help = "random seed; each prompt has its own stream"}},
        {SUB_PAIRS, {.name = "--max-pairs-per-prompt", .kind = CLI_INT, .dst = &a->max_pairs_per_prompt,
                   .meta = "N", .def = "0", .lo = 0, .hi = 2147483647,
                   .help = "keep the first N pairs drawn; 0 = all"}},
        {SUB_PAIRS, {.name = "--sort-with-score", .kind = CLI_FLAG, .dst = &a->sort_with_score,
                   .help = "with the cap: keep the pairs with the highest chosen scores"}},
        {SUB_PAIRS, {.name = "--min-weight", .kind = CLI_DOUBLE, .dst = &a->min_weight, .meta = "W",
                   .help = "floor of the chosen's weight (e.g. 0.2; default none)"}},
        {SUB_DIVPO, {.name = "--rho", .kind = CLI_DOUBLE, .dst = &a->rho, .meta = "P", .def = "25",
                   .help = "pool size in percent of the responses, in (0, 100]"}},
        {SUB_DIVPO, {.name = "--max-pairs", .kind = CLI_INT, .dst = &a->max_pairs, .meta = "M", .def = "2",
                   .lo = 1, .hi = 2147483647, .help = "pairs per prompt"}},
        {SUB_DIVPO, {.name = "--criterion", .kind = CLI_CHOICE, .dst = &a->criterion,
                   .choices = "deviation|logprob", .def = "deviation",
                   .help = "deviation (--source as below) or logprob: D(y) = -log p(y|x)\n"
                           "summed over the response under --model"}},
        {SUB_DIVPO, {.name = "--model", .kind = CLI_STR, .dst = &a->model, .meta = "MODEL",
                   .help = "the model for --criterion logprob:\n" CHECKPOINT_MODEL_HELP}},
        {SUB_DIVERSITY, {.name = "--json", .kind = CLI_FLAG, .dst = &a->json,
                   .help = "one JSON object {overall, per_prompt: [...]} on stdout"}},
        {SUB_DIVERSITY, {.name = "--no-per-prompt", .kind = CLI_FLAG, .dst = &a->no_per_prompt,
                   .help = "leave per_prompt out"}},
        {SUB_ALL, {.name = "--source", .kind = CLI_LIST, .dst = &a->source_specs, .meta = "S",
                   .help = SOURCE_HELP}},
        {SUB_ALL, {.name = "--tokenizer", .kind = CLI_STR, .dst = &a->tokenizer, .meta = "MODEL",
                   .help = "SentencePiece model for model: sources (default: the model's)"}},
        {SUB_DSWEIGHT, {.name = "--tokenizer", .kind = CLI_STR, .dst = &a->tokenizer, .meta = "MODEL",
                   .help = "the data's SentencePiece model (the sampling model's);\n"
                           "must be the loss model's own (default: the loss model's)"}},
        {SUB_ALL | SUB_DSWEIGHT, {.name = "--threads", .kind = CLI_INT, .dst = &a->threads, .meta = "N", .def = "0",
                   .lo = 0, .hi = 1 << 20, .help = "threads for model: sources; 0 = all cores"}},
    };
    enum { N_ALL = sizeof all / sizeof all[0] };
    CliOpt opts[N_ALL + 1];
    int n = 0;
    for (int i = 0; i < N_ALL; i++)
        if (all[i].subs & (unsigned)sub) opts[n++] = all[i].o;
    opts[n] = (CliOpt){0};
    CliSpec spec = *base;
    spec.opts = opts;
    int rc = cli_parse(&spec, argc, argv);
    if (rc != CLI_RUN) return rc;
    for (int i = 0; i < a->source_specs.n && rc == CLI_RUN; i++) {
        const char *v = a->source_specs.items[i];
        TaError err = {0};
        if (sub == SUB_PAIRS && !strcmp(v, "none")) a->source_none = 1;
        else if (a->n_sources == CURATE_MAX_SOURCES)
            rc = cli_usage_error(&spec, "at most %d --source options", CURATE_MAX_SOURCES);
        else if (curate_source_parse(&a->sources[a->n_sources++], v, &err) != TA_OK)
            rc = cli_usage_error(&spec, "%s", err.msg);
    }
    free(a->source_specs.items);
    if (rc != CLI_RUN) return rc;
    if (sub == SUB_PAIRS && !(a->gap >= 0 || a->gap == -1))
        return cli_usage_error(&spec, "--gap needs a number >= 0, or -1 for all pairs; got %g", a->gap);
    if (sub == SUB_PAIRS && a->min_weight != -1 && !(a->min_weight >= 0))
        return cli_usage_error(&spec, "--min-weight needs a number >= 0, got %g", a->min_weight);
    if (sub == SUB_DIVPO && !(a->rho > 0 && a->rho <= 100))
        return cli_usage_error(&spec, "--rho needs a percentage in (0, 100], got %g", a->rho);
    if (a->source_none && a->n_sources)
        return cli_usage_error(&spec, "--source none cannot be combined with other sources");
    if (sub == SUB_DIVPO && a->criterion == CURATE_DIVPO_LOGPROB && !a->model)
        return cli_usage_error(&spec, "--criterion logprob needs --model MODEL");
    if (sub == SUB_DIVPO && a->criterion == CURATE_DIVPO_LOGPROB && a->n_sources)
        return cli_usage_error(&spec, "--source applies to --criterion deviation only");
    if (sub == SUB_DIVPO && a->model && a->criterion != CURATE_DIVPO_LOGPROB)
        return cli_usage_error(&spec, "--model applies to --criterion logprob (for model "
                                      "embeddings use --source model:MODEL)");
    if (sub == SUB_DSWEIGHT && !(a->keep > 0 && a->keep <= 1))
        return cli_usage_error(&spec, "--keep needs a fraction in (0, 1], got %g", a->keep);
    if (sub == SUB_DSWEIGHT && a->filter == CURATE_FILTER_ENTROPY && !(a->max_entropy >= 0))
        return cli_usage_error(&spec, "--filter entropy needs --max-entropy H (a number in [0, 1])");
    if (sub == SUB_DSWEIGHT && a->filter != CURATE_FILTER_ENTROPY && !isnan(a->max_entropy))
        return cli_usage_error(&spec, "--max-entropy applies to --filter entropy only");
    if (sub == SUB_DSWEIGHT && a->filter == CURATE_FILTER_DS && (!a->model || !a->valid))
        return cli_usage_error(&spec, "--filter ds needs --model M_V and --valid FILE");
    if (sub == SUB_DSWEIGHT && !a->model != !a->valid)
        return cli_usage_error(&spec, "--model and --valid go together");
    if (a->out && !strcmp(a->in, a->out))
        return cli_usage_error(&spec, "--out must differ from --in (%s)", a->in);
    ta_set_threads(a->threads);
    return CLI_RUN;
}

static void print_text_report(const DiversityReport *r) {
    printf("diversity: %zu prompts (%zu scored, %zu with a single response skipped), %zu "
           "responses\n",
           r->n_prompts, r->n_scored, r->skipped_single, r->n_responses);
    const DiversityPrompt *o = &r->overall;
    printf("  distinct-1..4      %.4f %.4f %.4f %.4f\n", o->distinct[0], o->distinct[1],
           o->distinct[2], o->distinct[3]);
    printf("  n-gram diversity   %.4f (of 4)\n", o->ngram_diversity);
    printf("  compression ratio  %.4f (lower = more diverse)\n", o->compression_ratio);
    for (int k = 0; k < r->n_sources; k++)
        printf("  embedding distance %.4f  (%s)\n", o->emb_distance[k], r->sources[k].spec);
}

static int run(int sub, const CliSpec *spec, int argc, char **argv) {
    Args a = {.min_weight = -1, .threshold = NAN, .max_entropy = NAN};
    int rc = parse(sub, spec, argc, argv, &a);
    if (rc != CLI_RUN) return rc;
    TaError err = {0};
    if (sub == SUB_VOTE) {
        CurateVoteOptions o = {.in = a.in, .out = a.out, .regex = a.answer_regex, .log = stderr};
        rc = curate_vote_run(&o, NULL, &err);
    } else if (sub == SUB_DSWEIGHT) {
        CurateDsweightOptions o;
        curate_dsweight_defaults(&o);
        o.in = a.in, o.out = a.out, o.model = a.model, o.valid = a.valid;
        o.tokenizer = a.tokenizer, o.filter = (CurateFilter)a.filter, o.keep = a.keep;
        o.max_entropy = a.max_entropy, o.seed = a.seed, o.scope = (CurateLossScope)a.loss_scope;
        o.write_all = a.write_all, o.batch_size = a.batch_size, o.log = stderr;
        rc = curate_dsweight_run(&o, NULL, &err);
    } else if (sub == SUB_BEST) {
        CurateBestOptions o;
        curate_best_defaults(&o);
        o.in = a.in, o.out = a.out, o.top = a.top, o.unique = a.unique;
        o.has_threshold = !isnan(a.threshold), o.threshold = a.threshold;
        o.score_field = a.score_field, o.weight_field = a.weight_field;
        o.prompt_field = a.prompt_field, o.log = stderr;
        if (o.top == 0 && !o.has_threshold) {
            fprintf(stderr, "%s: --top 0 (no cap) needs --threshold S (see %s --help)\n", spec->prog,
                    spec->prog);
            return TA_EINPUT;
        }
        rc = curate_best_run(&o, NULL, &err);
    } else if (sub == SUB_DEVIATION) {
        CurateDeviationOptions o = {.in = a.in, .out = a.out, .n_sources = a.n_sources,
                                    .tokenizer = a.tokenizer, .log = stderr};
        memcpy(o.sources, a.sources, sizeof a.sources);
        rc = curate_deviation_run(&o, NULL, &err);
    } else if (sub == SUB_PAIRS) {
        CuratePairsOptions o;
        curate_pairs_defaults(&o);
        o.in = a.in, o.out = a.out, o.n_sources = a.n_sources, o.no_weights = a.source_none;
        memcpy(o.sources, a.sources, sizeof a.sources);
        o.tokenizer = a.tokenizer, o.gap = a.gap, o.seed = a.seed;
        o.max_pairs_per_prompt = a.max_pairs_per_prompt, o.sort_with_score = a.sort_with_score;
        o.min_weight = a.min_weight, o.log = stderr;
        rc = curate_pairs_run(&o, NULL, &err);
    } else if (sub == SUB_DIVPO) {
        CurateDivpoOptions o;
        curate_divpo_defaults(&o);
        o.in = a.in, o.out = a.out, o.n_sources = a.n_sources;
        memcpy(o.sources, a.sources, sizeof a.sources);
        o.tokenizer = a.tokenizer, o.model = a.model;
        o.criterion = (CurateDivpoCriterion)a.criterion, o.rho = a.rho;
        o.max_pairs = a.max_pairs, o.seed = a.seed, o.log = stderr;
        rc = curate_divpo_run(&o, NULL, &err);
    } else {
        Dataset *d = NULL;
        DiversityOptions o = {.n_sources = a.n_sources, .tokenizer = a.tokenizer};
        memcpy(o.sources, a.sources, sizeof a.sources);
        DiversityReport r;
        rc = dataset_load(&d, a.in, DS_MULTI, NULL, NULL, &err);
        if (rc == TA_OK) rc = diversity_metrics(d, &o, &r, &err);
        if (rc == TA_OK) {
            if (a.json) {
                char *j = diversity_report_json(&r, !a.no_per_prompt);
                puts(j);
                free(j);
            } else {
                print_text_report(&r);
            }
            diversity_report_free(&r);
        }
        dataset_free(d);
    }
    if (rc != TA_OK) fprintf(stderr, "%s: %s\n", spec->prog, err.msg);
    return rc;
}

#define USAGE(sub, rest) "tinyalign curate " sub " --in MULTI.jsonl " rest
static int sub_deviation(int argc, char **argv) {
    const CliSpec spec = {.prog = "tinyalign curate deviation",
                                 .usage = USAGE("deviation", "--out OUT.jsonl [--source S ...]"),
                                 .about = ABOUT_DEVIATION};
    return run(SUB_DEVIATION, &spec, argc, argv);
}
static int sub_pairs(int argc, char **argv) {
    const CliSpec spec = {.prog = "tinyalign curate pairs",
                                 .usage = USAGE("pairs", "--out PREFS.jsonl [options]"),
                                 .about = ABOUT_PAIRS};
    return run(SUB_PAIRS, &spec, argc, argv);
}
static int sub_divpo(int argc, char **argv) {
    const CliSpec spec = {.prog = "tinyalign curate divpo",
                                 .usage = USAGE("divpo", "--out PREFS.jsonl [options]"),
                                 .about = ABOUT_DIVPO};
    return run(SUB_DIVPO, &spec, argc, argv);
}
static int sub_diversity(int argc, char **argv) {
    const CliSpec spec = {.prog = "tinyalign curate diversity",
                                 .usage = USAGE("diversity", "[--source S ...] [--json] [--no-per-prompt]"),
                                 .about = ABOUT_DIVERSITY};
    return run(SUB_DIVERSITY, &spec, argc, argv);
}
static int sub_best(int argc, char **argv) {
    const CliSpec spec = {.prog = "tinyalign curate best",
                          .usage = USAGE("best", "--out SFT.jsonl [--top K | --threshold S] [options]"),
                          .about = ABOUT_BEST};
    return run(SUB_BEST, &spec, argc, argv);
}
static int sub_vote(int argc, char **argv) {
    const CliSpec spec = {.prog = "tinyalign curate vote",
                          .usage = USAGE("vote", "--out VOTED.jsonl [--answer-regex RE]"),
                          .about = ABOUT_VOTE};
    return run(SUB_VOTE, &spec, argc, argv);
}
static int sub_dsweight(int argc, char **argv) {
    const CliSpec spec = {.prog = "tinyalign curate dsweight",
                          .usage = "tinyalign curate dsweight --in VOTED.jsonl --model M_V --valid "
                                   "VALID.jsonl --out SFT.jsonl [--keep K] [--filter F] [options]",
                          .about = ABOUT_DSWEIGHT};
    return run(SUB_DSWEIGHT, &spec, argc, argv);
}
#undef USAGE

static const CliCommand SUBCOMMANDS[] = {
    {"deviation", sub_deviation, "per-response deviation scores and DDPO weights"},
    {"pairs", sub_pairs, "preference pairs with a score gap, weighted by deviation (DDPO/DORPO)"},
    {"divpo", sub_divpo, "DivPO pairs: most diverse good vs least diverse bad response"},
    {"diversity", sub_diversity, "diversity metrics of each prompt's responses"},
    {"best", sub_best, "ReST selection: the best K responses per prompt as SFT rows"},
    {"vote", sub_vote, "majority vote over extracted answers (self-consistency)"},
    {"dsweight", sub_dsweight, "IWSI: drop the most distribution-shifted consistent samples"},
};

int cmd_curate(int argc, char **argv) {
    static const CliGroup group = {
        .prog = "tinyalign curate",
        .about = "Data curation on multi-response JSONL\n"
                 "  {\"prompt\": ..., \"responses\": [{\"text\": ..., \"score\": ..., \"embedding\": [...]}]}\n",
        .cmds = SUBCOMMANDS,
        .n = (int)(sizeof SUBCOMMANDS / sizeof SUBCOMMANDS[0]),
        .notes = "exit status: 0 ok, 1 runtime failure (e.g. cannot write), 2 bad input or usage\n",
    };
    return cli_dispatch(&group, argc, argv);
}
