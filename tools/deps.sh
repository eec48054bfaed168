#!/usr/bin/env bash
# deps.sh — install the Debian packages tinyalign needs, skipping what is present.
# Run by `make deps` (and so by `make test` / `make quickstart`). Works as root on a fresh
# Debian 12 machine; as a normal user it uses sudo when available.
set -euo pipefail
PKGS=(
  build-essential pkg-config
  libopenblas-dev libopenblas0-openmp   # BLAS; we link the OpenMP build (shares our thread pool)
  libcjson-dev                          # config and JSONL parsing
  zlib1g-dev                            # CRC32 of checkpoint files, gzip compression ratio
  libopenmpi-dev openmpi-bin            # data parallel training (mpirun; build/tinyalign-mpi)
  clang libclang-rt-14-dev              # libFuzzer targets and sanitizer builds (make fuzz, CI)
  libdnnl-dev                           # oneDNN: the bf16 (and optional fp32) matmul backend
  libsentencepiece-dev sentencepiece    # tokenizer shim (C++ lib) and its CLI
  python3 python3-numpy python3-torch python3-sentencepiece   # independent references in tests
  python3-matplotlib                    # tinyalign plot / tools/plot.py and the reproduction figures
  fortunes                              # small real English corpus for the quickstart
)
missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} Debian packages present"
  exit 0
fi
echo "deps: installing missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "deps: not root and no sudo; run as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps: done"
