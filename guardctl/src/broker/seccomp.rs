//! The kernel layer, broker side: services the seccomp user-notification listeners that guarded
//! processes hand over (`libguard/src/seccomp.rs`, wire message `Supervise`), one thread per
//! listener. Each trapped `execve`/`execveat`/`connect`/`sendto` (with a destination), or
//! destructive file operation (write-class open, `openat2` — read-only ones are continued at
//! once — unlink, rmdir, rename, truncate, mkdir, link, symlink: names resolved against the
//! caller's cwd or dirfd, checked like libguard's hooks, plus the guard's self-protection) is
//! read from `/proc/<pid>/mem`, checked
//! still pending (`SECCOMP_IOCTL_NOTIF_ID_VALID`) after the read, evaluated with the session's
//! compiled ruleset and the same evaluator libguard uses, answered `CONTINUE` or `EACCES`, and
//! recorded with `"layer": "seccomp"`.
//!
//! Limits (docs/kernel-layer.md): `CONTINUE` lets the kernel re-read the path, argv and
//! sockaddr, so a sibling thread that rewrites them between the check and the kernel's read
//! (TOCTOU) wins; connect rules see the address only (host names are known in-process, not
//! here). When this broker exits, the kernel fails every trapped call with `ENOSYS`.
//!
//! An `ask` goes to this broker's approvals like a libguard ask (over an in-process socket
//! pair), on a thread of its own, so that the other trapped calls keep being served; the
//! trapped call waits in the kernel until the human answers or `ask_timeout` denies it.

use super::event::AuditEvent;
use super::{Item, Shared};
use guard_proto::wire::{self, Supervise};
use guard_proto::{Action, Context, Decision, EnvLookup, FileAccess, Ruleset};
use std::fs::File;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::time::SystemTime;

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct SeccompData {
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct Resp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

// _IOWR('!', 0, struct seccomp_notif), _IOWR('!', 1, struct seccomp_notif_resp),
// _IOW('!', 2, __u64).
const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;
const NOTIF_ID_VALID: libc::c_ulong = 0x4008_2102;
const USER_NOTIF_FLAG_CONTINUE: u32 = 1;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

/// Caps on what is read from a trapped process (a hostile argv must not exhaust the broker).
const MAX_STR: usize = 64 * 1024;
const MAX_ARGS: usize = 4096;
const MAX_TOTAL: usize = 1 << 20;

/// Answers a `Supervise` message. `fd`: the listener received with it (for `listener`).
/// Returns the reply's (ok, body).
pub(super) fn on_supervise(
    msg: &Supervise<'_>,
    fd: Option<OwnedFd>,
    shared: &Arc<Shared>,
    tx: &SyncSender<Item>,
) -> (bool, String) {
    let Some(ruleset) = shared.ruleset.get().cloned() else {
        return (false, "this broker has no ruleset to supervise with".into());
    };
    match msg.stage {
        "probe" => (true, String::new()),
        "listener" => {
            let Some(fd) = fd else {
                return (false, "no listener fd came with the message".into());
            };
            // Any local process of ours can send any fd: serve only a real listener (a file
            // or socket would make the loop spin on a readable fd that is no notifier).
            let kind = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if kind != "anon_inode:seccomp notify" {
                return (false, format!("not a seccomp listener ({kind})"));
            }
            let ctx = Supervisor {
                shared: Arc::clone(shared),
                tx: tx.clone(),
                ruleset,
                runtime: msg.runtime.to_string(),
            };
            let (pid, target, why) = (msg.pid, msg.target.to_string(), msg.why.to_string());
            let spawned = std::thread::Builder::new()
                .name("guard-seccomp".into())
                .stack_size(256 * 1024)
                .spawn(move || Arc::new(ctx).run(Arc::new(fd)));
            match spawned {
                Ok(_) => {
                    let sup = Supervisor {
                        shared: Arc::clone(shared),
                        tx: tx.clone(),
                        ruleset: PathBuf::new(),
                        runtime: msg.runtime.to_string(),
                    };
                    sup.record(&Record {
                        pid,
                        action: "kernel-layer",
                        target: &target,
                        decision: Decision::Audit,
                        enforce: Decision::Audit,
                        rule: "",
                        reason: &format!("seccomp supervisor attached ({why})"),
                        tags: "",
                        approval: None,
                    });
                    (true, String::new())
                }
                Err(e) => (false, format!("cannot start the supervisor: {e}")),
            }
        }
        _ => (false, "unknown stage".into()),
    }
}

struct Supervisor {
    shared: Arc<Shared>,
    tx: SyncSender<Item>,
    ruleset: PathBuf,
    runtime: String,
}

struct Record<'a> {
    pid: u32,
    action: &'a str,
    target: &'a str,
    decision: Decision,
    enforce: Decision,
    rule: &'a str,
    reason: &'a str,
    tags: &'a str,
    /// (id, answer, who, latency ms) of a concluded ask.
    approval: Option<(u64, &'a str, &'a str, u64)>,
}

/// A borrowed argv as the evaluator's `Argv`.
struct ArgList<'a>(&'a [&'a [u8]]);

impl guard_proto::Argv for ArgList<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn arg(&self, i: usize) -> &[u8] {
        self.0.get(i).copied().unwrap_or(b"")
    }
}

/// The environment a trapped exec passes to the new program (for `when.env`).
struct BytesEnv(Vec<Vec<u8>>);

impl EnvLookup for BytesEnv {
    fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.0.iter().rev().find_map(|e| {
            (e.len() > key.len() && e.starts_with(key) && e[key.len()] == b'=')
                .then(|| &e[key.len() + 1..])
        })
    }
}

