#!/bin/sh
# Ask round-trip latency through the whole chain (issue 4, target: median under 1 ms).
#
# A real program (bench/ask_latency.c) runs under `guardctl run` with a policy whose file rule
# asks for reads of one file; it opens that file WARMUP + N times, and libguard holds each open
# until the broker relays an answer. An automatic approver (bench/ask_latency_approver.c), run
# outside the guarded tree, answers each ask through the control protocol that
# `guardctl pending/approve/watch` use, without `--remember` (so every ask reaches the broker).
# The program times each open with CLOCK_MONOTONIC and prints median/p90/p99.
#
# Four runs: the session's own broker, then a `guardctl serve` broker the session attaches to;
# each with the approver in `wait` mode (a `pending` request that waits for the next ask) and
# in `poll` mode (plain `pending` requests back to back). Fails loudly unless the program saw
# N successful opens, the approver approved every ask, and the session's audit log holds one
# approved, not remembered `read` event with its own approval id per ask.
#
# Usage: bench/ask_latency.sh [profile] [N] [WARMUP]   (defaults: release 1000 50)
# ASK_BENCH_MODES="wait poll" chooses the approver modes.
set -eu
profile=${1:-release}
n=${2:-1000}
warm=${3:-50}
modes=${ASK_BENCH_MODES:-wait poll}
total=$((n + warm))
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "$profile" = release ]; then
    cargo build --release -p guardctl -p libguard >&2
fi
G=$root/target/$profile/guardctl
[ -x "$G" ] || { echo "ask_latency: $G is missing (build it first)" >&2; exit 2; }
tmp=$(mktemp -d /tmp/askb.XXXXXX)
serve_pid=
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/home/project"
asked=$tmp/home/asked.txt
echo secret > "$asked"
cat > "$tmp/policy.toml" <<EOF
[policy]
name = "ask-latency-bench"
default = "allow"
ask_timeout = "10s"

[[rule]]
id = "ask-bench"
on = "file"
paths = ["~/asked.txt"]
access = ["read"]
decision = "ask"
reason = "benchmark: every read asks"
examples = { match = ["read ~/asked.txt"] }
EOF
cc -O2 -Wall -o "$tmp/ask_latency" "$root/bench/ask_latency.c"
cc -O2 -Wall -o "$tmp/approver" "$root/bench/ask_latency_approver.c"
export HOME="$tmp/home" GUARD_STATE_DIR="$tmp/state"
unset GUARD_SESSION GUARD_SOCKET GUARD_ASK_SOCKET LD_PRELOAD XDG_RUNTIME_DIR XDG_STATE_HOME
mkdir -p "$GUARD_STATE_DIR"
cd "$tmp/home/project"

die() {
    echo "ask_latency: FAILED ($1): $2" >&2
    for f in out err appr apprerr; do
        [ -s "$tmp/$f" ] && { echo "--- $f" >&2; tail -5 "$tmp/$f" >&2; }
    done
    exit 1
}

# run LABEL MODE: one measured session; prints the program's result line and the checks.
run() {
    label="$1 approver=$2"
    : > "$tmp/appr"
    "$tmp/approver" "$GUARD_STATE_DIR/run" "$total" 120 "$2" > "$tmp/appr" 2> "$tmp/apprerr" &
    appr_pid=$!
    status=0
    "$G" run --policy "$tmp/policy.toml" --agent ask-bench -- \
        "$tmp/ask_latency" "$asked" "$n" "$warm" > "$tmp/out" 2> "$tmp/err" || status=$?
    # Every ask was answered before its open returned, so the approver is done by now or
    # within a moment; one that still waits saw fewer asks than it should have.
    i=0
    while kill -0 "$appr_pid" 2>/dev/null && [ "$i" -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill "$appr_pid" 2>/dev/null || true
    astatus=0
    wait "$appr_pid" || astatus=$?
    [ "$status" -eq 0 ] || die "$label" "the program exited $status (asks denied or not answered)"
    [ "$astatus" -eq 0 ] || die "$label" "the approver exited $astatus: $(cat "$tmp/appr")"
    grep -q "^asks=$n ok=$n failed=0 " "$tmp/out" || die "$label" "the program did not see $n successful opens"
    grep -q "^approved=$total " "$tmp/appr" || die "$label" "the approver did not approve $total asks"
    # The audit trail: one event per ask, approved by a human (not remembered), each with its
    # own broker-issued id, on the asked file.
    "$G" log --last --json > "$tmp/log" || die "$label" "guardctl log failed"
    got=$(jq -s --arg p "$asked" '[.[] | select(.target == $p and .action == "read"
            and .decision == "allow" and .approval.answer == "approved"
            and (.approval.who | test("remembered") | not))] | length' "$tmp/log")
    ids=$(jq -s --arg p "$asked" '[.[] | select(.target == $p) | .approval.id] | unique | length' "$tmp/log")
    others=$(jq -s --arg p "$asked" '[.[] | select(.target == $p and .approval.answer != "approved")] | length' "$tmp/log")
    [ "$got" -eq "$total" ] || die "$label" "the audit log has $got approved asks, expected $total"
    [ "$ids" -eq "$total" ] || die "$label" "the audit log has $ids distinct ask ids, expected $total"
    [ "$others" -eq 0 ] || die "$label" "the audit log has $others asks that were not approved"
    lat=$(jq -s --arg p "$asked" '[.[] | select(.target == $p) | .approval.latency_ms] | sort | .[length/2|floor]' "$tmp/log")
    echo "$label: $(cat "$tmp/out") | approver: $(cat "$tmp/appr") | audit: $got approved asks, $ids ids, median approval.latency_ms=$lat"
}

echo "# machine: $(uname -srm), $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# profile=$profile n=$n warmup=$warm approver modes: $modes"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for m in $modes; do
    run session-broker "$m"
    echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
done

"$G" serve > "$tmp/serve.out" 2> "$tmp/serve.err" &
serve_pid=$!
i=0
until [ -S "$GUARD_STATE_DIR/run/broker.sock" ]; do
    i=$((i + 1))
    [ "$i" -lt 200 ] || die serve "guardctl serve did not start: $(cat "$tmp/serve.err")"
    sleep 0.05
done
for m in $modes; do
    run serve-broker "$m"
    echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
done
grep -q '"broker":"serve"' "$GUARD_STATE_DIR/sessions/index.jsonl" || die serve "the session did not attach to serve"
kill "$serve_pid"
wait "$serve_pid" 2>/dev/null || true
serve_pid=
