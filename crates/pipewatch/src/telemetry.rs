//! Logs: to stderr, as text lines (coloured only for a person at a terminal) or as one
//! JSON object per line; `RUST_LOG` sets the level (`info` by default).

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    /// `{"timestamp", "level", "target", "message", and the event's fields}`, for Loki,
    /// Elasticsearch and the like.
    Json,
}

/// Installs the global subscriber (once, at start).
pub fn init(format: LogFormat) {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    match format {
        // Colour only for a person at a terminal: journald, Loki and `kubectl logs` show
        // escape codes as text. NO_COLOR (no-color.org) turns it off there too.
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none())
            .init(),
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(false).with_span_list(false).init(),
    }
}
