/* config.h — one JSON file drives a run: parse, validate and resolve it into a typed
 * Config with every default filled in. cJSON stays inside src/config/; the rest of the
 * engine sees only the structs below.
 *
 * Flow:   config_source_open(path)          read + parse the file (errors: file:line:col)
 *         config_apply_override("a.b=v")    --set, repeatable; checked on the spot
 *         config_resolve(src, &cfg)         unknown keys, types, ranges, model preset,
 *                                           derived defaults, cross-key checks
 * or in one call: config_load(&cfg, path, sets, n_sets, &err).
 *
 * The schema is a table (src/config/schema.c), one row per key: path, type, offset in
 * Config, default, range, enum choices, whether it changes the training math, aliases
 * (familiar TRL / HF names, used only for "did you mean" suggestions) and a doc string.
 * Adding a key = adding a field below + one row there.
 *
 * Paths inside a config (data.train, model.preset, model.path, ...) are kept exactly as
 * written; relative ones are resolved against the current working directory by whoever
 * opens them (not against the config file's directory).
 *
 * Every user-input failure returns TA_EINPUT with a complete message in TaError naming
 * the file (or "--set"), the key path and what was expected. The module never prints
 * (except config_print_help, to the FILE it is given) and never exits.
 */
#ifndef TINYALIGN_CONFIG_H
#define TINYALIGN_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tinyalign/common.h"
#include "tinyalign/model.h" /* GPT2Config (type only) */
#include "tinyalign/optim.h" /* AdamWConfig, LrSchedule (SCHED_CONSTANT/LINEAR/COSINE) */

/* ---- enums: the value is the index of the choice in the schema row ----------------- */
typedef enum { CFG_INIT_SCRATCH = 0, CFG_INIT_CHECKPOINT, CFG_INIT_HF } CfgModelInit;
typedef enum { CFG_TOK_SENTENCEPIECE = 0, CFG_TOK_NONE } CfgTokenizerType;
typedef enum { CFG_DATA_TOKENS = 0, CFG_DATA_SFT, CFG_DATA_PREFERENCE, CFG_DATA_MULTI } CfgDataFormat;
typedef enum { CFG_TRUNC_KEEP_END = 0, CFG_TRUNC_KEEP_START } CfgTruncation;
typedef enum {
    CFG_OBJ_PRETRAIN = 0, CFG_OBJ_SFT, CFG_OBJ_DPO, CFG_OBJ_ORPO, CFG_OBJ_DDPO, CFG_OBJ_DORPO,
    CFG_OBJ_REWARD, CFG_OBJ_NADO
} CfgObjectiveType;
typedef enum { CFG_LOSS_SIGMOID = 0, CFG_LOSS_IPO, CFG_LOSS_HINGE, CFG_LOSS_ROBUST } CfgLossType;
typedef enum { CFG_NLL_RESPONSE = 0, CFG_NLL_FULL } CfgNllScope;
typedef enum { CFG_REF_SNAPSHOT = 0, CFG_REF_CACHED, CFG_REF_SYNC } CfgRefMode;
typedef enum { CFG_QBASE_POLICY = 0, CFG_QBASE_BASE } CfgQBase;

/* A list of owned strings (train.sample_prompts). */
typedef struct {
    char **items; /* (n) malloc'd strings */
    int n;
} CfgStrList;

/* data.train: one path or glob ("a.jsonl"), or a mixture of files of one format with
 * mixing ratios ([{"path": "a.jsonl", "weight": 3}, {"path": "b.jsonl", "weight": 1}];
 * a bare string in the list has weight 1). Ratios are >= 0 and sum to > 0.
 * A source may say which loss terms its rows feed under objective.attribute: {"path": ...,
 * "loss": "kl"} rows feed only the KL term (their NLL weight is 0: prefixes sampled from
 * the model, Meng et al. 2024), "nll" rows only the NLL; "all" (the default) every term. */
