//! Registration, Declare, task assignment (labels, `tasks_version`), UpdateTask (steps,
//! outputs, cancellation), authentication and the ephemeral runner's life cycle.

use std::collections::BTreeMap;

use harness::fake_gitea::{
    AuthErrorStyle, FakeGitea, FakeGiteaOptions, Method, NeedSpec, TaskSpec, TaskStatus, pb,
};
use serde_json::{Value, json};

use super::connect::{Rpc, answered, fake_and_runner, payload};

#[test]
fn register_declare_and_fetch_by_label_with_tasks_version() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let mut rpc = Rpc::new(&fake);
    let runner = rpc.register("runner-a", &["old-label"], false);
    assert_eq!(runner.name, "runner-a");
    assert_eq!(runner.labels, vec!["old-label"]);
    assert_eq!(runner.uuid.len(), 36, "a UUID: {}", runner.uuid);
    assert_eq!(runner.token.len(), 40);
    let declared = rpc.declare(&["ubuntu-latest", "linux"], &["cancelling"]);
    assert_eq!(declared.labels, vec!["ubuntu-latest", "linux"]);
    assert!(
        declared.token.is_empty(),
        "Declare never sends the token back"
    );
    let view = fake.runner(&runner.uuid).unwrap();
    assert_eq!(view.version, "v0.2.0");
    assert_eq!(view.declares, 1);
    assert_eq!(view.capabilities, vec!["cancelling"]);

    let start_version = fake.tasks_version();
    let windows = fake.enqueue_task(TaskSpec::new(&["windows"], &payload(1)));
    let mut spec = TaskSpec::new(&["ubuntu-latest"], &payload(2));
    spec.context =
        json!({"repository": "o/r", "run_number": 7, "event": {"ref": "refs/heads/main"}});
    spec.secrets.insert("TOKEN".into(), "s3cret".into());
    spec.vars.insert("V".into(), "x".into());
    spec.needs.insert(
        "setup".into(),
        NeedSpec {
            outputs: BTreeMap::from([("out".to_string(), "1".to_string())]),
            result: pb::Result::Success,
        },
    );
    let ubuntu = fake.enqueue_task(spec);
    assert_eq!(fake.tasks_version(), start_version + 2);

    // The first fetch (version 0) gets the task whose every runs-on label the runner has.
    let got = rpc.fetch(0).unwrap();
    assert_eq!(got.tasks_version, fake.tasks_version());
    let task = got.task.expect("the ubuntu task");
    assert_eq!(task.id, ubuntu);
    assert_eq!(
        task.workflow_payload.as_deref(),
        Some(payload(2).as_bytes())
    );
    let context: Value = serde_json::to_value(task.context.unwrap()).unwrap();
    assert_eq!(context["repository"], "o/r");
    assert_eq!(context["event"]["ref"], "refs/heads/main");
    assert_eq!(task.secrets["TOKEN"], "s3cret");
    assert_eq!(task.vars["V"], "x");
    assert_eq!(task.needs["setup"].outputs["out"], "1");
    assert_eq!(task.needs["setup"].result, pb::Result::Success as i32);
    assert_eq!(fake.task(ubuntu).unwrap().status, TaskStatus::Running);
    assert_eq!(fake.task(windows).unwrap().status, TaskStatus::Waiting);

    // No label match: nothing, even with version 0.
    assert!(rpc.fetch(0).unwrap().task.is_none());

    // Unchanged version: no look-up, even though a matching task is now waiting... only
    // once the version moved. Enqueue bumps it, so a fetch with the old version finds it.
    let version = fake.tasks_version();
    let both = fake.enqueue_task(TaskSpec::new(&["ubuntu-latest", "linux"], &payload(1)));
    let stale = rpc.fetch(version).unwrap();
    assert_eq!(stale.task.map(|t| t.id), Some(both));
    let later = fake.enqueue_task(TaskSpec::new(&["linux"], &payload(1)));
    let current = fake.tasks_version();
    let unchanged = rpc.fetch(current).unwrap();
    assert!(unchanged.task.is_none(), "same version: no task");
    assert_eq!(unchanged.tasks_version, current);
    assert_eq!(rpc.fetch(0).unwrap().task.map(|t| t.id), Some(later));
    assert_eq!(
        fake.runner(&runner.uuid).unwrap().tasks,
        vec![ubuntu, both, later]
    );
    assert_eq!(fake.runner(&runner.uuid).unwrap().peak_running, 3);
    assert!(fake.task(later).unwrap().assigned_at.is_some());
    assert!(fake.task(windows).unwrap().assigned_at.is_none());
}

