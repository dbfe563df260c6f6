//! GitHub's limits on reusable workflows, checked over the whole call tree before any call
//! is planned or run: calls nest at most nine levels below the caller (ten levels in all),
//! a run references at most 50 different workflows, and with the jobs of every called
//! workflow counted a run holds at most 256 jobs. Each called workflow is loaded and
//! walked once, however often it is called, so ten small files that each call the next
//! from four jobs cost ten loads here instead of 262,144 planned jobs.

use std::collections::{HashMap, HashSet};

use super::call::CalledWorkflows;
use crate::diagnostic::{Diagnostic, Location};
use crate::model::Workflow;

/// How many levels of called workflows may nest below the caller.
pub const MAX_NESTED_CALLS: usize = 9;
/// How many different workflows one run may call, at every level.
pub const MAX_CALLED_WORKFLOWS: usize = 50;
/// How many jobs a run that calls workflows may hold, the called ones' jobs counted
/// (matrix legs are not: each job's matrix has its own limit of 256 legs).
pub const MAX_JOBS_WITH_CALLS: usize = 256;

/// Which limit a call tree breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallLimit {
    Depth,
    Workflows,
    Jobs,
}

impl CallLimit {
    /// GitHub's message.
    pub fn message(self) -> String {
        match self {
            CallLimit::Depth => {
                format!("Nested reusable workflow depth exceeded {MAX_NESTED_CALLS}.")
            }
            CallLimit::Workflows => format!(
                "The maximum file count of {} has been exceeded",
                MAX_CALLED_WORKFLOWS + 1
            ),
            CallLimit::Jobs => {
                format!("The workflow may not contain more than {MAX_JOBS_WITH_CALLS} jobs")
            }
        }
    }

    /// What to change.
    pub fn help(self) -> String {
        match self {
            CallLimit::Depth => format!(
                "Call reusable workflows at most {MAX_NESTED_CALLS} levels below this workflow; a workflow that calls itself, directly or through others, never ends."
            ),
            CallLimit::Workflows => format!(
                "Call at most {MAX_CALLED_WORKFLOWS} different reusable workflows, counting those the called workflows call."
            ),
            CallLimit::Jobs => format!(
                "Call fewer workflows or merge jobs: with the jobs of every called workflow counted, once per call, a run may hold at most {MAX_JOBS_WITH_CALLS} jobs."
            ),
        }
    }
}

/// Checks `workflow`'s call tree against GitHub's limits; the problem is placed at the
/// `uses:` of the job whose call breaks a limit. `depth`: how many levels below a run's
/// workflow `workflow` itself is called (0 for the run's own workflow).
pub fn check_call_limits(
    workflow: &Workflow,
    calls: &dyn CalledWorkflows,
    depth: usize,
) -> Result<(), Diagnostic> {
    let mut walk = Walk {
        calls,
        walked: HashMap::new(),
        walking: HashSet::new(),
    };
    let mut jobs = workflow.jobs.len();
    for job in &workflow.jobs {
        let Some(uses) = &job.uses else {
            continue;
        };
        let at = |limit: CallLimit| problem(&workflow.file, uses.location, limit);
        let tree = walk.tree(&uses.value, depth + 1).map_err(at)?;
        jobs = jobs.saturating_add(tree.jobs);
        if jobs > MAX_JOBS_WITH_CALLS {
            return Err(at(CallLimit::Jobs));
        }
    }
    Ok(())
}

fn problem(file: &str, location: Location, limit: CallLimit) -> Diagnostic {
    Diagnostic::new(file, Some(location), limit.message()).with_help(limit.help())
}

/// What one called workflow amounts to.
#[derive(Debug, Clone, Copy, Default)]
struct Tree {
    /// Its jobs and, once per call, those of the workflows it calls.
    jobs: usize,
    /// How many levels of calls nest below it.
    height: usize,
}

struct Walk<'a> {
    calls: &'a dyn CalledWorkflows,
    /// The workflows walked, by reference.
    walked: HashMap<String, Tree>,
    /// The workflows being walked: meeting one again is a cycle.
    walking: HashSet<String>,
}

impl Walk<'_> {
    /// The tree of `reference`, called at `depth` levels below the caller.
    fn tree(&mut self, reference: &str, depth: usize) -> Result<Tree, CallLimit> {
        if depth > MAX_NESTED_CALLS || self.walking.contains(reference) {
            return Err(CallLimit::Depth);
        }
        if let Some(tree) = self.walked.get(reference) {
            return match depth + tree.height > MAX_NESTED_CALLS {
                true => Err(CallLimit::Depth),
                false => Ok(*tree),
            };
        }
        if self.walked.len() + self.walking.len() >= MAX_CALLED_WORKFLOWS {
            return Err(CallLimit::Workflows);
        }
        // A workflow that cannot be had here is reported where it is called.
        let Some(Ok(callee)) = self.calls.load(reference) else {
            self.walked.insert(reference.to_string(), Tree::default());
            return Ok(Tree::default());
        };
        self.walking.insert(reference.to_string());
        let mut tree = Tree {
            jobs: callee.jobs.len(),
            height: 0,
        };
        for uses in callee.jobs.iter().filter_map(|j| j.uses.as_ref()) {
            let inner = self.tree(&uses.value, depth + 1)?;
            tree.jobs = tree.jobs.saturating_add(inner.jobs);
            tree.height = tree.height.max(inner.height + 1);
            if tree.jobs > MAX_JOBS_WITH_CALLS {
                return Err(CallLimit::Jobs);
            }
        }
        self.walking.remove(reference);
        self.walked.insert(reference.to_string(), tree);
        Ok(tree)
    }
}
