//! A throwaway PostgreSQL cluster: `initdb` in a temp dir, `pg_ctl start` on a free
//! loopback port with `fsync=off`, databases created on demand, stopped (immediate)
//! and deleted on drop. PostgreSQL refuses to run as root, so as root the cluster
//! belongs to the `postgres` user and the tools run through `runuser`.

use crate::free_port;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How to get the PostgreSQL server on Debian.
pub const POSTGRES_INSTALL: &str = "apt-get install -y postgresql";

/// A running cluster.
#[derive(Debug)]
pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    as_postgres: bool,
    dir: tempfile::TempDir,
}

/// The newest `/usr/lib/postgresql/<v>/bin`, or `$PG_BIN`.
fn bin_dir() -> Result<PathBuf, String> {
    if let Some(b) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(b));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| {
            format!("PostgreSQL is not installed (no /usr/lib/postgresql): `{POSTGRES_INSTALL}`")
        })?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, p): &(u32, PathBuf)| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, p)| p)
        .ok_or_else(|| format!("no initdb under /usr/lib/postgresql/*/bin: `{POSTGRES_INSTALL}`"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

impl Postgres {
    fn tool(&self, name: &str) -> Command {
        tool(&self.bin, name, self.as_postgres)
    }

    /// Start a cluster on a free port.
    pub fn start() -> Result<Self, String> {
        let bin = bin_dir()?;
        let as_postgres = is_root();
        let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let data = dir.path().join("data");
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(format!(
                    "cannot hand {} to the postgres user",
                    dir.path().display()
                ));
            }
        }
        run(
            tool(&bin, "initdb", as_postgres)
                .arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "postgres", "--no-sync"]),
            "initdb",
        )?;
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let opts = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c max_connections=200",
                dir.path().display()
            );
            let started = run(
                tool(&bin, "pg_ctl", as_postgres)
                    .arg("-D")
                    .arg(&data)
                    .arg("-l")
                    .arg(dir.path().join("log"))
                    .args(["-w", "-t", "30", "start", "-o", &opts]),
                "pg_ctl start",
            );
            match started {
                Ok(()) => {
                    return Ok(Self {
                        port,
                        bin,
                        data,
                        as_postgres,
                        dir,
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(format!("postgres did not start: {last}"))
    }

    /// `postgres://postgres@127.0.0.1:PORT/db`
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Create a database; returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, String> {
        run(
            self.tool("createdb").args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                name,
            ]),
            "createdb",
        )?;
        Ok(self.url(name))
    }

    /// The temp dir holding the cluster and its log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn tool(bin: &Path, name: &str, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(name));
        c
    } else {
        Command::new(bin.join(name))
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    ))
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
