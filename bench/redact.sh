#!/usr/bin/env bash
# Cost of redaction and content detection (issue 5), bare vs guarded (default policy), same
# invocation. Prints a Markdown table; BENCHMARKS.md records a run.
#
#   ./bench/redact.sh [--quick]
#   GUARDCTL=/path/to/other/guardctl ./bench/redact.sh   # another build (its libguard.so next
#                                                        # to it), e.g. to compare before/after
#
# Rows: open+read+close of a file outside the content scope (/usr), of clean files inside it
# (workspace, 4 KiB and 64 KiB, no keyword / with keywords but no secret), and of a 4 KiB .env
# under the `redact` rule (by absolute and by relative name) and of a 4 KiB note that only
# content detection redacts (all served from the process's kept sealed copy after the first
# open), each in ns per open+read+close (best of 5 rounds).
# Scan throughput of guard-secrets itself: `cargo bench -p guard-secrets --bench scan`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=20000; NBIG=3000
if [ "${1:-}" = "--quick" ]; then N=2000; NBIG=300; fi

if [ -z "${GUARDCTL:-}" ]; then
  cargo build --release -p libguard -p guardctl --quiet
  GUARDCTL=$ROOT/target/release/guardctl
fi
WORK=$(mktemp -d /tmp/guard-bench-redact.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export HOME=$WORK/home GUARD_STATE_DIR=$WORK/state
P=$HOME/project
mkdir -p "$P" "$GUARD_STATE_DIR"
cc -O2 -o "$WORK/rm" bench/redact_micro.c

# Outside the scope: a system file (read by every runtime at start).
OUT=/usr/share/common-licenses/GPL-3
[ -f "$OUT" ] || OUT=/etc/services
# Clean source-like text without any detector keyword, and with keywords (the regexes run).
python3 - "$P" <<'PY'
import random, string, sys
p = sys.argv[1]
random.seed(5)
words = ["let", "value", "count", "buffer", "render", "index", "parse", "item", "result", "offset"]
def text(n, extra=""):
    out = []
    while sum(map(len, out)) < n:
        out.append(" ".join(random.choice(words) for _ in range(8)) + extra + "\n")
    return "".join(out)[:n]
open(f"{p}/clean4k.txt", "w").write(text(4096))
open(f"{p}/clean64k.txt", "w").write(text(65536))
open(f"{p}/keywords4k.txt", "w").write(text(4096, " token password secret"))
env = ["# settings"] + [f"SETTING_{i}=value{i}" for i in range(150)]
env += ["DB_PASSWORD=" + "".join(random.choice(string.ascii_letters + string.digits) for _ in range(24)),
        "API_TOKEN=ghp_" + "".join(random.choice(string.ascii_letters + string.digits) for _ in range(36))]
body = "\n".join(env) + "\n"
open(f"{p}/.env", "w").write((body * 4)[:4096])
# A note no rule names, with a pasted token: redacted by content detection.
note = text(4000) + "\nthe bot uses ghp_" + "".join(random.choice(string.ascii_letters + string.digits) for _ in range(36)) + "\n"
open(f"{p}/notes.md", "w").write(note)
PY

bare() { (cd "$P" && "$@"); }
guarded() { (cd "$P" && "$GUARDCTL" run --agent bench -- "$@" 2>/dev/null); }
row() { # name iterations path
  local b g
  b=$(bare "$WORK/rm" "$2" "$3"); g=$(guarded "$WORK/rm" "$2" "$3")
  python3 -c 'import sys; n,b,g=sys.argv[1:]; b=float(b); g=float(g); print(f"| {n} | {b/1000:.2f} µs | {g/1000:.2f} µs | {g/b:.2f}x |")' "$1" "$b" "$g"
}

echo "| open+read+close | bare | guarded | guarded/bare |"
echo "|---|---|---|---|"
row "outside scope: $OUT ($(stat -c %s "$OUT") B)" "$N" "$OUT"
row "in scope, 4 KiB, no keyword" "$N" "$P/clean4k.txt"
row "in scope, 64 KiB, no keyword" "$NBIG" "$P/clean64k.txt"
row "in scope, 4 KiB, keywords, no secret" "$N" "$P/keywords4k.txt"
row "redact rule: 4 KiB .env (memfd copy)" "$N" "$P/.env"
row "redact rule: 4 KiB .env by relative name (memfd copy)" "$N" ".env"
row "content detection: 4 KiB note with a token (memfd copy)" "$N" "$P/notes.md"
echo

# Whole workloads in the workspace (content scope): an import-heavy Python script whose
# modules live outside it (/usr, ~/.pyenv/versions: out of scope), and `git status` over a
# 2,000-file repository inside it. Median of SPAWNS runs, ms.
SPAWNS=20; [ "${1:-}" = "--quick" ] && SPAWNS=5
REPO=$P/repo
mkdir -p "$REPO"
( cd "$REPO" && git init -q && for d in $(seq 0 19); do mkdir -p "d$d"; for f in $(seq 0 99); do echo "$d $f" > "d$d/f$f.txt"; done; done \
  && git add -A && git -c user.email=b@x -c user.name=bench commit -qm init )
cat > "$P/imports.py" <<'PY'
import argparse, asyncio, collections, csv, dataclasses, datetime, decimal, email.message, fractions
import http.client, json, logging, pathlib, pickle, sqlite3, statistics, subprocess, tarfile
import unittest, urllib.request, uuid, xml.etree.ElementTree, zipfile, typing, concurrent.futures
PY
wrow() { # name cmd...   (spawn.py prints "WALL CPU", ms: median wall, mean CPU of the tree)
  local name=$1 b g; shift
  b=$(bare python3 "$ROOT/bench/spawn.py" "$SPAWNS" "$@"); g=$(guarded python3 "$ROOT/bench/spawn.py" "$SPAWNS" "$@")
  python3 -c 'import sys; n,b,g=sys.argv[1:]; bw,bc=map(float,b.split()); gw,gc=map(float,g.split()); print(f"| {n} | {bw:.2f} ms ({bc:.2f} CPU) | {gw:.2f} ms ({gc:.2f} CPU) | {gw/bw:.3f}x ({gc/bc:.3f}x CPU) |")' "$name" "$b" "$g"
}
echo "| workload | bare wall (CPU) | guarded wall (CPU) | guarded/bare |"
echo "|---|---|---|---|"
wrow "python3 import-heavy script (in workspace)" python3 "$P/imports.py"
wrow "git status, 2,000 files (in workspace)" git -C "$REPO" status --porcelain
echo
echo "machine: $(nproc) cores, $(uname -srm), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
