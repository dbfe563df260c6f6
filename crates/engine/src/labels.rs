//! Runner labels in act_runner's syntax, `name[:schema[:arg]]` split on the first two `:`:
//! `name:host`, `name:docker://image` (`name:docker` alone: act_runner's default image),
//! Forgejo's `name:lxc://template`, and `name:kubernetes` / `name:kubernetes://image` (steps
//! in a pod of the job namespace). A leading `//` of the argument is dropped, as both
//! runners drop it. No schema means host; an unknown schema makes the whole string one
//! opaque host label, as act_runner does (gitea/act_runner `internal/pkg/labels`,
//! forgejo/runner `internal/pkg/labels`). Only label names go to the server; the full
//! strings stay in the `.runner` file.

/// Labels registered when none are given: jobs for `ubuntu-latest` and `self-hosted` run
/// their steps on this host (act_runner's defaults need Docker, which this runner has not).
pub const DEFAULT_LABELS: [&str; 2] = ["ubuntu-latest:host", "self-hosted:host"];

/// Where the jobs of a label run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelKind {
    /// On this host.
    Host,
    /// In a container of `image` (act_runner's Docker mode); `None`: the runner's default
    /// image (`name:docker`).
    Docker { image: Option<String> },
    /// In an LXC container of `template` (forgejo-runner's LXC mode).
    Lxc { template: Option<String> },
    /// In a pod of the job's namespace, from `image` or the configured default image.
    Kubernetes { image: Option<String> },
}

/// One parsed label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// What the server and `runs-on` see.
    pub name: String,
    pub kind: LabelKind,
}

/// A label that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error(
        "label {label:?} has an empty name; write it as name[:host|:docker://image|:kubernetes[://image]]"
    )]
    EmptyName { label: String },
    #[error(
        "label {label:?}: the image must follow `//`; write it as {name}:kubernetes://image or {name}:kubernetes"
    )]
    KubernetesImage { label: String, name: String },
    #[error(
        "label {label:?}: unsupported schema: {schema}; write it as {name}:host, {name}:docker://image, {name}:kubernetes or {name}:kubernetes://image"
    )]
    UnknownSchema {
        label: String,
        name: String,
        schema: String,
    },
    #[error(
        "labels {first:?} and {second:?} both name {name:?}; give each label name once (jobs pick a label by name)"
    )]
    Duplicate {
        name: String,
        first: String,
        second: String,
    },
}

impl Label {
    /// Parses one label string.
    pub fn parse(label: &str) -> Result<Label, LabelError> {
        let label = label.trim();
        let mut parts = label.splitn(3, ':');
        let name = parts.next().unwrap_or_default();
        let schema = parts.next();
        let arg = parts.next();
        if name.is_empty() {
            return Err(LabelError::EmptyName {
                label: label.to_string(),
            });
        }
        let kind = match schema {
            None | Some("host") => LabelKind::Host,
            Some("docker") => LabelKind::Docker {
                image: argument(arg),
            },
            Some("lxc") => LabelKind::Lxc {
                template: argument(arg),
            },
            Some("kubernetes") => match arg {
                None => LabelKind::Kubernetes { image: None },
                Some(arg) => match arg.strip_prefix("//") {
                    Some(image) if !image.is_empty() => LabelKind::Kubernetes {
                        image: Some(image.to_string()),
                    },
                    _ => {
                        return Err(LabelError::KubernetesImage {
                            label: label.to_string(),
                            name: name.to_string(),
                        });
                    }
                },
            },
            Some(_) => {
                return Ok(Label {
                    name: label.to_string(),
                    kind: LabelKind::Host,
                });
            }
        };
        Ok(Label {
            name: name.to_string(),
            kind,
        })
    }

    /// Parses a comma list (`--labels a:host,b:docker://x`), skipping empty entries.
    pub fn parse_list(list: &str) -> Result<Vec<Label>, LabelError> {
        list.split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(Label::parse)
            .collect()
    }

