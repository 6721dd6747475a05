//! A real headless Chromium driven through ChromeDriver (WebDriver, via fantoccini), for tests
//! of the web console. Everything stays on loopback: ChromeDriver listens on a free 127.0.0.1
//! port, the browser gets a fresh profile and no background networking.
//!
//! A missing or broken Chromium or ChromeDriver is a test failure (a panic saying what is
//! missing and how to install it), never a skip.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use tempfile::TempDir;

/// What every panic about a missing or broken browser ends with.
pub const INSTALL_HINT: &str = "install them with `apt-get install chromium chromium-driver` \
     (or run `.ci/run`, which does), or point YUQING_CHROMEDRIVER / YUQING_CHROMIUM at the binaries";

/// Chromium flags: headless as root in a container, and nothing that reaches out to Google
/// (the test network refuses it). `--user-data-dir` and the window size are added per browser.
pub const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    // Test servers are on loopback: a proxy from the environment must not sit in between.
    "--no-proxy-server",
];

/// How often the harness polls (ChromeDriver's /status, `wait_for`).
const POLL: Duration = Duration::from_millis(50);
/// How long ChromeDriver may take to answer ready on /status.
const DRIVER_READY: Duration = Duration::from_secs(20);
/// How long ChromeDriver may take to launch Chromium (slow on a loaded 2-core machine).
const SESSION_START: Duration = Duration::from_secs(60);
/// Ports tried before giving up when ChromeDriver exits instead of listening.
const PORT_ATTEMPTS: usize = 5;

/// Where to find the two binaries. `None` searches: ChromeDriver as `chromedriver` on PATH, then
/// /usr/bin/chromedriver; Chromium as `chromium`, `chromium-browser` or `google-chrome` on PATH.
#[derive(Clone, Debug, Default)]
pub struct BrowserPaths {
    pub chromedriver: Option<PathBuf>,
    pub chromium: Option<PathBuf>,
}

impl BrowserPaths {
    /// The overrides in YUQING_CHROMEDRIVER and YUQING_CHROMIUM (unset or empty: search).
    pub fn from_env() -> BrowserPaths {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        BrowserPaths {
            chromedriver: var("YUQING_CHROMEDRIVER"),
            chromium: var("YUQING_CHROMIUM"),
        }
    }
}

/// A ChromeDriver process in its own process group; dropping it kills the whole group
/// (ChromeDriver and any Chromium it launched) and reaps ChromeDriver.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) takes plain integers; a negative pid names the process group
            // that `process_group(0)` made this child the leader of.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session. Dropping it (for example while a test panics) ends the session
/// and kills ChromeDriver and Chromium; `close` does the same politely and reports errors.
pub struct Browser {
    pub client: Client,
    session_id: Option<String>,
    driver: Driver,
    /// Chromium's `--user-data-dir` and crash dumps, ChromeDriver's output; removed last.
    profile: TempDir,
}

impl Browser {
    /// Starts ChromeDriver and Chromium found through [`BrowserPaths::from_env`].
    pub async fn start() -> Browser {
        Browser::start_with(BrowserPaths::from_env()).await
    }

