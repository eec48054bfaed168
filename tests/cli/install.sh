#!/usr/bin/env bash
# install.sh — `make install PREFIX=...` into a temporary prefix: the binary runs from
# another directory (OpenBLAS found through the rpath), `tinyalign plot` finds the installed
# tools/plot.py, and `make uninstall` removes exactly what was installed.
source "$(dirname "$0")/../lib.sh"
D=$(cd "$(scratch_dir cli_install)" && pwd)
P="$D/prefix"
BUILD=${TA_BUILD:-build}

if make --no-print-directory -s install PREFIX="$P" BUILD="$BUILD" >"$D/install.log" 2>&1 \
   && [ -x "$P/bin/tinyalign" ] && [ -f "$P/share/tinyalign/tools/plot.py" ] \
   && [ -f "$P/share/tinyalign/tools/hf_gpt2.py" ]; then
  pass "make_install_prefix"
else
  fail "make_install_prefix" "$(tail -3 "$D/install.log"; find "$P" 2>/dev/null | head)"
fi
cmp -s "$BUILD/tinyalign" "$P/bin/tinyalign" && pass "installed_binary_is_the_build" \
  || fail "installed_binary_is_the_build" "differs from $BUILD/tinyalign"

# from another directory, with a PATH that has nothing of ours
out=$(cd / && env -i PATH=/usr/bin:/bin "$P/bin/tinyalign" --help 2>&1); rc=$?
[ $rc -eq 0 ] && grep -q "^  train " <<<"$out" && grep -q "^  plot " <<<"$out" \
  && pass "installed_help_from_elsewhere" || fail "installed_help_from_elsewhere" "exit $rc: $(head -3 <<<"$out")"
out=$(cd / && env -i PATH=/usr/bin:/bin "$P/bin/tinyalign" info 2>&1); rc=$?
[ $rc -eq 0 ] && grep -q "OpenBLAS" <<<"$out" && pass "installed_info_finds_openblas" \
  || fail "installed_info_finds_openblas" "exit $rc: $out"

# tinyalign plot runs the installed script (the source tree is not reachable from the prefix)
mkdir -p "$D/run"
for s in 1 2 3; do echo "{\"kind\": \"train\", \"step\": $s, \"loss\": 2.$s, \"lr\": 0.001, \"grad_norm\": 1, \"tokens\": ${s}0}"; done > "$D/run/metrics.jsonl"
out=$(cd / && "$P/bin/tinyalign" plot "$D/run" --out "$D/fig.png" --json 2>&1); rc=$?
if [ $rc -eq 0 ] && [ "$(head -c 8 "$D/fig.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; then
  pass "installed_plot_writes_png"; else fail "installed_plot_writes_png" "exit $rc: $out"; fi
out=$("$P/bin/tinyalign" plot "$D/nowhere" --out "$D/x.png" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "no metrics.jsonl" <<<"$out" && pass "plot_bad_input_exit_2" \
  || fail "plot_bad_input_exit_2" "exit $rc: $out"

if make --no-print-directory -s uninstall PREFIX="$P" BUILD="$BUILD" >"$D/uninstall.log" 2>&1 \
   && [ -z "$(find "$P" -type f)" ] && [ ! -e "$P/share/tinyalign" ]; then
  pass "make_uninstall_removes_everything"
else
  fail "make_uninstall_removes_everything" "$(cat "$D/uninstall.log"; find "$P" -type f)"
fi
exit $((FAILS > 0))
