/* prs.c — a PRS run (prs.h: prs_run): read the prompt rows, build the query prompts, check
 * that every prompt leaves room for feedback and revision, then layer by layer: generate
 * all prompts' samples together, score them in one scorer call, find each prompt's best so
 * far, get one feedback per prompt (the policy, a critic program, or none), fill and encode
 * the revise prompts; finally write the multi-response file with the tree fields and the
 * summary.
 * Not here: the budget split, best and template checks (tree.c), sampling (src/sample/),
 * scorers (src/score/), argument parsing (src/cli/cmd_prs.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tinyalign/data.h"
#include "tinyalign/prs.h"
#include "tinyalign/tokenizer.h"

void prs_options_default(PrsOptions *o) {
    memset(o, 0, sizeof *o);
    scorer_options_default(&o->scorer_opt);
    sample_options_default(&o->sample);
    /* the paper's sampling parameters (vLLM in the authors' scripts) */
    o->sample.temperature = 0.8;
    o->sample.top_k = 50;
    o->sample.presence_penalty = 1.2;
    o->mode = PRS_MODE_TREE;
    o->n0 = -1;
    o->depth = 2;
    o->feedback = PRS_FEEDBACK_MODEL;
    o->show_prompts = 20;
}

/* One response in a prompt's tree. */
typedef struct {
    char *text;
    int num_tokens;
    SampleFinish finish;
    ScoreResult res;
    int layer;
    int parent; /* index of the response it refines; -1 in layer 0 */
} Node;

/* One prompt row and its tree. */
typedef struct {
    DataRow row;
    char where[256];        /* "FILE:LINE" */
    char *pref;             /* z */
    char *query;            /* q: what layer 0 encodes */
    DataField *fld;         /* (n_fld) {question, answer, preference, feedback} + the row's */
    char *fld_json[4];      /* the values of the first four, as JSON string literals */
    char *pref_member;      /* "preference":Z, for scorer requests of rows without one */
    int n_fld;
    DataFields fields;      /* the row's fields + "preference" (scorer requests) */
    Node *nodes;            /* (N) in generation order */
    int n_nodes;
    char *feedback[PRS_MAX_DEPTH]; /* feedback[l]: what layer l was conditioned on */
    char *input[PRS_MAX_DEPTH];    /* input[l]: layer l's prompt text (--keep-prompts) */
    char *fb_input[PRS_MAX_DEPTH]; /* the feedback prompt of layer l (--keep-prompts) */
    int best;               /* the best node so far */
    double best_layer[PRS_MAX_DEPTH]; /* each layer's own best score */
    int *ids;               /* the current layer's prompt ids */
    int len;
} Item;

enum { F_QUESTION = 0, F_ANSWER, F_PREFERENCE, F_FEEDBACK, F_NSPECIAL };
static const char *const SPECIAL[F_NSPECIAL] = {"question", "answer", "preference", "feedback"};

/* Sets special field k of it to text (a JSON string literal). */
static void item_set(Item *it, int k, const char *text) {
    TaBuf b = {0};
    jsonl_put_string(&b, text ? text : "");
    free(it->fld_json[k]);
    it->fld_json[k] = b.p;
    it->fld[k].value = b.p;
    it->fld[k].json = b.p; /* only the value is read (templates fill values) */
}

typedef struct {
    const PrsOptions *o;
    const GPT2 *m;
    const Tokenizer *tok;
    Dataset *ds;
    Item *items;
    int P;
    SampleTemplate query, feedback, revise;
    Scorer *scorer, *critic;
    int sizes[PRS_MAX_DEPTH], layers;
    int fb_max;             /* feedback max new tokens */
    PrsStats *st;
    double t_last;
} Run;

static void run_free(Run *r) {
    for (int i = 0; i < r->P && r->items; i++) {
        Item *it = &r->items[i];
        free(it->pref);
        free(it->query);
        for (int k = 0; k < F_NSPECIAL; k++) free(it->fld_json[k]);
        free(it->pref_member);
        free(it->fld);
        for (int j = 0; j < it->n_nodes; j++) {
            free(it->nodes[j].text);
            score_result_free(&it->nodes[j].res);
        }
        free(it->nodes);
        for (int l = 0; l < PRS_MAX_DEPTH; l++) {
            free(it->feedback[l]);
            free(it->input[l]);
            free(it->fb_input[l]);
        }
        free(it->ids);
    }
    free(r->items);
    sample_template_free(&r->query);
    sample_template_free(&r->feedback);
    sample_template_free(&r->revise);
    scorer_close(r->scorer);
    scorer_close(r->critic);
    dataset_free(r->ds);
}

