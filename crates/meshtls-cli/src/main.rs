//! `meshtls`: the command line for platform scripts and CI pipelines.
//!
//! Exit codes: 0 success, 1 a verdict of "no" (invalid, rejected), 2 bad usage.
//!
//! Conventions every subcommand follows: a CA is always `--ca DIR`; with `--json`, whatever
//! the exit code, standard output holds one JSON object, and an error is
//! `{"error": <message>, "kind": <kind>}` (plus the command's own fields); messages are the
//! core's `Display` text, never `Debug`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod authz;
mod ca;
#[cfg(feature = "grpc")]
mod ca_serve;
#[cfg(feature = "kube")]
mod controller;
#[cfg(feature = "hbone")]
mod hbone;
mod identity;
#[cfg(feature = "grpc")]
mod istio_ca;
mod jwt;
mod path;
mod policy;
mod svid;
#[cfg(feature = "workload-api")]
mod workload_api;
#[cfg(feature = "workload-api")]
mod workload_api_fetch;

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
    /// AuthorizationPolicy: validate manifests, or evaluate a request against them.
    Authz(authz::AuthzArgs),
    /// Will a caller get through to a pod (mTLS mode, trust domain, authorization), and why.
    Path(path::PathArgs),
    /// Verify a peer's X.509-SVID chain against per-trust-domain bundles (exit 1 if rejected).
    Verify(svid::VerifyArgs),
    /// Show the SVID-relevant fields of PEM certificates.
    Inspect(svid::InspectArgs),
    /// Istio's CA protocol as a client: get an SVID from istiod (or `meshtls ca serve`).
    #[cfg(feature = "grpc")]
    IstioCa(istio_ca::IstioCaArgs),
    /// Istio ambient's HBONE tunnel: `connect` (stdin/stdout through a tunnel) and `serve`
    /// (an acceptor forwarding to a local port).
    #[cfg(feature = "hbone")]
    Hbone(hbone::HboneArgs),
    /// The gateway-certificate controller: keep a gateway's mesh certificate in a Secret.
    #[cfg(feature = "kube")]
    Controller(controller::ControllerArgs),
    /// JWT-SVIDs: a CA's JWT key, mint, bundle (JWKS), verify.
    Jwt(jwt::JwtArgs),
    /// The SPIFFE Workload API: `serve` it from a CA and a registration file.
    #[cfg(feature = "workload-api")]
    WorkloadApi(workload_api::WorkloadApiArgs),
}

/// Why a command could not run (exit code 2): bad usage, an unreadable file, or a library
/// error that is not a verdict.
#[derive(Debug)]
pub(crate) struct Failure {
    /// `usage`, `io`, or the kind of the library error ([`error_kind`]).
    pub(crate) kind: &'static str,
    /// The message (`Display` of the underlying error).
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::new("usage", message)
    }
}

impl From<meshtls::Error> for Failure {
    fn from(e: meshtls::Error) -> Self {
        Failure::new(error_kind(&e), e.to_string())
    }
}

/// The `kind` of a library error in JSON output: which area refused.
pub(crate) fn error_kind(e: &meshtls::Error) -> &'static str {
    match e {
        meshtls::Error::SpiffeId(_) => "spiffe_id",
        meshtls::Error::Identity(_) => "identity",
        meshtls::Error::Manifest(_) => "manifest",
        meshtls::Error::MeshConfig(_) => "mesh_config",
        meshtls::Error::Policy(_) => "policy",
        meshtls::Error::AuthorizationPolicy(_) => "authorization_policy",
        meshtls::Error::Ca(_) => "ca",
        meshtls::Error::Svid(_) => "svid",
        meshtls::Error::Bundle(_) => "bundle",
        meshtls::Error::Authz(_) => "authorization",
        meshtls::Error::Tls(_) => "tls",
        meshtls::Error::CaProtocol(_) => "ca_protocol",
        meshtls::Error::Hbone(_) => "hbone",
        meshtls::Error::Controller(_) => "controller",
        meshtls::Error::Jwt(_) => "jwt",
        #[cfg(feature = "workload-api")]
        meshtls::Error::WorkloadApi(_) => "workload_api",
        meshtls::Error::WorkloadClient(_) => "workload_api_client",
        meshtls::Error::Io { .. } => "io",
        _ => "error",
    }
}

