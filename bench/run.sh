#!/usr/bin/env bash
# Bare-vs-guarded benchmarks for libguard (hot paths and whole-process workloads), run in the
# same invocation, interleaved round by round, so both sides see the same machine state.
# Results go to stdout as a Markdown table; BENCHMARKS.md records a run.
#
# Guarded = under `guardctl run` with the default (embedded) policy, exactly as a user runs an
# agent. Each guarded run proves it is guarded: BENCH_EXPECT_DENIED names a file the default
# policy denies (~/.ssh/id_ed25519 of the bench HOME), and bench/micro.c and the guarded worker
# of bench/paired.py exit with an error when they can read it. At the end the
# session's audit log must hold the matching deny event.
#
# Hot paths (bench/micro.c, one process per side and round): ROUNDS rounds, alternating which
# side goes first; the verdict is the median of the per-round ratios with a distribution-free
# 95% confidence interval. Whole-process workloads: bench/paired.py, PAIRS bare and guarded runs
# interleaved one by one (the guarded side is an agent under `guardctl run` spawning the
# command), median of the per-pair ratios with its 95% confidence interval.
#
#   ./bench/run.sh [--quick]        (ROUNDS=N, default 9; PAIRS=N, default 40)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=${1:-}
ROUNDS=${ROUNDS:-9}; PAIRS=${PAIRS:-40}; OPS_OPEN=200000; OPS_READ=1000000
if [ "$QUICK" = "--quick" ]; then ROUNDS=3; PAIRS=6; OPS_OPEN=20000; OPS_READ=100000; fi

