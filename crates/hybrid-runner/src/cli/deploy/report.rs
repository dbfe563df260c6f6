//! What `deploy` prints: the preflight's line per image, the final table per workload and
//! the errors with their pods' last log lines for people; one JSON object for machines.

use std::io::Write;

use serde_json::{Value, json};

use hr_rollout::{ImageProblem, Outcome, Preflight, Rollback, RolloutFailure, RolloutReport};

/// One workload's row: the service it belongs to and how its rollout ended.
#[derive(Debug, Clone)]
pub struct WorkloadRow {
    pub service: String,
    pub report: RolloutReport,
}

fn rollback_text(rollback: &Rollback) -> String {
    rollback.describe("not rolled back (--no-rollback)")
}

/// The preflight's lines: `ok` with the digest, or what is missing and who builds it.
pub fn write_preflight(out: &mut dyn Write, preflight: &Preflight) -> std::io::Result<()> {
    for line in preflight.image_lines() {
        writeln!(out, "{line}")?;
    }
    for problem in &preflight.workload_problems {
        writeln!(out, "missing  {problem}")?;
    }
    Ok(())
}

/// The final table, one row per workload.
pub fn write_table(out: &mut dyn Write, rows: &[WorkloadRow]) -> std::io::Result<()> {
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|row| {
            let r = &row.report;
            let detail = match &r.outcome {
                Outcome::RolledOut { message } | Outcome::Unchanged { message } => message.clone(),
                Outcome::Failed { failure, rollback } => {
                    format!("{}; {}", failure.reason(), rollback_text(rollback))
                }
            };
            [
                row.service.clone(),
                r.workload.target.to_string(),
                r.outcome.word().to_string(),
                format!("{:.1}s", r.duration.as_secs_f64()),
                detail,
            ]
        })
        .collect();
    let header = ["SERVICE", "WORKLOAD", "RESULT", "TIME", "DETAIL"].map(String::from);
    let table: Vec<[String; 5]> = std::iter::once(header).chain(cells).collect();
    for line in crate::cli::table::aligned_lines(&table) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// `error:` lines for each failed workload, with the pod's last log lines.
pub fn write_failures(out: &mut dyn Write, rows: &[WorkloadRow]) -> std::io::Result<()> {
    for row in rows {
        let Outcome::Failed { failure, rollback } = &row.report.outcome else {
            continue;
        };
        writeln!(
            out,
            "error: {}: {}: {failure}; {}",
            row.service,
            row.report.workload.target,
            rollback_text(rollback)
        )?;
        if let RolloutFailure::Pod { logs, .. } = failure
            && !logs.is_empty()
        {
            writeln!(out, "  last log lines of the container:")?;
            for line in logs {
                writeln!(out, "  | {line}")?;
            }
        }
    }
    Ok(())
}

/// The preflight's images as JSON.
pub fn images_json(preflight: &Preflight) -> Value {
    preflight
        .images
        .iter()
        .map(|(check, producer)| match &check.result {
            Ok(digest) => json!({"image": check.image, "status": "present", "digest": digest, "producer": producer}),
            Err(problem) => {
                let mut v = json!({"image": check.image, "status": problem.status(), "error": problem.to_string(), "producer": producer});
                if let ImageProblem::Missing { absence, .. } = problem {
                    v["missing"] = json!(absence.as_str());
                }
                v
            }
        })
        .collect()
}

/// One workload's rollout as JSON.
pub fn row_json(row: &WorkloadRow) -> Value {
    let r = &row.report;
    let w = &r.workload;
    let mut v = json!({
        "service": row.service,
        "kind": w.target.kind.as_str(),
        "namespace": w.target.namespace,
        "name": w.target.name,
        "container": w.container,
        "previous_image": w.image,
        "image": r.image,
        "result": r.outcome.word(),
        "duration_seconds": r.duration.as_secs_f64(),
    });
    match &r.outcome {
        Outcome::RolledOut { message } | Outcome::Unchanged { message } => {
            v["message"] = json!(message);
        }
        Outcome::Failed { failure, rollback } => {
            v["reason"] = json!(failure.reason());
            v["message"] = json!(failure.to_string());
            if let RolloutFailure::Pod {
                pod,
                container,
                logs,
                ..
            } = failure
            {
                v["pod"] = json!(pod);
                v["pod_container"] = json!(container);
                v["logs"] = json!(logs);
            }
            v["rollback"] = json!(rollback.as_str());
            if let Rollback::Refused { message } = rollback {
                v["rollback_error"] = json!(message);
            }
        }
    }
    v
}
