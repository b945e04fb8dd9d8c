// POSTs each body argument in turn on one HTTP/2 session (node:http2), waiting for each answer.
// Usage: node agent_h2_echo.mjs URL BODY...   (CA from NODE_EXTRA_CA_CERTS)
// Prints `OK <status> <answer>` or `ERR <why>` per body; exits 1 after the first error.
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
    r.setTimeout(5000, () => reject(new Error("timeout")));
    r.end(body);
  });
}

let code = 0;
for (const body of process.argv.slice(3)) {
  try {
    console.log(`OK ${await post(body)}`);
  } catch (e) {
    console.log(`ERR ${e.code || ""} ${e.message}`);
    code = 1;
    break;
  }
}
session.destroy();
process.exit(code);