#[test]
fn outputs_first_value_wins_and_steps_are_stored() {
    let (fake, rpc) = fake_and_runner(&["linux"]);
    let id = fake.enqueue_task(TaskSpec::new(&["linux"], &payload(2)));
    rpc.fetch(0).unwrap().task.unwrap();
    let step = |id: i64, result: pb::Result, log_index: i64, log_length: i64| pb::StepState {
        id,
        result: result as i32,
        started_at: Some(super::connect::now()),
        stopped_at: None,
        log_index,
        log_length,
    };
    let first = rpc
        .update(
            id,
            pb::Result::Unspecified,
            vec![step(0, pb::Result::Success, 0, 3)],
            &[("a", "1")],
        )
        .unwrap();
    assert_eq!(first.sent_outputs, vec!["a"]);
    assert_eq!(answered(&first), pb::Result::Unspecified);
    let second = rpc
        .update(
            id,
            pb::Result::Unspecified,
            vec![
                // Every started step again: one left out would be Running again.
                step(0, pb::Result::Success, 0, 3),
                step(1, pb::Result::Unspecified, 3, 2),
                step(5, pb::Result::Success, 9, 9),
            ],
            &[("a", "2"), ("b", "3")],
        )
        .unwrap();
    assert_eq!(second.sent_outputs, vec!["a", "b"]);
    let view = fake.task(id).unwrap();
    assert_eq!(view.outputs["a"], "1", "the first value wins");
    assert_eq!(view.outputs["b"], "3");
    assert_eq!(
        view.ignored_outputs,
        vec![("a".to_string(), "2".to_string())]
    );
    assert_eq!(
        view.steps.keys().copied().collect::<Vec<_>>(),
        vec![0, 1],
        "step 5 is not in the payload"
    );
    assert_eq!(view.steps[&0].result, pb::Result::Success);
    assert_eq!(
        (view.steps[&1].log_index, view.steps[&1].log_length),
        (3, 2)
    );
    assert_eq!(view.heartbeats, 2);

    assert_eq!(
        rpc.log(id, 0, &["s0-a", "s0-b", "s0-c", "s1-a", "s1-b"], false)
            .unwrap(),
        5
    );
    assert_eq!(fake.task(id).unwrap().step_log(1), vec!["s1-a", "s1-b"]);
    assert!(fake.task(id).unwrap().finished_at.is_none());
    let last = rpc.update(id, pb::Result::Success, vec![], &[]).unwrap();
    assert_eq!(answered(&last), pb::Result::Success);
    assert!(fake.task(id).unwrap().finished_at.is_some());
    assert_eq!(
        fake.task(id).unwrap().status,
        TaskStatus::Done(pb::Result::Success)
    );
    // A done task changes no more; the answer keeps the stored result.
    let again = rpc.update(id, pb::Result::Failure, vec![], &[]).unwrap();
    assert_eq!(answered(&again), pb::Result::Success);
    let view = fake.task(id).unwrap();
    assert_eq!(view.status, TaskStatus::Done(pb::Result::Success));
    assert_eq!(view.reported_result, Some(pb::Result::Failure));
}

