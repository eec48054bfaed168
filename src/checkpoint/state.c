/* state.c — the training state of a checkpoint: train_state in state.json (written,
 * read with every number type- and range-checked), state.sum (the checksum that covers
 * state.json), and the checks of a state against the run it resumes
 * (checkpoint_check_state). See include/tinyalign/checkpoint.h for the threat model.
 *
 * state.sum, a text file beside state.json in the step directory:
 *   tinyalign-state-sum 1
 *   state.json <bytes> <crc32>          the whole file
 *   <path> <crc32>                      one line per value of state.json, in file order:
 *   ...                                   train_state.pos, config.optim.lr, files.x.crc32 ...
 *   end <crc32>                         CRC32 of every byte above this line
 * The per-value lines let a mismatch name the value that changed; the last line catches
 * damage to state.sum itself. CRC32 is an error-detecting code, not a signature: whoever
 * recomputes these lines can change the state undetected (the range checks below still
 * hold then, so a forged state can only describe another well-defined run).
 * Not here: the other files' checksums (listed inside state.json, checked by
 * checkpoint.c), weights, directories.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_impl.h"

#define SUM_MAGIC "tinyalign-state-sum 1"
#define MAX_INT53 9007199254740992.0 /* 2^53: every integer up to it is exact in a double */

/* ---- train_state <-> JSON ---------------------------------------------------------------- */
cJSON *state_to_json(const TrainState *s) {
    cJSON *o = cJSON_CreateObject();
    char buf[64];
    cJSON_AddNumberToObject(o, "step", (double)s->step);
    cJSON_AddNumberToObject(o, "epoch", (double)s->cursor.epoch);
    cJSON_AddNumberToObject(o, "pos", (double)s->cursor.pos);
    if (s->n_more_cursors > 0) { /* a training mixture: every file's cursor, first one too */
        cJSON *src = cJSON_AddArrayToObject(o, "sources");
        for (int i = 0; i <= s->n_more_cursors; i++) {
            const DataCursor *c = i ? &s->more_cursors[i - 1] : &s->cursor;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "epoch", (double)c->epoch);
            cJSON_AddNumberToObject(e, "pos", (double)c->pos);
            cJSON_AddItemToArray(src, e);
        }
    }
    cJSON *r = cJSON_AddArrayToObject(o, "rng");
    for (int i = 0; i < 4; i++) {
        snprintf(buf, sizeof buf, "%016llx", (unsigned long long)s->rng.s[i]);
        cJSON_AddItemToArray(r, cJSON_CreateString(buf));
    }
    /* doubles as %.17g strings: exact round trip, and INFINITY survives */
    snprintf(buf, sizeof buf, "%.17g", s->best_val);
    cJSON_AddStringToObject(o, "best_val", buf);
    cJSON_AddNumberToObject(o, "best_step", (double)s->best_step);
    cJSON_AddNumberToObject(o, "evals_since_best", s->evals_since_best);
    cJSON_AddNumberToObject(o, "bad_steps", s->bad_steps);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)s->tokens_seen);
    cJSON_AddStringToObject(o, "tokens_seen", buf);
    cJSON_AddNumberToObject(o, "ref_syncs", (double)s->ref_syncs);
    if (s->train_examples) cJSON_AddNumberToObject(o, "train_examples", (double)s->train_examples);
    cJSON *aux = cJSON_AddObjectToObject(o, "aux_crc32");
    for (int i = 0; i < s->n_aux_crc; i++) {
        snprintf(buf, sizeof buf, "%08x", s->aux_crc[i].crc);
        cJSON_AddStringToObject(aux, s->aux_crc[i].role, buf);
    }
    return o;
}

/* How a value looks in a message: its JSON text (cJSON escapes control characters), or
 * an escaped excerpt when it is long or not UTF-8. */
static const char *shown(const cJSON *v, char *out, size_t cap) {
    if (!v) return "nothing (missing)";
    char *s = cJSON_PrintUnformatted(v);
    size_t n = s ? strlen(s) : 0;
    if (s && n < 60 && n < cap && ta_utf8_invalid_at(s, n) < 0) memcpy(out, s, n + 1);
    else ta_excerpt(out, cap, s ? s : "?", n);
    free(s);
    return out;
}

