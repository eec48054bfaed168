/* cmd_curate.c — `tinyalign curate deviation|pairs|divpo|diversity`: argument parsing for
 * the diversity-data commands of include/tinyalign/curate.h and diversity.h. Each
 * subcommand fills an options struct and calls the library; the library writes outputs
 * atomically and the summary to stderr. Other curate subcommands (prs, anchors, dsweight)
 * plug into the SUBCOMMANDS table.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/cli.h"
#include "tinyalign/common.h"
#include "tinyalign/curate.h"
#include "tinyalign/diversity.h"

static const char *SOURCES_HELP =
    "  --source S            embedding source, repeatable (several = geometric mean):\n"
    "                          field:NAME  vectors in the data (the response's NAME field,\n"
    "                                      e.g. field:embedding, field:style_embedding)\n"
    "                          model:DIR   a tinyalign model directory: mean ln_f hidden\n"
    "                                      state over the response tokens\n"
    "                          lexical     hashed character 3-grams + word uni/bigrams\n"
    "  --tokenizer MODEL     SentencePiece model for model: sources (default DIR's)\n"
    "  --threads N           threads for model: sources (default: all cores)\n";

static const char *HELP_DEVIATION =
    "usage: tinyalign curate deviation --in MULTI.jsonl --out OUT.jsonl [--source S ...]\n"
    "\n"
    "Adds to every response \"deviation\" (mean cosine distance to the prompt's other\n"
    "responses; \"deviation/<S>\" per source when several) and \"weight\" (SEEDS 2.3 step 4:\n"
    "per-prompt min-max, geometric mean over sources, rescaled to mean 1 per prompt; the\n"
    "least deviating response gets 0, all-equal deviations give 1). Every other field is\n"
    "kept. Prompts with one response are written unchanged (counted on stderr).\n"
    "\n"
    "  --in FILE             multi-response JSONL {\"prompt\", \"responses\": [{\"text\", ...}]}\n"
    "  --out FILE            output (written atomically)\n";

static const char *HELP_PAIRS =
    "usage: tinyalign curate pairs --in MULTI.jsonl --out PREFS.jsonl [options]\n"
    "\n"
    "Disjoint preference pairs per prompt, drawn at random among responses whose scores\n"
    "differ by at least the gap (SEEDS 2.3 step 3: when none do, any two different scores;\n"
    "two identical texts are never paired), chosen = the higher score. Writes\n"
    "{\"prompt\", \"chosen\", \"rejected\", \"weight\", \"chosen_score\", \"rejected_score\"}; weight =\n"
    "the chosen's deviation weight computed over the multiset of the responses in that\n"
    "prompt's pairs (SEEDS 2.3 step 4), what objective.type ddpo / dorpo read.\n"
    "Every response needs a \"score\". Summary (histograms, skipped prompts) on stderr.\n"
    "\n"
    "  --in FILE, --out FILE\n"
    "  --gap G               minimum score difference (default 5); -1 = every pair with\n"
    "                        different scores, at most 100 drawn per prompt\n"
    "  --seed S              pairing seed (default 42); each prompt has its own stream\n"
    "  --max-pairs-per-prompt N   keep the first N pairs drawn (default 0 = all)\n"
    "  --sort-with-score     with the cap: keep the pairs with the highest chosen scores\n"
    "  --min-weight W        floor of the chosen's weight (e.g. 0.2)\n"
    "  --source none         no weights (weight 1: plain DPO pairs)\n"
    "  Without --source: the responses' own \"weight\" fields when they all have one (from\n"
    "  curate deviation: computed over ALL responses), else --source field:embedding.\n";

static const char *HELP_DIVPO =
    "usage: tinyalign curate divpo --in MULTI.jsonl --out PREFS.jsonl [options]\n"
    "\n"
    "DivPO pairs as the DDPO authors re-implemented it (SEEDS 2.8): per prompt of n\n"
    "responses, k = int(min(max(max_pairs, n*rho/100), n/2)), m = min(max_pairs, k);\n"
    "High = top-k by score, Low = bottom-k; the m most diverse of High (diversity\n"
    "recomputed inside High) vs the m least diverse of Low, shuffled and zipped. Writes\n"
    "{\"prompt\", \"chosen\", \"rejected\", \"chosen_score\", \"rejected_score\"} for plain DPO.\n"
    "\n"
    "  --in FILE, --out FILE\n"
    "  --rho P               pool size in percent of the responses (default 25)\n"
    "  --max-pairs M         pairs per prompt (default 2)\n"
    "  --criterion C         deviation (default; --source as below) or logprob:\n"
    "                        D(y) = -log p(y|x) summed over the response under --model\n"
    "  --model DIR           the model for --criterion logprob\n"
    "  --seed S              shuffle seed (default 42)\n";

static const char *HELP_DIVERSITY =
    "usage: tinyalign curate diversity --in MULTI.jsonl [--source S ...] [--json]\n"
    "                                  [--no-per-prompt]\n"
    "\n"
    "Diversity of each prompt's responses and overall (the mean over prompts): mean pairwise\n"
    "embedding distance per source, distinct-1..4, n-gram diversity (sum over n = 1..4 of\n"
    "unique/total n-grams of the concatenation), gzip compression ratio of the space-joined\n"
    "texts (lower = more diverse). Default sources: lexical, plus field:embedding when every\n"
    "response has one. Prompts with one response are skipped (counted).\n"
    "\n"
    "  --json                one JSON object {overall, per_prompt: [...]} on stdout\n"
    "  --no-per-prompt       leave per_prompt out\n";

static int fail(const char *sub, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(const char *sub, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tinyalign curate %s: ", sub);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno) return 0;
    *out = v;
    return 1;
}

static int parse_int(const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < -2147483647L || v > 2147483647L) return 0;
    *out = (int)v;
    return 1;
}

static int parse_u64(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    if (!*s || *s == '-') return 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno) return 0;
    *out = (uint64_t)v;
    return 1;
}

/* Options shared by the subcommands. */
typedef struct {
    const char *in, *out, *tokenizer, *model;
    CurateSource sources[CURATE_MAX_SOURCES];
    int n_sources, source_none, threads;
    int json, per_prompt, sort_with_score, max_pairs_per_prompt, max_pairs, criterion;
    double gap, min_weight, rho;
    uint64_t seed;
} Args;

