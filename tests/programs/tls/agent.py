"""The agent, Python urllib flavour: lists volumes, then deletes one.

Usage: agent.py URL CAFILE. Prints `LIST OK <n>` or `LIST ERR ...`, then `DELETE OK <data>` or
`DELETE ERR <exception type> <errno>`.
"""

import json
import ssl
import sys
import urllib.request

URL, CA = sys.argv[1], sys.argv[2]
CTX = ssl.create_default_context(cafile=CA)


def gql(query, variables=None):
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(URL, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=CTX, timeout=20) as r:
        return json.loads(r.read())


def step(name, query, variables=None):
    try:
        out = gql(query, variables)
        print(name, "OK", json.dumps(out["data"]), flush=True)
    except Exception as e:  # the gate's refusal surfaces here
        err = e
        while getattr(err, "reason", None) is not None and isinstance(err.reason, BaseException):
            err = err.reason
        print(name, "ERR", type(err).__name__, getattr(err, "errno", None), err, flush=True)


step("LIST", "query { volumes { id name } }")
step("DELETE", "mutation($id: ID!) { volumeDelete(volumeId: $id) }", {"id": "vol-prod-db"})
step("LIST2", "query { volumes { id name } }")
