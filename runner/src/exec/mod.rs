//! Running a job (temporary: only the pieces that need no engine yet).

pub mod commands;
pub mod env_files;
pub mod mask;
