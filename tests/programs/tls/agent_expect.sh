#!/bin/sh
# The agent, curl with `Expect: 100-continue`: the head goes out alone and curl waits for the
# server's `100 Continue` (at most --expect100-timeout, 1 s by default) before the body.
# Usage: agent_expect.sh URL CAFILE. Prints `LIST OK <body> t=<seconds>` or
# `DELETE ERR curl N: ...`.
url=$1 ca=$2
step() {
  name=$1 body=$2
  if out=$(curl -sS --http1.1 --fail --cacert "$ca" -H 'content-type: application/json' \
      -H 'Expect: 100-continue' -w ' t=%{time_total}' --data "$body" "$url" 2>&1); then
    echo "$name OK $out"
  else
    echo "$name ERR curl $?: $out"
  fi
}
step LIST '{"query":"query { volumes { id name } }"}'
step DELETE '{"query":"mutation($id: ID!) { volumeDelete(volumeId: $id) }","variables":{"id":"vol-prod-db"}}'
