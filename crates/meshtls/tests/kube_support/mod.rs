//! The real API server the Kubernetes tests run against: kube-apiserver and etcd built once by
//! `scripts/kube-apiserver.sh build` (`.ci/run` does), started per test binary in a temporary
//! directory and stopped on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kube-apiserver.sh")
}

/// The running API server; stopped (and its directory removed) on drop.
pub struct ApiServer {
    pub dir: PathBuf,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts an API server in a directory named after `name`; `None` (the test says "skipped")
/// when the binaries are not built, which fails the test under CI.
pub fn start(name: &str) -> Option<ApiServer> {
    if !Command::new(script())
        .arg("built")
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "kube-apiserver/etcd are missing in CI: .ci/run builds them (scripts/kube-apiserver.sh build)"
        );
        eprintln!(
            "skipped: kube-apiserver/etcd not built (scripts/kube-apiserver.sh build; .ci/run builds them)"
        );
        return None;
    }
    let dir = std::env::temp_dir().join(format!("meshtls-rust-{name}-{}", std::process::id()));
    let ok = Command::new(script())
        .arg("start")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "the API server did not start");
    Some(ApiServer { dir })
}

/// The client configuration of the server's admin kubeconfig.
pub async fn kube_config(server: &ApiServer) -> kube::Config {
    let kc = kube::config::Kubeconfig::read_from(server.dir.join("kubeconfig")).unwrap();
    kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap()
}
