//! Loads arbitrary text as a workflow file. Any panic or hang is a bug; diagnostics
//! are expected.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(workflow) = workflows::model::load(text, ".github/workflows/fuzz.yml") {
        let _ = workflows::plan::plan(std::slice::from_ref(&workflow), Some("push"));
    }
});
