//! `hybrid-runner generate-config`: a commented YAML file with every key at its default,
//! written from [`Config::default`] so the two cannot drift (a test loads it back).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::Config;
use super::env::env_var_name;
use super::values::format_duration;

/// The commented default configuration.
pub fn generate() -> String {
    let d = Config::default();
    let r = &d.runner;
    let m = &d.metrics;
    let k = &d.kubernetes;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"# hybrid-runner configuration. Keys match act_runner's where they mean the same, so an
# act_runner config.yaml loads too (its Docker settings, `cache:` and `container:`, are
# ignored with a warning).
#
# Every key can be overridden by an environment variable: HYBRID_RUNNER_ + the key's path in
# upper case with '.' as '_', e.g. runner.capacity -> {capacity_env}.
# Lists are comma-separated, maps are k=v pairs separated by commas. Command-line flags
# override both. Durations are written like 30s, 5m, 3h or 1h30m.

log:
  # The runner's own diagnostics: trace, debug, info, warn or error.
  level: {level}

runner:
  # Where the registration is stored (`hybrid-runner register` writes it). Same format as
  # act_runner's `.runner`, so an existing one keeps working.
  file: {file}
  # How many tasks run at once.
  capacity: {capacity}
  # Extra environment variables of every job.
  envs: {{}}
  # A dotenv file with more job environment, read when it exists.
  env_file: {env_file}
  # The longest a job may run.
  timeout: {timeout}
  # On SIGTERM/SIGINT: stop fetching, wait this long for running jobs, then cancel them.
  shutdown_timeout: {shutdown_timeout}
  # Skip TLS certificate verification of the Gitea/Forgejo instance.
  insecure: {insecure}
  # The deadline of one FetchTask call (at most 60s).
  fetch_timeout: {fetch_timeout}
  # The pause between polls; it doubles on empty answers and errors up to fetch_interval_max.
  fetch_interval: {fetch_interval}
  fetch_interval_max: {fetch_interval_max}
  # Labels, when set, replace those stored in the runner file:
  #   name:host                  steps run on this host
  #   name:docker://image        act_runner's Docker mode
  #   name:kubernetes            steps run in a pod of the job namespace
  #   name:kubernetes://image    ... from this image
  labels: []
  # Where the daemon keeps each running task's log rows until the server has acknowledged
  # them, so a restart loses none. Default: .runner-spool beside the runner file.
  # spool_dir: /var/lib/hybrid-runner/spool

host:
  # Where host jobs get their work folders. Default: $HOME/.cache/hybrid-runner/work
  # workdir_parent: /var/lib/hybrid-runner/work

cache:
  # The cache server `actions/cache` saves to and restores from (its v1 protocol, under
  # ACTIONS_CACHE_URL), started with the daemon. Entries are kept per repository.
  enabled: {cache_enabled}
  # Where entries are kept. Default: $HOME/.cache/hybrid-runner/cache
  # dir: /var/lib/hybrid-runner/cache
  # The host jobs reach the server at (not where it listens: it listens on every
  # interface). Default: this machine's outbound address. Job pods need one the cluster
  # reaches, e.g. the runner Service's name in-cluster.
  # host: 192.168.1.10
  # The port; 0 = a free one.
  port: {cache_port}
  # Past this size the least recently used entries go.
  max_size: 10GiB
  # Another cache server's URL, given to jobs instead of starting one.
  # external_server: http://cache.internal:8088/

metrics:
  # Serve /metrics (Prometheus), /healthz and /readyz on addr.
  enabled: {metrics_enabled}
  addr: {metrics_addr}
  # /readyz answers 503 once polling the server has failed for this long (and before the
  # first Declare, and while stopping).
  readiness_grace: {readiness_grace}

kubernetes:
  # The kubeconfig and its context; unset: KUBECONFIG, ~/.kube/config, then the in-cluster
  # service account.
  # kubeconfig: /etc/hybrid-runner/kubeconfig
  # context: my-cluster
  # Every build gets its own namespace, named <prefix>-<task>-<job>-<hash>.
  namespace_prefix: {namespace_prefix}
  # The Kaniko executor (a maintained fork; Google's kaniko was archived in June 2025).
  executor_image: {executor_image}
  # The image the steps of a `kubernetes` label without one run in (`name:kubernetes`;
  # `name:kubernetes://IMAGE` names its own), in a pod of the job's own namespace.
  job_image: {job_image}
  # The image of the sidecar that forwards a service's `ports: ['HOST:PORT']` from HOST
  # to PORT in the job pod: it needs busybox's `nc` (with -ll and -e).
  forwarder_image: {forwarder_image}
  # Requests and limits of the job pods' container (unset: 100m CPU and 128Mi requested,
  # a 2Gi memory limit, from the built-in job-pod.yaml).
  # job_resources:
  #   requests: {{cpu: "1", memory: 1Gi}}
  #   limits: {{memory: 4Gi}}
  # Requests and limits of the Kaniko container.
  resources:
    requests:
{requests}    limits:
{limits}  # spec.hard of a ResourceQuota in every build namespace, e.g. {{cpu: "4", memory: 8Gi}}.
  quota: {{}}
  # A Docker config.json with registry credentials, put in a Secret of each build namespace.
  # registry_secret_file: /etc/hybrid-runner/docker-config.json
  # How the build context reaches Kaniko: auto, configmap, pvc or stdin.
  context_mode: {context_mode}
  # Kaniko's layer cache, stored in cache_repo when set.
  cache: {cache}
  # cache_repo: registry.example.com/cache
  # Registries reached over plain HTTP.
  insecure_registries: []
  # Registries reached over HTTPS without verifying their certificate (e.g. self-signed).
  skip_tls_verify_registries: []
  # Seconds a finished Kaniko Job is kept before Kubernetes deletes it.
  ttl_seconds_after_finished: {ttl}
  # A left-over build namespace older than this is reaped.
  expiry: {expiry}
  # How long a Kaniko pod may wait for a node (an autoscaler may add one) before the build fails.
  unschedulable_timeout: {unschedulable_timeout}
  # A folder with your own copies of the manifest templates.
  # template_dir: /etc/hybrid-runner/templates
"#,
        capacity_env = env_var_name("runner.capacity"),
        level = d.log.level.as_str(),
        file = r.file.display(),
        capacity = r.capacity,
        env_file = r.env_file.display(),
        timeout = format_duration(r.timeout),
        shutdown_timeout = format_duration(r.shutdown_timeout),
        insecure = r.insecure,
        fetch_timeout = format_duration(r.fetch_timeout),
        fetch_interval = format_duration(r.fetch_interval),
        fetch_interval_max = format_duration(r.fetch_interval_max),
        cache_enabled = d.cache.enabled,
        cache_port = d.cache.port,
        metrics_enabled = m.enabled,
        metrics_addr = m.addr,
        readiness_grace = format_duration(m.readiness_grace),
        namespace_prefix = k.namespace_prefix,
        executor_image = k.executor_image,
        job_image = k.job_image,
        forwarder_image = k.forwarder_image,
        requests = yaml_map(&k.resources.requests, 6),
        limits = yaml_map(&k.resources.limits, 6),
        context_mode = k.context_mode.as_str(),
        cache = k.cache,
        ttl = k.ttl_seconds_after_finished,
        expiry = format_duration(k.expiry),
        unschedulable_timeout = format_duration(k.unschedulable_timeout),
    );
    out
}

/// `key: "value"` lines indented by `indent`, values quoted (quantities like `1` stay strings).
fn yaml_map(map: &BTreeMap<String, String>, indent: usize) -> String {
    map.iter()
        .map(|(key, value)| format!("{:indent$}{key}: \"{value}\"\n", ""))
        .collect()
}
