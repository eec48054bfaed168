/* curate.h — diversity data for deviation-weighted preference tuning (SEEDS.md 2.3, 2.8):
 * per-response deviation scores and weights, preference-pair construction, and DivPO
 * selection, from multi-response JSONL
 *   {"prompt": str, "responses": [{"text": str, "score"?: number, "embedding"?: [number],
 *                                  <any other field>...}, ...], <any other field>...}
 *
 * Embedding sources (CurateSource, parsed from the --source strings):
 *   field:NAME   vectors in the data: the response object's NAME field (an array of finite
 *                numbers, the same length on every response of the file, not all zero), so
 *                a user can bring e.g. "embedding" (semantic) and "style_embedding";
 *   model:DIR    a tinyalign model directory: the mean over the RESPONSE positions of the
 *                final layer-norm output (acts.lnf) of gpt2_forward on [BOS] prompt response,
 *                i.e. the hidden states after reading each response token (the prompt
 *                positions and the EOS are left out, so two responses are compared by what
 *                they say, in context). Rows follow data.h's row convention with max_len =
 *                maxT + 1 and max_prompt_len = maxT / 2 (keep_end); the tokenizer is
 *                DIR/tokenizer.model unless one is given;
 *   lexical      built in, no model: hashed features of the text into CURATE_LEXICAL_DIM
 *                buckets (curate_lexical_embed below), L2-normalised.
 *
 * Deviation and weight (SEEDS 2.3 step 4, computed over a MULTISET of N responses: all the
 * responses of a prompt for `curate deviation`, the 2 x #pairs paired responses for
 * `curate pairs`, one pool for DivPO):
 *   d_i^k = 1/(N-1) sum_{j != i} (1 - cos(e_i^k, e_j^k))      per source k (K sources),
 *           rounded to 1e-12 (curate_deviation)
 *   s_i^k = 2 (d_i^k - min_j d_j^k) / (max - min) - 1          0 when max - min <= CURATE_TIE_EPS
 *           (1e-6: float32 vectors cannot resolve smaller differences, which min-max would
 *           otherwise blow up to the whole [-1, 1] range; the released code compares max == min)
 *   u_i   = prod_k ((s_i^k + 1) / 2)^(1/K)                     geometric mean in [0, 1]
 *   s_i   = 2 u_i - 1
 *   score_i = (N s_i - sum_j s_j) / (N + sum_j s_j)  unless every s_i is equal (then s_i)
 *   weight_i = score_i + 1                       (= N u_i / sum_j u_j: mean 1 over the prompt)
 * The least-deviating response gets weight 0; all-equal deviations give weight 1 (N = 2
 * always ties: one pair alone is plain DPO). Degenerate case, kept exactly as the formula
 * (and the released script) has it: with K >= 2 sources every response can be the minimum
 * of some source, so every u_i = 0, every s_i = -1 and every weight is 0 (counted and
 * reported as "degenerate" by the commands).
 *
 * Randomness: every prompt i draws from its own TaRng seeded with
 * curate_prompt_seed(seed, i), so a prompt's pairs do not depend on the others (or on
 * which prompts were skipped). tools/ref_curate.py reimplements the RNG and reproduces
 * every pair exactly.
 *
 * curate best (below) turns scored responses into SFT rows (ReST-style selection);
 * curate vote and curate dsweight (below) are the self-improvement filters of IWSI.
 *
 * Not here: embedding with external sentence-transformers models (bring their vectors as
 * field:NAME), tokenizer-free model scoring, PRS / anchors (other curate commands). Diversity METRICS live in diversity.h.
 */
#ifndef TINYALIGN_CURATE_H
#define TINYALIGN_CURATE_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <regex.h>

#include "tinyalign/common.h"
#include "tinyalign/data.h"

#define CURATE_LEXICAL_DIM 1024 /* buckets of the lexical source */
#define CURATE_MAX_SOURCES 8    /* --source may be given this many times */
#define CURATE_ALL_PAIRS_MAX 100 /* gap = -1: at most this many pairs sampled per prompt */
#define CURATE_TIE_EPS 1e-6     /* a source whose deviations span less than this ties */

