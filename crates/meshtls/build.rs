//! Tells the tests whether the shared spec beside the repository is there: a test that reads
//! `../shared/spec` is marked ignored ("skipped: …") when it is absent, instead of passing
//! without checking anything. Nothing of the library depends on it.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(meshtls_no_shared_spec)");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let spec = Path::new(&dir).join("../../../shared/spec/crd-peerauthentication.yaml");
    println!("cargo::rerun-if-changed=build.rs");
    if spec.is_file() {
        // Watched only while it exists: cargo counts a watched path that is missing as changed
        // on every build, which would rebuild meshtls (for every crate that depends on it) each
        // time. So a spec that appears later is noticed after `cargo clean -p meshtls`.
        println!("cargo::rerun-if-changed={}", spec.display());
    } else {
        println!("cargo::rustc-cfg=meshtls_no_shared_spec");
    }
}
