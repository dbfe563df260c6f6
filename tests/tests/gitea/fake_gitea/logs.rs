//! UpdateLog's ack algorithm, JSON bodies, and the HTTP details (gzip, routing, media types).

use std::io::{Read, Write};

use harness::fake_gitea::{FakeGitea, FakeGiteaOptions, Method, TaskSpec, pb};
use serde_json::{Value, json};

use super::connect::{Rpc, fake_and_runner, payload};

#[test]
fn update_log_refuses_a_gap_and_deduplicates_an_overlap() {
    let (fake, rpc) = fake_and_runner(&["linux"]);
    let id = fake.enqueue_task(TaskSpec::new(&["linux"], &payload(1)));
    rpc.fetch(0).unwrap().task.unwrap();
    assert_eq!(rpc.log(id, 0, &["a", "b", "c"], false).unwrap(), 3);
    // A gap: silently refused, the answer is the unchanged ack index.
    assert_eq!(rpc.log(id, 5, &["f", "g"], false).unwrap(), 3);
    // An overlap: only the new rows are taken.
    assert_eq!(rpc.log(id, 2, &["c", "d", "e"], false).unwrap(), 5);
    // Rows all stored already: nothing taken.
    assert_eq!(rpc.log(id, 0, &["a", "b"], false).unwrap(), 5);
    // An empty final call does not archive (old Gitea), the sentinel row does.
    assert_eq!(rpc.log(id, 5, &[], true).unwrap(), 5);
    assert!(!fake.task(id).unwrap().log_closed);
    assert_eq!(rpc.log(id, 5, &[""], true).unwrap(), 6);
    let view = fake.task(id).unwrap();
    assert!(view.log_closed);
    assert_eq!(view.log_lines(), vec!["a", "b", "c", "d", "e", ""]);
    assert_eq!(
        view.log.iter().map(|l| l.index).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4, 5]
    );
    assert!(
        view.log
            .iter()
            .all(|l| l.time.is_some() && l.time.unwrap() <= l.stored_at)
    );
    assert_eq!(view.log_gaps_refused, 1);
    assert_eq!(view.log_rows_resent, 3);
    // Archived: new rows are refused with AlreadyExists (wrapped as Gitea does).
    let err = rpc.log(id, 6, &["late"], false).unwrap_err();
    assert!(err.message.contains("AlreadyExists"), "{err:?}");
    // Another runner cannot write to the task.
    let mut other = Rpc::new(&fake);
    other.register("other", &["linux"], false);
    let err = other.log(id, 6, &["x"], false).unwrap_err();
    assert!(err.message.contains("invalid runner for task"), "{err:?}");

    // Newer Gitea archives on an empty final call when told to.
    let new = FakeGitea::start(FakeGiteaOptions {
        empty_final_log_closes: true,
        ..Default::default()
    });
    let mut rpc = Rpc::new(&new);
    rpc.register("r", &["linux"], false);
    let id = new.enqueue_task(TaskSpec::new(&["linux"], &payload(1)));
    rpc.fetch(0).unwrap().task.unwrap();
    assert_eq!(rpc.log(id, 0, &[], true).unwrap(), 0);
    assert!(new.task(id).unwrap().log_closed);
}

#[test]
fn json_bodies_follow_the_proto3_json_mapping() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let rpc = Rpc::new(&fake);
    let call = |rpc: &Rpc, method: Method, body: Value| -> (u16, Value) {
        let response = rpc
            .post(method, "application/json", body.to_string().into_bytes())
            .unwrap();
        assert_eq!(response.headers()["content-type"], "application/json");
        let status = response.status().as_u16();
        (status, response.json().unwrap())
    };
    assert_eq!(
        call(&rpc, Method::Ping, json!({"data": "runner"})).1,
        json!({"data": "Hello, runner!"})
    );
    let (status, registered) = call(
        &rpc,
        Method::Register,
        json!({"name": "json-runner", "token": FakeGitea::REGISTRATION_TOKEN, "labels": ["linux"], "ephemeral": false}),
    );
    assert_eq!(status, 200, "{registered}");
    assert_eq!(registered["runner"]["id"], "1", "int64 as a string");
    assert_eq!(
        registered["runner"]["status"], "RUNNER_STATUS_IDLE",
        "enums by name"
    );
    let mut rpc = rpc;
    rpc.uuid = registered["runner"]["uuid"].as_str().map(str::to_string);
    rpc.token = registered["runner"]["token"].as_str().map(str::to_string);
    let mut spec = TaskSpec::new(&["linux"], &payload(1));
    spec.context = json!({"run_id": "5", "nested": {"n": 1.5}});
    let id = fake.enqueue_task(spec);
    let (_, fetched) = call(&rpc, Method::FetchTask, json!({"tasksVersion": "0"}));
    assert_eq!(fetched["tasksVersion"], fake.tasks_version().to_string());
    assert_eq!(fetched["task"]["id"], id.to_string());
    assert_eq!(
        fetched["task"]["context"],
        json!({"run_id": "5", "nested": {"n": 1.5}})
    );
    let b64 = fetched["task"]["workflowPayload"].as_str().unwrap();
    assert!(b64.starts_with("bmFtZTog"), "base64 of `name: `: {b64}");

    let (_, acked) = call(
        &rpc,
        Method::UpdateLog,
        json!({"taskId": id.to_string(), "index": "0", "rows": [{"time": "2026-11-23T14:00:00Z", "content": "hello"}], "noMore": true}),
    );
    assert_eq!(acked, json!({"ackIndex": "1"}));
    let (_, updated) = call(
        &rpc,
        Method::UpdateTask,
        json!({"state": {"id": id.to_string(), "result": "RESULT_SUCCESS", "steps": [{"id": "0", "result": "RESULT_SUCCESS", "logIndex": "0", "logLength": "1"}]}, "outputs": {"k": "v"}}),
    );
    assert_eq!(updated["state"]["result"], "RESULT_SUCCESS");
    assert_eq!(updated["sentOutputs"], json!(["k"]));
    let view = fake.task(id).unwrap();
    assert_eq!(view.log_lines(), vec!["hello"]);
    assert_eq!(view.steps[&0].log_length, 1);
    assert_eq!(view.result(), Some(pb::Result::Success));
    // The recorded request bodies are proto3 JSON whatever the codec was.
    let logged = fake.requests_of(Method::UpdateLog);
    assert_eq!(
        logged[0].body.as_ref().unwrap()["rows"][0]["content"],
        "hello"
    );
    assert_eq!(logged[0].content_type.as_deref(), Some("application/json"));
}

