//! `meshtls`: the command line for platform scripts and CI pipelines.
//!
//! Exit codes: 0 success, 1 a verdict of "no" (invalid, rejected), 2 bad usage.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod ca;
#[cfg(feature = "grpc")]
mod ca_serve;
mod identity;
#[cfg(feature = "grpc")]
mod istio_ca;
mod policy;
mod svid;

#[derive(Parser, Debug)]
#[command(
    name = "meshtls",
    version,
    about = "Istio/SPIFFE identities, policies, a mesh CA and SVID checks"
)]
struct Cli {
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and check a SPIFFE ID (strictly, or with --lenient).
    Id(identity::IdArgs),
    /// Read an Istio mesh config (ConfigMap manifest or bare `mesh` document).
    Mesh(identity::MeshArgs),
    /// Create a mesh CA (root or intermediate) or print its cacerts Secret.
    Ca(ca::CaArgs),
    /// Issue an X.509-SVID with Istio's workload profile.
    Issue(ca::IssueArgs),
    /// Sign a CSR for an identity, as istiod does (the CSR's names are ignored).
    SignCsr(ca::SignCsrArgs),
    /// Issue an X.509-SVID and print it as a kubernetes.io/tls Secret.
    Secret(ca::SecretArgs),
    /// PeerAuthentication: validate manifests, or resolve a workload's mTLS mode.
    Policy(policy::PolicyArgs),
    /// Verify a peer's X.509-SVID chain against per-trust-domain bundles (exit 1 if rejected).
    Verify(svid::VerifyArgs),
    /// Show the SVID-relevant fields of PEM certificates.
    Inspect(svid::InspectArgs),
    /// Istio's CA protocol as a client: get an SVID from istiod (or `meshtls ca serve`).
    #[cfg(feature = "grpc")]
    IstioCa(istio_ca::IstioCaArgs),
}

/// What a subcommand concluded.
pub(crate) enum Outcome {
    /// Success; print this.
    Yes(serde_json::Value, String),
    /// A verdict of "no"; print this.
    No(serde_json::Value, String),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let outcome = match cli.command {
        Command::Id(args) => identity::id(args),
        Command::Mesh(args) => identity::mesh(args),
        Command::Ca(args) => ca::ca(args),
        Command::Issue(args) => ca::issue(args),
        Command::SignCsr(args) => ca::sign_csr(args),
        Command::Secret(args) => ca::secret(args),
        Command::Policy(args) => policy::run(args),
        Command::Verify(args) => svid::verify(args),
        Command::Inspect(args) => svid::inspect(args),
        #[cfg(feature = "grpc")]
        Command::IstioCa(args) => istio_ca::run(args),
    };
    match outcome {
        Ok(Outcome::Yes(json, text)) => {
            print_out(cli.json, &json, &text);
            ExitCode::SUCCESS
        }
        Ok(Outcome::No(json, text)) => {
            print_out(cli.json, &json, &text);
            ExitCode::from(1)
        }
        Err(msg) => {
            eprintln!("meshtls: {msg}");
            ExitCode::from(2)
        }
    }
}

/// Reads a whole input file, or standard input for `-`.
pub(crate) fn read_input(path: &std::path::Path) -> Result<String, String> {
    if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("cannot read standard input: {e}"))
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    }
}

fn print_out(json: bool, value: &serde_json::Value, text: &str) {
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}