    /// Starts ChromeDriver and Chromium from the given paths. Panics, naming what is missing
    /// and how to install it, when either cannot be found or started.
    pub async fn start_with(paths: BrowserPaths) -> Browser {
        let chromedriver = find_binary(
            "ChromeDriver",
            "YUQING_CHROMEDRIVER",
            paths.chromedriver,
            &["chromedriver"],
            &["/usr/bin/chromedriver"],
        );
        let chromium = find_binary(
            "Chromium",
            "YUQING_CHROMIUM",
            paths.chromium,
            &["chromium", "chromium-browser", "google-chrome"],
            &[],
        );
        let profile = tempfile::Builder::new()
            .prefix("yuqing-browser-")
            .tempdir()
            .expect("create a temporary browser profile directory");
        let driver = start_driver(&chromedriver, profile.path()).await;

        let user_data = profile.path().join("user-data");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push("--window-size=1280,900".to_string());
        args.push(format!("--user-data-dir={}", user_data.display()));
        let mut caps = Capabilities::new();
        caps.insert("browserName".into(), "chrome".into());
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": chromium, "args": args }),
        );
        let url = format!("http://127.0.0.1:{}", driver.port);
        let connect = async {
            ClientBuilder::new(HttpConnector::new())
                .capabilities(caps)
                .connect(&url)
                .await
        };
        let client = match tokio::time::timeout(SESSION_START, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => panic!(
                "ChromeDriver {} could not start Chromium {}: {e}\nChromeDriver output:\n{}\n{INSTALL_HINT}",
                chromedriver.display(),
                chromium.display(),
                driver_output(profile.path()),
            ),
            Err(_) => panic!(
                "ChromeDriver {} did not start Chromium {} within {SESSION_START:?}\nChromeDriver output:\n{}",
                chromedriver.display(),
                chromium.display(),
                driver_output(profile.path()),
            ),
        };
        let session_id = client.session_id().await.ok().flatten();
        Browser {
            client,
            session_id,
            driver,
            profile,
        }
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        if let Err(e) = self.client.goto(url).await {
            panic!("browser could not open {url}: {e}");
        }
    }

    /// The first element matching `css`, now (no waiting).
    pub async fn find(&self, css: &str) -> Element {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element,
            Err(e) => panic!("no element `{css}` on {}: {e}", self.url().await),
        }
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        if let Err(e) = self.find(css).await.click().await {
            panic!("could not click `{css}`: {e}");
        }
    }

    /// Clears the input matching `css` and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        if let Err(e) = input.clear().await {
            panic!("could not clear `{css}`: {e}");
        }
        if let Err(e) = input.send_keys(text).await {
            panic!("could not type into `{css}`: {e}");
        }
    }

    /// The rendered text of the first element matching `css`.
    pub async fn text_of(&self, css: &str) -> String {
        match self.find(css).await.text().await {
            Ok(text) => text,
            Err(e) => panic!("could not read the text of `{css}`: {e}"),
        }
    }

    /// The current page's HTML as the browser serializes it.
    pub async fn page_source(&self) -> String {
        match self.client.source().await {
            Ok(html) => html,
            Err(e) => panic!("could not read the page source: {e}"),
        }
    }

    /// The current URL (for messages; "?" when even that fails).
    pub async fn url(&self) -> String {
        match self.client.current_url().await {
            Ok(url) => url.to_string(),
            Err(_) => "?".to_string(),
        }
    }

    /// Writes a PNG screenshot of the viewport to `path`.
    pub async fn screenshot(&self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        let png = match self.client.screenshot().await {
            Ok(png) => png,
            Err(e) => panic!("could not take a screenshot: {e}"),
        };
        if let Err(e) = std::fs::write(path, png) {
            panic!("could not write the screenshot to {}: {e}", path.display());
        }
    }

    /// Polls until an element matches `css` and returns it; panics after `timeout`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => return element,
                Err(e) if e.is_no_such_element() => {}
                Err(e) => panic!("looking for `{css}`: {e}"),
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for element `{css}` on {}",
                    self.url().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Ends the WebDriver session (Chromium quits), then kills ChromeDriver.
    pub async fn close(mut self) {
        self.session_id = None;
        if let Err(e) = self.client.clone().close().await {
            panic!("could not end the browser session: {e}");
        }
        // Drop kills ChromeDriver and removes the profile.
    }

    /// ChromeDriver's process id (its process group holds Chromium too).
    pub fn driver_pid(&self) -> u32 {
        self.driver.child.id()
    }

    /// The temporary directory holding the profile and ChromeDriver's output.
    pub fn profile_dir(&self) -> &Path {
        self.profile.path()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Not closed (a test panicked or returned early): ask ChromeDriver to quit Chromium so
        // it exits and is reaped normally, then `Driver` kills whatever is left.
        if let Some(id) = self.session_id.take() {
            delete_session_blocking(self.driver.port, &id);
        }
    }
}

