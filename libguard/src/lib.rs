//! `libguard.so`: injected with `LD_PRELOAD` into the agent and every process it spawns.
//!
//! Owns: the hooks on libc's file, exec and network entry points, the in-process evaluation of
//! each action against the memory-mapped ruleset, re-injection of the guard into children, and
//! the client side of the broker protocol.
//!
//! Must never: allocate or lock on the allow path, panic across the FFI boundary, re-enter its
//! own hooks, touch per-thread state in a vfork child without restoring it, or leave the guarded
//! program crashed or hung because the ruleset or the broker is broken.
//!
//! # Life cycle
//! A global state machine UNINIT → INITIALIZING → READY. The `.init_array` constructor (linked
//! `-z initfirst`, so it normally runs before any other library's constructor) initialises; any
//! hook reached earlier initialises lazily, and a hook reached *during* initialisation (another
//! thread, or the loader re-entering) passes straight through. Initialisation snapshots the
//! `GUARD_*` variables and `LD_PRELOAD`, finds this library's absolute path, maps
//! `GUARD_RULESET` read-only (raw syscalls) and `Ruleset::load`s it once, and resolves every real
//! function with `dlsym(RTLD_NEXT)`. The library's own I/O uses raw syscalls (`raw.rs`), and a
//! per-thread bypass flag (`const` thread-local `Cell<bool>`) makes anything else it calls pass
//! through its hooks.
//!
//! # When the ruleset is missing or corrupt (degraded mode)
//! The program is never crashed or hung. It writes one line per process to stderr
//! (`guard: ruleset PATH unusable (WHY): failing closed, ...`) the first time it decides
//! something, and then fails closed for what can do harm: exec, connect (AF_INET/AF_INET6),
//! file writes and deletes fail with `EACCES`, except writes to terminals and the null device
//! (`/dev/null`, `/dev/tty`, `/dev/pts/*`, `/dev/fd/*`, `/proc/self/fd/*`, `/dev/std*`) so that
//! shells and runtimes can still report errors. Reads are allowed (a runtime must be able to
//! start and print why it fails). Events carry rule `ruleset-unavailable`.
//!
//! # File checks
//! Every path is evaluated under its lexical absolute name and under the name the kernel
//! resolves it to (symlinks, `..`, `/proc/self/fd/N`); the strictest verdict wins (`path.rs`).
//! Read-only opens are checked lexically before the call and on the opened fd after it (one
//! `readlink`; a refused fd is closed before the program sees it). Writes, deletes and renames
//! are checked before the call, resolving through an `O_PATH` open. The `open`/`openat` family
//! first tries an allow fast path (`path::fast_open`): when the lexical name is allowed, the
//! real open is `openat2(RESOLVE_NO_SYMLINKS)`, and if it succeeds no symlink was followed, so
//! the lexical name is the real one and no readback is needed (no extra syscall for an
//! absolute path; a symlink anywhere falls back to the checks above). `read`/`pread` are not
//! hooked. Numbers: BENCHMARKS.md.
//!
//! # Decisions and events
//! See `eval.rs`: deny → `EACCES`; ask → held until the broker answers (`ask.rs`), denied on
//! timeout or without a broker; redact → the program reads a sealed redacted copy, and
//! write-class opens of the path are refused (`redact.rs`, which also finds secrets by content
//! in the workspace and HOME); monitor mode never blocks. Audit events
//! go to the broker without ever blocking (`broker.rs`): every non-allow decision and every
//! exec (whatever its decision) is sent; plain allows of file and connect actions are not.
//!
//! # Self-protection
//! Writes, deletes and renames of the guard's own files (`GUARD_PROTECT`, the ruleset, this
//! library) fail with `EACCES` whatever the policy says (`selfprotect.rs`).
//!
//! # TLS
//! `hooks/tls.rs`: HTTP requests written into OpenSSL connections are reassembled and gated as
//! `http` actions before any byte of them is sent (interposed libssl; node's static OpenSSL is
//! patched in place by `trampoline.rs`).
//!
//! # Known gaps (in-process layer)
//! Raw `syscall` instructions, static and setuid binaries (recorded as `exec-unguardable`),
//! `ctypes`/`dlsym(libc)` calls, `RTLD_DEEPBIND` libraries, glibc-internal opens
//! (`opendir`, NSS, `tmpfile`), `gethostbyname*` (only `getaddrinfo` names reach connect
//! rules), `sendto` with `MSG_FASTOPEN`, and Go's own syscalls are not seen here. A hooked call
//! made by a signal handler that interrupted the library's own code on the same thread passes
//! through unevaluated (the per-thread bypass flag is set at that moment).

// The exported hooks take libc's raw pointers with libc's contracts (documented in the man
// pages, not repeated per function), and the internal helpers they call receive those same
// C pointers unchanged.
#![allow(clippy::missing_safety_doc, clippy::not_unsafe_ptr_arg_deref)]

pub mod allow_cache;
pub mod ask;
pub mod broker;
pub mod content_scope;
pub mod cwd_cache;
pub mod dns;
pub mod envp;
pub mod eval;
pub mod hooks;
pub mod memo;
pub mod path;
pub mod raw;
pub mod redact;
pub mod runtime;
pub mod seccomp;
pub mod selfprotect;
pub mod state;
pub mod trampoline;
