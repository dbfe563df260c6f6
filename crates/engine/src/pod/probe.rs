//! The pod part of `hybrid-runner check` ([`CheckPod`]): in the check's throwaway namespace
//! a small job pod (the job-pod template, hardened to pass Pod Security `restricted`)
//! starts, one step-like exec carries a nonce in over stdin and back out over stdout (the
//! very path of a job's steps, [`JobPod::run_process`], so it works on `v4.channel.k8s.io`
//! and `v5`), and a second one fetches the registry's `/v2/` from inside the pod with
//! `wget` (or `curl`): what a Kaniko pod or a job's step will see of the registry.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::{
    Capabilities, Pod, PodSecurityContext, SeccompProfile, SecurityContext,
};
use kube::Client;
use kube::api::DeleteParams;
use tokio_util::sync::CancellationToken;

use super::{JobPod, POD_DEFAULT_PATH, POD_NAME, POD_WORKSPACE_ROOT, PodProcess, PodSettings};
use hr_image::kaniko::{PodProbe, PodProbeReport};
use hr_process::host::{OutputStream, StopPolicy};

/// The image of the check's pod unless `--probe-image` names another: small, and with
/// `sh`, `head`, `mkfifo` and `wget`.
pub const DEFAULT_PROBE_IMAGE: &str = "busybox:1.36";

/// The user the check's pod runs as (`nobody`; Pod Security `restricted` wants non-root).
const PROBE_USER: i64 = 65534;

/// How long one exec of the check may run before it is stopped.
const EXEC_LIMIT: Duration = Duration::from_secs(30);

/// `GET $1` with whatever the image has: `wget -S` prints the status line of every
/// response (busybox's and GNU's alike), `curl -w` one of its own. GNU wget would retry a
/// timeout 20 times, so it gets `--tries=1` (busybox's wget knows no such flag).
const REGISTRY_PROBE: &str = "u=\"$1\"\n\
if command -v wget >/dev/null 2>&1; then\n\
  if wget --version 2>/dev/null | grep -q 'GNU Wget'; then set -- --tries=1; else set --; fi\n\
  exec wget \"$@\" -S -T 10 -O /dev/null \"$u\" 2>&1\n\
elif command -v curl >/dev/null 2>&1; then\n\
  exec curl -sS -o /dev/null -m 10 -w 'HTTP/1.1 %{http_code}\\n' \"$u\" 2>&1\n\
fi\n\
echo 'neither wget nor curl is in the image'\n\
exit 127\n";

/// The pod probe of `hybrid-runner check` (see the module docs).
#[derive(Debug, Clone)]
pub struct CheckPod {
    /// The pod's image (`--probe-image`).
    pub image: String,
    /// How long the pod may take to run (image pull included).
    pub start_timeout: Duration,
}

impl Default for CheckPod {
    fn default() -> Self {
        CheckPod {
            image: DEFAULT_PROBE_IMAGE.to_string(),
            start_timeout: Duration::from_secs(120),
        }
    }
}

impl PodProbe for CheckPod {
    fn probe<'a>(
        &'a self,
        client: &'a Client,
        namespace: &'a str,
        registry_url: Option<&'a str>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = PodProbeReport> + Send + 'a>> {
        Box::pin(self.run(client, namespace, registry_url))
    }
}

impl CheckPod {
    async fn run(
        &self,
        client: &Client,
        namespace: &str,
        registry_url: Option<&str>,
    ) -> PodProbeReport {
        let pod = JobPod {
            client: client.clone(),
            namespace: namespace.to_string(),
            guard: Mutex::new(None),
            copied: Mutex::new(Vec::new()),
            copy_idle: super::DEFAULT_COPY_IDLE_TIMEOUT,
            services: Vec::new(),
            notes: Vec::new(),
            container_steps: Default::default(),
        };
        let report = self.round_trips(&pod, registry_url).await;
        // The namespace goes right after this anyway: no waiting for the pod to go.
        let delete = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        let _ = pod.pods().delete(POD_NAME, &delete).await;
        report
    }

