//! The faults a test can inject into the fake Gitea, at start or while it runs: Connect
//! errors, plain HTTP errors, dropped connections (before or after the call took effect),
//! slow answers, lagging log acknowledgements, and a random share of failing calls.

use std::time::Duration;

/// The RPCs the fake serves (`ping.v1.PingService/Ping` and the five of
/// `runner.v1.RunnerService`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Ping,
    Register,
    Declare,
    FetchTask,
    UpdateTask,
    UpdateLog,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::Ping,
        Method::Register,
        Method::Declare,
        Method::FetchTask,
        Method::UpdateTask,
        Method::UpdateLog,
    ];

    /// The method's name, e.g. `FetchTask`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Ping => "Ping",
            Method::Register => "Register",
            Method::Declare => "Declare",
            Method::FetchTask => "FetchTask",
            Method::UpdateTask => "UpdateTask",
            Method::UpdateLog => "UpdateLog",
        }
    }

    /// The Connect procedure path under `/api/actions`, e.g.
    /// `/runner.v1.RunnerService/FetchTask`.
    pub fn procedure(self) -> String {
        match self {
            Method::Ping => "/ping.v1.PingService/Ping".to_string(),
            m => format!("/runner.v1.RunnerService/{}", m.name()),
        }
    }

    /// The method a procedure path (`/{service}/{method}`) names.
    pub fn from_procedure(service: &str, method: &str) -> Option<Method> {
        match (service, method) {
            ("ping.v1.PingService", "Ping") => Some(Method::Ping),
            ("runner.v1.RunnerService", m) => Method::ALL
                .into_iter()
                .find(|x| *x != Method::Ping && x.name() == m),
            _ => None,
        }
    }
}

/// What happens to a call hit by a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// A Connect error: HTTP `http_status` with the JSON body
    /// `{"code": code, "message": message}`. The call has no effect.
    ConnectError {
        code: String,
        http_status: u16,
        message: String,
    },
    /// The call is refused as unauthenticated, exactly as the server answers a bad runner
    /// token in its [`super::AuthErrorStyle`] (Gitea: `unknown` / 500 wrapping
    /// `Unauthenticated`; Forgejo: `unauthenticated` / 401). The call has no effect.
    Unauthenticated,
    /// A bare HTTP status (e.g. 500, 502, 503) with a plain-text body, as a proxy in front
    /// of Gitea answers. The call has no effect.
    HttpStatus(u16),
    /// The connection is cut before the call takes effect: the answer's headers announce a
    /// body that never fully arrives.
    DropBeforeHandling,
    /// The call takes effect (a task is assigned, log rows are stored), then the
    /// connection is cut mid-answer, so the client never learns the result.
    DropAfterHandling,
    /// The call takes effect, and its answer is sent after this delay.
    Delay(Duration),
    /// `UpdateLog` only (no effect on other methods): the rows are stored as usual but the
    /// answer's `ack_index` is this many rows lower (never below the request's `index`),
    /// so the client resends rows the server already has; Gitea's overlap rule drops them.
    LogAckLag(i64),
    /// `UpdateLog` only: at most this many rows of the call are stored and acknowledged;
    /// the client must send the rest again.
    LogAcceptAtMost(usize),
}

impl Fault {
    /// A Connect error with `code`, its HTTP status from the Connect protocol's table.
    pub fn connect(code: &str, message: &str) -> Fault {
        Fault::ConnectError {
            code: code.to_string(),
            http_status: connect_http_status(code),
            message: message.to_string(),
        }
    }
}

/// The HTTP status the Connect protocol gives an error code.
pub fn connect_http_status(code: &str) -> u16 {
    match code {
        "canceled" => 499,
        "invalid_argument" | "failed_precondition" | "out_of_range" => 400,
        "deadline_exceeded" => 504,
        "not_found" => 404,
        "already_exists" | "aborted" => 409,
        "permission_denied" => 403,
        "resource_exhausted" => 429,
        "unimplemented" => 501,
        "unavailable" => 503,
        "unauthenticated" => 401,
        _ => 500,
    }
}

/// The next `remaining` calls of `method` meet `fault`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodFault {
    pub method: Method,
    pub remaining: usize,
    pub fault: Fault,
}

/// A share of calls fail at random (deterministically, from the fake's seed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RandomFailures {
    /// 0..=100: the share of matching calls that fail.
    pub percent: u32,
    /// What a failing call gets (usually `Fault::HttpStatus(500)`).
    pub fault: Fault,
    /// The methods concerned; every method except `Ping` and `Register` when empty.
    pub methods: Vec<Method>,
}

/// What goes wrong in the fake Gitea. Set it in [`super::FakeGiteaOptions::faults`] or
/// change it later with [`super::FakeGitea::update_faults`] / [`super::FakeGitea::fail_next`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Consumed in order: the first entry for a call's method with `remaining > 0` applies.
    pub next: Vec<MethodFault>,
    /// Applied to calls no entry of `next` caught.
    pub random: Option<RandomFailures>,
}

impl Faults {
    /// The fault for one call of `method`, consuming it; `roll` is a number in 0..100.
    pub(crate) fn take(&mut self, method: Method, roll: u32) -> Option<Fault> {
        if let Some(hit) = self
            .next
            .iter_mut()
            .find(|f| f.method == method && f.remaining > 0)
        {
            hit.remaining -= 1;
            let fault = hit.fault.clone();
            self.next.retain(|f| f.remaining > 0);
            return Some(fault);
        }
        let random = self.random.as_ref()?;
        let concerned = if random.methods.is_empty() {
            !matches!(method, Method::Ping | Method::Register)
        } else {
            random.methods.contains(&method)
        };
        (concerned && roll < random.percent).then(|| random.fault.clone())
    }
}

/// A small deterministic generator (splitmix64) for runner tokens, UUIDs and random faults.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `len` lowercase hex digits.
    pub(crate) fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len + 16);
        while s.len() < len {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(len);
        s
    }

    /// A version-4-shaped UUID.
    pub(crate) fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }
}
