//! The Worker's configuration, read once per isolate from its variables and secrets.

use keygate_shared::decision::{CONSOLE_PROJECT, Endpoint};
use keygate_shared::key::KeyId;
use keygate_shared::model::{Environment, valid_slug};
use keygate_shared::routes::RouteTable;

/// How long an isolate may reuse a key record read from KV. Together with KV's own propagation this bounds how late
/// a revocation reaches keys without a rate limit (keys with one consult their Durable Object at least once a lease,
/// at most a second; strict ones on every request).
pub const DEFAULT_CACHE_TTL_MS: i64 = 5_000;

#[derive(Debug, Clone)]
pub struct Config {
    /// The gateway's endpoint: the environment (`KEYGATE_ENVIRONMENT`) and, optionally, the one project it serves
    /// (`KEYGATE_PROJECT` = `<organization id>/<project slug>`).
    pub endpoint: Endpoint,
    /// Where authenticated gateway requests go (`ORIGIN_URL`); `None` answers with a JSON echo of the identity.
    pub origin: Option<String>,
    /// Which permission each gateway route needs (`KEYGATE_ROUTES`).
    pub routes: RouteTable,
    /// `KEYGATE_ROUTES` as configured (`/v1/health` shows it, for the console's simulator).
    pub routes_text: String,
    /// Extra credential header names (`KEYGATE_CREDENTIAL_HEADERS`, comma separated), e.g. `instrumental-api-key`.
    pub extra_headers: Vec<String>,
    /// Isolate cache lifetime of KV records (`KEYGATE_CACHE_TTL_MS`).
    pub cache_ttl_ms: i64,
    /// The secret that bootstraps an empty store (`KEYGATE_BOOTSTRAP_TOKEN`).
    pub bootstrap_token: Option<String>,
    /// `KEYGATE_TEST_PANICS=1`: [`SYNC_PANIC_PATH`] and [`ASYNC_PANIC_PATH`] panic, so the end-to-end suite can
    /// show that a panic leaves the isolate working. Never set it in production.
    pub test_panics: bool,
    /// `KEYGATE_TEST_TRACE=1`: a rate-limited pass carries `keygate-test-admitted-by: lease` or `object`, so the
    /// end-to-end suite can count the admissions an isolate made on its own. Never set it in production.
    pub test_trace: bool,
}

/// With `KEYGATE_TEST_TRACE=1`, the header that says who admitted a rate-limited request.
pub const TRACE_HEADER: &str = "keygate-test-admitted-by";

/// With `KEYGATE_TEST_PANICS=1`, a gateway path that panics in the synchronous first step.
pub const SYNC_PANIC_PATH: &str = "/__keygate/panic";
/// With `KEYGATE_TEST_PANICS=1`, a Keygate route that panics in the async handler.
pub const ASYNC_PANIC_PATH: &str = "/v1/__panic";

impl Config {
    /// Reads the configuration through `var` (name → value). Errors name the variable at fault.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let non_empty = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let environment = match non_empty("KEYGATE_ENVIRONMENT") {
            None => Environment::Live,
            Some(v) => v.parse().map_err(|_| format!("KEYGATE_ENVIRONMENT must be live, test or dev, not `{v}`"))?,
        };
        let (organization, project) = match non_empty("KEYGATE_PROJECT") {
            None => (None, None),
            Some(v) => {
                let (org, slug) = v.split_once('/').ok_or_else(|| {
                    format!(
                        "KEYGATE_PROJECT must name the organization too, as `<organization id>/<project slug>` \
                         (a slug is unique only within its organization), not `{v}`"
                    )
                })?;
                if slug == CONSOLE_PROJECT {
                    return Err(format!("KEYGATE_PROJECT cannot be the reserved `{CONSOLE_PROJECT}`"));
                }
                let id_ok = org.strip_prefix("org_").is_some_and(|id| KeyId::parse(id).is_some());
                if !id_ok || !valid_slug(slug) {
                    return Err(format!(
                        "KEYGATE_PROJECT `{v}`: expected an organization id (`org_…`), `/`, and a project slug"
                    ));
                }
                (Some(org.to_owned()), Some(slug.to_owned()))
            }
        };
        let routes_text = non_empty("KEYGATE_ROUTES").unwrap_or_default();
        let routes = RouteTable::parse(&routes_text).map_err(|e| format!("KEYGATE_ROUTES: {e}"))?;
        let extra_headers = non_empty("KEYGATE_CREDENTIAL_HEADERS")
            .map(|v| v.split(',').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect())
            .unwrap_or_default();
        let cache_ttl_ms = match non_empty("KEYGATE_CACHE_TTL_MS") {
            None => DEFAULT_CACHE_TTL_MS,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|ms| (0..=60_000).contains(ms))
                .ok_or_else(|| String::from("KEYGATE_CACHE_TTL_MS must be 0 to 60000"))?,
        };
        Ok(Self {
            endpoint: Endpoint { environment, project, organization },
            origin: non_empty("ORIGIN_URL"),
            routes,
            routes_text,
            extra_headers,
            cache_ttl_ms,
            bootstrap_token: non_empty("KEYGATE_BOOTSTRAP_TOKEN"),
            test_panics: non_empty("KEYGATE_TEST_PANICS").as_deref() == Some("1"),
            test_trace: non_empty("KEYGATE_TEST_TRACE").as_deref() == Some("1"),
        })
    }

    /// Panics when `KEYGATE_TEST_PANICS=1` and `path` is `panic_path`.
    pub fn panic_if_asked(&self, path: &str, panic_path: &str) {
        if self.test_panics && path == panic_path {
            panic!("deliberate panic on {path} (KEYGATE_TEST_PANICS=1)");
        }
    }

    /// The endpoint console tokens are checked against.
    pub fn console_endpoint(&self) -> Endpoint {
        Endpoint {
            environment: self.endpoint.environment,
            project: Some(CONSOLE_PROJECT.to_owned()),
            organization: None,
        }
    }
}
