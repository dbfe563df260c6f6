//! The end of a run: the table of jobs (job, result, duration, in the order they
//! finished), the annotations once more, and each job's step summary.

use std::io::Write;

use super::text::{Style, defuse_command, escape_data, human_duration, paint};
use super::{
    HumanRenderer, JobRow, annotation_style, annotation_text, icon, job_label, outcome_style,
};

impl HumanRenderer {
    /// The final table (job, result, duration; jobs in the order they finished or were
    /// skipped, then any that started and never finished), the annotations of the run,
    /// then each job's step summary (markdown printed as-is, under a heading naming the job).
    pub fn finish(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        self.close_fold(out)?;
        let mut rows: Vec<JobRow> = std::mem::take(&mut self.rows);
        rows.extend(self.running.drain(..).map(|job| JobRow {
            label: job_label(&job),
            result: None,
            duration: None,
        }));
        self.table(&rows, out)?;
        self.rows = rows;
        self.recap_annotations(out)?;
        self.summaries(out)?;
        out.flush()
    }

    fn table(&mut self, rows: &[JobRow], out: &mut dyn Write) -> std::io::Result<()> {
        let color = self.options.color;
        self.gap(out)?;
        if rows.is_empty() {
            return writeln!(out, "No jobs ran.");
        }
        let cells: Vec<(String, String, String, Style)> = rows
            .iter()
            .map(|row| {
                let (result, style) = match row.result {
                    Some(outcome) => (
                        format!("{} {}", icon(outcome), outcome.as_str()),
                        outcome_style(outcome),
                    ),
                    None => ("… unfinished".to_owned(), Style::Yellow),
                };
                let took = row.duration.map_or_else(|| "-".to_owned(), human_duration);
                (row.label.clone(), result, took, style)
            })
            .collect();
        let width = |header: &str, pick: fn(&(String, String, String, Style)) -> &String| {
            cells
                .iter()
                .map(|cell| pick(cell).chars().count())
                .chain([header.len()])
                .max()
                .unwrap_or(0)
        };
        let job_w = width("Job", |c| &c.0);
        let result_w = width("Result", |c| &c.1);
        let took_w = width("Duration", |c| &c.2);
        let header = format!(
            "{:<job_w$}  {:<result_w$}  {:>took_w$}",
            "Job", "Result", "Duration"
        );
        writeln!(out, "{}", paint(color, Style::Bold, &header))?;
        for (label, result, took, style) in &cells {
            let result = paint(color, *style, &format!("{result:<result_w$}"));
            writeln!(out, "{label:<job_w$}  {result}  {took:>took_w$}")?;
        }
        Ok(())
    }

    fn recap_annotations(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.annotations.is_empty() {
            return Ok(());
        }
        let color = self.options.color;
        writeln!(out)?;
        writeln!(out, "{}", paint(color, Style::Bold, "Annotations"))?;
        for (job, annotation) in &self.annotations {
            let head = annotation_text(annotation)
                .into_iter()
                .next()
                .unwrap_or_default();
            let style = annotation_style(annotation.level);
            writeln!(out, "  {job}: {}", paint(color, style, head.trim_end()))?;
        }
        Ok(())
    }

    fn summaries(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        let color = self.options.color;
        let nested = self.options.nested_in_actions;
        for (job, markdown) in &self.summaries {
            let lines: Vec<&str> = markdown.trim_end().lines().map(str::trim_end).collect();
            if lines.iter().all(|line| line.is_empty()) {
                continue;
            }
            let heading = format!("Step summary: {}", job_label(job));
            writeln!(out)?;
            if nested {
                writeln!(out, "::group::{}", escape_data(&heading))?;
            } else {
                writeln!(out, "{}", paint(color, Style::Bold, &heading))?;
            }
            let first = lines.iter().position(|line| !line.is_empty()).unwrap_or(0);
            for line in &lines[first..] {
                match nested {
                    true => writeln!(out, "{}", defuse_command((*line).to_owned()))?,
                    false => writeln!(out, "{line}")?,
                }
            }
            if nested {
                writeln!(out, "::endgroup::")?;
            }
        }
        Ok(())
    }

    /// A blank line between the run's output and what [`Self::finish`] adds.
    fn gap(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.printed_any {
            writeln!(out)?;
        }
        Ok(())
    }
}
