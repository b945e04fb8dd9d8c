//! `guardctl log`: prints audit events of one session (`--session ID`, `--last`) or of every
//! recorded session, as aligned text or (`--json`) one JSON object per line, with filters.
//!
//! Targets and other strings come from guarded processes, so text output escapes control
//! characters: a file name must not be able to drive the reader's terminal.

use crate::broker::event::parse_rfc3339_ms;
use crate::broker::store::chain::Verifier;
use crate::broker::store::sqlite;
use crate::state::{Dirs, valid_session_id};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

// `eprintln!` that never panics: with `2>&1 | head` the pipe may be gone when the summary is
// written, and a panic (abort) there would replace the command's exit status.
macro_rules! eprintln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LogArgs {
    #[command(subcommand)]
    pub command: Option<LogCommand>,
    /// Session id (as printed by `guardctl run`).
    #[arg(long, conflicts_with = "last")]
    pub session: Option<String>,
    /// The most recent session. Without --session or --last: every recorded session.
    #[arg(long)]
    pub last: bool,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Only this action (read, write, delete, exec, connect, http, ...).
    #[arg(long)]
    pub action: Option<String>,
    /// Only this decision (allow, audit, deny, ask, redact).
    #[arg(long)]
    pub decision: Option<String>,
    /// Only events decided by this rule id.
    #[arg(long)]
    pub rule: Option<String>,
    /// Only events of this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// Only events at or after this RFC 3339 time (e.g. 2026-11-22T02:00:00Z).
    #[arg(long)]
    pub since: Option<String>,
    /// Only events before this RFC 3339 time.
    #[arg(long)]
    pub until: Option<String>,
    /// Read the JSON Lines files even when the SQLite index is available.
    #[arg(long, hide = true)]
    pub no_db: bool,
}

#[derive(Subcommand)]
pub enum LogCommand {
    /// Check the hash chain of a session's audit log; exit 1 at the first tampered record.
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Session id.
    #[arg(long, conflicts_with_all = ["last", "file"])]
    pub session: Option<String>,
    /// The most recent session (the default).
    #[arg(long, conflicts_with = "file")]
    pub last: bool,
    /// A JSON Lines audit file.
    pub file: Option<PathBuf>,
}

struct Filter {
    action: Option<String>,
    decision: Option<String>,
    rule: Option<String>,
    agent: Option<String>,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
}

impl Filter {
    fn keep(&self, ev: &Value) -> bool {
        let field_is = |key: &str, want: &Option<String>| {
            want.as_ref()
                .is_none_or(|w| ev.get(key).and_then(Value::as_str) == Some(w.as_str()))
        };
        field_is("action", &self.action)
            && field_is("decision", &self.decision)
            && field_is("rule", &self.rule)
            && field_is("agent", &self.agent)
            && self.since_ms.is_none_or(|since| {
                ev.get("ts")
                    .and_then(Value::as_str)
                    .and_then(parse_rfc3339_ms)
                    .is_some_and(|t| t >= since)
            })
            && self.until_ms.is_none_or(|until| {
                ev.get("ts")
                    .and_then(Value::as_str)
                    .and_then(parse_rfc3339_ms)
                    .is_some_and(|t| t < until)
            })
    }

    fn any(&self) -> bool {
        self.action.is_some()
            || self.decision.is_some()
            || self.rule.is_some()
            || self.agent.is_some()
            || self.since_ms.is_some()
            || self.until_ms.is_some()
    }
}

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("guardctl log: {msg}");
    ExitCode::from(code)
}

fn time_arg(name: &str, v: Option<&str>) -> Result<Option<i64>, ExitCode> {
    match v.map(|s| (s, parse_rfc3339_ms(s))) {
        Some((s, None)) => Err(fail(
            2,
            format_args!("--{name} {s:?} is not an RFC 3339 time (e.g. 2026-11-22T02:00:00Z)"),
        )),
        Some((_, t)) => Ok(t),
        None => Ok(None),
    }
}

