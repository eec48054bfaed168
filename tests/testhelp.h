/* testhelp.h — a tiny test harness in the spirit of sds's testhelp.h.
 * A test binary calls t_run("name", fn) for each case; a case fails on the first
 * T_CHECK that does not hold. Every case prints one line, "PASS name" or
 * "FAIL name: file:line: message", which tests/run.sh counts. main returns t_done(),
 * non-zero when any case failed. */
#ifndef TINYALIGN_TESTHELP_H
#define TINYALIGN_TESTHELP_H
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_passed = 0, t_failed = 0, t_case_failed = 0;
static char t_msg[2048];

static void t_failf(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void t_failf(const char *file, int line, const char *fmt, ...) {
    if (t_case_failed) return; /* keep the first failure */
    int n = snprintf(t_msg, sizeof t_msg, "%s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_msg + n, sizeof t_msg - (size_t)n, fmt, ap);
    va_end(ap);
    t_case_failed = 1;
}

/* Fails the current case (and returns from it) when cond is false. */
#define T_CHECK(cond, ...)                                                           \
    do {                                                                             \
        if (!(cond)) {                                                               \
            t_failf(__FILE__, __LINE__, __VA_ARGS__);                                \
            return;                                                                  \
        }                                                                            \
    } while (0)

static void t_run(const char *name, void (*fn)(void)) {
    t_case_failed = 0;
    t_msg[0] = '\0';
    fn();
    if (t_case_failed) {
        t_failed++;
        printf("FAIL %s: %s\n", name, t_msg);
    } else {
        t_passed++;
        printf("PASS %s\n", name);
    }
    fflush(stdout);
}

static int t_done(void) { return t_failed ? 1 : 0; }

#endif
