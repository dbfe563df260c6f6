//! Which platform's rules a workflow is read by: GitHub's, Gitea's or Forgejo's.
//!
//! The three platforms share the workflow language but not every key, context and check.
//! A file's folder decides (`.github/workflows` is GitHub, `.gitea/workflows` Gitea,
//! `.forgejo/workflows` Forgejo); a task from a Gitea or Forgejo server is read as that
//! server reads it; `validate --dialect` overrides both. docs/guide/dialects.md lists
//! what differs, with the upstream code each rule comes from.

use std::fmt;
use std::path::{Component, Path};

/// A platform whose reading of workflow files the loader follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// github.com and GitHub Enterprise Server: `@actions/workflow-parser`'s strict schema
    /// and the runner's conversion rules.
    #[default]
    Github,
    /// Gitea Actions (the server and act_runner).
    Gitea,
    /// Forgejo Actions (the server and forgejo-runner).
    Forgejo,
}

impl Dialect {
    pub const ALL: [Dialect; 3] = [Dialect::Github, Dialect::Gitea, Dialect::Forgejo];

    /// The dialect of a workflow file, by the folder it lies in: the nearest
    /// `.gitea/workflows` or `.forgejo/workflows` above it, else GitHub.
    pub fn of_path(path: impl AsRef<Path>) -> Dialect {
        let names: Vec<&str> = path
            .as_ref()
            .components()
            .filter_map(|c| match c {
                Component::Normal(name) => name.to_str(),
                _ => None,
            })
            .collect();
        for pair in names.windows(2).rev() {
            if pair[1] != "workflows" {
                continue;
            }
            match pair[0] {
                ".gitea" => return Dialect::Gitea,
                ".forgejo" => return Dialect::Forgejo,
                ".github" => return Dialect::Github,
                _ => {}
            }
        }
        Dialect::Github
    }

    /// The name users know the platform by.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Github => "GitHub",
            Dialect::Gitea => "Gitea",
            Dialect::Forgejo => "Forgejo",
        }
    }

    /// The lowercase word used on command lines and in JSON.
    pub fn word(self) -> &'static str {
        match self {
            Dialect::Github => "github",
            Dialect::Gitea => "gitea",
            Dialect::Forgejo => "forgejo",
        }
    }

    /// Gitea or Forgejo: the two share act's reading of workflows.
    pub fn is_forge(self) -> bool {
        self != Dialect::Github
    }

    /// The schemes a step's `uses:` may name its host with (act's `newRemoteAction`):
    /// `https://` and `http://`, and on Gitea also `ssh://` (act_runner since 2026-06);
    /// none on GitHub.
    pub(crate) fn action_url_schemes(self) -> &'static [&'static str] {
        match self {
            Dialect::Github => &[],
            Dialect::Gitea => &["https://", "http://", "ssh://"],
            Dialect::Forgejo => &["https://", "http://"],
        }
    }

    /// How a message says which rules a file is read by, and how to pick others.
    pub fn read_as(self) -> String {
        format!(
            "this file is read as {} (by its folder; `validate --dialect` picks another)",
            self.name()
        )
    }
}

/// What follows `scheme://host/` in `text`, for the first of `schemes` it starts with
/// (`owner/repo[/path]@ref` of an absolute `uses:`); `None` when it starts with none of
/// them or has nothing after the host.
pub(crate) fn after_host<'a>(text: &'a str, schemes: &[&str]) -> Option<&'a str> {
    schemes
        .iter()
        .find_map(|scheme| text.strip_prefix(scheme))
        .and_then(|after| after.split_once('/').map(|(_, rest)| rest))
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Dialect {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dialect::ALL
            .into_iter()
            .find(|d| d.word().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown dialect '{s}': use github, gitea or forgejo"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_decides() {
        assert_eq!(
            Dialect::of_path(".github/workflows/ci.yml"),
            Dialect::Github
        );
        assert_eq!(Dialect::of_path(".gitea/workflows/ci.yml"), Dialect::Gitea);
        assert_eq!(
            Dialect::of_path("/src/app/.forgejo/workflows/sub/ci.yaml"),
            Dialect::Forgejo
        );
        assert_eq!(Dialect::of_path("ci.yml"), Dialect::Github);
        assert_eq!(Dialect::of_path(".gitea/ci.yml"), Dialect::Github);
        // The nearest workflows folder wins.
        assert_eq!(
            Dialect::of_path(".gitea/workflows/vendored/.github/workflows/x.yml"),
            Dialect::Github
        );
        assert_eq!("Forgejo".parse::<Dialect>(), Ok(Dialect::Forgejo));
        assert!("gitlab".parse::<Dialect>().is_err());
    }
}