pub fn run(args: LogArgs) -> ExitCode {
    let dirs = match Dirs::resolve() {
        Ok(d) => d,
        Err(e) => return fail(2, e),
    };
    if let Some(LogCommand::Verify(v)) = args.command {
        return verify(&dirs, v);
    }
    let since_ms = match time_arg("since", args.since.as_deref()) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let until_ms = match time_arg("until", args.until.as_deref()) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let filter = Filter {
        action: args.action,
        decision: args.decision,
        rule: args.rule,
        agent: args.agent,
        since_ms,
        until_ms,
    };
    let files = if let Some(id) = &args.session {
        if !valid_session_id(id) {
            return fail(2, format_args!("{id:?} is not a session id"));
        }
        let p = dirs.sessions().join(format!("{id}.jsonl"));
        if !p.is_file() {
            return fail(
                1,
                format_args!("no session {id} in {}", dirs.sessions().display()),
            );
        }
        vec![p]
    } else if args.last {
        match last_session(&dirs) {
            Some(p) => vec![p],
            None => {
                return fail(
                    1,
                    format_args!("no sessions recorded in {}", dirs.sessions().display()),
                );
            }
        }
    } else {
        all_sessions(&dirs)
    };

    let mut rows = Vec::new();
    let mut bad_lines = 0usize;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let db = dirs.sessions().join("audit.db");
    if filter.any() && !args.no_db && db.is_file() {
        let sessions: Vec<String> = files
            .iter()
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect();
        if let Ok(found) = query_db(&db, &sessions, &filter) {
            for ev in &found {
                if args.json {
                    if writeln!(out, "{ev}").is_err() {
                        return ExitCode::SUCCESS;
                    }
                } else {
                    rows.push(text_row(ev));
                }
            }
            return finish_output(&mut out, &rows, args.json, files.len() > 1, 0);
        }
        // An unreadable or older index: fall back to the files.
    }
    for file in &files {
        let Ok(f) = std::fs::File::open(file) else {
            continue;
        };
        for line in BufReader::new(f).split(b'\n') {
            let Ok(line) = line else { break };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Ok(ev) = serde_json::from_slice::<Value>(&line) else {
                // A line cut short by a crash, or a file edited by hand.
                bad_lines += 1;
                continue;
            };
            if !ev.is_object() || !filter.keep(&ev) {
                continue;
            }
            if args.json {
                // The stored line as is: field order and content exactly as the broker wrote.
                if out
                    .write_all(&line)
                    .and_then(|()| out.write_all(b"\n"))
                    .is_err()
                {
                    return ExitCode::SUCCESS; // reader went away (e.g. `| head`)
                }
            } else {
                rows.push(text_row(&ev));
            }
        }
    }
    finish_output(&mut out, &rows, args.json, files.len() > 1, bad_lines)
}

fn finish_output(
    out: &mut impl Write,
    rows: &[[String; 8]],
    json: bool,
    many: bool,
    bad_lines: usize,
) -> ExitCode {
    if !json {
        if rows.is_empty() {
            eprintln!("guardctl log: no matching events");
        } else if print_table(out, rows, many).is_err() {
            return ExitCode::SUCCESS;
        }
    }
    let _ = out.flush();
    if bad_lines > 0 {
        eprintln!("guardctl log: skipped {bad_lines} unreadable line(s)");
    }
    ExitCode::SUCCESS
}

