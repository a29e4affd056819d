//! `loadtest`: drives signed e-signature webhooks at a target (closed or open
//! loop, HDR latency percentiles, JSON results) and runs the baseline servers
//! countersign is compared against. See `loadtest/README.md`.

mod baseline;
mod browser;
mod chart;
mod drive;
mod fsync;
mod pace;
mod panel;
mod subscribe;
mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "loadtest",
    about = "Load generator and baseline server for countersign"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send signed webhooks to a target.
    Run {
        /// Target address, host:port (loopback only in this project's benchmarks).
        #[arg(long)]
        target: SocketAddr,
        /// Comma-separated providers to mix.
        #[arg(long, default_value = "standard_webhooks,docusign,yousign,boldsign")]
        providers: String,
        /// Open loop at this many requests per second; without it, closed loop.
        #[arg(long)]
        rate: Option<f64>,
        /// Connections (closed loop: concurrent senders; open loop: pool size).
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Share of requests that repeat an earlier one (a provider's retry).
        #[arg(long, default_value_t = 0.0)]
        duplicates: f64,
        /// Target body size in bytes (padded).
        #[arg(long, default_value_t = 0)]
        payload_bytes: usize,
        /// Signers per envelope.
        #[arg(long, default_value_t = 2)]
        signers: usize,
        /// With it, each envelope has between --signers and this many signers.
        #[arg(long)]
        signers_max: Option<usize>,
        /// Each webhook sends a new envelope out (its `sent` event only), so
        /// every envelope stays out for signing (e.g. to load timers).
        #[arg(long)]
        only_sent: bool,
        /// Requests the closed loop prepares before its window (default:
        /// 50 000 per second of --duration); a faster server reuses them
        /// (counted as `reused`). The open loop prepares rate × duration.
        #[arg(long)]
        pool: Option<usize>,
        /// Threads driving the connections (each a single-threaded runtime).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Write the JSON result here (also printed to stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Subscribe to the admin stream (`/v1/stream`, SSE) N times and measure
    /// each message's delivery latency: arrival minus the webhook's receipt
    /// (`at`). Needs `[envelopes] enabled = true` on the gateway.
    Subscribe {
        /// The gateway's admin address (loopback only).
        #[arg(long)]
        admin: SocketAddr,
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Seconds to listen.
        #[arg(long, default_value_t = 20.0)]
        duration: f64,
        /// Write the JSON result here (also printed to stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Time the admin API's answers to the status panel's pages against a
    /// gateway holding many envelopes (seed it first, e.g. `run --only-sent`).
    /// Registers `--register` of them with references. Prints JSON.
    Panel {
        /// The gateway's admin address (loopback only).
        #[arg(long)]
        admin: SocketAddr,
        /// `server.admin_token`, if set.
        #[arg(long)]
        token: Option<String>,
        /// Envelopes to give a reference, spread from newest to oldest.
        #[arg(long, default_value_t = 1000)]
        register: usize,
        /// Times each query is asked.
        #[arg(long, default_value_t = 20)]
        rounds: usize,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Open the status panel's envelopes page in headless Chromium and read
    /// its own counters after `--duration` seconds while something else sends
    /// webhooks: does the live list keep up? Prints JSON.
    PanelLive {
        /// The gateway's admin address (loopback only; no admin token).
        #[arg(long)]
        admin: SocketAddr,
        #[arg(long, default_value = "chromium")]
        chromium: PathBuf,
        #[arg(long, default_value_t = 20.0)]
        duration: f64,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the `[[sources]]` countersign needs to accept the generated webhooks.
    Sources,
    /// Measure one append + `fdatasync` in a directory (the store's disk):
    /// the floor of a group commit's latency. Prints JSON.
    Fsync {
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 2000)]
        count: usize,
        #[arg(long, default_value_t = 4096)]
        bytes: usize,
    },
    /// Draw latency against offered load (the sweep summarize.py writes) as a PNG.
    Chart {
        /// The sweep JSON (`loadtest/results/<date>/sweep.json`).
        #[arg(long)]
        input: PathBuf,
        /// The PNG to write.
        #[arg(long)]
        out: PathBuf,
        /// TrueType font for the text.
        #[arg(
            long,
            default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
        )]
        font: PathBuf,
    },
    /// Run the baseline server (read body, answer 200).
    Baseline {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Also verify one Standard Webhooks signature with this whsec_ secret.
        #[arg(long)]
        verify_whsec: Option<String>,
        /// Answer each request only once its body is appended to a log file
        /// in this directory and synced (`fdatasync`), in group commits.
        #[arg(long)]
        sync_dir: Option<PathBuf>,
    },
}

