//! `action.yml` → [`ActionManifest`]. Every problem is collected (not only the first) as a
//! [`Diagnostic`] at `file:line:col` with the fix in its message. Unknown top-level keys
//! (`author`, `branding`, ...) are accepted, as GitHub does.

mod steps;

use std::path::Path;

use workflows::yaml::{self, Node, NodeValue};
use workflows::{Diagnostic, Diagnostics};

use crate::error::{ActionError, Result};

pub use steps::CompositeStep;

/// The metadata of one action.
#[derive(Debug, Clone)]
pub struct ActionManifest {
    pub name: Option<String>,
    pub description: Option<String>,
    pub inputs: Vec<ActionInput>,
    pub outputs: Vec<ActionOutput>,
    pub runs: Runs,
    /// The file it was read from.
    pub file: String,
}

/// One entry of `inputs:`.
#[derive(Debug, Clone)]
pub struct ActionInput {
    pub name: String,
    pub default: Option<String>,
    pub required: bool,
    pub deprecation_message: Option<String>,
}

/// One entry of `outputs:`.
#[derive(Debug, Clone)]
pub struct ActionOutput {
    pub name: String,
    /// Composite actions: the `value:` expression.
    pub value: Option<String>,
}

/// How the action runs (`runs:`).
#[derive(Debug, Clone)]
pub enum Runs {
    Composite {
        steps: Vec<CompositeStep>,
    },
    Node {
        /// `node12`, `node16`, `node20` or `node24` (lower case).
        using: String,
        main: String,
        pre: Option<String>,
        pre_if: Option<String>,
        post: Option<String>,
        post_if: Option<String>,
    },
    Docker {
        /// `Dockerfile` (a path in the action) or `docker://image`.
        image: String,
        entrypoint: Option<String>,
        args: Vec<String>,
        env: Vec<(String, String)>,
        pre_entrypoint: Option<String>,
        /// `pre-if` (default `always()`).
        pre_if: Option<String>,
        post_entrypoint: Option<String>,
        /// `post-if` (default `always()`).
        post_if: Option<String>,
    },
}

/// The Node.js versions an action may ask for.
pub const NODE_VERSIONS: [&str; 4] = ["node12", "node16", "node20", "node24"];

/// Reads `action.yml` (or `action.yaml`) in `dir`.
pub fn load_manifest(dir: &Path) -> Result<ActionManifest> {
    let path = ["action.yml", "action.yaml"]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| ActionError::ManifestNotFound {
            dir: dir.to_path_buf(),
        })?;
    let text = std::fs::read_to_string(&path).map_err(|e| ActionError::io("reading", &path, e))?;
    parse_manifest(&text, &path.display().to_string())
}

/// Parses the text of an `action.yml`; `file` names it in diagnostics.
pub fn parse_manifest(text: &str, file: &str) -> Result<ActionManifest> {
    let root = yaml::parse(text, file).map_err(|d| ActionError::Manifest(Diagnostics(vec![d])))?;
    let mut reader = Reader {
        file,
        problems: Vec::new(),
    };
    let manifest = reader.manifest(&root);
    match manifest {
        Some(manifest) if reader.problems.is_empty() => Ok(manifest),
        _ => Err(ActionError::Manifest(Diagnostics(reader.problems))),
    }
}

/// Walks the tree, collecting problems.
pub(crate) struct Reader<'a> {
    file: &'a str,
    problems: Vec<Diagnostic>,
}