    async fn round_trips(&self, pod: &JobPod, registry_url: Option<&str>) -> PodProbeReport {
        let failed = |reason: String| PodProbeReport {
            round_trip: Err(reason),
            registry: None,
        };
        let manifest = match self.manifest(&pod.namespace) {
            Ok(m) => m,
            Err(e) => return failed(e.to_string()),
        };
        let started = Instant::now();
        if let Err(e) = pod.create_pod_and_wait(&manifest, self.start_timeout).await {
            return failed(e.to_string());
        }
        let running = started.elapsed();
        let nonce = format!(
            "hybrid-runner-check-{:x}-{}",
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
            std::process::id()
        );
        let exec_started = Instant::now();
        let echoed = run(
            pod,
            "cat /__t/_step/nonce".to_string(),
            vec![("_step/nonce".to_string(), nonce.clone().into_bytes())],
            Vec::new(),
        )
        .await;
        let round_trip = match echoed {
            Ok((Some(0), lines)) if lines == [nonce.as_str()] => Ok(format!(
                "{} running in {} ms ({}); a nonce went in over an exec's stdin and came back in {} ms",
                pod_path(pod),
                running.as_millis(),
                self.image,
                exec_started.elapsed().as_millis()
            )),
            Ok((code, lines)) => Err(format!(
                "the exec into {} ended with {} and gave back {:?} instead of the nonce; steps of `kubernetes` jobs would fail the same way",
                pod_path(pod),
                exit_text(code),
                lines.join("\n")
            )),
            Err(e) => Err(e),
        };
        if round_trip.is_err() {
            return PodProbeReport {
                round_trip,
                registry: None,
            };
        }
        let registry = match registry_url {
            Some(url) => Some(registry_from(pod, url).await),
            None => None,
        };
        PodProbeReport {
            round_trip,
            registry,
        }
    }

    /// The job pod of the built-in template in `namespace`, small and hardened: non-root,
    /// no privilege escalation, no capabilities, `RuntimeDefault` seccomp (Pod Security
    /// `restricted` admits it).
    fn manifest(&self, namespace: &str) -> Result<Pod, super::PodError> {
        let settings = PodSettings {
            requests: BTreeMap::from([
                ("cpu".to_string(), "10m".to_string()),
                ("memory".to_string(), "16Mi".to_string()),
            ]),
            limits: BTreeMap::from([("memory".to_string(), "64Mi".to_string())]),
            ..PodSettings::default()
        };
        let deadline = self.start_timeout + 4 * EXEC_LIMIT;
        let mut pod = super::manifest::pod_manifest(&settings, namespace, &self.image, deadline)?;
        harden(&mut pod);
        Ok(pod)
    }
}

/// Pod Security `restricted`: what the pod and each container must set.
fn harden(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.security_context = Some(PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(PROBE_USER),
        run_as_group: Some(PROBE_USER),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_string(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    });
    for container in &mut spec.containers {
        container.security_context = Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_string()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        });
    }
}

fn pod_path(pod: &JobPod) -> String {
    format!("pod {}/{POD_NAME}", pod.namespace)
}

fn exit_text(code: Option<i32>) -> String {
    code.map_or_else(|| "no exit code".to_string(), |c| format!("exit code {c}"))
}

