#!/bin/sh
# TLS gate benchmark: a 100 MB upload and 1,000 small HTTPS requests over loopback TLS, bare and
# under libguard, in Python and Node. The policy has one http rule for the host, a GraphQL deny:
# SCOPE=host (default) gives it no `paths`, so every request to the host is reassembled and its
# body captured (an upload's first 1 MiB is held until it is judged) and evaluated; SCOPE=path
# limits it to `/graphql*` (as real packs do), so the benchmark's requests are judged on their
# heads and their bodies stream through unheld.
#
# Method (wall clock on a small, noisy VM swings by tens of percent from one run to the next,
# for bare and guarded alike, so one run of each proves nothing):
# - ROUNDS pairs of short runs per case, bare and guarded back to back, the order alternating
#   (bare first in odd rounds, guarded first in even ones) so drift and warm-up hit both alike;
# - the client pinned to one CPU and the server to another (taskset; CLIENT_CPU, SERVER_CPU), so
#   they never compete for a core and the scheduler does not move them mid-run;
# - per pair, the ratio guarded/bare of the upload throughput, and the difference guarded - bare
#   of the time per request; reported as min / median / max over the pairs. The median of
#   per-pair comparisons cancels the slow swings the pairs share; the spread shows how far to
#   trust it;
# - CPU time (user + system) of the client over the timed part, per pair, the same way: the cost
#   the guard adds to the process, which the scheduler's noise affects much less.
#
# Usage: bench/tls.sh                    (builds release libguard + guardctl first)
#        ROUNDS=31 MB=100 N=1000 SCOPE=host|path bench/tls.sh
#        CASES="python-ping node-ping" bench/tls.sh     (a subset of python-upload python-ping
#                                                         node-upload node-ping)
#        CALLGRIND=1 bench/tls.sh   instruction counts instead of wall clock (repeatable on a
#                                   loaded machine): per request = (count at 300 requests -
#                                   count at 100) / 200, bare and guarded, Python and Node.
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-31} MB=${MB:-100} N=${N:-1000}
CLIENT_CPU=${CLIENT_CPU:-0} SERVER_CPU=${SERVER_CPU:-1}
CASES=${CASES:-python-upload python-ping node-upload node-ping}
SCOPE=${SCOPE:-host}
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
if [ "$SCOPE" = path ]; then echo 'paths = ["/graphql*"]' >> "$T/policy.toml"; fi
GUARD_STATE_DIR=$T "$GUARDCTL" policy compile --policy "$T/policy.toml" -o "$T/ruleset.bin" >/dev/null
PIN_SERVER="" PIN_CLIENT=""
if command -v taskset >/dev/null && [ "$(nproc)" -gt 1 ]; then
  PIN_SERVER="taskset -c $SERVER_CPU" PIN_CLIENT="taskset -c $CLIENT_CPU"
fi
$PIN_SERVER python3 tests/programs/tls/server.py "$T" & SRV=$!
while [ ! -f "$T/port" ]; do sleep 0.1; done
PORT=$(cat "$T/port")
PY=$(python3 -c 'import sys; print(sys.executable)')
export NODE_EXTRA_CA_CERTS="$T/cert.pem"

client() { # runtime ; prints the client command line
  if [ "$1" = python ]; then echo "$PY tests/programs/tls/bench_client.py $PORT $T/cert.pem"; else echo "node tests/programs/tls/bench_client.mjs $PORT"; fi
}

if [ -n "${CALLGRIND:-}" ]; then
  vg="valgrind --tool=callgrind --callgrind-out-file=/dev/null"
  g="env LD_PRELOAD=$LIB GUARD_RULESET=$T/ruleset.bin GUARD_SOCKET=$T/none.sock GUARD_SESSION=bench GUARD_AGENT=bench"
  count() { # command... ; prints the instruction count valgrind reports
    "$@" 2>&1 >/dev/null | awk '/Collected/ {print $4}'
  }
  for rt in python node; do
    C=$(client $rt)
    b1=$(count $vg $C ping 100); b3=$(count $vg $C ping 300)
    g1=$(count $g $vg $C ping 100); g3=$(count $g $vg $C ping 300)
    awk -v n="$rt" -v b1="$b1" -v b3="$b3" -v g1="$g1" -v g3="$g3" 'BEGIN {
      b = (b3 - b1) / 200; g = (g3 - g1) / 200;
      printf "%-8s per request: bare %.1fk guarded %.1fk instructions (%+.1fk, %+.2f%%)\n", n, b / 1000, g / 1000, (g - b) / 1000, (g - b) / b * 100 }'
  done
  exit 0
