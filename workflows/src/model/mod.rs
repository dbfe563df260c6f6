//! The typed workflow model and its loader: every key of the workflow syntax, every problem a diagnostic.
