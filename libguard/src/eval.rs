//! From a classified action to a decision: evaluation against the mapped ruleset (or the
//! degraded-mode table when it could not be loaded), monitor mode, the audit event, and the
//! one-line explanation an exec denial writes to the child's stderr.
//!
//! Decisions as the program sees them today:
//! - `deny` → the call fails with `EACCES`;
//! - `ask` → the call waits for the broker's answer (`ask.rs`): approved → allowed; denied,
//!   timed out or no broker → `EACCES`; the event's reason says which;
//! - `redact` → on a read-only open, the program gets a sealed redacted copy (`redact.rs`, which
//!   records the event with detector counts); a write-class open of such a path is refused;
//! - `audit` → allowed and recorded; `allow` → allowed, nothing sent (hot path);
//! - monitor mode → nothing is blocked; `decision` says what happened (`allow`/`audit`) and
//!   `enforce_decision` what enforce mode would have done.
//!
//! Every exec is recorded, whatever its decision (cheap, and the most valuable trail).

use crate::broker;
use crate::path::{self, PathBuf};
use crate::raw::{self, Buf};
use crate::state;
use core::ffi::c_char;
use core::net::IpAddr;
use core::sync::atomic::{AtomicU32, Ordering};
use guard_proto::wire::{Event, Message, encode_frame};
use guard_proto::{Action, Argv, Context, Decision, EnvLookup, FileAccess};

/// Rule name reported for decisions taken because the ruleset is unusable.
pub const DEGRADED_RULE: &str = "ruleset-unavailable";

#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    /// What the policy decided (enforce semantics).
    pub enforce: Decision,
    /// What actually happens.
    pub effective: Decision,
    pub rule: Option<u32>,
    pub degraded: bool,
    /// How the ask was answered, once `resolve_ask` asked.
    pub asked: Option<crate::ask::Asked>,
    /// A decision the library takes on its own, whatever the ruleset: (rule, reason).
    pub builtin: Option<(&'static str, &'static str)>,
}

impl Outcome {
    pub fn blocks(&self) -> bool {
        self.effective == Decision::Deny
    }

    pub fn from_verdict(
        enforce: Decision,
        rule: Option<u32>,
        degraded: bool,
        monitor: bool,
    ) -> Self {
        let effective = if monitor {
            if enforce >= Decision::Redact {
                Decision::Allow
            } else {
                enforce
            }
        } else {
            match enforce {
                Decision::Ask => Decision::Deny,
                d => d,
            }
        };
        Outcome {
            enforce,
            effective,
            rule,
            degraded,
            asked: None,
            builtin: None,
        }
    }
}

/// A C environment block as the evaluator's `EnvLookup`.
pub struct CEnv(pub *const *const c_char);

impl EnvLookup for CEnv {
    fn get(&self, key: &[u8]) -> Option<&[u8]> {
        // SAFETY: a NULL-terminated C environment block (or NULL).
        unsafe { state::env_lookup(self.0, key) }
    }
}

/// A C argv (`char *const argv[]`) as the evaluator's `Argv`.
pub struct CArgv {
    pub p: *const *const c_char,
    pub n: usize,
}

impl CArgv {
    /// # Safety
    /// `p` is NULL or a NULL-terminated array of C strings.
    pub unsafe fn new(p: *const *const c_char) -> CArgv {
        let mut n = 0usize;
        if !p.is_null() {
            while n < 1 << 20 && !unsafe { *p.add(n) }.is_null() {
                n += 1;
            }
        }
        CArgv { p, n }
    }
}

impl Argv for CArgv {
    fn len(&self) -> usize {
        self.n
    }
    fn arg(&self, i: usize) -> &[u8] {
        if i >= self.n {
            return b"";
        }
        // SAFETY: i < n, all entries before the terminator are valid C strings.
        unsafe { raw::cstr(*self.p.add(i)) }
    }
}

/// A slice argv.
pub struct SliceArgv<'a, const N: usize> {
    pub args: [&'a [u8]; N],
    pub n: usize,
}

