// Performs one guarded operation per command-line op and prints "OK ..." or "ERR <code>", so
// the end-to-end tests can assert what Node really saw.
'use strict';
const fs = require('fs');
const cp = require('child_process');
const net = require('net');
const dgram = require('dgram');

const [op, ...args] = process.argv.slice(2);
const ok = (r) => console.log(r === undefined ? 'OK' : `OK ${r}`);
const err = (e) => console.log(`ERR ${e.code}`);

switch (op) {
  case 'read-sync':
    try { fs.readFileSync(args[0]); ok(); } catch (e) { err(e); }
    break;
  case 'read-cb':
    fs.readFile(args[0], (e) => (e ? err(e) : ok()));
    break;
  case 'read-promise':
    fs.promises.readFile(args[0]).then(() => ok(), err);
    break;
  case 'write-sync':
    try { fs.writeFileSync(args[0], 'x'); ok(); } catch (e) { err(e); }
    break;
  case 'spawn': {
    const r = cp.spawnSync(args[0], args.slice(1), { encoding: 'utf8' });
    if (r.error) err(r.error); else ok(r.status);
    break;
  }
  case 'spawn-empty-env': {
    const r = cp.spawnSync(args[0], args.slice(1), { env: {}, encoding: 'utf8' });
    if (r.error) err(r.error); else ok(r.stdout.replace(/\n/g, ';'));
    break;
  }
  case 'exec-shell': {
    try { ok(cp.execSync(args[0], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()); } catch (e) { console.log(`ERR status=${e.status} ${String(e.stderr).trim()}`); }
    break;
  }
  case 'connect': {
    const s = net.connect({ host: args[0], port: Number(args[1]) });
    s.on('connect', () => { ok(); s.destroy(); });
    s.on('error', err);
    break;
  }
  case 'udp-send': {
    const s = dgram.createSocket('udp4');
    s.send('ping', Number(args[1]), args[0], (e) => { if (e) err(e); else ok(); s.close(); });
    break;
  }
  default:
    console.error('unknown op', op);
    process.exit(2);
}
