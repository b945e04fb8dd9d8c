#!/usr/bin/env bash
# Cost of redaction and content detection (issue 5), bare vs guarded (default policy), same
# invocation, paired: each row runs PAIRS bare/guarded pairs of processes, alternating which
# goes first, and reports the medians, the median of the per-pair ratios guarded/bare with its
# 95% confidence interval (binomial order statistics: distribution-free), the range of the
# ratios, and a verdict against the row's target (bench/paired_cmd.py). Prints Markdown tables;
# BENCHMARKS.md records a run. Run it on a quiet machine (nothing compiling): about 2-3 minutes
# after the release build.
#
#   ./bench/redact.sh [--quick]                          # --quick: a smoke run (5 pairs:
#                                                        # too few for a useful interval)
#   PAIRS=41 ./bench/redact.sh                           # more pairs: a narrower interval
#   GUARDCTL=/path/to/other/guardctl ./bench/redact.sh   # another build (its libguard.so next
#                                                        # to it), e.g. to compare before/after
#
# Rows: open+read+close of a file outside the content scope (/usr), of clean files inside it
# (workspace, 4 KiB and 64 KiB, no keyword / with keywords but no secret), and of a 4 KiB .env
# under the `redact` rule (by absolute and by relative name) and of a 4 KiB note that only
# content detection redacts (all served from the process's kept sealed copy after the first,
# untimed, open); each process reports ns per open+read+close, best of 5 rounds
# (bench/redact_micro.c). Target for the three redacted rows (issue 5): within 2x of the
# plain read; for the workloads: within 5% of bare.
# Scan throughput of guard-secrets itself: `cargo bench -p guard-secrets --bench scan`.
# Instruction counts per open: ./bench/redact_callgrind.sh; kernel cost of the syscalls a
# reopen uses, and of the alternatives: bench/redact_kernel.c (see BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=2000; NBIG=300; PAIRS=${PAIRS:-31}; WPAIRS=${WPAIRS:-15}; SPAWNS=5
if [ "${1:-}" = "--quick" ]; then N=300; NBIG=50; PAIRS=5; WPAIRS=3; SPAWNS=2; fi

if [ -z "${GUARDCTL:-}" ]; then
  cargo build --release -p libguard -p guardctl --quiet
  GUARDCTL=$ROOT/target/release/guardctl
fi
export GUARDCTL
WORK=$(mktemp -d /tmp/guard-bench-redact.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export HOME=$WORK/home GUARD_STATE_DIR=$WORK/state
P=$HOME/project
mkdir -p "$P" "$GUARD_STATE_DIR"
cc -O2 -o "$WORK/rm" bench/redact_micro.c

# Outside the scope: a system file (read by every runtime at start).
OUT=/usr/share/common-licenses/GPL-3
[ -f "$OUT" ] || OUT=/etc/services
# The read files (bench/redact_fixtures.py: clean text, text with keywords, .env, a note with a token).
python3 bench/redact_fixtures.py "$P"

bare() { (cd "$P" && "$@"); }
guarded() { (cd "$P" && "$GUARDCTL" run --agent bench -- "$@" 2>/dev/null); }
# The guard must be live: the guarded rows read redacted copies, the bare ones the secrets.
for f in .env notes.md; do
  guarded cat "$f" | grep -q REDACTED_BY_POLICY && ! bare cat "$f" | grep -q REDACTED_BY_POLICY \
    || { echo "redact.sh: $f is not redacted under the guard (or is bare): no guard live" >&2; exit 1; }
done
row() { # name iterations path target
  (cd "$P" && python3 "$ROOT/bench/paired_cmd.py" "$PAIRS" "$4" "$1" -- "$WORK/rm" "$2" "$3")
}

echo "pairs: $PAIRS per row; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| open+read+close | bare (median) | guarded (median) | guarded/bare (median of pairs) | 95% CI | range | verdict |"
echo "|---|---|---|---|---|---|---|"
row "outside scope: $OUT ($(stat -c %s "$OUT") B)" "$N" "$OUT" -
row "in scope, 4 KiB, no keyword" "$N" "$P/clean4k.txt" -
row "in scope, 64 KiB, no keyword" "$NBIG" "$P/clean64k.txt" -
row "in scope, 4 KiB, keywords, no secret" "$N" "$P/keywords4k.txt" -
row "redact rule: 4 KiB .env (kept copy)" "$N" "$P/.env" 2
row "redact rule: 4 KiB .env by relative name (kept copy)" "$N" ".env" 2
row "content detection: 4 KiB note with a token (kept copy)" "$N" "$P/notes.md" 2
echo

# Whole workloads in the workspace (content scope): an import-heavy Python script whose
# modules live outside it (/usr, ~/.pyenv/versions: out of scope), and `git status` over a
# 2,000-file repository inside it. Each process of a pair is spawn.py running the workload
# SPAWNS times and reporting the median wall time (ms); pairs as above.
REPO=$P/repo
mkdir -p "$REPO"
( cd "$REPO" && git init -q && for d in $(seq 0 19); do mkdir -p "d$d"; for f in $(seq 0 99); do echo "$d $f" > "d$d/f$f.txt"; done; done \
  && git add -A && git -c user.email=b@x -c user.name=bench commit -qm init )
cat > "$P/imports.py" <<'PY'
import argparse, asyncio, collections, csv, dataclasses, datetime, decimal, email.message, fractions
import http.client, json, logging, pathlib, pickle, sqlite3, statistics, subprocess, tarfile
import unittest, urllib.request, uuid, xml.etree.ElementTree, zipfile, typing, concurrent.futures
PY
wrow() { # name cmd...
  local name=$1; shift
  (cd "$P" && PAIRED_UNIT=ms python3 "$ROOT/bench/paired_cmd.py" "$WPAIRS" 1.05 "$name" -- python3 "$ROOT/bench/spawn.py" "$SPAWNS" "$@")
}
echo "| workload (wall, median of $SPAWNS spawns per process) | bare (median) | guarded (median) | guarded/bare (median of $WPAIRS pairs) | 95% CI | range | verdict |"
echo "|---|---|---|---|---|---|---|"
wrow "python3 import-heavy script (in workspace)" python3 "$P/imports.py"
wrow "git status, 2,000 files (in workspace)" git -C "$REPO" status --porcelain
echo
echo "machine: $(nproc) cores, $(uname -srm), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