#[test]
fn cancellation_reaches_the_runner_in_the_update_task_answer() {
    // A runner without the `cancelling` capability: the task ends at once.
    let (fake, rpc) = fake_and_runner(&["linux"]);
    let id = fake.enqueue_task(TaskSpec::new(&["linux"], &payload(1)));
    rpc.fetch(0).unwrap().task.unwrap();
    assert_eq!(
        answered(
            &rpc.update(id, pb::Result::Unspecified, vec![], &[])
                .unwrap()
        ),
        pb::Result::Unspecified
    );
    assert!(fake.cancel_task(id));
    assert_eq!(
        fake.task(id).unwrap().status,
        TaskStatus::Done(pb::Result::Cancelled)
    );
    let heartbeat = rpc
        .update(id, pb::Result::Unspecified, vec![], &[])
        .unwrap();
    assert_eq!(answered(&heartbeat), pb::Result::Cancelled);
    let last = rpc.update(id, pb::Result::Failure, vec![], &[]).unwrap();
    assert_eq!(answered(&last), pb::Result::Cancelled);
    assert_eq!(
        fake.task(id).unwrap().reported_result,
        Some(pb::Result::Failure)
    );
    assert!(!fake.cancel_task(id), "already done");

    // A runner that declared `cancelling`: the task is Cancelling until its final report.
    let mut rpc2 = Rpc::new(&fake);
    rpc2.register("runner-2", &["gpu"], false);
    rpc2.declare(&["gpu"], &["cancelling"]);
    let id2 = fake.enqueue_task(TaskSpec::new(&["gpu"], &payload(2)));
    assert_eq!(rpc2.fetch(0).unwrap().task.unwrap().id, id2);
    assert!(fake.cancel_task(id2));
    assert_eq!(fake.task(id2).unwrap().status, TaskStatus::Cancelling);
    let step = pb::StepState {
        id: 1,
        result: pb::Result::Success as i32,
        ..Default::default()
    };
    let heartbeat = rpc2
        .update(id2, pb::Result::Unspecified, vec![step], &[])
        .unwrap();
    assert_eq!(answered(&heartbeat), pb::Result::Cancelled);
    assert_eq!(
        fake.task(id2).unwrap().steps[&1].result,
        pb::Result::Success,
        "still stored while cancelling"
    );
    let last = rpc2.update(id2, pb::Result::Success, vec![], &[]).unwrap();
    assert_eq!(answered(&last), pb::Result::Cancelled);
    assert_eq!(
        fake.task(id2).unwrap().status,
        TaskStatus::Done(pb::Result::Cancelled)
    );

    // A waiting task cancelled is never handed out.
    let id3 = fake.enqueue_task(TaskSpec::new(&["gpu"], &payload(1)));
    assert!(fake.cancel_task(id3));
    assert!(rpc2.fetch(0).unwrap().task.is_none());
}

