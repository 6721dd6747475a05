//! Who may read and who may act.
//!
//! - Reads on a loopback address are open to local users; on any other address they need the
//!   token or a console login, unless `admin.open_reads` says otherwise.
//! - Writes always need the token: as `Authorization: Bearer …` for the API and the CLI, or a
//!   console session, which is opened by entering the token once.
//! - The token comes from the environment variable `admin.token_env` names; failing that, it is
//!   generated on first start into `<data_dir>/admin-token` (mode 0600), where the CLI reads it.
//! - Tokens are compared in constant time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::config::{AdminConfig, ADMIN_TOKEN_FILE};
use crate::store::Actor;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "yuqing_session";
/// The header with which an API caller names themselves for the audit trail.
pub const ACTOR_HEADER: &str = "x-yuqing-actor";
/// How many console sessions are kept; the oldest is dropped beyond that, so a script that logs
/// in in a loop cannot grow memory.
const MAX_SESSIONS: usize = 256;

/// Where the token came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Env(String),
    File(PathBuf),
}

/// A logged-in console user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub name: String,
    /// Sent back in every form; a cross-site page cannot read it, so it cannot forge a post.
    pub csrf: String,
}

#[derive(Clone)]
pub struct Auth {
    token: Arc<String>,
    pub source: TokenSource,
    reads_open: bool,
    sessions: Arc<Mutex<Sessions>>,
}

#[derive(Default)]
struct Sessions {
    by_id: HashMap<String, (u64, Session)>,
    /// What the last action did, shown once on the next page (post, redirect, get).
    flashes: HashMap<String, String>,
    next: u64,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No credentials, or wrong ones: 401.
    Unauthenticated(&'static str),
}

impl Auth {
    /// Loads or creates the token and decides whether reads are open.
    pub fn new(config: &AdminConfig, data_dir: &Path, listen: SocketAddr) -> Result<Auth> {
        let (token, source) = load_or_create_token(config, data_dir)?;
        Ok(Auth {
            token: Arc::new(token),
            source,
            reads_open: listen.ip().is_loopback() || config.open_reads,
            sessions: Arc::new(Mutex::new(Sessions::default())),
        })
    }

    /// An `Auth` with a known token, for tests.
    pub fn with_token(token: &str, reads_open: bool) -> Auth {
        Auth {
            token: Arc::new(token.to_string()),
            source: TokenSource::Env("test".into()),
            reads_open,
            sessions: Arc::new(Mutex::new(Sessions::default())),
        }
    }

    pub fn reads_open(&self) -> bool {
        self.reads_open
    }

    /// Whether `candidate` is the token, in time that does not depend on where they differ.
    pub fn token_matches(&self, candidate: &str) -> bool {
        bool::from(candidate.as_bytes().ct_eq(self.token.as_bytes()))
    }

    /// Whether a form's CSRF token is this session's, compared in constant time.
    pub fn csrf_matches(&self, session: &Session, candidate: &str) -> bool {
        !candidate.is_empty() && bool::from(candidate.as_bytes().ct_eq(session.csrf.as_bytes()))
    }

    /// May this request read? Open reads, the bearer token, or a console session.
    pub fn check_read(&self, headers: &HeaderMap) -> Result<(), Denied> {
        if self.reads_open || self.bearer_ok(headers) || self.session(headers).is_some() {
            Ok(())
        } else {
            Err(Denied::Unauthenticated(
                "reads on this address need the admin token (Authorization: Bearer …) or a console login",
            ))
        }
    }

    /// May this API request write, and as whom? The bearer token is required; the name comes
    /// from the `X-Yuqing-Actor` header, else `api`.
    pub fn check_api_write(&self, headers: &HeaderMap) -> Result<Actor, Denied> {
        if headers.get(axum::http::header::AUTHORIZATION).is_none() {
            return Err(Denied::Unauthenticated(
                "writes need the admin token: Authorization: Bearer <token>",
            ));
        }
        if !self.bearer_ok(headers) {
            return Err(Denied::Unauthenticated("the admin token is wrong"));
        }
        let name = headers
            .get(ACTOR_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(clean_name)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "api".to_string());
        Ok(Actor { id: 0, name })
    }

    fn bearer_ok(&self, headers: &HeaderMap) -> bool {
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| self.token_matches(t.trim()))
    }

    /// Opens a console session for `name`; returns its id (the cookie value).
    pub fn login(&self, name: &str) -> (String, Session) {
        let id = random_hex(32);
        let session = Session {
            name: clean_name(name),
            csrf: random_hex(32),
        };
        let mut sessions = self.sessions.lock().expect("sessions lock");
        sessions.next += 1;
        let serial = sessions.next;
        sessions.by_id.insert(id.clone(), (serial, session.clone()));
        if sessions.by_id.len() > MAX_SESSIONS {
            if let Some(oldest) = sessions
                .by_id
                .iter()
                .min_by_key(|(_, (serial, _))| *serial)
                .map(|(id, _)| id.clone())
            {
                sessions.by_id.remove(&oldest);
                sessions.flashes.remove(&oldest);
            }
        }
        (id, session)
    }

    pub fn logout(&self, headers: &HeaderMap) {
        if let Some(id) = session_cookie(headers) {
            let mut sessions = self.sessions.lock().expect("sessions lock");
            sessions.by_id.remove(&id);
            sessions.flashes.remove(&id);
        }
    }

    /// Keeps a message for this session's next page.
    pub fn set_flash(&self, headers: &HeaderMap, message: String) {
        if let Some(id) = session_cookie(headers) {
            let mut sessions = self.sessions.lock().expect("sessions lock");
            if sessions.by_id.contains_key(&id) {
                sessions.flashes.insert(id, message);
            }
        }
    }

