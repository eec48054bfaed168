/* checkpoint.c — atomic checkpoint directories, `latest`/`best` pointers, verification
 * and loading. See include/tinyalign/checkpoint.h for the layout and the guarantees.
 * state.json is read and written with cJSON (a file-format reader, like the config). */
#define _POSIX_C_SOURCE 200809L
#include "tinyalign/checkpoint.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint_impl.h"
#include "tinyalign/model_io.h"

#define PATHMAX 4096

static void fault_delay(void) {
    const char *s = getenv("TINYALIGN_CKPT_DELAY_MS");
    if (!s || !*s) return;
    long ms = atol(s);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* rm -rf of a checkpoint directory (flat: files only). */
static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[PATHMAX];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        ta_pathf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int file_crc(const char *path, uint32_t *crc, uint64_t *bytes) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    static const size_t CH = 1 << 20;
    unsigned char *buf = ta_malloc(CH, "crc buffer");
    uint32_t c = 0;
    uint64_t n = 0;
    size_t got;
    while ((got = fread(buf, 1, CH, f)) > 0) {
        c = ta_crc32(c, buf, got);
        n += got;
    }
    free(buf);
    int bad = ferror(f);
    fclose(f);
    if (bad) return -1;
    *crc = c;
    *bytes = n;
    return 0;
}

/* Copies src to dst (atomically); digest receives dst's size and CRC32. */
static int copy_file(const char *src, const char *dst, TaDigest *digest, TaError *err) {
    size_t len;
    char *buf = ta_read_file(src, &len, err);
    if (!buf) return TA_EINPUT;
    int rc = ta_write_file_atomic(dst, buf, len, err);
    *digest = (TaDigest){.bytes = len, .crc = ta_crc32(0, buf, len)};
    free(buf);
    return rc;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The step-* directory names in ckdir (not *.tmp / *.old), sorted ascending (names are
 * zero-padded, so strcmp sorts by step). Returns a malloc'd array of *n malloc'd names. */
static char **list_steps(const char *ckdir, int *n) {
    char **names = NULL;
    int cap = 0;
    *n = 0;
    DIR *d = opendir(ckdir);
    if (!d) return NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "step-", 5)) continue;
        if (len > 4 && (!strcmp(e->d_name + len - 4, ".tmp") || !strcmp(e->d_name + len - 4, ".old")))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            names = ta_realloc(names, sizeof(char *) * (size_t)cap, "checkpoint list");
        }
        names[(*n)++] = ta_strdup(e->d_name, "checkpoint list");
    }
    closedir(d);
    qsort(names, (size_t)*n, sizeof(char *), cmp_names);
    return names;
}

static void remove_stale_tmp(const char *ckdir) {
    DIR *d = opendir(ckdir);
    if (!d) return;
    struct dirent *e;
    char p[PATHMAX];
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "step-", 5) || len < 5) continue;
        if (strcmp(e->d_name + len - 4, ".tmp") && strcmp(e->d_name + len - 4, ".old")) continue;
        ta_pathf(p, sizeof p, "%s/%s", ckdir, e->d_name);
        if (!strcmp(e->d_name + len - 4, ".old")) {
            /* a crash between "final -> .old" and ".tmp -> final": put the old one back */
            char final[PATHMAX];
            ta_pathf(final, sizeof final, "%.*s", (int)(strlen(p) - 4), p);
            struct stat sb;
            if (stat(final, &sb) != 0 && rename(p, final) == 0) continue;
        }
        remove_dir(p);
    }
    closedir(d);
}

/* Reads a pointer file (`latest`, `best`): a line starting with the name of a directory
 * beside it; anything after the name (a space, then text) is a record for the caller
 * (rest, may be NULL, receives it without the line end, cut to rest_cap). Returns 1 with
 * the name in out; 0 when the file is missing; -1 when it does not start with a plain name
 * (printable ASCII, no '/', not "." or "..", < cap bytes), with a short escaped excerpt
 * of what it holds in why (for the message; why_cap >= 64). */
