// The agent, Node fetch flavour (one keep-alive connection): lists volumes, then deletes one.
// Usage: node agent.mjs URL   (the CA comes from NODE_EXTRA_CA_CERTS)
const url = process.argv[2];

async function gql(query, variables = {}) {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  return (await r.json()).data;
}

async function step(name, query, variables) {
  try {
    console.log(name, "OK", JSON.stringify(await gql(query, variables)));
  } catch (e) {
    let err = e;
    while (err && err.cause) err = err.cause;
    console.log(name, "ERR", (err && (err.code || err.name)) || String(err));
  }
}

await step("LIST", "query { volumes { id name } }");
await step("DELETE", "mutation($id: ID!) { volumeDelete(volumeId: $id) }", { id: "vol-prod-db" });
await step("LIST2", "query { volumes { id name } }");
