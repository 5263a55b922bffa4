//! `keygate`: Keygate's admin API from the command line. Human tables by default, `--json` for scripts, exit codes
//! scripts can branch on (`keygate_cli::exit`). The console token comes from `keygate login` (a prompt, or
//! `KEYGATE_TOKEN`; never an argument) and is kept with 0600 permissions in the user's configuration folder.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use keygate_cli::{Credentials, config_dir, exit, load, save, table};
use serde_json::{Value, json};

const EXAMPLES: &str = "Examples:
  KEYGATE_TOKEN=kg_live_… keygate login --url https://keys.example.com
  keygate keys list --environment live
  KEY=$(keygate keys create --name ci --environment live --permission data:read)
  keygate keys revoke F854DS4QEVHXS4
  echo \"$KEY\" | KEYGATE_SERVICE_KEY=kg_live_… keygate verify --permission data:read
  keygate --json audit | jq '.events[0]'
  keygate scan . --format sarif > keygate.sarif

Exit codes: 0 ok, 2 usage, 3 not signed in, 4 forbidden, 5 not found, 6 conflict, 7 invalid, 8 rate limited,
9 unavailable, 10 key not valid (verify), 1 anything else.";

#[derive(Debug, Parser)]
#[command(name = "keygate", version, about = "Keygate's admin API from the command line", after_help = EXAMPLES)]
struct Cli {
    /// The deployment's address (else the one `login` kept, else http://127.0.0.1:8787).
    #[arg(long, env = "KEYGATE_URL", global = true)]
    url: Option<String>,
    /// Act for this organization (`Keygate-Org`) instead of the token's own.
    #[arg(long, global = true)]
    org: Option<String>,
    /// Print the API's JSON answer instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sign in: the console token from KEYGATE_TOKEN or a prompt, checked, then kept (0600).
    Login,
    /// Forget the kept token.
    Logout,
    /// Who the token is, and in which organization.
    Whoami,
    /// API keys.
    #[command(subcommand)]
    Keys(Keys),
    /// Projects.
    #[command(subcommand)]
    Projects(Projects),
    /// The organization's members.
    Members,
    /// The audit log, newest first.
    Audit {
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Verify a key read from standard input (a service key with keys:verify in KEYGATE_SERVICE_KEY).
    Verify {
        #[arg(long)]
        permission: Option<String>,
        #[arg(long)]
        customer: Option<String>,
    },
    /// Find Keygate keys in files, folders (recursively) or standard input, each confirmed by its checksum; exits 1
    /// when any is found (for a pre-commit hook or CI), 0 when none, 2 when a path cannot be read.
    Scan {
        /// Files and folders (none: standard input).
        paths: Vec<std::path::PathBuf>,
        /// `text` (path:line:column and the masked key) or `sarif` (SARIF 2.1.0, for code scanning).
        #[arg(long, default_value = "text")]
        format: ScanFormat,
    },
    /// Shell completions.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ScanFormat {
    Text,
    Sarif,
}

#[derive(Debug, Subcommand)]
enum Keys {
    List {
        #[arg(long)]
        project: Option<String>,
        #[arg(long)]
        environment: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        cursor: Option<String>,
    },
    Show {
        id: String,
    },
    /// Create a key; the key alone is printed (once) on standard output.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "live")]
        environment: String,
        #[arg(long)]
        project: Option<String>,
        #[arg(long = "permission")]
        permissions: Vec<String>,
        #[arg(long = "role")]
        roles: Vec<String>,
        #[arg(long)]
        identity: Option<String>,
        /// `REQUESTS/SECONDS`, e.g. 100/60.
        #[arg(long)]
        rate_limit: Option<String>,
        /// RFC 3339, e.g. 2027-01-01T00:00:00Z.
        #[arg(long)]
        expires_at: Option<String>,
    },
    Revoke {
        id: String,
    },
    Activate {
        id: String,
    },
    Deactivate {
        id: String,
    },
    /// A new secret, printed once; the old one works for `--grace` seconds.
    Regenerate {
        id: String,
        #[arg(long)]
        grace: Option<u32>,
    },
    Delete {
        id: String,
    },
    Usage {
        id: String,
    },
    Errors {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum Projects {
    List,
    Create { slug: String, name: String },
}

/// Prints an answer: its JSON with `--json`, else what the function makes of it.
type Print<'a> = &'a dyn Fn(&Value, &dyn Fn(&Value) -> String);

/// A failure: what to say, and the exit code.
struct Failure(String, u8);

type Outcome = Result<(), Failure>;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { exit::OK });
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(Failure(message, code)) => {
            if !message.is_empty() {
                eprintln!("keygate: {message}");
            }
            ExitCode::from(code)
        }
    }
}

