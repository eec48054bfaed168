/* jsonl.h — the JSONL line reader and small JSON helpers shared by every reader of JSONL
 * files (datasets, curate, sample prompts, tokenize): one object per line, errors that name
 * file:line[:column], strict UTF-8 validation of every line. Only the file-format readers include it;
 * the rest of the engine never sees cJSON.
 *
 * Lines: split on "\n"; a trailing "\r" is dropped; a UTF-8 byte-order mark at the start
 * of line 1 is skipped; blank lines (only spaces, tabs, CR) are skipped but still counted,
 * so line numbers are the ones an editor shows. Columns are 1-based and count characters
 * (UTF-8 code points), not bytes.
 */
#ifndef TINYALIGN_JSONL_H
#define TINYALIGN_JSONL_H
#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "tinyalign/common.h"

typedef struct {
    FILE *f;
    const char *path; /* not owned */
    char *buf;        /* getline buffer */
    size_t cap;
    long lineno;      /* 1-based number of the line last returned */
} JsonlReader;

/* Opens path for reading. TA_EINPUT naming the path when it cannot be opened or is a
 * directory. */
int jsonl_open(JsonlReader *r, const char *path, TaError *err);

/* The next non-blank line: returns 1 with *line (not NUL-terminated, valid until the next
 * call) and *len, 0 at the end of the file, or -1 with err filled (TA_EINPUT) on a read
 * error. r->lineno is the line's number. */
int jsonl_next(JsonlReader *r, const char **line, size_t *len, TaError *err);

void jsonl_close(JsonlReader *r); /* safe on a zeroed reader */

/* Parses one line that must hold exactly one JSON object, and checks that the whole line
 * is valid UTF-8 (the door every JSONL text comes in by: kept fields are copied to output
 * byte for byte, so they are checked here too). On success *out is the object (free with
 * cJSON_Delete) and TA_OK is returned. Otherwise TA_EINPUT with one message:
 * "PATH:LINE:COL: invalid JSON near '...'", "PATH:LINE:COL: unexpected text after the
 * JSON object", "PATH:LINE:COL: NUL character ...", "PATH:LINE: expected a JSON object,
 * found an array" or 'PATH:LINE:COL: field "responses[0].text" (byte 3 of the string) is
 * not valid UTF-8 (byte 0xFF)'. */
int jsonl_parse_object(const char *path, long lineno, const char *line, size_t len,
                       cJSON **out, TaError *err);

/* "a string", "a number", "an array", "an object", "a boolean", "null". */
const char *jsonl_type_name(const cJSON *v);

/* Where the members of a JSON object lie in its text, so a reader can keep a member exactly
 * as the user wrote it (numbers, escapes, nesting) instead of re-printing what cJSON
 * parsed. */
typedef struct {
    size_t key, key_end;     /* the name's string literal, quotes included: [key, key_end) */
    size_t value, value_end; /* the value's text: [value, value_end) */
} JsonlMember;

/* Scans the object whose '{' is at s[at] (text cJSON accepted, so it is valid JSON) and
 * fills m[0..) with its members in order, at most cap. Returns the member count (which the
 * caller compares with cJSON_GetArraySize of the parsed object), or -1 when the text is
 * not an object or there are more than cap members. *end (may be NULL) receives the
 * offset just past the closing '}'. */
int jsonl_scan_object(const char *s, size_t n, size_t at, JsonlMember *m, int cap, size_t *end);

/* The same for the array whose '[' is at s[at]: fills items[0..) with the offset where each
 * element's text starts. Returns the element count, or -1 (not an array, more than cap). */
int jsonl_scan_array(const char *s, size_t n, size_t at, size_t *items, int cap);

#endif
