/* curate_impl.h — internal to src/curate: helpers shared by the curate files. Not a public
 * header. */
#ifndef TINYALIGN_CURATE_IMPL_H
#define TINYALIGN_CURATE_IMPL_H
#include "tinyalign/curate.h"
#include "tinyalign/data.h"

/* model: features of every response (model_features.c): the mean-pooled ln_f output over
 * the response positions into *emb (responses, *dim = C) when emb is not NULL, and
 * S(y) (curate_logprobs) into *logp (responses) when logp is not NULL. Both malloc'd.
 * Tokenizes d with the model's tokenizer and limits. Errors name the model directory /
 * tokenizer, or FILE:LINE. */
int curate_model_features(Dataset *d, const char *model_dir, const char *tokenizer, float **emb,
                          int *dim, double **logp, TaError *err);

/* The preference line every pair-making command writes:
 *   curate_pair_begin: {"prompt":P,"chosen":C,"rejected":R[,"weight":W],"chosen_score":CS,
 *                      "rejected_score":RS         (P = the row's prompt)
 *   then the caller's own members (",\"key\":value"), then
 *   curate_pair_end:   ,<the prompt row's own fields but those above and `more`
 *                      (NULL-terminated, may be NULL)>}\n
 * so a row field named like an output field is replaced, never duplicated. */
void curate_pair_begin(TaBuf *b, const DataRow *row, const char *chosen, const char *rejected,
                       int with_weight, double weight, double cs, double rs);
void curate_pair_end(TaBuf *b, const DataRow *row, const char *const *more);

#endif
