/* data.h — what the trainer feeds the model: Batches, built from token shards
 * (pretraining) or from TRL-format JSONL datasets (SFT, preference, multi-response); the
 * row convention [BOS] prompt response [EOS] with its truncation (stated once, below);
 * and the one reader / writer of rows that keep the user's own fields (multi-response
 * files, prompt files) for sample, curate and score.
 *
 * Preference batches hold P pairs in 2P rows: rows [0, P) chosen, rows [P, 2P) rejected,
 * row i and row P + i are the same pair (same prompt, same truncation of the prompt).
 * Shuffling is by example, seeded, a new permutation per epoch derived from (seed, epoch),
 * so a DataCursor {epoch, pos} is all a checkpoint needs to resume the exact order.
 */
#ifndef TINYALIGN_DATA_H
#define TINYALIGN_DATA_H
#include <stddef.h>
#include <stdint.h>

#include "tinyalign/common.h"

typedef struct Tokenizer Tokenizer;

/* The loss terms a row feeds (Batch.feeds): all of them, or under objective.attribute the
 * NLL only or the KL only (e.g. corpus rows and rows sampled from the model: the method's
 * "prefixes from samples", Meng et al. 2024). */
typedef enum { ROW_FEEDS_ALL = 0, ROW_FEEDS_NLL = 1, ROW_FEEDS_KL = 2 } RowFeeds;

/* How a row [BOS] prompt response [EOS] of L tokens sits in a Batch (see the row
 * convention below): ROWS_LM holds the L-1 positions that have a next token (the EOS is
 * only a target); ROWS_SCORE also holds the last token as an input, at position
 * lengths[b] = L-1, where a reward model reads its scalar (T = the longest L). */
typedef enum { ROWS_LM = 0, ROWS_SCORE } RowLayout;

/* One micro-batch. All arrays are owned by the Batch (batch_alloc / batch_free) and sized
 * for max_rows x T; rows and T of the current content are in B and T. */
typedef struct {
    RowLayout layout;     /* set by the owner before filling; batch_alloc: ROWS_LM */
    int B, T;             /* rows in use, padded length in use */
    int max_rows, max_T;  /* allocation */
    int *tokens;          /* (B,T) input ids */
    int *targets;         /* (B,T) next-token ids, -1 where there is none (padding) */
    uint8_t *loss_mask;   /* (B,T) 1 where targets[t] is a completion token */
    int *lengths;         /* (B)   real tokens in the row (len(seq) - 1 positions have targets) */
    int n_pairs;          /* preference: P (B = 2P); 0 otherwise */
    float *weights;       /* (B)   per-row weight: preference -> the pair's "weight" (default
                           *       1), on both rows of a pair; sft -> the row's "weight"
                           *       (default 1); others 1 */
    float *margins;       /* (B)   preference: the pair's "margin" (default 0), on both rows;
                           *       others 0 (the reward model's Bradley-Terry margin) */
    int64_t *example_ids; /* (B)   index of each row's example in its dataset */
    float *labels;        /* (B)   per-row sequence label: a multi-response row's "score"
                           *       (NAN when the response has none); NAN for the other
                           *       sources (objective nado reads it as the 0/1 label C) */
    uint8_t *feeds;       /* (B)   which loss terms the row feeds (RowFeeds, from its
                           *       data.train source's "loss"): ROW_FEEDS_ALL (0, every
                           *       other source), ROW_FEEDS_NLL or ROW_FEEDS_KL (only
                           *       objective.attribute's NLL or KL term; the row's "weight"
                           *       scales the term it feeds) */
} Batch;

void batch_alloc(Batch *b, int max_rows, int max_T);
void batch_free(Batch *b); /* safe on a zeroed Batch */

/* Epoch + position in that epoch's permutation: the whole data order state. */
typedef struct {
    int64_t epoch; /* 0-based */
    int64_t pos;   /* next index into the epoch's permutation */
} DataCursor;

/* Fills perm (n) with the example order of `epoch`: identity when !shuffle, otherwise a
 * Fisher-Yates shuffle seeded from (seed, epoch). */
void data_epoch_permutation(uint32_t *perm, size_t n, uint64_t seed, int64_t epoch, int shuffle);