/* ---- progress ------------------------------------------------------------------------- */
typedef struct {
    FILE *log;
    int tty;
    const char *what;
    double t0, last;
} GenProgress;

static void on_gen_progress(void *ctx, long done, long total, long tokens) {
    GenProgress *g = ctx;
    double now = ta_now();
    if (now - g->last < (g->tty ? 0.25 : 5.0)) return;
    g->last = now;
    double dt = now - g->t0, rate = dt > 0 ? (double)done / dt : 0;
    char eta[32] = "";
    if (rate > 0) snprintf(eta, sizeof eta, " | ETA %.0fs", (double)(total - done) / rate);
    fprintf(g->log, "%sprs: %s: %ld/%ld sequences | %ld tokens | %.1f tok/s%s%s",
            g->tty ? "\r" : "", g->what, done, total, tokens, dt > 0 ? (double)tokens / dt : 0.0,
            eta, g->tty ? "   " : "\n");
    fflush(g->log);
}

/* Generates n sequences for each item's current prompt (it->ids) with seed; out (P * n). */
static int generate(Run *r, int n, uint64_t seed, int max_new, const char *what,
                    SampleResult *out, TaError *err) {
    SampleOptions so = r->o->sample;
    so.n = n;
    so.seed = seed;
    so.max_new_tokens = max_new;
    int maxlen = 1;
    int **ids = ta_malloc(sizeof(int *) * (size_t)r->P, "prs prompts");
    int *lens = ta_malloc(sizeof(int) * (size_t)r->P, "prs prompts");
    for (int i = 0; i < r->P; i++) {
        ids[i] = r->items[i].ids;
        lens[i] = r->items[i].len;
        if (lens[i] > maxlen) maxlen = lens[i];
    }
    SampleGen *g = NULL;
    GenProgress gp = {.log = r->o->log, .tty = r->o->log && isatty(fileno(r->o->log)), .what = what};
    gp.t0 = gp.last = ta_now();
    int rc = sample_gen_init(&g, r->m, r->tok, &so, maxlen, err);
    if (rc == TA_OK && r->o->log) sample_gen_set_progress(g, on_gen_progress, &gp);
    if (rc == TA_OK)
        rc = sample_gen_run(g, (const int *const *)ids, lens, r->P, 0, out, NULL, err);
    double dt = ta_now() - gp.t0;
    sample_gen_free(g);
    free(ids);
    free(lens);
    if (rc != TA_OK) return rc;
    long tokens = 0;
    for (long k = 0; k < (long)r->P * n; k++) tokens += out[k].num_tokens;
    r->st->tokens += tokens;
    r->st->gen_seconds += dt;
    if (r->o->log)
        fprintf(r->o->log, "%sprs: %s: %d prompts x %d, %ld tokens in %.2fs (%.1f tok/s)%s\n",
                gp.tty ? "\r" : "", what, r->P, n, tokens, dt, dt > 0 ? (double)tokens / dt : 0.0,
                gp.tty ? "          " : "");
    return TA_OK;
}

/* Encodes text as item i's next prompt; errors name FILE:LINE and what the prompt is. */
static int set_prompt(Run *r, Item *it, const char *text, const char *what, TaError *err) {
    free(it->ids);
    it->ids = NULL;
    TaError e = {0};
    if (row_encode_generation_prompt(r->tok, text, r->m->config.max_seq_len, &it->ids, &it->len,
                                     &e) != TA_OK)
        return ta_err(err, TA_EINPUT, "%s: %s: %s", it->where, what, e.msg);
    return TA_OK;
}

static int fill(const SampleTemplate *t, const Item *it, const char *what, char **out,
                TaError *err) {
    DataFields f = {.f = it->fld, .n = it->n_fld};
    TaError e = {0};
    if (sample_template_fill(t, it->row.prompt, &f, out, &e) != TA_OK)
        return ta_err(err, TA_EINPUT, "%s: %s template: %s", it->where, what, e.msg);
    return TA_OK;
}

static int count_tokens(Run *r, const char *text, int *n, TaError *err) {
    int *ids = NULL;
    int rc = row_encode_generation_prompt(r->tok, text, 0, &ids, n, err);
    free(ids);
    return rc;
}

