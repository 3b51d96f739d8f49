//! `pipewatch rules`: the Prometheus recording and alerting rules for a config.

use std::path::Path;

use super::{load, Outcome};
use crate::rules as generate;

/// `pipewatch rules`: the Prometheus rules (`prometheus`) or a PrometheusRule object
/// (`prometheusrule`) for the config at `path`.
pub fn rules(path: &Path, format: &str) -> Outcome {
    let c = match load(path) {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    let source = path.display().to_string();
    let stdout = match format {
        "prometheusrule" => generate::render_prometheus_rule(&c, &format!("{source} --format prometheusrule")),
        _ => generate::render(&c, &source),
    };
    Outcome { ok: true, stdout, stderr: String::new() }
}