/* An integer field in [lo, hi]: a JSON number without a fraction. */
static int int_field(const cJSON *o, const char *key, double lo, double hi, const char *file,
                     double *out, TaError *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    char buf[96];
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble < lo || v->valuedouble > hi)
        return ta_err(err, TA_EINPUT, "%s: train_state.%s is %s, expected an integer in [%.0f, %.0f] "
                      "(edited or damaged checkpoint)", file, key, shown(v, buf, sizeof buf), lo, hi);
    *out = v->valuedouble;
    return TA_OK;
}

/* n hex digits exactly (a CRC32: 8, an RNG word: 16). */
static int is_hex(const char *s, size_t n) {
    if (strlen(s) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i])) return 0;
    return 1;
}

static int hex_field(const cJSON *v, size_t digits, const char *file, const char *name,
                     uint64_t *out, TaError *err) {
    char buf[96];
    if (!cJSON_IsString(v) || !is_hex(v->valuestring, digits))
        return ta_err(err, TA_EINPUT, "%s: train_state.%s is %s, expected %zu hex digits "
                      "(edited or damaged checkpoint)", file, name, shown(v, buf, sizeof buf), digits);
    *out = strtoull(v->valuestring, NULL, 16);
    return TA_OK;
}

int state_from_json(const cJSON *o, const char *file, TrainState *s, TaError *err) {
    memset(s, 0, sizeof *s);
    if (!cJSON_IsObject(o))
        return ta_err(err, TA_EINPUT, "%s: train_state is missing or not an object", file);
    double v;
    int rc;
    char buf[96];
    if ((rc = int_field(o, "step", 0, MAX_INT53, file, &v, err))) return rc;
    s->step = (long)v;
    if ((rc = int_field(o, "epoch", 0, MAX_INT53, file, &v, err))) return rc;
    s->cursor.epoch = (int64_t)v;
    if ((rc = int_field(o, "pos", 0, MAX_INT53, file, &v, err))) return rc;
    s->cursor.pos = (int64_t)v;
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(o, "sources");
    if (src) { /* a mixture's cursors: 2..DATA_MAX_SOURCES of them, the first = epoch/pos */
        const int n = cJSON_IsArray(src) ? cJSON_GetArraySize(src) : 0;
        if (n < 2 || n > DATA_MAX_SOURCES)
            return ta_err(err, TA_EINPUT, "%s: train_state.sources is %s, expected 2 to %d "
                          "{\"epoch\", \"pos\"} cursors (edited or damaged checkpoint)", file,
                          shown(src, buf, sizeof buf), DATA_MAX_SOURCES);
        for (int i = 0; i < n; i++) {
            const cJSON *e = cJSON_GetArrayItem(src, i);
            DataCursor c;
            if (!cJSON_IsObject(e))
                return ta_err(err, TA_EINPUT, "%s: train_state.sources[%d] is %s, expected "
                              "{\"epoch\", \"pos\"}", file, i, shown(e, buf, sizeof buf));
            if ((rc = int_field(e, "epoch", 0, MAX_INT53, file, &v, err))) return rc;
            c.epoch = (int64_t)v;
            if ((rc = int_field(e, "pos", 0, MAX_INT53, file, &v, err))) return rc;
            c.pos = (int64_t)v;
            if (i == 0 && (c.epoch != s->cursor.epoch || c.pos != s->cursor.pos))
                return ta_err(err, TA_EINPUT, "%s: train_state.sources[0] is not the cursor "
                              "epoch/pos (edited or damaged checkpoint)", file);
            if (i > 0) s->more_cursors[i - 1] = c;
        }
        s->n_more_cursors = n - 1;
    }
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "rng");
    if (!cJSON_IsArray(r) || cJSON_GetArraySize(r) != 4)
        return ta_err(err, TA_EINPUT, "%s: train_state.rng is %s, expected 4 hex words", file,
                      shown(r, buf, sizeof buf));
    uint64_t any = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t w;
        if ((rc = hex_field(cJSON_GetArrayItem(r, i), 16, file, "rng", &w, err))) return rc;
        s->rng.s[i] = w;
        any |= w;
    }
    if (!any) /* xoshiro256** never leaves the all-zero state: no run writes it */
        return ta_err(err, TA_EINPUT, "%s: train_state.rng is all zero, which no run can reach "
                      "(edited or damaged checkpoint)", file);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "best_val");
    char *end = NULL;
    if (cJSON_IsString(b)) s->best_val = strtod(b->valuestring, &end);
    if (!cJSON_IsString(b) || !*b->valuestring || *end || isnan(s->best_val) ||
        s->best_val == -INFINITY)
        return ta_err(err, TA_EINPUT, "%s: train_state.best_val is %s, expected a number or inf "
                      "as a string", file, shown(b, buf, sizeof buf));
    if ((rc = int_field(o, "best_step", -1, (double)s->step, file, &v, err))) return rc;
    s->best_step = (long)v;
    if ((s->best_step < 0) != isinf(s->best_val))
        return ta_err(err, TA_EINPUT, "%s: train_state.best_step is %ld but best_val is %s: a best "
                      "loss and its step come together (edited or damaged checkpoint)", file,
                      s->best_step, b->valuestring);
    if ((rc = int_field(o, "evals_since_best", 0, fmin((double)s->step, 2147483647.0), file, &v, err)))
        return rc;
    s->evals_since_best = (int)v;
    if ((rc = int_field(o, "bad_steps", 0, fmin((double)s->step, 2147483647.0), file, &v, err)))
        return rc;
    s->bad_steps = (int)v;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "tokens_seen");
    int digits = cJSON_IsString(t) && *t->valuestring && strlen(t->valuestring) <= 19;
    for (const char *c = digits ? t->valuestring : ""; *c; c++) digits &= isdigit((unsigned char)*c) != 0;
    if (!digits)
        return ta_err(err, TA_EINPUT, "%s: train_state.tokens_seen is %s, expected a decimal count "
                      "as a string (at most 19 digits)", file, shown(t, buf, sizeof buf));
    s->tokens_seen = strtoull(t->valuestring, NULL, 10);
    if ((rc = int_field(o, "ref_syncs", 0, (double)s->step, file, &v, err))) return rc;
    s->ref_syncs = (long)v;
    if (cJSON_GetObjectItemCaseSensitive(o, "train_examples")) { /* absent before checksums */
        if ((rc = int_field(o, "train_examples", 1, MAX_INT53, file, &v, err))) return rc;
        s->train_examples = (uint64_t)v;
    }
    const cJSON *aux = cJSON_GetObjectItemCaseSensitive(o, "aux_crc32"), *x;
    if (aux) {
        if (!cJSON_IsObject(aux) || cJSON_GetArraySize(aux) > CHECKPOINT_MAX_AUX)
            return ta_err(err, TA_EINPUT, "%s: train_state.aux_crc32 is %s, expected at most %d "
                          "\"role\": \"crc32\" members", file, shown(aux, buf, sizeof buf),
                          CHECKPOINT_MAX_AUX);
        cJSON_ArrayForEach(x, aux) {
            AuxCrc *c = &s->aux_crc[s->n_aux_crc++];
            if (strlen(x->string) >= sizeof c->role)
                return ta_err(err, TA_EINPUT, "%s: train_state.aux_crc32 has an unknown role \"%s\"",
                              file, ta_excerpt(buf, sizeof buf, x->string, strlen(x->string)));
            snprintf(c->role, sizeof c->role, "%s", x->string);
            uint64_t w;
            if ((rc = hex_field(x, 8, file, "aux_crc32", &w, err))) return rc;
            c->crc = (uint32_t)w;
        }
    } else { /* older engines: one "ref_crc32" ("00000000" = no reference) */
        uint64_t w;
        if ((rc = hex_field(cJSON_GetObjectItemCaseSensitive(o, "ref_crc32"), 8, file, "ref_crc32",
                            &w, err)))
            return rc;
        if (w) s->aux_crc[s->n_aux_crc++] = (AuxCrc){"reference", (uint32_t)w};
    }
    return TA_OK;
}