impl Supervisor {
    fn run(self: Arc<Self>, fd: Arc<OwnedFd>) {
        let bytes = std::fs::read(&self.ruleset).unwrap_or_default();
        let rs = Ruleset::load(&bytes).ok();
        if rs.is_none() {
            let _ = writeln!(
                std::io::stderr(),
                "guard: kernel layer: ruleset {} unusable: trapped calls are refused",
                self.ruleset.display()
            );
        }
        loop {
            if self.shared.stop.load(Ordering::Acquire) {
                return;
            }
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut p, 1, 250) };
            if n <= 0 {
                continue;
            }
            if p.revents & libc::POLLIN == 0 {
                // POLLHUP: every process under this filter has exited.
                if p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                    return;
                }
                continue;
            }
            let mut notif = Notif::default();
            // SAFETY: the kernel writes one seccomp_notif (zeroed, as it requires).
            let r = unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut notif) };
            if r < 0 {
                // ENOENT: the caller was interrupted (signal) or died before we read it.
                let e = std::io::Error::last_os_error().raw_os_error();
                if e == Some(libc::ENOENT) || e == Some(libc::EINTR) {
                    continue;
                }
                let _ = writeln!(
                    std::io::stderr(),
                    "guard: kernel layer: the seccomp listener failed ({e:?}); stopping it"
                );
                return;
            }
            if let Some((allow, error)) = self.handle(&fd, &notif, rs.as_ref()) {
                respond(&fd, notif.id, allow, error);
            }
        }
    }

    /// (continue?, errno when not); `None` when an ask thread answers later.
    fn handle(
        self: &Arc<Self>,
        fd: &Arc<OwnedFd>,
        n: &Notif,
        rs: Option<&Ruleset<'_>>,
    ) -> Option<(bool, i32)> {
        let pid = n.pid;
        let still_valid = || {
            let mut id = n.id;
            // SAFETY: reads one u64.
            unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_ID_VALID, &mut id) == 0 }
        };
        if n.data.arch != AUDIT_ARCH {
            self.record(&Record {
                pid,
                action: "exec",
                target: &format!("syscall {} of a foreign architecture", n.data.nr),
                decision: Decision::Deny,
                enforce: Decision::Deny,
                rule: "",
                reason: "kernel layer: only native system calls are supervised",
                tags: "",
                approval: None,
            });
            return Some((false, libc::EACCES));
        }
        let nr = n.data.nr as i64;
        let a = n.data.args;
        let Ok(mem) = File::open(format!("/proc/{pid}/mem")) else {
            return Some((false, libc::EACCES));
        };
        let x32 = 0x4000_0000i64;
        if let Some(call) = file_call(nr & !x32, &a) {
            return self.handle_file(fd, n, &mem, call, rs);
        }
        let sockaddr = if nr == libc::SYS_connect || nr == x32 | libc::SYS_connect {
            Some((a[1], a[2]))
        } else if nr == libc::SYS_sendto || nr == x32 | libc::SYS_sendto {
            // Only sendto with a destination is trapped (the filter passes a NULL one).
            Some((a[4], a[5]))
        } else {
            None
        };
        if let Some((addr, alen)) = sockaddr {
            let len = (alen as usize).min(128);
            let mut sa = vec![0u8; len];
            if len > 0 && mem.read_at(&mut sa, addr).ok() != Some(len) {
                return Some((false, libc::EFAULT));
            }
            if !still_valid() {
                return Some((false, libc::EACCES));
            }
            let Some((ip, port)) = inet(&sa) else {
                // Unix, netlink, ...: not governed by connect rules.
                return Some((true, 0));
            };
            let target = match ip {
                IpAddr::V4(v4) => format!("{v4}:{port}"),
                IpAddr::V6(v6) => format!("[{v6}]:{port}"),
            };
            let Some(rs) = rs else {
                return Some(self.refuse_degraded(pid, "connect", &target));
            };
            let cwd = proc_link(pid, "cwd");
            let env = BytesEnv(Vec::new());
            let ctx = Context {
                env: &env,
                cwd: cwd.as_bytes(),
                agent: self.shared.info.agent.as_bytes(),
            };
            let v = rs.evaluate(
                &Action::Connect {
                    host: None,
                    ip: Some(ip),
                    port,
                },
                &ctx,
            );
            return self.conclude(fd, n.id, rs, pid, "connect", &target, v, false);
        }
        let (dirfd, path_p, argv_p, envp_p, flags) = if nr == libc::SYS_execve || nr == x32 | 520 {
            (libc::AT_FDCWD as i64, a[0], a[1], a[2], 0u64)
        } else {
            (a[0] as i32 as i64, a[1], a[2], a[3], a[4])
        };
        let path = read_str(&mem, path_p).unwrap_or_default();
        let argv = read_vec(pid, &mem, argv_p);
        let envv = read_vec(pid, &mem, envp_p);
        if !still_valid() {
            return Some((false, libc::EACCES));
        }
        let program = resolve(pid, dirfd, &path, flags);
        let args: Vec<&[u8]> = argv.iter().map(|v| v.as_slice()).collect();
        let mut target = args
            .iter()
            .map(|a| String::from_utf8_lossy(a))
            .collect::<Vec<_>>()
            .join(" ");
        if target.is_empty() {
            target = String::from_utf8_lossy(&program).into_owned();
        }
        let Some(rs) = rs else {
            return Some(self.refuse_degraded(pid, "exec", &target));
        };
        let cwd = proc_link(pid, "cwd");
        let env = BytesEnv(envv);
        let ctx = Context {
            env: &env,
            cwd: cwd.as_bytes(),
            agent: self.shared.info.agent.as_bytes(),
        };
        let v = rs.evaluate(
            &Action::Exec {
                argv: &ArgList(&args),
                program: (!program.is_empty()).then_some(program.as_slice()),
            },
            &ctx,
        );
        self.conclude(fd, n.id, rs, pid, "exec", &target, v, true)
    }

    /// A trapped destructive file operation: the names are resolved the way the kernel will
    /// (lexically, from the caller's cwd or dirfd, plus the symlink-resolved parent), each
    /// check evaluated like libguard's hooks do, and the strictest verdict concludes the call.
    fn handle_file(
        self: &Arc<Self>,
        fd: &Arc<OwnedFd>,
        n: &Notif,
        mem: &File,
        call: FileCall,
        rs: Option<&Ruleset<'_>>,
    ) -> Option<(bool, i32)> {
        let pid = n.pid;
        if let Some(how) = call.how {
            // openat2: the flags are the first u64 of `struct open_how`.
            let mut b = [0u8; 8];
            if mem.read_at(&mut b, how).ok() != Some(8) {
                return Some((false, libc::EFAULT));
            }
            let flags = u64::from_le_bytes(b);
            if !write_class(flags) {
                return Some((true, 0));
            }
        }
        let mut names: Vec<Vec<u8>> = Vec::with_capacity(2);
        for (i, nm) in call.names.iter().enumerate() {
            let Some(nm) = nm else { continue };
            let Some(path) = read_str(mem, nm.ptr) else {
                return Some((false, libc::EFAULT));
            };
            let empty_ok = i == 0
                && call.kind == FileKind::Link
                && call.flags & libc::AT_EMPTY_PATH as u64 != 0;
            if path.is_empty() && !empty_ok {
                // The kernel refuses it (ENOENT) without touching anything.
                return Some((true, 0));
            }
            let Some(name) =
                resolve_in(pid, nm.dirfd, &path, if empty_ok { call.flags } else { 0 })
            else {
                return Some((false, libc::EACCES));
            };
            names.push(name);
        }
        if !still_valid(fd, n.id) {
            return Some((false, libc::EACCES));
        }
        let first = names.first().cloned().unwrap_or_default();
        let target = String::from_utf8_lossy(&first).into_owned();
        let Some(rs) = rs else {
            let kind = match call.kind {
                FileKind::Delete => "delete",
                _ => "write",
            };
            return Some(self.refuse_degraded(pid, kind, &target));
        };
        let cwd = proc_link(pid, "cwd");
        let env = BytesEnv(proc_environ(pid));
        let ctx = Context {
            env: &env,
            cwd: cwd.as_bytes(),
            agent: self.shared.info.agent.as_bytes(),
        };
        // (access, name, verdict) of every check; the strictest one decides.
        let mut checks: Vec<(FileAccess, Vec<u8>, guard_proto::Verdict)> = Vec::new();
        let file = |access: FileAccess, name: &[u8], checks: &mut Vec<_>| {
            for nm in names_of(pid, name, call.follow && access == FileAccess::Write) {
                let v = rs.evaluate(&Action::File { path: &nm, access }, &ctx);
                checks.push((access, nm, v));
            }
        };
        let second = names.get(1).cloned().unwrap_or_default();
        match call.kind {
            FileKind::Write => file(FileAccess::Write, &first, &mut checks),
            FileKind::Delete => file(FileAccess::Delete, &first, &mut checks),
            FileKind::Link => {
                for acc in [FileAccess::Read, FileAccess::Write, FileAccess::Delete] {
                    file(acc, &first, &mut checks);
                }
                file(FileAccess::Write, &second, &mut checks);
            }
            FileKind::Rename => {
                let exchange = call.flags & libc::RENAME_EXCHANGE as u64 != 0;
                file(FileAccess::Delete, &first, &mut checks);
                file(FileAccess::Write, &second, &mut checks);
                if exchange {
                    file(FileAccess::Write, &first, &mut checks);
                    file(FileAccess::Delete, &second, &mut checks);
                }
                // A directory carries everything below it (libguard's `dir_move_denied`).
                let mut moves = vec![(&first, &second)];
                if exchange {
                    moves.push((&second, &first));
                }
                for (from, to) in moves {
                    if !is_dir_nofollow(from) {
                        continue;
                    }
                    for (acc, name) in [(FileAccess::Delete, from), (FileAccess::Write, to)] {
                        for nm in names_of(pid, name, false) {
                            if let Some(v) = rs.rule_guarding_below(&nm) {
                                checks.push((acc, nm, v));
                            }
                        }
                    }
                }
            }
        }
        // The guard protects itself whatever the policy and mode say (libguard's
        // `selfprotect`): the trapped process's GUARD_PROTECT, plus what this broker knows
        // itself (the ruleset and the spill directory), which a static parent cannot drop.
        let mut protect: Vec<Vec<u8>> = env
            .get(b"GUARD_PROTECT")
            .map(|v| v.split(|c| *c == b':').map(<[u8]>::to_vec).collect())
            .unwrap_or_default();
        {
            use std::os::unix::ffi::OsStrExt;
            protect.push(self.ruleset.as_os_str().as_bytes().to_vec());
            if let Some(d) = &self.shared.spill {
                protect.push(d.as_os_str().as_bytes().to_vec());
            }
        }
        if let Some((acc, nm, _)) = checks.iter().find(|(acc, nm, _)| {
            *acc != FileAccess::Read
                && protect
                    .iter()
                    .any(|p| touches(nm, p, *acc == FileAccess::Delete))
        }) {
            self.record(&Record {
                pid,
                action: acc.as_str(),
                target: &String::from_utf8_lossy(nm),
                decision: Decision::Deny,
                enforce: Decision::Deny,
                rule: SELF_RULE,
                reason: SELF_REASON,
                tags: "",
                approval: None,
            });
            return Some((false, libc::EACCES));
        }
        let (access, name, v) = checks.into_iter().fold(
            None,
            |best: Option<(FileAccess, Vec<u8>, guard_proto::Verdict)>, c| match best {
                Some(b) if b.2.decision >= c.2.decision => Some(b),
                _ => Some(c),
            },
        )?;
        let target = String::from_utf8_lossy(&name).into_owned();
        self.conclude(fd, n.id, rs, pid, access.as_str(), &target, v, false)
    }

    fn refuse_degraded(&self, pid: u32, action: &str, target: &str) -> (bool, i32) {
        self.record(&Record {
            pid,
            action,
            target,
            decision: Decision::Deny,
            enforce: Decision::Deny,
            rule: "ruleset-unavailable",
            reason: "kernel layer: the session's ruleset is unusable (fail closed)",
            tags: "",
            approval: None,
        });
        (false, libc::EACCES)
    }

    #[allow(clippy::too_many_arguments)]
    fn conclude(
        self: &Arc<Self>,
        fd: &Arc<OwnedFd>,
        notif_id: u64,
        rs: &Ruleset<'_>,
        pid: u32,
        action: &str,
        target: &str,
        v: guard_proto::Verdict,
        always_record: bool,
    ) -> Option<(bool, i32)> {
        let info = v.rule.and_then(|r| rs.rule(r));
        let (rule, reason, tags) = match &info {
            Some(i) => (i.id, i.reason, i.tags.to_string()),
            None => ("", "", String::new()),
        };
        let monitor = rs.monitor_mode();
        if v.decision == Decision::Ask && !monitor {
            // A human decides, through the broker's approvals (`guardctl pending/approve`),
            // on a thread of its own: other trapped calls keep being served meanwhile.
            let ask = Ask {
                notif_id,
                pid,
                action: action.to_string(),
                target: target.to_string(),
                rule: rule.to_string(),
                reason: reason.to_string(),
                tags,
                timeout_ms: rs.ask_timeout_ms(),
            };
            let (me, fd) = (Arc::clone(self), Arc::clone(fd));
            let spawned = std::thread::Builder::new()
                .name("guard-seccomp-ask".into())
                .stack_size(256 * 1024)
                .spawn(move || me.ask(&fd, ask));
            return match spawned {
                Ok(_) => None,
                Err(_) => Some((false, libc::EACCES)),
            };
        }
        let blocks = v.decision == Decision::Deny;
        let effective = match v.decision {
            Decision::Deny | Decision::Ask if monitor => Decision::Allow,
            Decision::Redact => Decision::Allow,
            d => d,
        };
        if always_record || v.decision != Decision::Allow {
            self.record(&Record {
                pid,
                action,
                target,
                decision: effective,
                enforce: v.decision,
                rule,
                reason,
                tags: &tags,
                approval: None,
            });
        }
        if blocks && !monitor {
            if action == "exec" {
                tell_denied(pid, target, rule, reason);
            }
            return Some((false, libc::EACCES));
        }
        Some((true, 0))
    }

    /// Holds one ask until it is answered (or times out), then answers the kernel.
    fn ask(&self, fd: &OwnedFd, a: Ask) {
        let start = std::time::Instant::now();
        let outcome = self.ask_broker(&a);
        let latency = start.elapsed().as_millis() as u64;
        let (id, answer, who) = match &outcome {
            Some((id, true, who)) => (*id, "approved", who.as_str()),
            Some((id, false, who)) if who == "timeout" => (*id, "timeout", who.as_str()),
            Some((id, false, who)) => (*id, "denied", who.as_str()),
            None => (0, "unreachable", ""),
        };
        let allow = matches!(outcome, Some((_, true, _)));
        let decision = if allow {
            Decision::Allow
        } else {
            Decision::Deny
        };
        let reason = format!("approval: {answer}: {}", a.reason);
        self.record(&Record {
            pid: a.pid,
            action: &a.action,
            target: &a.target,
            decision,
            enforce: decision,
            rule: &a.rule,
            reason: &reason,
            tags: &a.tags,
            approval: Some((id, answer, who, latency)),
        });
        if !allow && a.action == "exec" {
            tell_denied(a.pid, &a.target, &a.rule, &reason);
        }
        respond(fd, a.notif_id, allow, libc::EACCES);
    }

    /// Puts the ask to this broker's approvals over an in-process socket pair (the same path
    /// a libguard ask takes): (ask id, approved, who), or `None` when it could not be asked.
    fn ask_broker(&self, a: &Ask) -> Option<(u64, bool, String)> {
        use std::io::Read;
        let (server, mut client) = std::os::unix::net::UnixStream::pair().ok()?;
        let shared = Arc::clone(&self.shared);
        let (exe, cwd, ppid) = (
            proc_link(a.pid, "exe"),
            proc_link(a.pid, "cwd"),
            ppid_of(a.pid),
        );
        let (action, target, rule, reason) = (
            a.action.clone(),
            a.target.clone(),
            a.rule.clone(),
            a.reason.clone(),
        );
        let (pid, timeout_ms, runtime) = (a.pid, a.timeout_ms, self.runtime.clone());
        std::thread::Builder::new()
            .name("guard-seccomp-approval".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                let req = wire::AskRequest {
                    id: 0,
                    session: &shared.info.session,
                    agent: &shared.info.agent,
                    action: &action,
                    target: &target,
                    rule: &rule,
                    reason: &reason,
                    pid,
                    ppid,
                    exe: &exe,
                    runtime: &runtime,
                    cwd: &cwd,
                    timeout_ms,
                };
                super::approvals::on_message(
                    &server,
                    &wire::Message::AskRequest(req),
                    &shared.approvals,
                    &shared.info.session,
                );
            })
            .ok()?;
        let limit = std::time::Duration::from_millis(u64::from(a.timeout_ms.max(1)) + 5000);
        client.set_read_timeout(Some(limit)).ok()?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut id = 0;
        loop {
            let n = match client.read(&mut chunk) {
                Ok(0) => return Some((id, false, "broker".into())),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return Some((id, false, "timeout".into())),
            };
            buf.extend_from_slice(&chunk[..n]);
            loop {
                match wire::decode_frame(&buf) {
                    Ok((wire::Message::AskReply(r), used)) => {
                        id = r.id;
                        if r.decision != "pending" {
                            return Some((r.id, r.decision == "allow", r.who.to_string()));
                        }
                        buf.drain(..used);
                    }
                    Err(wire::FrameError::Incomplete) => break,
                    _ => return Some((id, false, "broker".into())),
                }
            }
        }
    }

    fn record(&self, r: &Record<'_>) {
        let exe = proc_link(r.pid, "exe");
        let cwd = proc_link(r.pid, "cwd");
        let ppid = ppid_of(r.pid);
        let ev = wire::Event {
            session: &self.shared.info.session,
            pid: r.pid,
            ppid,
            exe: &exe,
            runtime: &self.runtime,
            cwd: &cwd,
            action: r.action,
            target: r.target,
            decision: r.decision.as_str(),
            enforce_decision: r.enforce.as_str(),
            rule: r.rule,
            reason: r.reason,
            tags: r.tags,
            dropped_before: 0,
            approval_id: r.approval.map(|a| a.0).unwrap_or(0),
            approval_answer: r.approval.map(|a| a.1).unwrap_or(""),
            approval_who: r.approval.map(|a| a.2).unwrap_or(""),
            approval_latency_ms: r.approval.map(|a| a.3).unwrap_or(0),
        };
        let mut out = AuditEvent::from_wire(&ev, &self.shared.info, SystemTime::now());
        out.layer = Some("seccomp".into());
        if self.tx.try_send(Item::Event(out)).is_err() {
            self.shared.broker_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One ask waiting for a human.
struct Ask {
    notif_id: u64,
    pid: u32,
    action: String,
    target: String,
    rule: String,
    reason: String,
    tags: String,
    timeout_ms: u32,
}

/// Whether the notification is still pending (the caller has not died or been interrupted):
/// asked after reading its memory, so what was read belongs to the call being answered.
fn still_valid(fd: &OwnedFd, id: u64) -> bool {
    let mut id = id;
    // SAFETY: reads one u64.
    unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_ID_VALID, &mut id) == 0 }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FileKind {
    /// Creates or modifies the name: write-class open, truncate, mkdir, symlink.
    Write,
    /// unlink, rmdir.
    Delete,
    /// A rename (`flags`: renameat2's).
    Rename,
    /// A hard link (`flags`: linkat's).
    Link,
}

/// A path argument: the directory it is relative to and the string's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NameArg {
    dirfd: i64,
    ptr: u64,
}

