use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn load_text(text: &str) -> Result<Loaded, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), text);
    load_with_env(Some(&path), &no_env)
}

#[test]
fn the_generated_config_loads_back_to_the_defaults() {
    let loaded = load_text(&generate()).unwrap();
    let mut defaults = Config::default();
    // The generated file has a `kubernetes:` section.
    defaults.kubernetes.configured = true;
    assert_eq!(loaded.config, defaults);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn the_generated_config_has_act_runner_keys() {
    let text = generate();
    for key in [
        "level:",
        "file: .runner",
        "capacity: 1",
        "envs:",
        "env_file: .env",
        "timeout: 3h",
        "shutdown_timeout: 0s",
        "insecure: false",
        "fetch_timeout: 5s",
        "fetch_interval: 2s",
        "labels:",
        "workdir_parent",
        "enabled: false",
        "addr: 127.0.0.1:9101",
        "kubernetes:",
        "executor_image:",
        "job_image: node:20-bookworm",
    ] {
        assert!(text.contains(key), "{key} missing");
    }
}

#[test]
fn no_file_is_the_defaults() {
    let loaded = load_with_env(None, &no_env).unwrap();
    assert_eq!(loaded.config, Config::default());
}

#[test]
fn file_values_override_defaults() {
    let loaded = load_text(
        "log:\n  level: debug\nrunner:\n  file: /var/lib/hr/.runner\n  capacity: 4\n  timeout: 1h30m\n  labels:\n    - linux:host\n    - k8s:kubernetes://img:1\n  envs:\n    A: b\nhost:\n  workdir_parent: /work\nmetrics:\n  enabled: true\n  addr: 0.0.0.0:9200\nkubernetes:\n  namespace_prefix: ci\n  quota:\n    cpu: \"8\"\n  resources:\n    limits:\n      memory: 2Gi\n  context_mode: stdin\n  insecure_registries: [reg.local:5000]\n  skip_tls_verify_registries: [self-signed.local]\n  unschedulable_timeout: 1m\n",
    )
    .unwrap();
    let c = loaded.config;
    assert_eq!(c.log.level, LogLevel::Debug);
    assert_eq!(c.runner.file, PathBuf::from("/var/lib/hr/.runner"));
    assert_eq!(c.runner.capacity, 4);
    assert_eq!(c.runner.timeout, Duration::from_secs(5400));
    assert_eq!(c.runner.labels, ["linux:host", "k8s:kubernetes://img:1"]);
    assert_eq!(c.runner.envs["A"], "b");
    assert_eq!(c.host.workdir_parent, Some(PathBuf::from("/work")));
    assert!(c.metrics.enabled);
    assert_eq!(c.metrics.addr.port(), 9200);
    assert_eq!(c.kubernetes.namespace_prefix, "ci");
    assert_eq!(c.kubernetes.context_mode, ContextMode::Stdin);
    assert_eq!(c.kubernetes.resources.limits["memory"], "2Gi");
    // Requests were not in the file: still the defaults.
    assert_eq!(
        c.kubernetes.resources.requests,
        ResourcesConfig::default().requests
    );
    let kaniko = c.kubernetes.kaniko("runner-7").unwrap();
    assert_eq!(kaniko.runner_id, "runner-7");
    assert_eq!(kaniko.namespace_prefix, "ci");
    assert_eq!(
        kaniko.quota,
        Some(BTreeMap::from([("cpu".into(), "8".into())]))
    );
    assert_eq!(kaniko.insecure_registries, ["reg.local:5000"]);
    assert_eq!(kaniko.skip_tls_verify_registries, ["self-signed.local"]);
    assert_eq!(kaniko.context_mode, ContextMode::Stdin);
    assert_eq!(kaniko.unschedulable_timeout, Duration::from_secs(60));
}

#[test]
fn an_act_runner_config_loads_with_warnings() {
    let act_runner = r#"
log:
  level: info
runner:
  file: .runner
  capacity: 2
  envs:
    A_TEST_ENV_NAME_1: a_test_env_value_1
  env_file: .env
  timeout: 3h
  shutdown_timeout: 0s
  insecure: false
  fetch_timeout: 5s
  fetch_interval: 2s
  github_mirror: ''
  labels:
    - "ubuntu-latest:docker://docker.gitea.com/runner-images:ubuntu-latest"
cache:
  enabled: true
  dir: ""
container:
  network: ""
  privileged: false
  valid_volumes: []
host:
  workdir_parent:
"#;
    let loaded = load_text(act_runner).unwrap();
    assert_eq!(loaded.config.runner.capacity, 2);
    assert_eq!(loaded.config.host.workdir_parent, None);
    let warnings = loaded.warnings.join("\n");
    assert!(
        warnings.contains(" container is an act_runner setting"),
        "{warnings}"
    );
    // `cache:` is act_runner's and ours: an empty `dir` is the default folder.
    assert!(!warnings.contains(" cache is"), "{warnings}");
    assert!(loaded.config.cache.enabled);
    assert_eq!(loaded.config.cache.dir, None);
}

#[test]
fn the_cache_section_reads_act_runners_keys() {
    let loaded = load_text(
        "cache:\n  enabled: false\n  dir: /srv/cache\n  host: 10.0.0.5\n  port: 8088\n  external_server: http://cache.internal:8088\n  max_size: 500MiB\n",
    )
    .unwrap();
    let c = &loaded.config.cache;
    assert!(!c.enabled);
    assert_eq!(c.dir.as_deref(), Some(std::path::Path::new("/srv/cache")));
    assert_eq!(c.host.as_deref(), Some("10.0.0.5"));
    assert_eq!(c.port, 8088);
    assert_eq!(
        c.external_server.as_deref(),
        Some("http://cache.internal:8088")
    );
    assert_eq!(c.max_size, 500 << 20);
    let bad = load_text("cache:\n  max_size: lots\n")
        .unwrap_err()
        .to_string();
    assert!(bad.contains("lots"), "{bad}");
}

#[test]
fn bad_values_are_reported_at_their_line() {
    let cases = [
        (
            "runner:\n  capacity: 2\n  timeout: 3days\n",
            3,
            "not a duration",
        ),
        ("log:\n  level: loud\n", 2, "not a log level"),
        (
            "runner:\n  labels:\n    - ok:host\n    - bad:kubernetes:img\n",
            4,
            "the image must follow `//`",
        ),
        (
            "kubernetes:\n  context_mode: tarball\n",
            2,
            "not a context mode",
        ),
        ("metrics:\n  addr: localhost\n", 2, "not an address"),
    ];
    for (text, line, message) in cases {
        let err = load_text(text).unwrap_err();
        let shown = err.to_string();
        match &err {
            ConfigError::Parse { line: l, .. } => assert_eq!(*l, line, "{shown}"),
            other => panic!("expected a located error for {text:?}, got {other}"),
        }
        assert!(shown.contains("config.yaml:"), "{shown}");
        assert!(shown.contains(message), "{shown}");
    }
}

#[test]
fn relations_between_keys_are_checked() {
    // The relations act_runner repairs are repaired (see the normalising test); the
    // others are errors.
    let err = load_text("kubernetes:\n  namespace_prefix: Bad_Prefix\n").unwrap_err();
    assert!(
        err.to_string().starts_with("kubernetes.namespace_prefix:"),
        "{err}"
    );
}

#[test]
fn environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "runner:\n  capacity: 2\n  labels: [a:host]\nkubernetes:\n  cache_repo: reg/cache\n",
    );
    let env: HashMap<&str, &str> = HashMap::from([
        ("HYBRID_RUNNER_RUNNER_CAPACITY", "5"),
        ("HYBRID_RUNNER_RUNNER_LABELS", "b:kubernetes,c:host"),
        ("HYBRID_RUNNER_RUNNER_SHUTDOWN_TIMEOUT", "10m"),
        ("HYBRID_RUNNER_KUBERNETES_RESOURCES_REQUESTS", "cpu=2"),
        ("HYBRID_RUNNER_KUBERNETES_CACHE_REPO", ""),
        ("HYBRID_RUNNER_METRICS_ENABLED", "true"),
        (
            "HYBRID_RUNNER_KUBERNETES_SKIP_TLS_VERIFY_REGISTRIES",
            "a.local:443,b.local",
        ),
    ]);
    let lookup = |name: &str| env.get(name).map(|v| v.to_string());
    let c = load_with_env(Some(&path), &lookup).unwrap().config;
    assert_eq!(c.runner.capacity, 5);
    assert_eq!(c.runner.labels, ["b:kubernetes", "c:host"]);
    assert_eq!(c.runner.shutdown_timeout, Duration::from_secs(600));
    assert_eq!(
        c.kubernetes.resources.requests,
        BTreeMap::from([("cpu".into(), "2".into())])
    );
    assert_eq!(c.kubernetes.cache_repo, None);
    assert_eq!(
        c.kubernetes.skip_tls_verify_registries,
        ["a.local:443", "b.local"]
    );
    assert!(c.metrics.enabled);
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let lookup = |name: &str| (name == "HYBRID_RUNNER_RUNNER_TIMEOUT").then(|| "soon".to_string());
    let err = load_with_env(None, &lookup).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("environment variable HYBRID_RUNNER_RUNNER_TIMEOUT:"),
        "{err}"
    );
    let lookup = |name: &str| {
        (name == "HYBRID_RUNNER_RUNNER_LABELS").then(|| "x:kubernetes:img".to_string())
    };
    let err = load_with_env(None, &lookup).unwrap_err();
    assert!(err.to_string().starts_with("runner.labels:"), "{err}");
}