/// Matching events of `sessions` from the SQLite index, in log order, as JSON objects with the
/// record's fields. Errs when the index cannot answer (then the files are read instead).
fn query_db(
    db: &std::path::Path,
    sessions: &[String],
    f: &Filter,
) -> Result<Vec<Value>, rusqlite::Error> {
    use rusqlite::types::Value as Sql;
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Only sessions the index holds completely can be answered from it.
    for s in sessions {
        let n: Option<i64> = conn
            .query_row(
                "SELECT records FROM sessions WHERE session = ?1",
                [s],
                |r| r.get(0),
            )
            .ok();
        if n.is_none() {
            return Err(rusqlite::Error::QueryReturnedNoRows);
        }
    }
    let mut sql = String::from(
        "SELECT ts, session, agent, model, host, pid, ppid, exe, runtime, cwd, action, target,
         decision, rule, reason, tags, enforce_decision, dropped_before, seq, hash,
         approval_id, approval_answer, approval_who, approval_latency_ms,
         approval_uid, approval_user, delivery
         FROM events WHERE 1=1",
    );
    let mut params: Vec<Sql> = Vec::new();
    let mut eq = |col: &str, v: &Option<String>, sql: &mut String| {
        if let Some(v) = v {
            params.push(Sql::Text(v.clone()));
            sql.push_str(&format!(" AND {col} = ?{}", params.len()));
        }
    };
    eq("action", &f.action, &mut sql);
    eq("decision", &f.decision, &mut sql);
    eq("rule", &f.rule, &mut sql);
    eq("agent", &f.agent, &mut sql);
    if let Some(t) = f.since_ms {
        params.push(Sql::Integer(t));
        sql.push_str(&format!(" AND ts_ms >= ?{}", params.len()));
    }
    if let Some(t) = f.until_ms {
        params.push(Sql::Integer(t));
        sql.push_str(&format!(" AND ts_ms < ?{}", params.len()));
    }
    sql.push_str(" AND session IN (SELECT value FROM json_each(?");
    sql.push_str(&(params.len() + 1).to_string());
    sql.push_str(")) ORDER BY session, seq");
    params.push(Sql::Text(
        serde_json::to_string(sessions).unwrap_or_else(|_| "[]".into()),
    ));
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map(rusqlite::params_from_iter(params), |r| {
        let text = |i: usize| r.get::<_, Option<String>>(i);
        let tags: Value =
            serde_json::from_str(&text(15)?.unwrap_or_default()).unwrap_or(Value::Array(vec![]));
        let mut m = serde_json::Map::new();
        for (i, k) in ["ts", "session", "agent", "model", "host"]
            .iter()
            .enumerate()
        {
            m.insert(
                (*k).into(),
                text(i)?.map(Value::from).unwrap_or(Value::Null),
            );
        }
        m.insert("pid".into(), Value::from(r.get::<_, i64>(5)?));
        m.insert("ppid".into(), Value::from(r.get::<_, i64>(6)?));
        for (i, k) in [
            (7, "exe"),
            (8, "runtime"),
            (9, "cwd"),
            (10, "action"),
            (11, "target"),
            (12, "decision"),
            (13, "rule"),
            (14, "reason"),
        ] {
            m.insert(k.into(), text(i)?.map(Value::from).unwrap_or(Value::Null));
        }
        m.insert("tags".into(), tags);
        if let Some(e) = text(16)? {
            m.insert("enforce_decision".into(), Value::from(e));
        }
        let dropped: i64 = r.get(17)?;
        if dropped != 0 {
            m.insert("dropped_before".into(), Value::from(dropped));
        }
        // Same shape as the JSON Lines record: present only on events that concluded an ask.
        if let Some(answer) = text(21)? {
            let mut a = serde_json::json!({
                "id": r.get::<_, Option<i64>>(20)?.unwrap_or(0),
                "answer": answer,
                "who": text(22)?.unwrap_or_default(),
                "latency_ms": r.get::<_, Option<i64>>(23)?.unwrap_or(0),
            });
            if let Some(uid) = r.get::<_, Option<i64>>(24)? {
                a["uid"] = Value::from(uid);
                a["user"] = Value::from(text(25)?.unwrap_or_default());
            }
            m.insert("approval".into(), a);
        }
        if let Some(d) = text(26)? {
            m.insert("delivery".into(), Value::from(d));
        }
        m.insert("seq".into(), Value::from(r.get::<_, i64>(18)?));
        m.insert(
            "hash".into(),
            text(19)?.map(Value::from).unwrap_or(Value::Null),
        );
        Ok(Value::Object(m))
    })?;
    rows.collect()
}

/// `guardctl log verify`: walks the chain; names the first bad line.
fn verify(dirs: &Dirs, args: VerifyArgs) -> ExitCode {
    let (path, session) = if let Some(file) = args.file {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| valid_session_id(s));
        (file, stem)
    } else if let Some(id) = args.session {
        if !valid_session_id(&id) {
            return fail(2, format_args!("{id:?} is not a session id"));
        }
        (dirs.sessions().join(format!("{id}.jsonl")), Some(id))
    } else {
        match last_session(dirs) {
            Some(p) => {
                let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
                (p, stem)
            }
            None => {
                return fail(
                    2,
                    format_args!("no sessions recorded in {}", dirs.sessions().display()),
                );
            }
        }
    };
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) => return fail(2, format_args!("cannot read {}: {e}", path.display())),
    };
    let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    // The chain starts from the session id: the file name's, else the first record's.
    let session = session.or_else(|| {
        let v: Value = serde_json::from_slice(lines.first()?).ok()?;
        Some(v.get("session")?.as_str()?.to_string())
    });
    let Some(session) = session else {
        return fail(
            1,
            format_args!("{}: no session id to start the chain from", path.display()),
        );
    };
    let mut chain = Verifier::new(&session);
    for (i, line) in lines.iter().enumerate() {
        if let Err(e) = chain.next(line) {
            println!("{}: TAMPERED at line {}: {e}", path.display(), i + 1);
            return ExitCode::from(1);
        }
    }
    let (records, head) = chain.head();
    // A chain cannot show records cut off its end; the database holds the head it wrote.
    let db = dirs.sessions().join("audit.db");
    if db.is_file()
        && let Ok(conn) = sqlite::connect_read(&db)
        && let Ok((n, h)) = conn.query_row(
            "SELECT records, last_hash FROM sessions WHERE session = ?1",
            [&session],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )
        && (n as u64 > records || (n as u64 == records && h != head))
    {
        println!(
            "{}: TAMPERED: the file ends at record {records} but the audit database recorded {n} (records removed from the end)",
            path.display()
        );
        return ExitCode::from(1);
    }
    println!("{}: OK, {records} records, chain intact", path.display());
    ExitCode::SUCCESS
}