static int read_pointer_file(const char *path, char *out, size_t cap, char *rest,
                             size_t rest_cap, char *why, size_t why_cap) {
    size_t len;
    char *buf = ta_read_file(path, &len, NULL);
    if (!buf) return 0;
    size_t n = 0;
    while (n < len && buf[n] > ' ' && buf[n] < 127 && buf[n] != '/') n++;
    int ok = n > 0 && n < cap && (n == len || buf[n] == '\n' || buf[n] == ' ' || buf[n] == '\t');
    if (!ok) {
        char ex[160];
        snprintf(why, why_cap, "\"%s\" (%zu bytes)", ta_excerpt(ex, sizeof ex, buf, len), len);
        free(buf);
        return -1;
    }
    if (rest && rest_cap) {
        size_t r = n, e;
        while (r < len && (buf[r] == ' ' || buf[r] == '\t')) r++;
        for (e = r; e < len && buf[e] != '\n' && buf[e] != '\r'; e++) {}
        size_t k = e - r < rest_cap - 1 ? e - r : rest_cap - 1;
        memcpy(rest, buf + r, k);
        rest[k] = '\0';
    }
    buf[n] = '\0';
    ok = strcmp(buf, ".") && strcmp(buf, "..");
    if (ok) memcpy(out, buf, n + 1);
    else snprintf(why, why_cap, "\"%s\"", buf);
    free(buf);
    return ok ? 1 : -1;
}

/* Writes the pointer file ckdir/name = "base\n" atomically. */
static int write_pointer(const char *ckdir, const char *name, const char *base, TaError *err) {
    char p[PATHMAX], line[PATHMAX];
    int n = (int)strlen(ta_pathf(line, sizeof line, "%s\n", base));
    return ta_write_file_atomic(ta_pathf(p, sizeof p, "%s/%s", ckdir, name), line, (size_t)n, err);
}

/* keep_last_n: keeps the newest `keep` step-* directories, the one `best` names (besides
 * them when it is older) and `current`; removes the others. */
static void prune(const char *ckdir, int keep, const char *current) {
    int n;
    char **names = list_steps(ckdir, &n);
    char best[256] = "", p[PATHMAX], why[256];
    if (read_pointer_file(ta_pathf(p, sizeof p, "%s/best", ckdir), best, sizeof best, NULL, 0,
                          why, sizeof why) != 1)
        best[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i < n - keep && strcmp(names[i], best) && strcmp(names[i], current))
            remove_dir(ta_pathf(p, sizeof p, "%s/%s", ckdir, names[i]));
        free(names[i]);
    }
    free(names);
}

