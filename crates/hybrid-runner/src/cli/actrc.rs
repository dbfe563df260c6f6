//! act's configuration files for `exec`: `$XDG_CONFIG_HOME/act/actrc` (else
//! `~/.config/act/actrc`), `~/.actrc` and `./.actrc` (the folder `exec` starts in), read in
//! that order and put before the command line's flags, so the command line wins over
//! `./.actrc`, which wins over the home folder's files: a flag given again takes the later
//! value, a repeatable one (`-s`, `--env`, `-P` …) adds up (act's cmd/root.go:
//! configLocations, args, readArgsFile).
//!
//! A line is taken as act takes it: trimmed, `$VAR`/`${VAR}` replaced from the
//! environment, and only when it starts with `-`, split at its first blank into the flag
//! and its value (`-P ubuntu-latest=host`, `--actor me`, `--use-gitignore=false`); other
//! lines (comments, blank ones) are skipped. Two kinds of line are left out with a warning
//! on stderr instead of failing the run, since the same file also drives act: flags `exec`
//! does not have (`--container-architecture`, `--pull` …), and `-P LABEL=IMAGE`, which asks
//! act for a container image (`exec` runs such jobs on this host; `-P LABEL=host` is taken).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What `-v` prints about the files read: each file and the flags taken from it.
static TAKEN: OnceLock<Vec<String>> = OnceLock::new();

/// A line of an `.actrc` file that `exec` leaves out, and what to do instead.
#[derive(Debug)]
pub enum ActrcLineProblem {
    /// A flag act has and `exec` does not.
    UnknownFlag { file: PathBuf, flag: String },
    /// `-P LABEL=IMAGE`: act's container image for a label.
    ImagePlatform {
        file: PathBuf,
        label: String,
        image: String,
    },
}

impl std::fmt::Display for ActrcLineProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActrcLineProblem::UnknownFlag { file, flag } => write!(
                f,
                "{}: `{flag}` is not a flag of `hybrid-runner exec` (`exec --help` lists them); the line is ignored",
                file.display()
            ),
            ActrcLineProblem::ImagePlatform { file, label, image } => write!(
                f,
                "{}: `-P {label}={image}` names a container image; `exec` runs `{label}` jobs on this host (`container:` jobs in pods, see --container-backend), so the line is ignored",
                file.display()
            ),
        }
    }
}

/// The command line with the flags of the `.actrc` files put right after `exec`; other
/// commands are returned as they are. Problems are printed as warnings.
pub fn with_actrc(args: Vec<OsString>, exec: &clap::Command) -> Vec<OsString> {
    if args.get(1).is_none_or(|a| a != "exec") {
        return args;
    }
    let mut taken = Vec::new();
    let mut notes = Vec::new();
    for file in locations() {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let mut from_file = Vec::new();
        for flag in lines(&text, |name| std::env::var(name).ok()) {
            match check(&file, &flag, exec) {
                Ok(()) => from_file.extend(flag),
                Err(problem) => eprintln!("warning: {problem}"),
            }
        }
        if !from_file.is_empty() {
            notes.push(format!(
                "flags from {}: {}",
                file.display(),
                from_file.join(" ")
            ));
        }
        taken.extend(from_file);
    }
    let _ = TAKEN.set(notes);
    let mut out = args;
    let rest = out.split_off(2);
    out.extend(taken.into_iter().map(OsString::from));
    out.extend(rest);
    out
}

/// What `-v` prints: one line per file flags were taken from.
pub fn notes() -> &'static [String] {
    TAKEN.get().map_or(&[], Vec::as_slice)
}

/// act's order: the XDG file, `~/.actrc`, `./.actrc`.
fn locations() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| home.as_ref().map(|h| h.join(".config")));
    let mut files: Vec<PathBuf> = [
        xdg.map(|x| x.join("act/actrc")),
        home.map(|h| h.join(".actrc")),
        Some(PathBuf::from(".actrc")),
    ]
    .into_iter()
    .flatten()
    .collect();
    // `~/.actrc` read from the home folder is read once.
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut seen: Vec<PathBuf> = Vec::new();
    files.retain(|f| {
        let real = std::fs::canonicalize(cwd.join(f)).unwrap_or_else(|_| f.clone());
        let new = !seen.contains(&real);
        seen.push(real);
        new
    });
    files
}

/// Each flag line of a file as one or two arguments (readArgsFile with split).
fn lines(text: &str, env: impl Fn(&str) -> Option<String>) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| expand(line.trim(), &env))
        .filter(|line| line.starts_with('-'))
        .map(
            |line| match line.split_once([' ', '\t', '\n', '\r', '\x0c']) {
                Some((flag, value)) => vec![flag.to_string(), value.trim_start().to_string()],
                None => vec![line],
            },
        )
        .collect()
}

