//! Feeds arbitrary text, line by line, to the engine's workflow-command parser
//! (`::name k=v::message`, `::stop-commands::`, `::add-mask::` ...), as a step's output
//! reaches it. Any panic or hang is a bug; lines that are not commands are expected.
#![no_main]

use hr_engine::commands::CommandParser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parser = CommandParser::new();
    for line in text.split('\n') {
        let _ = parser.parse_line(line);
    }
});
