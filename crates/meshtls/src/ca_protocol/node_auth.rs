//! istiod's node authorization of `ImpersonatedIdentity` (feature `kube`): a trusted node
//! account (ztunnel's) may ask for an identity only when a pod running as that service account
//! is scheduled on the caller's own node.
//!
//! The rule is istiod's `NodeAuthorizer` (`security/pkg/server/ca/node_auth.go`), also
//! istio-csr's (`pkg/server/node_auth.go`):
//!
//! 1. the caller is a trusted node account (checked by the server before asking here);
//! 2. the requested identity is an Istio identity (`spiffe://<td>/ns/<ns>/sa/<sa>`);
//! 3. the caller's pod, named by its bound service-account token (`kubernetes.io.pod.name` and
//!    `uid`), is known, has that uid (a pod re-created under the same name is another pod)
//!    and runs as the caller's service account;
//! 4. some pod of the requested service account is scheduled on the caller's pod's node
//!    (`spec.nodeName`).
//!
//! The pods come from a watch of the API server ([`NodeAuthorizer::start`] on a thread of its
//! own, or [`NodeAuthorizer::run`] on a runtime of yours), kept as an index by node name
//! → (namespace, service account) → number of pods, plus each pod's uid, service account and
//! node: a few hundred bytes a pod, whatever the size of the pod objects. Until the watch has
//! listed the pods once every request is refused (a fresh server refuses rather than guesses,
//! and the agent retries). Pods without `spec.nodeName` (not yet scheduled) run nowhere.
//!
//! Every refusal reaches the caller as istiod's `UNAUTHENTICATED` "request impersonation
//! authentication failure"; the reason (istiod's wording where it has one) goes to the log.
//!
//! ```
//! use meshtls::ca_protocol::NodeAuthorizer;
//! use meshtls::ca_protocol::jwt::PodClaim;
//! use meshtls::{IstioIdentity, SpiffeId, TrustDomain};
//!
//! // An index filled by hand (the watch does this from the API server).
//! let nodes = NodeAuthorizer::new();
//! nodes.apply_pod("istio-system", "ztunnel-x1", "uid-1", "ztunnel", Some("node-a"));
//! nodes.apply_pod("shop", "web-1", "uid-2", "web", Some("node-a"));
//! nodes.apply_pod("shop", "db-1", "uid-3", "db", Some("node-b"));
//! nodes.mark_synced();
//!
//! let td = TrustDomain::new("cluster.local")?;
//! let ztunnel = IstioIdentity::new(td.clone(), "istio-system", "ztunnel")?;
//! let pod = PodClaim { name: "ztunnel-x1".into(), uid: "uid-1".into() };
//! let web = SpiffeId::new("spiffe://cluster.local/ns/shop/sa/web")?;
//! let db = SpiffeId::new("spiffe://cluster.local/ns/shop/sa/db")?;
//! assert!(nodes.authorize(&ztunnel, Some(&pod), &web).is_ok());
//! assert_eq!(
//!     nodes.authorize(&ztunnel, Some(&pod), &db).unwrap_err(),
//!     r#"no instances of "shop/db" found on node "node-a""#,
//! );
//! # Ok::<(), meshtls::Error>(())
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};

use super::jwt::PodClaim;
use crate::error::{CaProtocolError, Error};
use crate::identity::{IstioIdentity, SpiffeId};

/// What the watch keeps of one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PodEntry {
    uid: String,
    service_account: String,
    node: Option<String>,
}

/// (namespace, service account).
type Sa = (String, String);

/// The pods by (namespace, name), and by node → service account → count.
#[derive(Debug, Default)]
struct PodIndex {
    pods: HashMap<(String, String), PodEntry>,
    by_node: HashMap<String, HashMap<Sa, usize>>,
}

impl PodIndex {
    fn count(&mut self, ns: &str, e: &PodEntry, add: bool) {
        let Some(node) = &e.node else { return };
        if e.service_account.is_empty() {
            return;
        }
        let key = (ns.to_owned(), e.service_account.clone());
        if add {
            *self
                .by_node
                .entry(node.clone())
                .or_default()
                .entry(key)
                .or_insert(0) += 1;
        } else if let Some(sas) = self.by_node.get_mut(node) {
            if let Some(n) = sas.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    sas.remove(&key);
                }
            }
            if sas.is_empty() {
                self.by_node.remove(node);
            }
        }
    }

    fn apply(&mut self, ns: &str, name: &str, entry: PodEntry) {
        let key = (ns.to_owned(), name.to_owned());
        if let Some(old) = self.pods.remove(&key) {
            self.count(ns, &old, false);
        }
        self.count(ns, &entry, true);
        self.pods.insert(key, entry);
    }

    fn delete(&mut self, ns: &str, name: &str) {
        if let Some(old) = self.pods.remove(&(ns.to_owned(), name.to_owned())) {
            self.count(ns, &old, false);
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    index: RwLock<PodIndex>,
    synced: AtomicBool,
}

/// Stops the background watch when the last [`NodeAuthorizer`] clone is dropped.
#[derive(Debug)]
struct StopOnDrop(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            let _ = stop.send(());
        }
    }
}

