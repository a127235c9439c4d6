//! The core crate's integration tests as one binary (one link instead of one per file, as
//! rustls does): each file is a module; the shared scaffolding is in the `*_support` modules and
//! `tls_common` (shared with the HBONE tests, which are a binary of their own).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod authz_support;
mod ca_support;
mod svid_support;
#[path = "../tls_common/mod.rs"]
mod tls_common;

mod authz_policy_hostile;
mod authz_policy_path;
mod authz_policy_resolution;
mod authz_policy_vectors;
mod ca_consistency;
mod ca_issue;
mod ca_layout;
mod ca_mutations;
mod hardening;
mod identity_vectors;
mod istio_identity;
mod manifest_budget;
mod manifest_hostile;
mod policy_crd;
mod policy_model;
mod policy_resolution;
mod policy_vectors;
mod svid_authz;
mod svid_bundles;
mod svid_cases;
mod svid_mutations;
mod svid_own;
mod svid_request;
mod tls_config;
mod tls_demo;
mod tls_interop;
mod tls_modes;
mod tls_resumption;
mod tls_rotation;
mod tls_session;
mod tls_sniff;
