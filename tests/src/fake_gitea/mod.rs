//! A loopback fake of Gitea's Actions runner API, for the tests of the Gitea daemon. It
//! serves the six Connect RPCs (`ping.v1.PingService/Ping`, `runner.v1.RunnerService/
//! {Register,Declare,FetchTask,UpdateTask,UpdateLog}`) over plain HTTP on
//! `127.0.0.1:<port>/api/actions/...`, in `application/proto` and `application/json`, with
//! Gitea's server rules (docs/internals/gitea-protocol.md): registration tokens, the
//! `x-runner-uuid`/`x-runner-token` check, `tasks_version`, task assignment by label,
//! UpdateLog's ack algorithm, first-value-wins outputs, cancellation answered in UpdateTask,
//! ephemeral runners deleted after their task.
//!
//! The messages are the product's own generated types
//! (`hr_gitea::proto`, re-exported here as [`pb`]); JSON bodies use their
//! pbjson proto3-JSON mapping.
//!
//! Faults ([`Faults`]) are set in [`FakeGiteaOptions`] or changed while it runs with
//! [`FakeGitea::fail_next`] and [`FakeGitea::update_faults`].
//!
//! The server runs on its own thread and runtime, so [`FakeGitea`] works from plain
//! `#[test]`s and from `#[tokio::test]`s alike; it stops when the value drops.

mod context;
mod faults;
mod routes;
mod state;
mod views;

use crate::loopback::LoopbackServer;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use context::{REPOSITORY, SHA};
pub use faults::{Fault, Faults, Method, MethodFault, RandomFailures, connect_http_status};
pub use views::{
    LogLine, NeedSpec, RecordedRequest, RunnerView, StepView, TaskSpec, TaskStatus, TaskView,
};

use state::Server;

/// The protocol's messages: `runner.v1`, plus `ping.v1`'s and the well-known types used.
pub mod pb {
    pub use hr_gitea::proto::ping::v1::{PingRequest, PingResponse};
    pub use hr_gitea::proto::runner::v1::*;
    pub use hr_gitea::proto::well_known::{Struct, Timestamp};
}

/// How refused calls (bad runner token, unknown registration token, a task of another
/// runner, an archived log) are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthErrorStyle {
    /// As Gitea does: its handlers return gRPC `status` errors, which connect-go flattens to
    /// code `unknown`, HTTP 500, message `rpc error: code = Unauthenticated desc =
    /// unregistered runner`; bare Go errors (unknown registration token) come as `unknown`
    /// with their text.
    #[default]
    GiteaUnknown,
    /// As Forgejo does: proper Connect codes (`unauthenticated` / HTTP 401, etc.).
    Connect,
}

/// How the fake Gitea behaves.
#[derive(Debug, Clone)]
pub struct FakeGiteaOptions {
    /// Registration tokens Register accepts (more with [`FakeGitea::add_registration_token`]).
    pub registration_tokens: Vec<String>,
    pub auth_errors: AuthErrorStyle,
    /// Faults in force from the start.
    pub faults: Faults,
    /// Whether an UpdateLog with `no_more` and no rows archives the log (Gitea after PR
    /// #37631). Off by default, as in older Gitea, which ignores it (runners must send a
    /// sentinel row).
    pub empty_final_log_closes: bool,
    /// The `X-Gitea-Actions-Capabilities` header on Declare answers (e.g. `job-summary`).
    pub declare_capabilities: Option<String>,
    /// Seeds runner UUIDs, tokens and random faults; from the clock when `None`.
    pub seed: Option<u64>,
    /// The instance's `ROOT_URL` (`setting.AppURL`), which task contexts carry as
    /// `server_url`, `api_url` and the repository's URLs. Not the fake's own address by
    /// default, as for a Gitea behind a proxy that runners reach by an inner address: a
    /// runner must use the address it registered with (as act_runner does), and one that
    /// takes the context's URL fails to reach this one (`.invalid` never resolves).
    pub root_url: String,
    /// Forgejo's idempotent FetchTask: a FetchTask carrying the `x-runner-request-key` of
    /// an earlier one that assigned a task (whose answer the runner never got) is answered
    /// with that task again. Off by default: Gitea ignores the header, so such a task
    /// stays assigned to nobody who runs it until the zombie reaper ends it.
    pub redeliver_by_request_key: bool,
    /// What `GET /api/v1/version` answers (`{"version": ...}`, public, as Gitea's
    /// `GetVersion`): Gitea's own version, or Forgejo's `11.0.1+gitea-1.22.0` form.
    pub version: String,
}

