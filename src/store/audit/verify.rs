//! `audit verify` on a store: opens a stopped gateway's database and runs
//! [`crate::audit::verify`] over its entries and checkpoints, from the
//! genesis or from the signed checkpoint a prune left as the start.

use std::collections::BTreeMap;
use std::path::Path;

use ed25519_dalek::VerifyingKey;
use redb::{ReadableDatabase as _, ReadableTable};

use super::{AUDIT, CHECKPOINTS, decode};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::verify::{Failure, Report, Start, verify};
use crate::store::StoreError;

/// Why `audit verify` (or `audit export`) could not read or vouch for a store.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "cannot open the store at {path}: {reason} (is the gateway still running? verify a stopped gateway's store, or an export)"
    )]
    Open { path: String, reason: String },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Failed(#[from] Failure),
}

/// A stopped gateway's store, opened for reading.
pub enum Opened {
    /// Read only: the file is not written.
    ReadOnly(redb::ReadOnlyDatabase),
    /// The gateway did not stop cleanly (a crash, `kill -9`): redb had to
    /// rebuild its free-page state on open, as the gateway's next start
    /// would. Tables are not touched.
    Repaired(redb::Database),
}

impl Opened {
    pub fn begin_read(&self) -> Result<redb::ReadTransaction, redb::TransactionError> {
        match self {
            Opened::ReadOnly(d) => d.begin_read(),
            Opened::Repaired(d) => d.begin_read(),
        }
    }
}

/// Opens the store in `dir` without creating anything: read only, unless
/// it was not closed cleanly (see [`Opened::Repaired`]).
pub fn open_dir(dir: &Path) -> Result<Opened, VerifyError> {
    let path = dir.join(crate::store::DB_FILE);
    let open_err = |e: &dyn std::fmt::Display| VerifyError::Open {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    if !path.exists() {
        return Err(open_err(&"no such file"));
    }
    match redb::ReadOnlyDatabase::open(&path) {
        Ok(db) => Ok(Opened::ReadOnly(db)),
        Err(redb::DatabaseError::RepairAborted) => redb::Database::open(&path)
            .map(Opened::Repaired)
            .map_err(|e| open_err(&e)),
        Err(e) => Err(open_err(&e)),
    }
}

/// Every checkpoint of a store, by the sequence it signs.
pub(super) fn checkpoints(
    txn: &redb::ReadTransaction,
) -> Result<BTreeMap<u64, Checkpoint>, VerifyError> {
    let mut out = BTreeMap::new();
    for row in txn
        .open_table(CHECKPOINTS)
        .map_err(StoreError::from)?
        .iter()
        .map_err(StoreError::from)?
    {
        let (k, v) = row.map_err(StoreError::from)?;
        let c: Checkpoint = serde_json::from_slice(v.value()).map_err(|e| Failure::Checkpoint {
            seq: k.value(),
            problem: format!("does not decode: {e}"),
        })?;
        out.insert(k.value(), c);
    }
    Ok(out)
}

/// Where a store's chain starts: the genesis, or after a prune the
/// checkpoint signing the entry before the first one left.
pub(super) fn start(
    first: Option<u64>,
    checkpoints: &mut BTreeMap<u64, Checkpoint>,
) -> Result<Start, Failure> {
    match first {
        None | Some(1) => Ok(Start::Genesis),
        Some(f) => checkpoints.remove(&(f - 1)).map(Start::Anchor).ok_or_else(|| {
            Failure::Input(format!(
                "the chain starts at entry {f}, but no checkpoint signs entry {}: entries were removed from its start",
                f - 1
            ))
        }),
    }
}

/// Re-computes the chain of the store in the directory `dir` (a stopped
/// gateway's; read only), entry by entry, and checks every checkpoint's
/// head against it and, with `keys`, its signature.
pub fn verify_dir(dir: &Path, keys: &[VerifyingKey]) -> Result<Report, VerifyError> {
    verify_db(&open_dir(dir)?, keys)
}

/// [`verify_dir`] on a store already opened.
pub fn verify_db(db: &Opened, keys: &[VerifyingKey]) -> Result<Report, VerifyError> {
    let txn = db.begin_read().map_err(StoreError::from)?;
    let t = txn.open_table(AUDIT).map_err(StoreError::from)?;
    let mut cps = checkpoints(&txn)?;
    let first = t.first().map_err(StoreError::from)?.map(|(k, _)| k.value());
    let start = start(first, &mut cps)?;
    let rows = t.iter().map_err(StoreError::from)?.map(|row| {
        let (k, v) = row.map_err(|e| e.to_string())?;
        decode(v.value())
            .map(|e| e.link())
            .map_err(|e| format!("entry {}: {e}", k.value()))
    });
    Ok(verify(rows, &start, &cps, keys)?)
}
