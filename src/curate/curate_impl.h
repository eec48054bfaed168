/* curate_impl.h — internal to src/curate: the CurateSet layout and helpers shared by the
 * curate files. Not a public header (cJSON stays inside the readers and writers). */
#ifndef TINYALIGN_CURATE_IMPL_H
#define TINYALIGN_CURATE_IMPL_H
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tinyalign/curate.h"
#include "tinyalign/data.h"

struct CurateSet {
    char *path;            /* the file (or "dataset") */
    const Dataset *ds;     /* set when built from a Dataset (borrowed), else NULL */
    size_t n_prompts, n_resps, cap_prompts, cap_resps;
    /* per prompt */
    const char **prompt;   /* (n_prompts) strings inside obj[i] or the Dataset */
    long *line;            /* (n_prompts) 1-based source line */
    size_t *first;         /* (n_prompts) global index of the first response */
    int *count;            /* (n_prompts) responses */
    cJSON **obj;           /* (n_prompts) the parsed line (owned); NULL for a Dataset view */
    /* per response */
    const char **text;     /* (n_resps) */
    double *score;         /* (n_resps) 0 when none */
    uint8_t *has_score;    /* (n_resps) */
    cJSON **resp_obj;      /* (n_resps) the response object inside obj; NULL for a Dataset */
};

/* Prompt index and in-prompt index of global response r. */
void curate_set_locate(const CurateSet *s, size_t r, size_t *prompt, int *j);

/* model: features of every response (model_features.c): the mean-pooled ln_f output over
 * the response positions into *emb (n_resps, *dim = C) when emb is not NULL, and the sum
 * log-prob of the response tokens + EOS into *logp (n_resps) when logp is not NULL. Both
 * malloc'd. Errors name the model directory / tokenizer. */
int curate_model_features(const CurateSet *s, const char *model_dir, const char *tokenizer,
                          float **emb, int *dim, double **logp, TaError *err);

#endif
