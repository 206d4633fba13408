//! Strict in-process emulators of the cloud APIs fedsync speaks, each written from the
//! cloud's published specification, not from fedsync's code: an OpenID issuer, AWS STS
//! and Secrets Manager, Google STS, IAM Credentials, Secret Manager and the metadata
//! server, Entra ID and Key Vault. Each listens on its own `127.0.0.1` port.
//!
//! The end-to-end tests and `fedsync demo` share them. The function binaries never link
//! this crate.

pub mod aws;
pub mod azure;
pub mod conditions;
pub mod google;
pub mod issuer;
pub mod server;
pub mod sigv4;
pub mod static_files;
pub mod sts_front;
pub mod xml;
