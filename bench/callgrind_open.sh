#!/usr/bin/env bash
# Instructions libguard adds per open, counted by callgrind: repeatable on a noisy machine,
# where the wall-clock rows of bench/run.sh swing by tens of percent.
#
# valgrind (3.19 here) does not know `openat2`, which the open fast path uses; the library
# would then take its slow path under valgrind and the count would describe code that never
# runs. So this script builds a *profiling copy* of libguard in a scratch worktree whose fast
# path calls `openat` instead (same evaluation, same checks; only the kernel's no-symlink
# guarantee is missing, which is why that copy is never used for anything but counting) and
# counts `bench/micro.c` under it: per-operation cost = (count at 3N - count at N) / (2N * 5
# rounds). `git status` is counted whole, bare and guarded.
#
#   ./bench/callgrind_open.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
WORK=$(mktemp -d /tmp/guard-callgrind.XXXXXX)
cleanup() { git -C "$ROOT" worktree remove --force "$WORK/src" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

git worktree add -q --detach "$WORK/src" HEAD
# Carry uncommitted changes of the working tree along, so the count is of what is checked out.
git diff HEAD | (cd "$WORK/src" && git apply --allow-empty)
python3 - "$WORK/src/libguard/src/path.rs" <<'EOF'
import sys
p = sys.argv[1]
s = open(p).read()
old = """    let r = crate::seccomp::openat2(
        dirfd,
        open_name,
        &how as *const OpenHow as usize,
        core::mem::size_of::<OpenHow>(),
    );"""
new = """    let _ = &how;
    let r = unsafe {
        raw::sys(
            libc::SYS_openat,
            dirfd as isize as usize,
            open_name as usize,
            flags as usize,
            mode as usize,
        )
    };"""
if old not in s:
    sys.exit("path.rs: the openat2 call of the fast path was not found; update this script")
open(p, "w").write(s.replace(old, new))
EOF
(cd "$WORK/src" && CARGO_TARGET_DIR="$ROOT/target/callgrind" cargo build --release -p libguard -p guardctl --quiet)
LIB=$ROOT/target/callgrind/release/libguard.so
GUARDCTL=$ROOT/target/callgrind/release/guardctl

export HOME=$WORK/home
mkdir -p "$HOME/project/many" "$WORK/outside/many"
head -c 65536 /dev/urandom > "$HOME/project/data.bin"
head -c 65536 /dev/urandom > "$WORK/outside/data.bin"
for i in $(seq 0 4095); do : > "$WORK/outside/many/f$i"; : > "$HOME/project/many/f$i"; done
REPO=$HOME/project/repo
mkdir -p "$REPO"
( cd "$REPO" && git init -q && for d in $(seq 0 99); do mkdir -p "d$d"; for f in $(seq 0 99); do echo "$d $f" > "d$d/f$f.txt"; done; done \
  && git add -A && git -c user.email=b@x -c user.name=bench commit -qm init )
cc -O2 -o "$WORK/micro" bench/micro.c
cd "$HOME/project"
"$GUARDCTL" policy compile --home "$HOME" --workspace "$PWD" -o "$WORK/ruleset.bin" >/dev/null
G=(env "LD_PRELOAD=$LIB" "GUARD_RULESET=$WORK/ruleset.bin" "GUARD_SOCKET=$WORK/none.sock"
   GUARD_SESSION=bench GUARD_AGENT=bench "GUARD_WORKSPACE=$PWD")
count() { "$@" 2>&1 >/dev/null | awk '/Collected/ {print $4}'; }
vg=(valgrind --tool=callgrind --callgrind-out-file=/dev/null)
per_op() { # mode path
  local a b c d
  a=$(count "${vg[@]}" "$WORK/micro" "$1" 1000 "$2")
  b=$(count "${vg[@]}" "$WORK/micro" "$1" 3000 "$2")
  c=$(count "${G[@]}" "${vg[@]}" "$WORK/micro" "$1" 1000 "$2")
  d=$(count "${G[@]}" "${vg[@]}" "$WORK/micro" "$1" 3000 "$2")
  echo "$(( (b - a) / 10000 )) $(( (d - c) / 10000 ))"
}
echo "| operation (default policy) | bare instructions | guarded instructions | added by libguard |"
echo "|---|---|---|---|"
row() { local r; r=$(per_op "$2" "$3"); set -- "$1" $r; echo "| $1 | $2 | $3 | +$(( $3 - $2 )) |"; }
row "open+close, absolute path in the workspace (repeated)" open "$HOME/project/data.bin"
row "open+close, relative path in the workspace (repeated)" open data.bin
row "open+close, absolute path outside the secret scope (repeated)" open "$WORK/outside/data.bin"
row "open+close, 4,096 different files in the workspace" openmany "$HOME/project/many"
row "open+close, 4,096 different files outside the scope" openmany "$WORK/outside/many"
row "pread 4 KiB, unflagged fd" read "$HOME/project/data.bin"
bare=$(count "${vg[@]}" git -C "$REPO" status --porcelain)
guarded=$(count "${G[@]}" "${vg[@]}" git -C "$REPO" status --porcelain)
echo "| git status, 10,000 files (whole process) | $bare | $guarded | +$(( guarded - bare )) ($(python3 -c "print(f'{($guarded-$bare)/$bare*100:+.1f}%')")) |"
bare=$(count "${vg[@]}" /bin/true)
guarded=$(count "${G[@]}" "${vg[@]}" /bin/true)
echo "| /bin/true (start-up, whole process) | $bare | $guarded | +$(( guarded - bare )) |"
echo
echo "valgrind: $(valgrind --version); commit: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD || echo ' + uncommitted changes')"
