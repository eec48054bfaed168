/* scorer_cmd.c — the cmd:PROGRAM [ARGS] scorer kind (protocol in include/tinyalign/score.h):
 * the requests of a batch go to the program's stdin as JSONL, its stdout is read back as
 * one JSON object per request. The program runs under /bin/sh -c in its own process group
 * (posix_spawn), stdin, stdout and stderr on pipes served by one poll() loop, so a large
 * batch never deadlocks on a full pipe; past the timeout the whole group gets SIGKILL.
 * Output members are kept as written (jsonl_scan_object spans), like the data module keeps
 * the user's fields.
 * Not here: retries, running several programs at once, a persistent program (one process
 * per batch keeps every call independent).
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "score_impl.h"
#include "tinyalign/jsonl.h"

extern char **environ;

enum { STDERR_KEEP = 64 * 1024, STDERR_SHOW = 300 };

/* ---- one program run ------------------------------------------------------------------- */
typedef struct {
    TaBuf out;      /* everything on stdout */
    TaBuf err;      /* the last STDERR_KEEP bytes (at least) of stderr */
    int status;     /* waitpid status */
    int timed_out;
    int too_much;   /* stdout passed the cap: the program was killed */
} RunResult;

static void run_result_free(RunResult *r) {
    free(r->out.p);
    free(r->err.p);
    memset(r, 0, sizeof *r);
}

/* Keeps the tail of a buffer that only needs its end. */
static void keep_tail(TaBuf *b) {
    if (b->n <= 2 * STDERR_KEEP) return;
    memmove(b->p, b->p + b->n - STDERR_KEEP, STDERR_KEEP);
    b->n = STDERR_KEEP;
    b->p[b->n] = '\0';
}

/* Reads what is available on fd into b; returns 0 at EOF, 1 otherwise. */
static int drain(int fd, TaBuf *b) {
    char buf[65536];
    for (;;) {
        ssize_t k = read(fd, buf, sizeof buf);
        if (k > 0) {
            ta_buf_add(b, buf, (size_t)k);
            continue;
        }
        if (k == 0) return 0;
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : 0;
    }
}

static void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* Runs `sh -c command` with input on stdin. TA_OK when it ran (whatever its status:
 * r->status, r->timed_out); TA_ERUNTIME when it could not be started. */
static int run_program(const char *command, const char *input, size_t in_len, double timeout_s,
                       size_t max_out, RunResult *r, TaError *err) {
    memset(r, 0, sizeof *r);
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC)) {
        int e = errno;
        close_fd(&pin[0]), close_fd(&pin[1]), close_fd(&pout[0]), close_fd(&pout[1]);
        return ta_err(err, TA_ERUNTIME, "cannot create pipes: %s", strerror(e));
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
    posix_spawnattr_init(&at);
    posix_spawnattr_setpgroup(&at, 0); /* its own group: a timeout kills its children too */
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    sigset_t dfl; /* signals the trainer catches go back to their defaults in the child */
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGINT), sigaddset(&dfl, SIGTERM), sigaddset(&dfl, SIGPIPE);
    posix_spawnattr_setsigdefault(&at, &dfl);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {"sh", "-c", (char *)command, NULL};
    pid_t pid;
    int sp = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close_fd(&pin[0]), close_fd(&pout[1]), close_fd(&perr[1]);
    if (sp != 0) {
        close_fd(&pin[1]), close_fd(&pout[0]), close_fd(&perr[0]);
        return ta_err(err, TA_ERUNTIME, "cannot start /bin/sh: %s", strerror(sp));
    }
    /* a program that stops reading must not kill us with SIGPIPE: write() gets EPIPE */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old);
    fcntl(pin[1], F_SETFL, O_NONBLOCK);
    fcntl(pout[0], F_SETFL, O_NONBLOCK);
    fcntl(perr[0], F_SETFL, O_NONBLOCK);
    size_t sent = 0;
    if (in_len == 0) close_fd(&pin[1]);
    const double deadline = timeout_s > 0 ? ta_now() + timeout_s : 0;
    while (pout[0] >= 0 || perr[0] >= 0) {
        struct pollfd fds[3];
        int nf = 0, iw = -1, io = -1, ie = -1;
        if (pin[1] >= 0) iw = nf, fds[nf++] = (struct pollfd){.fd = pin[1], .events = POLLOUT};
        if (pout[0] >= 0) io = nf, fds[nf++] = (struct pollfd){.fd = pout[0], .events = POLLIN};
        if (perr[0] >= 0) ie = nf, fds[nf++] = (struct pollfd){.fd = perr[0], .events = POLLIN};
        int wait_ms = -1;
        if (deadline > 0) {
            double left = deadline - ta_now();
            if (left <= 0) {
                r->timed_out = 1;
                break;
            }
            wait_ms = left > 3600 ? 3600000 : (int)(left * 1000) + 1;
        }
        int k = poll(fds, (nfds_t)nf, wait_ms);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) break;
        if (iw >= 0 && fds[iw].revents) {
            ssize_t w = write(pin[1], input + sent, in_len - sent);
            if (w > 0) sent += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || sent == in_len)
                close_fd(&pin[1]); /* done, or the program closed its stdin (EPIPE) */
        }
        if (io >= 0 && fds[io].revents && !drain(pout[0], &r->out)) close_fd(&pout[0]);
        if (r->out.n > max_out) { /* a runaway program must not eat the machine's memory */
            r->too_much = 1;
            kill(-pid, SIGKILL);
            break;
        }
        if (ie >= 0 && fds[ie].revents) {
            if (!drain(perr[0], &r->err)) close_fd(&perr[0]);
            keep_tail(&r->err);
        }
    }
    close_fd(&pin[1]), close_fd(&pout[0]), close_fd(&perr[0]);
    /* stdout and stderr are closed: wait for the exit, still within the deadline */
    for (;;) {
        pid_t w = waitpid(pid, &r->status, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR)) break;
        if (w < 0) continue;
        if (!r->timed_out && deadline > 0 && ta_now() >= deadline) r->timed_out = 1;
        if (r->timed_out || r->too_much) {
            kill(-pid, SIGKILL);
            while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR) {}
            break;
        }
        usleep(1000);
    }
    if (r->timed_out) kill(-pid, SIGKILL); /* anything the program left behind */
    sigaction(SIGPIPE, &old, NULL);
    return TA_OK;
}

