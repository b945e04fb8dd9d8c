//! `guardctl watch`: a live console of every running session of this user: the audit event
//! stream (new lines of the session logs) and the asks waiting for an answer.
//!
//! On a terminal it is interactive (raw mode, no extra crate): ↑/↓ or j/k select an ask, `a`
//! approves it, `A` approves it and remembers the approval for the session, `d` denies it, `q`
//! quits. The selected ask shows the agent, the process (pid, exe, cwd), the exact command or
//! request, the rule and its reason. When stdin or stdout is not a terminal it prints the
//! stream instead, one line per event and per ask change (`ASK …`, `ANSWERED …`), for logs and
//! scripts. The broker applies the same refusal as for `approve`: a console started inside a
//! guarded tree sees nothing and can answer nothing.

use crate::cmd_approve::each_broker;
use crate::state::Dirs;
use clap::Args;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct WatchArgs {
    /// Stop after this many milliseconds (default: run until `q` or Ctrl-C).
    #[arg(long, value_name = "MS")]
    pub duration_ms: Option<u64>,
    /// Print the stream even on a terminal.
    #[arg(long)]
    pub plain: bool,
}

/// New lines appended to the session logs since the last call.
struct Tail {
    offsets: HashMap<PathBuf, u64>,
    dir: PathBuf,
}

impl Tail {
    fn new(dir: PathBuf) -> Tail {
        let mut t = Tail {
            offsets: HashMap::new(),
            dir,
        };
        // Start at the current end: the console shows what happens from now on.
        for (p, len) in t.files() {
            t.offsets.insert(p, len);
        }
        t
    }

    fn files(&self) -> Vec<(PathBuf, u64)> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.filter_map(|e| e.ok())
            .filter(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.ends_with(".jsonl") && n != "index.jsonl"
            })
            .filter_map(|e| Some((e.path(), e.metadata().ok()?.len())))
            .collect()
    }

    fn poll(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        for (p, len) in self.files() {
            let off = *self.offsets.get(&p).unwrap_or(&0);
            if len <= off {
                continue;
            }
            let Ok(mut f) = std::fs::File::open(&p) else {
                continue;
            };
            if f.seek(SeekFrom::Start(off)).is_err() {
                continue;
            }
            let mut buf = Vec::new();
            let _ = Read::by_ref(&mut f).take(len - off).read_to_end(&mut buf);
            // Only whole lines; a partial last line is read next time.
            let end = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            for line in buf[..end].split(|b| *b == b'\n') {
                if let Ok(v) = serde_json::from_slice::<Value>(line) {
                    out.push(v);
                }
            }
            self.offsets.insert(p, off + end as u64);
        }
        out.sort_by_key(|a| s(a, "ts"));
        out
    }
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => String::new(),
        Some(o) => o.to_string(),
    }
}

/// Control characters from the agent's data must not drive the terminal.
fn clean(x: &str) -> String {
    x.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn event_line(v: &Value) -> String {
    clean(&format!(
        "{} {} {} pid {} {} {} {} rule {}",
        s(v, "ts"),
        s(v, "session"),
        s(v, "agent"),
        s(v, "pid"),
        s(v, "decision"),
        s(v, "action"),
        s(v, "target"),
        if s(v, "rule").is_empty() {
            "-".into()
        } else {
            s(v, "rule")
        },
    ))
}

/// The pending asks of every broker, by id; `Err` carries a refusal.
fn pending() -> Result<BTreeMap<u64, Value>, String> {
    let mut out = BTreeMap::new();
    for (_, ok, body) in each_broker("pending", 0, false)? {
        if !ok {
            return Err(body);
        }
        for line in body.lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line)
                && let Some(id) = v.get("id").and_then(Value::as_u64)
            {
                out.insert(id, v);
            }
        }
    }
    Ok(out)
}

fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the fd.
    unsafe { libc::isatty(fd) == 1 }
}

pub fn run(args: WatchArgs) -> ExitCode {
    let dirs = match Dirs::resolve() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("guardctl watch: {e}");
            return ExitCode::from(2);
        }
    };
    let deadline = args
        .duration_ms
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    let tail = Tail::new(dirs.sessions());
    if !args.plain && is_tty(0) && is_tty(1) {
        interactive(tail, deadline)
    } else {
        plain(tail, deadline)
    }
}

fn plain(mut tail: Tail, deadline: Option<Instant>) -> ExitCode {
    let mut known: BTreeMap<u64, Value> = BTreeMap::new();
    let mut out = std::io::stdout();
    loop {
        for ev in tail.poll() {
            if writeln!(out, "EVENT {}", event_line(&ev)).is_err() {
                return ExitCode::SUCCESS;
            }
        }
        match pending() {
            Ok(now) => {
                for (id, v) in &now {
                    if !known.contains_key(id) {
                        let _ = writeln!(out, "ASK {}", crate::cmd_approve::human(&v.to_string()));
                    }
                }
                for id in known.keys() {
                    if !now.contains_key(id) {
                        let _ = writeln!(out, "ANSWERED {id}");
                    }
                }
                known = now;
            }
            Err(e) => {
                eprintln!("guardctl watch: {e}");
                return ExitCode::from(1);
            }
        }
        let _ = out.flush();
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Puts the terminal in raw mode and restores it on drop.
struct Raw(libc::termios);

impl Raw {
    fn enter() -> Option<Raw> {
        // SAFETY: termios is plain data filled by tcgetattr.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
            return None;
        }
        let saved = t;
        // SAFETY: cfmakeraw edits the struct in place.
        unsafe { libc::cfmakeraw(&mut t) };
        // Keep output post-processing, so "\n" still returns the carriage.
        t.c_oflag |= libc::OPOST;
        if unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) } != 0 {
            return None;
        }
        Some(Raw(saved))
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: restores the attributes saved by `enter`.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.0) };
        let _ = writeln!(std::io::stdout(), "\x1b[?25h");
    }
}

