#!/bin/sh
# The agent, curl over HTTP/2: one curl process, two transfers on one connection (`--next`):
# an allowed query on stream 1, then a volumeDelete mutation on stream 3.
# Usage: agent_h2.sh URL CAFILE
# Prints curl's output and, per transfer, `= <http_code> <http_version> <num_connects>`; then
# `EXIT <curl status>` (55, send error, for a refused request). `--max-time` bounds a hang.
url=$1 ca=$2
list='{"query":"query { volumes { id name } }"}'
del='{"query":"mutation($id: ID!) { volumeDelete(volumeId: $id) }","variables":{"id":"vol-prod-db"}}'
w='\n= %{http_code} %{http_version} %{num_connects}\n'
curl -sS --max-time 5 --http2 --cacert "$ca" -H 'content-type: application/json' --data "$list" -w "$w" "$url" \
  --next --max-time 5 --http2 --cacert "$ca" -H 'content-type: application/json' --data "$del" -w "$w" "$url" 2>&1
echo "EXIT $?"
