//! `countersign audit verify` and `audit export`: the offline tools over a
//! stopped gateway's store or an export file. Exit codes: 0 the log holds,
//! 1 it is broken (the first broken link named), 2 it could not be read.

use std::io::{BufRead, Write};
use std::path::Path;

use ed25519_dalek::VerifyingKey;

use crate::audit::verify::{Failure, Report};
use crate::store::{AuditFilter, AuditVerifyError};

/// Why a tool failed: `Broken` is the verdict (exit 1), `Unreadable` an
/// input or I/O problem (exit 2).
#[derive(Debug)]
pub enum ToolError {
    Broken(String),
    Unreadable(String),
}

impl ToolError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ToolError::Broken(_) => 1,
            ToolError::Unreadable(_) => 2,
        }
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToolError::Broken(m) => write!(f, "broken: {m}"),
            ToolError::Unreadable(m) => write!(f, "error: {m}"),
        }
    }
}

fn verdict(f: Failure) -> ToolError {
    match f {
        Failure::Input(m) => ToolError::Unreadable(m),
        other => ToolError::Broken(other.to_string()),
    }
}

/// Public keys from `--pubkey` values.
pub fn keys(hex_keys: &[String]) -> Result<Vec<VerifyingKey>, ToolError> {
    hex_keys
        .iter()
        .map(|k| crate::audit::checkpoint::verifying_key(k))
        .collect::<Result<_, _>>()
        .map_err(|e| ToolError::Unreadable(format!("--pubkey: {e}")))
}

/// Before reading a store directory: commits its write-ahead log holds
/// beyond the database (a gateway stopped by a crash) are replayed with the
/// gateway's config, as its next start would; without a config, such a
/// store is refused rather than read without its newest entries.
pub fn replay_log(path: &Path, config: Option<&Path>) -> Result<(), ToolError> {
    if path.is_file() {
        return Ok(());
    }
    let pending = {
        let db =
            crate::store::audit_open_dir(path).map_err(|e| ToolError::Unreadable(e.to_string()))?;
        let txn = db
            .begin_read()
            .map_err(|e| ToolError::Unreadable(e.to_string()))?;
        crate::store::wal_pending(path, &txn).map_err(|e| ToolError::Unreadable(e.to_string()))?
    };
    if pending == 0 {
        return Ok(());
    }
    let Some(config) = config else {
        return Err(ToolError::Unreadable(format!(
            "the store's write-ahead log holds {pending} group commits the database does not (the gateway stopped without a checkpoint: a crash?); pass --config with the gateway's config to replay them first, or start the gateway on this store once"
        )));
    };
    let loaded = crate::app::load(Some(config))
        .map_err(|e| ToolError::Unreadable(format!("--config: {e}")))?;
    let replayed = crate::app::replay_store(loaded, path)
        .map_err(|e| ToolError::Unreadable(format!("replaying the write-ahead log: {e:#}")))?;
    eprintln!(
        "note: replayed {replayed} group commits from the store's write-ahead log (a crash left them), as the gateway's next start would"
    );
    Ok(())
}

/// Verifies `path`: a store directory (a stopped gateway's, read only) or
/// an export file. Returns the summary line.
pub fn verify(path: &Path, keys: &[VerifyingKey]) -> Result<String, ToolError> {
    let started = std::time::Instant::now();
    let report = if path.is_file() {
        let file = std::fs::File::open(path)
            .map_err(|e| ToolError::Unreadable(format!("{}: {e}", path.display())))?;
        let lines = std::io::BufReader::new(file)
            .lines()
            .map(|l| l.map_err(|e| e.to_string()));
        crate::audit::export::verify_lines(lines, keys).map_err(verdict)?
    } else {
        let db =
            crate::store::audit_open_dir(path).map_err(|e| ToolError::Unreadable(e.to_string()))?;
        if matches!(db, crate::store::AuditStore::Repaired(_)) {
            eprintln!(
                "note: the store was not closed cleanly (a crash?): redb rebuilt its free-page state on open, as the gateway's next start would; the entries are read as they are"
            );
        }
        crate::store::audit_verify_db(&db, keys).map_err(|e| match e {
            AuditVerifyError::Failed(f) => verdict(f),
            other => ToolError::Unreadable(other.to_string()),
        })?
    };
    Ok(summary(&report, keys, started.elapsed().as_secs_f64()))
}

fn summary(r: &Report, keys: &[VerifyingKey], secs: f64) -> String {
    let Some((seq, hash)) = r.head else {
        return "ok: the audit log is empty".into();
    };
    format!(
        "ok: {} entries ({}..{seq}), head {}, {} checkpoints {}, {} entries after the last checkpoint, {:.0} entries/s",
        r.links,
        r.first.unwrap_or(seq),
        hex::encode(hash),
        r.checkpoints,
        if keys.is_empty() {
            "(heads compared; signatures not checked: no --pubkey)"
        } else {
            "with verified signatures"
        },
        r.unsigned_tail,
        r.links as f64 / secs.max(1e-9)
    )
}

/// The filter of `audit export` from its flags.
pub fn filter(
    envelope: Option<&str>,
    since: Option<&str>,
    until: Option<&str>,
) -> Result<AuditFilter, ToolError> {
    AuditFilter::parse(envelope, since, until).map_err(|e| ToolError::Unreadable(format!("--{e}")))
}

/// Writes the export of a stopped gateway's store to `out` (JSON Lines);
/// returns the entries shown in full.
pub fn export(store: &Path, filter: &AuditFilter, out: &mut dyn Write) -> Result<u64, ToolError> {
    let db =
        crate::store::audit_open_dir(store).map_err(|e| ToolError::Unreadable(e.to_string()))?;
    let txn = db
        .begin_read()
        .map_err(|e| ToolError::Unreadable(e.to_string()))?;
    let now = crate::time::Clock::System.now_ms();
    let shown = crate::store::audit_export_db(&txn, filter, now, &mut |line| {
        serde_json::to_writer(&mut *out, line)?;
        out.write_all(b"\n")
    })
    .map_err(|e| ToolError::Unreadable(e.to_string()))?;
    out.flush()
        .map_err(|e| ToolError::Unreadable(e.to_string()))?;
    Ok(shown)
}
