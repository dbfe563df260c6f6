//! Copying folders between this host and the job pod with `tar` on both ends: into the
//! pod (the host's `tar -c`, spooled to a temporary file, over the stdin of an exec running
//! `head -c <length> | tar -x`: how a checkout made on the host reaches the pod's
//! workspace) and out of it (an exec's `tar -c` into the host's `tar -x`: how an image
//! build on the runner sees the pod's workspace). The exec's command line holds only the
//! pod folder and the archive's length.

use std::path::Path;
use std::process::Stdio;

use kube::api::AttachParams;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{JobPod, POD_NAME, PodError, STEPS_CONTAINER};
use hr_cluster::{describe, retry};

/// How long the pod's stderr may take to end after the exec's status.
const STDERR_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

fn copy_error(message: String) -> PodError {
    PodError::Exec {
        phase: "copying the workspace into the pod",
        message,
    }
}

impl JobPod {
    /// Copies the contents of `host_dir` into `pod_dir` (created if missing; files there
    /// are overwritten, others kept). Returns the bytes sent.
    ///
    /// The host's archive is written to an unnamed temporary file first, so its length is
    /// known before the exec starts: the pod's `head -c <length>` ends the input in-band
    /// and the exec never needs stdin closed, which only `v5.channel.k8s.io` can do (on
    /// `v4.channel.k8s.io` a client ends stdin only by closing the whole WebSocket, losing
    /// the exit status). The pod's `tar` never reads the exec's stdin itself: GNU tar
    /// reads a pipe to its end even after the archive's end.
    pub async fn copy_into(&self, host_dir: &Path, pod_dir: &str) -> Result<u64, PodError> {
        self.copy_into_leaving_out(host_dir, pod_dir, &[]).await
    }

    /// [`Self::copy_into`] without the paths `left_out` (relative to `host_dir`, taken
    /// literally; a folder goes with everything in it).
    pub async fn copy_into_leaving_out(
        &self,
        host_dir: &Path,
        pod_dir: &str,
        left_out: &[String],
    ) -> Result<u64, PodError> {
        // tar names the members `./path`; literal and anchored, `./target` leaves out
        // `./target` and what is in it, not `./src/target` nor `./target2`.
        let exclusions = if left_out.is_empty() {
            None
        } else {
            let mut list = tempfile::NamedTempFile::new()
                .map_err(|e| copy_error(format!("cannot create a temporary file: {e}")))?;
            let text: String = left_out.iter().map(|p| format!("./{p}\n")).collect();
            std::io::Write::write_all(&mut list, text.as_bytes())
                .map_err(|e| copy_error(format!("cannot write the list of ignored paths: {e}")))?;
            Some(list)
        };
        let mut tar = tokio::process::Command::new("tar");
        tar.arg("-c").arg("-C").arg(host_dir);
        if let Some(list) = &exclusions {
            tar.args(["--anchored", "--no-wildcards"])
                .arg(format!("--exclude-from={}", list.path().display()));
        }
        let spool = tempfile::tempfile()
            .map_err(|e| copy_error(format!("cannot create a temporary file: {e}")))?;
        let tar_out = spool
            .try_clone()
            .map_err(|e| copy_error(format!("cannot create a temporary file: {e}")))?;
        let host = tar
            .arg(".")
            .stdin(Stdio::null())
            .stdout(Stdio::from(tar_out))
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| copy_error(format!("cannot start tar on this host: {e}")))?
            .wait_with_output()
            .await
            .map_err(|e| copy_error(format!("waiting for tar on this host: {e}")))?;
        if !host.status.success() {
            return Err(copy_error(format!(
                "tar on this host failed: {}",
                String::from_utf8_lossy(&host.stderr).trim()
            )));
        }
        let mut archive = tokio::fs::File::from_std(spool);
        archive
            .seek(std::io::SeekFrom::Start(0))
            .await
            .map_err(|e| copy_error(format!("reading tar's output: {e}")))?;
        let length = archive
            .metadata()
            .await
            .map_err(|e| copy_error(format!("reading tar's output: {e}")))?
            .len();
        let params = AttachParams::default()
            .container(STEPS_CONTAINER)
            .stdin(true)
            .stdout(false)
            .stderr(true)
            .max_stdin_buf_size(256 * 1024);
        let command = vec![
            "sh".to_string(),
            "-c".to_string(),
            "mkdir -p \"$1\" && head -c \"$2\" | tar -x -o -C \"$1\" -f -".to_string(),
            "copy".to_string(),
            pod_dir.to_string(),
            length.to_string(),
        ];
        let pods = self.pods();
        let mut attached = retry(|| pods.exec(POD_NAME, command.clone(), &params))
            .await
            .map_err(|e| copy_error(describe(&e)))?;
        let status = attached.take_status();
        // Never shut down, and kept until the status has come: ending stdin closes the
        // whole socket on `v4.channel.k8s.io` (and with kube-rs's duplex pipes a drop
        // ends it too).
        let mut stdin = attached
            .stdin()
            .ok_or_else(|| copy_error("the exec has no stdin".into()))?;
        // kube-rs ends the stderr reader only when the session ends with a status, so a
        // broken session must not leave this waiting for it.
        let errors = tokio::spawn(read_all(attached.stderr()));
        let sent = pump(
            &mut archive,
            &mut stdin,
            None,
            |e| copy_error(format!("reading tar's output: {e}")),
            |e| copy_error(e.to_string()),
        )
        .await;
        let code = match status {
            Some(status) => status.await.as_ref().and_then(super::exec::exit_code),
            None => None,
        };
        let errors = match tokio::time::timeout(STDERR_GRACE, errors).await {
            Ok(Ok(text)) => text,
            _ => String::new(),
        };
        let _ = attached.join().await;
        drop(stdin);
        let pod = pod_tar_result(code, &errors).map_err(|e| copy_error(e.to_string()));
        if code.is_some() {
            // The pod's tar ended: its failure says more than a send it cut short.
            pod?;
            sent
        } else {
            // No status: the exec was lost, and a failed send says why.
            let sent = sent?;
            pod?;
            Ok(sent)
        }
    }
}