/* ---- token shards (pretraining) --------------------------------------------------------- */
/* All shards matching a glob (sorted by name) form one token stream, cut into windows of
 * T + 1 tokens at stride T (tokens = window[0..T), targets = window[1..T]). A validation
 * fraction takes the last windows of the stream. */
typedef struct TokenData TokenData;

/* Opens every shard matching glob_pattern (validated, see shard.h). vocab_size > 0 also
 * checks every shard's ids against it. val_fraction in [0, 0.5): hold out that share of
 * windows as validation (0 = none). Errors name the pattern or the shard. */
int token_data_open(TokenData **out, const char *glob_pattern, int T, double val_fraction,
                    int vocab_size, TaError *err);
void token_data_free(TokenData *d);
size_t token_data_num_windows(const TokenData *d, int split); /* split 0 train, 1 val */
uint64_t token_data_num_tokens(const TokenData *d);
int token_data_vocab_size(const TokenData *d);
/* Fills batch rows from windows window_ids[0..n) of split (0 train, 1 val) (ROWS_LM). */
void token_data_fill(const TokenData *d, int split, const uint32_t *window_ids, int n, Batch *b);

/* ---- the row convention (src/data/row.c: the one place it is written) -------------------
 * Everything that turns text into model rows goes through these functions: the JSONL
 * datasets, curate's model: features and logprob criterion, scorers, and generation
 * prompts. A (prompt, response) row is
 *   prompt_ids = encode(prompt), resp_ids = encode(response), each encoded on its own (the
 *   tokenizer adds no specials), then  seq = [BOS] prompt_ids resp_ids [EOS]
 *   with BOS only when the tokenizer has one; the tokenizer must have an EOS.
 * Truncation, in this order:
 *   1. prompt: when len([BOS] + prompt_ids) > max_prompt_len, prompt_ids is cut to
 *      max_prompt_len - (1 if BOS) tokens: keep_end keeps its last tokens (those next to
 *      the response), keep_start its first ones. BOS always stays in front. (TRL cuts the
 *      BOS away with the prompt's start in keep_end mode; we do not.) Every response of a
 *      prompt (the chosen and the rejected of a pair) shares the cut.
 *   2. response: when the whole row still exceeds max_len, resp_ids + [EOS] is cut at its
 *      end so the row is exactly max_len tokens; the EOS is then absent (the model is not
 *      taught to stop at a point where the text did not stop).
 *   It is an error when not one response token fits after step 1 (only possible when
 *   max_prompt_len >= max_len), and when the row has fewer than 2 tokens (nothing to
 *   predict).
 * A row in a Batch, for L = len(seq) and P = len([BOS] + kept prompt):
 *   tokens[t] = seq[t], targets[t] = seq[t+1] for t < L-1; tokens = pad and targets = -1
 *   for t >= L-1; loss_mask[t] = 1 iff P-1 <= t < L-1 (the target is a response token or
 *   the EOS); lengths = L-1.
 *   ROWS_SCORE (a reward model's rows) is the same with tokens[L-1] = seq[L-1]: the last
 *   token (the EOS, or the last response token of a cut row) is an input too, at position
 *   lengths = L-1, where the scalar head reads the row's reward.
 * A generation prompt is [BOS] prompt_ids, never cut (row_encode_generation_prompt).
 * Error messages of these functions name the field but not the file: callers prefix
 * "FILE:LINE: ". */
typedef enum { TRUNC_KEEP_END = 0, TRUNC_KEEP_START } TruncationMode;

typedef struct {
    int max_len;         /* max tokens of a whole row (BOS + prompt + response + EOS), >= 2 */
    int max_prompt_len;  /* max prompt tokens (BOS included), >= 1 */
    TruncationMode truncation_mode; /* which part of an over-long prompt to keep */
} DatasetOptions;

/* The tokenizer and the options of one tokenization. */
typedef struct {
    const Tokenizer *tok; /* borrowed */
    DatasetOptions opt;
    int bos, eos, pad;    /* bos -1 when the tokenizer has none; pad = its pad, else EOS */
} RowFormat;

/* Checks the options (max_len >= 2, max_prompt_len >= 1, a known mode) and that the
 * tokenizer has an EOS. TA_EINPUT with a message naming the option otherwise. */