/// istiod's node authorizer: which service accounts have pods on which node, from a watch of
/// the API server's pods. See the [module documentation](self).
///
/// Clones share the index. Put one in [`super::ServerConfig::node_authorizer`]: the server
/// then asks it about every impersonation by a trusted node account.
#[derive(Clone, Default)]
pub struct NodeAuthorizer {
    shared: Arc<Shared>,
    _stop: Option<Arc<StopOnDrop>>,
}

/// The counts, not every pod of the cluster (a server's config is printed with `{:?}`).
impl std::fmt::Debug for NodeAuthorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let index = read(&self.shared.index);
        f.debug_struct("NodeAuthorizer")
            .field("synced", &self.is_synced())
            .field("pods", &index.pods.len())
            .field("nodes", &index.by_node.len())
            .finish()
    }
}

/// Which pods to watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PodWatch {
    /// Only this namespace (`None`: all namespaces, as istiod watches).
    pub namespace: Option<String>,
    /// A field selector (e.g. `spec.nodeName=node-a` for a CA serving one node's agent).
    pub field_selector: Option<String>,
    /// A label selector.
    pub label_selector: Option<String>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    match lock.read() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    match lock.write() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn entry_of(pod: &Pod) -> Option<(String, String, PodEntry)> {
    let ns = pod.metadata.namespace.clone()?;
    let name = pod.metadata.name.clone()?;
    let spec = pod.spec.as_ref();
    let entry = PodEntry {
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        service_account: spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        node: spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
    };
    Some((ns, name, entry))
}

