//! The SPIFFE Workload API (feature `workload-api`): a server that hands X.509- and JWT-SVIDs
//! to any SPIFFE workload (go-spiffe, py-spiffe, rust-spiffe) over a unix socket, and the
//! wire messages it speaks.
//!
//! - [`proto`]: the messages and method paths of `workloadapi.proto`, written by hand.

pub mod proto;