#define CFG_MAX_SOURCES 16
typedef enum { CFG_SRC_LOSS_ALL = 0, CFG_SRC_LOSS_NLL, CFG_SRC_LOSS_KL } CfgSourceLoss;
typedef struct {
    int n;          /* 1..CFG_MAX_SOURCES (0 only in a zeroed struct) */
    char **paths;   /* (n) malloc'd */
    double *weights; /* (n) mixing ratios (1 for a plain string) */
    CfgSourceLoss *loss; /* (n) the terms each source feeds (CFG_SRC_LOSS_ALL for a string) */
    bool list;      /* given as a list (written back as one) */
} CfgSources;

/* All strings are malloc'd, owned by the Config, never NULL after a load/init ("" = unset). */
typedef struct {
    char *name;    /* "run" */
    char *out_dir; /* "" in the file -> "runs/<name>" */
    int64_t seed;  /* 1337, in [0, 2^53] */
    int threads;   /* 0 = all cores */
} CfgRun;

typedef struct {
    CfgModelInit init; /* scratch | checkpoint | hf */
    char *preset;      /* JSON file of dims, e.g. "models/tiny.json"; "" = none */
    char *path;        /* checkpoint dir or HF dir; required when init != scratch */
    int n_layer;       /* L  */
    int n_head;        /* NH */
    int d_model;       /* C  */
    int vocab_size;    /* V; 0 = take from the tokenizer */
    int max_seq_len;   /* maxT */
    Precision precision; /* fp32 | bf16: the matmul operands (backend.h) */
    BackendKind backend; /* auto | openblas | onednn */
    int lm_head_chunk;   /* token rows of logits at once (gpt2_set_lm_chunk); 0 = all */
} CfgModel;

typedef struct {
    CfgTokenizerType type;
    char *model; /* SentencePiece .model path */
} CfgTokenizer;

typedef struct {
    CfgDataFormat format;
    CfgSources train;    /* path or glob, or a mixture of files; required */
    char *val;           /* path or glob, "" = none (see val_fraction) */
    double val_fraction; /* hold-out fraction of train when val is "" */
    int max_len;         /* T for token shards; max prompt+response tokens otherwise */
    int max_prompt_len;
    CfgTruncation truncation_mode;
    bool shuffle;
} CfgData;

typedef struct {
    CfgRefMode mode;
    char *path;      /* "" = the initial policy */
    char *cache_dir; /* "" = next to the data */
    int sync_steps;
    double sync_alpha;
} CfgReference;

/* objective.attribute: attribute-controlled fine-tuning (Meng et al. 2024, arXiv 2410.05559)
 * on sft / pretrain: L = NLL + lambda * mean over the NLL's tokens of KL(q_t || p_t),
 * q_t = normalise(stop_grad(p0_t) * sigmoid(r_t)), r_t the guide model's logits and p0
 * the policy itself (q_base policy) or a frozen base model (q_base base). */
typedef struct {
    char *guide;     /* NADO-style guide model directory; "" = off */
    double lambda;   /* weight of the KL term, >= 0 */
    CfgQBase q_base; /* which p goes inside q: the policy (detached) or `base` */
    char *base;      /* q_base base: the base model dir; "" = the initial policy */
} CfgAttribute;

/* objective.type nado: trains a NADO guide (Meng et al. 2022, arXiv 2205.14219): the
 * model's logits r are per-token sigmoid logits, trained with BCE against each sampled
 * sequence's 0/1 label plus alpha_reg times the consistency term against the frozen base
 * model's next-token distribution. */
typedef struct {
    char *base;        /* the frozen base model dir (p_base); "" = the initial model */
    double alpha_reg;  /* weight of the consistency term, >= 0 */
    bool stop_grad_expectation; /* 1: E_t is a constant target (no gradient to r_{t+1}) */
} CfgNado;

typedef struct {
    CfgObjectiveType type;
    double beta;            /* DPO temperature */
    CfgLossType loss_type;
    double label_smoothing; /* robust / cDPO eps */
    double sft_weight;      /* NLL on chosen added to DPO (TRL rpo_alpha) */
    double lambda;          /* ORPO weight of the odds-ratio term */
    CfgNllScope nll_scope;
    bool dorpo_match_trl_quirk;
    double odds_clamp;      /* ORPO clamps A <= -odds_clamp */
    double center_rewards_coefficient; /* reward: + coef * mean((r_c + r_r)^2) (TRL) */
    CfgReference reference;
    CfgAttribute attribute;
    CfgNado nado;
} CfgObjective;