/// A trapped destructive file operation, decoded from its registers.
#[derive(Debug, PartialEq, Eq)]
struct FileCall {
    kind: FileKind,
    /// The name acted on, and for a rename or link the second one.
    names: [Option<NameArg>; 2],
    flags: u64,
    /// openat2: the address of its `struct open_how` (the flags the filter could not see).
    how: Option<u64>,
    /// The kernel follows a symlink in the last component (open, creat, truncate).
    follow: bool,
}

/// The file operation of system call `nr` (without the x32 bit), or `None` for the others.
fn file_call(nr: i64, a: &[u64; 6]) -> Option<FileCall> {
    let cwd = libc::AT_FDCWD as i64;
    let at = |i: usize| NameArg {
        dirfd: a[i] as i32 as i64,
        ptr: a[i + 1],
    };
    let here = |i: usize| NameArg {
        dirfd: cwd,
        ptr: a[i],
    };
    let one = |kind, n: NameArg| FileCall {
        kind,
        names: [Some(n), None],
        flags: 0,
        how: None,
        follow: false,
    };
    let opens = |n: NameArg| FileCall {
        follow: true,
        ..one(FileKind::Write, n)
    };
    let two = |kind, x: NameArg, y: NameArg, flags: u64| FileCall {
        kind,
        names: [Some(x), Some(y)],
        flags,
        how: None,
        follow: false,
    };
    #[cfg(target_arch = "x86_64")]
    {
        let c = match nr {
            libc::SYS_open if write_class(a[1]) => Some(opens(here(0))),
            libc::SYS_creat => Some(opens(here(0))),
            libc::SYS_mkdir => Some(one(FileKind::Write, here(0))),
            libc::SYS_unlink | libc::SYS_rmdir => Some(one(FileKind::Delete, here(0))),
            libc::SYS_rename => Some(two(FileKind::Rename, here(0), here(1), 0)),
            libc::SYS_renameat => Some(two(FileKind::Rename, at(0), at(2), 0)),
            libc::SYS_link => Some(two(FileKind::Link, here(0), here(1), 0)),
            libc::SYS_symlink => Some(one(FileKind::Write, here(1))),
            _ => None,
        };
        if c.is_some() {
            return c;
        }
    }
    match nr {
        libc::SYS_openat if write_class(a[2]) => Some(opens(at(0))),
        libc::SYS_openat2 => Some(FileCall {
            how: Some(a[2]),
            ..opens(at(0))
        }),
        libc::SYS_truncate => Some(opens(here(0))),
        libc::SYS_mkdirat => Some(one(FileKind::Write, at(0))),
        libc::SYS_unlinkat => Some(one(FileKind::Delete, at(0))),
        libc::SYS_renameat2 => Some(two(FileKind::Rename, at(0), at(2), a[4])),
        libc::SYS_linkat => Some(two(FileKind::Link, at(0), at(2), a[4])),
        libc::SYS_symlinkat => Some(one(
            FileKind::Write,
            NameArg {
                dirfd: a[1] as i32 as i64,
                ptr: a[2],
            },
        )),
        _ => None,
    }
}

