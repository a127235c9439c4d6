# Hand-written stubs for the Rust extension; checked against the runtime by mypy.stubtest.
from typing import Any, Sequence, Union, final

__version__: str

_TrustDomainLike = Union["TrustDomain", str]
_SpiffeIdLike = Union["SpiffeId", str]

# ---- identity -------------------------------------------------------------------------------

@final
class TrustDomain:
    """A SPIFFE trust domain, such as ``cluster.local``: strictly parsed by the SPIFFE grammar
    (lower-case letters, digits, ``.``, ``-``, ``_``; at most 255 bytes).

    Immutable; compares, orders and hashes by name; ``str()`` gives the name and ``repr()``
    evaluates back; pickles.

    Args:
        name: the trust domain name (no scheme, no path).

    Raises:
        InvalidSpiffeIdError: the name breaks the grammar (the message says which rule).

    Example::

        >>> TrustDomain("cluster.local").id()
        SpiffeId("spiffe://cluster.local")
    """
    def __new__(cls, name: str) -> TrustDomain: ...
    @classmethod
    def parse_lenient(cls, name: str) -> TrustDomain:
        """Parses as rust-spiffe and py-spiffe do: ASCII case is folded and, for an ID-shaped
        input, only the authority is kept (``spiffe://Example.org/x`` gives ``example.org``).
        Use it only for interop with lenient peers, and store the canonical result.

        Raises:
            InvalidSpiffeIdError: the name is invalid even after folding.
        """
    @property
    def name(self) -> str:
        """The canonical name, e.g. ``"cluster.local"``."""
    def id(self) -> SpiffeId:
        """The trust domain's own SPIFFE ID, ``spiffe://<name>`` (the ID of its bundle)."""
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
    """A SPIFFE ID, such as ``spiffe://cluster.local/ns/shop/sa/web``, strictly parsed by the
    SPIFFE standard (go-spiffe's verdict, plus the 255-byte trust domain cap): lower-case
    scheme and trust domain, no port, user info, query or fragment, no empty, ``.`` or ``..``
    path segment, no trailing ``/``.

    Immutable; compares, orders and hashes by its text; ``str()`` gives the canonical text and
    ``repr()`` evaluates back; pickles.

    Args:
        text: the ID.

    Raises:
        InvalidSpiffeIdError: the text breaks the grammar (the message says which rule).

    Example::

        >>> sid = SpiffeId("spiffe://cluster.local/ns/shop/sa/web")
        >>> sid.trust_domain, sid.path
        (TrustDomain("cluster.local"), '/ns/shop/sa/web')
    """
    def __new__(cls, text: str) -> SpiffeId: ...
    @classmethod
    def parse_lenient(cls, text: str) -> SpiffeId:
        """Parses as rust-spiffe and py-spiffe do: scheme and trust domain case-insensitively
        (ASCII), the path as it is. The result is canonical and round-trips through
        ``SpiffeId()``. Never used implicitly.

        Raises:
            InvalidSpiffeIdError: the text is invalid even after folding.
        """
    @classmethod
    def for_workload(
        cls, trust_domain: _TrustDomainLike, namespace: str, service_account: str
    ) -> SpiffeId: """Istio's workload identity ``spiffe://<trust_domain>/ns/<namespace>/sa/<service_account>``.

        Args:
            trust_domain: a :class:`TrustDomain` or its name.
            namespace: the Kubernetes namespace.
            service_account: the Kubernetes service account.

        Raises:
            InvalidSpiffeIdError: a bad trust domain, or a part that is not a valid path
                segment.
            IdentityError: an empty part.

        Example::

            >>> SpiffeId.for_workload("cluster.local", "shop", "web")
            SpiffeId("spiffe://cluster.local/ns/shop/sa/web")
        """
    @property
    def trust_domain(self) -> TrustDomain:
        """The trust domain (a :class:`TrustDomain`)."""
    @property
    def path(self) -> str:
        """The path, with its leading ``/``; ``""`` for a trust domain's own ID."""
    @property
    def segments(self) -> list[str]:
        """The path's segments: ``["ns", "shop", "sa", "web"]``; ``[]`` for no path."""
    def is_member_of(self, trust_domain: _TrustDomainLike) -> bool:
        """Whether the ID belongs to ``trust_domain`` (a :class:`TrustDomain` or its name).

        Raises:
            InvalidSpiffeIdError: ``trust_domain`` is not a valid name.
        """
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
    """An Istio workload identity: trust domain, namespace and service account, the parts of
    ``spiffe://<td>/ns/<ns>/sa/<sa>`` and of the AuthorizationPolicy principal
    ``<td>/ns/<ns>/sa/<sa>``.

    Immutable; compares, orders and hashes by its parts; pickles.

    Args:
        trust_domain: a :class:`TrustDomain` or its name.
        namespace: the Kubernetes namespace.
        service_account: the Kubernetes service account.

    Raises:
        InvalidSpiffeIdError: a bad trust domain or path segment.
        IdentityError: an empty part.

    Example::

        >>> IstioIdentity.from_spiffe_id("spiffe://cluster.local/ns/shop/sa/web").namespace
        'shop'
    """
    def __new__(
        cls, trust_domain: _TrustDomainLike, namespace: str, service_account: str
    ) -> IstioIdentity: ...
    @classmethod
    def from_spiffe_id(cls, id: _SpiffeIdLike) -> IstioIdentity:
        """Reads the Istio form ``spiffe://<td>/ns/<ns>/sa/<sa>`` back.

        Args:
            id: a :class:`SpiffeId` or its text.

        Raises:
            InvalidSpiffeIdError: the text is not a SPIFFE ID.
            IdentityError: the ID does not have exactly that shape.
        """
    @classmethod
    def from_principal(cls, principal: str) -> IstioIdentity:
        """Parses an AuthorizationPolicy principal, ``<td>/ns/<ns>/sa/<sa>`` (no scheme).

        Raises:
            InvalidSpiffeIdError: a bad trust domain or segment.
            IdentityError: not that shape.
        """
    @property
    def trust_domain(self) -> TrustDomain:
        """The trust domain (a :class:`TrustDomain`)."""
    @property
    def namespace(self) -> str:
        """The Kubernetes namespace."""
    @property
    def service_account(self) -> str:
        """The Kubernetes service account."""
    @property
    def spiffe_id(self) -> SpiffeId:
        """The SPIFFE ID ``spiffe://<td>/ns/<ns>/sa/<sa>``."""
    @property
    def principal(self) -> str:
        """The AuthorizationPolicy principal ``<td>/ns/<ns>/sa/<sa>``."""
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __lt__(self, other: IstioIdentity, /) -> bool: ...
    def __le__(self, other: IstioIdentity, /) -> bool: ...
    def __gt__(self, other: IstioIdentity, /) -> bool: ...
    def __ge__(self, other: IstioIdentity, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[type[IstioIdentity], tuple[str, str, str]]: ...

def principal_matches(pattern: str, id: _SpiffeIdLike) -> bool:
    """Whether a SPIFFE ID matches an AuthorizationPolicy principal pattern, as Envoy's RBAC
    filter matches it: exact, ``*`` (any authenticated peer), a prefix ``td/ns/shop/*`` or a
    suffix ``*/sa/web``; the pattern is compared with the ID without its ``spiffe://``.

    Args:
        pattern: the principal pattern.
        id: a :class:`SpiffeId` or its text.

    Raises:
        IdentityError: the pattern is malformed (a ``*`` anywhere but alone, first or last).
        InvalidSpiffeIdError: ``id`` is not a SPIFFE ID.

    Example::

        >>> principal_matches("cluster.local/ns/shop/*", "spiffe://cluster.local/ns/shop/sa/web")
        True
    """
def expand_principals(
    principals: Sequence[str], trust_domains: Sequence[_TrustDomainLike]
) -> list[str]: """Istio's ``ReplaceTrustDomainAliases``, as istiod applies it to AuthorizationPolicy
    principals: a principal ``<td>/ns/<ns>/sa/<sa>`` whose trust domain is one of
    ``trust_domains`` (or literally ``cluster.local``) becomes one principal per trust domain,
    in order and without duplicates; any other principal (or one with trust domain ``*``) is
    kept as it is.

    Args:
        principals: AuthorizationPolicy principals.
        trust_domains: the mesh's trust domain and its aliases (:class:`TrustDomain` or names).

    Raises:
        InvalidSpiffeIdError: a trust domain name is invalid.

    Example::

        >>> expand_principals(["cluster.local/ns/a/sa/b"], ["prod.example", "old.example"])
        ['prod.example/ns/a/sa/b', 'old.example/ns/a/sa/b']
    """
def expand_spiffe_ids(
    ids: Sequence[_SpiffeIdLike], aliases: Sequence[_TrustDomainLike]
) -> list[SpiffeId]: """Istio's ``ExpandWithTrustDomains``: the input IDs first, then for each ID one copy per
    alias with the trust domain replaced; duplicates dropped. With no aliases the input comes
    back unchanged.

    Args:
        ids: SPIFFE IDs (:class:`SpiffeId` or text).
        aliases: the trust domains to expand with.

    Raises:
        InvalidSpiffeIdError: an ID or a trust domain is invalid.
    """

# ---- mesh config ----------------------------------------------------------------------------

@final
class MeshConfig:
    r"""Istio's mesh config (``meshConfig``): the trust domain and its aliases, the root
    namespace, the mesh's minimum TLS version and the ``caCertificates`` trust domains.

    Build one with :meth:`from_yaml` (the ``istio`` ConfigMap or its ``mesh`` document) or
    :meth:`from_layers`. Immutable; ``==`` compares the effective config; pickles.

    Example::

        >>> mesh = MeshConfig.from_yaml("trustDomain: cluster.local\ntrustDomainAliases: [old.td]")
        >>> [str(t) for t in mesh.trust_domains_for_validation()]
        ['cluster.local', 'old.td']
    """
    @classmethod
    def from_yaml(cls, text: str) -> MeshConfig:
        """Reads the ``istio`` ConfigMap manifest (its ``mesh`` key) or the bare ``mesh``
        document, YAML or JSON. Unset fields take Istio's defaults.

        Raises:
            ManifestError: not YAML/JSON, or a size/depth limit broken.
            MeshConfigError: a field of the wrong type or value (with its name).
        """
    @classmethod
    def from_layers(cls, layers: Sequence[str]) -> MeshConfig:
        """Merges mesh config documents as istiod does with its defaults, the ConfigMap and
        overrides: later layers win field by field.

        Args:
            layers: YAML/JSON documents, lowest priority first.

        Raises:
            ManifestError: a layer is not YAML/JSON.
            MeshConfigError: a field of the wrong type or value.
        """
    @property
    def trust_domain(self) -> TrustDomain:
        """``trustDomain`` (default ``cluster.local``)."""
    @property
    def trust_domain_aliases(self) -> list[TrustDomain]:
        """``trustDomainAliases``, in order, without duplicates."""
    @property
    def root_namespace(self) -> str:
        """``rootNamespace`` (default ``istio-system``)."""
    @property
    def min_protocol_version(self) -> str:
        """``meshMTLS.minProtocolVersion``: ``"TLSV1_2"`` (the default) or ``"TLSV1_3"``."""
    @property
    def enable_auto_mtls(self) -> bool:
        """``enableAutoMtls`` (default ``True``)."""
    @property
    def ca_certificate_trust_domains(self) -> list[list[TrustDomain]]:
        """The ``trustDomains`` of each ``caCertificates`` entry."""
    def trust_domains_for_validation(self) -> list[TrustDomain]:
        """The trust domains a peer may belong to: the trust domain, then its aliases (what
        Istio's ``TrustDomainsForValidation`` returns).
        """
    def expand_principals(self, principals: Sequence[str]) -> list[str]:
        """:func:`expand_principals` with this mesh's trust domain and aliases."""
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
    """The effective mutual-TLS mode of a workload (and port), with the policy that decided it.

    Returned by :meth:`PolicySet.resolve` and :meth:`PolicySet.resolve_many`. Immutable;
    two decisions are equal (and hash alike) when mode, level and policy are equal, whatever
    their explanations. Pickles and copies like any value.

    Example::

        >>> d = policies.resolve("shop", {"app": "web"}, 8080)
        >>> d.mode, d.level, d.policy
        (<MtlsMode.STRICT: 'STRICT'>, 'workload', 'shop/web-strict')
    """
    def __new__(
        cls,
        mode: Union[MtlsMode, str],
        level: str,
        policy: Union[str, None] = None,
        explanation: Sequence[str] = (),
    ) -> Decision: ...
    @property
    def mode(self) -> MtlsMode:
        """The effective mode (an :class:`MtlsMode`); never ``UNSET``."""
    @property
    def policy(self) -> Union[str, None]:
        """The deciding policy as ``"namespace/name"``, or ``None`` when no policy sets a mode
        (level ``"default"``: Istio's PERMISSIVE).
        """
    @property
    def level(self) -> str:
        """Which level decided: ``"workload"``, ``"port"``, ``"namespace"``, ``"mesh"`` or
        ``"default"``.
        """
    @property
    def explanation(self) -> list[str]:
        """Why, as istiod would reason: one line per policy considered (used, overridden or
        ignored) and per step, ending with the result. Built when first read (by the core's
        ``PolicySet.explain``), not when the decision is made; empty for decisions from
        ``resolve_many(..., explain=False)``.
        """
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(
        self,
    ) -> tuple[type[Decision], tuple[str, str, Union[str, None], list[str]]]: ...

@final
class PolicySet:
    """PeerAuthentication policies, read once and indexed to answer which mTLS mode a workload's
    port enforces, exactly as istiod decides it.

    Build one with :meth:`from_yaml` (manifests as ``kubectl get peerauthentications -A -o
    yaml`` prints them) or :meth:`from_dicts` (objects from the kubernetes client), then call
    :meth:`resolve`. Immutable and safe to share between threads.

    Example::

        >>> policies = PolicySet.from_yaml(open("pa.yaml").read())
        >>> str(policies.resolve("shop", {"app": "web"}, port=8080).mode)
        'STRICT'
    """
    @classmethod
    def from_yaml(cls, text: str, *, root_namespace: str = "istio-system") -> PolicySet:
        """Reads every PeerAuthentication from YAML or JSON text: one object, a multi-document
        stream, or a ``kind: List``. Documents of other kinds are skipped and counted
        (:attr:`skipped`).

        Args:
            text: the manifests.
            root_namespace: Istio's root namespace (``meshConfig.rootNamespace``), whose
                namespace-wide policy is the mesh-wide one.

        Raises:
            ManifestError: the text is not YAML/JSON or breaks a size or depth limit.
            PolicyError: a PeerAuthentication has a field of the wrong type, an unknown field
                or mode, no namespace, a duplicate name or a bad creationTimestamp.
        """
    @classmethod
    def from_dicts(
        cls, documents: Iterable[Mapping[str, Any]], *, root_namespace: str = "istio-system"
    ) -> PolicySet: """Reads PeerAuthentications from Python objects, as the kubernetes client returns them
        (``dict``s, or ``kind: List`` dicts; ``datetime`` creation timestamps are accepted).
        Other kinds are skipped and counted, as in :meth:`from_yaml`.

        Args:
            documents: an iterable of mappings (use ``[obj]`` for one object).
            root_namespace: Istio's root namespace.

        Raises:
            TypeError: ``documents`` is a single mapping or a string instead of an iterable
                of mappings.
            ManifestError: a value that is not JSON-like (with where it is), an integer out
                of 64-bit range, a naive datetime, or a size/depth limit broken.
            PolicyError: as for :meth:`from_yaml`.
        """
    def resolve(
        self, namespace: str, labels: _Labels, port: Union[int, None] = None
    ) -> Decision: """The effective mTLS mode for a workload, as istiod computes it.

        Args:
            namespace: the workload's namespace.
            labels: the pod's labels (a mapping of str to str; ``None`` for none).
            port: the port the traffic arrives on (the container port); ``None`` for the
                workload-level mode.

        Returns:
            A :class:`Decision`; its :attr:`Decision.explanation` is built when first read.

        Raises:
            TypeError: labels that are not a mapping of str to str.
            InvalidArgumentError: a port outside 0..65535.

        Example::

            >>> policies.resolve("shop", {"app": "web"}, 8080).mode
            <MtlsMode.STRICT: 'STRICT'>
        """
    def resolve_many(
        self, workloads: Iterable[_Workload], *, explain: bool = True
    ) -> list[Decision]: """Resolves many workloads in one call (with the GIL released for large batches).

        Args:
            workloads: an iterable of ``(namespace, labels)`` or ``(namespace, labels, port)``
                tuples.
            explain: keep what is needed to build each decision's explanation on access;
                with ``False`` the decisions' explanations are empty (and the call cheaper).

        Returns:
            One :class:`Decision` per workload, in order.

        Raises:
            TypeError: an item that is not such a tuple, or bad labels.
            InvalidArgumentError: a port outside 0..65535.
        """
    @property
    def root_namespace(self) -> str:
        """The root namespace the set was built with."""
    @property
    def skipped(self) -> int:
        """How many documents of other kinds were skipped while reading."""
    @property
    def policy_names(self) -> list[str]:
        """The policies as ``"namespace/name"``, oldest first (the order resolution uses)."""
    def __len__(self) -> int: ...

def validate_peer_authentication(text_or_dict: Union[str, Mapping[str, Any]]) -> list[str]:
    """Validates PeerAuthentications as Istio's admission webhook and the CRD's schema do.

    Args:
        text_or_dict: YAML or JSON text (one object, a multi-document stream or a
            ``kind: List``), or one object as a mapping.

    Returns:
        The warnings Istio would print (e.g. for a policy that selects nothing), as strings.

    Raises:
        PolicyError: the first error, with Istio's reason in the message.
        ManifestError: text that is not YAML/JSON, a value in a mapping that is not
            JSON-like (with where it is), or a size/depth limit broken.
        TypeError: neither text nor a mapping.

    Example::

        >>> validate_peer_authentication({"apiVersion": "security.istio.io/v1",
        ...     "kind": "PeerAuthentication", "metadata": {"name": "a", "namespace": "ns"},
        ...     "spec": {"mtls": {"mode": "STRICT"}}})
        []
    """
# ---- svid: bundles, verification, authorizers -----------------------------------------------

import datetime
from typing import Callable, Mapping

_Chain = Union[str, Sequence[bytes]]
_Bundles = Union["BundleSet", Mapping[Union[TrustDomain, str], str]]
_AuthorizerLike = Union["Authorizer", Callable[[SpiffeId], bool]]

@final
class TrustBundle:
    """The X.509 roots of one trust domain (SPIFFE's X.509 bundle), with the SPIFFE bundle
    metadata ``sequence`` and ``refresh_hint``.

    Immutable (``with_*`` return new bundles); ``==``/``hash`` compare trust domain, roots and
    metadata; pickles. Roots are RFC 5280 trust anchors and are accepted as Envoy, Go and
    OpenSSL accept them (Istio's sample root has no KeyUsage).

    Args:
        trust_domain: a :class:`TrustDomain` or its name.
        roots: DER certificates.
        sequence: the SPIFFE bundle sequence number (0 to 2**64-1), or ``None``.
        refresh_hint: the SPIFFE bundle refresh hint (a non-negative ``timedelta``), or ``None``.

    Raises:
        BundleError: a root is not a certificate (or too many roots).
        InvalidArgumentError: ``sequence`` or ``refresh_hint`` out of range.

    Example::

        >>> b = TrustBundle.from_pem("cluster.local", ca.root_cert_pem)
        >>> len(b), str(b.trust_domain)
        (1, 'cluster.local')
    """
    def __new__(
        cls,
        trust_domain: _TrustDomainLike,
        roots: Sequence[bytes] = (),
        sequence: int | None = None,
        refresh_hint: datetime.timedelta | None = None,
    ) -> TrustBundle: ...
    @classmethod
    def from_pem(cls, trust_domain: _TrustDomainLike, pem: str) -> TrustBundle:
        """Reads the roots of ``trust_domain`` from PEM text (CERTIFICATE blocks only).

        Raises:
            BundleError: no certificate, a block of another type, or a certificate that cannot be read.
        """
    @classmethod
    def from_spiffe_json(cls, trust_domain: _TrustDomainLike, text: str) -> TrustBundle:
        """Reads a SPIFFE bundle (JWKS JSON, ``x509-svid`` keys) for ``trust_domain``; JWT keys
        are ignored.

        Raises:
            BundleError: not a SPIFFE bundle, or a key that breaks the SPIFFE bundle format.
        """
    def to_pem(self) -> str:
        """The roots as PEM text, one CERTIFICATE block each."""
    def to_spiffe_json(self) -> str:
        """The bundle as SPIFFE bundle JSON (JWKS with ``x509-svid`` keys, sequence and refresh hint)."""
    @property
    def trust_domain(self) -> TrustDomain:
        """The trust domain (a :class:`TrustDomain`)."""
    @property
    def roots(self) -> list[bytes]:
        """The roots as DER ``bytes``, in order."""
    @property
    def sequence(self) -> int | None:
        """The SPIFFE bundle sequence number, or ``None``."""
    @property
    def refresh_hint(self) -> datetime.timedelta | None:
        """The SPIFFE bundle refresh hint (a ``timedelta``), or ``None``."""
    def with_sequence(self, sequence: int) -> TrustBundle:
        """A copy with ``sequence`` set (an int from 0 to 2**64-1).

        Raises:
            InvalidArgumentError: ``sequence`` out of range.
        """
    def with_refresh_hint(self, refresh_hint: datetime.timedelta) -> TrustBundle:
        """A copy with ``refresh_hint`` set (a non-negative ``timedelta``).

        Raises:
            InvalidArgumentError: a negative or unrepresentable ``refresh_hint``.
        """
    def __len__(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[type[TrustBundle], tuple[Any, ...]]: ...

@final
class BundleSet:
    """Trust bundles of several trust domains, kept apart (an SVID is verified only with the
    bundle of its own trust domain), plus trust-domain aliases (an alias is verified with its
    primary's bundle, as Istio's ``trustDomainAliases``).

    Immutable (``with_*`` return new sets); ``==`` compares content; pickles.

    Args:
        bundles: :class:`TrustBundle` objects, one per trust domain.
        aliases: ``(alias, primary)`` pairs, or ``None``.

    Raises:
        BundleError: two bundles for one trust domain, or an alias that has a bundle of its
            own, names itself, or chains.

    Example::

        >>> bundles = BundleSet.from_pem_map({"cluster.local": ca.root_cert_pem})
        >>> "cluster.local" in bundles
        True
    """
    def __new__(
        cls,
        bundles: Sequence[TrustBundle] = (),
        aliases: Sequence[tuple[_TrustDomainLike, _TrustDomainLike]] | None = None,
    ) -> BundleSet: ...
    @classmethod
    def from_pem_map(cls, mapping: Mapping[Union[TrustDomain, str], str]) -> BundleSet:
        """Reads a mapping of trust-domain name (or :class:`TrustDomain`) to PEM roots.

        Raises:
            BundleError: PEM that holds no certificate, or something else than certificates.
            InvalidSpiffeIdError: a key is not a trust domain name.
            TypeError: not a dict of str to str.
        """
    @classmethod
    def from_spiffe_json(cls, text: str) -> BundleSet:
        """Reads a SPIFFE bundle map: a JSON object of trust-domain name to SPIFFE bundle.

        Raises:
            BundleError: not such a map, or a bundle in it that is malformed.
            InvalidSpiffeIdError: a key is not a trust domain name.
        """
    def to_spiffe_json(self) -> str:
        """The set as a SPIFFE bundle map (JSON object of trust-domain name to SPIFFE bundle)."""
    def to_pem_map(self) -> dict[str, str]:
        """The bundles as a dict of trust-domain name to PEM roots."""
    def with_bundle(self, bundle: TrustBundle) -> BundleSet:
        """A copy with ``bundle`` added.

        Raises:
            BundleError: the set already has a bundle for that trust domain, or it is an alias.
        """
    def with_aliases(
        self, trust_domain: _TrustDomainLike, aliases: Sequence[_TrustDomainLike]
    ) -> BundleSet: """A copy where SVIDs of each of ``aliases`` are verified with ``trust_domain``'s bundle.

        Raises:
            BundleError: an alias has a bundle of its own, is ``trust_domain`` itself or already
                aliases another trust domain, or ``trust_domain`` is itself an alias.
        """
    def with_mesh_aliases(self, mesh: MeshConfig) -> BundleSet:
        """A copy with the mesh's ``trustDomainAliases`` registered as aliases of its trust domain.

        Raises:
            BundleError: as for :meth:`with_aliases`.
        """
    def get(self, trust_domain: _TrustDomainLike) -> TrustBundle | None:
        """The bundle registered for exactly ``trust_domain`` (aliases not followed), or ``None``."""
    def bundle_for(self, trust_domain: _TrustDomainLike) -> TrustBundle | None:
        """The bundle that verifies SVIDs of ``trust_domain``: its own, or its alias target's;
        ``None`` if there is none.
        """
    @property
    def trust_domains(self) -> list[TrustDomain]:
        """The trust domains that have a bundle, sorted."""
    @property
    def bundles(self) -> list[TrustBundle]:
        """The bundles, sorted by trust domain."""
    @property
    def aliases(self) -> list[tuple[TrustDomain, TrustDomain]]:
        """The ``(alias, primary)`` pairs."""
    def __len__(self) -> int: ...
    def __contains__(self, trust_domain: _TrustDomainLike, /) -> bool: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __reduce__(self) -> tuple[type[BundleSet], tuple[Any, ...]]: ...

@final
class Authorizer:
    """Decides whether a verified peer (its SPIFFE ID) may talk to you. Build one with the
    static constructors and combine them with ``&``, ``|`` and ``~`` (or :meth:`all_of`,
    :meth:`any_of`, :meth:`not_`); a plain callable ``fn(SpiffeId) -> bool`` is accepted
    wherever an authorizer is.

    Example::

        >>> a = Authorizer.namespace(["shop"], trust_domains=["cluster.local"]) & ~Authorizer.id(
        ...     "spiffe://cluster.local/ns/shop/sa/legacy")
        >>> a.allows("spiffe://cluster.local/ns/shop/sa/web")
        True
    """
    @staticmethod
    def any() -> Authorizer:
        """Any verified peer (SPIFFE's ``AuthorizeAny``)."""
    @staticmethod
    def id(id: _SpiffeIdLike) -> Authorizer:
        """Exactly this SPIFFE ID (a :class:`SpiffeId` or text)."""
    @staticmethod
    def one_of(ids: Sequence[_SpiffeIdLike]) -> Authorizer:
        """Any of these SPIFFE IDs."""
    @staticmethod
    def member_of(trust_domains: Sequence[_TrustDomainLike]) -> Authorizer:
        """Any peer of one of these trust domains."""
    @staticmethod
    def member_of_mesh(mesh: MeshConfig) -> Authorizer:
        """Any peer of the mesh's trust domain or one of its aliases."""
    @staticmethod
    def namespace(
        namespaces: Sequence[str], *, trust_domains: Sequence[_TrustDomainLike]
    ) -> Authorizer: """Istio workloads (``/ns/<ns>/sa/<sa>``) of these namespaces, in these trust domains.

        Raises:
            IdentityError: an empty or invalid namespace.
        """
    @staticmethod
    def service_account(
        namespace: str, service_account: str, *, trust_domains: Sequence[_TrustDomainLike]
    ) -> Authorizer: """The Istio workload ``/ns/<namespace>/sa/<service_account>`` in these trust domains.

        Raises:
            IdentityError: an empty or invalid part.
        """
    @staticmethod
    def principals(
        principals: Sequence[str], *, trust_domains: Sequence[_TrustDomainLike] = ()
    ) -> Authorizer: """AuthorizationPolicy ``principals`` (exact, ``*``, ``prefix*``, ``*suffix``), expanded
        with ``trust_domains`` as istiod does (:func:`expand_principals`).

        Raises:
            IdentityError: a malformed pattern.
        """
    @staticmethod
    def all_of(authorizers: Sequence[_AuthorizerLike]) -> Authorizer:
        """Peers that every one of ``authorizers`` allows (``&``)."""
    @staticmethod
    def any_of(authorizers: Sequence[_AuthorizerLike]) -> Authorizer:
        """Peers that at least one of ``authorizers`` allows (``|``)."""
    @staticmethod
    def not_(authorizer: _AuthorizerLike) -> Authorizer:
        """Peers that ``authorizer`` refuses (``~``)."""
    @staticmethod
    def from_callable(
        func: Callable[[SpiffeId], bool], *, description: str | None = None
    ) -> Authorizer: """A callable ``fn(SpiffeId) -> bool`` as an authorizer; ``description`` is what a refusal
        says was expected (default: the callable's name). A callable that raises refuses.

        Raises:
            TypeError: ``func`` is not callable.
        """
    def authorize(self, peer: _SpiffeIdLike) -> None:
        """Raises `AuthorizationError` when `peer` is refused.
        Returns ``None`` when ``peer`` is allowed.

        Raises:
            AuthorizationError: the peer is refused (the message says what was expected).
            InvalidSpiffeIdError: ``peer`` is not a SPIFFE ID.
        """
    def allows(self, peer: _SpiffeIdLike) -> bool:
        """Whether ``peer`` (a :class:`SpiffeId` or text) is allowed.

        Raises:
            InvalidSpiffeIdError: ``peer`` is not a SPIFFE ID.
        """
    @property
    def description(self) -> str:
        """What the authorizer allows, in words (used in refusals)."""
    def __and__(self, other: _AuthorizerLike, /) -> Authorizer: ...
    def __or__(self, other: _AuthorizerLike, /) -> Authorizer: ...
    def __rand__(self, other: _AuthorizerLike, /) -> Authorizer: ...
    def __ror__(self, other: _AuthorizerLike, /) -> Authorizer: ...
    def __invert__(self) -> Authorizer: ...

@final
class VerifiedSvid:
    """A peer whose X.509-SVID chain verified: its SPIFFE ID, the chain it presented and the
    bundle that verified it. Returned by :meth:`SvidVerifier.verify`.
    """
    @property
    def spiffe_id(self) -> SpiffeId:
        """The peer's SPIFFE ID."""
    @property
    def chain(self) -> list[bytes]:
        """The chain as presented, DER ``bytes``, leaf first."""
    @property
    def bundle_trust_domain(self) -> TrustDomain:
        """The trust domain whose bundle verified the chain (the primary for an alias)."""
    @property
    def valid_from(self) -> datetime.datetime:
        """The latest NotBefore of the chain (an aware UTC ``datetime``)."""
    @property
    def valid_until(self) -> datetime.datetime:
        """The earliest NotAfter of the chain (an aware UTC ``datetime``)."""

@final
class SvidVerifier:
    """:func:`verify_svid` with a cache for peers that come back: a chain that verified is
    remembered (by its bytes and the bundle that verified it), so the next verification of
    the same chain skips the signature checks but still checks validity at ``now``.
    Replacing the bundles (:meth:`set_bundles`) drops what the old bundles verified. Safe to
    share between threads.

    Args:
        bundles: a :class:`BundleSet`, or a dict mapping trust-domain names to PEM roots.
        authorizer: an :class:`Authorizer` or callable applied after every verification.
        cache_size: how many chains to remember (0 disables the cache).

    Raises:
        BundleError: ``bundles`` given as a dict could not be read.
        InvalidArgumentError: ``cache_size`` out of range.
    """
    def __new__(
        cls,
        bundles: _Bundles,
        *,
        authorizer: _AuthorizerLike | None = None,
        cache_size: int = 1024,
    ) -> SvidVerifier: ...
    def verify(self, chain: _Chain, *, now: datetime.datetime | None = None) -> VerifiedSvid:
        """Verifies a peer chain (as :func:`verify_svid`), then applies the verifier's authorizer.

        Args:
            chain: PEM text or a list of DER ``bytes``, leaf first.
            now: an aware ``datetime``; ``None`` for now.

        Returns:
            A :class:`VerifiedSvid`.

        Raises:
            SvidError: the chain failed a rule.
            AuthorizationError: the verifier's authorizer refused the peer.
            InvalidArgumentError: a naive ``now``.
        """
    def set_bundles(self, bundles: _Bundles) -> None:
        """Replaces the bundles (e.g. after a root rotation); cached verdicts of the old ones
        are dropped.

        Raises:
            BundleError: ``bundles`` given as a dict could not be read.
        """
    @property
    def bundles(self) -> BundleSet:
        """The current bundles."""
    @property
    def cache_info(self) -> dict[str, int]:
        """``{"hits": ..., "misses": ..., "entries": ...}``."""
    def clear_cache(self) -> None:
        """Forgets every cached verdict."""

def verify_svid(
    chain: _Chain,
    bundles: _Bundles,
    *,
    now: datetime.datetime | None = None,
    authorizer: _AuthorizerLike | None = None,
) -> SpiffeId: """Verifies a peer's X.509-SVID chain by the SPIFFE X.509-SVID standard and returns its
    SPIFFE ID.

    The leaf must carry exactly one URI SAN that is a SPIFFE ID with a path, be an end-entity
    certificate for digital signatures (serverAuth and clientAuth when it has an EKU), and
    chain (RFC 5280) to a root in the bundle of the leaf's own trust domain (or of the trust
    domain it is an alias of). Stricter than go-spiffe where the standard says MUST.

    Args:
        chain: PEM text (leaf first) or a list of DER ``bytes`` (leaf first).
        bundles: a :class:`BundleSet`, or a dict mapping trust-domain names to PEM roots.
        now: the verification time (an aware ``datetime``); ``None`` for now.
        authorizer: an :class:`Authorizer` or callable checked after verification.

    Returns:
        The peer's :class:`SpiffeId`.

    Raises:
        SvidError: the chain failed a rule (the message says which).
        AuthorizationError: the chain verified but ``authorizer`` refused the peer.
        BundleError: ``bundles`` given as a dict could not be read.
        InvalidArgumentError: a naive ``now``, or one before 1970.
        TypeError: ``chain`` or ``bundles`` of the wrong type.

    Example::

        >>> verify_svid(svid.cert_chain_pem, {"cluster.local": ca.root_cert_pem})
        SpiffeId("spiffe://cluster.local/ns/shop/sa/web")
    """
def check_private_key(certificate: Union[str, bytes], private_key_pem: str) -> None:
    """Checks that a private key belongs to a certificate (the key's public half is the
    certificate's), as a TLS library would before serving with them.

    Args:
        certificate: PEM text (the first certificate is used) or DER ``bytes``.
        private_key_pem: the key in PEM (PKCS#8, PKCS#1 or SEC1).

    Raises:
        SvidError: the key does not match, or the certificate or key cannot be read.
        TypeError: ``certificate`` is neither ``str`` nor ``bytes``.
    """
def inspect_certificate(
    certificate: Union[str, bytes], *, now: datetime.datetime | None = None
) -> dict[str, Any]: """The SVID-relevant fields of a certificate, as a dict (what ``meshtls inspect --json``
    prints): SPIFFE ID and other SANs, validity, key, KeyUsage/EKU, CA flag, serial, and
    which SPIFFE rules the certificate breaks as a leaf.

    Args:
        certificate: PEM text (the first certificate is used) or DER ``bytes``.
        now: the time validity is judged at (an aware ``datetime``); ``None`` for now.

    Raises:
        SvidError: the certificate cannot be read.
        InvalidArgumentError: a naive ``now``.
        TypeError: ``certificate`` is neither ``str`` nor ``bytes``.
    """
# ---- ca ---------------------------------------------------------------------------------------

import datetime as _dt
import os as _os
from typing import Literal

_KeyKind = Literal["ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"]
_Path = Union[str, "_os.PathLike[str]"]

@final
class MeshCa:
    """A mesh certificate authority that issues X.509-SVIDs with Istio's exact workload profile
    (empty subject, one critical URI SAN, 128-bit random serial, NotBefore backdated two
    minutes, NotAfter clamped to the CA's), signs CSRs, rotates its root and writes Istio's
    plug-in ``cacerts`` layout.

    Make one with :meth:`create` (a self-signed root), :meth:`create_intermediate`,
    :meth:`load` or :meth:`from_pem`. Safe to share between threads; heavy work (key
    generation, signing, files) runs with the GIL released.

    Example::

        >>> ca = MeshCa.create("cluster.local", key="ec-p256")
        >>> svid = ca.issue("spiffe://cluster.local/ns/shop/sa/web")
        >>> str(svid.spiffe_id)
        'spiffe://cluster.local/ns/shop/sa/web'
    """
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
    ) -> MeshCa: """A new self-signed root CA, as istiod makes for itself (``istio-ca-secret``).

        Args:
            trust_domain: the trust domain (a :class:`TrustDomain` or its name).
            key: ``"ec-p256"``, ``"ec-p384"``, ``"rsa-2048"`` (Istio's default), ``"rsa-3072"``
                or ``"rsa-4096"``.
            ttl: the root's lifetime (a ``timedelta``; default ten years).
            organization: the subject's O (default: the trust domain, as Istio).
            common_name: an optional subject CN.
            trust_domain_san: add the URI SAN ``spiffe://<trust_domain>`` to the CA certificate.

        Raises:
            CaError: an unknown key kind, or a parameter the CA profile refuses.
            InvalidArgumentError: a negative or unrepresentable ``ttl``.
            InvalidSpiffeIdError: a bad trust domain.
        """
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
    ) -> MeshCa: """A new intermediate CA signed by this one (for a cluster's plug-in ``cacerts``).

        Args:
            trust_domain: defaults to this CA's.
            key: the intermediate's key kind (see :meth:`create`).
            ttl: its lifetime (default two years; clamped to this CA's NotAfter).
            organization: subject O (default: the trust domain).
            common_name: subject CN.
            path_len: the BasicConstraints pathLenConstraint (0 to 255) or ``None``.
            trust_domain_san: add the URI SAN ``spiffe://<trust_domain>``.

        Raises:
            CaError: this CA has no trust domain and none was given, or a bad parameter.
            InvalidArgumentError: ``path_len`` out of 0..255, or a bad ``ttl``.
        """
    @classmethod
    def load(
        cls,
        directory: _Path,
        *,
        trust_domain: _TrustDomainLike | None = None,
        mesh: MeshConfig | None = None,
    ) -> MeshCa:
        """Loads a CA from Istio's plug-in layout (``ca-cert.pem``, ``ca-key.pem``,
        ``cert-chain.pem``, ``root-cert.pem``) or a ``kubernetes.io/tls`` directory.

        The CA issues for ``trust_domain`` only, or for ``mesh``'s trust domain and its
        ``trustDomainAliases`` (a ``MeshConfig``); with neither, for the trust domain in the
        signing certificate's ``spiffe://<td>`` URI SAN (Istio's sample CA has none).

        Raises:
            CaError: a missing file, a file that cannot be read or is not UTF-8 text, material
                that is not a usable CA (the message names the file), no trust domain, or a
                URI SAN naming another trust domain than ``trust_domain``.
            TypeError: both ``trust_domain`` and ``mesh``.
        """
    @classmethod
    def from_pem(
        cls,
        ca_cert_pem: str,
        ca_key_pem: str,
        *,
        cert_chain_pem: str = "",
        root_cert_pem: str = "",
        trust_domain: _TrustDomainLike | None = None,
        mesh: MeshConfig | None = None,
    ) -> MeshCa: """A CA from PEM text, as in Istio's plug-in files.

        Args:
            ca_cert_pem: the signing certificate.
            ca_key_pem: its private key (PKCS#8, PKCS#1 or SEC1).
            cert_chain_pem: the chain from the signing certificate up (``""``: just it).
            root_cert_pem: the root (``""``: the last certificate of the chain).
            trust_domain: the trust domain the CA issues for (see ``load``).
            mesh: a ``MeshConfig`` whose trust domain and aliases the CA issues for.

        Raises:
            CaError: unreadable or inconsistent material (key mismatch, not a CA, expired), no
                trust domain, or a URI SAN naming another one.
            TypeError: both ``trust_domain`` and ``mesh``.
        """
    def save(
        self, directory: _Path, *, layout: Literal["istio", "kubernetes-tls"] = "istio"
    ) -> None: """Writes the CA to ``directory`` atomically, keys 0600.

        Args:
            directory: created if missing.
            layout: ``"istio"`` (``ca-cert.pem``, ``ca-key.pem``, ``cert-chain.pem``,
                ``root-cert.pem``) or ``"kubernetes-tls"`` (``tls.crt``, ``tls.key``, ``ca.crt``).

        Raises:
            CaError: a file could not be written.
            InvalidArgumentError: an unknown layout.
        """
    @property
    def root_cert_pem(self) -> str:
        """The root certificate (PEM): what workloads trust (``root-cert.pem``)."""
    @property
    def ca_cert_pem(self) -> str:
        """The signing certificate (PEM, ``ca-cert.pem``)."""
    @property
    def ca_key_pem(self) -> str:
        """The signing key (PKCS#8 PEM, ``ca-key.pem``). Handle with care."""
    @property
    def cert_chain_pem(self) -> str:
        """The chain from the signing certificate to the root (PEM, ``cert-chain.pem``)."""
    @property
    def trust_domain(self) -> TrustDomain:
        """The trust domain the CA issues for (identities of other trust domains are refused)."""
    @property
    def trust_domain_aliases(self) -> list[TrustDomain]:
        """The trust domain's aliases the CA also issues for (from ``mesh`` at loading)."""
    @property
    def key(self) -> str:
        """The signing key's kind, e.g. ``"rsa-2048"`` or ``"ec-p256"``."""
    @property
    def is_self_signed(self) -> bool:
        """Whether the signing certificate is the self-signed root."""
    @property
    def not_before(self) -> _dt.datetime:
        """The signing certificate's NotBefore (an aware UTC ``datetime``)."""
    @property
    def not_after(self) -> _dt.datetime:
        """The signing certificate's NotAfter (an aware UTC ``datetime``); leaves are clamped to it."""
    def issue(
        self,
        identity: _SpiffeIdLike,
        *,
        ttl: _dt.timedelta | None = None,
        key: _KeyKind = "ec-p256",
        dns_names: Sequence[str] = (),
    ) -> Svid: """Issues an X.509-SVID with a fresh key pair, with Istio's workload profile.

        Args:
            identity: the SPIFFE ID (a :class:`SpiffeId` or its text), with a path.
            ttl: the lifetime (a ``timedelta``; default 24 hours, at most 90 days); NotAfter
                is clamped to the CA's.
            key: the leaf's key kind (default ``"ec-p256"``; see :meth:`create`).
            dns_names: extra DNS SANs after the SPIFFE ID.

        Returns:
            An :class:`Svid` (chain leaf first, PKCS#8 key).

        Raises:
            CaError: an ID without a path, a ttl of zero or over 90 days, a bad DNS name, an
                unknown key kind, or an expired CA.
            InvalidArgumentError: a negative or unrepresentable ``ttl``.
            InvalidSpiffeIdError: ``identity`` is not a SPIFFE ID.

        Example::

            >>> svid = ca.issue("spiffe://cluster.local/ns/shop/sa/web", ttl=timedelta(hours=1))
        """
    def issue_many(
        self,
        identities: Sequence[_SpiffeIdLike],
        *,
        ttl: _dt.timedelta | None = None,
        key: _KeyKind = "ec-p256",
        dns_names: Sequence[str] = (),
        threads: int | None = None,
    ) -> list[Svid]: """Issues one SVID per identity, in parallel on ``threads`` threads (default: the
        machine's cores), with the GIL released throughout.

        Args:
            identities: SPIFFE IDs (:class:`SpiffeId` or text).
            ttl, key, dns_names: as for :meth:`issue`.
            threads: how many threads (at least 1), or ``None``.

        Returns:
            The SVIDs, in the order of ``identities``.

        Raises:
            CaError: as for :meth:`issue`, for the first identity refused (nothing is returned).
            InvalidArgumentError: ``threads`` out of range, or a bad ``ttl``.
        """
    def sign_csr(
        self, csr_pem: str, identity: _SpiffeIdLike, *, ttl: _dt.timedelta | None = None
    ) -> IssuedCertificate: """Signs a PKCS#10 CSR for ``identity``, as istiod does: the CSR's own SANs and subject
        are ignored in favour of the authenticated identity; its signature must verify.

        Args:
            csr_pem: the CSR in PEM.
            identity: the SPIFFE ID to certify.
            ttl: the lifetime (default 24 hours, at most 90 days).

        Returns:
            An :class:`IssuedCertificate` (the requester keeps its key).

        Raises:
            CaError: an unreadable CSR, a bad signature, an unsupported key, or a ttl refused.
            InvalidArgumentError: a negative or unrepresentable ``ttl``.
        """
    def rotate_root(self, *, ttl: _dt.timedelta | None = None) -> MeshCa:
        """A new self-signed root with the same key kind, cross-signed so that SVIDs of the old
        root keep verifying while bundles carry both (Istio's root rotation).

        Raises:
            CaError: this CA is not a self-signed root, or a ttl refused.
        """
    def needs_rotation(self, now: _dt.datetime | None = None) -> bool:
        """Whether the CA certificate is due for renewal at ``now`` (an aware ``datetime``;
        ``None`` for now), by istiod's rule for its self-signed root.

        Raises:
            InvalidArgumentError: a naive ``now``.
        """
    def to_cacerts_secret(self, namespace: str = "istio-system") -> dict[str, Any]:
        """Istio's ``cacerts`` Secret (plug-in CA) as a dict, ready for the kubernetes client.

        Raises:
            CaError: ``namespace`` is not a valid namespace name.
        """
    def root_cert_configmap(self, namespace: str) -> dict[str, Any]:
        """The ``istio-ca-root-cert`` ConfigMap for ``namespace`` as a dict.

        Raises:
            CaError: ``namespace`` is not a valid namespace name.
        """

