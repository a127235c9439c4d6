//! Policies compiled for evaluation: patterns parsed, principals expanded with the mesh's
//! trust domains, CIDRs and ports parsed, once per set instead of once per request.

use std::net::IpAddr;

use crate::identity::expand_principals;
use crate::mesh::TrustDomains;
use crate::policy::PolicyName;

use super::model::{Action, AuthorizationPolicy, Condition, Operation, Rule, Source};
use super::request::Request;

/// Istio's string match: `*` presence, `*abc` suffix, `abc*` prefix, else exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pattern {
    Presence,
    Exact(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
}

impl Pattern {
    pub(crate) fn parse(v: &str) -> Self {
        if v == "*" {
            Pattern::Presence
        } else if let Some(s) = v.strip_prefix('*') {
            Pattern::Suffix(s.into())
        } else if let Some(p) = v.strip_suffix('*') {
            Pattern::Prefix(p.into())
        } else {
            Pattern::Exact(v.into())
        }
    }

    #[inline]
    pub(crate) fn matches(&self, s: &str) -> bool {
        match self {
            Pattern::Presence => true,
            Pattern::Exact(e) => s == &**e,
            Pattern::Prefix(p) => s.starts_with(&**p),
            Pattern::Suffix(x) => s.ends_with(&**x),
        }
    }

    fn matches_ignore_case(&self, s: &str) -> bool {
        let starts = |p: &str| {
            s.len() >= p.len() && s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p))
        };
        let ends = |p: &str| {
            s.len() >= p.len()
                && s.get(s.len() - p.len()..)
                    .is_some_and(|t| t.eq_ignore_ascii_case(p))
        };
        match self {
            Pattern::Presence => true,
            Pattern::Exact(e) => s.eq_ignore_ascii_case(e),
            Pattern::Prefix(p) => starts(p),
            Pattern::Suffix(x) => ends(x),
        }
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pattern::Presence => f.write_str("*"),
            Pattern::Exact(e) => f.write_str(e),
            Pattern::Prefix(p) => write!(f, "{p}*"),
            Pattern::Suffix(x) => write!(f, "*{x}"),
        }
    }
}

/// An address or CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Go's `netip.ParsePrefix` / `ParseAddr` as Istio's `ValidateIPs` uses them.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text.split_once('/') {
            Some((a, b)) => {
                let addr: IpAddr = a.parse().ok()?;
                if b.is_empty() || !b.bytes().all(|c| c.is_ascii_digit()) || b.len() > 3 {
                    return None;
                }
                if b.len() > 1 && b.starts_with('0') {
                    return None;
                }
                let bits: u8 = b.parse().ok()?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                (bits <= max).then_some(Cidr { addr, bits })
            }
            None => {
                let addr: IpAddr = text.parse().ok()?;
                let bits = if addr.is_ipv4() { 32 } else { 128 };
                Some(Cidr { addr, bits })
            }
        }
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.bits))
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.bits))
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let full = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.bits == full {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.bits)
        }
    }
}

/// A `paths` value: a string match, or a `{*}` / `{**}` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathPattern {
    Plain(Pattern),
    Template(Box<[Box<str>]>),
}

impl PathPattern {
    fn parse(v: &str) -> Self {
        if v.contains("{*}") || v.contains("{**}") {
            PathPattern::Template(v.split('/').map(Into::into).collect())
        } else {
            PathPattern::Plain(Pattern::parse(v))
        }
    }

    fn matches(&self, path: &str) -> bool {
        let path = path.split(['?', '#']).next().unwrap_or("");
        match self {
            PathPattern::Plain(p) => p.matches(path),
            PathPattern::Template(segs) => {
                let have: Vec<&str> = path.split('/').collect();
                template(segs, &have)
            }
        }
    }
}

impl std::fmt::Display for PathPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathPattern::Plain(p) => p.fmt(f),
            PathPattern::Template(segs) => f.write_str(&segs.join("/")),
        }
    }
}

