//! `strategy.matrix` expansion with GitHub's `include` / `exclude` rules and the 256-leg limit.
