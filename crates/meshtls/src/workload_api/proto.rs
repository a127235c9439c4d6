//! The messages of the SPIFFE Workload API (`standards/workloadapi.proto` of spiffe/spiffe),
//! written by hand with prost's derive macros and the standard's exact field numbers: no
//! protoc, no build script.
//!
//! The proto file has no `package` statement, so the service is the bare `SpiffeWorkloadAPI`
//! and every method path is `/SpiffeWorkloadAPI/<Method>`. `ValidateJWTSVIDResponse.claims`
//! is a `google.protobuf.Struct` (from prost-types).

use std::collections::HashMap;

/// The service name (no package).
pub const SERVICE_NAME: &str = "SpiffeWorkloadAPI";
/// The prefix every method path starts with.
pub const METHOD_PREFIX: &str = "/SpiffeWorkloadAPI/";
/// `FetchX509SVID` (server stream of [`X509SvidResponse`]).
pub const FETCH_X509_SVID: &str = "/SpiffeWorkloadAPI/FetchX509SVID";
/// `FetchX509Bundles` (server stream of [`X509BundlesResponse`]).
pub const FETCH_X509_BUNDLES: &str = "/SpiffeWorkloadAPI/FetchX509Bundles";
/// `FetchJWTSVID` (unary, [`JwtSvidResponse`]).
pub const FETCH_JWT_SVID: &str = "/SpiffeWorkloadAPI/FetchJWTSVID";
/// `FetchJWTBundles` (server stream of [`JwtBundlesResponse`]).
pub const FETCH_JWT_BUNDLES: &str = "/SpiffeWorkloadAPI/FetchJWTBundles";
/// `ValidateJWTSVID` (unary, [`ValidateJwtSvidResponse`]).
pub const VALIDATE_JWT_SVID: &str = "/SpiffeWorkloadAPI/ValidateJWTSVID";
/// `FetchWITSVID` (WIT profile, incubating; meshtls's server answers `Unimplemented`).
pub const FETCH_WIT_SVID: &str = "/SpiffeWorkloadAPI/FetchWITSVID";
/// `FetchWITBundles` (WIT profile, incubating; meshtls's server answers `Unimplemented`).
pub const FETCH_WIT_BUNDLES: &str = "/SpiffeWorkloadAPI/FetchWITBundles";

/// The gRPC metadata key every request must carry with the value [`SECURITY_HEADER_VALUE`].
pub const SECURITY_HEADER: &str = "workload.spiffe.io";
/// The one accepted value of [`SECURITY_HEADER`] (case-sensitive).
pub const SECURITY_HEADER_VALUE: &str = "true";

/// `X509SVIDRequest`: empty.
#[derive(Clone, Copy, PartialEq, ::prost::Message)]
pub struct X509SvidRequest {}

/// `X509SVIDResponse`: the caller's X.509-SVIDs, CRLs and federated bundles (full state).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct X509SvidResponse {
    /// The SVIDs; the first is the default identity. Required (at least one).
    #[prost(message, repeated, tag = "1")]
    pub svids: ::prost::alloc::vec::Vec<X509Svid>,
    /// DER CRLs.
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub crl: ::prost::alloc::vec::Vec<::prost::alloc::vec::Vec<u8>>,
    /// Bundles of other trust domains: key `spiffe://<td>`, value concatenated DER certificates.
    #[prost(map = "string, bytes", tag = "3")]
    pub federated_bundles: HashMap<::prost::alloc::string::String, ::prost::alloc::vec::Vec<u8>>,
}

/// `X509SVID`: one identity.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct X509Svid {
    /// The SPIFFE ID of the SVID.
    #[prost(string, tag = "1")]
    pub spiffe_id: ::prost::alloc::string::String,
    /// The certificate chain, DER, leaf first, concatenated.
    #[prost(bytes = "vec", tag = "2")]
    pub x509_svid: ::prost::alloc::vec::Vec<u8>,
    /// The private key, unencrypted PKCS#8 DER.
    #[prost(bytes = "vec", tag = "3")]
    pub x509_svid_key: ::prost::alloc::vec::Vec<u8>,
    /// The trust bundle of the SVID's own trust domain, concatenated DER certificates.
    #[prost(bytes = "vec", tag = "4")]
    pub bundle: ::prost::alloc::vec::Vec<u8>,
    /// An operator-chosen hint to tell SVIDs apart (optional, unique per response).
    #[prost(string, tag = "5")]
    pub hint: ::prost::alloc::string::String,
}

/// `X509BundlesRequest`: empty.
#[derive(Clone, Copy, PartialEq, ::prost::Message)]
pub struct X509BundlesRequest {}

