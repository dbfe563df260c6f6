//! GitHub's `shell:` rules: which program runs a `run:` script, with which arguments, and
//! which extension the script file gets.
//!
//! | `shell:`      | command                                          | file   |
//! |---------------|--------------------------------------------------|--------|
//! | (unspecified) | `bash -e {0}` if bash is on PATH, else `sh -e {0}` | `.sh` |
//! | `bash`        | `bash --noprofile --norc -eo pipefail {0}`       | `.sh`  |
//! | `sh`          | `sh -e {0}`                                      | `.sh`  |
//! | `python`      | `python {0}`                                     | `.py`  |
//! | `pwsh`        | `pwsh -command ". '{0}'"`                        | `.ps1` |
//! | `powershell`  | `powershell -command ". '{0}'"`                  | `.ps1` |
//! | `cmd`         | `cmd /D /E:ON /V:OFF /S /C "CALL "{0}""`         | `.cmd` |
//! | custom        | the string split on whitespace, with `{0}`       | by program name, else none |
//!
//! A custom shell's arguments may group words with double quotes (`bash -c "source {0}"`),
//! as the .NET argument parsing behind GitHub's runner does.
//!
//! A custom shell's file extension follows its program the way GitHub's runner picks it:
//! `bash -x {0}` writes a `.sh` file, `perl {0}` a file without extension.
//!
//! Programs are looked up on the job's PATH (not the runner's), and the template holds the
//! absolute path found.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where the script path goes in a shell template.
const PLACEHOLDER: &str = "{0}";

/// A resolved shell: the command template and the script file's extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shell {
    /// argv template, one element is or contains "{0}" (the script path).
    pub template: Vec<String>,
    /// File extension of the script file GitHub writes (".sh", ".py", ".ps1", ".cmd", "" for custom).
    pub extension: &'static str,
}

impl Shell {
    /// The program and arguments that run `script`.
    pub fn command_for(&self, script: &Path) -> (String, Vec<String>) {
        let script = script.to_string_lossy();
        let mut argv = self
            .template
            .iter()
            .map(|part| part.replace(PLACEHOLDER, &script));
        let program = argv.next().unwrap_or_default();
        (program, argv.collect())
    }
}

/// Why a step's shell cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error(
        "shell `{shell}` was not found on the job's PATH ({searched}); install it or set `shell:` on the step (or `defaults.run.shell`)"
    )]
    NotFound { shell: String, searched: String },
    #[error(
        "custom shell `{shell}` must contain `{{0}}` where the script path goes, e.g. `perl {{0}}`"
    )]
    InvalidCustom { shell: String },
}

/// Resolves `shell` as written in the step (after the `defaults.run.shell` fallback);
/// `None` is GitHub's default on Linux. Programs are looked up on `path_env`.
pub fn resolve_shell(shell: Option<&str>, path_env: &str) -> Result<Shell, ShellError> {
    let Some(shell) = shell else {
        let (program, extension) = match find_program("bash", path_env) {
            Some(bash) => (bash, ".sh"),
            None => (locate("sh", "bash", path_env)?, ".sh"),
        };
        return Ok(built_in(program, &["-e", PLACEHOLDER], extension));
    };
    let shell = shell.trim();
    let (name, args, extension): (&str, &[&str], &'static str) = match shell {
        "bash" => (
            "bash",
            &["--noprofile", "--norc", "-eo", "pipefail", "{0}"],
            ".sh",
        ),
        "sh" => ("sh", &["-e", "{0}"], ".sh"),
        "python" => ("python", &["{0}"], ".py"),
        "pwsh" => ("pwsh", &["-command", ". '{0}'"], ".ps1"),
        "powershell" => ("powershell", &["-command", ". '{0}'"], ".ps1"),
        "cmd" => (
            "cmd",
            &["/D", "/E:ON", "/V:OFF", "/S", "/C", "CALL \"{0}\""],
            ".cmd",
        ),
        custom => return resolve_custom(custom, path_env),
    };
    let program = locate(name, name, path_env)?;
    Ok(built_in(program, args, extension))
}

fn built_in(program: PathBuf, args: &[&str], extension: &'static str) -> Shell {
    let mut template = vec![program.to_string_lossy().into_owned()];
    template.extend(args.iter().map(|a| (*a).to_owned()));
    Shell {
        template,
        extension,
    }
}

fn resolve_custom(shell: &str, path_env: &str) -> Result<Shell, ShellError> {
    let mut parts = split_arguments(shell);
    if parts.is_empty() || !parts.iter().any(|p| p.contains(PLACEHOLDER)) {
        return Err(ShellError::InvalidCustom {
            shell: shell.to_owned(),
        });
    }
    let name = parts[0].clone();
    let program = locate(&name, shell, path_env)?;
    parts[0] = program.to_string_lossy().into_owned();
    let base = Path::new(&name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Shell {
        template: parts,
        extension: extension_for(&base),
    })
}