/* ---- state.sum ----------------------------------------------------------------------------- */
typedef struct {
    TaBuf lines;  /* "<path> <crc32>\n" per value */
    char path[512];
} SumWalk;

/* One line per value (leaf) of the tree, depth first, in file order. Paths join member
 * names with '.' and array indices as [i]; an empty object or array is a value. */
static void walk(SumWalk *w, const cJSON *v, size_t plen) {
    if ((cJSON_IsObject(v) || cJSON_IsArray(v)) && v->child) {
        int i = 0;
        for (const cJSON *c = v->child; c; c = c->next, i++) {
            int n = cJSON_IsArray(v) ? snprintf(w->path + plen, sizeof w->path - plen, "[%d]", i)
                                     : snprintf(w->path + plen, sizeof w->path - plen, "%s%s",
                                                plen ? "." : "", c->string ? c->string : "?");
            size_t k = n < 0 ? plen : plen + (size_t)n;
            walk(w, c, k < sizeof w->path ? k : sizeof w->path - 1);
        }
        w->path[plen] = '\0';
        return;
    }
    char *s = cJSON_PrintUnformatted(v);
    TA_ASSERT(s != NULL);
    ta_buf_printf(&w->lines, "%s %08x\n", w->path, ta_crc32(0, s, strlen(s)));
    free(s);
}

