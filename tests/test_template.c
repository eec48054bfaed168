/* test_template.c — prompt templates with row fields (sample.h): every placeholder kind
 * filled exactly ({prompt}, a string field with escapes, a number as written, booleans, the
 * {{ }} escapes, a template without placeholders, an empty fill), every syntax error with
 * its character position, every fill error naming the field, and --template FILE|TEXT
 * loading (a file's trailing newline dropped, a text without a placeholder refused).
 * Expected strings are written by hand (Python's str.format gives the same).
 * Scratch files: $TA_REF/template.
 */
#include <stdlib.h>
#include <string.h>

#include "testhelp.h"
#include "tinyalign/common.h"
#include "tinyalign/sample.h"

/* A row's kept fields as the data module stores them: key, "key":value, value. */
static const DataField FIELDS[] = {
    {"label", "\"label\":\"yes \\\"sure\\\" \\u00e9\"", "\"yes \\\"sure\\\" \\u00e9\""},
    {"n", "\"n\":2.50", "2.50"},
    {"big", "\"big\":1e2", "1e2"},
    {"ok", "\"ok\":true", "true"},
    {"no", "\"no\":false", "false"},
    {"obj", "\"obj\":{\"a\":1}", "{\"a\":1}"},
    {"arr", "\"arr\":[1,2]", "[1,2]"},
    {"nul", "\"nul\":null", "null"},
    {"preference", "\"preference\":\"<asc>\"", "\"<asc>\""},
};
static const DataFields ROW = {FIELDS, (int)(sizeof FIELDS / sizeof FIELDS[0])};

static char g_dir[4096];

/* fill(t, prompt) == want */
static int fills_to(const char *tmpl, const char *prompt, const char *want, char *got, size_t cap) {
    SampleTemplate t;
    TaError err = {0};
    if (sample_template_parse(&t, tmpl, &err) != TA_OK) {
        snprintf(got, cap, "parse failed: %s", err.msg);
        return 0;
    }
    char *out = NULL;
    int rc = sample_template_fill(&t, prompt, &ROW, &out, &err);
    sample_template_free(&t);
    if (rc != TA_OK) {
        snprintf(got, cap, "fill failed: %s", err.msg);
        return 0;
    }
    snprintf(got, cap, "%s", out);
    int ok = !strcmp(out, want);
    free(out);
    return ok;
}