impl<const N: usize> Argv for SliceArgv<'_, N> {
    fn len(&self) -> usize {
        self.n
    }
    fn arg(&self, i: usize) -> &[u8] {
        if i < self.n {
            self.args.get(i).copied().unwrap_or(b"")
        } else {
            b""
        }
    }
}

static NOTED_PID: AtomicU32 = AtomicU32::new(0);

/// Writes the degraded-mode diagnostic once per process.
fn note_degraded() {
    let pid = raw::getpid() as u32;
    if NOTED_PID.swap(pid, Ordering::AcqRel) == pid {
        return;
    }
    let c = state::cfg();
    let mut m = Buf::<1024>::new();
    m.push_trunc(b"guard: ruleset ");
    m.push_trunc(c.ruleset_path.as_bytes());
    m.push_trunc(b" unusable (");
    m.push_trunc(c.ruleset_error.as_bytes());
    m.push_trunc(b"): failing closed, denying exec, connect, writes and deletes\n");
    raw::write_all(2, m.as_bytes());
}

/// Writes under these stay possible in degraded mode: terminals, the null device, inherited
/// pipes reached through `/dev/fd`; the runtime and shells need them to report anything.
fn degraded_write_ok(p: &[u8]) -> bool {
    [
        &b"/dev/null"[..],
        b"/dev/zero",
        b"/dev/full",
        b"/dev/tty",
        b"/dev/stdout",
        b"/dev/stderr",
        b"/dev/stdin",
        b"/dev/urandom",
        b"/dev/random",
    ]
    .contains(&p)
        || p.starts_with(b"/dev/pts/")
        || p.starts_with(b"/dev/fd/")
        || p.starts_with(b"/proc/self/fd/")
}

fn degraded_decision(action: &Action<'_>) -> Decision {
    note_degraded();
    match action {
        Action::File {
            access: FileAccess::Read,
            ..
        } => Decision::Allow,
        Action::File { path, .. } if degraded_write_ok(path) => Decision::Allow,
        _ => Decision::Deny,
    }
}

/// Evaluates one action under the process's ruleset (or the degraded table).
pub fn evaluate(action: &Action<'_>, ctx: &Context<'_>) -> Outcome {
    match state::ruleset() {
        Some(rs) => {
            let v = rs.evaluate(action, ctx);
            Outcome::from_verdict(v.decision, v.rule, false, rs.monitor_mode())
        }
        None => Outcome::from_verdict(degraded_decision(action), None, true, false),
    }
}

/// The stricter of two outcomes (ties keep the first).
pub fn stricter(a: (Outcome, usize), b: (Outcome, usize)) -> (Outcome, usize) {
    if b.0.enforce > a.0.enforce { b } else { a }
}

fn rule_texts(o: &Outcome) -> (&'static str, &'static str, &'static str) {
    if let Some((rule, reason)) = o.builtin {
        return (rule, reason, "guard-integrity");
    }
    if o.degraded {
        return (
            DEGRADED_RULE,
            raw::utf8_prefix(state::cfg().ruleset_error.as_bytes()),
            "",
        );
    }
    match (state::ruleset(), o.rule) {
        (Some(rs), Some(i)) => match rs.rule(i) {
            Some(info) => (info.id, info.reason, info.tags),
            None => ("", "", ""),
        },
        _ => ("", "", ""),
    }
}

/// Largest target carried in an event (bigger ones are cut; frames must fit the stack buffer).
const TARGET_MAX: usize = 2048;

