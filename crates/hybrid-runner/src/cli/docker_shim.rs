//! `hybrid-runner __docker-shim PROGRAM ARGS…`: what the `docker` / `nerdctl` executables on a
//! step's `PATH` run. It builds nothing itself: it sends its command line, working folder and
//! `GITHUB_SHA` to the job engine over the socket named by `HYBRID_RUNNER_DOCKER_SOCKET`,
//! prints the lines the engine sends back (to stdout or stderr, as sent) and exits with the
//! code the engine sends last.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

use hr_engine::image_steps::protocol::{
    FORWARDED_VARIABLES, SOCKET_VARIABLE, ShimReply, ShimRequest, decode, encode,
};

/// Runs the shim for `args` (everything after `__docker-shim`).
pub fn run(args: Vec<String>) -> ExitCode {
    let mut args = args.into_iter();
    let program = args.next().unwrap_or_else(|| "docker".to_string());
    let args: Vec<String> = args.collect();
    match exchange(&program, args) {
        Ok(code) => ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1)),
        Err(message) => {
            eprintln!("{program}: {message}");
            ExitCode::from(1)
        }
    }
}

fn exchange(program: &str, args: Vec<String>) -> Result<i32, String> {
    let socket = std::env::var_os(SOCKET_VARIABLE).ok_or_else(|| {
        format!(
            "this is hybrid-runner's {program} shim; it works only inside a step of `hybrid-runner exec` ({SOCKET_VARIABLE} is not set)"
        )
    })?;
    if is_login_with_stdin(&args) {
        // `docker login --password-stdin` (docker/login-action) writes the password to our
        // stdin: read it so the writer does not fail, and drop it.
        let mut discard = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut discard);
    }
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current folder: {e}"))?;
    let env = FORWARDED_VARIABLES
        .iter()
        .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
        .collect();
    let request = ShimRequest {
        program: program.to_string(),
        args,
        cwd,
        env,
    };
    let mut stream = UnixStream::connect(&socket).map_err(|e| {
        format!(
            "cannot reach the job engine at {}: {e}; the job may have ended",
            std::path::Path::new(&socket).display()
        )
    })?;
    stream
        .write_all(&encode(&request))
        .map_err(|e| format!("cannot send the command to the job engine: {e}"))?;
    let reader = BufReader::new(stream);
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    for line in reader.lines() {
        let line = line.map_err(|e| format!("the job engine went away: {e}"))?;
        match decode::<ShimReply>(&line).map_err(|e| e.to_string())? {
            ShimReply::Stdout(text) => {
                let mut out = stdout.lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
            ShimReply::Stderr(text) => {
                let _ = writeln!(stderr.lock(), "{text}");
            }
            ShimReply::Exit(code) => return Ok(code),
        }
    }
    Err("the job engine closed the connection before the command finished".to_string())
}

/// `login … --password-stdin` (global options before `login` are skipped loosely).
fn is_login_with_stdin(args: &[String]) -> bool {
    args.iter().any(|a| a == "login") && args.iter().any(|a| a == "--password-stdin")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_login_with_password_stdin_reads_stdin() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(is_login_with_stdin(&v(&[
            "login",
            "-u",
            "me",
            "--password-stdin",
            "r.io"
        ])));
        assert!(!is_login_with_stdin(&v(&["login", "-u", "me", "-p", "x"])));
        assert!(!is_login_with_stdin(&v(&["build", "--password-stdin"])));
    }
}
