"""The agent writing each request in several TLS writes (head, then the body in 3 pieces), so
the gate must hold bytes: an allowed list must still arrive whole, and a denied delete must
fail at its last piece with none of its bytes sent.

Usage: agent_split.py PORT CAFILE. Prints `LIST OK <json>` / `DELETE OK|ERR ...`, and for the
delete how many pieces were accepted before the error (`pieces=K`).
"""

import http.client
import json
import ssl
import sys

port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)


def split_post(name, query, variables=None):
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=20)
    pieces = 0
    try:
        conn.putrequest("POST", "/graphql")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        pieces += 1
        third = len(body) // 3
        for part in (body[:third], body[third:2 * third], body[2 * third:]):
            conn.send(part)
            pieces += 1
        out = json.loads(conn.getresponse().read())
        print(name, "OK", json.dumps(out["data"]), f"pieces={pieces}", flush=True)
    except Exception as e:
        print(name, "ERR", type(e).__name__, f"pieces={pieces}", flush=True)
    finally:
        conn.close()


split_post("LIST", "query { volumes { id name } }")
split_post("DELETE", "mutation($id: ID!) { volumeDelete(volumeId: $id) }", {"id": "vol-prod-db"})