impl FakeGiteaOptions {
    /// A Forgejo server: its version names the Gitea version it follows, and FetchTask is
    /// idempotent by request key.
    pub fn forgejo() -> Self {
        FakeGiteaOptions {
            version: "11.0.1+gitea-1.22.0".into(),
            redeliver_by_request_key: true,
            ..FakeGiteaOptions::default()
        }
    }
}

impl Default for FakeGiteaOptions {
    fn default() -> Self {
        FakeGiteaOptions {
            registration_tokens: vec![FakeGitea::REGISTRATION_TOKEN.to_string()],
            auth_errors: AuthErrorStyle::GiteaUnknown,
            faults: Faults::default(),
            empty_final_log_closes: false,
            declare_capabilities: None,
            seed: None,
            root_url: FakeGitea::ROOT_URL.to_string(),
            redeliver_by_request_key: false,
            version: "1.24.0".into(),
        }
    }
}

/// State shared by the HTTP handlers and the test's handle.
#[derive(Debug)]
pub(crate) struct Shared {
    server: Mutex<Server>,
    faults: Mutex<Faults>,
    requests: Mutex<Vec<RecordedRequest>>,
    options: FakeGiteaOptions,
    addr: SocketAddr,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The running fake Gitea. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeGitea {
    shared: Arc<Shared>,
    _server: LoopbackServer,
}

impl FakeGitea {
    /// The registration token the default options accept.
    pub const REGISTRATION_TOKEN: &'static str = "fake-gitea-registration-token";
    /// The default [`FakeGiteaOptions::root_url`].
    pub const ROOT_URL: &'static str = "https://gitea.root-url.invalid/";

