/* jsonl.c — the JSONL layer: the line reader and JSON helpers (jsonl.h), where the members
 * of an object lie in its text (so fields are kept as written), reading a kept field's
 * value, and writing rows that splice kept fields back (data.h). cJSON lives here and in
 * the readers; the rest of the engine writes JSONL through these functions.
 * Not here: what the objects mean (jsonl_dataset.c). */
#define _POSIX_C_SOURCE 200809L
#include "tinyalign/jsonl.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "tinyalign/data.h"

int jsonl_open(JsonlReader *r, const char *path, TaError *err) {
    memset(r, 0, sizeof *r);
    r->path = path;
    r->f = fopen(path, "rb");
    if (!r->f) return ta_err(err, TA_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(r->f), &st) == 0 && S_ISDIR(st.st_mode)) {
        jsonl_close(r);
        return ta_err(err, TA_EINPUT, "%s: is a directory, expected a JSONL file", path);
    }
    return TA_OK;
}

void jsonl_close(JsonlReader *r) {
    if (r->f) fclose(r->f);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

int jsonl_next(JsonlReader *r, const char **line, size_t *len, TaError *err) {
    for (;;) {
        errno = 0;
        ssize_t got = getline(&r->buf, &r->cap, r->f);
        if (got < 0) {
            if (ferror(r->f)) {
                ta_err(err, TA_EINPUT, "%s:%ld: read error: %s", r->path, r->lineno + 1,
                       strerror(errno ? errno : EIO));
                return -1;
            }
            return 0;
        }
        r->lineno++;
        char *s = r->buf;
        size_t n = (size_t)got;
        if (n && s[n - 1] == '\n') n--;
        if (n && s[n - 1] == '\r') n--;
        if (r->lineno == 1 && n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) s += 3, n -= 3;
        if (is_blank(s, n)) continue;
        *line = s;
        *len = n;
        return 1;
    }
}


const char *jsonl_type_name(const cJSON *v) {
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    return "an unknown JSON value";
}

/* Offset of the first "\u0000" escape in a JSON text, or -1. Escape pairs are skipped as
 * a whole, so an escaped backslash followed by "u0000" is not taken for one. */
static long find_nul_escape(const char *s, size_t n) {
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '\\') continue;
        if (s[i + 1] == 'u' && i + 6 <= n && !memcmp(s + i + 2, "0000", 4)) return (long)i;
        i++; /* skip the escaped character */
    }
    return -1;
}

static void utf8_error_place(const char *s, size_t n, size_t off, char *out, size_t cap);

