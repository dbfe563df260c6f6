//! What a dry run (`exec -n`) does with the values only a real run has, once a job runs:
//! the outputs of the jobs it needs, inputs nobody gave, the results of its own steps
//! (none really ran) and the variables set from any of these ([`Unknowns`]). A step or
//! job field whose expression fails on one of them does not fail the step or the job: it
//! goes on as it would run (a step `if:` as if it held, `continue-on-error` false, a
//! `runs-on` as if on this host, any other value as written), with one line naming the
//! value. An expression that fails on anything else (`fromJSON('{bad')`, a context that
//! has no such value on a real run either) fails as in a real run. The job's `if:` and
//! matrix are in [`crate::strategy`].
//!
//! A dry run evaluates every field a real run would (`run`, `shell`,
//! `working-directory`, `uses`, `with` too), so what would fail on a real run for a reason
//! of its own fails here.

use std::borrow::Cow;
use std::time::Instant;

use workflows::expression::template::{Part, parse_template};
use workflows::expression::{
    Allowed, ErrorKind, ExprError, Object, Value, parse, to_display_string,
};
use workflows::model::{Container, Job, StringMap};
use workflows::plan::{UnknownRead, Unknowns};

use super::commands::AnnotationLevel;
use super::eval::{Scope, upsert};
use super::events::{Event, LogKind, Outcome};
use super::job::{Frame, JobState, StepResult, env_value, map_parts};
use super::step::StepError;
use super::step_def::StepDef;

/// Evaluation in a dry run: a scope and what it does not know.
#[derive(Debug, Clone, Copy)]
pub struct DryEval<'a> {
    pub scope: &'a Scope,
    pub unknowns: &'a Unknowns,
}

/// An `env:` or `with:` map evaluated in a dry run.
#[derive(Debug, Default)]
pub struct DryMap {
    pub values: Vec<(String, String)>,
    /// The first value only a real run has that an entry failed on (the entry is kept as
    /// written, a whole-map expression left out).
    pub read: Option<UnknownRead>,
    /// The names whose value reads one: unknown themselves (`env.<name>`).
    pub unknown_names: Vec<String>,
}

impl<'a> DryEval<'a> {
    pub fn new(scope: &'a Scope, unknowns: &'a Unknowns) -> Self {
        DryEval { scope, unknowns }
    }

    /// The value only a real run has that made the expression of `error` fail, if that
    /// is why it failed. A variable a step that did not really run may have set
    /// (`GITHUB_ENV`) counts as one once a step has "run".
    pub fn read(&self, error: &ExprError) -> Option<UnknownRead> {
        if let Some(read) = self.unknowns.read_in_error(error) {
            return Some(read);
        }
        if self.unknowns.steps.is_empty() || error.kind != ErrorKind::Evaluation {
            return None;
        }
        let expr = parse(&error.expression, &Allowed::everything()).ok()?;
        let env = self.scope.get("env").and_then(Value::as_object);
        let unset: Vec<String> = expr
            .context_paths()
            .into_iter()
            .filter_map(|path| match path.as_slice() {
                [context, name, ..]
                    if context.eq_ignore_ascii_case("env")
                        && !env.is_some_and(|e| e.contains_key(name)) =>
                {
                    Some(name.clone())
                }
                _ => None,
            })
            .collect();
        if unset.is_empty() {
            return None;
        }
        let unknowns = Unknowns {
            env: unset,
            ..Unknowns::default()
        };
        unknowns.read_in_expression(&expr)
    }

    /// [`Scope::interpolate`]; a text that fails on a value only a real run has is kept as
    /// written, with the value, unless another of its expressions fails for real.
    pub fn interpolate(&self, text: &str) -> Result<(String, Option<UnknownRead>), ExprError> {
        let error = match self.scope.interpolate(text) {
            Ok(s) => return Ok((s, None)),
            Err(e) => e,
        };
        let read = self.read(&error).ok_or(error)?;
        let template = parse_template(text, &Allowed::everything())?;
        for part in &template.parts {
            if let Part::Expression(expr) = part
                && let Err(e) = self.scope.expression(expr.source())
                && self.read(&e).is_none()
            {
                return Err(e);
            }
        }
        Ok((text.to_string(), Some(read)))
    }