/* ---- setup: rows, queries, the room check ------------------------------------------------ */
/* "the --ROLE-template" (given) or "the default ROLE template (the paper's, paraphrased)". */
static const char *template_name(const char *given, const char *role) {
    if (given)
        return strcmp(role, "feedback") ? "the --revise-template" : "the --feedback-template";
    return strcmp(role, "feedback") ? "the default revise template (the paper's, paraphrased)"
                                    : "the default feedback template (the paper's, paraphrased)";
}

static int setup_items(Run *r, TaError *err) {
    const PrsOptions *o = r->o;
    const int S = r->m->config.max_seq_len;
    const int tree = o->mode == PRS_MODE_TREE, with_fb = o->feedback != PRS_FEEDBACK_NONE;
    r->items = ta_calloc(sizeof(Item) * (size_t)r->P, "prs items");
    int total = 0;
    for (int l = 0; l < r->layers; l++) total += r->sizes[l];
    for (int i = 0; i < r->P; i++) {
        Item *it = &r->items[i];
        dataset_row(r->ds, (size_t)i, &it->row);
        snprintf(it->where, sizeof it->where, "%s:%ld", o->prompts, it->row.line);
        const DataField *pf = data_fields_find(&it->row.extra, "preference");
        if (pf && pf->value[0] != '"')
            return ta_err(err, TA_EINPUT, "%s: field \"preference\" must be a string", it->where);
        it->pref = pf ? data_field_text(pf) : ta_strdup(o->preference ? o->preference : "", "pref");
        /* template fields: ours first (data_fields_find takes the first), then the row's;
         * scorer fields: the row's, plus "preference" when the row has none */
        it->n_fld = F_NSPECIAL + it->row.extra.n;
        it->fld = ta_calloc(sizeof(DataField) * (size_t)(it->n_fld + 1), "prs fields");
        for (int k = 0; k < F_NSPECIAL; k++) it->fld[k].key = SPECIAL[k];
        for (int k = 0; k < it->row.extra.n; k++) it->fld[F_NSPECIAL + k] = it->row.extra.f[k];
        item_set(it, F_PREFERENCE, it->pref);
        item_set(it, F_ANSWER, "");
        item_set(it, F_FEEDBACK, "");
        item_set(it, F_QUESTION, "");
        if (pf) {
            it->fields = it->row.extra;
        } else { /* the row's fields then preference: [special preference] moved after them */
            TaBuf b = {0};
            ta_buf_puts(&b, "\"preference\":");
            jsonl_put_string(&b, it->pref);
            it->pref_member = b.p;
            it->fld[it->n_fld] = (DataField){.key = "preference", .json = b.p,
                                             .value = b.p + strlen("\"preference\":")};
            it->fields = (DataFields){.f = it->fld + F_NSPECIAL, .n = it->row.extra.n + 1};
        }
        if (o->mode == PRS_MODE_RAND_NO_PREF) {
            it->query = ta_strdup(it->row.prompt, "prs query");
        } else {
            int rc = fill(&r->query, it, "query", &it->query, err);
            if (rc != TA_OK) return rc;
        }
        item_set(it, F_QUESTION, it->query);
        int rc = set_prompt(r, it, it->query, "the query prompt", err);
        if (rc != TA_OK) return rc;
        it->nodes = ta_calloc(sizeof(Node) * (size_t)total, "prs nodes");
        it->best = -1;
        if (!tree) continue;
        /* room for feedback and revision: the answer is at most min(max_new_tokens, what
         * the query left), the feedback at most fb_max; the filled templates with empty
         * answer / feedback plus those must leave a token to generate. The message names
         * the template (given, or the built-in default: the paper's long prompt does not
         * fit a tiny max_seq_len) and how many tokens are too many. */
        int ans = o->sample.max_new_tokens < S - it->len ? o->sample.max_new_tokens : S - it->len;
        int fb = 0, lf = 0, lr = 0;
        char *text = NULL;
        if (o->feedback == PRS_FEEDBACK_MODEL) {
            if ((rc = fill(&r->feedback, it, "feedback", &text, err)) != TA_OK) return rc;
            rc = count_tokens(r, text, &lf, err);
            free(text);
            if (rc != TA_OK) return ta_err(err, TA_EINPUT, "%s: feedback prompt: %s", it->where, err->msg);
            if (lf + ans >= S)
                return ta_err(err, TA_EINPUT, "%s: no room left for feedback within the model's "
                              "max_seq_len %d: %s filled is %d tokens, plus the answer (up to "
                              "%d, --max-new-tokens) and 1 to generate: %d tokens too many; give "
                              "a shorter --feedback-template or lower --max-new-tokens",
                              it->where, S, template_name(o->feedback_template, "feedback"), lf,
                              ans, lf + ans + 1 - S);
            fb = r->fb_max < S - lf - ans ? r->fb_max : S - lf - ans;
        }
        if ((rc = fill(&r->revise, it, "revise", &text, err)) != TA_OK) return rc;
        rc = count_tokens(r, text, &lr, err);
        free(text);
        if (rc != TA_OK) return ta_err(err, TA_EINPUT, "%s: revise prompt: %s", it->where, err->msg);
        if (lr + ans + fb >= S)
            return ta_err(err, TA_EINPUT, "%s: no room left for revision within the model's "
                          "max_seq_len %d: %s filled is %d tokens, plus the answer (up to %d, "
                          "--max-new-tokens)%s%.0d%s and 1 to generate: %d tokens too many; give a "
                          "shorter --revise-template or lower --max-new-tokens%s", it->where, S,
                          template_name(o->revise_template, "revise"), lr, ans,
                          with_fb ? ", the feedback (up to " : "", with_fb ? fb : 0,
                          with_fb ? ")" : "",
                          lr + ans + fb + 1 - S, with_fb ? " / --feedback-max-new-tokens" : "");
    }
    return TA_OK;
}

