//! A SPIFFE Workload API client (tonic over a unix socket or loopback TCP).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Map, Value};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use zeroize::Zeroizing;

use super::endpoint::Endpoint;
use super::proto as pb;
use crate::bundle::{BundleSet, TrustBundle};
use crate::error::{Error, StatusCode, WorkloadClientError, quote};
use crate::identity::{SpiffeId, TrustDomain};
use crate::jwt::{JwksShape, JwtBundle, JwtBundleSet};
use crate::svid::Svid;
use crate::x509::der::Reader;

/// The default deadline of a unary call and of a stream's first message.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// An X.509-SVID from the Workload API: the parsed [`Svid`] (with its own trust domain's
/// bundle as [`Svid::trust_bundle_der`]) and the server's hint.
#[derive(Debug, Clone)]
pub struct X509Svid {
    svid: Svid,
    hint: String,
}

impl X509Svid {
    /// The SPIFFE ID.
    pub fn spiffe_id(&self) -> &SpiffeId {
        self.svid.spiffe_id()
    }

    /// The server's hint for this SVID (empty when none).
    pub fn hint(&self) -> &str {
        &self.hint
    }

    /// The certificate chain and key.
    pub fn svid(&self) -> &Svid {
        &self.svid
    }
}

/// One full state of `FetchX509SVID`: the SVIDs (the first is the default identity) and the
/// bundles to verify peers with (the own trust domain's and the federated ones). CRLs are
/// not used.
#[derive(Debug, Clone)]
pub struct X509Context {
    svids: Vec<X509Svid>,
    bundles: BundleSet,
}

impl X509Context {
    /// The SVIDs in the server's order (never empty).
    pub fn svids(&self) -> &[X509Svid] {
        &self.svids
    }

    /// The trust bundles: the own trust domain's and every federated one.
    pub fn bundles(&self) -> &BundleSet {
        &self.bundles
    }

    /// The SVID that `selector` picks.
    pub fn select(&self, selector: &SvidSelector) -> Result<&X509Svid, WorkloadClientError> {
        selector.pick(&self.svids, |s| (s.spiffe_id(), s.hint()))
    }
}

/// Which of several SVIDs to use: the first (the standard's default identity), the first with
/// a hint, or the first with a SPIFFE ID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SvidSelector {
    /// The first SVID of the response (the default identity).
    #[default]
    First,
    /// The first SVID with this hint (hints are unique; a duplicate loses, §5.2.1).
    Hint(String),
    /// The first SVID with this SPIFFE ID.
    SpiffeId(SpiffeId),
}

impl fmt::Display for SvidSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SvidSelector::First => f.write_str("at all"),
            SvidSelector::Hint(h) => write!(f, "with hint {:?}", quote(h)),
            SvidSelector::SpiffeId(id) => write!(f, "for {id}"),
        }
    }
}

impl SvidSelector {
    pub(crate) fn pick<'a, T>(
        &self,
        svids: &'a [T],
        key: impl Fn(&T) -> (&SpiffeId, &str),
    ) -> Result<&'a T, WorkloadClientError> {
        let found = match self {
            SvidSelector::First => svids.first(),
            SvidSelector::Hint(h) => svids.iter().find(|s| key(s).1 == h),
            SvidSelector::SpiffeId(id) => svids.iter().find(|s| key(s).0 == id),
        };
        found.ok_or_else(|| {
            let available: Vec<String> = svids
                .iter()
                .map(|s| {
                    let (id, hint) = key(s);
                    if hint.is_empty() {
                        id.to_string()
                    } else {
                        format!("{id} (hint {:?})", quote(hint))
                    }
                })
                .collect();
            WorkloadClientError::NoMatch {
                wanted: self.to_string(),
                available: if available.is_empty() {
                    "nothing".to_owned()
                } else {
                    available.join(", ")
                },
            }
        })
    }
}

/// A JWT-SVID fetched from the Workload API (not validated: it comes from the local agent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSvidToken {
    /// The SPIFFE ID the server says the token is for.
    pub spiffe_id: SpiffeId,
    /// The token (JWS compact serialization).
    pub token: String,
    /// The server's hint (empty when none).
    pub hint: String,
}

