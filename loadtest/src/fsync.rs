//! `loadtest fsync`: what the disk itself costs, to compare acknowledgement
//! latency with. Appends `count` records of `bytes` each to a fresh file in
//! `dir` (the store's filesystem), each followed by `fdatasync`, and reports
//! the sync's latency percentiles. A group commit of the store cannot answer
//! faster than one of these.

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

/// Latency of one append + `fdatasync`, in microseconds.
#[derive(Debug, Serialize)]
pub struct Report {
    pub samples: usize,
    pub bytes: usize,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// Runs the probe in `dir` (the file is removed afterwards).
pub fn probe(dir: &Path, count: usize, bytes: usize) -> anyhow::Result<Report> {
    anyhow::ensure!(count > 0, "--count must be at least 1");
    let path = dir.join(format!("fsync-probe-{}.bin", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)?;
    let record = vec![0x5a_u8; bytes];
    let mut us = Vec::with_capacity(count);
    let result = (|| {
        for _ in 0..count {
            let t = Instant::now();
            file.write_all(&record)?;
            file.sync_data()?;
            us.push(t.elapsed().as_micros() as u64);
        }
        Ok::<_, std::io::Error>(())
    })();
    let _ = std::fs::remove_file(&path);
    result?;
    us.sort_unstable();
    let at = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize];
    Ok(Report {
        samples: us.len(),
        bytes,
        p50_us: at(0.5),
        p99_us: at(0.99),
        max_us: *us.last().expect("count > 0"),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_ordered_percentiles_and_leaves_no_file() {
        let dir = std::env::temp_dir().join(format!("lt-fsync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let r = super::probe(&dir, 50, 4096).unwrap();
        assert_eq!(r.samples, 50);
        assert!(r.p50_us <= r.p99_us && r.p99_us <= r.max_us);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir(&dir).unwrap();
        assert!(super::probe(std::path::Path::new("/nonexistent-dir"), 1, 1).is_err());
    }
}
