//! W3C Trace Context for deliveries: a webhook that arrived with a
//! `traceparent` has its deliveries sent as children of that trace (same trace
//! id, a new parent id per attempt, the same flags), so a receiver's trace links
//! back to the caller's.

/// The header if it is a valid version-00 `traceparent`, else `None`.
pub fn parse(v: &str) -> Option<&str> {
    let v = v.trim();
    let parts: Vec<&str> = v.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let zero = |s: &str| s.bytes().all(|b| b == b'0');
    match parts.as_slice() {
        [ver, trace, parent, flags]
            if *ver == "00"
                && hex(trace, 32)
                && !zero(trace)
                && hex(parent, 16)
                && !zero(parent)
                && hex(flags, 2) =>
        {
            Some(v)
        }
        _ => None,
    }
}

/// A child of `parent` (a valid `traceparent`) with a random parent id.
pub fn child(parent: &str) -> String {
    let trace = &parent[3..35];
    let flags = &parent[53..55];
    let span = loop {
        let s = fastrand::u64(..);
        if s != 0 {
            break s;
        }
    };
    format!("00-{trace}-{span:016x}-{flags}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn valid_headers_only() {
        assert_eq!(parse(TP), Some(TP));
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_child_keeps_the_trace_and_flags_with_a_new_parent() {
        let c = child(TP);
        assert_eq!(parse(&c), Some(c.as_str()));
        assert_eq!(&c[..36], &TP[..36]);
        assert_eq!(&c[52..], &TP[52..]);
        assert_ne!(&c[36..52], &TP[36..52]);
    }
}
