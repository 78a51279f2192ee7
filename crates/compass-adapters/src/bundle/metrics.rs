//! `metrics.om`: an OpenMetrics text parser into an in-memory series store.
//!
//! The file is modest (up to a few million samples), so it is parsed whole on the
//! first metrics query, streamed line by line. Series are keyed by name and labels;
//! samples of a series are usually contiguous, so a line whose series text equals the
//! previous line's skips label parsing. Any malformed line fails the whole file with
//! "metrics.om line N: ..." (a half-read metrics file would mislead the analysis).

use super::jsonl::{Position, stream_lines};
use super::time::parse_unix_seconds_ms;
use compass_core::EpochMs;
use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::path::Path;

/// One stored series: samples in time order.
#[derive(Debug)]
pub(crate) struct StoredSeries {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub times: Vec<EpochMs>,
    pub values: Vec<f64>,
}

impl StoredSeries {
    /// Whether any sample lies in `[start, end)`.
    pub fn has_sample_in(&self, start: EpochMs, end: EpochMs) -> bool {
        let first = self.times.partition_point(|&t| t < start);
        first < self.times.len() && self.times[first] < end
    }
}

/// Every series of a `metrics.om` file.
#[derive(Debug, Default)]
pub(crate) struct MetricStore {
    pub series: Vec<StoredSeries>,
    by_name: HashMap<String, Vec<usize>>,
}

impl MetricStore {
    /// The series of one metric name (sample name, e.g. `..._total`, `..._bucket`).
    pub fn named<'s>(&'s self, name: &str) -> impl Iterator<Item = &'s StoredSeries> + 's {
        let ids: &[usize] = self.by_name.get(name).map(Vec::as_slice).unwrap_or(&[]);
        ids.iter().map(|&i| &self.series[i])
    }

    /// Add a series whose samples are already in time order.
    pub fn push(&mut self, series: StoredSeries) {
        debug_assert!(series.times.is_sorted());
        self.by_name
            .entry(series.name.clone())
            .or_default()
            .push(self.series.len());
        self.series.push(series);
    }

    /// The values of `label` (`__name__` for metric names) on series with a sample in
    /// `range`, sorted and distinct.
    pub fn label_values(&self, label: &str, range: compass_core::TimeRange) -> Vec<String> {
        let values: std::collections::BTreeSet<&str> = self
            .series
            .iter()
            .filter(|s| s.has_sample_in(range.start, range.end))
            .filter_map(|s| match label {
                "__name__" => Some(s.name.as_str()),
                _ => s.labels.get(label).map(String::as_str),
            })
            .collect();
        values.into_iter().map(str::to_string).collect()
    }

    pub fn samples(&self) -> usize {
        self.series.iter().map(|s| s.times.len()).sum()
    }
}

/// Parse an OpenMetrics file; errors read "metrics.om line N: what".
pub(crate) fn load(path: &Path) -> Result<MetricStore, LoadError> {
    let mut parser = Parser::default();
    let mut failure = None;
    stream_lines(path, Position::START, |line, pos| match parser.line(line) {
        Ok(()) => ControlFlow::Continue(()),
        Err(what) => {
            failure = Some(format!("metrics.om line {}: {what}", pos.line));
            ControlFlow::Break(())
        }
    })
    .map_err(LoadError::Io)?;
    if let Some(detail) = failure {
        return Err(LoadError::Bad(detail));
    }
    if !parser.seen_eof {
        return Err(LoadError::Bad(
            "metrics.om: ends without `# EOF` (the file is truncated; re-create the bundle)"
                .to_string(),
        ));
    }
    Ok(parser.finish())
}

#[derive(Debug)]
pub(crate) enum LoadError {
    Io(std::io::Error),
    Bad(String),
}

#[derive(Debug, Default)]
struct Parser {
    store: MetricStore,
    /// Canonical key (name and sorted labels) to series index.
    ids: HashMap<(String, Vec<(String, String)>), usize>,
    /// Series text (`name{labels}`) of the previous sample line and its series.
    last_text: Vec<u8>,
    last_id: Option<usize>,
    seen_eof: bool,
}

impl Parser {
    fn line(&mut self, line: &[u8]) -> Result<(), String> {
        if self.seen_eof {
            return match line.trim_ascii().is_empty() {
                true => Ok(()),
                false => Err("content after `# EOF`".to_string()),
            };
        }
        let line = std::str::from_utf8(line).map_err(|_| "not valid UTF-8".to_string())?;
        if line.trim().is_empty() {
            return Ok(());
        }
        if let Some(comment) = line.strip_prefix('#') {
            return self.descriptor(comment);
        }
        self.sample(line)
    }