int checkpoint_save(const char *out_dir, const CheckpointContents *c, int keep_last_n,
                    int is_best, char *path_out, size_t cap, TaError *err) {
    char ckdir[PATHMAX], name[64], final[PATHMAX], tmp[PATHMAX], p[PATHMAX];
    ta_pathf(ckdir, sizeof ckdir, "%s/checkpoints", out_dir);
    if (ta_mkdirs(ckdir, err) != TA_OK) return TA_ERUNTIME;
    remove_stale_tmp(ckdir);
    snprintf(name, sizeof name, "step-%08ld", c->state->step);
    ta_pathf(final, sizeof final, "%s/%s", ckdir, name);
    ta_pathf(tmp, sizeof tmp, "%s.tmp", final);
    remove_dir(tmp);
    int fault = ta_fault_errno(tmp); /* tests: a simulated failure (common.h) */
    if (fault || mkdir(tmp, 0755) != 0)
        return ta_err(err, TA_ERUNTIME, "%s: cannot create: %s", tmp,
                      strerror(fault ? fault : errno));

    /* every file is fsynced by its writer, which also returns its size and CRC32;
     * FILE_PATH(name) sets p = tmp/name and records name as the nw-th file */
    const char *written[8];
    TaDigest dg[8];
    int nw = 0;
    int rc = TA_OK;
#define FILE_PATH(fname) (written[nw] = (fname), ta_pathf(p, sizeof p, "%s/%s", tmp, (fname)))
    if ((rc = model_save_safetensors(c->model, FILE_PATH("model.safetensors"), &dg[nw], err)))
        goto fail;
    nw++;
    fault_delay();
    if (c->optim) {
        if ((rc = optim_save_safetensors(c->optim, c->model, FILE_PATH("optim.safetensors"),
                                         &dg[nw], err)))
            goto fail;
        nw++;
        fault_delay();
    }
    if ((rc = model_config_write(&c->model->config, FILE_PATH("config.json"), &dg[nw], err)))
        goto fail;
    nw++;
    if (c->tokenizer_path && *c->tokenizer_path) {
        if ((rc = copy_file(c->tokenizer_path, FILE_PATH("tokenizer.model"), &dg[nw], err)))
            goto fail;
        nw++;
    }
    if (c->ref) {
        if ((rc = model_save_safetensors(c->ref, FILE_PATH("ref.safetensors"), &dg[nw], err)))
            goto fail;
        nw++;
        fault_delay();
    }
#undef FILE_PATH
    {
        cJSON *st = cJSON_CreateObject();
        cJSON_AddStringToObject(st, "format", "tinyalign-checkpoint");
        cJSON_AddNumberToObject(st, "format_version", CHECKPOINT_FORMAT_VERSION);
        cJSON_AddStringToObject(st, "engine_version", TA_VERSION);
        cJSON_AddItemToObject(st, "train_state", state_to_json(c->state));
        cJSON *cfg = c->config_json ? cJSON_Parse(c->config_json) : NULL;
        cJSON_AddItemToObject(st, "config", cfg ? cfg : cJSON_CreateNull());
        cJSON *files = cJSON_AddObjectToObject(st, "files");
        for (int i = 0; i < nw; i++) {
            cJSON *f = cJSON_AddObjectToObject(files, written[i]);
            char hex[16];
            cJSON_AddStringToObject(f, "crc32", ta_pathf(hex, sizeof hex, "%08x", dg[i].crc));
            cJSON_AddNumberToObject(f, "bytes", (double)dg[i].bytes);
        }
        char *text = cJSON_Print(st);
        cJSON_Delete(st);
        TA_ASSERT(text != NULL);
        size_t tl = strlen(text);
        text = ta_realloc(text, tl + 2, "state.json");
        text[tl++] = '\n';
        text[tl] = '\0';
        rc = ta_write_file_atomic(ta_pathf(p, sizeof p, "%s/state.json", tmp), text, tl, err);
        if (rc == TA_OK) {
            /* state.sum: covers state.json, value by value, from the text just written
             * (so it is exactly what a reader parses) */
            cJSON *back = cJSON_Parse(text);
            TA_ASSERT(back != NULL);
            size_t sl;
            char *sum = state_sum_text(text, tl, back, &sl);
            cJSON_Delete(back);
            rc = ta_write_file_atomic(ta_pathf(p, sizeof p, "%s/state.sum", tmp), sum, sl, err);
            free(sum);
        }
        free(text);
        if (rc != TA_OK) goto fail;
    }
    fault_delay();
    ta_fsync_dir(tmp);
    /* publish: tmp -> final (an existing final is moved aside first) */
    {
        struct stat sb;
        char old[PATHMAX];
        ta_pathf(old, sizeof old, "%s.old", final);
        if (stat(final, &sb) == 0) {
            remove_dir(old);
            if (rename(final, old) != 0) {
                rc = ta_err(err, TA_ERUNTIME, "%s: cannot move aside: %s", final, strerror(errno));
                goto fail;
            }
        }
        if (rename(tmp, final) != 0) {
            rc = ta_err(err, TA_ERUNTIME, "%s: rename failed: %s", final, strerror(errno));
            goto fail;
        }
        ta_fsync_dir(ckdir);
        remove_dir(old);
    }
    if ((rc = write_pointer(ckdir, "latest", name, err)) != TA_OK) return rc;
    /* `best` before pruning, so the checkpoint it replaces is pruned in this same call */
    if (is_best && (rc = write_pointer(ckdir, "best", name, err)) != TA_OK) return rc;
    if (path_out) snprintf(path_out, cap, "%s", final);
    if (keep_last_n > 0) prune(ckdir, keep_last_n, name);
    return TA_OK;
fail:
    remove_dir(tmp);
    return rc ? rc : TA_ERUNTIME;
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int exists_in(const char *dir, const char *name) {
    char p[PATHMAX];
    return access(ta_pathf(p, sizeof p, "%s/%s", dir, name), F_OK) == 0;
}

/* The step directory a pointer file (latest, best) names, beside it. Returns 0 when the
 * file does not exist; 1 with *rc = TA_OK and the directory in out, or *rc = TA_EINPUT when
 * the file holds no plain name or the directory it names is gone. */
static int follow_pointer(const char *file, char *out, size_t cap, int *rc, TaError *err) {
    char name[256], dir[PATHMAX], why[256];
    int got = read_pointer_file(file, name, sizeof name, NULL, 0, why, sizeof why);
    if (got == 0) return 0;
    if (got < 0) {
        *rc = ta_err(err, TA_EINPUT,
                     "%s: not a checkpoint pointer: expected one line naming a checkpoint "
                     "directory beside it (e.g. \"step-00000100\"), found %s", file, why);
        return 1;
    }
    ta_pathf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else ta_pathf(dir, sizeof dir, ".");
    ta_pathf(out, cap, "%s/%s", dir, name);
    if (!is_dir(out)) remove_stale_tmp(dir); /* recovers step-N.old after a crash */
    *rc = is_dir(out) ? TA_OK
                      : ta_err(err, TA_EINPUT, "%s names %s, which does not exist", file, name);
    return 1;
}

int checkpoint_resolve(const char *path, char *out, size_t cap, TaError *err) {
    char p[PATHMAX];
    struct stat sb;
    int rc = TA_OK;
    const char *why = "not a model directory and no checkpoint here";
    if (stat(path, &sb) != 0) {
        why = "no such directory or file";
    } else if (!S_ISDIR(sb.st_mode)) {
        if (follow_pointer(path, out, cap, &rc, err)) return rc;
        why = "not a model directory, and not a checkpoint pointer file naming one";
    } else if (exists_in(path, "model.safetensors") || exists_in(path, "state.json")) {
        ta_pathf(out, cap, "%s", path); /* a model or checkpoint directory */
        return TA_OK;
    } else if (follow_pointer(ta_pathf(p, sizeof p, "%s/checkpoints/latest", path), out, cap,
                              &rc, err) ||
               follow_pointer(ta_pathf(p, sizeof p, "%s/latest", path), out, cap, &rc, err)) {
        return rc; /* a run directory, or its checkpoints/ */
    } else if (exists_in(path, "config.json") && !exists_in(path, "checkpoints")) {
        /* a model directory without its weights: model_load_dir says what is missing */
        ta_pathf(out, cap, "%s", path);
        return TA_OK;
    }
    return ta_err(err, TA_EINPUT, "%s: %s; a model is given as %s", path, why,
                  CHECKPOINT_MODEL_FORMS);
}

/* Reads dir/state.json: verifies it against state.sum (format 2; a format-1 checkpoint of
 * an earlier build has none: *verified = 0), parses it and checks its format and engine
 * version. *out: the tree (free with cJSON_Delete). */
static int read_state_json(const char *dir, cJSON **out, int *verified, TaError *err) {
    char p[PATHMAX];
    ta_pathf(p, sizeof p, "%s/state.json", dir);
    *out = NULL;
    if (verified) *verified = 0;
    if (access(p, F_OK) != 0 && exists_in(dir, "model.safetensors"))
        return ta_err(err, TA_EINPUT,
                      "%s: a model directory without training state (no state.json): resuming "
                      "needs a run directory, its checkpoints/latest or a checkpoint directory",
                      dir);
    size_t len;
    char *text = ta_read_file(p, &len, err);
    if (!text) return TA_EINPUT;
    cJSON *st = cJSON_ParseWithLength(text, len);
    int rc = TA_OK;
    const cJSON *ver = st ? cJSON_GetObjectItemCaseSensitive(st, "format_version") : NULL;
    /* a state that is damaged or edited is reported by its checksum first, naming the
     * value that changed: decide with the sum whenever there is one */
    int has_sum = exists_in(dir, "state.sum");
    if (has_sum || (st && !(cJSON_IsNumber(ver) && ver->valuedouble == 1)))
        rc = state_sum_verify(dir, text, len, st, err); /* format 2 needs its state.sum */
    free(text);
    if (rc != TA_OK) {
        cJSON_Delete(st);
        return rc;
    }
    if (!st) return ta_err(err, TA_EINPUT, "%s: not valid JSON (corrupted checkpoint?)", p);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(st, "format");
    const cJSON *eng = cJSON_GetObjectItemCaseSensitive(st, "engine_version");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "tinyalign-checkpoint") ||
        !cJSON_IsNumber(ver))
        rc = ta_err(err, TA_EINPUT, "%s: not a tinyalign checkpoint state file", p);
    else if (ver->valuedouble != 1 && ver->valuedouble != CHECKPOINT_FORMAT_VERSION)
        rc = ta_err(err, TA_EINPUT, "%s: checkpoint format version %g, this engine reads 1 and %d",
                    p, ver->valuedouble, CHECKPOINT_FORMAT_VERSION);
    else if (!cJSON_IsString(eng) || strcmp(eng->valuestring, TA_VERSION))
        rc = ta_err(err, TA_EINPUT,
                    "%s: written by tinyalign %s, this is %s (resume with the same engine "
                    "version; the weights themselves load with `convert`)",
                    p, cJSON_IsString(eng) ? eng->valuestring : "?", TA_VERSION);
    if (rc != TA_OK) {
        cJSON_Delete(st);
        return rc;
    }
    if (verified) *verified = has_sum;
    *out = st;
    return TA_OK;
}

