/* cmd_convert.c — `tinyalign convert`: model directories to and from Hugging Face GPT-2.
 *
 * Our model directories already use HF GPT-2 tensor names and the Conv1D (in, out)
 * layout, so both directions are "load with full validation, write back": --from hf
 * checks an HF directory (optional "transformer." prefix, F16/BF16 upcast, mask buffers
 * and a tied lm_head dropped) and writes a clean F32 model directory; --to hf writes a
 * directory transformers' GPT2LMHeadModel.from_pretrained() reads (lm_head is left out:
 * HF ties it to wte). --from llmc imports llm.c's gpt2_*.bin checkpoint file.
 * The tokenizer travels with the weights both ways: the SentencePiece model is copied as
 * tokenizer.model and its bos / eos / pad ids go into config.json (bos_token_id, ...), so
 * the directory describes itself; on import, ids already in config.json must match it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tinyalign/checkpoint.h"
#include "tinyalign/cli.h"
#include "tinyalign/common.h"
#include "tinyalign/model.h"
#include "tinyalign/model_io.h"
#include "tinyalign/tokenizer.h"

/* The tokenizer that goes with the converted model: --tokenizer, else the source
 * directory's tokenizer.model (none: *path = ""). Loads it, checks it against the model's
 * vocabulary and (from hf) the ids the source config.json states, and fills ids with its
 * ids; without a tokenizer, ids are the ones the source config.json states (or none). */
static int find_tokenizer(const char *given, const char *src_dir, const GPT2 *m,
                          const char *src_config, char *path, size_t cap, ModelTokenIds *ids,
                          TaError *err) {
    ModelTokenIds stated = {-1, -1, -1};
    int rc = src_config ? model_config_read_ids(src_config, &stated, err) : TA_OK;
    if (rc != TA_OK) return rc;
    *ids = stated;
    path[0] = '\0';
    if (given) ta_pathf(path, cap, "%s", given);
    else if (src_dir && access(ta_pathf(path, cap, "%s/tokenizer.model", src_dir), F_OK) != 0)
        path[0] = '\0';
    if (!path[0]) return TA_OK;
    Tokenizer *tok = NULL;
    rc = tokenizer_load(&tok, path, err);
    if (rc != TA_OK) return rc;
    ta_pathf(path, cap, "%s", tokenizer_path(tok)); /* a directory names its tokenizer.model */
    *ids = (ModelTokenIds){tokenizer_bos_id(tok), tokenizer_eos_id(tok), tokenizer_pad_id(tok)};
    int pieces = tokenizer_vocab_size(tok);
    tokenizer_free(tok);
    if (pieces > m->config.vocab_size)
        return ta_err(err, TA_EINPUT, "%s has %d pieces but the model's vocab_size is %d: not "
                      "this model's tokenizer", path, pieces, m->config.vocab_size);
    if (src_config) { /* ids the source already states must be the tokenizer's */
        const char *names[3] = {"bos_token_id", "eos_token_id", "pad_token_id"};
        int have[3] = {ids->bos, ids->eos, ids->pad}, want[3] = {stated.bos, stated.eos, stated.pad};
        for (int i = 0; i < 3; i++)
            if (want[i] >= 0 && have[i] != want[i])
                return ta_err(err, TA_EINPUT, "%s: \"%s\" is %d but %s says %d: the config and "
                              "the tokenizer disagree", src_config, names[i], want[i], path, have[i]);
    }
    if (pieces < m->config.vocab_size)
        printf("note: %s has %d pieces, the model's vocab_size is %d (ids >= %d are never "
               "produced by this tokenizer)\n", path, pieces, m->config.vocab_size, pieces);
    return TA_OK;
}

int cmd_convert(int argc, char **argv) {
    const char *from = NULL, *to = NULL, *in = NULL, *out = NULL, *tok_arg = NULL;
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
         .help = "the destination directory (created; its config.json,\n"
                 "model.safetensors and tokenizer.model are replaced atomically)"},
        {.name = "--tokenizer", .kind = CLI_STR, .dst = &tok_arg, .meta = "PATH",
         .help = "the SentencePiece model that goes with the weights (default:\n"
                 "the source directory's tokenizer.model, if any)"},
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
                 "The tokenizer is copied as tokenizer.model and its ids written to config.json\n"
                 "(bos_token_id, eos_token_id, pad_token_id); --from hf checks the ids the\n"
                 "source config.json states against it.\n"
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
    memset(&m, 0, sizeof m);
    char dir[4096], src_config[4200], tok_path[4200], dst[4200];
    ModelTokenIds ids;
    if (llmc) rc = model_load_llmc(&m, in, 0, &err);
    else if ((rc = checkpoint_resolve(in, dir, sizeof dir, &err)) == TA_OK)
        rc = model_load_dir(&m, dir, 0, &err);
    if (rc == TA_OK)
        rc = find_tokenizer(tok_arg, llmc ? NULL : dir, &m,
                            from && !llmc ? ta_pathf(src_config, sizeof src_config, "%s/config.json", dir)
                                          : NULL,
                            tok_path, sizeof tok_path, &ids, &err);
    if (rc != TA_OK) {
        fprintf(stderr, "tinyalign convert: %s\n", err.msg);
        gpt2_free(&m);
        return rc;
    }
    rc = model_save_dir_ids(&m, &ids, out, &err);
    if (rc == TA_OK && tok_path[0]) { /* the tokenizer next to the weights */
        size_t len;
        char *bytes = ta_read_file(tok_path, &len, &err);
        rc = bytes ? ta_write_file_atomic(ta_pathf(dst, sizeof dst, "%s/tokenizer.model", out),
                                          bytes, len, &err)
                   : TA_EINPUT;
        free(bytes);
    }
    if (rc != TA_OK) {
        fprintf(stderr, "tinyalign convert: %s\n", err.msg);
    } else {
        const GPT2Config *c = &m.config;
        size_t pad = (size_t)(c->padded_vocab_size - c->vocab_size) * (size_t)c->d_model;
        printf("converted %s -> %s (%s): GPT-2 n_layer=%d n_head=%d n_embd=%d vocab_size=%d "
               "n_positions=%d, %zu parameters\n", in, out, llmc ? "from llmc" : from ? "from hf" : "to hf",
               c->n_layer, c->n_head, c->d_model, c->vocab_size, c->max_seq_len, m.num_params - pad);
        if (tok_path[0])
            printf("tokenizer: %s -> %s/tokenizer.model (bos_token_id %d, eos_token_id %d, "
                   "pad_token_id %d; -1 = none)\n", tok_path, out, ids.bos, ids.eos, ids.pad);
        else
            printf("tokenizer: none (%s has no tokenizer.model; pass --tokenizer to add one)\n",
                   llmc ? "an llm.c file" : dir);
    }
    gpt2_free(&m);
    return rc;
}
