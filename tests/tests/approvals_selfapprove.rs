//! The agent cannot approve its own asks: `guardctl approve` run from inside the guarded tree
//! (directly, from a double-forked orphan, with `env -i`, and by speaking the protocol itself
//! on the broker socket it found in `GUARD_SOCKET`) is refused, and the ask stays pending
//! until the human (outside) answers.

mod approvals_support;

use approvals_support::{Session, finish, id_of};
use guard_e2e::guardctl_path;
use std::time::{Duration, Instant};

/// Speaks the wire protocol by hand (frame version from argv[2]): Hello(Control), then ControlRequest{approve, id}.
/// postcard: enum variants and lengths are varints; u64 is a varint; bool one byte.
const PY_RAW_CLIENT: &str = r#"
import os, socket, struct, sys
def varint(n):
    out = b""
    while True:
        b = n & 0x7f; n >>= 7
        if n: out += bytes([b | 0x80])
        else: return out + bytes([b])
def frame(body):
    body = bytes([int(sys.argv[2])]) + body
    return struct.pack("<I", len(body)) + body
ident = int(sys.argv[1])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(os.environ["GUARD_SOCKET_COPY"])
s.sendall(frame(b"\x01\x01"))
s.sendall(frame(b"\x04" + varint(7) + b"approve" + varint(ident) + b"\x00"))
data = b""
while len(data) < 4 or len(data) < 4 + struct.unpack("<I", data[:4])[0]:
    chunk = s.recv(65536)
    if not chunk: break
    data += chunk
body = data[5:]
assert body[0] == 5, body
ok = body[1]
print("raw-client ok=%d %s" % (ok, body[3:].decode(errors="replace")))
"#;

#[test]
fn the_agent_cannot_approve_its_own_ask() {
    let s = Session::new("ap-self", "60s");
    let idfile = s.sb.workspace().join("id");
    let done = s.sb.workspace().join("attempts-done");
    let g = guardctl_path();
    let st = s.sb.state();
    let script = format!(
        "touch {f} && echo touched & \
         while [ ! -s {id} ]; do sleep 0.05; done; ID=$(cat {id}); \
         {g} approve $ID; echo direct=$?; \
         (setsid sh -c '{g} approve '$ID' > dbl.out 2>&1; echo dbl=$? >> dbl.out' &); \
         sleep 1; cat dbl.out; \
         env -i GUARD_STATE_DIR={st} {g} approve $ID; echo envi=$?; \
         GUARD_SOCKET_COPY=$GUARD_SOCKET python3 -c '{py}' $ID {ver}; \
         : > {done}; wait",
        f = s.ex("mine"),
        id = idfile.display(),
        g = g.display(),
        st = st.display(),
        py = PY_RAW_CLIENT,
        ver = guard_proto::wire::WIRE_VERSION,
        done = done.display(),
    );
    let child = s.spawn(&["bash", "-c", &script]);
    let p = s.wait_pending(1);
    let id = id_of(&p[0]);
    std::fs::write(&idfile, id.to_string()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    while !done.exists() {
        assert!(Instant::now() < deadline, "attempts never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every attempt failed: the ask is still pending, unanswered.
    let still = s.pending();
    assert_eq!(still.len(), 1, "{still:?}");
    assert_eq!(id_of(&still[0]), id);
    assert!(s.answer("deny", id).status.success());
    let (o, e, _) = finish(child);
    assert!(o.contains("direct=1"), "{o}\n{e}");
    assert!(o.contains("dbl=1"), "{o}\n{e}");
    assert!(o.contains("envi=1"), "{o}\n{e}");
    assert!(o.contains("raw-client ok=0 refused"), "{o}\n{e}");
    assert!(!o.contains("touched"), "{o}");
    assert!(e.matches("guardctl approve: refused").count() >= 2, "{e}");
    assert!(o.contains("refused"), "{o}");
}
