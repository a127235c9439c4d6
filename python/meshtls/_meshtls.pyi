# Hand-written stubs for the Rust extension; checked against the runtime by mypy.stubtest.
from typing import Any, Sequence, Union, final

__version__: str

_TrustDomainLike = Union["TrustDomain", str]
_SpiffeIdLike = Union["SpiffeId", str]

# ---- identity -------------------------------------------------------------------------------

@final
class TrustDomain:
    def __new__(cls, name: str) -> TrustDomain: ...
    @classmethod
    def parse_lenient(cls, name: str) -> TrustDomain: ...
    @property
    def name(self) -> str: ...
    def id(self) -> SpiffeId: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __lt__(self, other: TrustDomain, /) -> bool: ...
    def __le__(self, other: TrustDomain, /) -> bool: ...
    def __gt__(self, other: TrustDomain, /) -> bool: ...
    def __ge__(self, other: TrustDomain, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[type[TrustDomain], tuple[str]]: ...

@final
class SpiffeId:
    def __new__(cls, text: str) -> SpiffeId: ...
    @classmethod
    def parse_lenient(cls, text: str) -> SpiffeId: ...
    @classmethod
    def for_workload(
        cls, trust_domain: _TrustDomainLike, namespace: str, service_account: str
    ) -> SpiffeId: ...
    @property
    def trust_domain(self) -> TrustDomain: ...
    @property
    def path(self) -> str: ...
    @property
    def segments(self) -> list[str]: ...
    def is_member_of(self, trust_domain: _TrustDomainLike) -> bool: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __lt__(self, other: SpiffeId, /) -> bool: ...
    def __le__(self, other: SpiffeId, /) -> bool: ...
    def __gt__(self, other: SpiffeId, /) -> bool: ...
    def __ge__(self, other: SpiffeId, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[type[SpiffeId], tuple[str]]: ...

@final
class IstioIdentity:
    def __new__(
        cls, trust_domain: _TrustDomainLike, namespace: str, service_account: str
    ) -> IstioIdentity: ...
    @classmethod
    def from_spiffe_id(cls, id: _SpiffeIdLike) -> IstioIdentity: ...
    @classmethod
    def from_principal(cls, principal: str) -> IstioIdentity: ...
    @property
    def trust_domain(self) -> TrustDomain: ...
    @property
    def namespace(self) -> str: ...
    @property
    def service_account(self) -> str: ...
    @property
    def spiffe_id(self) -> SpiffeId: ...
    @property
    def principal(self) -> str: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __lt__(self, other: IstioIdentity, /) -> bool: ...
    def __le__(self, other: IstioIdentity, /) -> bool: ...
    def __gt__(self, other: IstioIdentity, /) -> bool: ...
    def __ge__(self, other: IstioIdentity, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[type[IstioIdentity], tuple[str, str, str]]: ...

def principal_matches(pattern: str, id: _SpiffeIdLike) -> bool: ...
def expand_principals(
    principals: Sequence[str], trust_domains: Sequence[_TrustDomainLike]
) -> list[str]: ...
def expand_spiffe_ids(
    ids: Sequence[_SpiffeIdLike], aliases: Sequence[_TrustDomainLike]
) -> list[SpiffeId]: ...

# ---- mesh config ----------------------------------------------------------------------------

@final
class MeshConfig:
    @classmethod
    def from_yaml(cls, text: str) -> MeshConfig: ...
    @classmethod
    def from_layers(cls, layers: Sequence[str]) -> MeshConfig: ...
    @property
    def trust_domain(self) -> TrustDomain: ...
    @property
    def trust_domain_aliases(self) -> list[TrustDomain]: ...
    @property
    def root_namespace(self) -> str: ...
    @property
    def min_protocol_version(self) -> str: ...
    @property
    def enable_auto_mtls(self) -> bool: ...
    @property
    def ca_certificate_trust_domains(self) -> list[list[TrustDomain]]: ...
    def trust_domains_for_validation(self) -> list[TrustDomain]: ...
    def expand_principals(self, principals: Sequence[str]) -> list[str]: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __reduce__(self) -> tuple[Any, tuple[list[str]]]: ...

# ---- policy (PeerAuthentication) ------------------------------------------------------------

from collections.abc import Iterable, Mapping

from ._policy import MtlsMode

_Labels = Union[Mapping[str, str], None]
_Workload = Union[tuple[str, _Labels], tuple[str, _Labels, Union[int, None]]]

@final
class Decision:
    def __new__(
        cls,
        mode: Union[MtlsMode, str],
        level: str,
        policy: Union[str, None] = None,
        explanation: Sequence[str] = ...,
    ) -> Decision: ...
    @property
    def mode(self) -> MtlsMode: ...
    @property
    def policy(self) -> Union[str, None]: ...
    @property
    def level(self) -> str: ...
    @property
    def explanation(self) -> list[str]: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(
        self,
    ) -> tuple[type[Decision], tuple[str, str, Union[str, None], list[str]]]: ...

@final
class PolicySet:
    @classmethod
    def from_yaml(cls, text: str, *, root_namespace: str = "istio-system") -> PolicySet: ...
    @classmethod
    def from_dicts(
        cls, documents: Iterable[Mapping[str, Any]], *, root_namespace: str = "istio-system"
    ) -> PolicySet: ...
    def resolve(
        self, namespace: str, labels: _Labels, port: Union[int, None] = None
    ) -> Decision: ...
    def resolve_many(
        self, workloads: Iterable[_Workload], *, explain: bool = True
    ) -> list[Decision]: ...
    @property
    def root_namespace(self) -> str: ...
    @property
    def skipped(self) -> int: ...
    @property
    def policy_names(self) -> list[str]: ...
    def __len__(self) -> int: ...

def validate_peer_authentication(text_or_dict: Union[str, Mapping[str, Any]]) -> list[str]: ...
# ---- svid: bundles, verification, authorizers -----------------------------------------------

import datetime
from typing import Callable, Mapping

_Chain = Union[str, Sequence[bytes]]
_Bundles = Union["BundleSet", Mapping[Union[TrustDomain, str], str]]
_AuthorizerLike = Union["Authorizer", Callable[[SpiffeId], bool]]

@final
class TrustBundle:
    def __new__(
        cls,
        trust_domain: _TrustDomainLike,
        roots: Sequence[bytes] = ...,
        sequence: int | None = None,
        refresh_hint: datetime.timedelta | None = None,
    ) -> TrustBundle: ...
    @classmethod
    def from_pem(cls, trust_domain: _TrustDomainLike, pem: str) -> TrustBundle: ...
    @classmethod
    def from_spiffe_json(cls, trust_domain: _TrustDomainLike, text: str) -> TrustBundle: ...
    def to_pem(self) -> str: ...
    def to_spiffe_json(self) -> str: ...
    @property
    def trust_domain(self) -> TrustDomain: ...
    @property
    def roots(self) -> list[bytes]: ...
    @property
    def sequence(self) -> int | None: ...
    @property
    def refresh_hint(self) -> datetime.timedelta | None: ...
    def with_sequence(self, sequence: int) -> TrustBundle: ...
    def with_refresh_hint(self, refresh_hint: datetime.timedelta) -> TrustBundle: ...
    def __len__(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[type[TrustBundle], tuple[Any, ...]]: ...

@final
class BundleSet:
    def __new__(
        cls,
        bundles: Sequence[TrustBundle] = ...,
        aliases: Sequence[tuple[_TrustDomainLike, _TrustDomainLike]] | None = None,
    ) -> BundleSet: ...
    @classmethod
    def from_pem_map(cls, mapping: Mapping[Union[TrustDomain, str], str]) -> BundleSet: ...
    @classmethod
    def from_spiffe_json(cls, text: str) -> BundleSet: ...
    def to_spiffe_json(self) -> str: ...
    def to_pem_map(self) -> dict[str, str]: ...
    def with_bundle(self, bundle: TrustBundle) -> BundleSet: ...
    def with_aliases(
        self, trust_domain: _TrustDomainLike, aliases: Sequence[_TrustDomainLike]
    ) -> BundleSet: ...
    def with_mesh_aliases(self, mesh: MeshConfig) -> BundleSet: ...
    def get(self, trust_domain: _TrustDomainLike) -> TrustBundle | None: ...
    def bundle_for(self, trust_domain: _TrustDomainLike) -> TrustBundle | None: ...
    @property
    def trust_domains(self) -> list[TrustDomain]: ...
    @property
    def bundles(self) -> list[TrustBundle]: ...
    @property
    def aliases(self) -> list[tuple[TrustDomain, TrustDomain]]: ...
    def __len__(self) -> int: ...
    def __contains__(self, trust_domain: _TrustDomainLike, /) -> bool: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __reduce__(self) -> tuple[type[BundleSet], tuple[Any, ...]]: ...

@final
class Authorizer:
    @staticmethod
    def any() -> Authorizer: ...
    @staticmethod
    def id(id: _SpiffeIdLike) -> Authorizer: ...
    @staticmethod
    def one_of(ids: Sequence[_SpiffeIdLike]) -> Authorizer: ...
    @staticmethod
    def member_of(trust_domains: Sequence[_TrustDomainLike]) -> Authorizer: ...
    @staticmethod
    def member_of_mesh(mesh: MeshConfig) -> Authorizer: ...
    @staticmethod
    def namespace(
        namespaces: Sequence[str], *, trust_domains: Sequence[_TrustDomainLike]
    ) -> Authorizer: ...
    @staticmethod
    def service_account(
        namespace: str, service_account: str, *, trust_domains: Sequence[_TrustDomainLike]
    ) -> Authorizer: ...
    @staticmethod
    def principals(
        principals: Sequence[str], *, trust_domains: Sequence[_TrustDomainLike] = ...
    ) -> Authorizer: ...
    @staticmethod
    def all_of(authorizers: Sequence[_AuthorizerLike]) -> Authorizer: ...
    @staticmethod
    def any_of(authorizers: Sequence[_AuthorizerLike]) -> Authorizer: ...
    @staticmethod
    def not_(authorizer: _AuthorizerLike) -> Authorizer: ...
    @staticmethod
    def from_callable(
        func: Callable[[SpiffeId], bool], *, description: str | None = None
    ) -> Authorizer: ...
    def authorize(self, peer: _SpiffeIdLike) -> None: ...
    def allows(self, peer: _SpiffeIdLike) -> bool: ...
    @property
    def description(self) -> str: ...
    def __and__(self, other: _AuthorizerLike, /) -> Authorizer: ...
    def __or__(self, other: _AuthorizerLike, /) -> Authorizer: ...
    def __rand__(self, other: _AuthorizerLike, /) -> Authorizer: ...
    def __ror__(self, other: _AuthorizerLike, /) -> Authorizer: ...
    def __invert__(self) -> Authorizer: ...

@final
class VerifiedSvid:
    @property
    def spiffe_id(self) -> SpiffeId: ...
    @property
    def chain(self) -> list[bytes]: ...
    @property
    def bundle_trust_domain(self) -> TrustDomain: ...
    @property
    def valid_from(self) -> datetime.datetime: ...
    @property
    def valid_until(self) -> datetime.datetime: ...

@final
class SvidVerifier:
    def __new__(
        cls,
        bundles: _Bundles,
        *,
        authorizer: _AuthorizerLike | None = None,
        cache_size: int = 1024,
    ) -> SvidVerifier: ...
    def verify(self, chain: _Chain, *, now: datetime.datetime | None = None) -> VerifiedSvid: ...
    def set_bundles(self, bundles: _Bundles) -> None: ...
    @property
    def bundles(self) -> BundleSet: ...
    @property
    def cache_info(self) -> dict[str, int]: ...
    def clear_cache(self) -> None: ...

def verify_svid(
    chain: _Chain,
    bundles: _Bundles,
    *,
    now: datetime.datetime | None = None,
    authorizer: _AuthorizerLike | None = None,
) -> SpiffeId: ...
def check_private_key(certificate: Union[str, bytes], private_key_pem: str) -> None: ...
def inspect_certificate(
    certificate: Union[str, bytes], *, now: datetime.datetime | None = None
) -> dict[str, Any]: ...
# ---- ca ---------------------------------------------------------------------------------------

import datetime as _dt
import os as _os
from typing import Literal

_KeyKind = Literal["ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"]
_Path = Union[str, "_os.PathLike[str]"]

@final
class MeshCa:
    @classmethod
    def create(
        cls,
        trust_domain: _TrustDomainLike = "cluster.local",
        *,
        key: _KeyKind = "rsa-2048",
        ttl: _dt.timedelta | None = None,
        organization: str | None = None,
        common_name: str | None = None,
        trust_domain_san: bool = False,
    ) -> MeshCa: ...
    def create_intermediate(
        self,
        trust_domain: _TrustDomainLike | None = None,
        *,
        key: _KeyKind = "rsa-2048",
        ttl: _dt.timedelta | None = None,
        organization: str | None = None,
        common_name: str | None = "Intermediate CA",
        path_len: int | None = 0,
        trust_domain_san: bool = False,
    ) -> MeshCa: ...
    @classmethod
    def load(cls, directory: _Path) -> MeshCa: ...
    @classmethod
    def from_pem(
        cls,
        ca_cert_pem: str,
        ca_key_pem: str,
        *,
        cert_chain_pem: str = "",
        root_cert_pem: str = "",
    ) -> MeshCa: ...
    def save(
        self, directory: _Path, *, layout: Literal["istio", "kubernetes-tls"] = "istio"
    ) -> None: ...
    @property
    def root_cert_pem(self) -> str: ...
    @property
    def ca_cert_pem(self) -> str: ...
    @property
    def ca_key_pem(self) -> str: ...
    @property
    def cert_chain_pem(self) -> str: ...
    @property
    def trust_domain(self) -> TrustDomain | None: ...
    @property
    def key(self) -> str: ...
    @property
    def is_self_signed(self) -> bool: ...
    @property
    def not_before(self) -> _dt.datetime: ...
    @property
    def not_after(self) -> _dt.datetime: ...
    def issue(
        self,
        identity: _SpiffeIdLike,
        *,
        ttl: _dt.timedelta | None = None,
        key: _KeyKind = "ec-p256",
        dns_names: Sequence[str] = ...,
    ) -> Svid: ...
    def issue_many(
        self,
        identities: Sequence[_SpiffeIdLike],
        *,
        ttl: _dt.timedelta | None = None,
        key: _KeyKind = "ec-p256",
        dns_names: Sequence[str] = ...,
        threads: int | None = None,
    ) -> list[Svid]: ...
    def sign_csr(
        self, csr_pem: str, identity: _SpiffeIdLike, *, ttl: _dt.timedelta | None = None
    ) -> IssuedCertificate: ...
    def rotate_root(self, *, ttl: _dt.timedelta | None = None) -> MeshCa: ...
    def needs_rotation(self, now: _dt.datetime | None = None) -> bool: ...
    def to_cacerts_secret(self, namespace: str = "istio-system") -> dict[str, Any]: ...
    def root_cert_configmap(self, namespace: str) -> dict[str, Any]: ...

@final
class Svid:
    @classmethod
    def from_pem(cls, cert_chain_pem: str, private_key_pem: str) -> Svid: ...
    @property
    def spiffe_id(self) -> SpiffeId: ...
    @property
    def cert_chain_pem(self) -> str: ...
    @property
    def cert_chain_der(self) -> list[bytes]: ...
    @property
    def private_key_pem(self) -> str: ...
    @property
    def private_key_der(self) -> bytes: ...
    @property
    def trust_bundle_pem(self) -> str: ...
    @property
    def not_before(self) -> _dt.datetime: ...
    @property
    def not_after(self) -> _dt.datetime: ...
    @property
    def serial_number(self) -> int: ...
    def should_rotate(self, now: _dt.datetime | None = None) -> bool: ...
    def rotation_time(self, *, grace_ratio: float = 0.5, jitter: float = 0.0) -> _dt.datetime: ...
    def to_k8s_secret(self, name: str, namespace: str) -> dict[str, Any]: ...
    def save(self, directory: _Path) -> None: ...

@final
class IssuedCertificate:
    @property
    def spiffe_id(self) -> SpiffeId: ...
    @property
    def cert_chain_pem(self) -> str: ...
    @property
    def cert_chain_der(self) -> list[bytes]: ...
    @property
    def not_before(self) -> _dt.datetime: ...
    @property
    def not_after(self) -> _dt.datetime: ...
    @property
    def serial_number(self) -> int: ...
    def with_private_key(self, private_key_pem: str) -> Svid: ...
# ---- authorization: AuthorizationPolicy and the path check ----------------------------------

_Principal = Union["SpiffeId", str, None]

@final
class AuthorizationDecision:
    """The decision for one request: the deciding step, policy and rule, and (when asked for)
    why every candidate policy did or did not match."""

    def __new__(
        cls,
        step: str,
        policy: str | None = None,
        rule: int | None = None,
        provider: str | None = None,
        explanation: Sequence[str] = ...,
    ) -> AuthorizationDecision:
        """Rebuilds a decision from its parts (what pickling stores)."""
    @property
    def allowed(self) -> bool:
        """True when the sidecar lets the request through without asking anyone else."""
    @property
    def reason(self) -> str:
        """One sentence naming the step that decided."""
    @property
    def step(self) -> str:
        """``"allowed"``, ``"denied"``, ``"external"``, ``"no-allow-policy"`` or ``"no-allow-matched"``."""
    @property
    def policy(self) -> str | None:
        """The deciding policy as ``"namespace/name"``, or None when no policy decided."""
    @property
    def rule(self) -> int | None:
        """The deciding rule's index in the policy's ``rules``, or None."""
    @property
    def provider(self) -> str | None:
        """The external authorizer when the step is ``"external"``, else None."""
    @property
    def explanation(self) -> list[str]:
        """One line per candidate policy and step (empty when computed with ``explain=False``)."""
    def __eq__(self, other: object, /) -> bool:
        """Equal when the steps are (the explanation is commentary)."""
    def __hash__(self) -> int:
        """Hash of the step."""
    def __reduce__(self) -> tuple[type[AuthorizationDecision], tuple[Any, ...]]:
        """Pickle support."""

@final
class AuthorizationPolicySet:
    """AuthorizationPolicies read once, compiled and indexed per namespace; ``check``
    evaluates a request in Istio's order (CUSTOM, DENY, ALLOW)."""

    @classmethod
    def from_yaml(
        cls, text: str, *, mesh_config: MeshConfig | str | None = None
    ) -> AuthorizationPolicySet:
        """Reads every AuthorizationPolicy of a YAML/JSON text (one object, a stream, or a
        ``kind: List``); other kinds are skipped and counted."""
    @classmethod
    def from_dicts(
        cls, documents: Iterable[Mapping[str, Any]], *, mesh_config: MeshConfig | str | None = None
    ) -> AuthorizationPolicySet:
        """Reads AuthorizationPolicies from a list of dicts; other kinds are skipped."""
    def check(
        self,
        namespace: str,
        labels: Mapping[str, str] | None,
        *,
        port: int,
        principal: _Principal = None,
        source_ip: str | None = None,
        remote_ip: str | None = None,
        method: str | None = None,
        path: str | None = None,
        host: str | None = None,
        headers: Mapping[str, str] | None = None,
        request_principal: str | None = None,
        claims: Mapping[str, Union[str, Sequence[str]]] | None = None,
        sni: str | None = None,
        explain: bool = True,
    ) -> AuthorizationDecision:
        """The decision for one request to a workload on ``port``; ``principal`` is the mTLS
        peer's SPIFFE ID (None: plaintext); HTTP fields make it an HTTP request."""
    def check_many(
        self, requests: Iterable[Mapping[str, Any]], *, explain: bool = False
    ) -> list[AuthorizationDecision]:
        """Many requests at once with the GIL released; each mapping uses ``check``'s names."""
    @property
    def root_namespace(self) -> str:
        """The root namespace (its policies apply mesh-wide)."""
    @property
    def skipped(self) -> int:
        """Documents of other kinds skipped while reading."""
    @property
    def policy_names(self) -> list[str]:
        """The policies' ``"namespace/name"``, by namespace then name."""
    def __len__(self) -> int:
        """How many policies the set holds."""

def validate_authorization_policy(text_or_dict: Union[str, Mapping[str, Any]]) -> list[str]:
    """Validates AuthorizationPolicies as a cluster would; returns the warnings and raises
    ``AuthorizationPolicyError`` on the first invalid object."""

@final
class PathResult:
    """The answer of ``Mesh.check``: allowed or refused, the deciding step, every step's line."""

    def __new__(
        cls,
        allowed: bool,
        step: str,
        reason: str,
        transport: str,
        mode: str,
        mode_policy: str | None = None,
        authorization: AuthorizationDecision | None = None,
        explanation: Sequence[str] = ...,
    ) -> PathResult:
        """Rebuilds a result from its parts (what pickling stores)."""
    @property
    def allowed(self) -> bool:
        """True when the call gets through to the app."""
    @property
    def step(self) -> str:
        """``"mode"``, ``"client-tls"``, ``"trust-domain"`` or an authorization step."""
    @property
    def reason(self) -> str:
        """One sentence naming the deciding step."""
    @property
    def transport(self) -> str:
        """What the caller sends: ``"mtls"``, ``"tls"`` or ``"plaintext"``."""
    @property
    def mode(self) -> MtlsMode:
        """The destination port's mTLS mode."""
    @property
    def mode_policy(self) -> str | None:
        """The PeerAuthentication that set the mode, or None for Istio's default."""
    @property
    def authorization(self) -> AuthorizationDecision | None:
        """The authorization decision, when the call got that far."""
    @property
    def explanation(self) -> list[str]:
        """Every step, one line each."""
    def __eq__(self, other: object, /) -> bool:
        """Field-wise equality."""
    def __hash__(self) -> int:
        """Hash of the fields."""
    def __reduce__(self) -> tuple[type[PathResult], tuple[Any, ...]]:
        """Pickle support."""

@final
class Mesh:
    """What a cluster dump shows; ``check`` walks a caller's path to a pod port."""

    @classmethod
    def from_dump(cls, text: str, *, mesh_config: MeshConfig | str | None = None) -> Mesh:
        """Reads ``kubectl get peerauthentications,authorizationpolicies,destinationrules -A -o
        json`` (YAML or JSON) and the ``istio`` ConfigMap (argument, or found in the dump)."""
    def check(
        self,
        namespace: str,
        labels: Mapping[str, str] | None,
        port: int,
        *,
        caller: _Principal,
        workload: bool = False,
        service: str | None = None,
        method: str | None = None,
        path: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> PathResult:
        """Will ``caller`` (a SPIFFE ID; None for plaintext; ``workload=True`` for a mesh
        workload) get through to ``port`` of a pod in ``namespace`` with ``labels``?"""
    @property
    def authorization_policies(self) -> list[str]:
        """The AuthorizationPolicies' names."""
    @property
    def destination_rules(self) -> int:
        """How many DestinationRules the dump holds."""
