// The agent over HTTP/2 (node:http2, one session): two allowed queries and then a
// volumeDelete mutation, each on its own stream of the same connection.
// Usage: node agent_h2.mjs URL   (CA from NODE_EXTRA_CA_CERTS)
// Prints `LIST OK <status> <body>`, `LIST2 OK ...`, then `DELETE OK ...` or `DELETE ERR <why>`
// (`DELETE ERR timeout` when no answer came within 5 s).
import http2 from "node:http2";

const url = new URL(process.argv[2]);
const session = http2.connect(url.origin);
session.on("error", () => {});

function post(body) {
  return new Promise((resolve, reject) => {
    const r = session.request({ ":method": "POST", ":path": url.pathname, "content-type": "application/json" });
    let status = 0, data = "";
    r.setEncoding("utf8");
    r.on("response", (h) => (status = h[":status"]));
    r.on("data", (c) => (data += c));
    r.on("end", () => (status ? resolve(`${status} ${data}`) : reject(new Error("no response"))));
    r.on("error", reject);
    r.on("close", () => { if (!status) reject(new Error(`stream closed, code ${r.rstCode}`)); });
    r.end(JSON.stringify(body));
  });
}

async function step(name, body) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("timeout")), 5000);
  });
  try {
    console.log(`${name} OK ${await Promise.race([post(body), timeout])}`);
  } catch (e) {
    console.log(`${name} ERR ${e.code || ""} ${e.message}`);
  } finally {
    clearTimeout(timer);
  }
}

await step("LIST", { query: "query { volumes { id name } }" });
await step("LIST2", { query: "{ volumes { id } }" });
await step("DELETE", { query: "mutation($id: ID!) { volumeDelete(volumeId: $id) }", variables: { id: "vol-prod-db" } });
session.destroy();
