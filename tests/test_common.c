/* test_common.c — the shared helpers of include/tinyalign/common.h against independent
 * answers: CRC32 (zlib) against the standard check value and Python's zlib.crc32 of the
 * same bytes, FNV-1a 64 against its published test vectors, the JSON string writer read
 * back by cJSON for every byte 1..255, and the "did you mean" suggestions. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>

#include "testhelp.h"
#include "tinyalign/common.h"

static void test_crc32(void) {
    T_CHECK(ta_crc32(0, "123456789", 9) == 0xCBF43926u, "check value %08x", ta_crc32(0, "123456789", 9));
    /* continuing a CRC over a split buffer = the CRC of the whole */
    static unsigned char buf[100003];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i * 2654435761u >> 13);
    uint32_t whole = ta_crc32(0, buf, sizeof buf);
    uint32_t split = ta_crc32(ta_crc32(0, buf, 777), buf + 777, sizeof buf - 777);
    T_CHECK(whole == split, "split %08x != whole %08x", split, whole);
    /* Python's zlib.crc32 of the same bytes */
    const char *py = getenv("PYTHON");
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "%s -c 'import zlib; print(\"%%08x\" %% zlib.crc32(bytes((i * 2654435761 >> 13) & 255 "
             "for i in range(100003))))'", py && *py ? py : "python3");
    FILE *p = popen(cmd, "r");
    char got[32] = "";
    T_CHECK(p && fgets(got, sizeof got, p), "cannot run %s", cmd);
    pclose(p);
    char want[16];
    snprintf(want, sizeof want, "%08x\n", whole);
    T_CHECK(!strcmp(got, want), "python %s, ours %s", got, want);
}

static void test_fnv1a(void) {
    /* published FNV-1a 64 vectors (Fowler, Noll, Vo) */
    T_CHECK(ta_fnv1a(TA_FNV1A_INIT, "", 0) == 0xcbf29ce484222325ULL, "empty");
    T_CHECK(ta_fnv1a(TA_FNV1A_INIT, "a", 1) == 0xaf63dc4c8601ec8cULL, "\"a\"");
    T_CHECK(ta_fnv1a(TA_FNV1A_INIT, "foobar", 6) == 0x85944171f73967e8ULL, "\"foobar\"");
    T_CHECK(ta_fnv1a(ta_fnv1a(TA_FNV1A_INIT, "foo", 3), "bar", 3) == 0x85944171f73967e8ULL,
            "continued");
}

/* Every byte 1..255 (valid UTF-8 for the ASCII ones, two-byte sequences for the rest)
 * inside a string, written and read back by cJSON: the same string. */
static void test_json_string(void) {
    char s[600];
    size_t n = 0;
    for (int c = 1; c < 128; c++) s[n++] = (char)c;
    const char *multi = "é東🙂\"\\";
    memcpy(s + n, multi, strlen(multi));
    n += strlen(multi);
    s[n] = '\0';
    TaBuf b = {0};
    ta_buf_json_string(&b, s);
    for (size_t i = 0; i < b.n; i++)
        T_CHECK((unsigned char)b.p[i] >= 0x20, "raw control byte %02x at %zu", (unsigned char)b.p[i], i);
    cJSON *v = cJSON_Parse(b.p);
    T_CHECK(v && cJSON_IsString(v) && !strcmp(v->valuestring, s), "does not read back: %s", b.p);
    cJSON_Delete(v);
    T_CHECK(strstr(b.p, "\\n") && strstr(b.p, "\\u0001") && strstr(b.p, "\\\""), "escapes: %s", b.p);
    free(b.p);
}

static void test_suggest(void) {
    const char *flags[] = {"--top-k", "--top-p", "--temperature", "--max-new-tokens"};
    T_CHECK(ta_suggest("--topk", flags, 4) && !strcmp(ta_suggest("--topk", flags, 4), "--top-k"), "--topk");
    T_CHECK(!strcmp(ta_suggest("--temprature", flags, 4), "--temperature"), "--temprature");
    T_CHECK(!strcmp(ta_suggest("--MAX-NEW-TOKENS", flags, 4), "--max-new-tokens"), "case");
    T_CHECK(ta_suggest("--frobnicate", flags, 4) == NULL, "nothing close");
    T_CHECK(ta_edit_distance("ab", "ba") == 1 && ta_edit_distance("kitten", "sitting") == 3,
            "distances");
}