    /// [`Scope::string_map`], each entry as [`Self::interpolate`] gives it.
    pub fn map(
        &self,
        entries: &[(String, String)],
        inserts: &[String],
    ) -> Result<DryMap, ExprError> {
        let mut out = DryMap::default();
        for (k, v) in entries {
            let (key, key_read) = self.interpolate(k)?;
            let (value, value_read) = self.interpolate(v)?;
            let failed = key_read.or(value_read);
            let reads_unknown = failed.is_some()
                || self.unknowns.read_in_text(k).is_some()
                || self.unknowns.read_in_text(v).is_some();
            if reads_unknown {
                out.unknown_names.push(key.clone());
            }
            if out.read.is_none() {
                out.read = failed;
            }
            upsert(&mut out.values, key, value);
        }
        for insert in inserts {
            match self.scope.value(insert) {
                Ok(Value::Object(o)) => {
                    for (k, v) in o.iter() {
                        upsert(&mut out.values, k.to_string(), to_display_string(v));
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let read = self.read(&e).ok_or(e)?;
                    out.read.get_or_insert(read);
                }
            }
        }
        Ok(out)
    }
}

/// "dry run: with: `…` reads needs.gen.outputs.x, which has a value only at run time",
/// unless an earlier line of the step named the same expression.
fn mark(lines: &mut Vec<String>, field: &str, read: Option<UnknownRead>) {
    let Some(read) = read else {
        return;
    };
    let what = format!(": {read}");
    if !lines.iter().any(|l| l.contains(&what)) {
        lines.push(format!("dry run: {field}{what}"));
    }
}

/// A job's `runs-on` labels, each evaluated (one that fails is kept as written); in a dry
/// run also the first value only a real run has that a label reads, when one does.
pub fn runs_on(
    job: &Job,
    contexts: &Object,
    dry_run: Option<&Unknowns>,
) -> (Vec<String>, Option<UnknownRead>) {
    let scope = Scope::new(contexts.clone(), None);
    let Some(runs_on) = &job.runs_on else {
        return (Vec::new(), None);
    };
    let read = dry_run.and_then(|u| runs_on.labels.iter().find_map(|l| u.read_in_text(&l.value)));
    let labels = runs_on
        .labels
        .iter()
        .flat_map(|l| match scope.value(&l.value) {
            Ok(Value::Array(items)) => items.iter().map(super::eval::display).collect(),
            Ok(v) => vec![super::eval::display(&v)],
            Err(_) => vec![l.value.clone()],
        })
        .collect();
    (labels, read)
}

/// The line of a dry run's job whose `runs-on` reads a value only a real run has and
/// names no platform of this host without it.
pub fn runs_on_note(read: &UnknownRead) -> String {
    format!("dry run: runs-on: {read}; the job runs as if on this host")
}

/// Every text of a container that may hold expressions.
fn container_texts(container: &Container) -> Vec<&str> {
    let mut texts: Vec<&str> = Vec::new();
    let single = [
        &container.image,
        &container.options,
        &container.entrypoint,
        &container.command,
    ];
    texts.extend(single.into_iter().flatten().map(|l| l.value.as_str()));
    if let Some(env) = &container.env {
        for (k, v) in &env.entries {
            texts.extend([k.value.as_str(), v.value.as_str()]);
        }
        texts.extend(env.inserts.iter().map(|i| i.value.as_str()));
    }
    let lists = [&container.ports, &container.volumes, &container.cmd];
    texts.extend(lists.into_iter().flatten().map(|l| l.value.as_str()));
    if let Some(c) = &container.credentials {
        let fields = [&c.username, &c.password, &c.whole];
        texts.extend(fields.into_iter().flatten().map(|l| l.value.as_str()));
    }
    texts
}

impl JobState<'_> {
    /// In a dry run, the value only a real run has that `error` failed on, evaluated in
    /// `scope`.
    pub fn unknown_read(&self, scope: &Scope, error: &ExprError) -> Option<UnknownRead> {
        self.dry_run
            .as_ref()
            .and_then(|u| DryEval::new(scope, u).read(error))
    }

    /// A job-level `env:` map (`field`: `workflow env`, `job env`) as
    /// [`Scope::string_map`] gives it; in a dry run an entry that fails on a value only a
    /// real run has is kept as written with a line naming the value, and the names whose
    /// value reads one become unknown for the job's steps.
    pub fn job_env_map(
        &mut self,
        scope: &Scope,
        map: &StringMap,
        field: &str,
    ) -> Result<Vec<(String, String)>, ExprError> {
        let (entries, inserts) = map_parts(map);
        let Some(unknowns) = self.dry_run.as_ref() else {
            return scope.string_map(&entries, &inserts);
        };
        let map = DryEval::new(scope, unknowns).map(&entries, &inserts)?;
        if let Some(read) = map.read {
            self.note(None, LogKind::Runner, &format!("dry run: {field}: {read}"));
        }
        if let Some(unknowns) = self.dry_run.as_mut() {
            unknowns.env.extend(map.unknown_names);
        }
        Ok(map.values)
    }

