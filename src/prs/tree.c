/* tree.c — PRS's bookkeeping (prs.h): how the budget N splits into layers, which response
 * is the best, what a template must contain, and the default templates.
 * Not here: generating and scoring (prs.c).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tinyalign/prs.h"

/* The paper's prompts (Ye & Ng 2024), paraphrased: the feedback prompt asks for an
 * impartial, answer-specific critique against the preference in bullet points; the revise
 * prompt gives question, answer, preference and feedback and asks for only the improved
 * answer. Replace them with --feedback-template / --revise-template (a tiny model needs a
 * format it was fine-tuned on). */
const char PRS_QUERY_TEMPLATE[] = "{prompt}\n\n{preference}";
const char PRS_FEEDBACK_TEMPLATE[] =
    "Please act as an impartial judge. Read the question, the answer and the user's "
    "preference below, check how well the answer fits the preference, and list specific "
    "suggestions, as bullet points, for how this answer could be improved to fit the "
    "preference better.\n\n"
    "[Question]\n{question}\n\n[Answer]\n{answer}\n\n[User preference]\n{preference}\n\n"
    "[Feedback]\n";
const char PRS_REVISE_TEMPLATE[] =
    "[Question]\n{question}\n\n[Reference answer]\n{answer}\n\n[User preference]\n{preference}\n\n"
    "[Feedback]\n{feedback}\n\n"
    "Write an improved answer to the question: follow the user's preference and the feedback. "
    "Reply with the answer only.\n\n[Improved answer]\n";
const char PRS_REVISE_NOFB_TEMPLATE[] =
    "[Question]\n{question}\n\n[Reference answer]\n{answer}\n\n[User preference]\n{preference}\n\n"
    "Write an improved answer to the question that follows the user's preference better. "
    "Reply with the answer only.\n\n[Improved answer]\n";

int prs_layer_sizes(PrsMode mode, int n, int n0, int depth, int *sizes, int *layers,
                    TaError *err) {
    if (n < 2) return ta_err(err, TA_EINPUT, "--n must be >= 2 (a best of N needs N >= 2), got %d", n);
    if (mode != PRS_MODE_TREE) {
        sizes[0] = n;
        *layers = 1;
        return TA_OK;
    }
    if (n0 < 1 || n0 > n - 1)
        return ta_err(err, TA_EINPUT, "--n0 must be in [1, N-1] = [1, %d] for --n %d, got %d",
                      n - 1, n, n0);
    if (depth < 2 || depth > PRS_MAX_DEPTH)
        return ta_err(err, TA_EINPUT, "--depth must be in [2, %d], got %d", PRS_MAX_DEPTH, depth);
    if (n - n0 < depth - 1)
        return ta_err(err, TA_EINPUT, "--depth %d needs at least one refinement per layer: "
                      "N - N0 = %d must be >= %d", depth, n - n0, depth - 1);
    /* N1 = N - N0 over depth - 1 layers, the remainder to the earlier layers */
    int rest = n - n0, k = depth - 1;
    sizes[0] = n0;
    for (int l = 1; l < depth; l++) sizes[l] = rest / k + (l - 1 < rest % k ? 1 : 0);
    *layers = depth;
    return TA_OK;
}

int prs_best(const double *s, int n) {
    int b = -1;
    for (int i = 0; i < n; i++)
        if (!isnan(s[i]) && (b < 0 || s[i] > s[b])) b = i;
    return b;
}

static int has_field(const SampleTemplate *t, const char *name) {
    for (int i = 0; i < t->n_parts; i++)
        if (t->parts[i].is_field && !strcmp(t->parts[i].s, name)) return 1;
    return 0;
}

int prs_template_check(const SampleTemplate *t, const char *flag, const char *role,
                       int with_feedback, TaError *err) {
    const char *need[3];
    int k = 0;
    if (!strcmp(role, "query")) {
        need[k++] = "prompt";
    } else {
        need[k++] = "question";
        need[k++] = "answer";
        if (!strcmp(role, "revise") && with_feedback) need[k++] = "feedback";
    }
    for (int i = 0; i < k; i++) {
        if (has_field(t, need[i])) continue;
        char list[96] = "";
        for (int j = 0; j < k; j++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s{%s}",
                     j == 0 ? "" : j == k - 1 ? " and " : ", ", need[j]);
        return ta_err(err, TA_EINPUT, "%s: the %s template has no {%s} placeholder (it needs %s)",
                      flag, role, need[i], list);
    }
    if (!strcmp(role, "revise") && !with_feedback && has_field(t, "feedback"))
        return ta_err(err, TA_EINPUT, "%s: --feedback none but the revise template has a "
                      "{feedback} placeholder", flag);
    return TA_OK;
}