/// `DELETE /session/{id}` over a plain socket: Drop cannot await the async client.
fn delete_session_blocking(port: u16, id: &str) {
    let Ok(mut stream) =
        TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(1))
    else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return;
    }
    // ChromeDriver answers once Chromium has quit, so the end of the answer's headers is the
    // signal; the status does not matter. (It keeps the socket open despite `Connection: close`,
    // so reading to the end would wait for the timeout.)
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// The binary given, else the first of `names` on PATH, else the first of `fallbacks` that
/// exists; panics with what is missing and how to install it.
fn find_binary(
    what: &str,
    var: &str,
    given: Option<PathBuf>,
    names: &[&str],
    fallbacks: &[&str],
) -> PathBuf {
    if let Some(path) = given {
        if is_executable(&path) {
            return path;
        }
        panic!(
            "browser tests need {what}, but it was not found: {} (from {var} or BrowserPaths) \
             is not an executable file; {INSTALL_HINT}",
            path.display()
        );
    }
    if let Some(path) = names.iter().find_map(|name| on_path(name)) {
        return path;
    }
    if let Some(path) = fallbacks
        .iter()
        .map(PathBuf::from)
        .find(|p| is_executable(p))
    {
        return path;
    }
    let mut looked = names.join(", ");
    for fallback in fallbacks {
        looked.push_str(", ");
        looked.push_str(fallback);
    }
    panic!(
        "browser tests need {what}, but it was not found: {var} is not set and none of \
         {looked} is on PATH; {INSTALL_HINT}"
    );
}

/// A loopback port that was free a moment ago (the OS picked it for a listener now dropped).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0 to find a free port")
        .port()
}

fn log_path(dir: &Path, attempt: usize) -> PathBuf {
    dir.join(format!("chromedriver-{attempt}.log"))
}

/// Everything ChromeDriver printed, over all attempts (for panic messages).
fn driver_output(dir: &Path) -> String {
    let mut out = String::new();
    for attempt in 1..=PORT_ATTEMPTS {
        if let Ok(text) = std::fs::read_to_string(log_path(dir, attempt)) {
            out.push_str(&text);
        }
    }
    out
}

/// Starts ChromeDriver on a free port and waits for `/status` to say ready. When ChromeDriver
/// exits instead (the port was taken in between), it is tried again on another port.
async fn start_driver(chromedriver: &Path, dir: &Path) -> Driver {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("build the HTTP client for ChromeDriver's /status");
    let mut exits = Vec::new();
    for attempt in 1..=PORT_ATTEMPTS {
        let port = free_port();
        let log = File::create(log_path(dir, attempt)).expect("create ChromeDriver's log file");
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            // Chromium's crash handler would otherwise keep its database in ~/.config/chromium.
            .env("BREAKPAD_DUMP_LOCATION", dir.join("crash"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone ChromeDriver's log file"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "browser tests need ChromeDriver, but {} could not be started: {e}; \
                     {INSTALL_HINT}",
                    chromedriver.display()
                )
            });
        let mut driver = Driver { child, port };
        let deadline = Instant::now() + DRIVER_READY;
        loop {
            if let Ok(Some(status)) = driver.child.try_wait() {
                exits.push(format!("port {port}: {status}"));
                break;
            }
            if driver_ready(&http, port).await {
                return driver;
            }
            if Instant::now() >= deadline {
                panic!(
                    "ChromeDriver {} did not answer ready on http://127.0.0.1:{port}/status \
                     within {DRIVER_READY:?}\nChromeDriver output:\n{}",
                    chromedriver.display(),
                    driver_output(dir),
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
    panic!(
        "ChromeDriver {} exited instead of listening, {PORT_ATTEMPTS} times ({})\n\
         ChromeDriver output:\n{}\n{INSTALL_HINT}",
        chromedriver.display(),
        exits.join("; "),
        driver_output(dir),
    );
}

/// Whether ChromeDriver on `port` answers `/status` with `"ready": true`.
async fn driver_ready(http: &reqwest::Client, port: u16) -> bool {
    let Ok(response) = http
        .get(format!("http://127.0.0.1:{port}/status"))
        .send()
        .await
    else {
        return false;
    };
    match response.json::<serde_json::Value>().await {
        Ok(status) => status["value"]["ready"] == true,
        Err(_) => false,
    }
}
