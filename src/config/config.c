/* config.c — load, validate and resolve a JSON run config into a Config (config.h),
 * apply --set overrides, print the resolved config, diff two configs, list the keys.
 *
 * Design: the file is parsed into a cJSON tree; overrides are checked and written into
 * that tree; config_resolve then walks the tree once against the schema table
 * (schema.c): unknown keys get a "did you mean" from an edit distance over key names and
 * their familiar aliases; each value is checked (type, range, enum) and stored at its
 * offset in Config; the model preset fills the dims that were not set explicitly; derived
 * defaults (out_dir) are filled; cross-key checks run last.
 * Every mistake is reported in one run (ErrList: one line per key, up to CONFIG_MAX_ERRORS
 * or what fits in a TaError, then a count of the rest): a walk does not stop at the first
 * bad key, --set overrides are all checked, and the cross-key checks (which read the
 * values) run once every key is valid.
 *
 * It deliberately does not open data, tokenizer or checkpoint paths (other modules do,
 * relative to the working directory) and does not know model internals (Vp).
 */
#include "tinyalign/config.h"

#include <cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- small helpers ---------------------------------------------------------------- */
static void *field(Config *c, const ConfigKey *k) { return (char *)c + k->offset; }
static const void *cfield(const Config *c, const ConfigKey *k) {
    return (const char *)c + k->offset;
}

/* Text is built in a TaBuf (common.h). */

/* Shortest %g form that reads back as the same double: 0.0003, 1e-08, 1337. */
static void fmt_num(double x, char *out, size_t cap) {
    if (x == floor(x) && fabs(x) < 1e16) { /* integers as integers: 1000, not 1e+03 */
        snprintf(out, cap, "%.0f", x);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, x);
        if (strtod(out, NULL) == x) break;
    }
    char *e = strchr(out, 'e'); /* 1e-08 -> 1e-8 */
    if (e && (e[1] == '-' || e[1] == '+')) {
        char *d = e + 2, *z = d;
        while (*z == '0' && z[1]) z++;
        memmove(d, z, strlen(z) + 1);
    }
}

/* A float-typed value: like fmt_num but always visibly a float (1.0, 0.0, 1e-8). */
static void fmt_float(double x, char *out, size_t cap) {
    fmt_num(x, out, cap);
    if (!strpbrk(out, ".en") && strlen(out) + 3 <= cap) strcat(out, ".0");
}

/* ---- JSON text output (pretty and compact) -------------------------------------- */
static int is_scalar(const cJSON *v) { return !cJSON_IsArray(v) && !cJSON_IsObject(v); }

/* indent < 0: compact on one line ({"a": 1, "b": [1, 2]}). Arrays of scalars are always
 * written on one line. */
static void put_json(TaBuf *b, const cJSON *v, int indent) {
    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        int obj = cJSON_IsObject(v);
        int inline_ = indent < 0 || !v->child;
        if (!inline_ && !obj) {
            inline_ = 1;
            for (const cJSON *c = v->child; c; c = c->next)
                if (!is_scalar(c)) inline_ = 0;
        }
        ta_buf_puts(b, obj ? "{" : "[");
        for (const cJSON *c = v->child; c; c = c->next) {
            if (inline_) {
                if (c != v->child) ta_buf_puts(b, ", ");
            } else {
                ta_buf_puts(b, c != v->child ? ",\n" : "\n");
                for (int i = 0; i < indent + 2; i++) ta_buf_puts(b, " ");
            }
            if (obj) {
                ta_buf_json_string(b, c->string ? c->string : "");
                ta_buf_puts(b, ": ");
            }
            put_json(b, c, inline_ ? -1 : indent + 2);
        }
        if (!inline_) {
            ta_buf_puts(b, "\n");
            for (int i = 0; i < indent; i++) ta_buf_puts(b, " ");
        }
        ta_buf_puts(b, obj ? "}" : "]");
    } else if (cJSON_IsRaw(v)) { /* pre-formatted number (float-typed keys) */
        ta_buf_puts(b, v->valuestring);
    } else if (cJSON_IsString(v)) {
        ta_buf_json_string(b, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        char num[64];
        fmt_num(v->valuedouble, num, sizeof num);
        ta_buf_puts(b, num);
    } else if (cJSON_IsBool(v)) {
        ta_buf_puts(b, cJSON_IsTrue(v) ? "true" : "false");
    } else {
        ta_buf_puts(b, "null");
    }
}

static const char *json_type_name(const cJSON *v) {
    if (cJSON_IsString(v)) return "string";
    if (cJSON_IsNumber(v) || cJSON_IsRaw(v)) return "number";
    if (cJSON_IsBool(v)) return "boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "array";
    if (cJSON_IsObject(v)) return "object";
    return "invalid";
}

/* `"eight" (string)`, `[0.9, 1.5] (array)`; long values are cut with "...". */
static void describe(const cJSON *v, char *out, size_t cap) {
    TaBuf b = {0};
    put_json(&b, v, -1);
    const size_t max = 60;
    if (b.n > max) {
        b.p[max] = '\0';
        snprintf(out, cap, "%s... (%s)", b.p, json_type_name(v));
    } else {
        snprintf(out, cap, "%s (%s)", b.p ? b.p : "", json_type_name(v));
    }
    free(b.p);
}

/* ---- the schema: expectations and checks ------------------------------------------- */
static int n_keys(void) {
    int n;
    config_keys(&n);
    return n;
}
static int key_index(const ConfigKey *k) {
    int n;
    return (int)(k - config_keys(&n));
}

/* "> 0", ">= 1", "in [0, 0.5]", "in (0, 1]", "" */
static void range_text(const ConfigKey *k, char *out, size_t cap) {
    char lo[64], hi[64];
    fmt_num(k->min, lo, sizeof lo);
    fmt_num(k->max, hi, sizeof hi);
    int has_lo = (k->flags & (CFG_GE | CFG_GT)) != 0, has_hi = (k->flags & (CFG_LE | CFG_LT)) != 0;
    if (k->type == CFG_T_INT64 && has_hi) has_hi = 0; /* seed: the 2^53 cap is JSON's, not ours */
    if (has_lo && has_hi)
        snprintf(out, cap, "in %s%s, %s%s", k->flags & CFG_GT ? "(" : "[", lo, hi,
                 k->flags & CFG_LT ? ")" : "]");
    else if (has_lo)
        snprintf(out, cap, "%s %s", k->flags & CFG_GT ? ">" : ">=", lo);
    else if (has_hi)
        snprintf(out, cap, "%s %s", k->flags & CFG_LT ? "<" : "<=", hi);
    else
        out[0] = '\0';
}

static void choices_text(const ConfigKey *k, char *out, size_t cap, const char *sep, int quote) {
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; k->choices[i]; i++) {
        int w = snprintf(out + n, cap - n, "%s%s%s%s", i ? sep : "", quote ? "\"" : "",
                         k->choices[i], quote ? "\"" : "");
        if (w < 0 || (size_t)w >= cap - n) break;
        n += (size_t)w;
    }
}

/* What a value of k must be: "an integer >= 1", "a number in [0, 0.5]",
 * "one of \"a\", \"b\"", "an array of 2 numbers, each in [0, 1)". */
static void expect_text(const ConfigKey *k, char *out, size_t cap) {
    char r[160], ch[512];
    range_text(k, r, sizeof r);
    const char *sp = r[0] ? " " : "";
    switch (k->type) {
    case CFG_T_INT:
    case CFG_T_INT64: snprintf(out, cap, "an integer%s%s", sp, r); break;
    case CFG_T_FLOAT: snprintf(out, cap, "a number%s%s", sp, r); break;
    case CFG_T_BOOL: snprintf(out, cap, "true or false"); break;
    case CFG_T_STRING:
        snprintf(out, cap, k->flags & CFG_NONEMPTY ? "a non-empty string" : "a string");
        break;
    case CFG_T_ENUM:
        choices_text(k, ch, sizeof ch, ", ", 1);
        snprintf(out, cap, "one of %s", ch);
        break;
    case CFG_T_FLOAT2:
        snprintf(out, cap, "an array of 2 numbers%s%s", r[0] ? ", each " : "", r);
        break;
    case CFG_T_STRLIST: snprintf(out, cap, "an array of strings"); break;
    case CFG_T_SOURCES:
        snprintf(out, cap, "a non-empty string, or a list of 1 to %d files to mix (\"path\" or "
                 "{\"path\": ..., \"weight\": w >= 0, \"loss\": \"all\" | \"nll\" | \"kl\"})",
                 CFG_MAX_SOURCES);
        break;
    }
}