/* ---- messages ----------------------------------------------------------------------------- */
/* The end of the program's stderr on one line: " (stderr: ...)", or "". */
static void stderr_tail(const TaBuf *e, char *out, size_t cap) {
    out[0] = '\0';
    if (!e->n) return;
    size_t n = e->n;
    while (n && (e->p[n - 1] == '\n' || e->p[n - 1] == '\r' || e->p[n - 1] == ' ')) n--;
    if (!n) return;
    size_t start = n > STDERR_SHOW ? n - STDERR_SHOW : 0;
    while (start > 0 && start < n && ((unsigned char)e->p[start] & 0xC0) == 0x80) start++;
    TaBuf b = {0};
    ta_buf_puts(&b, start ? "; its stderr ends: ..." : "; its stderr: ");
    for (size_t i = start; i < n; i++) {
        unsigned char c = (unsigned char)e->p[i];
        if (c == '\n') ta_buf_puts(&b, " | ");
        else if (c < 0x20 || c == 0x7F) ta_buf_add(&b, " ", 1);
        else ta_buf_add(&b, (const char *)&c, 1);
    }
    snprintf(out, cap, "%s", b.p);
    free(b.p);
}

/* "requests 5-8 (the first: FILE:LINE responses[0])" */
static void batch_desc(const ScoreRequest *req, size_t first, size_t n, size_t offset, char *out,
                       size_t cap) {
    char w[64];
    const char *where = scorer_where(req, first, w, sizeof w);
    if (n == 1) snprintf(out, cap, "request %zu, %s", offset + first + 1, where);
    else snprintf(out, cap, "requests %zu-%zu, the first %s", offset + first + 1,
                  offset + first + n, where);
}

/* ---- the kind ------------------------------------------------------------------------------ */
/* A command whose first word is a plain name must be found; "sh: 1: x: not found" from
 * deep inside a run is a worse message than one at open. */
