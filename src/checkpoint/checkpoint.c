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

#include "tinyalign/model_io.h"

#define PATHMAX 4096

static void fault_delay(void) {
    const char *s = getenv("TINYALIGN_CKPT_DELAY_MS");
    if (!s || !*s) return;
    long ms = atol(s);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
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

static int copy_file(const char *src, const char *dst, TaError *err) {
    size_t len;
    char *buf = ta_read_file(src, &len, err);
    if (!buf) return TA_EINPUT;
    int rc = ta_write_file_atomic(dst, buf, len, err);
    free(buf);
    return rc;
}

static cJSON *state_to_json(const TrainState *s) {
    cJSON *o = cJSON_CreateObject();
    char buf[64];
    cJSON_AddNumberToObject(o, "step", (double)s->step);
    cJSON_AddNumberToObject(o, "epoch", (double)s->cursor.epoch);
    cJSON_AddNumberToObject(o, "pos", (double)s->cursor.pos);
    cJSON *r = cJSON_AddArrayToObject(o, "rng");
    for (int i = 0; i < 4; i++) {
        snprintf(buf, sizeof buf, "%016llx", (unsigned long long)s->rng.s[i]);
        cJSON_AddItemToArray(r, cJSON_CreateString(buf));
    }
    /* doubles as %.17g strings: exact round trip, and INFINITY survives */
    snprintf(buf, sizeof buf, "%.17g", s->best_val);
    cJSON_AddStringToObject(o, "best_val", buf);
    cJSON_AddNumberToObject(o, "best_step", (double)s->best_step);
    cJSON_AddNumberToObject(o, "evals_since_best", s->evals_since_best);
    cJSON_AddNumberToObject(o, "bad_steps", s->bad_steps);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)s->tokens_seen);
    cJSON_AddStringToObject(o, "tokens_seen", buf);
    cJSON_AddNumberToObject(o, "ref_syncs", (double)s->ref_syncs);
    cJSON *aux = cJSON_AddObjectToObject(o, "aux_crc32");
    for (int i = 0; i < s->n_aux_crc; i++) {
        snprintf(buf, sizeof buf, "%08x", s->aux_crc[i].crc);
        cJSON_AddStringToObject(aux, s->aux_crc[i].role, buf);
    }
    return o;
}

static int num_field(const cJSON *o, const char *k, double *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(x)) return 0;
    *v = x->valuedouble;
    return 1;
}

static int state_from_json(const cJSON *o, TrainState *s) {
    double v;
    memset(s, 0, sizeof *s);
    if (!num_field(o, "step", &v)) return 0;
    s->step = (long)v;
    if (!num_field(o, "epoch", &v)) return 0;
    s->cursor.epoch = (int64_t)v;
    if (!num_field(o, "pos", &v)) return 0;
    s->cursor.pos = (int64_t)v;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "rng");
    if (!cJSON_IsArray(r) || cJSON_GetArraySize(r) != 4) return 0;
    for (int i = 0; i < 4; i++) {
        const cJSON *x = cJSON_GetArrayItem(r, i);
        if (!cJSON_IsString(x)) return 0;
        s->rng.s[i] = strtoull(x->valuestring, NULL, 16);
    }
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "best_val");
    if (!cJSON_IsString(b)) return 0;
    s->best_val = strtod(b->valuestring, NULL);
    if (!num_field(o, "best_step", &v)) return 0;
    s->best_step = (long)v;
    if (!num_field(o, "evals_since_best", &v)) return 0;
    s->evals_since_best = (int)v;
    if (!num_field(o, "bad_steps", &v)) return 0;
    s->bad_steps = (int)v;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "tokens_seen");
    if (!cJSON_IsString(t)) return 0;
    s->tokens_seen = strtoull(t->valuestring, NULL, 10);
    if (!num_field(o, "ref_syncs", &v)) return 0;
    s->ref_syncs = (long)v;
    const cJSON *aux = cJSON_GetObjectItemCaseSensitive(o, "aux_crc32"), *x;
    if (aux) {
        if (!cJSON_IsObject(aux)) return 0;
        cJSON_ArrayForEach(x, aux) {
            if (!cJSON_IsString(x) || s->n_aux_crc >= CHECKPOINT_MAX_AUX) return 0;
            AuxCrc *c = &s->aux_crc[s->n_aux_crc++];
            snprintf(c->role, sizeof c->role, "%s", x->string);
            c->crc = (uint32_t)strtoul(x->valuestring, NULL, 16);
        }
    } else { /* older engines: one "ref_crc32" ("00000000" = no reference) */
        const cJSON *rc = cJSON_GetObjectItemCaseSensitive(o, "ref_crc32");
        if (!cJSON_IsString(rc)) return 0;
        uint32_t crc = (uint32_t)strtoul(rc->valuestring, NULL, 16);
        if (crc) s->aux_crc[s->n_aux_crc++] = (AuxCrc){"reference", crc};
    }
    return 1;
}

