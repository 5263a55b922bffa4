//! The pieces of the `keygate` command that need no network: where credentials live, how answers become exit codes
//! and tables. `main.rs` is the command line and the HTTP calls.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Exit codes scripts can branch on.
pub mod exit {
    pub const OK: u8 = 0;
    /// Anything else (a transport error, an answer that could not be read).
    pub const FAILED: u8 = 1;
    /// Bad arguments (clap's own).
    pub const USAGE: u8 = 2;
    /// Not signed in, or the token is not valid (401).
    pub const UNAUTHENTICATED: u8 = 3;
    /// Signed in, not allowed (403).
    pub const FORBIDDEN: u8 = 4;
    pub const NOT_FOUND: u8 = 5;
    /// A conflict: the thing exists, is in use, or a bound was reached (409).
    pub const CONFLICT: u8 = 6;
    /// The request was refused as invalid (400, 413, 422).
    pub const INVALID: u8 = 7;
    pub const RATE_LIMITED: u8 = 8;
    /// Keygate could not answer (5xx) or could not be reached.
    pub const UNAVAILABLE: u8 = 9;
    /// `verify`: the key is not valid (the answer says why).
    pub const KEY_NOT_VALID: u8 = 10;

    /// The exit code of an HTTP status that is not a success.
    pub fn of_status(status: u16) -> u8 {
        match status {
            401 => UNAUTHENTICATED,
            403 => FORBIDDEN,
            404 => NOT_FOUND,
            409 => CONFLICT,
            400 | 413 | 422 => INVALID,
            429 => RATE_LIMITED,
            500..=599 => UNAVAILABLE,
            _ => FAILED,
        }
    }
}

/// What `keygate login` keeps: the deployment's address and the console token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub url: String,
    pub token: String,
}

/// The folder of the CLI's configuration: `$KEYGATE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/keygate`, else
/// `$HOME/.config/keygate`.
pub fn config_dir(var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(dir) = var("KEYGATE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("keygate"));
    }
    var("HOME").filter(|d| !d.is_empty()).map(|home| PathBuf::from(home).join(".config/keygate"))
}

/// Writes the credentials readable by their owner only (0600), replacing what was there.
pub fn save(dir: &Path, credentials: &Credentials) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("credentials.json");
    let _ = std::fs::remove_file(&path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path)?;
    file.write_all(serde_json::to_string_pretty(credentials).unwrap_or_default().as_bytes())?;
    Ok(path)
}

pub fn load(dir: &Path) -> Option<Credentials> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("credentials.json")).ok()?).ok()
}

/// A plain-text table: a header row and rows, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> =
            cells.iter().enumerate().map(|(i, c)| format!("{c:<width$}", width = widths[i])).collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_exit_codes_scripts_can_branch_on() {
        assert_eq!(exit::of_status(401), exit::UNAUTHENTICATED);
        assert_eq!(exit::of_status(422), exit::INVALID);
        assert_eq!(exit::of_status(409), exit::CONFLICT);
        assert_eq!(exit::of_status(503), exit::UNAVAILABLE);
        assert_eq!(exit::of_status(418), exit::FAILED);
    }

    #[test]
    fn tables_pad_columns_to_their_widest_cell() {
        let rows = vec![vec!["F854DS4QEVHXS4".to_owned(), "a".to_owned()], vec!["x".to_owned(), "longer".to_owned()]];
        assert_eq!(table(&["ID", "NAME"], &rows), "ID              NAME\nF854DS4QEVHXS4  a\nx               longer\n");
    }

    #[test]
    fn credentials_are_kept_for_their_owner_only() {
        let dir = std::env::temp_dir().join(format!("keygate-cli-test-{}", std::process::id()));
        let saved = Credentials { url: "http://127.0.0.1:1".into(), token: "kg_live_x".into() };
        let path = save(&dir, &saved).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(load(&dir), Some(saved));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_config_folder_follows_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        assert_eq!(config_dir(env(&[("HOME", "/h")])), Some(PathBuf::from("/h/.config/keygate")));
        assert_eq!(config_dir(env(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "/x")])), Some(PathBuf::from("/x/keygate")));
        assert_eq!(config_dir(env(&[("HOME", "/h"), ("KEYGATE_CONFIG_DIR", "/k")])), Some(PathBuf::from("/k")));
    }
}
