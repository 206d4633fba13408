//! fedsync keeps secrets in step across clouds with no stored cloud key: a change
//! in a source store is read once and written to every destination with
//! short-lived credentials obtained by exchanging fedsync's own signed token.
//!
//! Entry points (`functions/`) only translate: a wire event becomes a
//! [`event::SecretChange`], the [`sync::Engine`] syncs it, and the
//! [`report::Report`] is mapped to the platform's success or retry semantics.

mod aws;
pub mod config;
pub mod discovery;
pub mod egress;
pub mod event;
pub mod excerpt;
pub mod exchange;
mod google;
pub mod http;
pub mod identity;
pub mod jwks;
pub mod logging;
pub mod marks;
pub mod metrics;
pub mod naming;
pub mod plan;
pub mod reconcile;
pub mod reference;
pub mod report;
pub mod retry;
pub mod secret;
pub mod serve;
pub mod stores;
pub mod sync;
pub mod triggers;
pub mod value_hash;
mod vault;

pub use config::Config;
pub use event::{ChangeKind, SecretChange};
pub use report::Report;
pub use sync::Engine;
