//! What the `docker` shim and the job engine say to each other over the job's Unix socket:
//! one JSON request line from the shim (its argv, working folder and the few variables the
//! build needs), then JSON reply lines from the engine (output lines, and last the exit code).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The variable holding the socket's path in every step's environment.
pub const SOCKET_VARIABLE: &str = "HYBRID_RUNNER_DOCKER_SOCKET";

/// The hidden subcommand the shim executables call: `hybrid-runner __docker-shim docker ARGS`.
pub const SHIM_SUBCOMMAND: &str = "__docker-shim";

/// The programs the shim stands in for.
pub const SHIM_PROGRAMS: [&str; 2] = ["docker", "nerdctl"];

/// Variables of the step the shim forwards (the commit the tags name).
pub const FORWARDED_VARIABLES: [&str; 1] = ["GITHUB_SHA"];

/// The shim's one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimRequest {
    /// `docker` or `nerdctl`.
    pub program: String,
    /// The arguments after the program name.
    pub args: Vec<String>,
    /// The shim's working folder (the build context's base).
    pub cwd: PathBuf,
    /// [`FORWARDED_VARIABLES`] that are set.
    pub env: Vec<(String, String)>,
}

impl ShimRequest {
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// One reply line; [`ShimReply::Exit`] is the last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShimReply {
    Stdout(String),
    Stderr(String),
    Exit(i32),
}

/// `message` as one line of JSON, newline-terminated.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail; an empty line would be refused by the
    // other side rather than misread.
    let mut line = serde_json::to_vec(message).unwrap_or_default();
    line.push(b'\n');
    line
}

/// A line from the other side of the shim's socket that is not a message.
#[derive(Debug, thiserror::Error)]
#[error("malformed docker shim message: {0}")]
pub struct MalformedMessage(#[source] pub serde_json::Error);

/// One line (with or without its newline) back into a message.
pub fn decode<'a, T: Deserialize<'a>>(line: &'a str) -> Result<T, MalformedMessage> {
    serde_json::from_str(line.trim_end_matches(['\n', '\r'])).map_err(MalformedMessage)
}

/// The executable placed on the step's `PATH` as `program`: it hands everything to the
/// running `hybrid-runner` binary.
pub fn shim_script(runner: &std::path::Path, program: &str) -> String {
    let quoted = runner.display().to_string().replace('\'', r"'\''");
    format!("#!/bin/sh\nexec '{quoted}' {SHIM_SUBCOMMAND} {program} \"$@\"\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn requests_and_replies_round_trip_as_single_lines() {
        let request = ShimRequest {
            program: "docker".into(),
            args: vec!["build".into(), "-t".into(), "a\nb".into(), ".".into()],
            cwd: PathBuf::from("/w s"),
            env: vec![("GITHUB_SHA".into(), "abc".into())],
        };
        let line = encode(&request);
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        let text = String::from_utf8(line).unwrap();
        assert_eq!(decode::<ShimRequest>(&text).unwrap(), request);
        assert_eq!(request.variable("GITHUB_SHA"), Some("abc"));
        assert_eq!(request.variable("HOME"), None);
        for reply in [
            ShimReply::Stdout("out".into()),
            ShimReply::Stderr("[docker] STEP 1/2".into()),
            ShimReply::Exit(125),
        ] {
            let text = String::from_utf8(encode(&reply)).unwrap();
            assert_eq!(decode::<ShimReply>(&text).unwrap(), reply);
        }
        assert!(decode::<ShimReply>("{\"exit\":\"x\"}").is_err());
    }

    #[test]
    fn the_script_execs_the_runner_with_its_arguments() {
        let script = shim_script(std::path::Path::new("/opt/it's/hybrid-runner"), "docker");
        assert_eq!(
            script,
            "#!/bin/sh\nexec '/opt/it'\\''s/hybrid-runner' __docker-shim docker \"$@\"\n"
        );
    }
}
