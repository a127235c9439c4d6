"""The gateway-certificate controller's I/O in Python, with the official ``kubernetes`` client
(``pip install meshtls[kube]``).

Every rule is decided by :func:`meshtls.decide_secret` (the Rust core); this module only reads
the ``istio`` ConfigMap and the Secret, gets a certificate from a source when asked, and
writes the Secret by server-side apply.

Example (a platform script)::

    import kubernetes, meshtls
    from meshtls.kube import CacertsSource, sync_once

    kubernetes.config.load_kube_config()
    spec = meshtls.SecretSpec("alb-gateway-client-certificate-istio", "alb",
                              identity_namespace="alb", service_account="alb-gateway",
                              source="cacerts:istio-system/cacerts")
    action = sync_once(kubernetes.client.ApiClient(), spec,
                       CacertsSource("istio-system", "cacerts"))
    print(action.kind, action.reason)
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Protocol

from . import _meshtls

try:
    from kubernetes import client as _k8s  # type: ignore[import-untyped]
    from kubernetes import watch as _k8s_watch
    from kubernetes.client.rest import ApiException  # type: ignore[import-untyped]
except ImportError as _e:  # pragma: no cover - the extra is not installed
    raise ImportError(
        "meshtls.kube needs the kubernetes client: pip install 'meshtls[kube]'"
    ) from _e

__all__ = [
    "CacertsSource",
    "CertificateSource",
    "FIELD_MANAGER",
    "IstioCaSource",
    "run",
    "sync_once",
]

FIELD_MANAGER = "meshtls-controller"

log = logging.getLogger("meshtls.kube")


class CertificateSource(Protocol):
    """Where certificates come from: ``roots(api, mesh)`` gives the mesh roots as PEM and
    ``issue(api, mesh, identity, ttl)`` a :class:`meshtls.Svid` for ``identity``."""

    def roots(self, api: Any, mesh: _meshtls.MeshConfig) -> str:
        """The mesh roots the gateway verifies sidecars with, as PEM."""
        ...

    def issue(
        self, api: Any, mesh: _meshtls.MeshConfig, identity: _meshtls.SpiffeId, ttl: timedelta
    ) -> _meshtls.Svid:
        """A certificate for ``identity`` valid for ``ttl``, from this source."""
        ...


@dataclass(frozen=True)
class CacertsSource:
    """A local CA read from Istio's plug-in ``cacerts`` Secret at every use."""

    namespace: str = "istio-system"
    name: str = "cacerts"

    def _ca(self, api: Any, mesh: _meshtls.MeshConfig) -> _meshtls.MeshCa:
        secret = _k8s.CoreV1Api(api).read_namespaced_secret(self.name, self.namespace)
        data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
        return _meshtls.MeshCa.from_pem(
            data.get("ca-cert.pem", ""),
            data.get("ca-key.pem", ""),
            cert_chain_pem=data.get("cert-chain.pem", ""),
            root_cert_pem=data.get("root-cert.pem", ""),
            mesh=mesh,
        )

    def roots(self, api: Any, mesh: _meshtls.MeshConfig) -> str:
        """The CA's root(s), PEM."""
        return self._ca(api, mesh).root_cert_pem

    def issue(
        self, api: Any, mesh: _meshtls.MeshConfig, identity: _meshtls.SpiffeId, ttl: timedelta
    ) -> _meshtls.Svid:
        """A certificate for ``identity`` from the CA (GIL released while signing)."""
        return self._ca(api, mesh).issue(identity, ttl=ttl)


@dataclass(frozen=True)
class IstioCaSource:
    """istiod (or ``meshtls ca serve``) over Istio's CA protocol, authenticated with a token
    requested for ``token_service_account`` (``"namespace/name"``) with the TokenRequest API
    (audience ``istio-ca``), or read from ``token_file``."""

    address: str
    root_cert_pem: str
    server_name: str | None = None
    token_service_account: str | None = None
    token_file: str | None = None

    def roots(self, api: Any, mesh: _meshtls.MeshConfig) -> str:
        """The CA server's root(s), PEM."""
        return self.root_cert_pem

    def _token(self, api: Any) -> str | None:
        if self.token_file is not None or self.token_service_account is None:
            return None
        ns, name = self.token_service_account.split("/", 1)
        body = _k8s.AuthenticationV1TokenRequest(
            spec=_k8s.V1TokenRequestSpec(audiences=["istio-ca"], expiration_seconds=600)
        )
        answer = _k8s.CoreV1Api(api).create_namespaced_service_account_token(name, ns, body)
        status = answer.status
        if status is None or not status.token:
            raise ValueError(f"the TokenRequest for {self.token_service_account} returned no token")
        return str(status.token)

    def issue(
        self, api: Any, mesh: _meshtls.MeshConfig, identity: _meshtls.SpiffeId, ttl: timedelta
    ) -> _meshtls.Svid:
        """A certificate for ``identity`` from the CA server."""
        client = _meshtls.IstioCaClient(
            address=self.address,
            root_cert_pem=self.root_cert_pem,
            server_name=self.server_name,
            token=self._token(api),
            token_file=self.token_file,
        )
        return client.fetch_svid(identity, ttl=ttl)


def _configmap_name(revision: str | None) -> str:
    return "istio" if revision in (None, "", "default") else f"istio-{revision}"


