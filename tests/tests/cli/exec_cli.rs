//! `hybrid-runner exec` as users call it, checked against GitHub's runner: exit codes,
//! Ctrl-C, secret masking, step and job semantics, actions, reusable workflows, and the
//! `-n`/`-l`/`--json` modes. Each test writes a workflow into a fresh git repository
//! and runs the real binary there; this file holds the helpers, `exec_cli/` the tests
//! by topic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up its repository should fail loudly

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::git::git;
use serde_json::Value;

/// A throwaway git repository to run workflows in.
struct Repo {
    dir: tempfile::TempDir,
}

/// What one `exec` run printed and how it ended.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        harness::git::init(dir.path());
        Repo { dir }
    }

    /// A repository holding `workflow` as `.github/workflows/ci.yml`.
    fn with(workflow: &str) -> Repo {
        let repo = Repo::new();
        repo.write(".github/workflows/ci.yml", workflow);
        repo
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, path: &str, text: &str) {
        let path = self.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// `hybrid-runner exec ARGS` with a clean environment (no debug, no nesting in Actions, no
    /// XDG `actrc`).
    fn command(&self, args: &[&str]) -> Command {
        let mut c = harness::cli::command();
        c.arg("exec")
            .args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .env("XDG_CACHE_HOME", self.path().join(".no-cache"))
            // No `$XDG_CONFIG_HOME/act/actrc` of whoever runs the tests.
            .env("XDG_CONFIG_HOME", self.path().join(".no-config"));
        for var in [
            "GITHUB_ACTIONS",
            "GITHUB_WORKSPACE",
            "ACTIONS_STEP_DEBUG",
            "RUNNER_DEBUG",
            "ACTIONS_ALLOW_UNSECURE_COMMANDS",
        ] {
            c.env_remove(var);
        }
        c
    }

    fn exec(&self, args: &[&str]) -> Run {
        self.exec_with(args, &[])
    }

    fn exec_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().expect("the binary runs");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `exec --json ARGS`.
    fn json(&self, args: &[&str]) -> Run {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.exec(&all)
    }
}

impl Run {
    fn all(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }

    fn assert_code(&self, code: i32) {
        assert_eq!(self.code, Some(code), "{}", self.all());
    }

    /// Every `--json` line, parsed (each line must be JSON).
    fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    fn events_of(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == kind)
            .collect()
    }

    /// The result of job `id` (`job_finished`'s result, or "skipped").
    fn job(&self, id: &str) -> Option<String> {
        self.events().iter().find_map(|e| {
            (e["job"]["id"] == id).then_some(())?;
            match e["event"].as_str()? {
                "job_finished" => Some(e["result"].as_str()?.to_string()),
                "job_skipped" => Some("skipped".to_string()),
                _ => None,
            }
        })
    }

    /// Every job result, as `id=result`, sorted.
    fn jobs(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .events()
            .iter()
            .filter_map(|e| match e["event"].as_str()? {
                "job_finished" => Some(format!(
                    "{}={}",
                    e["job"]["name"].as_str()?,
                    e["result"].as_str()?
                )),
                "job_skipped" => Some(format!("{}=skipped", e["job"]["name"].as_str()?)),
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    /// stdout/stderr lines the steps of job `id` printed, in order.
    fn output(&self, id: &str) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| {
                e["event"] == "log"
                    && e["job"]["id"] == id
                    && (e["kind"] == "stdout" || e["kind"] == "stderr")
            })
            .map(|e| e["line"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Each step of job `id` that finished: `id:outcome/conclusion`.
    fn steps(&self, id: &str) -> Vec<String> {
        self.events_of("step_finished")
            .iter()
            .filter(|e| e["job"]["id"] == id)
            .map(|e| {
                format!(
                    "{}:{}/{}",
                    e["step"]["id"].as_str().unwrap_or_default(),
                    e["outcome"].as_str().unwrap_or_default(),
                    e["conclusion"].as_str().unwrap_or_default()
                )
            })
            .collect()
    }

    /// Annotation messages (`level: message`) of job `id`.
    fn annotations(&self, id: &str) -> Vec<String> {
        self.events_of("annotation")
            .iter()
            .filter(|e| e["job"]["id"] == id)
            .map(|e| {
                format!(
                    "{}: {}",
                    e["annotation"]["level"].as_str().unwrap_or_default(),
                    e["annotation"]["message"].as_str().unwrap_or_default()
                )
            })
            .collect()
    }

    /// Runner notes (`kind: runner`) of job `id`, with or without a step.
    fn notes(&self, id: &str) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| e["event"] == "log" && e["job"]["id"] == id && e["kind"] == "runner")
            .map(|e| e["line"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

mod act_flags;
mod actions;
mod artifacts;
mod cache;
mod ctrl_c;
mod exit_codes;
mod jobs;
mod limits;
mod modes;
mod output;
mod reusable;
mod secrets;
mod steps;
