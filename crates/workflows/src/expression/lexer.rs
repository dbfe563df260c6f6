//! Expression source → tokens, with GitHub's lexing rules: words run to the next
//! boundary character and are then classified (number, keyword, identifier), so
//! `-0xFF`, `1 =2` or `github/workflow` are rejected whole.

use super::number::parse_number;
use super::{ErrorKind, ExprError};

#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    LeftParen,
    RightParen,
    LeftBracket,
    RightBracket,
    Comma,
    Dot,
    Bang,
    BangEqual,
    EqualEqual,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    And,
    Or,
    Star,
    Number(f64),
    String(String),
    Identifier,
    True,
    False,
    Null,
    Eof,
}

/// One token: its kind, its source text, and its 1-based character position.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    pub lexeme: String,
    pub position: usize,
}

impl Token {
    /// The token as error messages quote it: its source text (quotes included for
    /// strings), the end as `EOF`.
    pub fn display(&self) -> String {
        match &self.kind {
            TokenKind::Eof => "EOF".into(),
            _ => self.lexeme.clone(),
        }
    }
}

/// Characters that end a word.
fn is_boundary(c: char) -> bool {
    matches!(
        c,
        '(' | '[' | ')' | ']' | ',' | '.' | '!' | '>' | '<' | '=' | '&' | '|'
    ) || c.is_whitespace()
}

/// `[A-Za-z_][A-Za-z0-9_-]*`
pub fn is_legal_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

struct Lexer<'a> {
    source: &'a str,
    chars: Vec<char>,
    offset: usize,
    start: usize,
    tokens: Vec<Token>,
}