    /// Parses every string of a list (config `runner.labels`, `.runner`'s `labels`).
    pub fn parse_all<S: AsRef<str>>(labels: &[S]) -> Result<Vec<Label>, LabelError> {
        labels.iter().map(|l| Label::parse(l.as_ref())).collect()
    }

    /// Parses the labels a new registration declares, stricter than [`Label::parse`] (which
    /// must keep reading what other runners wrote): an unknown schema is refused as
    /// Forgejo's runner refuses it (`unsupported schema: …`), not made an opaque name, and
    /// a name given twice is refused, since `runs-on` could only ever reach the first.
    pub fn parse_for_registration<S: AsRef<str>>(labels: &[S]) -> Result<Vec<Label>, LabelError> {
        let mut parsed: Vec<Label> = Vec::with_capacity(labels.len());
        for text in labels {
            let text = text.as_ref().trim();
            let label = Label::parse(text)?;
            if let Some((name, rest)) = text.split_once(':') {
                let schema = rest.split(':').next().unwrap_or_default();
                if !matches!(schema, "host" | "docker" | "lxc" | "kubernetes") {
                    return Err(LabelError::UnknownSchema {
                        label: text.to_string(),
                        name: name.to_string(),
                        schema: schema.to_string(),
                    });
                }
            }
            if let Some(first) = parsed.iter().find(|l| l.name == label.name) {
                return Err(LabelError::Duplicate {
                    name: label.name.clone(),
                    first: first.to_spec(),
                    second: label.to_spec(),
                });
            }
            parsed.push(label);
        }
        Ok(parsed)
    }

    /// The label as written in act_runner's syntax (what the `.runner` file keeps).
    pub fn to_spec(&self) -> String {
        match &self.kind {
            LabelKind::Host if self.name.contains(':') => self.name.clone(),
            LabelKind::Host => format!("{}:host", self.name),
            LabelKind::Docker { image: None } => format!("{}:docker", self.name),
            LabelKind::Docker { image: Some(image) } => format!("{}:docker://{image}", self.name),
            LabelKind::Lxc { template: None } => format!("{}:lxc", self.name),
            LabelKind::Lxc {
                template: Some(template),
            } => format!("{}:lxc://{template}", self.name),
            LabelKind::Kubernetes { image: None } => format!("{}:kubernetes", self.name),
            LabelKind::Kubernetes { image: Some(image) } => {
                format!("{}:kubernetes://{image}", self.name)
            }
        }
    }
}

/// A label's argument without the `//` both runners drop; `None` when empty.
fn argument(arg: Option<&str>) -> Option<String> {
    let arg = arg.unwrap_or_default();
    let arg = arg.strip_prefix("//").unwrap_or(arg);
    (!arg.is_empty()).then(|| arg.to_string())
}

impl LabelKind {
    /// The job asked for a container (Docker, LXC): its steps are meant to be isolated from
    /// the machine, which this runner can only give them in a Kubernetes pod.
    pub fn wants_isolation(&self) -> bool {
        matches!(self, LabelKind::Docker { .. } | LabelKind::Lxc { .. })
    }
}

/// The names sent to the server (`Register.labels`, `Declare.labels`), in order, each once.
pub fn names(labels: &[Label]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(labels.len());
    for label in labels {
        if !out.contains(&label.name) {
            out.push(label.name.clone());
        }
    }
    out
}

