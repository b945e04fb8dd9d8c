#!/usr/bin/env bash
# Bare-vs-guarded benchmarks for libguard (hot paths and whole-process workloads), run in the
# same invocation, interleaved round by round, so both sides see the same machine state.
# Results go to stdout as a Markdown table; BENCHMARKS.md records a run.
#
# Guarded = under `guardctl run` with the default (embedded) policy, exactly as a user runs an
# agent. Each guarded run proves it is guarded: BENCH_EXPECT_DENIED names a file the default
# policy denies (~/.ssh/id_ed25519 of the bench HOME), and bench/micro.c and bench/spawn.py
# exit with an error when they (or, for spawn.py, a child) can read it. At the end the
# session's audit log must hold the matching deny event.
#
#   ./bench/run.sh [--quick]        (ROUNDS=N for more rounds per side; default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=${1:-}
ROUNDS=${ROUNDS:-3}; SPAWNS=40; OPS_OPEN=200000; OPS_READ=1000000
if [ "$QUICK" = "--quick" ]; then ROUNDS=1; SPAWNS=10; OPS_OPEN=20000; OPS_READ=100000; fi

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

row() { # name unit cmd...   (each command prints "WALL CPU")
  local name=$1 unit=$2; shift 2
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
  "$PY" -c 'import statistics, sys
n, u, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
v = list(map(float, sys.argv[4:]))
bw, gw, bc, gc = v[:k], v[k:2*k], v[2*k:3*k], v[3*k:]
m = statistics.median
pw = m(g / b for g, b in zip(gw, bw))
pc = m(g / b for g, b in zip(gc, bc))
print(f"| {n} | {m(bw):.3f} | {m(gw):.3f} | {m(gw)/m(bw):.3f}x ({m(gw)-m(bw):+.3f}) | {m(bc):.3f} | {m(gc):.3f} | {m(gc)/m(bc):.3f}x ({m(gc)-m(bc):+.3f}) | {pw:.3f}x / {pc:.3f}x | {u} |")' \
    "$name" "$unit" "$ROUNDS" "${bw[@]}" "${gw[@]}" "${bc[@]}" "${gc[@]}"
}

echo "| workload | bare wall | guarded wall | wall ratio | bare CPU | guarded CPU | CPU ratio | median of per-round ratios (wall / CPU) | unit |"
echo "|---|---|---|---|---|---|---|---|---|"
row "open+close, allowed absolute path" ns "$WORK/micro" open $OPS_OPEN "$HOME/project/data.bin"
row "open+close, allowed relative path" ns "$WORK/micro" open $OPS_OPEN data.bin
row "fopen+fclose, allowed absolute path" ns "$WORK/micro" fopen $OPS_OPEN "$HOME/project/data.bin"
row "open+close, 4,096 different files" ns "$WORK/micro" openmany $OPS_OPEN "$HOME/project/many"
row "open+close, outside the secret scope" ns "$WORK/micro" open $OPS_OPEN "$OUT/data.bin"
row "fopen+fclose, outside the secret scope" ns "$WORK/micro" fopen $OPS_OPEN "$OUT/data.bin"
row "open+close, 4,096 different files outside the scope" ns "$WORK/micro" openmany $OPS_OPEN "$OUT/many"
row "pread 4 KiB, unflagged fd" ns "$WORK/micro" read $OPS_READ "$HOME/project/data.bin"
row "read 4 KiB (lseek+read), unflagged fd" ns "$WORK/micro" readseq $OPS_READ "$HOME/project/data.bin"
row "exec /bin/true" ms "$PY" "$ROOT/bench/spawn.py" $SPAWNS /bin/true
row "python3 -c pass" ms "$PY" "$ROOT/bench/spawn.py" $SPAWNS "$PY" -c pass
row "node -e 0" ms "$PY" "$ROOT/bench/spawn.py" $SPAWNS node -e 0
row "python3 import-heavy script" ms "$PY" "$ROOT/bench/spawn.py" $SPAWNS "$PY" "$WORK/imports.py"
row "git status, 10,000 files" ms "$PY" "$ROOT/bench/spawn.py" $SPAWNS git -C "$REPO" status --porcelain

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