static int in_range(const ConfigKey *k, double x) {
    if (!isfinite(x)) return 0;
    if ((k->flags & CFG_GE) && !(x >= k->min)) return 0;
    if ((k->flags & CFG_GT) && !(x > k->min)) return 0;
    if ((k->flags & CFG_LE) && !(x <= k->max)) return 0;
    if ((k->flags & CFG_LT) && !(x < k->max)) return 0;
    return 1;
}

static int enum_index(const ConfigKey *k, const char *s) {
    for (int i = 0; k->choices[i]; i++)
        if (!strcmp(k->choices[i], s)) return i;
    return -1;
}

/* ---- suggestions (edit distance: ta_edit_distance in common) --------------------- */
/* Familiar names for sections, for suggestions only. */
static const char *const SECTION_ALIASES[][2] = {
    {"run", "experiment,general,runtime"},
    {"model", "network,arch,architecture"},
    {"tokenizer", "tokeniser,tok,tokenization"},
    {"data", "dataset,datasets,data_args"},
    {"objective", "loss,algorithm,method,trainer_type"},
    {"objective.reference", "ref,ref_model,reference_model"},
    {"objective.attribute", "attribute_control,kl,guide"},
    {"objective.nado", "nado_head,neural_oracle,guide_training"},
    {"optim", "optimizer,optimiser,optimization,opt"},
    {"train", "training,trainer,training_args"},
    {"train.eval_generate", "generate_eval,eval_gen,task_eval,generation_eval"},
};

typedef struct {
    const char *unknown_leaf, *unknown_parent; /* parent "" = top level */
    int thr;
    int found;
    char best[256]; /* full canonical path */
    int best_score, best_cross;
} Suggest;

/* Candidate `name` (a key leaf, section leaf or an alias) living under `parent`, that
 * stands for the canonical `full` path. Same-parent candidates win ties. */
static void suggest_try(Suggest *s, const char *parent, size_t parent_len, const char *name,
                        size_t name_len, const char *full, size_t full_len) {
    char nm[64];
    if (name_len >= sizeof nm) return;
    memcpy(nm, name, name_len);
    nm[name_len] = '\0';
    int d = ta_edit_distance(s->unknown_leaf, nm);
    if (d > s->thr) return;
    int cross = !(strlen(s->unknown_parent) == parent_len &&
                  !strncmp(s->unknown_parent, parent, parent_len));
    int score = d + 2 * cross;
    if (!s->found || score < s->best_score || (score == s->best_score && cross < s->best_cross)) {
        s->found = 1;
        snprintf(s->best, sizeof s->best, "%.*s", (int)full_len, full);
        s->best_score = score;
        s->best_cross = cross;
    }
}

static void suggest_try_list(Suggest *s, const char *parent, size_t parent_len,
                             const char *list, const char *full) {
    while (list && *list) {
        const char *comma = strchr(list, ',');
        size_t len = comma ? (size_t)(comma - list) : strlen(list);
        suggest_try(s, parent, parent_len, list, len, full, strlen(full));
        list = comma ? comma + 1 : NULL;
    }
}

/* The closest valid key for an unknown path ("optim.learnig_rate" -> "optim.lr"), or
 * NULL. preset_only: candidates are the CFG_PRESET keys as bare names (a preset file). */
static const char *suggest_key(const char *unknown, int preset_only, char *out, size_t cap) {
    const char *dot = strrchr(unknown, '.');
    char parent[256] = "";
    if (dot && (size_t)(dot - unknown) < sizeof parent) {
        memcpy(parent, unknown, (size_t)(dot - unknown));
        parent[dot - unknown] = '\0';
    }
    Suggest s = {.unknown_leaf = dot ? dot + 1 : unknown, .unknown_parent = parent};
    s.thr = ta_suggest_max_distance(strlen(s.unknown_leaf));
    int n;
    const ConfigKey *keys = config_keys(&n);
    for (int i = 0; i < n; i++) {
        const ConfigKey *k = &keys[i];
        const char *leaf = strrchr(k->path, '.') + 1;
        if (preset_only) {
            if (!(k->flags & CFG_PRESET)) continue;
            suggest_try(&s, "", 0, leaf, strlen(leaf), leaf, strlen(leaf));
            suggest_try_list(&s, "", 0, k->aliases, leaf);
            continue;
        }
        size_t plen = (size_t)(leaf - 1 - k->path);
        suggest_try(&s, k->path, plen, leaf, strlen(leaf), k->path, strlen(k->path));
        suggest_try_list(&s, k->path, plen, k->aliases, k->path);
        /* the sections this key lives in: "objective", "objective.reference" */
        const char *start = k->path; /* start of the section's own name */
        for (const char *d = strchr(k->path, '.'); d; d = strchr(d + 1, '.')) {
            size_t sec_plen = start == k->path ? 0 : (size_t)(start - 1 - k->path);
            suggest_try(&s, k->path, sec_plen, start, (size_t)(d - start), k->path,
                        (size_t)(d - k->path));
            start = d + 1;
        }
    }
    if (!preset_only) /* familiar names of sections */
        for (size_t i = 0; i < sizeof SECTION_ALIASES / sizeof SECTION_ALIASES[0]; i++) {
            const char *sec = SECTION_ALIASES[i][0];
            const char *sdot = strrchr(sec, '.');
            suggest_try_list(&s, sec, sdot ? (size_t)(sdot - sec) : 0, SECTION_ALIASES[i][1], sec);
        }
    if (!s.found) return NULL;
    snprintf(out, cap, "%s", s.best);
    return out;
}

/* Valid keys directly under `parent` ("" = top level), comma-separated, for messages. */
static void keys_under(const char *parent, char *out, size_t cap) {
    int n;
    const ConfigKey *keys = config_keys(&n);
    size_t plen = strlen(parent), used = 0;
    out[0] = '\0';
    char seen[1024] = ",";
    for (int i = 0; i < n; i++) {
        const char *p = keys[i].path;
        if (plen && (strncmp(p, parent, plen) || p[plen] != '.')) continue;
        const char *rest = plen ? p + plen + 1 : p;
        const char *dot = strchr(rest, '.');
        size_t len = dot ? (size_t)(dot - rest) : strlen(rest);
        char name[128];
        if (len >= sizeof name) continue;
        memcpy(name, rest, len);
        name[len] = '\0';
        char tag[132];
        snprintf(tag, sizeof tag, ",%s,", name);
        if (strstr(seen, tag)) continue;
        if (strlen(seen) + len + 2 < sizeof seen) {
            strcat(seen, name);
            strcat(seen, ",");
        }
        int w = snprintf(out + used, cap - used, "%s%s", used ? ", " : "", name);
        if (w < 0 || (size_t)w >= cap - used) break;
        used += (size_t)w;
    }
}

/* True when path is a section: a proper prefix of some key path. */
static int is_section(const char *path) {
    int n;
    const ConfigKey *keys = config_keys(&n);
    size_t len = strlen(path);
    for (int i = 0; i < n; i++)
        if (!strncmp(keys[i].path, path, len) && keys[i].path[len] == '.') return 1;
    return 0;
}

