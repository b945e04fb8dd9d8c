//! Which language runtime this process is, for the `runtime` field of audit events.

/// Classifies by the executable's basename (`/proc/self/exe`), falling back to argv[0].
pub fn detect(exe: &[u8], argv0: &[u8]) -> &'static str {
    let pick = |p: &[u8]| -> Option<&'static str> {
        let base = p.rsplit(|c| *c == b'/').next().unwrap_or(p);
        if base.starts_with(b"python") || base.starts_with(b"pypy") {
            Some("python")
        } else if base == b"node" || base == b"nodejs" || base == b"bun" || base == b"deno" {
            Some("node")
        } else if base.starts_with(b"ruby") {
            Some("ruby")
        } else if base == b"java" {
            Some("java")
        } else if base == b"go" {
            Some("go")
        } else {
            None
        }
    };
    if let Some(r) = pick(exe).or_else(|| pick(argv0)) {
        return r;
    }
    if is_go_binary() { "go" } else { "native" }
}

/// Go binaries built with cgo (the only ones that load a preload library) export cgo runtime
/// entry points in their dynamic symbol table.
fn is_go_binary() -> bool {
    for sym in [
        c"_cgo_topofstack",
        c"_cgo_panic",
        c"_cgo_wait_runtime_init_done",
    ] {
        // SAFETY: dlsym with a valid C string; the result is only compared with NULL.
        if !unsafe { libc::dlsym(libc::RTLD_DEFAULT, sym.as_ptr()) }.is_null() {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn runtimes_by_name() {
        assert_eq!(super::detect(b"/usr/bin/python3.11", b""), "python");
        assert_eq!(super::detect(b"/usr/bin/node", b""), "node");
        assert_eq!(super::detect(b"/x/unknown", b"ruby"), "ruby");
    }
}