/// Open flags that modify (like libguard's `access_of_flags`).
fn write_class(flags: u64) -> bool {
    let f = flags as u32 as i32;
    f & libc::O_ACCMODE != libc::O_RDONLY
        || f & (libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) != 0
        || f & libc::O_TMPFILE == libc::O_TMPFILE
}

/// The names a check is made under: the lexical one, and the one with the parent's symlinks
/// resolved when that differs (`/tmp/link/x` with `/tmp/link -> ~/.ssh`). The last component
/// is followed only with `follow` (an open, which follows a symlink there; unlink, rename and
/// mkdir act on the entry itself). `/proc/self` in a name means the trapped process, not this
/// broker.
fn names_of(pid: u32, lexical: &[u8], follow: bool) -> Vec<Vec<u8>> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let mut out = vec![lexical.to_vec()];
    let Some(cut) = lexical.iter().rposition(|c| *c == b'/') else {
        return out;
    };
    let theirs = |p: &[u8]| -> Vec<u8> {
        for (me, tail) in [
            (&b"/proc/self"[..], 10usize),
            (&b"/proc/thread-self"[..], 17),
        ] {
            if p.starts_with(me) && (p.len() == tail || p[tail] == b'/') {
                return [format!("/proc/{pid}").as_bytes(), &p[tail..]].concat();
            }
        }
        p.to_vec()
    };
    if follow && let Ok(real) = std::fs::canonicalize(std::ffi::OsStr::from_bytes(&theirs(lexical)))
    {
        let r = real.into_os_string().into_vec();
        if r != lexical {
            out.push(r);
        }
    }
    let (parent, leaf) = (&lexical[..cut.max(1)], &lexical[cut + 1..]);
    let Ok(real) = std::fs::canonicalize(std::ffi::OsStr::from_bytes(&theirs(parent))) else {
        return out;
    };
    let mut r = real.into_os_string().into_vec();
    if !leaf.is_empty() {
        if r != b"/" {
            r.push(b'/');
        }
        r.extend_from_slice(leaf);
    }
    if !out.contains(&r) {
        out.push(r);
    }
    out
}

