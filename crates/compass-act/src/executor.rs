//! The `Executor` port: run a program with its argument list (never through a shell)
//! within a timeout, capturing its output. `LocalExecutor` runs real processes;
//! `DryRunExecutor` records what would have run and answers from a script.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::AsyncReadExt;

/// Output kept per stream: enough for the audit log, bounded whatever the program prints.
pub const MAX_CAPTURE: usize = 64 * 1024;

/// What ran and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The command line, for the audit log (arguments quoted when they need it).
    pub command_line: String,
    /// `None` when the process was killed (timeout or signal).
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub duration_ms: u64,
    pub timed_out: bool,
    /// True when nothing ran (dry run).
    pub dry_run: bool,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

#[async_trait::async_trait]
pub trait Executor: Send + Sync + std::fmt::Debug {
    async fn run(
        &self,
        program: &str,
        args: &[String],
        timeout: Duration,
    ) -> Result<Outcome, ExecError>;

    /// True when nothing really runs: the runner then also leaves files alone and
    /// takes checks as passed (their command lines are still recorded).
    fn dry_run(&self) -> bool {
        false
    }
}

/// The command line as an operator would type it.
pub fn command_line(program: &str, args: &[String]) -> String {
    let quote = |s: &str| {
        if !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b))
        {
            s.to_string()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    std::iter::once(quote(program))
        .chain(args.iter().map(|a| quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs local processes: stdin closed, stdout and stderr captured (bounded), killed with
/// its process group at the timeout.
#[derive(Debug, Default)]
pub struct LocalExecutor;

#[async_trait::async_trait]
impl Executor for LocalExecutor {
    async fn run(
        &self,
        program: &str,
        args: &[String],
        timeout: Duration,
    ) -> Result<Outcome, ExecError> {
        let started = Instant::now();
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(|source| ExecError::Spawn {
            program: program.to_string(),
            source,
        })?;
        let out = child.stdout.take().map(read_bounded);
        let err = child.stderr.take().map(read_bounded);
        let (exit_code, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) => (status.code(), false),
            Ok(Err(_)) => (None, false),
            Err(_) => {
                kill_group(&mut child).await;
                (None, true)
            }
        };
        let collect = |h: Option<tokio::task::JoinHandle<String>>| async move {
            match h {
                // the pipes close when the group is gone; do not wait for ever if a
                // grandchild escaped it and still holds them
                Some(h) => tokio::time::timeout(Duration::from_secs(2), h)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default(),
                None => String::new(),
            }
        };
        Ok(Outcome {
            command_line: command_line(program, args),
            exit_code,
            stdout: collect(out).await,
            stderr: collect(err).await,
            duration_ms: started.elapsed().as_millis() as u64,
            timed_out,
            dry_run: false,
        })
    }
}

async fn kill_group(child: &mut tokio::process::Child) {
    // The whole group (the child leads its own, see `process_group(0)`): a control
    // script's own children die with it. Never group 0 or 1, which would mean ours or all.
    #[cfg(unix)]
    if let Some(pid) = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .filter(|&p| p > 1)
    {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.kill().await;
}

fn read_bounded<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    mut r: R,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        let mut dropped = 0usize;
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = MAX_CAPTURE.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                    dropped += n.saturating_sub(room);
                }
            }
        }
        let mut s = String::from_utf8_lossy(&kept).into_owned();
        if dropped > 0 {
            s.push_str(&format!("\n[… {dropped} more bytes not kept]"));
        }
        s
    })
}

/// Runs nothing: records each command line and answers from a script (exit code,
/// stdout), or with success when the script is empty.
#[derive(Debug, Default)]
pub struct DryRunExecutor {
    ran: Mutex<Vec<String>>,
    script: Mutex<VecDeque<(i32, String)>>,
}