/* step-* entries of ckdir sorted ascending (names are zero-padded, so strcmp sorts). */
static int list_steps(const char *ckdir, char names[][64], int cap) {
    DIR *d = opendir(ckdir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < cap) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "step-", 5) || len >= 64) continue;
        if (len > 4 && !strcmp(e->d_name + len - 4, ".tmp")) continue;
        if (len > 4 && !strcmp(e->d_name + len - 4, ".old")) continue;
        ta_pathf(names[n++], 64, "%s", e->d_name);
    }
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char t[64];
            memcpy(t, names[j], 64);
            memcpy(names[j], names[j - 1], 64);
            memcpy(names[j - 1], t, 64);
        }
    return n;
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

static int read_pointer(const char *ckdir, const char *name, char *out, size_t cap) {
    char p[PATHMAX];
    ta_pathf(p, sizeof p, "%s/%s", ckdir, name);
    size_t len;
    char *buf = ta_read_file(p, &len, NULL);
    if (!buf) return 0;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ')) buf[--len] = '\0';
    ta_pathf(out, cap, "%s", buf);
    free(buf);
    return len > 0;
}

int checkpoint_save(const char *out_dir, const CheckpointContents *c, int keep_last_n,
                    char *path_out, size_t cap, TaError *err) {
    char ckdir[PATHMAX], name[64], final[PATHMAX], tmp[PATHMAX], p[PATHMAX];
    ta_pathf(ckdir, sizeof ckdir, "%s/checkpoints", out_dir);
    if (ta_mkdirs(ckdir, err) != TA_OK) return TA_ERUNTIME;
    remove_stale_tmp(ckdir);
    snprintf(name, sizeof name, "step-%08ld", c->state->step);
    ta_pathf(final, sizeof final, "%s/%s", ckdir, name);
    ta_pathf(tmp, sizeof tmp, "%s.tmp", final);
    remove_dir(tmp);
    if (mkdir(tmp, 0755) != 0)
        return ta_err(err, TA_ERUNTIME, "%s: cannot create: %s", tmp, strerror(errno));

    cJSON *files = cJSON_CreateObject();
    const char *written[8];
    int nw = 0;
    int rc = TA_OK;
    ta_pathf(p, sizeof p, "%s/model.safetensors", tmp);
    if ((rc = model_save_safetensors(c->model, p, err)) != TA_OK) goto fail;
    written[nw++] = "model.safetensors";
    fault_delay();
    if (c->optim) {
        ta_pathf(p, sizeof p, "%s/optim.safetensors", tmp);
        if ((rc = optim_save_safetensors(c->optim, c->model, p, err)) != TA_OK) goto fail;
        written[nw++] = "optim.safetensors";
        fault_delay();
    }
    ta_pathf(p, sizeof p, "%s/config.json", tmp);
    if ((rc = model_config_write(&c->model->config, p, err)) != TA_OK) goto fail;
    written[nw++] = "config.json";
    if (c->tokenizer_path && *c->tokenizer_path) {
        ta_pathf(p, sizeof p, "%s/tokenizer.model", tmp);
        if ((rc = copy_file(c->tokenizer_path, p, err)) != TA_OK) goto fail;
        written[nw++] = "tokenizer.model";
    }
    if (c->ref) {
        ta_pathf(p, sizeof p, "%s/ref.safetensors", tmp);
        if ((rc = model_save_safetensors(c->ref, p, err)) != TA_OK) goto fail;
        written[nw++] = "ref.safetensors";
        fault_delay();
    }
    for (int i = 0; i < nw; i++) {
        uint32_t crc;
        uint64_t bytes;
        ta_pathf(p, sizeof p, "%s/%s", tmp, written[i]);
        if (file_crc(p, &crc, &bytes) != 0 || fsync_path(p) != 0) {
            rc = ta_err(err, TA_ERUNTIME, "%s: cannot re-read for its checksum", p);
            goto fail;
        }
        cJSON *f = cJSON_AddObjectToObject(files, written[i]);
        char hex[16];
        ta_pathf(hex, sizeof hex, "%08x", crc);
        cJSON_AddStringToObject(f, "crc32", hex);
        cJSON_AddNumberToObject(f, "bytes", (double)bytes);
    }
    {
        cJSON *st = cJSON_CreateObject();
        cJSON_AddStringToObject(st, "format", "tinyalign-checkpoint");
        cJSON_AddNumberToObject(st, "format_version", CHECKPOINT_FORMAT_VERSION);
        cJSON_AddStringToObject(st, "engine_version", TA_VERSION);
        cJSON_AddItemToObject(st, "train_state", state_to_json(c->state));
        cJSON *cfg = c->config_json ? cJSON_Parse(c->config_json) : NULL;
        cJSON_AddItemToObject(st, "config", cfg ? cfg : cJSON_CreateNull());
        cJSON_AddItemToObject(st, "files", files);
        files = NULL;
        char *text = cJSON_Print(st);
        cJSON_Delete(st);
        ta_pathf(p, sizeof p, "%s/state.json", tmp);
        size_t tl = strlen(text);
        text = realloc(text, tl + 2);
        text[tl] = '\n';
        text[tl + 1] = '\0';
        rc = ta_write_file_atomic(p, text, tl + 1, err);
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
    {
        char line[80];
        int n = (int)strlen(ta_pathf(line, sizeof line, "%s\n", name));
        ta_pathf(p, sizeof p, "%s/latest", ckdir);
        if ((rc = ta_write_file_atomic(p, line, (size_t)n, err)) != TA_OK) return rc;
    }
    if (path_out) snprintf(path_out, cap, "%s", final);
    if (keep_last_n > 0) {
        static char names[4096][64];
        int n = list_steps(ckdir, names, 4096);
        char best[128] = "";
        read_pointer(ckdir, "best", best, sizeof best);
        /* the best checkpoint is kept besides the newest keep_last_n */
        int has_best = 0;
        for (int i = 0; i < n; i++) has_best |= !strcmp(names[i], best);
        int excess = n - has_best - keep_last_n;
        for (int i = 0; i < n && excess > 0; i++) {
            if (!strcmp(names[i], best) || !strcmp(names[i], name)) continue;
            ta_pathf(p, sizeof p, "%s/%s", ckdir, names[i]);
            remove_dir(p);
            excess--;
        }
    }
    return TA_OK;
fail:
    cJSON_Delete(files);
    remove_dir(tmp);
    return rc ? rc : TA_ERUNTIME;
}

int checkpoint_mark_best(const char *out_dir, const char *dir, TaError *err) {
    char p[PATHMAX], line[PATHMAX];
    const char *base = strrchr(dir, '/');
    base = base ? base + 1 : dir;
    int n = (int)strlen(ta_pathf(line, sizeof line, "%s\n", base));
    ta_pathf(p, sizeof p, "%s/checkpoints/best", out_dir);
    return ta_write_file_atomic(p, line, (size_t)n, err);
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int checkpoint_resolve(const char *path, char *out, size_t cap, TaError *err) {
    char p[PATHMAX], name[256];
    if (!is_dir(path)) return ta_err(err, TA_EINPUT, "%s: no such directory", path);
    ta_pathf(p, sizeof p, "%s/state.json", path);
    if (access(p, F_OK) == 0) {
        ta_pathf(out, cap, "%s", path);
        return TA_OK;
    }
    const char *ck = path;
    char ckdir[PATHMAX];
    ta_pathf(ckdir, sizeof ckdir, "%s/checkpoints", path);
    if (is_dir(ckdir)) ck = ckdir;
    if (!read_pointer(ck, "latest", name, sizeof name))
        return ta_err(err, TA_EINPUT,
                      "%s: no checkpoint here (expected %s/latest naming a step-* directory, "
                      "or a checkpoint directory with state.json)", path, ck);
    ta_pathf(out, cap, "%s/%s", ck, name);
    if (!is_dir(out)) remove_stale_tmp(ck); /* recovers step-N.old after a crash */
    if (!is_dir(out))
        return ta_err(err, TA_EINPUT, "%s/latest names %s, which does not exist", ck, name);
    return TA_OK;
}

int checkpoint_load_state(const char *dir, TrainState *state, char **config_json,
                          TaError *err) {
    char p[PATHMAX];
    ta_pathf(p, sizeof p, "%s/state.json", dir);
    size_t len;
    char *text = ta_read_file(p, &len, err);
    if (!text) return TA_EINPUT;
    cJSON *st = cJSON_Parse(text);
    free(text);
    int rc = TA_OK;
    if (!st) return ta_err(err, TA_EINPUT, "%s: not valid JSON (corrupted checkpoint?)", p);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(st, "format");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(st, "format_version");
    const cJSON *eng = cJSON_GetObjectItemCaseSensitive(st, "engine_version");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "tinyalign-checkpoint") ||
        !cJSON_IsNumber(ver)) {
        rc = ta_err(err, TA_EINPUT, "%s: not a tinyalign checkpoint state file", p);
        goto end;
    }
    if (ver->valueint != CHECKPOINT_FORMAT_VERSION) {
        rc = ta_err(err, TA_EINPUT, "%s: checkpoint format version %d, this engine reads %d", p,
                    ver->valueint, CHECKPOINT_FORMAT_VERSION);
        goto end;
    }
    if (!cJSON_IsString(eng) || strcmp(eng->valuestring, TA_VERSION)) {
        rc = ta_err(err, TA_EINPUT,
                    "%s: written by tinyalign %s, this is %s (resume with the same engine "
                    "version; the weights themselves load with `convert`)",
                    p, cJSON_IsString(eng) ? eng->valuestring : "?", TA_VERSION);
        goto end;
    }
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(st, "files");
    const cJSON *f;
    cJSON_ArrayForEach(f, files) {
        char fp[PATHMAX];
        ta_pathf(fp, sizeof fp, "%s/%s", dir, f->string);
        uint32_t crc;
        uint64_t bytes;
        const cJSON *want_crc = cJSON_GetObjectItemCaseSensitive(f, "crc32");
        const cJSON *want_bytes = cJSON_GetObjectItemCaseSensitive(f, "bytes");
        if (file_crc(fp, &crc, &bytes) != 0) {
            rc = ta_err(err, TA_EINPUT, "%s: missing or unreadable (listed in %s)", fp, p);
            goto end;
        }
        if (cJSON_IsNumber(want_bytes) && (uint64_t)want_bytes->valuedouble != bytes) {
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
    if (state && !state_from_json(cJSON_GetObjectItemCaseSensitive(st, "train_state"), state)) {
        rc = ta_err(err, TA_EINPUT, "%s: train_state is missing or malformed", p);
        goto end;
    }
    if (config_json) {
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(st, "config");
        *config_json = cJSON_IsObject(cfg) ? cJSON_Print(cfg) : NULL;
    }
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