const SELF_RULE: &str = "guard-self-protection";
const SELF_REASON: &str = "guarded processes cannot modify the guard's policy, ruleset, library, binary, state or sockets";

/// Whether `name` is the protected path `p`, below it, or (`ancestors`: a delete or a rename's
/// source, which would move the protected tree away) a proper ancestor of it. As libguard's
/// `selfprotect::touches`.
fn touches(name: &[u8], p: &[u8], ancestors: bool) -> bool {
    fn trim(mut p: &[u8]) -> &[u8] {
        while p.len() > 1 && p.last() == Some(&b'/') {
            p = &p[..p.len() - 1];
        }
        p
    }
    let (name, p) = (trim(name), trim(p));
    if p.first() != Some(&b'/') || name.is_empty() {
        return false;
    }
    let below = |a: &[u8], b: &[u8]| {
        a.len() > b.len() && a.starts_with(b) && (b == b"/" || a.get(b.len()) == Some(&b'/'))
    };
    name == p || below(name, p) || (ancestors && name != b"/" && below(p, name))
}

/// Whether `path` (absolute) is a directory itself, not a symlink to one.
fn is_dir_nofollow(path: &[u8]) -> bool {
    use std::os::unix::ffi::OsStrExt;
    std::fs::symlink_metadata(std::ffi::OsStr::from_bytes(path)).is_ok_and(|m| m.is_dir())
}

