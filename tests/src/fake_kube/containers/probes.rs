//! Startup probes (`exec`, `tcpSocket`, `httpGet`), as pkg/kubelet/prober runs them.

use super::*;

/// Runs a startup probe until it succeeds (`true`) or fails `failureThreshold` times in a
/// row (`false`), recording `Unhealthy` for each failure.
pub(super) async fn startup_probe(ctx: &Ctx, spec: &Value, probe: &Value, role: Role) -> bool {
    let name = spec["name"].as_str().unwrap_or_default();
    let secs = |field: &str, default: u64| probe[field].as_u64().unwrap_or(default);
    let period = Duration::from_secs(secs("periodSeconds", 10).max(1));
    let timeout = Duration::from_secs(secs("timeoutSeconds", 1).max(1));
    let failure_threshold = secs("failureThreshold", 3).max(1);
    let success_threshold = secs("successThreshold", 1).max(1);
    tokio::time::sleep(Duration::from_secs(secs("initialDelaySeconds", 0))).await;
    let (mut failures, mut successes) = (0, 0);
    loop {
        let next = tokio::time::Instant::now() + period;
        match run_probe(ctx, spec, probe, timeout).await {
            Ok(()) => {
                failures = 0;
                successes += 1;
                if successes >= success_threshold {
                    return true;
                }
            }
            Err(output) => {
                successes = 0;
                failures += 1;
                ctx.event(
                    role,
                    name,
                    true,
                    "Unhealthy",
                    &format!("Startup probe failed: {output}"),
                );
                if failures >= failure_threshold {
                    return false;
                }
            }
        }
        tokio::time::sleep_until(next).await;
    }
}

/// The port a probe names: a number, or the name of one of the container's ports.
pub(super) fn probe_port(spec: &Value, port: &Value) -> Result<u16, String> {
    if let Some(n) = port.as_u64() {
        return u16::try_from(n).map_err(|_| format!("invalid port number: {n}"));
    }
    let name = port.as_str().unwrap_or_default();
    spec["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .or_else(|| name.parse().ok())
        .ok_or_else(|| {
            format!(
                "couldn't find port: {name} in {}",
                spec["name"].as_str().unwrap_or_default()
            )
        })
}

pub(super) async fn run_probe(
    ctx: &Ctx,
    spec: &Value,
    probe: &Value,
    timeout: Duration,
) -> Result<(), String> {
    let name = spec["name"].as_str().unwrap_or_default();
    if let Some(command) = probe["exec"]["command"].as_array() {
        let argv: Vec<String> = command
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect();
        let Some(command) = ctx.sandbox.exec_command(name, &argv) else {
            return Err(format!("container {name} is not running"));
        };
        let mut command = tokio::process::Command::from(command);
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let out = match tokio::time::timeout(timeout, command.output()).await {
            Err(_) => return Err(format!("command \"{}\" timed out", argv.join(" "))),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(out)) => out,
        };
        if out.status.success() {
            return Ok(());
        }
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        return Err(text);
    }
    if probe["tcpSocket"].is_object() {
        let port = probe_port(spec, &probe["tcpSocket"]["port"])?;
        let host = probe["tcpSocket"]["host"]
            .as_str()
            .unwrap_or(&ctx.sandbox.ip)
            .to_string();
        return ctx.sandbox.tcp_probe(&host, port, timeout).await;
    }
    if probe["httpGet"].is_object() {
        let h = &probe["httpGet"];
        if h["scheme"] == "HTTPS" {
            return Err("HTTPS probes are not modelled by the fake kubelet".to_string());
        }
        let port = probe_port(spec, &h["port"])?;
        let host = h["host"].as_str().unwrap_or(&ctx.sandbox.ip).to_string();
        let path = h["path"]
            .as_str()
            .filter(|p| !p.is_empty())
            .unwrap_or("/")
            .to_string();
        return ctx.sandbox.http_probe(&host, port, &path, timeout).await;
    }
    Err("grpc probes are not modelled by the fake kubelet".to_string())
}
