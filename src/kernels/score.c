/* score.c — the scalar head of a reward model (Hugging Face GPT2ForSequenceClassification
 * with num_labels 1, no bias): one number per row, read at the row's last real token.
 *
 * Forward, for row b with last real position l_b (the EOS of [BOS] prompt response [EOS]):
 *   r_b = sum_c h[b, l_b, c] w[c]          h = the final LayerNorm's output (B,T,C)
 * PyTorch: r = (h[torch.arange(B), last] * w).sum(-1)   (= score(h)[arange(B), last, 0])
 *
 * Backward, from g_b = dL/dr_b:
 *   dL/dw[c]           = sum_b g_b h[b, l_b, c]
 *   dL/dh[b, l_b, c]   = g_b w[c]         and 0 at every other position t != l_b
 * (r_b is linear in w and in the one hidden vector it reads.) Accumulates (+=) like every
 * backward kernel. Rows are summed in order into dw, so the bits do not depend on the
 * thread count (the loop is serial: B*C multiply-adds are nothing next to the trunk).
 * Not here: which position is "last" (the data module's row layout) or the loss. */
#include "tinyalign/kernels.h"

#include <stddef.h>

void score_forward(float *out, const float *inp, const int *last, const float *w, int B, int T,
                   int C) {
    for (int b = 0; b < B; b++) {
        const float *h = inp + ((size_t)b * T + (size_t)last[b]) * C;
        float s = 0.0f;
        for (int c = 0; c < C; c++) s += h[c] * w[c];
        out[b] = s;
    }
}

void score_backward(float *dinp, float *dw, const float *dout, const float *inp, const int *last,
                    const float *w, int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        const size_t off = ((size_t)b * T + (size_t)last[b]) * C;
        const float g = dout[b];
        for (int c = 0; c < C; c++) {
            dw[c] += g * inp[off + c];
            dinp[off + c] += g * w[c];
        }
    }
}
