//! A real Alertmanager (Debian `prometheus-alertmanager`) on a free loopback port with
//! one webhook receiver, a fresh storage dir (an old one would suppress repeats), and
//! fast grouping (`group_wait: 1s`) so notifications arrive within seconds.

use crate::{free_port, http_status};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to get Alertmanager on Debian.
pub const ALERTMANAGER_INSTALL: &str = "apt-get install -y prometheus-alertmanager";

/// A running Alertmanager.
#[derive(Debug)]
pub struct Alertmanager {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

fn binary() -> Result<PathBuf, String> {
    let candidates = [
        std::env::var("ALERTMANAGER").ok(),
        Some("prometheus-alertmanager".into()),
        Some("alertmanager".into()),
    ];
    for c in candidates.into_iter().flatten() {
        if Command::new(&c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return Ok(PathBuf::from(c));
        }
    }
    Err(format!(
        "alertmanager not found (set ALERTMANAGER or install it: `{ALERTMANAGER_INSTALL}`)"
    ))
}

impl Alertmanager {
    /// Start with one receiver posting to `webhook_url` (with `bearer` as its
    /// `Authorization: Bearer` credentials when given), resolved alerts included.
    pub fn start(webhook_url: &str, bearer: Option<&str>) -> Result<Self, String> {
        let bin = binary()?;
        let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let auth = bearer
            .map(|b| format!("        http_config:\n          authorization:\n            type: Bearer\n            credentials: '{b}'\n"))
            .unwrap_or_default();
        let config = format!(
            "route:\n  receiver: compass\n  group_by: ['alertname']\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: compass\n    webhook_configs:\n      - url: '{webhook_url}'\n        send_resolved: true\n{auth}"
        );
        let path = dir.path().join("am.yml");
        std::fs::write(&path, config)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log =
                std::fs::File::create(dir.path().join("am.log")).map_err(|e| e.to_string())?;
            let mut child = Command::new(&bin)
                .arg(format!("--config.file={}", path.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join(format!("data-{port}")).display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!(
                        "exited with {status}: {}",
                        std::fs::read_to_string(dir.path().join("am.log")).unwrap_or_default()
                    );
                    break;
                }
                if http_status(port, "/-/ready") == Some(200) {
                    return Ok(Self {
                        port,
                        child,
                        _dir: dir,
                    });
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    last = "not ready after 15 s".into();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Err(format!("alertmanager did not start: {last}"))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `POST /api/v2/alerts` with a JSON array of alerts.
    pub fn post_alerts(&self, json: &str) -> Result<(), String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        write!(
            s,
            "POST /api/v2/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
            json.len()
        )
        .map_err(|e| e.to_string())?;
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        match reply.get(9..12) {
            Some("200") => Ok(()),
            _ => Err(format!(
                "alertmanager refused the alerts: {}",
                reply.lines().next().unwrap_or("")
            )),
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
