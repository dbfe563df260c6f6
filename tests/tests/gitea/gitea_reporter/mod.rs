//! The task reporter (`hr_gitea::report`) against the fake Gitea over real HTTP, as a
//! runner registered with the fake's registration token: events fed by hand through an
//! `EventSink`, and the server's stored log, steps, outputs and recorded calls checked:
//! every row exactly once and in order (also under random 500s, cut connections, lagging
//! and partial acks), outputs resent until acknowledged, the server's cancel noticed
//! within a heartbeat, the final `no_more` log before the final state, an empty task
//! archived, and a task left by a killed reporter finished by `recover`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod delivery;
mod recovery;
mod state;