    /// A job-level text (`defaults.run.working-directory`) as [`Scope::interpolate`] gives
    /// it; in a dry run one that fails on a value only a real run has is kept as written,
    /// with a line naming the value.
    pub fn job_text(&self, scope: &Scope, text: &str, field: &str) -> Result<String, ExprError> {
        let Some(unknowns) = self.dry_run.as_ref() else {
            return scope.interpolate(text);
        };
        let (value, read) = DryEval::new(scope, unknowns).interpolate(text)?;
        if let Some(read) = read {
            self.note(None, LogKind::Runner, &format!("dry run: {field}: {read}"));
        }
        Ok(value)
    }

    /// In a dry run, where the job's `container:` or a service fails on a value only a
    /// real run has: the container (`container`, `services.<id>`) and the value, when the
    /// first of its texts that fails does so because of one.
    pub fn container_read(&self, job: &Job, scope: &Scope) -> Option<(String, UnknownRead)> {
        let unknowns = self.dry_run.as_ref()?;
        let dry = DryEval::new(scope, unknowns);
        let containers = job
            .container
            .iter()
            .map(|c| ("container".to_string(), c))
            .chain(
                job.services
                    .iter()
                    .map(|(id, c)| (format!("services.{}", id.value), c)),
            );
        for (what, container) in containers {
            for text in container_texts(container) {
                if let Err(e) = scope.interpolate(text) {
                    return dry.read(&e).map(|read| (what, read));
                }
            }
        }
        None
    }

    /// [`Self::run_step`] in a dry run: every field a real run evaluates is evaluated and
    /// no process starts. A field that fails on a value only a real run has does not fail
    /// the step: it runs as it would (an `if:` as if it held, `continue-on-error` false,
    /// any other value as written), with a line naming the value; the step's variables
    /// whose value reads one are unknown to its other fields.
    pub(crate) fn dry_run_step(
        &mut self,
        frame: &mut Frame,
        def: &StepDef,
        unknowns: &Unknowns,
    ) -> StepResult {
        let mut lines = Vec::new();
        let name = match DryEval::new(&frame.scope, unknowns).interpolate(&def.display_name()) {
            Ok((name, read)) => {
                // A default name (`Run <first line>`) is the `run:` line's to mark.
                if def.name.is_some() {
                    mark(&mut lines, "name", read);
                }
                name
            }
            Err(_) => def.display_name(),
        };
        let key = self.step_key(def, name);
        frame.scope.status = frame.status(self.cancelled());
        let mut env = frame.env.clone();
        for (k, v) in &self.env_file {
            upsert(&mut env, k.clone(), v.clone());
        }
        frame.scope.set("env", env_value(&env));
        let started = Instant::now();
        let mut unknowns = Cow::Borrowed(unknowns);
        let step_env = match DryEval::new(&frame.scope, &unknowns).map(&def.env, &def.env_inserts) {
            Ok(map) => map,
            Err(e) => {
                let e = StepError::evaluate("env")(e);
                return self.step_error(&key, e.to_string(), started);
            }
        };
        mark(&mut lines, "env", step_env.read);
        if !step_env.unknown_names.is_empty() {
            unknowns.to_mut().env.extend(step_env.unknown_names);
        }
        for (k, v) in step_env.values {
            upsert(&mut env, k, v);
        }
        frame.scope.set("env", env_value(&env));
        let dry = DryEval::new(&frame.scope, &unknowns);
        let run = match frame.scope.condition(def.condition.as_deref()) {
            Ok(run) => run,
            Err(e) => match dry.read(&e) {
                Some(read) => {
                    lines.push(format!("dry run: if: {read}; the step runs as if it held"));
                    true
                }
                None => {
                    let e = StepError::evaluate("if")(e);
                    return self.step_error(&key, e.to_string(), started);
                }
            },
        };
        if !run || self.engine.hard_cancel.is_cancelled() {
            return self.skip_step(&key, started);
        }
        self.engine.sink.send(Event::StepStarted {
            job: self.key.clone(),
            step: key.clone(),
        });
        let continue_on_error = match frame.scope.flag(def.continue_on_error.as_deref()) {
            Ok(c) => c,
            Err(e) => match dry.read(&e) {
                Some(read) => {
                    lines.push(format!(
                        "dry run: continue-on-error: {read}; taken as false"
                    ));
                    false
                }
                None => {
                    let e = StepError::evaluate("continue-on-error")(e);
                    return self.step_error(&key, e.to_string(), started);
                }
            },
        };
        if let Err(e) = frame.scope.minutes(def.timeout_minutes.as_deref()) {
            match dry.read(&e) {
                Some(read) => lines.push(format!("dry run: timeout-minutes: {read}")),
                None => {
                    let e = StepError::evaluate("timeout-minutes")(e);
                    return self.step_error(&key, e.to_string(), started);
                }
            }
        }
        let fields = step_fields(&dry, frame, def, &mut lines);
        for line in &lines {
            self.note(Some(&key), LogKind::Runner, line);
        }
        self.note(Some(&key), LogKind::Runner, "dry run: not started");
        let outcome = match fields {
            Ok(()) => Outcome::Success,
            Err(e) => {
                self.annotate(Some(&key), AnnotationLevel::Error, &e.to_string());
                Outcome::Failure
            }
        };
        let conclusion = match outcome == Outcome::Failure && continue_on_error {
            true => Outcome::Success,
            false => outcome,
        };
        let result = StepResult {
            outcome,
            conclusion,
            outputs: Vec::new(),
        };
        self.finish_step(&key, &result, started);
        result
    }
}

