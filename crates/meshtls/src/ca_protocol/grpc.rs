//! gRPC's status codes by the names gRPC spells them (`UNAUTHENTICATED`): the names are what
//! [`crate::error::CaProtocolError::Status`] and [`super::Refusal`] carry, and tonic's
//! [`tonic::Code`] has only descriptions. Everything else of gRPC (framing, status trailers,
//! metadata) is tonic's.

pub(crate) use tonic::Code;

/// The name of a gRPC status code, as gRPC's status code document spells it.
pub(crate) trait CodeName {
    /// `UNAUTHENTICATED`, `INVALID_ARGUMENT`, ...
    fn name(self) -> &'static str;
}

impl CodeName for Code {
    fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_numbers() {
        // gRPC's numbering: the name of each number, as grpc-go's codes package spells them.
        let names = [
            "OK",
            "CANCELLED",
            "UNKNOWN",
            "INVALID_ARGUMENT",
            "DEADLINE_EXCEEDED",
            "NOT_FOUND",
            "ALREADY_EXISTS",
            "PERMISSION_DENIED",
            "RESOURCE_EXHAUSTED",
            "FAILED_PRECONDITION",
            "ABORTED",
            "OUT_OF_RANGE",
            "UNIMPLEMENTED",
            "INTERNAL",
            "UNAVAILABLE",
            "DATA_LOSS",
            "UNAUTHENTICATED",
        ];
        for (n, name) in names.iter().enumerate() {
            assert_eq!(Code::from_i32(n as i32).name(), *name);
        }
        assert_eq!(Code::from_i32(99).name(), "UNKNOWN");
    }
}