/* ---- embedding sources ---------------------------------------------------------------- */
typedef enum { CURATE_SRC_FIELD = 0, CURATE_SRC_MODEL, CURATE_SRC_LEXICAL } CurateSourceKind;

typedef struct {
    CurateSourceKind kind;
    char spec[600]; /* as written ("field:style_embedding"): the output key "deviation/<spec>" */
    char arg[600];  /* the field name or the model directory; "" for lexical */
} CurateSource;

/* Parses "field:NAME", "model:DIR" or "lexical". TA_EINPUT naming the spec and the three
 * accepted forms otherwise (empty NAME/DIR included). */
int curate_source_parse(CurateSource *s, const char *spec, TaError *err);

/* ---- the math (pure functions; tested against hand-computed cases and ref_curate.py) --- */

/* The lexical embedding of a UTF-8 text, out (CURATE_LEXICAL_DIM), L2 norm 1. Features,
 * case-sensitive, each hashed with FNV-1a 64 of a one-byte tag + its UTF-8 bytes into
 * bucket h % CURATE_LEXICAL_DIM with count += 1:
 *   'c' character 3-grams (code points) of " " + text + " "  (so any text has one),
 *   'w' words (runs of non-whitespace; whitespace = space, \t, \n, \v, \f, \r),
 *   'b' word bigrams, the two words joined by the byte 0x1F.
 * Each group's count vector is L2-normalised on its own (so short texts are not all
 * 3-grams), the groups are summed and the sum is L2-normalised. */
void curate_lexical_embed(float *out, const char *text);

/* Mean cosine distance of each element of a multiset to the others: for the n >= 2 rows
 * idx[0..n) of emb (rows of dim floats; an index may repeat),
 *   dev[a] = 1/(n-1) sum_{b != a} (1 - cos(emb[idx[a]], emb[idx[b]])),
 * computed in double, each sum in the order b = 0..n-1; bitwise-identical rows are exactly 0
 * apart, and the result is rounded to a 1e-12 grid (floor(x * 1e12 + 0.5) / 1e12), so copies
 * of one response, and deviations equal in exact arithmetic, tie exactly instead of being
 * ordered by rounding noise. Rows must not be zero vectors (asserted: the loaders reject
 * them). */
void curate_deviation(double *dev, const float *emb, int dim, const int *idx, int n);

/* Weights of n responses from K deviation vectors dev (K, n), as in the header comment.
 * w (n) receives the weights; u (n, may be NULL) the geometric means u_i in [0, 1].
 * Returns 1 when the prompt is degenerate (every u_i = 0 with K >= 2), else 0. */
int curate_weights(double *w, double *u, const double *dev, int K, int n);

/* The seed of prompt i's TaRng: seed + 0x9E3779B97F4A7C15 * (i + 1) (mod 2^64). */
uint64_t curate_prompt_seed(uint64_t seed, size_t prompt);

typedef struct {
    int chosen, rejected; /* response indices within the prompt */
} CuratePair;

/* SEEDS 2.3 step 3, sample_pairs_with_gap, over n responses with scores (and texts, which
 * may be NULL):
 *   gap >= 0: avail = all; while |avail| >= 2: cand = pairs (i < j) of avail with
 *     score_i != score_j and |score_i - score_j| >= gap, enumerated i-major; if none,
 *     cand = the pairs with score_i != score_j (the fallback ignores the gap; *fallback is
 *     set to 1); if none, stop; take cand[ta_rng_below(rng, |cand|)], chosen = the higher
 *     score; remove both from avail. Pairs are disjoint, at most n / 2.
 *   gap == -1: every pair with different scores, or CURATE_ALL_PAIRS_MAX of them drawn
 *     without replacement (partial Fisher-Yates: for t < 100, swap cand[t] with
 *     cand[t + below(|cand| - t)]) when there are more; responses repeat across pairs.
 * Departure from the released script: two responses with byte-identical texts are never
 * paired (the preference loader rejects chosen == rejected). out must hold n / 2 pairs
 * (gap >= 0) or CURATE_ALL_PAIRS_MAX (gap == -1). Returns the number of pairs. */
int curate_sample_pairs(CuratePair *out, const double *scores, const char *const *texts, int n,
                        double gap, TaRng *rng, int *fallback);

