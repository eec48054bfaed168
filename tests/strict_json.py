#!/usr/bin/env python3
"""strict_json.py FILE — reads a JSON document or a JSONL file the engine wrote with the
strictest reading Python offers, and exits 1 naming the first problem:
  - the bytes must decode as UTF-8 (errors="strict": no invalid or surrogate sequences);
  - every value must parse with json.loads(strict=True) (no raw control characters in
    strings), without the NaN / Infinity extensions, with no duplicate keys;
  - a JSONL file is one object per non-empty line.
Prints "<n> values" on success. Used by tests/cli/inputs.sh."""
import json
import sys


def no_constants(name):
    raise ValueError(f"non-standard constant {name}")


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise ValueError(f"duplicate keys {sorted(dup)}")
    return dict(pairs)


def parse(text):
    return json.loads(text, strict=True, parse_constant=no_constants,
                      object_pairs_hook=no_duplicates)


def main():
    path = sys.argv[1]
    raw = open(path, "rb").read()
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        sys.exit(f"{path}: not valid UTF-8 at byte {e.start}: {raw[max(0, e.start - 20):e.start + 4]!r}")
    if not text.strip():
        sys.exit(f"{path}: empty")
    try:  # one JSON document (possibly indented over several lines)
        parse(text)
        print("1 value")
        return
    except json.JSONDecodeError as e:
        if "Extra data" not in e.msg:
            sys.exit(f"{path}: {e}")
    except ValueError as e:
        sys.exit(f"{path}: {e}")
    n = 0
    for i, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            v = parse(line)
        except ValueError as e:
            sys.exit(f"{path}:{i}: {e}")
        if not isinstance(v, dict):
            sys.exit(f"{path}:{i}: a JSONL line must be an object")
        n += 1
    print(f"{n} values")


if __name__ == "__main__":
    main()