@final
class Svid:
    """Your own X.509-SVID: the certificate chain (leaf first) and its private key, as issued
    by :meth:`MeshCa.issue` or read with :meth:`from_pem`. The key is zeroized when the
    object is freed and never appears in ``repr()``; not picklable.
    """
    @classmethod
    def from_pem(cls, cert_chain_pem: str, private_key_pem: str) -> Svid:
        """Reads an SVID from PEM: the chain (leaf first) and its private key.

        Raises:
            CaError: unreadable PEM, a key block in the chain, a leaf that is not an SVID, or a
                key that does not match the leaf.
        """
    @property
    def spiffe_id(self) -> SpiffeId:
        """The SVID's SPIFFE ID."""
    @property
    def cert_chain_pem(self) -> str:
        """The chain as PEM text, leaf first."""
    @property
    def cert_chain_der(self) -> list[bytes]:
        """The chain as DER ``bytes``, leaf first."""
    @property
    def private_key_pem(self) -> str:
        """The private key as PKCS#8 PEM."""
    @property
    def private_key_der(self) -> bytes:
        """The private key as PKCS#8 DER ``bytes``."""
    @property
    def trust_bundle_pem(self) -> str:
        """The trust bundle (PEM roots) that came with the SVID; ``""`` if none."""
    @property
    def not_before(self) -> _dt.datetime:
        """The leaf's NotBefore (an aware UTC ``datetime``)."""
    @property
    def not_after(self) -> _dt.datetime:
        """The leaf's NotAfter (an aware UTC ``datetime``)."""
    @property
    def serial_number(self) -> int:
        """The leaf's serial number (an ``int``)."""
    def should_rotate(self, now: _dt.datetime | None = None) -> bool:
        """Whether the SVID is due for renewal at ``now`` by Istio's rule without jitter: once half
        its lifetime has passed (also true once expired).

        Raises:
            InvalidArgumentError: a naive ``now``.
        """
    def rotation_time(self, *, grace_ratio: float = 0.5, jitter: float = 0.01) -> _dt.datetime:
        """When to renew, as istio-agent decides it: at ``not_after - lifetime * ratio``, where
        ratio is ``grace_ratio`` plus a random deviation within ``±jitter``. The defaults are
        Istio's (``SECRET_GRACE_PERIOD_RATIO`` 0.5, jitter 0.01).

        Raises:
            InvalidArgumentError: a ratio that is not a number between 0 and 1.
        """
    def to_k8s_secret(self, name: str, namespace: str) -> dict[str, Any]:
        """A ``kubernetes.io/tls`` Secret as a dict: ``tls.crt`` the leaf and intermediates,
        ``tls.key`` the PKCS#8 key, ``ca.crt`` the trust bundle.

        Raises:
            CaError: ``name`` or ``namespace`` is not a valid Kubernetes name.
        """
    def save(self, directory: _Path) -> None:
        """Writes ``cert-chain.pem``, ``key.pem`` (0600) and ``root-cert.pem`` to ``directory``
        atomically, as istio-agent's output files.

        Raises:
            CaError: a file could not be written.
        """

