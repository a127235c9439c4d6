//! Policies compiled for evaluation, once per set instead of once per request: patterns
//! pre-split into exact / prefix / suffix / presence, principals expanded with the mesh's
//! trust domains (long exact lists also hashed), CIDRs and ports parsed, selectors keyed by
//! label slot.
//!
//! Everything lives in a few flat arrays ([`Program`]) laid out in evaluation order: one
//! string arena, then patterns, checks, `from`/`to` items, rules and policies pointing into
//! each other by index ranges ([`Span`]). A check walks contiguous memory, allocates
//! nothing and formats nothing; the explanation is rebuilt from the same arrays only when
//! asked for.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::net::IpAddr;

use crate::identity::TrustDomains;
use crate::identity::expand_principals;

use super::model::{Action, AuthorizationPolicy, Condition, Operation, Rule, Source};
use super::request::Request;

/// What compiling a policy needs besides the policy: the mesh's trust domains (principals
/// are expanded with them) and the policy's namespace (short `serviceAccounts` name one
/// there).
struct Scope<'a> {
    tds: &'a TrustDomains,
    ns: &'a str,
}

/// A range of one of [`Program`]'s arrays (or of its string arena).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) len: u32,
}

impl Span {
    #[inline]
    pub(crate) fn range(self) -> std::ops::Range<usize> {
        let s = self.start as usize;
        s..s + self.len as usize
    }

    #[inline]
    pub(crate) fn is_empty(self) -> bool {
        self.len == 0
    }
}

/// What a compiled value is and how it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatKind {
    /// `*`.
    Presence,
    /// The text exactly (hosts: ignoring ASCII case).
    Exact,
    /// `abc*`: `a` is `abc`.
    Prefix,
    /// `*abc`: `a` is `abc`.
    Suffix,
    /// `namespaces` without `*`: some `/ns/<a>/` in the principal.
    NsExact,
    /// `namespaces` `a*` only: some `/ns/<a>` followed later by a `/`.
    NsPrefix,
    /// Any other `namespaces` value: the glob `a` = `*/ns/<b>/*`.
    NsGlob,
    /// `serviceAccounts` `ns/sa`: `a` = `/ns/<ns>/`, `b` = `sa/<sa>`.
    ServiceAccount,
    /// A `paths` template with `{*}` / `{**}`: `a` is the template.
    Template,
}

/// One value of a field, in the string arena.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pat {
    pub(crate) kind: PatKind,
    pub(crate) a: Span,
    pub(crate) b: Span,
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
    #[inline]
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

    /// The attribute of a `when` key, with the header or claim name in brackets.
    pub(crate) fn of_key(key: &str) -> (Attr, Option<&str>) {
        let bracket = |prefix: &str| -> Option<&str> {
            key.strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('['))
                .and_then(|r| r.strip_suffix(']'))
                .filter(|r| !r.is_empty())
        };
        let attr = match key {
            "source.ip" => Attr::SourceIp,
            "remote.ip" => Attr::RemoteIp,
            "source.namespace" => Attr::Namespace,
            "source.principal" => Attr::Principal,
            "source.serviceAccount" => Attr::ServiceAccount,
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
                    return (Attr::Metadata, Some(key));
                }
                Attr::Unknown
            }
        };
        (attr, None)
    }

    /// Which array a check's values index.
    #[inline]
    fn store(self) -> Store {
        match self {
            Attr::SourceIp | Attr::RemoteIp | Attr::DestinationIp => Store::Cidrs,
            Attr::Port => Store::Ports,
            _ => Store::Pats,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Store {
    Pats,
    Cidrs,
    Ports,
}

/// One field (or one `values`/`notValues` of a condition).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Check {
    pub(crate) attr: Attr,
    pub(crate) not: bool,
    /// Exact principals looked up in [`Program::exact`] instead of compared one by one: the
    /// check's first `hashed` values (exact ones, moved to the front).
    pub(crate) hashed: u32,
    /// Header or claim name (or the metadata key), in the arena.
    pub(crate) key: Span,
    /// Into `pats`, `cidrs` or `ports`, by attribute.
    pub(crate) values: Span,
    /// ztunnel evaluates it (istiod's ambient conversion keeps it): `principals`,
    /// `namespaces`, `serviceAccounts`, `ipBlocks`, `ports` and the `when` keys
    /// `source.ip`, `source.namespace`, `source.principal`, `destination.ip`,
    /// `destination.port`.
    pub(crate) l4: bool,
}

/// One compiled rule: `from` and `to` are spans of `items` (each item a span of checks),
/// `when` a span of checks. `checks` covers all of the rule's checks (for explanations).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleCode {
    pub(crate) from: Option<Span>,
    pub(crate) to: Option<Span>,
    pub(crate) when: Span,
    pub(crate) checks: Span,
    /// The rule uses HTTP-only fields (the TCP rules).
    pub(crate) http: bool,
    /// The rule uses fields ztunnel does not evaluate ([`Check::l4`] false).
    pub(crate) l7: bool,
}

/// A `matchLabels` pair: the label's slot in its group's key list, and the key and the
/// wanted value in [`Program::sel_text`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct SelPair {
    pub(crate) slot: u32,
    pub(crate) key: Span,
    pub(crate) value: Span,
}

/// One policy as evaluation reads it; names and the like are in [`Cold`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct PolicyCode {
    pub(crate) action: Action,
    /// Into `sel`, sorted by key; empty: namespace-wide (mesh-wide in the root namespace).
    pub(crate) selector: Span,
    /// Into `rules`; `None`: no `rules` field (never matches).
    pub(crate) rules: Option<Span>,
}

/// What only explanations and verdicts read.
#[derive(Debug, Clone)]
pub(crate) struct Cold {
    pub(crate) name: crate::policy::common::PolicyName,
    pub(crate) provider: Option<Box<str>>,
    pub(crate) target_refs: bool,
    pub(crate) dry_run: bool,
}

/// The exact principals of every hashed check: principal → the checks (sorted indices into
/// `checks`) that list it among their first `hashed` values. One lookup per request answers
/// every hashed check. A `HashMap` with foldhash, not a hand-written table: the project keeps
/// hand-written infrastructure only where the bench shows a difference a user would see (the
/// `authz` rows of `meshtls-bench` time `check` through it).
#[derive(Debug, Clone, Default)]
pub(crate) struct ExactTable {
    by_principal: HashMap<Box<str>, Span, foldhash::fast::RandomState>,
    /// The check lists the map's spans point into.
    checks: Vec<u32>,
}

/// Lists of exact principals longer than this (after alias expansion) are hashed.
pub(crate) const HASH_AT: usize = 8;