/// A `namespaces` value, matched as istiod's regex `.*/ns/<value>/.*` on the principal (with
/// `*` in the value read as `.*`): the common shapes without a regex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NsPattern {
    /// No `*`: some `/ns/<value>/` in the principal.
    Exact(Box<str>),
    /// `value*` only: some `/ns/<value>` followed later by a `/`.
    Prefix(Box<str>),
    /// Anything else: a glob `*/ns/<value>/*`.
    Glob { value: Box<str>, pattern: Box<str> },
}

impl NsPattern {
    fn parse(v: &str) -> Self {
        if !v.contains('*') {
            return NsPattern::Exact(v.into());
        }
        match v.strip_suffix('*') {
            Some(prefix) if !prefix.contains('*') => NsPattern::Prefix(prefix.into()),
            _ => NsPattern::Glob {
                value: v.into(),
                pattern: format!("*/ns/{v}/*").into(),
            },
        }
    }

    #[inline]
    fn matches(&self, principal: &str) -> bool {
        match self {
            NsPattern::Exact(v) => principal.match_indices("/ns/").any(|(i, _)| {
                principal
                    .get(i + 4..)
                    .and_then(|rest| rest.strip_prefix(&**v))
                    .is_some_and(|tail| tail.starts_with('/'))
            }),
            // The first occurrence has the most text after it: if no '/' follows it, none
            // follows a later one.
            NsPattern::Prefix(p) => principal
                .match_indices("/ns/")
                .find_map(|(i, _)| principal.get(i + 4..).and_then(|r| r.strip_prefix(&**p)))
                .is_some_and(|tail| tail.contains('/')),
            NsPattern::Glob { pattern, .. } => glob(pattern.as_bytes(), principal.as_bytes()),
        }
    }
}

impl std::fmt::Display for NsPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NsPattern::Exact(v) => f.write_str(v),
            NsPattern::Prefix(p) => write!(f, "{p}*"),
            NsPattern::Glob { value, .. } => f.write_str(value),
        }
    }
}

/// `{*}` is one non-empty segment, `{**}` any number of segments (including none). Dynamic
/// programming over (pattern segment, path segment), so hostile templates with many `{**}`
/// stay polynomial.
fn template(pat: &[Box<str>], have: &[&str]) -> bool {
    // ok[j]: the pattern's suffix from the current segment matches have[j..].
    let n = have.len();
    let mut ok = vec![false; n + 1];
    ok[n] = true; // empty pattern matches the empty rest
    for seg in pat.iter().rev() {
        let mut next = vec![false; n + 1];
        match &**seg {
            "{**}" => {
                // matches have[j..k] for any k >= j: next[j] = any ok[k], k >= j
                let mut any = false;
                for j in (0..=n).rev() {
                    any |= ok[j];
                    next[j] = any;
                }
            }
            "{*}" => {
                for j in 0..n {
                    next[j] = !have[j].is_empty() && ok[j + 1];
                }
            }
            lit => {
                for j in 0..n {
                    next[j] = have[j] == lit && ok[j + 1];
                }
            }
        }
        ok = next;
    }
    ok[0]
}

