//! The `meshtls` binary's integration tests, one test binary (one link of the library and
//! aws-lc instead of one per file, as rustls compiles its API tests). Each module covers a
//! command family; `support` runs the binary. `hbone_cli.rs` and `ca_protocol_cli.rs` are
//! still binaries of their own beside this one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod authz;
mod ca;
mod conventions;
mod doc_commands;
mod identity;
mod jwt;
mod policy;
mod support;
mod svid;
