#!/usr/bin/env bash
# Compatibility check: CPython's own OS-layer tests (test_os, test_subprocess, test_posix,
# test_shutil) run bare and under libguard.so with an allow-all policy; the per-test-case
# outcomes (ok / FAIL / ERROR / skipped) must be the same. Takes several minutes, so it is not
# part of the default test run.
#
# Usage: tests/compat/cpython_regrtest.sh [PYTHON]   (PROFILE=release to use a release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${1:-$(python3 -c 'import sys; print(sys.executable)')}
PROFILE=${PROFILE:-debug}
TESTS=(test_os test_subprocess test_posix test_shutil)
work=$(mktemp -d /tmp/guard-regrtest.XXXXXX)
trap 'rm -rf "$work"' EXIT

flag=(); [ "$PROFILE" = release ] && flag=(--release)
cargo build -q -p libguard "${flag[@]}"
LIB=$PWD/target/$PROFILE/libguard.so
GUARD_COMPAT_RULESET=$work/allow-all.bin cargo test -q -p guard-e2e "${flag[@]}" --test hooks_compat \
  -- --ignored --exact write_allow_all_ruleset >/dev/null

# One line per test case: "<id> <outcome>", sorted.
outcomes() {
  grep -E ' \.\.\. (ok|FAIL|ERROR|skipped|expected failure|unexpected success)' "$1" \
    | sed -E 's/^(test[^ ]* \([^)]*\)).* \.\.\. (ok|FAIL|ERROR|skipped|expected failure|unexpected success).*/\1 \2/' \
    | sort -u
}

run() { # name, then env assignments
  local name=$1; shift
  local start=$SECONDS
  ( cd "$work" && env "$@" "$PY" -m test -v "${TESTS[@]}" >"$work/$name.log" 2>&1 ) || true
  echo "$name: $((SECONDS - start))s, $(grep -cE ' \.\.\. ok' "$work/$name.log") ok, $(grep -cE ' \.\.\. (FAIL|ERROR)' "$work/$name.log") failed/errors"
  outcomes "$work/$name.log" >"$work/$name.out"
}

guard_env=(LD_PRELOAD="$LIB" GUARD_RULESET="$work/allow-all.bin" GUARD_SESSION=regrtest
  GUARD_SOCKET="$work/no-broker.sock" GUARD_WORKSPACE="$work")
# Liveness: under the guard, a child started with env={} still gets the guard re-injected.
live=$(env "${guard_env[@]}" "$PY" -c \
  'import subprocess; print(subprocess.run(["/usr/bin/env"], env={}, capture_output=True, text=True).stdout)')
grep -q "^LD_PRELOAD=$LIB" <<<"$live" || { echo "cpython_regrtest: the guard is not active"; exit 1; }

run bare
run guarded "${guard_env[@]}"

if diff -u "$work/bare.out" "$work/guarded.out" >"$work/diff.txt"; then
  echo "cpython_regrtest: same outcomes bare and under the guard ($(wc -l <"$work/bare.out") cases)"
else
  echo "cpython_regrtest: outcomes differ:"
  grep -E '^[+-]test' "$work/diff.txt" | head -50
  cp "$work"/*.log /tmp/ 2>/dev/null || true
  echo "(logs copied to /tmp/bare.log and /tmp/guarded.log)"
  exit 1
fi
