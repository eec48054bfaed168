/* cli.h — the subcommands of the `tinyalign` binary. Each takes the arguments after its
 * own name (argv[0] is the subcommand name) and returns the process exit status
 * (0 success, 1 runtime failure, 2 bad input or usage, 130/143 after a clean save on
 * SIGINT/SIGTERM). Each lives in its own src/cli/cmd_<name>.c. */
#ifndef TINYALIGN_CLI_H
#define TINYALIGN_CLI_H

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary; /* one line for `tinyalign --help` */
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
int cmd_curate(int argc, char **argv);

#endif
