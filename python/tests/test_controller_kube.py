"""The gateway-certificate controller against a real kube-apiserver (and etcd), built
unmodified from their published Go modules by scripts/kube-apiserver.sh (.ci/run builds them;
here they are skipped, saying so, when absent). The controller runs as the `meshtls` binary
(`controller run`) and through meshtls.kube; objects are made and checked with the official
Kubernetes client, certificates read back with cryptography."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

kubernetes = pytest.importorskip("kubernetes", reason="skipped: the kubernetes client is not installed")
from cryptography import x509  # noqa: E402
from kubernetes import client as k8s  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

import meshtls  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "kube-apiserver.sh"
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
MESHTLS = TARGET / "debug" / "meshtls"
ISSUER = "https://kubernetes.default.svc.cluster.local"


def _built() -> bool:
    return subprocess.run([str(SCRIPT), "built"], check=False).returncode == 0


@pytest.fixture(scope="session")
def kube():
    if not _built():
        pytest.skip("skipped: kube-apiserver/etcd not built (scripts/kube-apiserver.sh build; .ci/run builds them)")
    if not MESHTLS.exists():
        pytest.skip(f"skipped: the meshtls binary is not built at {MESHTLS} (cargo build -p meshtls-cli)")
    run_dir = pathlib.Path(tempfile.mkdtemp(prefix="meshtls-kube-"))
    subprocess.run([str(SCRIPT), "start", str(run_dir)], check=True, stdout=subprocess.DEVNULL)
    env = dict(line.split("=", 1) for line in (run_dir / "env").read_text().splitlines())
    cfg = k8s.Configuration()
    cfg.host = env["KUBE_SERVER"]
    cfg.ssl_ca_cert = env["KUBE_CA"]
    cfg.api_key = {"authorization": "Bearer " + env["KUBE_TOKEN"]}
    api = k8s.ApiClient(cfg)
    yield {"api": api, "env": env, "dir": run_dir}
    subprocess.run([str(SCRIPT), "stop", str(run_dir)], check=False)
    shutil.rmtree(run_dir, ignore_errors=True)


_counter = iter(range(1000))


def fresh_names(prefix: str) -> tuple[str, str]:
    n = next(_counter)
    return f"{prefix}-mesh-{n}", f"{prefix}-gw-{n}"


def core(kube) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(kube["api"])


def ensure_ns(kube, name: str) -> None:
    try:
        core(kube).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    except ApiException as e:
        if e.status != 409:
            raise


def put_mesh(kube, ns: str, mesh_yaml: str, name: str = "istio") -> None:
    body = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=name, namespace=ns), data={"mesh": mesh_yaml})
    try:
        core(kube).replace_namespaced_config_map(name, ns, body)
    except ApiException as e:
        if e.status != 404:
            raise
        core(kube).create_namespaced_config_map(ns, body)


def put_cacerts(kube, ns: str, ca: meshtls.MeshCa) -> None:
    d = pathlib.Path(tempfile.mkdtemp())
    ca.save(d)
    data = {
        k: base64.b64encode((d / k).read_bytes()).decode()
        for k in ("ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem")
        if (d / k).exists()
    }
    shutil.rmtree(d)
    core(kube).create_namespaced_secret(
        ns, k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="cacerts", namespace=ns), data=data)
    )


def setup(kube, prefix: str, mesh_yaml: str = "trustDomain: cluster.local\n", aliases=()):
    mesh_ns, gw_ns = fresh_names(prefix)
    ensure_ns(kube, mesh_ns)
    ensure_ns(kube, gw_ns)
    ca = meshtls.MeshCa.create("cluster.local", key="ec-p256")
    put_cacerts(kube, mesh_ns, ca)
    if mesh_yaml is not None:
        put_mesh(kube, mesh_ns, mesh_yaml)
    return mesh_ns, gw_ns, ca


def get_secret(kube, ns: str, name: str = "gw-cert"):
    try:
        return core(kube).read_namespaced_secret(name, ns)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def leaf_of(secret) -> x509.Certificate:
    return x509.load_pem_x509_certificates(base64.b64decode(secret.data["tls.crt"]))[0]


def uri_of(cert: x509.Certificate) -> str:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.UniformResourceIdentifier)[0]


def wait_for(what, fn, timeout=20.0, interval=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(kube, *args, kubeconfig=None, timeout=60):
    cmd = [str(MESHTLS), "--json", "controller", "run", "--kubeconfig", kubeconfig or kube["env"]["KUBECONFIG"], *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


class Running:
    """A `meshtls controller run` process, stopped at the end of the test."""

    def __init__(self, kube, *args, kubeconfig=None):
        self.health = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="controller-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [
                str(MESHTLS), "controller", "run",
                "--kubeconfig", kubeconfig or kube["env"]["KUBECONFIG"],
                "--health", f"127.0.0.1:{self.health}",
                "--backoff-cap", "2s",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return 0, ""

    def metric(self, name: str) -> float:
        _, text = self.get("/metrics")
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return -1.0

    def logs(self) -> str:
        return pathlib.Path(self.log.name).read_text()

    def stop(self, sig=signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            # Warnings are errors here: the pipe and the log file are closed with the process.
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.log.close()


@pytest.fixture
def running():
    procs: list[Running] = []

    def start(kube, *args, **kw) -> Running:
        r = Running(kube, *args, **kw)
        procs.append(r)
        return r

    yield start
    for r in procs:
        r.stop(signal.SIGKILL)


def base_args(mesh_ns: str, gw_ns: str, *extra: str) -> list[str]:
    return [
        "--secret", f"{gw_ns}/gw-cert",
        "--identity", f"{gw_ns}/alb-gateway",
        "--source", f"cacerts:{mesh_ns}/cacerts",
        "--mesh-namespace", mesh_ns,
        *extra,
    ]


def test_once_waits_for_the_configmap_then_writes_only_on_change(kube):
    mesh_ns, gw_ns, ca = setup(kube, "once", mesh_yaml=None)
    r = cli(kube, *base_args(mesh_ns, gw_ns, "--once"))
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["result"] == "waiting"
    assert get_secret(kube, gw_ns) is None
    put_mesh(kube, mesh_ns, "trustDomain: cluster.local\n")
    r = cli(kube, *base_args(mesh_ns, gw_ns, "--once"))
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert (out["result"], out["reason"], out["wrote"]) == ("write", "missing", True)
    s = get_secret(kube, gw_ns)
    assert s.type == "kubernetes.io/tls"
    assert uri_of(leaf_of(s)) == f"spiffe://cluster.local/ns/{gw_ns}/sa/alb-gateway"
    assert base64.b64decode(s.data["ca.crt"]).decode() == ca.root_cert_pem
    assert s.metadata.annotations["meshtls.io/source"] == f"cacerts:{mesh_ns}/cacerts"
    assert [m.manager for m in s.metadata.managed_fields] == ["meshtls-controller"]
    leaf_of(s).verify_directly_issued_by(x509.load_pem_x509_certificate(ca.root_cert_pem.encode()))
    version = s.metadata.resource_version
    r = cli(kube, *base_args(mesh_ns, gw_ns, "--once"))
    assert json.loads(r.stdout)["result"] == "nothing"
    assert get_secret(kube, gw_ns).metadata.resource_version == version


def test_trust_domain_alias_deletion_and_edits_are_followed(kube, running):
    mesh_ns, gw_ns, ca = setup(kube, "follow")
    c = running(kube, *base_args(mesh_ns, gw_ns))
    s = wait_for("the secret", lambda: get_secret(kube, gw_ns))
    assert uri_of(leaf_of(s)).startswith("spiffe://cluster.local/")
    wait_for("readyz 200", lambda: c.get("/readyz")[0] == 200)
    assert c.get("/healthz")[0] == 200
    # Trust domain changed: a new certificate in the new domain, at once.
    put_mesh(kube, mesh_ns, "trustDomain: prod.example\ntrustDomainAliases: [cluster.local]\n")
    s = wait_for(
        "a certificate in prod.example",
        lambda: (x := get_secret(kube, gw_ns)) and uri_of(leaf_of(x)).startswith("spiffe://prod.example/") and x,
    )
    assert s.metadata.annotations["meshtls.io/trust-domain"] == "prod.example"
    assert s.metadata.annotations["meshtls.io/trust-domain-aliases"] == "cluster.local"
    # An alias and its root added: ca.crt and the annotations follow, the certificate stays.
    other = meshtls.MeshCa.create("old.example", key="ec-p256")
    pem = "".join("    " + line + "\n" for line in other.root_cert_pem.splitlines())
    crt = s.data["tls.crt"]
    put_mesh(
        kube,
        mesh_ns,
        "trustDomain: prod.example\ntrustDomainAliases: [cluster.local, old.example]\n"
        "caCertificates:\n- trustDomains: [old.example]\n  pem: |\n" + pem,
    )
    s = wait_for(
        "the alias in the annotations",
        lambda: (x := get_secret(kube, gw_ns))
        and x.metadata.annotations["meshtls.io/trust-domain-aliases"] == "cluster.local,old.example"
        and x,
    )
    assert s.data["tls.crt"] == crt
    assert base64.b64decode(s.data["ca.crt"]).decode() == ca.root_cert_pem + other.root_cert_pem
    # Deleted by hand: restored.
    core(kube).delete_namespaced_secret("gw-cert", gw_ns)
    s = wait_for("the secret restored", lambda: get_secret(kube, gw_ns))
    assert uri_of(leaf_of(s)).startswith("spiffe://prod.example/")
    # Edited by hand (another key, an annotation): restored.
    s.data["tls.key"] = base64.b64encode(b"not a key").decode()
    s.metadata.annotations["meshtls.io/identity"] = "spiffe://evil.example/x"
    core(kube).replace_namespaced_secret("gw-cert", gw_ns, s)
    wait_for(
        "the edit undone",
        lambda: (x := get_secret(kube, gw_ns))
        and base64.b64decode(x.data["tls.key"]).startswith(b"-----BEGIN PRIVATE KEY-----")
        and x.metadata.annotations["meshtls.io/identity"].startswith("spiffe://prod.example/"),
    )
    assert c.metric("meshtls_controller_ready") == 1
    assert c.metric("meshtls_controller_secret_writes_total") >= 5
    assert c.metric("meshtls_controller_certificate_not_after_seconds") > time.time()
    assert c.stop() == 0
    assert "wrote secret" in c.logs()


def test_rotation_rounds_never_leave_the_secret_without_a_valid_certificate(kube, running):
    mesh_ns, gw_ns, _ = setup(kube, "rotate")
    # ttl 61 s, renewal when 30 % of the lifetime (with the 2-minute backdating) is left:
    # a new certificate every ~7 s.
    running(kube, *base_args(mesh_ns, gw_ns, "--ttl", "61s", "--grace-ratio", "0.3"))
    wait_for("the secret", lambda: get_secret(kube, gw_ns))
    serials = set()
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline and len(serials) < 3:
        s = get_secret(kube, gw_ns)
        assert s is not None, "the secret disappeared"
        leaf = leaf_of(s)
        now = datetime.now(timezone.utc)
        assert leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc, "an invalid certificate"
        serials.add(leaf.serial_number)
        time.sleep(0.25)
    assert len(serials) >= 3, f"only {len(serials)} certificates in 25 s"


def lease_holder(kube, ns: str) -> str | None:
    try:
        lease = k8s.CoordinationV1Api(kube["api"]).read_namespaced_lease("meshtls-controller", ns)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    return lease.spec.holder_identity


def test_two_replicas_one_writer_and_the_standby_takes_over(kube, running):
    mesh_ns, gw_ns, _ = setup(kube, "lease")
    lease = ["--lease", f"{gw_ns}/meshtls-controller", "--lease-duration", "3s"]
    a = running(kube, *base_args(mesh_ns, gw_ns, *lease, "--lease-identity", "replica-a"))
    wait_for("replica-a leads", lambda: lease_holder(kube, gw_ns) == "replica-a")
    b = running(kube, *base_args(mesh_ns, gw_ns, *lease, "--lease-identity", "replica-b"))
    wait_for("the secret", lambda: get_secret(kube, gw_ns))
    wait_for("b's metrics", lambda: b.metric("meshtls_controller_leader") == 0)
    core(kube).delete_namespaced_secret("gw-cert", gw_ns)
    wait_for("restored by the leader", lambda: get_secret(kube, gw_ns))
    time.sleep(1)
    assert a.metric("meshtls_controller_secret_writes_total") == 2
    assert b.metric("meshtls_controller_secret_writes_total") == 0
    assert b.metric("meshtls_controller_ready") == 1  # the standby sees a current Secret
    # The leader dies without a word: the standby takes over within the lease duration.
    killed = time.monotonic()
    a.stop(signal.SIGKILL)
    wait_for("replica-b leads", lambda: lease_holder(kube, gw_ns) == "replica-b", timeout=3 + 3)
    assert time.monotonic() - killed <= 3 + 1.5 + 1.0  # lease + one renewal period + slack
    core(kube).delete_namespaced_secret("gw-cert", gw_ns)
    wait_for("restored by the new leader", lambda: get_secret(kube, gw_ns))
    assert b.metric("meshtls_controller_secret_writes_total") == 1
    # SIGTERM: the lease is released on the way out.
    assert b.stop() == 0
    assert lease_holder(kube, gw_ns) is None
    assert "released lease" in b.logs()


def test_api_server_restart_is_survived(kube, running):
    mesh_ns, gw_ns, _ = setup(kube, "restart")
    c = running(kube, *base_args(mesh_ns, gw_ns))
    wait_for("the secret", lambda: get_secret(kube, gw_ns))
    subprocess.run([str(SCRIPT), "stop-apiserver", str(kube["dir"])], check=True)
    time.sleep(3)
    assert c.proc.poll() is None, "the controller exited while the API server was away"
    subprocess.run([str(SCRIPT), "start-apiserver", str(kube["dir"])], check=True, stdout=subprocess.DEVNULL)
    core(kube).delete_namespaced_secret("gw-cert", gw_ns)
    wait_for("restored after the restart", lambda: get_secret(kube, gw_ns), timeout=30)
    assert c.proc.poll() is None


def sa_kubeconfig(kube, ns: str, sa: str, path: pathlib.Path) -> str:
    token = core(kube).create_namespaced_service_account_token(
        sa, ns, k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[ISSUER], expiration_seconds=3600))
    ).status.token
    text = pathlib.Path(kube["env"]["KUBECONFIG"]).read_text()
    admin = kube["env"]["KUBE_TOKEN"]
    path.write_text(text.replace(admin, token))
    return str(path)


def apply_manifests(kube, text: str, *, dry_run: bool) -> None:
    """Server-side apply of every document, as `kubectl apply --server-side [--dry-run=server]`."""
    import yaml  # a dependency of the kubernetes client

    api = kube["api"]
    patchers = {
        "ServiceAccount": k8s.CoreV1Api(api).patch_namespaced_service_account,
        "Role": k8s.RbacAuthorizationV1Api(api).patch_namespaced_role,
        "RoleBinding": k8s.RbacAuthorizationV1Api(api).patch_namespaced_role_binding,
        "Deployment": k8s.AppsV1Api(api).patch_namespaced_deployment,
    }
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        patchers[doc["kind"]](
            doc["metadata"]["name"], doc["metadata"]["namespace"], doc,
            field_manager="meshtls-test", force=True, dry_run="All" if dry_run else None,
            _content_type="application/apply-patch+yaml",
        )


def raw_get(kube, path: str):
    import ssl

    ctx = ssl.create_default_context(cafile=kube["env"]["KUBE_CA"])
    req = urllib.request.Request(
        kube["env"]["KUBE_SERVER"] + path, headers={"Authorization": "Bearer " + kube["env"]["KUBE_TOKEN"]}
    )
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        return json.loads(r.read())


def test_deploy_manifests_give_least_privilege_that_works(kube, tmp_path, running):
    manifests = (REPO / "deploy" / "controller.yaml").read_text()
    ensure_ns(kube, "alb")
    ensure_ns(kube, "istio-system")
    apply_manifests(kube, manifests, dry_run=True)  # the API server validates every object
    with pytest.raises(ApiException):
        k8s.AppsV1Api(kube["api"]).read_namespaced_deployment("meshtls-controller", "alb")
    apply_manifests(kube, manifests, dry_run=False)
    dep = k8s.AppsV1Api(kube["api"]).read_namespaced_deployment("meshtls-controller", "alb")
    assert dep.spec.replicas == 2
    ca = meshtls.MeshCa.create("cluster.local", key="ec-p256")
    put_cacerts(kube, "istio-system", ca)
    put_mesh(kube, "istio-system", "trustDomain: cluster.local\n")
    kc = sa_kubeconfig(kube, "alb", "meshtls-controller", tmp_path / "sa.kubeconfig")
    args = [
        "--secret", "alb/alb-gateway-client-certificate-istio", "--identity", "alb/alb-gateway",
        "--source", "cacerts:istio-system/cacerts",
    ]
    r = cli(kube, *args, "--once", kubeconfig=kc)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["wrote"] is True
    # Running as in the Deployment (watches, Lease) with only these rights.
    c = running(kube, *args, "--lease", "alb/meshtls-controller", kubeconfig=kc)
    wait_for("the lease", lambda: c.metric("meshtls_controller_leader") == 1)
    core(kube).delete_namespaced_secret("alb-gateway-client-certificate-istio", "alb")
    wait_for("restored under least privilege", lambda: get_secret(kube, "alb", "alb-gateway-client-certificate-istio"))
    c.stop()
    # Another Secret than the one granted: a clear error, exit 2, and no crash loop when running.
    other = [a if a != "alb/alb-gateway-client-certificate-istio" else "alb/not-granted" for a in args]
    r = cli(kube, *other, "--once", kubeconfig=kc)
    assert r.returncode == 2
    err = json.loads(r.stdout)
    assert err["kind"] == "controller"
    assert "forbidden" in err["error"].lower() and "alb/not-granted" in err["error"], err
    c = running(kube, *other, kubeconfig=kc)
    wait_for("failed reconciles counted", lambda: c.metric('meshtls_controller_reconciles_total{result="error"}') >= 2, timeout=15)
    assert c.proc.poll() is None
    assert c.get("/healthz")[0] == 200 and c.get("/readyz")[0] == 503
    assert "forbidden" in c.logs().lower()


def test_istiod_path_token_request_jwks_and_ca_serve(kube, tmp_path, running):
    mesh_ns, gw_ns, _ = setup(kube, "istiod")
    core(kube).create_namespaced_service_account(gw_ns, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="alb-gateway")))
    ca = meshtls.MeshCa.create("cluster.local", key="ec-p256")
    ca.save(tmp_path / "ca")
    # `meshtls ca serve` verifies tokens with the API server's own JWKS.
    jwks = raw_get(kube, "/openid/v1/jwks")
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    server = subprocess.Popen(
        [str(MESHTLS), "ca", "serve", "--ca", str(tmp_path / "ca"), "--listen", "127.0.0.1:0",
         "--jwks", str(tmp_path / "jwks.json"), "--issuer", ISSUER],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        address = json.loads(server.stdout.readline())["listening"]
        r = cli(
            kube, "--secret", f"{gw_ns}/gw-cert", "--identity", f"{gw_ns}/alb-gateway",
            "--source", f"istio-ca:{address}", "--ca-root", str(tmp_path / "ca" / "root-cert.pem"),
            "--ca-server-name", "istiod.istio-system.svc", "--mesh-namespace", mesh_ns, "--once",
        )
        assert r.returncode == 0, r.stdout + r.stderr
        s = get_secret(kube, gw_ns)
        assert uri_of(leaf_of(s)) == f"spiffe://cluster.local/ns/{gw_ns}/sa/alb-gateway"
        assert s.metadata.annotations["meshtls.io/source"] == f"istio-ca:{address}"
        assert base64.b64decode(s.data["ca.crt"]).decode() == ca.root_cert_pem
        leaf_of(s).verify_directly_issued_by(x509.load_pem_x509_certificate(ca.root_cert_pem.encode()))
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=15)
    # The server saw the token the controller requested for itself and accepted it.
    assert f"ns/{gw_ns}/sa/alb-gateway" in err, err


def test_python_sync_once_and_watch_loop(kube):
    from meshtls.kube import CacertsSource, run, sync_once

    mesh_ns, gw_ns, ca = setup(kube, "py")
    spec = meshtls.SecretSpec(
        "gw-cert", gw_ns, identity_namespace=gw_ns, service_account="alb-gateway",
        source=f"cacerts:{mesh_ns}/cacerts",
    )
    source = CacertsSource(mesh_ns, "cacerts")
    first = sync_once(kube["api"], spec, source, mesh_namespace=mesh_ns)
    assert first is not None and (first.kind, first.reason) == ("write", "missing")
    second = sync_once(kube["api"], spec, source, mesh_namespace=mesh_ns)
    assert second is not None and second.kind == "nothing"
    stop = threading.Event()
    t = threading.Thread(
        target=run, args=(kube["api"], spec, source),
        kwargs={"stop": stop, "mesh_namespace": mesh_ns}, daemon=True,
    )
    t.start()
    try:
        put_mesh(kube, mesh_ns, "trustDomain: cluster.local\ntrustDomainAliases: [old.example]\n")
        wait_for(
            "the alias",
            lambda: get_secret(kube, gw_ns).metadata.annotations["meshtls.io/trust-domain-aliases"] == "old.example",
        )
        core(kube).delete_namespaced_secret("gw-cert", gw_ns)
        wait_for("restored by the Python loop", lambda: get_secret(kube, gw_ns))
    finally:
        stop.set()
        t.join(timeout=40)


def test_the_demo_gateway_reaches_a_strict_sidecar_with_the_certificate_from_the_secret(kube, tmp_path):
    demo = TARGET / "debug" / "examples" / "gateway_to_sidecar"
    if not demo.exists():
        pytest.skip(f"skipped: the demo is not built at {demo} (cargo build --example gateway_to_sidecar)")
    mesh_ns, gw_ns, ca = setup(kube, "seed")
    ca.save(tmp_path / "ca")
    r = cli(kube, *base_args(mesh_ns, gw_ns, "--once"))
    assert r.returncode == 0, r.stdout + r.stderr
    app_port, sidecar_port = free_port(), free_port()
    procs = [
        subprocess.Popen([str(demo), "app", "--listen", f"127.0.0.1:{app_port}"], stdout=subprocess.DEVNULL),
        subprocess.Popen(
            [str(demo), "sidecar", "--ca-dir", str(tmp_path / "ca"), "--mode", "STRICT",
             "--listen", f"127.0.0.1:{sidecar_port}", "--upstream", f"127.0.0.1:{app_port}"],
            stdout=subprocess.DEVNULL,
        ),
    ]
    try:
        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", sidecar_port)) == 0

        wait_for("the sidecar", listening)
        # The gateway mounts the Secret the controller wrote.
        secret = get_secret(kube, gw_ns)
        mount = tmp_path / "secret"
        mount.mkdir()
        for key in ("tls.crt", "tls.key", "ca.crt"):
            (mount / key).write_bytes(base64.b64decode(secret.data[key]))
        out = subprocess.run(
            [str(demo), "gateway", "--secret-dir", str(mount), "--connect", f"127.0.0.1:{sidecar_port}"],
            capture_output=True, text=True, timeout=30,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"gateway ID    spiffe://cluster.local/ns/{gw_ns}/sa/alb-gateway" in out.stdout
        assert "response      HTTP/1.1 200" in out.stdout, out.stdout
        # Plaintext to the STRICT sidecar is refused.
        with socket.create_connection(("127.0.0.1", sidecar_port), timeout=5) as s:
            s.sendall(b"GET /api/headers HTTP/1.1\r\nHost: api\r\n\r\n")
            s.settimeout(5)
            try:
                answer = s.recv(100)
            except (ConnectionResetError, TimeoutError):
                answer = b""
        assert not answer.startswith(b"HTTP/1.1 200")
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_revision_reads_istio_rev_and_logs_are_json_on_request(kube):
    mesh_ns, gw_ns, _ = setup(kube, "rev", mesh_yaml="trustDomain: cluster.local\n")
    put_mesh(kube, mesh_ns, "trustDomain: canary.example\n", name="istio-canary")
    r = cli(kube, *base_args(mesh_ns, gw_ns, "--once", "--revision", "canary", "--log-json"))
    assert r.returncode == 0, r.stdout + r.stderr
    s = get_secret(kube, gw_ns)
    assert uri_of(leaf_of(s)) == f"spiffe://canary.example/ns/{gw_ns}/sa/alb-gateway"
    lines = [json.loads(line) for line in r.stderr.splitlines() if line.strip()]
    assert lines and all({"ts", "level", "target", "msg"} <= set(line) for line in lines)
    assert any(line["level"] == "info" and "wrote secret" in line["msg"] for line in lines)
