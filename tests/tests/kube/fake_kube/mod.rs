#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The fake Kubernetes API server and its kubelet, driven with kube-rs: real Kaniko
//! manifests build and push to a real registry, failures and deadlines end Jobs the way
//! Kubernetes 1.31+ ends them, errors carry real Status bodies, watches stream events,
//! namespaces terminate, and every injected fault shows; apps/v1 workloads roll out,
//! time out, roll back and crash-loop as their controllers and the kubelet make them.

mod api;
mod builds;
mod cluster;
mod container_config;
mod container_rig;
mod containers;
mod ephemeral;
mod exec;
mod helpers;
mod workload_api;
mod workload_images;
mod workload_lifecycle;
mod workload_rig;
mod workload_sets;
mod workloads;
