//! Shared pieces of the integration tests: where the conformance data lives, and the
//! pass/fail tally every suite prints and holds to its checked-in floor.

pub mod buildah;
pub mod cli;
pub mod daemon_checks;
pub mod daemon_process;
pub mod exec_run;
pub mod fake_gitea;
pub mod fake_github;
pub mod fake_kube;
pub mod git;
pub mod images;
pub mod kaniko;
pub mod loopback;
pub mod reader;
pub mod registry;

use std::path::{Path, PathBuf};

pub use hr_cluster::install_crypto_provider;

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits inside the workspace")
        .to_path_buf()
}

/// The `node_modules` folder holding GitHub's own npm clients (`@actions/cache`,
/// `@actions/artifact`, pinned; `.ci/test` installs them): `$HYBRID_RUNNER_NPM_CLIENTS`,
/// else `~/.cache/hybrid-runner/npm/node_modules`. `None` (after a notice) when they are
/// not installed outside CI; under CI their absence panics.
pub fn npm_clients() -> Option<PathBuf> {
    let dir = match std::env::var_os("HYBRID_RUNNER_NPM_CLIENTS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/hybrid-runner/npm/node_modules"),
    };
    if dir.join("@actions/cache/package.json").is_file() {
        return Some(dir);
    }
    if under_ci() {
        panic!(
            "GitHub's npm clients are not installed at {} (CI=true requires them; .ci/test installs them)",
            dir.display()
        );
    }
    eprintln!(
        "notice: GitHub's npm clients are not at {}; skipping (run .ci/test once, or set HYBRID_RUNNER_NPM_CLIENTS)",
        dir.display()
    );
    None
}

/// Whether this run is CI's (`CI=true`), where missing conformance data is a failure.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The conformance data folder: `$HYBRID_RUNNER_CONFORMANCE`, else `../shared/conformance`
/// beside the workspace. `None` (after printing a notice) when it is absent outside CI;
/// under CI its absence panics, so a misplaced checkout cannot pass by skipping.
pub fn conformance_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("HYBRID_RUNNER_CONFORMANCE") {
        Some(d) => PathBuf::from(d),
        None => workspace_root().join("../shared/conformance"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    if under_ci() {
        panic!(
            "conformance data not found at {} (CI=true requires it; set HYBRID_RUNNER_CONFORMANCE)",
            dir.display()
        );
    }
    eprintln!(
        "notice: conformance data not found at {}; skipping (set HYBRID_RUNNER_CONFORMANCE to run it)",
        dir.display()
    );
    None
}

/// Passes and failures of one conformance suite.
#[derive(Debug)]
pub struct Tally {
    suite: String,
    passed: usize,
    failures: Vec<String>,
    skipped: usize,
}

impl Tally {
    /// `suite` is one word (it prefixes the `N passed, M failed` line).
    pub fn new(suite: &str) -> Self {
        assert!(
            !suite.contains(char::is_whitespace),
            "suite names are one word"
        );
        Tally {
            suite: suite.to_string(),
            passed: 0,
            failures: Vec::new(),
            skipped: 0,
        }
    }

    pub fn pass(&mut self) {
        self.passed += 1;
    }

    pub fn fail(&mut self, case: impl std::fmt::Display, why: impl std::fmt::Display) {
        self.failures.push(format!("{case}: {why}"));
    }

    pub fn skip(&mut self) {
        self.skipped += 1;
    }

    /// Records `ok` as a pass, or a failure explained by `why`.
    pub fn check(&mut self, ok: bool, case: impl std::fmt::Display, why: impl FnOnce() -> String) {
        if ok {
            self.pass();
        } else {
            self.fail(case, why());
        }
    }

    pub fn passed(&self) -> usize {
        self.passed
    }

    pub fn failed(&self) -> usize {
        self.failures.len()
    }

    /// Prints every failure and the `suite: N passed, M failed` line, then fails the
    /// test if fewer cases pass than the floor in `tests/floors/<suite>`.
    pub fn finish(self) {
        for f in &self.failures {
            println!("FAIL [{}] {f}", self.suite);
        }
        let skipped = if self.skipped > 0 {
            format!(", {} skipped", self.skipped)
        } else {
            String::new()
        };
        println!(
            "{}: {} passed, {} failed{skipped}",
            self.suite,
            self.passed,
            self.failures.len()
        );
        let floor_file = workspace_root().join("tests/floors").join(&self.suite);
        let floor: usize = std::fs::read_to_string(&floor_file)
            .unwrap_or_else(|e| {
                panic!(
                    "no floor for suite {} at {}: {e}",
                    self.suite,
                    floor_file.display()
                )
            })
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("floor in {} is not a count: {e}", floor_file.display()));
        assert!(
            self.passed >= floor,
            "suite {} regressed: {} passed, floor is {floor} (tests/floors/{})",
            self.suite,
            self.passed,
            self.suite
        );
    }
}
