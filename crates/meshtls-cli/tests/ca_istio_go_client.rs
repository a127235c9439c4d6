#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Istio's own Go CA client against `meshtls ca serve`: the istio-agent's `citadel` provider
//! (istio.io/istio's `security/pkg/nodeagent/caclient/providers/citadel`, built from the
//! published module by scripts/build-peers.sh into ~/.cache/meshtls-peers/istio-ca-client,
//! source tests/peers/istio-ca-client/) sends a CSR with a service-account token, with and
//! without `ImpersonatedIdentity`. The chain it gets is checked by openssl against the root;
//! refusals carry istiod's gRPC code and message as the Go client prints them.
//!
//! With feature `kube` and the test API server (scripts/kube-apiserver.sh), the same client
//! against `ca serve --node-authorization kube`: ztunnel's token bound to its pod by the API
//! server's TokenRequest, pods created with `nodeName` set.
//!
//! A missing peer skips with a message, and fails under CI=true (scripts/test.sh builds it).
#![cfg(feature = "grpc")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const WEB: &str = "spiffe://cluster.local/ns/shop/sa/web";
const DB: &str = "spiffe://cluster.local/ns/shop/sa/db";
const ZTUNNEL: &str = "spiffe://cluster.local/ns/istio-system/sa/ztunnel";
const IMPERSONATION_REFUSED: &str =
    "code = Unauthenticated desc = request impersonation authentication failure";

struct Scratch(PathBuf);
impl Scratch {
    fn new(tag: &str) -> Scratch {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let d =
            std::env::temp_dir().join(format!("meshtls-cli-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    fn p(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
    fn write(&self, f: &str, text: &str) -> PathBuf {
        let p = self.p(f);
        std::fs::write(&p, text).unwrap();
        p
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Istio's Go CA client from the peer cache, or `None` (skipped; a failure under CI).
fn go_ca_client() -> Option<PathBuf> {
    let dir = std::env::var_os("MESHTLS_PEERS_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/meshtls-peers"))
        })?;
    let p = dir.join("istio-ca-client");
    if p.is_file() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "Istio's Go CA client is missing in CI ({}): scripts/build-peers.sh did not build it",
        p.display()
    );
    eprintln!(
        "SKIP: Istio's Go CA client not built ({}); run scripts/build-peers.sh",
        p.display()
    );
    None
}

/// A running `meshtls ca serve`: killed on drop; its standard error as a channel of lines.
struct Serve {
    child: Child,
    address: String,
    log: Receiver<String>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_meshtls"))
            .args(["ca", "serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, log) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let listening: serde_json::Value = serde_json::from_str(&first).unwrap_or_else(|e| {
            let logged: Vec<String> = log.try_iter().collect();
            panic!("ca serve did not start ({first:?}: {e}); its log: {logged:?}")
        });
        let port = listening["listening"]
            .as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .to_owned();
        // As an agent port-forwarded to istiod: `localhost` makes Istio's client check the
        // certificate for istiod.istio-system.svc.
        Serve {
            child,
            address: format!("localhost:{port}"),
            log,
        }
    }

    /// Waits up to 20 s for a log line containing every one of `parts`.
    fn wait_log(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.log.recv_timeout(left) {
                Ok(line) if parts.iter().all(|p| line.contains(p)) => return line,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("no log line with {parts:?}; saw {seen:?}");
    }
}

/// One run of Istio's Go client: `Ok(chain PEM)` or `Err(its error line)`.
fn go_client(
    peer: &Path,
    serve: &Serve,
    root: &Path,
    token: &Path,
    impersonate: Option<&str>,
) -> Result<String, String> {
    let mut cmd = Command::new(peer);
    cmd.args([
        "-addr",
        &serve.address,
        "-root",
        s(root),
        "-token",
        s(token),
        "-identity",
        WEB,
    ]);
    if let Some(who) = impersonate {
        cmd.args(["-impersonate", who]);
    }
    let out: Output = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or(&stderr)
            .to_owned())
    }
}

