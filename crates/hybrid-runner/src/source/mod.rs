//! Where jobs come from: today Gitea/Forgejo's runner protocol (`gitea`).

pub mod gitea;
