//! Tells the tests whether the shared spec beside the repository is there: a test that reads
//! `../shared/spec` is marked ignored ("skipped: …") when it is absent, instead of passing
//! without checking anything. Nothing of the library depends on it.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(meshtls_no_shared_spec)");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let spec = Path::new(&dir).join("../../../shared/spec/crd-peerauthentication.yaml");
    println!("cargo::rerun-if-changed={}", spec.display());
    println!("cargo::rerun-if-changed=build.rs");
    if !spec.is_file() {
        println!("cargo::rustc-cfg=meshtls_no_shared_spec");
    }
}
