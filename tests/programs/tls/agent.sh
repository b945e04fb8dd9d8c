#!/bin/sh
# The agent, curl flavour: lists volumes, then deletes one. Usage: agent.sh URL CAFILE
url=$1 ca=$2
step() {
  name=$1 body=$2
  if out=$(curl -sS --fail --cacert "$ca" -H 'content-type: application/json' --data "$body" "$url" 2>&1); then
    echo "$name OK $out"
  else
    echo "$name ERR curl $?: $out"
  fi
}
step LIST '{"query":"query { volumes { id name } }"}'
step DELETE '{"query":"mutation($id: ID!) { volumeDelete(volumeId: $id) }","variables":{"id":"vol-prod-db"}}'
step LIST2 '{"query":"query { volumes { id name } }"}'
