//! STAND-IN with the contract of the `actions` crate (helper branch `acts` replaces it).
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionRef {
    Local {
        path: String,
    },
    Remote {
        owner: String,
        repo: String,
        path: Option<String>,
        git_ref: String,
    },
    Docker {
        image: String,
    },
}
impl ActionRef {
    pub fn parse(uses: &str) -> Result<ActionRef, ActionError> {
        if let Some(p) = uses.strip_prefix("./") {
            return Ok(ActionRef::Local {
                path: format!("./{p}"),
            });
        }
        if let Some(i) = uses.strip_prefix("docker://") {
            return Ok(ActionRef::Docker { image: i.into() });
        }
        let (p, r) = uses
            .split_once('@')
            .ok_or(ActionError::InvalidReference { uses: uses.into() })?;
        let mut parts = p.splitn(3, '/');
        let owner = parts.next().unwrap_or_default().to_string();
        let repo = parts.next().unwrap_or_default().to_string();
        Ok(ActionRef::Remote {
            owner,
            repo,
            path: parts.next().map(String::from),
            git_ref: r.into(),
        })
    }
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowRef {
    Local {
        path: String,
    },
    Remote {
        owner: String,
        repo: String,
        path: String,
        git_ref: String,
    },
}
impl WorkflowRef {
    pub fn parse(uses: &str) -> Result<WorkflowRef, ActionError> {
        if uses.starts_with("./") {
            return Ok(WorkflowRef::Local { path: uses.into() });
        }
        let (p, r) = uses
            .split_once('@')
            .ok_or(ActionError::InvalidReference { uses: uses.into() })?;
        let mut parts = p.splitn(3, '/');
        Ok(WorkflowRef::Remote {
            owner: parts.next().unwrap_or_default().into(),
            repo: parts.next().unwrap_or_default().into(),
            path: parts.next().unwrap_or_default().into(),
            git_ref: r.into(),
        })
    }
}
#[derive(Debug, Clone)]
pub struct ActionManifest {
    pub name: Option<String>,
    pub description: Option<String>,
    pub inputs: Vec<ActionInput>,
    pub outputs: Vec<ActionOutput>,
    pub runs: Runs,
    pub file: String,
}
#[derive(Debug, Clone)]
pub struct ActionInput {
    pub name: String,
    pub default: Option<String>,
    pub required: bool,
    pub deprecation_message: Option<String>,
}
#[derive(Debug, Clone)]
pub struct ActionOutput {
    pub name: String,
    pub value: Option<String>,
}
#[derive(Debug, Clone)]
pub enum Runs {
    Composite {
        steps: Vec<CompositeStep>,
    },
    Node {
        using: String,
        main: String,
        pre: Option<String>,
        pre_if: Option<String>,
        post: Option<String>,
        post_if: Option<String>,
    },
    Docker {
        image: String,
        entrypoint: Option<String>,
        args: Vec<String>,
        env: Vec<(String, String)>,
        pre_entrypoint: Option<String>,
        post_entrypoint: Option<String>,
    },
}
#[derive(Debug, Clone, Default)]
pub struct CompositeStep {
    pub id: Option<String>,
    pub name: Option<String>,
    pub condition: Option<String>,
    pub run: Option<String>,
    pub shell: Option<String>,
    pub uses: Option<String>,
    pub with: Vec<(String, String)>,
    pub env: Vec<(String, String)>,
    pub working_directory: Option<String>,
    pub continue_on_error: Option<String>,
}
pub fn load_manifest(dir: &Path) -> Result<ActionManifest, ActionError> {
    Err(ActionError::ManifestNotFound {
        dir: dir.to_path_buf(),
    })
}
#[derive(Debug, Clone)]
pub struct ActionCache {
    root: PathBuf,
}
impl ActionCache {
    pub fn new(root: PathBuf, _base_url: &str, _offline: bool) -> Self {
        ActionCache { root }
    }
    pub fn fetch(&self, owner: &str, repo: &str, git_ref: &str) -> Result<PathBuf, ActionError> {
        let _ = &self.root;
        Err(ActionError::NotCached {
            owner: owner.into(),
            repo: repo.into(),
            git_ref: git_ref.into(),
        })
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Checkout,
}
pub fn builtin(action: &ActionRef) -> Option<Builtin> {
    match action {
        ActionRef::Remote { owner, repo, .. } if owner == "actions" && repo == "checkout" => {
            Some(Builtin::Checkout)
        }
        _ => None,
    }
}
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("invalid uses {uses}")]
    InvalidReference { uses: String },
    #[error("no action.yml in {dir}")]
    ManifestNotFound { dir: PathBuf },
    #[error("{owner}/{repo}@{git_ref} not cached")]
    NotCached {
        owner: String,
        repo: String,
        git_ref: String,
    },
}
