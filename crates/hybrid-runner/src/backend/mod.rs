//! Where a job's steps run besides this host: [`pod`], a pod of the job's own namespace.
//! Host processes live in the `hr_process` crate.

pub mod pod;
