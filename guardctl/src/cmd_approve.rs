//! `guardctl pending`, `guardctl approve ID [--remember session]`, `guardctl deny ID`: the human
//! side of asks.
//!
//! Every broker of this user (each `guardctl run` session's, and `guardctl serve`'s) listens on
//! a socket in the socket directory; these commands connect to each one as a control client
//! (`Hello(Control)`), and the broker answers only if this process is outside every guarded
//! tree (see `broker::approvals`). Ask ids embed the broker's pid, so they are unique among
//! the brokers running at once.

use crate::state::Dirs;
use clap::Args;
use guard_proto::wire::{self, ControlRequest, FrameError, Message, Role};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args)]
pub struct PendingArgs {
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct AnswerArgs {
    /// The ask's id (from `guardctl pending`).
    pub id: u64,
    /// `session`: also approve later identical asks (same rule, action and target) of the session.
    #[arg(long, value_parser = ["session"])]
    pub remember: Option<String>,
}

/// The sockets of the running brokers.
pub fn broker_sockets() -> Result<Vec<PathBuf>, String> {
    let dirs = Dirs::resolve()?;
    let Ok(rd) = std::fs::read_dir(&dirs.run) else {
        return Ok(Vec::new());
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        .collect();
    v.sort();
    Ok(v)
}

/// One control connection to a broker.
pub struct Control {
    stream: UnixStream,
    buf: Vec<u8>,
}

impl Control {
    pub fn connect(path: &PathBuf) -> Option<Control> {
        let mut stream = UnixStream::connect(path).ok()?;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut c = Control {
            stream: stream.try_clone().ok()?,
            buf: Vec::new(),
        };
        let mut frame = [0u8; 16];
        let n = wire::encode_frame(&Message::Hello(Role::Control), &mut frame).ok()?;
        stream.write_all(&frame[..n]).ok()?;
        c.buf.reserve(4096);
        Some(c)
    }

    /// Sends one request and returns (ok, body).
    pub fn request(&mut self, op: &str, id: u64, remember: bool) -> Option<(bool, String)> {
        let mut frame = [0u8; 256];
        let req = ControlRequest { op, id, remember };
        let n = wire::encode_frame(&Message::ControlRequest(req), &mut frame).ok()?;
        self.stream.write_all(&frame[..n]).ok()?;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match wire::decode_frame(&self.buf) {
                Ok((Message::ControlReply(r), used)) => {
                    let out = (r.ok, r.body.to_string());
                    self.buf.drain(..used);
                    return Some(out);
                }
                Ok(_) => return None,
                Err(FrameError::Incomplete) => {}
                Err(_) => return None,
            }
            let n = self.stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Runs `op` against every broker: the (socket, ok, body) of each that answered.
pub fn each_broker(
    op: &str,
    id: u64,
    remember: bool,
) -> Result<Vec<(PathBuf, bool, String)>, String> {
    let mut out = Vec::new();
    for s in broker_sockets()? {
        if let Some(mut c) = Control::connect(&s)
            && let Some((ok, body)) = c.request(op, id, remember)
        {
            out.push((s, ok, body));
        }
    }
    Ok(out)
}

pub fn pending(args: PendingArgs) -> ExitCode {
    let answers = match each_broker("pending", 0, false) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("guardctl pending: {e}");
            return ExitCode::from(2);
        }
    };
    let mut refused = false;
    let mut stdout = std::io::stdout().lock();
    for (sock, ok, body) in answers {
        if !ok {
            eprintln!("guardctl pending: {}: {body}", sock.display());
            refused = true;
            continue;
        }
        for line in body.lines() {
            let _ = if args.json {
                writeln!(stdout, "{line}")
            } else {
                writeln!(stdout, "{}", human(line))
            };
        }
    }
    if refused {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// One pending ask as a line for people.
pub fn human(json: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return json.to_string();
    };
    let s = |k: &str| {
        v.get(k)
            .map(|x| match x {
                serde_json::Value::String(s) => s.clone(),
                o => o.to_string(),
            })
            .unwrap_or_default()
    };
    format!(
        "{}  {} {}  rule {}  agent {} pid {} ({})  waiting {} ms  session {}",
        s("id"),
        s("action"),
        s("target"),
        s("rule"),
        s("agent"),
        s("pid"),
        s("exe"),
        s("age_ms"),
        s("session"),
    )
}

pub fn answer(args: AnswerArgs, approve: bool) -> ExitCode {
    let name = if approve { "approve" } else { "deny" };
    let answers = match each_broker(name, args.id, args.remember.is_some()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("guardctl {name}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut done = false;
    let mut refusal = None;
    for (_, ok, body) in answers {
        if ok {
            println!("{body}");
            done = true;
        } else if body.starts_with("refused") {
            refusal = Some(body);
        }
    }
    if done {
        return ExitCode::SUCCESS;
    }
    match refusal {
        Some(r) => eprintln!("guardctl {name}: {r}"),
        None => eprintln!("guardctl {name}: no pending ask {}", args.id),
    }
    ExitCode::from(1)
}