/* The run config saved in a state tree (malloc'd JSON text), or NULL when it has none. */
static char *config_of(const cJSON *st) {
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(st, "config");
    return cJSON_IsObject(cfg) ? cJSON_Print(cfg) : NULL;
}

int checkpoint_read_config(const char *dir, char **config_json, TaError *err) {
    cJSON *st;
    int rc = read_state_json(dir, &st, NULL, err);
    if (rc != TA_OK) return rc;
    *config_json = config_of(st);
    cJSON_Delete(st);
    if (!*config_json) return ta_err(err, TA_EINPUT, "%s/state.json holds no run config", dir);
    return TA_OK;
}

int checkpoint_load_state(const char *dir, TrainState *state, char **config_json,
                          int *verified, TaError *err) {
    cJSON *st;
    int rc = read_state_json(dir, &st, verified, err);
    if (rc != TA_OK) return rc;
    char p[PATHMAX];
    ta_pathf(p, sizeof p, "%s/state.json", dir);
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(st, "files");
    const cJSON *f;
    if (files && !cJSON_IsObject(files)) {
        rc = ta_err(err, TA_EINPUT, "%s: \"files\" is not an object", p);
        goto end;
    }
    cJSON_ArrayForEach(f, files) {
        /* a plain file name beside state.json: never a path out of the directory, nor
         * a device (a CRC over /dev/zero would never end) */
        const char *name = f->string;
        struct stat sb;
        char fp[PATHMAX], ex[160];
        if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..") ||
            strlen(name) > 255) {
            rc = ta_err(err, TA_EINPUT, "%s: lists \"%s\", which is not a file name beside it "
                        "(edited or damaged checkpoint)", p, ta_excerpt(ex, sizeof ex, name, strlen(name)));
            goto end;
        }
        ta_pathf(fp, sizeof fp, "%s/%s", dir, name);
        uint32_t crc;
        uint64_t bytes;
        const cJSON *want_crc = cJSON_GetObjectItemCaseSensitive(f, "crc32");
        const cJSON *want_bytes = cJSON_GetObjectItemCaseSensitive(f, "bytes");
        if (stat(fp, &sb) != 0 || !S_ISREG(sb.st_mode) || file_crc(fp, &crc, &bytes) != 0) {
            rc = ta_err(err, TA_EINPUT, "%s: missing or unreadable (listed in %s)", fp, p);
            goto end;
        }
        if (cJSON_IsNumber(want_bytes) && !(want_bytes->valuedouble >= 0 &&
                                            want_bytes->valuedouble < 1.8e19 &&
                                            (uint64_t)want_bytes->valuedouble == bytes)) {
            rc = ta_err(err, TA_EINPUT, "%s: %llu bytes, state.json says %.0f (truncated?)", fp,
                        (unsigned long long)bytes, want_bytes->valuedouble);
            goto end;
        }
        char hex[16];
        ta_pathf(hex, sizeof hex, "%08x", crc);
        if (!cJSON_IsString(want_crc) || strcmp(hex, want_crc->valuestring)) {
            rc = ta_err(err, TA_EINPUT,
                        "%s: checksum mismatch (CRC32 %s, state.json says %s): the file is "
                        "corrupted", fp, hex, cJSON_IsString(want_crc) ? want_crc->valuestring : "?");
            goto end;
        }
    }
    if (state &&
        (rc = state_from_json(cJSON_GetObjectItemCaseSensitive(st, "train_state"), p, state, err)))
        goto end;
    /* a step directory's name is its step: step-00000040 holds step 40 */
    const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    long named;
    char extra;
    if (state && sscanf(base, "step-%ld%c", &named, &extra) == 1 && named != state->step) {
        rc = ta_err(err, TA_EINPUT, "%s: train_state.step is %ld, but the directory is %s (edited "
                    "or damaged checkpoint)", p, state->step, base);
        goto end;
    }
    if (config_json) *config_json = config_of(st);
end:
    cJSON_Delete(st);
    return rc;
}

int checkpoint_load_weights(const char *dir, GPT2 *model, AdamW *optim, GPT2 *ref,
                            TaError *err) {
    char p[PATHMAX];
    ta_pathf(p, sizeof p, "%s/model.safetensors", dir);
    int rc = model_load_safetensors(model, p, err);
    if (rc != TA_OK) return rc;
    if (optim) {
        ta_pathf(p, sizeof p, "%s/optim.safetensors", dir);
        if ((rc = optim_load_safetensors(optim, model, p, err)) != TA_OK) return rc;
    }
    if (ref) {
        ta_pathf(p, sizeof p, "%s/ref.safetensors", dir);
        if (access(p, F_OK) != 0) ta_pathf(p, sizeof p, "%s/model.safetensors", dir);
        if ((rc = model_load_safetensors(ref, p, err)) != TA_OK) return rc;
    }
    return TA_OK;
}
