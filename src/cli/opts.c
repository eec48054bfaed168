/* opts.c — option tables for the subcommands (include/tinyalign/cli.h): parsing with
 * checked numbers, errors with "did you mean", help text generated from the table, and
 * the dispatch of subcommand groups.
 * Not here: what any option means (each cmd_<name>.c declares its own table), short
 * options other than -h, option bundling, or abbreviations of long names.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tinyalign/cli.h"
#include "tinyalign/common.h"

/* ---- numbers ---------------------------------------------------------------------------- */
int cli_parse_int(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int cli_parse_u64(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9') return 0; /* strtoull would wrap "-1" around */
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno) return 0;
    *out = (uint64_t)v;
    return 1;
}

int cli_parse_double(const char *s, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v)) return 0; /* overflow gives inf; underflow is fine */
    *out = v;
    return 1;
}

/* ---- messages ------------------------------------------------------------------------- */
int cli_usage_error(const CliSpec *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", s->prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see %s --help)\n", s->prog);
    va_end(ap);
    return TA_EINPUT;
}

/* "a, b or c" from "a|b|c". */
static void choices_text(const char *choices, char *out, size_t cap) {
    size_t o = 0, n = strlen(choices);
    int last = (int)(strrchr(choices, '|') ? strrchr(choices, '|') - choices : -1);
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        if (choices[i] != '|') out[o++] = choices[i];
        else if ((int)i == last) o += (size_t)snprintf(out + o, cap - o, " or ");
        else o += (size_t)snprintf(out + o, cap - o, ", ");
    }
    out[o] = '\0';
}

/* Index of v among "a|b|c", or -1. */
static int choice_index(const char *choices, const char *v) {
    size_t len = strlen(v);
    int i = 0;
    for (const char *c = choices; c; i++) {
        const char *bar = strchr(c, '|');
        size_t n = bar ? (size_t)(bar - c) : strlen(c);
        if (n == len && !strncmp(c, v, n)) return i;
        c = bar ? bar + 1 : NULL;
    }
    return -1;
}

/* Integer bounds of an option: the table's [lo, hi], or the destination type's range. */
static void int_range(const CliOpt *o, long long *lo, long long *hi) {
    if (o->lo != 0 || o->hi != 0) {
        *lo = (long long)o->lo;
        *hi = (long long)o->hi;
    } else {
        *lo = o->kind == CLI_INT ? INT_MIN : LONG_MIN;
        *hi = o->kind == CLI_INT ? INT_MAX : LONG_MAX;
    }
}

/* Stores v into o->dst. Returns 1, or 0 with what was expected in want. */
static int set_value(const CliOpt *o, const char *v, char *want, size_t cap) {
    long long i;
    double d;
    switch (o->kind) {
    case CLI_FLAG:
        *(int *)o->dst = 1;
        return 1;
    case CLI_STR:
        if ((o->flags & CLI_TEXT) && ta_utf8_invalid_at(v, strlen(v)) >= 0)
            return snprintf(want, cap, "valid UTF-8 text"), 0;
        *(const char **)o->dst = v;
        return 1;
    case CLI_INT:
    case CLI_LONG: {
        long long lo, hi;
        int_range(o, &lo, &hi);
        if (!cli_parse_int(v, lo, hi, &i)) {
            if (o->lo != 0 || o->hi != 0)
                snprintf(want, cap, "an integer in [%lld, %lld]", lo, hi);
            else
                snprintf(want, cap, "an integer");
            return 0;
        }
        if (o->kind == CLI_INT) *(int *)o->dst = (int)i;
        else *(long *)o->dst = (long)i;
        return 1;
    }
    case CLI_U64:
        snprintf(want, cap, "an integer >= 0");
        return cli_parse_u64(v, (uint64_t *)o->dst);
    case CLI_DOUBLE:
        if (!cli_parse_double(v, &d) || ((o->lo != 0 || o->hi != 0) && (d < o->lo || d > o->hi))) {
            if (o->lo != 0 || o->hi != 0) snprintf(want, cap, "a number in [%g, %g]", o->lo, o->hi);
            else snprintf(want, cap, "a number");
            return 0;
        }
        *(double *)o->dst = d;
        return 1;
    case CLI_BOOL:
        if (!strcmp(v, "0") || !strcmp(v, "false")) *(int *)o->dst = 0;
        else if (!strcmp(v, "1") || !strcmp(v, "true")) *(int *)o->dst = 1;
        else return snprintf(want, cap, "0 or 1"), 0;
        return 1;
    case CLI_CHOICE:
        if ((i = choice_index(o->choices, v)) < 0) return choices_text(o->choices, want, cap), 0;
        *(int *)o->dst = (int)i;
        return 1;
    case CLI_LIST: {
        if ((o->flags & CLI_TEXT) && ta_utf8_invalid_at(v, strlen(v)) >= 0)
            return snprintf(want, cap, "valid UTF-8 text"), 0;
        CliList *l = o->dst;
        l->items = ta_realloc(l->items, sizeof(char *) * (size_t)(l->n + 1), "option list");
        l->items[l->n++] = v;
        return 1;
    }
    }
    return 0;
}

