//! The rendered workloads: plain manifests match the chart, standalone pods are
//! locked down, sidecar mode, the Dockerfile, and a sidecar rehearsal.

use super::*;

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
    // By default: the NetworkPolicy is on and admits nobody to the admin
    // port, and the admin API wants the token from the Secret.
    let defaults = render(&helm, &chart(), &[]);
    let np = of_kind(&defaults, "NetworkPolicy")[0];
    let rules = np["spec"]["ingress"].as_vec().unwrap();
    assert!(
        rules
            .iter()
            .all(|r| r["ports"][0]["port"].as_str() != Some("admin")),
        "{rules:?}"
    );
    let config = rendered_config(&defaults);
    assert!(
        config.contains("\"admin_token\" = \"env:COUNTERSIGN_ADMIN_TOKEN\""),
        "{config}"
    );
    let sts = of_kind(&defaults, "StatefulSet")[0];
    let env = sts["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_vec()
        .unwrap();
    let token = env
        .iter()
        .find(|e| e["name"].as_str() == Some("COUNTERSIGN_ADMIN_TOKEN"))
        .expect("the token comes from the Secret");
    assert_eq!(
        token["valueFrom"]["secretKeyRef"]["name"].as_str(),
        Some("countersign-admin")
    );
    // admin.insecure instead: no token, admin_insecure in the config.
    let insecure = run_helm(
        &helm,
        &[
            "template",
            "t",
            &chart().display().to_string(),
            "--set",
            "admin.insecure=true",
        ],
        &root(),
    )
    .unwrap();
    let config = rendered_config(&documents(&insecure));
    assert!(config.contains("\"admin_insecure\" = true"), "{config}");
    assert!(!config.contains("admin_token"), "{config}");
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
            "config.server.admin_token=env:X",
            "Additional property admin_token is not allowed",
        ),
        ("admin.tokenSecret.name=", "admin.tokenSecret.name is empty"),
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
    // The drain finished what was in flight (the script sends SIGTERM only
    // once a delivery has reached the slowed app).
    assert!(!stdout.contains("by the drain: 0,"), "{stdout}");
    assert!(stdout.contains("exited with 0"), "{stdout}");
    // The text log it shows is plain text off a terminal (no colour codes).
    assert!(
        stdout.contains("shutting down") && !stdout.contains('\x1b'),
        "{stdout}"
    );
}