/// The trapped process's environment as it started (for `when.env`; a later `setenv` in the
/// process is not visible here).
fn proc_environ(pid: u32) -> Vec<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|e| !e.is_empty())
                .map(<[u8]>::to_vec)
                .collect()
        })
        .unwrap_or_default()
}

/// Answers one notification: continue it, or fail it with `error`.
fn respond(fd: &OwnedFd, id: u64, allow: bool, error: i32) {
    let resp = Resp {
        id,
        val: 0,
        error: if allow { 0 } else { -error },
        flags: if allow { USER_NOTIF_FLAG_CONTINUE } else { 0 },
    };
    // SAFETY: one valid seccomp_notif_resp. An error means the call is gone.
    unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &resp) };
}

/// `guard: exec of X denied by rule R: reason`, like the in-process layer writes.
fn tell_denied(pid: u32, target: &str, rule: &str, reason: &str) {
    tell(
        pid,
        &format!(
            "guard: exec of {} denied by rule {}: {}\n",
            target.split(' ').next().unwrap_or(target),
            if rule.is_empty() { "(default)" } else { rule },
            reason
        ),
    );
}

/// The denial line on the trapped process's stderr (best effort; the agent reads it).
fn tell(pid: u32, line: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_APPEND)
        .open(format!("/proc/{pid}/fd/2"))
    {
        let _ = f.write_all(line.as_bytes());
    }
}

fn proc_link(pid: u32, what: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/{what}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn ppid_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the last ')' (the command name may contain anything): state, then ppid.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// A NUL-terminated string at `addr`, read page by page (a read must not cross into an
/// unmapped page).
fn read_str(mem: &File, addr: u64) -> Option<Vec<u8>> {
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < MAX_STR {
        let room = 4096 - (at % 4096) as usize;
        let mut buf = vec![0u8; room];
        let n = mem.read_at(&mut buf, at).ok()?;
        if n == 0 {
            return None;
        }
        if let Some(z) = buf[..n].iter().position(|c| *c == 0) {
            out.extend_from_slice(&buf[..z]);
            return Some(out);
        }
        out.extend_from_slice(&buf[..n]);
        at = at.checked_add(n as u64)?;
    }
    Some(out)
}

/// A NULL-terminated array of string pointers (argv, envp). The pointers are read a page
/// at a time and the strings' first bytes in one `process_vm_readv` (an exec's environment
/// is dozens of strings: one `pread` each cost more than the rest of the decision); a string
/// longer than that, or that call failing, falls back to [`read_str`].
fn read_vec(pid: u32, mem: &File, addr: u64) -> Vec<Vec<u8>> {
    let mut ptrs: Vec<u64> = Vec::new();
    if addr == 0 {
        return Vec::new();
    }
    let mut at = addr;
    'pages: while ptrs.len() < MAX_ARGS {
        let room = (4096 - (at % 4096) as usize).max(8) / 8 * 8;
        let mut buf = vec![0u8; room];
        let n = match mem.read_at(&mut buf, at) {
            Ok(n) if n >= 8 => n / 8 * 8,
            _ => break,
        };
        for c in buf[..n].chunks_exact(8) {
            let p = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            if p == 0 || ptrs.len() >= MAX_ARGS {
                break 'pages;
            }
            ptrs.push(p);
        }
        at = match at.checked_add(n as u64) {
            Some(a) => a,
            None => break,
        };
    }
    let heads = read_heads(pid, &ptrs);
    let mut out = Vec::with_capacity(ptrs.len());
    let mut total = 0usize;
    for (i, p) in ptrs.iter().enumerate() {
        let s = match heads.get(i).and_then(|h| h.as_ref()) {
            Some(h) => h.clone(),
            None => read_str(mem, *p).unwrap_or_default(),
        };
        total += s.len();
        out.push(s);
        if total > MAX_TOTAL {
            break;
        }
    }
    out
}