/// Splits a custom shell string into argv on whitespace, keeping double-quoted runs
/// together (quotes removed, `\"` a literal quote), as .NET splits the argument string
/// GitHub's runner hands to the process: `bash -c "source {0}"` is three arguments.
fn split_arguments(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut in_token = false;
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
                in_token = true;
            }
            '"' => {
                quoted = !quoted;
                in_token = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_token {
                    parts.push(std::mem::take(&mut current));
                    in_token = false;
                }
            }
            c => {
                current.push(c);
                in_token = true;
            }
        }
    }
    if in_token {
        parts.push(current);
    }
    parts
}

/// The script extension GitHub's runner uses for a shell program's name.
fn extension_for(program: &str) -> &'static str {
    match program {
        "bash" | "sh" => ".sh",
        "python" => ".py",
        "pwsh" | "powershell" => ".ps1",
        "cmd" => ".cmd",
        _ => "",
    }
}

fn locate(name: &str, shell: &str, path_env: &str) -> Result<PathBuf, ShellError> {
    find_program(name, path_env).ok_or_else(|| ShellError::NotFound {
        shell: shell.to_owned(),
        searched: if name.contains('/') {
            name.to_owned()
        } else if path_env.is_empty() {
            "PATH is empty".to_owned()
        } else {
            format!("PATH={path_env}")
        },
    })
}

/// Finds an executable by name on a PATH string. A name containing `/` is taken as a path
/// and only checked. Empty PATH entries are skipped (they would mean the step's working
/// directory, which GitHub's runner does not search either).
pub fn find_program(name: &str, path_env: &str) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    if name.contains('/') {
        let path = PathBuf::from(name);
        return is_executable(&path).then_some(path);
    }
    path_env
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_path(names: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for name in names {
            let p = dir.path().join(name);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    fn path_of(dir: &tempfile::TempDir) -> String {
        dir.path().to_string_lossy().into_owned()
    }

    #[test]
    fn default_prefers_bash_then_sh() {
        let both = fake_path(&["bash", "sh"]);
        let shell = resolve_shell(None, &path_of(&both)).unwrap();
        assert_eq!(shell.template[1..], ["-e", "{0}"]);
        assert!(shell.template[0].ends_with("/bash"));
        let only_sh = fake_path(&["sh"]);
        let shell = resolve_shell(None, &path_of(&only_sh)).unwrap();
        assert!(shell.template[0].ends_with("/sh"));
        assert_eq!(shell.extension, ".sh");
    }

    #[test]
    fn explicit_bash_uses_pipefail() {
        let dir = fake_path(&["bash"]);
        let shell = resolve_shell(Some("bash"), &path_of(&dir)).unwrap();
        let (program, args) = shell.command_for(Path::new("/tmp/s.sh"));
        assert_eq!(program, dir.path().join("bash").to_string_lossy());
        assert_eq!(
            args,
            ["--noprofile", "--norc", "-eo", "pipefail", "/tmp/s.sh"]
        );
    }

    #[test]
    fn pwsh_and_cmd_embed_the_path() {
        let dir = fake_path(&["pwsh", "cmd"]);
        let pwsh = resolve_shell(Some("pwsh"), &path_of(&dir)).unwrap();
        assert_eq!(pwsh.extension, ".ps1");
        assert_eq!(
            pwsh.command_for(Path::new("/x/a.ps1")).1,
            ["-command", ". '/x/a.ps1'"]
        );
        let cmd = resolve_shell(Some("cmd"), &path_of(&dir)).unwrap();
        assert_eq!(
            cmd.command_for(Path::new("a.cmd")).1.last().unwrap(),
            "CALL \"a.cmd\""
        );
    }

    #[test]
    fn custom_shell_needs_placeholder_and_gets_extension_by_program() {
        let dir = fake_path(&["perl", "bash"]);
        assert!(matches!(
            resolve_shell(Some("perl -w"), &path_of(&dir)),
            Err(ShellError::InvalidCustom { .. })
        ));
        let perl = resolve_shell(Some("perl -w {0}"), &path_of(&dir)).unwrap();
        assert_eq!(perl.extension, "");
        assert_eq!(perl.command_for(Path::new("s")).1, ["-w", "s"]);
        let bash = resolve_shell(Some("bash -x {0}"), &path_of(&dir)).unwrap();
        assert_eq!(bash.extension, ".sh");
    }

    #[test]
    fn custom_arguments_keep_double_quoted_runs() {
        assert_eq!(
            split_arguments(r#"bash -c  "source {0}" "" a\"b"#),
            ["bash", "-c", "source {0}", "", "a\"b"]
        );
        assert_eq!(split_arguments("  perl   {0} "), ["perl", "{0}"]);
    }

    #[test]
    fn missing_shell_names_the_path_searched() {
        let dir = fake_path(&[]);
        let err = resolve_shell(Some("python"), &path_of(&dir)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("`python`") && text.contains(&path_of(&dir)),
            "{text}"
        );
        assert!(text.contains("install it or set `shell:`"), "{text}");
    }

    #[test]
    fn find_program_skips_non_executables() {
        let dir = fake_path(&["tool"]);
        std::fs::write(dir.path().join("plain"), "x").unwrap();
        let path = format!(":/nonexistent:{}", path_of(&dir));
        assert_eq!(find_program("tool", &path), Some(dir.path().join("tool")));
        assert_eq!(find_program("plain", &path), None);
    }
}