/// Builds and sends the audit event for `o`. `one_shot`: use a private connection (exec paths,
/// which may run in a vfork child).
/// `why` stands in for the reason when no rule supplied one (e.g. why an exec is unguardable).
pub fn emit(action: &str, target: &[u8], o: &Outcome, one_shot: bool, why: &str) {
    let c = state::cfg();
    let (rule, reason, tags) = rule_texts(o);
    let reason = if reason.is_empty() { why } else { reason };
    let mut cwd = PathBuf::new();
    if !path::getcwd(&mut cwd) {
        cwd.clear();
    }
    let mut reason_buf = Buf::<1024>::new();
    let reason = match o.enforce {
        Decision::Ask => {
            reason_buf.push_trunc(b"approval: ");
            reason_buf.push_trunc(match o.asked {
                Some(a) => a.answer.as_str().as_bytes(),
                None => b"not asked (monitor mode)",
            });
            reason_buf.push_trunc(b": ");
            reason_buf.push_trunc(reason.as_bytes());
            raw::utf8_prefix(reason_buf.as_bytes())
        }
        // The redaction note (detector ids and counts, never a secret) leads; the rule's reason
        // follows.
        Decision::Redact if !why.is_empty() && why.as_ptr() != reason.as_ptr() => {
            reason_buf.push_trunc(why.as_bytes());
            reason_buf.push_trunc(b" (");
            reason_buf.push_trunc(reason.as_bytes());
            reason_buf.push_trunc(b")");
            raw::utf8_prefix(reason_buf.as_bytes())
        }
        _ => reason,
    };
    let monitor = state::ruleset().map(|r| r.monitor_mode()).unwrap_or(false);
    let dropped = broker::take_dropped();
    let target = raw::utf8_prefix(target.get(..target.len().min(TARGET_MAX)).unwrap_or(&[]));
    let ev = Event {
        session: raw::utf8_prefix(c.session.as_bytes()),
        pid: raw::getpid() as u32,
        ppid: raw::getppid() as u32,
        exe: raw::utf8_prefix(c.exe.as_bytes()),
        runtime: c.runtime,
        cwd: raw::utf8_prefix(cwd.as_bytes()),
        action,
        target,
        decision: o.effective.as_str(),
        enforce_decision: if monitor {
            o.enforce.as_str()
        } else {
            o.effective.as_str()
        },
        rule,
        reason,
        tags,
        dropped_before: dropped,
        approval_id: o.asked.map(|a| a.id).unwrap_or(0),
        approval_answer: o.asked.map(|a| a.answer.word()).unwrap_or(""),
        approval_who: o.asked.as_ref().map(|a| a.who()).unwrap_or(""),
        approval_latency_ms: o.asked.map(|a| a.latency_ms).unwrap_or(0),
    };
    let mut frame = [0u8; broker::FRAME_MAX];
    let sent = match encode_frame(&Message::Event(ev), &mut frame) {
        Ok(n) => broker::deliver(frame.get(..n).unwrap_or(&[]), one_shot),
        Err(_) => false,
    };
    if !sent {
        broker::lost(dropped.saturating_add(1));
    }
}

/// `guard: exec of git denied by rule git-force-push: <reason>` on the caller's stderr.
pub fn explain_exec_denial(program: &[u8], o: &Outcome) {
    let (rule, reason, _) = rule_texts(o);
    let base = program.rsplit(|c| *c == b'/').next().unwrap_or(program);
    let mut m = Buf::<2048>::new();
    m.push_trunc(b"guard: exec of ");
    m.push_trunc(base);
    m.push_trunc(b" denied by rule ");
    m.push_trunc(if rule.is_empty() {
        b"(policy default)"
    } else {
        rule.as_bytes()
    });
    if let Some(a) = o.asked {
        m.push_trunc(b" (needs approval: ");
        m.push_trunc(a.answer.as_str().as_bytes());
        m.push_trunc(b")");
    }
    m.push_trunc(b": ");
    m.push_trunc(reason.as_bytes());
    m.truncate(2046);
    m.push(b"\n");
    raw::write_all(2, m.as_bytes());
}