/// The strings at `ptrs` that end within their first [`HEAD`] bytes (never crossing a page, so
/// a short string next to an unmapped page still reads), `None` for the others.
fn read_heads(pid: u32, ptrs: &[u64]) -> Vec<Option<Vec<u8>>> {
    const HEAD: usize = 256;
    const BATCH: usize = 512;
    let mut out: Vec<Option<Vec<u8>>> = vec![None; ptrs.len()];
    let mut buf = vec![0u8; BATCH * HEAD];
    for (b, chunk) in ptrs.chunks(BATCH).enumerate() {
        let mut local = Vec::with_capacity(chunk.len());
        let mut remote = Vec::with_capacity(chunk.len());
        for (i, p) in chunk.iter().enumerate() {
            let len = HEAD.min(4096 - (*p % 4096) as usize);
            local.push(libc::iovec {
                iov_base: buf[i * HEAD..].as_mut_ptr().cast(),
                iov_len: len,
            });
            remote.push(libc::iovec {
                iov_base: *p as usize as *mut libc::c_void,
                iov_len: len,
            });
        }
        // SAFETY: every local iovec points into `buf` with its length within it.
        let got = unsafe {
            libc::process_vm_readv(
                pid as libc::pid_t,
                local.as_ptr(),
                local.len() as libc::c_ulong,
                remote.as_ptr(),
                remote.len() as libc::c_ulong,
                0,
            )
        };
        if got <= 0 {
            continue;
        }
        // A partial read fills iovecs in order: the ones within `got` are complete.
        let mut left = got as usize;
        for (i, l) in local.iter().enumerate() {
            if left < l.iov_len {
                break;
            }
            left -= l.iov_len;
            let bytes = &buf[i * HEAD..i * HEAD + l.iov_len];
            if let Some(z) = bytes.iter().position(|c| *c == 0)
                && let Some(slot) = out.get_mut(b * BATCH + i)
            {
                *slot = Some(bytes[..z].to_vec());
            }
        }
    }
    out
}

/// The program's absolute path, lexically (like libguard's `path::lexical`).
fn resolve(pid: u32, dirfd: i64, path: &[u8], flags: u64) -> Vec<u8> {
    resolve_in(pid, dirfd, path, flags).unwrap_or_else(|| clean(b"", path))
}

/// The absolute name the kernel will act on, lexically: `None` when it is relative to a
/// directory whose name cannot be read as an absolute path (the process is gone, or the fd is
/// no directory: a pipe, a socket), so that a file check never runs on a made-up name.
fn resolve_in(pid: u32, dirfd: i64, path: &[u8], flags: u64) -> Option<Vec<u8>> {
    let base = if path.first() == Some(&b'/') {
        return Some(clean(b"", path));
    } else if dirfd == libc::AT_FDCWD as i64 {
        proc_link(pid, "cwd")
    } else {
        proc_link(pid, &format!("fd/{dirfd}"))
    };
    if !base.starts_with('/') {
        return None;
    }
    if path.is_empty() && flags & libc::AT_EMPTY_PATH as u64 != 0 {
        return Some(base.into_bytes());
    }
    Some(clean(base.as_bytes(), path))
}

