//! `meshtls-bench`: measures meshtls side by side with the alternatives in the same run and
//! prints each pair with its ratio (alternative time / meshtls time; above 1 means meshtls is
//! faster).
//!
//! ```text
//! cargo run --release -p meshtls-bench -- [--json] [--quick] [--only identity,policy,authz,jwt,hardening,hbone,...]
//! ```

use std::time::Duration;

mod authz_policy;
mod ca;
mod ca_protocol;
mod hardening;
mod harness;
mod hbone;
mod identity;
mod jwt;
mod policy;
mod svid;
mod tls;

use harness::{Harness, human};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let quick = args.iter().any(|a| a == "--quick");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let mut h = Harness {
        target: if quick {
            Duration::from_millis(20)
        } else {
            Duration::from_millis(200)
        },
        samples: if quick { 5 } else { 11 },
        rows: Vec::new(),
        only,
    };
    if h.wants("identity") {
        identity::rows(&mut h);
    }
    if h.wants("ca") {
        ca::rows(&mut h);
    }
    if h.wants("policy") {
        policy::rows(&mut h);
    }
    if h.wants("authz") {
        authz_policy::rows(&mut h);
    }
    if h.wants("svid") {
        svid::rows(&mut h);
    }
    if h.wants("tls") {
        tls::rows(&mut h);
    }
    if h.wants("hbone") {
        hbone::rows(&mut h);
    }
    if h.wants("jwt") {
        jwt::rows(&mut h);
    }
    if h.wants("grpc") {
        ca_protocol::rows(&mut h);
    }
    if h.wants("hardening") {
        if std::env::var_os("MESHTLS_BENCH_MATRIX").is_some() {
            hardening::matrix(&mut h, None);
        } else {
            hardening::rows(&mut h);
        }
    }
    if json {
        match serde_json::to_string_pretty(&h.rows) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("meshtls-bench: cannot render json: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    println!(
        "{:<9} {:<48} {:>11} {:<44} {:>11} {:>7} {:>6}",
        "group", "meshtls", "median", "alternative", "median", "ratio", "goal"
    );
    for r in &h.rows {
        let (alt_name, alt_t) = r
            .alternative
            .as_ref()
            .map(|a| (a.name.clone(), human(a.median_ns)))
            .unwrap_or_default();
        println!(
            "{:<9} {:<48} {:>11} {:<44} {:>11} {:>7} {:>6}{}",
            r.group,
            r.meshtls.name,
            human(r.meshtls.median_ns),
            alt_name,
            alt_t,
            r.ratio.map(|x| format!("{x:.2}x")).unwrap_or_default(),
            r.goal.map(|x| format!("{x}x")).unwrap_or_default(),
            if r.note.is_empty() {
                String::new()
            } else {
                format!("  ({})", r.note)
            }
        );
    }
}