/* ---- scoring ----------------------------------------------------------------------------- */
static const char *const RESERVED[] = {"text", "num_tokens", "finish_reason", "score", "layer",
                                       "parent", "feedback", "input", "feedback_input", NULL};

/* Scores nodes [first, first + n) of every item in one scorer call. */
static int score_layer(Run *r, int first, int n, TaError *err) {
    size_t total = (size_t)r->P * (size_t)n;
    ScoreRequest *req = ta_calloc(sizeof *req * (total ? total : 1), "prs requests");
    ScoreResult *res = ta_calloc(sizeof *res * (total ? total : 1), "prs results");
    char **where = ta_calloc(sizeof(char *) * (total ? total : 1), "prs requests");
    for (int i = 0; i < r->P; i++) {
        Item *it = &r->items[i];
        for (int j = 0; j < n; j++) {
            size_t k = (size_t)i * n + j;
            where[k] = ta_malloc(320, "prs where");
            snprintf(where[k], 320, "%s responses[%d]", it->where, first + j);
            req[k] = (ScoreRequest){.prompt = it->row.prompt, .response = it->nodes[first + j].text,
                                    .fields = &it->fields, .where = where[k]};
        }
    }
    double t0 = ta_now();
    int rc = scorer_score(r->scorer, req, total, res, err);
    for (size_t k = 0; k < total && rc == TA_OK; k++)
        for (int f = 0; f < res[k].n_fields && rc == TA_OK; f++)
            for (int q = 0; RESERVED[q] && rc == TA_OK; q++)
                if (!strcmp(res[k].fields[f].key, RESERVED[q]))
                    rc = ta_err(err, TA_EINPUT, "scorer %s: its answer to %s has a field \"%s\", "
                                "which prs writes itself; rename it", scorer_spec(r->scorer)->text,
                                where[k], RESERVED[q]);
    for (size_t k = 0; k < total; k++) {
        if (rc == TA_OK) r->items[k / n].nodes[first + k % n].res = res[k];
        else score_result_free(&res[k]);
        free(where[k]);
    }
    if (rc == TA_OK) r->st->scorer_calls++;
    if (rc == TA_OK && r->o->log)
        fprintf(r->o->log, "prs: scored %zu responses in %.2fs\n", total, ta_now() - t0);
    free(where);
    free(res);
    free(req);
    return rc;
}

/* After layer l (nodes [first, first + n)): each layer's best and the best so far. */
static void update_best(Run *r, int l, int first, int n) {
    double *s = ta_malloc(sizeof(double) * (size_t)(first + n), "prs scores");
    for (int i = 0; i < r->P; i++) {
        Item *it = &r->items[i];
        for (int j = 0; j < first + n; j++) s[j] = it->nodes[j].res.score;
        it->best_layer[l] = s[first + prs_best(s + first, n)];
        it->best = prs_best(s, first + n);
    }
    free(s);
}