struct Api {
    url: String,
    token: Option<String>,
    org: Option<String>,
    agent: ureq::Agent,
}

impl Api {
    /// One call; the JSON answer, or the problem as a failure with its exit code.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        self.call_as(self.token.as_deref(), method, path, body)
    }

    fn call_as(&self, token: Option<&str>, method: &str, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        let mut req = self.agent.request(method, &format!("{}{path}", self.url.trim_end_matches('/')));
        if let Some(token) = token {
            req = req.set("authorization", &format!("Bearer {token}"));
        }
        if let Some(org) = &self.org {
            req = req.set("keygate-org", org);
        }
        let result = match body {
            Some(b) => req.set("content-type", "application/json").send_string(&b.to_string()),
            None => req.call(),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(status, r)) => {
                let text = r.into_string().unwrap_or_default();
                let problem: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let detail = problem["detail"].as_str().unwrap_or(&text);
                let code = problem["code"].as_str().unwrap_or("");
                let field = problem["field"].as_str().map(|f| format!(" ({f})")).unwrap_or_default();
                return Err(Failure(format!("{status} {code}{field}: {detail}"), exit::of_status(status)));
            }
            Err(e) => return Err(Failure(format!("could not reach {}: {e}", self.url), exit::UNAVAILABLE)),
        };
        let text = response.into_string().map_err(|e| Failure(e.to_string(), exit::FAILED))?;
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| Failure(format!("an answer that is not JSON: {e}"), exit::FAILED))
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn run(cli: Cli) -> Outcome {
    if let Command::Scan { paths, format } = &cli.command {
        return scan(paths, *format);
    }
    let dir = config_dir(env);
    let kept = dir.as_deref().and_then(load);
    let url = cli
        .url
        .clone()
        .or_else(|| kept.as_ref().map(|k| k.url.clone()))
        .unwrap_or_else(|| "http://127.0.0.1:8787".to_owned());
    let token = env("KEYGATE_TOKEN").or_else(|| kept.as_ref().map(|k| k.token.clone()));
    let agent = ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(30)).build();
    let api = Api { url, token, org: cli.org.clone(), agent };
    let json = cli.json;
    let print = |value: &Value, human: &dyn Fn(&Value) -> String| {
        if json {
            println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
        } else {
            print!("{}", human(value));
        }
    };
    let signed_in = || -> Outcome {
        if api.token.is_none() {
            return Err(Failure(
                "not signed in: run `keygate login` (or set KEYGATE_TOKEN)".into(),
                exit::UNAUTHENTICATED,
            ));
        }
        Ok(())
    };
    match cli.command {
        Command::Login => {
            let token = match env("KEYGATE_TOKEN") {
                Some(t) => t,
                None if std::io::stdin().is_terminal() => {
                    rpassword::prompt_password("Console token: ").map_err(|e| Failure(e.to_string(), exit::FAILED))?
                }
                None => {
                    let mut line = String::new();
                    std::io::stdin().lock().read_line(&mut line).map_err(|e| Failure(e.to_string(), exit::FAILED))?;
                    line
                }
            };
            let token = token.trim().to_owned();
            let session = api.call_as(Some(&token), "GET", "/admin/v1/session", None)?;
            let dir = dir.ok_or_else(|| Failure("no configuration folder (set HOME)".into(), exit::FAILED))?;
            let path = save(&dir, &Credentials { url: api.url.clone(), token })
                .map_err(|e| Failure(format!("could not keep the token: {e}"), exit::FAILED))?;
            print(&session, &|s| {
                format!(
                    "Signed in as {} in {} ({}). The token is kept in {}.\n",
                    s["user"]["email"].as_str().unwrap_or(""),
                    s["organization"]["name"].as_str().unwrap_or(""),
                    s["organization"]["role"].as_str().unwrap_or(""),
                    path.display()
                )
            });
        }
        Command::Logout => {
            if let Some(dir) = dir {
                let _ = std::fs::remove_file(dir.join("credentials.json"));
            }
            if !json {
                println!("Signed out here (the token itself stays valid until it is revoked).");
            }
        }
        Command::Whoami => {
            signed_in()?;
            let session = api.call("GET", "/admin/v1/session", None)?;
            print(&session, &|s| {
                format!(
                    "{} <{}>\n{} ({}), {}\n",
                    s["user"]["name"].as_str().unwrap_or(""),
                    s["user"]["email"].as_str().unwrap_or(""),
                    s["organization"]["name"].as_str().unwrap_or(""),
                    s["organization"]["id"].as_str().unwrap_or(""),
                    s["organization"]["role"].as_str().unwrap_or("")
                )
            });
        }
        Command::Keys(keys) => {
            signed_in()?;
            run_keys(&api, keys, json, &print)?;
        }
        Command::Projects(Projects::List) => {
            signed_in()?;
            let list = api.call("GET", "/admin/v1/projects", None)?;
            print(&list, &|l| {
                let rows = items(&l["projects"], &["slug", "name", "id"]);
                table(&["SLUG", "NAME", "ID"], &rows)
            });
        }
        Command::Projects(Projects::Create { slug, name }) => {
            signed_in()?;
            let project = api.call("POST", "/admin/v1/projects", Some(json!({"slug": slug, "name": name})))?;
            print(&project, &|p| format!("Created project {} ({}).\n", text(&p["slug"]), text(&p["id"])));
        }
        Command::Members => {
            signed_in()?;
            let list = api.call("GET", "/admin/v1/members", None)?;
            print(&list, &|l| {
                table(&["NAME", "EMAIL", "ROLE", "ID"], &items(&l["members"], &["name", "email", "role", "id"]))
            });
        }
        Command::Audit { cursor } => {
            signed_in()?;
            let path = match cursor {
                Some(c) => format!("/admin/v1/audit?cursor={c}"),
                None => "/admin/v1/audit".to_owned(),
            };
            let page = api.call("GET", &path, None)?;
            print(&page, &|p| {
                let rows = items(&p["events"], &["at", "action", "target", "actor_name", "detail"]);
                let mut out = table(&["AT", "ACTION", "TARGET", "BY", "DETAIL"], &rows);
                if let Some(next) = p["next_cursor"].as_str() {
                    out.push_str(&format!("More: keygate audit --cursor {next}\n"));
                }
                out
            });
        }
        Command::Verify { permission, customer } => {
            let service = env("KEYGATE_SERVICE_KEY").ok_or_else(|| {
                Failure("set KEYGATE_SERVICE_KEY to a key holding keys:verify".into(), exit::UNAUTHENTICATED)
            })?;
            let mut key = String::new();
            std::io::stdin().lock().read_line(&mut key).map_err(|e| Failure(e.to_string(), exit::FAILED))?;
            let body = json!({"key": key.trim(), "permission": permission, "customer": customer});
            let answer = api.call_as(Some(&service), "POST", "/v1/verify", Some(body))?;
            print(&answer, &|a| {
                format!(
                    "{}: {}{}\n",
                    if a["valid"] == true { "valid" } else { "not valid" },
                    text(&a["code"]),
                    a["key_id"].as_str().map(|id| format!(" (key {id}, {})", text(&a["name"]))).unwrap_or_default()
                )
            });
            if answer["valid"] != true {
                return Err(Failure(format!("the key is not valid: {}", text(&answer["code"])), exit::KEY_NOT_VALID));
            }
        }
        Command::Scan { .. } => unreachable!("answered above"),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "keygate", &mut std::io::stdout());
        }
    }
    Ok(())
}

