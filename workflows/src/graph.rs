//! The `needs` graph: stages of jobs that can run together, cycles, unknown needs.