/* ---- help ------------------------------------------------------------------------------ */
enum { HELP_COL = 28, HELP_WIDTH = 92 };

/* The value's name in help and messages. */
static const char *meta_of(const CliOpt *o) {
    if (o->meta) return o->meta;
    if (o->kind == CLI_CHOICE) return o->choices;
    if (o->kind == CLI_BOOL) return "0|1";
    return o->kind == CLI_FLAG ? "" : "X";
}

/* Writes text at column col, each '\n' starting a new line at col. */
static void put_indented(FILE *f, const char *text, int col) {
    for (const char *p = text; *p; p++) {
        fputc(*p, f);
        if (*p == '\n' && p[1]) fprintf(f, "%*s", col, "");
    }
}

static void opt_help(FILE *f, const CliOpt *o) {
    char head[128];
    snprintf(head, sizeof head, "  %s%s%s", o->name, o->kind == CLI_FLAG ? "" : " ", meta_of(o));
    int n = (int)strlen(head);
    fputs(head, f);
    fprintf(f, "%*s", n < HELP_COL ? HELP_COL - n : 2, "");
    put_indented(f, o->help ? o->help : "", HELP_COL);
    if (o->def && *o->def && !(o->flags & CLI_NODEFAULT)) {
        const char *last = o->help ? strrchr(o->help, '\n') : NULL;
        size_t width = (size_t)HELP_COL + strlen(last ? last + 1 : o->help ? o->help : "");
        if (width + strlen(o->def) + 11 > HELP_WIDTH) fprintf(f, "\n%*s(default %s)", HELP_COL, "", o->def);
        else fprintf(f, " (default %s)", o->def);
    }
    fputc('\n', f);
}

void cli_help(const CliSpec *s, FILE *f) {
    fputs("usage: ", f);
    fputs(s->usage, f);
    fputs("\n", f);
    if (s->about) fprintf(f, "\n%s", s->about);
    fputs("\n", f);
    for (const CliOpt *o = s->opts; o && o->name; o++) opt_help(f, o);
    fprintf(f, "  %-*s%s\n", HELP_COL - 2, "-h, --help", "this help");
    if (s->notes) fprintf(f, "\n%s", s->notes);
}

/* ---- parsing ---------------------------------------------------------------------------- */
static const CliOpt *find_opt(const CliSpec *s, const char *name, size_t len) {
    for (const CliOpt *o = s->opts; o && o->name; o++)
        if (strlen(o->name) == len && !strncmp(o->name, name, len)) return o;
    return NULL;
}

