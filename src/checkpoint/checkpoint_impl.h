/* checkpoint_impl.h — between checkpoint.c (directories, pointers, save, load) and
 * state.c (the training state in state.json, and state.sum, its checksum). Not public. */
#ifndef TINYALIGN_CHECKPOINT_IMPL_H
#define TINYALIGN_CHECKPOINT_IMPL_H
#include <cJSON.h>

#include "tinyalign/checkpoint.h"

/* train_state as a JSON object (free with cJSON_Delete). */
cJSON *state_to_json(const TrainState *s);

/* Reads train_state (o may be NULL: missing). Every number must have its type and lie in
 * its range (integers: no fraction, 0 <= step, epoch, pos <= 2^53, -1 <= best_step <= step;
 * rng: four 16-digit hex words, not all zero; best_val a number or inf; ...). TA_EINPUT
 * naming file and "train_state.FIELD", what was found and what was expected. */
int state_from_json(const cJSON *o, const char *file, TrainState *s, TaError *err);

/* The text of state.sum for state.json's bytes text[0..len) and their parsed tree
 * (malloc'd; *out_len its length). */
char *state_sum_text(const char *text, size_t len, const cJSON *tree, size_t *out_len);

/* Checks state.json (its bytes text[0..len) and, when it parsed, tree) against
 * dir/state.sum. TA_OK when they match; TA_EINPUT naming state.json and the first field
 * whose value changed (or "damaged" when state.json is no longer JSON, or state.sum when
 * that file is the damaged one, or missing). */
int state_sum_verify(const char *dir, const char *text, size_t len, const cJSON *tree,
                     TaError *err);

#endif
