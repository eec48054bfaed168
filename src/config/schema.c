/* schema.c — the config schema: one row per key (see ConfigKey in config.h).
 *
 * To add a key: add the field to the section struct in config.h, then one row here in
 * the place it should appear in the resolved JSON. Everything else — parsing, type and
 * range checks, defaults, suggestions, config_to_json, diffs, --help-config — walks this
 * table. Mark CFG_MATH unless changing the key mid-run leaves every update bit-identical
 * (logging, checkpoint cadence, threads, evaluation and sampling are not math).
 * `aliases` are familiar spellings (TRL / HF Trainer / torchtune) that are NOT accepted,
 * only used to suggest the right key: "learning_rate" -> "optim.lr".
 */
#include <stddef.h>
#include <string.h>

#include "tinyalign/config.h"

#define OFF(m) offsetof(Config, m)
#define M CFG_MATH

static const char *const INIT_CHOICES[] = {"scratch", "checkpoint", "hf", NULL};
static const char *const TOK_CHOICES[] = {"sentencepiece", "none", NULL};
static const char *const FORMAT_CHOICES[] = {"tokens", "sft", "preference", "multi", NULL};
static const char *const TRUNC_CHOICES[] = {"keep_end", "keep_start", NULL};
static const char *const OBJ_CHOICES[] = {"pretrain", "sft", "dpo", "orpo", "ddpo", "dorpo",
                                          "reward", "nado", NULL};
static const char *const LOSS_CHOICES[] = {"sigmoid", "ipo", "hinge", "robust", NULL};
static const char *const SCOPE_CHOICES[] = {"response", "full", NULL};
static const char *const REF_CHOICES[] = {"snapshot", "cached", "sync", NULL};
static const char *const QBASE_CHOICES[] = {"policy", "base", NULL};
/* Order must match Precision and BackendKind in backend.h. */
static const char *const PRECISION_CHOICES[] = {"fp32", "bf16", NULL};
static const char *const BACKEND_CHOICES[] = {"auto", "openblas", "onednn", NULL};
/* Order must match LrSchedule in optim.h. */
static const char *const SCHED_CHOICES[] = {"constant", "linear", "cosine", NULL};

_Static_assert(sizeof(CfgModelInit) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(LrSchedule) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(Precision) == sizeof(int) && sizeof(BackendKind) == sizeof(int),
               "enums are stored as int");
_Static_assert(PRECISION_FP32 == 0 && PRECISION_BF16 == 1, "PRECISION_CHOICES follows Precision");
_Static_assert(BACKEND_AUTO == 0 && BACKEND_OPENBLAS == 1 && BACKEND_ONEDNN == 2,
               "BACKEND_CHOICES follows BackendKind");
_Static_assert(SCHED_CONSTANT == 0 && SCHED_LINEAR == 1 && SCHED_COSINE == 2,
               "SCHED_CHOICES follows LrSchedule");

