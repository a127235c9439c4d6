//! Reading the JSON vectors of tests/data/authz-*.json into requests and mesh configs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use meshtls::MeshConfig;
use meshtls::policy::authorization::{HttpRequest, Request};
use serde_json::Value;

pub fn data(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

pub fn request(v: &Value) -> Request {
    let mut r = Request::tcp(v["port"].as_u64().unwrap() as u16);
    if let Some(p) = v["principal"].as_str() {
        r = r.with_principal(p);
    }
    let ip = |k: &str| v[k].as_str().map(|s| s.parse().unwrap());
    r.source_ip = ip("source_ip");
    r.remote_ip = ip("remote_ip");
    r.destination_ip = ip("destination_ip");
    r.sni = v["sni"].as_str().map(str::to_owned);
    r.request_principal = v["request_principal"].as_str().map(str::to_owned);
    if let Some(h) = v["http"].as_object() {
        r.http = Some(HttpRequest {
            method: h["method"].as_str().unwrap().to_owned(),
            path: h["path"].as_str().unwrap().to_owned(),
            host: h.get("host").and_then(Value::as_str).map(str::to_owned),
            headers: h
                .get("headers")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    if let Some(c) = v["claims"].as_object() {
        for (k, vals) in c {
            for val in vals.as_array().unwrap() {
                r = r.with_claim(k, val.as_str().unwrap());
            }
        }
    }
    r
}

pub fn mesh(v: &Value) -> MeshConfig {
    let mut text = String::new();
    if let Some(td) = v["trust_domain"].as_str() {
        text.push_str(&format!("trustDomain: {td}\n"));
    }
    if let Some(a) = v["trust_domain_aliases"].as_array() {
        text.push_str(&format!(
            "trustDomainAliases: {}\n",
            Value::Array(a.clone())
        ));
    }
    if let Some(r) = v["root_namespace"].as_str() {
        text.push_str(&format!("rootNamespace: {r}\n"));
    }
    MeshConfig::from_yaml(&text).unwrap()
}

pub fn labels(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}
