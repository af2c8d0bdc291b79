#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/README.md) for a fixed time each and fails on the first
# crash, panic, timeout or out-of-memory. Each target starts from its committed corpus
# (fuzz/corpus/<target>) plus seeds taken from tests/fixtures and fuzz/seeds; new inputs it
# finds are added to fuzz/corpus/<target> (minimise with `scripts/fuzz.sh --minimise`).
#
# Usage: scripts/fuzz.sh [seconds per target, default 30] [target...]
#        scripts/fuzz.sh --minimise [target...]
# FUZZ_SEED=N fixes libFuzzer's random seed, so a run explores the same inputs each time (what
# .ci/run does); without it every run explores differently.
# FUZZ_NEW_INPUTS=DIR writes the inputs a run finds to DIR/<target> instead of fuzz/corpus, and
# reads the committed corpus as it is (what .ci/run does, so the checkout stays clean).
# cargo-fuzz needs nightly features (sanitizers): with a nightly toolchain it uses it, otherwise
# the stable toolchain with RUSTC_BOOTSTRAP=1, so fuzzing never skips.
set -euo pipefail
cd "$(dirname "$0")/.."

targets_all=(admission_review_bytes admission_isvc template kserve_config)
minimise=false
if [ "${1:-}" = "--minimise" ]; then
  minimise=true
  shift
fi
seconds=30
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${targets_all[@]}")

if rustup run nightly rustc --version >/dev/null 2>&1; then
  fuzz=(cargo +nightly fuzz)
else
  echo "scripts/fuzz.sh: no nightly toolchain; using stable with RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo +stable fuzz)
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz@0.13.2
fi

# Seed directories per target: fixtures as they are, plus fuzz/seeds/<target> where present.
seeds() {
  case "$1" in
    admission_review_bytes) echo tests/fixtures/admission ;;
    kserve_config) echo tests/fixtures/config config fuzz/seeds/kserve_config ;;
    template) echo fuzz/seeds/template ;;
    admission_isvc) ;; # structure-aware: its input is not a file format
  esac
}
dictionary() {
  case "$1" in
    admission_review_bytes | admission_isvc) echo fuzz/dictionaries/admission.dict ;;
    template) echo fuzz/dictionaries/template.dict ;;
    kserve_config) echo fuzz/dictionaries/config.dict ;;
  esac
}

for target in "${targets[@]}"; do
  "${fuzz[@]}" build "$target"
done
for target in "${targets[@]}"; do
  corpus=fuzz/corpus/$target
  mkdir -p "$corpus"
  if $minimise; then
    # Keeps the smallest set of inputs that reaches the same coverage.
    "${fuzz[@]}" cmin "$target" "$corpus" -- -dict="$(dictionary "$target")"
    continue
  fi
  # libFuzzer adds what it finds to the first corpus directory and only reads the others.
  corpora=("$corpus")
  if [ -n "${FUZZ_NEW_INPUTS:-}" ]; then
    mkdir -p "$FUZZ_NEW_INPUTS/$target"
    corpora=("$FUZZ_NEW_INPUTS/$target" "$corpus")
  fi
  echo "== $target: ${seconds}s"
  log=$(mktemp)
  status=0
  # shellcheck disable=SC2046 # seeds() lists directories, split on purpose
  "${fuzz[@]}" run "$target" "${corpora[@]}" $(seeds "$target") -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -dict="$(dictionary "$target")" -print_final_stats=1 ${FUZZ_SEED:+-seed="$FUZZ_SEED"} \
    >"$log" 2>&1 || status=$?
  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
  if [ "$status" -ne 0 ]; then
    # The assertion that failed, then the end of libFuzzer's report (without the input dump).
    grep -A3 "panicked at" "$log" | head -n 12 | cut -c1-800 >&2 || true
    grep -v "^\s*\[" "$log" | grep -v "^ *#[0-9]* 0x" | tail -n 25 | cut -c1-400 >&2
    echo "scripts/fuzz.sh: $target failed (exit $status); the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  rm -f "$log"
done
