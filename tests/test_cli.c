/* test_cli.c — the option tables of include/tinyalign/cli.h: defaults applied through the
 * checked parsers, every value kind, "--name=value", ranges and bad numbers refused with
 * exit status 2, required options, one positional argument, "did you mean" for unknown
 * options and subcommands, and help generated from the table (stderr/stdout are
 * redirected to a scratch file to read the messages). */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <unistd.h>

#include "testhelp.h"
#include "tinyalign/cli.h"
#include "tinyalign/common.h"

static char g_out[2048];

/* Runs cli_parse on a NULL-terminated argument list with stdout and stderr sent to g_out;
 * *text receives what was printed (static buffer). */
static int run(const CliSpec *s, const char **args, const char **text) {
    static char buf[8192];
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"cmd";
    for (; args[argc - 1]; argc++) argv[argc] = (char *)args[argc - 1];
    fflush(stdout);
    fflush(stderr);
    int o = dup(1), e = dup(2);
    FILE *f = fopen(g_out, "w");
    dup2(fileno(f), 1);
    dup2(fileno(f), 2);
    int rc = cli_parse(s, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(o, 1);
    dup2(e, 2);
    close(o);
    close(e);
    fclose(f);
    f = fopen(g_out, "r");
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    *text = buf;
    return rc;
}

static int n_, flag_, choice_, b_;
static long l_;
static double d_;
static uint64_t u_;
static const char *str_, *pos_;
static CliList list_;
static const CliOpt OPTS[] = {
    {.name = "--n", .kind = CLI_INT, .dst = &n_, .meta = "N", .def = "3", .lo = 1, .hi = 10, .help = "count"},
    {.name = "--steps", .kind = CLI_LONG, .dst = &l_, .meta = "K", .def = "-5", .help = "any long"},
    {.name = "--rate", .kind = CLI_DOUBLE, .dst = &d_, .meta = "R", .def = "0.5", .help = "a number"},
    {.name = "--seed", .kind = CLI_U64, .dst = &u_, .meta = "S", .def = "18446744073709551615", .help = "seed"},
    {.name = "--name", .kind = CLI_STR, .dst = &str_, .meta = "X", .flags = CLI_REQUIRED, .help = "required"},
    {.name = "--mode", .kind = CLI_CHOICE, .dst = &choice_, .choices = "fast|slow|exact", .def = "slow",
     .help = "a choice"},
    {.name = "--on", .kind = CLI_BOOL, .dst = &b_, .def = "1", .help = "a bool"},
    {.name = "--verbose", .kind = CLI_FLAG, .dst = &flag_, .help = "a flag"},
    {.name = "--set", .kind = CLI_LIST, .dst = &list_, .meta = "k=v", .help = "repeatable"},
    {0}};
static const CliSpec SPEC = {.prog = "tinyalign demo", .usage = "tinyalign demo FILE --name X",
                             .about = "About text.\n", .opts = OPTS, .notes = "Notes.\n",
                             .positional = "FILE", .pos_dst = &pos_};

static void test_defaults_and_values(void) {
    const char *t;
    flag_ = 0;
    const char *a1[] = {"--name", "x", NULL};
    T_CHECK(run(&SPEC, a1, &t) == CLI_RUN, "%s", t);
    T_CHECK(n_ == 3 && l_ == -5 && d_ == 0.5 && u_ == UINT64_MAX && choice_ == 1 && b_ == 1 &&
                !flag_ && !pos_ && list_.n == 0 && !strcmp(str_, "x"), "defaults");
    const char *a2[] = {"in.txt", "--n", "10", "--steps=-7", "--rate", "-1e-3", "--seed", "0",
                        "--name=y", "--mode", "exact", "--on", "false", "--verbose",
                        "--set", "a=1", "--set=b=2", NULL};
    T_CHECK(run(&SPEC, a2, &t) == CLI_RUN, "%s", t);
    T_CHECK(n_ == 10 && l_ == -7 && d_ == -1e-3 && u_ == 0 && choice_ == 2 && b_ == 0 && flag_ &&
                !strcmp(pos_, "in.txt") && !strcmp(str_, "y") && list_.n == 2 &&
                !strcmp(list_.items[0], "a=1") && !strcmp(list_.items[1], "b=2"), "values");
    free(list_.items);
}

/* Each bad argument: status 2 and one line naming the option and what was expected. */
static void test_errors(void) {
    struct {
        const char *args[6], *want;
    } cases[] = {
        {{"--name", "x", "--n", "0", NULL}, "--n \"0\": expected an integer in [1, 10]"},
        {{"--name", "x", "--n", "2.5", NULL}, "--n \"2.5\": expected an integer"},
        {{"--name", "x", "--rate", "abc", NULL}, "--rate \"abc\": expected a number"},
        {{"--name", "x", "--rate", "nan", NULL}, "--rate \"nan\": expected a number"},
        {{"--name", "x", "--seed", "-1", NULL}, "--seed \"-1\": expected an integer >= 0"},
        {{"--name", "x", "--mode", "quick", NULL}, "--mode \"quick\": expected fast, slow or exact"},
        {{"--name", "x", "--on", "yes", NULL}, "--on \"yes\": expected 0 or 1"},
        {{"--name", "x", "--verbose=1", NULL}, "--verbose takes no value"},
        {{"--name", NULL}, "--name needs a value X"},
        {{"--n", "2", NULL}, "--name X is required"},
        {{"--name", "x", "a", "b", NULL}, "unexpected argument \"b\""},
        {{"--name", "x", "--rat", "1", NULL}, "unknown option \"--rat\"; did you mean \"--rate\"?"},
        {{"--name", "x", "--frobnicate", NULL}, "unknown option \"--frobnicate\" (see"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *t;
        int rc = run(&SPEC, cases[i].args, &t);
        T_CHECK(rc == TA_EINPUT && strstr(t, cases[i].want) && !strncmp(t, "tinyalign demo: ", 16) &&
                    strchr(t, '\n') == t + strlen(t) - 1,
                "case %zu: status %d, output \"%s\", want \"%s\"", i, rc, t, cases[i].want);
    }
    free(list_.items);
}

static void test_help(void) {
    const char *t, *a[] = {"--n", "5", "--help", NULL};
    T_CHECK(run(&SPEC, a, &t) == TA_OK, "help status");
    T_CHECK(!strncmp(t, "usage: tinyalign demo FILE --name X\n\nAbout text.\n", 49) &&
                strstr(t, "  --n N                     count (default 3)\n") &&
                strstr(t, "  --mode fast|slow|exact    a choice (default slow)\n") &&
                strstr(t, "  --verbose                 a flag\n") && strstr(t, "-h, --help") &&
                strstr(t, "\nNotes.\n"),
            "help text:\n%s", t);
    free(list_.items);
}

static int ok_cmd(int argc, char **argv) {
    (void)argv;
    return 40 + argc;
}

static void test_dispatch(void) {
    static const CliCommand cmds[] = {{"pairs", ok_cmd, "make pairs"}, {"divpo", ok_cmd, "divpo"}};
    static const CliGroup g = {.prog = "tinyalign curate", .cmds = cmds, .n = 2};
    char *argv[] = {(char *)"curate", (char *)"pairs", (char *)"--x", NULL};
    T_CHECK(cli_dispatch(&g, 3, argv) == 42, "dispatch");
    fflush(stderr);
    int e = dup(2);
    FILE *f = fopen(g_out, "w");
    dup2(fileno(f), 2);
    argv[1] = (char *)"pair";
    int rc = cli_dispatch(&g, 2, argv);
    fflush(stderr);
    dup2(e, 2);
    close(e);
    fclose(f);
    char *t = ta_read_file(g_out, NULL, NULL);
    T_CHECK(rc == TA_EINPUT && t && strstr(t, "unknown subcommand \"pair\"; did you mean \"pairs\"?"),
            "unknown subcommand: %s", t ? t : "?");
    free(t);
}

static void test_numbers(void) {
    long long v;
    uint64_t u;
    double d;
    T_CHECK(cli_parse_int("-12", -20, 20, &v) && v == -12, "int");
    T_CHECK(!cli_parse_int("", 0, 9, &v) && !cli_parse_int("3x", 0, 9, &v) &&
                !cli_parse_int("99999999999999999999", LLONG_MIN, LLONG_MAX, &v), "bad ints");
    T_CHECK(cli_parse_u64("18446744073709551615", &u) && u == UINT64_MAX, "u64 max");
    T_CHECK(!cli_parse_u64("18446744073709551616", &u) && !cli_parse_u64("+1", &u), "bad u64");
    T_CHECK(cli_parse_double("1e-320", &d) && cli_parse_double("-0.25", &d) && d == -0.25, "double");
    T_CHECK(!cli_parse_double("1e999", &d) && !cli_parse_double("inf", &d) &&
                !cli_parse_double("0x", &d), "bad doubles");
}

int main(void) {
    const char *ref = getenv("TA_REF");
    char dir[1900];
    snprintf(dir, sizeof dir, "%s/cli", ref && *ref ? ref : "build/ref");
    TaError err;
    TA_ASSERT(ta_mkdirs(dir, &err) == TA_OK);
    snprintf(g_out, sizeof g_out, "%s/out.txt", dir);
    t_run("defaults_and_every_kind", test_defaults_and_values);
    t_run("errors_one_line_each", test_errors);
    t_run("help_from_the_table", test_help);
    t_run("dispatch_and_did_you_mean", test_dispatch);
    t_run("checked_number_parsers", test_numbers);
    return t_done();
}