/// `*` matches any run of characters (Istio turns a namespace's `*` into `.*` in the regex
/// `.*/ns/<namespace>/.*` it matches against the peer's principal).
fn glob(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && pat[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if p < pat.len() && pat[p] == s[i] {
            p += 1;
            i += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    while p < pat.len() && pat[p] == b'*' {
        p += 1;
    }
    p == pat.len()
}

/// istiod's service-account matcher: `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?`, any trust
/// domain, on the principal (the ID without `spiffe://`).
#[cfg(test)]
pub(crate) fn service_account_matches(principal: &str, ns: &str, sa: &str) -> bool {
    service_account_parts(principal, &format!("/ns/{ns}/"), &format!("sa/{sa}"))
}

/// [`service_account_matches`] with its two literal parts, `/ns/<ns>/` and `sa/<sa>`, built once.
fn service_account_parts(principal: &str, ns_part: &str, sa_part: &str) -> bool {
    let mut from = 0;
    while let Some(pos) = principal.get(from..).and_then(|s| s.find(ns_part)) {
        let at = from + pos;
        from = at + 1;
        if at == 0 {
            continue;
        }
        let rest = &principal[at + ns_part.len()..];
        let mut j0 = 0;
        while let Some(jp) = rest.get(j0..).and_then(|s| s.find(sa_part)) {
            let j = j0 + jp;
            j0 = j + 1;
            let prefix_ok = j == 0 || (j >= 2 && rest.as_bytes().get(j - 1) == Some(&b'/'));
            let tail = &rest[j + sa_part.len()..];
            let tail_ok = tail.is_empty() || (tail.starts_with('/') && tail.len() >= 2);
            if prefix_ok && tail_ok {
                return true;
            }
        }
    }
    false
}

/// The attribute a check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Attr {
    Principal,
    Namespace,
    ServiceAccount,
    RequestPrincipal,
    SourceIp,
    RemoteIp,
    DestinationIp,
    Port,
    Host,
    Method,
    Path,
    Header,
    Claim,
    Audiences,
    Presenter,
    Sni,
    /// `experimental.envoy.filters.*`: filter metadata that cannot be known offline.
    Metadata,
    /// A key the webhook rejects (never matches).
    Unknown,
}

impl Attr {
    /// Fields and keys that only HTTP traffic has.
    pub(crate) fn http_only(self) -> bool {
        matches!(
            self,
            Attr::RequestPrincipal
                | Attr::Host
                | Attr::Method
                | Attr::Path
                | Attr::Header
                | Attr::Claim
                | Attr::Audiences
                | Attr::Presenter
        )
    }

    pub(crate) fn of_key(key: &str) -> (Attr, Option<Box<str>>) {
        let bracket = |prefix: &str| -> Option<Box<str>> {
            key.strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('['))
                .and_then(|r| r.strip_suffix(']'))
                .filter(|r| !r.is_empty())
                .map(Into::into)
        };
        let attr = match key {
            "source.ip" => Attr::SourceIp,
            "remote.ip" => Attr::RemoteIp,
            "source.namespace" => Attr::Namespace,
            "source.principal" => Attr::Principal,
            "request.auth.principal" => Attr::RequestPrincipal,
            "request.auth.audiences" => Attr::Audiences,
            "request.auth.presenter" => Attr::Presenter,
            "destination.ip" => Attr::DestinationIp,
            "destination.port" => Attr::Port,
            "connection.sni" => Attr::Sni,
            _ => {
                if let Some(name) = bracket("request.headers") {
                    return (Attr::Header, Some(name));
                }
                if let Some(name) = bracket("request.auth.claims") {
                    return (Attr::Claim, Some(name));
                }
                if key.starts_with("experimental.envoy.filters.") {
                    return (Attr::Metadata, Some(key.into()));
                }
                Attr::Unknown
            }
        };
        (attr, None)
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Values {
    Str(Box<[Pattern]>),
    Host(Box<[Pattern]>),
    Namespaces(Box<[NsPattern]>),
    ServiceAccounts(Box<[(Box<str>, Box<str>)]>),
    Ips(Box<[Cidr]>),
    Ports(Box<[u16]>),
    Paths(Box<[PathPattern]>),
}

/// One field (or one `values`/`notValues` of a condition).
#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub(crate) attr: Attr,
    /// The field's name for explanations: `principals`, `notPorts`, `when[0].values`.
    pub(crate) field: std::borrow::Cow<'static, str>,
    /// Header or claim name.
    pub(crate) key: Option<Box<str>>,
    pub(crate) not: bool,
    pub(crate) values: Values,
}

impl Check {
    /// True when the attribute is present and one of the values matches it.
    pub(crate) fn hit(&self, req: &Request) -> bool {
        let http = req.http.as_ref();
        match &self.values {
            Values::Str(pats) => {
                let actual: Option<&str> = match self.attr {
                    Attr::Principal => req.principal.as_deref(),
                    Attr::RequestPrincipal => req.request_principal.as_deref(),
                    Attr::Method => http.map(|h| h.method.as_str()),
                    Attr::Sni => req.sni.as_deref(),
                    Attr::Header => http.and_then(|h| {
                        let name = self.key.as_deref().unwrap_or("");
                        h.headers
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(name))
                            .map(|(_, v)| v.as_str())
                    }),
                    Attr::Claim | Attr::Audiences | Attr::Presenter => {
                        let name = match self.attr {
                            Attr::Audiences => "aud",
                            Attr::Presenter => "azp",
                            _ => self.key.as_deref().unwrap_or(""),
                        };
                        return req.claims.get(name).is_some_and(|vs| {
                            vs.iter().any(|v| pats.iter().any(|p| p.matches(v)))
                        });
                    }
                    _ => None,
                };
                actual.is_some_and(|a| pats.iter().any(|p| p.matches(a)))
            }
            Values::Host(pats) => http.and_then(|h| h.host.as_deref()).is_some_and(|host| {
                pats.iter().any(|p| {
                    p.matches_ignore_case(host)
                        || host
                            .rsplit_once(':')
                            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
                            .is_some_and(|(h, _)| p.matches_ignore_case(h))
                })
            }),
            Values::Namespaces(nss) => req
                .principal
                .as_deref()
                .is_some_and(|p| nss.iter().any(|n| n.matches(p))),
            Values::ServiceAccounts(sas) => req.principal.as_deref().is_some_and(|p| {
                sas.iter()
                    .any(|(ns_part, sa_part)| service_account_parts(p, ns_part, sa_part))
            }),
            Values::Ips(cidrs) => {
                let ip = match self.attr {
                    Attr::SourceIp => req.source_ip,
                    Attr::RemoteIp => req.remote(),
                    Attr::DestinationIp => req.destination_ip,
                    _ => None,
                };
                ip.is_some_and(|ip| cidrs.iter().any(|c| c.contains(ip)))
            }
            Values::Ports(ports) => ports.contains(&req.port),
            Values::Paths(pats) => http.is_some_and(|h| pats.iter().any(|p| p.matches(&h.path))),
        }
    }

    #[inline]
    pub(crate) fn passes(&self, req: &Request) -> bool {
        self.hit(req) != self.not
    }

    /// What the request has for this attribute, for explanations.
    pub(crate) fn actual(&self, req: &Request) -> String {
        let http = req.http.as_ref();
        let none_http = "no HTTP attributes (TCP)".to_owned();
        match self.attr {
            Attr::Principal | Attr::Namespace | Attr::ServiceAccount => match &req.principal {
                Some(p) => format!("peer principal {p:?}"),
                None => "no peer principal (plaintext or no client certificate)".to_owned(),
            },
            Attr::RequestPrincipal => match &req.request_principal {
                Some(p) => format!("request principal {p:?}"),
                None => "no request principal (no validated JWT)".to_owned(),
            },
            Attr::SourceIp => match req.source_ip {
                Some(ip) => format!("source IP {ip}"),
                None => "no source IP given".to_owned(),
            },
            Attr::RemoteIp => match req.remote() {
                Some(ip) => format!("remote IP {ip}"),
                None => "no remote IP given".to_owned(),
            },
            Attr::DestinationIp => match req.destination_ip {
                Some(ip) => format!("destination IP {ip}"),
                None => "no destination IP given".to_owned(),
            },
            Attr::Port => format!("port {}", req.port),
            Attr::Host => match http {
                Some(h) => match &h.host {
                    Some(host) => format!("host {host:?}"),
                    None => "no Host header".to_owned(),
                },
                None => none_http,
            },
            Attr::Method => http.map_or(none_http, |h| format!("method {:?}", h.method)),
            Attr::Path => http.map_or(none_http, |h| format!("path {:?}", h.path)),
            Attr::Header => {
                let name = self.key.as_deref().unwrap_or("");
                match http {
                    Some(h) => match h.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                        Some((_, v)) => format!("header {name} {v:?}"),
                        None => format!("no header {name}"),
                    },
                    None => none_http,
                }
            }
            Attr::Claim | Attr::Audiences | Attr::Presenter => {
                let name = match self.attr {
                    Attr::Audiences => "aud",
                    Attr::Presenter => "azp",
                    _ => self.key.as_deref().unwrap_or(""),
                };
                match req.claims.get(name) {
                    Some(v) => format!("claim {name} {v:?}"),
                    None => format!("no claim {name}"),
                }
            }
            Attr::Sni => match &req.sni {
                Some(s) => format!("SNI {s:?}"),
                None => "no SNI".to_owned(),
            },
            Attr::Metadata => format!(
                "{} cannot be known offline (treated as absent)",
                self.key.as_deref().unwrap_or("filter metadata")
            ),
            Attr::Unknown => "an attribute Istio does not know (never matches)".to_owned(),
        }
    }

    /// The values (principals after alias expansion), quoted, for explanations.
    fn shown(&self) -> String {
        fn q<T: std::fmt::Display>(items: &[T]) -> String {
            items
                .iter()
                .map(|v| format!("{:?}", v.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        }
        match &self.values {
            Values::Str(p) | Values::Host(p) => q(p),
            Values::Namespaces(n) => q(n),
            Values::ServiceAccounts(sas) => {
                let shown: Vec<String> = sas
                    .iter()
                    .map(|(n, a)| {
                        let n = n
                            .strip_prefix("/ns/")
                            .and_then(|n| n.strip_suffix('/'))
                            .unwrap_or(n);
                        let a = a.strip_prefix("sa/").unwrap_or(a);
                        format!("{n}/{a}")
                    })
                    .collect();
                q(&shown)
            }
            Values::Ips(c) => q(c),
            Values::Ports(p) => q(p),
            Values::Paths(p) => q(p),
        }
    }

    /// Why this check failed, for explanations.
    pub(crate) fn why_not(&self, req: &Request) -> String {
        let list = self.shown();
        if self.not {
            format!(
                "{}: {} matches one of [{list}]",
                self.field,
                self.actual(req)
            )
        } else {
            format!(
                "{}: {} matches none of [{list}]",
                self.field,
                self.actual(req)
            )
        }
    }

    pub(crate) fn why(&self, req: &Request) -> String {
        let list = self.shown();
        if self.not {
            format!(
                "{}: {} matches none of [{list}]",
                self.field,
                self.actual(req)
            )
        } else {
            format!("{}: {} matches [{list}]", self.field, self.actual(req))
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    pub(crate) from: Option<Box<[Box<[Check]>]>>,
    pub(crate) to: Option<Box<[Box<[Check]>]>>,
    pub(crate) when: Box<[Check]>,
    /// The HTTP-only fields the rule uses (for the TCP rules).
    pub(crate) http_fields: Box<[Box<str>]>,
}

impl CompiledRule {
    /// Envoy's RBAC match of one rule. On TCP traffic an ALLOW rule with HTTP-only fields
    /// never matches; in a DENY, AUDIT or CUSTOM rule those fields are dropped (they match).
    #[inline]
    pub(crate) fn matches(&self, req: &Request, action: Action) -> bool {
        let tcp = req.http.is_none();
        if tcp && !self.http_fields.is_empty() && action == Action::Allow {
            return false;
        }
        let ok = |c: &Check| (tcp && c.attr.http_only()) || c.passes(req);
        let group = |g: &Option<Box<[Box<[Check]>]>>| match g {
            None => true,
            Some(items) => items.iter().any(|checks| checks.iter().all(ok)),
        };
        group(&self.from) && group(&self.to) && self.when.iter().all(ok)
    }

    /// The same decision as [`CompiledRule::matches`], with the reason.
    pub(crate) fn explain(&self, req: &Request, action: Action) -> (bool, String) {
        let tcp = req.http.is_none();
        if tcp && !self.http_fields.is_empty() && action == Action::Allow {
            return (
                false,
                format!(
                    "uses HTTP-only fields ({}) and the traffic is TCP: an ALLOW rule with them never matches TCP traffic",
                    self.http_fields.join(", ")
                ),
            );
        }
        let mut notes: Vec<String> = Vec::new();
        if tcp && !self.http_fields.is_empty() {
            notes.push(format!(
                "HTTP-only fields ({}) are ignored on TCP traffic in a {action} rule (treated as matching)",
                self.http_fields.join(", ")
            ));
        }
        let ok = |c: &Check| (tcp && c.attr.http_only()) || c.passes(req);
        for (name, group) in [("from", &self.from), ("to", &self.to)] {
            let Some(items) = group else {
                continue;
            };
            let mut misses = Vec::new();
            let mut hit = None;
            for (i, checks) in items.iter().enumerate() {
                match checks.iter().find(|c| !ok(c)) {
                    None => {
                        hit = Some(i);
                        break;
                    }
                    Some(c) => misses.push(format!("{name}[{i}]: {}", c.why_not(req))),
                }
            }
            match hit {
                Some(i) => {
                    let why: Vec<String> = items
                        .get(i)
                        .map(|cs| {
                            cs.iter()
                                .filter(|c| !(tcp && c.attr.http_only()))
                                .map(|c| c.why(req))
                                .collect()
                        })
                        .unwrap_or_default();
                    if why.is_empty() {
                        notes.push(format!("{name}[{i}] matches"));
                    } else {
                        notes.push(format!("{name}[{i}] matches ({})", why.join("; ")));
                    }
                }
                None => {
                    return (
                        false,
                        format!("no {name} entry matches: {}", misses.join("; ")),
                    );
                }
            }
        }
        for c in self.when.iter() {
            if !ok(c) {
                return (false, c.why_not(req));
            }
            if !(tcp && c.attr.http_only()) {
                notes.push(c.why(req));
            }
        }
        if notes.is_empty() {
            notes.push("an empty rule matches every request".to_owned());
        }
        (true, notes.join("; "))
    }
}

/// One policy as the index keeps it.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub(crate) name: PolicyName,
    pub(crate) action: Action,
    pub(crate) provider: Option<Box<str>>,
    /// `matchLabels`, sorted; empty: namespace-wide (mesh-wide in the root namespace).
    pub(crate) selector: Box<[(Box<str>, Box<str>)]>,
    pub(crate) target_refs: bool,
    pub(crate) dry_run: bool,
    /// `None`: no `rules` field (never matches).
    pub(crate) rules: Option<Box<[CompiledRule]>>,
}

impl Compiled {
    #[inline]
    pub(crate) fn selects<L: crate::policy::Labels + ?Sized>(&self, labels: &L) -> bool {
        self.selector
            .iter()
            .all(|(k, v)| labels.label(k) == Some(&**v))
    }

    /// The first matching rule.
    #[inline]
    pub(crate) fn first_match(&self, req: &Request) -> Option<usize> {
        self.rules
            .as_ref()?
            .iter()
            .position(|r| r.matches(req, self.action))
    }

    pub(crate) fn selector_text(&self) -> String {
        self.selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

struct Builder<'a> {
    tds: &'a TrustDomains,
    checks: Vec<Check>,
    http: Vec<Box<str>>,
    /// The first field that could not be compiled (a principal expansion over the limit).
    error: Option<crate::error::IdentityError>,
}

impl Builder<'_> {
    fn push(
        &mut self,
        attr: Attr,
        field: std::borrow::Cow<'static, str>,
        key: Option<Box<str>>,
        not: bool,
        values: &[String],
    ) {
        if attr.http_only() && !self.http.iter().any(|f| **f == *field) {
            self.http.push(field.as_ref().into());
        }
        let values = match attr {
            Attr::Principal => match expand_principals(values, self.tds.all()) {
                Ok(expanded) => Values::Str(expanded.iter().map(|v| Pattern::parse(v)).collect()),
                Err(e) => {
                    self.error.get_or_insert(e);
                    Values::Str(Box::new([]))
                }
            },
            Attr::Namespace => {
                Values::Namespaces(values.iter().map(|v| NsPattern::parse(v)).collect())
            }
            Attr::ServiceAccount => Values::ServiceAccounts(
                values
                    .iter()
                    .filter_map(|v| v.split_once('/'))
                    .map(|(n, s)| (format!("/ns/{n}/").into(), format!("sa/{s}").into()))
                    .collect(),
            ),
            Attr::SourceIp | Attr::RemoteIp | Attr::DestinationIp => {
                Values::Ips(values.iter().filter_map(|v| Cidr::parse(v)).collect())
            }
            Attr::Port => Values::Ports(
                values
                    .iter()
                    .filter_map(|v| v.parse::<u16>().ok())
                    .collect(),
            ),
            Attr::Host => Values::Host(values.iter().map(|v| Pattern::parse(v)).collect()),
            Attr::Path => Values::Paths(values.iter().map(|v| PathPattern::parse(v)).collect()),
            Attr::Metadata | Attr::Unknown => Values::Str(Box::new([])),
            _ => Values::Str(values.iter().map(|v| Pattern::parse(v)).collect()),
        };
        self.checks.push(Check {
            attr,
            field,
            key,
            not,
            values,
        });
    }

    fn field(
        &mut self,
        attr: Attr,
        names: (&'static str, &'static str),
        pos: Option<&Vec<String>>,
        neg: Option<&Vec<String>>,
    ) {
        if let Some(pos) = pos {
            self.push(attr, names.0.into(), None, false, pos);
        }
        if let Some(neg) = neg {
            self.push(attr, names.1.into(), None, true, neg);
        }
    }

    fn take(&mut self) -> Box<[Check]> {
        std::mem::take(&mut self.checks).into_boxed_slice()
    }
}

macro_rules! fields {
    ($b:expr, $s:expr, $( $attr:expr, $pos:ident, $neg:ident, $pname:literal, $nname:literal );* $(;)?) => {
        $(
            $b.field($attr, ($pname, $nname), $s.$pos.as_ref(), $s.$neg.as_ref());
        )*
    };
}

fn source(b: &mut Builder<'_>, s: &Source) -> Box<[Check]> {
    fields!(b, s,
        Attr::Principal, principals, not_principals, "principals", "notPrincipals";
        Attr::RequestPrincipal, request_principals, not_request_principals, "requestPrincipals", "notRequestPrincipals";
        Attr::Namespace, namespaces, not_namespaces, "namespaces", "notNamespaces";
        Attr::ServiceAccount, service_accounts, not_service_accounts, "serviceAccounts", "notServiceAccounts";
        Attr::SourceIp, ip_blocks, not_ip_blocks, "ipBlocks", "notIpBlocks";
        Attr::RemoteIp, remote_ip_blocks, not_remote_ip_blocks, "remoteIpBlocks", "notRemoteIpBlocks";
    );
    b.take()
}

fn operation(b: &mut Builder<'_>, o: &Operation) -> Box<[Check]> {
    fields!(b, o,
        Attr::Host, hosts, not_hosts, "hosts", "notHosts";
        Attr::Port, ports, not_ports, "ports", "notPorts";
        Attr::Method, methods, not_methods, "methods", "notMethods";
        Attr::Path, paths, not_paths, "paths", "notPaths";
    );
    b.take()
}

fn condition(b: &mut Builder<'_>, i: usize, c: &Condition) {
    let (attr, key) = Attr::of_key(&c.key);
    if let Some(v) = &c.values {
        b.push(
            attr,
            format!("when[{i}] {} values", c.key).into(),
            key.clone(),
            false,
            v,
        );
    }
    if let Some(v) = &c.not_values {
        b.push(
            attr,
            format!("when[{i}] {} notValues", c.key).into(),
            key,
            true,
            v,
        );
    }
}

fn rule(tds: &TrustDomains, r: &Rule) -> Result<CompiledRule, crate::error::IdentityError> {
    let mut b = Builder {
        tds,
        checks: Vec::new(),
        http: Vec::new(),
        error: None,
    };
    let from = r.from.as_ref().map(|items| {
        items
            .iter()
            .map(|f| match &f.source {
                Some(s) => source(&mut b, s),
                None => Box::new([]) as Box<[Check]>,
            })
            .collect::<Box<[_]>>()
    });
    let to = r.to.as_ref().map(|items| {
        items
            .iter()
            .map(|t| match &t.operation {
                Some(o) => operation(&mut b, o),
                None => Box::new([]) as Box<[Check]>,
            })
            .collect::<Box<[_]>>()
    });
    for (i, c) in r.when.iter().flatten().enumerate() {
        condition(&mut b, i, c);
    }
    let when = b.take();
    if let Some(e) = b.error {
        return Err(e);
    }
    Ok(CompiledRule {
        from,
        to,
        when,
        http_fields: b.http.into_boxed_slice(),
    })
}

pub(crate) fn compile(
    p: &AuthorizationPolicy,
    namespace: &str,
    tds: &TrustDomains,
) -> Result<Compiled, crate::error::AuthorizationPolicyError> {
    let rules = match &p.spec.rules {
        None => None,
        Some(rs) => Some(
            rs.iter()
                .map(|r| rule(tds, r))
                .collect::<Result<Box<[_]>, _>>()
                .map_err(|e| crate::error::AuthorizationPolicyError::Limit {
                    object: format!("{namespace}/{}", p.metadata.name),
                    reason: e.to_string(),
                })?,
        ),
    };
    let spec = &p.spec;
    let mut selector: Vec<(Box<str>, Box<str>)> = spec
        .selector_labels()
        .map(|l| {
            l.iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect()
        })
        .unwrap_or_default();
    selector.sort();
    Ok(Compiled {
        name: PolicyName::new(namespace, &p.metadata.name),
        action: spec.action(),
        provider: spec
            .provider
            .as_ref()
            .and_then(|pr| pr.name.as_deref())
            .map(Into::into),
        selector: selector.into_boxed_slice(),
        target_refs: spec.has_target_refs(),
        dry_run: p.is_dry_run(),
        rules,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn service_account_regex_forms() {
        assert!(service_account_matches("cluster.local/ns/a/sa/b", "a", "b"));
        assert!(service_account_matches("td/x/ns/a/sa/b", "a", "b"));
        assert!(service_account_matches("td/ns/a/x/sa/b", "a", "b"));
        assert!(service_account_matches("td/ns/a/sa/b/extra", "a", "b"));
        assert!(!service_account_matches("td/ns/a/sa/bc", "a", "b"));
        assert!(!service_account_matches("td/ns/a/sa/b/", "a", "b"));
        assert!(!service_account_matches("/ns/a/sa/b", "a", "b"));
        assert!(!service_account_matches("td/ns/ab/sa/b", "a", "b"));
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("10.0.0.0/").is_none());
        assert!(
            Cidr::parse("fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
        assert!(
            !Cidr::parse("10.0.0.1")
                .unwrap()
                .contains("10.0.0.2".parse().unwrap())
        );
    }

    #[test]
    fn templates_and_globs() {
        let p = PathPattern::parse("/foo/{*}/bar/{**}");
        assert!(p.matches("/foo/x/bar/a/b"));
        assert!(p.matches("/foo/x/bar"));
        assert!(!p.matches("/foo//bar/a"));
        assert!(!p.matches("/foo/x/y/bar"));
        assert!(PathPattern::parse("/info*").matches("/info/x?y=1"));
        assert!(!PathPattern::parse("/data").matches("/data/"));
        assert!(glob(b"*/ns/foo*/*", b"td/ns/foobar/sa/x"));
        let ns = |p: &str, s: &str| NsPattern::parse(p).matches(s);
        assert!(ns("foo", "td/ns/foo/sa/x"));
        assert!(!ns("foo", "td/ns/foobar/sa/x"));
        assert!(ns("foo", "td/x/ns/foo/y"));
        assert!(ns("foo*", "td/ns/foobar/sa/x"));
        assert!(!ns("foo*", "td/ns/foobar"));
        assert!(ns("*bar", "td/ns/foobar/sa/x"));
        assert!(ns("f*r", "td/ns/foobar/sa/x"));
        assert!(!ns("f*z", "td/ns/foobar/sa/x"));
        assert!(matches!(NsPattern::parse("a*b*"), NsPattern::Glob { .. }));
        assert!(!glob(b"*/ns/foo/*", b"td/ns/foobar/sa/x"));
    }
}
