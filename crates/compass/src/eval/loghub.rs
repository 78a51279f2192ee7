//! `compass eval loghub`: COMPASS's template miner on the Loghub 2k samples; writes the
//! `<S>_2k.log_structured.csv` files and scores them (GA, PA, FGA, FTA) against the
//! corrected ground truth where present, else the original one. Labels are read only
//! after the parse is written.

use anyhow::{Context, Result, bail};
use compass_adapters::loghub::{
    HeaderFormat, StructuredLine, format_for, read_contents, read_structured, write_structured,
};
use compass_core::logmine::TemplateMiner;
use compass_core::logscore::{ParseScores, Parsed, score};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One system's result.
#[derive(Debug, Clone)]
pub struct LoghubResult {
    pub system: String,
    /// Lines parsed (matching the header).
    pub lines: usize,
    /// Lines skipped because they do not match the header format.
    pub unmatched: u64,
    pub templates: usize,
    pub elapsed_ms: u64,
    pub written: PathBuf,
    /// Scores and the ground-truth file they were computed against, when one exists.
    pub scores: Option<(ParseScores, PathBuf)>,
}

/// Systems to run: the ones named, or every folder of `data` holding `<S>/<S>_2k.log`.
fn systems(data: &Path, named: &[String]) -> Result<Vec<String>> {
    if !named.is_empty() {
        return Ok(named.to_vec());
    }
    let entries = std::fs::read_dir(data)
        .with_context(|| format!("cannot read the Loghub folder {}", data.display()))?;
    let mut found: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|s| data.join(s).join(format!("{s}_2k.log")).is_file())
        .collect();
    found.sort();
    if found.is_empty() {
        bail!(
            "no Loghub sample in {}: expected folders like Apache/Apache_2k.log",
            data.display()
        );
    }
    Ok(found)
}

/// The ground truth of `system`: corrected templates first (beside the data, or in a
/// sibling `loghub-corrected` folder), else the original ones.
fn truth_file(data: &Path, system: &str) -> Option<PathBuf> {
    let corrected = format!("{system}_2k.log_structured_corrected.csv");
    let original = format!("{system}_2k.log_structured.csv");
    let sibling = data
        .parent()
        .map(|p| p.join("loghub-corrected").join(system).join(&corrected));
    [
        Some(data.join(system).join(&corrected)),
        sibling,
        Some(data.join(system).join(&original)),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_file())
}

/// Parse one system's sample with the template miner and write the structured file.
fn parse_system(
    data: &Path,
    system: &str,
    format: Option<&str>,
    out: &Path,
) -> Result<(Vec<StructuredLine>, u64, usize, PathBuf)> {
    let format = match format.or_else(|| format_for(system)) {
        Some(f) => f,
        None => bail!("no built-in log format for {system:?}: pass one with --format"),
    };
    let header = HeaderFormat::parse(format)?;
    let (contents, unmatched) =
        read_contents(&data.join(system).join(format!("{system}_2k.log")), &header)?;
    let mut miner = TemplateMiner::default();
    let ids: Vec<_> = contents.iter().map(|(_, c)| miner.add(c)).collect();
    let rows: Vec<StructuredLine> = contents
        .iter()
        .zip(ids)
        .map(|((line_id, _), id)| StructuredLine {
            line_id: *line_id,
            event_id: format!("E{}", id + 1),
            template: miner.template(id).to_string(),
        })
        .collect();
    let written = out.join(format!("{system}_2k.log_structured.csv"));
    write_structured(&written, &rows)?;
    Ok((rows, unmatched, miner.len(), written))
}

/// Score `rows` against the ground truth, aligned by line id.
fn score_against(rows: &[StructuredLine], truth_path: &Path) -> Result<Option<ParseScores>> {
    let truth = read_structured(truth_path)?;
    let by_id: HashMap<u64, &StructuredLine> = truth.iter().map(|t| (t.line_id, t)).collect();
    let (predicted, actual): (Vec<Parsed<'_>>, Vec<Parsed<'_>>) = rows
        .iter()
        .filter_map(|r| {
            by_id.get(&r.line_id).map(|t| {
                (
                    Parsed {
                        group: &r.event_id,
                        template: &r.template,
                    },
                    Parsed {
                        group: &t.event_id,
                        template: &t.template,
                    },
                )
            })
        })
        .unzip();
    Ok(score(&predicted, &actual))
}

/// `compass eval loghub`.
pub fn loghub(
    data: &Path,
    named: &[String],
    format: Option<&str>,
    out: &Path,
) -> Result<Vec<LoghubResult>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut results = Vec::new();
    for system in systems(data, named)? {
        let started = Instant::now();
        let (rows, unmatched, templates, written) = parse_system(data, &system, format, out)
            .with_context(|| format!("{system}: cannot parse"))?;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        // Labels are read only now, after the parse is written.
        let scores = match truth_file(data, &system) {
            Some(path) => score_against(&rows, &path)?.map(|s| (s, path)),
            None => None,
        };
        results.push(LoghubResult {
            system,
            lines: rows.len(),
            unmatched,
            templates,
            elapsed_ms,
            written,
            scores,
        });
    }
    Ok(results)
}

/// Result of timing the template miner on a file.
#[derive(Debug, Clone, Copy)]
pub struct MiningBench {
    pub lines: usize,
    pub seconds: f64,
    pub templates: usize,
    /// Peak resident memory of the process, bytes (Linux; `None` elsewhere).
    pub peak_rss: Option<u64>,
}

/// Time template mining over every line of `input` (read first; only mining is timed,
/// as the drain3 peer script does).
pub fn bench_mining(input: &Path) -> Result<MiningBench> {
    let text = std::fs::read_to_string(input).with_context(|| {
        format!(
            "cannot read {} (a UTF-8 text file, one message a line)",
            input.display()
        )
    })?;
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        bail!("{} has no lines to mine", input.display());
    }
    let mut miner = TemplateMiner::default();
    let started = Instant::now();
    for line in &lines {
        miner.add(line);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(MiningBench {
        lines: lines.len(),
        seconds,
        templates: miner.len(),
        peak_rss: peak_rss(),
    })
}

/// Peak resident set size from `/proc/self/status` (VmHWM).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Write a mining benchmark input: the messages of every Loghub sample under `data`
/// (headers stripped with the built-in formats), repeated until `lines` lines.
pub fn make_mining_input(data: &Path, lines: usize, out: &Path) -> Result<usize> {
    let mut base = Vec::new();
    for system in systems(data, &[])? {
        let Some(format) = format_for(&system) else {
            continue;
        };
        let header = HeaderFormat::parse(format)?;
        let (contents, _) = read_contents(
            &data.join(&system).join(format!("{system}_2k.log")),
            &header,
        )?;
        base.extend(contents.into_iter().map(|(_, c)| c.replace('\n', " ")));
    }
    if base.is_empty() {
        bail!("no Loghub messages found under {}", data.display());
    }
    let mut text = String::new();
    for message in base.iter().cycle().take(lines) {
        text.push_str(message);
        text.push('\n');
    }
    std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(base.len())
}
