// TLS benchmark client (Node https, one keep-alive connection).
// Usage: node bench_client.mjs PORT upload MB | ping N   (CA from NODE_EXTRA_CA_CERTS)
// Prints `upload <MB> <seconds> <MB/s> <cpu seconds>` or `ping <N> <seconds> <us/request> <cpu
// seconds>`; cpu seconds: this process's user + system time over the timed part.
import https from "node:https";

const [port, mode, nArg] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4])];
const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });

function req(method, path, size) {
  return new Promise((resolve, reject) => {
    const r = https.request(
      { host: "localhost", port, method, path, agent, headers: size ? { "content-length": size } : {} },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve(Buffer.concat(chunks).toString()));
      },
    );
    r.on("error", reject);
    if (!size) return r.end();
    const block = Buffer.alloc(1 << 16);
    let left = size;
    const pump = () => {
      while (left > 0) {
        const k = Math.min(left, block.length);
        left -= k;
        if (!r.write(k === block.length ? block : block.subarray(0, k))) return r.once("drain", pump);
      }
      r.end();
    };
    pump();
  });
}

await req("GET", "/ping");
const t = process.hrtime.bigint();
const cpu0 = process.cpuUsage();
const cpu = () => { const u = process.cpuUsage(cpu0); return ((u.user + u.system) / 1e6).toFixed(4); };
if (mode === "upload") {
  const size = nArg * 1024 * 1024;
  const body = await req("POST", "/upload", size);
  if (!body.includes(String(size))) throw new Error(body);
  const dt = Number(process.hrtime.bigint() - t) / 1e9;
  console.log(`upload ${nArg} ${dt.toFixed(3)} ${(nArg / dt).toFixed(1)} ${cpu()}`);
} else {
  for (let i = 0; i < nArg; i++) await req("GET", "/ping");
  const dt = Number(process.hrtime.bigint() - t) / 1e9;
  console.log(`ping ${nArg} ${dt.toFixed(3)} ${((dt / nArg) * 1e6).toFixed(1)} ${cpu()}`);
}
agent.destroy();
