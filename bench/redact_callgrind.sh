#!/usr/bin/env bash
# Instructions per open+read+close of a redacted file served from the kept copy (issue 5),
# counted by callgrind in `main` of bench/redact_micro.c: (count at 5x400 opens - count at
# 5x200 opens) / 1,000, bare and under `guardctl run` (release build). Repeatable on a loaded
# machine, unlike the wall-clock rows of bench/redact.sh. Also prints the syscalls per open
# (strace -c of the same difference).
#
#   ./bench/redact_callgrind.sh
#   GUARDCTL=/path/to/other/guardctl ./bench/redact_callgrind.sh   # another build
#
# The reopen path uses newfstatat/openat/fstat/fcntl, which valgrind knows, so the counted
# code is the code that runs natively (only the first, untimed, open differs: valgrind lacks
# openat2 and the library takes its slow path there).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
command -v strace >/dev/null || { echo "strace is not installed" >&2; exit 1; }
if [ -z "${GUARDCTL:-}" ]; then
  cargo build --release -p libguard -p guardctl --quiet
  GUARDCTL=$ROOT/target/release/guardctl
fi
WORK=$(mktemp -d /tmp/guard-callgrind-redact.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export HOME=$WORK/home GUARD_STATE_DIR=$WORK/state
P=$HOME/project
mkdir -p "$P" "$GUARD_STATE_DIR"
cc -O2 -o "$WORK/rm" bench/redact_micro.c
python3 bench/redact_fixtures.py "$P"

count() { # guarded(0/1) n path -> Ir in main
  local out=$WORK/cg.out
  if [ "$1" = 1 ]; then
    (cd "$P" && "$GUARDCTL" run --agent bench -- valgrind --tool=callgrind --toggle-collect=main \
      --callgrind-out-file="$out" "$WORK/rm" "$2" "$3" >/dev/null 2>&1)
  else
    (cd "$P" && valgrind --tool=callgrind --toggle-collect=main --callgrind-out-file="$out" \
      "$WORK/rm" "$2" "$3" >/dev/null 2>&1)
  fi
  grep -m1 '^summary:' "$out" | awk '{print $2}'
}
per_syscall() { # guarded(0/1) path -> "name count, ..." per open (5x60 opens minus 5x20)
  local a=$WORK/a b=$WORK/b pre=()
  [ "$1" = 1 ] && pre=("$GUARDCTL" run --agent bench --)
  (cd "$P" && "${pre[@]}" strace -c -o "$a" "$WORK/rm" 20 "$2" >/dev/null 2>&1)
  (cd "$P" && "${pre[@]}" strace -c -o "$b" "$WORK/rm" 60 "$2" >/dev/null 2>&1)
  python3 - "$a" "$b" <<'PY'
import sys
def load(f):
    d = {}
    for l in open(f):
        t = l.split()
        if len(t) >= 5 and t[0][0].isdigit() and t[-1] != "total":
            d[t[-1]] = int(t[3])
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
out = [(k, (b[k] - a.get(k, 0)) / 200) for k in b]
print(", ".join(f"{k} {v:g}" for k, v in sorted(out, key=lambda x: -x[1]) if v >= 0.5))
PY
}
echo "| open+read+close (4 KiB) | bare instructions | guarded instructions | bare syscalls per open | guarded syscalls per open |"
echo "|---|---|---|---|---|"
for row in "redact rule, absolute name:$P/.env" "redact rule, relative name:.env" "content detection, note:$P/notes.md"; do
  name=${row%%:*}; path=${row#*:}
  b=$(( ($(count 0 400 "$path") - $(count 0 200 "$path")) / 1000 ))
  g=$(( ($(count 1 400 "$path") - $(count 1 200 "$path")) / 1000 ))
  echo "| $name | $b | $g | $(per_syscall 0 "$path") | $(per_syscall 1 "$path") |"
done
