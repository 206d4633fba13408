//! Test harness for fedsync: real local servers (moto, a Lambda Runtime API, an OpenID
//! issuer, a validating STS front) that the end-to-end tests run the real binaries against.
//!
//! This crate deliberately does not depend on `fedsync`: the harness is independent of the
//! code under test.

pub mod azure;
pub mod cli;
pub mod clouds;
pub mod fault_proxy;
pub mod github;
pub mod google;
pub mod google_world;
pub mod issuer;
pub mod lambda_api;
pub mod leaks;
pub mod moto;
pub mod notice;
pub mod openbao;
pub mod process;
pub mod receiver;
pub mod sigv4;
pub mod static_files;
pub mod sts_front;
pub mod xml;

mod server;
