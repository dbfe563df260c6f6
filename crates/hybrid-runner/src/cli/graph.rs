//! `exec -g/--graph`: the jobs the run would start, drawn as act draws them (cmd/graph.go,
//! pkg/common/draw.go): a row of boxes per `needs` stage, one box per job (its `name:`,
//! else its id; matrix legs are one box), a `⬇` between stages, every row centred on the
//! widest. One drawing per workflow, under its name and file; plain text, no colours.
//! With `--json` it prints what `exec -l --json` prints: the stages are the graph.
//!
//! ```text
//! CI (.github/workflows/ci.yml)
//!  ╭───────╮ ╭──────╮
//!  │ build │ │ lint │
//!  ╰───────╯ ╰──────╯
//!          ⬇
//!      ╭────────╮
//!      │ deploy │
//!      ╰────────╯
//! ```

use std::process::ExitCode;

use workflows::plan::WorkflowPlan;

use super::list;

pub fn run(args: list::Args) -> anyhow::Result<ExitCode> {
    if args.json {
        return list::run(args);
    }
    let (plans, failed) = list::plans(&args)?;
    if plans.iter().all(|p| p.stages.is_empty()) {
        eprintln!("no jobs to run");
    }
    let drawings: Vec<String> = plans
        .iter()
        .filter(|p| !p.stages.is_empty())
        .map(draw)
        .collect();
    print!("{}", drawings.join("\n"));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// One workflow: its title line, then its stages.
fn draw(plan: &WorkflowPlan) -> String {
    let rows: Vec<Vec<String>> = plan
        .stages
        .iter()
        .map(|stage| stage.iter().map(|job| job.name.clone()).collect())
        .collect();
    format!("{} ({})\n{}", plan.name, plan.file, stages(&rows))
}

/// act's drawing of stages: boxes, arrows between, each centred on the widest row.
fn stages(rows: &[Vec<String>]) -> String {
    let mut drawings: Vec<(usize, Vec<String>)> = Vec::new();
    for (n, labels) in rows.iter().enumerate() {
        if n > 0 {
            drawings.push((1, vec!["⬇".to_string()]));
        }
        drawings.push(boxes(labels));
    }
    let widest = drawings.iter().map(|(w, _)| *w).max().unwrap_or(0);
    let mut out = String::new();
    for (width, lines) in drawings {
        let pad = " ".repeat((widest - width) / 2);
        for line in lines {
            out.push_str(&pad);
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// One row of boxes (three lines) and its width: act counts each box as its label and
/// five more columns (a space before it, two borders, two spaces of padding).
fn boxes(labels: &[String]) -> (usize, Vec<String>) {
    let (mut top, mut middle, mut bottom) = (String::new(), String::new(), String::new());
    let mut width = 0;
    for label in labels {
        let columns = label.chars().count();
        let bar = "─".repeat(columns + 2);
        top.push_str(&format!(" ╭{bar}╮"));
        middle.push_str(&format!(" │ {label} │"));
        bottom.push_str(&format!(" ╰{bar}╯"));
        width += columns + 5;
    }
    (width, vec![top, middle, bottom])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_rows_of_boxes_centred_with_arrows_between() {
        let rows = vec![
            vec!["build".to_string(), "lint".to_string()],
            vec!["deploy".to_string()],
        ];
        assert_eq!(
            stages(&rows),
            " ╭───────╮ ╭──────╮\n \
             │ build │ │ lint │\n \
             ╰───────╯ ╰──────╯\n         \
             ⬇\n     \
             ╭────────╮\n     \
             │ deploy │\n     \
             ╰────────╯\n"
        );
    }
}
