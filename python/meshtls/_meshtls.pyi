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

# ---- tls (the rustls path; meshtls/tls.py does the I/O) ------------------------------------

ALPN_ISTIO: str
ALPN_ISTIO_PEER_EXCHANGE: str
ALPN_ISTIO_HTTP10: str
ALPN_ISTIO_HTTP11: str
ALPN_ISTIO_H2: str
ALPN_H2: str
ALPN_HTTP11: str
PERMISSIVE_MTLS_ALPN: tuple[str, ...]
MTLS_HTTP_ALPN: tuple[str, ...]
SIDECAR_TCP_ALPN: tuple[str, ...]
SIDECAR_HTTP_ALPN: tuple[str, ...]
SIDECAR_CLIENT_TCP_ALPN: tuple[str, ...]
GATEWAY_HTTP11_ALPN: tuple[str, ...]
ISTIO_TLS12_CIPHERS: tuple[str, ...]

_BundlesLike = Union[BundleSet, Mapping[Union[TrustDomain, str], str]]

@final
class TlsMaterial:
    """The workload's own SVID and the trust bundles peers are verified with, shared by every
    config built from it and replaceable in place (``set_svid``, ``set_bundles``)."""

    def __new__(cls, svid: Svid, bundles: _BundlesLike) -> TlsMaterial: ...
    def set_svid(self, svid: Svid) -> None:
        """Replaces the own certificate and key; the next handshake presents them."""
    def set_bundles(self, bundles: _BundlesLike) -> None:
        """Replaces the trust bundles; the next peer verification uses them."""
    @property
    def spiffe_id(self) -> SpiffeId:
        """The SPIFFE ID of the current own certificate."""
    @property
    def bundles(self) -> BundleSet:
        """The current trust bundles."""
    @property
    def cert_chain_der(self) -> list[bytes]:
        """The current own certificate chain, leaf first, as DER."""

@final
class NativeClientConfig:
    """The gateway side of mesh mTLS (rustls); see ``meshtls.tls.ClientConfig``."""

    def __new__(
        cls,
        material: TlsMaterial,
        *,
        expected: Sequence[_SpiffeIdLike],
        trust_domain_aliases: Sequence[_TrustDomainLike],
        authorizer: _AuthorizerLike | None,
        alpn: Sequence[str],
        min_version: str,
        max_version: str,
    ) -> NativeClientConfig: ...
    def session(self, server_name: str | None = None) -> TlsSession:
        """A new sans-I/O client session; ``server_name`` goes into SNI only."""
    def set_authorizer(self, authorizer: _AuthorizerLike) -> None:
        """Replaces the authorizer for the next handshakes (the expected IDs stay in force)."""
    @property
    def expected(self) -> list[SpiffeId]:
        """The expected server IDs after alias expansion."""
    @property
    def material(self) -> TlsMaterial:
        """The material presented and verified with."""

@final
class NativeServerConfig:
    """The sidecar side of mesh mTLS (rustls); see ``meshtls.tls.ServerConfig``."""

    def __new__(
        cls,
        material: TlsMaterial,
        *,
        trust_domains: Sequence[_TrustDomainLike] | None,
        authorizer: _AuthorizerLike | None,
        alpn: Sequence[str],
        min_version: str | None,
        max_version: str,
        mesh: MeshConfig | None,
    ) -> NativeServerConfig: ...
    def session(self) -> TlsSession:
        """A new sans-I/O server session (mTLS only, no mode)."""
    def set_authorizer(self, authorizer: _AuthorizerLike) -> None:
        """Replaces the authorizer for the next handshakes."""
    @property
    def material(self) -> TlsMaterial:
        """The material presented and verified with."""
    def acceptor(self, mode: str) -> InboundAcceptor:
        """An acceptor applying ``mode`` (STRICT, PERMISSIVE, DISABLE; UNSET is PERMISSIVE)."""

@final
class Peer:
    """The peer of an established connection, verified and authorized in the handshake."""

    @property
    def spiffe_id(self) -> SpiffeId:
        """The peer's SPIFFE ID."""
    @property
    def version(self) -> str | None:
        """``"TLSv1.2"`` or ``"TLSv1.3"``."""
    @property
    def cipher(self) -> str | None:
        """The negotiated cipher suite's IANA name."""
    @property
    def alpn(self) -> str | None:
        """The negotiated ALPN protocol, or ``None``."""
    @property
    def certificate(self) -> bytes:
        """The peer's leaf certificate (DER)."""
    @property
    def resumed(self) -> bool:
        """True when the session was resumed (and the identity checked again)."""
    def xfcc(self, local: _SpiffeIdLike) -> str:
        """An Envoy-style ``X-Forwarded-Client-Cert`` element."""

@final
class ClientHello:
    """What a TLS ClientHello offered, as the inbound side saw it."""

    @property
    def server_name(self) -> str | None:
        """The SNI host name, or ``None``."""
    @property
    def alpn(self) -> list[str]:
        """The ALPN protocols offered, in the client's order."""
    @property
    def offers_tls13(self) -> bool:
        """True when the client offers TLS 1.3."""

@final
class TlsSession:
    """A sans-I/O mesh mTLS connection (feed received bytes, send ``take_outgoing()``)."""

    def receive(self, data: bytes) -> None:
        """Feeds bytes received from the network; raises on a refused peer or bad protocol."""
    def receive_eof(self) -> None:
        """Tells the session that the transport reached end of file."""
    def take_outgoing(self) -> bytes:
        """The bytes to send to the network now (may be empty)."""
    def read(self, max: int = 65536) -> bytes | None:
        """Buffered application data; ``b""`` once closed, ``None`` when nothing is buffered."""
    def write(self, data: bytes) -> None:
        """Encrypts application data; refused before the handshake has completed."""
    def close(self) -> None:
        """Queues a TLS ``close_notify``."""
    @property
    def is_handshaking(self) -> bool:
        """True until the handshake has completed and the peer has been accepted."""
    @property
    def is_client(self) -> bool:
        """True for the client side."""
    @property
    def peer(self) -> Peer | None:
        """The verified and authorized peer once the handshake has completed."""

@final
class InboundAcceptor:
    """Applies a port's mTLS mode to inbound connections."""

    @property
    def mode(self) -> str:
        """The mode applied (never ``"UNSET"``)."""
    def sniffer(self) -> Sniffer:
        """A sniffer for one new connection."""

_Verdict = tuple[str, TlsSession | None, bytes, ClientHello | None] | None

@final
class Sniffer:
    """Decides from the first bytes of one inbound connection where it goes."""

    def verdict(self) -> _Verdict:
        """The verdict on the bytes seen so far."""
    def receive(self, data: bytes) -> _Verdict:
        """Adds received bytes (``b""``: the peer closed) and returns the verdict."""

def _handshake_loop(client: NativeClientConfig, server: NativeServerConfig, n: int) -> float:
    """Benchmark support: ``n`` in-memory handshakes in Rust; returns the seconds taken."""
