//! Event sequences fed to the renderers, compared with the exact text they print.

use std::time::Duration;

use super::*;

fn job(id: &str, name: &str) -> JobKey {
    JobKey {
        id: id.into(),
        name: name.into(),
    }
}

fn step(index: usize, name: &str) -> StepKey {
    StepKey {
        index,
        id: String::new(),
        name: name.into(),
        ..StepKey::default()
    }
}

fn options() -> RenderOptions {
    RenderOptions {
        color: false,
        debug: false,
        prefix_jobs: false,
        nested_in_actions: false,
    }
}

fn started(job: &JobKey) -> Event {
    Event::JobStarted { job: job.clone() }
}

fn step_started(job: &JobKey, step: &StepKey) -> Event {
    Event::StepStarted {
        job: job.clone(),
        step: step.clone(),
    }
}

fn log(job: &JobKey, step: &StepKey, line: &str) -> Event {
    Event::Log {
        job: job.clone(),
        step: Some(step.clone()),
        kind: LogKind::Stdout,
        line: line.into(),
    }
}

fn step_finished(
    job: &JobKey,
    step: &StepKey,
    outcome: Outcome,
    conclusion: Outcome,
    ms: u64,
) -> Event {
    Event::StepFinished {
        job: job.clone(),
        step: step.clone(),
        outcome,
        conclusion,
        duration: Duration::from_millis(ms),
        outputs: vec![],
    }
}

fn job_finished(job: &JobKey, result: Outcome, ms: u64) -> Event {
    Event::JobFinished {
        job: job.clone(),
        result,
        duration: Duration::from_millis(ms),
        outputs: vec![],
    }
}

fn annotation(job: &JobKey, step: &StepKey, level: &'static str, message: &str) -> Event {
    Event::Annotation {
        job: job.clone(),
        step: Some(step.clone()),
        annotation: AnnotationEvent {
            level,
            message: message.into(),
            title: None,
            file: Some("a.rs".into()),
            line: Some(3),
            col: None,
            from_runner: false,
        },
    }
}

/// What the renderer prints for `events` (without `finish`).
fn render(options: RenderOptions, events: &[Event]) -> String {
    let mut renderer = HumanRenderer::new(options);
    let mut out = Vec::new();
    for event in events {
        renderer.handle(event, &mut out).unwrap();
    }
    String::from_utf8(out).unwrap()
}

