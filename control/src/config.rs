//! The control plane's configuration, read once per isolate from its variables and secrets.

use keygate_shared::decision::{CONSOLE_PROJECT, Endpoint};
use keygate_shared::model::Environment;

/// Console tokens live this long unless configured otherwise (`KEYGATE_CONSOLE_TOKEN_DAYS`).
pub const DEFAULT_CONSOLE_TOKEN_DAYS: i64 = 30;
/// Invitations live this long unless configured otherwise (`KEYGATE_INVITATION_DAYS`).
pub const DEFAULT_INVITATION_DAYS: i64 = 7;
/// Failed sign-ins a source may make in a minute before further failures are refused with 429.
pub const SIGN_IN_FAILURES_PER_MINUTE: u32 = 20;

#[derive(Debug, Clone)]
pub struct Config {
    /// The environment console tokens are issued in (`KEYGATE_ENVIRONMENT`, as the gateway's).
    pub environment: Environment,
    /// The secret that bootstraps an empty deployment (`KEYGATE_BOOTSTRAP_TOKEN`).
    pub bootstrap_token: Option<String>,
    /// How long a console token lives, in milliseconds (`KEYGATE_CONSOLE_TOKEN_DAYS`, 30 by default).
    pub console_token_ms: i64,
    /// How long an invitation lives, in milliseconds (`KEYGATE_INVITATION_DAYS`, 7 by default).
    pub invitation_ms: i64,
    /// `KEYGATE_TEST_SEED=1` (benchmarks and tests only, never in production): `POST /admin/v1/test/seed` fills the
    /// acting organization's key index with synthetic rows, so scale runs need not make thousands of requests.
    pub test_seed: bool,
    /// The keys `POST /v1/leaks` reports may be signed with (`KEYGATE_LEAK_PUBLIC_KEYS`); `None`: not configured.
    pub leak_keys: Option<crate::leaks::LeakKeys>,
}

impl Config {
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let non_empty = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let environment = match non_empty("KEYGATE_ENVIRONMENT") {
            None => Environment::Live,
            Some(v) => v.parse().map_err(|_| format!("KEYGATE_ENVIRONMENT must be live, test or dev, not `{v}`"))?,
        };
        // Days, possibly fractional (the end-to-end suite uses seconds' worth), at most a year.
        let days = |name: &str, default: i64| -> Result<i64, String> {
            match non_empty(name) {
                None => Ok(default * 86_400_000),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|d| d.is_finite() && *d > 0.0 && *d <= 365.0)
                    .map(|d| ((d * 86_400_000.0) as i64).max(1_000))
                    .ok_or_else(|| format!("{name} must be a number of days, more than 0 and at most 365, not `{v}`")),
            }
        };
        Ok(Self {
            environment,
            bootstrap_token: non_empty("KEYGATE_BOOTSTRAP_TOKEN"),
            console_token_ms: days("KEYGATE_CONSOLE_TOKEN_DAYS", DEFAULT_CONSOLE_TOKEN_DAYS)?,
            invitation_ms: days("KEYGATE_INVITATION_DAYS", DEFAULT_INVITATION_DAYS)?,
            test_seed: non_empty("KEYGATE_TEST_SEED").as_deref() == Some("1"),
            leak_keys: non_empty("KEYGATE_LEAK_PUBLIC_KEYS").map(|v| crate::leaks::LeakKeys::parse(&v)).transpose()?,
        })
    }

    /// The endpoint console tokens are checked against.
    pub fn console_endpoint(&self) -> Endpoint {
        Endpoint { environment: self.environment, project: Some(CONSOLE_PROJECT.to_owned()), organization: None }
    }
}