/// What `ValidateJWTSVID` answered: the token's SPIFFE ID and its claims.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedJwt {
    /// The SPIFFE ID (`sub`).
    pub spiffe_id: SpiffeId,
    /// The claims, as the server returned them (a `google.protobuf.Struct` as JSON).
    pub claims: Map<String, Value>,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

trait NextMessage<T>: Send {
    fn next_message(&mut self) -> BoxFuture<'_, Option<Result<T, WorkloadClientError>>>;
}

struct Decoded<M, T> {
    stream: tonic::Streaming<M>,
    method: &'static str,
    endpoint: String,
    decode: fn(M, &'static str, &str) -> Result<T, WorkloadClientError>,
}

impl<M, T> NextMessage<T> for Decoded<M, T>
where
    M: Send + 'static,
    T: Send,
{
    fn next_message(&mut self) -> BoxFuture<'_, Option<Result<T, WorkloadClientError>>> {
        Box::pin(async move {
            match self.stream.message().await {
                Ok(Some(m)) => Some((self.decode)(m, self.method, &self.endpoint)),
                Ok(None) => None,
                Err(status) => Some(Err(status_error(self.method, &self.endpoint, &status))),
            }
        })
    }
}

/// An open Workload API stream: every message is the full current state (the first comes at
/// once, later ones on rotation). `None` when the server ended the stream.
pub struct Watch<T> {
    inner: Box<dyn NextMessage<T>>,
}

impl<T> fmt::Debug for Watch<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

impl<T> Watch<T> {
    /// The next full state, an error status (the stream is then over), or `None` when the
    /// server ended the stream.
    pub async fn next(&mut self) -> Option<Result<T, WorkloadClientError>> {
        self.inner.next_message().await
    }
}

/// A client of the SPIFFE Workload API (SPIRE's agent, `meshtls workload-api serve`, ...).
///
/// Every call carries the `workload.spiffe.io: true` header; gRPC errors come back as
/// [`WorkloadClientError::Status`] with the code and the server's message. Cloning is cheap
/// and shares the connection.
#[derive(Clone)]
pub struct WorkloadApiClient {
    endpoint: Endpoint,
    address: String,
    channel: Channel,
    timeout: Duration,
}

impl fmt::Debug for WorkloadApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadApiClient")
            .field("endpoint", &self.address)
            .finish_non_exhaustive()
    }
}

fn status_error(
    method: &'static str,
    endpoint: &str,
    status: &tonic::Status,
) -> WorkloadClientError {
    WorkloadClientError::Status {
        method,
        endpoint: endpoint.to_owned(),
        code: StatusCode::from_number(status.code() as i32),
        message: quote(status.message()),
    }
}

fn response_error(
    method: &'static str,
    endpoint: &str,
    reason: impl Into<String>,
) -> WorkloadClientError {
    WorkloadClientError::Response {
        method,
        endpoint: endpoint.to_owned(),
        reason: reason.into(),
    }
}

/// Concatenated DER certificates (the Workload API's bundle fields) split into certificates.
fn split_der(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut reader = Reader::new(bytes);
    let mut certs = Vec::new();
    while !reader.is_empty() {
        let (tag, _, whole) = reader
            .read_any()
            .map_err(|e| format!("certificate {} is not der ({e})", certs.len() + 1))?;
        if tag != 0x30 {
            return Err(format!(
                "certificate {} is not a der sequence",
                certs.len() + 1
            ));
        }
        certs.push(CertificateDer::from(whole.to_vec()));
    }
    Ok(certs)
}

fn trust_domain_of_key(key: &str) -> Result<TrustDomain, String> {
    // Keys are the trust domain's SPIFFE ID (`spiffe://td`); go-spiffe and py-spiffe accept a
    // bare name too, so meshtls does.
    TrustDomain::new(key).map_err(|e| format!("bundle key {:?}: {e}", quote(key)))
}