typedef struct {
    double lr;
    double betas[2];
    double eps;
    double weight_decay;
    LrSchedule schedule;
    int warmup_steps;
    double min_lr_ratio;
    double grad_clip; /* <= 0 disables */
} CfgOptim;

/* train.eval_generate: task metrics during training. Every eval_every steps, sample the
 * validation prompts with the current weights and score them with a scorer spec
 * (include/tinyalign/score.h). Never changes the training math. */
typedef struct {
    char *scorer;       /* scorer spec; "" = off */
    char *prompts;      /* prompt JSONL; "" = the validation data (data.val, or the held-out
                         * data.val_fraction of data.train) read as prompt rows */
    int max_prompts;    /* the first N prompts; 0 = all */
    int n;              /* samples per prompt at `temperature`; 0 = none (greedy only) */
    double temperature; /* > 0 */
    bool greedy;        /* also one greedy sample per prompt */
    int max_new_tokens;
    char *template_;    /* prompt template FILE|TEXT ({prompt}, {FIELD}); "" = none */
} CfgEvalGenerate;

typedef struct {
    int batch_size;   /* B per micro-step */
    int grad_accum;
    int max_steps;    /* optimizer updates */
    int log_every;
    int eval_every;   /* 0 = never */
    int eval_batches;
    int save_every;   /* 0 = only at the end */
    int keep_last_n;
    int patience;     /* evals without improvement before stopping; 0 = off */
    double min_delta;
    bool keep_best;
    int max_bad_steps; /* consecutive non-finite losses before aborting */
    int sample_every;  /* 0 = never */
    CfgStrList sample_prompts;
    int sample_max_new_tokens;
    double sample_temperature;
    CfgEvalGenerate eval_generate;
} CfgTrain;

typedef struct {
    CfgRun run;
    CfgModel model;
    CfgTokenizer tokenizer;
    CfgData data;
    CfgObjective objective;
    CfgOptim optim;
    CfgTrain train;
} Config;

/* ---- the schema ------------------------------------------------------------------- */
typedef enum {
    CFG_T_INT,     /* int */
    CFG_T_INT64,   /* int64_t */
    CFG_T_FLOAT,   /* double */
    CFG_T_BOOL,    /* bool */
    CFG_T_STRING,  /* char * */
    CFG_T_ENUM,    /* C enum (int-sized); value = index into choices */
    CFG_T_FLOAT2,  /* double[2]; the range applies to each element */
    CFG_T_STRLIST, /* CfgStrList */
    CFG_T_SOURCES, /* CfgSources: a string, or a list of {"path", "weight"} / strings */
} CfgValueType;

/* ConfigKey.flags */
enum {
    CFG_MATH = 1 << 0,     /* changing it changes the training math (refuse on resume) */
    CFG_GE = 1 << 1,       /* value >= min */
    CFG_GT = 1 << 2,       /* value >  min */
    CFG_LE = 1 << 3,       /* value <= max */
    CFG_LT = 1 << 4,       /* value <  max */
    CFG_REQUIRED = 1 << 5, /* must be given (file, --set or preset) */
    CFG_NONEMPTY = 1 << 6, /* string must not be "" */
    CFG_PRESET = 1 << 7,   /* may be given by a model.preset file (bare key there) */
};

typedef struct {
    const char *path;           /* "optim.lr", "objective.reference.mode" */
    CfgValueType type;
    size_t offset;              /* offsetof(Config, ...) */
    unsigned flags;
    double min, max;            /* see CFG_GE/GT/LE/LT */
    double def, def2;           /* numeric/bool/enum-index default; def2: FLOAT2 [1] */
    const char *def_str;        /* STRING default */
    const char *const *choices; /* ENUM: NULL-terminated names, index = C value */
    const char *aliases;        /* comma-separated familiar names, suggestions only */
    const char *doc;            /* one short line */
} ConfigKey;