def _read_mesh(api: Any, namespace: str, revision: str | None) -> _meshtls.MeshConfig | None:
    try:
        cm = _k8s.CoreV1Api(api).read_namespaced_config_map(_configmap_name(revision), namespace)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    return _meshtls.MeshConfig.from_yaml((cm.data or {}).get("mesh", ""))


def _read_secret(api: Any, spec: _meshtls.SecretSpec) -> dict[str, Any] | None:
    try:
        s = _k8s.CoreV1Api(api).read_namespaced_secret(spec.name, spec.namespace)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    annotations = (s.metadata.annotations if s.metadata is not None else None) or {}
    return {"type": s.type, "data": s.data or {}, "annotations": annotations}


def sync_once(
    api: Any,
    spec: _meshtls.SecretSpec,
    source: CertificateSource,
    *,
    mesh_namespace: str = "istio-system",
    revision: str | None = None,
    field_manager: str = FIELD_MANAGER,
) -> _meshtls.SecretAction | None:
    """One reconcile: read the mesh ConfigMap (``istio`` or ``istio-<revision>``) and the
    Secret, ask :func:`meshtls.decide_secret`, issue from ``source`` when asked, and write by
    server-side apply (``field_manager``) when the content changes.

    Returns the final :class:`meshtls.SecretAction` (``"write"`` when the Secret was written,
    ``"nothing"`` otherwise), or ``None`` while the ConfigMap does not exist. Raises
    ``kubernetes.client.rest.ApiException`` for API failures and meshtls errors for
    certificates that do not fit; the Secret is never written then.
    """
    mesh = _read_mesh(api, mesh_namespace, revision)
    if mesh is None:
        return None
    current = _read_secret(api, spec)
    roots = source.roots(api, mesh)
    action = _meshtls.decide_secret(mesh, spec, current, source_roots=roots)
    if action.kind == "issue":
        identity = action.identity
        assert identity is not None
        action = action.complete(source.issue(api, mesh, identity, spec.ttl))
    if action.kind == "write":
        core = _k8s.CoreV1Api(api)
        if action.replace:
            try:
                core.delete_namespaced_secret(spec.name, spec.namespace)
            except ApiException as e:
                if e.status != 404:
                    raise
        manifest = action.manifest()
        assert manifest is not None
        core.patch_namespaced_secret(
            spec.name,
            spec.namespace,
            json.loads(manifest),
            field_manager=field_manager,
            force=True,
            _content_type="application/apply-patch+yaml",
        )
        log.info("wrote secret %s/%s: %s", spec.namespace, spec.name, action.message)
    return action


def _watch(
    list_fn: Callable[..., Any], namespace: str, name: str, wake: threading.Event, stop: threading.Event
) -> None:
    while not stop.is_set():
        w = _k8s_watch.Watch()
        try:
            for _ in w.stream(
                list_fn, namespace, field_selector=f"metadata.name={name}", timeout_seconds=30
            ):
                wake.set()
                if stop.is_set():
                    break
        except Exception as e:  # noqa: BLE001 - the API server may be away; retry
            log.debug("watch of %s/%s: %s", namespace, name, e)
            stop.wait(1.0)
        finally:
            w.stop()


def run(
    api: Any,
    spec: _meshtls.SecretSpec,
    source: CertificateSource,
    *,
    stop: threading.Event,
    mesh_namespace: str = "istio-system",
    revision: str | None = None,
    field_manager: str = FIELD_MANAGER,
    backoff_cap: timedelta = timedelta(seconds=60),
    resync: timedelta = timedelta(minutes=5),
) -> None:
    """Keeps the Secret current until ``stop`` is set: watches the ConfigMap and the Secret
    (events coalesce into one wake-up), re-checks at the rotation point and every ``resync``,
    and after a failure waits as :meth:`meshtls.SecretAction.after_failure` says (capped
    backoff; nothing is written). Never raises for a transient failure."""
    wake = threading.Event()
    core = _k8s.CoreV1Api(api)
    threads = [
        threading.Thread(
            target=_watch,
            args=(core.list_namespaced_config_map, mesh_namespace, _configmap_name(revision), wake, stop),
            daemon=True,
        ),
        threading.Thread(
            target=_watch,
            args=(core.list_namespaced_secret, spec.namespace, spec.name, wake, stop),
            daemon=True,
        ),
    ]
    for t in threads:
        t.start()
    attempt = 0
    last: _meshtls.SecretAction | None = None
    while not stop.is_set():
        wait = resync.total_seconds()
        try:
            action = sync_once(
                api,
                spec,
                source,
                mesh_namespace=mesh_namespace,
                revision=revision,
                field_manager=field_manager,
            )
            attempt = 0
            last = action
            if action is not None and action.recheck_at is not None:
                until = (action.recheck_at - datetime.now(timezone.utc)).total_seconds()
                wait = max(0.0, min(wait, until))
        except Exception as e:  # noqa: BLE001 - retried with backoff, never fatal
            log.warning("reconcile of %s/%s failed: %s", spec.namespace, spec.name, e)
            if last is not None:
                # The core's backoff (capped, never past the rotation point).
                retry = last.after_failure(attempt, cap=backoff_cap).recheck_at
                assert retry is not None
                wait = max(0.0, (retry - datetime.now(timezone.utc)).total_seconds())
            else:
                wait = max(1.0, min(backoff_cap.total_seconds(), 2.0**attempt))
            attempt += 1
        wake.wait(wait)
        wake.clear()
        if stop.is_set():
            break
        time.sleep(0.05)  # let a burst of events settle into one reconcile
