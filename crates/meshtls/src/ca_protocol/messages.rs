//! The messages of `istio.v1.auth` (Istio's `security/v1alpha1/ca.proto`), written by hand with
//! prost's derive macros from the protocol's facts; `proto/istio/v1/auth/ca.proto` in the
//! repository is the same schema for other languages' tools.

use crate::error::CaProtocolError;

/// The package and service: `istio.v1.auth.IstioCertificateService`.
pub const SERVICE_NAME: &str = "istio.v1.auth.IstioCertificateService";
/// The one method's full path.
pub const CREATE_CERTIFICATE_PATH: &str =
    "/istio.v1.auth.IstioCertificateService/CreateCertificate";
/// The metadata key with which a trusted node agent asks for another identity.
pub const IMPERSONATED_IDENTITY: &str = "ImpersonatedIdentity";

/// `IstioCertificateRequest`: a PEM CSR, a requested lifetime and optional metadata.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct IstioCertificateRequest {
    /// The PKCS#10 request, PEM.
    #[prost(string, tag = "1")]
    pub csr: ::prost::alloc::string::String,
    /// Requested lifetime in seconds; 0 or less asks for the server's default.
    #[prost(int64, tag = "3")]
    pub validity_duration: i64,
    /// Optional metadata (`ImpersonatedIdentity`, `CertSigner`).
    #[prost(message, optional, tag = "4")]
    pub metadata: ::core::option::Option<::prost_types::Struct>,
}

/// `IstioCertificateResponse`: one PEM certificate per entry, leaf first, root last.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct IstioCertificateResponse {
    /// The chain.
    #[prost(string, repeated, tag = "1")]
    pub cert_chain: ::prost::alloc::vec::Vec<::prost::alloc::string::String>,
}

impl IstioCertificateRequest {
    /// The string value of a metadata key, if the request has one (other value kinds are
    /// `None`).
    pub fn metadata_string(&self, key: &str) -> Option<&str> {
        match self.metadata.as_ref()?.fields.get(key)?.kind.as_ref()? {
            prost_types::value::Kind::StringValue(s) => Some(s),
            _ => None,
        }
    }

    /// Sets a string metadata value.
    pub fn set_metadata_string(&mut self, key: &str, value: &str) {
        let meta = self.metadata.get_or_insert_with(Default::default);
        meta.fields.insert(
            key.to_owned(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue(value.to_owned())),
            },
        );
    }
}

/// Decodes a request from protobuf bytes (a plain function, for fuzzing).
pub fn decode_request(bytes: &[u8]) -> Result<IstioCertificateRequest, CaProtocolError> {
    <IstioCertificateRequest as prost::Message>::decode(bytes).map_err(|e| {
        CaProtocolError::Decode {
            what: "IstioCertificateRequest",
            reason: e.to_string(),
        }
    })
}

/// Decodes a response from protobuf bytes (a plain function, for fuzzing).
pub fn decode_response(bytes: &[u8]) -> Result<IstioCertificateResponse, CaProtocolError> {
    <IstioCertificateResponse as prost::Message>::decode(bytes).map_err(|e| {
        CaProtocolError::Decode {
            what: "IstioCertificateResponse",
            reason: e.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use prost::Message;

    #[test]
    fn wire_format_matches_the_schema() {
        let mut req = IstioCertificateRequest {
            csr: "x".into(),
            validity_duration: 3600,
            metadata: None,
        };
        req.set_metadata_string(IMPERSONATED_IDENTITY, "spiffe://td/ns/a/sa/b");
        let bytes = req.encode_to_vec();
        // field 1, wire type 2 (len) = 0x0a; field 3 varint = 0x18; field 4 len = 0x22
        assert_eq!(&bytes[..3], &[0x0a, 0x01, b'x']);
        assert_eq!(&bytes[3..6], &[0x18, 0x90, 0x1c]);
        assert_eq!(bytes[6], 0x22);
        let back = decode_request(&bytes).unwrap();
        assert_eq!(
            back.metadata_string(IMPERSONATED_IDENTITY),
            Some("spiffe://td/ns/a/sa/b")
        );
        assert!(decode_request(&[0x0a, 0x05, b'x']).is_err());
        let resp = IstioCertificateResponse {
            cert_chain: vec!["a\n".into(), "b\n".into()],
        };
        assert_eq!(decode_response(&resp.encode_to_vec()).unwrap(), resp);
    }
}