/* A diversity criterion for DivPO: fills d[0..n) for the pool of responses idx[0..n)
 * (larger = more diverse). n may be 1. */
typedef int (*CurateDiversityFn)(double *d, const int *idx, int n, void *ctx, TaError *err);

/* DivPO as re-implemented by the DDPO authors (SEEDS 2.8) over n responses with scores:
 *   k = int(min(max(max_pairs, n * rho / 100), n / 2)),  m = min(max_pairs, k)
 *   order = responses by score descending, ties by index (a stable sort)
 *   High = order[0 .. k)                      (highest first)
 *   Low  = order[n-k .. n) reversed           (lowest first; disjoint from High)
 *   chosen   = the m responses of High with the largest criterion(High) (ties: earlier in High)
 *   rejected = the m responses of Low with the smallest criterion(Low)  (ties: earlier in Low)
 *   both lists shuffled with ta_rng_shuffle_u32 (chosen first), zipped into m pairs.
 * The criterion is evaluated inside each pool separately (deviation recomputed per pool).
 * out holds max_pairs pairs. Returns m (0 when n < 2), or -1 when div failed (err set). */
int curate_divpo_select(CuratePair *out, const double *scores, int n, double rho, int max_pairs,
                        CurateDiversityFn div, void *ctx, TaRng *rng, TaError *err);

/* ---- embeddings and log-probs of a multi-response dataset --------------------------------
 * The data is a DS_MULTI Dataset (data.h: the one multi-response reader), loaded without a
 * tokenizer; model: sources tokenize it with the model's tokenizer (dataset_tokenize), so
 * they take it non-const. Responses are numbered globally (DataRow.first + j). */

/* The embedding of every response from src: *emb (responses, *dim), malloc'd, caller
 * frees. tokenizer: the SentencePiece model for model: sources (NULL = DIR/tokenizer.model).
 * field: errors (TA_EINPUT, FILE:LINE, the response and the field): missing, not an array
 * of finite numbers, empty, a length other than the first vector's (whose line is named),
 * all zeros (no direction, so no cosine). model: errors name the directory. */
int curate_embed(Dataset *d, const CurateSource *src, const char *tokenizer, float **emb,
                 int *dim, TaError *err);

/* Sum log-probability of every response under the model in model_dir, *logp (responses)
 * malloc'd: S(y) = objective_sequence_logps of the row [BOS] prompt response [EOS] (data.h's
 * row convention with max_len = maxT + 1, max_prompt_len = maxT / 2, keep_end), i.e. the
 * response tokens and the EOS, the S every objective uses. Identical (prompt, response)
 * rows are computed once, so they get bit-identical values (ties stay ties). */
int curate_logprobs(Dataset *d, const char *model_dir, const char *tokenizer, double **logp,
                    TaError *err);

/* ---- the commands (called by `tinyalign curate ...`; usable from C) --------------------- */
/* Summaries go to opt->log when it is not NULL. Outputs are written atomically (OUT.tmp,
 * rename), so a failed run leaves no partial file. */

typedef struct {
    const char *in, *out;
    CurateSource sources[CURATE_MAX_SOURCES];
    int n_sources;         /* 0: field:embedding */
    const char *tokenizer; /* for model: sources; NULL = the model directory's */
    FILE *log;
} CurateDeviationOptions;

typedef struct {
    size_t prompts, responses;
    size_t skipped_single;  /* prompts with one response: written unchanged */
    size_t degenerate;      /* prompts whose weights are all 0 (see above) */
} CurateDeviationStats;

/* `curate deviation`: every line of in written to out (every field kept) with, on each
 * response, "deviation" (one source) or "deviation/<spec>" per source (raw d_i^k, over all
 * the prompt's responses) and "weight" added (replacing earlier "deviation",
 * "deviation/..." and "weight" fields). Prompts with one response are written unchanged. */
int curate_deviation_run(const CurateDeviationOptions *opt, CurateDeviationStats *st,
                         TaError *err);

