//! What `hybrid-runner build` reports: per service and variant the result, digest, tags
//! and duration, as a final table for people or one JSON object (with the build metrics)
//! for machines.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use actions::image_build::Variant;
use serde::Serialize;
use serde_json::json;

use hr_image::metrics::{BuildMetrics, BuildResult};
use hr_image::{BuildError, BuildOutcome, BuildProgress};

/// How one variant of one service ended.
#[derive(Debug, Clone, Serialize)]
pub struct VariantReport {
    #[serde(serialize_with = "variant_name")]
    pub variant: Variant,
    pub result: BuildResult,
    /// `sha256:<hex>`; empty when not built or unknown (see the build log).
    pub digest: String,
    pub tags: Vec<String>,
    /// Not built: an image from the same inputs was in the registry and got the tags
    /// (`--skip-unchanged`).
    pub reused: bool,
    pub duration_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How one service ended.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    pub name: String,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub sha: String,
    pub result: BuildResult,
    pub duration_seconds: f64,
    pub variants: Vec<VariantReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn variant_name<S: serde::Serializer>(variant: &Variant, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(variant.as_str())
}

/// When each variant of one service started and finished, from the builder's progress.
#[derive(Debug, Default)]
pub struct VariantClock {
    started: HashMap<Variant, Instant>,
    finished: HashMap<Variant, (Instant, BuildProgress)>,
}

impl VariantClock {
    pub fn record(&mut self, event: &BuildProgress) {
        let now = Instant::now();
        match event {
            BuildProgress::Started(variant) => {
                self.started.insert(*variant, now);
            }
            BuildProgress::Built(image) | BuildProgress::Reused(image) => {
                self.finished.insert(image.variant, (now, event.clone()));
            }
            BuildProgress::Failed { variant, .. } => {
                self.finished.insert(*variant, (now, event.clone()));
            }
        }
    }

