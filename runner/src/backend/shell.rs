//! STAND-IN (helper branch `host`).
use std::path::{Path, PathBuf};
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shell {
    pub template: Vec<String>,
    pub extension: &'static str,
}
impl Shell {
    pub fn command_for(&self, script: &Path) -> (String, Vec<String>) {
        let s = script.display().to_string();
        let mut argv: Vec<String> = self.template.iter().map(|a| a.replace("{0}", &s)).collect();
        let program = argv.remove(0);
        (program, argv)
    }
}
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error("shell {shell} not found on {searched}")]
    NotFound { shell: String, searched: String },
    #[error("custom shell {shell} lacks {{0}}")]
    InvalidCustom { shell: String },
}
pub fn resolve_shell(shell: Option<&str>, _path_env: &str) -> Result<Shell, ShellError> {
    let t: Vec<&str> = match shell {
        None => vec!["bash", "-e", "{0}"],
        Some("bash") => vec!["bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"],
        Some("sh") => vec!["sh", "-e", "{0}"],
        Some("python") => vec!["python3", "{0}"],
        Some(other) => other.split_whitespace().collect(),
    };
    Ok(Shell {
        template: t.into_iter().map(String::from).collect(),
        extension: if shell == Some("python") {
            ".py"
        } else {
            ".sh"
        },
    })
}
pub fn find_program(name: &str, path_env: &str) -> Option<PathBuf> {
    std::env::split_paths(path_env)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
