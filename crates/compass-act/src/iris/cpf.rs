//! The IRIS CPF configuration file (`iris.cpf`): INI-like `[Section]` headers and
//! `Key=Value` entries. Edits keep every other line byte for byte — comments, blank
//! lines, order, key spelling — and the file on disk only ever changes by an atomic
//! rename after a backup was written and synced.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// A CPF file problem, naming the line.
#[derive(Debug, thiserror::Error)]
pub enum CpfError {
    #[error("{path}: line {line}: {reason}")]
    Syntax {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid edit [{section}] {key}: {reason}")]
    Edit {
        section: String,
        key: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Section(String),
    Entry {
        key: String,
        value: String,
    },
    /// Blank lines and comments (`;` or `#`), kept as they were.
    Other,
}

/// A parsed CPF document. `to_text` returns the original text when nothing was edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpf {
    raw: Vec<String>,
    parsed: Vec<Line>,
    trailing_newline: bool,
}

/// One key's change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub section: String,
    pub key: String,
    pub old: Option<String>,
    pub new: String,
    pub restart: Restart,
}

/// Whether a parameter takes effect only after the instance restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Restart {
    /// Read at start-up only (memory sizes, start-up settings).
    Required,
    /// Activated on a running instance.
    NotRequired,
    /// Not in the table: treated as needing a restart, the safe side.
    Unknown,
}

impl Restart {
    pub fn needed(self) -> bool {
        !matches!(self, Restart::NotRequired)
    }
}

/// Which CPF parameters need a restart. Sections are compared case-insensitively,
/// keys too (the CPF is case-insensitive in both).
pub fn restart_needed(section: &str, key: &str) -> Restart {
    const REQUIRED: &[(&str, &str)] = &[
        ("config", "globals"),
        ("config", "routines"),
        ("config", "gmheap"),
        ("config", "locksiz"),
        ("config", "jrnbufs"),
        ("config", "bbsiz"),
        ("config", "LargePagesRequired"),
        ("config", "MaxServerConn"),
        ("config", "MaxServers"),
        ("config", "errlog"),
        ("config", "memlock"),
        ("config", "wijdir"),
        ("config", "targwijsz"),
        ("Startup", "DefaultPort"),
        ("Startup", "WebServerPort"),
        ("Startup", "SystemMode"),
        ("Startup", "ShutdownTimeout"),
    ];
    const DYNAMIC: &[(&str, &str)] = &[
        ("Journal", "CurrentDirectory"),
        ("Journal", "AlternateDirectory"),
        ("Journal", "FileSizeLimit"),
        ("Journal", "DaysBeforePurge"),
        ("Journal", "BackupsBeforePurge"),
        ("Journal", "FreezeOnError"),
        ("config", "console"),
        ("Miscellaneous", "EnableLongStrings"),
        ("Debug", "dumpstyle"),
    ];
    let eq =
        |(s, k): &&(&str, &str)| s.eq_ignore_ascii_case(section) && k.eq_ignore_ascii_case(key);
    if REQUIRED.iter().any(|p| eq(&p)) || section.eq_ignore_ascii_case("Startup") {
        Restart::Required
    } else if DYNAMIC.iter().any(|p| eq(&p)) {
        Restart::NotRequired
    } else {
        Restart::Unknown
    }
}