/// Prints a result as JSON and writes it to `out` if given.
fn emit<T: serde::Serialize>(result: &T, out: Option<PathBuf>) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(result)?;
    println!("{json}");
    if let Some(p) = out {
        std::fs::write(p, json)?;
    }
    Ok(())
}

/// Benchmarks only target loopback addresses.
fn loopback(addr: SocketAddr) -> anyhow::Result<()> {
    anyhow::ensure!(
        addr.ip().is_loopback(),
        "benchmarks only target loopback addresses"
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Sources => print!("{}", webhooks::countersign_sources()),
        Command::Fsync { dir, count, bytes } => {
            let r = fsync::probe(&dir, count, bytes)?;
            println!("{}", serde_json::to_string(&r)?);
        }
        Command::Subscribe {
            admin,
            subscribers,
            duration,
            out,
        } => {
            loopback(admin)?;
            let result =
                subscribe::run(admin, subscribers, Duration::from_secs_f64(duration)).await?;
            emit(&result, out)?;
        }
        Command::Panel {
            admin,
            token,
            register,
            rounds,
            out,
        } => {
            loopback(admin)?;
            let result = panel::run(admin, token, register, rounds).await?;
            emit(&result, out)?;
        }
        Command::PanelLive {
            admin,
            chromium,
            duration,
            out,
        } => {
            loopback(admin)?;
            let chromium = if chromium.components().count() == 1 {
                std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                    .map(|d| d.join(&chromium))
                    .find(|p| p.is_file())
                    .unwrap_or(chromium)
            } else {
                chromium
            };
            let result = browser::run(admin, &chromium, Duration::from_secs_f64(duration)).await?;
            emit(&result, out)?;
        }
        Command::Chart { input, out, font } => {
            let text = std::fs::read_to_string(&input)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", input.display()))?;
            let sweep: chart::Sweep = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{} is not a sweep: {e}", input.display()))?;
            chart::draw(&sweep, &out, &font)?;
            println!("{}", out.display());
        }
        Command::Baseline {
            listen,
            verify_whsec,
            sync_dir,
        } => {
            let key = verify_whsec
                .map(|s| {
                    base64::engine::general_purpose::STANDARD.decode(s.trim_start_matches("whsec_"))
                })
                .transpose()?;
            // The log is allocated before the port opens.
            let sync = sync_dir.as_deref().map(baseline::sync_log).transpose()?;
            let listener = tokio::net::TcpListener::bind(listen).await?;
            println!("{}", listener.local_addr()?);
            baseline::serve(listener, key, sync).await?;
        }
        Command::Run {
            target,
            providers,
            rate,
            connections,
            duration,
            duplicates,
            payload_bytes,
            signers,
            signers_max,
            only_sent,
            pool,
            threads,
            out,
        } => {
            loopback(target)?;
            let run_id = format!(
                "{:x}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_millis()
            );
            let cfg = webhooks::GenConfig {
                providers: providers.split(',').map(str::to_owned).collect(),
                duplicate_ratio: duplicates,
                payload_bytes,
                signers,
                signers_max,
                run_id,
                only_sent,
            };
            let mode = match rate {
                Some(rate) => drive::Mode::Open { rate, connections },
                None => drive::Mode::Closed { connections },
            };
            let pool = pool.unwrap_or((duration * 50_000.0).ceil() as usize);
            let result = tokio::task::block_in_place(|| {
                drive::run(
                    target,
                    mode,
                    Duration::from_secs_f64(duration),
                    &cfg,
                    pool,
                    threads,
                )
            })?;
            emit(&result, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod summary_tests;