fn bundle_set(
    map: impl IntoIterator<Item = (String, Vec<u8>)>,
    own: Option<TrustBundle>,
) -> Result<BundleSet, String> {
    let mut set = BundleSet::new();
    let own_td = own.as_ref().map(|b| b.trust_domain().clone());
    if let Some(own) = own {
        set.insert(own).map_err(|e| e.to_string())?;
    }
    let mut entries: Vec<(String, Vec<u8>)> = map.into_iter().collect();
    entries.sort();
    for (key, der) in entries {
        let td = trust_domain_of_key(&key)?;
        if Some(&td) == own_td.as_ref() {
            continue;
        }
        let roots = split_der(&der).map_err(|e| format!("bundle of {td}: {e}"))?;
        let bundle = TrustBundle::new(td, roots).map_err(|e| e.to_string())?;
        set.insert(bundle).map_err(|e| e.to_string())?;
    }
    Ok(set)
}

fn decode_x509(
    m: pb::X509SvidResponse,
    method: &'static str,
    endpoint: &str,
) -> Result<X509Context, WorkloadClientError> {
    let err = |reason: String| response_error(method, endpoint, reason);
    if m.svids.is_empty() {
        return Err(err("no svids (a mandatory field)".to_owned()));
    }
    let mut svids = Vec::with_capacity(m.svids.len());
    let mut own: Option<TrustBundle> = None;
    for (i, s) in m.svids.into_iter().enumerate() {
        let n = i + 1;
        if s.spiffe_id.is_empty()
            || s.x509_svid.is_empty()
            || s.x509_svid_key.is_empty()
            || s.bundle.is_empty()
        {
            return Err(err(format!(
                "svid {n} has an empty spiffe_id, x509_svid, x509_svid_key or bundle (mandatory fields)"
            )));
        }
        let claimed = SpiffeId::new(&s.spiffe_id).map_err(|e| err(format!("svid {n}: {e}")))?;
        let chain = split_der(&s.x509_svid).map_err(|e| err(format!("svid {n}: {e}")))?;
        let key = Zeroizing::new(s.x509_svid_key);
        let svid = Svid::from_der(
            chain,
            &PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.as_slice())),
        )
        .map_err(|e| err(format!("svid {n} ({claimed}): {e}")))?;
        if svid.spiffe_id() != &claimed {
            return Err(err(format!(
                "svid {n} says {claimed} but its certificate is for {}",
                svid.spiffe_id()
            )));
        }
        let roots = split_der(&s.bundle).map_err(|e| err(format!("bundle of svid {n}: {e}")))?;
        let td = claimed.trust_domain();
        let bundle = TrustBundle::new(td.clone(), roots.clone()).map_err(|e| err(e.to_string()))?;
        if own.is_none() {
            own = Some(bundle);
        }
        svids.push(X509Svid {
            svid: svid.with_trust_bundle(roots),
            hint: s.hint,
        });
    }
    let bundles = bundle_set(m.federated_bundles, own).map_err(err)?;
    Ok(X509Context { svids, bundles })
}

fn decode_x509_bundles(
    m: pb::X509BundlesResponse,
    method: &'static str,
    endpoint: &str,
) -> Result<BundleSet, WorkloadClientError> {
    if m.bundles.is_empty() {
        return Err(response_error(
            method,
            endpoint,
            "no bundles (the own trust domain's is mandatory)",
        ));
    }
    bundle_set(m.bundles, None).map_err(|e| response_error(method, endpoint, e))
}

fn decode_jwt_bundles(
    m: pb::JwtBundlesResponse,
    method: &'static str,
    endpoint: &str,
) -> Result<JwtBundleSet, WorkloadClientError> {
    let err = |reason: String| response_error(method, endpoint, reason);
    if m.bundles.is_empty() {
        return Err(err(
            "no bundles (the own trust domain's is mandatory)".to_owned()
        ));
    }
    let mut set = JwtBundleSet::new();
    for (key, jwks) in m.bundles {
        let td = trust_domain_of_key(&key).map_err(err)?;
        let text =
            String::from_utf8(jwks).map_err(|_| err(format!("jwks of {td} is not utf-8")))?;
        // SPIRE serves plain JWKS here (no `use`); keys marked `use: jwt-svid` are taken too.
        let bundle = JwtBundle::from_jwks(td, &text, JwksShape::WorkloadApi)
            .map_err(|e| err(e.to_string()))?;
        set.insert(bundle);
    }
    Ok(set)
}

