//! Tokens → syntax tree, by precedence climbing with GitHub's precedence
//! (`||` < `&&` < `==` `!=` < `<` `<=` `>` `>=` < `!` < `.` `[]` `()`), its named-value and
//! function checks, and its depth limit of 50.

use super::functions::Function;
use super::lexer::{Token, TokenKind};
use super::value::Value;
use super::{Allowed, ErrorKind, ExprError};

/// The deepest nesting GitHub accepts.
pub const MAX_DEPTH: usize = 50;

/// One node of the syntax tree, with the 1-based character position of the token that
/// introduced it.
#[derive(Debug, Clone)]
pub struct Node {
    pub kind: NodeKind,
    pub position: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Literal(Value),
    /// A named value (context), with its spelling in the source.
    Context(String),
    Not(Box<Node>),
    Compare {
        op: CompareOp,
        left: Box<Node>,
        right: Box<Node>,
    },
    /// `a && b && c`: operands in order.
    And(Vec<Node>),
    /// `a || b || c`: operands in order.
    Or(Vec<Node>),
    Group(Box<Node>),
    /// `a.b`, `a['b']`, `a.*`, `a[*]`.
    Index {
        object: Box<Node>,
        index: Index,
    },
    Call {
        function: Function,
        args: Vec<Node>,
    },
}

#[derive(Debug, Clone)]
pub enum Index {
    Star,
    Key(Box<Node>),
}

impl Node {
    /// Whether a status function (`success`, `always`, `failure`, `cancelled`) is called anywhere.
    pub fn uses_status_function(&self) -> bool {
        match &self.kind {
            NodeKind::Literal(_) | NodeKind::Context(_) => false,
            NodeKind::Not(n) | NodeKind::Group(n) => n.uses_status_function(),
            NodeKind::Compare { left, right, .. } => {
                left.uses_status_function() || right.uses_status_function()
            }
            NodeKind::And(items) | NodeKind::Or(items) => {
                items.iter().any(Node::uses_status_function)
            }
            NodeKind::Index { object, index } => {
                object.uses_status_function()
                    || matches!(index, Index::Key(k) if k.uses_status_function())
            }
            NodeKind::Call { function, args } => {
                function.is_status() || args.iter().any(Node::uses_status_function)
            }
        }
    }

    /// Pushes every context this node reads onto `paths`: the context's name and the
    /// literal string keys that follow it (`needs.gen.outputs['m']` gives `needs`, `gen`,
    /// `outputs`, `m`), up to the first key that is not one (`a[0]`, `a.*`, `a[b]`).
    pub fn context_paths(&self, paths: &mut Vec<Vec<String>>) {
        if let Some(path) = self.literal_path() {
            paths.push(path);
            return;
        }
        match &self.kind {
            NodeKind::Literal(_) | NodeKind::Context(_) => {}
            NodeKind::Not(n) | NodeKind::Group(n) => n.context_paths(paths),
            NodeKind::Compare { left, right, .. } => {
                left.context_paths(paths);
                right.context_paths(paths);
            }
            NodeKind::And(items) | NodeKind::Or(items) | NodeKind::Call { args: items, .. } => {
                items.iter().for_each(|n| n.context_paths(paths));
            }
            NodeKind::Index { object, index } => {
                object.context_paths(paths);
                if let Index::Key(key) = index {
                    key.context_paths(paths);
                }
            }
        }
    }

    /// `context.key['key']...` with only literal string keys, as names.
    fn literal_path(&self) -> Option<Vec<String>> {
        match &self.kind {
            NodeKind::Context(name) => Some(vec![name.clone()]),
            NodeKind::Index {
                object,
                index: Index::Key(key),
            } => match &key.kind {
                NodeKind::Literal(Value::String(k)) => {
                    let mut path = object.literal_path()?;
                    path.push(k.clone());
                    Some(path)
                }
                _ => None,
            },
            _ => None,
        }
    }
}

pub struct Parser<'a> {
    source: &'a str,
    tokens: Vec<Token>,
    offset: usize,
    depth: usize,
    allowed: &'a Allowed<'a>,
}

type ParseResult = Result<Node, ExprError>;

impl<'a> Parser<'a> {
    pub fn new(source: &'a str, tokens: Vec<Token>, allowed: &'a Allowed<'a>) -> Self {
        Parser {
            source,
            tokens,
            offset: 0,
            depth: 0,
            allowed,
        }
    }

    /// The whole expression; `None` when there are no tokens.
    pub fn parse(mut self) -> Result<Option<Node>, ExprError> {
        if self.at_end() {
            return Ok(None);
        }
        let node = self.expression()?;
        if !self.at_end() {
            return Err(self.unexpected(self.peek()));
        }
        Ok(Some(node))
    }

    fn expression(&mut self) -> ParseResult {
        self.enter()?;
        let node = self.logical_or();
        self.depth -= 1;
        node
    }

    fn logical_or(&mut self) -> ParseResult {
        self.logical(TokenKind::Or, Self::logical_and, NodeKind::Or)
    }

    fn logical_and(&mut self) -> ParseResult {
        self.logical(TokenKind::And, Self::equality, NodeKind::And)
    }