impl JobPod {
    /// Copies the contents of `pod_dir` out of the pod into `host_dir`, which is emptied
    /// first (it becomes a mirror of the pod's folder: what an image build reads).
    /// Returns the bytes received. When the pod sends nothing for
    /// [`PodSettings::copy_idle_timeout`](super::PodSettings::copy_idle_timeout) (no
    /// output, or no exit status after it) the copy fails instead of waiting for ever.
    pub async fn copy_out(&self, pod_dir: &str, host_dir: &Path) -> Result<u64, PodError> {
        let out_error = |message: String| PodError::Exec {
            phase: "copying the workspace out of the pod",
            message,
        };
        if host_dir.exists() {
            std::fs::remove_dir_all(host_dir)
                .map_err(|e| out_error(format!("cannot empty {}: {e}", host_dir.display())))?;
        }
        std::fs::create_dir_all(host_dir)
            .map_err(|e| out_error(format!("cannot create {}: {e}", host_dir.display())))?;
        let mut tar = tokio::process::Command::new("tar")
            .arg("-x")
            .arg("--no-same-owner")
            .arg("-C")
            .arg(host_dir)
            .arg("-f")
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| out_error(format!("cannot start tar on this host: {e}")))?;
        let params = AttachParams::default()
            .container(STEPS_CONTAINER)
            .stdout(true)
            .stderr(true)
            .max_stdout_buf_size(256 * 1024);
        let command = vec![
            "sh".to_string(),
            "-c".to_string(),
            "cd \"$1\" && tar -c -f - .".to_string(),
            "copy".to_string(),
            pod_dir.to_string(),
        ];
        let pods = self.pods();
        let mut attached = retry(|| pods.exec(POD_NAME, command.clone(), &params))
            .await
            .map_err(|e| out_error(describe(&e)))?;
        let status = attached.take_status();
        // kube-rs ends the stderr reader only when the session ends, so a stalled session
        // must not leave this waiting for it.
        let errors = tokio::spawn(read_all(attached.stderr()));
        let mut stdout = attached.stdout();
        let mut input = tar.stdin.take();
        let idle = self.copy_idle;
        let stalled = |what: &str| {
            out_error(format!(
                "the pod's tar sent nothing for {} s ({what}); the exec's stream stalled, the copy was given up",
                idle.as_secs_f32()
            ))
        };
        let received = match (stdout.as_mut(), input.as_mut()) {
            (Some(out), Some(input)) => {
                pump(
                    out,
                    input,
                    Some(idle),
                    |e| {
                        if e.kind() == std::io::ErrorKind::TimedOut {
                            stalled("no end of its output")
                        } else {
                            out_error(e.to_string())
                        }
                    },
                    |e| out_error(format!("writing to tar on this host: {e}")),
                )
                .await
            }
            _ => Ok(0),
        };
        drop(input);
        let received = match received {
            Ok(n) => n,
            Err(e) => {
                attached.abort();
                errors.abort();
                return Err(e);
            }
        };
        let code = match status {
            Some(status) => match tokio::time::timeout(idle, status).await {
                Ok(status) => status.as_ref().and_then(super::exec::exit_code),
                Err(_) => {
                    attached.abort();
                    errors.abort();
                    return Err(stalled("no exit status after its output"));
                }
            },
            None => None,
        };
        let errors = match tokio::time::timeout(STDERR_GRACE, errors).await {
            Ok(Ok(text)) => text,
            _ => String::new(),
        };
        let _ = attached.join().await;
        let host = tar
            .wait_with_output()
            .await
            .map_err(|e| out_error(format!("waiting for tar on this host: {e}")))?;
        pod_tar_result(code, &errors).map_err(|e| out_error(e.to_string()))?;
        if !host.status.success() {
            return Err(out_error(format!(
                "tar on this host failed: {}",
                String::from_utf8_lossy(&host.stderr).trim()
            )));
        }
        Ok(received)
    }
}