char *state_sum_text(const char *text, size_t len, const cJSON *tree, size_t *out_len) {
    SumWalk w = {0};
    TaBuf b = {0};
    ta_buf_printf(&b, "%s\nstate.json %zu %08x\n", SUM_MAGIC, len, ta_crc32(0, text, len));
    walk(&w, tree, 0);
    ta_buf_add(&b, w.lines.p, w.lines.n);
    free(w.lines.p);
    ta_buf_printf(&b, "end %08x\n", ta_crc32(0, b.p, b.n));
    *out_len = b.n;
    return b.p;
}

/* The line of sum[0..n) starting at *at (without its newline), advancing *at. */
static int next_line(const char *s, size_t n, size_t *at, const char **line, size_t *len) {
    if (*at >= n) return 0;
    const char *nl = memchr(s + *at, '\n', n - *at);
    *line = s + *at;
    *len = nl ? (size_t)(nl - *line) : n - *at;
    *at += *len + (nl != NULL);
    return 1;
}

/* Length of the path part of a value line "<path> <crc32>". */
static size_t path_len(const char *line, size_t n) {
    size_t k = n;
    while (k && line[k - 1] != ' ') k--;
    return k ? k - 1 : n;
}

/* Names the first value that differs between the value lines of state.sum
 * (sum[0..n)) and those of the tree, into out. */
static void first_difference(const char *sum, size_t n, const cJSON *tree, char *out, size_t cap) {
    SumWalk w = {0};
    walk(&w, tree, 0);
    size_t a = 0, b = 0, na = 0, nb = 0;
    const char *la = NULL, *lb = NULL;
    char ea[160], eb[160];
    for (;;) {
        int ha = next_line(sum, n, &a, &la, &na), hb = next_line(w.lines.p, w.lines.n, &b, &lb, &nb);
        if (ha && hb && na == nb && !memcmp(la, lb, na)) continue;
        size_t pa = ha ? path_len(la, na) : 0, pb = hb ? path_len(lb, nb) : 0;
        if (ha) ta_excerpt(ea, sizeof ea, la, pa);
        if (hb) ta_excerpt(eb, sizeof eb, lb, pb);
        if (!ha && !hb)
            snprintf(out, cap, "its bytes changed outside the values (spacing or order of the text)");
        else if (ha && hb && pa == pb && !memcmp(la, lb, pa))
            snprintf(out, cap, "the value of %s changed", ea);
        else if (ha && hb)
            snprintf(out, cap, "%s is missing or renamed (%s is in its place)", ea, eb);
        else if (ha)
            snprintf(out, cap, "%s was removed", ea);
        else
            snprintf(out, cap, "%s was added", eb);
        break;
    }
    free(w.lines.p);
}