/// openssl checks the chain the Go client printed against the root (the certificates after
/// the leaf as untrusted intermediates) and returns the leaf's URI SAN.
fn verified_identity(dir: &Scratch, root: &Path, chain_pem: &str) -> String {
    let certs: Vec<String> = chain_pem
        .split_inclusive("-----END CERTIFICATE-----\n")
        .filter(|c| c.contains("BEGIN CERTIFICATE"))
        .map(str::to_owned)
        .collect();
    assert!(certs.len() >= 2, "a chain of one: {chain_pem}");
    let leaf = dir.write("leaf.pem", &certs[0]);
    let rest = dir.write("untrusted.pem", &certs[1..].concat());
    let out = Command::new("openssl")
        .args([
            "verify",
            "-CAfile",
            s(root),
            "-untrusted",
            s(&rest),
            s(&leaf),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("openssl")
        .args(["x509", "-in", s(&leaf), "-noout", "-ext", "subjectAltName"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let uri = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .find_map(|t| t.strip_prefix("URI:"))
        .unwrap_or_else(|| panic!("no uri san in {text}"));
    uri.to_owned()
}

fn issuer() -> (EcdsaKeyPair, String) {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let p = pair.public_key().as_ref();
    let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k",
        "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..65])}]})
    .to_string();
    (pair, jwks)
}

fn token(pair: &EcdsaKeyPair, ns: &str, sa: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let h = B64.encode(br#"{"alg":"ES256","kid":"k"}"#);
    let p = B64.encode(
        serde_json::json!({"iss": ISSUER, "sub": format!("system:serviceaccount:{ns}:{sa}"),
            "aud": ["istio-ca"], "exp": now + 600})
        .to_string(),
    );
    let sig = pair
        .sign(&SystemRandom::new(), format!("{h}.{p}").as_bytes())
        .unwrap();
    format!("{h}.{p}.{}", B64.encode(sig.as_ref()))
}

fn ca_init(dir: &Scratch) -> (PathBuf, PathBuf) {
    let ca_dir = dir.p("ca");
    let out = Command::new(env!("CARGO_BIN_EXE_meshtls"))
        .args(["ca", "init", s(&ca_dir), "--key", "ec-p256"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = ca_dir.join("root-cert.pem");
    (ca_dir, root)
}

#[test]
fn istios_go_ca_client_gets_its_certificate_and_impersonates_only_as_allowed() {
    let Some(peer) = go_ca_client() else { return };
    let dir = Scratch::new("go-ca-client");
    let (ca_dir, root) = ca_init(&dir);
    let (pair, jwks) = issuer();
    let jwks = dir.write("jwks.json", &jwks);
    let web_token = dir.write("web-token", &token(&pair, "shop", "web"));
    let ztunnel_token = dir.write("ztunnel-token", &token(&pair, "istio-system", "ztunnel"));
    let serve = Serve::start(&[
        "--ca",
        s(&ca_dir),
        "--jwks",
        s(&jwks),
        "--issuer",
        ISSUER,
        "--trusted-node-account",
        "istio-system/ztunnel=shop/web",
    ]);

    // The agent's own certificate (citadel.CitadelClient.CSRSign): the token names it.
    let chain = go_client(&peer, &serve, &root, &web_token, None).unwrap();
    assert_eq!(verified_identity(&dir, &root, &chain), WEB);
    serve.wait_log(&["OK: signed", WEB]);
    // The trusted node account asks for a pod's identity it may have.
    let chain = go_client(&peer, &serve, &root, &ztunnel_token, Some(WEB)).unwrap();
    assert_eq!(verified_identity(&dir, &root, &chain), WEB);
    // Without impersonation ztunnel gets its own.
    let chain = go_client(&peer, &serve, &root, &ztunnel_token, None).unwrap();
    assert_eq!(verified_identity(&dir, &root, &chain), ZTUNNEL);

    // Refusals, as the Go client reports them, with the reason in the server's log.
    let err = go_client(&peer, &serve, &root, &ztunnel_token, Some(DB)).unwrap_err();
    assert!(err.contains(IMPERSONATION_REFUSED), "{err}");
    serve.wait_log(&[
        "request impersonation authentication failure",
        &format!("trusted node account {ZTUNNEL} may not impersonate {DB}"),
    ]);
    let err = go_client(&peer, &serve, &root, &web_token, Some(DB)).unwrap_err();
    assert!(err.contains(IMPERSONATION_REFUSED), "{err}");
    serve.wait_log(&[&format!("{WEB} is not a trusted node account")]);
    let (stranger, _) = issuer();
    let forged = dir.write("forged-token", &token(&stranger, "shop", "web"));
    let err = go_client(&peer, &serve, &root, &forged, None).unwrap_err();
    assert!(
        err.contains("code = Unauthenticated desc = request authenticate failure"),
        "{err}"
    );
    serve.wait_log(&["signature does not verify"]);
}

#[cfg(feature = "kube")]
mod kube_node_authorization {
    use super::*;

    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kube-apiserver.sh")
    }

    /// The test API server, stopped on drop; requests with curl and its admin token.
    struct ApiServer {
        dir: PathBuf,
        server: String,
        token: String,
        ca: String,
    }

    impl Drop for ApiServer {
        fn drop(&mut self) {
            let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    impl ApiServer {
        fn start() -> Option<ApiServer> {
            if !Command::new(script())
                .arg("built")
                .status()
                .is_ok_and(|s| s.success())
            {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "kube-apiserver/etcd are missing in CI: .ci/run builds them"
                );
                eprintln!(
                    "SKIP: kube-apiserver/etcd not built (scripts/kube-apiserver.sh build; .ci/run builds them)"
                );
                return None;
            }
            let dir =
                std::env::temp_dir().join(format!("meshtls-cli-nodeauth-{}", std::process::id()));
            let ok = Command::new(script())
                .arg("start")
                .arg(&dir)
                .stdout(Stdio::null())
                .status()
                .unwrap()
                .success();
            assert!(ok, "the API server did not start");
            let env = std::fs::read_to_string(dir.join("env")).unwrap();
            let get = |k: &str| {
                env.lines()
                    .find_map(|l| l.strip_prefix(&format!("{k}=")))
                    .unwrap()
                    .to_owned()
            };
            Some(ApiServer {
                server: get("KUBE_SERVER"),
                token: get("KUBE_TOKEN"),
                ca: get("KUBE_CA"),
                dir,
            })
        }

        fn kubeconfig(&self) -> PathBuf {
            self.dir.join("kubeconfig")
        }

        fn call(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> String {
            let mut cmd = Command::new("curl");
            cmd.args([
                "-sS",
                "--fail-with-body",
                "--cacert",
                &self.ca,
                "-X",
                method,
            ])
            .args(["-H", &format!("Authorization: Bearer {}", self.token)])
            .args(["-H", "Content-Type: application/json"]);
            if let Some(b) = body {
                cmd.args(["--data-binary", &b.to_string()]);
            }
            let out = cmd.arg(format!("{}{path}", self.server)).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "{method} {path}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            text
        }

        fn post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
            serde_json::from_str(&self.call("POST", path, Some(body))).unwrap()
        }

        fn pod(&self, ns: &str, name: &str, sa: &str, node: &str) -> serde_json::Value {
            self.post(
                &format!("/api/v1/namespaces/{ns}/pods"),
                serde_json::json!({
                    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                    "spec": {"serviceAccountName": sa, "nodeName": node,
                        "automountServiceAccountToken": false,
                        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
                }),
            )
        }
    }

    fn eventually(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("timed out waiting for: {what}");
    }

    /// ztunnel in shared mode with istiod's node check: its token bound to its pod by the API
    /// server, the pods of its node from the API server's watch.
    #[test]
    fn istios_go_ca_client_impersonates_the_pods_on_its_node() {
        let Some(peer) = go_ca_client() else { return };
        let Some(api) = ApiServer::start() else {
            return;
        };
        for ns in ["istio-system", "shop"] {
            api.post(
                "/api/v1/namespaces",
                serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            );
        }
        for (ns, sa) in [("istio-system", "ztunnel"), ("shop", "web"), ("shop", "db")] {
            api.post(
                &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
                serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa}}),
            );
        }
        let ztunnel_pod = api.pod("istio-system", "ztunnel-a", "ztunnel", "node-a");
        api.pod("shop", "web-1", "web", "node-a");
        api.pod("shop", "db-1", "db", "node-b");
        let answer = api.post(
            "/api/v1/namespaces/istio-system/serviceaccounts/ztunnel/token",
            serde_json::json!({
                "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": ["istio-ca"], "expirationSeconds": 600,
                    "boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                        "name": "ztunnel-a", "uid": ztunnel_pod["metadata"]["uid"]}},
            }),
        );
        let dir = Scratch::new("go-ca-client-kube");
        let (ca_dir, root) = ca_init(&dir);
        let bound = dir.write("ztunnel-token", answer["status"]["token"].as_str().unwrap());
        let jwks = dir.write("jwks.json", &api.call("GET", "/openid/v1/jwks", None));
        let serve = Serve::start(&[
            "--ca",
            s(&ca_dir),
            "--jwks",
            s(&jwks),
            "--issuer",
            ISSUER,
            "--trusted-node-account",
            "istio-system/ztunnel",
            "--node-authorization",
            "kube",
            "--kubeconfig",
            s(&api.kubeconfig()),
        ]);
        serve.wait_log(&["node authorizer synced: 3 pods"]);
        serve.wait_log(&[ZTUNNEL, "a pod on its node"]);

        // web has a pod on ztunnel's node: granted.
        let chain = go_client(&peer, &serve, &root, &bound, Some(WEB)).unwrap();
        assert_eq!(verified_identity(&dir, &root, &chain), WEB);
        // db only on node-b: refused, istiod's reason in the log.
        let err = go_client(&peer, &serve, &root, &bound, Some(DB)).unwrap_err();
        assert!(err.contains(IMPERSONATION_REFUSED), "{err}");
        serve.wait_log(&[
            "request impersonation authentication failure",
            r#"no instances of "shop/db" found on node "node-a""#,
        ]);
        // web's pod deleted: refused once the watch has seen it.
        api.call(
            "DELETE",
            "/api/v1/namespaces/shop/pods/web-1?gracePeriodSeconds=0",
            None,
        );
        eventually("web refused after its pod is deleted", || {
            go_client(&peer, &serve, &root, &bound, Some(WEB))
                .is_err_and(|e| e.contains(IMPERSONATION_REFUSED))
        });
        serve.wait_log(&[r#"no instances of "shop/web" found on node "node-a""#]);
    }
}