int jsonl_parse_object(const char *path, long lineno, const char *line, size_t len,
                       cJSON **out, TaError *err) {
    *out = NULL;
    const char *nul = memchr(line, '\0', len);
    if (nul)
        return ta_err(err, TA_EINPUT, "%s:%ld:%ld: NUL byte in the line (not valid JSON text)",
                      path, lineno, ta_utf8_column(line, (size_t)(nul - line)));
    const char *end = NULL;
    cJSON *obj = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!obj) {
        if (!end || end < line || end > line + len) end = line + len;
        size_t off = (size_t)(end - line);
        char near[32];
        size_t k = 0;
        while (end + k < line + len && k < 20) k++;
        if (end + k < line + len) /* do not cut a UTF-8 sequence in half */
            while (k && ((unsigned char)end[k] & 0xC0) == 0x80) k--;
        for (size_t i = 0; i < k; i++) near[i] = (unsigned char)end[i] < 32 ? ' ' : end[i];
        near[k] = '\0';
        const char *p = line;
        while (p < line + len && (*p == ' ' || *p == '\t')) p++;
        const char *hint = (lineno == 1 && p < line + len && *p == '[')
                               ? " (a JSON array file? datasets are JSONL: one object per line)"
                               : "";
        if (k)
            return ta_err(err, TA_EINPUT, "%s:%ld:%ld: invalid JSON near '%s'%s", path, lineno,
                          ta_utf8_column(line, off), near, hint);
        return ta_err(err, TA_EINPUT, "%s:%ld:%ld: invalid JSON (unexpected end of line)%s",
                      path, lineno, ta_utf8_column(line, off), hint);
    }
    while (end < line + len && (*end == ' ' || *end == '\t' || *end == '\r')) end++;
    if (end < line + len) {
        cJSON_Delete(obj);
        return ta_err(err, TA_EINPUT, "%s:%ld:%ld: unexpected text after the JSON object "
                      "(one object per line)", path, lineno, ta_utf8_column(line, (size_t)(end - line)));
    }
    if (!cJSON_IsObject(obj)) {
        int arr = cJSON_IsArray(obj);
        ta_err(err, TA_EINPUT, "%s:%ld: expected a JSON object, found %s%s", path, lineno,
               jsonl_type_name(obj), arr ? " (datasets are JSONL: one object per line)" : "");
        cJSON_Delete(obj);
        return TA_EINPUT;
    }
    long bad = ta_utf8_invalid_at(line, len);
    if (bad >= 0) {
        char where[160];
        utf8_error_place(line, len, (size_t)bad, where, sizeof where);
        cJSON_Delete(obj);
        return ta_err(err, TA_EINPUT, "%s:%ld:%ld: %s is not valid UTF-8 (byte 0x%02X)", path,
                      lineno, ta_utf8_column(line, (size_t)bad), where,
                      (unsigned)(unsigned char)line[bad]);
    }
    long z = find_nul_escape(line, len);
    if (z >= 0) {
        cJSON_Delete(obj);
        return ta_err(err, TA_EINPUT,
                      "%s:%ld:%ld: \\u0000 (NUL) in a string is not supported", path, lineno,
                      ta_utf8_column(line, (size_t)z));
    }
    *out = obj;
    return TA_OK;
}

/* ---- member spans ---------------------------------------------------------------------- */
/* The text was accepted by cJSON, so these skip valid JSON; every step is still
 * bounds-checked and a surprise returns (size_t)-1 instead of reading past the end. */
#define SCAN_BAD ((size_t)-1)

static size_t skip_ws(const char *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) i++;
    return i;
}

static size_t skip_string(const char *s, size_t n, size_t i) { /* s[i] == '"' */
    for (i++; i < n; i++) {
        if (s[i] == '\\') i++;
        else if (s[i] == '"') return i + 1;
    }
    return SCAN_BAD;
}

static size_t skip_value(const char *s, size_t n, size_t i) {
    if (i >= n) return SCAN_BAD;
    if (s[i] == '"') return skip_string(s, n, i);
    if (s[i] == '{' || s[i] == '[') {
        int depth = 0;
        while (i < n) {
            char c = s[i];
            if (c == '"') {
                if ((i = skip_string(s, n, i)) == SCAN_BAD) return SCAN_BAD;
                continue;
            }
            if (c == '{' || c == '[') depth++;
            else if ((c == '}' || c == ']') && --depth == 0) return i + 1;
            i++;
        }
        return SCAN_BAD;
    }
    size_t start = i; /* number, true, false, null */
    while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
           s[i] != '\r' && s[i] != '\n')
        i++;
    return i > start ? i : SCAN_BAD;
}

