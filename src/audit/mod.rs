//! The tamper-evident audit trail (issue 17, in progress on this branch): a
//! hash chain of entries ([`chain`]) with signed checkpoints
//! ([`checkpoint`]). Pure so far: building, hashing, signing and checking.

pub mod chain;
pub mod checkpoint;
