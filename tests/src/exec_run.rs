//! The result of one `hybrid-runner` command run by an end-to-end test, and readers for the
//! `--json` event lines `exec` prints (one JSON object per line: `step_finished`, `log`, ...).

use std::process::Output;

use serde_json::Value;

/// Exit code and captured output of one command.
#[derive(Debug)]
pub struct ExecRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl ExecRun {
    pub fn from_output(out: Output) -> ExecRun {
        ExecRun {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Both streams, for assertion messages.
    pub fn all(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }

    /// The `--json` events on stdout. A line that is not JSON fails the test: in `--json`
    /// mode stdout carries events only.
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not a JSON event ({e}): {l}\n{}", self.all()))
            })
            .collect()
    }

    /// `id:outcome` of every finished step, in the order they finished.
    pub fn steps(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| e["event"] == "step_finished")
            .map(|e| {
                format!(
                    "{}:{}",
                    e["step"]["id"].as_str().unwrap_or_default(),
                    e["outcome"].as_str().unwrap_or_default()
                )
            })
            .collect()
    }

    /// The outputs of the first step `id` to finish.
    pub fn outputs(&self, id: &str) -> Vec<(String, String)> {
        let events = self.events();
        let finished = events
            .iter()
            .find(|e| e["event"] == "step_finished" && e["step"]["id"] == id)
            .unwrap_or_else(|| panic!("step {id} did not finish:\n{}", self.all()));
        finished["outputs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|pair| Some((pair[0].as_str()?.to_string(), pair[1].as_str()?.to_string())))
            .collect()
    }

    /// Output `name` of step `id`; fails the test when there is none.
    pub fn output(&self, id: &str, name: &str) -> String {
        self.outputs(id)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("step {id} has no output {name}:\n{}", self.all()))
    }

    /// Every log line (any kind) and annotation message of the `--json` events.
    pub fn logged_lines(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter_map(|e| match e["event"].as_str()? {
                "log" => Some(e["line"].as_str()?.to_string()),
                "annotation" => Some(e["annotation"]["message"].as_str()?.to_string()),
                _ => None,
            })
            .collect()
    }

    /// Whether a `--json` log line or annotation contains `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.logged_lines().iter().any(|l| l.contains(text))
    }

    /// Whether the raw stdout or stderr contains `text` (for commands without `--json`).
    pub fn printed(&self, text: &str) -> bool {
        self.stdout.contains(text) || self.stderr.contains(text)
    }
}
