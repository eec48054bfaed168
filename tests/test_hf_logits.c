/* test_hf_logits.c — our forward pass on a model directory vs logits from PyTorch.
 *
 *   test_hf_logits MODEL_DIR "1,2,3;4,5,6" LOGITS.f32 [TOL]
 *
 * loads MODEL_DIR with model_load_dir, runs gpt2_forward on the token rows, and compares
 * the (B,T,V) logits with the raw little-endian float32 file written by
 * `tools/hf_gpt2.py logits` (max |diff| <= TOL, default 1e-4); also checks that the
 * padded vocabulary columns V..Vp-1 are exactly 0. Prints PASS/FAIL lines.
 * Driven by tests/cli/convert.sh; with no arguments (tests/run.sh runs every test binary)
 * it only prints where it is used and exits 0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tinyalign/common.h"
#include "tinyalign/model.h"
#include "tinyalign/model_io.h"

static int parse_tokens(const char *s, int *tok, int cap, int *B, int *T) {
    int n = 0, rows = 1, cur = 0, t = -1;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || n >= cap) return 0;
        tok[n++] = (int)v;
        cur++;
        p = end;
        if (*p == ',') p++;
        else if (*p == ';' || *p == '\0') {
            if (t >= 0 && cur != t) return 0;
            t = cur;
            cur = 0;
            if (*p == ';') {
                p++;
                rows++;
            }
        } else return 0;
    }
    *B = rows;
    *T = t;
    return n == rows * t && t > 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        printf("test_hf_logits: driven by tests/cli/convert.sh (usage: MODEL_DIR TOKENS "
               "LOGITS.f32 [TOL]); nothing to do\n");
        return 0;
    }
    const char *dir = argv[1], *lpath = argv[3];
    double tol = argc > 4 ? atof(argv[4]) : 1e-4;
    static int tok[4096];
    int B = 0, T = 0;
    if (!parse_tokens(argv[2], tok, 4096, &B, &T)) {
        printf("FAIL hf logits: cannot parse tokens \"%s\"\n", argv[2]);
        return 1;
    }
    ta_set_threads(1);
    GPT2 m;
    TaError err = {0};
    if (model_load_dir(&m, dir, 0, &err) != TA_OK) {
        printf("FAIL hf logits: %s\n", err.msg);
        return 1;
    }
    const int V = m.config.vocab_size, Vp = m.config.padded_vocab_size;
    size_t len = 0;
    char *ref = ta_read_file(lpath, &len, &err);
    if (!ref || len != (size_t)B * T * V * sizeof(float)) {
        printf("FAIL hf logits: %s: %s (expected %d x %d x %d floats)\n", lpath,
               ref ? "wrong size" : err.msg, B, T, V);
        return 1;
    }
    gpt2_alloc_acts(&m, B, T);
    if (gpt2_forward(&m, tok, NULL, B, T, &err) != TA_OK) {
        printf("FAIL hf logits: forward: %s\n", err.msg);
        return 1;
    }
    double worst = 0.0, pad = 0.0, scale = 0.0;
    size_t wi = 0;
    for (size_t bt = 0; bt < (size_t)B * T; bt++) {
        const float *ours = m.acts.logits + bt * Vp, *theirs = (const float *)ref + bt * V;
        for (int v = 0; v < V; v++) {
            double d = fabs((double)ours[v] - (double)theirs[v]);
            if (!(d <= worst)) { /* NaN counts as worst */
                worst = d;
                wi = bt * V + (size_t)v;
            }
            scale = fmax(scale, fabs(theirs[v]));
        }
        for (int v = V; v < Vp; v++) pad = fmax(pad, fabs(ours[v]));
    }
    int fails = 0;
    if (worst <= tol && scale > 0.1) {
        printf("PASS hf logits match PyTorch (B=%d T=%d V=%d: max |diff| %.3g <= %.0e, "
               "max |logit| %.3g)\n", B, T, V, worst, tol, scale);
    } else {
        fails++;
        printf("FAIL hf logits: max |diff| %.3g > %.0e at (b=%zu, t=%zu, v=%zu) (max |logit| "
               "%.3g)\n", worst, tol, wi / V / T, wi / V % T, wi % V, scale);
    }
    if (pad == 0.0) printf("PASS padded vocab logits are 0 (V=%d, Vp=%d)\n", V, Vp);
    else {
        fails++;
        printf("FAIL padded vocab logits: max |logit| %.3g, expected 0\n", pad);
    }
    free(ref);
    gpt2_free(&m);
    return fails ? 1 : 0;
}
