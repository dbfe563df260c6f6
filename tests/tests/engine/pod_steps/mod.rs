//! Jobs whose `runs-on` picks a `kubernetes` label run their `run:` steps in a pod of the
//! job's own namespace, against the loopback fake API server (`harness::fake_kube`, whose
//! `pods/exec` runs each command in a per-pod sandbox on this host; needs root, `unshare`,
//! `nsenter`, else the tests say so and pass): env, `GITHUB_ENV` / `GITHUB_OUTPUT` /
//! `GITHUB_PATH` across steps, working directories, masking, a failing step's exit code,
//! `always()`, cancellation mid-step, a pod that cannot start, the namespace deleted on
//! every path, every manifest valid, and no secret in any request URL.
//!
//! `common`: the rig (fake API server, task settings) and helpers; `steps`: `run:` steps,
//! file commands, cancel, timeout, background processes; `lifecycle`: the pod and its
//! namespace on every path, RBAC and `check`; `actions`: checkout, JavaScript and
//! composite actions, image builds; `containers`: `container:`; `services`: services as sidecars; `protocols`: all of it on a server that speaks only
//! `v4.channel.k8s.io` (no stdin close).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actions;
mod common;
mod containers;
mod docker_actions;
mod lifecycle;
mod protocols;
mod services;
mod steps;