/* ---- feedback --------------------------------------------------------------------------- */
/* One feedback per item on its best so far, for layer l: it->feedback[l]. */
static int get_feedback(Run *r, int l, TaError *err) {
    const PrsOptions *o = r->o;
    int rc = TA_OK;
    if (o->feedback == PRS_FEEDBACK_MODEL) {
        for (int i = 0; i < r->P && rc == TA_OK; i++) {
            Item *it = &r->items[i];
            char *text = NULL;
            if ((rc = fill(&r->feedback, it, "feedback", &text, err)) == TA_OK)
                rc = set_prompt(r, it, text, "the feedback prompt", err);
            if (o->keep_prompts) it->fb_input[l] = text;
            else free(text);
        }
        if (rc != TA_OK) return rc;
        SampleResult *res = ta_calloc(sizeof *res * (size_t)r->P, "prs feedback");
        char what[64];
        snprintf(what, sizeof what, "layer %d feedback", l);
        rc = generate(r, 1, sample_seq_seed(o->sample.seed, PRS_SEED_FEEDBACK, (uint64_t)l),
                      r->fb_max, what, res, err);
        for (int i = 0; i < r->P; i++) {
            if (rc == TA_OK) r->items[i].feedback[l] = res[i].text, res[i].text = NULL;
            sample_result_free(&res[i]);
        }
        free(res);
        if (rc == TA_OK) r->st->feedbacks += r->P;
        return rc;
    }
    if (o->feedback == PRS_FEEDBACK_NONE) return TA_OK;
    /* a critic program: the cmd: protocol, one call; its answers carry "feedback" */
    ScoreRequest *req = ta_calloc(sizeof *req * (size_t)r->P, "prs critic");
    ScoreResult *res = ta_calloc(sizeof *res * (size_t)r->P, "prs critic");
    char **where = ta_calloc(sizeof(char *) * (size_t)r->P, "prs critic");
    for (int i = 0; i < r->P; i++) {
        Item *it = &r->items[i];
        where[i] = ta_malloc(320, "prs where");
        snprintf(where[i], 320, "%s responses[%d] (feedback for layer %d)", it->where, it->best, l);
        req[i] = (ScoreRequest){.prompt = it->row.prompt, .response = it->nodes[it->best].text,
                                .fields = &it->fields, .where = where[i]};
    }
    rc = scorer_score(r->critic, req, (size_t)r->P, res, err);
    if (rc == TA_OK) r->st->critic_calls++;
    for (int i = 0; i < r->P; i++) {
        const ScoreField *f = rc == TA_OK ? score_result_field(&res[i], "feedback") : NULL;
        if (rc == TA_OK && (!f || f->value[0] != '"'))
            rc = ta_err(err, TA_EINPUT, "critic %s: its answer to %s has no \"feedback\" string "
                        "(the critic prints {\"score\": x, \"feedback\": \"...\"} per request)",
                        o->critic, where[i]);
        if (rc == TA_OK) {
            DataField df = {.key = "feedback", .json = f->value, .value = f->value};
            r->items[i].feedback[l] = data_field_text(&df);
        }
        score_result_free(&res[i]);
        free(where[i]);
    }
    free(where);
    free(res);
    free(req);
    return rc;
}

/* ---- output ----------------------------------------------------------------------------- */
static void put_line(TaBuf *b, const Item *it, int add_pref, int keep) {
    static const char *const skip[] = {"responses", "filled_prompt", NULL};
    jsonl_put_row_start(b, &it->row, skip);
    for (int j = 0; j < it->n_nodes; j++) {
        const Node *nd = &it->nodes[j];
        ta_buf_puts(b, j ? ",{\"text\":" : "{\"text\":");
        jsonl_put_string(b, nd->text ? nd->text : "");
        ta_buf_printf(b, ",\"num_tokens\":%d,\"finish_reason\":\"%s\",\"score\":", nd->num_tokens,
                      sample_finish_name(nd->finish));
        jsonl_put_number(b, nd->res.score);
        for (int k = 0; k < nd->res.n_fields; k++) {
            ta_buf_puts(b, ",");
            jsonl_put_string(b, nd->res.fields[k].key);
            ta_buf_puts(b, ":");
            ta_buf_puts(b, nd->res.fields[k].value);
        }
        ta_buf_printf(b, ",\"layer\":%d,\"parent\":", nd->layer);
        if (nd->parent < 0) ta_buf_puts(b, "null");
        else ta_buf_printf(b, "%d", nd->parent);
        if (nd->layer > 0 && it->feedback[nd->layer]) {
            ta_buf_puts(b, ",\"feedback\":");
            jsonl_put_string(b, it->feedback[nd->layer]);
        }
        if (keep) { /* what the response was generated from (and its feedback's prompt) */
            ta_buf_puts(b, ",\"input\":");
            jsonl_put_string(b, nd->layer ? it->input[nd->layer] : it->query);
            if (it->fb_input[nd->layer]) {
                ta_buf_puts(b, ",\"feedback_input\":");
                jsonl_put_string(b, it->fb_input[nd->layer]);
            }
        }
        ta_buf_puts(b, "}");
    }
    jsonl_put_row_end(b, &it->row, skip);
    b->n -= 2; /* ...}\n -> ...,"filled_prompt":Q[,"preference":Z]}\n */
    ta_buf_puts(b, ",\"filled_prompt\":");
    jsonl_put_string(b, it->query);
    if (add_pref) {
        ta_buf_puts(b, ",\"preference\":");
        jsonl_put_string(b, it->pref);
    }
    ta_buf_puts(b, "}\n");
}

