#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
//! The `pipewatch` command: parses the command line, sets up logging, handles signals,
//! and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pipewatch::telemetry::{self, LogFormat};
use pipewatch::{app, commands, config};
use pipewatch_traffic::cli::GenerateArgs;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

#[derive(Parser)]
#[command(
    name = "pipewatch",
    version,
    about = "Watches the Kafka topics of a data pipeline: freshness, completeness and sync"
)]
struct Cli {
    /// Log lines as text, or as JSON (one object per line, the event's fields as keys,
    /// for Loki, Elasticsearch and the like).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        #[arg(long, default_value = "pipewatch.toml")]
        config: PathBuf,
    },
    /// Validate a config file: exit 0, or 1 listing every problem with its key.
    CheckConfig {
        #[arg(long, default_value = "pipewatch.toml")]
        config: PathBuf,
        /// Also connect to the cluster: exit 1 when it does not answer or a topic is missing.
        #[arg(long)]
        connect: bool,
    },
    /// No broker needed: an in-process Kafka with synthetic traffic and a scripted fault.
    Demo {
        /// Stop after this long (e.g. "90s"); runs until Ctrl-C when not given.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Where the HTTP interface listens.
        #[arg(long, default_value_t = config::default_listen())]
        listen: String,
    },
    /// Write synthetic orders and behaviour traffic, with faults, into a (test) cluster.
    Generate(GenerateArgs),
    /// Print the Prometheus recording and alerting rules for a config.
    Rules {
        #[arg(long, default_value = "pipewatch.toml")]
        config: PathBuf,
        /// `prometheus`: a rules file; `prometheusrule`: a Kubernetes PrometheusRule object.
        #[arg(long, default_value = "prometheus", value_parser = ["prometheus", "prometheusrule"])]
        format: String,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    pipewatch_core::time::parse_duration(s)
}

/// How long a graceful shutdown may take before the process exits anyway, besides the
/// time `pipewatch run` gives its receivers (`shutdown.grace`): closing the Kafka client.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Cancelled on the first SIGTERM or SIGINT; a second one, or a shutdown that takes
/// longer than `limit`, exits at once.
fn shutdown_signal(limit: Duration) -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        wait_signal().await;
        info!("shutting down (send the signal again to exit at once)");
        t.cancel();
        tokio::select! {
            _ = wait_signal() => {
                warn!("second signal: exiting now");
                std::process::exit(130);
            }
            _ = tokio::time::sleep(limit) => {
                warn!("shutdown took longer than {limit:?}: exiting now");
                std::process::exit(1);
            }
        }
    });
    token
}

async fn wait_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run { config } => {
            let config = config::load(&config)?;
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("failed to listen on {} (http.listen)", config.listen))?;
            let token = shutdown_signal(config.shutdown_grace + SHUTDOWN_GRACE);
            app::run(config, listener, token.cancelled_owned()).await
        }
        Command::Demo { duration, listen } => {
            let token = shutdown_signal(SHUTDOWN_GRACE);
            commands::demo::run(&listen, duration, token.cancelled_owned()).await
        }
        Command::Generate(args) => {
            let token = shutdown_signal(SHUTDOWN_GRACE);
            let mut options = args.into_options();
            if let Some(url) = &options.schema_registry {
                let subject = format!("{}-value", options.plan.orders_topic);
                let id = pipewatch::registry::register(url, &subject, pipewatch_traffic::avro::ORDER_SCHEMA)
                    .await
                    .map_err(|e| anyhow::anyhow!("failed to register the orders' Avro schema at {url}: {e}"))?;
                println!("orders are Avro: schema {id} ({subject} at {url})");
                options.plan.orders_avro = Some(id);
            }
            pipewatch_traffic::generate(options, token.cancelled_owned()).await
        }
        Command::CheckConfig { .. } | Command::Rules { .. } => unreachable!("handled without a runtime"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    // The commands that only read a config need no runtime.
    let offline = match &cli.command {
        Command::CheckConfig { config, connect } => Some(commands::check_config(config, *connect)),
        Command::Rules { config, format } => Some(commands::rules(config, format)),
        _ => None,
    };
    if let Some(outcome) = offline {
        print!("{}", outcome.stdout);
        eprint!("{}", outcome.stderr);
        return if outcome.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