static int err_unknown(TaError *err, const char *origin, const char *path, int preset_only) {
    char sug[256];
    if (suggest_key(path, preset_only, sug, sizeof sug))
        return ta_err(err, TA_EINPUT, "%s: unknown key \"%s\"; did you mean \"%s\"?", origin, path,
                      sug);
    char list[700];
    if (preset_only) {
        int n;
        const ConfigKey *keys = config_keys(&n);
        size_t used = 0;
        list[0] = '\0';
        for (int i = 0; i < n; i++) {
            if (!(keys[i].flags & CFG_PRESET)) continue;
            int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "",
                             strrchr(keys[i].path, '.') + 1);
            if (w > 0 && (size_t)w < sizeof list - used) used += (size_t)w;
        }
        return ta_err(err, TA_EINPUT, "%s: unknown key \"%s\" (a model preset has: %s)", origin,
                      path, list);
    }
    const char *dot = strrchr(path, '.');
    char parent[256] = "";
    if (dot) snprintf(parent, sizeof parent, "%.*s", (int)(dot - path), path);
    /* "nope.key", "a.b.c": the parent is no section either; name the first part that is
     * unknown and list what exists where it lies */
    while (parent[0] && !is_section(parent)) {
        char *pd = strrchr(parent, '.');
        if (!pd) {
            keys_under("", list, sizeof list);
            return ta_err(err, TA_EINPUT, "%s: unknown section \"%s\" in \"%s\" (valid sections: "
                          "%s)", origin, parent, path, list);
        }
        *pd = '\0';
        if (is_section(parent)) {
            char inner[700];
            keys_under(parent, inner, sizeof inner);
            return ta_err(err, TA_EINPUT, "%s: unknown key \"%s\" (\"%s\" has no section \"%s\"; "
                          "its keys: %s)", origin, path, parent, pd + 1, inner);
        }
    }
    keys_under(parent, list, sizeof list);
    if (!dot)
        return ta_err(err, TA_EINPUT, "%s: unknown section \"%s\" (valid sections: %s)", origin,
                      path, list);
    return ta_err(err, TA_EINPUT, "%s: unknown key \"%s\" (valid keys in \"%s\": %s)", origin,
                  path, parent, list);
}

/* ---- checking and storing one value ---------------------------------------------- */
static int err_value(TaError *err, const char *origin, const char *shown, const ConfigKey *k,
                     const cJSON *v, const char *extra) {
    char exp[640], got[160];
    expect_text(k, exp, sizeof exp);
    describe(v, got, sizeof got);
    return ta_err(err, TA_EINPUT, "%s: \"%s\" must be %s, got %s%s", origin, shown, exp, got,
                  extra ? extra : "");
}

/* A data mixture (CFG_T_SOURCES): a non-empty string, or an array of 1..CFG_MAX_SOURCES
 * entries, each a non-empty string (weight 1) or {"path": non-empty string, "weight":
 * finite number >= 0 (default 1), "loss": "all" (default), "nll" or "kl"}, whose weights
 * sum to > 0. Messages name the entry: "data.train[1].weight". (Whether the "loss" fits the
 * objective is a check between keys: cross_checks.) */
static int check_sources(const ConfigKey *k, const cJSON *v, const char *origin,
                         const char *shown, TaError *err) {
    if (cJSON_IsString(v) && v->valuestring[0]) return TA_OK;
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
    if (n < 1 || n > CFG_MAX_SOURCES) return err_value(err, origin, shown, k, v, NULL);
    double sum = 0.0;
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        char got[160];
        describe(e, got, sizeof got);
        if (cJSON_IsString(e)) {
            if (!e->valuestring[0])
                return ta_err(err, TA_EINPUT, "%s: \"%s[%d]\" must be a non-empty path, got %s",
                              origin, shown, i, got);
            sum += 1.0;
            continue;
        }
        if (!cJSON_IsObject(e))
            return ta_err(err, TA_EINPUT,
                          "%s: \"%s[%d]\" must be a path or {\"path\": ..., \"weight\": ...}, "
                          "got %s", origin, shown, i, got);
        for (const cJSON *m = e->child; m; m = m->next)
            if (strcmp(m->string, "path") && strcmp(m->string, "weight") &&
                strcmp(m->string, "loss"))
                return ta_err(err, TA_EINPUT,
                              "%s: unknown key \"%s[%d].%s\" (a source has \"path\", "
                              "\"weight\" and \"loss\")", origin, shown, i, m->string);
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(e, "loss");
        if (l && (!cJSON_IsString(l) ||
                  (strcmp(l->valuestring, "all") && strcmp(l->valuestring, "nll") &&
                   strcmp(l->valuestring, "kl")))) {
            char lg[160];
            describe(l, lg, sizeof lg);
            return ta_err(err, TA_EINPUT,
                          "%s: \"%s[%d].loss\" must be \"all\" (every loss term), \"nll\" or "
                          "\"kl\" (objective.attribute's NLL or KL term only), got %s", origin,
                          shown, i, lg);
        }
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "path");
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(e, "weight");
        if (!cJSON_IsString(p) || !p->valuestring[0]) {
            char pg[160] = "nothing";
            if (p) describe(p, pg, sizeof pg);
            return ta_err(err, TA_EINPUT, "%s: \"%s[%d].path\" must be a non-empty string, got %s",
                          origin, shown, i, pg);
        }
        if (w && (!cJSON_IsNumber(w) || !isfinite(w->valuedouble) || w->valuedouble < 0)) {
            char wg[160];
            describe(w, wg, sizeof wg);
            return ta_err(err, TA_EINPUT,
                          "%s: \"%s[%d].weight\" must be a number >= 0 (a mixing ratio), got %s",
                          origin, shown, i, wg);
        }
        sum += w ? w->valuedouble : 1.0;
    }
    if (!(sum > 0) || !isfinite(sum))
        return ta_err(err, TA_EINPUT,
                      "%s: \"%s\": the mixing weights sum to %g; they must sum to a positive "
                      "number (give at least one source a weight > 0)", origin, shown, sum);
    return TA_OK;
}

static void sources_free(CfgSources *s) {
    for (int i = 0; i < s->n; i++) free(s->paths[i]);
    free(s->paths);
    free(s->weights);
    free(s->loss);
    memset(s, 0, sizeof *s);
}

/* dst = a copy of n paths, weights and loss kinds (NULL: 1, "all"; list: given as a list). */
static void sources_set(CfgSources *dst, int n, const char *const *paths, const double *weights,
                        const CfgSourceLoss *loss, bool list) {
    sources_free(dst);
    dst->paths = ta_calloc(sizeof(char *) * (size_t)(n ? n : 1), "config sources");
    dst->weights = ta_calloc(sizeof(double) * (size_t)(n ? n : 1), "config sources");
    dst->loss = ta_calloc(sizeof(CfgSourceLoss) * (size_t)(n ? n : 1), "config sources");
    for (int i = 0; i < n; i++) {
        dst->paths[i] = ta_strdup(paths[i], "config string");
        dst->weights[i] = weights ? weights[i] : 1.0;
        dst->loss[i] = loss ? loss[i] : CFG_SRC_LOSS_ALL;
    }
    dst->n = n;
    dst->list = list;
}

/* Stores a checked CFG_T_SOURCES value. */
static void sources_store(CfgSources *dst, const cJSON *v) {
    if (cJSON_IsString(v)) {
        const char *p = v->valuestring;
        sources_set(dst, 1, &p, NULL, NULL, false);
        return;
    }
    const char *paths[CFG_MAX_SOURCES];
    double weights[CFG_MAX_SOURCES];
    CfgSourceLoss loss[CFG_MAX_SOURCES];
    int n = 0;
    for (const cJSON *e = v->child; e && n < CFG_MAX_SOURCES; e = e->next, n++) {
        const cJSON *w = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "weight") : NULL;
        const cJSON *l = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "loss") : NULL;
        paths[n] = cJSON_IsString(e) ? e->valuestring
                                     : cJSON_GetObjectItemCaseSensitive(e, "path")->valuestring;
        weights[n] = w ? w->valuedouble : 1.0;
        loss[n] = !l ? CFG_SRC_LOSS_ALL
                  : !strcmp(l->valuestring, "kl") ? CFG_SRC_LOSS_KL
                  : !strcmp(l->valuestring, "nll") ? CFG_SRC_LOSS_NLL : CFG_SRC_LOSS_ALL;
    }
    sources_set(dst, n, paths, weights, loss, true);
}

/* Checks v against row k. origin names the source ("runs/x.json", "--set"), shown the
 * key as the user wrote it. */
