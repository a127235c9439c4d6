//! Istio identities, principal patterns, alias expansion and the mesh config.

use meshtls::identity::{expand_principals, expand_spiffe_ids};
use meshtls::{IstioIdentity, MeshConfig, PrincipalPattern, SpiffeId, TrustDomain};

fn td(s: &str) -> TrustDomain {
    TrustDomain::new(s).expect("td")
}

fn id(s: &str) -> SpiffeId {
    SpiffeId::new(s).expect("id")
}

#[test]
fn parse_identity_needs_exactly_five_segments() {
    let ok = IstioIdentity::from_spiffe_id(&id("spiffe://cluster.local/ns/default/sa/web"))
        .expect("istio");
    assert_eq!((ok.namespace(), ok.service_account()), ("default", "web"));
    for bad in [
        "spiffe://cluster.local/ns/default/sa/web/extra",
        "spiffe://cluster.local/ns/default/sa",
        "spiffe://cluster.local/ns/default/xx/web",
        "spiffe://cluster.local/xx/default/sa/web",
        "spiffe://cluster.local",
        "spiffe://cluster.local/workload",
    ] {
        let err = IstioIdentity::from_spiffe_id(&id(bad)).expect_err(bad);
        assert!(err.to_string().contains(bad), "{err}");
    }
}

#[test]
fn principal_round_trip() {
    let i = IstioIdentity::new(td("prod.example"), "shop", "web").expect("istio");
    assert_eq!(i.principal(), "prod.example/ns/shop/sa/web");
    assert_eq!(
        IstioIdentity::from_principal(&i.principal()).expect("principal"),
        i
    );
    assert!(IstioIdentity::from_principal("spiffe://prod.example/ns/shop/sa/web").is_err());
    assert!(IstioIdentity::from_principal("prod.example/ns/shop").is_err());
    assert!(IstioIdentity::new(td("x"), "", "web").is_err());
    assert!(IstioIdentity::new(td("x"), "a/b", "web").is_err());
}

#[test]
fn principal_patterns_as_istio() {
    let web = id("spiffe://cluster.local/ns/shop/sa/web");
    let cases = [
        ("*", true),
        ("cluster.local/ns/shop/sa/web", true),
        ("cluster.local/ns/shop/sa/we", false),
        ("cluster.local/ns/shop/*", true),
        ("cluster.local/ns/bank/*", false),
        ("*/sa/web", true),
        ("*/sa/db", false),
    ];
    for (pattern, want) in cases {
        assert_eq!(
            PrincipalPattern::parse(pattern)
                .expect(pattern)
                .matches(&web),
            want,
            "{pattern}"
        );
    }
    assert!(PrincipalPattern::parse("a*b").is_err());
    assert!(PrincipalPattern::parse("**").is_err());
    assert!(PrincipalPattern::parse("").is_err());
}

#[test]
fn alias_expansion_of_principals() {
    let tds = [td("td1"), td("td2")];
    // In the bundle: one per trust domain.
    assert_eq!(
        expand_principals(&["td2/ns/a/sa/b"], &tds).unwrap(),
        ["td1/ns/a/sa/b", "td2/ns/a/sa/b"]
    );
    // Literally cluster.local means the mesh, whatever its trust domain.
    assert_eq!(
        expand_principals(&["cluster.local/ns/a/sa/b"], &tds).unwrap(),
        ["td1/ns/a/sa/b", "td2/ns/a/sa/b"]
    );
    // Foreign trust domain, `*` trust domain, and non-5-part principals stay as they are.
    assert_eq!(
        expand_principals(&["other/ns/a/sa/b"], &tds).unwrap(),
        ["other/ns/a/sa/b"]
    );
    assert_eq!(
        expand_principals(&["*/ns/a/sa/b"], &tds).unwrap(),
        ["*/ns/a/sa/b"]
    );
    assert_eq!(
        expand_principals(&["ns/a/sa/b"], &tds).unwrap(),
        ["ns/a/sa/b"]
    );
    // Duplicates are dropped.
    assert_eq!(
        expand_principals(&["td1/ns/a/sa/b", "td2/ns/a/sa/b"], &tds).unwrap(),
        ["td1/ns/a/sa/b", "td2/ns/a/sa/b"]
    );
}

