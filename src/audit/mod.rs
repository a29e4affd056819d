//! The tamper-evident audit trail: a hash chain of entries ([`chain`]) with
//! Ed25519-signed checkpoints ([`checkpoint`]), checked by one procedure
//! ([`verify`]) over a store or an export file ([`export`]). Pure: the store
//! keeps the entries, the tools read them.

pub mod chain;
pub mod checkpoint;
pub mod export;
pub mod verify;
