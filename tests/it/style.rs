//! House rules and architecture invariants checked mechanically: every Rust
//! file opens with a `//!` comment saying what it is for; top-level modules
//! import each other in one direction only; `config/` is a leaf; `verify/`
//! and `providers/` do no I/O and read no clock; only `time.rs` reads the
//! wall clock; siblings in a folder import one way; only the listeners'
//! response modules choose status codes.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "loadtest"] {
        if root.join(dir).is_dir() {
            rust_files(&root.join(dir), &mut files);
        }
    }
    let missing: Vec<_> = files
        .iter()
        .filter(|f| !f.components().any(|c| c.as_os_str() == "target"))
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!"))
        .collect();
    assert!(
        missing.is_empty(),
        "files without a leading //! comment: {missing:?}"
    );
}

/// Each top-level module of `src/` (a `name.rs` or a `name/` folder) with the
/// top-level modules its non-test code names through `crate::`.
fn module_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph = Graph::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs").to_owned();
        let name = f.file_name().unwrap().to_string_lossy();
        if top == "lib"
            || top == "main"
            || rel.components().any(|c| c.as_os_str() == "tests")
            || name == "tests.rs"
            || name == "testkit.rs"
            || name.ends_with("_tests.rs")
        {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let deps = graph.entry(top.clone()).or_default();
        for part in code.split("crate::").skip(1) {
            let m: String = part
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !m.is_empty() && m != top {
                deps.insert(m);
            }
        }
    }
    graph
}

type Graph = std::collections::BTreeMap<String, std::collections::BTreeSet<String>>;

/// Fails naming the cycle if any node reaches itself.
fn assert_acyclic(graph: &Graph) {
    for start in graph.keys() {
        // Depth-first from `start`; reaching `start` again is a cycle.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = std::collections::BTreeSet::new();
        while let Some((m, path)) = stack.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                let mut p = path.clone();
                p.push(next.clone());
                assert!(next != start, "import cycle: {}", p.join(" -> "));
                if seen.insert(next.clone()) {
                    stack.push((next.clone(), p));
                }
            }
        }
    }
}

#[test]
fn top_level_modules_import_each_other_in_one_direction_only() {
    let graph = module_graph();
    assert_acyclic(&graph);
}

#[test]
fn config_is_a_leaf() {
    let graph = module_graph();
    let allowed = ["event", "verify"];
    let extra: Vec<_> = graph["config"]
        .iter()
        .filter(|m| !allowed.contains(&m.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "config/ imports {extra:?}: components build themselves from their section"
    );
}

#[test]
fn verify_providers_and_audit_do_no_io_and_read_no_clock() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let forbidden = [
        "std::fs",
        "std::net",
        "tokio",
        "hyper",
        "redb",
        "rdkafka",
        "SystemTime::now",
        "Instant::now",
        "Clock",
        "std::env",
    ];
    for dir in ["verify", "providers", "audit"] {
        let mut files = Vec::new();
        rust_files(&src.join(dir), &mut files);
        for f in files {
            let name = f.file_name().unwrap().to_string_lossy();
            let in_tests = f.components().any(|c| c.as_os_str() == "tests");
            if in_tests || name == "tests.rs" || name == "testkit.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            for word in forbidden {
                assert!(
                    !code.contains(word),
                    "{} uses {word}: {dir}/ must stay pure",
                    f.display()
                );
            }
        }
    }
}

/// One clock: only `time.rs` reads the wall clock; everything else reads the
/// `Clock` it is given (so a test's manual clock moves every component).
#[test]
fn only_time_reads_the_wall_clock() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for f in files {
        if f.ends_with("time.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap();
        for word in ["SystemTime::now", "UNIX_EPOCH", "Utc::now"] {
            assert!(
                !text.contains(word),
                "{} reads the wall clock ({word}): take a time::Clock instead",
                f.display()
            );
        }
    }
}

/// Siblings inside a folder (`admin/events.rs`, `admin/views.rs`, ...) name
/// each other through `super::` in one direction only.
#[test]
fn sibling_modules_import_each_other_in_one_direction_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph = Graph::new();
    for f in &files {
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        let in_tests = f.components().any(|c| c.as_os_str() == "tests");
        if name == "mod"
            || name == "tests"
            || name == "testkit"
            || in_tests
            || f.parent() == Some(&src)
        {
            continue;
        }
        let dir = f.parent().unwrap().display().to_string();
        let text = std::fs::read_to_string(f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let deps = graph.entry(format!("{dir}/{name}")).or_default();
        for part in code.split("super::").skip(1) {
            let m: String = part
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !m.is_empty() && m != name && f.with_file_name(format!("{m}.rs")).exists() {
                deps.insert(format!("{dir}/{m}"));
            }
        }
    }
    assert_acyclic(&graph);
}

/// Only the two listeners' response modules choose HTTP status codes.
#[test]
fn only_the_listeners_response_modules_build_http_statuses() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed = [
        src.join("ingress/response.rs"),
        src.join("admin/response.rs"),
    ];
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for f in files.iter().filter(|f| !allowed.contains(f)) {
        let text = std::fs::read_to_string(f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for word in ["StatusCode::", "StatusCode::from_u16", ".status_mut()"] {
            assert!(
                !code.contains(word),
                "{} builds an HTTP status ({word}): answer through ingress/response.rs or admin/response.rs",
                f.display()
            );
        }
    }
}
