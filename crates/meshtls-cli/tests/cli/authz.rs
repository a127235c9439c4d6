//! `meshtls authz check` and `meshtls path check`: exit codes, text and JSON output, on the
//! seed case of examples/authz (the AGC gateway identity to a STRICT namespace).

use crate::support::{Scratch, run};

const GW: &str = "spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller";
const DUMP: &str = "examples/authz/cluster-dump.json";

#[test]
fn path_check_the_seed_case() {
    let args = [
        "path",
        "check",
        DUMP,
        "--from",
        GW,
        "--to",
        "demo/app=api",
        "--port",
        "8080",
    ];
    let (code, out, err) = run(&args, "");
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.starts_with("refused: denied: ALLOW policies apply"),
        "{out}"
    );
    assert!(out.contains("mTLS mode of port 8080: STRICT"), "{out}");
    assert!(out.contains("ALLOW demo/api-callers"), "{out}");

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let (code, out, _) = run(&json_args, "");
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["allowed"], false);
    assert_eq!(v["step"], "no-allow-matched");
    assert_eq!(v["mode"], "STRICT");
    assert_eq!(v["transport"], "mtls");

    // With the policy naming the gateway (the dump with allow-gateway.yaml applied).
    let dump = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/authz/cluster-dump.json"
    ))
    .unwrap();
    let allow = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/authz/allow-gateway.yaml"
    ))
    .unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let pol = meshtls::policy::authorization::AuthorizationPolicy::from_yaml(&allow).unwrap();
    doc["items"][2] = pol.to_value();
    let (code, out, err) = run(
        &[
            "path",
            "check",
            "-",
            "--from",
            GW,
            "--to",
            "demo/app=api",
            "--port",
            "8080",
            "--json",
        ],
        &doc.to_string(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["step"], "allowed");
    assert_eq!(v["authorization"]["policy"], "demo/api-callers");

    // Plaintext is refused by the mode; a mesh workload goes through its DestinationRule.
    let (code, out, _) = run(
        &[
            "path",
            "check",
            DUMP,
            "--plaintext",
            "--to",
            "demo/app=api",
            "--port",
            "8080",
        ],
        "",
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("refused by mTLS mode STRICT (PeerAuthentication demo/default)"),
        "{out}"
    );
    let (code, out, _) = run(
        &[
            "path",
            "check",
            DUMP,
            "--from",
            "spiffe://cluster.local/ns/shop/sa/web",
            "--workload",
            "--to",
            "demo/app=api",
            "--port",
            "8080",
            "--service",
            "api",
        ],
        "",
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "DestinationRule demo/api (host api.demo.svc.cluster.local) sets tls.mode ISTIO_MUTUAL"
        ),
        "{out}"
    );
}

#[test]
fn path_check_bad_usage() {
    for args in [
        vec!["path", "check", DUMP, "--to", "demo", "--port", "80"],
        vec![
            "path",
            "check",
            DUMP,
            "--from",
            "not-an-id",
            "--to",
            "demo",
            "--port",
            "80",
        ],
        vec![
            "path",
            "check",
            DUMP,
            "--plaintext",
            "--to",
            "/app=x",
            "--port",
            "80",
        ],
        vec![
            "path",
            "check",
            DUMP,
            "--plaintext",
            "--to",
            "demo/app",
            "--port",
            "80",
        ],
        vec![
            "path",
            "check",
            DUMP,
            "--plaintext",
            "--to",
            "demo",
            "--port",
            "99999",
        ],
        vec![
            "path",
            "check",
            "missing.json",
            "--plaintext",
            "--to",
            "demo",
            "--port",
            "80",
        ],
    ] {
        let (code, out, err) = run(&args, "");
        assert_eq!(code, 2, "{args:?}: {out}{err}");
    }
}

#[test]
fn authz_check_validates_and_evaluates() {
    let (code, out, _) = run(&["authz", "check", "examples/authz/allow-gateway.yaml"], "");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok       demo/api-callers"), "{out}");
    let bad = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: d, namespace: foo}\nspec: {action: DENY}\n";
    let (code, out, _) = run(&["authz", "check", "-", "--json"], bad);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], false);
    assert!(
        v["objects"][0]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("DENY action without `rules`")
    );
    assert_eq!(v["objects"][0]["errors"][0]["layer"], "istiod");

    let eval = [
        "authz",
        "check",
        "examples/authz/deny-gateway.yaml",
        "--to",
        "demo/app=api",
        "--port",
        "8080",
    ];
    let mut gw = eval.to_vec();
    gw.extend(["--from", GW]);
    let (code, out, _) = run(&gw, "");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("refused: denied: ALLOW policies apply"),
        "{out}"
    );
    let mut web = eval.to_vec();
    web.extend([
        "--from",
        "spiffe://cluster.local/ns/shop/sa/web",
        "--method",
        "GET",
        "--path",
        "/x",
        "--json",
    ]);
    let (code, out, _) = run(&web, "");
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["policy"], "demo/api-callers");
    assert_eq!(v["rule"], 0);
    let (code, _, err) = run(
        &[
            "authz",
            "check",
            "examples/authz/deny-gateway.yaml",
            "--to",
            "demo",
        ],
        "",
    );
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(
        &[
            "authz",
            "check",
            "examples/authz/deny-gateway.yaml",
            "--port",
            "80",
        ],
        "",
    );
    assert_eq!(code, 2, "{err}");
}

