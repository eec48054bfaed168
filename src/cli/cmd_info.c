/* cmd_info.c — `tinyalign info`: what the build found (BLAS kernel, OpenMP, threads, MPI,
 * the oneDNN version and the ISA it will use, so whether model.precision bf16 can run). */
#include <stdio.h>

#include "tinyalign/backend.h"
#include "tinyalign/cli.h"
#include "tinyalign/common.h"
#include "tinyalign/dist.h"

int cmd_info(int argc, char **argv) {
    const CliOpt opts[] = {{0}};
    const CliSpec spec = {
        .prog = "tinyalign info",
        .usage = "tinyalign info",
        .about = "Prints the version, the BLAS library and kernel, OpenMP and the thread count,\n"
                 "and whether the build has MPI (data parallel training with mpirun).\n",
        .opts = opts,
    };
    int rc = cli_parse(&spec, argc, argv);
    if (rc != CLI_RUN) return rc;
    char buf[512];
    ta_set_threads(0);
    ta_runtime_info(buf, sizeof buf);
    printf("tinyalign %s: %s\n", TA_VERSION, buf);
    dist_info(buf, sizeof buf);
    printf("%s\n", buf);
    backend_info(buf, sizeof buf);
    printf("matmul backends: openblas (fp32), onednn (fp32, bf16); %s\n", buf);
    return TA_OK;
}
