//! `--json`: one JSON object per event per line, flushed per line, for scripts and the
//! daemon's tests. The shape is `Event`'s serde serialisation (`{"event":"step_finished",...}`).

use std::io::Write;

use hr_engine::events::Event;

/// Writes each event as one line of JSON.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonRenderer;

impl JsonRenderer {
    pub fn handle(&mut self, event: &Event, out: &mut dyn Write) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        out.write_all(&line)?;
        out.flush()
    }
}