/// The fields a real run evaluates when it starts the step: `run`, `shell` and
/// `working-directory` of a script (the folder is not looked for: an earlier step may
/// make it), `uses` and `with` of an action.
fn step_fields(
    dry: &DryEval<'_>,
    frame: &Frame,
    def: &StepDef,
    lines: &mut Vec<String>,
) -> Result<(), StepError> {
    let mut text = |field: &'static str, value: Option<&str>| {
        let Some(value) = value else {
            return Ok(());
        };
        let (_, read) = dry.interpolate(value).map_err(StepError::evaluate(field))?;
        mark(lines, field, read);
        Ok::<(), StepError>(())
    };
    if def.run.is_some() {
        text("run", def.run.as_deref())?;
        let shell = def.shell.as_deref().or(frame.default_shell.as_deref());
        text("shell", shell)?;
        return text("working-directory", def.working_directory.as_deref());
    }
    text("uses", def.uses.as_deref())?;
    let with = dry
        .map(&def.with, &def.with_inserts)
        .map_err(StepError::evaluate("with"))?;
    mark(lines, "with", with.read);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        let mut contexts = Object::new();
        let mut needs = Object::new();
        let mut gen_job = Object::new();
        gen_job.insert("outputs", Value::object(Object::new()));
        needs.insert("gen", Value::object(gen_job));
        contexts.insert("needs", Value::object(needs));
        let mut env = Object::new();
        env.insert("SET", Value::from("[1]"));
        contexts.insert("env", Value::object(env));
        Scope::new(contexts, None)
    }

    fn unknowns() -> Unknowns {
        Unknowns {
            job_outputs: true,
            ..Unknowns::default()
        }
    }

    #[test]
    fn a_text_that_fails_on_an_unknown_is_kept_as_written() {
        let (scope, u) = (scope(), unknowns());
        let dry = DryEval::new(&scope, &u);
        let text = "echo ${{ fromJSON(needs.gen.outputs.list)[0] }}";
        let (value, read) = dry.interpolate(text).unwrap();
        assert_eq!(value, text);
        assert_eq!(read.unwrap().value, "needs.gen.outputs.list");
        assert_eq!(dry.interpolate("a ${{ 1 }}").unwrap(), ("a 1".into(), None));
        // A genuine error fails, also next to an unknown one.
        assert!(dry.interpolate("${{ fromJSON('{bad') }}").is_err());
        let both = "${{ fromJSON(needs.gen.outputs.list) }} ${{ fromJSON('{bad') }}";
        let e = dry.interpolate(both).unwrap_err();
        assert!(e.expression.contains("{bad"), "{e}");
    }

    #[test]
    fn variables_set_from_unknowns_and_unset_ones_after_a_step_are_unknown() {
        let (scope, mut u) = (scope(), unknowns());
        let entries = vec![
            (
                "LIST".to_string(),
                "${{ needs.gen.outputs.list }}".to_string(),
            ),
            (
                "FIRST".to_string(),
                "${{ fromJSON(needs.gen.outputs.list)[0] }}".to_string(),
            ),
            ("PLAIN".to_string(), "${{ 'x' }}".to_string()),
        ];
        let map = DryEval::new(&scope, &u).map(&entries, &[]).unwrap();
        assert_eq!(map.unknown_names, ["LIST", "FIRST"]);
        assert_eq!(map.read.unwrap().value, "needs.gen.outputs.list");
        assert_eq!(map.values[0], ("LIST".into(), String::new()));
        assert_eq!(map.values[2], ("PLAIN".into(), "x".into()));
        // `env.MATRIX` is unset: a step that did not really run may set it (GITHUB_ENV).
        let text = "${{ fromJSON(env.MATRIX)[0] }}";
        assert!(DryEval::new(&scope, &u).interpolate(text).is_err());
        u.steps.push("s".into());
        let dry = DryEval::new(&scope, &u);
        assert_eq!(
            dry.interpolate(text).unwrap().1.unwrap().value,
            "env.MATRIX"
        );
        // A variable that has a value is known.
        assert!(dry.interpolate("${{ fromJSON(env.SET)[0] }}").is_ok());
        assert!(
            dry.interpolate("${{ fromJSON(format('{0}x', env.SET)) }}")
                .is_err()
        );
    }
}