    /// Since the variant started (or since `service_start` when the builder did not say).
    pub fn elapsed(&self, variant: Variant, service_start: Instant) -> Duration {
        let start = self.started.get(&variant).copied().unwrap_or(service_start);
        let end = self
            .finished
            .get(&variant)
            .map_or_else(Instant::now, |(at, _)| *at);
        end.saturating_duration_since(start)
    }
}

fn error_result(error: &BuildError) -> BuildResult {
    match error {
        BuildError::Cancelled => BuildResult::Cancelled,
        BuildError::TimedOut(_) => BuildResult::TimedOut,
        _ => BuildResult::Failure,
    }
}

/// The per-variant reports of one finished build: from the outcome when it succeeded,
/// else from what each variant reported, the error filling in the rest.
pub fn variant_reports(
    variants: &[(Variant, Vec<String>)],
    result: &Result<BuildOutcome, BuildError>,
    clock: &VariantClock,
    service_start: Instant,
) -> Vec<VariantReport> {
    variants
        .iter()
        .map(|(variant, tags)| {
            let duration = clock.elapsed(*variant, service_start).as_secs_f64();
            let mut report = VariantReport {
                variant: *variant,
                result: BuildResult::Success,
                digest: String::new(),
                tags: tags.clone(),
                reused: matches!(
                    clock.finished.get(variant),
                    Some((_, BuildProgress::Reused(_)))
                ),
                duration_seconds: duration,
                error: None,
            };
            match result {
                Ok(outcome) => {
                    if let Some(image) = outcome.images.iter().find(|i| i.variant == *variant) {
                        report.digest = image.digest.clone();
                        report.tags = image.tags.clone();
                    }
                }
                Err(error) => match clock.finished.get(variant).map(|(_, e)| e) {
                    Some(BuildProgress::Built(image) | BuildProgress::Reused(image)) => {
                        report.digest = image.digest.clone();
                    }
                    Some(BuildProgress::Failed { message, .. }) => {
                        report.result = match error {
                            BuildError::Cancelled | BuildError::TimedOut(_) => error_result(error),
                            _ => BuildResult::Failure,
                        };
                        report.error = Some(message.clone());
                    }
                    _ => {
                        report.result = error_result(error);
                        report.error = Some(match error {
                            BuildError::Failed { message, .. } => message.clone(),
                            other => other.to_string(),
                        });
                    }
                },
            }
            report
        })
        .collect()
}

/// The service's result: success when every variant succeeded, else the worst.
pub fn service_result(variants: &[VariantReport], error: Option<&BuildError>) -> BuildResult {
    if let Some(error) = error {
        return error_result(error);
    }
    variants
        .iter()
        .map(|v| v.result)
        .find(|r| *r != BuildResult::Success)
        .unwrap_or(BuildResult::Success)
}

/// Records every variant in `metrics`.
pub fn observe(metrics: &BuildMetrics, services: &[ServiceReport]) {
    for service in services {
        for v in &service.variants {
            metrics.observe(
                v.variant.as_str(),
                v.result,
                Duration::from_secs_f64(v.duration_seconds),
            );
        }
    }
}

/// `3.2s`, `1m04s`.
pub fn human_duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else {
        let whole = seconds.round() as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// The final table: one row per service and variant, then the failures' messages.
pub fn write_table(out: &mut impl Write, services: &[ServiceReport]) -> std::io::Result<()> {
    let mut rows = vec![[
        "SERVICE".to_string(),
        "VARIANT".to_string(),
        "RESULT".to_string(),
        "DURATION".to_string(),
        "DIGEST".to_string(),
    ]];
    for service in services {
        for v in &service.variants {
            rows.push([
                service.name.clone(),
                v.variant.to_string(),
                if v.reused {
                    format!("{} (reused)", v.result.as_str())
                } else {
                    v.result.as_str().to_string()
                },
                human_duration(v.duration_seconds),
                if v.digest.is_empty() {
                    "-".to_string()
                } else {
                    v.digest.clone()
                },
            ]);
        }
    }
    writeln!(out)?;
    for line in crate::cli::table::aligned_lines(&rows) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The one JSON object `--json` prints.
pub fn json_report(
    builder: &str,
    services: &[ServiceReport],
    metrics: &BuildMetrics,
) -> serde_json::Value {
    let ok = services.iter().all(|s| s.result == BuildResult::Success);
    json!({
        "builder": builder,
        "result": if ok { "success" } else { "failure" },
        "services": services,
        "metrics": metrics.snapshot(),
    })
}

#[cfg(test)]
mod tests {
    use hr_image::BuiltImage;

    use super::*;

    fn variants() -> Vec<(Variant, Vec<String>)> {
        vec![
            (Variant::Docker, vec!["r/a:latest".into()]),
            (Variant::K8s, vec!["r/a:k8s-latest".into()]),
        ]
    }

    #[test]
    fn a_failed_variant_and_a_built_sibling() {
        let start = Instant::now();
        let mut clock = VariantClock::default();
        let built = BuiltImage {
            variant: Variant::Docker,
            digest: "sha256:aa".into(),
            tags: vec!["r/a:latest".into()],
        };
        clock.record(&BuildProgress::Started(Variant::Docker));
        clock.record(&BuildProgress::Started(Variant::K8s));
        clock.record(&BuildProgress::Failed {
            variant: Variant::K8s,
            message: "COPY failed".into(),
        });
        clock.record(&BuildProgress::Built(built));
        let error = BuildError::Failed {
            variant: Variant::K8s,
            message: "COPY failed".into(),
        };
        let reports = variant_reports(&variants(), &Err(error), &clock, start);
        assert_eq!(reports[0].result, BuildResult::Success);
        assert_eq!(reports[0].digest, "sha256:aa");
        assert_eq!(reports[1].result, BuildResult::Failure);
        assert_eq!(reports[1].error.as_deref(), Some("COPY failed"));
        assert_eq!(service_result(&reports, None), BuildResult::Failure);
    }

    #[test]
    fn without_progress_the_error_applies_to_every_variant() {
        let reports = variant_reports(
            &variants(),
            &Err(BuildError::Cancelled),
            &VariantClock::default(),
            Instant::now(),
        );
        assert!(reports.iter().all(|r| r.result == BuildResult::Cancelled));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(3.24), "3.2s");
        assert_eq!(human_duration(64.4), "1m04s");
    }
}