impl Cpf {
    /// Parses CPF text; `path` names the file in errors. Refuses a line that is neither
    /// a section, an entry, a comment nor blank; an entry before any section; an empty
    /// key; and a key twice in one section (an edit of it would be ambiguous).
    pub fn parse(text: &str, path: &str) -> Result<Cpf, CpfError> {
        let syntax = |line: usize, reason: String| CpfError::Syntax {
            path: path.to_string(),
            line,
            reason,
        };
        let mut raw = Vec::new();
        let mut parsed = Vec::new();
        let mut section: Option<String> = None;
        let mut keys: Vec<String> = Vec::new();
        for (i, l) in text.lines().enumerate() {
            let n = i + 1;
            let t = l.trim();
            let line = if t.is_empty() || t.starts_with(';') || t.starts_with('#') {
                Line::Other
            } else if let Some(r) = t.strip_prefix('[') {
                let name = r
                    .strip_suffix(']')
                    .ok_or_else(|| syntax(n, format!("section header `{t}` has no closing `]`")))?
                    .trim();
                if name.is_empty() {
                    return Err(syntax(n, "empty section name `[]`".into()));
                }
                section = Some(name.to_string());
                keys.clear();
                Line::Section(name.to_string())
            } else if let Some((k, v)) = l.split_once('=') {
                let key = k.trim();
                if key.is_empty() {
                    return Err(syntax(n, format!("entry `{t}` has no key before `=`")));
                }
                let Some(sec) = &section else {
                    return Err(syntax(
                        n,
                        format!("entry `{key}` comes before any [section]"),
                    ));
                };
                if keys.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                    return Err(syntax(n, format!("key `{key}` appears twice in [{sec}]")));
                }
                keys.push(key.to_string());
                Line::Entry {
                    key: key.to_string(),
                    value: v.to_string(),
                }
            } else {
                return Err(syntax(
                    n,
                    format!("`{t}` is not a [section], a Key=Value entry or a ; comment"),
                ));
            };
            raw.push(l.to_string());
            parsed.push(line);
        }
        Ok(Cpf {
            raw,
            parsed,
            trailing_newline: text.ends_with('\n') || text.is_empty(),
        })
    }

    /// The value of `[section] key`, if present.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        let (start, end) = self.section_span(section)?;
        self.parsed[start..end].iter().find_map(|l| match l {
            Line::Entry { key: k, value } if k.eq_ignore_ascii_case(key) => Some(value.as_str()),
            _ => None,
        })
    }

    /// The section names in file order.
    pub fn sections(&self) -> Vec<&str> {
        self.parsed
            .iter()
            .filter_map(|l| match l {
                Line::Section(s) => Some(s.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Sets `[section] key` to `value`: replaces the entry in place, or adds it after the
    /// section's last entry, or adds the section at the end. Returns the change.
    pub fn set(&mut self, section: &str, key: &str, value: &str) -> Result<Change, CpfError> {
        let bad = |reason: &str| CpfError::Edit {
            section: section.to_string(),
            key: key.to_string(),
            reason: reason.to_string(),
        };
        if section.trim().is_empty() || section.contains([']', '[', '\n']) {
            return Err(bad(
                "the section name must be non-empty, without brackets or newlines",
            ));
        }
        if key.trim().is_empty() || key.contains(['=', '\n', '[']) || key.trim() != key {
            return Err(bad(
                "the key must be non-empty, without `=`, `[`, surrounding spaces or newlines",
            ));
        }
        if value.contains(['\n', '\r']) {
            return Err(bad("the value must be one line"));
        }
        let restart = restart_needed(section, key);
        let line_text = |k: &str| format!("{k}={value}");
        if let Some((start, end)) = self.section_span(section) {
            for i in start..end {
                if let Line::Entry { key: k, value: old } = &self.parsed[i]
                    && k.eq_ignore_ascii_case(key)
                {
                    let change = Change {
                        section: section.to_string(),
                        key: k.clone(),
                        old: Some(old.clone()),
                        new: value.to_string(),
                        restart,
                    };
                    self.raw[i] = line_text(k);
                    self.parsed[i] = Line::Entry {
                        key: k.clone(),
                        value: value.to_string(),
                    };
                    return Ok(change);
                }
            }
            let last_entry = (start..end)
                .rev()
                .find(|&i| matches!(self.parsed[i], Line::Entry { .. }))
                .unwrap_or(start - 1);
            self.raw.insert(last_entry + 1, line_text(key));
            self.parsed.insert(
                last_entry + 1,
                Line::Entry {
                    key: key.to_string(),
                    value: value.to_string(),
                },
            );
        } else {
            if self.raw.last().is_some_and(|l| !l.trim().is_empty()) {
                self.raw.push(String::new());
                self.parsed.push(Line::Other);
            }
            self.raw.push(format!("[{section}]"));
            self.parsed.push(Line::Section(section.to_string()));
            self.raw.push(line_text(key));
            self.parsed.push(Line::Entry {
                key: key.to_string(),
                value: value.to_string(),
            });
        }
        Ok(Change {
            section: section.to_string(),
            key: key.to_string(),
            old: None,
            new: value.to_string(),
            restart,
        })
    }

    /// The document as text.
    pub fn to_text(&self) -> String {
        let mut s = self.raw.join("\n");
        if self.trailing_newline && !self.raw.is_empty() {
            s.push('\n');
        }
        s
    }

    /// Lines [start, end) of the section's body (after its header).
    fn section_span(&self, section: &str) -> Option<(usize, usize)> {
        let header = self
            .parsed
            .iter()
            .position(|l| matches!(l, Line::Section(s) if s.eq_ignore_ascii_case(section)))?;
        let end = self.parsed[header + 1..]
            .iter()
            .position(|l| matches!(l, Line::Section(_)))
            .map_or(self.parsed.len(), |p| header + 1 + p);
        Some((header + 1, end))
    }
}

/// A line diff of two texts (common prefix and suffix kept as context, up to 2 lines),
/// in unified style: `-` removed, `+` added, ` ` context.
pub fn diff(before: &str, after: &str, path: &str) -> String {
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    let mut out = format!("--- {path}\n+++ {path} (planned)\n");
    if a == b {
        return out;
    }
    let pre = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suf = a[pre..]
        .iter()
        .rev()
        .zip(b[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let ctx = 2;
    let from = pre.saturating_sub(ctx);
    let a_end = a.len() - suf;
    let b_end = b.len() - suf;
    let to = (a_end + ctx).min(a.len());
    let _ = writeln!(
        out,
        "@@ -{},{} +{},{} @@",
        from + 1,
        to - from,
        from + 1,
        (b_end + (to - a_end)) - from
    );
    for l in &a[from..pre] {
        let _ = writeln!(out, " {l}");
    }
    for l in &a[pre..a_end] {
        let _ = writeln!(out, "-{l}");
    }
    for l in &b[pre..b_end] {
        let _ = writeln!(out, "+{l}");
    }
    for l in &a[a_end..to] {
        let _ = writeln!(out, " {l}");
    }
    out
}

/// A CPF file on disk.
#[derive(Debug, Clone)]
pub struct CpfFile {
    pub path: PathBuf,
}

/// What an applied edit left behind: the backup that restores the previous file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub backup: PathBuf,
    pub changes: Vec<Change>,
}

impl CpfFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CpfFile { path: path.into() }
    }

    fn io(&self, source: std::io::Error) -> CpfError {
        CpfError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Reads and parses the file.
    pub fn read(&self) -> Result<Cpf, CpfError> {
        let text = std::fs::read_to_string(&self.path).map_err(|e| self.io(e))?;
        Cpf::parse(&text, &self.path.display().to_string())
    }

    /// The planned edits applied in memory: the changes and the diff, nothing written.
    pub fn plan(
        &self,
        edits: &[(String, String, String)],
    ) -> Result<(Cpf, Vec<Change>, String), CpfError> {
        let before = self.read()?;
        let mut after = before.clone();
        let changes = edits
            .iter()
            .map(|(s, k, v)| after.set(s, k, v))
            .collect::<Result<Vec<_>, _>>()?;
        let d = diff(
            &before.to_text(),
            &after.to_text(),
            &self.path.display().to_string(),
        );
        Ok((after, changes, d))
    }

    /// Copies the current file to `backup_dir` (created if needed) and syncs it; returns
    /// the backup's path. The name carries `stamp` so backups never overwrite each other.
    pub fn backup(&self, backup_dir: &Path, stamp: &str) -> Result<PathBuf, CpfError> {
        std::fs::create_dir_all(backup_dir).map_err(|e| self.io(e))?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "iris.cpf".into());
        let dest = backup_dir.join(format!("{name}.{stamp}.bak"));
        let bytes = std::fs::read(&self.path).map_err(|e| self.io(e))?;
        write_synced(&dest, &bytes).map_err(|e| self.io(e))?;
        Ok(dest)
    }

    /// Backs the file up, then replaces it atomically with the edited document. A crash
    /// at any point leaves either the old file or the new one, and the backup.
    pub fn apply(
        &self,
        edits: &[(String, String, String)],
        backup_dir: &Path,
        stamp: &str,
    ) -> Result<Applied, CpfError> {
        let (after, changes, _) = self.plan(edits)?;
        let backup = self.backup(backup_dir, stamp)?;
        self.replace(after.to_text().as_bytes())?;
        Ok(Applied { backup, changes })
    }

    /// Replaces the file atomically with the edited document, without a backup: for
    /// callers that took (and recorded) the backup themselves.
    pub fn change(&self, edits: &[(String, String, String)]) -> Result<Vec<Change>, CpfError> {
        let (after, changes, _) = self.plan(edits)?;
        self.replace(after.to_text().as_bytes())?;
        Ok(changes)
    }

    /// Puts a backup back (atomically), after checking it still parses.
    pub fn restore(&self, backup: &Path) -> Result<(), CpfError> {
        let text = std::fs::read_to_string(backup).map_err(|e| CpfError::Io {
            path: backup.display().to_string(),
            source: e,
        })?;
        Cpf::parse(&text, &backup.display().to_string())?;
        self.replace(text.as_bytes())
    }

    /// Writes `bytes` to a temporary file beside the target, syncs it, renames it over
    /// the target and syncs the directory.
    fn replace(&self, bytes: &[u8]) -> Result<(), CpfError> {
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.compass-tmp"));
        write_synced(&tmp, bytes).map_err(|e| self.io(e))?;
        if let Ok(meta) = std::fs::metadata(&self.path) {
            let _ = std::fs::set_permissions(&tmp, meta.permissions());
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPF: &str = "\
[ConfigFile]
Product=IRIS
Version=2024.1

; memory settings reviewed 2024-03
[config]
globals=0,0,512,0,0,0
gmheap=37568
routines=64
# journal buffers
jrnbufs=64

[Journal]
CurrentDirectory=/iris/journal/
FreezeOnError=0
";

    #[test]
    fn unedited_documents_round_trip_byte_for_byte() {
        let cpf = Cpf::parse(CPF, "iris.cpf").unwrap();
        assert_eq!(cpf.to_text(), CPF);
        let no_newline = "[a]\nk=v";
        assert_eq!(Cpf::parse(no_newline, "x").unwrap().to_text(), no_newline);
        assert_eq!(cpf.sections(), ["ConfigFile", "config", "Journal"]);
        assert_eq!(cpf.get("CONFIG", "GMHEAP"), Some("37568"));
        assert_eq!(cpf.get("config", "missing"), None);
    }

    #[test]
    fn set_replaces_in_place_and_keeps_comments_and_order() {
        let mut cpf = Cpf::parse(CPF, "iris.cpf").unwrap();
        let c = cpf.set("config", "gmheap", "75136").unwrap();
        assert_eq!(c.old.as_deref(), Some("37568"));
        assert_eq!(c.restart, Restart::Required);
        let text = cpf.to_text();
        assert_eq!(text, CPF.replace("gmheap=37568", "gmheap=75136"));
        // a new key goes after the section's last entry, a new section at the end
        let c = cpf.set("Journal", "DaysBeforePurge", "2").unwrap();
        assert_eq!(c.old, None);
        assert_eq!(c.restart, Restart::NotRequired);
        cpf.set("Custom", "Thing", "1").unwrap();
        let text = cpf.to_text();
        assert!(
            text.ends_with("FreezeOnError=0\nDaysBeforePurge=2\n\n[Custom]\nThing=1\n"),
            "{text}"
        );
        assert!(text.contains("; memory settings reviewed 2024-03\n[config]"));
        assert_eq!(Cpf::parse(&text, "x").unwrap(), cpf);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let cases = [
            ("[config\nk=v\n", 1, "no closing"),
            ("k=v\n", 1, "before any [section]"),
            ("[a]\nk=1\nK=2\n", 3, "appears twice"),
            ("[a]\n=1\n", 2, "no key"),
            ("[a]\njust words\n", 2, "is not a [section]"),
            ("[]\n", 1, "empty section"),
        ];
        for (text, line, want) in cases {
            match Cpf::parse(text, "iris.cpf") {
                Err(CpfError::Syntax {
                    line: l,
                    reason,
                    path,
                }) => {
                    assert_eq!((l, path.as_str()), (line, "iris.cpf"), "{text}");
                    assert!(reason.contains(want), "{text}: {reason}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn bad_edits_are_refused() {
        let mut cpf = Cpf::parse(CPF, "iris.cpf").unwrap();
        assert!(cpf.set("config", "a=b", "1").is_err());
        assert!(cpf.set("config", "gmheap", "1\n[evil]").is_err());
        assert!(cpf.set("con]fig", "k", "1").is_err());
        assert_eq!(cpf.to_text(), CPF);
    }

    #[test]
    fn restart_table_defaults_to_required_when_unknown() {
        assert_eq!(restart_needed("Startup", "Anything"), Restart::Required);
        assert_eq!(
            restart_needed("Journal", "currentdirectory"),
            Restart::NotRequired
        );
        assert_eq!(restart_needed("Foo", "bar"), Restart::Unknown);
        assert!(Restart::Unknown.needed());
    }

    #[test]
    fn diff_shows_the_exact_change() {
        let mut cpf = Cpf::parse(CPF, "iris.cpf").unwrap();
        cpf.set("config", "gmheap", "75136").unwrap();
        let d = diff(CPF, &cpf.to_text(), "iris.cpf");
        assert!(d.contains("-gmheap=37568\n+gmheap=75136\n"), "{d}");
        assert!(d.contains(" globals=0,0,512,0,0,0\n"), "{d}");
        assert!(d.contains("@@ -6,5 +6,5 @@"), "{d}");
    }

    #[test]
    fn apply_backs_up_then_replaces_and_restore_puts_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iris.cpf");
        std::fs::write(&path, CPF).unwrap();
        let file = CpfFile::new(&path);
        let edits = vec![(
            "config".to_string(),
            "gmheap".to_string(),
            "75136".to_string(),
        )];
        let (_, changes, d) = file.plan(&edits).unwrap();
        assert_eq!(changes.len(), 1);
        assert!(d.contains("+gmheap=75136"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            CPF,
            "plan writes nothing"
        );
        let applied = file
            .apply(&edits, &dir.path().join("backups"), "t1")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&applied.backup).unwrap(), CPF);
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("gmheap=75136")
        );
        file.restore(&applied.backup).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), CPF);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("compass-tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_broken_file_is_never_edited() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iris.cpf");
        std::fs::write(&path, "[config]\ngmheap 100\n").unwrap();
        let file = CpfFile::new(&path);
        let edits = vec![("config".into(), "gmheap".into(), "200".into())];
        let err = file.apply(&edits, &dir.path().join("b"), "t").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[config]\ngmheap 100\n"
        );
        assert!(
            !dir.path().join("b").exists(),
            "no backup of a refused edit"
        );
    }

    #[test]
    fn crash_between_backup_and_change_leaves_the_original_and_a_restorable_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iris.cpf");
        std::fs::write(&path, CPF).unwrap();
        let file = CpfFile::new(&path);
        // the process dies after the backup, before the rename: a stale temp file too
        let backup = file.backup(&dir.path().join("b"), "t").unwrap();
        std::fs::write(dir.path().join(".iris.cpf.compass-tmp"), "[config]\ngmh").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), CPF);
        // the next edit overwrites the stale temp file; the backup restores
        let edits = vec![("config".into(), "gmheap".into(), "1".into())];
        file.apply(&edits, &dir.path().join("b"), "t2").unwrap();
        file.restore(&backup).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), CPF);
    }
}
