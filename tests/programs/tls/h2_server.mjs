// The TLS GraphQL test server over HTTP/2 (ALPN h2 only), for the HTTP/2 gate tests.
//
// Usage: node h2_server.mjs DIR
// Generates DIR/cert.pem and DIR/key.pem (self-signed, SAN localhost + 127.0.0.1) with the
// openssl CLI if absent, listens on an ephemeral port on 127.0.0.1, writes it to DIR/port, and
// after every request rewrites DIR/state.json: {"volumes": [...], "ops": [...]} (the top-level
// GraphQL field of every request received, in order) and appends one line per request to
// DIR/requests.log: `<session id> <stream id> <method> <:authority> <path> <body>`, so a test
// can tell which requests shared a connection. GET answers {"ok": true}.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http2 from "node:http2";
import path from "node:path";

const dir = process.argv[2];
const cert = path.join(dir, "cert.pem");
const key = path.join(dir, "key.pem");
if (!fs.existsSync(cert) || !fs.existsSync(key)) {
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
    "-out", cert, "-days", "1", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], { stdio: "ignore" });
}
const store = {
  volumes: [
    { id: "vol-prod-db", project: "p1", name: "postgres-data" },
    { id: "vol-prod-backups", project: "p1", name: "backups" },
  ],
  ops: [],
};
function save() {
  const tmp = path.join(dir, "state.json.tmp");
  fs.writeFileSync(tmp, JSON.stringify({ volumes: store.volumes, ops: store.ops }));
  fs.renameSync(tmp, path.join(dir, "state.json"));
}
const sessions = new WeakMap();
let nextSession = 1;

const server = http2.createSecureServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) });
server.on("stream", (stream, headers) => {
  const sess = stream.session;
  if (!sessions.has(sess)) sessions.set(sess, nextSession++);
  const chunks = [];
  stream.on("data", (c) => chunks.push(c));
  stream.on("end", () => {
    const body = Buffer.concat(chunks).toString();
    fs.appendFileSync(path.join(dir, "requests.log"),
      `${sessions.get(sess)} ${stream.id} ${headers[":method"]} ${headers[":authority"]} ${headers[":path"]} ${body.replace(/\n/g, " ")}\n`);
    const reply = (obj) => {
      stream.respond({ ":status": 200, "content-type": "application/json" });
      stream.end(JSON.stringify(obj));
    };
    if (headers[":method"] !== "POST") return reply({ ok: true });
    let q = "", variables = {};
    try {
      const j = JSON.parse(body);
      q = j.query || "";
      variables = j.variables || {};
    } catch {
      stream.respond({ ":status": 400 });
      return stream.end();
    }
    const m = /\{\s*(\w+)/.exec(q);
    const field = m ? m[1] : "";
    store.ops.push(field);
    let data = null;
    if (field === "volumes") data = { volumes: store.volumes };
    else if (field === "volumeDelete") {
      const before = store.volumes.length;
      store.volumes = store.volumes.filter((v) => v.id !== variables.id);
      data = { volumeDelete: store.volumes.length < before };
    }
    save();
    reply({ data });
  });
  stream.on("error", () => {});
});
server.on("sessionError", () => {});
server.listen(0, "127.0.0.1", () => {
  save();
  fs.writeFileSync(path.join(dir, "port.tmp"), String(server.address().port));
  fs.renameSync(path.join(dir, "port.tmp"), path.join(dir, "port"));
});