/// The longest wait between two attempts of a failing watch.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl NodeAuthorizer {
    /// An empty, not yet synced authorizer (it refuses everything until
    /// [`NodeAuthorizer::mark_synced`] or a watch has listed the pods).
    pub fn new() -> NodeAuthorizer {
        NodeAuthorizer::default()
    }

    /// Watches pods on a thread with its own runtime, with a client from `config` (`None`:
    /// [`kube::Config::infer`], the in-cluster config or `$KUBECONFIG`/`~/.kube/config`).
    /// The watch stops when the last clone is dropped. Returns at once; see
    /// [`NodeAuthorizer::wait_synced`].
    pub fn start(config: Option<kube::Config>, watch: PodWatch) -> Result<NodeAuthorizer, Error> {
        let err = |what: &'static str, rule: String| CaProtocolError::Config {
            what,
            value: "node authorizer".to_owned(),
            rule,
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let authorizer = NodeAuthorizer {
            shared: Arc::default(),
            _stop: Some(Arc::new(StopOnDrop(Some(stop_tx)))),
        };
        let worker = NodeAuthorizer {
            shared: authorizer.shared.clone(),
            _stop: None,
        };
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), CaProtocolError>>();
        std::thread::Builder::new()
            .name("meshtls-node-auth".to_owned())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(err("runtime", e.to_string())));
                        return;
                    }
                };
                rt.block_on(async move {
                    let config = match config {
                        Some(c) => Ok(c),
                        None => kube::Config::infer().await.map_err(|e| {
                            err(
                                "kubernetes config",
                                format!("none found (in-cluster or kubeconfig): {e}"),
                            )
                        }),
                    };
                    let client = config.and_then(|c| {
                        kube::Client::try_from(c)
                            .map_err(|e| err("kubernetes client", e.to_string()))
                    });
                    let client = match client {
                        Ok(c) => {
                            let _ = ready_tx.send(Ok(()));
                            c
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    tokio::select! {
                        () = worker.run(client, watch) => {}
                        _ = stop_rx => {}
                    }
                });
            })
            .map_err(|e| err("watch thread", e.to_string()))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(authorizer),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(err("watch thread", "stopped before watching".to_owned()).into()),
        }
    }

    /// Runs the watch of pods with `client` (on the caller's runtime) until the future is
    /// dropped; a failing watch is retried with back-off (up to 10 s) and logged, the index
    /// it had is kept meanwhile.
    pub async fn run(&self, client: kube::Client, watch: PodWatch) {
        let api: Api<Pod> = match &watch.namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        };
        let mut config = watcher::Config::default();
        if let Some(f) = &watch.field_selector {
            config = config.fields(f);
        }
        if let Some(l) = &watch.label_selector {
            config = config.labels(l);
        }
        let mut attempt = 0u32;
        loop {
            let mut stream = watcher::watcher(api.clone(), config.clone()).boxed();
            let mut relist: Option<PodIndex> = None;
            while let Some(event) = stream.next().await {
                match event {
                    Ok(Event::Init) => relist = Some(PodIndex::default()),
                    Ok(Event::InitApply(pod)) => {
                        if let (Some(fresh), Some((ns, name, e))) = (&mut relist, entry_of(&pod)) {
                            fresh.apply(&ns, &name, e);
                        }
                    }
                    Ok(Event::InitDone) => {
                        if let Some(fresh) = relist.take() {
                            let n = fresh.pods.len();
                            *write(&self.shared.index) = fresh;
                            if !self.shared.synced.swap(true, Ordering::SeqCst) {
                                log::info!("ca server: node authorizer synced: {n} pods");
                            }
                        }
                        attempt = 0;
                    }
                    Ok(Event::Apply(pod)) => {
                        if let Some((ns, name, e)) = entry_of(&pod) {
                            write(&self.shared.index).apply(&ns, &name, e);
                        }
                    }
                    Ok(Event::Delete(pod)) => {
                        if let (Some(ns), Some(name)) =
                            (&pod.metadata.namespace, &pod.metadata.name)
                        {
                            write(&self.shared.index).delete(ns, name);
                        }
                    }
                    Err(e) => {
                        log::warn!("ca server: node authorizer: watch of pods failed: {e}");
                        break;
                    }
                }
            }
            let secs = 1u64 << attempt.min(4);
            tokio::time::sleep(Duration::from_secs(secs).min(MAX_BACKOFF)).await;
            attempt = attempt.saturating_add(1);
        }
    }

    /// Whether the watch has listed the pods once (before that every request is refused).
    pub fn is_synced(&self) -> bool {
        self.shared.synced.load(Ordering::SeqCst)
    }

    /// Waits until [`NodeAuthorizer::is_synced`] or `timeout`; returns whether it synced.
    pub fn wait_synced(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while !self.is_synced() {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// The number of pods known.
    pub fn pod_count(&self) -> usize {
        read(&self.shared.index).pods.len()
    }

    /// Records a pod (added or changed) as the watch does: `node` `None` for a pod not yet
    /// scheduled. For tests and for feeding the index from another source.
    pub fn apply_pod(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        service_account: &str,
        node: Option<&str>,
    ) {
        write(&self.shared.index).apply(
            namespace,
            name,
            PodEntry {
                uid: uid.to_owned(),
                service_account: service_account.to_owned(),
                node: node.filter(|n| !n.is_empty()).map(str::to_owned),
            },
        );
    }

    /// Forgets a pod, as the watch does when it is deleted.
    pub fn delete_pod(&self, namespace: &str, name: &str) {
        write(&self.shared.index).delete(namespace, name);
    }

    /// Marks the index as complete (the watch does this once it has listed the pods).
    pub fn mark_synced(&self) {
        self.shared.synced.store(true, Ordering::SeqCst);
    }

    /// Whether the trusted node account `caller`, showing a token bound to `pod`, may have a
    /// certificate for `wanted`: `Ok` or the reason of the refusal (for the log).
    pub fn authorize(
        &self,
        caller: &IstioIdentity,
        pod: Option<&PodClaim>,
        wanted: &SpiffeId,
    ) -> Result<(), String> {
        let wanted = IstioIdentity::from_spiffe_id(wanted)
            .map_err(|_| format!("failed to validate impersonated identity {wanted}"))?;
        if !self.is_synced() {
            return Err(
                "the pod cache is not synced yet (the watch has not listed the pods \
                        of the api server); the agent retries"
                    .to_owned(),
            );
        }
        let pod = pod.ok_or_else(|| {
            format!(
                "caller {} shows no pod claims (kubernetes.io.pod in a bound token): its node \
                 is unknown",
                caller.spiffe_id()
            )
        })?;
        let ns = caller.namespace();
        let index = read(&self.shared.index);
        let found = index
            .pods
            .get(&(ns.to_owned(), pod.name.clone()))
            .ok_or_else(|| format!("failed to lookup pod: pod \"{ns}/{}\" not found", pod.name))?;
        if found.uid != pod.uid {
            return Err(format!(
                "pod found, but UID does not match: {} vs {}",
                found.uid, pod.uid
            ));
        }
        if found.service_account != caller.service_account() {
            return Err(format!(
                "pod found, but ServiceAccount does not match: {} vs {}",
                found.service_account,
                caller.service_account()
            ));
        }
        let node = found.node.as_deref().ok_or_else(|| {
            format!(
                "caller's pod \"{ns}/{}\" is not scheduled on a node",
                pod.name
            )
        })?;
        let key = (
            wanted.namespace().to_owned(),
            wanted.service_account().to_owned(),
        );
        if index
            .by_node
            .get(node)
            .is_some_and(|sas| sas.get(&key).is_some_and(|n| *n > 0))
        {
            Ok(())
        } else {
            Err(format!(
                "no instances of \"{}/{}\" found on node \"{node}\"",
                key.0, key.1
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::identity::TrustDomain;

    fn td() -> TrustDomain {
        TrustDomain::new("cluster.local").unwrap()
    }

    fn id(ns: &str, sa: &str) -> SpiffeId {
        SpiffeId::new(&format!("spiffe://cluster.local/ns/{ns}/sa/{sa}")).unwrap()
    }

    fn claim(name: &str, uid: &str) -> PodClaim {
        PodClaim {
            name: name.to_owned(),
            uid: uid.to_owned(),
        }
    }

    #[test]
    fn each_refusal_names_its_reason() {
        let a = NodeAuthorizer::new();
        let zt = IstioIdentity::new(td(), "istio-system", "ztunnel").unwrap();
        let me = claim("zt-a", "u1");
        a.apply_pod("istio-system", "zt-a", "u1", "ztunnel", Some("node-a"));
        a.apply_pod("istio-system", "zt-b", "u2", "ztunnel", None);
        a.apply_pod("istio-system", "other", "u3", "default", Some("node-a"));
        a.apply_pod("shop", "web-1", "u4", "web", Some("node-a"));
        a.apply_pod("shop", "web-2", "u5", "web", Some("node-a"));
        a.apply_pod("shop", "db-1", "u6", "db", Some("node-b"));
        let err = |p: Option<&PodClaim>, w: &SpiffeId| a.authorize(&zt, p, w).unwrap_err();
        assert!(err(Some(&me), &id("shop", "web")).contains("not synced"));
        a.mark_synced();
        assert_eq!(a.authorize(&zt, Some(&me), &id("shop", "web")), Ok(()));
        assert_eq!(
            err(Some(&me), &id("shop", "db")),
            r#"no instances of "shop/db" found on node "node-a""#
        );
        assert!(err(None, &id("shop", "web")).contains("shows no pod claims"));
        assert!(err(Some(&claim("gone", "u9")), &id("shop", "web")).contains("not found"));
        assert!(err(Some(&claim("zt-a", "u0")), &id("shop", "web")).contains("UID does not match"));
        assert!(
            err(Some(&claim("other", "u3")), &id("shop", "web"))
                .contains("ServiceAccount does not match")
        );
        assert!(err(Some(&claim("zt-b", "u2")), &id("shop", "web")).contains("not scheduled"));
        let bad = SpiffeId::new("spiffe://cluster.local/workload").unwrap();
        assert!(err(Some(&me), &bad).contains("failed to validate impersonated identity"));
        // One of two pods gone: still there; both gone: refused; moved: follows the node.
        a.delete_pod("shop", "web-1");
        assert_eq!(a.authorize(&zt, Some(&me), &id("shop", "web")), Ok(()));
        a.apply_pod("shop", "web-2", "u5", "web", Some("node-b"));
        assert!(err(Some(&me), &id("shop", "web")).contains("found on node \"node-a\""));
        a.delete_pod("shop", "web-2");
        assert_eq!(a.pod_count(), 4);
        assert_eq!(
            format!("{a:?}"),
            "NodeAuthorizer { synced: true, pods: 4, nodes: 2 }"
        );
        let index = read(&a.shared.index);
        assert_eq!(index.by_node["node-b"].len(), 1, "{index:?}");
        assert_eq!(index.by_node["node-a"].len(), 2, "{index:?}");
    }
}