int state_sum_verify(const char *dir, const char *text, size_t len, const cJSON *tree,
                     TaError *err) {
    char p[4200];
    ta_pathf(p, sizeof p, "%s/state.sum", dir);
    size_t n;
    char *sum = ta_read_file(p, &n, NULL);
    if (!sum)
        return ta_err(err, TA_EINPUT,
                      "%s/state.json: its checksum file state.sum is missing, so the state "
                      "cannot be verified (restore the directory from a copy, or resume from "
                      "another checkpoint)", dir);
    int rc = TA_OK;
    /* the last line covers every byte before it */
    size_t body = n;
    if (body && sum[body - 1] == '\n') body--;
    while (body && sum[body - 1] != '\n') body--;
    unsigned end_crc = 0;
    char tail[16] = "";
    if (sscanf(sum + body, "end %8x%15s", &end_crc, tail) != 1 || n - body < 12 ||
        end_crc != ta_crc32(0, sum, body)) {
        rc = ta_err(err, TA_EINPUT, "%s: damaged (its own checksum does not match); state.json "
                    "cannot be verified", p);
        goto end;
    }
    size_t at = 0, ll;
    const char *line;
    unsigned long long want_len = 0;
    unsigned want_crc = 0;
    char name[32] = "";
    if (!next_line(sum, body, &at, &line, &ll) || ll != strlen(SUM_MAGIC) ||
        memcmp(line, SUM_MAGIC, ll) || !next_line(sum, body, &at, &line, &ll) ||
        sscanf(line, "%31s %llu %8x", name, &want_len, &want_crc) != 3 || strcmp(name, "state.json")) {
        rc = ta_err(err, TA_EINPUT, "%s: not a tinyalign state checksum file", p);
        goto end;
    }
    const uint32_t crc = ta_crc32(0, text, len);
    if (want_len == len && want_crc == crc) goto end;
    char what[512];
    if (!tree) snprintf(what, sizeof what, "it is no longer valid JSON");
    else first_difference(sum + at, body - at, tree, what, sizeof what);
    rc = ta_err(err, TA_EINPUT,
                "%s/state.json: edited or damaged after it was written: %s (CRC32 %08x, %zu "
                "bytes; state.sum says %08x, %llu bytes). Restore the file, or resume from "
                "another checkpoint", dir, what, crc, len, want_crc, want_len);
end:
    free(sum);
    return rc;
}

/* ---- the state against the run it resumes ------------------------------------------------- */
int checkpoint_check_state(const TrainState *s, const StateLimits *lim, const char *file,
                           TaError *err) {
    if (s->step > lim->max_steps)
        return ta_err(err, TA_EINPUT, "%s: train_state.step is %ld, beyond train.max_steps %ld",
                      file, s->step, lim->max_steps);
    uint64_t max_tokens;
    if (!__builtin_mul_overflow((uint64_t)s->step, lim->max_tokens_per_step, &max_tokens) &&
        s->tokens_seen > max_tokens)
        return ta_err(err, TA_EINPUT, "%s: train_state.tokens_seen is %llu, more than %ld steps of "
                      "at most %llu tokens hold (edited or damaged checkpoint)", file,
                      (unsigned long long)s->tokens_seen, s->step,
                      (unsigned long long)lim->max_tokens_per_step);
    if (lim->examples == 0) return TA_OK;
    const uint64_t n = lim->examples;
    if ((uint64_t)s->cursor.pos > n)
        return ta_err(err, TA_EINPUT, "%s: train_state.pos is %lld, beyond the %llu training "
                      "examples of the data (edited checkpoint, or other data)", file,
                      (long long)s->cursor.pos, (unsigned long long)n);
    /* examples consumed so far: step * per_step (overflow: no run gets there) */
    uint64_t used;
    if (__builtin_mul_overflow((uint64_t)s->step, lim->per_step, &used))
        return ta_err(err, TA_EINPUT, "%s: train_state.step %ld is beyond any run", file, s->step);
    if ((uint64_t)s->cursor.epoch > used / n + 1)
        return ta_err(err, TA_EINPUT, "%s: train_state.epoch is %lld, but %ld steps of %llu "
                      "examples over %llu examples reach epoch %llu at most", file,
                      (long long)s->cursor.epoch, s->step, (unsigned long long)lim->per_step,
                      (unsigned long long)n, (unsigned long long)(used / n));
    if (lim->same_order) {
        /* the trainer's cursor after `used` examples: epoch (used-1)/n, pos in [1, n]
         * (it wraps lazily, on the next draw), or (0, 0) before the first */
        const uint64_t e = used ? (used - 1) / n : 0, pos = used - e * n;
        if ((uint64_t)s->cursor.epoch != e || (uint64_t)s->cursor.pos != pos)
            return ta_err(err, TA_EINPUT,
                          "%s: train_state.%s is %lld, but after %ld steps of %llu examples the "
                          "data cursor is at epoch %llu, example %llu (edited or damaged "
                          "checkpoint)", file, (uint64_t)s->cursor.epoch != e ? "epoch" : "pos",
                          (long long)((uint64_t)s->cursor.epoch != e ? s->cursor.epoch
                                                                     : s->cursor.pos),
                          s->step, (unsigned long long)lim->per_step, (unsigned long long)e,
                          (unsigned long long)pos);
    }
    return TA_OK;
}