fn run_keys(api: &Api, keys: Keys, json: bool, print: Print<'_>) -> Outcome {
    let key_line = |k: &Value| {
        vec![
            text(&k["id"]),
            text(&k["name"]),
            text(&k["environment"]),
            k["project"].as_str().unwrap_or("*").to_owned(),
            text(&k["status"]),
            k["last_used_at"].as_str().unwrap_or("never").to_owned(),
        ]
    };
    match keys {
        Keys::List { project, environment, status, cursor } => {
            let query: Vec<String> =
                [("project", project), ("environment", environment), ("status", status), ("cursor", cursor)]
                    .into_iter()
                    .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
                    .collect();
            let path = if query.is_empty() {
                "/admin/v1/keys".to_owned()
            } else {
                format!("/admin/v1/keys?{}", query.join("&"))
            };
            let list = api.call("GET", &path, None)?;
            print(&list, &|l| {
                let rows: Vec<Vec<String>> = l["keys"].as_array().into_iter().flatten().map(key_line).collect();
                let mut out = table(&["ID", "NAME", "ENV", "PROJECT", "STATUS", "LAST USED"], &rows);
                if let Some(next) = l["next_cursor"].as_str() {
                    out.push_str(&format!("More: keygate keys list --cursor {next}\n"));
                }
                out
            });
        }
        Keys::Show { id } => {
            let key = api.call("GET", &format!("/admin/v1/keys/{id}"), None)?;
            print(&key, &|k| {
                let permissions: Vec<&str> =
                    k["permissions"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                let roles: Vec<&str> = k["roles"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                format!(
                    "{} ({})\n  key:         {}_…\n  status:      {}\n  environment: {}\n  project:     {}\n  permissions: {}\n  roles:       {}\n  identity:    {}\n  last used:   {}\n  requests:    {} in all, {} in 24 h\n",
                    text(&k["name"]),
                    text(&k["id"]),
                    text(&k["start"]),
                    text(&k["status"]),
                    text(&k["environment"]),
                    k["project"].as_str().unwrap_or("all projects"),
                    if permissions.is_empty() { "none".to_owned() } else { permissions.join(", ") },
                    if roles.is_empty() { "none".to_owned() } else { roles.join(", ") },
                    k["identity"]["external_id"].as_str().unwrap_or("none"),
                    k["last_used_at"].as_str().unwrap_or("never"),
                    k["usage"]["total"],
                    k["usage"]["last_24h"],
                )
            });
        }
        Keys::Create { name, environment, project, permissions, roles, identity, rate_limit, expires_at } => {
            let mut body =
                json!({"name": name, "environment": environment, "permissions": permissions, "roles": roles});
            if let Some(p) = project {
                body["project"] = json!(p);
            }
            if let Some(i) = identity {
                body["identity"] = json!(i);
            }
            if let Some(e) = expires_at {
                body["expires_at"] = json!(e);
            }
            if let Some(limit) = rate_limit {
                let (requests, seconds) = limit
                    .split_once('/')
                    .and_then(|(r, s)| Some((r.trim().parse::<u64>().ok()?, s.trim().parse::<u64>().ok()?)))
                    .ok_or_else(|| {
                        Failure(format!("--rate-limit {limit}: use REQUESTS/SECONDS, e.g. 100/60"), exit::USAGE)
                    })?;
                body["rate_limit"] = json!({"requests": requests, "window_seconds": seconds});
            }
            let created = api.call("POST", "/admin/v1/keys", Some(body))?;
            shown_once(&created, json);
        }
        Keys::Regenerate { id, grace } => {
            let body = json!({"grace_seconds": grace});
            let created = api.call("POST", &format!("/admin/v1/keys/{id}/regenerate"), Some(body))?;
            shown_once(&created, json);
        }
        Keys::Revoke { id } => key_action(api, &id, "revoke", print)?,
        Keys::Activate { id } => key_action(api, &id, "activate", print)?,
        Keys::Deactivate { id } => key_action(api, &id, "deactivate", print)?,
        Keys::Delete { id } => {
            api.call("DELETE", &format!("/admin/v1/keys/{id}"), None)?;
            if json {
                println!("{}", json!({"deleted": id}));
            } else {
                println!("Deleted {id}.");
            }
        }
        Keys::Usage { id } => {
            let usage = api.call("GET", &format!("/admin/v1/keys/{id}/usage"), None)?;
            print(&usage, &|u| {
                let rows = items(&u["daily"], &["start", "requests"]);
                format!(
                    "{} requests in all; last used {}\n{}",
                    u["total"],
                    u["last_used_at"].as_str().unwrap_or("never"),
                    table(&["DAY", "REQUESTS"], &rows)
                )
            });
        }
        Keys::Errors { id } => {
            let errors = api.call("GET", &format!("/admin/v1/keys/{id}/errors"), None)?;
            print(&errors, &|e| {
                table(
                    &["AT", "STATUS", "CODE", "REQUEST"],
                    &items(&e["errors"], &["at", "status", "code", "request_preview"]),
                )
            });
        }
    }
    Ok(())
}

/// `revoke`, `activate` or `deactivate`: the key's new status.
fn key_action(api: &Api, id: &str, action: &str, print: Print<'_>) -> Outcome {
    let key = api.call("POST", &format!("/admin/v1/keys/{id}/{action}"), Some(json!({})))?;
    print(&key, &|k| format!("{} ({}) is now {}.\n", text(&k["name"]), text(&k["id"]), text(&k["status"])));
    Ok(())
}

/// A created or regenerated key: the key alone on standard output (so `KEY=$(keygate keys create …)` works), what
/// it is on standard error; with `--json`, the whole answer.
fn shown_once(created: &Value, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(created).unwrap_or_default());
        return;
    }
    let record = &created["record"];
    match created["key"].as_str() {
        Some(key) => println!("{key}"),
        None => println!("{} {}", text(&created["api_key"]), text(&created["api_secret"])),
    }
    let _ = std::io::stdout().flush();
    eprintln!("Created {} ({}): shown once, keep it now.", text(&record["name"]), text(&record["id"]));
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn items(list: &Value, fields: &[&str]) -> Vec<Vec<String>> {
    list.as_array().into_iter().flatten().map(|item| fields.iter().map(|f| text(&item[*f])).collect()).collect()
}

/// `keygate scan`: every Keygate key in the paths (or standard input), by `keygate_shared::scan` (the gateway's own
/// parser and checksum: no look-alikes).
fn scan(paths: &[std::path::PathBuf], format: ScanFormat) -> Outcome {
    let mut files: Vec<(String, String)> = Vec::new();
    if paths.is_empty() {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Failure(e.to_string(), exit::USAGE))?;
        files.push(("-".to_owned(), text));
    }
    let mut pending: Vec<std::path::PathBuf> = paths.to_vec();
    while let Some(path) = pending.pop() {
        let meta = std::fs::metadata(&path).map_err(|e| Failure(format!("{}: {e}", path.display()), exit::USAGE))?;
        if meta.is_dir() {
            let entries =
                std::fs::read_dir(&path).map_err(|e| Failure(format!("{}: {e}", path.display()), exit::USAGE))?;
            let mut children: Vec<std::path::PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            children.retain(|c| {
                !matches!(c.file_name().and_then(|n| n.to_str()), Some(".git" | "node_modules" | "target"))
            });
            children.sort();
            children.reverse();
            pending.extend(children);
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| Failure(format!("{}: {e}", path.display()), exit::USAGE))?;
        // Binary files (a NUL early on) are not text a key is pasted into.
        if bytes.iter().take(8192).any(|b| *b == 0) {
            continue;
        }
        files.push((path.display().to_string(), String::from_utf8_lossy(&bytes).into_owned()));
    }
    let mut results = Vec::new();
    for (path, text) in &files {
        for found in keygate_shared::scan::find_keys(text) {
            results.push((path.clone(), found));
        }
    }
    match format {
        ScanFormat::Text => {
            for (path, f) in &results {
                println!("{path}:{}:{}: a {} Keygate key, {}", f.line, f.column, f.environment, f.masked);
            }
            if !results.is_empty() {
                eprintln!(
                    "keygate: {} key(s) found: revoke each in the console (or `keygate keys revoke <id>`) and create a new one.",
                    results.len()
                );
            }
        }
        ScanFormat::Sarif => {
            let sarif_results: Vec<Value> = results
                .iter()
                .map(|(path, f)| {
                    json!({
                        "ruleId": "keygate-api-key",
                        "level": "error",
                        "message": {"text": format!("A {} Keygate key ({}): revoke it and create a new one.", f.environment, f.masked)},
                        "locations": [{"physicalLocation": {
                            "artifactLocation": {"uri": path},
                            "region": {"startLine": f.line, "startColumn": f.column}
                        }}]
                    })
                })
                .collect();
            let sarif = json!({
                "version": "2.1.0",
                "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
                "runs": [{
                    "tool": {"driver": {
                        "name": "keygate scan",
                        "version": env!("CARGO_PKG_VERSION"),
                        "rules": [{
                            "id": "keygate-api-key",
                            "shortDescription": {"text": "A Keygate API key (kg_<env>_<id>_<secret><checksum>, checksum verified)"}
                        }]
                    }},
                    "results": sarif_results
                }]
            });
            println!("{}", serde_json::to_string_pretty(&sarif).unwrap_or_default());
        }
    }
    if results.is_empty() { Ok(()) } else { Err(Failure(String::new(), 1)) }
}
