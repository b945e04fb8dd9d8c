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
    // INITFIRST: our constructor runs before those of the program's DT_NEEDED libraries, which
    // may call hooked functions (the hooks still initialise lazily if another object wins).
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,initfirst");
    println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={dir}/csrc/exports.map");
    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-changed=csrc/exports.map");
}