#[test]
fn http_details_gzip_routing_and_media_types() {
    let (fake, rpc) = fake_and_runner(&["linux"]);
    let big = payload(200);
    assert!(big.len() > 1024);
    fake.enqueue_task(TaskSpec::new(&["linux"], &big));
    // A gzip request body is accepted; a big answer comes gzipped when gzip is accepted.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(&prost::Message::encode_to_vec(&pb::FetchTaskRequest {
            tasks_version: 0,
        }))
        .unwrap();
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let response = http
        .post(fake.procedure_url(Method::FetchTask))
        .header("content-type", "application/proto")
        .header("content-encoding", "gzip")
        .header("accept-encoding", "gzip")
        .header("x-runner-uuid", rpc.uuid.as_deref().unwrap())
        .header("x-runner-token", rpc.token.as_deref().unwrap())
        .body(encoder.finish().unwrap())
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(response.bytes().unwrap().as_ref())
        .read_to_end(&mut plain)
        .unwrap();
    let fetched = <pb::FetchTaskResponse as prost::Message>::decode(plain.as_slice()).unwrap();
    assert_eq!(
        fetched.task.unwrap().workflow_payload.unwrap(),
        big.as_bytes()
    );
    // Small answers are not compressed.
    let small = rpc
        .post(Method::FetchTask, "application/proto", vec![])
        .unwrap();
    assert!(small.headers().get("content-encoding").is_none());

    let get = http.get(fake.procedure_url(Method::Ping)).send().unwrap();
    assert_eq!(get.status(), 405, "only POST is routed");
    let text = rpc
        .post(Method::Ping, "text/plain", b"hi".to_vec())
        .unwrap();
    assert_eq!(text.status(), 415);
    let unknown = http
        .post(format!(
            "{}/api/actions/runner.v1.RunnerService/Nope",
            fake.url()
        ))
        .header("content-type", "application/proto")
        .send()
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().unwrap()["code"], "unimplemented");
    let garbage = rpc
        .post(
            Method::UpdateLog,
            "application/proto",
            vec![0xff, 0xff, 0xff],
        )
        .unwrap();
    assert_eq!(garbage.status(), 400, "connect-go's own decode error");
    assert_eq!(garbage.json::<Value>().unwrap()["code"], "invalid_argument");

    // Newer Gitea names its capabilities in Declare answers.
    let newer = FakeGitea::start(FakeGiteaOptions {
        declare_capabilities: Some("job-summary".into()),
        ..Default::default()
    });
    let mut runner = Rpc::new(&newer);
    let legacy: pb::RegisterResponse = runner
        .call(
            Method::Register,
            #[allow(deprecated)]
            &pb::RegisterRequest {
                name: "old".into(),
                token: FakeGitea::REGISTRATION_TOKEN.into(),
                agent_labels: vec!["linux".into()],
                custom_labels: vec!["big".into()],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        legacy.runner.as_ref().unwrap().labels,
        vec!["linux", "big"],
        "pre-1.20 label fields"
    );
    runner.uuid = legacy.runner.as_ref().map(|r| r.uuid.clone());
    runner.token = legacy.runner.map(|r| r.token);
    let declared = runner
        .post(
            Method::Declare,
            "application/proto",
            prost::Message::encode_to_vec(&pb::DeclareRequest::default()),
        )
        .unwrap();
    assert_eq!(
        declared.headers()["x-gitea-actions-capabilities"],
        "job-summary"
    );

    // Every call is recorded, with its headers and outcome.
    let requests = fake.requests();
    let register = &requests[0];
    assert_eq!(register.method, Some(Method::Register));
    assert!(register.runner_uuid.is_none() && !register.runner_token_sent);
    assert_eq!(register.body.as_ref().unwrap()["name"], "runner-1");
    assert_eq!(register.user_agent.as_deref(), Some("fake-gitea-tests/1"));
    let gzipped = &requests[2];
    assert_eq!(
        (gzipped.method, gzipped.status),
        (Some(Method::FetchTask), 200)
    );
    assert_eq!(gzipped.content_encoding.as_deref(), Some("gzip"));
    assert_eq!(gzipped.runner_uuid, rpc.uuid);
    assert!(gzipped.runner_token_sent);
    assert_eq!(requests.last().unwrap().status, 400);
    assert_eq!(
        requests.last().unwrap().error_code.as_deref(),
        Some("invalid_argument")
    );
}