impl DryRunExecutor {
    /// Answers the next calls with these (exit code, stdout) pairs, in order.
    pub fn scripted(answers: impl IntoIterator<Item = (i32, String)>) -> Self {
        DryRunExecutor {
            ran: Mutex::default(),
            script: Mutex::new(answers.into_iter().collect()),
        }
    }

    /// The command lines that would have run.
    pub fn ran(&self) -> Vec<String> {
        self.ran.lock().expect("dry-run log").clone()
    }
}

#[async_trait::async_trait]
impl Executor for DryRunExecutor {
    fn dry_run(&self) -> bool {
        true
    }

    async fn run(
        &self,
        program: &str,
        args: &[String],
        _timeout: Duration,
    ) -> Result<Outcome, ExecError> {
        let line = command_line(program, args);
        self.ran.lock().expect("dry-run log").push(line.clone());
        let (code, stdout) = self
            .script
            .lock()
            .expect("dry-run script")
            .pop_front()
            .unwrap_or((0, String::new()));
        Ok(Outcome {
            command_line: line,
            exit_code: Some(code),
            stdout,
            stderr: String::new(),
            duration_ms: 0,
            timed_out: false,
            dry_run: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn command_lines_quote_what_a_shell_would_split() {
        assert_eq!(
            command_line("/usr/bin/iris", &s(&["stop", "IRIS", "quietly"])),
            "/usr/bin/iris stop IRIS quietly"
        );
        assert_eq!(
            command_line("echo", &s(&["a b", "it's", ""])),
            r"echo 'a b' 'it'\''s' ''"
        );
    }

    #[tokio::test]
    async fn runs_a_program_without_a_shell_and_captures_output() {
        let out = LocalExecutor
            .run(
                "sh",
                &s(&["-c", "echo out; echo err >&2; exit 3"]),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!((out.exit_code, out.timed_out), (Some(3), false));
        assert_eq!(
            (out.stdout.as_str(), out.stderr.as_str()),
            ("out\n", "err\n")
        );
        assert!(!out.success());
        // arguments are passed as they are: no expansion, no splitting
        let out = LocalExecutor
            .run(
                "echo",
                &s(&["$HOME; rm -rf /", "*"]),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(out.stdout, "$HOME; rm -rf / *\n");
        assert!(out.success());
    }

    #[tokio::test]
    async fn a_hanging_program_is_killed_at_the_timeout() {
        let started = Instant::now();
        let out = LocalExecutor
            .run(
                "sh",
                &s(&["-c", "echo started; sleep 30 & sleep 30"]),
                Duration::from_millis(300),
            )
            .await
            .unwrap();
        assert!(out.timed_out);
        assert_eq!(out.exit_code, None);
        assert_eq!(out.stdout, "started\n");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_missing_program_is_a_clear_error() {
        let e = LocalExecutor
            .run("/nonexistent/iris", &[], Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("cannot start `/nonexistent/iris`"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn output_is_bounded() {
        let out = LocalExecutor
            .run(
                "sh",
                &s(&["-c", "head -c 200000 /dev/zero | tr '\\0' x"]),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert!(out.stdout.len() < MAX_CAPTURE + 100);
        assert!(
            out.stdout.ends_with("more bytes not kept]"),
            "{}",
            &out.stdout[out.stdout.len() - 40..]
        );
    }

    #[tokio::test]
    async fn dry_run_records_and_answers_from_its_script() {
        let dry = DryRunExecutor::scripted([(1, "down".to_string())]);
        let a = dry
            .run("/usr/bin/iris", &s(&["status"]), Duration::from_secs(1))
            .await
            .unwrap();
        let b = dry
            .run(
                "/usr/bin/iris",
                &s(&["start", "IRIS"]),
                Duration::from_secs(1),
            )
            .await
            .unwrap();
        assert_eq!(
            (a.exit_code, a.stdout.as_str(), a.dry_run),
            (Some(1), "down", true)
        );
        assert!(b.success());
        assert_eq!(
            dry.ran(),
            ["/usr/bin/iris status", "/usr/bin/iris start IRIS"]
        );
    }
}