typedef struct {
    const char *in, *out;
    CurateSource sources[CURATE_MAX_SOURCES];
    int n_sources;          /* 0: see weights_mode */
    int no_weights;         /* --source none: no weights, every pair gets weight 1 */
    const char *tokenizer;
    double gap;             /* >= 0, or -1 = all pairs (at most 100 per prompt); default 5 */
    uint64_t seed;          /* default 42 */
    int max_pairs_per_prompt; /* 0 = no cap; else keep the first N pairs drawn */
    int sort_with_score;    /* with the cap: keep the pairs with the highest chosen scores */
    double min_weight;      /* floor of the CHOSEN weight; < 0 = none (default -1) */
    FILE *log;
} CuratePairsOptions;

void curate_pairs_defaults(CuratePairsOptions *o);

typedef struct {
    size_t prompts, pairs;
    size_t skipped_single;   /* prompts with one response */
    size_t skipped_no_pair;  /* no two responses with different scores (and texts) */
    size_t fallback_prompts; /* the gap fallback was used at least once */
    size_t capped_prompts;   /* --max-pairs-per-prompt dropped pairs */
    size_t degenerate;       /* prompts whose weights are all 0 */
    size_t floored;          /* pairs whose chosen weight --min-weight raised */
    int weights_from;        /* 0 computed from sources, 1 the responses' "weight", 2 none */
} CuratePairsStats;

/* `curate pairs`: preference JSONL, one line per pair
 *   {"prompt", "chosen", "rejected", "weight", "chosen_score", "rejected_score", <the prompt
 *    row's own fields but those six>}
 * weight = the chosen's weight. Weights: with sources, computed per prompt over the
 * multiset of the responses in that prompt's (kept) pairs, as SEEDS 2.3 step 4 does;
 * without sources, the responses' "weight" fields when every response has one (e.g. from
 * `curate deviation`, i.e. over ALL responses: noted on the log), else the field:embedding
 * source; no_weights writes weight 1. Every response needs a "score": a missing one is an
 * error naming FILE:LINE and the response. */
int curate_pairs_run(const CuratePairsOptions *opt, CuratePairsStats *st, TaError *err);

typedef enum { CURATE_DIVPO_DEVIATION = 0, CURATE_DIVPO_LOGPROB } CurateDivpoCriterion;

typedef struct {
    const char *in, *out;
    CurateSource sources[CURATE_MAX_SOURCES];
    int n_sources;           /* criterion deviation; 0: field:embedding */
    const char *tokenizer;
    const char *model;       /* criterion logprob: D(y) = -S(y) under this model */
    CurateDivpoCriterion criterion;
    double rho;              /* percent, default 25 */
    int max_pairs;           /* default 2 */
    uint64_t seed;           /* default 42 */
    FILE *log;
} CurateDivpoOptions;

void curate_divpo_defaults(CurateDivpoOptions *o);

typedef struct {
    size_t prompts, pairs;
    size_t skipped_single;
    size_t dropped_equal_score; /* zipped pairs whose two scores are equal */
    size_t dropped_identical;   /* zipped pairs whose two texts are identical */
} CurateDivpoStats;

/* `curate divpo`: preference JSONL {"prompt", "chosen", "rejected", "chosen_score",
 * "rejected_score", <the prompt row's own fields but those and "weight">} (no weight:
 * plain DPO). Criterion deviation: u_i of the pool (the
 * normalised deviation of SEEDS 2.3, recomputed inside High and inside Low); logprob:
 * D(y) = -S(y), less likely = more diverse. Zipped pairs with equal scores or identical
 * texts are dropped (counted). Every response needs a "score". */
int curate_divpo_run(const CurateDivpoOptions *opt, CurateDivpoStats *st, TaError *err);

/* ---- curate best (ReST-style selection) ---------------------------------------------------
 * Per prompt, the responses ordered by score, highest first, ties by their order in the file
 * (earlier first; a stable sort), then: the first `top` of them (top > 0), keeping only those
 * with score >= threshold (has_threshold). unique: a text equal to one already selected for
 * the prompt is passed over (counted). Each selected response becomes one SFT row
 *   {"prompt": P, "completion": text, "weight"?: w, <score_field>: score,
 *    <the prompt row's own fields but prompt / completion / weight / score_field>}
 * in prompt order, then rank order. P is the row's "prompt", or its prompt_field (a string
 * field, e.g. "filled_prompt" from sample --template). w (weight_field) is the response's
 * field of that name (else the row's), a finite number >= 0. Bad input (TA_EINPUT, naming
 * FILE:LINE and responses[J]): a missing or non-numeric score, a bad weight or prompt field;
 * no selected row at all ("nothing written"). */