static const char *mode_name(PrsMode m) {
    return m == PRS_MODE_TREE ? "prs" : m == PRS_MODE_RAND ? "rand" : "rand-no-pref";
}

static void put_summary(TaBuf *b, const Run *r) {
    const PrsOptions *o = r->o;
    const PrsStats *st = r->st;
    ta_buf_printf(b, "{\"mode\":\"%s\",\"feedback\":\"%s\",\"n\":%d,\"layer_sizes\":[", mode_name(o->mode),
                  o->mode != PRS_MODE_TREE ? "n/a" : o->feedback == PRS_FEEDBACK_MODEL ? "model"
                  : o->feedback == PRS_FEEDBACK_CMD ? "cmd" : "none", o->n);
    for (int l = 0; l < r->layers; l++) ta_buf_printf(b, l ? ",%d" : "%d", r->sizes[l]);
    ta_buf_printf(b, "],\"prompts\":%d,\"seed\":%llu,\"scorer\":", r->P,
                  (unsigned long long)o->sample.seed);
    jsonl_put_string(b, o->scorer);
    ta_buf_puts(b, ",\"mean_best\":");
    jsonl_put_number(b, st->mean_best);
    ta_buf_puts(b, ",\"mean_best_after_layer\":[");
    for (int l = 0; l < r->layers; l++) {
        if (l) ta_buf_puts(b, ",");
        jsonl_put_number(b, st->mean_best_after[l]);
    }
    ta_buf_puts(b, "],\"mean_score\":");
    jsonl_put_number(b, st->mean_score);
    /* boolean fields of the best responses as rates (e.g. "correct") */
    ScoreSummary sum;
    memset(&sum, 0, sizeof sum);
    for (int i = 0; i < r->P; i++) score_summary_add(&sum, &r->items[i].nodes[r->items[i].best].res);
    ta_buf_puts(b, ",\"best_rates\":{");
    for (int k = 0; k < sum.n_bools; k++) {
        if (k) ta_buf_puts(b, ",");
        jsonl_put_string(b, sum.bools[k].key);
        ta_buf_puts(b, ":");
        jsonl_put_number(b, sum.bools[k].n_seen ? (double)sum.bools[k].n_true / sum.bools[k].n_seen : 0);
    }
    ta_buf_printf(b, "},\"responses\":%ld,\"feedbacks\":%ld,\"tokens\":%ld,\"gen_seconds\":%.3f,"
                  "\"tokens_per_s\":%.1f,\"scorer_calls\":%ld,\"critic_calls\":%ld,\"per_prompt\":[",
                  st->responses, st->feedbacks, st->tokens, st->gen_seconds,
                  st->gen_seconds > 0 ? (double)st->tokens / st->gen_seconds : 0.0,
                  st->scorer_calls, st->critic_calls);
    for (int i = 0; i < r->P; i++) {
        const Item *it = &r->items[i];
        ta_buf_printf(b, "%s{\"line\":%ld,\"best\":%d,\"best_layer\":%d,\"best_score\":", i ? "," : "",
                      it->row.line, it->best, it->nodes[it->best].layer);
        jsonl_put_number(b, it->nodes[it->best].res.score);
        ta_buf_puts(b, ",\"best_per_layer\":[");
        for (int l = 0; l < r->layers; l++) {
            if (l) ta_buf_puts(b, ",");
            jsonl_put_number(b, it->best_layer[l]);
        }
        ta_buf_puts(b, "]}");
    }
    ta_buf_puts(b, "]}\n");
}