@final
class IssuedCertificate:
    """A certificate chain signed from a CSR by :meth:`MeshCa.sign_csr` (the requester keeps
    the key): leaf first, plus the trust bundle. Join it with the key by
    :meth:`with_private_key`.
    """
    @property
    def spiffe_id(self) -> SpiffeId:
        """The certified SPIFFE ID."""
    @property
    def cert_chain_pem(self) -> str:
        """The chain as PEM text, leaf first."""
    @property
    def cert_chain_der(self) -> list[bytes]:
        """The chain as DER ``bytes``, leaf first."""
    @property
    def not_before(self) -> _dt.datetime:
        """The leaf's NotBefore (an aware UTC ``datetime``)."""
    @property
    def not_after(self) -> _dt.datetime:
        """The leaf's NotAfter (an aware UTC ``datetime``)."""
    @property
    def serial_number(self) -> int:
        """The leaf's serial number (an ``int``)."""
    def with_private_key(self, private_key_pem: str) -> Svid:
        """The :class:`Svid` made of this chain and the requester's private key (PEM).

        Raises:
            CaError: the key cannot be read or does not match the leaf.
        """

# ---- authorization: AuthorizationPolicy and the path check ----------------------------------

_Principal = Union["SpiffeId", str, None]

@final
class AuthorizationDecision:
    """The decision for one request: the deciding step, the deciding policy and rule, and (when
    asked for) why every candidate policy did or did not match.
    """

    def __new__(
        cls,
        step: str,
        policy: str | None = None,
        rule: int | None = None,
        provider: str | None = None,
        explanation: Sequence[str] | None = None,
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
        """`"allowed"`, `"denied"`, `"external"`, `"no-allow-policy"` or `"no-allow-matched"`."""
    @property
    def policy(self) -> str | None:
        """The deciding policy as `"namespace/name"`, or None when no policy decided."""
    @property
    def rule(self) -> int | None:
        """The deciding rule's index in the policy's `rules`, or None."""
    @property
    def provider(self) -> str | None:
        """The external authorizer (`provider.name`) when the step is `"external"`, else None."""
    @property
    def explanation(self) -> list[str]:
        """One line per candidate policy and step (empty when computed with `explain=False`)."""
    def __eq__(self, other: object, /) -> bool:
        """Equal when the steps are (the explanation is commentary)."""
    def __hash__(self) -> int:
        """Hash of the step."""
    def __reduce__(self) -> tuple[type[AuthorizationDecision], tuple[Any, ...]]:
        """Pickle support."""

@final
class AuthorizationPolicySet:
    """AuthorizationPolicies read once, compiled and indexed per namespace; `check` evaluates a
    request in Istio's order (CUSTOM, DENY, ALLOW).
    """

    @classmethod
    def from_yaml(
        cls, text: str, *, mesh_config: MeshConfig | str | None = None
    ) -> AuthorizationPolicySet:
        """Reads every AuthorizationPolicy of a YAML/JSON text (one object, a stream, or a
        `kind: List`); other kinds are skipped and counted. `mesh_config` (a `MeshConfig` or
        its YAML) gives the root namespace and the trust domains principals expand to.
        """
    @classmethod
    def from_dicts(
        cls, documents: Iterable[Mapping[str, Any]], *, mesh_config: MeshConfig | str | None = None
    ) -> AuthorizationPolicySet:
        """Reads AuthorizationPolicies from a list of dicts (as the kubernetes client returns
        them); other kinds are skipped.
        """
    def check(
        self,
        namespace: str,
        labels: Mapping[str, str] | None,
        *,
        port: int,
        principal: _Principal = None,
        source_ip: str | None = None,
        remote_ip: str | None = None,
        destination_ip: str | None = None,
        method: str | None = None,
        path: str | None = None,
        host: str | None = None,
        headers: Mapping[str, str] | None = None,
        request_principal: str | None = None,
        claims: Mapping[str, Union[str, Sequence[str]]] | None = None,
        sni: str | None = None,
        data_plane: Literal["sidecar", "ambient"] = "sidecar",
        explain: bool = True,
    ) -> AuthorizationDecision:
        """The decision for one request to a workload (`namespace`, pod `labels`) on `port`.
        `principal` is the mTLS peer's SPIFFE ID (None: plaintext); `method`/`path`/`host`/
        `headers` make it an HTTP request (TCP without them); `data_plane` is who enforces:
        `"sidecar"` or `"ambient"` (ztunnel, L4 attributes only).
        """
    def check_many(
        self, requests: Iterable[Mapping[str, Any]], *, explain: bool = False
    ) -> list[AuthorizationDecision]:
        """Many requests at once, evaluated with the GIL released: each item is a mapping with
        `check`'s argument names (`namespace`, `labels`, `port`, `principal`, ...,
        `data_plane`).
        """
    @property
    def root_namespace(self) -> str:
        """The root namespace (its policies apply mesh-wide)."""
    @property
    def skipped(self) -> int:
        """Documents of other kinds skipped while reading."""
    @property
    def policy_names(self) -> list[str]:
        """The policies' `"namespace/name"`, by namespace then name."""
    def __len__(self) -> int:
        """How many policies the set holds."""

def validate_authorization_policy(text_or_dict: Union[str, Mapping[str, Any]]) -> list[str]:
    """Validates AuthorizationPolicy text (YAML/JSON, one object, a stream or a List) or a dict
    as a cluster would; returns the warnings, raises `AuthorizationPolicyError` on the first
    invalid object.
    """

@final
class PathResult:
    """The answer of `Mesh.check`: allowed or refused, the deciding step, and every step's line."""

    def __new__(
        cls,
        allowed: bool,
        step: str,
        reason: str,
        transport: str,
        mode: str,
        mode_policy: str | None = None,
        authorization: AuthorizationDecision | None = None,
        explanation: Sequence[str] | None = None,
        data_plane: str = "sidecar",
    ) -> PathResult:
        """Rebuilds a result from its parts (what pickling stores)."""
    @property
    def data_plane(self) -> str:
        """Who decided at the pod: `"sidecar"`, or `"ambient"` (ztunnel)."""
    @property
    def allowed(self) -> bool:
        """True when the call gets through to the app."""
    @property
    def step(self) -> str:
        """The deciding step: `"mode"`, `"client-tls"`, `"trust-domain"`, an ambient refusal
        (`"hbone-identity"`, `"hbone-trust-domain"`, `"not-tunnelled"`, `"not-ambient"`), or an
        authorization step (`"allowed"`, `"denied"`, `"external"`, `"no-allow-policy"`,
        `"no-allow-matched"`).
        """
    @property
    def reason(self) -> str:
        """One sentence naming the deciding step."""
    @property
    def transport(self) -> str:
        """What the caller sends: `"mtls"`, `"tls"`, `"plaintext"` or `"hbone"`."""
    @property
    def mode(self) -> MtlsMode:
        """The destination port's mTLS mode (`MtlsMode`)."""
    @property
    def mode_policy(self) -> str | None:
        """The PeerAuthentication that set the mode (`"namespace/name"`), or None for the default."""
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
    """What a cluster dump shows (mesh config, PeerAuthentications, AuthorizationPolicies,
    DestinationRules); `check` walks a caller's path to a pod port.
    """

    @classmethod
    def from_dump(cls, text: str, *, mesh_config: MeshConfig | str | None = None) -> Mesh:
        """Reads `kubectl get namespaces,peerauthentications,authorizationpolicies,destinationrules
        -A -o json` (YAML or JSON). `mesh_config` is the `istio` ConfigMap (or its `mesh`
        document) as text or a `MeshConfig`; without it an `istio` ConfigMap in the dump is
        used. Namespaces labelled `istio.io/dataplane-mode: ambient` put their pods in ambient
        mode.
        """
    def check(
        self,
        namespace: str,
        labels: Mapping[str, str] | None,
        port: int,
        *,
        caller: _Principal,
        workload: bool = False,
        hbone: bool = False,
        service: str | None = None,
        source_ip: str | None = None,
        remote_ip: str | None = None,
        destination_ip: str | None = None,
        method: str | None = None,
        path: str | None = None,
        host: str | None = None,
        headers: Mapping[str, str] | None = None,
        request_principal: str | None = None,
        claims: Mapping[str, Union[str, Sequence[str]]] | None = None,
        sni: str | None = None,
    ) -> PathResult:
        """Will `caller` get through to port `port` of a pod (`namespace`, `labels`)?
        `caller` is a SPIFFE ID (an outside caller with a certificate, such as a gateway; with
        `workload=True` a mesh workload whose sidecar decides what it sends; with
        `hbone=True` an outside caller speaking HBONE to an ambient pod), or None for a
        plaintext client. `service` names the Service for DestinationRule lookup; the other
        keywords are the request's attributes, named as in `AuthorizationPolicySet.check`.
        """
    @property
    def authorization_policies(self) -> list[str]:
        """The AuthorizationPolicies' names."""
    @property
    def destination_rules(self) -> int:
        """How many DestinationRules the dump holds."""

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
    config built from it and replaceable in place.

    ``set_svid`` (certificate rotation) and ``set_bundles`` (bundle updates) on a material are
    seen by the next handshake of every ``ClientConfig``/``ServerConfig``/``Listener`` built
    from it; established connections keep what they negotiated. Peer chains that verified are
    cached until they expire or their trust domain's roots change.

    Args:
        svid: the own :class:`~meshtls.Svid` (certificate chain and private key).
        bundles: a :class:`~meshtls.BundleSet` or a dict of trust domain to PEM roots.

    Raises:
        TlsError: the leaf carries no single SPIFFE ID or does not match the key.

    Example::

        material = meshtls.tls.TlsMaterial(ca.issue(GATEWAY_ID), bundles)
        material.set_svid(ca.issue(GATEWAY_ID))   # rotation: the next handshake presents it
    """

    def __new__(cls, svid: Svid, bundles: _BundlesLike) -> TlsMaterial: ...
    def set_svid(self, svid: Svid) -> None:
        """Replaces the own certificate and key with a renewed ``Svid``; the next handshake
        presents it. Raises ``TlsError`` when the SVID is unusable (the old one stays).
        """
    def set_bundles(self, bundles: _BundlesLike) -> None:
        """Replaces the trust bundles (a ``BundleSet`` or a dict of trust domain to PEM); the
        next peer verification uses them.
        """
    @property
    def spiffe_id(self) -> SpiffeId:
        """The SPIFFE ID of the current own certificate."""
    @property
    def bundles(self) -> BundleSet:
        """The current trust bundles."""
    @property
    def cert_chain_der(self) -> list[bytes]:
        """The current own certificate chain, leaf first, as DER ``bytes``."""

@final
class NativeClientConfig:
    """The gateway side of mesh mTLS (rustls): presents the material's SVID, verifies the server's
    chain against the bundle of its own trust domain and requires its SPIFFE ID to be one of
    ``expected`` (expanded with ``trust_domain_aliases``) and/or accepted by ``authorizer``,
    inside the handshake. The server name is never used for verification.

    The building block of :class:`meshtls.tls.ClientConfig`, which adds the I/O; every argument
    is given there with its default.

    Raises:
        TlsError: neither ``expected`` nor ``authorizer`` given, an empty or unknown version
            range, an invalid ALPN value.
    """

    def __new__(
        cls,
        material: TlsMaterial,
        *,
        expected: Sequence[_SpiffeIdLike],
        trust_domain_aliases: Sequence[_TrustDomainLike],
        authorizer: _AuthorizerLike | None,
        alpn: Sequence[str],
        min_version: str | None,
        max_version: str | None,
    ) -> NativeClientConfig: ...
    def session(self, server_name: str | None = None) -> TlsSession:
        """A new sans-I/O client session; ``server_name`` goes into SNI only (a DNS name, or
        ``None`` for no SNI).
        """
    def set_authorizer(self, authorizer: _AuthorizerLike) -> None:
        """Replaces the authorizer for the next handshakes (the expected IDs stay in force)."""
    @property
    def expected(self) -> list[SpiffeId]:
        """The expected server IDs after alias expansion (empty when only an authorizer decides)."""
    @property
    def material(self) -> TlsMaterial:
        """The material presented and verified with (shared: rotating it affects this config)."""

@final
class NativeServerConfig:
    """The sidecar side of mesh mTLS (rustls): requires a client certificate, verifies it against
    the bundle of its own trust domain, which must be one of ``trust_domains`` (default: the
    mesh's, or the own SVID's), then asks ``authorizer``, all inside the handshake.

    The building block of :class:`meshtls.tls.ServerConfig`; every argument is given there with
    its default.

    Raises:
        TlsError: an empty or unknown version range, an invalid ALPN value, a mesh cipher list
            without a usable TLS 1.2 suite.
    """

    def __new__(
        cls,
        material: TlsMaterial,
        *,
        trust_domains: Sequence[_TrustDomainLike] | None,
        authorizer: _AuthorizerLike | None,
        alpn: Sequence[str],
        min_version: str | None,
        max_version: str | None,
        mesh: MeshConfig | None,
    ) -> NativeServerConfig: ...
    def session(self) -> TlsSession:
        """A new sans-I/O server session (no mode, no sniffing: the connection is mTLS)."""
    def set_authorizer(self, authorizer: _AuthorizerLike) -> None:
        """Replaces the authorizer for the next handshakes."""
    @property
    def material(self) -> TlsMaterial:
        """The material presented and verified with (shared: rotating it affects this config)."""
    def acceptor(self, mode: str) -> InboundAcceptor:
        """An acceptor applying ``mode`` (``"STRICT"``, ``"PERMISSIVE"``, ``"DISABLE"``; ``"UNSET"``
        is PERMISSIVE) to inbound connections, as an Istio sidecar's listener does.
        """

@final
class Peer:
    """The peer of an established connection, verified and authorized in the handshake."""

    @property
    def spiffe_id(self) -> SpiffeId:
        """The peer's SPIFFE ID."""
    @property
    def version(self) -> str | None:
        """The negotiated protocol version: ``"TLSv1.2"`` or ``"TLSv1.3"``."""
    @property
    def cipher(self) -> str | None:
        """The negotiated cipher suite's IANA name (e.g. ``"TLS13_AES_128_GCM_SHA256"``)."""
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
        """An Envoy-style ``X-Forwarded-Client-Cert`` element: ``By=<local>;Hash=<sha256>;URI=<peer>``."""

@final
class ClientHello:
    """What a TLS ClientHello offered (SNI, ALPN, versions), as the inbound side saw it."""

    @property
    def server_name(self) -> str | None:
        """The ``server_name`` extension's host name, or ``None``."""
    @property
    def alpn(self) -> list[str]:
        """The ALPN protocols offered, in the client's order."""
    @property
    def offers_tls13(self) -> bool:
        """True when the client offers TLS 1.3."""

@final
class TlsSession:
    """A sans-I/O mesh mTLS connection: feed it what the network delivered, send what it hands
    out, read and write application data once the handshake is over. Application data is
    refused until the peer has been verified and authorized.

    :class:`meshtls.tls.TlsSocket` and :func:`meshtls.tls.open_connection` drive it; use it
    directly for other event loops.
    """

    def receive(self, data: bytes) -> None:
        """Feeds bytes received from the network (the handshake runs here, without the GIL).

        Raises:
            PeerAuthorizationError: the peer's SPIFFE ID was refused.
            PeerVerificationError: the peer's chain does not verify against its trust domain's
                bundle.
            TlsConnectionError: any other handshake or protocol failure. After an error, send
                ``take_outgoing()`` (the alert) and close the transport.
        """
    def receive_eof(self) -> None:
        """Tells the session that the transport reached end of file. Raises
        ``TlsConnectionError`` when that happens during the handshake.
        """
    def take_outgoing(self) -> bytes:
        """The bytes to send to the network now (may be empty)."""
    def read(self, max: int = 65536) -> bytes | None:
        """Up to ``max`` bytes of received application data; ``b""`` when the peer closed the
        connection, ``None`` when nothing is buffered yet (receive more first).
        """
    def write(self, data: bytes) -> None:
        """Encrypts application data for sending (then send ``take_outgoing()``). Raises
        ``TlsConnectionError`` before the handshake has completed.
        """
    def close(self) -> None:
        """Queues a TLS ``close_notify`` (send it with ``take_outgoing()``)."""
    @property
    def is_handshaking(self) -> bool:
        """True until the handshake has completed and the peer has been accepted."""
    @property
    def is_client(self) -> bool:
        """True for the client side."""
    @property
    def peer(self) -> Peer | None:
        """The verified and authorized peer once the handshake has completed, else ``None``."""

@final
class InboundAcceptor:
    """Applies a port's mTLS mode to inbound connections (see :class:`meshtls.tls.Listener`)."""

    @property
    def mode(self) -> str:
        """The mode applied: ``"STRICT"``, ``"PERMISSIVE"`` or ``"DISABLE"`` (never ``"UNSET"``)."""
    def sniffer(self) -> Sniffer:
        """A sniffer for one new connection."""

_Verdict = tuple[str, TlsSession | None, bytes, ClientHello | None] | None

@final
class Sniffer:
    """Decides from the first bytes of one inbound connection where it goes.

    ``verdict()`` and ``receive(data)`` return ``None`` ("receive more"), or a tuple
    ``(kind, session, first_bytes, hello)``: ``("mtls", TlsSession, bytes, None)`` — feed
    ``first_bytes`` into the session, then complete the handshake — or
    ``("plaintext", None, bytes, ClientHello | None)`` — replay ``first_bytes`` to the
    application. A refusal raises ``TlsConnectionError`` ("connection refused under STRICT: ...").
    """

    def verdict(self) -> _Verdict:
        """The verdict on the bytes seen so far (DISABLE decides before any byte arrives)."""
    def receive(self, data: bytes) -> _Verdict:
        """Adds received bytes (``b""``: the peer closed, an error) and returns the verdict."""

# ---- HBONE -------------------------------------------------------------------------------------

def _hbone_connect(
    via: str,
    target: str,
    material: TlsMaterial,
    expected: _SpiffeIdLike,
    *,
    timeout: float | None = None,
    headers: Sequence[tuple[str, str]] = ...,
) -> int:
    """Opens an HBONE tunnel (GIL released) and returns the file descriptor of the Python end
    of a Unix socket pair that the native runtime copies to and from the tunnel; used by
    :mod:`meshtls.hbone`.

    Raises:
        HboneError: the tunnel was refused (a subclass says which refusal).
        InvalidArgumentError: ``via`` or ``target`` is not ``ip:port``.
    """

def _hbone_connection_count() -> int:
    """The number of open HBONE connections in the pools behind :mod:`meshtls.hbone` (tunnels to
    the same server identity and address share one, up to 100 streams each).
    """

# ---- Istio's CA protocol ---------------------------------------------------------------------

@final
class IstioCaClient:
    """A client of Istio's CA protocol (istiod's `IstioCertificateService` on port 15012).

    ``address`` is ``host:port`` (default ``istiod.istio-system.svc:15012``); the server's
    certificate must chain to ``root_cert_pem`` (the ``istio-ca-root-cert`` ConfigMap) and carry
    the server name: the address's host, ``istiod.istio-system.svc`` when the host contains
    ``localhost``, or ``server_name`` when given. Authentication is a bearer token, fixed
    (``token``) or read from ``token_file`` for every request; ``cluster_id`` is sent as the
    ``clusterid`` metadata and ``headers`` as extra metadata.
    """

    def __new__(
        cls,
        address: str = "istiod.istio-system.svc:15012",
        *,
        root_cert_pem: str,
        token: str | None = None,
        token_file: _Path | None = None,
        cluster_id: str | None = None,
        server_name: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: _dt.timedelta | None = None,
    ) -> IstioCaClient: ...
    @property
    def address(self) -> str:
        """The ``host:port`` dialled."""
    @property
    def server_name(self) -> str:
        """The name checked on the server's certificate."""
    def fetch_svid(
        self,
        identity: _SpiffeIdLike,
        *,
        ttl: _dt.timedelta | None = None,
        key: _KeyKind = "ec-p256",
    ) -> Svid:
        """Generates a key of kind ``key`` locally, sends a CSR for ``identity`` (a ``SpiffeId`` or
        its text) asking for ``ttl`` (default 24 hours), and returns the checked ``Svid``: one
        certificate per entry, at least leaf and root, the leaf names ``identity`` and holds the
        key, the chain verifies against the mesh root. The GIL is released while waiting.
        Raises ``CaProtocolError`` (unreachable, TLS/server name, refused, bad chain).
        """
    def renew(
        self, svid: Svid, *, ttl: _dt.timedelta | None = None, key: _KeyKind = "ec-p256"
    ) -> Svid:
        """Renews ``svid`` while it is valid, authenticating with it as the TLS client certificate
        (no token is sent); returns the new ``Svid`` with a new key. The GIL is released.
        """
    def keep_fresh(
        self,
        material: TlsMaterial,
        identity: _SpiffeIdLike,
        *,
        ttl: _dt.timedelta | None = None,
        key: _KeyKind = "ec-p256",
        svid: Svid | None = None,
        initial_backoff: _dt.timedelta | None = None,
        max_backoff: _dt.timedelta | None = None,
        max_failures: int | None = None,
    ) -> RefreshHandle:
        """Keeps ``material`` (a ``meshtls.tls.TlsMaterial``) holding a fresh certificate for
        ``identity``, as istio-agent does: gets a first ``Svid`` with the token now (unless
        ``svid``, a still-valid ``Svid`` of ``identity``, is given) and puts it into the
        material, then, on a background thread (the GIL is not held), renews at Istio's rotation
        time (half the lifetime plus jitter) by client certificate, falling back to the token
        once the SVID has expired or renewal is refused, and retries with exponential backoff
        from ``initial_backoff`` (default 1 s) up to ``max_backoff`` (default 5 min) while the
        server is unreachable or ``UNAVAILABLE`` (``max_failures`` failures in a row end the
        loop; default never). Each new certificate goes into the material, so TLS configs built
        from it use it for their next handshake.

        Returns a ``RefreshHandle``: ``stop()`` it (or use it as a context manager); an error
        that ends the loop is kept on ``handle.error``. Raises ``CaProtocolError`` when the first
        certificate cannot be had.
        """

@final
class RefreshHandle:
    """A certificate kept fresh in the background by ``IstioCaClient.keep_fresh``.

    ``stop()`` ends the loop and waits for its thread (a renewal in progress is abandoned, the
    material keeps its certificate); ``with client.keep_fresh(...) as handle:`` stops it on
    exit. ``running`` says whether it still runs, ``renewals`` how many certificates it put
    into the material after the first, ``svid`` the current one, and ``error`` the
    ``CaProtocolError`` (or other meshtls error) that ended it, if any.
    """

    def stop(self) -> None:
        """Stops the loop and waits for its thread (the GIL is released meanwhile). Idempotent."""
    @property
    def running(self) -> bool:
        """Whether the loop still runs."""
    @property
    def renewals(self) -> int:
        """How many renewed certificates were put into the material."""
    @property
    def svid(self) -> Svid | None:
        """The ``Svid`` the material holds now."""
    @property
    def error(self) -> BaseException | None:
        """The exception that ended the loop, or ``None`` while it runs or after a clean stop."""
    def __enter__(self) -> RefreshHandle: ...
    def __exit__(self, *args: object) -> bool: ...

@final
class IstioCaServer:
    """A server of Istio's CA protocol backed by a ``MeshCa``, for tests and for running a CA in
    front of Istio's agents.

    Callers authenticate as with istiod: a client certificate of the CA's trust domain, or a
    Kubernetes service-account token verified offline against ``jwks`` (the API server's
    ``/openid/v1/jwks`` document) with ``issuer`` and one of ``audiences`` (default ``("istio-ca",)``). ``strict_csr``
    applies istio-csr's CSR rules; ``trusted_node_accounts`` maps a node agent (``ns/sa`` or a
    SPIFFE ID) to the identities it may request with ``ImpersonatedIdentity``, or to ``None``
    for any identity of the trust domain. ``dns_names`` replaces the serving certificate's
    names (istiod's by default), ``extra_dns_names`` adds to them. ``cluster_id`` (default
    ``Kubernetes``) refuses callers of another cluster; ``min_ttl``/``default_ttl``/``max_ttl``
    bound the lifetimes (default 4 minutes, 24 hours, 90 days: below the floor, agents would
    renew in a loop). ``config_file`` is the YAML/JSON file of ``meshtls ca serve --config``;
    keyword arguments override it. Every request is logged on the ``meshtls.ca_protocol``
    logger (refusals with their reason, at WARNING), with the lines ``meshtls ca serve``
    prints. Use ``start()``/``stop()`` or ``with IstioCaServer(...) as server:``; ``address``
    is then the bound ``host:port``.
    """

    def __new__(
        cls,
        ca: MeshCa,
        *,
        listen: str = "127.0.0.1:0",
        jwks: str | None = None,
        issuer: str | None = None,
        audiences: Sequence[str] = ["istio-ca"],
        strict_csr: bool | None = None,
        dns_names: Sequence[str] | None = None,
        extra_dns_names: Sequence[str] | None = None,
        trust_domain: _TrustDomainLike | None = None,
        trusted_node_accounts: Mapping[str, Sequence[str] | None] | None = None,
        cluster_id: str | None = None,
        default_ttl: _dt.timedelta | None = None,
        max_ttl: _dt.timedelta | None = None,
        min_ttl: _dt.timedelta | None = None,
        config_file: _Path | None = None,
    ) -> IstioCaServer: ...
    def start(self) -> IstioCaServer:
        """Binds the listen address and serves on a background thread; returns ``self``."""
    def stop(self) -> None:
        """Stops serving (open connections get one second) and waits for the server thread."""
    @property
    def running(self) -> bool:
        """Whether the server is serving."""
    @property
    def address(self) -> str:
        """The bound ``host:port`` once started (with the real port when 0 was asked for)."""
    @property
    def port(self) -> int:
        """The bound port once started."""
    @property
    def trust_domain(self) -> str:
        """The trust domain of issued identities."""
    def __enter__(self) -> IstioCaServer: ...
    def __exit__(self, *args: object) -> bool: ...

# ---- the gateway-certificate controller's decision ---------------------------------------------

@final
class SecretSpec:
    """What the gateway-certificate controller keeps: Secret ``namespace/name`` (a
    ``kubernetes.io/tls`` Secret) holding the certificate of service account
    ``identity_namespace/service_account`` in the mesh's trust domain.

    Args:
        name: the Secret's name.
        namespace: the Secret's namespace.
        identity_namespace: the namespace of the identity.
        service_account: the service account of the identity.
        source: where certificates come from, recorded in the ``meshtls.io/source``
            annotation (e.g. ``"cacerts:istio-system/cacerts"``).
        ttl: the certificate lifetime to ask for (default 24 h; more than a minute, at most
            90 days).
        grace_ratio: the share of the lifetime left when renewing (Istio: 0.5).
        jitter: the largest random deviation of that ratio (Istio: 0.01), drawn from the
            certificate's serial so every replica agrees.

    Raises:
        CaError: a bad Secret name or namespace.
        InvalidSpiffeIdError: a bad identity namespace or service account.
        ControllerError: a bad source or ttl.
    """

    def __new__(
        cls,
        name: str,
        namespace: str,
        *,
        identity_namespace: str,
        service_account: str,
        source: str,
        ttl: _dt.timedelta | None = None,
        grace_ratio: float = 0.5,
        jitter: float = 0.01,
    ) -> SecretSpec: ...
    @property
    def name(self) -> str:
        """The Secret's name."""
    @property
    def namespace(self) -> str:
        """The Secret's namespace."""
    @property
    def identity_namespace(self) -> str:
        """The namespace of the identity."""
    @property
    def service_account(self) -> str:
        """The service account of the identity."""
    @property
    def source(self) -> str:
        """The source name."""
    @property
    def ttl(self) -> _dt.timedelta:
        """The certificate lifetime asked for, a ``timedelta``."""
    def identity(self, mesh: MeshConfig) -> SpiffeId:
        """The identity in ``mesh``'s trust domain."""

@final
class SecretAction:
    """What the Secret must become: ``kind`` is ``"nothing"``, ``"issue"`` or ``"write"``.

    - ``"issue"``: get a certificate for :attr:`identity` (``MeshCa.issue``,
      ``IstioCaClient.fetch_svid``, ...) and pass it to :meth:`complete`;
    - ``"write"``: write :attr:`secret` (:meth:`manifest` gives the object for the API); when
      :attr:`replace` is true, delete the Secret first (its type is immutable);
    - ``"nothing"``: look again at :attr:`recheck_at`.
    """

    @property
    def kind(self) -> Literal["nothing", "issue", "write"]:
        """``"nothing"``, ``"issue"`` or ``"write"``."""
    @property
    def reason(self) -> str | None:
        """Why (``"missing"``, ``"wrong-type"``, ``"unreadable"``, ``"identity-changed"``,
        ``"expired"``, ``"not-signed-by-mesh-roots"``, ``"rotation-due"``,
        ``"metadata-changed"``), or ``None`` for ``"nothing"``.
        """
    @property
    def message(self) -> str | None:
        """The reason as a sentence, or ``None``."""
    @property
    def identity(self) -> SpiffeId | None:
        """The identity to issue for (``"issue"`` only), else ``None``."""
    @property
    def replace(self) -> bool:
        """Whether the Secret must be deleted before it is written (its type is wrong)."""
    @property
    def recheck_at(self) -> _dt.datetime | None:
        """When to look again (an aware UTC ``datetime``), or ``None`` for ``"issue"``."""
    @property
    def secret(self) -> dict[str, Any] | None:
        """The Secret to write (``"write"`` only), as a dict: ``name``, ``namespace``, ``type``,
        ``data`` (``bytes`` values), ``annotations``, ``labels``; else ``None``.
        """
    def manifest(self) -> str | None:
        """The Secret as the API takes it (``"write"`` only): ``apiVersion``, ``kind``,
        ``metadata``, ``type`` and base64 ``data``, as JSON text for a server-side apply.
        """
    def complete(self, svid: Svid) -> SecretAction:
        """Turns the certificate issued for an ``"issue"`` action into the ``"write"``.

        Raises:
            ControllerError: the certificate is for another identity, already expired, or does
                not chain to the source's roots (the Secret must then stay as it is).
            InvalidArgumentError: this action is not ``"issue"``.
        """
    def after_failure(self, attempt: int, *, cap: _dt.timedelta | None = None) -> SecretAction:
        """What to do after the source or the API server failed on attempt ``attempt`` (0
        first): always ``"nothing"`` (a valid certificate is never replaced by nothing), with
        :attr:`recheck_at` after a capped exponential backoff, never past the current
        certificate's rotation point.
        """

def decide_secret(
    mesh: MeshConfig,
    spec: SecretSpec,
    current: Mapping[str, Any] | None,
    *,
    source_roots: _Chain | None = None,
    now: _dt.datetime | None = None,
) -> SecretAction:
    """Decides what the gateway's certificate Secret must become (``meshtls.controller.decide``
    in Rust: the same rules).

    Args:
        mesh: the :class:`MeshConfig` from the ``istio`` ConfigMap.
        spec: the :class:`SecretSpec`.
        current: the Secret as it is (a dict with ``type``, ``data``, ``annotations`` or
            ``metadata.annotations``; ``data`` values ``bytes`` or base64 ``str``), or
            ``None`` when it does not exist.
        source_roots: the certificate source's roots (PEM text or a list of DER ``bytes``);
            ``None`` when not known yet.
        now: an aware ``datetime``; ``None`` for now.

    Returns:
        a :class:`SecretAction`.

    Raises:
        ControllerError: a ``caCertificates`` entry of the mesh config is not PEM.
    """

# ---- JWT-SVIDs ----------------------------------------------------------------------------

@final
class JwtSigner:
    """A trust domain's JWT signing key (EC P-256 → ES256, EC P-384 → ES384, RSA → RS256) that
    mints JWT-SVIDs; its ``kid`` is the key's RFC 7638 thumbprint unless given.

    Example::

        >>> signer = JwtSigner.generate("example.org")
        >>> token = signer.mint("spiffe://example.org/web", ["billing"])
        >>> svid = validate_jwt_svid(token, {"example.org": signer.jwks()}, audience=["billing"])
        >>> str(svid.spiffe_id)
        'spiffe://example.org/web'
    """
    @classmethod
    def generate(cls, trust_domain: _TrustDomainLike, *, key: _KeyKind = "ec-p256") -> JwtSigner:
        """A new key of kind ``key`` (``ec-p256``, ``ec-p384``, ``rsa-2048``, ``rsa-3072``,
        ``rsa-4096``) for ``trust_domain``.

        Raises:
            CaError: an unknown key kind.
            InvalidSpiffeIdError: a bad trust domain.
        """
    @classmethod
    def from_pem(cls, trust_domain: _TrustDomainLike, pem: str, *, kid: str | None = None) -> JwtSigner:
        """Reads a private key from PEM (PKCS#8, PKCS#1 or SEC1); ``kid`` defaults to the key's
        thumbprint.

        Raises:
            CaError: the PEM holds no usable key.
        """
    @classmethod
    def load(cls, directory: str | _os.PathLike[str], trust_domain: _TrustDomainLike) -> JwtSigner:
        """Reads ``<directory>/jwt-key.pem`` (a CA directory) as the key of ``trust_domain``.

        Raises:
            FileError: the file cannot be read.
            CaError: it holds no usable key.
        """
    def save(self, directory: str | _os.PathLike[str]) -> None:
        """Writes the key to ``<directory>/jwt-key.pem`` (mode 0600, atomically).

        Raises:
            FileError: the file cannot be written.
        """
    @property
    def trust_domain(self) -> TrustDomain:
        """The trust domain it signs for."""
    @property
    def kid(self) -> str:
        """The key id written into every token."""
    @property
    def algorithm(self) -> str:
        """The signing algorithm (``ES256``, ``ES384`` or ``RS256``)."""
    @property
    def private_key_pem(self) -> str:
        """The private key, PKCS#8 PEM."""
    def mint(
        self,
        spiffe_id: _SpiffeIdLike,
        audiences: Sequence[str],
        *,
        ttl: _dt.timedelta | None = None,
    ) -> str: """Mints a JWT-SVID for ``spiffe_id`` (of this trust domain) with ``audiences`` (at least
        one), valid for ``ttl`` (a ``timedelta``, default 5 minutes, at most a day). The header
        is ``{alg, kid, typ: "JWT"}``; the claims ``sub``, ``aud``, ``exp``, ``iat``.

        Raises:
            JwtError: an empty audience, a subject of another trust domain, a bad ``ttl``.
        """
    def jwks(self, *, shape: Literal["spiffe", "workload-api"] = "spiffe") -> str:
        """The public key as a JWKS: ``shape="spiffe"`` (SPIFFE bundle, ``use: jwt-svid``) or
        ``"workload-api"`` (no ``use``).

        Raises:
            InvalidArgumentError: an unknown shape.
        """

@final
class JwtSvid:
    """A validated JWT-SVID."""
    @property
    def spiffe_id(self) -> SpiffeId:
        """The subject (a :class:`SpiffeId`)."""
    @property
    def audience(self) -> list[str]:
        """The ``aud`` values."""
    @property
    def expiry(self) -> _dt.datetime:
        """``exp`` as an aware UTC ``datetime``."""
    @property
    def kid(self) -> str:
        """The ``kid`` of the key that verified it."""
    @property
    def algorithm(self) -> str:
        """The algorithm (``ES256``, ...)."""
    @property
    def claims(self) -> dict[str, Any]:
        """Every claim, as a ``dict``."""

def validate_jwt_svid(
    token: str,
    bundles: Mapping[TrustDomain | str, str],
    *,
    audience: Sequence[str],
    all_audiences: bool = False,
    leeway: _dt.timedelta | None = None,
    require_kid: bool = True,
    allow_extra_headers: bool = False,
    now: _dt.datetime | None = None,
) -> JwtSvid: """Validates a JWT-SVID by meshtls's policy (see the Rust ``meshtls::jwt`` docs): ``alg``
    allow-list first, ``typ`` JWT/JOSE, no ``crit`` or other extra header, ``kid`` required,
    the bundle of the ``sub`` trust domain only, ``aud`` any-of (all-of with
    ``all_audiences=True``), ``exp``/``nbf`` with ``leeway``.

    Args:
        token: the JWS compact token.
        bundles: trust domain (or its name) → JWKS JSON text, in SPIFFE bundle or Workload API
            shape.
        audience: the expected audiences (at least one, none empty).
        all_audiences: require every expected audience.
        leeway: clock leeway (``timedelta``, default 30 s).
        require_kid: refuse tokens without ``kid`` (default).
        allow_extra_headers: tolerate header parameters other than alg, kid, typ.
        now: validation time (aware ``datetime``; default now).

    Raises:
        JwtError: the rule the token broke, or a bad bundle or audience.
    """

# --- SPIFFE Workload API server (meshtls.workload_api) ---

@final
class WorkloadApiServer:
    """The SPIFFE Workload API server (see ``meshtls.workload_api.WorkloadApiServer``)."""
    def __new__(
        cls,
        ca: MeshCa,
        *,
        socket: str,
        registration_file: str | None = None,
        registration_text: str | None = None,
        jwt_signer: JwtSigner | None = None,
        federated: Sequence[tuple[TrustDomain | str, str]] | None = None,
        x509_ttl: _dt.timedelta | None = None,
        jwt_ttl: _dt.timedelta | None = None,
        max_connections: int | None = None,
        max_streams_per_connection: int | None = None,
    ) -> WorkloadApiServer: ...
    @property
    def endpoint(self) -> str:
        """The ``SPIFFE_ENDPOINT_SOCKET`` value that reaches this server."""
    def rotate(self) -> None:
        """Renews every X.509-SVID now; returns once the new ones are published to every open
        stream.
        """
    def set_registration_text(self, text: str) -> None:
        """Replaces the registration with entries read from YAML/JSON text."""
    def stop(self) -> None:
        """Stops serving: open streams end, the socket file is removed. Idempotent."""

@final
class FakeWorkloadApi:
    """The in-process test Workload API (see ``meshtls.workload_api.fake_server``)."""
    def __new__(
        cls,
        trust_domain: TrustDomain | str,
        *,
        identities: Sequence[tuple[str, str]],
        transport: Literal["tcp", "unix"] = "unix",
        x509_ttl: _dt.timedelta | None = None,
        jwt_ttl: _dt.timedelta | None = None,
        rotate_every: _dt.timedelta | None = None,
    ) -> FakeWorkloadApi: ...
    @property
    def endpoint(self) -> str:
        """The ``SPIFFE_ENDPOINT_SOCKET`` value (``tcp://127.0.0.1:<port>`` or ``unix:///.../agent.sock``)."""
    @property
    def root_cert_pem(self) -> str:
        """The PEM root of the test CA (the X.509 bundle served)."""
    @property
    def jwks(self) -> str:
        """The JWT bundle served, as a SPIFFE bundle JWKS (``use: jwt-svid``)."""
    def rotate(self) -> None:
        """Rotates every X.509-SVID now; returns once the new ones are published."""
    def set_identities(self, identities: Sequence[tuple[str, str]]) -> None:
        """Replaces the identities (``[(spiffe_id, hint), ...]``); ``[]`` withdraws them all."""
    def fail(self, status: Literal["unavailable", "permission_denied"], *, calls: int | None = 1) -> None:
        """The next ``calls`` calls fail with ``status`` (``"unavailable"`` or
        ``"permission_denied"``); ``calls=None`` fails every call until ``clear_failures()``.
        """
    def clear_failures(self) -> None:
        """Ends injected failures."""
    def interrupt_streams(self, status: Literal["unavailable", "permission_denied"]) -> None:
        """Ends every open stream with ``status``."""
    def stop(self) -> None:
        """Stops the server and removes its directory. Idempotent."""

# ---- Workload API client (meshtls.workload_api re-exports these) ----------------------------

@final
class X509Svid:
    """An X.509-SVID from the Workload API: the :class:`~meshtls.Svid` (its ``trust_bundle_pem`` is
    its own trust domain's bundle) and the server's hint.
    """
    @property
    def spiffe_id(self) -> SpiffeId:
        """The SPIFFE ID."""
    @property
    def hint(self) -> str:
        """The server's hint (``""`` when none)."""
    @property
    def svid(self) -> Svid:
        """The certificate chain and private key as a :class:`~meshtls.Svid`."""

@final
class X509Context:
    """One full state of ``FetchX509SVID``: ``svids`` (the first is the default identity) and
    ``bundles`` (the own trust domain's and the federated ones).
    """
    @property
    def svids(self) -> list[X509Svid]:
        """The SVIDs in the server's order."""
    @property
    def bundles(self) -> BundleSet:
        """The bundles as a :class:`~meshtls.BundleSet`."""
    def select(self, *, hint: str | None = None, spiffe_id: _SpiffeIdLike | None = None) -> X509Svid:
        """The SVID with ``hint`` or ``spiffe_id`` (the first SVID when neither is given).

        Raises:
            NoMatchingSvidError: none matches (the message lists what was sent).
        """

@final
class JwtSvidToken:
    """A JWT-SVID minted by the Workload API (``token`` not validated here: it comes from the
    local agent).
    """
    @property
    def spiffe_id(self) -> SpiffeId:
        """The SPIFFE ID the server says the token is for."""
    @property
    def token(self) -> str:
        """The token (JWS compact serialization)."""
    @property
    def hint(self) -> str:
        """The server's hint (``""`` when none)."""

@final
class WorkloadApiClient:
    """A client of the SPIFFE Workload API (SPIRE's agent, ``meshtls workload-api serve``, ...).

    ``address`` is ``unix:///path`` or ``tcp://ip:port`` (default: ``SPIFFE_ENDPOINT_SOCKET``),
    parsed as SPIFFE Workload Endpoint §4 says; the connection is made here (GIL released).
    Every call carries the ``workload.spiffe.io: true`` header and waits at most ``timeout``
    (default 10 s).

    Raises:
        InvalidEndpointError: the address breaks the standard (the message names the rule).
        WorkloadApiConnectError: nothing listens there.
    """
    def __new__(cls, address: str | None = None, *, timeout: _dt.timedelta | None = None) -> WorkloadApiClient: ...
    @property
    def address(self) -> str:
        """The endpoint as a URI (``unix:///...`` or ``tcp://...``)."""
    def fetch_x509_context(self) -> X509Context:
        """The caller's X.509-SVIDs and bundles (the first message of ``FetchX509SVID``).

        Raises:
            NoIdentityError: the server has no identity for this process (``PermissionDenied``).
            WorkloadApiStatusError: another gRPC status (``.code`` is its name).
        """
    def fetch_x509_svid(self, *, hint: str | None = None, spiffe_id: _SpiffeIdLike | None = None) -> X509Svid:
        """The X.509-SVID with ``hint`` or ``spiffe_id`` (default: the first, the default identity)."""
    def fetch_x509_bundles(self) -> BundleSet:
        """The X.509 bundles (``FetchX509Bundles``) as a :class:`~meshtls.BundleSet`."""
    def fetch_jwt_svids(
        self, audience: Sequence[str], *, spiffe_id: _SpiffeIdLike | None = None, hint: str | None = None
    ) -> list[JwtSvidToken]: """JWT-SVIDs for ``audience`` (at least one): every identity of the caller, or the one
        with ``spiffe_id`` or ``hint``.
        """
    def fetch_jwt_svid(
        self, audience: Sequence[str], *, spiffe_id: _SpiffeIdLike | None = None, hint: str | None = None
    ) -> JwtSvidToken: """One JWT-SVID for ``audience``: the one with ``spiffe_id`` or ``hint``, or the first."""
    def fetch_jwt_bundles(self) -> dict[str, str]:
        """The JWT bundles: trust domain name to JWKS JSON text (the shape
        :func:`meshtls.validate_jwt_svid` takes).
        """
    def validate_jwt_svid(self, token: str, audience: str) -> tuple[SpiffeId, dict[str, Any]]:
        """Asks the server to validate ``token`` for ``audience`` (``ValidateJWTSVID``); returns
        ``(SpiffeId, claims dict)``. A refusal raises ``WorkloadApiStatusError`` with code
        ``InvalidArgument`` and the server's reason.
        """

@final
class X509Source:
    """X.509-SVIDs and bundles from the Workload API, kept current by a background task (no
    Python thread, no GIL), and a :class:`meshtls.tls.TlsMaterial` that follows every
    rotation: ``meshtls.tls.ClientConfig(source.tls_material, ...)`` and
    ``meshtls.tls.ServerConfig(source.tls_material, ...)`` present the new SVID at their next
    handshake without being rebuilt.

    Connects (raising ``WorkloadApiConnectError`` when nothing listens), then waits (GIL
    released) for the first update, retrying ``PermissionDenied``, ``Unavailable`` and a
    dropped connection with exponential backoff (``backoff_initial`` doubling up to
    ``backoff_max``) for up to ``initial_timeout`` (default 30 s), then raises the last error;
    ``InvalidArgument`` and ``Unimplemented`` are raised at once (the standard says not to
    retry them). ``hint`` or ``spiffe_id`` picks the SVID (default: the first). A context
    manager: leaving it stops the task.
    """
    def __new__(
        cls,
        address: str | None = None,
        *,
        hint: str | None = None,
        spiffe_id: _SpiffeIdLike | None = None,
        initial_timeout: _dt.timedelta | None = None,
        backoff_initial: _dt.timedelta | None = None,
        backoff_max: _dt.timedelta | None = None,
        timeout: _dt.timedelta | None = None,
    ) -> X509Source: ...
    @property
    def tls_material(self) -> TlsMaterial:
        """The :class:`meshtls.tls.TlsMaterial` that follows this source."""
    @property
    def svid(self) -> X509Svid:
        """The selected SVID now (raises the withdrawal or stop reason when there is none)."""
    @property
    def bundles(self) -> BundleSet:
        """The bundles now."""
    @property
    def generation(self) -> int:
        """The number of updates so far (1 after construction)."""
    @property
    def status(self) -> dict[str, Any]:
        """``{"updates", "last_error", "last_code", "stopped", "withdrawn"}``."""
    def wait_for_update(self, after: int | None = None, *, timeout: _dt.timedelta | None = None) -> int:
        """Waits (GIL released) for an update after generation ``after`` (default: the current
        one) for at most ``timeout`` (default 60 s); returns the new generation.

        Raises:
            WorkloadApiTimeoutError: no update in time (or the last error seen meanwhile).
        """
    def close(self) -> None:
        """Stops the background task; the material keeps its last SVID."""
    def __enter__(self) -> X509Source: ...
    def __exit__(self, _t: object, _v: object, _tb: object) -> bool: ...

@final
class JwtSource:
    """JWT bundles from the Workload API kept current by a background task, JWT-SVIDs fetched
    on demand, and local validation by meshtls's JWT-SVID policy against the current bundles.
    Start-up, retries and ``hint``/``spiffe_id`` as :class:`X509Source`. A context manager.
    """
    def __new__(
        cls,
        address: str | None = None,
        *,
        hint: str | None = None,
        spiffe_id: _SpiffeIdLike | None = None,
        initial_timeout: _dt.timedelta | None = None,
        backoff_initial: _dt.timedelta | None = None,
        backoff_max: _dt.timedelta | None = None,
        timeout: _dt.timedelta | None = None,
    ) -> JwtSource: ...
    def fetch_svid(self, audience: Sequence[str]) -> JwtSvidToken:
        """A JWT-SVID for ``audience`` from the server, picked by the source's hint or SPIFFE ID."""
    def validate(self, token: str, *, audience: Sequence[str], all_audiences: bool = False) -> JwtSvid:
        """Validates ``token`` locally against the current bundles (the bundle of the token's own
        trust domain) by meshtls's policy; ``audience`` any-of (all-of with
        ``all_audiences=True``). Returns a :class:`~meshtls.JwtSvid`; raises ``JwtError``.
        """
    @property
    def bundles(self) -> dict[str, str]:
        """The bundles now: trust domain name to JWKS JSON text."""
    @property
    def generation(self) -> int:
        """The number of bundle updates so far."""
    @property
    def status(self) -> dict[str, Any]:
        """``{"updates", "last_error", "last_code", "stopped", "withdrawn"}``."""
    def close(self) -> None:
        """Stops the background task."""
    def __enter__(self) -> JwtSource: ...
    def __exit__(self, _t: object, _v: object, _tb: object) -> bool: ...
