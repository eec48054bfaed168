/* signals.c — SIGINT/SIGTERM for the trainer. A signal handler can only set a flag, so
 * this file holds the one piece of process-global state in the engine: the pending
 * signal number. The trainer polls it between steps, saves, and exits 130/143. A second
 * SIGINT while the first is pending exits at once (status 130), for the impatient. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "tinyalign/train.h"

static volatile sig_atomic_t pending_signal = 0;

static void on_signal(int sig) {
    if (pending_signal && sig == SIGINT) {
        static const char msg[] = "\ntinyalign: second interrupt, exiting without saving\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
        _exit(130);
    }
    pending_signal = sig;
}

void train_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int train_signal_pending(void) { return (int)pending_signal; }
