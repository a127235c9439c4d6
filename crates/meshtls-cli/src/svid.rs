use std::path::PathBuf;

use meshtls::authz::{self, Authorizer};
use meshtls::bundle::{BundleSet, TrustBundle};
use meshtls::svid::{inspect_certificate, parse_pem_chain, verify_svid};
use meshtls::{SpiffeId, TrustDomain};
use rustls_pki_types::UnixTime;
use serde_json::json;

use crate::{Failure, Outcome};

#[derive(clap::Args, Debug)]
pub(crate) struct VerifyArgs {
    /// The peer's certificate chain, PEM, leaf first (`-` for standard input).
    chain: PathBuf,
    /// Roots of one trust domain: TRUST_DOMAIN=PEM_FILE (repeatable; never merged).
    #[arg(long = "bundle", value_name = "TD=PEM_FILE")]
    bundles: Vec<String>,
    /// A SPIFFE bundle map file ({"trust_domains": {...}}), or TD=FILE for one SPIFFE bundle
    /// (JWKS) of trust domain TD (repeatable).
    #[arg(long = "bundle-json", value_name = "[TD=]FILE")]
    bundle_json: Vec<String>,
    /// Trust-domain alias: ALIAS=TRUST_DOMAIN verifies ALIAS's SVIDs with TRUST_DOMAIN's roots.
    #[arg(long = "alias", value_name = "ALIAS=TD")]
    aliases: Vec<String>,
    /// Accept only this SPIFFE ID (repeatable: any of them).
    #[arg(
        long = "expect",
        value_name = "SPIFFE_ID",
        conflicts_with = "expect_td"
    )]
    expect: Vec<String>,
    /// Accept only members of this trust domain (repeatable: any of them).
    #[arg(long = "expect-td", value_name = "TRUST_DOMAIN")]
    expect_td: Vec<String>,
    /// Verification time, RFC 3339 (default: now).
    #[arg(long = "at", value_name = "RFC3339")]
    at: Option<String>,
}

fn split_td(arg: &str, what: &str) -> Result<(TrustDomain, PathBuf), String> {
    let (td, file) = arg
        .split_once('=')
        .ok_or_else(|| format!("{what} {arg:?}: expected TRUST_DOMAIN=FILE"))?;
    let td = TrustDomain::new(td).map_err(|e| format!("{what} {arg:?}: {e}"))?;
    Ok((td, PathBuf::from(file)))
}

fn bundle_set(args: &VerifyArgs) -> Result<BundleSet, Failure> {
    let mut bundles: Vec<TrustBundle> = Vec::new();
    for arg in &args.bundles {
        let (td, file) = split_td(arg, "--bundle")?;
        let pem = crate::read_input(&file)?;
        bundles.push(TrustBundle::from_pem(td, &pem).map_err(meshtls::Error::from)?);
    }
    let mut maps: Vec<BundleSet> = Vec::new();
    for arg in &args.bundle_json {
        // `TD=FILE` when what precedes the first `=` is a trust-domain name, else a map file.
        let single = arg
            .split_once('=')
            .filter(|(td, _)| TrustDomain::new(td).is_ok() && !td.contains(':'));
        match single {
            Some(_) => {
                let (td, file) = split_td(arg, "--bundle-json")?;
                let text = crate::read_input(&file)?;
                bundles.push(
                    TrustBundle::from_spiffe_json(td, &text)
                        .map_err(|e| Failure::new("bundle", format!("{}: {e}", file.display())))?,
                );
            }
            None => {
                let file = PathBuf::from(arg);
                let text = crate::read_input(&file)?;
                maps.push(
                    BundleSet::from_spiffe_json(&text)
                        .map_err(|e| Failure::new("bundle", format!("{}: {e}", file.display())))?,
                );
            }
        }
    }
    for map in maps {
        bundles.extend(map.bundles().cloned());
    }
    let mut set = BundleSet::from_bundles(bundles).map_err(meshtls::Error::from)?;
    for arg in &args.aliases {
        let (alias, primary) = arg
            .split_once('=')
            .ok_or_else(|| format!("--alias {arg:?}: expected ALIAS=TRUST_DOMAIN"))?;
        let alias = TrustDomain::new(alias).map_err(|e| format!("--alias {arg:?}: {e}"))?;
        let primary = TrustDomain::new(primary).map_err(|e| format!("--alias {arg:?}: {e}"))?;
        set = set
            .with_aliases(&primary, [alias])
            .map_err(meshtls::Error::from)?;
    }
    Ok(set)
}

