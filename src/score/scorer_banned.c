/* scorer_banned.c — the banned:FILE scorer kind (include/tinyalign/score.h): a built-in
 * oracle for the attribute "no banned word" (Meng et al. 2024, arXiv 2410.05559, use a
 * toxicity classifier; a word list is the checkable stand-in). score = 1 when no listed
 * word or phrase occurs in the response as a whole word, else 0; "banned_count" = the
 * number of occurrences (each listed entry counted separately, matches of one entry not
 * overlapping).
 * Whole word: the bytes match ASCII-case-insensitively and the byte before the match (if
 * any) and the byte after it (if any) are not word bytes: ASCII letters, digits, '_', or any
 * byte >= 0x80 (so "café" is one word and "caf" does not match inside it).
 * Not here: token-level matching, regular expressions, stemming.
 */
#include <stdlib.h>
#include <string.h>

#include "score_impl.h"

typedef struct {
    char **words; /* (n) */
    int n;
} BannedState;

static int is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c >= 0x80;
}

static unsigned char lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* Occurrences of w (length m) in s as a whole word. */
static int count_word(const char *s, const char *w, size_t m) {
    const unsigned char *t = (const unsigned char *)s, *p = (const unsigned char *)w;
    size_t n = strlen(s);
    int count = 0;
    for (size_t i = 0; i + m <= n;) {
        size_t k = 0;
        while (k < m && lower(t[i + k]) == lower(p[k])) k++;
        if (k == m && (i == 0 || !is_word_byte(t[i - 1])) &&
            (i + m == n || !is_word_byte(t[i + m]))) {
            count++;
            i += m;
        } else {
            i++;
        }
    }
    return count;
}

static void banned_close(Scorer *s) {
    BannedState *st = s->impl;
    if (!st) return;
    for (int i = 0; i < st->n; i++) free(st->words[i]);
    free(st->words);
    free(st);
}

static int banned_open(Scorer *s, TaError *err) {
    size_t len;
    TaError e = {0};
    char *text = ta_read_file(s->spec.arg, &len, &e);
    if (!text) return ta_err(err, TA_EINPUT, "scorer spec \"%s\": %s", s->spec.text, e.msg);
    BannedState *st = ta_calloc(sizeof *st, "banned scorer");
    s->impl = st;
    int rc = TA_OK;
    long lineno = 0;
    for (char *p = text; *p && rc == TA_OK;) {
        char *nl = strchr(p, '\n');
        char *end = nl ? nl : p + strlen(p);
        lineno++;
        char *a = p, *b = end;
        while (a < b && (*a == ' ' || *a == '\t' || *a == '\r')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r')) b--;
        if (memchr(a, '\0', (size_t)(b - a)))
            rc = ta_err(err, TA_EINPUT, "%s:%ld: NUL byte in the word list", s->spec.arg, lineno);
        else if (b > a && *a != '#') {
            st->words = ta_realloc(st->words, sizeof(char *) * (size_t)(st->n + 1), "banned words");
            st->words[st->n] = ta_malloc((size_t)(b - a) + 1, "banned word");
            memcpy(st->words[st->n], a, (size_t)(b - a));
            st->words[st->n][b - a] = '\0';
            st->n++;
        }
        p = nl ? nl + 1 : end;
    }
    free(text);
    if (rc == TA_OK && st->n == 0)
        rc = ta_err(err, TA_EINPUT, "scorer spec \"%s\": %s lists no word (one word or phrase "
                    "per line; '#' starts a comment line)", s->spec.text, s->spec.arg);
    return rc;
}

static int banned_score(Scorer *s, const ScoreRequest *req, size_t n, ScoreResult *out,
                        TaError *err) {
    (void)err;
    const BannedState *st = s->impl;
    for (size_t i = 0; i < n; i++) {
        int c = 0;
        for (int k = 0; k < st->n; k++) c += count_word(req[i].response, st->words[k], strlen(st->words[k]));
        out[i].score = c ? 0.0 : 1.0;
        score_result_add_number(&out[i], "banned_count", c);
    }
    s->calls++;
    scorer_report_progress(s, n);
    return TA_OK;
}

const ScorerOps score_banned_ops = {.name = "banned", .dedupe = 1, .default_batch = 1,
                                    .open = banned_open, .score = banned_score,
                                    .close = banned_close};