typedef struct {
    const char *in, *out;
    int top;                  /* >= 0; 0 = no cap (needs has_threshold). Default 1 */
    double threshold;
    int has_threshold;
    const char *score_field;  /* default "score" */
    const char *weight_field; /* NULL: no "weight" */
    const char *prompt_field; /* NULL: "prompt" */
    int unique;
    FILE *log;
} CurateBestOptions;

void curate_best_defaults(CurateBestOptions *o);

typedef struct {
    size_t prompts, responses, rows;
    size_t kept_prompts;      /* prompts with >= 1 row */
    size_t dropped_threshold; /* prompts with no response >= threshold */
    size_t skipped_duplicate; /* unique: repeated texts passed over */
    double score_sum;         /* over the rows */
} CurateBestStats;

int curate_best_run(const CurateBestOptions *opt, CurateBestStats *st, TaError *err);

/* ---- curate vote and curate dsweight (self-improvement filters) --------------------------
 * Self-improvement on a model's own chains of thought (Huang et al. 2022, arXiv 2210.11610)
 * and its distribution-shift filter IWSI (Jiang et al., AAAI 2025, arXiv 2408.09849):
 *   sample K answers per question -> curate vote (majority answer, consistent marks)
 *   -> curate dsweight (drop the samples a loss model trained on a small labelled valid set
 *   finds most shifted) -> SFT on the rows.
 * The exact rules are in src/curate/vote.c and src/curate/dsweight.c's header comments. */

/* The default answer regex: "The answer is N." with N an optionally signed number with
 * thousands commas and decimals ("The answer is -1,234.5." -> -1234.5); the first capture
 * group is the answer. */
#define CURATE_ANSWER_DEFAULT_RE "[Tt]he answer is[[:space:]]*\\$?(-?[0-9][0-9,]*(\\.[0-9]+)?)"

typedef struct {
    regex_t re;
    int compiled;
} CurateAnswerRe;

/* Compiles a POSIX extended regex (pattern NULL = the default). TA_EINPUT naming
 * --answer-regex when it does not compile or has no capture group. */
int curate_answer_compile(CurateAnswerRe *a, const char *pattern, TaError *err);
void curate_answer_free(CurateAnswerRe *a); /* safe on a zeroed struct */
/* The canonical form of an answer string s[0..n): blanks trimmed, commas removed, a
 * finite number in its shortest round-trip form, else the text. malloc'd; NULL when
 * nothing is left. */
char *curate_answer_canonical(const char *s, size_t n);
/* The first capture group of the LAST match in text, canonical; NULL when the regex does
 * not match (or the group did not take part / is blank). malloc'd. */
char *curate_answer_extract(const CurateAnswerRe *a, const char *text);
/* Majority over answers[0..n) (NULL = no answer): returns the index of the first response
 * carrying the majority answer (ties: the answer whose first occurrence is earliest), or -1
 * when no response has an answer. *count = its votes, *entropy = -sum p ln p over the shares
 * of the parsed answers (nats), *parsed = responses with an answer (each may be NULL). */
int curate_vote_majority(const char *const *answers, int n, int *count, double *entropy,
                         int *parsed);

typedef struct {
    const char *in, *out;
    const char *regex; /* NULL = CURATE_ANSWER_DEFAULT_RE */
    FILE *log;
} CurateVoteOptions;

typedef struct {
    size_t prompts, responses, parsed;
    size_t dropped_prompts; /* no response with an answer: not written */
    size_t kept_prompts, consistent;
    size_t with_gold, majority_correct, correct, consistent_correct;
} CurateVoteStats;

/* `curate vote`: every prompt with at least one answer, every field kept, each response
 * getting "answer" (canonical string, or null), "consistent" (answer == the majority) and,
 * when the row has a gold "answer", "correct"; the row getting "majority",
 * "majority_count", "parsed", "vote_entropy" and "vote_entropy_norm" (= vote_entropy /
 * ln(parsed); null when parsed = 1). TA_EINPUT: a bad regex, a bad file (FILE:LINE), no
 * answer anywhere (nothing written). */
