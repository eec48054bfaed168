/* cmd_plot.c — `tinyalign plot RUN [RUN ...] --out FILE.png [options]`: runs tools/plot.py
 * (Debian's /usr/bin/python3 with python3-matplotlib) with the same arguments.
 *
 * The plotting itself lives in one place, the Python script (matplotlib has no C
 * counterpart among the engine's dependencies); this command only makes it reachable as
 * `tinyalign plot` from wherever the binary is: the script is looked up next to the
 * executable, installed ($PREFIX/bin/tinyalign -> $PREFIX/share/tinyalign/tools/plot.py,
 * `make install`) or in the source tree (build/tinyalign -> tools/plot.py). Its options,
 * help and errors are the script's (`tinyalign plot --help`).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tinyalign/cli.h"
#include "tinyalign/common.h"

#define PLOT_PYTHON "/usr/bin/python3"

/* Where plot.py lies relative to the directory of the running executable. */
static const char *const PLOT_PATHS[] = {
    "../share/tinyalign/tools/plot.py", /* installed: PREFIX/bin -> PREFIX/share/tinyalign */
    "../tools/plot.py",                 /* the source tree: build/tinyalign */
    "../../tools/plot.py",              /* another build directory: build/debug/tinyalign */
};

/* Fills out with the first plot.py found beside the executable; 0 when there is none. */
static int find_plot_script(char *out, size_t cap) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return 0;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return 0;
    *slash = '\0';
    for (size_t i = 0; i < sizeof PLOT_PATHS / sizeof PLOT_PATHS[0]; i++) {
        if ((size_t)snprintf(out, cap, "%s/%s", exe, PLOT_PATHS[i]) >= cap) continue;
        if (access(out, R_OK) == 0) return 1;
    }
    return 0;
}

int cmd_plot(int argc, char **argv) {
    char script[4200];
    if (!find_plot_script(script, sizeof script)) {
        fprintf(stderr, "tinyalign plot: tools/plot.py not found beside the executable (looked "
                        "in ../share/tinyalign/tools and ../tools): run `make install`, or run "
                        "python3 tools/plot.py from the source tree\n");
        return TA_ERUNTIME;
    }
    if (access(PLOT_PYTHON, X_OK) != 0) {
        fprintf(stderr, "tinyalign plot: needs %s with python3-matplotlib (Debian: apt-get "
                        "install python3-matplotlib)\n", PLOT_PYTHON);
        return TA_ERUNTIME;
    }
    /* python3 plot.py argv[1..] */
    char **args = ta_calloc(sizeof(char *) * ((size_t)argc + 3), "plot arguments");
    args[0] = (char *)"python3";
    args[1] = script;
    for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
    fflush(stdout);
    execv(PLOT_PYTHON, args);
    fprintf(stderr, "tinyalign plot: cannot run %s: %s\n", PLOT_PYTHON, strerror(errno));
    free(args);
    return TA_ERUNTIME;
}