/// A verdict of "no" from a library error: `{"error", "kind"}` plus `extra` fields.
pub(crate) fn refused(e: &meshtls::Error, extra: serde_json::Value, text: String) -> Outcome {
    let mut value = json_error(error_kind(e), &e.to_string());
    if let (Some(obj), serde_json::Value::Object(more)) = (value.as_object_mut(), extra) {
        for (k, v) in more {
            obj.entry(k).or_insert(v);
        }
    }
    Outcome::No(value, text)
}

fn json_error(kind: &str, message: &str) -> serde_json::Value {
    serde_json::json!({"error": message, "kind": kind})
}

/// What a subcommand concluded.
pub(crate) enum Outcome {
    /// Success; print this.
    Yes(serde_json::Value, String),
    /// A verdict of "no"; print this.
    No(serde_json::Value, String),
    /// Standard output carried data (`hbone connect`): print nothing there; exit 0, or 1 with
    /// the error on standard error (as JSON on standard error with --json).
    Piped(Option<serde_json::Value>, String),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if !e.use_stderr() {
                // --help, --version.
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // `--json` anywhere (it is a global flag) asks for JSON, even when the rest of
            // the command line could not be parsed.
            if std::env::args_os().skip(1).any(|a| a == "--json") {
                let rendered = e.render().to_string();
                let message = rendered
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("bad usage")
                    .trim_start_matches("error: ")
                    .to_owned();
                emit(&json_error("usage", &message).to_string());
            } else {
                let _ = e.print();
            }
            return ExitCode::from(2);
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
        Command::Authz(args) => authz::run(args),
        Command::Path(args) => path::run(args),
        Command::Verify(args) => svid::verify(args),
        Command::Inspect(args) => svid::inspect(args),
        #[cfg(feature = "grpc")]
        Command::IstioCa(args) => istio_ca::run(args),
        #[cfg(feature = "hbone")]
        Command::Hbone(args) => hbone::run(args),
        #[cfg(feature = "kube")]
        Command::Controller(args) => controller::run(args),
        Command::Jwt(args) => jwt::run(args),
        #[cfg(feature = "workload-api")]
        Command::WorkloadApi(args) => workload_api::run(args),
    };
    match outcome {
        Ok(Outcome::Yes(json, text)) => {
            print_out(cli.json, &json, &text);
            ExitCode::SUCCESS
        }
        Ok(Outcome::Piped(None, _)) => ExitCode::SUCCESS,
        Ok(Outcome::Piped(Some(json), text)) => {
            if cli.json {
                eprintln!("{json}");
            } else {
                eprintln!("{text}");
            }
            ExitCode::from(1)
        }
        Ok(Outcome::No(mut json, text)) => {
            // A verdict's error always says which kind of check refused.
            if let Some(obj) = json.as_object_mut() {
                if obj.contains_key("error") && !obj.contains_key("kind") {
                    obj.insert("kind".into(), "rejected".into());
                }
            }
            print_out(cli.json, &json, &text);
            ExitCode::from(1)
        }
        Err(failure) => {
            if cli.json {
                emit(&json_error(failure.kind, &failure.message).to_string());
            } else {
                eprintln!("meshtls: {}", failure.message);
            }
            ExitCode::from(2)
        }
    }
}

/// Reads a whole input file, or standard input for `-`.
pub(crate) fn read_input(path: &std::path::Path) -> Result<String, Failure> {
    if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| Failure::new("io", format!("cannot read standard input: {e}")))
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| Failure::new("io", format!("cannot read {}: {e}", path.display())))
    }
}

fn print_out(json: bool, value: &serde_json::Value, text: &str) {
    if json {
        emit(&value.to_string());
    } else {
        emit(text);
    }
}

/// Writes one line to standard output. A reader that closed the pipe early (`| head`) ends
/// the output quietly, as Unix tools do; any other write error is reported on standard error
/// (`println!` would panic in both cases).
pub(crate) fn emit(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("meshtls: cannot write standard output: {e}");
        }
    }
}
