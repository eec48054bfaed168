/* main.c — the `tinyalign` entry point: dispatches to one subcommand. */
#include <stdio.h>
#include <string.h>

#include "tinyalign/cli.h"
#include "tinyalign/common.h"

/* One line per subcommand; each lives in src/cli/cmd_<name>.c. */
static const CliCommand COMMANDS[] = {
    {"train", cmd_train, "train from a JSON config (pretrain, sft, dpo, orpo, ddpo, dorpo, reward)"},
    {"resume", cmd_resume, "continue a stopped run from its latest checkpoint, bit-exactly"},
    {"eval", cmd_eval, "print the objective's metrics on validation data as one JSON object"},
    {"info", cmd_info, "print the build: version, BLAS kernel, OpenMP threads"},
    {"bench", cmd_bench, "time training steps of a GPT-2 shape (make bench compares PyTorch)"},
    {"convert", cmd_convert, "convert GPT-2 model directories from / to Hugging Face (safetensors)"},
    {"tokenizer", cmd_tokenizer, "train a SentencePiece tokenizer; encode / decode text"},
    {"tokenize", cmd_tokenize, "tokenize .txt / .jsonl into a token shard (EOS after each document)"},
    {"sample", cmd_sample, "generate n responses per prompt (KV cache; top-k/top-p/min-p, penalties)"},
    {"score", cmd_score, "add scores to every response: cmd: program, logprob:, banned: words"},
    {"curate", cmd_curate, "diversity data: deviation weights, DDPO pairs, DivPO, diversity metrics"},
};

static const CliGroup TINYALIGN = {
    .prog = "tinyalign",
    .about = "tinyalign " TA_VERSION " — train and post-train small GPT-2 models on CPUs\n",
    .cmds = COMMANDS,
    .n = (int)(sizeof COMMANDS / sizeof COMMANDS[0]),
    .notes = "Every command that takes a model accepts a run directory, RUN/checkpoints/latest\n"
             "or best, a checkpoint directory or a model directory.\n"
             "exit status: 0 ok, 1 runtime failure, 2 bad input or usage,\n"
             "             130/143 after a clean save on SIGINT/SIGTERM\n",
};

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        printf("tinyalign %s\n", TA_VERSION);
        return TA_OK;
    }
    return cli_dispatch(&TINYALIGN, argc, argv);
}
