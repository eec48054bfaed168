/* tokenizer.h — a C API over SentencePiece (libsentencepiece), implemented in
 * src/tokenizer/spm_wrap.cc, the only C++ file in the engine.
 *
 * What it offers: load a .model file, encode text to ids, decode ids to text, look up
 * pieces and special ids, and train a new model (SentencePieceTrainer). Encoding and
 * decoding are exactly SentencePiece's (tests compare every id with python3-sentencepiece).
 * What it does not: add BOS/EOS to encodings (callers do that, e.g. `tokenize` appends EOS
 * after every document), sampling/n-best encodings, or any tokenizer other than
 * SentencePiece.
 *
 * Errors come back as a status (TA_OK, TA_EINPUT, TA_ERUNTIME) plus a message in TaError;
 * no C++ exception ever crosses into C. A Tokenizer is read-only after loading, so
 * encode/decode may be called from several threads at once.
 */
#ifndef TINYALIGN_TOKENIZER_H
#define TINYALIGN_TOKENIZER_H

#include <stddef.h>

#include "tinyalign/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct Tokenizer Tokenizer; /* opaque */

/* Loads a SentencePiece model. model_path is a .model file, or a directory holding
 * tokenizer.model (a checkpoint directory). On success *out is a new Tokenizer (free with
 * tokenizer_free) and TA_OK is returned; on failure *out is NULL and TA_EINPUT is returned
 * with err naming the file and SentencePiece's reason. */
int tokenizer_load(Tokenizer **out, const char *model_path, TaError *err);

/* Frees a tokenizer; NULL is allowed. */
void tokenizer_free(Tokenizer *tok);

/* The path the tokenizer was loaded from (the .model file itself). Owned by tok. */
const char *tokenizer_path(const Tokenizer *tok);

/* Encodes len bytes of text (need not be NUL-terminated; UTF-8 expected) into ids.
 * On TA_OK, *ids is a malloc'd array of *n ids (never NULL, even when *n == 0) that the
 * caller frees with free(). On failure *ids is NULL, *n is 0 and err is filled.
 * No BOS/EOS is added. */
int tokenizer_encode(const Tokenizer *tok, const char *text, size_t len, int **ids, int *n,
                     TaError *err);

/* Decodes n ids into text. On TA_OK, *text is a malloc'd NUL-terminated string that the
 * caller frees with free(). An id outside [0, vocab_size) is TA_EINPUT. Control pieces
 * (BOS/EOS/PAD) decode to nothing, as in SentencePiece. */
int tokenizer_decode(const Tokenizer *tok, const int *ids, int n, char **text, TaError *err);

/* The text a continuation's decoding loses when its ids are decoded on their own: writes
 * to out (cap bytes, NUL-terminated) what decoding first_id after the context adds in
 * front of what decoding first_id alone gives. SentencePiece drops the word-boundary
 * space ("\xe2\x96\x81") of the first piece it decodes (the dummy prefix), so a completion
 * decoded alone loses the space between the prompt and its first word: for the pieces
 * "\xe2\x96\x81a" after "... is" this gives " ", for "fe" after "... li" it gives "". So
 * decode(context) + out + decode(ids) == decode(context + ids) for a completion ids whose
 * first id is first_id (up to how byte-fallback pieces split a character at the
 * boundary, where out is ""). context holds n_ctx ids (BOS included or not; n_ctx may be
 * 0: then out is ""). Returns TA_OK, or TA_EINPUT for an id outside the vocabulary. */
int tokenizer_continuation_prefix(const Tokenizer *tok, const int *context, int n_ctx,
                                  int first_id, char *out, size_t cap, TaError *err);

/* The number of pieces (ids are 0 .. vocab_size-1). */
int tokenizer_vocab_size(const Tokenizer *tok);

/* The piece of an id (e.g. "▁the", "<0x0A>", "</s>"), owned by tok; NULL when id is out
 * of range. */
const char *tokenizer_id_to_piece(const Tokenizer *tok, int id);

/* The id of a piece, or -1 when the piece is not in the vocabulary (unlike SentencePiece,
 * which answers unk_id). */
int tokenizer_piece_to_id(const Tokenizer *tok, const char *piece);

/* Special ids; -1 when the model has none (SentencePiece always has unk). */
int tokenizer_bos_id(const Tokenizer *tok);
int tokenizer_eos_id(const Tokenizer *tok);
int tokenizer_pad_id(const Tokenizer *tok);
int tokenizer_unk_id(const Tokenizer *tok);

/* ---- training ----------------------------------------------------------------------- */
typedef struct {
    const char *input;        /* text file, one training sentence per line */
    const char *model_prefix; /* writes PREFIX.model and PREFIX.vocab */
    int vocab_size;           /* > 0; with byte_fallback it must exceed 256 + specials */
    const char *model_type;   /* "bpe" or "unigram" */
    int byte_fallback;        /* 1: unknown characters become <0xNN> byte pieces, never unk */
    double character_coverage; /* fraction of characters covered by pieces (spm: 0.9995) */
    /* "identity" keeps the text as is (Llama-style; decode(encode(s)) == s), "nmt_nfkc"
     * is SentencePiece's default NFKC normalisation. */
    const char *normalization;
    int remove_extra_whitespaces; /* 1: collapse whitespace runs (spm default), lossy */
    int split_digits;             /* 1: every digit is its own piece */
    const char *user_defined_symbols; /* comma-separated pieces always kept whole, or NULL */
    int unk_id, bos_id, eos_id, pad_id; /* -1 disables bos/eos/pad (unk is required) */
    int num_threads;          /* trainer threads */
    unsigned seed;            /* SentencePiece's random generator seed */
    int verbose;              /* 0: silence SentencePiece's log on stderr */
} TokenizerTrainOptions;

/* Fills the defaults: model_type "bpe", byte_fallback 1, character_coverage 0.9995,
 * normalization "identity", remove_extra_whitespaces 0, split_digits 0, unk 0, bos 1,
 * eos 2, pad 3, num_threads 1, seed 1, verbose 0; input, model_prefix NULL,
 * vocab_size 0. */
void tokenizer_train_defaults(TokenizerTrainOptions *opt);

/* Trains a model from opt->input and writes PREFIX.model / PREFIX.vocab. Training reads
 * every line (no sampling), so the same input and options give the same model.
 * Returns TA_OK, or TA_EINPUT with err holding SentencePiece's reason (missing input,
 * vocab too large for the corpus, bad option ...). */
int tokenizer_train(const TokenizerTrainOptions *opt, TaError *err);

#ifdef __cplusplus
}
#endif

#endif