fn struct_to_json(s: prost_types::Struct) -> Map<String, Value> {
    s.fields
        .into_iter()
        .map(|(k, v)| (k, value_to_json(v)))
        .collect()
}

fn value_to_json(v: prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::NumberValue(n)) => {
            // Struct numbers are doubles; whole numbers (exp, iat) read back as integers.
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                #[allow(clippy::cast_possible_truncation)]
                Value::from(n as i64)
            } else {
                serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
            }
        }
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::StructValue(s)) => Value::Object(struct_to_json(s)),
        Some(Kind::ListValue(l)) => Value::Array(l.values.into_iter().map(value_to_json).collect()),
    }
}

impl WorkloadApiClient {
    /// Connects to `endpoint` (the connection is made now, so a wrong address or a missing
    /// socket is reported here as [`WorkloadClientError::Connect`]; later drops reconnect).
    pub async fn connect(endpoint: Endpoint) -> Result<WorkloadApiClient, Error> {
        let address = endpoint.to_string();
        let connect_err = |reason: String| WorkloadClientError::Connect {
            endpoint: address.clone(),
            reason,
        };
        let channel = match &endpoint {
            Endpoint::Unix(path) => {
                let path = path.clone();
                // The URI is a placeholder: the connector ignores it and dials the socket.
                tonic::transport::Endpoint::from_static("http://localhost")
                    .connect_with_connector(tower::service_fn(move |_: http::Uri| {
                        let path = path.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(&path).await?;
                            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                        }
                    }))
                    .await
            }
            Endpoint::Tcp(addr) => {
                tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                    .map_err(|e| connect_err(e.to_string()))?
                    .connect()
                    .await
            }
        }
        .map_err(|e| connect_err(transport_reason(&e)))?;
        Ok(WorkloadApiClient {
            endpoint,
            address,
            channel,
            timeout: DEFAULT_CALL_TIMEOUT,
        })
    }

    /// Connects to the address in `SPIFFE_ENDPOINT_SOCKET`.
    pub async fn from_env() -> Result<WorkloadApiClient, Error> {
        WorkloadApiClient::connect(Endpoint::from_env()?).await
    }

    /// Sets the deadline of unary calls and of the first message of a fetch (default
    /// [`DEFAULT_CALL_TIMEOUT`]; streams opened by `watch_*` stay open without one).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn request<R>(&self, message: R) -> tonic::Request<R> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            pb::SECURITY_HEADER,
            MetadataValue::from_static(pb::SECURITY_HEADER_VALUE),
        );
        request
    }

    async fn ready(&self) -> Result<tonic::client::Grpc<Channel>, WorkloadClientError> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| WorkloadClientError::Connect {
                endpoint: self.address.clone(),
                reason: transport_reason(&e),
            })?;
        Ok(grpc)
    }

    async fn open<Req, Resp, T>(
        &self,
        method: &'static str,
        path: &'static str,
        message: Req,
        decode: fn(Resp, &'static str, &str) -> Result<T, WorkloadClientError>,
    ) -> Result<Watch<T>, WorkloadClientError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
        T: Send + 'static,
    {
        let mut grpc = self.ready().await?;
        let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
        let response = grpc
            .server_streaming(
                self.request(message),
                http::uri::PathAndQuery::from_static(path),
                codec,
            )
            .await
            .map_err(|s| status_error(method, &self.address, &s))?;
        Ok(Watch {
            inner: Box::new(Decoded {
                stream: response.into_inner(),
                method,
                endpoint: self.address.clone(),
                decode,
            }),
        })
    }

    async fn unary<Req, Resp>(
        &self,
        method: &'static str,
        path: &'static str,
        message: Req,
    ) -> Result<Resp, WorkloadClientError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let call = async {
            let mut grpc = self.ready().await?;
            let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
            grpc.unary(
                self.request(message),
                http::uri::PathAndQuery::from_static(path),
                codec,
            )
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| status_error(method, &self.address, &s))
        };
        self.deadline(method, call).await
    }

    async fn deadline<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, WorkloadClientError>>,
    ) -> Result<T, WorkloadClientError> {
        tokio::time::timeout(self.timeout, fut)
            .await
            .unwrap_or_else(|_| {
                Err(WorkloadClientError::Timeout {
                    what: what.to_owned(),
                    endpoint: self.address.clone(),
                    millis: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
                })
            })
    }

    async fn first<T: Send + 'static>(
        &self,
        method: &'static str,
        watch: impl Future<Output = Result<Watch<T>, WorkloadClientError>>,
    ) -> Result<T, WorkloadClientError> {
        self.deadline(method, async {
            let mut w = watch.await?;
            w.next().await.unwrap_or_else(|| {
                Err(response_error(
                    method,
                    &self.address,
                    "the stream ended before its first message",
                ))
            })
        })
        .await
    }

    /// Opens `FetchX509SVID`: every message is the full set of the caller's X.509-SVIDs and
    /// bundles.
    pub async fn watch_x509_context(&self) -> Result<Watch<X509Context>, WorkloadClientError> {
        self.open(
            "FetchX509SVID",
            pb::FETCH_X509_SVID,
            pb::X509SvidRequest::default(),
            decode_x509,
        )
        .await
    }

    /// The current X.509-SVIDs and bundles (the first message of `FetchX509SVID`).
    pub async fn fetch_x509_context(&self) -> Result<X509Context, Error> {
        Ok(self
            .first("FetchX509SVID", self.watch_x509_context())
            .await?)
    }

    /// The X.509-SVID that `selector` picks.
    pub async fn fetch_x509_svid(&self, selector: &SvidSelector) -> Result<X509Svid, Error> {
        let ctx = self.fetch_x509_context().await?;
        Ok(ctx.select(selector)?.clone())
    }

    /// Opens `FetchX509Bundles`: every message is the full set of X.509 bundles.
    pub async fn watch_x509_bundles(&self) -> Result<Watch<BundleSet>, WorkloadClientError> {
        self.open(
            "FetchX509Bundles",
            pb::FETCH_X509_BUNDLES,
            pb::X509BundlesRequest::default(),
            decode_x509_bundles,
        )
        .await
    }

    /// The current X.509 bundles (own trust domain and federated).
    pub async fn fetch_x509_bundles(&self) -> Result<BundleSet, Error> {
        Ok(self
            .first("FetchX509Bundles", self.watch_x509_bundles())
            .await?)
    }

    /// Opens `FetchJWTBundles`: every message is the full set of JWT bundles.
    pub async fn watch_jwt_bundles(&self) -> Result<Watch<JwtBundleSet>, WorkloadClientError> {
        self.open(
            "FetchJWTBundles",
            pb::FETCH_JWT_BUNDLES,
            pb::JwtBundlesRequest::default(),
            decode_jwt_bundles,
        )
        .await
    }

    /// The current JWT bundles (JWKS per trust domain).
    pub async fn fetch_jwt_bundles(&self) -> Result<JwtBundleSet, Error> {
        Ok(self
            .first("FetchJWTBundles", self.watch_jwt_bundles())
            .await?)
    }

    /// Mints JWT-SVIDs for `audiences` (at least one): every identity of the caller, or only
    /// `spiffe_id`'s.
    pub async fn fetch_jwt_svids<S: AsRef<str>>(
        &self,
        audiences: &[S],
        spiffe_id: Option<&SpiffeId>,
    ) -> Result<Vec<JwtSvidToken>, Error> {
        const METHOD: &str = "FetchJWTSVID";
        let audience: Vec<String> = audiences.iter().map(|a| a.as_ref().to_owned()).collect();
        if audience.is_empty() || audience.iter().any(String::is_empty) {
            return Err(WorkloadClientError::Option {
                name: "audience",
                value: format!("{audience:?}"),
                rule: "at least one audience, none empty",
            }
            .into());
        }
        let response: pb::JwtSvidResponse = self
            .unary(
                METHOD,
                pb::FETCH_JWT_SVID,
                pb::JwtSvidRequest {
                    audience,
                    spiffe_id: spiffe_id.map(ToString::to_string).unwrap_or_default(),
                },
            )
            .await?;
        if response.svids.is_empty() {
            return Err(
                response_error(METHOD, &self.address, "no svids (a mandatory field)").into(),
            );
        }
        let mut out = Vec::with_capacity(response.svids.len());
        for (i, s) in response.svids.into_iter().enumerate() {
            if s.svid.is_empty() {
                return Err(response_error(
                    METHOD,
                    &self.address,
                    format!("svid {} is empty", i + 1),
                )
                .into());
            }
            let id = SpiffeId::new(&s.spiffe_id).map_err(|e| {
                response_error(METHOD, &self.address, format!("svid {}: {e}", i + 1))
            })?;
            out.push(JwtSvidToken {
                spiffe_id: id,
                token: s.svid,
                hint: s.hint,
            });
        }
        Ok(out)
    }

    /// The JWT-SVID that `selector` picks among those minted for `audiences`.
    pub async fn fetch_jwt_svid<S: AsRef<str>>(
        &self,
        audiences: &[S],
        selector: &SvidSelector,
    ) -> Result<JwtSvidToken, Error> {
        let only = match selector {
            SvidSelector::SpiffeId(id) => Some(id),
            _ => None,
        };
        let svids = self.fetch_jwt_svids(audiences, only).await?;
        Ok(selector
            .pick(&svids, |s| (&s.spiffe_id, s.hint.as_str()))?
            .clone())
    }

    /// Asks the server to validate `token` for `audience` (`ValidateJWTSVID`); a refusal is
    /// a [`WorkloadClientError::Status`] with `InvalidArgument` and the server's reason.
    pub async fn validate_jwt_svid(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<ValidatedJwt, Error> {
        const METHOD: &str = "ValidateJWTSVID";
        let response: pb::ValidateJwtSvidResponse = self
            .unary(
                METHOD,
                pb::VALIDATE_JWT_SVID,
                pb::ValidateJwtSvidRequest {
                    audience: audience.to_owned(),
                    svid: token.to_owned(),
                },
            )
            .await?;
        let spiffe_id = SpiffeId::new(&response.spiffe_id)
            .map_err(|e| response_error(METHOD, &self.address, e.to_string()))?;
        Ok(ValidatedJwt {
            spiffe_id,
            claims: response.claims.map(struct_to_json).unwrap_or_default(),
        })
    }
}