cargo build --release -p libguard -p guardctl --quiet
GUARDCTL=$ROOT/target/release/guardctl
WORK=$(mktemp -d /tmp/guard-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export HOME=$WORK/home GUARD_STATE_DIR=$WORK/state
unset LD_PRELOAD GUARD_SESSION GUARD_RULESET GUARD_SOCKET BENCH_EXPECT_DENIED
mkdir -p "$HOME/project" "$HOME/.ssh" "$GUARD_STATE_DIR"
DENIED=$HOME/.ssh/id_ed25519
echo "not a real key" > "$DENIED"
cc -O2 -o "$WORK/micro" bench/micro.c
# The real interpreter: a version-manager shim (pyenv) is a shell script that would be timed too.
PY=$(python3 -c 'import sys; print(sys.executable)')
head -c 65536 /dev/urandom > "$HOME/project/data.bin"
# Outside the secret-content scope (HOME and the workspace), and 4,096 distinct files in and out
# of it for opens that never repeat a path.
OUT=$WORK/outside
mkdir -p "$OUT/many" "$HOME/project/many"
head -c 65536 /dev/urandom > "$OUT/data.bin"
for i in $(seq 0 4095); do : > "$OUT/many/f$i"; : > "$HOME/project/many/f$i"; done

# A repository of 10,000 files for `git status`.
REPO=$HOME/project/repo
mkdir -p "$REPO"
( cd "$REPO" && git init -q && for d in $(seq 0 99); do mkdir -p "d$d"; for f in $(seq 0 99); do echo "$d $f" > "d$d/f$f.txt"; done; done \
  && git add -A && git -c user.email=b@x -c user.name=bench commit -qm init )

# Import-heavy Python.
cat > "$WORK/imports.py" <<'PY'
import argparse, asyncio, collections, csv, dataclasses, datetime, decimal, email.message, fractions
import http.client, json, logging, pathlib, pickle, sqlite3, statistics, subprocess, tarfile
import unittest, urllib.request, uuid, xml.etree.ElementTree, zipfile, typing, concurrent.futures
PY

guarded() {
  (cd "$HOME/project" && BENCH_EXPECT_DENIED=$DENIED "$GUARDCTL" run --agent bench -- "$@" 2>"$WORK/guarded.err") || {
    echo "guarded run failed: $*" >&2; cat "$WORK/guarded.err" >&2; exit 1; }
}
bare() { (cd "$HOME/project" && "$@"); }

row() { # name unit target cmd...   (each command prints "WALL CPU"; target: a ratio)
  local name=$1 unit=$2 target=$3; shift 3
  local bw=() bc=() gw=() gc=() o r
  # Rounds alternate which side goes first, so a drift of the machine within a round does not
  # always favour the same side; each round gives one bare/guarded pair.
  for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
      o=$(bare "$@"); bw+=("${o% *}"); bc+=("${o#* }")
      o=$(guarded "$@"); gw+=("${o% *}"); gc+=("${o#* }")
    else
      o=$(guarded "$@"); gw+=("${o% *}"); gc+=("${o#* }")
      o=$(bare "$@"); bw+=("${o% *}"); bc+=("${o#* }")
    fi
  done
  "$PY" - "$name" "$unit" "$target" "$ROUNDS" "${bw[@]}" "${gw[@]}" "${bc[@]}" "${gc[@]}" <<'PYEOF'
import statistics, sys
sys.path.insert(0, "bench")
from stats import median_ci, verdict
n, u, t, k = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
v = list(map(float, sys.argv[5:]))
bw, gw, bc, gc = v[:k], v[k:2*k], v[2*k:3*k], v[3*k:]
m = statistics.median
rw = median_ci([g / b for g, b in zip(gw, bw)])
rc = median_ci([g / b for g, b in zip(gc, bc)])
print(f"| {n} | {k} | {m(bw):.1f} | {m(gw):.1f} | {rw[0]:.3f}x [{rw[1]:.3f}, {rw[2]:.3f}] | {rc[0]:.3f}x [{rc[1]:.3f}, {rc[2]:.3f}] | {u} | {t:g}x: {verdict(rw[1], rw[2], t)} |")
PYEOF
}

# Whole-process workloads: one row of bench/paired.py (bare and guarded interleaved run by run).
prow() { # name pairs target-option cmd...   (target-option: --target PCT or --target-ms MS)
  local name=$1 pairs=$2 topt=$3 tval=$4; shift 4
  (cd "$HOME/project" && BENCH_EXPECT_DENIED=$DENIED "$PY" "$ROOT/bench/paired.py" --pairs "$pairs" \
    "$topt" "$tval" --guardctl "$GUARDCTL" --label "$name" -- "$@" 2>>"$WORK/paired.err") || {
    echo "paired run failed: $*" >&2; cat "$WORK/paired.err" >&2; exit 1; }
}

echo "Hot paths: per-round ratio guarded/bare, median [95% confidence interval] over the rounds."
echo
echo "| operation | rounds | bare (median) | guarded (median) | wall ratio | CPU ratio | unit | target: verdict |"
echo "|---|---|---|---|---|---|---|---|"
row "open+close, allowed absolute path (workspace)" ns 1.3 "$WORK/micro" open $OPS_OPEN "$HOME/project/data.bin"
row "open+close, allowed relative path (workspace)" ns 1.3 "$WORK/micro" open $OPS_OPEN data.bin
row "fopen+fclose, allowed absolute path (workspace)" ns 1.3 "$WORK/micro" fopen $OPS_OPEN "$HOME/project/data.bin"
row "open+close, 4,096 different files (workspace)" ns 1.3 "$WORK/micro" openmany $OPS_OPEN "$HOME/project/many"
row "open+close, outside the secret scope" ns 1.3 "$WORK/micro" open $OPS_OPEN "$OUT/data.bin"
row "fopen+fclose, outside the secret scope" ns 1.3 "$WORK/micro" fopen $OPS_OPEN "$OUT/data.bin"
row "open+close, 4,096 different files outside the scope" ns 1.3 "$WORK/micro" openmany $OPS_OPEN "$OUT/many"
row "pread 4 KiB, unflagged fd" ns 1.02 "$WORK/micro" read $OPS_READ "$HOME/project/data.bin"
row "read 4 KiB (lseek+read), unflagged fd" ns 1.02 "$WORK/micro" readseq $OPS_READ "$HOME/project/data.bin"
echo
echo "Whole processes: bare and guarded runs interleaved one by one (bench/paired.py); per-pair"
echo "guarded - bare and guarded/bare, median [95% confidence interval]; CPU is the child tree's."
echo
echo "| workload | pairs | bare wall ms | guarded wall ms | added ms | wall ratio | bare CPU ms | guarded CPU ms | CPU ratio |"
echo "|---|---|---|---|---|---|---|---|---|"
prow "exec /bin/true (start-up)" $((PAIRS * 3)) --target-ms 3 /bin/true
prow "python3 -c pass" "$PAIRS" --target 5 "$PY" -c pass
prow "node -e 0" "$PAIRS" --target 5 node -e 0
prow "python3 import-heavy script" "$PAIRS" --target 5 "$PY" "$WORK/imports.py"
prow "git status, 10,000 files" $((PAIRS * 3)) --target 5 git -C "$REPO" status --porcelain
cat "$WORK/paired.err" | grep -v '^guard: session' || true

# The guarded runs recorded their refusals (the broker really ran).
# (Into a file first: `grep -q` stops reading at the first hit, and with pipefail the writer's
# SIGPIPE would fail the check.)
"$GUARDCTL" log --last --json > "$WORK/last.jsonl"
if ! grep -q '"ssh-private-keys"' "$WORK/last.jsonl"; then
  echo "no ssh-private-keys deny event in the last session's audit log: was the guard live?" >&2
  exit 1
fi
echo
echo "python: $PY; node: $(command -v node) $(node --version); git: $(git --version)"
echo "machine: $(nproc) cores, $(uname -srm), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "guarded runs verified: $DENIED refused in every guarded run and recorded in the audit log"
