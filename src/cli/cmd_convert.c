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

#include "tinyalign/cli.h"
#include "tinyalign/common.h"
#include "tinyalign/model.h"
#include "tinyalign/model_io.h"

static void convert_usage(FILE *f) {
    fprintf(f,
            "usage: tinyalign convert --from hf --in HF_DIR --out DIR\n"
            "       tinyalign convert --to hf --in DIR --out HF_DIR\n"
            "       tinyalign convert --from llmc --in gpt2_124M.bin --out DIR\n\n"
            "Converts GPT-2 model directories (config.json + model.safetensors).\n"
            "  --from hf   read a Hugging Face GPT-2 directory (names with or without the\n"
            "              \"transformer.\" prefix; F32, F16 or BF16), check every tensor's\n"
            "              shape against config.json, write a tinyalign model directory\n"
            "  --from llmc read llm.c's model file (train_gpt2.py's gpt2_*.bin, header\n"
            "              20240326, version 1 or 3) and write a tinyalign model directory\n"
            "  --to hf     write a tinyalign model directory as a Hugging Face GPT-2\n"
            "              directory (GPT2LMHeadModel; lm_head tied to wte, not stored)\n"
            "  --in PATH   the source directory\n"
            "  --out PATH  the destination directory (created; its config.json and\n"
            "              model.safetensors are replaced atomically)\n\n"
            "Both formats use HF GPT-2 tensor names with Conv1D weights stored (in, out),\n"
            "so a converted directory loads in Python with safetensors/transformers.\n"
            "A pytorch_model.bin-only HF directory: first run\n"
            "  python3 tools/hf_gpt2.py bin2st --model HF_DIR\n"
            "exit status: 0 ok, 1 write failure, 2 bad arguments or bad input files\n");
}

int cmd_convert(int argc, char **argv) {
    const char *from = NULL, *to = NULL, *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            convert_usage(stdout);
            return TA_OK;
        }
        const char **dst = !strcmp(a, "--from") ? &from
                           : !strcmp(a, "--to") ? &to
                           : !strcmp(a, "--in")  ? &in
                           : !strcmp(a, "--out") ? &out
                                                 : NULL;
        if (!dst) {
            fprintf(stderr, "tinyalign convert: unknown argument \"%s\" (see --help)\n", a);
            return TA_EINPUT;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "tinyalign convert: %s needs a value (see --help)\n", a);
            return TA_EINPUT;
        }
        *dst = argv[++i];
    }
    if ((from != NULL) == (to != NULL)) {
        fprintf(stderr, "tinyalign convert: give exactly one of --from hf or --to hf (see --help)\n");
        return TA_EINPUT;
    }
    const char *fmt = from ? from : to;
    int llmc = from && !strcmp(from, "llmc");
    if (strcmp(fmt, "hf") != 0 && !llmc) {
        fprintf(stderr, "tinyalign convert: unknown format \"%s\" for %s (expected %s)\n", fmt,
                from ? "--from" : "--to", from ? "hf or llmc" : "hf");
        return TA_EINPUT;
    }
    if (!in || !out) {
        fprintf(stderr, "tinyalign convert: --in and --out are required (see --help)\n");
        return TA_EINPUT;
    }

    TaError err = {0};
    GPT2 m;
    int rc = llmc ? model_load_llmc(&m, in, 0, &err) : model_load_dir(&m, in, 0, &err);
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