static void print_summary(const Run *r) {
    FILE *f = r->o->log;
    if (!f) return;
    int show = r->P < r->o->show_prompts ? r->P : r->o->show_prompts;
    for (int i = 0; i < show; i++) {
        const Item *it = &r->items[i];
        fprintf(f, "prs: %s: best per layer", it->where);
        for (int l = 0; l < r->layers; l++) fprintf(f, " %.4g", it->best_layer[l]);
        fprintf(f, " -> %.4g (responses[%d], layer %d)\n", it->nodes[it->best].res.score, it->best,
                it->nodes[it->best].layer);
    }
    if (show < r->P) fprintf(f, "prs: ... %d more prompts in the summary file\n", r->P - show);
    fprintf(f, "prs: %d prompts, %s N=%d (layers", r->P, mode_name(r->o->mode), r->o->n);
    for (int l = 0; l < r->layers; l++) fprintf(f, " %d", r->sizes[l]);
    fprintf(f, "): mean best %.4f | best after each layer", r->st->mean_best);
    for (int l = 0; l < r->layers; l++) fprintf(f, " %.4f", r->st->mean_best_after[l]);
    fprintf(f, " | mean score %.4f | %ld tokens, %.1f tok/s in generation\n", r->st->mean_score,
            r->st->tokens, r->st->gen_seconds > 0 ? r->st->tokens / r->st->gen_seconds : 0.0);
}

/* ---- the run ----------------------------------------------------------------------------- */
static int load_template(SampleTemplate *t, const char *arg, const char *def, const char *flag,
                         const char *role, int with_fb, TaError *err) {
    int rc = arg ? sample_template_load_as(t, arg, flag, err) : sample_template_parse(t, def, err);
    if (rc != TA_OK) return rc;
    return prs_template_check(t, flag, role, with_fb, err);
}