/* UTF-8 validation against Python's strict decoder on every 1- and 2-byte string and
 * on edge cases of 3- and 4-byte sequences (surrogates, overlong forms, > U+10FFFF). */
static void test_utf8(void) {
    static const struct {
        const char *s;
        long bad;
    } cases[] = {
        {"", -1}, {"abc", -1}, {"\xc3\xa9", -1}, {"\xe6\x9d\xb1", -1}, {"\xf0\x9f\x99\x82", -1},
        {"\xf4\x8f\xbf\xbf", -1}, {"a\xff", 1}, {"\xc0\xaf", 0}, {"\xc1\xbf", 0},
        {"\xe0\x80\xaf", 0}, {"\xed\xa0\x80", 0}, {"\xed\x9f\xbf", -1}, {"\xf0\x80\x80\xaf", 0},
        {"\xf4\x90\x80\x80", 0}, {"\xf5\x80\x80\x80", 0}, {"ab\xe2\x82", 2}, {"\x80", 0},
        {"\xc3", 0}, {"x\xc3(", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long got = ta_utf8_invalid_at(cases[i].s, strlen(cases[i].s));
        T_CHECK(got == cases[i].bad, "case %zu: %ld, expected %ld", i, got, cases[i].bad);
    }
    /* every 1- and 2-byte string: valid iff Python decodes it strictly */
    const char *py = getenv("PYTHON");
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "%s -c 'import sys\n"
             "def ok(b):\n"
             "  try: b.decode(\"utf-8\"); return \"1\"\n"
             "  except UnicodeDecodeError: return \"0\"\n"
             "sys.stdout.write(\"\".join(ok(bytes([a])) for a in range(256)) + \"\".join(ok(bytes([a, b])) for a in range(256) for b in range(256)))'",
             py && *py ? py : "python3");
    FILE *p = popen(cmd, "r");
    T_CHECK(p, "cannot run python");
    static char want[256 + 65536 + 1];
    size_t got = fread(want, 1, sizeof want - 1, p);
    pclose(p);
    T_CHECK(got == 256 + 65536, "python printed %zu flags", got);
    int wrong = 0;
    for (int a = 0; a < 256; a++) {
        char b1[1] = {(char)a};
        wrong += (ta_utf8_invalid_at(b1, 1) < 0) != (want[a] == '1');
        for (int b = 0; b < 256; b++) {
            char b2[2] = {(char)a, (char)b};
            wrong += (ta_utf8_invalid_at(b2, 2) < 0) != (want[256 + a * 256 + b] == '1');
        }
    }
    T_CHECK(wrong == 0, "%d strings judged differently from Python", wrong);
}

/* Excerpts for messages: printable, escaped, short. */
static void test_excerpt(void) {
    char out[200];
    ta_excerpt(out, sizeof out, "step-1\n\x01\"\\\xc3\xa9\xc2\x9b\xff", 15);
    T_CHECK(!strcmp(out, "step-1\\x0A\\x01\\\"\\\\\xc3\xa9\\xC2\\x9B\\xFF"), "got %s", out);
    char big[300];
    memset(big, 'a', sizeof big);
    ta_excerpt(out, sizeof out, big, sizeof big);
    T_CHECK(strlen(out) == 43 && !strcmp(out + 40, "..."), "long input: %s", out);
    ta_excerpt(out, 12, "\xff\xff\xff\xff\xff", 5);
    T_CHECK(strlen(out) < 12, "cap respected: %s", out);
}

int main(void) {
    t_run("crc32_check_value_and_python", test_crc32);
    t_run("fnv1a_published_vectors", test_fnv1a);
    t_run("json_string_reads_back", test_json_string);
    t_run("suggestions", test_suggest);
    t_run("utf8_validation_equals_python_strict", test_utf8);
    t_run("excerpt_printable_escaped_short", test_excerpt);
    return t_done();
}