static int check_program(const Scorer *s, TaError *err) {
    const char *c = s->spec.arg;
    size_t n = strcspn(c, " \t");
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./+", c[i]))
            return TA_OK; /* quoting, variables, redirections: leave it to the shell */
    char word[1024];
    if (n >= sizeof word) return TA_OK;
    memcpy(word, c, n);
    word[n] = '\0';
    if (strchr(word, '/')) {
        struct stat st;
        if (stat(word, &st) != 0)
            return ta_err(err, TA_EINPUT, "scorer spec \"%s\": program \"%s\" does not exist",
                          s->spec.text, word);
        if (S_ISDIR(st.st_mode) || access(word, X_OK) != 0)
            return ta_err(err, TA_EINPUT,
                          "scorer spec \"%s\": \"%s\" is not an executable file (for a script, "
                          "name its interpreter: cmd:python3 %s)", s->spec.text, word, c);
        return TA_OK;
    }
    const char *path = getenv("PATH");
    static const char *const BUILTIN[] = {"cd", "exec", "echo", "printf", "read", "true",
                                          "false", "test", "[", "exit", "export", NULL};
    for (int i = 0; BUILTIN[i]; i++)
        if (!strcmp(word, BUILTIN[i])) return TA_OK;
    char dir[4096], full[8192];
    for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
        size_t k = strcspn(p, ":");
        snprintf(dir, sizeof dir, "%.*s", (int)k, p);
        snprintf(full, sizeof full, "%s/%s", k ? dir : ".", word);
        if (access(full, X_OK) == 0) return TA_OK;
        p += k + (p[k] == ':');
    }
    return ta_err(err, TA_EINPUT, "scorer spec \"%s\": program \"%s\" not found on PATH",
                  s->spec.text, word);
}

static int cmd_open(Scorer *s, TaError *err) { return check_program(s, err); }

/* One output line into out: the finite number "score" and the other members as written. */
static int read_answer(const Scorer *s, const char *line, size_t len, long lineno,
                       const char *where, ScoreResult *out, TaError *err) {
    long bad = ta_utf8_invalid_at(line, len);
    if (bad >= 0)
        return ta_err(err, TA_EINPUT, "scorer %s: output line %ld (the answer to %s) is not "
                      "valid UTF-8 (byte %ld)", s->spec.text, lineno, where, bad + 1);
    cJSON *obj;
    TaError e = {0};
    if (jsonl_parse_object("output", lineno, line, len, &obj, &e) != TA_OK) {
        /* "output:LINE[:COL]: what" -> "what" */
        const char *what = e.msg + strlen("output:");
        while (*what >= '0' && *what <= '9') what++;
        if (*what == ':') what++;
        while (*what >= '0' && *what <= '9') what++;
        if (*what == ':') what++;
        while (*what == ' ') what++;
        return ta_err(err, TA_EINPUT, "scorer %s: output line %ld (the answer to %s): %s; "
                      "expected one JSON object {\"score\": number, ...} per request",
                      s->spec.text, lineno, where, what);
    }
    int rc = TA_OK;
    int nm = cJSON_GetArraySize(obj);
    JsonlMember *m = ta_malloc(sizeof(JsonlMember) * (size_t)(nm ? nm : 1), "score fields");
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(obj, "score");
    if (!sc)
        rc = ta_err(err, TA_EINPUT, "scorer %s: output line %ld (the answer to %s) has no "
                    "\"score\"", s->spec.text, lineno, where);
    else if (!cJSON_IsNumber(sc))
        rc = ta_err(err, TA_EINPUT, "scorer %s: output line %ld (the answer to %s): \"score\" "
                    "must be a number, found %s", s->spec.text, lineno, where,
                    jsonl_type_name(sc));
    else if (!isfinite(sc->valuedouble))
        rc = ta_err(err, TA_EINPUT, "scorer %s: output line %ld (the answer to %s): \"score\" "
                    "is not finite", s->spec.text, lineno, where);
    else if (jsonl_scan_object(line, len, 0, m, nm, NULL) != nm)
        rc = ta_err(err, TA_EINPUT, "scorer %s: output line %ld: cannot locate its members",
                    s->spec.text, lineno);
    if (rc == TA_OK) {
        out->score = sc->valuedouble;
        int i = 0;
        for (const cJSON *c = obj->child; c; c = c->next, i++) {
            if (!strcmp(c->string, "score") || score_result_field(out, c->string)) continue;
            char *v = ta_malloc(m[i].value_end - m[i].value + 1, "score field");
            memcpy(v, line + m[i].value, m[i].value_end - m[i].value);
            v[m[i].value_end - m[i].value] = '\0';
            score_result_add(out, c->string, v);
            free(v);
        }
    }
    free(m);
    cJSON_Delete(obj);
    return rc;
}