int curate_vote_run(const CurateVoteOptions *opt, CurateVoteStats *st, TaError *err);

/* DS math (dsweight.c's header comment): w = clip(L_v / l, 0, 2), 0 when l <= 0 or
 * L_v <= 0; DS = w if w > 1 else min(1/w, 5) (5 at w = 0). */
double curate_ds_iw(double mean_valid_loss, double loss);
double curate_ds_extent(double w);
/* The keep threshold of n DS values for fraction k in (0, 1]: the ascending-sorted value at
 * index floor(n k); +INFINITY when k >= 1 or n = 0. Kept: DS < threshold. */
double curate_ds_threshold(const double *ds, size_t n, double k);
/* keep[0..n) = 1 for floor(n k) (n when k >= 1) of the n items, drawn uniformly without
 * replacement from a TaRng seeded with seed (a partial Fisher-Yates over 0..n-1: item
 * idx[t] for t < m after swapping idx[t] with idx[t + below(n - t)]). Returns the count. */
size_t curate_random_keep(uint8_t *keep, size_t n, double k, uint64_t seed);

typedef enum {
    CURATE_FILTER_DS = 0,      /* IWSI: the lowest-DS fraction keep of the consistent */
    CURATE_FILTER_VOTE,        /* LMSI: every consistent sample */
    CURATE_FILTER_GROUNDTRUTH, /* every sample whose answer is the gold one */
    CURATE_FILTER_ENTROPY,     /* consistent samples of prompts with vote_entropy_norm <= max */
    CURATE_FILTER_RANDOM,      /* floor(keep * n) of the n consistent, at random (seeded) */
} CurateFilter;
const char *curate_filter_name(CurateFilter f); /* "ds", "vote", ... */

typedef enum { CURATE_LOSS_FULL = 0, CURATE_LOSS_RESPONSE } CurateLossScope;

typedef struct {
    const char *in, *out;   /* in: curate vote's output */
    const char *model;      /* the loss model M_v; needed by ds (optional otherwise: l, w, DS
                             * are then written on every row) */
    const char *valid;      /* D_v: SFT rows {"prompt", "completion"}; with model */
    const char *tokenizer;  /* the data's tokenizer: must equal the loss model's (NULL: the
                             * model's own) */
    CurateFilter filter;    /* default ds */
    double keep;            /* ds, random: in (0, 1], default 0.79 */
    double max_entropy;     /* entropy */
    uint64_t seed;          /* random, default 42 */
    CurateLossScope scope;  /* default full (prompt + response, as the authors' code) */
    int write_all;          /* every response with weight 0 / 1 (else the kept only) */
    int batch_size;         /* rows per forward; 0 = the scorer's default */
    FILE *log;
} CurateDsweightOptions;

void curate_dsweight_defaults(CurateDsweightOptions *o);

typedef struct {
    size_t prompts, responses, consistent;
    size_t valid_rows, truncated;
    double mean_valid_loss;   /* L_v */
    size_t ranked, zero_w;    /* ds: population size, consistent samples with w = 0 */
    double threshold;         /* ds */
    size_t entropy_dropped_prompts;
    size_t kept, kept_correct, with_gold;
} CurateDsweightStats;

/* `curate dsweight`: SFT rows {"prompt", "completion", "weight": 1 | 0, "loss", "iw", "ds"
 * (with a model), "extracted" (the response's answer), "consistent", "correct"?, <the row's
 * own fields (the gold "answer", the vote's)>}, the kept samples only, or every response
 * (write_all). TA_EINPUT (naming the flag, FILE:LINE or the model): keep outside (0, 1],
 * entropy without a maximum, ds without model / valid, responses without the vote's marks,
 * groundtruth without gold, an empty or malformed valid set, a tokenizer that differs from
 * the loss model's, nothing kept (unless write_all). Written atomically. */
int curate_dsweight_run(const CurateDsweightOptions *o, CurateDsweightStats *st, TaError *err);

#endif