static void test_fill(void) {
    char got[2048];
    const struct {
        const char *tmpl, *prompt, *want;
    } cases[] = {
        {"{prompt}", "reverse abc", "reverse abc"},
        {"Q: {prompt}\n\n{preference}", "sort 3 1 2", "Q: sort 3 1 2\n\n<asc>"},
        {"the answer is {label}; explain why", "p", "the answer is yes \"sure\" \xc3\xa9; explain why"},
        {"{n}|{big}|{ok}|{no}", "p", "2.50|1e2|true|false"},
        {"{{prompt}} {{{prompt}}} }}{{", "x", "{prompt} {x} }{"},
        {"no placeholders", "x", "no placeholders"},
        {"{prompt}{prompt}", "ab", "abab"},
        {"", "x", ""},
        {"{prompt}", "", ""},
        {"caf\xc3\xa9 {prompt} \xe2\x98\x83", "p", "caf\xc3\xa9 p \xe2\x98\x83"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        T_CHECK(fills_to(cases[i].tmpl, cases[i].prompt, cases[i].want, got, sizeof got),
                "case %zu \"%s\": got \"%s\", want \"%s\"", i, cases[i].tmpl, got, cases[i].want);
}

/* parsing text fails with a message containing want */
static void test_syntax_errors(void) {
    const struct {
        const char *tmpl, *want;
    } cases[] = {
        {"a {prompt", "'{' at character 3 has no closing '}'"},
        {"a } b", "lone '}' at character 3"},
        {"x {} y", "empty placeholder {} at character 3"},
        {"{a{b}}", "'{' at character 1 has no closing '}'"},
        {"\xc3\xa9\xc3\xa9 }", "lone '}' at character 4"},
        {"{prompt}}", "lone '}' at character 9"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        SampleTemplate t;
        TaError err = {0};
        int rc = sample_template_parse(&t, cases[i].tmpl, &err);
        T_CHECK(rc == TA_EINPUT, "case %zu \"%s\": rc %d", i, cases[i].tmpl, rc);
        T_CHECK(strstr(err.msg, cases[i].want), "case %zu: \"%s\" lacks \"%s\"", i, err.msg, cases[i].want);
        T_CHECK(t.n_parts == 0 && !t.text, "case %zu: template not freed", i);
    }
}

static void test_fill_errors(void) {
    const struct {
        const char *tmpl, *want;
    } cases[] = {
        {"{label} {missing}", "template field \"missing\": the row has no such field"},
        {"{obj}", "template field \"obj\": the row's value is an object"},
        {"{arr}", "template field \"arr\": the row's value is an array"},
        {"{nul}", "template field \"nul\": the row's value is null"},
        {"{Label}", "template field \"Label\": the row has no such field"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        SampleTemplate t;
        TaError err = {0};
        T_CHECK(sample_template_parse(&t, cases[i].tmpl, &err) == TA_OK, "parse %zu", i);
        char *out = (char *)1;
        int rc = sample_template_fill(&t, "p", &ROW, &out, &err);
        sample_template_free(&t);
        T_CHECK(rc == TA_EINPUT && out == NULL, "case %zu: rc %d", i, rc);
        T_CHECK(strstr(err.msg, cases[i].want), "case %zu: \"%s\" lacks \"%s\"", i, err.msg, cases[i].want);
    }
    /* no fields at all (--prompt TEXT): only {prompt} fills */
    SampleTemplate t;
    TaError err = {0};
    char *out = NULL;
    T_CHECK(sample_template_parse(&t, "{prompt}!", &err) == TA_OK, "parse");
    T_CHECK(sample_template_fill(&t, "p", NULL, &out, &err) == TA_OK && !strcmp(out, "p!"), "no fields");
    free(out);
    sample_template_free(&t);
    T_CHECK(sample_template_parse(&t, "{label}", &err) == TA_OK, "parse");
    T_CHECK(sample_template_fill(&t, "p", NULL, &out, &err) == TA_EINPUT &&
                strstr(err.msg, "\"label\": the row has no such field"), "no fields: %s", err.msg);
    sample_template_free(&t);
}

static void test_load(void) {
    char path[4200];
    ta_pathf(path, sizeof path, "%s/t.txt", g_dir);
    FILE *f = fopen(path, "w");
    T_CHECK(f, "cannot write %s", path);
    fputs("Question: {prompt}\nAnswer:\n", f);
    fclose(f);
    SampleTemplate t;
    TaError err = {0};
    char *out = NULL;
    T_CHECK(sample_template_load(&t, path, &err) == TA_OK, "load file: %s", err.msg);
    T_CHECK(sample_template_fill(&t, "2+2", &ROW, &out, &err) == TA_OK, "fill: %s", err.msg);
    T_CHECK(!strcmp(out, "Question: 2+2\nAnswer:"), "file: got \"%s\" (one trailing newline dropped)", out);
    free(out);
    sample_template_free(&t);
    T_CHECK(sample_template_load(&t, "{prompt} <{preference}>", &err) == TA_OK, "load text: %s", err.msg);
    T_CHECK(sample_template_fill(&t, "x", &ROW, &out, &err) == TA_OK && !strcmp(out, "x <<asc>>"),
            "text: got \"%s\"", out ? out : "(null)");
    free(out);
    sample_template_free(&t);
    int rc = sample_template_load(&t, "templates/missing.txt", &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "no such file") && strstr(err.msg, "no {placeholder}"),
            "missing file: %s", err.msg);
    ta_pathf(path, sizeof path, "%s/bad.txt", g_dir);
    f = fopen(path, "w");
    fputs("{prompt", f);
    fclose(f);
    rc = sample_template_load(&t, path, &err);
    T_CHECK(rc == TA_EINPUT && strstr(err.msg, "--template ") && strstr(err.msg, "bad.txt") &&
                strstr(err.msg, "no closing"), "bad file: %s", err.msg);
}

int main(void) {
    const char *ref = getenv("TA_REF");
    snprintf(g_dir, sizeof g_dir, "%s/template", ref && *ref ? ref : "build/ref");
    TaError err = {0};
    if (ta_mkdirs(g_dir, &err) != TA_OK) {
        printf("FAIL setup: %s\n", err.msg);
        return 1;
    }
    t_run("template_fill", test_fill);
    t_run("template_syntax_errors", test_syntax_errors);
    t_run("template_fill_errors", test_fill_errors);
    t_run("template_load_file_or_text", test_load);
    return t_done();
}
