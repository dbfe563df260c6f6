//! act's flags of `exec` that are not about one value of the run: who triggered it
//! (`-a`), where the repository's name and default branch come from (`--remote-name`,
//! `--defaultbranch`), which event runs without `-E` (`--detect-event`, act's positional
//! event), drawing the jobs (`-g`), how much is printed (`-q`, `-v`), and `--use-gitignore`.
//! Each mirrors act's cmd/root.go; where `exec` differs, the flag's help says so.

use hr_engine::contexts::{DEFAULT_ACTOR, DEFAULT_REMOTE};

#[derive(Debug, clap::Args)]
pub struct ActArgs {
    /// The event that triggers the run, as act takes it (`exec pull_request`); same as -E
    #[arg(value_name = "EVENT", conflicts_with = "event")]
    pub event_arg: Option<String>,
    /// Who triggered the event: `github.actor`, `github.triggering_actor`, `GITHUB_ACTOR`
    #[arg(short = 'a', long = "actor", value_name = "USER", default_value = DEFAULT_ACTOR)]
    pub actor: String,
    /// The git remote whose URL names the repository (`github.repository`, `server_url`)
    #[arg(long = "remote-name", value_name = "NAME", default_value = DEFAULT_REMOTE)]
    pub remote_name: String,
    /// `github.event.repository.default_branch` when the payload has none [default: master]
    #[arg(long = "defaultbranch", value_name = "BRANCH")]
    pub default_branch: Option<String>,
    /// Without -E, run the workflows' first event (act's order: by name) instead of `push`
    #[arg(long = "detect-event")]
    pub detect_event: bool,
    /// Draw the jobs that would run, one row of boxes per `needs` stage, then stop
    #[arg(short = 'g', long = "graph")]
    pub graph: bool,
    /// Leave out what steps print (stdout and stderr); with -v it is shown
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Show `::debug::` lines (without RUNNER_DEBUG in the steps) and, on stderr, the
    /// `.actrc` flags taken and how the event was chosen
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Leave what git ignores out of the copy of the repository a job pod starts with
    /// (`=false` copies it too); jobs on this host use the repository itself
    #[arg(
        long = "use-gitignore",
        value_name = "BOOL",
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub use_gitignore: bool,
}

/// Why the run's event is the one it is (printed with -v).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventChoice {
    /// `-E` or the positional event.
    Given,
    /// The workflows have this one event (act's default before `push`).
    Only,
    /// `--detect-event`: the first of the workflows' events, by name.
    Detected,
    /// Nothing else applied: `push`.
    Push,
}

impl std::fmt::Display for EventChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EventChoice::Given => "given on the command line",
            EventChoice::Only => "the only event of the workflows",
            EventChoice::Detected => "--detect-event: the first of the workflows' events by name",
            EventChoice::Push => "the default",
        })
    }
}

impl ActArgs {
    /// The run's event as act picks it (cmd/root.go, newRunCommand): the one given, else
    /// the workflows' only event, else with `--detect-event` their first, else `push`.
    /// `on` gives each workflow file's events in file order (`None` for a file that does not
    /// load); it is called only when no event is given.
    pub fn event(
        &self,
        given: Option<&str>,
        on: impl FnOnce() -> Vec<Option<Vec<String>>>,
    ) -> (String, EventChoice) {
        if let Some(event) = given.or(self.event_arg.as_deref()) {
            return (event.to_string(), EventChoice::Given);
        }
        let events = act_events(on());
        match events.first() {
            Some(only) if events.len() == 1 => (only.clone(), EventChoice::Only),
            Some(first) if self.detect_event => (first.clone(), EventChoice::Detected),
            _ => ("push".to_string(), EventChoice::Push),
        }
    }

    /// `github` context fields the flags set.
    pub fn github_overrides(&self) -> Vec<(String, String)> {
        vec![("actor".to_string(), self.actor.clone())]
    }
}

/// Each loaded file's events (`on:`), in file order; `None` for a file that did not load.
pub fn workflow_events(files: &[hr_engine::LoadedFile]) -> Vec<Option<Vec<String>>> {
    files
        .iter()
        .map(|file| match &file.workflow {
            Ok(Ok(workflow)) => Some(
                workflow
                    .on
                    .events
                    .iter()
                    .map(|e| e.name.value.clone())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// The workflows' events as act's planner lists them (pkg/model/planner.go, GetEvents):
/// in file order, each workflow's `on:` events unless the list already holds one of
/// them (then that workflow adds none), sorted by name. Files that do not load add none.
fn act_events(on: Vec<Option<Vec<String>>>) -> Vec<String> {
    let mut events: Vec<String> = Vec::new();
    for own in on.into_iter().flatten() {
        if !own.iter().any(|e| events.contains(e)) {
            events.extend(own);
        }
    }
    events.sort();
    events
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The events of `texts` as `exec` reads them: each written to a file and loaded.
    fn workflows(texts: &[&str]) -> Vec<Option<Vec<String>>> {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = texts
            .iter()
            .enumerate()
            .map(|(n, text)| {
                let path = dir.path().join(format!("{n}.yml"));
                std::fs::write(&path, text).unwrap();
                path
            })
            .collect();
        workflow_events(&hr_engine::read_workflows(dir.path(), &files))
    }

    const JOBS: &str =
        "\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n";

    fn args(detect_event: bool) -> ActArgs {
        ActArgs {
            event_arg: None,
            actor: DEFAULT_ACTOR.into(),
            remote_name: DEFAULT_REMOTE.into(),
            default_branch: None,
            detect_event,
            graph: false,
            quiet: false,
            verbose: false,
            use_gitignore: true,
        }
    }

    #[test]
    fn events_are_chosen_as_act_chooses_them() {
        let push_and_pr = format!("on: [push, pull_request]{JOBS}");
        let dispatch = format!("on: workflow_dispatch{JOBS}");
        let push = format!("on: push{JOBS}");
        // Given wins, and the workflows are not read for it; the positional form too.
        let unread = || -> Vec<Option<Vec<String>>> { panic!("read with an event given") };
        assert_eq!(
            args(true).event(Some("issues"), unread),
            ("issues".into(), EventChoice::Given)
        );
        let mut positional = args(false);
        positional.event_arg = Some("schedule".into());
        assert_eq!(positional.event(None, unread).0, "schedule");
        let on = workflows(&[&dispatch]);
        // One event in all: it, with or without --detect-event.
        assert_eq!(
            args(false).event(None, || on.clone()),
            ("workflow_dispatch".into(), EventChoice::Only)
        );
        // Several: push, unless detected: then the first by name.
        let on = workflows(&[&push_and_pr, &dispatch]);
        assert_eq!(
            args(false).event(None, || on.clone()),
            ("push".into(), EventChoice::Push)
        );
        assert_eq!(
            args(true).event(None, || on.clone()),
            ("pull_request".into(), EventChoice::Detected)
        );
        // A workflow sharing an event with an earlier one adds none of its own (act's
        // GetEvents): push alone, so push is the only event.
        let push_and_dispatch = format!("on: [workflow_dispatch, push]{JOBS}");
        let on = workflows(&[&push, &push_and_dispatch]);
        assert_eq!(
            args(false).event(None, || on.clone()),
            ("push".into(), EventChoice::Only)
        );
        // A file that does not load adds nothing.
        let on = workflows(&["on: [", &dispatch]);
        assert_eq!(
            args(false).event(None, || on.clone()).0,
            "workflow_dispatch"
        );
    }
}
