/* cmd_convert.c — `tinyalign convert`: model directories to and from Hugging Face GPT-2.
 *
 * Our model directories already use HF GPT-2 tensor names and the Conv1D (in, out)
 * layout, so both directions are "load with full validation, write back": --from hf
 * checks an HF directory (optional "transformer." prefix, F16/BF16 upcast, mask buffers
 * and a tied lm_head dropped) and writes a clean F32 model directory; --to hf writes a
 * directory transformers' GPT2LMHeadModel.from_pretrained() reads (lm_head is left out:
 * HF ties it to wte). --from llmc imports llm.c's gpt2_*.bin checkpoint file.
 */
#include <stdio.h>
#include <string.h>

#include "tinyalign/checkpoint.h"
#include "tinyalign/cli.h"
#include "tinyalign/common.h"
#include "tinyalign/model.h"
#include "tinyalign/model_io.h"

int cmd_convert(int argc, char **argv) {
    const char *from = NULL, *to = NULL, *in = NULL, *out = NULL;
    const CliOpt opts[] = {
        {.name = "--from", .kind = CLI_STR, .dst = &from, .meta = "hf|llmc",
         .help = "hf: read a Hugging Face GPT-2 directory (names with or without the\n"
                 "\"transformer.\" prefix; F32, F16 or BF16), check every tensor's\n"
                 "shape against config.json, write a tinyalign model directory;\n"
                 "llmc: read llm.c's model file (train_gpt2.py's gpt2_*.bin, header\n"
                 "20240326, version 1 or 3) and write a tinyalign model directory"},
        {.name = "--to", .kind = CLI_STR, .dst = &to, .meta = "hf",
         .help = "write a tinyalign model as a Hugging Face GPT-2 directory\n"
                 "(GPT2LMHeadModel; lm_head tied to wte, not stored)"},
        {.name = "--in", .kind = CLI_STR, .dst = &in, .meta = "PATH",
         .help = "the source: --from hf: a directory; --from llmc: a file;\n"
                 "--to hf: any model path, i.e.\n" CHECKPOINT_MODEL_HELP},
        {.name = "--out", .kind = CLI_STR, .dst = &out, .meta = "DIR",
         .help = "the destination directory (created; its config.json and\n"
                 "model.safetensors are replaced atomically)"},
        {0}};
    const CliSpec spec = {
        .prog = "tinyalign convert",
        .usage = "tinyalign convert --from hf --in HF_DIR --out DIR\n"
                 "       tinyalign convert --to hf --in MODEL --out HF_DIR\n"
                 "       tinyalign convert --from llmc --in gpt2_124M.bin --out DIR",
        .about = "Converts GPT-2 model directories (config.json + model.safetensors).\n",
        .opts = opts,
        .notes = "Both formats use HF GPT-2 tensor names with Conv1D weights stored (in, out),\n"
                 "so a converted directory loads in Python with safetensors/transformers.\n"
                 "A pytorch_model.bin-only HF directory: first run\n"
                 "  python3 tools/hf_gpt2.py bin2st --model HF_DIR\n"
                 "exit status: 0 ok, 1 write failure, 2 bad arguments or bad input files\n",
    };
    int rc = cli_parse(&spec, argc, argv);
    if (rc != CLI_RUN) return rc;
    if ((from != NULL) == (to != NULL))
        return cli_usage_error(&spec, "give exactly one of --from hf|llmc or --to hf");
    const char *fmt = from ? from : to;
    int llmc = from && !strcmp(from, "llmc");
    if (strcmp(fmt, "hf") != 0 && !llmc)
        return cli_usage_error(&spec, "unknown format \"%s\" for %s (expected %s)", fmt,
                               from ? "--from" : "--to", from ? "hf or llmc" : "hf");
    if (!in || !out) return cli_usage_error(&spec, "--in and --out are required");

    TaError err = {0};
    GPT2 m;
    char dir[4096];
    if (llmc) rc = model_load_llmc(&m, in, 0, &err);
    else if ((rc = checkpoint_resolve(in, dir, sizeof dir, &err)) == TA_OK)
        rc = model_load_dir(&m, dir, 0, &err);
    if (rc != TA_OK) {
        fprintf(stderr, "tinyalign convert: %s\n", err.msg);
        return rc;
    }
    rc = model_save_dir(&m, out, &err);
    if (rc != TA_OK) {
        fprintf(stderr, "tinyalign convert: %s\n", err.msg);
    } else {
        const GPT2Config *c = &m.config;
        size_t pad = (size_t)(c->padded_vocab_size - c->vocab_size) * (size_t)c->d_model;
        printf("converted %s -> %s (%s): GPT-2 n_layer=%d n_head=%d n_embd=%d vocab_size=%d "
               "n_positions=%d, %zu parameters\n", in, out, llmc ? "from llmc" : from ? "from hf" : "to hf",
               c->n_layer, c->n_head, c->d_model, c->vocab_size, c->max_seq_len, m.num_params - pad);
    }
    gpt2_free(&m);
    return rc;
}
