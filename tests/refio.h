/* refio.h — reader for the "TAREF001" reference files written by tools/reffile.py
 * (format documented there). Test-only; every record is loaded into memory. */
#ifndef TINYALIGN_REFIO_H
#define TINYALIGN_REFIO_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char name[64];
    int dtype; /* 0 float32, 1 int32 */
    int ndim;
    uint64_t dims[8];
    size_t n;
    void *data;
} RefRecord;

typedef struct {
    int count;
    RefRecord rec[64];
} RefFile;

/* Returns 0 on success, -1 (with a message on stderr) on failure. */
static int ref_load(RefFile *r, const char *path) {
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "refio: cannot open %s (did tools/ref_*.py run?)\n", path);
        return -1;
    }
    char magic[8];
    uint32_t count;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "TAREF001", 8) ||
        fread(&count, 4, 1, f) != 1 || count > 64) {
        fprintf(stderr, "refio: %s: bad header\n", path);
        fclose(f);
        return -1;
    }
    for (uint32_t i = 0; i < count; i++) {
        RefRecord *q = &r->rec[i];
        uint32_t nl, dt, nd;
        if (fread(&nl, 4, 1, f) != 1 || nl >= sizeof q->name || fread(q->name, 1, nl, f) != nl ||
            fread(&dt, 4, 1, f) != 1 || fread(&nd, 4, 1, f) != 1 || nd > 8) goto bad;
        q->dtype = (int)dt;
        q->ndim = (int)nd;
        q->n = 1;
        for (uint32_t d = 0; d < nd; d++) {
            if (fread(&q->dims[d], 8, 1, f) != 1) goto bad;
            q->n *= q->dims[d];
        }
        q->data = malloc(q->n * 4 + 4);
        if (fread(q->data, 4, q->n, f) != q->n) goto bad;
        r->count++;
    }
    fclose(f);
    return 0;
bad:
    fprintf(stderr, "refio: %s: truncated or malformed record %d\n", path, r->count);
    fclose(f);
    return -1;
}

static RefRecord *ref_get(RefFile *r, const char *name) {
    for (int i = 0; i < r->count; i++)
        if (!strcmp(r->rec[i].name, name)) return &r->rec[i];
    fprintf(stderr, "refio: record \"%s\" missing\n", name);
    return NULL;
}

static void ref_free(RefFile *r) {
    for (int i = 0; i < r->count; i++) free(r->rec[i].data);
    memset(r, 0, sizeof *r);
}

/* Path of a reference file: $TA_REF/<name> (tests/run.sh sets TA_REF), else build/ref/<name>. */
static const char *ref_path(const char *name) {
    static char buf[1024];
    const char *dir = getenv("TA_REF");
    snprintf(buf, sizeof buf, "%s/%s", dir && *dir ? dir : "build/ref", name);
    return buf;
}
#endif
