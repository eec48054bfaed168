/* main.c — the `tinyalign` entry point: dispatches to one subcommand. */
#include <stdio.h>
#include <string.h>

#include "tinyalign/cli.h"
#include "tinyalign/common.h"

/* One line per subcommand; each lives in src/cli/cmd_<name>.c. */
static const CliCommand COMMANDS[] = {
    {"train", cmd_train, "train from a JSON config (pretrain, sft, dpo, orpo, ddpo, dorpo)"},
    {"resume", cmd_resume, "continue a stopped run from its latest checkpoint, bit-exactly"},
    {"eval", cmd_eval, "print the objective's metrics on validation data as one JSON object"},
    {"info", cmd_info, "print the build: version, BLAS kernel, OpenMP threads"},
    {"bench", cmd_bench, "time training steps of a GPT-2 shape (make bench compares PyTorch)"},
    {"convert", cmd_convert, "convert GPT-2 model directories from / to Hugging Face (safetensors)"},
    {"tokenizer", cmd_tokenizer, "train a SentencePiece tokenizer; encode / decode text"},
    {"tokenize", cmd_tokenize, "tokenize .txt / .jsonl into a token shard (EOS after each document)"},
    {"sample", cmd_sample, "generate n responses per prompt (KV cache; top-k/top-p/min-p, penalties)"},
    {"curate", cmd_curate, "diversity data: deviation weights, DDPO pairs, DivPO, diversity metrics"},
};
static const int NUM_COMMANDS = (int)(sizeof COMMANDS / sizeof COMMANDS[0]);

static void usage(FILE *f) {
    fprintf(f,
            "tinyalign %s — train and post-train small GPT-2 models on CPUs\n\n"
            "usage: tinyalign <command> [args]   (tinyalign <command> --help for details)\n\n"
            "commands:\n",
            TA_VERSION);
    for (int i = 0; i < NUM_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(f, "\nexit status: 0 ok, 1 runtime failure, 2 bad input or usage,\n"
               "             130/143 after a clean save on SIGINT/SIGTERM\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? TA_EINPUT : TA_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("tinyalign %s\n", TA_VERSION);
        return TA_OK;
    }
    for (int i = 0; i < NUM_COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "tinyalign: unknown command \"%s\" (see tinyalign --help)\n", argv[1]);
    return TA_EINPUT;
}
