//! Builds the C export layer (variadic entry points that stable Rust cannot define) and sets the
//! link flags of the preload library.
fn main() {
    // `+whole-archive`: nothing in Rust references the shim's exports, so without it the linker
    // would drop them; `exports.map` then keeps them global next to rustc's own version script.
    cc::Build::new()
        .file("csrc/shim.c")
        .flag_if_supported("-fno-stack-protector")
        .link_lib_modifier("+whole-archive")
        .compile("guardshim");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    link_unwinder_statically();
    // INITFIRST: our constructor runs before those of the program's DT_NEEDED libraries, which
    // may call hooked functions (the hooks still initialise lazily if another object wins).
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,initfirst");
    println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={dir}/csrc/exports.map");
    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-changed=csrc/exports.map");
}

/// Rust's std asks the linker for `-lgcc_s` (its unwinder), which made every guarded process
/// load and relocate one more shared object for code that only runs on a panic (an abort in
/// this library). A `libgcc_s.so` linker script found first on the search path hands the linker
/// the static `libgcc_eh.a` (PIC, what `gcc -shared -static-libgcc` links) instead; its symbols
/// stay local through the version scripts. Only when the toolchain has `libgcc_eh.a` (found by
/// asking the C compiler); otherwise the default applies.
fn link_unwinder_statically() {
    let Ok(out) = std::env::var("OUT_DIR") else {
        return;
    };
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux")
        || std::env::var("CARGO_CFG_TARGET_ENV").as_deref() != Ok("gnu")
    {
        return;
    }
    let cc = cc::Build::new().get_compiler();
    let found = std::process::Command::new(cc.path())
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|p| p.starts_with('/') && std::path::Path::new(p).exists());
    let Some(eh) = found else {
        return;
    };
    let script = format!("/* libguard build.rs: the unwinder, linked statically */\nINPUT({eh})\n");
    let dir = std::path::Path::new(&out).join("static-unwind");
    if std::fs::create_dir_all(&dir).is_ok()
        && std::fs::write(dir.join("libgcc_s.so"), script).is_ok()
    {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
}