int row_format_init(RowFormat *f, const Tokenizer *tok, const DatasetOptions *opt, TaError *err);

/* A prompt after step 1. */
typedef struct {
    int *ids;     /* (len) [BOS] + the kept prompt tokens; malloc'd (row_prompt_free) */
    int len;      /* P */
    int full_len; /* BOS + every prompt token: > len when the prompt was cut */
} RowPrompt;

/* Encodes and cuts a prompt. TA_EINPUT ('field "prompt": ...') when the tokenizer rejects
 * it. */
int row_prompt_encode(const RowFormat *f, const char *prompt, RowPrompt *p, TaError *err);
void row_prompt_free(RowPrompt *p); /* safe on a zeroed struct */

/* Row [BOS] prompt response [EOS] into seq (room for f->opt.max_len ints), step 2
 * applied: *len = L, *cut = 1 when the response was cut. field names the response in
 * messages ("completion", "responses[2].text"). TA_EINPUT when the tokenizer rejects the
 * response, when no response token fits, or when L < 2. */
int row_encode(const RowFormat *f, const RowPrompt *p, const char *response, const char *field,
               int *seq, int *len, int *cut, TaError *err);

/* Writes an encoded row into batch row b_row (positions up to b->T, which the caller set,
 * >= len - 1, or >= len for ROWS_SCORE), padded with pad as above, in b->layout. */
void batch_set_row(Batch *b, int b_row, const int *seq, int len, int prompt_len, int pad);

/* The generation prompt [BOS] + encode(prompt) (BOS only when the tokenizer has one),
 * never cut: *ids malloc'd (caller frees), *n in [1, max_seq_len - 1]. TA_EINPUT when the
 * tokenizer rejects the text, when the prompt has no token (empty, and no BOS), or when it
 * leaves no room to generate ("the prompt has N tokens (BOS included) but the model's
 * max_seq_len is M ..."). max_seq_len <= 0 skips the length check. */
int row_encode_generation_prompt(const Tokenizer *tok, const char *prompt, int max_seq_len,
                                 int **ids, int *n, TaError *err);

/* ---- JSONL datasets (TRL field names) ---------------------------------------------------
 * One JSON object per line; blank lines are skipped and counted. Kinds:
 *   DS_SFT         {"prompt": str, "completion": str, "weight"?: number >= 0}
 *                                                                  (other fields ignored)
 *   DS_PREFERENCE  {"prompt": str, "chosen": str, "rejected": str, "weight"?: number >= 0,
 *                   "margin"?: number}
 *   DS_MULTI       {"prompt": str, "responses": [{"text": str, "score"?: number,
 *                   "embedding"?: [number, ...], ...}, ...], ...}: every (prompt, response)
 *                   pair is one SFT example, in file order
 *   DS_PROMPTS     {"prompt": str, ...}: prompts to generate from (the prompt may be empty);
 *                  never tokenized here (row_encode_generation_prompt does that).
 * DS_MULTI and DS_PROMPTS keep what the user put in a line: every member of the row other
 * than "prompt" and "responses", and every member of a response other than "text"
 * ("score" included), stays as written (DataField: the member's JSON text, byte for byte),
 * in file order, for the writers below to splice into their output. */
typedef enum { DS_SFT = 0, DS_PREFERENCE, DS_MULTI, DS_PROMPTS } DatasetKind;

typedef struct Dataset Dataset;

/* Reads a whole JSONL file and, when tok is not NULL, tokenizes it (opt: the row
 * convention above). tok == NULL (and opt == NULL) is allowed for DS_MULTI (text only:
 * dataset_tokenize later, or never) and required for DS_PROMPTS. Errors (exit status 2
 * material): not JSON (file:line:column), missing / mistyped field (its name), empty
 * prompt (except DS_PROMPTS) or response, invalid UTF-8, identical chosen and rejected, a
 * negative or non-numeric weight, a non-finite score, a malformed embedding or one whose
 * length differs from the file's first, a response that does not fit in
 * max_len after the prompt is cut, an empty file ("FILE: no examples"): TA_EINPUT with one
 * message naming file and line. */