    fn descriptor(&mut self, comment: &str) -> Result<(), String> {
        let mut words = comment.split_ascii_whitespace();
        match words.next() {
            Some("EOF") => self.seen_eof = true,
            Some("TYPE") => {
                let name = words.next().ok_or("`# TYPE` without a metric name")?;
                check_metric_name(name)?;
                let kind = words.next().ok_or("`# TYPE` without a type")?;
                const KINDS: [&str; 8] = [
                    "counter",
                    "gauge",
                    "histogram",
                    "gaugehistogram",
                    "summary",
                    "info",
                    "stateset",
                    "unknown",
                ];
                if !KINDS.contains(&kind) {
                    return Err(format!("unknown metric type {kind:?}"));
                }
            }
            Some("HELP" | "UNIT") => {
                let name = words
                    .next()
                    .ok_or("`# HELP`/`# UNIT` without a metric name")?;
                check_metric_name(name)?;
            }
            // Other comments are tolerated (the Prometheus text format allows them).
            _ => {}
        }
        Ok(())
    }

    fn sample(&mut self, line: &str) -> Result<(), String> {
        let series_end = series_text_end(line)?;
        let (series_text, rest) = line.split_at(series_end);
        let id = match self.last_id {
            Some(id) if self.last_text == series_text.as_bytes() => id,
            _ => {
                let id = self.series_id(series_text)?;
                self.last_text.clear();
                self.last_text.extend_from_slice(series_text.as_bytes());
                self.last_id = Some(id);
                id
            }
        };
        // `rest` is " value timestamp" with an optional " # exemplar".
        let rest = rest.split(" #").next().unwrap_or(rest);
        let mut fields = rest.split_ascii_whitespace();
        let value = fields.next().ok_or("sample without a value")?;
        let value = parse_value(value).ok_or_else(|| format!("bad sample value {value:?}"))?;
        let ts = fields
            .next()
            .ok_or("sample without a timestamp (bundles need timestamped samples)")?;
        let ts = parse_unix_seconds_ms(ts)
            .ok_or_else(|| format!("bad timestamp {ts:?} (expected Unix seconds)"))?;
        if let Some(extra) = fields.next() {
            return Err(format!("unexpected {extra:?} after the timestamp"));
        }
        // NaN and infinite samples (staleness markers, broken exporters) carry no
        // measurement: they are kept out of the store, as if the scrape had no value.
        if value.is_finite() {
            let series = &mut self.store.series[id];
            series.times.push(ts);
            series.values.push(value);
        }
        Ok(())
    }

    fn series_id(&mut self, text: &str) -> Result<usize, String> {
        let (name, labels) = match text.split_once('{') {
            None => (text, Vec::new()),
            Some((name, body)) => (name, parse_labels(body)?),
        };
        check_metric_name(name)?;
        let key = (name.to_string(), labels);
        if let Some(&id) = self.ids.get(&key) {
            return Ok(id);
        }
        let id = self.store.series.len();
        self.store.series.push(StoredSeries {
            name: key.0.clone(),
            labels: key.1.iter().cloned().collect(),
            times: Vec::new(),
            values: Vec::new(),
        });
        self.store
            .by_name
            .entry(key.0.clone())
            .or_default()
            .push(id);
        self.ids.insert(key, id);
        Ok(id)
    }

    fn finish(mut self) -> MetricStore {
        for series in &mut self.store.series {
            if !series.times.is_sorted() {
                let mut samples: Vec<(EpochMs, f64)> = series
                    .times
                    .iter()
                    .copied()
                    .zip(series.values.iter().copied())
                    .collect();
                samples.sort_by_key(|s| s.0);
                (series.times, series.values) = samples.into_iter().unzip();
            }
            // A repeated timestamp keeps the last value written.
            if series.times.windows(2).any(|w| w[0] == w[1]) {
                let mut keep_times = Vec::with_capacity(series.times.len());
                let mut keep_values = Vec::with_capacity(series.times.len());
                for (&t, &v) in series.times.iter().zip(&series.values) {
                    if keep_times.last() == Some(&t) {
                        *keep_values.last_mut().expect("pushed together") = v;
                    } else {
                        keep_times.push(t);
                        keep_values.push(v);
                    }
                }
                series.times = keep_times;
                series.values = keep_values;
            }
        }
        self.store
    }
}

/// Where the series text (`name` or `name{...}`) of a sample line ends.
fn series_text_end(line: &str) -> Result<usize, String> {
    let bytes = line.as_bytes();
    let Some(brace) = bytes.iter().position(|&c| c == b'{' || c == b' ') else {
        return Err("sample without a value".to_string());
    };
    if bytes[brace] == b' ' {
        return Ok(brace);
    }
    // Find the closing brace outside quoted label values.
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, &c) in bytes.iter().enumerate().skip(brace + 1) {
        match (in_quotes, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_quotes = false,
            (false, _, b'"') => in_quotes = true,
            (false, _, b'}') => return Ok(i + 1),
            _ => {}
        }
    }
    Err("unterminated label set (missing `}`)".to_string())
}