/// The log of the session started last according to the index, else the newest log file.
fn last_session(dirs: &Dirs) -> Option<PathBuf> {
    if let Ok(f) = std::fs::File::open(dirs.index()) {
        let mut last = None;
        for line in BufReader::new(f).lines().map_while(Result::ok) {
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if v.get("event").and_then(Value::as_str) != Some("start") {
                continue;
            }
            if let Some(id) = v
                .get("session")
                .and_then(Value::as_str)
                .filter(|id| valid_session_id(id))
            {
                let p = dirs.sessions().join(format!("{id}.jsonl"));
                if p.is_file() {
                    last = Some(p);
                }
            }
        }
        if last.is_some() {
            return last;
        }
    }
    all_sessions(dirs).pop()
}

/// Every session log, oldest first (ids start with a UTC timestamp, so name order is time order).
fn all_sessions(dirs: &Dirs) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dirs.sessions())
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "jsonl")
                && p.file_name().is_some_and(|n| n != "index.jsonl")
        })
        .collect();
    v.sort();
    v
}

const HEADER: [&str; 8] = [
    "SESSION", "TIME", "PID", "RUNTIME", "DECISION", "ACTION", "RULE", "TARGET",
];

fn text_row(ev: &Value) -> [String; 8] {
    let s = |k: &str| {
        ev.get(k)
            .and_then(Value::as_str)
            .map(clean)
            .unwrap_or_default()
    };
    let n = |k: &str| {
        ev.get(k)
            .and_then(Value::as_u64)
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    // `2026-11-22T02:35:12.123Z` -> `2026-11-22 02:35:12.123`
    let ts = s("ts")
        .replacen('T', " ", 1)
        .trim_end_matches('Z')
        .to_string();
    let mut decision = s("decision");
    if let Some(enf) = ev.get("enforce_decision").and_then(Value::as_str) {
        decision = format!("{decision} (enforce: {})", clean(enf));
    }
    let rule = ev
        .get("rule")
        .and_then(Value::as_str)
        .map(clean)
        .unwrap_or_else(|| "-".into());
    [
        s("session"),
        ts,
        n("pid"),
        s("runtime"),
        decision,
        s("action"),
        rule,
        s("target"),
    ]
}

/// Aligned columns; the SESSION column only when events of several sessions are shown.
fn print_table(out: &mut impl Write, rows: &[[String; 8]], with_session: bool) -> io::Result<()> {
    let first = usize::from(!with_session);
    let mut widths = HEADER.map(|h| h.chars().count());
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut line = |cells: &[&str]| -> io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate().skip(first) {
            s.push_str(c);
            if i + 1 < cells.len() {
                s.extend(std::iter::repeat_n(' ', widths[i] - c.chars().count() + 2));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(&HEADER)?;
    for r in rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&cells)?;
    }
    Ok(())
}

/// Escapes control characters (ANSI escapes, newlines) so a hostile name cannot spoof output.
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rows_escape_control_characters_and_show_null_rules() {
        let ev: Value = serde_json::json!({
            "ts": "2026-11-22T02:35:12.123Z", "pid": 7, "runtime": "native", "decision": "allow",
            "enforce_decision": "deny", "action": "read", "rule": null, "target": "/tmp/\u{1b}[2Jx\n"
        });
        let r = text_row(&ev);
        assert_eq!(r[1], "2026-11-22 02:35:12.123");
        assert_eq!(r[4], "allow (enforce: deny)");
        assert_eq!(r[6], "-");
        assert_eq!(r[7], "/tmp/\\u{1b}[2Jx\\n");
        let mut out = Vec::new();
        print_table(&mut out, std::slice::from_ref(&r), false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("TIME "), "{text}");
        let mut out = Vec::new();
        print_table(&mut out, &[r], true).unwrap();
        assert!(String::from_utf8(out).unwrap().starts_with("SESSION "));
    }

    #[test]
    fn filters_combine() {
        let ev: Value = serde_json::json!({"ts": "2026-11-22T02:00:00.000Z", "action": "read", "decision": "deny", "rule": "r", "agent": "a"});
        let f = |action: Option<&str>, since: Option<&str>| Filter {
            action: action.map(String::from),
            decision: Some("deny".into()),
            rule: None,
            agent: Some("a".into()),
            since_ms: since.and_then(parse_rfc3339_ms),
            until_ms: parse_rfc3339_ms("2026-11-22T02:00:01Z"),
        };
        assert!(f(Some("read"), Some("2026-11-22T01:59:59Z")).keep(&ev));
        assert!(!f(Some("exec"), None).keep(&ev));
        assert!(!f(None, Some("2026-11-22T02:00:01Z")).keep(&ev));
        let late: Value = serde_json::json!({"ts": "2026-11-22T02:00:01.000Z", "action": "read", "decision": "deny", "agent": "a"});
        assert!(!f(None, None).keep(&late), "--until is exclusive");
    }
}
