//! The `countersign` binary: parse the command line, load config, set up logging,
//! call into the library. Nothing else lives here.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: the request path allocates many small, short-lived buffers (bodies,
/// JSON values, events) across threads, where glibc's malloc showed up at ~12%
/// of CPU in profiles. See BENCHMARKS.md for the measured difference.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use countersign::cli::{self, SignArgs, SignFormat};
use countersign::{app, config, telemetry};

#[derive(Parser)]
#[command(
    name = "countersign",
    version,
    about = "Webhook gateway for e-signature events"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// TOML config file; without it the built-in defaults (and environment) apply.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Routing tools.
    Route {
        #[command(subcommand)]
        command: RouteCommand,
    },
    /// Dead-lettered HTTP deliveries, through the admin API of a running gateway.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Quarantined events (authentic but implausible), through the admin
    /// API of a running gateway.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Probe a running gateway's admin API: exit 0 when `/healthz` (or, with
    /// `--ready`, `/readyz`) answers 200, 1 otherwise. For container health checks.
    Health {
        #[command(flatten)]
        admin: AdminArgs,
        /// Probe `/readyz` (taking webhooks) instead of `/healthz` (alive).
        #[arg(long)]
        ready: bool,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 3.0)]
        timeout: f64,
    },
    /// Print what makes a body a validly signed webhook for a source.
    Sign {
        #[arg(long)]
        config: Option<PathBuf>,
        /// The source id (`[[sources]] id`).
        #[arg(long)]
        source: String,
        /// File with the body, or `-` for standard input.
        #[arg(long, conflicts_with = "data")]
        body: Option<PathBuf>,
        /// The body itself.
        #[arg(long)]
        data: Option<String>,
        /// Message id for schemes that sign one (Standard Webhooks).
        #[arg(long)]
        id: Option<String>,
        /// Unix time to sign with (default: now).
        #[arg(long)]
        timestamp: Option<i64>,
        /// Base URL of the gateway (default: from server.listen).
        #[arg(long)]
        url: Option<String>,
        #[arg(long, value_enum, default_value = "curl")]
        format: SignFormat,
    },
}

#[derive(clap::Args)]
struct AdminArgs {
    /// Config file; its server.admin_listen says where the admin API is and
    /// its server.admin_token how to authenticate (else the environment
    /// variable COUNTERSIGN_ADMIN_TOKEN).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Admin API base URL, e.g. http://127.0.0.1:9090 (overrides --config).
    #[arg(long)]
    admin: Option<String>,
}