int prs_run(const GPT2 *model, const Tokenizer *tok, const PrsOptions *o, PrsStats *st,
            TaError *err) {
    PrsStats zs;
    if (!st) st = &zs;
    memset(st, 0, sizeof *st);
    Run r = {.o = o, .m = model, .tok = tok, .st = st};
    const int tree = o->mode == PRS_MODE_TREE, with_fb = o->feedback != PRS_FEEDBACK_NONE;
    int n0 = o->n0 < 0 ? o->n / 2 : o->n0;
    int rc = prs_layer_sizes(o->mode, o->n, n0, o->depth, r.sizes, &r.layers, err);
    if (rc != TA_OK) return rc;
    SampleOptions so = o->sample;
    so.n = 1;
    if ((rc = sample_options_check(&so, err)) != TA_OK) return rc;
    r.fb_max = o->feedback_max_new_tokens > 0 ? o->feedback_max_new_tokens : o->sample.max_new_tokens;
    if (tree && o->feedback == PRS_FEEDBACK_CMD && (!o->critic || strncmp(o->critic, "cmd:", 4)))
        return ta_err(err, TA_EINPUT, "--feedback must be model, none or cmd:PROGRAM, got \"%s\"",
                      o->critic ? o->critic : "");
    TaBuf out = {0}, sum = {0};
    if ((rc = load_template(&r.query, o->query_template, PRS_QUERY_TEMPLATE, "--query-template",
                            "query", 1, err)) != TA_OK)
        goto end;
    if (tree && o->feedback == PRS_FEEDBACK_MODEL &&
        (rc = load_template(&r.feedback, o->feedback_template, PRS_FEEDBACK_TEMPLATE,
                            "--feedback-template", "feedback", 1, err)) != TA_OK)
        goto end;
    if (tree && (rc = load_template(&r.revise, o->revise_template,
                                    with_fb ? PRS_REVISE_TEMPLATE : PRS_REVISE_NOFB_TEMPLATE,
                                    "--revise-template", "revise", with_fb, err)) != TA_OK)
        goto end;
    if ((rc = dataset_load(&r.ds, o->prompts, DS_PROMPTS, NULL, NULL, err)) != TA_OK) goto end;
    r.P = (int)dataset_num_rows(r.ds);
    if ((rc = setup_items(&r, err)) != TA_OK) goto end;
    /* the scorers last (a cmd: program is only started once the input is known good) */
    ScorerOptions sco = o->scorer_opt;
    if ((rc = scorer_open(&r.scorer, o->scorer, &sco, err)) != TA_OK) goto end;
    if (scorer_spec(r.scorer)->kind == SCORER_CMD && o->scorer_opt.batch_size <= 0) {
        /* one program call per layer */
        scorer_close(r.scorer);
        sco.batch_size = 1 << 30;
        if ((rc = scorer_open(&r.scorer, o->scorer, &sco, err)) != TA_OK) goto end;
    }
    if (tree && o->feedback == PRS_FEEDBACK_CMD) {
        ScorerOptions co = o->scorer_opt;
        co.batch_size = 1 << 30;
        if ((rc = scorer_open(&r.critic, o->critic, &co, err)) != TA_OK) goto end;
    }
    if (o->log)
        fprintf(o->log, "prs: %s: %d prompts, %s N=%d in %d layer%s, feedback %s, scorer %s\n",
                o->prompts, r.P, mode_name(o->mode), o->n, r.layers, r.layers == 1 ? "" : "s",
                !tree ? "n/a" : o->feedback == PRS_FEEDBACK_MODEL ? "by the model"
                : o->feedback == PRS_FEEDBACK_CMD ? o->critic : "none", o->scorer);

    int first = 0;
    for (int l = 0; l < r.layers; l++) {
        const int n = r.sizes[l];
        if (l > 0) { /* feedback on the best so far, then the revise prompts */
            for (int i = 0; i < r.P; i++)
                item_set(&r.items[i], F_ANSWER, r.items[i].nodes[r.items[i].best].text);
            if ((rc = get_feedback(&r, l, err)) != TA_OK) goto end;
            for (int i = 0; i < r.P && rc == TA_OK; i++) {
                Item *it = &r.items[i];
                char *text = NULL;
                item_set(it, F_FEEDBACK, it->feedback[l] ? it->feedback[l] : "");
                if ((rc = fill(&r.revise, it, "revise", &text, err)) == TA_OK)
                    rc = set_prompt(&r, it, text, "the revise prompt", err);
                if (o->keep_prompts) it->input[l] = text;
                else free(text);
            }
            if (rc != TA_OK) goto end;
        }
        SampleResult *res = ta_calloc(sizeof *res * (size_t)r.P * n, "prs results");
        char what[64];
        snprintf(what, sizeof what, l == 0 ? "layer 0 samples" : "layer %d refinements", l);
        uint64_t seed = l == 0 ? o->sample.seed
                               : sample_seq_seed(o->sample.seed, PRS_SEED_REVISE, (uint64_t)l);
        rc = generate(&r, n, seed, o->sample.max_new_tokens, what, res, err);
        for (int i = 0; i < r.P; i++) {
            Item *it = &r.items[i];
            for (int j = 0; j < n; j++) {
                SampleResult *x = &res[(size_t)i * n + j];
                if (rc == TA_OK) {
                    Node *nd = &it->nodes[first + j];
                    nd->text = x->text;
                    x->text = NULL;
                    nd->num_tokens = x->num_tokens;
                    nd->finish = x->finish;
                    nd->layer = l;
                    nd->parent = l == 0 ? -1 : it->best;
                }
                sample_result_free(x);
            }
            if (rc == TA_OK) it->n_nodes = first + n;
        }
        free(res);
        if (rc != TA_OK) goto end;
        st->responses += (long)r.P * n;
        if ((rc = score_layer(&r, first, n, err)) != TA_OK) goto end;
        update_best(&r, l, first, n);
        first += n;
        double m = 0;
        for (int i = 0; i < r.P; i++) m += r.items[i].nodes[r.items[i].best].res.score;
        st->mean_best_after[l] = r.P ? m / r.P : 0;
    }
    st->prompts = r.P;
    st->layers = r.layers;
    memcpy(st->sizes, r.sizes, sizeof r.sizes);
    st->mean_best = st->mean_best_after[r.layers - 1];
    double tot = 0;
    for (int i = 0; i < r.P; i++)
        for (int j = 0; j < r.items[i].n_nodes; j++) tot += r.items[i].nodes[j].res.score;
    st->mean_score = st->responses ? tot / st->responses : 0;

    for (int i = 0; i < r.P; i++)
        put_line(&out, &r.items[i], !data_fields_find(&r.items[i].row.extra, "preference"),
                 o->keep_prompts);
    put_summary(&sum, &r);
    if ((rc = ta_write_file_atomic(o->out, out.p ? out.p : "", out.n, err)) != TA_OK) goto end;
    if (o->summary && (rc = ta_write_file_atomic(o->summary, sum.p, sum.n, err)) != TA_OK) goto end;
    print_summary(&r);
    if (o->log) fprintf(o->log, "prs: wrote %s%s%s\n", o->out, o->summary ? " and " : "",
                        o->summary ? o->summary : "");
end:
    free(out.p);
    free(sum.p);
    run_free(&r);
    return rc;
}
