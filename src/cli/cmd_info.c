/* cmd_info.c — `tinyalign info`: what the build found (BLAS kernel, OpenMP, threads). */
#include <stdio.h>

#include "tinyalign/cli.h"
#include "tinyalign/common.h"

int cmd_info(int argc, char **argv) {
    (void)argc;
    (void)argv;
    char buf[512];
    ta_set_threads(0);
    ta_runtime_info(buf, sizeof buf);
    printf("tinyalign %s: %s\n", TA_VERSION, buf);
    return TA_OK;
}
