//! STAND-IN until the masker lands (helper branch `wcmd`).
#[derive(Debug, Clone, Default)]
pub struct Masker {
    values: Vec<String>,
}
impl Masker {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, value: &str) {
        for l in value.lines() {
            if !l.trim().is_empty() {
                self.values.push(l.to_string());
            }
        }
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    pub fn mask<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        let mut s = std::borrow::Cow::Borrowed(text);
        for v in &self.values {
            if s.contains(v.as_str()) {
                s = std::borrow::Cow::Owned(s.replace(v.as_str(), "***"));
            }
        }
        s
    }
}
