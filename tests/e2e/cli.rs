//! The `keygate` command line against real workerd: every command, its `--json` output parsed, its exit codes, and
//! the token kept with 0600 permissions.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use keygate_e2e::{Console, Value, eventually, gateway, json, root, shared};

/// The CLI, built once for the suite.
fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "keygate-cli", "--locked", "--quiet"])
            .current_dir(root())
            .status()
            .expect("cargo");
        assert!(status.success(), "building the CLI");
        root().join("target/debug/keygate")
    })
}

/// One run of `keygate`: exit code, standard output, standard error.
struct Run {
    code: i32,
    out: String,
    err: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.out).unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.out, self.err))
    }
}

fn keygate(config: &Path, env: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> Run {
    let mut command = Command::new(binary());
    command
        .args(args)
        .env_clear()
        .env("KEYGATE_CONFIG_DIR", config)
        .env("KEYGATE_URL", &shared().base)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("the CLI starts");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.unwrap_or("").as_bytes()).expect("stdin");
    }
    let output = child.wait_with_output().expect("the CLI ends");
    Run {
        code: output.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&output.stdout).into_owned(),
        err: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn config_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keygate-cli-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn login_keeps_the_token_for_its_owner_and_refuses_a_bad_one() {
    let owner = Console::shared_owner();
    let dir = config_dir("login");
    let refused = keygate(&dir, &[("KEYGATE_TOKEN", "kg_live_AAAAAAAAAAAAAA_notavalidsecretatall")], &["login"], None);
    assert_eq!(refused.code, 3, "{}", refused.err);
    assert!(!dir.join("credentials.json").exists(), "a refused token is not kept");
    let run = keygate(&dir, &[], &["whoami"], None);
    assert_eq!(run.code, 3, "not signed in: {}", run.err);

    // From standard input (as a prompt would read it), never from an argument.
    let signed = keygate(&dir, &[], &["login"], Some(&format!("{}\n", owner.token)));
    assert_eq!(signed.code, 0, "{}", signed.err);
    assert!(signed.out.contains("owner@acme.test"), "{}", signed.out);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("credentials.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let who = keygate(&dir, &[], &["--json", "whoami"], None);
    assert_eq!(who.code, 0, "{}", who.err);
    assert_eq!(who.json()["user"]["id"], owner.user.as_str());
    assert_eq!(keygate(&dir, &[], &["logout"], None).code, 0);
    assert_eq!(keygate(&dir, &[], &["whoami"], None).code, 3);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_key_command_works_against_real_workerd() {
    let owner = Console::shared_owner();
    let dir = config_dir("keys");
    let token = [("KEYGATE_TOKEN", owner.token.as_str())];
    let run = |args: &[&str]| keygate(&dir, &token, args, None);

    let project = format!("cli-{}", std::process::id());
    assert_eq!(run(&["projects", "create", &project, "CLI project"]).code, 0);
    let projects = run(&["--json", "projects", "list"]).json();
    assert!(projects["projects"].as_array().unwrap().iter().any(|p| p["slug"] == project.as_str()));
    assert!(run(&["projects", "list"]).out.contains(&project));

    // The key alone on standard output, so `KEY=$(keygate keys create …)` works.
    let created =
        run(&["keys", "create", "--name", "from the cli", "--project", &project, "--permission", "data:read"]);
    assert_eq!(created.code, 0, "{}", created.err);
    let key = created.out.trim().to_owned();
    assert_eq!(created.out.lines().count(), 1, "{}", created.out);
    assert!(key.starts_with(&format!("{project}:kg_live_")), "{key}");
    assert!(created.err.contains("shown once"));
    assert_eq!(gateway(&shared().base, "GET", "/data/cli", &key).status, 200);
    let id = key.rsplit(':').next().unwrap()[8..22].to_owned();

    let listed = run(&["--json", "keys", "list", "--project", &project]).json();
    assert_eq!(listed["keys"][0]["id"], id.as_str());
    let table = run(&["keys", "list", "--project", &project]).out;
    assert!(table.starts_with("ID ") && table.contains(&id) && table.contains("from the cli"), "{table}");
    let shown = run(&["keys", "show", &id]);
    assert!(shown.out.contains("data:read") && shown.out.contains("active"), "{}", shown.out);
    assert_eq!(run(&["--json", "keys", "show", &id]).json()["name"], "from the cli");
    eventually("usage counted", || run(&["--json", "keys", "usage", &id]).json()["total"].as_u64() >= Some(1));
    assert_eq!(run(&["--json", "keys", "errors", &id]).json()["errors"], json!([]));

    // Regenerate prints the new key once; it works and the old one stops.
    let regenerated = run(&["keys", "regenerate", &id]);
    assert_eq!(regenerated.code, 0, "{}", regenerated.err);
    let fresh = regenerated.out.trim().to_owned();
    assert_ne!(fresh, key);
    eventually("the new secret works", || gateway(&shared().base, "GET", "/data/cli", &fresh).status == 200);

    for (action, status) in [("revoke", "inactive"), ("activate", "active"), ("deactivate", "deactivated")] {
        let done = run(&["--json", "keys", action, &id]);
        assert_eq!(done.code, 0, "{action}: {}", done.err);
        assert_eq!(done.json()["status"], status, "{action}");
    }
    assert!(run(&["keys", "revoke", &id]).code != 0, "a deactivated key is final");
    assert_eq!(run(&["keys", "delete", &id]).code, 0);
    assert_eq!(run(&["keys", "show", &id]).code, 5, "gone: not found");

    // Exit codes scripts can branch on.
    let invalid = run(&["keys", "create", "--name", "x", "--environment", "moon"]);
    assert_eq!(invalid.code, 7, "{}", invalid.err);
    assert_eq!(run(&["keys", "create", "--name", "x", "--rate-limit", "lots"]).code, 2);
    assert_eq!(keygate(&dir, &[], &["--url", "http://127.0.0.1:9", "--json", "whoami"], None).code, 3);
    let unreachable = keygate(&dir, &token, &["--url", "http://127.0.0.1:9", "whoami"], None);
    assert_eq!(unreachable.code, 9, "{}", unreachable.err);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn members_audit_verify_and_completions() {
    let owner = Console::shared_owner();
    let dir = config_dir("misc");
    let token = [("KEYGATE_TOKEN", owner.token.as_str())];
    let members = keygate(&dir, &token, &["--json", "members"], None).json();
    assert!(members["members"].as_array().unwrap().iter().any(|m| m["id"] == owner.user.as_str()));
    assert!(keygate(&dir, &token, &["members"], None).out.contains("owner@acme.test"));
    let audit = keygate(&dir, &token, &["--json", "audit"], None).json();
    assert!(!audit["events"].as_array().unwrap().is_empty());

    let (service, _, _) =
        owner.create_key(&json!({"name": "cli verifier", "environment": "live", "permissions": ["keys:verify"]}));
    let (key, _, _) =
        owner.create_key(&json!({"name": "verified", "environment": "live", "permissions": ["data:read"]}));
    let with_service = [("KEYGATE_SERVICE_KEY", service.as_str())];
    let valid = keygate(&dir, &with_service, &["verify", "--permission", "data:read"], Some(&format!("{key}\n")));
    assert_eq!(valid.code, 0, "{} {}", valid.out, valid.err);
    assert!(valid.out.starts_with("valid: VALID"), "{}", valid.out);
    let lacking = keygate(&dir, &with_service, &["--json", "verify", "--permission", "admin:write"], Some(&key));
    assert_eq!(lacking.code, 10, "{}", lacking.err);
    assert_eq!(lacking.json()["code"], "INSUFFICIENT_PERMISSIONS");
    assert_eq!(keygate(&dir, &[], &["verify"], Some(&key)).code, 3, "no service key");

    let completions = keygate(&dir, &[], &["completions", "bash"], None);
    assert_eq!(completions.code, 0);
    assert!(completions.out.contains("_keygate()"), "{}", &completions.out[..200.min(completions.out.len())]);
    let help = keygate(&dir, &[], &["--help"], None);
    assert!(help.out.contains("Examples:") && help.out.contains("Exit codes:"));
}

/// `keygate scan`: keys in files, folders and standard input, confirmed by their checksum, masked in the output
/// (text and SARIF), exit 1 when any is found; look-alikes, binary files and dependency folders are not reported.
#[test]
fn scan_finds_keys_by_their_checksum_and_never_prints_the_secret() {
    let dir = config_dir("scan");
    let tree = dir.join("repo");
    std::fs::create_dir_all(tree.join("src")).unwrap();
    std::fs::create_dir_all(tree.join("node_modules/pkg")).unwrap();
    let key = keygate_shared::ApiKey::generate(keygate_shared::Environment::Live).unwrap().expose();
    let secret = &key[key.len() - 38..];
    std::fs::write(tree.join("src/config.js"), format!("// settings\n\nconst token = \"acme-shop:{key}\";\n")).unwrap();
    let look_alike = format!("{}{}", &key[..key.len() - 1], if key.ends_with('A') { 'B' } else { 'A' });
    std::fs::write(tree.join("src/fake.txt"), format!("kg_live_ but not a key: {look_alike}\n")).unwrap();
    std::fs::write(tree.join("node_modules/pkg/index.js"), &key).unwrap();
    std::fs::write(tree.join("src/blob.bin"), [b"\0\0".as_slice(), key.as_bytes()].concat()).unwrap();

    let found = keygate(&dir, &[], &["scan", tree.to_str().unwrap()], None);
    assert_eq!(found.code, 1, "{}{}", found.out, found.err);
    let lines: Vec<&str> = found.out.lines().collect();
    assert_eq!(lines.len(), 1, "{}", found.out);
    assert!(lines[0].ends_with(&format!("src/config.js:3:26: a live Keygate key, {}_…", &key[..22])), "{}", lines[0]);
    assert!(!found.out.contains(secret) && !found.err.contains(secret), "the secret is never printed");

    let sarif = keygate(&dir, &[], &["scan", "--format", "sarif", tree.to_str().unwrap()], None);
    assert_eq!(sarif.code, 1);
    let report = sarif.json();
    assert_eq!(report["version"], "2.1.0");
    let result = &report["runs"][0]["results"][0];
    assert_eq!(result["locations"][0]["physicalLocation"]["region"]["startLine"], 3);
    assert!(!sarif.out.contains(secret));

    let stdin = keygate(&dir, &[], &["scan"], Some(&format!("export KEY={key}\n")));
    assert_eq!((stdin.code, stdin.out.starts_with("-:1:12: a live Keygate key")), (1, true), "{}", stdin.out);
    assert_eq!(keygate(&dir, &[], &["scan"], Some("nothing to see\n")).code, 0);
    assert_eq!(keygate(&dir, &[], &["scan", dir.join("missing").to_str().unwrap()], None).code, 2);
    let _ = std::fs::remove_dir_all(dir);
}