/// `base` + `/` + `path`, with `.`, `..` and repeated slashes taken out lexically.
fn clean(base: &[u8], path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in base.split(|c| *c == b'/').chain(path.split(|c| *c == b'/')) {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = Vec::new();
    for p in parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// (ip, port) of an AF_INET/AF_INET6 sockaddr; v4-mapped v6 addresses count as v4.
fn inet(sa: &[u8]) -> Option<(IpAddr, u16)> {
    let fam = u16::from_ne_bytes([*sa.first()?, *sa.get(1)?]) as i32;
    let port = u16::from_be_bytes([*sa.get(2)?, *sa.get(3)?]);
    match fam {
        libc::AF_INET => {
            let b: [u8; 4] = sa.get(4..8)?.try_into().ok()?;
            Some((IpAddr::V4(Ipv4Addr::from(b)), port))
        }
        libc::AF_INET6 => {
            let b: [u8; 16] = sa.get(8..24)?.try_into().ok()?;
            let v6 = Ipv6Addr::from(b);
            Some((
                match v6.to_ipv4_mapped() {
                    Some(v4) => IpAddr::V4(v4),
                    None => IpAddr::V6(v6),
                },
                port,
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_resolve_lexically() {
        assert_eq!(resolve(1, -100, b"/usr/bin/../bin/./ls", 0), b"/usr/bin/ls");
    }

    #[test]
    fn names_resolve_against_cwd_and_dirfd_or_not_at_all() {
        let me = std::process::id();
        let cwd = std::env::current_dir().unwrap();
        let want = format!("{}/x", cwd.display());
        assert_eq!(resolve_in(me, -100, b"a/../x", 0), Some(want.into_bytes()));
        let dir = File::open("/usr").unwrap();
        let fd = dir.as_raw_fd() as i64;
        assert_eq!(
            resolve_in(me, fd, b"./bin//ls", 0),
            Some(b"/usr/bin/ls".to_vec())
        );
        let at_empty = libc::AT_EMPTY_PATH as u64;
        assert_eq!(resolve_in(me, fd, b"", at_empty), Some(b"/usr".to_vec()));
        // A pipe is no directory: no name to judge.
        let (r, _w) = std::io::pipe().unwrap();
        assert_eq!(resolve_in(me, r.as_raw_fd() as i64, b"x", 0), None);
        // Absolute names ignore the dirfd.
        assert_eq!(
            resolve_in(me, 999_999, b"/a/./b", 0),
            Some(b"/a/b".to_vec())
        );
    }

    #[test]
    fn sockaddrs_parse() {
        let mut v4 = vec![0u8; 16];
        v4[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v4[2..4].copy_from_slice(&8080u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(inet(&v4), Some((IpAddr::V4(Ipv4Addr::LOCALHOST), 8080)));
        let mut un = vec![0u8; 16];
        un[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        assert_eq!(inet(&un), None);
        assert_eq!(inet(&[2]), None);
    }

    #[test]
    fn strings_and_vectors_are_read_from_process_memory() {
        let mem = File::open("/proc/self/mem").unwrap();
        // A string that ends right at a page boundary is read to its NUL, not beyond.
        let mut page = vec![b'x'; 3 * 4096];
        let base = page.as_ptr() as usize;
        let end = (base / 4096 + 2) * 4096;
        let off = end - base;
        page[off - 1] = 0;
        let start = base + off - 100;
        let s = read_str(&mem, start as u64).unwrap();
        assert_eq!(s.len(), 99);
        assert!(s.iter().all(|c| *c == b'x'));
        let a = std::ffi::CString::new("terraform").unwrap();
        let b = std::ffi::CString::new("destroy").unwrap();
        // Longer than one head: read by the fallback.
        let long = std::ffi::CString::new("y".repeat(5000)).unwrap();
        let argv = [a.as_ptr(), b.as_ptr(), long.as_ptr(), std::ptr::null()];
        let me = std::process::id();
        let v = read_vec(me, &mem, argv.as_ptr() as u64);
        assert_eq!(
            v,
            vec![b"terraform".to_vec(), b"destroy".to_vec(), vec![b'y'; 5000]]
        );
        assert_eq!(read_vec(me, &mem, 0), Vec::<Vec<u8>>::new());
        // The string ending at the page boundary, through the batched path too.
        let edge = [start as *const libc::c_char, std::ptr::null()];
        assert_eq!(read_vec(me, &mem, edge.as_ptr() as u64), vec![s]);
        assert_eq!(read_str(&mem, 0), None);
        // An unmapped address reads as nothing, not a panic.
        assert_eq!(read_str(&mem, 8), None);
    }

    #[test]
    fn file_calls_decode_like_the_kernel_reads_them() {
        let cwd = libc::AT_FDCWD as i64;
        let at = |d: i64, p: u64| Some(NameArg { dirfd: d, ptr: p });
        let ro = libc::O_RDONLY as u64;
        let wr = (libc::O_WRONLY | libc::O_CREAT) as u64;
        // A read-only openat is not a file operation (the filter does not trap it either).
        assert_eq!(file_call(libc::SYS_openat, &[3, 10, ro, 0, 0, 0]), None);
        let c = file_call(libc::SYS_openat, &[3, 10, wr, 0, 0, 0]).unwrap();
        assert_eq!((c.kind, c.names), (FileKind::Write, [at(3, 10), None]));
        // AT_FDCWD arrives as a 64-bit register holding the int -100.
        let c = file_call(
            libc::SYS_unlinkat,
            &[(-100i64) as u32 as u64, 10, 0, 0, 0, 0],
        );
        assert_eq!(c.unwrap().names, [at(cwd, 10), None]);
        let c = file_call(libc::SYS_openat2, &[3, 10, 99, 24, 0, 0]).unwrap();
        assert_eq!((c.kind, c.how), (FileKind::Write, Some(99)));
        let c = file_call(libc::SYS_renameat2, &[3, 10, 4, 11, 2, 0]).unwrap();
        assert_eq!(
            (c.kind, c.names, c.flags),
            (FileKind::Rename, [at(3, 10), at(4, 11)], 2)
        );
        let c = file_call(libc::SYS_linkat, &[3, 10, 4, 11, 0, 0]).unwrap();
        assert_eq!((c.kind, c.names), (FileKind::Link, [at(3, 10), at(4, 11)]));
        let c = file_call(libc::SYS_symlinkat, &[10, 4, 11, 0, 0, 0]).unwrap();
        assert_eq!((c.kind, c.names), (FileKind::Write, [at(4, 11), None]));
        assert_eq!(file_call(libc::SYS_read, &[0; 6]), None);
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(file_call(libc::SYS_open, &[10, ro, 0, 0, 0, 0]), None);
            let c = file_call(libc::SYS_rename, &[10, 11, 0, 0, 0, 0]).unwrap();
            assert_eq!(c.names, [at(cwd, 10), at(cwd, 11)]);
            let c = file_call(libc::SYS_rmdir, &[10, 0, 0, 0, 0, 0]).unwrap();
            assert_eq!(c.kind, FileKind::Delete);
        }
    }

    #[test]
    fn write_class_flags_match_libguard() {
        assert!(!write_class(libc::O_RDONLY as u64));
        assert!(!write_class(
            (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_DIRECTORY) as u64
        ));
        for f in [
            libc::O_WRONLY,
            libc::O_RDWR,
            libc::O_CREAT,
            libc::O_TRUNC,
            libc::O_APPEND,
            libc::O_TMPFILE | libc::O_WRONLY,
        ] {
            assert!(write_class(f as u64), "{f:#o}");
        }
    }

    #[test]
    fn self_protection_covers_the_path_below_and_for_deletes_the_ancestors() {
        let p = b"/home/a/.local/state/guard";
        assert!(touches(b"/home/a/.local/state/guard", p, false));
        assert!(touches(b"/home/a/.local/state/guard/x/y", p, false));
        assert!(!touches(b"/home/a/.local/state/guardian", p, false));
        assert!(!touches(b"/home/a/.local", p, false));
        assert!(touches(b"/home/a/.local", p, true));
        assert!(!touches(b"/", p, true));
        assert!(!touches(b"/home/a/x", b"", true));
    }

    #[test]
    fn names_add_the_resolved_parent() {
        let d = std::env::temp_dir().join(format!("kl-names-{}", std::process::id()));
        std::fs::create_dir_all(d.join("real")).unwrap();
        let link = d.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(d.join("real"), &link).unwrap();
        let real = std::fs::canonicalize(d.join("real")).unwrap();
        let lex = format!("{}/f", link.display());
        let n = names_of(std::process::id(), lex.as_bytes(), false);
        assert_eq!(n[0], lex.as_bytes());
        assert_eq!(
            n.get(1).map(|v| v.as_slice()),
            Some(format!("{}/f", real.display()).as_bytes())
        );
        // Nothing to resolve: the lexical name alone.
        let plain = format!("{}/f", real.display());
        assert_eq!(
            names_of(1, plain.as_bytes(), false),
            vec![plain.as_bytes().to_vec()]
        );
        // An open follows a symlink at the end of the name; a delete acts on the link.
        let flink = real.join("flink");
        std::os::unix::fs::symlink(real.join("target"), &flink).unwrap();
        let fl = flink.display().to_string();
        assert_eq!(
            names_of(1, fl.as_bytes(), false),
            vec![fl.as_bytes().to_vec()]
        );
        let _ = std::fs::write(real.join("target"), "x");
        let followed = names_of(1, fl.as_bytes(), true);
        assert_eq!(followed.len(), 2, "{followed:?}");
        assert!(followed[1].ends_with(b"/real/target"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn env_lookup_takes_the_last_assignment() {
        let e = BytesEnv(vec![b"A=1".to_vec(), b"AB=2".to_vec(), b"A=3".to_vec()]);
        assert_eq!(e.get(b"A"), Some(&b"3"[..]));
        assert_eq!(e.get(b"B"), None);
    }
}
