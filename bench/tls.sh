#!/bin/sh
# TLS gate benchmark: a 100 MB upload and 1,000 small HTTPS requests over loopback TLS, bare and
# under libguard (a policy with an http rule for the host, so every request is reassembled and
# evaluated), in Python and Node. Each case runs RUNS times, bare and guarded alternating; the
# best run of each is reported.
#
# Usage: bench/tls.sh            (builds release libguard + guardctl first)
#        RUNS=5 MB=100 N=1000 bench/tls.sh
#        CALLGRIND=1 bench/tls.sh   instruction counts instead of wall clock (repeatable on a
#                                   loaded machine): per request = (count at 300 requests -
#                                   count at 100) / 200, bare and guarded, Python and Node.
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3} MB=${MB:-100} N=${N:-1000}
cargo build --release -q -p libguard -p guardctl
LIB=$PWD/target/release/libguard.so
GUARDCTL=$PWD/target/release/guardctl
T=$(mktemp -d)
trap 'kill $SRV 2>/dev/null; rm -rf "$T"' EXIT
cat > "$T/policy.toml" <<'POL'
[policy]
name = "bench"
default = "allow"

[[rule]]
id = "bench-volume-delete"
on = "http"
hosts = ["localhost"]
graphql = ["volumeDelete"]
decision = "deny"
examples = { match = ['POST https://localhost/graphql {"query":"mutation { volumeDelete(id: 1) }"}'] }
POL
GUARD_STATE_DIR=$T "$GUARDCTL" policy compile --policy "$T/policy.toml" -o "$T/ruleset.bin" >/dev/null
python3 tests/programs/tls/server.py "$T" & SRV=$!
while [ ! -f "$T/port" ]; do sleep 0.1; done
PORT=$(cat "$T/port")
PY=$(python3 -c 'import sys; print(sys.executable)')

guarded() {
  env LD_PRELOAD="$LIB" GUARD_RULESET="$T/ruleset.bin" GUARD_SOCKET="$T/none.sock" \
      GUARD_SESSION=bench GUARD_AGENT=bench "$@"
}
# Bare and guarded runs alternate (RUNS pairs) so that load from other processes hits both
# alike; the best of each is kept. Field 4 of a client's line: MB/s (upload, higher is better)
# or us/request (ping, lower is better).
pair() { # kind command... ; prints "bare guarded"
  kind=$1; shift
  i=0; b=""; g=""
  while [ $i -lt "$RUNS" ]; do
    b="$b$("$@" | awk '{print $4}')\n"
    g="$g$(guarded "$@" | awk '{print $4}')\n"
    i=$((i+1))
  done
  if [ "$kind" = upload ]; then pick="tail -1"; else pick="head -1"; fi
  echo "$(printf "$b" | sort -g | $pick) $(printf "$g" | sort -g | $pick)"
}
row() { # name kind bare guarded
  awk -v n="$1" -v k="$2" -v b="$3" -v g="$4" 'BEGIN {
    if (k == "upload") printf "%-22s bare %8.1f MB/s  guarded %8.1f MB/s  (%+.1f%%)\n", n, b, g, (g - b) / b * 100;
    else printf "%-22s bare %8.1f us/req guarded %8.1f us/req (%+.1f us)\n", n, b, g, g - b }'
}
export NODE_EXTRA_CA_CERTS="$T/cert.pem"
if [ -n "${CALLGRIND:-}" ]; then
  vg="valgrind --tool=callgrind --callgrind-out-file=/dev/null"
  g="env LD_PRELOAD=$LIB GUARD_RULESET=$T/ruleset.bin GUARD_SOCKET=$T/none.sock GUARD_SESSION=bench GUARD_AGENT=bench"
  count() { # command... ; prints the instruction count valgrind reports
    "$@" 2>&1 >/dev/null | awk '/Collected/ {print $4}'
  }
  for rt in python node; do
    if [ $rt = python ]; then C="$PY tests/programs/tls/bench_client.py $PORT $T/cert.pem"; else C="node tests/programs/tls/bench_client.mjs $PORT"; fi
    b1=$(count $vg $C ping 100); b3=$(count $vg $C ping 300)
    g1=$(count $g $vg $C ping 100); g3=$(count $g $vg $C ping 300)
    awk -v n="$rt" -v b1="$b1" -v b3="$b3" -v g1="$g1" -v g3="$g3" 'BEGIN {
      b = (b3 - b1) / 200; g = (g3 - g1) / 200;
      printf "%-8s per request: bare %.1fk guarded %.1fk instructions (%+.1fk, %+.2f%%)\n", n, b / 1000, g / 1000, (g - b) / 1000, (g - b) / b * 100 }'
  done
  exit 0
fi
for rt in python node; do
  if [ $rt = python ]; then C="$PY tests/programs/tls/bench_client.py $PORT $T/cert.pem"; else C="node tests/programs/tls/bench_client.mjs $PORT"; fi
  set -- $(pair upload $C upload "$MB"); row "$rt upload ${MB}MB" upload "$1" "$2"
  set -- $(pair ping $C ping "$N"); row "$rt $N requests" ping "$1" "$2"
done
