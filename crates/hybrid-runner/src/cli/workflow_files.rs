//! Finding workflow files: a file as given, or the `*.yml` / `*.yaml` files directly
//! inside a folder (GitHub does not look into subfolders), sorted by name.

use std::path::{Path, PathBuf};

use super::UsageError;

/// Expands each path to the workflow files it names. A path that does not exist is a
/// usage error; a folder with no workflow files contributes nothing. A file inside a
/// repository that is, or sits behind, a symbolic link leading out of that repository is
/// refused (naming the link): a committed `ci.yml -> ~/.git-credentials` must not put the
/// credential into a diagnostic.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, UsageError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_file() {
            files.push(path.clone());
        } else if path.is_dir() {
            files.extend(in_folder(path)?);
        } else {
            return Err(UsageError(format!(
                "{} does not exist; pass a workflow file or a folder of workflows",
                path.display()
            )));
        }
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    for file in &files {
        stays_inside_its_repository(&cwd, file)?;
    }
    Ok(files)
}

/// Refuses `file` when it lies inside a repository (a folder with `.git`, else the current
/// folder) but its real path, after every symbolic link, is outside it.
fn stays_inside_its_repository(cwd: &Path, file: &Path) -> Result<(), UsageError> {
    let absolute = cwd.join(file);
    let Some(parent) = absolute.parent() else {
        return Ok(());
    };
    let root = parent
        .ancestors()
        .find(|dir| dir.join(".git").exists())
        .map_or(cwd.to_path_buf(), Path::to_path_buf);
    if !absolute.starts_with(&root) {
        return Ok(()); // a file the user named outside any repository of the current folder
    }
    if actions::no_link_leaves(&root, &absolute) {
        return Ok(());
    }
    Err(UsageError(format!(
        "{}: a symbolic link leads out of the repository {}; workflows are read only from inside the repository (replace the link with the file)",
        display_path(file),
        root.display()
    )))
}

fn in_folder(dir: &Path) -> Result<Vec<PathBuf>, UsageError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| UsageError(format!("cannot read folder {}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && is_workflow_file(p))
        .collect();
    files.sort();
    Ok(files)
}

pub fn is_workflow_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yml") | Some("yaml")
    )
}

/// The path as printed in diagnostics: as the user wrote it, without a leading `./`.
pub fn display_path(path: &Path) -> String {
    let s = path.to_string_lossy();
    s.strip_prefix("./").unwrap_or(&s).to_string()
}