/// Labels from `l1="v1",l2="v2"}` (the text after `{`), sorted by name.
fn parse_labels(body: &str) -> Result<Vec<(String, String)>, String> {
    let mut labels = Vec::new();
    let mut rest = body
        .strip_suffix('}')
        .ok_or("unterminated label set (missing `}`)")?;
    while !rest.trim_start().is_empty() {
        let (name, after) = rest.split_once('=').ok_or("label without `=`")?;
        let name = name.trim().trim_start_matches(',').trim();
        check_label_name(name)?;
        let after = after.trim_start();
        let after = after
            .strip_prefix('"')
            .ok_or_else(|| format!("value of label {name:?} is not quoted"))?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut closed_at = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    closed_at = Some(i);
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, other)) => {
                        return Err(format!("bad escape `\\{other}` in label {name:?}"));
                    }
                    None => return Err(format!("unterminated value of label {name:?}")),
                },
                c => value.push(c),
            }
        }
        let closed_at = closed_at.ok_or_else(|| format!("unterminated value of label {name:?}"))?;
        rest = after[closed_at + 1..].trim_start();
        if !rest.is_empty() {
            rest = rest
                .strip_prefix(',')
                .ok_or_else(|| format!("expected `,` or `}}` after the value of label {name:?}"))?;
        }
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("label {name:?} appears twice"));
        }
        labels.push((name.to_string(), value));
    }
    labels.sort();
    Ok(labels)
}

fn check_metric_name(name: &str) -> Result<(), String> {
    let ok = name.bytes().enumerate().all(|(i, c)| {
        c.is_ascii_alphabetic() || c == b'_' || c == b':' || (i > 0 && c.is_ascii_digit())
    });
    match ok && !name.is_empty() {
        true => Ok(()),
        false => Err(format!("bad metric name {name:?}")),
    }
}

fn check_label_name(name: &str) -> Result<(), String> {
    let ok = name
        .bytes()
        .enumerate()
        .all(|(i, c)| c.is_ascii_alphabetic() || c == b'_' || (i > 0 && c.is_ascii_digit()));
    match ok && !name.is_empty() {
        true => Ok(()),
        false => Err(format!("bad label name {name:?}")),
    }
}

/// A sample value: a float, `NaN`, `+Inf` or `-Inf`.
fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ if text
            .bytes()
            .all(|c| c.is_ascii_digit() || b"+-.eE".contains(&c)) =>
        {
            text.parse().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MetricStore, String> {
        let mut parser = Parser::default();
        for (i, line) in text.lines().enumerate() {
            parser
                .line(line.as_bytes())
                .map_err(|e| format!("line {}: {e}", i + 1))?;
        }
        Ok(parser.finish())
    }

    #[test]
    fn parses_families_labels_and_escapes() {
        let store = parse(concat!(
            "# HELP up Whether up.\n",
            "# TYPE up gauge\n",
            "up{service=\"a\",pod=\"a-1\"} 1 1795338000\n",
            "up{service=\"a\",pod=\"a-1\"} 0 1795338015.5\n",
            "up{pod=\"a-2\", service=\"a\"} +Inf 1795338000.000\n",
            "info{v=\"say \\\"hi\\\" \\\\ x\\ny\",w=\"}{,\"} 1 1795338000 # {trace_id=\"x\"} 1\n",
            "plain 3.5e2 1795338000\n",
            "# EOF\n",
        ))
        .unwrap();
        assert_eq!(store.series.len(), 4);
        let up: Vec<_> = store.named("up").collect();
        assert_eq!(up[0].times, vec![1_795_338_000_000, 1_795_338_015_500]);
        assert_eq!(up[0].values, vec![1.0, 0.0]);
        assert_eq!(up[1].labels["pod"], "a-2");
        assert!(
            up[1].values.is_empty(),
            "an infinite sample is not a measurement"
        );
        let info = store.named("info").next().unwrap();
        assert_eq!(info.labels["v"], "say \"hi\" \\ x\ny");
        assert_eq!(info.labels["w"], "}{,");
        assert_eq!(store.named("plain").next().unwrap().values, vec![350.0]);
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let cases = [
            ("up{a=\"1\" 1 2", "unterminated label set"),
            ("up{a=1} 1 2", "not quoted"),
            ("up{a=\"1\"} one 2", "bad sample value \"one\""),
            ("up{a=\"1\"} 1", "without a timestamp"),
            ("up{a=\"1\"} 1 noon", "bad timestamp \"noon\""),
            ("up{a=\"1\",a=\"2\"} 1 2", "appears twice"),
            ("9up 1 2", "bad metric name"),
            ("up{a=\"\\t\"} 1 2", "bad escape"),
            ("# TYPE up sometimes", "unknown metric type"),
        ];
        for (line, want) in cases {
            let got = parse(line).unwrap_err();
            assert!(
                got.contains(want),
                "{line}: {got:?} should contain {want:?}"
            );
        }
    }

    #[test]
    fn out_of_order_samples_are_sorted() {
        let store = parse("x 1 20\ny 5 1\nx 2 10\nx 3 20\n").unwrap();
        let x = store.named("x").next().unwrap();
        assert_eq!(x.times, vec![10_000, 20_000]);
        assert_eq!(x.values, vec![2.0, 3.0]);
    }
}