    /// Starts the server on a free loopback port.
    pub fn start(options: FakeGiteaOptions) -> FakeGitea {
        let listener = LoopbackServer::bind("fake-gitea");
        let addr = listener.addr();
        let seed = options.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(7, |d| d.as_nanos() as u64)
                ^ u64::from(addr.port())
        });
        let shared = Arc::new(Shared {
            server: Mutex::new(Server::new(
                seed,
                &options.registration_tokens,
                options.empty_final_log_closes,
            )),
            faults: Mutex::new(options.faults.clone()),
            requests: Mutex::default(),
            options,
            addr,
        });
        let server = listener.serve(routes::router(Arc::clone(&shared)));
        FakeGitea {
            shared,
            _server: server,
        }
    }

    /// The instance address, `http://127.0.0.1:<port>` (what `register --instance` takes);
    /// the RPCs live under `{url}/api/actions/`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The full URL of one RPC, e.g. `http://127.0.0.1:p/api/actions/runner.v1.RunnerService/FetchTask`.
    pub fn procedure_url(&self, method: Method) -> String {
        format!("{}/api/actions{}", self.url(), method.procedure())
    }

    /// Register accepts `token` from now on.
    pub fn add_registration_token(&self, token: &str) {
        lock(&self.shared.server).add_registration_token(token);
    }

    /// Register refuses `token` from now on (runners already registered keep working).
    pub fn revoke_registration_token(&self, token: &str) -> bool {
        lock(&self.shared.server).revoke_registration_token(token)
    }

    /// Queues a job for any runner whose labels cover `spec.labels_required`, bumps
    /// `tasks_version`, and returns the task id (1, 2, ...; never reused).
    pub fn enqueue_task(&self, spec: TaskSpec) -> i64 {
        lock(&self.shared.server).enqueue(spec)
    }

    /// A task for `runs-on: labels` running `payload` with the context and secrets Gitea
    /// sends (its `GenerateGiteaContext` and secrets): a push of [`SHA`] to `main` of [`REPOSITORY`] on
    /// this instance, `job` = the payload's job id, `run_id` = the id the next queued task
    /// gets, a fresh 40-hex task token as `token`, `GITHUB_TOKEN` and `GITEA_TOKEN`. Adjust
    /// the fields, then [`Self::enqueue_task`] it.
    pub fn task_spec(&self, labels: &[&str], payload: &str) -> TaskSpec {
        let (run_id, token) = {
            let mut server = lock(&self.shared.server);
            (server.next_task_id(), server.new_token())
        };
        context::gitea_task(
            &self.shared.options.root_url,
            labels,
            payload,
            run_id,
            &token,
        )
    }

    /// A snapshot of a task and everything its runner reported.
    pub fn task(&self, id: i64) -> Option<TaskView> {
        lock(&self.shared.server).task(id)
    }

    /// Whether task `id` is done, whether its log is closed, and how many rows it holds,
    /// without copying its log (for polling a task with a big log).
    pub fn task_progress(&self, id: i64) -> Option<(bool, bool, usize)> {
        lock(&self.shared.server).task_progress(id)
    }

    /// Every task, by id.
    pub fn tasks(&self) -> Vec<TaskView> {
        lock(&self.shared.server).tasks()
    }

    /// Cancels a task as a user would from the web UI (see [`TaskStatus::Cancelling`]): the
    /// runner's next UpdateTask answer carries `RESULT_CANCELLED`. False if it is done or
    /// unknown.
    pub fn cancel_task(&self, id: i64) -> bool {
        lock(&self.shared.server).cancel(id)
    }

    /// The current `tasks_version` (starts at 1, +1 per queued task).
    pub fn tasks_version(&self) -> i64 {
        lock(&self.shared.server).tasks_version()
    }

    /// Every registered runner, in registration order (deleted ones included).
    pub fn runners(&self) -> Vec<RunnerView> {
        lock(&self.shared.server).runners()
    }

    /// One runner by UUID.
    pub fn runner(&self, uuid: &str) -> Option<RunnerView> {
        self.runners().into_iter().find(|r| r.uuid == uuid)
    }

    /// Deletes a task with its run, as deleting the run in Gitea's UI does: from now on
    /// calls about it fail with Gitea's `resource does not exist`. False if unknown.
    pub fn delete_task(&self, id: i64) -> bool {
        lock(&self.shared.server).delete_task(id)
    }

    /// Deletes a runner as an admin would: from now on its calls are unauthenticated.
    pub fn delete_runner(&self, uuid: &str) -> bool {
        lock(&self.shared.server).delete_runner(uuid)
    }

    /// Every call so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The calls of one method so far, in arrival order.
    pub fn requests_of(&self, method: Method) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == Some(method))
            .collect()
    }

    /// Forgets the calls recorded so far.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// The next `count` calls of `method` meet `fault`.
    pub fn fail_next(&self, method: Method, count: usize, fault: Fault) {
        self.update_faults(|f| {
            f.next.push(MethodFault {
                method,
                remaining: count,
                fault,
            })
        });
    }

    /// Changes the faults while the server runs, e.g.
    /// `fake.update_faults(|f| f.random = None)`.
    pub fn update_faults(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut lock(&self.shared.faults));
    }

    /// The faults now in force (entries of `next` are gone once used up).
    pub fn faults(&self) -> Faults {
        lock(&self.shared.faults).clone()
    }

    /// Polls `check` every 20 ms until it gives a value or `timeout` passes.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&FakeGitea) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = check(self) {
                return Some(v);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until task `id` has a final result and its log is closed (or `timeout`).
    pub fn wait_task_finished(&self, id: i64, timeout: Duration) -> Option<TaskView> {
        self.wait_for(timeout, |f| {
            f.task(id).filter(|t| t.is_done() && t.log_closed)
        })
    }
}