/// Every policy of a set, flattened.
#[derive(Debug, Clone, Default)]
pub(crate) struct Program {
    pub(crate) text: String,
    /// Selector keys and values, apart from the rest so that a namespace's selectors share
    /// a few cache lines.
    pub(crate) sel_text: String,
    pub(crate) pats: Vec<Pat>,
    pub(crate) cidrs: Vec<Cidr>,
    pub(crate) ports: Vec<u16>,
    pub(crate) checks: Vec<Check>,
    /// The field's name per check, for explanations: `principals`, `notPorts`,
    /// `when[0] request.headers[x] values`.
    pub(crate) fields: Vec<Cow<'static, str>>,
    /// Per check, its values as written, before alias expansion, as string patterns
    /// (`principals`, `namespaces`): what ztunnel compares (it expands no alias and matches a
    /// namespace as a string); the check's `values` for every other attribute. Apart from
    /// [`Check`] so that the sidecar's evaluation walks smaller checks.
    pub(crate) raw: Vec<Span>,
    pub(crate) items: Vec<Span>,
    pub(crate) rules: Vec<RuleCode>,
    pub(crate) sel: Vec<SelPair>,
    pub(crate) policies: Vec<PolicyCode>,
    pub(crate) cold: Vec<Cold>,
    pub(crate) exact: ExactTable,
}

/// The most entries any array of a [`Program`] holds (indices are `u32`).
const MAX_LEN: usize = u32::MAX as usize - 1;

/// A request with what several checks need computed once.
pub(crate) struct Ctx<'r> {
    pub(crate) req: &'r Request,
    pub(crate) tcp: bool,
    /// Evaluated as ztunnel does (ambient mode, L4 only).
    pub(crate) ambient: bool,
    principal: Option<&'r str>,
    /// The principal's namespace when it is an Istio identity `<td>/ns/<ns>/sa/<sa>`.
    namespace: Option<&'r str>,
    /// The checks listing the principal exactly, looked up once per request.
    principal_checks: Cell<Option<Span>>,
}

impl<'r> Ctx<'r> {
    #[inline]
    pub(crate) fn new(req: &'r Request) -> Self {
        Ctx {
            req,
            tcp: req.http.is_none(),
            ambient: false,
            principal: req.principal.as_deref(),
            namespace: None,
            principal_checks: Cell::new(None),
        }
    }

    /// A request as ztunnel sees it: L4 only, the peer's namespace read from its Istio
    /// identity.
    pub(crate) fn ambient(req: &'r Request) -> Self {
        let principal = req.principal.as_deref();
        let namespace = principal.and_then(|p| {
            let path = p.find('/').and_then(|i| p.get(i..))?;
            crate::identity::split_ns_sa(path).map(|(ns, _)| ns)
        });
        Ctx {
            req,
            tcp: true,
            ambient: true,
            principal,
            namespace,
            principal_checks: Cell::new(None),
        }
    }
}

impl Program {
    #[inline]
    pub(crate) fn s(&self, span: Span) -> &str {
        self.text.get(span.range()).unwrap_or("")
    }

    #[inline]
    pub(crate) fn sel_s(&self, span: Span) -> &str {
        self.sel_text.get(span.range()).unwrap_or("")
    }

    // ---------------------------------------------------------------- evaluation

    #[inline]
    fn pat_matches(&self, p: &Pat, s: &str) -> bool {
        match p.kind {
            PatKind::Presence => true,
            PatKind::Exact => s == self.s(p.a),
            PatKind::Prefix => s.starts_with(self.s(p.a)),
            PatKind::Suffix => s.ends_with(self.s(p.a)),
            // Not string patterns: never reached for string attributes.
            _ => false,
        }
    }

    #[inline]
    fn pats(&self, c: &Check) -> &[Pat] {
        self.pats.get(c.values.range()).unwrap_or(&[])
    }

    /// One of the check's string values matches `s`.
    #[inline]
    fn any_str(&self, ci: u32, c: &Check, s: &str, ctx: Option<&Ctx<'_>>) -> bool {
        let pats = self.pats(c);
        let skip = if c.hashed > 0 {
            let checks = match ctx {
                Some(ctx) => match ctx.principal_checks.get() {
                    Some(span) => span,
                    None => {
                        let span = self.exact_checks(s);
                        ctx.principal_checks.set(Some(span));
                        span
                    }
                },
                None => self.exact_checks(s),
            };
            if self
                .exact
                .checks
                .get(checks.range())
                .is_some_and(|list| list.binary_search(&ci).is_ok())
            {
                return true;
            }
            c.hashed as usize
        } else {
            0
        };
        pats.get(skip..)
            .unwrap_or(&[])
            .iter()
            .any(|p| self.pat_matches(p, s))
    }

    /// The checks that list `principal` exactly (an empty span when none does).
    fn exact_checks(&self, principal: &str) -> Span {
        self.exact
            .by_principal
            .get(principal)
            .copied()
            .unwrap_or_default()
    }

    /// A check's values as written (see [`Program::raw`]).
    fn raw_pats(&self, ci: u32) -> &[Pat] {
        self.raw
            .get(ci as usize)
            .and_then(|r| self.pats.get(r.range()))
            .unwrap_or(&[])
    }