#[derive(Subcommand)]
enum QuarantineCommand {
    /// List quarantined events, newest first (held ones by default).
    List {
        #[command(flatten)]
        admin: AdminArgs,
        /// `held`, `released`, `rejected` or `all`.
        #[arg(long)]
        status: Option<String>,
        /// Only this source's.
        #[arg(long)]
        source: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Continue before this sequence number.
        #[arg(long)]
        before: Option<u64>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Release a held event: it is routed (and applied to its envelope) now.
    Release {
        #[command(flatten)]
        admin: AdminArgs,
        /// The event id.
        id: String,
        /// The source, when several sources used the id.
        #[arg(long)]
        source: Option<String>,
    },
    /// Reject a held event: it is never routed.
    Reject {
        #[command(flatten)]
        admin: AdminArgs,
        id: String,
        #[arg(long)]
        source: Option<String>,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// List dead letters (by endpoint, then sequence).
    List {
        #[command(flatten)]
        admin: AdminArgs,
        /// Only this endpoint's.
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Continue after this dead letter id.
        #[arg(long)]
        after: Option<String>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Deliver a dead letter again (keeps its history), or all of an endpoint's.
    Replay {
        #[command(flatten)]
        admin: AdminArgs,
        /// Dead letter id (`endpoint:sequence`).
        #[arg(required_unless_present = "endpoint", conflicts_with = "endpoint")]
        id: Option<String>,
        #[arg(long)]
        endpoint: Option<String>,
    },
    /// Drop a dead letter (its history stays with the event).
    Discard {
        #[command(flatten)]
        admin: AdminArgs,
        id: String,
    },
    /// Drop every waiting delivery and dead letter of an endpoint that is no
    /// longer in the config (the gateway reports them at start-up).
    Purge {
        #[command(flatten)]
        admin: AdminArgs,
        /// The endpoint id.
        #[arg(long)]
        endpoint: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the config and print the effective settings, secrets redacted.
    Check {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Re-computes the hash chain of a stopped gateway's store (read only),
    /// or of an export file, and checks every checkpoint: exit 0 when every
    /// link holds, 1 naming the first broken one, 2 when it cannot be read.
    Verify {
        /// The store directory (`store.path`), or an export file.
        #[arg(long)]
        store: PathBuf,
        /// Public keys (64 hex digits each) whose signatures count; from
        /// `audit pubkey`. Without one, signatures are not checked.
        #[arg(long)]
        pubkey: Vec<String>,
        /// The gateway's config: commits a crash left in the store's
        /// write-ahead log are replayed first, as the gateway's next start
        /// would (without it, such a store is refused).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Writes audit entries of a stopped gateway's store as JSON Lines to
    /// stdout: those the filters select in full, the chain links between
    /// them by digest, up to the signed checkpoint covering the last one,
    /// so the file verifies with the public key alone.
    Export {
        /// The store directory (`store.path`).
        #[arg(long)]
        store: PathBuf,
        /// One envelope's trail: SOURCE/ENVELOPE_ID.
        #[arg(long)]
        envelope: Option<String>,
        /// Entries at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Entries at or before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// The output format (JSON Lines, the only one).
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// The gateway's config, to replay a write-ahead log a crash left
        /// (see `audit verify`).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Prints the public key of `audit.signing_key` (64 hex digits) and its id.
    Pubkey {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    Jsonl,
}

#[derive(Subcommand)]
enum RouteCommand {
    /// Print which routes match an event and why: each route's filters and
    /// its `when` result, then the topics and endpoints it would go to.
    Test {
        #[arg(long)]
        config: Option<PathBuf>,
        /// A normalized event as JSON (as stored, or as a topic receives it).
        #[arg(long)]
        event: PathBuf,
        /// The envelope block as JSON (`state`, `reference`, `metadata`,
        /// `progress`, `signers`), for conditions on `envelope`; default: the
        /// event's own `envelope`.
        #[arg(long)]
        envelope: Option<PathBuf>,
    },
}

fn load(path: Option<&PathBuf>) -> Result<app::Loaded, ExitCode> {
    app::load(path.map(PathBuf::as_path)).map_err(|e| {
        eprint!("{e}");
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config } => serve(config),
        Command::Config {
            command: ConfigCommand::Check { config },
        } => load(config.as_ref()).map(|l| {
            print!("{}", l.config.to_toml());
            for w in &l.warnings {
                eprintln!("warning: `{}`: {}\n      fix: {}", w.key, w.problem, w.fix);
            }
            eprint!("{}", l.redaction_report());
            eprintln!("config ok: {} source(s)", l.sources.len());
        }),
        Command::Sign {
            config,
            source,
            body,
            data,
            id,
            timestamp,
            url,
            format,
        } => load(config.as_ref()).and_then(|l| {
            let body = read_body(body, data)?;
            let args = SignArgs {
                source: &source,
                body: &body,
                id,
                timestamp,
                base_url: url,
                format,
            };
            cli::sign(&l, args)
                .map(|out| println!("{out}"))
                .map_err(|e| {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                })
        }),
        Command::Route {
            command:
                RouteCommand::Test {
                    config,
                    event,
                    envelope,
                },
        } => load(config.as_ref()).and_then(|l| {
            let read = |p: &PathBuf| {
                std::fs::read(p).map_err(|e| {
                    eprintln!("error: cannot read {}: {e}", p.display());
                    ExitCode::from(2)
                })
            };
            let event = read(&event)?;
            let envelope = envelope.as_ref().map(read).transpose()?;
            cli::route_test(&l, &event, envelope.as_deref())
                .map(|out| print!("{out}"))
                .map_err(|e| {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                })
        }),
        Command::Audit {
            command:
                AuditCommand::Verify {
                    store,
                    pubkey,
                    config,
                },
        } => cli::audit::keys(&pubkey)
            .and_then(|keys| {
                cli::audit::replay_log(&store, config.as_deref())?;
                cli::audit::verify(&store, &keys)
            })
            .map(|line| println!("{line}"))
            .map_err(|e| {
                match e {
                    cli::audit::ToolError::Broken(_) => println!("{e}"),
                    cli::audit::ToolError::Unreadable(_) => eprintln!("{e}"),
                }
                ExitCode::from(e.exit_code())
            }),
        Command::Audit {
            command:
                AuditCommand::Export {
                    store,
                    envelope,
                    since,
                    until,
                    format: _,
                    config,
                },
        } => cli::audit::filter(envelope.as_deref(), since.as_deref(), until.as_deref())
            .and_then(|f| {
                cli::audit::replay_log(&store, config.as_deref())?;
                let stdout = std::io::stdout();
                let mut out = std::io::BufWriter::new(stdout.lock());
                cli::audit::export(&store, &f, &mut out)
            })
            .map(|shown| eprintln!("exported {shown} entries in full"))
            .map_err(|e| {
                eprintln!("{e}");
                ExitCode::from(e.exit_code())
            }),
        Command::Audit {
            command: AuditCommand::Pubkey { config },
        } => load(config.as_ref()).and_then(|l| match l.audit_public_key() {
            Some((key, id)) => {
                println!("{key} (key id {id})");
                Ok(())
            }
            None => {
                eprintln!("error: audit.enabled with audit.signing_key is not configured");
                Err(ExitCode::from(2))
            }
        }),
        Command::Dlq { command } => dlq(command),
        Command::Quarantine { command } => quarantine(command),
        Command::Health {
            admin,
            ready,
            timeout,
        } => health(admin, ready, timeout),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

fn read_body(path: Option<PathBuf>, data: Option<String>) -> Result<Vec<u8>, ExitCode> {
    let fail = |e: std::io::Error| {
        eprintln!("error: cannot read the body: {e}");
        ExitCode::from(2)
    };
    match (path, data) {
        (_, Some(d)) => Ok(d.into_bytes()),
        (Some(p), None) if p.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).map_err(fail)?;
            Ok(buf)
        }
        (Some(p), None) => std::fs::read(&p).map_err(fail),
        (None, None) => {
            eprintln!("error: give the body with --body FILE, --body - or --data");
            Err(ExitCode::from(2))
        }
    }
}

fn serve(path: Option<PathBuf>) -> Result<(), ExitCode> {
    let loaded = load(path.as_ref())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::FAILURE
        })?;
    // The trace exporter sends on this runtime.
    let telemetry = {
        let _rt = rt.enter();
        telemetry::init(&loaded.telemetry)
    };
    let result = rt.block_on(async {
        let listeners = app::Listeners::bind(&loaded.config.server).await?;
        app::run(loaded, listeners, shutdown_signal()).await
    });
    // Spans still queued are exported while the runtime is alive.
    telemetry.shutdown();
    result.map_err(|e| {
        tracing::error!(
            error = format!("{e:#}"),
            "countersign stopped with an error"
        );
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}

fn dlq(command: DlqCommand) -> Result<(), ExitCode> {
    let (admin, action) = match command {
        DlqCommand::List {
            admin,
            endpoint,
            limit,
            after,
            json,
        } => (
            admin,
            countersign::dlq::Action::List {
                endpoint,
                limit,
                after,
                json,
            },
        ),
        DlqCommand::Replay {
            admin,
            id,
            endpoint,
        } => (admin, countersign::dlq::Action::Replay { id, endpoint }),
        DlqCommand::Discard { admin, id } => (admin, countersign::dlq::Action::Discard { id }),
        DlqCommand::Purge { admin, endpoint } => {
            (admin, countersign::dlq::Action::Purge { endpoint })
        }
    };
    admin_client(admin, async |base, token| {
        countersign::dlq::run(&base, token.as_deref(), action).await
    })
}

/// Runs one admin API client call (`dlq`, `quarantine`) with the admin
/// API's base URL and token, and prints its result.
fn admin_client(
    admin: AdminArgs,
    call: impl AsyncFnOnce(String, Option<String>) -> anyhow::Result<String>,
) -> Result<(), ExitCode> {
    let token = admin_token(&admin)?;
    let base = admin_url(admin)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|_| ExitCode::FAILURE)?;
    match rt.block_on(call(base, token)) {
        Ok(out) => {
            println!("{out}");
            Ok(())
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            Err(ExitCode::FAILURE)
        }
    }
}

fn quarantine(command: QuarantineCommand) -> Result<(), ExitCode> {
    use countersign::cli::quarantine::Action;
    let (admin, action) = match command {
        QuarantineCommand::List {
            admin,
            status,
            source,
            limit,
            before,
            json,
        } => (
            admin,
            Action::List {
                status,
                source,
                limit,
                before,
                json,
            },
        ),
        QuarantineCommand::Release { admin, id, source } => (
            admin,
            Action::Decide {
                id,
                source,
                release: true,
            },
        ),
        QuarantineCommand::Reject { admin, id, source } => (
            admin,
            Action::Decide {
                id,
                source,
                release: false,
            },
        ),
    };
    admin_client(admin, async |base, token| {
        countersign::cli::quarantine::run(&base, token.as_deref(), action).await
    })
}

/// The admin API token: the config's `server.admin_token` (with `--config`),
/// else `COUNTERSIGN_ADMIN_TOKEN`, else none.
fn admin_token(admin: &AdminArgs) -> Result<Option<String>, ExitCode> {
    if let Some(path) = &admin.config {
        let cfg = config::layers(Some(path)).map_err(|e| {
            eprint!("{e}");
            ExitCode::from(2)
        })?;
        if let Some(t) = cfg.server.admin_token {
            return t.resolve().map(Some).map_err(|(problem, fix)| {
                eprintln!("error: `server.admin_token`: {problem}\n      fix: {fix}");
                ExitCode::from(2)
            });
        }
    }
    Ok(std::env::var("COUNTERSIGN_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty()))
}

/// The admin API's base URL: `--admin`, else the config's `server.admin_listen`.
fn admin_url(admin: AdminArgs) -> Result<String, ExitCode> {
    match admin.admin {
        Some(url) => Ok(url.trim_end_matches('/').to_owned()),
        None => {
            let cfg = config::layers(admin.config.as_deref()).map_err(|e| {
                eprint!("{e}");
                ExitCode::from(2)
            })?;
            Ok(countersign::dlq::admin_base(cfg.server.admin_listen))
        }
    }
}

fn health(admin: AdminArgs, ready: bool, timeout: f64) -> Result<(), ExitCode> {
    let base = admin_url(admin)?;
    let path = if ready { "/readyz" } else { "/healthz" };
    let timeout = std::time::Duration::try_from_secs_f64(timeout).map_err(|_| {
        eprintln!("error: --timeout takes seconds, e.g. 3 or 0.5");
        ExitCode::from(2)
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|_| ExitCode::FAILURE)?;
    match rt.block_on(countersign::dlq::probe(&base, path, timeout)) {
        Ok(()) => {
            println!("ok: {base}{path}");
            Ok(())
        }
        Err(e) => {
            eprintln!("unhealthy: {e:#}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
