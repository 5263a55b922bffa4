//! Keygate's platform-free core.
//!
//! Everything the verifier decides is a function here, tested natively: the key format ([`key`]), secret hashing
//! ([`hash`]), the model and lifecycle ([`model`]), credential extraction ([`credential`]), the decision in DESIGN.md's
//! order of checks ([`decision`]), the rate limiter ([`ratelimit`]), problem details ([`problem`]) and the admin API's
//! types ([`api`]).
//!
//! This crate never depends on `worker`, `leptos`, `web-sys` or any I/O, and never reads the clock: callers pass `now`.

pub mod api;
pub mod authz;
pub mod credential;
pub mod decision;
pub mod hash;
pub mod http;
pub mod key;
pub mod keyobject;
pub mod leak;
pub mod meta;
pub mod model;
pub mod net;
pub mod path;
pub mod preview;
pub mod privilege;
pub mod problem;
pub mod ratelimit;
pub mod requestlog;
pub mod routes;
pub mod scan;
#[cfg(feature = "schema")]
mod schema;
pub mod simulate;
pub mod time;
pub mod webhook;

pub use decision::{Access, Code, Demand, Endpoint, Grant};
pub use hash::SecretHash;
pub use key::{ApiKey, KeyId, KeyParseError};
pub use model::{Environment, KeyRecord, KeyState, KeyStatus, Permission, RateLimitPolicy, Role};
pub use problem::Problem;
pub use time::Timestamp;

#[cfg(test)]
mod tests;
