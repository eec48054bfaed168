#!/usr/bin/env bash
# state.sh — a checkpoint's state.json is verified and range-checked on resume. Every case
# of the hardening issue's campaign, on a run stopped at step 10 of 30:
#   - edited (state.sum present): pos -1, epoch -1, step 1e30 / -1e308, step / pos / epoch
#     off by one, the embedded config's lr, betas, seed or max_steps changed, a flipped
#     byte, state.sum damaged or deleted: refused (exit 2), one message naming state.json
#     and the value that changed;
#   - the same values in a state without its checksum (what a checkpoint of an earlier
#     build is, or a forger who deletes state.sum): the range checks refuse every one that
#     could break the trainer, naming state.json and the field (pos -1 used to overflow a
#     heap buffer, epoch -1 to abort, step 1e30 to overflow);
#   - a checkpoint as an earlier build wrote it (format 1, no state.sum) still resumes,
#     with a warning, bit-exactly; the data changed under a run is refused (--force
#     accepts it).
# Under `make asan-test` this runs with AddressSanitizer + UBSan.
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_state)
"$PY" tools/synth_shards.py --out "$D/data" --tokens 20000 --val-tokens 2000 >/dev/null
cat > "$D/base.json" <<EOF2
{"run": {"name": "s", "out_dir": "$D/straight", "seed": 5, "threads": 1},
 "model": {"n_layer": 1, "n_head": 2, "d_model": 16, "max_seq_len": 16},
 "tokenizer": {"type": "none"},
 "data": {"format": "tokens", "train": "$D/data/train.bin", "val": "$D/data/val.bin", "max_len": 16},
 "optim": {"lr": 3e-3, "warmup_steps": 2},
 "train": {"batch_size": 4, "grad_accum": 2, "max_steps": 30, "log_every": 5, "eval_every": 10,
           "eval_batches": 1, "save_every": 10}}
EOF2
train() { "$BIN" train "$D/base.json" --quiet "$@"; }
train >/dev/null 2>&1 && pass "straight_run" || fail "straight_run" "exit $?"
train --set run.out_dir="$D/run" --stop-after 10 >/dev/null 2>&1 && pass "stopped_run" || fail "stopped_run" "exit $?"
CK=checkpoints/step-00000010

# edit NAME PYTHON [nosum]: a copy of the stopped run whose state.json the Python
# statement changes (s: the parsed state.json; rewritten indented like the engine does);
# nosum: also delete state.sum and mark the state format 1 (no checksum to verify)
edit() {
  local name=$1 code=$2 mode=${3:-}
  rm -rf "$D/$name"; cp -r "$D/run" "$D/$name"
  "$PY" - "$D/$name/$CK/state.json" "$mode" <<EOF
import json, sys
p, mode = sys.argv[1], sys.argv[2]
s = json.load(open(p))
$code
if mode == "nosum":
    s["format_version"] = 1
open(p, "w").write(json.dumps(s, indent="\t") + "\n")
EOF
  [ "$mode" = nosum ] && rm -f "$D/$name/$CK/state.sum"
}

# ---- edited states: the checksum names the value that changed ------------------------------
while IFS='|' read -r name code field; do
  edit "$name" "$code"
  expect_err "edited/$name" "$CK/state.json" "edited or damaged" "the value of $field changed" -- "$BIN" resume "$D/$name"
done <<'EOF'
pos_minus_1|s["train_state"]["pos"] = -1|train_state.pos
epoch_minus_1|s["train_state"]["epoch"] = -1|train_state.epoch
step_1e30|s["train_state"]["step"] = 1e30|train_state.step
step_minus_1e308|s["train_state"]["step"] = -1e308|train_state.step
step_plus_1|s["train_state"]["step"] += 1|train_state.step
pos_plus_1|s["train_state"]["pos"] += 1|train_state.pos
epoch_plus_1|s["train_state"]["epoch"] += 1|train_state.epoch
config_lr|s["config"]["optim"]["lr"] = 0.004|config.optim.lr
config_betas|s["config"]["optim"]["betas"][1] = 0.99|config.optim.betas[1]
config_seed|s["config"]["run"]["seed"] = 6|config.run.seed
config_max_steps|s["config"]["train"]["max_steps"] = 31|config.train.max_steps
EOF
rm -rf "$D/flip"; cp -r "$D/run" "$D/flip"
"$PY" -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); i=b.index(b'\"pos\"')+8; b[i]^=4; open(p,'wb').write(b)" "$D/flip/$CK/state.json"
expect_err "edited/flipped_byte" "$CK/state.json" "edited or damaged" "train_state.pos" -- "$BIN" resume "$D/flip"
rm -rf "$D/sumflip"; cp -r "$D/run" "$D/sumflip"
"$PY" -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=1; open(p,'wb').write(b)" "$D/sumflip/$CK/state.sum"
expect_err "edited/state_sum_damaged" "$CK/state.sum: damaged" -- "$BIN" resume "$D/sumflip"
rm -rf "$D/nosum"; cp -r "$D/run" "$D/nosum"; rm "$D/nosum/$CK/state.sum"
expect_err "edited/state_sum_deleted" "$CK/state.json" "state.sum is missing" -- "$BIN" resume "$D/nosum"
# the step directory alone (latest superseded) is verified the same way
rm -rf "$D/direct"; cp -r "$D/pos_plus_1" "$D/direct"
expect_err "edited/step_dir_given_directly" "$CK/state.json" "train_state.pos" -- "$BIN" resume "$D/direct/$CK"