    /// True when the attribute is present and one of the values matches it.
    pub(crate) fn hit(&self, ci: u32, ctx: &Ctx<'_>) -> bool {
        let Some(c) = self.checks.get(ci as usize) else {
            return false;
        };
        let req = ctx.req;
        let http = req.http.as_ref();
        match c.attr {
            // ztunnel: the values as written (no alias expansion), one by one.
            Attr::Principal if ctx.ambient => ctx
                .principal
                .is_some_and(|p| self.raw_pats(ci).iter().any(|pat| self.pat_matches(pat, p))),
            Attr::Principal => ctx
                .principal
                .is_some_and(|p| self.any_str(ci, c, p, Some(ctx))),
            // ztunnel: the values as string patterns on the identity's namespace.
            Attr::Namespace if ctx.ambient => ctx.namespace.is_some_and(|ns| {
                self.raw_pats(ci)
                    .iter()
                    .any(|pat| self.pat_matches(pat, ns))
            }),
            Attr::RequestPrincipal => req
                .request_principal
                .as_deref()
                .is_some_and(|p| self.any_str(ci, c, p, None)),
            Attr::Method => http.is_some_and(|h| self.any_str(ci, c, &h.method, None)),
            Attr::Sni => req
                .sni
                .as_deref()
                .is_some_and(|s| self.any_str(ci, c, s, None)),
            Attr::Header => http.is_some_and(|h| {
                let name = self.s(c.key);
                h.headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .is_some_and(|(_, v)| self.any_str(ci, c, v, None))
            }),
            Attr::Claim | Attr::Audiences | Attr::Presenter => {
                let name = match c.attr {
                    Attr::Audiences => "aud",
                    Attr::Presenter => "azp",
                    _ => self.s(c.key),
                };
                req.claims
                    .get(name)
                    .is_some_and(|vs| vs.iter().any(|v| self.any_str(ci, c, v, None)))
            }
            Attr::Host => http.and_then(|h| h.host.as_deref()).is_some_and(|host| {
                let bare = host
                    .rsplit_once(':')
                    .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
                    .map(|(h, _)| h);
                self.pats(c).iter().any(|p| {
                    self.matches_ignore_case(p, host)
                        || bare.is_some_and(|h| self.matches_ignore_case(p, h))
                })
            }),
            Attr::Namespace => ctx.principal.is_some_and(|principal| {
                self.pats(c).iter().any(|p| match p.kind {
                    PatKind::NsExact => ns_exact(principal, self.s(p.a)),
                    PatKind::NsPrefix => ns_prefix(principal, self.s(p.a)),
                    PatKind::NsGlob => glob(self.s(p.a).as_bytes(), principal.as_bytes()),
                    _ => false,
                })
            }),
            Attr::ServiceAccount => ctx.principal.is_some_and(|principal| {
                self.pats(c)
                    .iter()
                    .any(|p| service_account_parts(principal, self.s(p.a), self.s(p.b)))
            }),
            Attr::SourceIp | Attr::RemoteIp | Attr::DestinationIp => {
                let ip = match c.attr {
                    Attr::SourceIp => req.source_ip,
                    Attr::RemoteIp => req.remote(),
                    _ => req.destination_ip,
                };
                ip.is_some_and(|ip| {
                    self.cidrs
                        .get(c.values.range())
                        .unwrap_or(&[])
                        .iter()
                        .any(|n| n.contains(ip))
                })
            }
            Attr::Port => self
                .ports
                .get(c.values.range())
                .unwrap_or(&[])
                .contains(&req.port),
            Attr::Path => http.is_some_and(|h| {
                let path = match h.path.find(['?', '#']) {
                    Some(i) => h.path.get(..i).unwrap_or(""),
                    None => &h.path,
                };
                self.pats(c).iter().any(|p| match p.kind {
                    PatKind::Template => template(self.s(p.a), path),
                    _ => self.pat_matches(p, path),
                })
            }),
            Attr::Metadata | Attr::Unknown => false,
        }
    }

    fn matches_ignore_case(&self, p: &Pat, s: &str) -> bool {
        let v = self.s(p.a);
        let starts =
            || s.len() >= v.len() && s.get(..v.len()).is_some_and(|h| h.eq_ignore_ascii_case(v));
        let ends = || {
            s.len() >= v.len()
                && s.get(s.len() - v.len()..)
                    .is_some_and(|t| t.eq_ignore_ascii_case(v))
        };
        match p.kind {
            PatKind::Presence => true,
            PatKind::Exact => s.eq_ignore_ascii_case(v),
            PatKind::Prefix => starts(),
            PatKind::Suffix => ends(),
            _ => false,
        }
    }

    #[inline]
    pub(crate) fn passes(&self, ci: u32, ctx: &Ctx<'_>) -> bool {
        let not = self.checks.get(ci as usize).is_some_and(|c| c.not);
        self.hit(ci, ctx) != not
    }

    /// The check holds, or it reads an HTTP-only attribute of TCP traffic (dropped).
    #[inline]
    fn ok(&self, ci: u32, ctx: &Ctx<'_>) -> bool {
        (ctx.tcp
            && self
                .checks
                .get(ci as usize)
                .is_some_and(|c| c.attr.http_only()))
            || self.passes(ci, ctx)
    }

    #[inline]
    fn all_ok(&self, checks: Span, ctx: &Ctx<'_>) -> bool {
        checks.range().all(|ci| self.ok(ci as u32, ctx))
    }

    #[inline]
    fn group_ok(&self, items: Option<Span>, ctx: &Ctx<'_>) -> bool {
        match items {
            None => true,
            Some(items) => self
                .items
                .get(items.range())
                .unwrap_or(&[])
                .iter()
                .any(|checks| self.all_ok(*checks, ctx)),
        }
    }

    /// Envoy's RBAC match of one rule. On TCP traffic an ALLOW rule with HTTP-only fields
    /// never matches; in a DENY, AUDIT or CUSTOM rule those fields are dropped (they match).
    /// With `ctx.ambient`, ztunnel's match instead ([`Program::rule_matches_l4`]).
    #[inline]
    pub(crate) fn rule_matches(&self, r: &RuleCode, ctx: &Ctx<'_>, action: Action) -> bool {
        if ctx.ambient {
            return self.rule_matches_l4(r, ctx, action);
        }
        if ctx.tcp && r.http && action == Action::Allow {
            return false;
        }
        self.group_ok(r.from, ctx) && self.group_ok(r.to, ctx) && self.all_ok(r.when, ctx)
    }

    /// A `from`/`to` entry as istiod converts it for ztunnel: its L4 fields only; an entry
    /// left with none is an empty match, which ztunnel never matches.
    #[inline]
    fn entry_ok_l4(&self, checks: Span, ctx: &Ctx<'_>) -> bool {
        let mut any = false;
        for ci in checks.range() {
            let ci = ci as u32;
            if self.checks.get(ci as usize).is_some_and(|c| c.l4) {
                any = true;
                if !self.passes(ci, ctx) {
                    return false;
                }
            }
        }
        any
    }

    /// ztunnel's match of one rule (istiod's `handleRule`): an ALLOW rule with a field ztunnel
    /// does not evaluate never matches; in a DENY rule such fields are dropped, an entry left
    /// empty never matches, and a `when` condition on such a key never holds.
    fn rule_matches_l4(&self, r: &RuleCode, ctx: &Ctx<'_>, action: Action) -> bool {
        if r.l7 && action == Action::Allow {
            return false;
        }
        let group = |items: Option<Span>| match items {
            None => true,
            Some(items) => self
                .items
                .get(items.range())
                .unwrap_or(&[])
                .iter()
                .any(|checks| self.entry_ok_l4(*checks, ctx)),
        };
        group(r.from)
            && group(r.to)
            && r.when.range().all(|ci| {
                self.checks
                    .get(ci)
                    .is_some_and(|c| c.l4 && self.passes(ci as u32, ctx))
            })
    }

