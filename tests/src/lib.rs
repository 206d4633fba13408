//! Test harness for fedsync: real local servers (moto, OpenBao, a Lambda Runtime API, a
//! fault-injecting proxy) and the worlds the end-to-end tests run the real binaries in,
//! on top of the emulators of `fedsync-emulators`, re-exported here under their names.
//!
//! This crate deliberately does not depend on `fedsync`: the harness is independent of the
//! code under test.

pub use fedsync_emulators::{
    aws, azure, conditions, google, issuer, server, sigv4, static_files, sts_front, xml,
};

pub mod cli;
pub mod clouds;
pub mod fault_proxy;
pub mod github;
pub mod google_world;
pub mod lambda_api;
pub mod leaks;
pub mod moto;
pub mod notice;
pub mod openbao;
pub mod process;
pub mod receiver;