/// What `finish` prints after `events`.
fn finish(options: RenderOptions, events: &[Event]) -> String {
    let mut renderer = HumanRenderer::new(options);
    let mut sink = Vec::new();
    for event in events {
        renderer.handle(event, &mut sink).unwrap();
    }
    let mut out = Vec::new();
    renderer.finish(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn assert_no_trailing_whitespace(text: &str) {
    for line in text.lines() {
        assert_eq!(line, line.trim_end(), "trailing whitespace in {line:?}");
    }
}

#[test]
fn a_single_job_prints_a_header_and_no_prefix() {
    let build = job("build", "build");
    let echo = step(0, "Run echo hi");
    let text = render(
        options(),
        &[
            started(&build),
            step_started(&build, &echo),
            log(&build, &echo, "hi"),
            log(&build, &echo, ""),
            step_finished(&build, &echo, Outcome::Success, Outcome::Success, 12),
            job_finished(&build, Outcome::Success, 1500),
        ],
    );
    assert_eq!(
        text,
        "Job build\n\
         ▶ Run echo hi\n\
         \x20 hi\n\
         \n\
         ✔ Run echo hi (0.01s)\n\
         ✔ Job build succeeded (1.50s)\n"
    );
}

#[test]
fn parallel_jobs_prefix_every_line_with_job_and_leg() {
    let a = job("build", "build (ubuntu, 18)");
    let b = job("lint", "lint");
    let s = step(0, "Run make");
    let text = render(
        RenderOptions {
            prefix_jobs: true,
            ..options()
        },
        &[
            started(&a),
            started(&b),
            step_started(&a, &s),
            step_started(&b, &s),
            log(&b, &s, "lint says hi  "),
            log(&a, &s, "one\ntwo"),
            log(&a, &s, ""),
            step_finished(&a, &s, Outcome::Success, Outcome::Success, 63_000),
            job_finished(&a, Outcome::Success, 64_000),
            step_finished(&b, &s, Outcome::Failure, Outcome::Failure, 420),
            job_finished(&b, Outcome::Failure, 500),
        ],
    );
    assert_eq!(
        text,
        "[build (ubuntu, 18)] Job started\n\
         [lint] Job started\n\
         [build (ubuntu, 18)] ▶ Run make\n\
         [lint] ▶ Run make\n\
         [lint]   lint says hi\n\
         [build (ubuntu, 18)]   one\n\
         [build (ubuntu, 18)]   two\n\
         [build (ubuntu, 18)]\n\
         [build (ubuntu, 18)] ✔ Run make (1m 03s)\n\
         [build (ubuntu, 18)] ✔ Job succeeded (1m 04s)\n\
         [lint] ✘ Run make (0.42s, failed)\n\
         [lint] ✘ Job failed (0.50s)\n"
    );
    assert_no_trailing_whitespace(&text);
}

#[test]
fn groups_fold_under_a_header_and_indent_their_lines() {
    let build = job("build", "build");
    let s = step(0, "Test");
    let text = render(
        options(),
        &[
            step_started(&build, &s),
            log(&build, &s, "before"),
            Event::GroupStarted {
                job: build.clone(),
                step: s.clone(),
                title: "Cargo output".into(),
            },
            log(&build, &s, "compiling"),
            annotation(&build, &s, "warning", "unused"),
            Event::GroupEnded {
                job: build.clone(),
                step: s.clone(),
            },
            log(&build, &s, "after"),
            step_finished(&build, &s, Outcome::Success, Outcome::Success, 2000),
        ],
    );
    assert_eq!(
        text,
        "▶ Test\n\
         \x20 before\n\
         \x20 ▼ Cargo output\n\
         \x20   compiling\n\
         \x20   warning: a.rs:3: unused\n\
         \x20 after\n\
         ✔ Test (2.00s)\n"
    );
}

#[test]
fn annotations_are_highlighted_lines() {
    let build = job("build", "build");
    let s = step(0, "Lint");
    let titled = Event::Annotation {
        job: build.clone(),
        step: Some(s.clone()),
        annotation: AnnotationEvent {
            level: "notice",
            message: "first\nsecond".into(),
            title: Some("Heads up".into()),
            file: Some("src/x.rs".into()),
            line: Some(7),
            col: Some(2),
            from_runner: false,
        },
    };
    let plain = render(
        options(),
        &[annotation(&build, &s, "error", "message"), titled.clone()],
    );
    assert_eq!(
        plain,
        "  error: a.rs:3: message\n  notice: src/x.rs:7:2: Heads up: first\n    second\n"
    );
    let colored = render(
        RenderOptions {
            color: true,
            ..options()
        },
        &[annotation(&build, &s, "error", "message")],
    );
    assert_eq!(colored, "  \x1b[31merror: a.rs:3: message\x1b[0m\n");
}

#[test]
fn the_runners_problems_print_on_one_line_and_step_output_keeps_its_lines() {
    let build = job("build", "build");
    let s = step(0, "Run echo");
    let expression = "Error parsing fromJson: empty input. Located at position 34 within expression: github.event_name == 'push' &&\n    fromJSON('x')\n";
    let problem = Event::Annotation {
        job: build.clone(),
        step: Some(s.clone()),
        annotation: AnnotationEvent {
            level: "error",
            message: format!("if: {expression}"),
            title: None,
            file: None,
            line: None,
            col: None,
            from_runner: true,
        },
    };
    let runner_line = Event::Log {
        job: build.clone(),
        step: None,
        kind: LogKind::Runner,
        line: format!("error: if: {expression}"),
    };
    let one = "Error parsing fromJson: empty input. Located at position 34 within expression: github.event_name == 'push' && fromJSON('x')";
    let text = finish(
        options(),
        &[
            problem,
            runner_line,
            log(&build, &s, "out\nput"),
            job_finished(&build, Outcome::Failure, 10),
        ],
    );
    assert!(
        text.ends_with(&format!("Annotations\n  build: error: if: {one}\n")),
        "{text}"
    );
    let text = render(
        options(),
        &[
            Event::Log {
                job: build.clone(),
                step: None,
                kind: LogKind::Runner,
                line: format!("error: if: {expression}"),
            },
            log(&build, &s, "out\nput"),
        ],
    );
    assert_eq!(text, format!("  error: if: {one}\n  out\n  put\n"));
}

#[test]
fn nested_in_actions_re_emits_annotations_as_workflow_commands() {
    let build = job("build", "build (ubuntu, 18)");
    let s = step(0, "Lint");
    let titled = Event::Annotation {
        job: build.clone(),
        step: Some(s.clone()),
        annotation: AnnotationEvent {
            level: "warning",
            message: "50% done\nnext".into(),
            title: Some("Slow".into()),
            file: Some("a,b.rs".into()),
            line: Some(7),
            col: Some(2),
            from_runner: false,
        },
    };
    let nested = RenderOptions {
        nested_in_actions: true,
        ..options()
    };
    let text = render(
        nested,
        &[annotation(&build, &s, "error", "message"), titled],
    );
    assert_eq!(
        text,
        "::error file=a.rs,line=3,title=build (ubuntu%2C 18)::message\n\
         ::warning file=a%2Cb.rs,line=7,col=2,title=build (ubuntu%2C 18)%3A Slow::50%25 done%0Anext\n"
    );
}

#[test]
fn nested_in_actions_folds_each_step_and_defuses_inner_commands() {
    let build = job("build", "build");
    let s = step(0, "Run make");
    let text = render(
        RenderOptions {
            nested_in_actions: true,
            ..options()
        },
        &[
            started(&build),
            step_started(&build, &s),
            log(&build, &s, "::endgroup::"),
            step_finished(&build, &s, Outcome::Success, Outcome::Success, 10),
            job_finished(&build, Outcome::Success, 20),
        ],
    );
    assert_eq!(
        text,
        "Job build\n\
         ::group::build / Run make\n\
         \x20 \u{200b}::endgroup::\n\
         ::endgroup::\n\
         ✔ Run make (0.01s)\n\
         ✔ Job build succeeded (0.02s)\n"
    );
}

#[test]
fn skipped_failed_cancelled_and_continue_on_error_steps_say_what_happened() {
    let build = job("build", "build");
    let steps: Vec<StepKey> = (0..4).map(|i| step(i, &format!("s{i}"))).collect();
    let text = render(
        options(),
        &[
            step_finished(&build, &steps[0], Outcome::Skipped, Outcome::Skipped, 0),
            step_finished(&build, &steps[1], Outcome::Failure, Outcome::Failure, 420),
            step_finished(&build, &steps[2], Outcome::Failure, Outcome::Success, 100),
            step_finished(
                &build,
                &steps[3],
                Outcome::Cancelled,
                Outcome::Cancelled,
                3000,
            ),
        ],
    );
    assert_eq!(
        text,
        "⊘ s0 (skipped)\n\
         ✘ s1 (0.42s, failed)\n\
         ✘ s2 (0.10s, failed, continue-on-error)\n\
         ■ s3 (3.00s, cancelled)\n"
    );
}

#[test]
fn debug_lines_show_only_when_asked() {
    let build = job("build", "build");
    let s = step(0, "Run x");
    let debug = Event::Log {
        job: build.clone(),
        step: Some(s.clone()),
        kind: LogKind::Debug,
        line: "secret sauce".into(),
    };
    assert_eq!(render(options(), std::slice::from_ref(&debug)), "");
    let shown = RenderOptions {
        debug: true,
        ..options()
    };
    assert_eq!(render(shown, &[debug]), "  debug: secret sauce\n");
}

#[test]
fn unnamed_steps_and_called_jobs_get_readable_labels() {
    let called = job("call/build", "Build");
    let unnamed = StepKey {
        index: 2,
        id: String::new(),
        name: String::new(),
        ..StepKey::default()
    };
    let by_id = StepKey {
        index: 0,
        id: "compile".into(),
        name: " ".into(),
        ..StepKey::default()
    };
    let text = render(
        options(),
        &[
            started(&called),
            step_finished(&called, &unnamed, Outcome::Success, Outcome::Success, 0),
            step_finished(&called, &by_id, Outcome::Success, Outcome::Success, 0),
        ],
    );
    assert_eq!(
        text,
        "Job call / Build\n✔ Step 3 (0.00s)\n✔ compile (0.00s)\n"
    );
}

#[test]
fn the_final_table_aligns_jobs_in_the_order_they_finished() {
    let a = job("build", "build (ubuntu-latest, 18)");
    let b = job("lint", "lint");
    let c = job("deploy", "deploy");
    let d = job("slow", "slow");
    let text = finish(
        options(),
        &[
            started(&a),
            started(&b),
            started(&d),
            job_finished(&b, Outcome::Failure, 420),
            job_finished(&a, Outcome::Success, 63_000),
            Event::JobSkipped {
                job: c.clone(),
                reason: "needs failed".into(),
            },
        ],
    );
    assert_eq!(
        text,
        "\n\
         Job                        Result        Duration\n\
         lint                       ✘ failure        0.42s\n\
         build (ubuntu-latest, 18)  ✔ success       1m 03s\n\
         deploy                     ⊘ skipped            -\n\
         slow                       … unfinished         -\n"
    );
    assert_no_trailing_whitespace(&text);
}

#[test]
fn summaries_follow_the_table_under_the_jobs_name() {
    let a = job("build", "build");
    let summary = |markdown: &str| Event::Summary {
        job: a.clone(),
        markdown: markdown.into(),
        steps: Vec::new(),
    };
    let events = [
        summary("\n# Results  \n\n| a | b |"),
        summary("done\n\n"),
        job_finished(&a, Outcome::Success, 1000),
    ];
    let text = finish(options(), &events);
    assert_eq!(
        text,
        "\n\
         Job    Result     Duration\n\
         build  ✔ success     1.00s\n\
         \n\
         Step summary: build\n\
         # Results\n\
         \n\
         | a | b |\n\
         done\n"
    );
    let nested = finish(
        RenderOptions {
            nested_in_actions: true,
            ..options()
        },
        &events,
    );
    assert!(
        nested.ends_with(
            "\n::group::Step summary: build\n# Results\n\n| a | b |\ndone\n::endgroup::\n"
        ),
        "{nested}"
    );
}

#[test]
fn finish_recaps_annotations_and_reports_an_empty_run() {
    assert_eq!(finish(options(), &[]), "No jobs ran.\n");
    let a = job("build", "build");
    let s = step(0, "Lint");
    let text = finish(
        options(),
        &[
            annotation(&a, &s, "error", "bad"),
            job_finished(&a, Outcome::Failure, 10),
        ],
    );
    assert_eq!(
        text,
        "\n\
         Job    Result     Duration\n\
         build  ✘ failure     0.01s\n\
         \n\
         Annotations\n\
         \x20 build: error: a.rs:3: bad\n"
    );
}

#[test]
fn colored_prefixes_differ_per_job_and_output_escapes_are_stripped_without_color() {
    let a = job("a", "a");
    let b = job("b", "b");
    let s = step(0, "s");
    let colored = render(
        RenderOptions {
            color: true,
            prefix_jobs: true,
            ..options()
        },
        &[log(&a, &s, "x"), log(&b, &s, "\x1b[1my")],
    );
    assert_eq!(
        colored,
        "\x1b[36m[a]\x1b[0m   x\n\x1b[35m[b]\x1b[0m   \x1b[1my\x1b[0m\n"
    );
    assert_eq!(
        render(options(), &[log(&a, &s, "\x1b[1my\x1b[0m")]),
        "  y\n"
    );
}

#[test]
fn json_lines_parse_back_and_name_their_event() {
    let build = job("build", "build (ubuntu, 18)");
    let s = step(1, "Run make");
    let mut renderer = JsonRenderer;
    let mut out = Vec::new();
    for event in [
        started(&build),
        log(&build, &s, "hi\nthere"),
        step_finished(&build, &s, Outcome::Failure, Outcome::Success, 1234),
    ] {
        renderer.handle(&event, &mut out).unwrap();
    }
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["event"], "job_started");
    assert_eq!(lines[0]["job"]["name"], "build (ubuntu, 18)");
    assert_eq!(lines[1]["event"], "log");
    assert_eq!(lines[1]["kind"], "stdout");
    assert_eq!(lines[1]["line"], "hi\nthere");
    assert_eq!(lines[2]["event"], "step_finished");
    assert_eq!(lines[2]["outcome"], "failure");
    assert_eq!(lines[2]["conclusion"], "success");
    assert_eq!(lines[2]["duration"], 1.234);
    assert_eq!(lines[2]["step"]["index"], 1);
}

#[test]
fn the_colored_table_keeps_its_columns_aligned() {
    let a = job("build", "build");
    let text = finish(
        RenderOptions {
            color: true,
            ..options()
        },
        &[job_finished(&a, Outcome::Success, 1000)],
    );
    assert_eq!(
        text,
        "\n\
         \x1b[1mJob    Result     Duration\x1b[0m\n\
         build  \x1b[32m✔ success\x1b[0m     1.00s\n"
    );
}
