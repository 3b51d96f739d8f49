//! Every problem of a config, each with its key path: collected while validating, then
//! reported at once ([`ConfigError`]); and the key path of a TOML syntax error.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use pipewatch_core::time::parse_duration;

/// Every problem found, each with its key path.
#[derive(Debug)]
pub struct ConfigError {
    pub problems: Vec<(String, String)>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(f, "config is invalid ({n} problem{})", if n == 1 { "" } else { "s" })?;
        for (key, msg) in &self.problems {
            write!(f, "\n  {key}: {msg}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[derive(Default)]
pub(crate) struct Problems(pub(crate) Vec<(String, String)>);

impl Problems {
    pub(crate) fn add(&mut self, key: impl Into<String>, msg: impl Into<String>) {
        self.0.push((key.into(), msg.into()));
    }

    pub(crate) fn duration(&mut self, key: impl Into<String>, text: &str) -> Duration {
        match parse_duration(text) {
            Ok(d) => d,
            Err(e) => {
                self.add(key, e);
                Duration::ZERO
            }
        }
    }

    pub(crate) fn positive_duration(&mut self, key: &str, text: &str) -> Duration {
        let d = self.duration(key, text);
        if d.is_zero() && parse_duration(text).is_ok() {
            self.add(key, "must be greater than zero");
        }
        d
    }

    /// The problems found since `before` (a length of the list taken earlier).
    pub(crate) fn since(&self, before: usize) -> bool {
        self.0.len() > before
    }
}

/// Names the place of a TOML error: the key path (`stream[1].max_silence`) as far as
/// the text shows it, and the line.
pub(crate) fn key_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_no = text[..offset].matches('\n').count() + 1;
    let mut table = String::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let raw_line = text[line_start..].lines().next().unwrap_or("");
    let line = raw_line.trim();
    // A table's own header counts when the error points at it (e.g. a missing field).
    let headers_end = if line.starts_with('[') { line_start + raw_line.len() } else { line_start };
    for l in text[..headers_end].lines().map(str::trim) {
        if let Some(name) = l.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim();
            let n = counts.entry(name).or_insert(0);
            table = format!("{name}[{n}]");
            *n += 1;
        } else if let Some(name) = l.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = name.trim().to_string();
        }
    }
    let key = match line.split_once('=') {
        Some((k, _)) if !line.starts_with('[') => k.trim().trim_matches('"'),
        _ => "",
    };
    let path = match (table.is_empty(), key.is_empty()) {
        (true, true) => "config".to_string(),
        (true, false) => key.to_string(),
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    };
    format!("{path} (line {line_no})")
}