int jsonl_scan_object(const char *s, size_t n, size_t at, JsonlMember *m, int cap, size_t *end) {
    size_t i = skip_ws(s, n, at);
    if (i >= n || s[i] != '{') return -1;
    i = skip_ws(s, n, i + 1);
    int k = 0;
    if (i < n && s[i] == '}') {
        if (end) *end = i + 1;
        return 0;
    }
    while (i < n) {
        if (k == cap || s[i] != '"') return -1;
        m[k].key = i;
        if ((i = skip_string(s, n, i)) == SCAN_BAD) return -1;
        m[k].key_end = i;
        i = skip_ws(s, n, i);
        if (i >= n || s[i] != ':') return -1;
        i = skip_ws(s, n, i + 1);
        m[k].value = i;
        if ((i = skip_value(s, n, i)) == SCAN_BAD) return -1;
        m[k++].value_end = i;
        i = skip_ws(s, n, i);
        if (i < n && s[i] == '}') {
            if (end) *end = i + 1;
            return k;
        }
        if (i >= n || s[i] != ',') return -1;
        i = skip_ws(s, n, i + 1);
    }
    return -1;
}

int jsonl_scan_array(const char *s, size_t n, size_t at, size_t *items, int cap) {
    size_t i = skip_ws(s, n, at);
    if (i >= n || s[i] != '[') return -1;
    i = skip_ws(s, n, i + 1);
    if (i < n && s[i] == ']') return 0;
    int k = 0;
    while (i < n) {
        if (k == cap) return -1;
        items[k++] = i;
        if ((i = skip_value(s, n, i)) == SCAN_BAD) return -1;
        i = skip_ws(s, n, i);
        if (i < n && s[i] == ']') return k;
        if (i >= n || s[i] != ',') return -1;
        i = skip_ws(s, n, i + 1);
    }
    return -1;
}

/* ---- where an invalid UTF-8 byte lies, for the message ------------------------------- */
/* The member path ("prompt", "responses[2].text", "meta.tags[0]") of the string holding
 * byte off of the JSON text s[0..n) (an object cJSON accepted), with the byte's position
 * inside that string: 'field "prompt" (byte 2 of the string)'. Names are shown when they
 * are themselves valid UTF-8 without escapes; a byte inside a name is "a member name". */
static void utf8_error_place(const char *s, size_t n, size_t off, char *out, size_t cap) {
    char path[128] = "";
    size_t at = 0, plen = 0;
    for (int depth = 0; depth < 16; depth++) {
        size_t commas = 1;
        for (size_t i = at; i < n; i++) commas += s[i] == ',';
        size_t i = skip_ws(s, n, at);
        if (i >= n) break;
        size_t vbeg = SCAN_BAD, vend = 0;
        if (s[i] == '{') {
            JsonlMember *m = ta_malloc(sizeof *m * commas, "member spans");
            int k = jsonl_scan_object(s, n, i, m, (int)commas, NULL);
            for (int j = 0; j < k; j++) {
                if (off >= m[j].key && off < m[j].key_end) {
                    free(m);
                    snprintf(out, cap, "a member name%s%s%s", plen ? " in field \"" : "",
                             path, plen ? "\"" : "");
                    return;
                }
                if (off >= m[j].value && off < m[j].value_end) {
                    size_t kl = m[j].key_end - m[j].key - 2;
                    const char *key = s + m[j].key + 1;
                    int plain = ta_utf8_invalid_at(key, kl) < 0 && !memchr(key, '\\', kl);
                    int w = snprintf(path + plen, sizeof path - plen, "%s%.*s", plen ? "." : "",
                                     plain ? (int)kl : 1, plain ? key : "?");
                    if (w > 0 && plen + (size_t)w < sizeof path) plen += (size_t)w;
                    vbeg = m[j].value;
                    vend = m[j].value_end;
                    break;
                }
            }
            free(m);
        } else if (s[i] == '[') {
            size_t *items = ta_malloc(sizeof *items * commas, "item spans");
            int k = jsonl_scan_array(s, n, i, items, (int)commas);
            for (int j = k - 1; j >= 0; j--)
                if (off >= items[j]) {
                    size_t e = skip_value(s, n, items[j]);
                    if (e != SCAN_BAD && off < e) {
                        int w = snprintf(path + plen, sizeof path - plen, "[%d]", j);
                        if (w > 0 && plen + (size_t)w < sizeof path) plen += (size_t)w;
                        vbeg = items[j];
                        vend = e;
                    }
                    break;
                }
            free(items);
        }
        if (vbeg == SCAN_BAD) break;
        if (s[vbeg] == '"') { /* the string holding the byte */
            snprintf(out, cap, "field \"%s\" (byte %zu of the string)", path, off - vbeg);
            return;
        }
        at = vbeg;
        n = vend;
    }
    snprintf(out, cap, plen ? "field \"%s\"" : "the line", path);
}

