//! Evaluating a step's or job's fields: one [`Scope`] holds the contexts, the job
//! status the status functions see, and the workspace `hashFiles` reads. The loader has
//! already checked which contexts each key may use, so everything parses here against
//! every context; a context that is absent evaluates to null.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use workflows::expression::template::{Condition, Template, parse_condition, parse_template};
use workflows::expression::{
    self, Allowed, EvalContext, ExprError, Host, JobStatus, Object, Value, to_display_string,
};

use crate::hash_files::WorkspaceHasher;

/// Contexts + status + workspace for evaluation.
#[derive(Debug, Clone)]
pub struct Scope {
    pub contexts: Object,
    pub status: JobStatus,
    pub hasher: Option<WorkspaceHasher>,
}

/// Gitea's and Forgejo's names for the `github` context (act_runner's and forgejo-runner's
/// expression interpreters give each the same object). The loader lets only the dialect's
/// own names through, so having all of them here changes nothing for a GitHub workflow.
const GITHUB_ALIASES: [&str; 3] = ["gitea", "forge", "forgejo"];

impl Scope {
    pub fn new(mut contexts: Object, hasher: Option<WorkspaceHasher>) -> Self {
        if let Some(github) = contexts.get("github").cloned() {
            for alias in GITHUB_ALIASES {
                contexts.insert(alias, github.clone());
            }
        }
        Scope {
            contexts,
            status: JobStatus::Success,
            hasher,
        }
    }

    fn ctx(&self) -> EvalContext<'_> {
        EvalContext {
            contexts: &self.contexts,
            status: self.status,
            host: self.hasher.as_ref().map(|h| h as &dyn Host),
        }
    }

    pub fn set(&mut self, name: &str, value: Value) {
        if name == "github" {
            for alias in GITHUB_ALIASES {
                self.contexts.insert(alias, value.clone());
            }
        }
        self.contexts.insert(name, value);
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.contexts.get(name)
    }

    /// A string with `${{ }}` parts, each replaced by its string form.
    pub fn interpolate(&self, s: &str) -> Result<String, ExprError> {
        if !s.contains("${{") {
            return Ok(s.to_string());
        }
        template(s)?.evaluate_to_string(&self.ctx())
    }

    /// A value: a string that is exactly one `${{ x }}` keeps x's kind.
    pub fn value(&self, s: &str) -> Result<Value, ExprError> {
        if !s.contains("${{") {
            return Ok(Value::from(s));
        }
        template(s)?.evaluate(&self.ctx())
    }

    /// An `if:` (absent = `success()`).
    pub fn condition(&self, s: Option<&str>) -> Result<bool, ExprError> {
        condition(s.unwrap_or(""))?.evaluate(&self.ctx())
    }

    /// A bare expression (no `${{ }}`), e.g. a composite output's value after unwrapping.
    pub fn expression(&self, s: &str) -> Result<Value, ExprError> {
        expression::parse(s, &Allowed::everything())?.evaluate(&self.ctx())
    }

    /// `true`/`false` literals or an expression, as `continue-on-error` takes them.
    pub fn flag(&self, s: Option<&str>) -> Result<bool, ExprError> {
        match s.map(str::trim) {
            None | Some("") | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Ok(self.value(other)?.is_truthy()),
        }
    }

    /// Minutes as a number, or an expression giving one; `None` when absent or not a
    /// positive number.
    pub fn minutes(&self, s: Option<&str>) -> Result<Option<f64>, ExprError> {
        let Some(s) = s else { return Ok(None) };
        let n = expression::to_number(&self.value(s.trim())?);
        Ok((n.is_finite() && n > 0.0).then_some(n))
    }

    /// `env:` / `with:` entries in order, then each whole-map expression merged in.
    pub fn string_map(
        &self,
        entries: &[(String, String)],
        inserts: &[String],
    ) -> Result<Vec<(String, String)>, ExprError> {
        let mut out: Vec<(String, String)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let key = self.interpolate(k)?;
            upsert(&mut out, key, self.interpolate(v)?);
        }
        for insert in inserts {
            if let Value::Object(o) = self.value(insert)? {
                for (k, v) in o.iter() {
                    upsert(&mut out, k.to_string(), to_display_string(v));
                }
            }
        }
        Ok(out)
    }
}