#[test]
fn an_empty_file_is_the_defaults() {
    assert_eq!(load_text("").unwrap().config, Config::default());
    assert_eq!(
        load_text("# only comments\n").unwrap().config,
        Config::default()
    );
}

#[test]
fn the_spool_defaults_beside_the_runner_file_and_can_be_set() {
    let default = Config::default().runner;
    assert_eq!(default.spool_dir, None);
    assert_eq!(
        default.spool_dir_or_default(),
        PathBuf::from(".runner-spool")
    );
    let from_file = load_text("runner:\n  file: /var/lib/hr/.runner\n")
        .unwrap()
        .config
        .runner;
    assert_eq!(
        from_file.spool_dir_or_default(),
        PathBuf::from("/var/lib/hr/.runner-spool")
    );
    let set = load_text("runner:\n  file: /var/lib/hr/.runner\n  spool_dir: /spool\n")
        .unwrap()
        .config
        .runner;
    assert_eq!(set.spool_dir_or_default(), PathBuf::from("/spool"));
    let lookup =
        |name: &str| (name == "HYBRID_RUNNER_RUNNER_SPOOL_DIR").then(|| "/env-spool".to_string());
    let env = load_with_env(None, &lookup).unwrap().config.runner;
    assert_eq!(env.spool_dir, Some(PathBuf::from("/env-spool")));
    assert!(generate().contains("# spool_dir:"));
}