impl Reader<'_> {
    pub(crate) fn problem(&mut self, node: &Node, message: impl Into<String>) {
        self.problems
            .push(Diagnostic::new(self.file, Some(node.location), message));
    }

    /// The mapping entries of `node`, or a problem naming `what` it should be.
    pub(crate) fn mapping<'n>(&mut self, node: &'n Node, what: &str) -> &'n [(Node, Node)] {
        match &node.value {
            NodeValue::Mapping(entries) => {
                for (i, (key, _)) in entries.iter().enumerate() {
                    let Some(name) = key.as_str() else { continue };
                    if entries[..i].iter().any(|(k, _)| k.as_str() == Some(name)) {
                        self.problem(
                            key,
                            format!("`{name}` is already defined in {what}; keep only one"),
                        );
                    }
                }
                entries
            }
            NodeValue::Null => &[],
            other => {
                self.problem(
                    node,
                    format!("{what} must be a mapping, not a {}", other.kind_name()),
                );
                &[]
            }
        }
    }

    /// A scalar as text, or a problem saying `what` must be a string.
    pub(crate) fn text(&mut self, node: &Node, what: &str) -> Option<String> {
        let text = node.scalar_text();
        if text.is_none() {
            self.problem(
                node,
                format!("{what} must be a string, not a {}", node.value.kind_name()),
            );
        }
        text
    }

    /// A `name: value` mapping of strings (`env:`, `with:`).
    pub(crate) fn string_map(&mut self, node: &Node, what: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (key, value) in self.mapping(node, what) {
            let Some(name) = self.text(key, &format!("a key of {what}")) else {
                continue;
            };
            if let Some(value) = self.text(value, &format!("{what}.{name}")) {
                out.push((name, value));
            }
        }
        out
    }

    fn manifest(&mut self, root: &Node) -> Option<ActionManifest> {
        if root.is_null() {
            self.problem(
                root,
                "the action metadata file is empty: it needs at least `runs:` (see https://docs.github.com/actions/creating-actions/metadata-syntax-for-github-actions)",
            );
            return None;
        }
        let entries = self.mapping(root, "the action metadata file");
        let mut name = None;
        let mut description = None;
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        let mut runs = None;
        for (key, value) in entries {
            match key.as_str() {
                Some("name") => name = self.text(value, "`name`"),
                Some("description") => description = self.text(value, "`description`"),
                Some("inputs") => inputs = self.inputs(value),
                Some("outputs") => outputs = self.outputs(value),
                Some("runs") => runs = Some(self.runs(value)),
                _ => {}
            }
        }
        // Not a mapping: already reported.
        root.as_mapping()?;
        let Some(runs) = runs else {
            self.problem(
                root,
                "missing `runs:`: say how the action runs, e.g. `runs: { using: composite, steps: [...] }`, `runs: { using: node20, main: index.js }` or `runs: { using: docker, image: Dockerfile }`",
            );
            return None;
        };
        Some(ActionManifest {
            name,
            description,
            inputs,
            outputs,
            runs: runs?,
            file: self.file.to_string(),
        })
    }

    fn inputs(&mut self, node: &Node) -> Vec<ActionInput> {
        let mut inputs = Vec::new();
        for (key, value) in self.mapping(node, "`inputs`") {
            let Some(name) = self.text(key, "an input name") else {
                continue;
            };
            let mut input = ActionInput {
                name,
                default: None,
                required: false,
                deprecation_message: None,
            };
            for (field, v) in self.mapping(value, &format!("input `{}`", input.name)) {
                match field.as_str() {
                    Some("default") => input.default = self.text(v, "`default`"),
                    Some("required") => input.required = self.boolean(v, "`required`"),
                    Some("deprecationMessage") => {
                        input.deprecation_message = self.text(v, "`deprecationMessage`");
                    }
                    _ => {}
                }
            }
            inputs.push(input);
        }
        inputs
    }

    /// `true`/`false`, also quoted (GitHub reads `required: 'true'` too).
    fn boolean(&mut self, node: &Node, what: &str) -> bool {
        match &node.value {
            NodeValue::Bool(b) => *b,
            NodeValue::Null => false,
            NodeValue::String(s) if s.eq_ignore_ascii_case("true") => true,
            NodeValue::String(s) if s.eq_ignore_ascii_case("false") => false,
            _ => {
                self.problem(node, format!("{what} must be `true` or `false`"));
                false
            }
        }
    }

    fn outputs(&mut self, node: &Node) -> Vec<ActionOutput> {
        let mut outputs = Vec::new();
        for (key, value) in self.mapping(node, "`outputs`") {
            let Some(name) = self.text(key, "an output name") else {
                continue;
            };
            let mut output = ActionOutput { name, value: None };
            for (field, v) in self.mapping(value, &format!("output `{}`", output.name)) {
                if field.as_str() == Some("value") {
                    output.value = self.text(v, "`value`");
                }
            }
            outputs.push(output);
        }
        outputs
    }

    /// `runs:`; the inner `None` means it was reported.
    fn runs(&mut self, node: &Node) -> Option<Runs> {
        let entries = self.mapping(node, "`runs`");
        let field = |key: &str| {
            entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v)
        };
        let Some(using_node) = field("using") else {
            self.problem(
                node,
                "`runs` needs `using:`: one of `composite`, `docker`, `node20`, `node24` (or the retired `node12`, `node16`)",
            );
            return None;
        };
        let using = self.text(using_node, "`using`")?.to_ascii_lowercase();
        let optional = |reader: &mut Self, key: &str| {
            field(key).and_then(|v| reader.text(v, &format!("`runs.{key}`")))
        };
        match using.as_str() {
            "composite" => {
                let Some(steps) = field("steps") else {
                    self.problem(
                        node,
                        "a composite action needs `runs.steps:`, a list of steps like a job's",
                    );
                    return None;
                };
                Some(Runs::Composite {
                    steps: self.composite_steps(steps),
                })
            }
            "docker" => {
                let Some(image) = field("image").and_then(|v| self.text(v, "`runs.image`")) else {
                    self.problem(
                        node,
                        "a docker action needs `runs.image:`: `Dockerfile` (built from the action's directory) or `docker://image:tag`",
                    );
                    return None;
                };
                let args = match field("args") {
                    None => Vec::new(),
                    Some(args) => match args.as_sequence() {
                        Some(items) => items
                            .iter()
                            .filter_map(|item| self.text(item, "an item of `runs.args`"))
                            .collect(),
                        None if args.is_null() => Vec::new(),
                        None => {
                            self.problem(args, "`runs.args` must be a list of strings");
                            Vec::new()
                        }
                    },
                };
                let env = field("env")
                    .map(|env| self.string_map(env, "`runs.env`"))
                    .unwrap_or_default();
                Some(Runs::Docker {
                    image,
                    entrypoint: optional(self, "entrypoint"),
                    args,
                    env,
                    pre_entrypoint: optional(self, "pre-entrypoint"),
                    pre_if: optional(self, "pre-if"),
                    post_entrypoint: optional(self, "post-entrypoint"),
                    post_if: optional(self, "post-if"),
                })
            }
            v if NODE_VERSIONS.contains(&v) => {
                let Some(main) = field("main").and_then(|v| self.text(v, "`runs.main`")) else {
                    self.problem(
                        node,
                        format!("a `{using}` action needs `runs.main:`, the script to run (e.g. `dist/index.js`)"),
                    );
                    return None;
                };
                Some(Runs::Node {
                    using: using.clone(),
                    main,
                    pre: optional(self, "pre"),
                    pre_if: optional(self, "pre-if"),
                    post: optional(self, "post"),
                    post_if: optional(self, "post-if"),
                })
            }
            _ => {
                self.problem(
                    using_node,
                    format!(
                        "unknown `using: {using}`: use `composite`, `docker`, or one of {}",
                        NODE_VERSIONS.map(|v| format!("`{v}`")).join(", ")
                    ),
                );
                None
            }
        }
    }
}