    /// `operand (op operand)*` folded into one n-ary node.
    fn logical(
        &mut self,
        op: TokenKind,
        operand: fn(&mut Self) -> ParseResult,
        build: fn(Vec<Node>) -> NodeKind,
    ) -> ParseResult {
        let first = operand(self)?;
        if !self.check(&op) {
            return Ok(first);
        }
        self.enter()?;
        let position = self.peek().position;
        let mut items = vec![first];
        while self.eat(&op) {
            items.push(operand(self)?);
        }
        self.depth -= 1;
        Ok(Node {
            kind: build(items),
            position,
        })
    }

    fn equality(&mut self) -> ParseResult {
        let mut node = self.comparison()?;
        loop {
            let op = match self.peek().kind {
                TokenKind::EqualEqual => CompareOp::Equal,
                TokenKind::BangEqual => CompareOp::NotEqual,
                _ => return Ok(node),
            };
            let position = self.advance().position;
            let right = self.comparison()?;
            node = compare(op, node, right, position);
        }
    }

    fn comparison(&mut self) -> ParseResult {
        let mut node = self.unary()?;
        loop {
            let op = match self.peek().kind {
                TokenKind::Less => CompareOp::Less,
                TokenKind::LessEqual => CompareOp::LessOrEqual,
                TokenKind::Greater => CompareOp::Greater,
                TokenKind::GreaterEqual => CompareOp::GreaterOrEqual,
                _ => return Ok(node),
            };
            let position = self.advance().position;
            let right = self.unary()?;
            node = compare(op, node, right, position);
        }
    }

    fn unary(&mut self) -> ParseResult {
        if self.check(&TokenKind::Bang) {
            let position = self.advance().position;
            self.enter()?;
            let operand = self.unary();
            self.depth -= 1;
            return Ok(Node {
                kind: NodeKind::Not(Box::new(operand?)),
                position,
            });
        }
        self.postfix()
    }

    /// `.name`, `.*`, `[expr]`, `[*]` after a group, a call or a named value.
    fn postfix(&mut self) -> ParseResult {
        let mut node = self.call()?;
        if !matches!(
            node.kind,
            NodeKind::Group(_) | NodeKind::Call { .. } | NodeKind::Context(_)
        ) {
            return Ok(node);
        }
        let outer_depth = self.depth;
        let result = self.postfix_chain(&mut node);
        self.depth = outer_depth;
        result.map(|()| node)
    }

    fn postfix_chain(&mut self, node: &mut Node) -> Result<(), ExprError> {
        loop {
            let position = self.peek().position;
            let index = if self.eat(&TokenKind::LeftBracket) {
                let index = if self.eat(&TokenKind::Star) {
                    Index::Star
                } else {
                    Index::Key(Box::new(self.expression()?))
                };
                self.expect(&TokenKind::RightBracket)?;
                self.enter()?;
                index
            } else if self.eat(&TokenKind::Dot) {
                self.enter()?;
                let token = self.peek().clone();
                match token.kind {
                    TokenKind::Identifier => {
                        self.advance();
                        Index::Key(Box::new(Node {
                            kind: NodeKind::Literal(Value::String(token.lexeme)),
                            position: token.position,
                        }))
                    }
                    TokenKind::Star => {
                        self.advance();
                        Index::Star
                    }
                    _ => return Err(self.unexpected(&token)),
                }
            } else {
                return Ok(());
            };
            let object = std::mem::replace(node, placeholder());
            *node = Node {
                kind: NodeKind::Index {
                    object: Box::new(object),
                    index,
                },
                position,
            };
        }
    }

    fn call(&mut self) -> ParseResult {
        if !self.check(&TokenKind::Identifier) {
            return self.primary();
        }
        let name = self.advance().clone();
        if !self.eat(&TokenKind::LeftParen) {
            if !self.allowed.allows_named_value(&name.lexeme) {
                return Err(self.error("Unrecognized named-value", &name));
            }
            return Ok(Node {
                kind: NodeKind::Context(name.lexeme),
                position: name.position,
            });
        }
        let mut args = Vec::new();
        while !self.eat(&TokenKind::RightParen) {
            args.push(self.expression()?);
            if !self.check(&TokenKind::RightParen) {
                self.expect(&TokenKind::Comma)?;
            }
        }
        let function = self.check_function(&name, args.len())?;
        Ok(Node {
            kind: NodeKind::Call { function, args },
            position: name.position,
        })
    }

    fn check_function(&self, name: &Token, count: usize) -> Result<Function, ExprError> {
        let function = Function::lookup(&name.lexeme)
            .filter(|f| f.is_core() || self.allowed.allows_function(f.name()))
            .ok_or_else(|| self.error("Unrecognized function", name))?;
        let (min, max) = function.arity(self.allowed.status_function_args);
        if count < min {
            return Err(self.error("Too few parameters supplied", name));
        }
        if count > max {
            return Err(self.error("Too many parameters supplied", name));
        }
        if function == Function::Case && count.is_multiple_of(2) {
            return Err(self.error(
                "Even number of parameters supplied, requires an odd number of parameters",
                name,
            ));
        }
        Ok(function)
    }