/// A transport error's message with its causes (tonic's top-level text is only
/// "transport error").
fn transport_reason(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn split_der_refuses_garbage() {
        assert!(split_der(b"").unwrap().is_empty());
        assert!(split_der(b"\x30\x03\x01").is_err());
        assert!(split_der(b"\x02\x01\x00").is_err());
        assert_eq!(split_der(b"\x30\x00\x30\x01\x00").unwrap().len(), 2);
    }

    #[test]
    fn selector_names_what_was_sent() {
        let a = SpiffeId::new("spiffe://td/a").unwrap();
        let b = SpiffeId::new("spiffe://td/b").unwrap();
        let svids = [
            (a.clone(), "x".to_owned()),
            (b.clone(), String::new()),
            (a.clone(), "x".to_owned()),
        ];
        fn key(s: &(SpiffeId, String)) -> (&SpiffeId, &str) {
            (&s.0, s.1.as_str())
        }
        assert_eq!(SvidSelector::First.pick(&svids, key).unwrap().0, a);
        assert_eq!(
            SvidSelector::SpiffeId(b.clone())
                .pick(&svids, key)
                .unwrap()
                .0,
            b
        );
        assert!(std::ptr::eq(
            SvidSelector::Hint("x".into()).pick(&svids, key).unwrap(),
            &svids[0]
        ));
        let err = SvidSelector::Hint("db".into())
            .pick(&svids, key)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the workload api sent no svid with hint \"db\" (it sent: spiffe://td/a (hint \"x\"), \
             spiffe://td/b, spiffe://td/a (hint \"x\"))"
        );
        let none: [(SpiffeId, String); 0] = [];
        assert!(
            SvidSelector::First
                .pick(&none, key)
                .unwrap_err()
                .to_string()
                .contains("nothing")
        );
    }
}
