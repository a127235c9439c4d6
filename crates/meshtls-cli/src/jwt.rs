//! `meshtls jwt init|mint|bundle|verify`: JWT-SVIDs with a CA's JWT key.

use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use meshtls::ca::KeyKind;
use meshtls::jwt::{
    AudienceMatch, JWT_KEY_FILE, JwksShape, JwtBundle, JwtBundleSet, JwtPolicy, JwtSigner,
};
use meshtls::{SpiffeId, TrustDomain};
use serde_json::json;

use crate::ca::parse_duration;
use crate::{Failure, Outcome};

#[derive(clap::Args, Debug)]
pub(crate) struct JwtArgs {
    #[command(subcommand)]
    command: JwtCommand,
}

#[derive(clap::Subcommand, Debug)]
enum JwtCommand {
    /// Create the CA's JWT signing key (`jwt-key.pem` in the CA directory).
    Init(InitArgs),
    /// Mint a JWT-SVID with the CA's JWT key; prints the token.
    Mint(MintArgs),
    /// Print the JWT bundle (JWKS) of the CA's JWT key.
    Bundle(BundleArgs),
    /// Validate a JWT-SVID (exit 0 valid, 1 rejected, 2 bad usage).
    Verify(VerifyArgs),
}

#[derive(clap::Args, Debug)]
struct InitArgs {
    /// The CA directory.
    #[arg(long = "ca")]
    ca: PathBuf,
    /// Key kind: ec-p256 (ES256), ec-p384 (ES384), rsa-2048/3072/4096 (RS256).
    #[arg(long, default_value = "ec-p256")]
    key: String,
    /// Replace an existing key.
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args, Debug)]
struct MintArgs {
    /// The subject's SPIFFE ID.
    spiffe_id: String,
    /// The CA directory holding `jwt-key.pem`.
    #[arg(long = "ca")]
    ca: PathBuf,
    /// An audience (repeat for several; at least one).
    #[arg(long = "audience", required = true)]
    audiences: Vec<String>,
    /// Lifetime.
    #[arg(long, default_value = "5m")]
    ttl: String,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
enum Shape {
    /// SPIFFE bundle JSON (`use: jwt-svid`).
    Spiffe,
    /// The Workload API's plain JWKS (no `use`).
    WorkloadApi,
}

impl From<Shape> for JwksShape {
    fn from(s: Shape) -> Self {
        match s {
            Shape::Spiffe => JwksShape::SpiffeBundle,
            Shape::WorkloadApi => JwksShape::WorkloadApi,
        }
    }
}

#[derive(clap::Args, Debug)]
struct BundleArgs {
    /// The CA directory holding `jwt-key.pem`.
    #[arg(long = "ca")]
    ca: PathBuf,
    /// The trust domain of the key.
    #[arg(long)]
    trust_domain: String,
    /// JWKS shape.
    #[arg(long, value_enum, default_value = "spiffe")]
    shape: Shape,
}

#[derive(clap::Args, Debug)]
struct VerifyArgs {
    /// The token (`-` for standard input).
    token: String,
    /// `TRUST_DOMAIN=FILE`: a JWKS of that trust domain, SPIFFE bundle or Workload API shape
    /// (repeat for several; a token is checked only against its subject's).
    #[arg(long = "bundle", required = true)]
    bundles: Vec<String>,
    /// An expected audience (repeat; any of them must be in `aud`).
    #[arg(long = "audience", required = true)]
    audiences: Vec<String>,
    /// Require every expected audience instead of any.
    #[arg(long)]
    all_audiences: bool,
    /// Clock leeway for exp/nbf.
    #[arg(long, default_value = "30s")]
    leeway: String,
    /// Accept tokens without `kid` (every key of the type is tried).
    #[arg(long)]
    allow_missing_kid: bool,
}

pub(crate) fn run(args: JwtArgs) -> Result<Outcome, Failure> {
    match args.command {
        JwtCommand::Init(a) => init(a),
        JwtCommand::Mint(a) => mint(a),
        JwtCommand::Bundle(a) => bundle(a),
        JwtCommand::Verify(a) => verify(a),
    }
}

fn init(a: InitArgs) -> Result<Outcome, Failure> {
    let kind = KeyKind::parse(&a.key).map_err(|e| Failure::from(meshtls::Error::from(e)))?;
    let path = a.ca.join(JWT_KEY_FILE);
    if path.exists() && !a.force {
        return Err(Failure::new(
            "usage",
            format!("{} exists (use --force to replace it)", path.display()),
        ));
    }
    // The trust domain only matters for minting; the key file does not record it.
    let td = TrustDomain::new("key.invalid").map_err(|e| Failure::from(meshtls::Error::from(e)))?;
    let signer = JwtSigner::generate(td, kind)?;
    signer.save(&a.ca)?;
    let value = json!({
        "path": path.display().to_string(),
        "kid": signer.kid(),
        "alg": signer.algorithm().name(),
    });
    let text = format!(
        "wrote {} ({}, kid {})",
        path.display(),
        signer.algorithm(),
        signer.kid()
    );
    Ok(Outcome::Yes(value, text))
}

fn mint(a: MintArgs) -> Result<Outcome, Failure> {
    let id = SpiffeId::new(&a.spiffe_id).map_err(|e| Failure::from(meshtls::Error::from(e)))?;
    let ttl = parse_duration(&a.ttl)?;
    let signer = JwtSigner::load(&a.ca, id.trust_domain())?;
    let audiences: Vec<&str> = a.audiences.iter().map(String::as_str).collect();
    let token = signer
        .mint(&id, &audiences, ttl)
        .map_err(|e| Failure::from(meshtls::Error::from(e)))?;
    let value = json!({"token": token, "spiffe_id": id.as_str(), "kid": signer.kid()});
    Ok(Outcome::Yes(value, token))
}

fn bundle(a: BundleArgs) -> Result<Outcome, Failure> {
    let td =
        TrustDomain::new(&a.trust_domain).map_err(|e| Failure::from(meshtls::Error::from(e)))?;
    let signer = JwtSigner::load(&a.ca, td)?;
    let jwks = signer.bundle().to_jwks(a.shape.into());
    let value: serde_json::Value =
        serde_json::from_str(&jwks).map_err(|e| Failure::new("error", e.to_string()))?;
    Ok(Outcome::Yes(value, jwks))
}

fn verify(a: VerifyArgs) -> Result<Outcome, Failure> {
    let token = if a.token == "-" {
        crate::read_input(std::path::Path::new("-"))?
            .trim()
            .to_owned()
    } else {
        a.token.clone()
    };
    let mut set = JwtBundleSet::new();
    for spec in &a.bundles {
        let (td, file) = spec
            .split_once('=')
            .ok_or_else(|| format!("invalid --bundle {spec:?}: use TRUST_DOMAIN=FILE"))?;
        let td = TrustDomain::new(td).map_err(|e| Failure::from(meshtls::Error::from(e)))?;
        let text = crate::read_input(std::path::Path::new(file))?;
        // The Workload API shape takes keys with `use: jwt-svid` and keys without `use`, so
        // both a SPIFFE bundle and a Workload API JWKS read.
        let bundle = JwtBundle::from_jwks(td, &text, JwksShape::WorkloadApi)
            .map_err(|e| Failure::from(meshtls::Error::from(e)))?;
        set.insert(bundle);
    }
    let leeway = parse_duration(&a.leeway).or_else(|e| {
        if a.leeway == "0" {
            Ok(std::time::Duration::ZERO)
        } else {
            Err(e)
        }
    })?;
    let policy = JwtPolicy::new(a.audiences.iter().cloned())
        .map_err(|e| Failure::from(meshtls::Error::from(e)))?
        .audience_match(if a.all_audiences {
            AudienceMatch::AllOf
        } else {
            AudienceMatch::AnyOf
        })
        .leeway(leeway)
        .require_kid(!a.allow_missing_kid);
    Ok(match meshtls::jwt::validate(&token, &set, &policy) {
        Ok(svid) => {
            let exp = svid
                .expiry()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let value = json!({
                "valid": true,
                "spiffe_id": svid.spiffe_id().as_str(),
                "audience": svid.audience(),
                "kid": svid.kid(),
                "alg": svid.algorithm().name(),
                "exp": exp,
                "claims": svid.claims(),
            });
            let text = format!(
                "valid: {} (aud {}, kid {}, exp {exp})",
                svid.spiffe_id(),
                svid.audience().join(","),
                svid.kid()
            );
            Outcome::Yes(value, text)
        }
        Err(e) => {
            let text = e.to_string();
            crate::refused(&e.into(), json!({"valid": false}), text)
        }
    })
}
