//! A minimal Connect unary client for these tests (the product's own client is what the
//! daemon tests exercise), and helpers to register runners and build messages.

use std::time::{Duration, SystemTime};

use harness::fake_gitea::{FakeGitea, Method, pb};
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A Connect error as answered: HTTP status, and the JSON body's `code` and `message`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// Talks to one fake as one runner (after [`Rpc::register`]).
#[derive(Debug, Clone)]
pub struct Rpc {
    http: reqwest::blocking::Client,
    base: String,
    pub uuid: Option<String>,
    pub token: Option<String>,
    /// Bodies in `application/json` instead of `application/proto`.
    pub json: bool,
}

impl Rpc {
    pub fn new(fake: &FakeGitea) -> Rpc {
        harness::install_crypto_provider();
        Rpc {
            http: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: format!("{}/api/actions", fake.url()),
            uuid: None,
            token: None,
            json: false,
        }
    }

    /// A raw POST of `body` to `method` with `content_type`, with this runner's headers.
    pub fn post(
        &self,
        method: Method,
        content_type: &str,
        body: Vec<u8>,
    ) -> reqwest::Result<reqwest::blocking::Response> {
        let mut request = self
            .http
            .post(format!("{}{}", self.base, method.procedure()))
            .header("content-type", content_type)
            .header("connect-protocol-version", "1")
            .header("user-agent", "fake-gitea-tests/1");
        if let Some(uuid) = &self.uuid {
            request = request.header("x-runner-uuid", uuid);
        }
        if let Some(token) = &self.token {
            request = request.header("x-runner-token", token);
        }
        request.body(body).send()
    }

    /// One unary call, encoded as proto or JSON per [`Rpc::json`].
    pub fn call<Req, Resp>(&self, method: Method, req: &Req) -> Result<Resp, ConnectError>
    where
        Req: Message + Serialize,
        Resp: Message + Default + DeserializeOwned,
    {
        let (content_type, body) = if self.json {
            ("application/json", serde_json::to_vec(req).unwrap())
        } else {
            ("application/proto", req.encode_to_vec())
        };
        let response = self.post(method, content_type, body).unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().unwrap();
        if status != 200 {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err(ConnectError {
                status,
                code: v["code"].as_str().unwrap_or_default().to_string(),
                message: v["message"].as_str().unwrap_or_default().to_string(),
            });
        }
        if self.json {
            Ok(serde_json::from_slice(&bytes).unwrap())
        } else {
            Ok(Resp::decode(bytes.as_ref()).unwrap())
        }
    }

    /// Registers with the default token and takes the runner's identity.
    pub fn register(&mut self, name: &str, labels: &[&str], ephemeral: bool) -> pb::Runner {
        let response: pb::RegisterResponse = self
            .call(
                Method::Register,
                &pb::RegisterRequest {
                    name: name.to_string(),
                    token: FakeGitea::REGISTRATION_TOKEN.to_string(),
                    version: "v0.1.0".to_string(),
                    labels: strings(labels),
                    ephemeral,
                    capabilities: vec![],
                    ..Default::default()
                },
            )
            .unwrap();
        let runner = response.runner.unwrap();
        self.uuid = Some(runner.uuid.clone());
        self.token = Some(runner.token.clone());
        runner
    }

    pub fn declare(&self, labels: &[&str], capabilities: &[&str]) -> pb::Runner {
        let response: pb::DeclareResponse = self
            .call(
                Method::Declare,
                &pb::DeclareRequest {
                    version: "v0.2.0".to_string(),
                    labels: strings(labels),
                    capabilities: strings(capabilities),
                },
            )
            .unwrap();
        response.runner.unwrap()
    }

    pub fn fetch(&self, tasks_version: i64) -> Result<pb::FetchTaskResponse, ConnectError> {
        self.call(Method::FetchTask, &pb::FetchTaskRequest { tasks_version })
    }

    pub fn log(
        &self,
        task_id: i64,
        index: i64,
        rows: &[&str],
        no_more: bool,
    ) -> Result<i64, ConnectError> {
        let response: pb::UpdateLogResponse = self.call(
            Method::UpdateLog,
            &pb::UpdateLogRequest {
                task_id,
                index,
                rows: rows
                    .iter()
                    .map(|r| pb::LogRow {
                        time: Some(now()),
                        content: r.to_string(),
                    })
                    .collect(),
                no_more,
            },
        )?;
        Ok(response.ack_index)
    }

    /// An UpdateTask with `result`, `steps` and `outputs`.
    pub fn update(
        &self,
        task_id: i64,
        result: pb::Result,
        steps: Vec<pb::StepState>,
        outputs: &[(&str, &str)],
    ) -> Result<pb::UpdateTaskResponse, ConnectError> {
        self.call(
            Method::UpdateTask,
            &pb::UpdateTaskRequest {
                state: Some(pb::TaskState {
                    id: task_id,
                    result: result as i32,
                    started_at: Some(now()),
                    stopped_at: (result != pb::Result::Unspecified).then(now),
                    steps,
                }),
                outputs: outputs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
        )
    }
}

pub fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

pub fn now() -> pb::Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    pb::Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// The result an UpdateTask answer carries.
pub fn answered(response: &pb::UpdateTaskResponse) -> pb::Result {
    pb::Result::try_from(response.state.as_ref().unwrap().result).unwrap()
}

/// A one-job payload with `steps` run steps.
pub fn payload(steps: usize) -> String {
    let mut yaml =
        String::from("name: ci\non: push\njobs:\n  build:\n    runs-on: linux\n    steps:\n");
    for i in 0..steps {
        yaml.push_str(&format!("      - run: echo step {i}\n"));
    }
    yaml
}

/// A fake with the default options, and a runner registered and declared with `labels`.
pub fn fake_and_runner(labels: &[&str]) -> (FakeGitea, Rpc) {
    let fake = FakeGitea::start(Default::default());
    let mut rpc = Rpc::new(&fake);
    rpc.register("runner-1", labels, false);
    rpc.declare(labels, &[]);
    (fake, rpc)
}
