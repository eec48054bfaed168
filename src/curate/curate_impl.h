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

#endif