static const ConfigKey KEYS[] = {
    /* ---- run ---- */
    {.path = "run.name", .type = CFG_T_STRING, .offset = OFF(run.name), .flags = CFG_NONEMPTY,
     .def_str = "run", .aliases = "run_name,experiment_name", .doc = "name of the run"},
    {.path = "run.out_dir", .type = CFG_T_STRING, .offset = OFF(run.out_dir), .def_str = "",
     .aliases = "output_dir,outdir,dir",
     .doc = "where checkpoints and metrics go; \"\" = runs/<name>"},
    {.path = "run.seed", .type = CFG_T_INT64, .offset = OFF(run.seed),
     .flags = M | CFG_GE | CFG_LE, .min = 0, .max = 9007199254740992.0, .def = 1337,
     .aliases = "random_seed,data_seed", .doc = "seed for weight init, data order and sampling"},
    {.path = "run.threads", .type = CFG_T_INT, .offset = OFF(run.threads), .flags = CFG_GE,
     .min = 0, .def = 0, .aliases = "num_threads,n_threads,nthreads",
     .doc = "OpenMP/BLAS threads; 0 = all cores"},

    /* ---- model ---- */
    {.path = "model.init", .type = CFG_T_ENUM, .offset = OFF(model.init), .flags = M,
     .def = CFG_INIT_SCRATCH, .choices = INIT_CHOICES, .aliases = "from,source",
     .doc = "start from random weights, a tinyalign checkpoint, or a Hugging Face dir"},
    {.path = "model.preset", .type = CFG_T_STRING, .offset = OFF(model.preset), .def_str = "",
     .aliases = "arch,config,model_config",
     .doc = "JSON file of dims (models/tiny.json); keys set here win"},
    {.path = "model.path", .type = CFG_T_STRING, .offset = OFF(model.path), .flags = M,
     .def_str = "", .aliases = "model_name_or_path,checkpoint,dir",
     .doc = "checkpoint or HF directory; required when init != scratch"},
    {.path = "model.n_layer", .type = CFG_T_INT, .offset = OFF(model.n_layer),
     .flags = M | CFG_GE | CFG_PRESET, .min = 1, .def = 4,
     .aliases = "n_layers,num_layers,num_hidden_layers,layers", .doc = "transformer blocks L"},
    {.path = "model.n_head", .type = CFG_T_INT, .offset = OFF(model.n_head),
     .flags = M | CFG_GE | CFG_PRESET, .min = 1, .def = 4,
     .aliases = "n_heads,num_heads,num_attention_heads,heads", .doc = "attention heads NH"},
    {.path = "model.d_model", .type = CFG_T_INT, .offset = OFF(model.d_model),
     .flags = M | CFG_GE | CFG_PRESET, .min = 1, .def = 128,
     .aliases = "n_embd,hidden_size,dim,embed_dim,d_embed",
     .doc = "residual width C; must be a multiple of n_head"},
    {.path = "model.vocab_size", .type = CFG_T_INT, .offset = OFF(model.vocab_size),
     .flags = M | CFG_GE | CFG_PRESET, .min = 0, .def = 0, .aliases = "n_vocab,vocab",
     .doc = "vocabulary V; 0 = take from the tokenizer"},
    {.path = "model.max_seq_len", .type = CFG_T_INT, .offset = OFF(model.max_seq_len),
     .flags = M | CFG_GE | CFG_PRESET, .min = 1, .def = 256,
     .aliases = "n_positions,n_ctx,max_position_embeddings,block_size,context_length",
     .doc = "positions maxT"},
    {.path = "model.precision", .type = CFG_T_ENUM, .offset = OFF(model.precision), .flags = M,
     .def = PRECISION_FP32, .choices = PRECISION_CHOICES,
     .aliases = "dtype,torch_dtype,mixed_precision,bf16,amp,fp16",
     .doc = "matmuls in fp32, or bf16 inputs with fp32 sums (needs AVX512-BF16 or AMX; "
            "weights, AdamW, LayerNorm, softmax, loss and checkpoints stay fp32)"},
    {.path = "model.backend", .type = CFG_T_ENUM, .offset = OFF(model.backend), .flags = M,
     .def = BACKEND_AUTO, .choices = BACKEND_CHOICES, .aliases = "blas,matmul_backend,engine",
     .doc = "matmul library: auto = openblas for fp32, onednn for bf16"},
    {.path = "model.lm_head_chunk", .type = CFG_T_INT, .offset = OFF(model.lm_head_chunk),
     .flags = M | CFG_GE, .min = 0, .def = 0, .aliases = "loss_chunk,logits_chunk,chunk_size",
     .doc = "token rows whose logits exist at once (LM head + loss in chunks, recomputed "
            "in the backward: less memory, ~1/3 more LM-head FLOPs); 0 = the whole batch"},

    /* ---- tokenizer ---- */
    {.path = "tokenizer.type", .type = CFG_T_ENUM, .offset = OFF(tokenizer.type), .flags = M,
     .def = CFG_TOK_SENTENCEPIECE, .choices = TOK_CHOICES, .aliases = "kind",
     .doc = "tokenizer kind; none = data are token shards"},
    {.path = "tokenizer.model", .type = CFG_T_STRING, .offset = OFF(tokenizer.model),
     .flags = M, .def_str = "", .aliases = "path,model_file,file,tokenizer_path",
     .doc = "SentencePiece .model file; \"\" ok for type none or token shards"},

    /* ---- data ---- */
    {.path = "data.format", .type = CFG_T_ENUM, .offset = OFF(data.format), .flags = M,
     .def = CFG_DATA_TOKENS, .choices = FORMAT_CHOICES, .aliases = "type,kind",
     .doc = "token shards, or JSONL prompt/completion, chosen/rejected, responses"},
    {.path = "data.train", .type = CFG_T_SOURCES, .offset = OFF(data.train),
     .flags = M | CFG_REQUIRED | CFG_NONEMPTY, .def_str = "",
     .aliases = "train_file,train_path,dataset,train_data,path,datasets,mixture",
     .doc = "training data: path or glob, or [{\"path\": P, \"weight\": w, \"loss\": "
            "\"all\"|\"nll\"|\"kl\"}, ...] to mix files (nll, kl: rows feed only that term "
            "of objective.attribute)"},
    {.path = "data.val", .type = CFG_T_STRING, .offset = OFF(data.val), .flags = M,
     .def_str = "", .aliases = "val_file,eval_file,validation,valid,eval,val_path",
     .doc = "validation data: path or glob; \"\" = none or val_fraction"},
    {.path = "data.val_fraction", .type = CFG_T_FLOAT, .offset = OFF(data.val_fraction),
     .flags = M | CFG_GE | CFG_LE, .min = 0, .max = 0.5, .def = 0.0,
     .aliases = "val_split,eval_fraction,test_size,validation_split",
     .doc = "hold out this fraction of train as validation when val is \"\""},
    {.path = "data.max_len", .type = CFG_T_INT, .offset = OFF(data.max_len),
     .flags = M | CFG_GE, .min = 2, .def = 256,
     .aliases = "max_length,max_seq_length,seq_len,block_size,sequence_length",
     .doc = "sequence length T (prompt + response); <= model.max_seq_len"},
    {.path = "data.max_prompt_len", .type = CFG_T_INT, .offset = OFF(data.max_prompt_len),
     .flags = M | CFG_GE, .min = 1, .def = 128, .aliases = "max_prompt_length",
     .doc = "prompt tokens kept; < max_len for JSONL formats"},
    {.path = "data.truncation_mode", .type = CFG_T_ENUM, .offset = OFF(data.truncation_mode),
     .flags = M, .def = CFG_TRUNC_KEEP_END, .choices = TRUNC_CHOICES, .aliases = "truncation",
     .doc = "which end of an over-long prompt to keep"},
    {.path = "data.shuffle", .type = CFG_T_BOOL, .offset = OFF(data.shuffle), .flags = M,
     .def = 1, .aliases = "shuffle_data", .doc = "shuffle examples each epoch (seeded)"},

    /* ---- objective ---- */
    {.path = "objective.type", .type = CFG_T_ENUM, .offset = OFF(objective.type), .flags = M,
     .def = CFG_OBJ_PRETRAIN, .choices = OBJ_CHOICES, .aliases = "name,method,algorithm",
     .doc = "the loss head"},
    {.path = "objective.beta", .type = CFG_T_FLOAT, .offset = OFF(objective.beta),
     .flags = M | CFG_GT, .min = 0, .def = 0.1, .aliases = "dpo_beta,temperature",
     .doc = "DPO temperature"},
    {.path = "objective.loss_type", .type = CFG_T_ENUM, .offset = OFF(objective.loss_type),
     .flags = M, .def = CFG_LOSS_SIGMOID, .choices = LOSS_CHOICES, .aliases = "loss",
     .doc = "DPO loss variant"},
    {.path = "objective.label_smoothing", .type = CFG_T_FLOAT,
     .offset = OFF(objective.label_smoothing), .flags = M | CFG_GE | CFG_LT, .min = 0,
     .max = 0.5, .def = 0.0, .aliases = "smoothing,cdpo_eps",
     .doc = "robust / cDPO label noise eps"},
    {.path = "objective.sft_weight", .type = CFG_T_FLOAT, .offset = OFF(objective.sft_weight),
     .flags = M | CFG_GE, .min = 0, .def = 0.0, .aliases = "rpo_alpha,nll_weight,alpha",
     .doc = "weight of NLL on chosen added to DPO (TRL rpo_alpha)"},
    {.path = "objective.lambda", .type = CFG_T_FLOAT, .offset = OFF(objective.lambda),
     .flags = M | CFG_GE, .min = 0, .def = 0.1, .aliases = "orpo_lambda,orpo_alpha,or_weight",
     .doc = "ORPO weight of the odds-ratio term"},
    {.path = "objective.nll_scope", .type = CFG_T_ENUM, .offset = OFF(objective.nll_scope),
     .flags = M, .def = CFG_NLL_RESPONSE, .choices = SCOPE_CHOICES, .aliases = "nll_on",
     .doc = "NLL over response tokens or the full sequence"},
    {.path = "objective.dorpo_match_trl_quirk", .type = CFG_T_BOOL,
     .offset = OFF(objective.dorpo_match_trl_quirk), .flags = M, .def = 0,
     .aliases = "trl_quirk", .doc = "reproduce the reference DORPO code's weighting quirk"},
    {.path = "objective.odds_clamp", .type = CFG_T_FLOAT, .offset = OFF(objective.odds_clamp),
     .flags = M | CFG_GT, .min = 0, .def = 1e-6, .aliases = "clamp",
     .doc = "ORPO clamps mean log-prob A <= -odds_clamp"},
    {.path = "objective.center_rewards_coefficient", .type = CFG_T_FLOAT,
     .offset = OFF(objective.center_rewards_coefficient), .flags = M | CFG_GE, .min = 0,
     .def = 0.0, .aliases = "center_rewards,center_coef,reward_centering",
     .doc = "reward: adds coef * mean((r_chosen + r_rejected)^2) (TRL)"},

    /* ---- objective.reference ---- */
    {.path = "objective.reference.mode", .type = CFG_T_ENUM,
     .offset = OFF(objective.reference.mode), .flags = M, .def = CFG_REF_SNAPSHOT,
     .choices = REF_CHOICES, .aliases = "type,kind",
     .doc = "frozen copy, cached log-probs on disk, or TR-DPO sync"},
    {.path = "objective.reference.path", .type = CFG_T_STRING,
     .offset = OFF(objective.reference.path), .flags = M, .def_str = "",
     .aliases = "ref_model,model,ref_model_path", .doc = "reference model dir; \"\" = the initial policy"},
    {.path = "objective.reference.cache_dir", .type = CFG_T_STRING,
     .offset = OFF(objective.reference.cache_dir), .def_str = "", .aliases = "cache,cache_path",
     .doc = "where cached reference log-probs live; \"\" = next to the data"},
    {.path = "objective.reference.sync_steps", .type = CFG_T_INT,
     .offset = OFF(objective.reference.sync_steps), .flags = M | CFG_GE, .min = 1, .def = 512,
     .aliases = "ref_model_sync_steps", .doc = "sync: update the reference every N steps"},
    {.path = "objective.reference.sync_alpha", .type = CFG_T_FLOAT,
     .offset = OFF(objective.reference.sync_alpha), .flags = M | CFG_GT | CFG_LE, .min = 0,
     .max = 1, .def = 0.6, .aliases = "ref_model_mixup_alpha,mixup_alpha",
     .doc = "sync: ref = alpha*policy + (1-alpha)*ref"},

    /* ---- objective.attribute ---- */
    {.path = "objective.attribute.guide", .type = CFG_T_STRING,
     .offset = OFF(objective.attribute.guide), .flags = M, .def_str = "",
     .aliases = "nado,guide_model,aux_model,nado_model",
     .doc = "sft/pretrain: guide model dir (sigmoid of its logits = R); \"\" = off"},
    {.path = "objective.attribute.lambda", .type = CFG_T_FLOAT,
     .offset = OFF(objective.attribute.lambda), .flags = M | CFG_GE, .min = 0, .def = 0.5,
     .aliases = "kl_weight,kl_coef,attribute_lambda",
     .doc = "weight of the KL(q || p) term per NLL token, q = p*sigmoid(guide)"},
    {.path = "objective.attribute.q_base", .type = CFG_T_ENUM,
     .offset = OFF(objective.attribute.q_base), .flags = M, .def = CFG_QBASE_POLICY,
     .choices = QBASE_CHOICES, .aliases = "q_model,prior,p_in_q",
     .doc = "p inside q: the policy (detached) or the frozen base model"},
    {.path = "objective.attribute.base", .type = CFG_T_STRING,
     .offset = OFF(objective.attribute.base), .flags = M, .def_str = "",
     .aliases = "base_model,base_path,prior_model",
     .doc = "q_base base: base model dir; \"\" = the initial policy"},

    /* ---- objective.nado ---- */
    {.path = "objective.nado.base", .type = CFG_T_STRING, .offset = OFF(objective.nado.base),
     .flags = M, .def_str = "", .aliases = "base_model,base_path,base_lm",
     .doc = "nado: frozen base model dir (p_base); \"\" = the initial model"},
    {.path = "objective.nado.alpha_reg", .type = CFG_T_FLOAT,
     .offset = OFF(objective.nado.alpha_reg), .flags = M | CFG_GE, .min = 0, .def = 1.0,
     .aliases = "bellman_reg,reg,consistency_weight,alpha",
     .doc = "nado: weight of the consistency term"},
    {.path = "objective.nado.stop_grad_expectation", .type = CFG_T_BOOL,
     .offset = OFF(objective.nado.stop_grad_expectation), .flags = M, .def = 0,
     .aliases = "detach_expectation,stop_grad",
     .doc = "nado: E_t a constant target (false = gradient to r_t+1 too)"},

    /* ---- optim ---- */
    {.path = "optim.lr", .type = CFG_T_FLOAT, .offset = OFF(optim.lr), .flags = M | CFG_GT,
     .min = 0, .def = 3e-4, .aliases = "learning_rate,lr_max,peak_lr",
     .doc = "peak learning rate"},
    {.path = "optim.betas", .type = CFG_T_FLOAT2, .offset = OFF(optim.betas),
     .flags = M | CFG_GE | CFG_LT, .min = 0, .max = 1, .def = 0.9, .def2 = 0.999,
     .aliases = "adam_betas,beta", .doc = "AdamW [beta1, beta2]"},
    {.path = "optim.eps", .type = CFG_T_FLOAT, .offset = OFF(optim.eps), .flags = M | CFG_GT,
     .min = 0, .def = 1e-8, .aliases = "adam_epsilon,adam_eps,epsilon", .doc = "AdamW epsilon"},
    {.path = "optim.weight_decay", .type = CFG_T_FLOAT, .offset = OFF(optim.weight_decay),
     .flags = M | CFG_GE, .min = 0, .def = 0.0, .aliases = "wd,decay",
     .doc = "decoupled weight decay (matmul weights only)"},
    {.path = "optim.schedule", .type = CFG_T_ENUM, .offset = OFF(optim.schedule), .flags = M,
     .def = SCHED_COSINE, .choices = SCHED_CHOICES,
     .aliases = "lr_scheduler_type,lr_scheduler,scheduler,lr_schedule",
     .doc = "learning-rate decay after warmup"},
    {.path = "optim.warmup_steps", .type = CFG_T_INT, .offset = OFF(optim.warmup_steps),
     .flags = M | CFG_GE, .min = 0, .def = 0, .aliases = "num_warmup_steps,warmup",
     .doc = "linear warmup steps"},
    {.path = "optim.min_lr_ratio", .type = CFG_T_FLOAT, .offset = OFF(optim.min_lr_ratio),
     .flags = M | CFG_GE | CFG_LE, .min = 0, .max = 1, .def = 0.0,
     .aliases = "min_lr,final_lr_ratio", .doc = "decay to lr * min_lr_ratio at max_steps"},
    {.path = "optim.grad_clip", .type = CFG_T_FLOAT, .offset = OFF(optim.grad_clip), .flags = M,
     .def = 1.0, .aliases = "max_grad_norm,clip_grad_norm,clip_grad,gradient_clipping",
     .doc = "global L2 norm clip; <= 0 disables"},

    /* ---- train ---- */
    {.path = "train.batch_size", .type = CFG_T_INT, .offset = OFF(train.batch_size),
     .flags = M | CFG_GE, .min = 1, .def = 8,
     .aliases = "per_device_train_batch_size,micro_batch_size,batch",
     .doc = "sequences (pairs for preference data) per micro-step"},
    {.path = "train.grad_accum", .type = CFG_T_INT, .offset = OFF(train.grad_accum),
     .flags = M | CFG_GE, .min = 1, .def = 1,
     .aliases = "gradient_accumulation_steps,grad_accum_steps,accum_steps",
     .doc = "micro-steps per optimizer update"},
    {.path = "train.max_steps", .type = CFG_T_INT, .offset = OFF(train.max_steps),
     .flags = M | CFG_GE, .min = 1, .def = 1000,
     .aliases = "steps,num_steps,total_steps,train_steps,iterations",
     .doc = "optimizer updates (schedule horizon)"},
    {.path = "train.log_every", .type = CFG_T_INT, .offset = OFF(train.log_every),
     .flags = CFG_GE, .min = 1, .def = 10, .aliases = "logging_steps,log_interval",
     .doc = "steps between progress lines / metrics rows"},
    {.path = "train.eval_every", .type = CFG_T_INT, .offset = OFF(train.eval_every),
     .flags = CFG_GE, .min = 0, .def = 100, .aliases = "eval_steps,eval_interval",
     .doc = "steps between evaluations; 0 = never"},
    {.path = "train.eval_batches", .type = CFG_T_INT, .offset = OFF(train.eval_batches),
     .flags = CFG_GE, .min = 1, .def = 20, .aliases = "eval_iters,eval_steps_count",
     .doc = "batches per evaluation"},
    {.path = "train.save_every", .type = CFG_T_INT, .offset = OFF(train.save_every),
     .flags = CFG_GE, .min = 0, .def = 200, .aliases = "save_steps,checkpoint_every",
     .doc = "steps between checkpoints; 0 = only at the end"},
    {.path = "train.keep_last_n", .type = CFG_T_INT, .offset = OFF(train.keep_last_n),
     .flags = CFG_GE, .min = 1, .def = 3, .aliases = "save_total_limit,keep_last,keep",
     .doc = "checkpoints kept (older ones deleted)"},
    {.path = "train.patience", .type = CFG_T_INT, .offset = OFF(train.patience),
     .flags = M | CFG_GE, .min = 0, .def = 0, .aliases = "early_stopping_patience",
     .doc = "evals without improvement before stopping; 0 = off"},
    {.path = "train.min_delta", .type = CFG_T_FLOAT, .offset = OFF(train.min_delta),
     .flags = M | CFG_GE, .min = 0, .def = 0.0, .aliases = "early_stopping_threshold",
     .doc = "val-loss decrease that counts as improvement"},
    {.path = "train.keep_best", .type = CFG_T_BOOL, .offset = OFF(train.keep_best), .def = 0,
     .aliases = "load_best_model_at_end,save_best", .doc = "also keep the best-val checkpoint"},
    {.path = "train.max_bad_steps", .type = CFG_T_INT, .offset = OFF(train.max_bad_steps),
     .flags = M | CFG_GE, .min = 1, .def = 5, .aliases = "max_nan_steps",
     .doc = "consecutive non-finite losses (skipped) before aborting"},
    {.path = "train.sample_every", .type = CFG_T_INT, .offset = OFF(train.sample_every),
     .flags = CFG_GE, .min = 0, .def = 0, .aliases = "sample_steps,generate_every",
     .doc = "steps between sample generations; 0 = never"},
    {.path = "train.sample_prompts", .type = CFG_T_STRLIST, .offset = OFF(train.sample_prompts),
     .aliases = "prompts,sample_prompt", .doc = "prompts to sample from"},
    {.path = "train.sample_max_new_tokens", .type = CFG_T_INT,
     .offset = OFF(train.sample_max_new_tokens), .flags = CFG_GE, .min = 1, .def = 64,
     .aliases = "max_new_tokens", .doc = "tokens generated per sample"},
    {.path = "train.sample_temperature", .type = CFG_T_FLOAT,
     .offset = OFF(train.sample_temperature), .flags = CFG_GE, .min = 0, .def = 1.0,
     .aliases = "temperature", .doc = "sampling temperature; 0 = greedy"},

    /* ---- train.eval_generate ---- */
    {.path = "train.eval_generate.scorer", .type = CFG_T_STRING,
     .offset = OFF(train.eval_generate.scorer), .def_str = "",
     .aliases = "scorer_spec,reward,metric,judge",
     .doc = "every eval_every: sample val prompts, score (cmd:/logprob:/banned:); \"\" = off"},
    {.path = "train.eval_generate.prompts", .type = CFG_T_STRING,
     .offset = OFF(train.eval_generate.prompts), .def_str = "",
     .aliases = "prompt_file,eval_prompts",
     .doc = "prompt JSONL (fields go to the scorer); \"\" = the validation data"},
    {.path = "train.eval_generate.max_prompts", .type = CFG_T_INT,
     .offset = OFF(train.eval_generate.max_prompts), .flags = CFG_GE, .min = 0, .def = 64,
     .aliases = "num_prompts,n_prompts", .doc = "the first N prompts; 0 = all"},
    {.path = "train.eval_generate.n", .type = CFG_T_INT, .offset = OFF(train.eval_generate.n),
     .flags = CFG_GE, .min = 0, .def = 4, .aliases = "num_samples,samples,k",
     .doc = "samples per prompt at temperature (score_max@n); 0 = greedy only"},
    {.path = "train.eval_generate.temperature", .type = CFG_T_FLOAT,
     .offset = OFF(train.eval_generate.temperature), .flags = CFG_GT, .min = 0, .def = 1.0,
     .aliases = "temp", .doc = "temperature of the n samples"},
    {.path = "train.eval_generate.greedy", .type = CFG_T_BOOL,
     .offset = OFF(train.eval_generate.greedy), .def = 1, .aliases = "do_greedy",
     .doc = "also one greedy sample per prompt (eval/greedy/...)"},
    {.path = "train.eval_generate.max_new_tokens", .type = CFG_T_INT,
     .offset = OFF(train.eval_generate.max_new_tokens), .flags = CFG_GE, .min = 1, .def = 64,
     .aliases = "max_tokens,max_length", .doc = "tokens generated per sample"},
    {.path = "train.eval_generate.template", .type = CFG_T_STRING,
     .offset = OFF(train.eval_generate.template_), .def_str = "",
     .aliases = "prompt_template,format", .doc = "prompt template FILE|TEXT ({prompt}, {FIELD})"},
};

const ConfigKey *config_keys(int *n) {
    *n = (int)(sizeof KEYS / sizeof KEYS[0]);
    return KEYS;
}

const ConfigKey *config_key_find(const char *path) {
    for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++)
        if (!strcmp(KEYS[i].path, path)) return &KEYS[i];
    return NULL;
}

const char *config_choice_name(const char *path, int value) {
    const ConfigKey *k = config_key_find(path);
    if (!k || k->type != CFG_T_ENUM || value < 0) return "?";
    for (int i = 0; k->choices[i]; i++)
        if (i == value) return k->choices[i];
    return "?";
}