fn upstream() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/authz-upstream.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `--key value` for each request attribute of a vector, with the CLI's flag names.
fn attribute_flags(r: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for (key, flag) in [
        ("source_ip", "--source-ip"),
        ("remote_ip", "--remote-ip"),
        ("destination_ip", "--destination-ip"),
        ("sni", "--sni"),
        ("request_principal", "--request-principal"),
        ("method", "--method"),
        ("path", "--path"),
    ] {
        if let Some(v) = r[key].as_str() {
            out.extend([flag.to_owned(), v.to_owned()]);
        }
    }
    if let Some(h) = r["http"].as_object() {
        for (key, flag) in [
            ("method", "--method"),
            ("path", "--path"),
            ("host", "--host"),
        ] {
            if let Some(v) = h.get(key).and_then(|v| v.as_str()) {
                out.extend([flag.to_owned(), v.to_owned()]);
            }
        }
        for (k, v) in h
            .get("headers")
            .and_then(|v| v.as_object())
            .into_iter()
            .flatten()
        {
            out.extend([
                "--header".to_owned(),
                format!("{k}={}", v.as_str().unwrap()),
            ]);
        }
    }
    for (k, vals) in r["claims"].as_object().into_iter().flatten() {
        for v in vals.as_array().unwrap() {
            out.extend(["--claim".to_owned(), format!("{k}={}", v.as_str().unwrap())]);
        }
    }
    out
}

fn mesh_config_file(dir: &std::path::Path, m: &serde_json::Value) -> Option<String> {
    let td = m["trust_domain"].as_str()?;
    let aliases = m["trust_domain_aliases"].clone();
    let text = format!(
        "trustDomain: {td}\ntrustDomainAliases: {}\n",
        if aliases.is_null() {
            serde_json::json!([])
        } else {
            aliases
        }
    );
    let path = dir.join("mesh.yaml");
    std::fs::write(&path, text).unwrap();
    Some(path.to_str().unwrap().to_owned())
}

/// `COMMAND - --json --to ns/k=v,... --port N` for a vector's workload.
fn base_args(
    command: &[&str],
    workload: &serde_json::Value,
    port: &serde_json::Value,
) -> Vec<String> {
    let labels: Vec<String> = workload["labels"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
        .collect();
    let to = format!(
        "{}/{}",
        workload["namespace"].as_str().unwrap(),
        labels.join(",")
    );
    let mut args: Vec<String> = command.iter().map(|s| s.to_string()).collect();
    args.extend(["-", "--json", "--to", &to, "--port", &port.to_string()].map(str::to_owned));
    args
}

/// Runs `args` with the vector's objects as a List on stdin; the exit code must say
/// `allowed`; the JSON answer is returned.
fn run_vector(
    name: &str,
    args: &[String],
    items: &serde_json::Value,
    allowed: bool,
) -> serde_json::Value {
    let stdin = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = run(&argv, &stdin.to_string());
    assert_eq!(code, if allowed { 0 } else { 1 }, "{name}: {out}{err}");
    serde_json::from_str(&out).unwrap()
}

/// The upstream evaluation vectors through `authz check`, sidecar and ambient
/// (`--data-plane`), every attribute by its flag.
#[test]
fn authz_check_upstream_vectors() {
    let doc = upstream();
    let scratch = Scratch::new("authz-vectors");
    let dir = scratch.path();
    for c in doc["eval"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let r = &c["request"];
        let mut args = base_args(&["authz", "check"], &c["workload"], &r["port"]);
        match r["principal"].as_str() {
            Some(p) => args.extend(["--from".to_owned(), format!("spiffe://{p}")]),
            None => args.push("--plaintext".to_owned()),
        }
        args.extend([
            "--data-plane".to_owned(),
            c["data_plane"].as_str().unwrap().to_owned(),
        ]);
        args.extend(attribute_flags(r));
        if let Some(m) = mesh_config_file(dir, &c["mesh"]) {
            args.extend(["--mesh-config".to_owned(), m]);
        }
        let e = &c["expected"];
        let v = run_vector(name, &args, &c["policies"], e["allowed"].as_bool().unwrap());
        assert_eq!(v["step"], e["step"], "{name}: {v}");
        assert_eq!(v["data_plane"], c["data_plane"], "{name}");
        assert_eq!(v["policy"], e["policy"], "{name}: {v}");
    }
}

/// The upstream path vectors (ambient pods among them) through `path check`.
#[test]
fn path_check_upstream_vectors() {
    let doc = upstream();
    let scratch = Scratch::new("path-vectors");
    let dir = scratch.path();
    for c in doc["path"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let d = &c["destination"];
        let mut args = base_args(&["path", "check"], d, &d["port"]);
        let id = c["caller"]["id"].as_str().map(str::to_owned);
        match c["caller"]["kind"].as_str().unwrap() {
            "plaintext" => args.push("--plaintext".to_owned()),
            "external" => args.extend(["--from".to_owned(), id.unwrap()]),
            "hbone" => args.extend(["--from".to_owned(), id.unwrap(), "--hbone".to_owned()]),
            "workload" => args.extend(["--from".to_owned(), id.unwrap(), "--workload".to_owned()]),
            other => panic!("{other}"),
        }
        args.extend(attribute_flags(d));
        if let Some(m) = mesh_config_file(dir, &c["mesh"]) {
            args.extend(["--mesh-config".to_owned(), m]);
        }
        let e = &c["expected"];
        let v = run_vector(name, &args, &c["dump"], e["allowed"].as_bool().unwrap());
        assert_eq!(v["step"], e["step"], "{name}: {v}");
        assert_eq!(v["data_plane"], e["data_plane"], "{name}");
        assert_eq!(v["transport"], e["transport"], "{name}");
    }
    // --hbone is for an outside caller only.
    let (code, _, err) = run(
        &[
            "path",
            "check",
            DUMP,
            "--from",
            GW,
            "--hbone",
            "--workload",
            "--to",
            "demo",
            "--port",
            "80",
        ],
        "",
    );
    assert_eq!(code, 2, "{err}");
}