fi

guarded() {
  env LD_PRELOAD="$LIB" GUARD_RULESET="$T/ruleset.bin" GUARD_SOCKET="$T/none.sock" \
      GUARD_SESSION=bench GUARD_AGENT=bench "$@"
}
one() { # bare|guarded command... ; prints the client's line (value cpu-seconds in fields 4, 5)
  if [ "$1" = bare ]; then shift; $PIN_CLIENT "$@"; else shift; guarded $PIN_CLIENT "$@"; fi
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); rounds $ROUNDS; rule scope $SCOPE; client on CPU $CLIENT_CPU, server on CPU $SERVER_CPU${PIN_CLIENT:+ (taskset)}"
for case in $CASES; do
  rt=${case%-*} kind=${case#*-}
  C=$(client "$rt")
  if [ "$kind" = upload ]; then arg=$MB; else arg=$N; fi
  one bare $C "$kind" "$arg" >/dev/null   # warm the page cache and the server
  i=1; : > "$T/pairs"
  while [ $i -le "$ROUNDS" ]; do
    if [ $((i % 2)) = 1 ]; then
      b=$(one bare $C "$kind" "$arg"); g=$(one guarded $C "$kind" "$arg")
    else
      g=$(one guarded $C "$kind" "$arg"); b=$(one bare $C "$kind" "$arg")
    fi
    echo "$b $g" | awk '{print $4, $5, $9, $10}' >> "$T/pairs"
    i=$((i + 1))
  done
  # Columns of pairs: bare value, bare cpu s, guarded value, guarded cpu s.
  awk -v name="$rt $kind" -v kind="$kind" -v n="$N" '
    function med(a, k,   i, j, t) { # sorts a[1..k] in place, returns the median
      for (i = 2; i <= k; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
    }
    { k++; b[k] = $1; g[k] = $3; bc[k] = $2; gc[k] = $4
      if (kind == "upload") { r[k] = ($3 / $1 - 1) * 100; c[k] = ($4 / $2 - 1) * 100 }
      else { r[k] = $3 - $1; c[k] = ($4 - $2) / n * 1e6 } }
    END {
      mb = med(b, k); mg = med(g, k); mr = med(r, k); lo = r[1]; hi = r[k]
      mbc = med(bc, k); mgc = med(gc, k); mc = med(c, k); clo = c[1]; chi = c[k]
      if (kind == "upload") {
        printf "%-14s median bare %7.1f MB/s guarded %7.1f MB/s | per pair guarded/bare throughput %+6.1f%% median [min %+6.1f%%, max %+6.1f%%]\n", name, mb, mg, mr, lo, hi
        printf "%-14s client CPU bare %.3f s guarded %.3f s | per pair %+6.1f%% median [min %+6.1f%%, max %+6.1f%%]\n", "", mbc, mgc, mc, clo, chi
      } else {
        printf "%-14s median bare %7.1f us/req guarded %7.1f us/req | per pair guarded-bare %+6.1f us median [min %+6.1f, max %+6.1f]\n", name, mb, mg, mr, lo, hi
        printf "%-14s client CPU bare %.1f us/req guarded %.1f us/req | per pair %+6.1f us median [min %+6.1f, max %+6.1f]\n", "", mbc / n * 1e6, mgc / n * 1e6, mc, clo, chi
      }
    }' "$T/pairs"
  # The verdict: a distribution-free 95% confidence interval for the median pair (bench/stats.py).
  "$PY" - "$rt $kind" "$kind" "$T/pairs" <<'PYEOF'
import sys
sys.path.insert(0, "bench")
from stats import median_ci
name, kind, path = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [list(map(float, l.split())) for l in open(path) if l.strip()]
if kind == "upload":
    m, lo, hi = median_ci([(g / b - 1) * 100 for b, _, g, _ in rows])
    v = "met" if lo >= -5 else ("not met" if hi < -5 else "undecided")
    print(f"{'':14} throughput guarded/bare {m:+.1f}% [95% CI {lo:+.1f}%, {hi:+.1f}%]: target within 5%: {v}")
else:
    m, lo, hi = median_ci([g - b for b, _, g, _ in rows])
    v = "met" if hi <= 50 else ("not met" if lo > 50 else "undecided")
    print(f"{'':14} added per request {m:+.1f} us [95% CI {lo:+.1f}, {hi:+.1f}]: target within 50 us: {v}")
PYEOF
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
