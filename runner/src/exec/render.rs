//! STAND-IN until the renderers land (helper branch `render`).
use super::events::Event;
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub color: bool,
    pub debug: bool,
    pub prefix_jobs: bool,
    pub nested_in_actions: bool,
}
#[derive(Debug)]
pub struct HumanRenderer {
    options: RenderOptions,
}
impl HumanRenderer {
    pub fn new(options: RenderOptions) -> Self {
        HumanRenderer { options }
    }
    pub fn handle(&mut self, event: &Event, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let _ = &self.options;
        writeln!(out, "{event:?}")
    }
    pub fn finish(&mut self, _out: &mut dyn std::io::Write) -> std::io::Result<()> {
        Ok(())
    }
}
#[derive(Debug)]
pub struct JsonRenderer;
impl JsonRenderer {
    pub fn handle(&mut self, event: &Event, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        writeln!(out, "{}", serde_json::to_string(event).unwrap_or_default())
    }
}
pub fn color_wanted() -> bool {
    false
}
