/* fuzz_config.c — the run-config loader (config_load_string: JSON parse, UTF-8, schema,
 * types, ranges, cross-key checks, presets). Oracles: a refusal is TA_EINPUT with a
 * message; an accepted config prints (config_to_json) as valid UTF-8 JSON that loads
 * again into a config with no difference at all (config_diff == 0). */
#include <cjson/cJSON.h>

#include "fuzz.h"
#include "tinyalign/config.h"

FUZZ_TARGET(config) {
    char *text = fuzz_text(data, size);
    Config c;
    TaError err = {0};
    int rc = config_load_string(&c, text, "fuzz.json", &err);
    fuzz_check_refusal(rc, &err);
    if (rc == TA_OK) {
        char *json = config_to_json(&c);
        FUZZ_CHECK(json && ta_utf8_invalid_at(json, strlen(json)) < 0, "resolved config is not UTF-8");
        Config again;
        TaError e2 = {0};
        int rc2 = config_load_string(&again, json, "resolved.json", &e2);
        FUZZ_CHECK(rc2 == TA_OK, "the resolved config does not load again: %s\n%s", e2.msg, json);
        char diff[2048];
        int nd = config_diff(&c, &again, 0, diff, sizeof diff);
        FUZZ_CHECK(nd == 0, "the resolved config loads differently: %s", diff);
        config_free(&again);
        free(json);
        config_free(&c);
    }
    free(text);
    return 0;
}