#[test]
fn bad_tokens_are_unauthenticated_wrapped_in_unknown_as_gitea_does() {
    let (fake, mut rpc) = fake_and_runner(&["linux"]);
    let mut stranger = Rpc::new(&fake);
    let refused = stranger
        .call::<_, pb::RegisterResponse>(
            Method::Register,
            &pb::RegisterRequest {
                name: "x".into(),
                token: "wrong".into(),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!((refused.status, refused.code.as_str()), (500, "unknown"));
    assert_eq!(refused.message, "runner registration token not found");
    let empty = stranger
        .call::<_, pb::RegisterResponse>(Method::Register, &pb::RegisterRequest::default())
        .unwrap_err();
    assert!(empty.message.contains("InvalidArgument"), "{empty:?}");

    let unauthenticated = "rpc error: code = Unauthenticated desc = unregistered runner";
    let missing = stranger.fetch(0).unwrap_err();
    assert_eq!(
        (
            missing.status,
            missing.code.as_str(),
            missing.message.as_str()
        ),
        (500, "unknown", unauthenticated)
    );
    stranger.uuid = rpc.uuid.clone();
    stranger.token = Some("0".repeat(40));
    assert_eq!(stranger.fetch(0).unwrap_err().message, unauthenticated);
    assert!(rpc.fetch(0).is_ok());
    // A deleted runner's token stops working.
    assert!(fake.delete_runner(rpc.uuid.as_deref().unwrap()));
    assert_eq!(rpc.fetch(0).unwrap_err().message, unauthenticated);
    // A revoked registration token registers no more runners.
    fake.add_registration_token("second");
    assert!(fake.revoke_registration_token(FakeGitea::REGISTRATION_TOKEN));
    let late = rpc
        .call::<_, pb::RegisterResponse>(
            Method::Register,
            &pb::RegisterRequest {
                name: "y".into(),
                token: FakeGitea::REGISTRATION_TOKEN.into(),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(late.message, "runner registration token not found");
    rpc.uuid = None;
    let ok: pb::RegisterResponse = rpc
        .call(
            Method::Register,
            &pb::RegisterRequest {
                name: "y".into(),
                token: "second".into(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        fake.runner(&ok.runner.unwrap().uuid)
            .unwrap()
            .registration_token,
        "second"
    );

    // Forgejo-style servers answer proper Connect codes.
    let forgejo = FakeGitea::start(FakeGiteaOptions {
        auth_errors: AuthErrorStyle::Connect,
        ..Default::default()
    });
    let err = Rpc::new(&forgejo).fetch(0).unwrap_err();
    assert_eq!(
        (err.status, err.code.as_str(), err.message.as_str()),
        (401, "unauthenticated", "unregistered runner")
    );
}

#[test]
fn ephemeral_runner_gets_one_task_and_is_deleted_when_it_ends() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let mut rpc = Rpc::new(&fake);
    let runner = rpc.register("ephemeral", &["linux"], true);
    assert!(runner.ephemeral);
    let first = fake.enqueue_task(TaskSpec::new(&["linux"], &payload(1)));
    let second = fake.enqueue_task(TaskSpec::new(&["linux"], &payload(1)));
    assert_eq!(rpc.fetch(0).unwrap().task.unwrap().id, first);
    assert!(
        rpc.fetch(0).unwrap().task.is_none(),
        "one task per ephemeral runner"
    );
    assert_eq!(rpc.log(first, 0, &["done"], true).unwrap(), 1);
    let heartbeat = rpc
        .update(first, pb::Result::Unspecified, vec![], &[])
        .unwrap();
    assert_eq!(answered(&heartbeat), pb::Result::Unspecified);
    assert!(!fake.runner(&runner.uuid).unwrap().deleted);
    let last = rpc.update(first, pb::Result::Success, vec![], &[]).unwrap();
    assert_eq!(
        answered(&last),
        pb::Result::Success,
        "the final report itself is answered"
    );
    assert!(fake.runner(&runner.uuid).unwrap().deleted);
    let gone = rpc.fetch(0).unwrap_err();
    assert!(gone.message.contains("Unauthenticated"), "{gone:?}");
    assert!(rpc.update(first, pb::Result::Success, vec![], &[]).is_err());
    assert_eq!(fake.task(second).unwrap().status, TaskStatus::Waiting);
}

#[test]
fn task_spec_carries_gitea_context_and_tokens_and_heartbeat_gaps_are_measured() {
    let (fake, rpc) = fake_and_runner(&["linux"]);
    let spec = fake.task_spec(&["linux"], &payload(1));
    let token = spec.secrets["GITHUB_TOKEN"].clone();
    assert_eq!(token.len(), 40);
    assert_eq!(spec.secrets["GITEA_TOKEN"], token);
    let id = fake.enqueue_task(spec);
    let task = rpc.fetch(0).unwrap().task.unwrap();
    let context = serde_json::to_value(task.context.unwrap()).unwrap();
    assert_eq!(context["job"], "build", "the payload's job id");
    assert_eq!(context["run_id"], id.to_string());
    assert_eq!(context["token"], token);
    assert_eq!(context["repository"], harness::fake_gitea::REPOSITORY);
    assert_eq!(context["sha"], harness::fake_gitea::SHA);
    assert_eq!(
        context["event"]["head_commit"]["id"],
        harness::fake_gitea::SHA
    );
    // The instance's ROOT_URL, not the address the runner reaches it by.
    let root = FakeGitea::ROOT_URL.trim_end_matches('/');
    assert_eq!(context["server_url"], root);
    assert_eq!(context["api_url"], format!("{root}/api/v1"));
    assert_eq!(context["ref_protected"], false);

    std::thread::sleep(std::time::Duration::from_millis(300));
    rpc.update(id, pb::Result::Unspecified, vec![], &[])
        .unwrap();
    rpc.update(id, pb::Result::Success, vec![], &[]).unwrap();
    let silence = fake.task(id).unwrap().longest_silence;
    assert!(
        silence >= std::time::Duration::from_millis(300),
        "{silence:?}"
    );
    assert!(silence < std::time::Duration::from_secs(5), "{silence:?}");
}

/// Gitea's `UpdateTaskByState`: a step an UpdateTask leaves out has no result, so a step
/// that had started is Running again, even after it succeeded.
#[test]
fn a_started_step_left_out_of_an_update_is_running_again() {
    let (fake, rpc) = fake_and_runner(&["linux"]);
    let id = fake.enqueue_task(fake.task_spec(&["linux"], &payload(2)));
    rpc.fetch(0).unwrap();
    let step = |id: i64, result: pb::Result| pb::StepState {
        id,
        result: result as i32,
        started_at: Some(super::connect::now()),
        stopped_at: (result != pb::Result::Unspecified).then(super::connect::now),
        log_index: 0,
        log_length: 0,
    };
    rpc.update(
        id,
        pb::Result::Unspecified,
        vec![step(0, pb::Result::Success)],
        &[],
    )
    .unwrap();
    assert_eq!(fake.task(id).unwrap().steps[&0].result, pb::Result::Success);
    rpc.update(
        id,
        pb::Result::Unspecified,
        vec![step(1, pb::Result::Unspecified)],
        &[],
    )
    .unwrap();
    let task = fake.task(id).unwrap();
    assert_eq!(
        task.steps[&0].result,
        pb::Result::Unspecified,
        "running again"
    );
    assert_eq!(task.steps[&1].result, pb::Result::Unspecified);
}