    fn primary(&mut self) -> ParseResult {
        let token = self.peek().clone();
        let literal = match &token.kind {
            TokenKind::False => Some(Value::Bool(false)),
            TokenKind::True => Some(Value::Bool(true)),
            TokenKind::Null => Some(Value::Null),
            TokenKind::Number(n) => Some(Value::Number(*n)),
            TokenKind::String(s) => Some(Value::String(s.clone())),
            _ => None,
        };
        if let Some(value) = literal {
            self.advance();
            return Ok(Node {
                kind: NodeKind::Literal(value),
                position: token.position,
            });
        }
        if self.eat(&TokenKind::LeftParen) {
            let inner = self.expression()?;
            self.expect(&TokenKind::RightParen)?;
            return Ok(Node {
                kind: NodeKind::Group(Box::new(inner)),
                position: token.position,
            });
        }
        Err(self.unexpected(&token))
    }

    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExprError {
                kind: ErrorKind::Parsing,
                message: format!("Exceeded max expression depth {MAX_DEPTH}"),
                position: None,
                expression: self.source.to_string(),
            });
        }
        Ok(())
    }

    fn peek(&self) -> &Token {
        let last = self.tokens.len().saturating_sub(1);
        &self.tokens[self.offset.min(last)]
    }

    fn previous(&self) -> &Token {
        &self.tokens[self.offset.saturating_sub(1)]
    }

    fn at_end(&self) -> bool {
        self.peek().kind == TokenKind::Eof
    }

    fn check(&self, kind: &TokenKind) -> bool {
        !self.at_end() && &self.peek().kind == kind
    }

    fn advance(&mut self) -> &Token {
        if !self.at_end() {
            self.offset += 1;
        }
        self.previous()
    }

    fn eat(&mut self, kind: &TokenKind) -> bool {
        if self.check(kind) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, kind: &TokenKind) -> Result<(), ExprError> {
        if self.eat(kind) {
            Ok(())
        } else {
            Err(self.unexpected(self.peek()))
        }
    }

    /// `token` is not what the grammar needs here. At the end of the input GitHub reports
    /// an unexpected end, located at the last real token.
    fn unexpected(&self, token: &Token) -> ExprError {
        if token.kind == TokenKind::Eof {
            self.error("Unexpected end of expression", self.previous())
        } else {
            self.error("Unexpected symbol", token)
        }
    }

    fn error(&self, description: &str, token: &Token) -> ExprError {
        ExprError {
            kind: ErrorKind::Parsing,
            message: format!("{description}: '{}'", token.display()),
            position: Some(token.position),
            expression: self.source.to_string(),
        }
    }
}

fn compare(op: CompareOp, left: Node, right: Node, position: usize) -> Node {
    Node {
        kind: NodeKind::Compare {
            op,
            left: Box::new(left),
            right: Box::new(right),
        },
        position,
    }
}

fn placeholder() -> Node {
    Node {
        kind: NodeKind::Literal(Value::Null),
        position: 0,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::expression::{Allowed, parse};

    fn error(src: &str) -> String {
        parse(src, &Allowed::everything()).unwrap_err().to_string()
    }

    #[test]
    fn running_out_of_input_is_an_unexpected_end_at_the_last_token() {
        assert_eq!(
            error("contains('a', 'b'"),
            "Unexpected end of expression: ''b''. Located at position 15 within expression: contains('a', 'b'"
        );
        assert_eq!(
            error("github['x'"),
            "Unexpected end of expression: ''x''. Located at position 8 within expression: github['x'"
        );
        assert_eq!(
            error("github."),
            "Unexpected end of expression: '.'. Located at position 7 within expression: github."
        );
        assert_eq!(
            error("1 <"),
            "Unexpected end of expression: '<'. Located at position 3 within expression: 1 <"
        );
    }

    #[test]
    fn misplaced_tokens_are_unexpected_symbols() {
        assert_eq!(
            error("endswith(1, 2 a)"),
            "Unexpected symbol: 'a'. Located at position 15 within expression: endswith(1, 2 a)"
        );
        assert_eq!(
            error("github['bar']2"),
            "Unexpected symbol: '2'. Located at position 14 within expression: github['bar']2"
        );
    }

    fn paths(source: &str) -> Vec<String> {
        parse(source, &Allowed::everything())
            .unwrap()
            .context_paths()
            .into_iter()
            .map(|p| p.join("."))
            .collect()
    }

    #[test]
    fn context_paths_follow_literal_keys_only() {
        assert_eq!(
            paths("fromJSON(needs.gen.outputs['matrix'])"),
            ["needs.gen.outputs.matrix"]
        );
        assert_eq!(
            paths("inputs.a == 'x' && !(github.event.commits[0].id || matrix.*)"),
            ["inputs.a", "github.event.commits", "matrix"]
        );
        assert_eq!(paths("vars[inputs.key].x"), ["vars", "inputs.key"]);
        assert_eq!(paths("toJSON(needs)"), ["needs"]);
        assert!(paths("format('{0}', 1)").is_empty());
    }
}