/// Splits `source` into tokens, ending with an [`TokenKind::Eof`] token.
pub fn lex(source: &str) -> Result<Vec<Token>, ExprError> {
    let mut lexer = Lexer {
        source,
        chars: source.chars().collect(),
        offset: 0,
        start: 0,
        tokens: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

impl Lexer<'_> {
    fn run(&mut self) -> Result<(), ExprError> {
        while self.offset < self.chars.len() {
            self.start = self.offset;
            let c = self.chars[self.offset];
            self.offset += 1;
            match c {
                '(' => self.add(TokenKind::LeftParen),
                ')' => self.add(TokenKind::RightParen),
                '[' => self.add(TokenKind::LeftBracket),
                ']' => self.add(TokenKind::RightBracket),
                ',' => self.add(TokenKind::Comma),
                '*' => self.add(TokenKind::Star),
                '.' => {
                    if matches!(
                        self.previous(),
                        Some(
                            TokenKind::Identifier
                                | TokenKind::RightBracket
                                | TokenKind::RightParen
                                | TokenKind::Star
                        )
                    ) {
                        self.add(TokenKind::Dot);
                    } else {
                        self.number()?;
                    }
                }
                '-' | '+' => self.number()?,
                '!' => {
                    let kind = if self.eat('=') {
                        TokenKind::BangEqual
                    } else {
                        TokenKind::Bang
                    };
                    self.add(kind);
                }
                '=' => self.doubled('=', TokenKind::EqualEqual)?,
                '&' => self.doubled('&', TokenKind::And)?,
                '|' => self.doubled('|', TokenKind::Or)?,
                '<' => {
                    let kind = if self.eat('=') {
                        TokenKind::LessEqual
                    } else {
                        TokenKind::Less
                    };
                    self.add(kind);
                }
                '>' => {
                    let kind = if self.eat('=') {
                        TokenKind::GreaterEqual
                    } else {
                        TokenKind::Greater
                    };
                    self.add(kind);
                }
                ' ' | '\t' | '\r' | '\n' => {}
                '\'' => self.string()?,
                c if c.is_ascii_digit() => self.number()?,
                _ => self.word()?,
            }
        }
        self.start = self.offset;
        self.add(TokenKind::Eof);
        Ok(())
    }

    fn previous(&self) -> Option<&TokenKind> {
        self.tokens.last().map(|t| &t.kind)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.offset).copied()
    }

    fn eat(&mut self, expected: char) -> bool {
        if self.peek() == Some(expected) {
            self.offset += 1;
            true
        } else {
            false
        }
    }

    fn lexeme(&self) -> String {
        self.chars[self.start..self.offset].iter().collect()
    }

    fn add(&mut self, kind: TokenKind) {
        let lexeme = self.lexeme();
        self.tokens.push(Token {
            kind,
            lexeme,
            position: self.start + 1,
        });
    }

    fn error(&self, symbol: &str) -> ExprError {
        ExprError {
            kind: ErrorKind::Lexing,
            message: format!("Unexpected symbol: '{symbol}'"),
            position: Some(self.start + 1),
            expression: self.source.to_string(),
        }
    }

    /// `==`, `&&`, `||`; a single `=`, `&` or `|` is read as a (bad) word.
    fn doubled(&mut self, second: char, kind: TokenKind) -> Result<(), ExprError> {
        if self.eat(second) {
            self.add(kind);
            Ok(())
        } else {
            self.word()
        }
    }

    fn number(&mut self) -> Result<(), ExprError> {
        while let Some(c) = self.peek() {
            if is_boundary(c) && c != '.' {
                break;
            }
            self.offset += 1;
        }
        let lexeme = self.lexeme();
        let value = parse_number(&lexeme);
        if value.is_nan() {
            return Err(self.error(&lexeme));
        }
        self.add(TokenKind::Number(value));
        Ok(())
    }

    fn string(&mut self) -> Result<(), ExprError> {
        let mut value = String::new();
        loop {
            match self.peek() {
                None => {
                    let rest: String = self.chars[self.start..].iter().collect();
                    return Err(self.error(&rest));
                }
                Some('\'') => {
                    self.offset += 1;
                    if self.peek() == Some('\'') {
                        value.push('\'');
                        self.offset += 1;
                    } else {
                        break;
                    }
                }
                Some(c) => {
                    value.push(c);
                    self.offset += 1;
                }
            }
        }
        self.add(TokenKind::String(value));
        Ok(())
    }

    fn word(&mut self) -> Result<(), ExprError> {
        while let Some(c) = self.peek() {
            if is_boundary(c) {
                break;
            }
            self.offset += 1;
        }
        let lexeme = self.lexeme();
        let after_dot = matches!(self.previous(), Some(TokenKind::Dot));
        let kind = match lexeme.as_str() {
            _ if after_dot => TokenKind::Identifier,
            "true" => TokenKind::True,
            "false" => TokenKind::False,
            "null" => TokenKind::Null,
            "NaN" => TokenKind::Number(f64::NAN),
            "Infinity" => TokenKind::Number(f64::INFINITY),
            _ => TokenKind::Identifier,
        };
        if !is_legal_identifier(&lexeme) {
            return Err(self.error(&lexeme));
        }
        self.add(kind);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokenKind> {
        lex(src).unwrap().into_iter().map(|t| t.kind).collect()
    }

    fn lex_error(src: &str) -> String {
        let e = lex(src).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Lexing);
        e.to_string()
    }

    #[test]
    fn numbers_and_keywords() {
        assert_eq!(
            kinds("-.5 0xfF true foo.true"),
            vec![
                TokenKind::Number(-0.5),
                TokenKind::Number(255.0),
                TokenKind::True,
                TokenKind::Identifier,
                TokenKind::Dot,
                TokenKind::Identifier,
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn strings_unescape_every_doubled_quote() {
        assert_eq!(
            kinds("'a''b''c'"),
            vec![TokenKind::String("a'b'c".into()), TokenKind::Eof]
        );
    }

    #[test]
    fn bad_words_are_lexing_errors() {
        assert_eq!(
            lex_error("-0xFF"),
            "Unexpected symbol: '-0xFF'. Located at position 1 within expression: -0xFF"
        );
        assert!(lex_error("1 =2 =3").starts_with("Unexpected symbol: '=2'. Located at position 3"));
        assert!(lex_error("'foo").starts_with("Unexpected symbol: ''foo'"));
        assert!(lex_error("\"foo\"").starts_with("Unexpected symbol: '\"foo\"'"));
        assert!(
            lex_error("github/workflow.md").starts_with("Unexpected symbol: 'github/workflow'")
        );
        assert!(
            lex_error("1 && ..github/workflow.md")
                .contains("'..github/workflow.md'. Located at position 6")
        );
    }
}
