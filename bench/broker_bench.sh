#!/bin/sh
# Broker benchmarks: stored events/s from one and from four processes, and the broker's RSS
# while it stores 1,000,000 events. Real libguard events (denied opens, bench/broker_load.c)
# under `guardctl run`. Usage: bench/broker_bench.sh [profile]   (default: release)
set -eu
profile=${1:-release}
root=$(cd "$(dirname "$0")/.." && pwd)
[ "$profile" = release ] && cargo build --release -p guardctl -p libguard >&2
G=$root/target/$profile/guardctl
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/home/.ssh" "$tmp/home/project"
echo "-----BEGIN OPENSSH PRIVATE KEY-----" > "$tmp/home/.ssh/id_ed25519"
cc -O2 -o "$tmp/load" "$root/bench/broker_load.c"
export HOME="$tmp/home" GUARD_STATE_DIR="$tmp/state"
unset GUARD_TEST_WRITER_DELAY_US LD_PRELOAD
cd "$tmp/home/project"

# run PROCS RATE N: prints stored, dropped, seconds, stored/s, peak broker VmRSS (kB)
run() {
    start=$(date +%s.%N)
    "$G" run --agent bench -- "$tmp/load" "$tmp/home/.ssh/id_ed25519" "$1" "$2" "$3" \
        > "$tmp/out" 2> "$tmp/err" &
    pid=$!
    peak=0
    while kill -0 $pid 2>/dev/null; do
        rss=$(awk '/^VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
        [ "${rss:-0}" -gt "$peak" ] && peak=$rss
        echo "$rss" >> "$tmp/rss.$1.$3"
        sleep 0.5
    done
    wait $pid || true
    end=$(date +%s.%N)
    last=$(grep '"event":"end"' "$GUARD_STATE_DIR/sessions/index.jsonl" | tail -1)
    ev=$(echo "$last" | sed 's/.*"events":\([0-9]*\).*/\1/')
    dr=$(echo "$last" | sed 's/.*"dropped":\([0-9]*\).*/\1/')
    echo "procs=$1 rate=$2 n=$3 stored=$ev dropped=$dr seconds=$(echo "$end - $start" | bc) stored_per_s=$(echo "$ev / ($end - $start)" | bc) peak_rss_kb=$peak"
}

echo "# one process, as fast as it can (200,000 opens)"
run 1 0 200000
echo "# four processes, as fast as they can (4 x 100,000 opens)"
run 4 0 100000
echo "# 1,000,000 events paced to what the broker keeps up with (4 x 5,000/s x 50 s); RSS every 0.5 s"
run 4 5000 50
echo "rss samples (kB), first and last 5:"
head -5 "$tmp/rss.4.50" | tr '\n' ' '; echo; tail -5 "$tmp/rss.4.50" | tr '\n' ' '; echo