    /// The policy's first matching rule.
    #[inline]
    pub(crate) fn first_match(&self, p: &PolicyCode, ctx: &Ctx<'_>) -> Option<usize> {
        self.rules
            .get(p.rules?.range())?
            .iter()
            .position(|r| self.rule_matches(r, ctx, p.action))
    }

    // ---------------------------------------------------------------- explanations

    /// The HTTP-only fields a rule uses, in order, each once.
    fn http_fields(&self, r: &RuleCode) -> Vec<&str> {
        self.rule_fields(r, |c| c.attr.http_only())
    }

    /// The names of a rule's fields whose checks `keep` selects, in order, each once.
    fn rule_fields(&self, r: &RuleCode, keep: impl Fn(&Check) -> bool) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for ci in r.checks.range() {
            let (Some(c), Some(f)) = (self.checks.get(ci), self.fields.get(ci)) else {
                continue;
            };
            if keep(c) && !out.contains(&f.as_ref()) {
                out.push(f);
            }
        }
        out
    }

    fn field_name(&self, ci: u32) -> &str {
        self.fields.get(ci as usize).map_or("", |f| f.as_ref())
    }

    /// What the request has for this attribute, for explanations.
    fn actual(&self, c: &Check, req: &Request) -> String {
        let http = req.http.as_ref();
        let none_http = "no HTTP attributes (TCP)".to_owned();
        match c.attr {
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
                let name = self.s(c.key);
                match http {
                    Some(h) => match h.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                        Some((_, v)) => format!("header {name} {v:?}"),
                        None => format!("no header {name}"),
                    },
                    None => none_http,
                }
            }
            Attr::Claim | Attr::Audiences | Attr::Presenter => {
                let name = match c.attr {
                    Attr::Audiences => "aud",
                    Attr::Presenter => "azp",
                    _ => self.s(c.key),
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
            Attr::Metadata => {
                let key = self.s(c.key);
                let key = if key.is_empty() {
                    "filter metadata"
                } else {
                    key
                };
                format!("{key} cannot be known offline (treated as absent)")
            }
            Attr::Unknown => "an attribute Istio does not know (never matches)".to_owned(),
        }
    }

    /// One value as the policy wrote it (principals after alias expansion).
    fn show_pat(&self, p: &Pat) -> String {
        let a = self.s(p.a);
        match p.kind {
            PatKind::Presence => "*".to_owned(),
            PatKind::Exact | PatKind::NsExact | PatKind::Template => a.to_owned(),
            PatKind::Prefix | PatKind::NsPrefix => format!("{a}*"),
            PatKind::Suffix => format!("*{a}"),
            PatKind::NsGlob => self.s(p.b).to_owned(),
            PatKind::ServiceAccount => {
                let n = a
                    .strip_prefix("/ns/")
                    .and_then(|n| n.strip_suffix('/'))
                    .unwrap_or(a);
                let b = self.s(p.b);
                let s = b.strip_prefix("sa/").unwrap_or(b);
                format!("{n}/{s}")
            }
        }
    }

    /// The values, quoted, for explanations.
    fn shown(&self, c: &Check) -> String {
        let items: Vec<String> = match c.attr.store() {
            Store::Cidrs => self
                .cidrs
                .get(c.values.range())
                .unwrap_or(&[])
                .iter()
                .map(ToString::to_string)
                .collect(),
            Store::Ports => self
                .ports
                .get(c.values.range())
                .unwrap_or(&[])
                .iter()
                .map(ToString::to_string)
                .collect(),
            Store::Pats => self.pats(c).iter().map(|p| self.show_pat(p)).collect(),
        };
        items
            .iter()
            .map(|v| format!("{v:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Why this check failed, for explanations.
    fn why_not(&self, ci: u32, req: &Request) -> String {
        self.why_not_in(ci, req, false)
    }

    /// [`Program::why_not`]; `ambient`: with the values ztunnel compares.
    fn why_not_in(&self, ci: u32, req: &Request, ambient: bool) -> String {
        let Some(&c) = self.checks.get(ci as usize) else {
            return String::new();
        };
        let c = &if ambient {
            Check {
                values: self.raw.get(ci as usize).copied().unwrap_or(c.values),
                ..c
            }
        } else {
            c
        };
        let list = self.shown(c);
        let what = if c.not {
            "matches one of"
        } else {
            "matches none of"
        };
        format!(
            "{}: {} {what} [{list}]",
            self.field_name(ci),
            self.actual(c, req)
        )
    }

    /// Why this check held, for explanations.
    fn why(&self, ci: u32, req: &Request) -> String {
        self.why_in(ci, req, false)
    }

    /// [`Program::why`]; `ambient`: with the values ztunnel compares.
    fn why_in(&self, ci: u32, req: &Request, ambient: bool) -> String {
        let Some(&c) = self.checks.get(ci as usize) else {
            return String::new();
        };
        let c = &if ambient {
            Check {
                values: self.raw.get(ci as usize).copied().unwrap_or(c.values),
                ..c
            }
        } else {
            c
        };
        let list = self.shown(c);
        let what = if c.not { "matches none of" } else { "matches" };
        format!(
            "{}: {} {what} [{list}]",
            self.field_name(ci),
            self.actual(c, req)
        )
    }

    fn http_only(&self, ci: u32) -> bool {
        self.checks
            .get(ci as usize)
            .is_some_and(|c| c.attr.http_only())
    }

    /// The fields of a rule that ztunnel does not evaluate, in order, each once.
    fn l7_fields(&self, r: &RuleCode) -> Vec<&str> {
        self.rule_fields(r, |c| !c.l4)
    }

    /// [`Program::rule_matches_l4`] with the reason.
    fn explain_rule_l4(&self, r: &RuleCode, req: &Request, action: Action) -> (bool, String) {
        let ctx = Ctx::ambient(req);
        if r.l7 && action == Action::Allow {
            return (
                false,
                format!(
                    "uses fields ztunnel does not evaluate ({}): istiod leaves an ALLOW rule with them out of ztunnel's policy (a waypoint enforces HTTP rules)",
                    self.l7_fields(r).join(", ")
                ),
            );
        }
        let mut notes: Vec<String> = Vec::new();
        if r.l7 {
            notes.push(format!(
                "fields ztunnel does not evaluate ({}) are dropped from this {action} rule",
                self.l7_fields(r).join(", ")
            ));
        }
        for (name, group) in [("from", r.from), ("to", r.to)] {
            let Some(items) = group else {
                continue;
            };
            let items = self.items.get(items.range()).unwrap_or(&[]);
            let mut misses = Vec::new();
            let mut hit = None;
            for (i, checks) in items.iter().enumerate() {
                let l4: Vec<u32> = checks
                    .range()
                    .map(|c| c as u32)
                    .filter(|c| self.checks.get(*c as usize).is_some_and(|c| c.l4))
                    .collect();
                if l4.is_empty() {
                    misses.push(format!(
                        "{name}[{i}]: no field ztunnel evaluates is left: an empty match, which ztunnel never matches"
                    ));
                    continue;
                }
                match l4.iter().find(|c| !self.passes(**c, &ctx)) {
                    None => {
                        let why: Vec<String> =
                            l4.iter().map(|c| self.why_in(*c, req, true)).collect();
                        hit = Some(format!("{name}[{i}] matches ({})", why.join("; ")));
                        break;
                    }
                    Some(c) => {
                        misses.push(format!("{name}[{i}]: {}", self.why_not_in(*c, req, true)))
                    }
                }
            }
            match hit {
                Some(line) => notes.push(line),
                None => {
                    return (
                        false,
                        format!("no {name} entry matches: {}", misses.join("; ")),
                    );
                }
            }
        }
        for c in r.when.range().map(|c| c as u32) {
            let l4 = self.checks.get(c as usize).is_some_and(|c| c.l4);
            if !l4 {
                return (
                    false,
                    format!(
                        "{}: ztunnel does not evaluate this key: an empty match, which never holds",
                        self.field_name(c)
                    ),
                );
            }
            if !self.passes(c, &ctx) {
                return (false, self.why_not_in(c, req, true));
            }
            notes.push(self.why_in(c, req, true));
        }
        if notes.is_empty() {
            notes.push("an empty rule matches every request".to_owned());
        }
        (true, notes.join("; "))
    }

    /// The same decision as [`Program::rule_matches`], with the reason; `ambient`: as
    /// ztunnel decides.
    pub(crate) fn explain_rule(
        &self,
        r: &RuleCode,
        req: &Request,
        action: Action,
        ambient: bool,
    ) -> (bool, String) {
        if ambient {
            return self.explain_rule_l4(r, req, action);
        }
        let ctx = Ctx::new(req);
        let tcp = ctx.tcp;
        if tcp && r.http && action == Action::Allow {
            return (
                false,
                format!(
                    "uses HTTP-only fields ({}) and the traffic is TCP: an ALLOW rule with them never matches TCP traffic",
                    self.http_fields(r).join(", ")
                ),
            );
        }
        let mut notes: Vec<String> = Vec::new();
        if tcp && r.http {
            notes.push(format!(
                "HTTP-only fields ({}) are ignored on TCP traffic in a {action} rule (treated as matching)",
                self.http_fields(r).join(", ")
            ));
        }
        for (name, group) in [("from", r.from), ("to", r.to)] {
            let Some(items) = group else {
                continue;
            };
            let items = self.items.get(items.range()).unwrap_or(&[]);
            let mut misses = Vec::new();
            let mut hit = None;
            for (i, checks) in items.iter().enumerate() {
                match checks
                    .range()
                    .map(|c| c as u32)
                    .find(|c| !self.ok(*c, &ctx))
                {
                    None => {
                        hit = Some(i);
                        break;
                    }
                    Some(c) => misses.push(format!("{name}[{i}]: {}", self.why_not(c, req))),
                }
            }
            match hit {
                Some(i) => {
                    let why: Vec<String> = items
                        .get(i)
                        .map(|cs| {
                            cs.range()
                                .map(|c| c as u32)
                                .filter(|c| !(tcp && self.http_only(*c)))
                                .map(|c| self.why(c, req))
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
        for c in r.when.range().map(|c| c as u32) {
            if !self.ok(c, &ctx) {
                return (false, self.why_not(c, req));
            }
            if !(tcp && self.http_only(c)) {
                notes.push(self.why(c, req));
            }
        }
        if notes.is_empty() {
            notes.push("an empty rule matches every request".to_owned());
        }
        (true, notes.join("; "))
    }

    /// `k=v,k2=v2`.
    pub(crate) fn selector_text(&self, p: &PolicyCode) -> String {
        self.sel
            .get(p.selector.range())
            .unwrap_or(&[])
            .iter()
            .map(|s| format!("{}={}", self.sel_s(s.key), self.sel_s(s.value)))
            .collect::<Vec<_>>()
            .join(",")
    }

    // ---------------------------------------------------------------- building

    /// A namespace's name in the arena.
    pub(crate) fn push_name(&mut self, ns: &str) -> Result<Span, String> {
        self.push_text(ns)
    }

    fn limit(what: &str) -> String {
        format!("the compiled policies exceed {MAX_LEN} {what}")
    }

    fn push_text(&mut self, s: &str) -> Result<Span, String> {
        let start = self.text.len();
        if start + s.len() > MAX_LEN {
            return Err(Self::limit("bytes of text"));
        }
        self.text.push_str(s);
        Ok(Span {
            start: start as u32,
            len: s.len() as u32,
        })
    }

    fn pat(&mut self, kind: PatKind, a: &str, b: &str) -> Result<Pat, String> {
        let a = self.push_text(a)?;
        let b = if b.is_empty() {
            Span::default()
        } else {
            self.push_text(b)?
        };
        Ok(Pat { kind, a, b })
    }

    fn string_pat(&mut self, v: &str) -> Result<Pat, String> {
        if v == "*" {
            self.pat(PatKind::Presence, "", "")
        } else if let Some(s) = v.strip_prefix('*') {
            self.pat(PatKind::Suffix, s, "")
        } else if let Some(p) = v.strip_suffix('*') {
            self.pat(PatKind::Prefix, p, "")
        } else {
            self.pat(PatKind::Exact, v, "")
        }
    }

    fn ns_pat(&mut self, v: &str) -> Result<Pat, String> {
        if !v.contains('*') {
            return self.pat(PatKind::NsExact, v, "");
        }
        match v.strip_suffix('*') {
            Some(prefix) if !prefix.contains('*') => self.pat(PatKind::NsPrefix, prefix, ""),
            _ => self.pat(PatKind::NsGlob, &format!("*/ns/{v}/*"), v),
        }
    }

    fn path_pat(&mut self, v: &str) -> Result<Pat, String> {
        if v.contains("{*}") || v.contains("{**}") {
            self.pat(PatKind::Template, v, "")
        } else {
            self.string_pat(v)
        }
    }

    fn span_of(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            len: (end - start) as u32,
        }
    }

    /// Compiles one field (or condition side) into a check.
    fn push_check(
        &mut self,
        sc: &Scope<'_>,
        attr: Attr,
        field: Cow<'static, str>,
        key: Option<&str>,
        not: bool,
        values: &[String],
    ) -> Result<(), String> {
        let tds = sc.tds;
        // A `when` condition carries its key; a field does not.
        let when = field.starts_with("when[");
        let l4 = match attr {
            Attr::Principal | Attr::Namespace | Attr::SourceIp | Attr::Port => true,
            Attr::DestinationIp => true,
            Attr::ServiceAccount => !when,
            _ => false,
        };
        if self.checks.len() >= MAX_LEN {
            return Err(Self::limit("checks"));
        }
        let key = match key {
            Some(k) => self.push_text(k)?,
            None => Span::default(),
        };
        let mut hashed = 0u32;
        let (start, end) = match attr.store() {
            Store::Cidrs => {
                let start = self.cidrs.len();
                self.cidrs
                    .extend(values.iter().filter_map(|v| Cidr::parse(v)));
                (start, self.cidrs.len())
            }
            Store::Ports => {
                let start = self.ports.len();
                self.ports
                    .extend(values.iter().filter_map(|v| v.parse::<u16>().ok()));
                (start, self.ports.len())
            }
            Store::Pats => {
                let start = self.pats.len();
                match attr {
                    Attr::Principal => {
                        let expanded =
                            expand_principals(values, tds.all()).map_err(|e| e.to_string())?;
                        let exact = expanded
                            .iter()
                            .filter(|v| !v.starts_with('*') && !v.ends_with('*'))
                            .count();
                        if exact > HASH_AT {
                            // Exact values first (they go to the hash table), then the rest.
                            for v in expanded
                                .iter()
                                .filter(|v| !v.starts_with('*') && !v.ends_with('*'))
                            {
                                let p = self.string_pat(v)?;
                                self.pats.push(p);
                            }
                            hashed = exact as u32;
                            for v in expanded
                                .iter()
                                .filter(|v| v.starts_with('*') || v.ends_with('*'))
                            {
                                let p = self.string_pat(v)?;
                                self.pats.push(p);
                            }
                        } else {
                            for v in &expanded {
                                let p = self.string_pat(v)?;
                                self.pats.push(p);
                            }
                        }
                    }
                    Attr::Namespace => {
                        for v in values {
                            let p = self.ns_pat(v)?;
                            self.pats.push(p);
                        }
                    }
                    Attr::ServiceAccount => {
                        // `<sa>` alone names a service account of the policy's namespace
                        // (istiod's `serviceAccountRegex`).
                        for (n, s) in values
                            .iter()
                            .map(|v| v.split_once('/').unwrap_or((sc.ns, v)))
                        {
                            let p = self.pat(
                                PatKind::ServiceAccount,
                                &format!("/ns/{n}/"),
                                &format!("sa/{s}"),
                            )?;
                            self.pats.push(p);
                        }
                    }
                    Attr::Path => {
                        for v in values {
                            let p = self.path_pat(v)?;
                            self.pats.push(p);
                        }
                    }
                    Attr::Metadata | Attr::Unknown => {}
                    _ => {
                        for v in values {
                            let p = self.string_pat(v)?;
                            self.pats.push(p);
                        }
                    }
                }
                (start, self.pats.len())
            }
        };
        let raw_end = match attr {
            Attr::Principal | Attr::Namespace => {
                for v in values {
                    let p = self.string_pat(v)?;
                    self.pats.push(p);
                }
                self.pats.len()
            }
            _ => end,
        };
        if raw_end > MAX_LEN {
            return Err(Self::limit("values"));
        }
        let values = Self::span_of(start, end);
        let raw = if raw_end == end {
            values
        } else {
            Self::span_of(end, raw_end)
        };
        self.checks.push(Check {
            attr,
            not,
            hashed,
            key,
            values,
            l4,
        });
        self.fields.push(field);
        self.raw.push(raw);
        Ok(())
    }

    fn field(
        &mut self,
        sc: &Scope<'_>,
        attr: Attr,
        names: (&'static str, &'static str),
        pos: Option<&Vec<String>>,
        neg: Option<&Vec<String>>,
    ) -> Result<(), String> {
        if let Some(pos) = pos {
            self.push_check(sc, attr, names.0.into(), None, false, pos)?;
        }
        if let Some(neg) = neg {
            self.push_check(sc, attr, names.1.into(), None, true, neg)?;
        }
        Ok(())
    }

    fn source(&mut self, sc: &Scope<'_>, s: &Source) -> Result<(), String> {
        self.field(
            sc,
            Attr::Principal,
            ("principals", "notPrincipals"),
            s.principals.as_ref(),
            s.not_principals.as_ref(),
        )?;
        self.field(
            sc,
            Attr::RequestPrincipal,
            ("requestPrincipals", "notRequestPrincipals"),
            s.request_principals.as_ref(),
            s.not_request_principals.as_ref(),
        )?;
        self.field(
            sc,
            Attr::Namespace,
            ("namespaces", "notNamespaces"),
            s.namespaces.as_ref(),
            s.not_namespaces.as_ref(),
        )?;
        self.field(
            sc,
            Attr::ServiceAccount,
            ("serviceAccounts", "notServiceAccounts"),
            s.service_accounts.as_ref(),
            s.not_service_accounts.as_ref(),
        )?;
        self.field(
            sc,
            Attr::SourceIp,
            ("ipBlocks", "notIpBlocks"),
            s.ip_blocks.as_ref(),
            s.not_ip_blocks.as_ref(),
        )?;
        self.field(
            sc,
            Attr::RemoteIp,
            ("remoteIpBlocks", "notRemoteIpBlocks"),
            s.remote_ip_blocks.as_ref(),
            s.not_remote_ip_blocks.as_ref(),
        )
    }

    fn operation(&mut self, sc: &Scope<'_>, o: &Operation) -> Result<(), String> {
        self.field(
            sc,
            Attr::Host,
            ("hosts", "notHosts"),
            o.hosts.as_ref(),
            o.not_hosts.as_ref(),
        )?;
        self.field(
            sc,
            Attr::Port,
            ("ports", "notPorts"),
            o.ports.as_ref(),
            o.not_ports.as_ref(),
        )?;
        self.field(
            sc,
            Attr::Method,
            ("methods", "notMethods"),
            o.methods.as_ref(),
            o.not_methods.as_ref(),
        )?;
        self.field(
            sc,
            Attr::Path,
            ("paths", "notPaths"),
            o.paths.as_ref(),
            o.not_paths.as_ref(),
        )
    }

    fn condition(&mut self, sc: &Scope<'_>, i: usize, c: &Condition) -> Result<(), String> {
        let (attr, key) = Attr::of_key(&c.key);
        if let Some(v) = &c.values {
            let field = format!("when[{i}] {} values", c.key);
            self.push_check(sc, attr, field.into(), key, false, v)?;
        }
        if let Some(v) = &c.not_values {
            let field = format!("when[{i}] {} notValues", c.key);
            self.push_check(sc, attr, field.into(), key, true, v)?;
        }
        Ok(())
    }

    /// Compiles a `from` or `to` list: each entry's checks, then the entries as items.
    fn entries<T>(
        &mut self,
        list: &[T],
        mut one: impl FnMut(&mut Self, &T) -> Result<(), String>,
    ) -> Result<Span, String> {
        let mut spans = Vec::with_capacity(list.len());
        for entry in list {
            let start = self.checks.len();
            one(self, entry)?;
            spans.push(Self::span_of(start, self.checks.len()));
        }
        let start = self.items.len();
        if start + spans.len() > MAX_LEN {
            return Err(Self::limit("entries"));
        }
        self.items.extend(spans);
        Ok(Self::span_of(start, self.items.len()))
    }

    fn rule(&mut self, sc: &Scope<'_>, r: &Rule) -> Result<RuleCode, String> {
        let first = self.checks.len();
        let from = match &r.from {
            None => None,
            Some(items) => Some(self.entries(items, |p, f| match &f.source {
                Some(s) => p.source(sc, s),
                None => Ok(()),
            })?),
        };
        let to = match &r.to {
            None => None,
            Some(items) => Some(self.entries(items, |p, t| match &t.operation {
                Some(o) => p.operation(sc, o),
                None => Ok(()),
            })?),
        };
        let when_start = self.checks.len();
        for (i, c) in r.when.iter().flatten().enumerate() {
            self.condition(sc, i, c)?;
        }
        let end = self.checks.len();
        let checks = Self::span_of(first, end);
        let own = self.checks.get(checks.range()).unwrap_or(&[]);
        let http = own.iter().any(|c| c.attr.http_only());
        let l7 = own.iter().any(|c| !c.l4);
        Ok(RuleCode {
            from,
            to,
            when: Self::span_of(when_start, end),
            checks,
            http,
            l7,
        })
    }

    /// Compiles one policy of `namespace`; `slot` gives a selector key's slot in the
    /// policy's group. On error the program is left with partial data: discard it.
    pub(crate) fn compile(
        &mut self,
        p: &AuthorizationPolicy,
        namespace: &str,
        tds: &TrustDomains,
        mut slot: impl FnMut(&str) -> u32,
    ) -> Result<(), crate::error::AuthorizationPolicyError> {
        let limit = |reason: String| crate::error::AuthorizationPolicyError::Limit {
            object: format!("{namespace}/{}", p.metadata.name),
            reason,
        };
        let spec = &p.spec;
        let sc = Scope { tds, ns: namespace };
        let sel_start = self.sel.len();
        // BTreeMap: keys sorted.
        for (k, v) in spec.selector_labels().into_iter().flatten() {
            let at = self.sel_text.len();
            if at + k.len() + v.len() > MAX_LEN {
                return Err(limit(Self::limit("bytes of selectors")));
            }
            self.sel_text.push_str(k);
            self.sel_text.push_str(v);
            let key = Self::span_of(at, at + k.len());
            let value = Self::span_of(at + k.len(), at + k.len() + v.len());
            self.sel.push(SelPair {
                slot: slot(k),
                key,
                value,
            });
        }
        let selector = Self::span_of(sel_start, self.sel.len());
        let rules = match &spec.rules {
            None => None,
            Some(rs) => {
                let mut codes = Vec::with_capacity(rs.len());
                for r in rs {
                    codes.push(self.rule(&sc, r).map_err(limit)?);
                }
                let start = self.rules.len();
                if start + codes.len() > MAX_LEN || self.policies.len() >= MAX_LEN {
                    return Err(limit(Self::limit("rules")));
                }
                self.rules.extend(codes);
                Some(Self::span_of(start, self.rules.len()))
            }
        };
        self.policies.push(PolicyCode {
            action: spec.action(),
            selector,
            rules,
        });
        self.cold.push(Cold {
            name: crate::policy::common::PolicyName::new(namespace, &p.metadata.name),
            provider: spec
                .provider
                .as_ref()
                .and_then(|pr| pr.name.as_deref())
                .map(Into::into),
            target_refs: spec.has_target_refs(),
            dry_run: p.is_dry_run(),
        });
        Ok(())
    }

    /// Builds the exact-principal table over every hashed check.
    pub(crate) fn finish(&mut self) {
        let mut pairs: Vec<(&str, u32)> = Vec::new();
        for (ci, c) in self.checks.iter().enumerate() {
            for p in self
                .pats
                .get(c.values.start as usize..(c.values.start + c.hashed) as usize)
                .unwrap_or(&[])
            {
                pairs.push((self.s(p.a), ci as u32));
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        let mut table = ExactTable::default();
        let mut rest = pairs.as_slice();
        while let Some(&(principal, _)) = rest.first() {
            let n = rest.iter().take_while(|(p, _)| *p == principal).count();
            let start = table.checks.len() as u32;
            table.checks.extend(rest.iter().take(n).map(|(_, ci)| *ci));
            table.by_principal.insert(
                principal.into(),
                Span {
                    start,
                    len: n as u32,
                },
            );
            rest = rest.get(n..).unwrap_or(&[]);
        }
        self.exact = table;
    }
}

// -------------------------------------------------------------------- matchers

/// Some `/ns/<v>/` in the principal (istiod's `.*/ns/<v>/.*`).
#[inline]
fn ns_exact(principal: &str, v: &str) -> bool {
    principal.match_indices("/ns/").any(|(i, _)| {
        principal
            .get(i + 4..)
            .and_then(|rest| rest.strip_prefix(v))
            .is_some_and(|tail| tail.starts_with('/'))
    })
}

/// Some `/ns/<p>` followed later by a `/`. The first occurrence has the most text after it:
/// if no '/' follows it, none follows a later one.
#[inline]
fn ns_prefix(principal: &str, p: &str) -> bool {
    principal
        .match_indices("/ns/")
        .find_map(|(i, _)| principal.get(i + 4..).and_then(|r| r.strip_prefix(p)))
        .is_some_and(|tail| tail.contains('/'))
}

/// A `paths` template: `{*}` is one non-empty segment, `{**}` any number of segments
/// (including none). Dynamic programming over (template segment, path segment), so hostile
/// templates with many `{**}` stay polynomial; a bit set (no allocation) for paths of up to
/// 63 segments.
fn template(pat: &str, path: &str) -> bool {
    let n = path.split('/').count();
    if n < 64 {
        // bit j of ok: the template's suffix from the current segment matches path[j..].
        let mut ok: u64 = 1 << n;
        for seg in pat.rsplit('/') {
            let next = match seg {
                // path[j..] for any j up to the last k with ok[k].
                "{**}" => match ok.leading_zeros() {
                    64 => 0,
                    0 => u64::MAX,
                    lz => (1u64 << (64 - lz)) - 1,
                },
                _ => {
                    let mut next = 0u64;
                    for (j, have) in path.split('/').enumerate() {
                        let fits = if seg == "{*}" {
                            !have.is_empty()
                        } else {
                            have == seg
                        };
                        if fits && ok & (1u64 << (j + 1)) != 0 {
                            next |= 1 << j;
                        }
                    }
                    next
                }
            };
            ok = next;
        }
        return ok & 1 != 0;
    }
    let have: Vec<&str> = path.split('/').collect();
    let mut ok = vec![false; n + 1];
    if let Some(last) = ok.last_mut() {
        *last = true;
    }
    for seg in pat.rsplit('/') {
        let mut next = vec![false; n + 1];
        match seg {
            "{**}" => {
                let mut any = false;
                for j in (0..=n).rev() {
                    any |= ok.get(j).copied().unwrap_or(false);
                    if let Some(x) = next.get_mut(j) {
                        *x = any;
                    }
                }
            }
            _ => {
                for (j, h) in have.iter().enumerate() {
                    let fits = if seg == "{*}" {
                        !h.is_empty()
                    } else {
                        *h == seg
                    };
                    if let Some(x) = next.get_mut(j) {
                        *x = fits && ok.get(j + 1).copied().unwrap_or(false);
                    }
                }
            }
        }
        ok = next;
    }
    ok.first().copied().unwrap_or(false)
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
        let rest = principal.get(at + ns_part.len()..).unwrap_or("");
        let mut j0 = 0;
        while let Some(jp) = rest.get(j0..).and_then(|s| s.find(sa_part)) {
            let j = j0 + jp;
            j0 = j + 1;
            let prefix_ok = j == 0 || (j >= 2 && rest.as_bytes().get(j - 1) == Some(&b'/'));
            let tail = rest.get(j + sa_part.len()..).unwrap_or("");
            let tail_ok = tail.is_empty() || (tail.starts_with('/') && tail.len() >= 2);
            if prefix_ok && tail_ok {
                return true;
            }
        }
    }
    false
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

    #[inline]
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

    fn path_matches(pattern: &str, path: &str) -> bool {
        let mut p = Program::default();
        let pat = p.path_pat(pattern).unwrap();
        let path = path.split(['?', '#']).next().unwrap_or("");
        match pat.kind {
            PatKind::Template => template(p.s(pat.a), path),
            _ => p.pat_matches(&pat, path),
        }
    }

    #[test]
    fn templates_and_globs() {
        assert!(path_matches("/foo/{*}/bar/{**}", "/foo/x/bar/a/b"));
        assert!(path_matches("/foo/{*}/bar/{**}", "/foo/x/bar"));
        assert!(!path_matches("/foo/{*}/bar/{**}", "/foo//bar/a"));
        assert!(!path_matches("/foo/{*}/bar/{**}", "/foo/x/y/bar"));
        assert!(path_matches("/info*", "/info/x?y=1"));
        assert!(!path_matches("/data", "/data/"));
        assert!(glob(b"*/ns/foo*/*", b"td/ns/foobar/sa/x"));
        let ns = |v: &str, s: &str| {
            let mut p = Program::default();
            let pat = p.ns_pat(v).unwrap();
            match pat.kind {
                PatKind::NsExact => ns_exact(s, p.s(pat.a)),
                PatKind::NsPrefix => ns_prefix(s, p.s(pat.a)),
                _ => glob(p.s(pat.a).as_bytes(), s.as_bytes()),
            }
        };
        assert!(ns("foo", "td/ns/foo/sa/x"));
        assert!(!ns("foo", "td/ns/foobar/sa/x"));
        assert!(ns("foo", "td/x/ns/foo/y"));
        assert!(ns("foo*", "td/ns/foobar/sa/x"));
        assert!(!ns("foo*", "td/ns/foobar"));
        assert!(ns("*bar", "td/ns/foobar/sa/x"));
        assert!(ns("f*r", "td/ns/foobar/sa/x"));
        assert!(!ns("f*z", "td/ns/foobar/sa/x"));
        let mut p = Program::default();
        assert_eq!(p.ns_pat("a*b*").unwrap().kind, PatKind::NsGlob);
        assert!(!glob(b"*/ns/foo/*", b"td/ns/foobar/sa/x"));
    }

    /// The bit-set template matcher (paths under 64 segments) and the vector one (longer
    /// paths) agree, on templates with several `{**}`.
    #[test]
    fn template_bitset_matches_vector_form() {
        let templates = [
            "/a/{**}/b/{*}",
            "/{**}/{**}/x",
            "/{*}/{*}",
            "{**}",
            "/a/{**}",
            "/{**}/b/{**}/c",
        ];
        for t in templates {
            for path in ["/a/b/c", "/a/x/b/y", "/x", "/a", "", "/a//b/c", "/z/b/q/c"] {
                let short = template(t, path);
                // The same path padded to more than 63 segments at a place `{**}` absorbs
                // changes the answer, so compare against the segment-wise definition instead.
                let have: Vec<&str> = path.split('/').collect();
                let pat: Vec<&str> = t.split('/').collect();
                fn reference(p: &[&str], h: &[&str]) -> bool {
                    match p.split_first() {
                        None => h.is_empty(),
                        Some((&"{**}", rest)) => (0..=h.len()).any(|k| reference(rest, &h[k..])),
                        Some((&"{*}", rest)) => {
                            h.first().is_some_and(|s| !s.is_empty()) && reference(rest, &h[1..])
                        }
                        Some((lit, rest)) => h.first() == Some(lit) && reference(rest, &h[1..]),
                    }
                }
                assert_eq!(short, reference(&pat, &have), "{t} on {path}");
            }
        }
        // Over 63 segments: the vector form.
        let long = format!("/a{}/z", "/s".repeat(70));
        assert!(template("/a/{**}/z", &long));
        assert!(!template("/a/{**}/y", &long));
        assert!(template("/{*}/{**}", &long));
    }
}