# ---- no checksum to rely on: the range checks refuse what could break the trainer ---------
while IFS='|' read -r name code want; do
  edit "nosum_$name" "$code" nosum
  expect_err "range/$name" "$CK/" "state.json" "$want" -- "$BIN" resume "$D/nosum_$name"
done <<'EOF'
pos_minus_1|s["train_state"]["pos"] = -1|train_state.pos is -1, expected an integer in [0,
epoch_minus_1|s["train_state"]["epoch"] = -1|train_state.epoch is -1, expected an integer in [0,
step_1e30|s["train_state"]["step"] = 1e30|train_state.step is 1e+30, expected an integer in [0,
step_minus_1e308|s["train_state"]["step"] = -1e308|train_state.step is -1e+308, expected an integer
step_fraction|s["train_state"]["step"] = 10.5|train_state.step is 10.5
step_plus_1|s["train_state"]["step"] += 1|train_state.step is 11, but the directory is step-00000010
step_beyond_max|s["train_state"]["step"] = 31; s["config"]["train"]["max_steps"] = 30|train_state.step is 31
pos_plus_1|s["train_state"]["pos"] += 1|train_state.pos is 81, but after 10 steps of 8 examples the data cursor is at epoch 0, example 80
pos_beyond_data|s["train_state"]["pos"] = 10**9|train_state.pos is 1000000000, beyond the
epoch_plus_1|s["train_state"]["epoch"] += 1|train_state.epoch is 1, but after 10 steps
epoch_huge|s["train_state"]["epoch"] = 2**53|train_state.epoch is 9007199254740992, but 10 steps
rng_not_hex|s["train_state"]["rng"][2] = "xyz"|train_state.rng is "xyz", expected 16 hex digits
rng_all_zero|s["train_state"]["rng"] = ["0" * 16] * 4|train_state.rng is all zero
best_step_after_step|s["train_state"]["best_step"] = 11|train_state.best_step is 11, expected an integer in [-1, 10]
best_val_text|s["train_state"]["best_val"] = "low"|train_state.best_val is "low"
tokens_not_a_count|s["train_state"]["tokens_seen"] = "-5"|train_state.tokens_seen is "-5"
tokens_too_many|s["train_state"]["tokens_seen"] = str(10**15)|train_state.tokens_seen is 1000000000000000, more than 10 steps
bad_steps_negative|s["train_state"]["bad_steps"] = -3|train_state.bad_steps is -3
file_outside|s["files"]["../../../etc/passwd"] = {"crc32": "00000000", "bytes": 1}|lists "../../../etc/passwd", which is not a file name beside it
file_size_huge|s["files"]["model.safetensors"]["bytes"] = 1e30|state.json says 1000000000000000019884624838656 (truncated?)
EOF

# ---- a checkpoint as an earlier build wrote it: format 1, no state.sum, no train_examples ---
edit old 'del s["train_state"]["train_examples"]' nosum
out=$("$BIN" resume "$D/old" 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q "written by an earlier build, without state.sum" <<<"$out" \
   && cmp -s "$D/straight/checkpoints/step-00000030/model.safetensors" "$D/old/checkpoints/step-00000030/model.safetensors"; then
  pass "format1_checkpoint_resumes_bitexact_with_warning"
else fail "format1_checkpoint_resumes_bitexact_with_warning" "exit $rc: $(grep -E 'warning|error|tinyalign' <<<"$out" | head -2)"; fi
# the untouched stopped run resumes bit-exactly (the checks pass on a real state)
if "$BIN" resume "$D/run" >/dev/null 2>&1 && cmp -s "$D/straight/checkpoints/step-00000030/model.safetensors" "$D/run/checkpoints/step-00000030/model.safetensors"; then
  pass "verified_checkpoint_resumes_bitexact"; else fail "verified_checkpoint_resumes_bitexact" "differs or failed"; fi
[ -s "$D/run/$CK/state.sum" ] && head -1 "$D/run/$CK/state.sum" | grep -q "tinyalign-state-sum 1" \
  && pass "state_sum_written" || fail "state_sum_written" "no state.sum"

# ---- other data under the same run ------------------------------------------------------------
mkdir -p "$D/data2"; cp "$D/data/train.bin" "$D/data2/train.bin"
train --set run.out_dir="$D/otherdata" --set data.train="$D/data2/train.bin" --stop-after 10 >/dev/null 2>&1
"$PY" - "$D/data2/train.bin" <<'EOF2'
import struct, sys
p = sys.argv[1]
raw = open(p, "rb").read()
n = struct.unpack_from("<Q", raw, 24)[0]
ids = struct.unpack_from("<%dH" % n, raw, 64)[: n // 2]
hdr = raw[:24] + struct.pack("<Q", len(ids)) + raw[32:64]
open(p, "wb").write(hdr + struct.pack("<%dH" % len(ids), *ids))
EOF2
expect_err "other_data_refused" "was trained on" "data2/train.bin, which now has" "--force" -- \
  train --set run.out_dir="$D/otherdata" --set data.train="$D/data2/train.bin" --resume
out=$(train --set run.out_dir="$D/otherdata" --set data.train="$D/data2/train.bin" --resume --force 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q "resuming on other data (--force)" <<<"$out"; then pass "other_data_force_accepts"
else fail "other_data_force_accepts" "exit $rc: $(grep -E 'warning|tinyalign' <<<"$out" | head -2)"; fi

[ "$FAILS" -eq 0 ]