/// The label a job runs under: the first `runs-on` entry that is one of the runner's label
/// names, as act_runner picks it. Gitea only hands a runner jobs whose every `runs-on` entry
/// is one of its names, so `None` means the job was not meant for this runner.
pub fn pick<'a, S: AsRef<str>>(runs_on: &[S], labels: &'a [Label]) -> Option<&'a Label> {
    runs_on
        .iter()
        .find_map(|wanted| labels.iter().find(|l| l.name == wanted.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_refuses_unknown_schemas_and_names_given_twice() {
        let ok =
            Label::parse_for_registration(&["a:host", "b", "c:docker://node:20", "d:kubernetes"]);
        assert_eq!(ok.unwrap().len(), 4);
        let err = Label::parse_for_registration(&["ubuntu-latest:dokcer://node:20"]).unwrap_err();
        assert!(
            err.to_string().contains("unsupported schema: dokcer"),
            "{err}"
        );
        let err = Label::parse_for_registration(&["x:host", "y", "x:kubernetes"]).unwrap_err();
        assert_eq!(
            err,
            LabelError::Duplicate {
                name: "x".into(),
                first: "x:host".into(),
                second: "x:kubernetes".into()
            }
        );
        // What other runners wrote is still read: an unknown schema is an opaque name there.
        assert_eq!(Label::parse("pool:e57e").unwrap().name, "pool:e57e");
    }

    #[test]
    fn parses_every_schema() {
        assert_eq!(
            Label::parse("linux:host").unwrap(),
            Label {
                name: "linux".into(),
                kind: LabelKind::Host
            }
        );
        assert_eq!(Label::parse("bare").unwrap().kind, LabelKind::Host);
        assert_eq!(
            Label::parse("ubuntu-latest:docker://node:16-bullseye").unwrap(),
            Label {
                name: "ubuntu-latest".into(),
                kind: LabelKind::Docker {
                    image: Some("node:16-bullseye".into())
                }
            }
        );
        assert_eq!(
            Label::parse("k8s:kubernetes").unwrap().kind,
            LabelKind::Kubernetes { image: None }
        );
        assert_eq!(
            Label::parse("k8s:kubernetes://registry.local:5000/ci:1")
                .unwrap()
                .kind,
            LabelKind::Kubernetes {
                image: Some("registry.local:5000/ci:1".into())
            }
        );
    }

    #[test]
    fn unknown_schema_is_one_opaque_host_label() {
        let label = Label::parse("pool:e57e01").unwrap();
        assert_eq!(label.name, "pool:e57e01");
        assert_eq!(label.kind, LabelKind::Host);
        assert_eq!(label.to_spec(), "pool:e57e01");
    }

    #[test]
    fn refuses_labels_that_cannot_run() {
        assert!(matches!(
            Label::parse(":host"),
            Err(LabelError::EmptyName { .. })
        ));
        assert!(matches!(
            Label::parse("a:kubernetes:img"),
            Err(LabelError::KubernetesImage { .. })
        ));
    }

    #[test]
    fn docker_without_an_image_and_forgejo_lxc_parse_as_those_runners_parse_them() {
        assert_eq!(
            Label::parse("a:docker").unwrap().kind,
            LabelKind::Docker { image: None }
        );
        // Both runners drop a leading `//`, so the argument without it is the image.
        assert_eq!(
            Label::parse("a:docker:node:20").unwrap().kind,
            LabelKind::Docker {
                image: Some("node:20".into())
            }
        );
        assert_eq!(
            Label::parse("deb:lxc://debian:bookworm").unwrap(),
            Label {
                name: "deb".into(),
                kind: LabelKind::Lxc {
                    template: Some("debian:bookworm".into())
                }
            }
        );
        assert!(Label::parse_for_registration(&["a:docker", "b:lxc://debian:bookworm"]).is_ok());
        assert!(LabelKind::Lxc { template: None }.wants_isolation());
        assert!(!LabelKind::Kubernetes { image: None }.wants_isolation());
    }

    #[test]
    fn spec_round_trips() {
        for spec in [
            "a:host",
            "b:docker://node:20",
            "b2:docker",
            "l:lxc://debian:bookworm",
            "c:kubernetes",
            "d:kubernetes://x/y:1",
        ] {
            assert_eq!(Label::parse(spec).unwrap().to_spec(), spec);
        }
        assert_eq!(Label::parse("e").unwrap().to_spec(), "e:host");
    }

    #[test]
    fn list_names_and_pick() {
        let labels = Label::parse_list(" a:host, ,b:docker://x,a:kubernetes ").unwrap();
        assert_eq!(labels.len(), 3);
        assert_eq!(names(&labels), ["a", "b"]);
        assert_eq!(
            pick(&["z", "b", "a"], &labels).map(|l| l.name.as_str()),
            Some("b")
        );
        assert_eq!(pick(&["z"], &labels), None);
    }
}