#[test]
fn alias_expansion_of_ids() {
    let ids = [id("spiffe://td1/ns/a/sa/b"), id("spiffe://td1/ns/c/sa/d")];
    let got = expand_spiffe_ids(&ids, &[td("td2"), td("td2")]).unwrap();
    let got: Vec<&str> = got.iter().map(|i| i.as_str()).collect();
    assert_eq!(
        got,
        [
            "spiffe://td1/ns/a/sa/b",
            "spiffe://td1/ns/c/sa/d",
            "spiffe://td2/ns/a/sa/b",
            "spiffe://td2/ns/c/sa/d"
        ]
    );
    assert_eq!(expand_spiffe_ids(&ids, &[]).unwrap(), ids);
}

const CONFIGMAP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: istio
  namespace: istio-system
data:
  mesh: |-
    defaultConfig:
      discoveryAddress: istiod.istio-system.svc:15012
    enablePrometheusMerge: true
    rootNamespace: istio-config
    trustDomain: prod.example
    trustDomainAliases:
    - a1
    - a1
    - other
    - a2
    - ""
    meshMTLS:
      minProtocolVersion: TLSV1_3
    caCertificates:
    - pem: "..."
      trustDomains: [remote.example, a2]
"#;

#[test]
fn mesh_config_from_configmap() {
    let mesh = MeshConfig::from_yaml(CONFIGMAP).expect("mesh");
    assert_eq!(mesh.trust_domain().as_str(), "prod.example");
    let aliases: Vec<&str> = mesh
        .trust_domain_aliases()
        .iter()
        .map(|t| t.as_str())
        .collect();
    assert_eq!(aliases, ["a1", "a2", "other"]);
    assert_eq!(mesh.root_namespace(), "istio-config");
    assert!(mesh.min_protocol_version().requires_tls13());
    let tds: Vec<String> = mesh
        .trust_domains_for_validation()
        .iter()
        .map(|t| t.to_string())
        .collect();
    assert_eq!(tds, ["prod.example", "a1", "a2", "other", "remote.example"]);
}

#[test]
fn mesh_config_defaults_and_bare_document() {
    let mesh = MeshConfig::from_yaml("").expect("empty");
    assert_eq!(mesh.trust_domain().as_str(), "cluster.local");
    assert_eq!(mesh.root_namespace(), "istio-system");
    assert!(!mesh.min_protocol_version().requires_tls13());
    let bare =
        MeshConfig::from_yaml("trustDomain: x.example\nunknownField: {a: 1}\n").expect("bare");
    assert_eq!(bare.trust_domain().as_str(), "x.example");
}

#[test]
fn mesh_config_errors_name_the_field() {
    for (yaml, field) in [
        ("trustDomain: [a]", "(document)"),
        ("trustDomain: Bad.Domain", "trustDomain"),
        ("trustDomain: ''", "trustDomain"),
        (
            "trustDomainAliases: [ok, 'no way']",
            "trustDomainAliases[1]",
        ),
        (
            "meshMTLS: {minProtocolVersion: TLSV9}",
            "meshMTLS.minProtocolVersion",
        ),
        (
            "caCertificates: [{trustDomains: ['A']}]",
            "caCertificates[0].trustDomains[0]",
        ),
    ] {
        let err = MeshConfig::from_yaml(yaml).expect_err(yaml).to_string();
        assert!(err.contains(field), "{yaml}: {err}");
    }
    let err = MeshConfig::from_yaml("kind: ConfigMap\nmetadata: {name: istio}\ndata: {}\n")
        .expect_err("no mesh");
    assert!(err.to_string().contains("data.mesh"), "{err}");
    assert!(MeshConfig::from_yaml("trustDomain: [unclosed").is_err());
}

#[test]
fn mesh_config_layers_union_and_sort_aliases() {
    let mesh = MeshConfig::from_layers(&[
        "trustDomain: one\ntrustDomainAliases: [zeta, alpha]\nrootNamespace: first",
        "trustDomain: two\ntrustDomainAliases: [beta, alpha]",
    ])
    .expect("layers");
    assert_eq!(mesh.trust_domain().as_str(), "two");
    assert_eq!(mesh.root_namespace(), "first");
    let aliases: Vec<&str> = mesh
        .trust_domain_aliases()
        .iter()
        .map(|t| t.as_str())
        .collect();
    assert_eq!(aliases, ["alpha", "beta", "zeta"]);
}
