/* template.c — prompt templates with row fields (include/tinyalign/sample.h): parse
 * "{prompt} ... {label} ... {{literal}}" once, fill it per row from data.h's kept fields.
 * Not here: conditionals, loops, format specs ("{x:.2f}"), nested field paths ("{a.b}").
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "tinyalign/sample.h"

static void add_part(SampleTemplate *t, int is_field, const char *s, size_t n) {
    t->parts = ta_realloc(t->parts, sizeof *t->parts * (size_t)(t->n_parts + 1), "template");
    char *c = ta_malloc(n + 1, "template");
    memcpy(c, s, n);
    c[n] = '\0';
    t->parts[t->n_parts].is_field = is_field;
    t->parts[t->n_parts].s = c;
    t->n_parts++;
}

void sample_template_free(SampleTemplate *t) {
    for (int i = 0; i < t->n_parts; i++) free(t->parts[i].s);
    free(t->parts);
    free(t->text);
    memset(t, 0, sizeof *t);
}

/* 1-based character (code point) position of byte offset off. */
static long char_pos(const char *s, size_t off) {
    long c = 1;
    for (size_t i = 0; i < off; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

int sample_template_parse(SampleTemplate *t, const char *text, TaError *err) {
    memset(t, 0, sizeof *t);
    t->text = ta_strdup(text, "template");
    TaBuf lit = {0};
    int rc = TA_OK;
    for (size_t i = 0; text[i] && rc == TA_OK;) {
        char c = text[i];
        if ((c == '{' || c == '}') && text[i + 1] == c) { /* {{ or }} */
            ta_buf_add(&lit, &c, 1);
            i += 2;
        } else if (c == '}') {
            rc = ta_err(err, TA_EINPUT, "template: a lone '}' at character %ld (write }} for a "
                        "literal brace)", char_pos(text, i));
        } else if (c == '{') {
            size_t j = i + 1;
            while (text[j] && text[j] != '}' && text[j] != '{') j++;
            if (text[j] != '}')
                rc = ta_err(err, TA_EINPUT, "template: the '{' at character %ld has no closing '}' "
                            "(write {{ for a literal brace)", char_pos(text, i));
            else if (j == i + 1)
                rc = ta_err(err, TA_EINPUT, "template: empty placeholder {} at character %ld "
                            "(name a field: {prompt}, {label}, ...)", char_pos(text, i));
            else {
                if (lit.n) add_part(t, 0, lit.p, lit.n), lit.n = 0;
                add_part(t, 1, text + i + 1, j - i - 1);
                i = j + 1;
            }
        } else {
            ta_buf_add(&lit, &c, 1);
            i++;
        }
    }
    if (rc == TA_OK && lit.n) add_part(t, 0, lit.p, lit.n);
    free(lit.p);
    if (rc != TA_OK) sample_template_free(t);
    return rc;
}

int sample_template_load(SampleTemplate *t, const char *arg, TaError *err) {
    memset(t, 0, sizeof *t);
    struct stat st;
    int rc;
    TaError e = {0};
    if (stat(arg, &st) == 0 && S_ISREG(st.st_mode)) {
        size_t len;
        char *text = ta_read_file(arg, &len, &e);
        if (!text) return ta_err(err, TA_EINPUT, "--template %s", e.msg);
        if (strlen(text) != len) {
            free(text);
            return ta_err(err, TA_EINPUT, "--template %s: NUL byte in the file", arg);
        }
        if (len && text[len - 1] == '\n') text[--len] = '\0';
        if (len && text[len - 1] == '\r') text[--len] = '\0';
        rc = sample_template_parse(t, text, &e);
        free(text);
        if (rc != TA_OK) return ta_err(err, rc, "--template %s: %s", arg, e.msg);
        return TA_OK;
    }
    if (!strchr(arg, '{'))
        return ta_err(err, TA_EINPUT, "--template \"%s\": no such file, and as a template text it "
                      "has no {placeholder} (e.g. \"{prompt} (answer: {label})\")", arg);
    rc = sample_template_parse(t, arg, &e);
    if (rc != TA_OK) return ta_err(err, rc, "--template \"%s\": %s", arg, e.msg);
    return TA_OK;
}

/* The text a field's value fills in. */
static int field_text(const DataField *f, TaBuf *b, TaError *err) {
    cJSON *v = cJSON_Parse(f->value);
    int rc = TA_OK;
    if (cJSON_IsString(v)) ta_buf_puts(b, v->valuestring);
    else if (cJSON_IsNumber(v) || cJSON_IsBool(v)) ta_buf_puts(b, f->value); /* as written */
    else
        rc = ta_err(err, TA_EINPUT, "template field \"%s\": the row's value is %s; only strings, "
                    "numbers and booleans are filled", f->key,
                    cJSON_IsObject(v) ? "an object" : cJSON_IsArray(v) ? "an array" : "null");
    cJSON_Delete(v);
    return rc;
}

int sample_template_fill(const SampleTemplate *t, const char *prompt, const DataFields *fields,
                         char **out, TaError *err) {
    *out = NULL;
    TaBuf b = {0};
    ta_buf_puts(&b, ""); /* an empty fill is "", not NULL */
    for (int i = 0; i < t->n_parts; i++) {
        const char *s = t->parts[i].s;
        if (!t->parts[i].is_field) {
            ta_buf_puts(&b, s);
            continue;
        }
        if (!strcmp(s, "prompt")) {
            ta_buf_puts(&b, prompt);
            continue;
        }
        const DataField *f = fields ? data_fields_find(fields, s) : NULL;
        int rc = f ? field_text(f, &b, err)
                   : ta_err(err, TA_EINPUT, "template field \"%s\": the row has no such field", s);
        if (rc != TA_OK) {
            free(b.p);
            return rc;
        }
    }
    *out = b.p;
    return TA_OK;
}