static int check_value(const ConfigKey *k, const cJSON *v, const char *origin, const char *shown,
                       TaError *err) {
    switch (k->type) {
    case CFG_T_INT:
    case CFG_T_INT64: {
        if (!cJSON_IsNumber(v)) return err_value(err, origin, shown, k, v, NULL);
        double x = v->valuedouble;
        double lim = k->type == CFG_T_INT ? (double)INT_MAX : 9007199254740992.0;
        if (x != floor(x) || !in_range(k, x)) return err_value(err, origin, shown, k, v, NULL);
        if (x > lim || x < -lim) {
            char tmp[64];
            snprintf(tmp, sizeof tmp, " (the largest allowed is %.0f)", lim);
            return err_value(err, origin, shown, k, v, tmp);
        }
        return TA_OK;
    }
    case CFG_T_FLOAT:
        if (!cJSON_IsNumber(v) || !in_range(k, v->valuedouble))
            return err_value(err, origin, shown, k, v, NULL);
        return TA_OK;
    case CFG_T_BOOL:
        if (!cJSON_IsBool(v)) return err_value(err, origin, shown, k, v, NULL);
        return TA_OK;
    case CFG_T_STRING:
        if (!cJSON_IsString(v) || ((k->flags & CFG_NONEMPTY) && !v->valuestring[0]))
            return err_value(err, origin, shown, k, v, NULL);
        return TA_OK;
    case CFG_T_ENUM: {
        if (cJSON_IsString(v) && enum_index(k, v->valuestring) >= 0) return TA_OK;
        char extra[128] = "";
        if (cJSON_IsString(v)) {
            int best = -1, bd = 3;
            for (int i = 0; k->choices[i]; i++) {
                int d = ta_edit_distance(v->valuestring, k->choices[i]);
                if (d < bd) { bd = d; best = i; }
            }
            if (best >= 0) snprintf(extra, sizeof extra, "; did you mean \"%s\"?", k->choices[best]);
        }
        return err_value(err, origin, shown, k, v, extra);
    }
    case CFG_T_FLOAT2: {
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2)
            return err_value(err, origin, shown, k, v, NULL);
        for (const cJSON *c = v->child; c; c = c->next)
            if (!cJSON_IsNumber(c) || !in_range(k, c->valuedouble))
                return err_value(err, origin, shown, k, v, NULL);
        return TA_OK;
    }
    case CFG_T_STRLIST:
        if (!cJSON_IsArray(v)) return err_value(err, origin, shown, k, v, NULL);
        for (const cJSON *c = v->child; c; c = c->next)
            if (!cJSON_IsString(c)) return err_value(err, origin, shown, k, v, NULL);
        return TA_OK;
    case CFG_T_SOURCES: return check_sources(k, v, origin, shown, err);
    }
    return TA_OK;
}

static void strlist_free(CfgStrList *l) {
    for (int i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* Stores a checked value into c (frees what was there). */
static void store_value(const ConfigKey *k, const cJSON *v, Config *c) {
    void *f = field(c, k);
    switch (k->type) {
    case CFG_T_INT: *(int *)f = (int)v->valuedouble; break;
    case CFG_T_INT64: *(int64_t *)f = (int64_t)v->valuedouble; break;
    case CFG_T_FLOAT: *(double *)f = v->valuedouble; break;
    case CFG_T_BOOL: *(bool *)f = cJSON_IsTrue(v); break;
    case CFG_T_STRING:
        free(*(char **)f);
        *(char **)f = ta_strdup(v->valuestring, "config string");
        break;
    case CFG_T_ENUM: *(int *)f = enum_index(k, v->valuestring); break;
    case CFG_T_FLOAT2:
        ((double *)f)[0] = v->child->valuedouble;
        ((double *)f)[1] = v->child->next->valuedouble;
        break;
    case CFG_T_STRLIST: {
        CfgStrList *l = f;
        strlist_free(l);
        int n = cJSON_GetArraySize(v);
        l->items = ta_calloc((size_t)(n ? n : 1) * sizeof(char *), "config list");
        for (const cJSON *e = v->child; e; e = e->next) l->items[l->n++] = ta_strdup(e->valuestring, "config string");
        break;
    }
    case CFG_T_SOURCES: sources_store(f, v); break;
    }
}

static cJSON *float_node(double x) {
    char num[64];
    fmt_float(x, num, sizeof num);
    return cJSON_CreateRaw(num);
}

/* The value of k in c as a new cJSON node (floats as raw text, for output only). */
static cJSON *value_to_cjson(const ConfigKey *k, const Config *c) {
    const void *f = cfield(c, k);
    switch (k->type) {
    case CFG_T_INT: return cJSON_CreateNumber(*(const int *)f);
    case CFG_T_INT64: return cJSON_CreateNumber((double)*(const int64_t *)f);
    case CFG_T_FLOAT: return float_node(*(const double *)f);
    case CFG_T_BOOL: return cJSON_CreateBool(*(const bool *)f);
    case CFG_T_STRING: return cJSON_CreateString(*(char *const *)f ? *(char *const *)f : "");
    case CFG_T_ENUM: return cJSON_CreateString(config_choice_name(k->path, *(const int *)f));
    case CFG_T_FLOAT2: {
        cJSON *a = cJSON_CreateArray();
        cJSON_AddItemToArray(a, float_node(((const double *)f)[0]));
        cJSON_AddItemToArray(a, float_node(((const double *)f)[1]));
        return a;
    }
    case CFG_T_STRLIST: {
        const CfgStrList *l = f;
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; i < l->n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(l->items[i]));
        return a;
    }
    case CFG_T_SOURCES: {
        const CfgSources *src = f;
        if (!src->list) return cJSON_CreateString(src->n ? src->paths[0] : "");
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; i < src->n; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "path", src->paths[i]);
            cJSON_AddItemToObject(o, "weight", float_node(src->weights[i]));
            if (src->loss[i] != CFG_SRC_LOSS_ALL)
                cJSON_AddStringToObject(o, "loss", src->loss[i] == CFG_SRC_LOSS_KL ? "kl" : "nll");
            cJSON_AddItemToArray(a, o);
        }
        return a;
    }
    }
    return cJSON_CreateNull();
}

/* ---- init / free / copy -------------------------------------------------------------- */
static void set_row_default(const ConfigKey *k, Config *c) {
    void *f = field(c, k);
    switch (k->type) {
    case CFG_T_INT:
    case CFG_T_ENUM: *(int *)f = (int)k->def; break;
    case CFG_T_INT64: *(int64_t *)f = (int64_t)k->def; break;
    case CFG_T_FLOAT: *(double *)f = k->def; break;
    case CFG_T_BOOL: *(bool *)f = k->def != 0; break;
    case CFG_T_STRING:
        free(*(char **)f);
        *(char **)f = ta_strdup(k->def_str ? k->def_str : "", "config string");
        break;
    case CFG_T_FLOAT2:
        ((double *)f)[0] = k->def;
        ((double *)f)[1] = k->def2;
        break;
    case CFG_T_STRLIST: strlist_free(f); break;
    case CFG_T_SOURCES: {
        const char *p = k->def_str ? k->def_str : "";
        sources_set(f, 1, &p, NULL, NULL, false);
        break;
    }
    }
}

/* Defaults that depend on other keys. */
static void derive(Config *c) {
    if (!c->run.out_dir[0]) {
        size_t n = strlen(c->run.name) + sizeof "runs/";
        char *p = ta_malloc(n, "config string");
        snprintf(p, n, "runs/%s", c->run.name);
        free(c->run.out_dir);
        c->run.out_dir = p;
    }
}

void config_init_defaults(Config *c) {
    memset(c, 0, sizeof *c);
    int n;
    const ConfigKey *keys = config_keys(&n);
    for (int i = 0; i < n; i++) set_row_default(&keys[i], c);
    derive(c);
}