enum { SUB_DEVIATION, SUB_PAIRS, SUB_DIVPO, SUB_DIVERSITY };

/* Returns -1 to continue, else an exit status. */
static int parse(int sub, const char *name, const char *help, int argc, char **argv, Args *a) {
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(help, stdout);
            fputs(SOURCES_HELP, stdout);
            return TA_OK;
        }
        int has = v != NULL;
#define NEED()                                                                               \
    do {                                                                                     \
        if (!has) return fail(name, TA_EINPUT, "%s needs a value (see --help)", o);          \
        i++;                                                                                 \
    } while (0)
        if (!strcmp(o, "--in")) {
            NEED();
            a->in = v;
        } else if (!strcmp(o, "--out") && sub != SUB_DIVERSITY) {
            NEED();
            a->out = v;
        } else if (!strcmp(o, "--tokenizer")) {
            NEED();
            a->tokenizer = v;
        } else if (!strcmp(o, "--threads")) {
            NEED();
            if (!parse_int(v, &a->threads) || a->threads < 1)
                return fail(name, TA_EINPUT, "--threads needs a count >= 1, got \"%s\"", v);
        } else if (!strcmp(o, "--source")) {
            NEED();
            if (sub == SUB_PAIRS && !strcmp(v, "none")) {
                a->source_none = 1;
                continue;
            }
            if (a->n_sources == CURATE_MAX_SOURCES)
                return fail(name, TA_EINPUT, "at most %d --source options", CURATE_MAX_SOURCES);
            TaError err = {0};
            if (curate_source_parse(&a->sources[a->n_sources], v, &err) != TA_OK)
                return fail(name, TA_EINPUT, "%s", err.msg);
            a->n_sources++;
        } else if (!strcmp(o, "--seed") && sub != SUB_DEVIATION && sub != SUB_DIVERSITY) {
            NEED();
            if (!parse_u64(v, &a->seed))
                return fail(name, TA_EINPUT, "--seed needs an integer >= 0, got \"%s\"", v);
        } else if (!strcmp(o, "--gap") && sub == SUB_PAIRS) {
            NEED();
            if (!parse_double(v, &a->gap) || !(a->gap >= 0 || a->gap == -1))
                return fail(name, TA_EINPUT, "--gap needs a number >= 0, or -1 for all pairs; "
                                             "got \"%s\"", v);
        } else if (!strcmp(o, "--max-pairs-per-prompt") && sub == SUB_PAIRS) {
            NEED();
            if (!parse_int(v, &a->max_pairs_per_prompt) || a->max_pairs_per_prompt < 0)
                return fail(name, TA_EINPUT,
                            "--max-pairs-per-prompt needs a count >= 0 (0 = all), got \"%s\"", v);
        } else if (!strcmp(o, "--sort-with-score") && sub == SUB_PAIRS) {
            a->sort_with_score = 1;
        } else if (!strcmp(o, "--min-weight") && sub == SUB_PAIRS) {
            NEED();
            if (!parse_double(v, &a->min_weight) || !(a->min_weight >= 0))
                return fail(name, TA_EINPUT, "--min-weight needs a number >= 0, got \"%s\"", v);
        } else if (!strcmp(o, "--rho") && sub == SUB_DIVPO) {
            NEED();
            if (!parse_double(v, &a->rho) || !(a->rho > 0 && a->rho <= 100))
                return fail(name, TA_EINPUT, "--rho needs a percentage in (0, 100], got \"%s\"", v);
        } else if (!strcmp(o, "--max-pairs") && sub == SUB_DIVPO) {
            NEED();
            if (!parse_int(v, &a->max_pairs) || a->max_pairs < 1)
                return fail(name, TA_EINPUT, "--max-pairs needs a count >= 1, got \"%s\"", v);
        } else if (!strcmp(o, "--criterion") && sub == SUB_DIVPO) {
            NEED();
            if (!strcmp(v, "deviation")) a->criterion = CURATE_DIVPO_DEVIATION;
            else if (!strcmp(v, "logprob")) a->criterion = CURATE_DIVPO_LOGPROB;
            else
                return fail(name, TA_EINPUT,
                            "--criterion is deviation or logprob, got \"%s\"", v);
        } else if (!strcmp(o, "--model") && sub == SUB_DIVPO) {
            NEED();
            a->model = v;
        } else if (!strcmp(o, "--json") && sub == SUB_DIVERSITY) {
            a->json = 1;
        } else if (!strcmp(o, "--no-per-prompt") && sub == SUB_DIVERSITY) {
            a->per_prompt = 0;
        } else {
            return fail(name, TA_EINPUT, "unknown option \"%s\" (see tinyalign curate %s --help)",
                        o, name);
        }
