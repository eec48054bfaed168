/* data.h — what the trainer feeds the model: Batches, built from token shards
 * (pretraining) or from TRL-format JSONL datasets (SFT, preference, multi-response).
 *
 * Sequence convention for JSONL examples (documented in the README):
 *   seq = [BOS] prompt_ids completion_ids [EOS]           (BOS only if the tokenizer has one)
 *   tokens[t] = seq[t], targets[t] = seq[t+1] for t < len(seq) - 1, -1 beyond (padding)
 *   loss_mask[t] = 1 iff targets[t] is a completion token (the EOS included), so prompt
 *   and padding never count. Padding tokens are the pad id (or EOS, or 0).
 * Preference batches hold P pairs in 2P rows: rows [0, P) chosen, rows [P, 2P) rejected,
 * row i and row P + i are the same pair (same prompt, same truncation of the prompt).
 *
 * Shuffling is by example, seeded, a new permutation per epoch derived from (seed, epoch),
 * so a DataCursor {epoch, pos} is all a checkpoint needs to resume the exact order.
 */
#ifndef TINYALIGN_DATA_H
#define TINYALIGN_DATA_H
#include <stddef.h>
#include <stdint.h>

#include "tinyalign/common.h"

typedef struct Tokenizer Tokenizer;

/* One micro-batch. All arrays are owned by the Batch (batch_alloc / batch_free) and sized
 * for max_rows x T; rows and T of the current content are in B and T. */
typedef struct {
    int B, T;             /* rows in use, padded length in use */
    int max_rows, max_T;  /* allocation */
    int *tokens;          /* (B,T) input ids */
    int *targets;         /* (B,T) next-token ids, -1 where there is none (padding) */
    uint8_t *loss_mask;   /* (B,T) 1 where targets[t] is a completion token */
    int *lengths;         /* (B)   real tokens in the row (len(seq) - 1 positions have targets) */
    int n_pairs;          /* preference: P (B = 2P); 0 otherwise */
    float *weights;       /* (B)   per-row weight: preference -> the pair's "weight" (default
                           *       1), on both rows of a pair; others 1 */
    int64_t *example_ids; /* (B)   index of each row's example in its dataset */
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
/* Fills batch rows from windows window_ids[0..n) of split (0 train, 1 val). */
void token_data_fill(const TokenData *d, int split, const uint32_t *window_ids, int n, Batch *b);

/* ---- JSONL datasets (TRL field names) --------------------------------------------------- */
typedef enum { DS_SFT = 0, DS_PREFERENCE, DS_MULTI } DatasetKind;
typedef enum { TRUNC_KEEP_END = 0, TRUNC_KEEP_START } TruncationMode;

typedef struct {
    int max_len;         /* max tokens of a whole sequence (BOS + prompt + completion + EOS) */
    int max_prompt_len;  /* max prompt tokens (BOS included) */
    TruncationMode truncation_mode; /* which part of an over-long prompt to keep */
} DatasetOptions;

typedef struct Dataset Dataset;

/* Reads and tokenizes a whole JSONL file. Errors (exit status 2 material): not JSON
 * (file:line:column), missing / mistyped field (its name), empty prompt or response,
 * invalid UTF-8, identical chosen and rejected, a negative or non-numeric weight, a
 * response that does not fit in max_len after the prompt is cut, an empty file: TA_EINPUT
 * with a message naming file and line. */
int dataset_load(Dataset **out, const char *path, DatasetKind kind, const Tokenizer *tok,
                 const DatasetOptions *opt, TaError *err);
void dataset_free(Dataset *d);
size_t dataset_size(const Dataset *d); /* examples (pairs for preference) */
/* How many examples had their prompt or response truncated (printed and logged). */
size_t dataset_num_truncated(const Dataset *d);
/* Rows one example occupies in a batch: 1 (sft), 2 (preference). */
int dataset_rows_per_example(const Dataset *d);
/* Builds a batch from examples ids[0..n): SFT -> n rows; preference -> 2n rows in the
 * pair layout above. T = the longest row (<= max_len - 1). */
void dataset_fill(const Dataset *d, const uint32_t *ids, int n, Batch *b);
/* A stable hash of the dataset content + tokenization settings (for the reference
 * log-prob cache key). */
uint64_t dataset_hash(const Dataset *d);

/* Which format the dataset was loaded as, and the 1-based line of example i (for messages). */
DatasetKind dataset_kind(const Dataset *d);
long dataset_line(const Dataset *d, size_t i);

/* Preference weights (DS_PREFERENCE): the weight of pair i (1 when its line has none), and
 * how many lines carry a "weight" field. */
float dataset_weight(const Dataset *d, size_t i);
size_t dataset_num_weighted(const Dataset *d);

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

/* ---- multi-response datasets (DS_MULTI) ------------------------------------------------
 * {"prompt": str, "responses": [{"text": str, "score"?: number, "embedding"?: [number]}]}
 * For dataset_fill / dataset_size every (prompt, response) pair is one SFT example, in file
 * order (prompt 0's responses first). The prompts, responses, scores and embeddings stay
 * accessible as loaded for the curate commands. dataset_load accepts tok == NULL (and opt
 * == NULL) for DS_MULTI only: the text is kept but nothing is tokenized, so dataset_fill
 * must not be called and dataset_num_truncated is 0. Strings are NUL-terminated, owned by
 * the Dataset. Every embedding in one file has the same length. */
size_t dataset_multi_num_prompts(const Dataset *d);
const char *dataset_multi_prompt(const Dataset *d, size_t i);
int dataset_multi_num_responses(const Dataset *d, size_t i);
/* Response j of prompt i: its text; its score and *has_score = 1, or 0 and 0 when it has
 * none; its embedding and length, or NULL and 0. Any out-pointer may be NULL. */
void dataset_multi_response(const Dataset *d, size_t i, int j, const char **text,
                            double *score, int *has_score, const float **emb, int *emb_dim);
/* The example index (for dataset_fill) of response j of prompt i. */
size_t dataset_multi_example(const Dataset *d, size_t i, int j);
/* The embedding length shared by the file's embeddings; 0 when none has one. */
int dataset_multi_embedding_dim(const Dataset *d);

#endif
