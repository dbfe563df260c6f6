//! YAML text to a tree whose every node knows its `line:col`, loaded with serde-saphyr.