static int unknown_option(const CliSpec *s, const char *arg, size_t len) {
    const char *names[128];
    int n = 0;
    for (const CliOpt *o = s->opts; o && o->name && n < 127; o++) names[n++] = o->name;
    names[n++] = "--help";
    char word[200];
    ta_excerpt(word, sizeof word, arg, len);
    const char *best = ta_suggest(word, names, n);
    if (best) return cli_usage_error(s, "unknown option \"%s\"; did you mean \"%s\"?", word, best);
    return cli_usage_error(s, "unknown option \"%s\"", word);
}

int cli_parse(const CliSpec *s, int argc, char **argv) {
    int nopt = 0;
    for (const CliOpt *o = s->opts; o && o->name; o++, nopt++) {
        char want[256];
        if (o->kind == CLI_LIST) *(CliList *)o->dst = (CliList){0};
        /* a default that does not parse is a bug in the table */
        if (o->def) TA_ASSERT(set_value(o, o->def, want, sizeof want));
    }
    if (s->pos_dst) *s->pos_dst = NULL;
    unsigned char seen[128] = {0};
    TA_ASSERT(nopt <= 128);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            cli_help(s, stdout);
            return TA_OK;
        }
        if (a[0] != '-' || !a[1]) {
            if (!s->pos_dst || *s->pos_dst)
                return cli_usage_error(s, "unexpected argument \"%s\"", a);
            *s->pos_dst = a;
            continue;
        }
        const char *eq = strncmp(a, "--", 2) ? NULL : strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const CliOpt *o = find_opt(s, a, len);
        if (!o) return unknown_option(s, a, len);
        seen[o - s->opts] = 1;
        const char *v = eq ? eq + 1 : NULL;
        if (o->kind == CLI_FLAG) {
            if (v) return cli_usage_error(s, "%s takes no value", o->name);
        } else if (!v) {
            if (i + 1 >= argc) return cli_usage_error(s, "%s needs a value %s", o->name, meta_of(o));
            v = argv[++i];
        }
        char want[256], shown[200];
        if (!set_value(o, v, want, sizeof want))
            return cli_usage_error(s, "%s \"%s\": expected %s", o->name,
                                   ta_excerpt(shown, sizeof shown, v, strlen(v)), want);
    }
    for (int k = 0; k < nopt; k++)
        if ((s->opts[k].flags & CLI_REQUIRED) && !seen[k])
            return cli_usage_error(s, "%s %s is required", s->opts[k].name, meta_of(&s->opts[k]));
    return CLI_RUN;
}

/* ---- groups ------------------------------------------------------------------------------ */
static void group_help(const CliGroup *g, FILE *f) {
    const char *what = strchr(g->prog, ' ') ? "subcommand" : "command";
    fprintf(f, "usage: %s <%s> [options]   (%s <%s> --help for details)\n", g->prog, what,
            g->prog, what);
    if (g->about) fprintf(f, "\n%s", g->about);
    fprintf(f, "\n%ss:\n", what);
    for (int i = 0; i < g->n; i++) fprintf(f, "  %-10s %s\n", g->cmds[i].name, g->cmds[i].summary);
    if (g->notes) fprintf(f, "\n%s", g->notes);
}

int cli_dispatch(const CliGroup *g, int argc, char **argv) {
    if (argc < 2) {
        group_help(g, stderr);
        return TA_EINPUT;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        group_help(g, stdout);
        return TA_OK;
    }
    const char *names[64];
    int n = 0;
    for (int i = 0; i < g->n; i++) {
        if (!strcmp(sub, g->cmds[i].name)) return g->cmds[i].fn(argc - 1, argv + 1);
        if (n < 64) names[n++] = g->cmds[i].name;
    }
    const char *what = strchr(g->prog, ' ') ? "subcommand" : "command";
    const char *best = ta_suggest(sub, names, n);
    fprintf(stderr, "%s: unknown %s \"%s\"", g->prog, what, sub);
    if (best) fprintf(stderr, "; did you mean \"%s\"?", best);
    fprintf(stderr, " (see %s --help)\n", g->prog);
    return TA_EINPUT;
}