int dataset_load(Dataset **out, const char *path, DatasetKind kind, const Tokenizer *tok,
                 const DatasetOptions *opt, TaError *err);
/* The same over several files of one kind, read in order into ONE dataset (a training
 * mixture): examples are numbered across the files, file s holding examples
 * [dataset_source_first(d, s), + dataset_source_size(d, s)). Every file must hold at least
 * one example; errors name the file and line. n_paths >= 1 (at most DATA_MAX_SOURCES). */
#define DATA_MAX_SOURCES 16
int dataset_load_files(Dataset **out, const char *const *paths, int n_paths, DatasetKind kind,
                       const Tokenizer *tok, const DatasetOptions *opt, TaError *err);
int dataset_num_sources(const Dataset *d);
size_t dataset_source_first(const Dataset *d, int s);
size_t dataset_source_size(const Dataset *d, int s);
const char *dataset_source_path(const Dataset *d, int s);
int dataset_example_source(const Dataset *d, size_t i); /* the file example i came from */
/* The loss terms file s's rows feed (dataset_fill copies it to Batch.feeds); every file
 * starts at ROW_FEEDS_ALL. */
void dataset_set_source_feeds(Dataset *d, int s, RowFeeds feeds);
void dataset_free(Dataset *d);
/* (Re)tokenizes a DS_MULTI dataset, replacing rows an earlier tokenization made: e.g. a
 * model's own tokenizer and limits for scoring. Errors as dataset_load's, naming file:line. */
int dataset_tokenize(Dataset *d, const Tokenizer *tok, const DatasetOptions *opt, TaError *err);
size_t dataset_size(const Dataset *d); /* examples: pairs (preference), responses (multi),
                                        * prompts (prompts) */
const char *dataset_path(const Dataset *d); /* the (first) file */
/* How many examples had their prompt or response truncated (printed and logged). */
size_t dataset_num_truncated(const Dataset *d);
/* Rows one example occupies in a batch: 1 (sft, multi), 2 (preference). */
int dataset_rows_per_example(const Dataset *d);
/* Builds a batch from examples ids[0..n) of a tokenized dataset: SFT and multi -> n rows;
 * preference -> 2n rows in the pair layout above, in b->layout. T = the longest row's
 * positions (ROWS_LM: L-1 <= max_len - 1; ROWS_SCORE: L <= max_len). */
void dataset_fill(const Dataset *d, const uint32_t *ids, int n, Batch *b);
/* L = the tokens of example i's row (its first row for preference), for sizing batches. */
int dataset_example_len(const Dataset *d, size_t i);
/* A stable hash of the dataset content + tokenization settings (for the reference
 * log-prob cache key). */
uint64_t dataset_hash(const Dataset *d);

/* Which format the dataset was loaded as, and the 1-based line of example i (for messages;
 * the file is dataset_source_path(d, dataset_example_source(d, i))). */
DatasetKind dataset_kind(const Dataset *d);
long dataset_line(const Dataset *d, size_t i);

/* Example weights (DS_PREFERENCE: the pair's; DS_SFT: the row's): the weight of example i
 * (1 when its line has none), and how many lines carry a "weight" field. */
float dataset_weight(const Dataset *d, size_t i);
size_t dataset_num_weighted(const Dataset *d);
/* Preference margins: the "margin" of pair i (0 when its line has none; 0 for other kinds),
 * and how many lines carry one. */
float dataset_margin(const Dataset *d, size_t i);
size_t dataset_num_margins(const Dataset *d);

/* ---- chosen-weight summary (DDPO / DORPO) ------------------------------------------------
 * Accumulated one weight at a time from a zeroed struct (pair_weights_add), then described
 * in one line: "chosen weight 0 in Z of N pairs (x%), weights in [min, max]". Pairs of
 * weight 0 contribute nothing to a DDPO loss; min == max means the weighting favours no
 * pair (the run equals DPO / ORPO). Used by `curate pairs` and by `train`. */
typedef struct {
    size_t pairs, zero; /* weights seen, weights exactly 0 */
    double min, max;
} PairWeightStats;
void pair_weights_add(PairWeightStats *s, double w);
void pair_weights_describe(const PairWeightStats *s, char *buf, size_t cap);