/// Waits up to `ms` for one key; `None` on timeout.
fn key(ms: i32) -> Option<Vec<u8>> {
    let mut pfd = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    if unsafe { libc::poll(&mut pfd, 1, ms) } <= 0 {
        return None;
    }
    let mut buf = [0u8; 16];
    let n = std::io::stdin().read(&mut buf).ok()?;
    Some(buf[..n].to_vec())
}

fn interactive(mut tail: Tail, deadline: Option<Instant>) -> ExitCode {
    let Some(_raw) = Raw::enter() else {
        return plain(tail, deadline);
    };
    let mut events: Vec<String> = Vec::new();
    let mut sel = 0usize;
    let mut status = String::from("a approve · A approve+remember · d deny · ↑/↓ select · q quit");
    loop {
        for ev in tail.poll() {
            events.push(event_line(&ev));
        }
        let keep = events.len().saturating_sub(200);
        events.drain(..keep);
        let asks: Vec<(u64, Value)> = match pending() {
            Ok(p) => p.into_iter().collect(),
            Err(e) => {
                status = clean(&e);
                Vec::new()
            }
        };
        sel = sel.min(asks.len().saturating_sub(1));
        draw(&asks, sel, &events, &status);
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return ExitCode::SUCCESS;
        }
        let Some(k) = key(300) else { continue };
        let chosen = asks.get(sel).map(|(id, _)| *id);
        match k.as_slice() {
            b"q" | b"\x03" | b"\x04" => return ExitCode::SUCCESS,
            b"j" | b"\x1b[B" => sel = (sel + 1).min(asks.len().saturating_sub(1)),
            b"k" | b"\x1b[A" => sel = sel.saturating_sub(1),
            b"a" | b"A" | b"d" => {
                if let Some(id) = chosen {
                    let op = if k == b"d" { "deny" } else { "approve" };
                    status = match each_broker(op, id, k == b"A") {
                        Ok(r) => r
                            .into_iter()
                            .find(|(_, ok, _)| *ok)
                            .map(|(_, _, b)| b)
                            .unwrap_or_else(|| format!("{op} {id}: no such pending ask")),
                        Err(e) => e,
                    };
                }
            }
            _ => {}
        }
    }
}

fn draw(asks: &[(u64, Value)], sel: usize, events: &[String], status: &str) {
    let (rows, cols) = term_size();
    let cut = |x: String| -> String { x.chars().take(cols.saturating_sub(1)).collect() };
    let mut o = String::new();
    o.push_str("\x1b[?25l\x1b[H\x1b[2J");
    o.push_str(&cut(format!(
        "guardctl watch — {} pending ask(s)",
        asks.len()
    )));
    o.push('\n');
    for (i, (id, v)) in asks.iter().enumerate().take(8) {
        let mark = if i == sel { "> " } else { "  " };
        o.push_str(&cut(clean(&format!(
            "{mark}{id}  {} {}  rule {}  waiting {} ms",
            s(v, "action"),
            s(v, "target"),
            s(v, "rule"),
            s(v, "age_ms")
        ))));
        o.push('\n');
    }
    if let Some((id, v)) = asks.get(sel) {
        o.push('\n');
        for line in [
            format!("ask {id} in session {}", s(v, "session")),
            format!("agent: {}", s(v, "agent")),
            format!(
                "process: pid {} (parent {}) {} [{}] in {}",
                s(v, "pid"),
                s(v, "ppid"),
                s(v, "exe"),
                s(v, "runtime"),
                s(v, "cwd")
            ),
            format!("{}: {}", s(v, "action"), s(v, "target")),
            format!("rule: {} — {}", s(v, "rule"), s(v, "reason")),
        ] {
            o.push_str(&cut(clean(&line)));
            o.push('\n');
        }
    }
    o.push_str("\nevents:\n");
    let used = o.lines().count() + 2;
    let room = rows.saturating_sub(used).max(1);
    for e in events.iter().skip(events.len().saturating_sub(room)) {
        o.push_str(&cut(e.clone()));
        o.push('\n');
    }
    o.push_str(&cut(clean(status)));
    let mut out = std::io::stdout();
    let _ = out.write_all(o.as_bytes());
    let _ = out.flush();
}

fn term_size() -> (usize, usize) {
    // SAFETY: winsize is plain data filled by the ioctl.
    let mut w: libc::winsize = unsafe { std::mem::zeroed() };
    if unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut w) } == 0 && w.ws_row > 0 && w.ws_col > 0 {
        (w.ws_row as usize, w.ws_col as usize)
    } else {
        (24, 80)
    }
}