/// Go's `os.ExpandEnv`: `${NAME}` and `$NAME` (letters, digits, `_`), or a one-character
/// special name (`$1`, `$@` …); unset names become empty, a `$` before anything else
/// stays, `${}` is dropped, and so is the `${` of one never closed.
fn expand(text: &str, env: &impl Fn(&str) -> Option<String>) -> String {
    let special = |c: char| "*#$@!?-".contains(c) || c.is_ascii_digit();
    let name_char = |c: char| c == '_' || c.is_ascii_alphanumeric();
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, used) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(0) => (None, 2),
                Some(end) => (Some(&braced[..end]), end + 2),
                // Go eats `${` alone then.
                None => (None, 1),
            }
        } else if after.starts_with(special) {
            (Some(&after[..1]), 1)
        } else {
            let end = after.find(|c| !name_char(c)).unwrap_or(after.len());
            if end == 0 {
                out.push('$');
                (None, 0)
            } else {
                (Some(&after[..end]), end)
            }
        };
        if let Some(name) = name {
            out.push_str(&env(name).unwrap_or_default());
        }
        rest = &after[used..];
    }
    out.push_str(rest);
    out
}

/// Whether `exec` takes the flag of one line (see [`ActrcLineProblem`]).
fn check(file: &Path, line: &[String], exec: &clap::Command) -> Result<(), ActrcLineProblem> {
    let first = &line[0];
    let (arg, attached) = if let Some(long) = first.strip_prefix("--") {
        let (name, value) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (long, None),
        };
        let arg = exec.get_arguments().find(|a| {
            a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|al| al.contains(&name))
        });
        (arg, value)
    } else {
        let mut chars = first[1..].chars();
        let short = chars.next();
        let rest: String = chars.collect();
        let arg = exec
            .get_arguments()
            .find(|a| short.is_some() && a.get_short() == short);
        (arg, (!rest.is_empty()).then_some(rest))
    };
    let Some(arg) = arg else {
        return Err(ActrcLineProblem::UnknownFlag {
            file: file.to_path_buf(),
            flag: first.split('=').next().unwrap_or(first).to_string(),
        });
    };
    if arg.get_id() == "platforms" {
        let value = attached
            .or_else(|| line.get(1).cloned())
            .unwrap_or_default();
        if let Some((label, image)) = value.split_once('=')
            && !matches!(image, "host" | "-self-hosted")
        {
            return Err(ActrcLineProblem::ImagePlatform {
                file: file.to_path_buf(),
                label: label.to_string(),
                image: image.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "USER_NAME" => Some("ada".into()),
            "1" => Some("one".into()),
            _ => None,
        }
    }

    #[test]
    fn variables_expand_as_go_expands_them() {
        assert_eq!(expand("--actor $USER_NAME", &env), "--actor ada");
        assert_eq!(expand("--actor=${USER_NAME}x", &env), "--actor=adax");
        assert_eq!(expand("a $UNSET b", &env), "a  b");
        assert_eq!(expand("$1st", &env), "onest");
        assert_eq!(expand("cost: 5$ or $%", &env), "cost: 5$ or $%");
        assert_eq!(expand("${} ${USER_NAME", &env), " USER_NAME");
    }

    #[test]
    fn flag_lines_split_at_the_first_blank_and_others_are_skipped() {
        let text = "# comment\n\n  -P ubuntu-latest=host  \n--actor\t$USER_NAME\n\
                    --use-gitignore=false\nnot-a-flag\n-s  A=b c\n";
        assert_eq!(
            lines(text, env),
            vec![
                vec!["-P".to_string(), "ubuntu-latest=host".to_string()],
                vec!["--actor".to_string(), "ada".to_string()],
                vec!["--use-gitignore=false".to_string()],
                vec!["-s".to_string(), "A=b c".to_string()],
            ]
        );
    }

    #[test]
    fn unknown_flags_and_image_platforms_are_left_out() {
        use clap::CommandFactory;
        let cli = super::super::Cli::command();
        let exec = cli.find_subcommand("exec").unwrap();
        let file = Path::new(".actrc");
        let ok = |line: &[&str]| {
            let line: Vec<String> = line.iter().map(|s| s.to_string()).collect();
            check(file, &line, exec).map_err(|e| e.to_string())
        };
        assert!(ok(&["--actor", "me"]).is_ok());
        assert!(ok(&["-a", "me"]).is_ok());
        assert!(ok(&["-ame"]).is_ok());
        assert!(ok(&["--concurrent-jobs=2"]).is_ok());
        assert!(ok(&["-P", "ubuntu-latest=host"]).is_ok());
        assert!(ok(&["--platform=self-hosted=-self-hosted"]).is_ok());
        assert_eq!(
            ok(&["--container-architecture", "linux/amd64"]).unwrap_err(),
            ".actrc: `--container-architecture` is not a flag of `hybrid-runner exec` (`exec --help` lists them); the line is ignored"
        );
        assert!(ok(&["-b"]).unwrap_err().contains("`-b`"));
        let image = ok(&["-P", "ubuntu-latest=catthehacker/ubuntu:act-latest"]).unwrap_err();
        assert!(
            image.contains(
                "`-P ubuntu-latest=catthehacker/ubuntu:act-latest` names a container image"
            ),
            "{image}"
        );
    }
}
