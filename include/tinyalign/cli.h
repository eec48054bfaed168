/* cli.h — the subcommands of the `tinyalign` binary and the option tables they declare.
 *
 * Each subcommand takes the arguments after its own name (argv[0] is the subcommand name)
 * and returns the process exit status (0 success, 1 runtime failure, 2 bad input or
 * usage, 130/143 after a clean save on SIGINT/SIGTERM). Each lives in src/cli/cmd_<name>.c.
 *
 * Option tables (src/cli/opts.c). A command declares its flags once, as a CliSpec with
 * an array of CliOpt {name, kind, destination, default, help}; cli_parse then
 *   - applies every default (parsed by the same checked parser as the arguments),
 *   - reads argv: "--name VALUE" or "--name=VALUE", flags without a value, at most one
 *     positional argument when the spec has one; "--help" / "-h" prints the help,
 *   - checks every number (one integer parser, one float parser, ranges from the table),
 *     every choice, the UTF-8 of every CLI_TEXT value, and the CLI_REQUIRED options,
 *   - reports each error as one line "PROG: what is wrong (see PROG --help)", with "did
 *     you mean" for an unknown option (ta_suggest, the config keys' edit distance).
 * The --help text is generated from the same table: usage, about, one entry per option
 * ("  --name META   help (default D)"), notes. Commands grouped under one name (curate,
 * tokenizer, the binary itself) dispatch with cli_dispatch, which lists the group and
 * suggests the closest name for an unknown one.
 */
#ifndef TINYALIGN_CLI_H
#define TINYALIGN_CLI_H
#include <stdint.h>
#include <stdio.h>

/* ---- subcommands ---------------------------------------------------------------------- */
typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary; /* one line for the group's --help */
} CliCommand;

int cmd_train(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_curate(int argc, char **argv);

/* A group of subcommands: `PROG NAME args...` runs cmds[i].fn(argc - 1, argv + 1). */
typedef struct {
    const char *prog;   /* "tinyalign curate" (messages and help) */
    const char *about;  /* text between the usage line and the list (may be NULL) */
    const CliCommand *cmds;
    int n;
    const char *notes;  /* text after the list (may be NULL) */
} CliGroup;

/* Runs the subcommand argv[1] of the group, or prints the group's help (--help, -h,
 * help: stdout, status 0; no subcommand: stderr, status 2), or reports an unknown one
 * with the closest name ("unknown subcommand "prss"; did you mean "prs"?"), status 2. */
int cli_dispatch(const CliGroup *g, int argc, char **argv);

/* ---- option tables -------------------------------------------------------------------- */
typedef enum {
    CLI_FLAG,   /* no value; dst int*: set to 1 */
    CLI_STR,    /* dst const char **: the argument itself (not copied) */
    CLI_INT,    /* dst int *: an integer in [lo, hi] (both 0: any int) */
    CLI_LONG,   /* dst long *: an integer in [lo, hi] (both 0: any long) */
    CLI_U64,    /* dst uint64_t *: an integer >= 0 (seeds) */
    CLI_DOUBLE, /* dst double *: a number in [lo, hi] (both 0: any number) */
    CLI_BOOL,   /* dst int *: 0 / 1 / false / true */
    CLI_CHOICE, /* dst int *: the index of the value in choices ("txt|jsonl") */
    CLI_LIST,   /* dst CliList *: a repeatable string option, in order */
} CliKind;

enum {
    CLI_REQUIRED = 1 << 0, /* "PROG: --in FILE is required" when absent */
    CLI_NODEFAULT = 1 << 1, /* def is applied but not shown in the help (the help says it) */
    CLI_TEXT = 1 << 2,      /* CLI_STR / CLI_LIST holding text (not a path): must be valid
                               UTF-8, like every text input of the engine */
};

typedef struct {
    const char *name;    /* "--max-new-tokens" */
    CliKind kind;
    void *dst;
    const char *meta;    /* the value's name in help and messages ("N"); NULL for flags */
    const char *def;     /* the default, as text: applied to dst first, shown in the help
                            as "(default D)"; NULL = none (dst keeps what the caller set) */
    const char *help;    /* help text; '\n' starts a continuation line */
    double lo, hi;       /* numeric range, inclusive (see the kinds) */
    const char *choices; /* CLI_CHOICE: "a|b|c" */
    unsigned flags;      /* CLI_REQUIRED, CLI_NODEFAULT */
} CliOpt;

/* Values of a repeatable option (items point into argv; free(items) when done). */
typedef struct {
    const char **items;
    int n;
} CliList;

typedef struct {
    const char *prog;        /* "tinyalign sample" */
    const char *usage;       /* after "usage: "; '\n' + spaces for more usage lines */
    const char *about;       /* paragraph(s) after the usage (may be NULL) */
    const CliOpt *opts;      /* ends with an entry whose name is NULL */
    const char *notes;       /* text after the options (may be NULL) */
    const char *positional;  /* the one positional argument's name ("CONFIG.json"), or NULL */
    const char **pos_dst;    /* receives it (NULL when absent) */
} CliSpec;

/* Returned by cli_parse when the command should run (every other value is an exit
 * status: 0 after --help, 2 after a usage error, already reported). */
#define CLI_RUN (-1)

/* Parses argv[1..argc) against s (see the top of this file). */
int cli_parse(const CliSpec *s, int argc, char **argv);
/* Writes s's help text to f. */
void cli_help(const CliSpec *s, FILE *f);
/* "PROG: message (see PROG --help)" on stderr; returns 2 (TA_EINPUT). */
int cli_usage_error(const CliSpec *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The checked number parsers (the whole string must be the number): an integer in
 * [lo, hi], a non-negative integer up to 2^64 - 1, a finite number. Return 1 on success,
 * 0 otherwise (out untouched). */
int cli_parse_int(const char *s, long long lo, long long hi, long long *out);
int cli_parse_u64(const char *s, uint64_t *out);
int cli_parse_double(const char *s, double *out);

#endif
