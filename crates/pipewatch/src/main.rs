#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
//! The `pipewatch` command: parses the command line, sets up logging, handles signals,
//! and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pipewatch::traffic::{self, Fault, GenerateOptions, Plan, Scheduled, Stream};
use pipewatch::{app, config, demo, rules};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

#[derive(Parser)]
#[command(
    name = "pipewatch",
    version,
    about = "Watches the Kafka topics of a data pipeline: freshness, completeness and sync"
)]
struct Cli {
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

#[derive(clap::Args)]
struct GenerateArgs {
    #[arg(long, default_value = "localhost:9092")]
    bootstrap_servers: String,
    /// A librdkafka property, KEY=VALUE (repeatable), e.g. -X security.protocol=SASL_SSL.
    #[arg(short = 'X', long = "property", value_parser = parse_property)]
    properties: Vec<(String, String)>,
    #[arg(long, default_value = "orders")]
    orders_topic: String,
    #[arg(long, default_value = "user-behaviour")]
    behaviour_topic: String,
    /// Records per second for each stream, spread over its partitions.
    #[arg(long, default_value_t = 20.0, value_parser = parse_rate)]
    rate: f64,
    /// Stop after this long (e.g. "10m"); runs until Ctrl-C when not given.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Behaviour events are written this long after they happen, from the start (e.g. "8h").
    #[arg(long, value_parser = parse_duration)]
    behaviour_delay: Option<Duration>,
    /// Share of the records, from the start, with no usable event time (0 to 1).
    #[arg(long, value_parser = parse_share)]
    invalid_share: Option<f64>,
    /// When the following faults start.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    fault_after: Duration,
    /// Write nothing to this partition, STREAM:PARTITION with STREAM orders or behaviour (repeatable).
    #[arg(long, value_parser = parse_partition)]
    silent_partition: Vec<(Stream, i32)>,
    /// Write nothing to this stream, orders or behaviour (repeatable).
    #[arg(long, value_parser = parse_stream)]
    stop_stream: Vec<Stream>,
    /// The rate falls to this fraction (0 to 1).
    #[arg(long, value_parser = parse_share)]
    volume_drop: Option<f64>,
}

impl GenerateArgs {
    fn into_options(self) -> GenerateOptions {
        let from_start = |fault| Scheduled { fault, from: Duration::ZERO, until: None };
        let later = |fault| Scheduled { fault, from: self.fault_after, until: None };
        let mut faults = Vec::new();
        faults.extend(self.behaviour_delay.map(|d| from_start(Fault::BehaviourDelay(d))));
        faults.extend(self.invalid_share.map(|x| from_start(Fault::InvalidShare(x))));
        faults.extend(self.silent_partition.iter().map(|(s, p)| later(Fault::SilentPartition(*s, *p))));
        faults.extend(self.stop_stream.iter().map(|s| later(Fault::StoppedStream(*s))));
        faults.extend(self.volume_drop.map(|x| later(Fault::VolumeDrop(x))));
        GenerateOptions {
            bootstrap_servers: self.bootstrap_servers,
            properties: self.properties,
            plan: Plan {
                orders_topic: self.orders_topic,
                behaviour_topic: self.behaviour_topic,
                rate: self.rate,
                faults,
            },
            duration: self.duration,
        }
    }
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("expected a positive number of records per second, got {s:?}")),
    }
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("expected a number from 0 to 1, got {s:?}")),
    }
}

fn parse_stream(s: &str) -> Result<Stream, String> {
    Stream::from_name(s).ok_or_else(|| format!("expected orders or behaviour, got {s:?}"))
}

fn parse_partition(s: &str) -> Result<(Stream, i32), String> {
    let (stream, partition) = s.split_once(':').ok_or_else(|| format!("expected STREAM:PARTITION, got {s:?}"))?;
    let partition = partition.parse::<i32>().ok().filter(|p| *p >= 0);
    Ok((parse_stream(stream)?, partition.ok_or_else(|| format!("expected a partition number, got {s:?}"))?))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    pipewatch_core::time::parse_duration(s)
}

/// How long a graceful shutdown may take before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Cancelled on the first SIGTERM or SIGINT; a second one, or a shutdown that takes
/// longer than [`SHUTDOWN_GRACE`], exits at once.
fn shutdown_signal() -> CancellationToken {
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
            _ = tokio::time::sleep(SHUTDOWN_GRACE) => {
                warn!("shutdown took longer than {SHUTDOWN_GRACE:?}: exiting now");
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
            let token = shutdown_signal();
            app::run(config, listener, token.cancelled_owned(), |_, _| {}).await
        }
        Command::Demo { duration, listen } => {
            let token = shutdown_signal();
            demo::run(&listen, duration, token.cancelled_owned()).await
        }
        Command::Generate(args) => {
            let token = shutdown_signal();
            traffic::generate(args.into_options(), token.cancelled_owned()).await
        }
        Command::CheckConfig { .. } | Command::Rules { .. } => unreachable!("handled without a runtime"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    // The commands that only read a config need no runtime.
    let offline = match &cli.command {
        Command::CheckConfig { config } => Some((config, None)),
        Command::Rules { config, format } => Some((config, Some(format.as_str()))),
        _ => None,
    };
    if let Some((path, rules_format)) = offline {
        let c = match config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let source = path.display().to_string();
        match rules_format {
            None => println!(
                "{source}: ok ({} streams, {} pairs, {} alerts)",
                c.streams.len(),
                c.pairs.len(),
                c.alerts.len()
            ),
            Some("prometheusrule") => {
                print!("{}", rules::render_prometheus_rule(&c, &format!("{source} --format prometheusrule")))
            }
            Some(_) => print!("{}", rules::render(&c, &source)),
        }
        return ExitCode::SUCCESS;
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
