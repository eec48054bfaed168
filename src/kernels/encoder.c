/* encoder.c — token + position embedding, forward and backward.
 * PyTorch: x = wte(idx) + wpe(arange(T)). */
#include "tinyalign/kernels.h"

void encoder_forward(float *out, const int *inp, const float *wte, const float *wpe, int B,
                     int T, int C) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *o = out + ((size_t)b * T + t) * C;
            const float *e = wte + (size_t)inp[b * T + t] * C;
            const float *p = wpe + (size_t)t * C;
            for (int c = 0; c < C; c++) o[c] = e[c] + p[c];
        }
}

/* Backward of out[b,t] = wte[inp[b,t]] + wpe[t]:
 *   dwte[inp[b,t]] += dout[b,t];  dwpe[t] += dout[b,t].
 * Several (b,t) can hit the same wte row, so we parallelise over channel blocks instead:
 * each thread owns columns [c0, c1) of every row and walks (b,t) in order, which keeps
 * the summation order fixed whatever the thread count. */
void encoder_backward(float *dwte, float *dwpe, const float *dout, const int *inp, int B,
                      int T, int C) {
    const int CB = 32; /* channels per block */
    int nblocks = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblocks; blk++) {
        int c0 = blk * CB, c1 = c0 + CB < C ? c0 + CB : C;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                const float *d = dout + ((size_t)b * T + t) * C;
                float *we = dwte + (size_t)inp[b * T + t] * C;
                float *wp = dwpe + (size_t)t * C;
                for (int c = c0; c < c1; c++) {
                    we[c] += d[c];
                    wp[c] += d[c];
                }
            }
    }
}