/// All of an exec's stderr (empty when it has none or it cannot be read).
async fn read_all(stderr: Option<impl tokio::io::AsyncRead + Unpin>) -> String {
    let mut text = String::new();
    if let Some(mut err) = stderr {
        let _ = err.read_to_string(&mut text).await;
    }
    text
}

/// Moves every byte from `from` to `to`; each side's failure is worded by its own closure.
/// With `idle`, a read that brings nothing for that long fails with
/// [`std::io::ErrorKind::TimedOut`]. Returns the bytes moved.
async fn pump(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
    idle: Option<std::time::Duration>,
    read_failed: impl Fn(std::io::Error) -> PodError,
    write_failed: impl Fn(std::io::Error) -> PodError,
) -> Result<u64, PodError> {
    let mut moved = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read = from.read(&mut buf);
        let n = match idle {
            Some(limit) => match tokio::time::timeout(limit, read).await {
                Ok(n) => n,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "nothing came",
                )),
            },
            None => read.await,
        }
        .map_err(&read_failed)?;
        if n == 0 {
            return Ok(moved);
        }
        to.write_all(&buf[..n]).await.map_err(&write_failed)?;
        moved += n as u64;
    }
}

/// The pod's `tar` did not exit 0: its exit code (or the lack of one) and its stderr.
#[derive(Debug, thiserror::Error)]
#[error("tar in the pod failed ({}): {}", exit_status(*code), errors.trim())]
pub struct PodTarError {
    pub code: Option<i32>,
    pub errors: String,
}

fn exit_status(code: Option<i32>) -> String {
    code.map_or_else(
        || "no exit status".to_string(),
        |c| format!("exit code {c}"),
    )
}

/// The pod's `tar`'s end: `Err` with its exit code (or the lack of one) and its stderr
/// unless it exited 0.
fn pod_tar_result(code: Option<i32>, errors: &str) -> Result<(), PodTarError> {
    match code {
        Some(0) => Ok(()),
        _ => Err(PodTarError {
            code,
            errors: errors.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_tar_failures_keep_their_wording() {
        assert!(pod_tar_result(Some(0), "").is_ok());
        assert_eq!(
            pod_tar_result(Some(2), " tar: x: Cannot open\n")
                .unwrap_err()
                .to_string(),
            "tar in the pod failed (exit code 2): tar: x: Cannot open"
        );
        assert_eq!(
            pod_tar_result(None, "").unwrap_err().to_string(),
            "tar in the pod failed (no exit status): "
        );
    }
}