/// Holds an `ask` outcome until the broker answers (see `ask.rs`), then makes it an allow or a
/// deny. Monitor mode and degraded mode never ask (the first never blocks, the second has no
/// rule to show). Safe in a vfork child: stack only.
pub fn resolve_ask(o: &mut Outcome, action: &str, target: &[u8]) {
    if o.enforce != Decision::Ask || o.effective != Decision::Deny || o.degraded {
        return;
    }
    let Some(rs) = state::ruleset() else {
        return;
    };
    let c = state::cfg();
    let (rule, reason, _) = rule_texts(o);
    let mut cwd = PathBuf::new();
    if !path::getcwd(&mut cwd) {
        cwd.clear();
    }
    let target = raw::utf8_prefix(target.get(..target.len().min(TARGET_MAX)).unwrap_or(&[]));
    let a = crate::ask::ask(
        raw::utf8_prefix(c.session.as_bytes()),
        action,
        target,
        rule,
        reason,
        raw::utf8_prefix(c.exe.as_bytes()),
        c.runtime,
        raw::utf8_prefix(cwd.as_bytes()),
        rs.ask_timeout_ms(),
    );
    let allows = a.answer.allows();
    o.asked = Some(a);
    if allows {
        o.effective = Decision::Allow;
    }
}

/// The evaluation context of this process (current environment, cwd, agent).
pub fn with_ctx<R>(env: *const *const c_char, f: impl FnOnce(&Context<'_>) -> R) -> R {
    let mut cwd = PathBuf::new();
    if !path::getcwd(&mut cwd) {
        cwd.clear();
    }
    let envl = CEnv(env);
    let ctx = Context {
        env: &envl,
        cwd: cwd.as_bytes(),
        agent: state::cfg().agent.as_bytes(),
    };
    f(&ctx)
}

/// Evaluates `access` on each available name; the strictest outcome and its index win.
fn evaluate_names(
    names: &[(&[u8], bool)],
    access: FileAccess,
    cwd: &[u8],
) -> Option<(Outcome, usize)> {
    let envl = CEnv(state::environ_ptr());
    let ctx = Context {
        env: &envl,
        cwd,
        agent: state::cfg().agent.as_bytes(),
    };
    let mut best: Option<(Outcome, usize)> = None;
    for (i, (name, ok)) in names.iter().enumerate() {
        if !ok {
            continue;
        }
        let o = evaluate(&Action::File { path: name, access }, &ctx);
        best = Some(match best {
            None => (o, i),
            Some(b) => stricter(b, (o, i)),
        });
    }
    best
}

/// Records a file outcome; returns whether the call must fail.
fn conclude(
    best: Option<(Outcome, usize)>,
    names: &[(&[u8], bool)],
    p: &[u8],
    access: FileAccess,
) -> bool {
    let (mut o, i) = match best {
        Some(b) => b,
        None => {
            // No name could be computed (over-long path, unreachable cwd): reads pass,
            // anything else fails closed.
            let d = if access == FileAccess::Read {
                Decision::Allow
            } else {
                Decision::Deny
            };
            (Outcome::from_verdict(d, None, false, false), usize::MAX)
        }
    };
    // A redacted read is recorded by `redact.rs`, with what it redacted.
    let redacted_read = access == FileAccess::Read && o.enforce == Decision::Redact;
    if o.enforce != Decision::Allow && !redacted_read {
        let target = names.get(i).map(|n| n.0).unwrap_or(p);
        let why = if i == usize::MAX {
            "the path could not be made absolute (too long, or the cwd is unreachable)"
        } else {
            ""
        };
        let target = if target.is_empty() { p } else { target };
        resolve_ask(&mut o, access.as_str(), target);
        emit(access.as_str(), target, &o, false, why);
    }
    o.blocks()
}

/// Checks a file access before the call. Returns true when it must fail with `EACCES`.
///
/// The resolved name comes from an `O_PATH` open of the path (the kernel resolves symlinks,
/// `..` after them and `/proc` magic links exactly as the real call will).
pub fn file_denied(dirfd: i32, path: *const c_char, access: FileAccess) -> bool {
    file_denied_any(dirfd, path, &[access])
}

/// The names a file call is judged under: the lexical name (cleaned against the cwd or the
/// dirfd) and the name the kernel resolves (an `O_PATH` open, or a dangling symlink's target).
struct FileNames {
    cwd: PathBuf,
    lex: PathBuf,
    res: PathBuf,
    extra: PathBuf,
    have_lex: bool,
    have_res: bool,
}

impl FileNames {
    /// Names to [`fill`](FileNames::fill), built where they are used (16 KiB of buffers: a
    /// returned, filled value would be copied).
    #[inline(always)]
    fn empty() -> FileNames {
        FileNames {
            cwd: PathBuf::new(),
            lex: PathBuf::new(),
            res: PathBuf::new(),
            extra: PathBuf::new(),
            have_lex: false,
            have_res: false,
        }
    }

    fn fill(&mut self, dirfd: i32, path: *const c_char, p: &[u8]) {
        if !path::getcwd(&mut self.cwd) {
            self.cwd.clear();
        }
        self.have_lex = path::lexical_in(dirfd, p, self.cwd.as_bytes(), &mut self.lex);
        self.have_res = path::resolved(dirfd, path, &mut self.res, &mut self.extra);
    }

    /// Each distinct name, with whether it could be computed.
    fn list(&self) -> [(&[u8], bool); 3] {
        [
            (self.lex.as_bytes(), self.have_lex),
            (
                self.res.as_bytes(),
                self.have_res && self.res.as_bytes() != self.lex.as_bytes(),
            ),
            (self.extra.as_bytes(), !self.extra.is_empty()),
        ]
    }
}

/// The caller's path as bytes, `None` for a null or empty one (nothing to judge).
fn nonempty<'a>(path: *const c_char) -> Option<&'a [u8]> {
    if path.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated string from the hooked call's caller, alive for the call.
    let p = unsafe { raw::cstr(path) };
    (!p.is_empty()).then_some(p)
}

/// [`file_denied`] for several accesses of one path, in order, stopping at the first denied
/// one (which alone is recorded); the path's names are computed once.
pub fn file_denied_any(dirfd: i32, path: *const c_char, accesses: &[FileAccess]) -> bool {
    let Some(p) = nonempty(path) else {
        return false;
    };
    let mut n = FileNames::empty();
    n.fill(dirfd, path, p);
    let names = n.list();
    accesses.iter().any(|&access| {
        if let Some(hit) = crate::selfprotect::violation(&names, access) {
            let o = crate::selfprotect::outcome();
            emit(access.as_str(), hit, &o, false, "");
            return true;
        }
        let best = evaluate_names(&names, access, n.cwd.as_bytes());
        conclude(best, &names, p, access)
    })
}

/// A rename's source (`access` Delete) or target (`access` Write), taken as a directory: the
/// call must fail when the move would carry files out of, or into, the reach of a `deny`,
/// `ask` or `redact` rule (`Ruleset::rule_guarding_below`): `mv ~/.aws /tmp/a` followed by a
/// read of `/tmp/a/credentials`. Names as in [`file_denied`]; a file (not a directory) has
/// nothing below it, so no rule pattern reaches below its name and the answer is no.
pub fn dir_move_denied(dirfd: i32, path: *const c_char, access: FileAccess) -> bool {
    let Some(rs) = state::ruleset() else {
        return false;
    };
    let Some(p) = nonempty(path) else {
        return false;
    };
    let mut n = FileNames::empty();
    n.fill(dirfd, path, p);
    for (name, ok) in n.list() {
        if !ok {
            continue;
        }
        if let Some(v) = rs.rule_guarding_below(name) {
            let mut o = Outcome::from_verdict(v.decision, v.rule, false, rs.monitor_mode());
            resolve_ask(&mut o, access.as_str(), name);
            emit(
                access.as_str(),
                name,
                &o,
                false,
                "moving this directory would carry files its rule protects out of (or into) the rule's reach",
            );
            if o.blocks() {
                return true;
            }
        }
    }
    false
}

/// A read-only open, checked in two steps: the lexical name before the call (no extra
/// syscall), then the name of what was actually opened, read back from the new fd (one
/// `readlink`). Cheaper than `file_denied` on the hot path, and without its check-then-open
/// race: the second check sees exactly the file the program got. A refused open is closed
/// again before the program sees it (a FIFO or device behind an allowed-looking name may still
/// have been opened for that instant).
///
/// `call` performs the real open; `fd_of` gives the fd of its result (negative on failure);
/// `undo` closes a result that is refused. `None`: refuse with `EACCES`.
pub fn checked_read<R>(
    dirfd: i32,
    path: *const c_char,
    call: impl FnOnce() -> R,
    fd_of: impl Fn(&R) -> i32,
    undo: impl FnOnce(R),
) -> Option<R> {
    let p = unsafe { raw::cstr(path) };
    if p.is_empty() {
        return Some(call());
    }
    let Some(g) = state::Inside::enter() else {
        return Some(call());
    };
    let mut cwd = PathBuf::new();
    if !path::getcwd(&mut cwd) {
        cwd.clear();
    }
    let mut lex = PathBuf::new();
    let have_lex = path::lexical_in(dirfd, p, cwd.as_bytes(), &mut lex);
    let first = evaluate_names(
        &[(lex.as_bytes(), have_lex)],
        FileAccess::Read,
        cwd.as_bytes(),
    );
    if conclude(first, &[(lex.as_bytes(), have_lex)], p, FileAccess::Read) {
        return None;
    }
    // The real call runs outside the library (a blocking open must not hold the bypass flag).
    drop(g);
    let r = call();
    let fd = fd_of(&r);
    if fd < 0 {
        return Some(r);
    }
    let Some(_g) = state::Inside::enter() else {
        return Some(r);
    };
    let mut res = PathBuf::new();
    let have_res = path::fd_path(fd, &mut res);
    let mut verdict = first.map(|(o, _)| o);
    if have_res && !(have_lex && res.as_bytes() == lex.as_bytes()) {
        let names: [(&[u8], bool); 1] = [(res.as_bytes(), true)];
        let second = evaluate_names(&names, FileAccess::Read, cwd.as_bytes());
        let stricter_than_first = match (second, first) {
            (Some((b, _)), Some((a, _))) => b.enforce > a.enforce,
            (Some(_), None) => true,
            _ => false,
        };
        if stricter_than_first {
            if conclude(second, &names, p, FileAccess::Read) {
                undo(r);
                return None;
            }
            verdict = second.map(|(o, _)| o);
        }
    }
    // Redaction (a `redact` rule, or secrets found by content in scope) replaces the fd.
    let name = if have_res {
        res.as_bytes()
    } else {
        lex.as_bytes()
    };
    if !crate::redact::after_read_open(fd, name, verdict) {
        undo(r);
        return None;
    }
    Some(r)
}

/// Checks an outgoing connection. Returns true when it must fail with `EACCES`.
pub fn connect_denied(ip: IpAddr, port: u16) -> bool {
    let mut name = [0u8; crate::dns::NAME_MAX];
    let host = crate::dns::lookup(ip, &mut name).and_then(|n| name.get(..n));
    let mut o = with_ctx(state::environ_ptr(), |ctx| {
        evaluate(
            &Action::Connect {
                host,
                ip: Some(ip),
                port,
            },
            ctx,
        )
    });
    if o.enforce != Decision::Allow {
        let mut t = Buf::<256>::new();
        if let Some(h) = host {
            t.push_trunc(h);
            t.push_trunc(b" ");
        }
        use core::fmt::Write;
        let _ = match ip {
            IpAddr::V4(v4) => write!(t, "{v4}:{port}"),
            IpAddr::V6(v6) => write!(t, "[{v6}]:{port}"),
        };
        resolve_ask(&mut o, "connect", t.as_bytes());
        emit("connect", t.as_bytes(), &o, false, "");
    }
    o.blocks()
}