void config_free(Config *c) {
    int n;
    const ConfigKey *keys = config_keys(&n);
    for (int i = 0; i < n; i++) {
        if (keys[i].type == CFG_T_STRING) free(*(char **)field(c, &keys[i]));
        if (keys[i].type == CFG_T_STRLIST) strlist_free(field(c, &keys[i]));
        if (keys[i].type == CFG_T_SOURCES) sources_free(field(c, &keys[i]));
    }
    memset(c, 0, sizeof *c);
}

void config_copy(Config *dst, const Config *src) {
    memcpy(dst, src, sizeof *dst);
    int n;
    const ConfigKey *keys = config_keys(&n);
    for (int i = 0; i < n; i++) {
        const ConfigKey *k = &keys[i];
        if (k->type == CFG_T_STRING) {
            const char *s = *(char *const *)cfield(src, k);
            *(char **)field(dst, k) = ta_strdup(s ? s : "", "config string");
        } else if (k->type == CFG_T_STRLIST) {
            const CfgStrList *a = cfield(src, k);
            CfgStrList *b = field(dst, k);
            b->items = ta_calloc((size_t)(a->n ? a->n : 1) * sizeof(char *), "config list");
            for (int j = 0; j < a->n; j++) b->items[j] = ta_strdup(a->items[j], "config string");
            b->n = a->n;
        } else if (k->type == CFG_T_SOURCES) {
            const CfgSources *a = cfield(src, k);
            CfgSources *b = field(dst, k);
            memset(b, 0, sizeof *b);
            sources_set(b, a->n, (const char *const *)a->paths, a->weights, a->loss, a->list);
        }
    }
}

/* ---- sources: parse, override ------------------------------------------------------ */
struct ConfigSource {
    char *name;              /* file path or caller's name, used in messages */
    cJSON *root;             /* a JSON object */
    unsigned char *from_set; /* (n_keys) 1 when the key's value came from --set */
};