/* ---- rows with their own fields (DS_MULTI, DS_PROMPTS) ----------------------------------- */
/* A member of a JSONL object that the reader did not interpret, kept as written. */
typedef struct {
    const char *key;   /* the member's name, unescaped */
    const char *json;  /* the member as JSON text: "name":value (the name and the value byte
                        * for byte as in the file, joined by one ':') */
    const char *value; /* the value's JSON text (the end of json) */
} DataField;

typedef struct {
    const DataField *f; /* (n) in file order */
    int n;
} DataFields;

/* Row i (a prompt line) of a DS_MULTI or DS_PROMPTS dataset. Strings are owned by the
 * Dataset. Responses are numbered globally: row i owns [first, first + n_responses), and
 * the global index of a response is also its example index for dataset_fill. */
typedef struct {
    const char *prompt;
    long line;          /* 1-based line in the file */
    size_t first;       /* global index of the first response */
    int n_responses;    /* 0 for DS_PROMPTS */
    DataFields extra;   /* every member but "prompt" and "responses" */
    int n_before;       /* how many of them came before "responses" (writers keep the order) */
} DataRow;

typedef struct {
    const char *text;
    double score;            /* 0 when none */
    int has_score;
    const float *embedding;  /* "embedding" (read and checked at load: a non-empty array of
                              * finite numbers, one length per file), or NULL */
    int embedding_dim;       /* 0 when none */
    DataFields extra;        /* every member but "text" ("score" and "embedding" too, as
                              * written) */
} DataResponse;

size_t dataset_num_rows(const Dataset *d); /* prompts */
void dataset_row(const Dataset *d, size_t i, DataRow *out);
void dataset_response(const Dataset *d, size_t r, DataResponse *out); /* global index */

/* The field named key (the first one when the line repeats it), or NULL. */
const DataField *data_fields_find(const DataFields *f, const char *key);
/* A field's value as a finite number: TA_OK, or TA_EINPUT (message: 'field "KEY" must be a
 * finite number, found ...'). */
int data_field_number(const DataField *f, double *out, TaError *err);
/* A field's value as a JSON boolean: TA_OK with *out 0 / 1, or TA_EINPUT (message: 'field
 * "KEY" must be a boolean (true or false), found ...'). */
int data_field_bool(const DataField *f, int *out, TaError *err);
/* A field's value as text: a string's content (unescaped), else the value's JSON text.
 * Returns a malloc'd string (caller frees). */
char *data_field_text(const DataField *f);

/* The vector field `key` of every response of a DS_MULTI dataset: *out (responses, *dim)
 * malloc'd (caller frees). TA_EINPUT naming FILE:LINE and responses[j] when a response
 * lacks it, or it is not a non-empty array of finite float numbers, or its length differs
 * from the first one's. */
int dataset_vectors(const Dataset *d, const char *key, float **out, int *dim, TaError *err);

/* ---- writing rows (JSONL output that keeps the user's fields) ----------------------------
 * Writers build a line in a TaBuf; keys in `skip` (NULL-terminated; an entry ending in '*'
 * drops every key with that prefix) are left out of the kept fields, so a writer that sets
 * a field itself ("weight", "responses") replaces the user's. */
void jsonl_put_string(TaBuf *b, const char *s); /* a JSON string literal */
void jsonl_put_number(TaBuf *b, double v);      /* cJSON's format: "%d" for integers, else
                                                 * the shortest of %.15g / %.17g that
                                                 * reads back the same double */
/* Appends ",<json>" for every field of f not in skip. */
void jsonl_put_fields(TaBuf *b, const DataFields *f, const char *const *skip);
/* {"prompt":P,<the row's fields before "responses">,"responses":[   — the caller writes
 * the response objects, then jsonl_put_row_end. */
void jsonl_put_row_start(TaBuf *b, const DataRow *r, const char *const *skip);
/* ],<the row's other fields>}\n */
void jsonl_put_row_end(TaBuf *b, const DataRow *r, const char *const *skip);
/* {"text":T,<the response's fields not in skip>   — the caller adds its fields and '}'. */
void jsonl_put_response_start(TaBuf *b, const DataResponse *r, const char *const *skip);

#endif