#undef NEED
    }
    if (!a->in) return fail(name, TA_EINPUT, "--in FILE is required (see --help)");
    if (sub != SUB_DIVERSITY && !a->out)
        return fail(name, TA_EINPUT, "--out FILE is required (see --help)");
    if (a->source_none && a->n_sources)
        return fail(name, TA_EINPUT, "--source none cannot be combined with other sources");
    if (sub == SUB_DIVPO && a->criterion == CURATE_DIVPO_LOGPROB && !a->model)
        return fail(name, TA_EINPUT, "--criterion logprob needs --model DIR");
    if (sub == SUB_DIVPO && a->criterion == CURATE_DIVPO_LOGPROB && a->n_sources)
        return fail(name, TA_EINPUT, "--source applies to --criterion deviation only");
    if (sub == SUB_DIVPO && a->model && a->criterion != CURATE_DIVPO_LOGPROB)
        return fail(name, TA_EINPUT, "--model applies to --criterion logprob (for model "
                                     "embeddings use --source model:DIR)");
    if (a->out && !strcmp(a->in, a->out))
        return fail(name, TA_EINPUT, "--out must differ from --in (%s)", a->in);
    ta_set_threads(a->threads);
    return -1;
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

static int run(int sub, const char *name, const char *help, int argc, char **argv) {
    Args a = {.gap = 5, .min_weight = -1, .rho = 25, .max_pairs = 2, .seed = 42,
              .per_prompt = 1};
    int rc = parse(sub, name, help, argc, argv, &a);
    if (rc >= 0) return rc;
    TaError err = {0};
    if (sub == SUB_DEVIATION) {
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
                char *j = diversity_report_json(&r, a.per_prompt);
                puts(j);
                free(j);
            } else {
                print_text_report(&r);
            }
            diversity_report_free(&r);
        }
        dataset_free(d);
    }
    if (rc != TA_OK) return fail(name, rc, "%s", err.msg);
    return TA_OK;
}

static int sub_deviation(int argc, char **argv) {
    return run(SUB_DEVIATION, "deviation", HELP_DEVIATION, argc, argv);
}
static int sub_pairs(int argc, char **argv) {
    return run(SUB_PAIRS, "pairs", HELP_PAIRS, argc, argv);
}
static int sub_divpo(int argc, char **argv) {
    return run(SUB_DIVPO, "divpo", HELP_DIVPO, argc, argv);
}
static int sub_diversity(int argc, char **argv) {
    return run(SUB_DIVERSITY, "diversity", HELP_DIVERSITY, argc, argv);
}

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} CurateSub;

static const CurateSub SUBCOMMANDS[] = {
    {"deviation", sub_deviation, "per-response deviation scores and DDPO weights"},
    {"pairs", sub_pairs, "preference pairs with a score gap, weighted by deviation (DDPO/DORPO)"},
    {"divpo", sub_divpo, "DivPO pairs: most diverse good vs least diverse bad response"},
    {"diversity", sub_diversity, "diversity metrics of each prompt's responses"},
};
static const int NUM_SUBS = (int)(sizeof SUBCOMMANDS / sizeof SUBCOMMANDS[0]);

static void usage(FILE *f) {
    fprintf(f, "usage: tinyalign curate <subcommand> [options]   (--help on each)\n\n"
               "Data curation on multi-response JSONL\n"
               "  {\"prompt\": ..., \"responses\": [{\"text\": ..., \"score\": ..., \"embedding\": [...]}]}\n\n"
               "subcommands:\n");
    for (int i = 0; i < NUM_SUBS; i++)
        fprintf(f, "  %-10s %s\n", SUBCOMMANDS[i].name, SUBCOMMANDS[i].summary);
    fprintf(f, "\nexit status: 0 ok, 1 runtime failure (e.g. cannot write), 2 bad input or usage\n");
}

int cmd_curate(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? TA_EINPUT : TA_OK;
    }
    for (int i = 0; i < NUM_SUBS; i++)
        if (!strcmp(argv[1], SUBCOMMANDS[i].name)) return SUBCOMMANDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "tinyalign curate: unknown subcommand \"%s\" (see tinyalign curate --help)\n",
            argv[1]);
    return TA_EINPUT;
}