    /// The message kept for this session, once.
    pub fn take_flash(&self, headers: &HeaderMap) -> Option<String> {
        let id = session_cookie(headers)?;
        self.sessions
            .lock()
            .expect("sessions lock")
            .flashes
            .remove(&id)
    }

    /// The console session this request's cookie names, if any.
    pub fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let id = session_cookie(headers)?;
        self.sessions
            .lock()
            .expect("sessions lock")
            .by_id
            .get(&id)
            .map(|(_, s)| s.clone())
    }
}

/// A person's name as given, cut to something that fits a timeline line.
fn clean_name(name: &str) -> String {
    name.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect()
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes).expect("the OS random source is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The token file's path for a data folder.
pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(ADMIN_TOKEN_FILE)
}

fn load_or_create_token(config: &AdminConfig, data_dir: &Path) -> Result<(String, TokenSource)> {
    if let Ok(token) = std::env::var(&config.token_env) {
        if !token.trim().is_empty() {
            return Ok((
                token.trim().to_string(),
                TokenSource::Env(config.token_env.clone()),
            ));
        }
    }
    let path = token_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => {
            return Ok((token.trim().to_string(), TokenSource::File(path)))
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the admin token {}", path.display()))
        }
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data folder {}", data_dir.display()))?;
    let token = random_hex(24);
    write_private(&path, &token)
        .with_context(|| format!("cannot write the admin token to {}", path.display()))?;
    Ok((token, TokenSource::File(path)))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Reads the token the CLI should send: `$token_env`, else the data folder's token file.
pub fn client_token(config: &AdminConfig, data_dir: &Path) -> Option<String> {
    std::env::var(&config.token_env)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| std::fs::read_to_string(token_path(data_dir)).ok())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn admin_config(env: &str) -> AdminConfig {
        AdminConfig {
            enabled: true,
            listen: "127.0.0.1:0".parse().unwrap(),
            public_url: "http://127.0.0.1:0".into(),
            time_zone: chrono_tz::Asia::Shanghai,
            token_env: env.into(),
            open_reads: false,
            language: "zh".into(),
        }
    }

    #[test]
    fn a_generated_token_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let config = admin_config("YUQING_TEST_TOKEN_NEVER_SET");
        let listen = "127.0.0.1:0".parse().unwrap();
        let first = Auth::new(&config, dir.path(), listen).unwrap();
        let path = token_path(dir.path());
        assert_eq!(first.source, TokenSource::File(path.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let token = std::fs::read_to_string(&path).unwrap();
        assert!(token.trim().len() >= 32);
        let second = Auth::new(&config, dir.path(), listen).unwrap();
        assert!(
            second.token_matches(token.trim()),
            "the same token after a restart"
        );
        assert_eq!(
            client_token(&config, dir.path()).as_deref(),
            Some(token.trim())
        );
    }

    #[test]
    fn reads_are_open_on_loopback_only_unless_configured() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = admin_config("YUQING_TEST_TOKEN_NEVER_SET");
        let public: SocketAddr = "0.0.0.0:8847".parse().unwrap();
        assert!(
            Auth::new(&config, dir.path(), "127.0.0.1:1".parse().unwrap())
                .unwrap()
                .reads_open()
        );
        assert!(!Auth::new(&config, dir.path(), public).unwrap().reads_open());
        config.open_reads = true;
        assert!(Auth::new(&config, dir.path(), public).unwrap().reads_open());
    }

    #[test]
    fn writes_need_the_right_token_and_name_the_actor() {
        let auth = Auth::with_token("s3cret", false);
        let mut headers = HeaderMap::new();
        assert!(auth.check_api_write(&headers).is_err());
        assert!(auth.check_read(&headers).is_err());
        headers.insert("authorization", HeaderValue::from_static("Bearer wrong"));
        assert_eq!(
            auth.check_api_write(&headers),
            Err(Denied::Unauthenticated("the admin token is wrong"))
        );
        headers.insert("authorization", HeaderValue::from_static("Bearer s3cret"));
        assert_eq!(auth.check_api_write(&headers).unwrap().name, "api");
        headers.insert(ACTOR_HEADER, HeaderValue::from_static("cli"));
        assert_eq!(auth.check_api_write(&headers).unwrap().name, "cli");
        assert!(auth.check_read(&headers).is_ok());
        assert!(!auth.token_matches("s3cre"));
        assert!(!auth.token_matches("s3cret "));
    }

    #[test]
    fn sessions_are_found_by_cookie_and_end_at_logout() {
        let auth = Auth::with_token("t", false);
        let (id, session) = auth.login("  alice\u{7} ");
        assert_eq!(session.name, "alice");
        let mut headers = HeaderMap::new();
        headers.insert(
            "cookie",
            HeaderValue::from_str(&format!("a=b; {SESSION_COOKIE}={id}")).unwrap(),
        );
        assert_eq!(auth.session(&headers), Some(session));
        assert!(auth.check_read(&headers).is_ok());
        auth.logout(&headers);
        assert_eq!(auth.session(&headers), None);
    }

    #[test]
    fn sessions_are_bounded() {
        let auth = Auth::with_token("t", false);
        let (first, _) = auth.login("a");
        for i in 0..MAX_SESSIONS {
            auth.login(&format!("u{i}"));
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            "cookie",
            HeaderValue::from_str(&format!("{SESSION_COOKIE}={first}")).unwrap(),
        );
        assert_eq!(auth.session(&headers), None, "the oldest was dropped");
    }
}
