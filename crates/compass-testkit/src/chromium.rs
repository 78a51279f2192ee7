//! Headless Chromium for UI tests: `chromedriver` on a free loopback port, and the
//! Chromium binary and flags that work on a machine without network (no background
//! networking, no sync, no component updates) and as root (`--no-sandbox`).

use crate::{free_port, http_status};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to get Chromium and its driver on Debian.
pub const CHROMIUM_INSTALL: &str = "apt-get install -y chromium chromium-driver fonts-dejavu-core";

/// Flags for a headless Chromium here.
pub const CHROME_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
];

/// The Chromium binary: `$CHROMIUM`, else /usr/bin/chromium.
pub fn chromium_binary() -> Result<PathBuf, String> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: `{CHROMIUM_INSTALL}`",
            path.display()
        ))
    }
}

/// A running chromedriver.
#[derive(Debug)]
pub struct ChromeDriver {
    pub port: u16,
    child: Child,
}

impl ChromeDriver {
    pub fn start() -> Result<Self, String> {
        chromium_binary()?;
        let bin = std::env::var_os("CHROMEDRIVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("chromedriver"));
        let port = free_port();
        let mut child = Command::new(&bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {} ({e}): `{CHROMIUM_INSTALL}`", bin.display()))?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("chromedriver exited with {status}"));
            }
            if http_status(port, "/status") == Some(200) {
                return Ok(Self { port, child });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        Err("chromedriver did not answer /status within 15 s".into())
    }

    pub fn webdriver_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
