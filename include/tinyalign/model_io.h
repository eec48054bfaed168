/* model_io.h — GPT-2 weights, config and AdamW state on disk, under Hugging Face names.
 *
 * A "model directory" is any directory holding
 *   config.json        HF GPT-2 style: n_layer, n_head, n_embd, n_positions (n_ctx),
 *                      vocab_size, model_type "gpt2", architectures ["GPT2LMHeadModel"],
 *                      activation_function "gelu_new", layer_norm_epsilon 1e-5
 *   model.safetensors  F32 tensors under HF GPT-2 names, Conv1D weights as (in, out):
 *     transformer.wte.weight                (V, C)    real rows only; our Vp-V pad rows are 0
 *     transformer.wpe.weight                (maxT, C)
 *     transformer.h.{i}.ln_1.weight / .bias (C)
 *     transformer.h.{i}.attn.c_attn.weight  (C, 3C)   = qkvw[i]^T     (ours: (3C, C))
 *     transformer.h.{i}.attn.c_attn.bias    (3C)
 *     transformer.h.{i}.attn.c_proj.weight  (C, C)    = attprojw[i]^T
 *     transformer.h.{i}.attn.c_proj.bias    (C)
 *     transformer.h.{i}.ln_2.weight / .bias (C)
 *     transformer.h.{i}.mlp.c_fc.weight     (C, 4C)   = fcw[i]^T      (ours: (4C, C))
 *     transformer.h.{i}.mlp.c_fc.bias       (4C)
 *     transformer.h.{i}.mlp.c_proj.weight   (4C, C)   = fcprojw[i]^T  (ours: (C, 4C))
 *     transformer.h.{i}.mlp.c_proj.bias     (C)
 *     transformer.ln_f.weight / .bias       (C)
 *     score.weight                          (1, C)    a reward model only (our score (C))
 * so our checkpoints load in Python as HF GPT-2 weights and HF GPT-2 directories load
 * here. On load the "transformer." prefix is optional (the Hub's gpt2 files omit it),
 * F16/BF16/F64 tensors are converted to float32, the attention-mask buffers
 * h.{i}.attn.bias / h.{i}.attn.masked_bias are ignored, and lm_head.weight, when
 * present, must equal wte (GPT-2 ties them; an untied head is rejected).
 * A reward model (GPT2Config.score_head) is Hugging Face's GPT2ForSequenceClassification
 * with num_labels 1: its config.json says "architectures": ["GPT2ForSequenceClassification"],
 * "num_labels": 1 (plus id2label / label2id of that one label), and its weights add the
 * top-level tensor score.weight (1, C) (no bias). config.json decides which kind a directory
 * is; a head the config does not announce, or an announced head that is missing, is an
 * error naming score.weight.
 *
 * optim.safetensors (AdamW state): two 1-D F32 tensors "m" and "v" of num_params floats in
 * OUR slab layout (P_* order, our orientations, padded wte rows included), metadata
 * "format" = "tinyalign-adamw", "version" = "1", "step", "num_params" and "config"
 * (the model dimensions, checked on load).
 */
#ifndef TINYALIGN_MODEL_IO_H
#define TINYALIGN_MODEL_IO_H

#include "tinyalign/common.h"
#include "tinyalign/model.h"
#include "tinyalign/optim.h"

/* Writes m's parameters to path (atomically) under the HF names above, with metadata
 * "format" = "pt" (what transformers expects) and "tinyalign_version"; digest (may be
 * NULL) receives the file's size and CRC32. Returns TA_OK or TA_ERUNTIME (err names the
 * path). */
int model_save_safetensors(const GPT2 *m, const char *path, TaDigest *digest, TaError *err);

/* Loads path into m, which gpt2_init has already sized for the right config. Every
 * expected tensor must be present with exactly the expected shape; unexpected tensors
 * are an error (all listed, up to a few); pad rows of wte are zeroed. On error
 * (TA_EINPUT, message names the file and the tensor, expected vs found) m's parameters
 * may be partly overwritten. */
int model_load_safetensors(GPT2 *m, const char *path, TaError *err);

/* Reads an HF-style config.json into cfg (vocab_size, n_positions (or n_ctx), n_layer,
 * n_head, n_embd, score_head from "architectures"; padded_vocab_size is left 0 for
 * gpt2_config_check to fill). Rejects a GPT2ForSequenceClassification of more than one
 * label, and settings our GPT-2 cannot represent (model_type other than gpt2, n_inner != 4C,
 * activation other than gelu_new, layer_norm_epsilon != 1e-5, untied embeddings, ...);
 * other keys are ignored. Returns TA_OK or TA_EINPUT naming the file and key. */
int model_config_read(GPT2Config *cfg, const char *path, TaError *err);
/* Writes cfg as an HF GPT-2 config.json (atomically); digest as above. TA_OK or
 * TA_ERUNTIME. */
int model_config_write(const GPT2Config *cfg, const char *path, TaDigest *digest, TaError *err);

/* Reads dir/config.json, checks it (gpt2_config_check), gpt2_init(m, cfg, with_grads) and
 * loads dir/model.safetensors. m must be zeroed or freed; on error m is freed (zeroed)
 * and err says which file is wrong. */
int model_load_dir(GPT2 *m, const char *dir, int with_grads, TaError *err);
/* model_load_dir for a directory that must hold a reward model: TA_EINPUT ("DIR is not a
 * reward model: it has no scalar head ...") when it is a plain language model. */
int model_load_reward_dir(GPT2 *m, const char *dir, int with_grads, TaError *err);

/* Imports llm.c's checkpoint format (gpt2_124M.bin written by llm.c's train_gpt2.py):
 * a 256 x int32 header {20240326, version 3 (padded vocab) or 1, maxT, V, L, NH, C, Vp}
 * then float32 tensors in llm.c's order — which is our slab order (wte (Vp_llmc, C), wpe,
 * ln1w, ln1b, qkvw (L,3C,C), qkvb, attprojw, attprojb, ln2w, ln2b, fcw, fcb, fcprojw,
 * fcprojb, lnfw, lnfb). The file length must match the header exactly; the wte rows beyond
 * V are dropped (llm.c pads to 128, we to 64). Initialises m (frees it on error). */
int model_load_llmc(GPT2 *m, const char *path, int with_grads, TaError *err);
/* Creates dir if needed and writes dir/config.json and dir/model.safetensors, each
 * atomically. (Whole-directory atomicity is the checkpoint writer's job.) */
int model_save_dir(const GPT2 *m, const char *dir, TaError *err);

/* AdamW moments m, v of o (o->n == m->num_params, asserted) and o->step to path; digest
 * as above. */
int optim_save_safetensors(const AdamW *o, const GPT2 *m, const char *path, TaDigest *digest,
                           TaError *err);
/* Loads path into o (already adamw_init'ed with n == m->num_params): checks format,
 * version, model dimensions and sizes, says what differs. Sets o->m, o->v, o->step. */
int optim_load_safetensors(AdamW *o, const GPT2 *m, const char *path, TaError *err);

#endif
