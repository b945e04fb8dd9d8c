//! `libguard.so`: injected with `LD_PRELOAD` into the agent and every process it spawns.
//!
//! Owns: the hooks on libc's file, exec and network entry points (and OpenSSL's `SSL_write`),
//! the in-process evaluation of each action against the memory-mapped ruleset, re-injection of
//! the guard into children, and the client side of the broker protocol.
//!
//! Must never: allocate or lock on the allow path, panic across the FFI boundary, re-enter its
//! own hooks, touch per-thread state in a vfork child without restoring it, or leave the guarded
//! program crashed or hung because the ruleset or the broker is broken.