/// Conditions and templates parsed on this thread, by their text. The legs of a matrix and
/// the jobs of a generated workflow evaluate the same texts again and again (the dry run of
/// a 424 KB CI file spent a fifth of its time parsing its step conditions nine times over,
/// once per leg). A parse depends on the text alone (every context is allowed here), so it
/// is reused as it is; failures are not kept. Emptied when it holds [`PARSED_MAX`] texts.
#[derive(Default)]
struct Parsed {
    conditions: HashMap<Box<str>, Rc<Condition>>,
    templates: HashMap<Box<str>, Rc<Template>>,
}

/// Texts [`Parsed`] keeps at most, conditions and templates each.
const PARSED_MAX: usize = 2048;

thread_local! {
    static PARSED: RefCell<Parsed> = RefCell::new(Parsed::default());
}

/// `s` parsed as an `if:` (see [`parse_condition`]), from this thread's [`Parsed`].
fn condition(s: &str) -> Result<Rc<Condition>, ExprError> {
    cached(
        s,
        |p| &mut p.conditions,
        |s| parse_condition(s, &Allowed::everything()),
    )
}

/// `s` parsed as a string with `${{ }}` parts, from this thread's [`Parsed`].
fn template(s: &str) -> Result<Rc<Template>, ExprError> {
    cached(
        s,
        |p| &mut p.templates,
        |s| parse_template(s, &Allowed::everything()),
    )
}

fn cached<T>(
    s: &str,
    map: fn(&mut Parsed) -> &mut HashMap<Box<str>, Rc<T>>,
    parse: impl FnOnce(&str) -> Result<T, ExprError>,
) -> Result<Rc<T>, ExprError> {
    if let Some(hit) = PARSED.with_borrow_mut(|p| map(p).get(s).cloned()) {
        return Ok(hit);
    }
    let parsed = Rc::new(parse(s)?);
    PARSED.with_borrow_mut(|p| {
        let map = map(p);
        if map.len() >= PARSED_MAX {
            map.clear();
        }
        map.insert(s.into(), parsed.clone());
    });
    Ok(parsed)
}

/// Sets `key` (case-sensitive, as environment variables are on Linux), keeping order.
pub fn upsert(list: &mut Vec<(String, String)>, key: String, value: String) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => list.push((key, value)),
    }
}

/// An object of string values, for `env`, `inputs`, `secrets`, `vars`, `outputs`.
pub fn string_object<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let mut o = Object::new();
    for (k, v) in pairs {
        o.insert(k, Value::from(v));
    }
    Value::object(o)
}

/// A value as text (GitHub's string conversion).
pub fn display(v: &Value) -> String {
    to_display_string(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_are_reused_per_text_and_bounded() {
        let mut scope = Scope::new(Object::new(), None);
        scope.set("env", string_object([("A", "x")]));
        // The same text gives the same parse; each evaluation sees its own scope.
        assert!(Rc::ptr_eq(
            &condition("env.A == 'x'").unwrap(),
            &condition("env.A == 'x'").unwrap()
        ));
        assert!(scope.condition(Some("env.A == 'x'")).unwrap());
        scope.set("env", string_object([("A", "y")]));
        assert!(!scope.condition(Some("env.A == 'x'")).unwrap());
        assert_eq!(scope.interpolate("a ${{ env.A }}").unwrap(), "a y");
        assert!(matches!(scope.value("${{ 1 }}").unwrap(), Value::Number(n) if n == 1.0));
        // A failure is not kept, and fails again.
        assert!(scope.condition(Some("env.A ==")).is_err());
        assert!(scope.condition(Some("env.A ==")).is_err());
        PARSED.with_borrow(|p| assert!(!p.conditions.contains_key("env.A ==")));
        // Past the bound the cache starts over.
        for i in 0..PARSED_MAX + 5 {
            assert!(scope.condition(Some(&format!("{i} == {i}"))).unwrap());
        }
        PARSED.with_borrow(|p| assert!(p.conditions.len() <= PARSED_MAX));
    }
}
