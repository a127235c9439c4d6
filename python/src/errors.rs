//! meshtls errors → the Python exceptions defined in `meshtls/_errors.py`.

use pyo3::PyErr;
use pyo3::import_exception;

import_exception!(meshtls._errors, MeshTlsError);
import_exception!(meshtls._errors, InvalidSpiffeIdError);
import_exception!(meshtls._errors, IdentityError);
import_exception!(meshtls._errors, ManifestError);
import_exception!(meshtls._errors, MeshConfigError);
import_exception!(meshtls._errors, PolicyError);
import_exception!(meshtls._errors, AuthorizationPolicyError);
import_exception!(meshtls._errors, CaError);
import_exception!(meshtls._errors, SvidError);
import_exception!(meshtls._errors, BundleError);
import_exception!(meshtls._errors, AuthorizationError);
import_exception!(meshtls._errors, TlsError);
import_exception!(meshtls._errors, CaProtocolError);
import_exception!(meshtls._errors, ControllerError);
import_exception!(meshtls._errors, JwtError);
import_exception!(meshtls._errors, InvalidArgumentError);
import_exception!(meshtls._errors, FileError);
import_exception!(meshtls._errors, HboneError);
import_exception!(meshtls._errors, HboneTlsError);
import_exception!(meshtls._errors, HbonePeerIdentityError);
import_exception!(meshtls._errors, HboneDeniedError);
import_exception!(meshtls._errors, HboneNoUpstreamError);
import_exception!(meshtls._errors, HboneBadRequestError);
import_exception!(meshtls._errors, WorkloadApiError);

/// Maps a meshtls error to its Python exception, keeping the message.
pub(crate) fn to_py(err: meshtls::Error) -> PyErr {
    let msg = err.to_string();
    match err {
        meshtls::Error::SpiffeId(_) => InvalidSpiffeIdError::new_err(msg),
        meshtls::Error::Identity(_) => IdentityError::new_err(msg),
        meshtls::Error::Manifest(_) => ManifestError::new_err(msg),
        meshtls::Error::MeshConfig(_) => MeshConfigError::new_err(msg),
        meshtls::Error::Policy(_) => PolicyError::new_err(msg),
        meshtls::Error::AuthorizationPolicy(_) => AuthorizationPolicyError::new_err(msg),
        meshtls::Error::Ca(_) => CaError::new_err(msg),
        meshtls::Error::Svid(_) => SvidError::new_err(msg),
        meshtls::Error::Bundle(_) => BundleError::new_err(msg),
        meshtls::Error::Authz(_) => AuthorizationError::new_err(msg),
        meshtls::Error::Tls(_) => TlsError::new_err(msg),
        meshtls::Error::CaProtocol(_) => CaProtocolError::new_err(msg),
        meshtls::Error::Controller(_) => ControllerError::new_err(msg),
        meshtls::Error::Jwt(_) => JwtError::new_err(msg),
        meshtls::Error::Io { .. } => FileError::new_err(msg),
        meshtls::Error::Hbone(e) => hbone_error(&e, msg),
        meshtls::Error::WorkloadApi(_) => WorkloadApiError::new_err(msg),
        _ => MeshTlsError::new_err(msg),
    }
}

/// Shorthand for converting any error that becomes a `meshtls::Error`.
/// One exception per HBONE refusal a caller branches on.
fn hbone_error(e: &meshtls::error::HboneError, msg: String) -> PyErr {
    use meshtls::error::HboneError as H;
    match e {
        H::Invalid { .. } => InvalidArgumentError::new_err(msg),
        H::Tls { .. } => HboneTlsError::new_err(msg),
        H::PeerIdentity { .. } => HbonePeerIdentityError::new_err(msg),
        H::Denied { .. } => HboneDeniedError::new_err(msg),
        H::NoUpstream { .. } => HboneNoUpstreamError::new_err(msg),
        H::BadRequest { .. } => HboneBadRequestError::new_err(msg),
        _ => HboneError::new_err(msg),
    }
}

pub(crate) fn py_err<E: Into<meshtls::Error>>(err: E) -> PyErr {
    to_py(err.into())
}