/// `X509BundlesResponse`: every X.509 bundle the caller may use (own trust domain included).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct X509BundlesResponse {
    /// DER CRLs.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub crl: ::prost::alloc::vec::Vec<::prost::alloc::vec::Vec<u8>>,
    /// Key `spiffe://<td>`, value concatenated DER certificates.
    #[prost(map = "string, bytes", tag = "2")]
    pub bundles: HashMap<::prost::alloc::string::String, ::prost::alloc::vec::Vec<u8>>,
}

/// `JWTSVIDRequest`: the audiences (required) and optionally which SPIFFE ID.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct JwtSvidRequest {
    /// The audiences of the token; at least one.
    #[prost(string, repeated, tag = "1")]
    pub audience: ::prost::alloc::vec::Vec<::prost::alloc::string::String>,
    /// The SPIFFE ID wanted; empty means every identity of the caller.
    #[prost(string, tag = "2")]
    pub spiffe_id: ::prost::alloc::string::String,
}

/// `JWTSVIDResponse`: one token per identity.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct JwtSvidResponse {
    /// The tokens.
    #[prost(message, repeated, tag = "1")]
    pub svids: ::prost::alloc::vec::Vec<JwtSvid>,
}

/// `JWTSVID`: one token.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct JwtSvid {
    /// The SPIFFE ID (the token's `sub`).
    #[prost(string, tag = "1")]
    pub spiffe_id: ::prost::alloc::string::String,
    /// The token, JWS compact serialization.
    #[prost(string, tag = "2")]
    pub svid: ::prost::alloc::string::String,
    /// The hint of the registration it came from.
    #[prost(string, tag = "3")]
    pub hint: ::prost::alloc::string::String,
}

/// `JWTBundlesRequest`: empty.
#[derive(Clone, Copy, PartialEq, ::prost::Message)]
pub struct JwtBundlesRequest {}

/// `JWTBundlesResponse`: JWKS documents (no `use` member) keyed by trust domain.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct JwtBundlesResponse {
    /// Key `spiffe://<td>`, value the JWKS JSON bytes.
    #[prost(map = "string, bytes", tag = "1")]
    pub bundles: HashMap<::prost::alloc::string::String, ::prost::alloc::vec::Vec<u8>>,
}

/// `ValidateJWTSVIDRequest`: a token and the audience to check it against (both required).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ValidateJwtSvidRequest {
    /// The validator's audience.
    #[prost(string, tag = "1")]
    pub audience: ::prost::alloc::string::String,
    /// The token.
    #[prost(string, tag = "2")]
    pub svid: ::prost::alloc::string::String,
}

/// `ValidateJWTSVIDResponse`: the token's SPIFFE ID and claims.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ValidateJwtSvidResponse {
    /// The `sub` of the validated token.
    #[prost(string, tag = "1")]
    pub spiffe_id: ::prost::alloc::string::String,
    /// Every claim of the token.
    #[prost(message, optional, tag = "2")]
    pub claims: ::core::option::Option<::prost_types::Struct>,
}

/// `WITSVIDRequest` (WIT profile, incubating).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WitSvidRequest {
    /// The SPIFFE ID wanted; empty means every identity.
    #[prost(string, tag = "1")]
    pub spiffe_id: ::prost::alloc::string::String,
}

/// `WITSVIDResponse` (WIT profile, incubating).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WitSvidResponse {
    /// The WIT-SVIDs.
    #[prost(message, repeated, tag = "1")]
    pub svids: ::prost::alloc::vec::Vec<WitSvid>,
}

/// `WITSVID` (WIT profile, incubating).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WitSvid {
    /// The SPIFFE ID.
    #[prost(string, tag = "1")]
    pub spiffe_id: ::prost::alloc::string::String,
    /// The workload identity token.
    #[prost(string, tag = "2")]
    pub wit_svid: ::prost::alloc::string::String,
    /// Its private key as a JWK (JSON text).
    #[prost(string, tag = "3")]
    pub wit_svid_key: ::prost::alloc::string::String,
    /// The hint.
    #[prost(string, tag = "4")]
    pub hint: ::prost::alloc::string::String,
}

/// `WITBundlesRequest` (WIT profile, incubating): empty.
#[derive(Clone, Copy, PartialEq, ::prost::Message)]
pub struct WitBundlesRequest {}

/// `WITBundlesResponse` (WIT profile, incubating): note the values are strings.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WitBundlesResponse {
    /// Key `spiffe://<td>`, value a JWKS document.
    #[prost(map = "string, string", tag = "1")]
    pub bundles: HashMap<::prost::alloc::string::String, ::prost::alloc::string::String>,
}