/* Parses the program's stdout for requests [first, first + n). */
static int read_answers(const Scorer *s, const RunResult *r, const ScoreRequest *req,
                        size_t first, size_t n, ScoreResult *out, TaError *err) {
    const char *p = r->out.p ? r->out.p : "", *end = p + r->out.n;
    size_t got = 0;
    long lineno = 0;
    char tail[STDERR_SHOW + 64], desc[512];
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        lineno++;
        size_t len = (size_t)(le - p);
        size_t k = 0;
        while (k < len && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r')) k++;
        if (k < len) {
            if (got == n) break; /* too many: reported below */
            char w[64];
            const char *where = scorer_where(req, first + got, w, sizeof w);
            if (len && p[len - 1] == '\r') len--;
            int rc = read_answer(s, p, len, lineno, where, &out[got], err);
            if (rc != TA_OK) {
                size_t m = strlen(err->msg);
                stderr_tail(&r->err, tail, sizeof tail);
                snprintf(err->msg + m, sizeof err->msg - m, "%s", tail);
                return rc;
            }
            got++;
        }
        p = nl ? nl + 1 : end;
    }
    if (got != n || p < end) {
        size_t extra = 0;
        for (const char *q = p; q < end;) { /* count the remaining non-blank lines */
            const char *nl = memchr(q, '\n', (size_t)(end - q));
            const char *le = nl ? nl : end;
            for (const char *c = q; c < le; c++)
                if (*c != ' ' && *c != '\t' && *c != '\r') {
                    extra++;
                    break;
                }
            q = nl ? nl + 1 : end;
        }
        batch_desc(req, first, n, 0, desc, sizeof desc);
        stderr_tail(&r->err, tail, sizeof tail);
        return ta_err(err, TA_EINPUT,
                      "scorer %s: the program printed %zu JSON line%s for %zu requests (%s); "
                      "it must print exactly one object per request, in order%s",
                      s->spec.text, got + extra, got + extra == 1 ? "" : "s", n, desc, tail);
    }
    return TA_OK;
}

static int cmd_score(Scorer *s, const ScoreRequest *req, size_t n, ScoreResult *out,
                     TaError *err) {
    static const char *const OURS[] = {"prompt", "response", NULL};
    const size_t B = (size_t)s->opt.batch_size;
    int rc = TA_OK;
    for (size_t first = 0; first < n && rc == TA_OK; first += B) {
        size_t m = n - first < B ? n - first : B;
        TaBuf in = {0};
        for (size_t i = first; i < first + m; i++) {
            ta_buf_puts(&in, "{\"prompt\":");
            jsonl_put_string(&in, req[i].prompt);
            ta_buf_puts(&in, ",\"response\":");
            jsonl_put_string(&in, req[i].response);
            if (req[i].fields) jsonl_put_fields(&in, req[i].fields, OURS);
            ta_buf_puts(&in, "}\n");
        }
        RunResult r;
        /* stdout is held in memory: at most 64 MiB + 1 MiB per request */
        rc = run_program(s->spec.arg, in.p, in.n, s->opt.timeout_s, ((size_t)64 + m) << 20, &r,
                         err);
        free(in.p);
        s->calls++;
        char desc[512], tail[STDERR_SHOW + 64];
        if (rc == TA_OK && (r.timed_out || r.too_much || !WIFEXITED(r.status) ||
                            WEXITSTATUS(r.status) != 0)) {
            batch_desc(req, first, m, 0, desc, sizeof desc);
            stderr_tail(&r.err, tail, sizeof tail);
            if (r.too_much)
                rc = ta_err(err, TA_EINPUT, "scorer %s: the program printed more than %zu MiB on "
                            "%s and was killed (one JSON line per request expected)%s",
                            s->spec.text, (size_t)64 + m, desc, tail);
            else if (r.timed_out)
                rc = ta_err(err, TA_EINPUT, "scorer %s: the program ran past the timeout of %gs "
                            "on %s and was killed (raise --timeout)%s", s->spec.text,
                            s->opt.timeout_s, desc, tail);
            else if (WIFSIGNALED(r.status))
                rc = ta_err(err, TA_EINPUT, "scorer %s: the program was killed by signal %d on "
                            "%s%s", s->spec.text, WTERMSIG(r.status), desc, tail);
            else
                rc = ta_err(err, TA_EINPUT, "scorer %s: the program exited with status %d on "
                            "%s%s%s", s->spec.text, WEXITSTATUS(r.status), desc,
                            WEXITSTATUS(r.status) == 127 ? " (127: command not found?)" : "",
                            tail);
        }
        if (rc == TA_OK) rc = read_answers(s, &r, req, first, m, out + first, err);
        run_result_free(&r);
        if (rc == TA_OK) scorer_report_progress(s, first + m);
    }
    return rc;
}

const ScorerOps score_cmd_ops = {.name = "cmd", .dedupe = 0, .default_batch = 256,
                                 .open = cmd_open, .score = cmd_score, .close = NULL};