/* Parses text (NUL-terminated) into a JSON object; errors name `name` with line:col. */
static cJSON *parse_json_object(const char *text, const char *name, const char *what,
                                TaError *err) {
    if (!strncmp(text, "\xEF\xBB\xBF", 3)) text += 3; /* UTF-8 byte-order mark */
    const char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (!*p) {
        ta_err(err, TA_EINPUT, "%s: empty file, expected a JSON object (%s)", name, what);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        const char *pos = end ? end : text;
        /* cJSON reports a non-string where an object key belongs ({"a": 1,}) one byte past
         * it: step back onto it when what precedes it is ',' or '{'. */
        if (pos > text + 1 && !strchr(" \t\r\n\"", pos[-1])) {
            const char *q = pos - 2;
            while (q > text && strchr(" \t\r\n", *q)) q--;
            if (*q == ',' || *q == '{') pos--;
        }
        int line = 1, col = 1;
        for (const char *q = text; q < pos && *q; q++) {
            if (*q == '\n') { line++; col = 1; }
            else col++;
        }
        char near[32];
        size_t n = 0;
        while (pos[n] && pos[n] != '\n' && pos[n] != '\r' && n < 20) n++;
        snprintf(near, sizeof near, "%.*s", (int)n, pos);
        if (n)
            ta_err(err, TA_EINPUT, "%s:%d:%d: invalid JSON near '%s'", name, line, col, near);
        else
            ta_err(err, TA_EINPUT, "%s:%d:%d: invalid JSON (unexpected end of %s)", name, line,
                   col, *pos ? "line" : "file");
        return NULL;
    }
    long bad = ta_utf8_invalid_at(text, strlen(text));
    if (bad >= 0) { /* every config string reaches the engine through here */
        int line = 1, col = 1;
        for (long i = 0; i < bad; i++) {
            if (text[i] == '\n') line++, col = 1;
            else col += ((unsigned char)text[i] & 0xC0) != 0x80;
        }
        ta_err(err, TA_EINPUT, "%s:%d:%d: not valid UTF-8 (byte 0x%02X); a config is a UTF-8 "
               "JSON file", name, line, col, (unsigned)(unsigned char)text[bad]);
        cJSON_Delete(root);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        char got[160];
        describe(root, got, sizeof got);
        ta_err(err, TA_EINPUT, "%s: must be a JSON object (%s), got %s", name, what, got);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* ta_read_file, refusing directories and other non-regular files up front (fopen
 * succeeds on a directory and its "size" is meaningless). */
static char *read_text(const char *path, TaError *err) {
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        ta_err(err, TA_EINPUT, "%s: not a regular file (%s), expected a JSON file", path,
               S_ISDIR(st.st_mode) ? "a directory" : "a device, pipe or socket");
        return NULL;
    }
    return ta_read_file(path, NULL, err);
}

static ConfigSource *source_new(const char *name) {
    ConfigSource *s = ta_calloc(sizeof *s, "config source");
    s->name = ta_strdup(name, "config source");
    s->from_set = ta_calloc((size_t)n_keys(), "config source");
    return s;
}

int config_source_open_string(ConfigSource **out, const char *json, const char *name,
                              TaError *err) {
    *out = NULL;
    const char *what = "a config with sections run, model, tokenizer, data, objective, optim, train";
    cJSON *root = parse_json_object(json, name, what, err);
    if (!root) return TA_EINPUT;
    ConfigSource *s = source_new(name);
    s->root = root;
    *out = s;
    return TA_OK;
}

int config_source_open(ConfigSource **out, const char *path, TaError *err) {
    *out = NULL;
    if (!path) {
        ConfigSource *s = source_new("(defaults)");
        s->root = cJSON_CreateObject();
        *out = s;
        return TA_OK;
    }
    char *text = read_text(path, err);
    if (!text) return TA_EINPUT; /* "path: cannot open: No such file or directory" */
    int rc = config_source_open_string(out, text, path, err);
    free(text);
    return rc;
}

void config_source_free(ConfigSource *src) {
    if (!src) return;
    cJSON_Delete(src->root);
    free(src->name);
    free(src->from_set);
    free(src);
}

int config_apply_override(ConfigSource *src, const char *assignment, TaError *err) {
    long bad = ta_utf8_invalid_at(assignment, strlen(assignment));
    if (bad >= 0) {
        char shown[200];
        return ta_err(err, TA_EINPUT, "--set \"%s\": not valid UTF-8 (byte %ld: 0x%02X)",
                      ta_excerpt(shown, sizeof shown, assignment, strlen(assignment)), bad + 1,
                      (unsigned)(unsigned char)assignment[bad]);
    }
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return ta_err(err, TA_EINPUT, "--set \"%s\": expected section.key=value (e.g. optim.lr=1e-4)",
                      assignment);
    char path[256];
    if ((size_t)(eq - assignment) >= sizeof path)
        return ta_err(err, TA_EINPUT, "--set: key too long in \"%s\"", assignment);
    memcpy(path, assignment, (size_t)(eq - assignment));
    path[eq - assignment] = '\0';
    const char *text = eq + 1;

    const ConfigKey *k = config_key_find(path);
    if (!k) {
        if (is_section(path)) {
            char list[700];
            keys_under(path, list, sizeof list);
            return ta_err(err, TA_EINPUT,
                          "--set: \"%s\" is a section; set one of its keys, e.g. --set %s.KEY=VALUE "
                          "(keys: %s)",
                          path, path, list);
        }
        return err_unknown(err, "--set", path, 0);
    }
    /* JSON when it parses, else a bare string. */
    const char *end = NULL;
    cJSON *v = text[0] ? cJSON_ParseWithOpts(text, &end, 1) : NULL;
    if (!v) v = cJSON_CreateString(text);
    else if ((k->type == CFG_T_STRING || k->type == CFG_T_ENUM) &&
             (cJSON_IsNumber(v) || cJSON_IsBool(v))) {
        cJSON_Delete(v); /* run.name=2024 means the string "2024" */
        v = cJSON_CreateString(text);
    }
    if (check_value(k, v, "--set", path, err) != TA_OK) {
        cJSON_Delete(v);
        return TA_EINPUT;
    }
    /* Walk/create the sections, then replace or add the leaf. */
    cJSON *obj = src->root;
    char part[256];
    const char *p = path;
    for (const char *dot; (dot = strchr(p, '.')); p = dot + 1) {
        snprintf(part, sizeof part, "%.*s", (int)(dot - p), p);
        cJSON *child = cJSON_GetObjectItemCaseSensitive(obj, part);
        if (!cJSON_IsObject(child)) {
            if (child) cJSON_DeleteItemFromObjectCaseSensitive(obj, part);
            child = cJSON_AddObjectToObject(obj, part);
        }
        obj = child;
    }
    if (cJSON_GetObjectItemCaseSensitive(obj, p))
        cJSON_ReplaceItemInObjectCaseSensitive(obj, p, v);
    else
        cJSON_AddItemToObject(obj, p, v);
    src->from_set[key_index(k)] = 1;
    return TA_OK;
}

/* ---- errors: every one of a config, one line each ----------------------------------- */
#define CONFIG_MAX_ERRORS 20

typedef struct {
    TaBuf text; /* the kept messages, '\n'-separated */
    int n;      /* errors found (kept or not) */
    int kept;
} ErrList;

/* Records one complete message (one line). */
static void errlist_add(ErrList *l, const char *msg) {
    l->n++;
    /* keep what fits in a TaError with room for the closing line */
    if (l->kept >= CONFIG_MAX_ERRORS || l->text.n + strlen(msg) + 80 >= sizeof(((TaError *)0)->msg))
        return;
    if (l->kept++) ta_buf_puts(&l->text, "\n");
    ta_buf_puts(&l->text, msg);
}

/* TA_OK when nothing was recorded; else TA_EINPUT with every kept message in err, plus a
 * line counting the ones left out. Frees the list. */
static int errlist_finish(ErrList *l, TaError *err) {
    int rc = TA_OK;
    if (l->n == 1) rc = ta_err(err, TA_EINPUT, "%s", l->text.p);
    else if (l->n > l->kept)
        rc = ta_err(err, TA_EINPUT, "%s\n... and %d more error%s (%d in all)", l->text.p,
                    l->n - l->kept, l->n - l->kept == 1 ? "" : "s", l->n);
    else if (l->n > 1)
        rc = ta_err(err, TA_EINPUT, "%s", l->text.p);
    free(l->text.p);
    memset(l, 0, sizeof *l);
    return rc;
}

/* ---- resolve ----------------------------------------------------------------------- */
typedef struct {
    ConfigSource *src;
    Config *c;
    unsigned char *explicit_; /* (n_keys) set by the file or --set */
    TaError *err;             /* scratch for one message */
    ErrList *errs;            /* where every message goes */
} Resolve;

/* Records the message in r->err (a ta_err just filled it) and carries on. */
static void note(Resolve *r) { errlist_add(r->errs, r->err->msg); }

static const char *origin_of(const Resolve *r, const ConfigKey *k) {
    return r->src->from_set[key_index(k)] ? "--set" : r->src->name;
}

/* Checks and stores every member of obj (a section at prefix); each mistake is noted and
 * the walk goes on. */
static void walk(Resolve *r, const cJSON *obj, const char *prefix) {
    for (const cJSON *e = obj->child; e; e = e->next) {
        char full[512];
        snprintf(full, sizeof full, "%s%s%s", prefix, prefix[0] ? "." : "", e->string);
        int dup = 0;
        for (const cJSON *d = obj->child; d != e && !dup; d = d->next) dup = !strcmp(d->string, e->string);
        if (dup) {
            ta_err(r->err, TA_EINPUT, "%s: duplicate key \"%s\"", r->src->name, full);
            note(r);
            continue;
        }
        const ConfigKey *k = config_key_find(full);
        if (k) {
            r->explicit_[key_index(k)] = 1; /* given, even if wrong: never "required" too */
            if (check_value(k, e, origin_of(r, k), full, r->err) != TA_OK) {
                note(r);
                continue;
            }
            store_value(k, e, r->c);
        } else if (is_section(full)) {
            if (!cJSON_IsObject(e)) {
                char list[700], got[160];
                keys_under(full, list, sizeof list);
                describe(e, got, sizeof got);
                ta_err(r->err, TA_EINPUT,
                       "%s: \"%s\" must be an object (a section with keys %s), got %s",
                       r->src->name, full, list, got);
                note(r);
                continue;
            }
            walk(r, e, full);
        } else {
            err_unknown(r->err, r->src->name, full, 0);
            note(r);
        }
    }
}

/* model.preset: a JSON object of bare CFG_PRESET keys; fills the ones not set explicitly.
 * Each mistake is noted. */
static void apply_preset(Resolve *r) {
    const char *path = r->c->model.preset;
    const ConfigKey *pk = config_key_find("model.preset");
    TaError e2 = {0};
    char *text = read_text(path, &e2);
    if (!text) {
        ta_err(r->err, TA_EINPUT, "%s: \"model.preset\": %s", origin_of(r, pk), e2.msg);
        note(r);
        return;
    }
    cJSON *root = parse_json_object(text, path, "a model preset", r->err);
    free(text);
    if (!root) {
        note(r);
        return;
    }
    for (const cJSON *e = root->child; e; e = e->next) {
        int dup = 0;
        for (const cJSON *d = root->child; d != e && !dup; d = d->next) dup = !strcmp(d->string, e->string);
        char full[512];
        snprintf(full, sizeof full, "model.%s", e->string);
        const ConfigKey *k = config_key_find(full);
        if (dup) ta_err(r->err, TA_EINPUT, "%s: duplicate key \"%s\"", path, e->string);
        else if (!k || !(k->flags & CFG_PRESET)) err_unknown(r->err, path, e->string, 1);
        else if (check_value(k, e, path, e->string, r->err) == TA_OK) {
            if (!r->explicit_[key_index(k)]) store_value(k, e, r->c);
            continue;
        }
        note(r);
    }
    cJSON_Delete(root);
}

/* Notes one failed check between keys (a printf-style message naming the keys). */
static void bad(Resolve *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad(Resolve *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err->msg, sizeof r->err->msg, fmt, ap);
    va_end(ap);
    r->err->code = TA_EINPUT;
    note(r);
}

/* Checks between keys, on values every key check has passed; each failure is noted. */
static void cross_checks(Resolve *r) {
    const Config *c = r->c;
#define ORIGIN(path) origin_of(r, config_key_find(path))
    if (c->model.init != CFG_INIT_SCRATCH && !c->model.path[0])
        bad(r, "%s: \"model.path\" is required when \"model.init\" is \"%s\"",
            ORIGIN("model.init"), config_choice_name("model.init", c->model.init));
    if (c->model.d_model % c->model.n_head != 0)
        bad(r, "%s: \"model.d_model\" (%d) must be a multiple of \"model.n_head\" (%d)",
            ORIGIN("model.d_model"), c->model.d_model, c->model.n_head);
    /* With init = checkpoint | hf the dims come from the model directory; the trainer
     * checks max_len against those. */
    if (c->model.init == CFG_INIT_SCRATCH && c->data.max_len > c->model.max_seq_len)
        bad(r, "%s: \"data.max_len\" (%d) must be <= \"model.max_seq_len\" (%d)",
            ORIGIN("data.max_len"), c->data.max_len, c->model.max_seq_len);
    if (c->data.format != CFG_DATA_TOKENS && c->data.max_prompt_len >= c->data.max_len)
        bad(r, "%s: \"data.max_prompt_len\" (%d) must be < \"data.max_len\" (%d) for "
            "\"data.format\" \"%s\"",
            ORIGIN("data.max_prompt_len"), c->data.max_prompt_len, c->data.max_len,
            config_choice_name("data.format", c->data.format));
    if (c->data.val[0] && c->data.val_fraction > 0) {
        char num[64];
        fmt_num(c->data.val_fraction, num, sizeof num);
        bad(r, "%s: \"data.val_fraction\" (%s) must be 0 when \"data.val\" is set (\"%s\")",
            ORIGIN("data.val_fraction"), num, c->data.val);
    }
    if (c->tokenizer.type == CFG_TOK_SENTENCEPIECE && !c->tokenizer.model[0] &&
        c->data.format != CFG_DATA_TOKENS && c->model.init == CFG_INIT_SCRATCH)
        bad(r, "%s: \"tokenizer.model\" is required when \"tokenizer.type\" is "
            "\"sentencepiece\" and \"data.format\" is \"%s\"",
            ORIGIN("tokenizer.model"), config_choice_name("data.format", c->data.format));
    CfgObjectiveType t = c->objective.type;
    if ((t == CFG_OBJ_DPO || t == CFG_OBJ_ORPO || t == CFG_OBJ_DDPO || t == CFG_OBJ_DORPO) &&
        c->data.format != CFG_DATA_PREFERENCE && c->data.format != CFG_DATA_MULTI)
        bad(r, "%s: \"objective.type\" \"%s\" needs pairs: \"data.format\" must be "
            "\"preference\" or \"multi\", got \"%s\"",
            ORIGIN("objective.type"), config_choice_name("objective.type", t),
            config_choice_name("data.format", c->data.format));
    if (t == CFG_OBJ_REWARD && c->data.format != CFG_DATA_PREFERENCE)
        bad(r, "%s: \"objective.type\" \"reward\" trains on preference pairs: "
            "\"data.format\" must be \"preference\", got \"%s\"",
            ORIGIN("objective.type"), config_choice_name("data.format", c->data.format));
    if (c->data.train.n > 1 && c->data.format == CFG_DATA_TOKENS)
        bad(r, "%s: \"data.train\" lists %d sources, which needs a JSONL \"data.format\" "
            "(sft, preference, multi); token shards take one path or glob",
            ORIGIN("data.train"), c->data.train.n);
    if (c->objective.attribute.guide[0] && t != CFG_OBJ_SFT && t != CFG_OBJ_PRETRAIN)
        bad(r, "%s: \"objective.attribute.guide\" applies to \"objective.type\" \"sft\" or "
            "\"pretrain\", got \"%s\"",
            ORIGIN("objective.attribute.guide"), config_choice_name("objective.type", t));
    /* a "kl" / "nll" source feeds one of objective.attribute's terms only: sft with a
     * guide; and some source of positive weight must feed each term */
    int first_one = -1, nll_fed = 0, kl_fed = 0;
    for (int i = 0; i < c->data.train.n; i++) {
        const CfgSourceLoss l = c->data.train.loss[i];
        if (l != CFG_SRC_LOSS_ALL && first_one < 0) first_one = i;
        if (c->data.train.weights[i] > 0) {
            nll_fed |= l != CFG_SRC_LOSS_KL;
            kl_fed |= l != CFG_SRC_LOSS_NLL;
        }
    }
    if (first_one >= 0 && (t != CFG_OBJ_SFT || !c->objective.attribute.guide[0])) {
        const int kl = c->data.train.loss[first_one] == CFG_SRC_LOSS_KL;
        bad(r, "%s: \"data.train[%d].loss\" is \"%s\" (rows that feed the attribute %s term "
            "only), which needs \"objective.type\" \"sft\" with \"objective.attribute.guide\" "
            "set (got \"%s\"%s)",
            ORIGIN("data.train"), first_one, kl ? "kl" : "nll", kl ? "KL" : "NLL",
            config_choice_name("objective.type", t),
            c->objective.attribute.guide[0] ? "" : ", no guide");
    } else if (first_one >= 0 && (!nll_fed || !kl_fed)) {
        bad(r, "%s: every \"data.train\" source of weight > 0 has \"loss\" \"%s\": nothing "
            "feeds the %s; give a source of weight > 0 \"loss\" \"all\" or \"%s\"",
            ORIGIN("data.train"), nll_fed ? "nll" : "kl", nll_fed ? "KL" : "NLL",
            nll_fed ? "kl" : "nll");
    }
    const CfgAttribute *at = &c->objective.attribute;
    if (at->base[0] && at->q_base != CFG_QBASE_BASE)
        bad(r, "%s: \"objective.attribute.base\" (\"%s\") is only read when "
            "\"objective.attribute.q_base\" is \"base\"",
            ORIGIN("objective.attribute.base"), at->base);
    if (at->q_base == CFG_QBASE_BASE && !at->guide[0])
        bad(r, "%s: \"objective.attribute.q_base\" \"base\" needs a guide: set "
            "\"objective.attribute.guide\"",
            ORIGIN("objective.attribute.q_base"));
    if (t == CFG_OBJ_NADO && c->data.format != CFG_DATA_MULTI)
        bad(r, "%s: \"objective.type\" \"nado\" learns from labelled samples: "
            "\"data.format\" must be \"multi\" (responses with a 0/1 \"score\", as "
            "`tinyalign score` writes them), got \"%s\"",
            ORIGIN("objective.type"), config_choice_name("data.format", c->data.format));
    if (t == CFG_OBJ_NADO && !c->objective.nado.base[0] && c->model.init == CFG_INIT_SCRATCH)
        bad(r, "%s: \"objective.nado.base\" is required when \"model.init\" is "
            "\"scratch\" (the base model whose samples the NADO learns from; \"\" "
            "means the initial model, which here is random)",
            ORIGIN("objective.nado.base"));
    if (c->train.patience > 0 && c->train.eval_every == 0)
        bad(r, "%s: \"train.patience\" (%d) needs evaluations: set \"train.eval_every\" > 0",
            ORIGIN("train.patience"), c->train.patience);
    if (c->train.keep_best && c->train.eval_every == 0)
        bad(r, "%s: \"train.keep_best\" needs evaluations: set \"train.eval_every\" > 0",
            ORIGIN("train.keep_best"));
    const CfgEvalGenerate *eg = &c->train.eval_generate;
    if (eg->scorer[0] && c->train.eval_every == 0)
        bad(r, "%s: \"train.eval_generate.scorer\" runs every \"train.eval_every\" steps: set "
            "it > 0", ORIGIN("train.eval_generate.scorer"));
    if (eg->scorer[0] && eg->n == 0 && !eg->greedy)
        bad(r, "%s: \"train.eval_generate.n\" is 0 and \"train.eval_generate.greedy\" is "
            "false: nothing to sample", ORIGIN("train.eval_generate.n"));
    if (eg->scorer[0] && !eg->prompts[0] && c->data.format == CFG_DATA_TOKENS)
        bad(r, "%s: \"train.eval_generate.prompts\" is required with \"data.format\" "
            "\"tokens\" (token shards have no prompts)",
            ORIGIN("train.eval_generate.scorer"));
    if (eg->scorer[0] && !eg->prompts[0] && !c->data.val[0] && c->data.val_fraction == 0)
        bad(r, "%s: \"train.eval_generate\" samples the validation prompts: set "
            "\"data.val\", \"data.val_fraction\" or \"train.eval_generate.prompts\"",
            ORIGIN("train.eval_generate.scorer"));
    else if (eg->scorer[0] && !eg->prompts[0] && !c->data.val[0] && c->data.format == CFG_DATA_MULTI)
        bad(r, "%s: with \"data.format\" \"multi\" and \"data.val_fraction\" (responses "
            "held out, not prompts), set \"train.eval_generate.prompts\"",
            ORIGIN("train.eval_generate.scorer"));
#undef ORIGIN
}

/* config_resolve with every error noted in errs (the caller finishes the list). */
static int resolve_into(ConfigSource *src, Config *out, ErrList *errs) {
    int n;
    const ConfigKey *keys = config_keys(&n);
    Config c;
    memset(&c, 0, sizeof c);
    for (int i = 0; i < n; i++) set_row_default(&keys[i], &c);
    TaError one = {0};
    Resolve r = {.src = src, .c = &c, .explicit_ = ta_calloc((size_t)n, "config"), .err = &one,
                 .errs = errs};
    walk(&r, src->root, "");
    if (c.model.preset[0]) apply_preset(&r);
    for (int i = 0; i < n; i++)
        if ((keys[i].flags & CFG_REQUIRED) && !r.explicit_[i]) {
            ta_err(&one, TA_EINPUT, "%s: \"%s\" is required (%s)", src->name, keys[i].path,
                   keys[i].doc);
            note(&r);
        }
    derive(&c);
    /* the checks between keys read the values: only once every key is valid */
    if (errs->n == 0) cross_checks(&r);
    free(r.explicit_);
    if (errs->n > 0) { /* this config's or the --set overrides' before it */
        config_free(&c);
        memset(out, 0, sizeof *out);
        return TA_EINPUT;
    }
    *out = c;
    return TA_OK;
}

int config_resolve(ConfigSource *src, Config *out, TaError *err) {
    ErrList errs = {0};
    resolve_into(src, out, &errs);
    return errlist_finish(&errs, err);
}

int config_load(Config *out, const char *path, const char *const *sets, int n_sets,
                TaError *err) {
    memset(out, 0, sizeof *out);
    ConfigSource *src = NULL;
    int rc = config_source_open(&src, path, err);
    if (rc != TA_OK) return rc; /* unreadable or not JSON: nothing more to check */
    /* every --set is checked, then the file: all the mistakes in one report */
    ErrList errs = {0};
    for (int i = 0; i < n_sets; i++) {
        TaError one = {0};
        if (config_apply_override(src, sets[i], &one) != TA_OK) errlist_add(&errs, one.msg);
    }
    resolve_into(src, out, &errs);
    config_source_free(src);
    return errlist_finish(&errs, err);
}

int config_load_string(Config *out, const char *json, const char *name, TaError *err) {
    memset(out, 0, sizeof *out);
    ConfigSource *src = NULL;
    int rc = config_source_open_string(&src, json, name, err);
    if (rc == TA_OK) rc = config_resolve(src, out, err);
    config_source_free(src);
    return rc;
}

/* ---- output --------------------------------------------------------------------- */
char *config_to_json(const Config *c) {
    int n;
    const ConfigKey *keys = config_keys(&n);
    cJSON *root = cJSON_CreateObject();
    for (int i = 0; i < n; i++) {
        cJSON *obj = root;
        char part[256];
        const char *p = keys[i].path;
        for (const char *dot; (dot = strchr(p, '.')); p = dot + 1) {
            snprintf(part, sizeof part, "%.*s", (int)(dot - p), p);
            cJSON *child = cJSON_GetObjectItemCaseSensitive(obj, part);
            obj = child ? child : cJSON_AddObjectToObject(obj, part);
        }
        cJSON_AddItemToObject(obj, p, value_to_cjson(&keys[i], c));
    }
    TaBuf b = {0};
    put_json(&b, root, 0);
    ta_buf_puts(&b, "\n");
    cJSON_Delete(root);
    return b.p;
}

static int values_equal(const ConfigKey *k, const Config *a, const Config *b) {
    const void *x = cfield(a, k), *y = cfield(b, k);
    switch (k->type) {
    case CFG_T_INT:
    case CFG_T_ENUM: return *(const int *)x == *(const int *)y;
    case CFG_T_INT64: return *(const int64_t *)x == *(const int64_t *)y;
    case CFG_T_FLOAT: return *(const double *)x == *(const double *)y;
    case CFG_T_BOOL: return *(const bool *)x == *(const bool *)y;
    case CFG_T_FLOAT2:
        return ((const double *)x)[0] == ((const double *)y)[0] &&
               ((const double *)x)[1] == ((const double *)y)[1];
    case CFG_T_STRING: {
        const char *s = *(char *const *)x, *t = *(char *const *)y;
        return !strcmp(s ? s : "", t ? t : "");
    }
    case CFG_T_STRLIST: {
        const CfgStrList *l = x, *m = y;
        if (l->n != m->n) return 0;
        for (int i = 0; i < l->n; i++)
            if (strcmp(l->items[i], m->items[i])) return 0;
        return 1;
    }
    case CFG_T_SOURCES: { /* "a" and ["a"] are the same data */
        const CfgSources *l = x, *m = y;
        if (l->n != m->n) return 0;
        for (int i = 0; i < l->n; i++)
            if (strcmp(l->paths[i], m->paths[i]) || l->weights[i] != m->weights[i] ||
                l->loss[i] != m->loss[i])
                return 0;
        return 1;
    }
    }
    return 0;
}

static void value_text(const ConfigKey *k, const Config *c, TaBuf *b) {
    cJSON *v = value_to_cjson(k, c);
    put_json(b, v, -1);
    cJSON_Delete(v);
}

int config_diff(const Config *a, const Config *b, int math_only, char *buf, size_t cap) {
    int n, count = 0;
    const ConfigKey *keys = config_keys(&n);
    TaBuf out = {0};
    for (int i = 0; i < n; i++) {
        const ConfigKey *k = &keys[i];
        if (math_only && !(k->flags & CFG_MATH)) continue;
        if (values_equal(k, a, b)) continue;
        if (count++) ta_buf_puts(&out, "\n");
        ta_buf_printf(&out, "%s: ", k->path);
        value_text(k, a, &out);
        ta_buf_puts(&out, " -> ");
        value_text(k, b, &out);
    }
    if (cap) snprintf(buf, cap, "%s", out.p ? out.p : "");
    free(out.p);
    return count;
}

int config_diff_math(const Config *a, const Config *b, char *buf, size_t cap) {
    return config_diff(a, b, 1, buf, cap);
}

char *config_help_text(void) {
    static const char *const TYPE_NAMES[] = {"int", "int", "float", "bool", "string", "enum",
                                            "[float,float]", "[string]", "path|[src]"};
    int n;
    const ConfigKey *keys = config_keys(&n);
    Config d;
    config_init_defaults(&d);
    TaBuf b = {0};
    ta_buf_puts(&b, "Config keys (JSON sections; --set section.key=value overrides one).\n"
                 "Relative paths are resolved against the current working directory.\n"
                 "* = not part of the training math (may change on resume).\n\n");
    ta_buf_printf(&b, "  %-34s %-13s %-14s %s\n", "key", "type", "default", "meaning");
    for (int i = 0; i < n; i++) {
        const ConfigKey *k = &keys[i];
        TaBuf def = {0};
        if (!strcmp(k->path, "run.out_dir")) ta_buf_puts(&def, "\"runs/<name>\"");
        else value_text(k, &d, &def);
        char extra[600] = "", r[160];
        if (k->type == CFG_T_ENUM) {
            char ch[512];
            choices_text(k, ch, sizeof ch, "|", 0);
            snprintf(extra, sizeof extra, " [%s]", ch);
        } else {
            range_text(k, r, sizeof r);
            if (r[0]) snprintf(extra, sizeof extra, " (%s%s)", k->type == CFG_T_FLOAT2 ? "each " : "", r);
        }
        ta_buf_printf(&b, "%c %-34s %-13s %-14s %s%s%s\n", k->flags & CFG_MATH ? ' ' : '*', k->path,
                   TYPE_NAMES[k->type], def.p, k->doc, extra,
                   k->flags & CFG_REQUIRED ? " (required)" : "");
        free(def.p);
    }
    config_free(&d);
    return b.p;
}

void config_print_help(FILE *f) {
    char *s = config_help_text();
    fputs(s, f);
    free(s);
}

/* ---- conversions -------------------------------------------------------------------- */
void config_to_adamw(const Config *c, AdamWConfig *out) {
    /* plain assignments: AdamWConfig holds doubles (as Python does); no rounding here */
    memset(out, 0, sizeof *out);
    out->lr = c->optim.lr;
    out->beta1 = c->optim.betas[0];
    out->beta2 = c->optim.betas[1];
    out->eps = c->optim.eps;
    out->weight_decay = c->optim.weight_decay;
    out->schedule = c->optim.schedule;
    out->warmup_steps = c->optim.warmup_steps;
    out->max_steps = c->train.max_steps;
    out->min_lr_ratio = c->optim.min_lr_ratio;
    out->grad_clip = c->optim.grad_clip;
}

void config_to_gpt2(const Config *c, GPT2Config *out) {
    memset(out, 0, sizeof *out);
    out->max_seq_len = c->model.max_seq_len;
    out->vocab_size = c->model.vocab_size;
    out->padded_vocab_size = 0;
    out->n_layer = c->model.n_layer;
    out->n_head = c->model.n_head;
    out->d_model = c->model.d_model;
}