fn authorizer(args: &VerifyArgs) -> Result<Option<std::sync::Arc<dyn Authorizer>>, String> {
    if !args.expect.is_empty() {
        let ids = args
            .expect
            .iter()
            .map(|s| SpiffeId::new(s).map_err(|e| format!("--expect: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Some(authz::one_of(ids)));
    }
    if !args.expect_td.is_empty() {
        let tds = args
            .expect_td
            .iter()
            .map(|s| TrustDomain::new(s).map_err(|e| format!("--expect-td: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Some(authz::member_of(tds)));
    }
    Ok(None)
}

fn verification_time(at: Option<&str>) -> Result<UnixTime, String> {
    let Some(at) = at else {
        return Ok(UnixTime::now());
    };
    let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("--at {at:?}: not an RFC 3339 time: {e}"))?;
    let secs = u64::try_from(t.unix_timestamp())
        .map_err(|_| format!("--at {at:?}: before 1970-01-01T00:00:00Z"))?;
    Ok(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        secs,
    )))
}

fn rejected(stage: &str, error: meshtls::Error) -> Outcome {
    let text = format!("rejected: {error}");
    crate::refused(&error, json!({"accepted": false, "stage": stage}), text)
}

pub(crate) fn verify(args: VerifyArgs) -> Result<Outcome, Failure> {
    if args.bundles.is_empty() && args.bundle_json.is_empty() {
        return Err(Failure::from(
            "no trust bundle: give --bundle TD=PEM_FILE or --bundle-json FILE".to_owned(),
        ));
    }
    let now = verification_time(args.at.as_deref())?;
    let bundles = bundle_set(&args)?;
    let authorizer = authorizer(&args)?;
    let text = crate::read_input(&args.chain)?;
    let chain = match parse_pem_chain(&text) {
        Ok(c) => c,
        Err(e) => return Ok(rejected("parse", e.into())),
    };
    let verified = match verify_svid(&chain, &bundles, now) {
        Ok(v) => v,
        Err(e) => return Ok(rejected("verify", e)),
    };
    if let Some(a) = authorizer {
        if let Err(e) = a.authorize_verified(&verified) {
            return Ok(rejected("authorize", e.into()));
        }
    }
    let id = verified.spiffe_id();
    let valid_until = time::OffsetDateTime::from_unix_timestamp(
        i64::try_from(verified.valid_until().as_secs()).unwrap_or(i64::MAX),
    )
    .ok()
    .and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_default();
    let value = json!({
        "accepted": true,
        "spiffe_id": id.as_str(),
        "trust_domain": id.trust_domain_name(),
        "bundle_trust_domain": verified.bundle_trust_domain().as_str(),
        "path_length": verified.chain().len(),
        "valid_until": valid_until,
    });
    let text = format!(
        "accepted: {id}\n  verified with the roots of {} ({} certificates in the path)\n  valid until {valid_until}",
        verified.bundle_trust_domain(),
        verified.chain().len()
    );
    Ok(Outcome::Yes(value, text))
}

#[derive(clap::Args, Debug)]
pub(crate) struct InspectArgs {
    /// PEM certificates (`-` for standard input); each one is shown.
    file: PathBuf,
    /// Time for the leaf-profile check, RFC 3339 (default: now).
    #[arg(long = "at", value_name = "RFC3339")]
    at: Option<String>,
}

pub(crate) fn inspect(args: InspectArgs) -> Result<Outcome, Failure> {
    let now = verification_time(args.at.as_deref())?;
    let text = crate::read_input(&args.file)?;
    let certs = match parse_pem_chain(&text) {
        Ok(c) => c,
        Err(e) => {
            let text = e.to_string();
            return Ok(crate::refused(&e.into(), json!({}), text));
        }
    };
    let mut values = Vec::new();
    let mut lines = Vec::new();
    for (i, cert) in certs.iter().enumerate() {
        match inspect_certificate(cert, now) {
            Ok(s) => {
                lines.push(format!(
                    "certificate {i}\n  subject: {}\n  issuer: {}\n  serial: {}\n  validity: {} .. {}\n  key: {}\n  CA: {}\n  key usage: {}{}\n  extended key usage: {}\n  URI SANs: {}\n  DNS SANs: {}\n  SPIFFE ID: {}\n  as a leaf SVID: {}",
                    s.subject,
                    s.issuer,
                    s.serial,
                    s.not_before,
                    s.not_after,
                    s.public_key,
                    s.is_ca.map_or("(no basic constraints)".to_owned(), |c| c.to_string()),
                    s.key_usage.as_ref().map_or("(none)".to_owned(), |k| k.join(", ")),
                    if s.key_usage_critical { " (critical)" } else { "" },
                    s.extended_key_usage.as_ref().map_or("(none)".to_owned(), |k| k.join(", ")),
                    s.uri_sans.join(", "),
                    s.dns_sans.join(", "),
                    s.spiffe_id.as_deref().unwrap_or("(none)"),
                    s.leaf_problem.as_deref().unwrap_or("passes the profile checks"),
                ));
                values.push(serde_json::to_value(&s).map_err(|e| e.to_string())?);
            }
            Err(e) => {
                let text = format!("certificate {i}: {e}");
                return Ok(crate::refused(&e.into(), json!({"index": i}), text));
            }
        }
    }
    Ok(Outcome::Yes(
        json!({"certificates": values}),
        lines.join("\n"),
    ))
}