/* The schema rows in file order. Never NULL; *n receives the count. */
const ConfigKey *config_keys(int *n);
/* The row for a full key path, or NULL. */
const ConfigKey *config_key_find(const char *path);
/* Name of an enum value: config_choice_name("objective.type", c->objective.type) -> "dpo".
 * Returns "?" for an unknown path or out-of-range value. */
const char *config_choice_name(const char *path, int value);

/* ---- building a Config ------------------------------------------------------------ */
/* Every default (out_dir = "runs/run"); strings are allocated. Overwrites *c without
 * freeing it. data.train is one "" path — a config must name it to load. */
void config_init_defaults(Config *c);
/* Frees the strings and lists; leaves *c zeroed. Safe on a zeroed struct. */
void config_free(Config *c);
/* Deep copy; dst is overwritten without freeing. */
void config_copy(Config *dst, const Config *src);

/* A parsed config file plus its --set overrides, not yet validated. Opaque. */
typedef struct ConfigSource ConfigSource;

/* Reads and parses path (NULL = an empty config: all defaults). Returns TA_OK with *out
 * set (free with config_source_free), or TA_EINPUT: "path: cannot open: ...",
 * "path:LINE:COL: invalid JSON near ...", "path: must be a JSON object ...". */
int config_source_open(ConfigSource **out, const char *path, TaError *err);
/* Same from a string; name is used in messages (e.g. "run/state.json"). */
int config_source_open_string(ConfigSource **out, const char *json, const char *name,
                              TaError *err);
/* Applies one "section.key=value". The value is parsed as JSON when it parses (numbers,
 * true/false, arrays, "quoted strings"), else taken as a bare string; for string and
 * enum keys a number/bool is taken as its text. Unknown keys, wrong types and out-of-
 * range values are reported here, named "--set". Later overrides of a key win. */
int config_apply_override(ConfigSource *src, const char *assignment, TaError *err);
/* Validates and converts: unknown keys (with a suggestion), duplicates, types, ranges,
 * enums, model.preset (explicit keys win over the preset), derived defaults
 * (out_dir), cross-key checks. On TA_OK *out holds a Config to config_free; on error
 * *out is zeroed. src can be resolved again. */
int config_resolve(ConfigSource *src, Config *out, TaError *err);
void config_source_free(ConfigSource *src); /* NULL is fine */

/* open + each override + resolve. sets may be NULL when n_sets == 0. */
int config_load(Config *out, const char *path, const char *const *sets, int n_sets,
                TaError *err);
/* Loads a config held in a string (e.g. the resolved config saved in a checkpoint). */
int config_load_string(Config *out, const char *json, const char *name, TaError *err);

/* ---- output ----------------------------------------------------------------------- */
/* The resolved config as pretty JSON (2-space indent, every key, schema order); loading
 * it again gives an identical Config. malloc'd, caller frees. */
char *config_to_json(const Config *c);

/* Number of keys whose values differ between a and b (all keys, or only the CFG_MATH
 * ones); lists them one per line in buf ("optim.lr: 0.001 -> 0.002"), truncated to cap.
 * buf may be NULL when cap == 0. */
int config_diff(const Config *a, const Config *b, int math_only, char *buf, size_t cap);
/* config_diff(a, b, 1, ...): a resume must refuse when this is not 0. */
int config_diff_math(const Config *a, const Config *b, char *buf, size_t cap);

/* Every key with its type, default, constraint and doc, for `train --help-config`.
 * malloc'd, caller frees. config_print_help writes the same text to f. */
char *config_help_text(void);
void config_print_help(FILE *f);

/* ---- conversions for the other modules ---------------------------------------------- */
/* optim.* plus max_steps = train.max_steps. */
void config_to_adamw(const Config *c, AdamWConfig *out);
/* model dims; padded_vocab_size = 0 (gpt2_config_check fills it). vocab_size may be 0
 * ("take from the tokenizer"): the caller fills it before checking. */
void config_to_gpt2(const Config *c, GPT2Config *out);

#endif