/// Runs `sh -c script args...` in the pod as a step runs (its files sent over stdin),
/// bounded by [`EXEC_LIMIT`]; returns its exit code and output lines (both streams).
async fn run(
    pod: &JobPod,
    script: String,
    files: Vec<(String, Vec<u8>)>,
    args: Vec<String>,
) -> Result<(Option<i32>, Vec<String>), String> {
    let workspace = format!("{POD_WORKSPACE_ROOT}/check");
    let process = PodProcess {
        program: "sh".to_string(),
        args: [vec!["-c".to_string(), script, "probe".to_string()], args].concat(),
        env: vec![("PATH".to_string(), POD_DEFAULT_PATH.to_string())],
        cwd: workspace.clone(),
        workspace,
        files,
        timeout: Some(EXEC_LIMIT),
    };
    let stop = StopPolicy {
        interrupt_grace: Duration::from_secs(1),
        terminate_grace: Duration::from_secs(1),
    };
    let mut lines: Vec<String> = Vec::new();
    let mut sink = |_: OutputStream, line: &str| lines.push(line.to_string());
    let cancel = CancellationToken::new();
    // The step machinery stops a step at its timeout; this bounds a stream that hangs.
    let exit = tokio::time::timeout(
        EXEC_LIMIT + Duration::from_secs(15),
        pod.run_process(&process, stop, &mut sink, &cancel),
    )
    .await
    .map_err(|_| {
        format!(
            "the exec into {} did not end in {} s",
            pod_path(pod),
            EXEC_LIMIT.as_secs() + 15
        )
    })?
    .map_err(|e| e.to_string())?
    .exit;
    if exit.timed_out {
        return Err(format!(
            "the exec into {} did not end in {} s and was stopped",
            pod_path(pod),
            EXEC_LIMIT.as_secs()
        ));
    }
    Ok((exit.code, lines))
}

/// `GET url` from inside the pod: `Ok("HTTP 200 ...")` for 200 or 401 (a registry
/// answers), else `Err` with the status or the client's error.
async fn registry_from(pod: &JobPod, url: &str) -> Result<String, String> {
    let (code, lines) = run(
        pod,
        REGISTRY_PROBE.to_string(),
        Vec::new(),
        vec![url.to_string()],
    )
    .await?;
    match http_status(&lines) {
        Some(status @ (200 | 401)) => Ok(format!("HTTP {status}, from {}", pod_path(pod))),
        Some(status) => Err(format!(
            "HTTP {status} from {}; that is not a registry's /v2/ answer (expected 200 or 401)",
            pod_path(pod)
        )),
        None => {
            let said: Vec<&str> = lines
                .iter()
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .collect();
            let tail = said[said.len().saturating_sub(3)..].join(" / ");
            Err(format!(
                "{} cannot reach it ({}): {tail}; check the cluster's network policies, DNS and proxy for pods",
                pod_path(pod),
                exit_text(code)
            ))
        }
    }
}

/// The status of the last HTTP response in a client's output (`HTTP/1.1 401 Unauthorized`
/// anywhere in a line); curl's `000` (no response) is none.
fn http_status(lines: &[String]) -> Option<u16> {
    lines.iter().rev().find_map(|line| {
        let at = line.find("HTTP/")?;
        let mut words = line[at..].split_whitespace();
        words.next()?;
        words
            .next()?
            .parse::<u16>()
            .ok()
            .filter(|s| (100..600).contains(s))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn statuses_of_wget_and_curl() {
        // busybox wget -S, a redirect then the answer.
        let busybox = "Connecting to r:5000 (10.0.0.1:5000)\n  HTTP/1.1 307 Temporary Redirect\n  HTTP/1.1 401 Unauthorized\nwget: server returned error: HTTP/1.1 401 Unauthorized";
        assert_eq!(http_status(&lines(busybox)), Some(401));
        let gnu = "--2026-01-01--  http://r/v2/\n  HTTP/1.1 200 OK\n  Content-Length: 2\n";
        assert_eq!(http_status(&lines(gnu)), Some(200));
        assert_eq!(http_status(&lines("HTTP/1.1 000\n")), None);
        let refused = "Connecting to 127.0.0.1:1... failed: Connection refused.";
        assert_eq!(http_status(&lines(refused)), None);
    }

    #[test]
    fn the_check_pod_is_restricted() {
        let pod = CheckPod::default().manifest("hr-check").unwrap();
        let spec = pod.spec.unwrap();
        let security = spec.security_context.unwrap();
        assert_eq!(security.run_as_non_root, Some(true));
        assert_eq!(security.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let c = &spec.containers[0];
        assert_eq!(c.image.as_deref(), Some(DEFAULT_PROBE_IMAGE));
        let cs = c.security_context.clone().unwrap();
        assert_eq!(cs.allow_privilege_escalation, Some(false));
        assert_eq!(cs.capabilities.unwrap().drop.unwrap(), ["ALL"]);
        assert_eq!(spec.automount_service_account_token, Some(false));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("hr-check"));
    }
}
