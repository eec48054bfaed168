/* diversity.h — diversity metrics of the responses to each prompt (SEEDS.md 2.6, 2.9 step 4),
 * for `tinyalign curate diversity` and for `tinyalign eval` on sampled responses.
 *
 * Per prompt (over its n >= 2 responses; prompts with one response are skipped and counted):
 *   embedding_distance/<source>  mean pairwise cosine distance, 1/(n(n-1)) sum_{i != j}
 *                     (1 - cos(e_i, e_j)) = the mean of the deviations (curate.h), per source;
 *   distinct_n (n = 1..4)  #unique n-grams / #n-grams, n-grams of whitespace tokens taken
 *                     inside each response and pooled over the prompt's responses (an n-gram
 *                     never spans two responses); 0 when there is no n-gram;
 *   ngram_diversity   sum_{n=1..4} #unique / #total n-grams over the whitespace tokens of the
 *                     concatenation (texts joined by " ", so n-grams do span responses), a
 *                     term with no n-gram counts 0 (SEEDS 2.6; range [0, 4]);
 *   compression_ratio bytes of the texts joined by " " / bytes of their gzip member (lower =
 *                     more diverse). The gzip member is zlib's deflate at level 9 (memLevel
 *                     8, default strategy) in a gzip wrapper, i.e. exactly the bytes of
 *                     Python's gzip.compress(data, 9, mtime=0) (tests/test_curate.c checks
 *                     a set of strings against Python).
 * Whitespace = space, \t, \n, \v, \f, \r (ASCII; Python's str.split() also splits on Unicode
 * spaces). Overall = the mean over the scored prompts of each per-prompt value (macro).
 */
#ifndef TINYALIGN_DIVERSITY_H
#define TINYALIGN_DIVERSITY_H
#include <stddef.h>

#include "tinyalign/common.h"
#include "tinyalign/curate.h"
#include "tinyalign/data.h"

#define DIVERSITY_MAX_N 4

typedef struct {
    /* embedding sources; n_sources 0 = lexical, plus field:embedding when every response
     * has an "embedding" */
    CurateSource sources[CURATE_MAX_SOURCES];
    int n_sources;
    const char *tokenizer; /* for model: sources; NULL = the model directory's */
} DiversityOptions;

typedef struct {
    size_t index;      /* prompt index in the data */
    long line;         /* its 1-based line (0 for the overall row) */
    int n_responses;
    double distinct[DIVERSITY_MAX_N]; /* distinct-1 .. distinct-4 */
    double ngram_diversity;
    double compression_ratio;
    double emb_distance[CURATE_MAX_SOURCES]; /* per source, in DiversityReport.sources order */
} DiversityPrompt;

typedef struct {
    int n_sources;
    CurateSource sources[CURATE_MAX_SOURCES]; /* the sources actually used */
    size_t n_prompts;      /* prompts in the data */
    size_t n_responses;    /* responses of the scored prompts */
    size_t skipped_single; /* prompts with one response (not scored) */
    DiversityPrompt overall;    /* means over per_prompt */
    DiversityPrompt *per_prompt; /* (n_scored) */
    size_t n_scored;
} DiversityReport;

/* Metrics of a DS_MULTI dataset (data.h; loaded with or without a tokenizer; model:
 * sources re-tokenize it, hence non-const). Returns TA_OK with *out filled (free with
 * diversity_report_free), or TA_EINPUT with err naming the file and line (e.g. a response
 * without the field of a field: source), or the model directory. */
int diversity_metrics(Dataset *d, const DiversityOptions *opt, DiversityReport *out,
                      TaError *err);
void diversity_report_free(DiversityReport *r); /* safe on a zeroed report */

/* One JSON object: {"prompts", "responses", "skipped_single_response", "sources": [...],
 * "overall": {metrics}, "per_prompt": [{"index", "line", "n_responses", metrics}...]}
 * (per_prompt omitted when with_per_prompt is 0), metrics named distinct_1..distinct_4,
 * ngram_diversity, compression_ratio, "embedding_distance/<spec>". Numbers %.9g; NaN-free.
 * Returns a malloc'd NUL-terminated string (caller frees). */
char *diversity_report_json(const DiversityReport *r, int with_per_prompt);

/* ---- string metrics ------------------------------------------------------------------- */
/* distinct-n of n texts (n-grams inside each text, pooled), order >= 1. */
double diversity_distinct_n(const char *const *texts, int n, int order);
/* sum_{k=1..4} unique/total k-grams over the whitespace tokens of the texts joined by " ". */
double diversity_ngram_diversity(const char *const *texts, int n);
/* bytes of the texts joined by " " / bytes of diversity_gzip of them; 0 for empty text. */
double diversity_compression_ratio(const char *const *texts, int n);
/* A gzip member (RFC 1952) of data[0..len) as described above (header: mtime 0, XFL 2,
 * OS 3, no name). Returns malloc'd bytes (caller frees) and their count in *out_len. */
unsigned char *diversity_gzip(const void *data, size_t len, size_t *out_len);

#endif