/* ---- kept fields ---------------------------------------------------------------------- */
const DataField *data_fields_find(const DataFields *f, const char *key) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->f[i].key, key)) return &f->f[i];
    return NULL;
}

int data_field_number(const DataField *f, double *out, TaError *err) {
    cJSON *v = cJSON_Parse(f->value);
    int ok = cJSON_IsNumber(v) && isfinite(v->valuedouble);
    if (ok) *out = v->valuedouble;
    else ta_err(err, TA_EINPUT, "field \"%s\" must be a finite number, found %s", f->key,
                cJSON_IsNumber(v) ? "an out-of-range number" : jsonl_type_name(v));
    cJSON_Delete(v);
    return ok ? TA_OK : TA_EINPUT;
}

char *data_field_text(const DataField *f) {
    cJSON *v = cJSON_Parse(f->value);
    const char *s = cJSON_IsString(v) && v->valuestring ? v->valuestring : f->value;
    char *out = ta_malloc(strlen(s) + 1, "field text");
    memcpy(out, s, strlen(s) + 1);
    cJSON_Delete(v);
    return out;
}

/* ---- writing -------------------------------------------------------------------------- */
/* cJSON prints the literal (the same escaping and number format as every JSON file the
 * engine wrote before kept fields existed). */
static void put_item(TaBuf *b, cJSON *item) {
    char *s = cJSON_PrintUnformatted(item);
    TA_ASSERT(s != NULL);
    ta_buf_puts(b, s);
    free(s);
    cJSON_Delete(item);
}

/* the engine's one JSON string writer (the same escapes cJSON prints) */
void jsonl_put_string(TaBuf *b, const char *s) { ta_buf_json_string(b, s); }
void jsonl_put_number(TaBuf *b, double v) { put_item(b, cJSON_CreateNumber(v)); }

static int skipped(const char *key, const char *const *skip) {
    for (; skip && *skip; skip++) {
        size_t n = strlen(*skip);
        if (n && (*skip)[n - 1] == '*' ? !strncmp(key, *skip, n - 1) : !strcmp(key, *skip))
            return 1;
    }
    return 0;
}

static void put_fields(TaBuf *b, const DataField *f, int n, const char *const *skip) {
    for (int i = 0; i < n; i++)
        if (!skipped(f[i].key, skip)) {
            ta_buf_add(b, ",", 1);
            ta_buf_puts(b, f[i].json);
        }
}

void jsonl_put_fields(TaBuf *b, const DataFields *f, const char *const *skip) {
    put_fields(b, f->f, f->n, skip);
}

void jsonl_put_row_start(TaBuf *b, const DataRow *r, const char *const *skip) {
    ta_buf_puts(b, "{\"prompt\":");
    jsonl_put_string(b, r->prompt);
    put_fields(b, r->extra.f, r->n_before, skip);
    ta_buf_puts(b, ",\"responses\":[");
}

void jsonl_put_row_end(TaBuf *b, const DataRow *r, const char *const *skip) {
    ta_buf_puts(b, "]");
    put_fields(b, r->extra.f + r->n_before, r->extra.n - r->n_before, skip);
    ta_buf_puts(b, "}\n");
}

void jsonl_put_response_start(TaBuf *b, const DataResponse *r, const char *const *skip) {
    ta_buf_puts(b, "{\"text\":");
    jsonl_put_string(b, r->text);
    jsonl_put_fields(b, &r->extra, skip);
}
