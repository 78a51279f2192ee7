//! Test helpers that start real servers on free loopback ports in a temporary
//! directory and stop them when dropped. A missing server binary is a test failure
//! whose message names the install command; it never silently passes.
//!
//! Used by the integration tests and by `scripts/bench-prometheus.sh`'s binary-level
//! runs; nothing here is linked into `compass` itself.

mod alertmanager;
mod chromium;
mod postgres;

pub use alertmanager::{ALERTMANAGER_INSTALL, Alertmanager};
pub use chromium::{CHROME_ARGS, CHROMIUM_INSTALL, ChromeDriver, chromium_binary};
pub use postgres::{POSTGRES_INSTALL, Postgres};

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to get the Prometheus binaries on Debian.
pub const PROMETHEUS_INSTALL: &str = "apt-get install -y prometheus";

/// Find a binary: `$ENV_VAR` if set, else `name` on PATH.
fn binary(name: &str, env_var: &str) -> Result<PathBuf, String> {
    let bin = std::env::var_os(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(name));
    match Command::new(&bin).arg("--version").output() {
        Ok(out) if out.status.success() => Ok(bin),
        _ => Err(format!(
            "{name} not found (set {env_var} or install it: `{PROMETHEUS_INSTALL}`)"
        )),
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the loopback interface can bind an ephemeral port")
}

/// A real Prometheus serving a TSDB backfilled from an OpenMetrics file.
#[derive(Debug)]
pub struct Prometheus {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Backfill `openmetrics` with `promtool tsdb create-blocks-from openmetrics`, start
    /// `prometheus` on a free loopback port over those blocks, and wait until ready.
    pub fn start_with_openmetrics(openmetrics: &Path) -> Result<Self, String> {
        let promtool = binary("promtool", "PROMTOOL")?;
        let prometheus = binary("prometheus", "PROMETHEUS")?;
        let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let data = dir.path().join("data");
        let out = Command::new(&promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(openmetrics)
            .arg(&data)
            .output()
            .map_err(|e| format!("cannot run promtool: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "promtool could not backfill {}: {}",
                openmetrics.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            "global: {scrape_interval: 15s, evaluation_interval: 15s}\nscrape_configs: []\n",
        )
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let mut last_error = String::new();
        // The port is free when picked; another process could take it before
        // Prometheus binds, so try a few.
        for _ in 0..3 {
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("prometheus.log"))
                .map_err(|e| format!("cannot create the log file: {e}"))?;
            let mut child = Command::new(&prometheus)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--storage.tsdb.retention.time=100y")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("cannot start prometheus: {e}"))?;
            match wait_ready(port, &mut child, Duration::from_secs(30)) {
                Ok(()) => {
                    return Ok(Self {
                        url: format!("http://127.0.0.1:{port}"),
                        child,
                        dir,
                    });
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(dir.path().join("prometheus.log"))
                        .unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(5).collect();
                    last_error = format!("{e}; its log ends with: {:?}", tail);
                }
            }
        }
        Err(format!("prometheus did not start: {last_error}"))
    }

    /// The temporary directory holding the TSDB and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `GET /-/ready` until it answers 200, the process exits, or `timeout` passes.
fn wait_ready(port: u16, child: &mut Child, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("prometheus exited with {status}"));
        }
        if http_status(port, "/-/ready") == Some(200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("not ready after {timeout:?}"))
}

/// The status code of a plain `GET path` on 127.0.0.1:port, if it answers.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