#[test]
fn job_pod_keys_load_from_the_file() {
    let loaded = load_text(
        "kubernetes:\n  job_image: alpine:3\n  job_resources:\n    requests:\n      cpu: \"2\"\n    limits:\n      memory: 8Gi\n",
    )
    .unwrap();
    let k = loaded.config.kubernetes;
    assert_eq!(k.job_image, "alpine:3");
    assert_eq!(k.job_resources.requests["cpu"], "2");
    assert_eq!(k.job_resources.limits["memory"], "8Gi");
    assert!(
        load_text("kubernetes:\n  job_image: \" \"\n")
            .unwrap_err()
            .to_string()
            .starts_with("kubernetes.job_image:")
    );
}

#[test]
fn unknown_keys_are_warned_about_at_their_place_and_ignored() {
    let loaded = load_text(
        "runner:\n  capcity: 2\n  capacity: 3\nkubernetes:\n  resources:\n    limts: {}\nfuture_section:\n  x: 1\n",
    )
    .unwrap();
    assert_eq!(loaded.config.runner.capacity, 3);
    let warnings = loaded.warnings.join("\n");
    for wanted in [
        "config.yaml:2:3: unknown key runner.capcity; it is ignored",
        "config.yaml:6:5: unknown key kubernetes.resources.limts; it is ignored",
        "config.yaml:7:1: unknown key future_section; it is ignored",
    ] {
        assert!(warnings.contains(wanted), "{wanted:?} in {warnings}");
    }
}

#[test]
fn values_act_runner_replaces_are_replaced_the_same_way_with_a_warning() {
    let loaded = load_text(
        "runner:\n  capacity: 0\n  timeout: 0s\n  fetch_timeout: 90s\n  fetch_interval: 10s\n  fetch_interval_max: 5s\n",
    )
    .unwrap();
    let r = &loaded.config.runner;
    assert_eq!(r.capacity, 1);
    assert_eq!(r.timeout, std::time::Duration::from_secs(3 * 3600));
    assert_eq!(r.fetch_timeout, std::time::Duration::from_secs(60));
    assert_eq!(r.fetch_interval_max, std::time::Duration::from_secs(10));
    let warnings = loaded.warnings.join("\n");
    for key in ["capacity", "timeout", "fetch_timeout", "fetch_interval_max"] {
        assert!(
            warnings.contains(&format!("runner.{key} ")),
            "{key} in {warnings}"
        );
    }
    let negative = load_text("runner:\n  capacity: -2\n  fetch_timeout: 0s\n").unwrap();
    assert_eq!(negative.config.runner.capacity, 1);
    assert_eq!(
        negative.config.runner.fetch_timeout,
        std::time::Duration::from_secs(5)
    );
}

#[test]
fn act_runners_label_variable_is_read_and_ours_wins() {
    let gitea_only =
        |name: &str| (name == "GITEA_RUNNER_LABELS").then(|| "a:host, b:docker".to_string());
    let loaded = load_with_env(None, &gitea_only).unwrap();
    assert_eq!(loaded.config.runner.labels, ["a:host", "b:docker"]);
    let both = |name: &str| match name {
        "GITEA_RUNNER_LABELS" => Some("a:host".to_string()),
        "HYBRID_RUNNER_RUNNER_LABELS" => Some("c:host".to_string()),
        _ => None,
    };
    assert_eq!(
        load_with_env(None, &both).unwrap().config.runner.labels,
        ["c:host"]
    );
}

#[test]
fn forgejos_report_retry_is_read() {
    let loaded = load_text(
        "runner:\n  report_retry:\n    max_retries: 7\n    initial_delay: 1s\n    max_delay: 0s\n    jitter: 1\n",
    )
    .unwrap();
    let retry = &loaded.config.runner.report_retry;
    assert_eq!(
        (retry.max_retries, retry.initial_delay, retry.max_delay),
        (7, std::time::Duration::from_secs(1), None),
        "0s is no cap, as in forgejo-runner"
    );
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("unknown key runner.report_retry.jitter")),
        "{:?}",
        loaded.warnings
    );
    let defaults = load_text("runner:\n  report_retry:\n    max_retries: 0\n").unwrap();
    assert_eq!(
        defaults.config.runner.report_retry,
        super::ReportRetry::default()
    );
}
