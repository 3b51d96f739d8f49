//! The commands besides the daemon: those that only read a config (`check-config`, with
//! `--connect` asking the cluster too, and `rules`) and the self-contained `demo`.

use std::path::Path;

use crate::config::{self, Config};

pub mod check_config;
pub mod demo;
pub mod rules;

pub use check_config::check_config;
pub use rules::rules;

/// What a config-only command prints, and whether it passed (exit 0) or not (exit 1).
pub struct Outcome {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub(crate) fn failed(stdout: String, stderr: String) -> Self {
        Self { ok: false, stdout, stderr }
    }
}

/// The config at `path`, or the outcome that lists its problems.
pub(crate) fn load(path: &Path) -> Result<Config, Outcome> {
    config::load(path).map_err(|e| Outcome::failed(String::new(), format!("error: {e:#}\n")))
}
