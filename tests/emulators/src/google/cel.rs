//! The subset of CEL that the STS emulator accepts as a workload identity provider's
//! attribute condition: equalities between a claim of the subject token and a string
//! literal, joined by `&&`, for example
//! `assertion.repository == 'acme/app' && assertion.ref == "refs/heads/main"`.
//!
//! A claim is named `assertion.a.b` (nested objects) or `assertion['claim-with-dashes']`.
//! Anything outside this subset is refused when the condition is parsed, so a test that
//! configures a condition the emulator cannot evaluate fails at setup instead of silently
//! passing. Evaluation is exact: a missing claim or a claim that is not a string makes the
//! equality false (real CEL raises an evaluation error there, which Google also treats as a
//! rejection).

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

/// A parsed attribute condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeCondition {
    source: String,
    clauses: Vec<Equality>,
}

/// `assertion.<path> == '<value>'`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Equality {
    path: Vec<String>,
    value: String,
}

impl AttributeCondition {
    /// Parses `text`, or says why it is outside the supported subset.
    pub fn parse(text: &str) -> Result<Self, String> {
        let tokens = tokenize(text)?;
        let mut parser = Parser {
            tokens: &tokens,
            at: 0,
        };
        let mut clauses = vec![parser.equality()?];
        while parser.peek().is_some() {
            parser.expect(&Token::And)?;
            clauses.push(parser.equality()?);
        }
        Ok(Self {
            source: text.to_owned(),
            clauses,
        })
    }

    /// The condition as it was written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether every equality holds for the token's `claims`.
    pub fn evaluate(&self, claims: &Value) -> bool {
        self.clauses.iter().all(|clause| {
            let mut value = claims;
            for segment in &clause.path {
                match value.get(segment) {
                    Some(inner) => value = inner,
                    None => return false,
                }
            }
            value.as_str() == Some(clause.value.as_str())
        })
    }
}

impl FromStr for AttributeCondition {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::parse(text)
    }
}

impl fmt::Display for AttributeCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Str(String),
    Dot,
    Equals,
    And,
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '.' => tokens.push(Token::Dot),
            '[' => tokens.push(Token::Open),
            ']' => tokens.push(Token::Close),
            '=' if chars.next_if(|&(_, c)| c == '=').is_some() => tokens.push(Token::Equals),
            '&' if chars.next_if(|&(_, c)| c == '&').is_some() => tokens.push(Token::And),
            '\'' | '"' => {
                let mut literal = String::new();
                loop {
                    match chars.next() {
                        None => return Err(format!("unterminated string literal at {at}")),
                        Some((_, q)) if q == c => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, e @ ('\\' | '\'' | '"'))) => literal.push(e),
                            _ => return Err(format!("unsupported escape in the literal at {at}")),
                        },
                        Some((_, other)) => literal.push(other),
                    }
                }
                tokens.push(Token::Str(literal));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut ident = c.to_string();
                while let Some((_, next)) =
                    chars.next_if(|&(_, n)| n.is_ascii_alphanumeric() || n == '_')
                {
                    ident.push(next);
                }
                tokens.push(Token::Ident(ident));
            }
            other => return Err(format!("unsupported character {other:?} at {at}")),
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<&Token> {
        let token = self.tokens.get(self.at);
        self.at += 1;
        token
    }

    fn expect(&mut self, wanted: &Token) -> Result<(), String> {
        match self.next() {
            Some(token) if token == wanted => Ok(()),
            other => Err(format!("expected {wanted:?}, found {other:?}")),
        }
    }

    /// `assertion (.ident | ['str'])+ == 'str'`
    fn equality(&mut self) -> Result<Equality, String> {
        match self.next() {
            Some(Token::Ident(name)) if name == "assertion" => {}
            other => return Err(format!("expected `assertion`, found {other:?}")),
        }
        let mut path = Vec::new();
        loop {
            match self.peek() {
                Some(Token::Dot) => {
                    self.at += 1;
                    match self.next() {
                        Some(Token::Ident(name)) => path.push(name.clone()),
                        other => return Err(format!("expected a claim name, found {other:?}")),
                    }
                }
                Some(Token::Open) => {
                    self.at += 1;
                    match self.next() {
                        Some(Token::Str(name)) => path.push(name.clone()),
                        other => return Err(format!("expected a quoted claim, found {other:?}")),
                    }
                    self.expect(&Token::Close)?;
                }
                _ => break,
            }
        }
        if path.is_empty() {
            return Err("`assertion` must be followed by a claim".to_owned());
        }
        self.expect(&Token::Equals)?;
        match self.next() {
            Some(Token::Str(value)) => Ok(Equality {
                path,
                value: value.clone(),
            }),
            other => Err(format!("expected a string literal, found {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_conjunctions_exactly() {
        let condition = AttributeCondition::parse(
            "assertion.repository == 'acme/app' && assertion['job-ref'] == \"main\" \
             && assertion.nested.x == 'y'",
        )
        .unwrap();
        let claims = json!({"repository": "acme/app", "job-ref": "main", "nested": {"x": "y"}});
        assert!(condition.evaluate(&claims));
        let claims = json!({"repository": "acme/app2", "job-ref": "main", "nested": {"x": "y"}});
        assert!(!condition.evaluate(&claims));
        assert!(!condition.evaluate(&json!({"repository": "acme/app"})));
        let number = AttributeCondition::parse("assertion.n == '1'").unwrap();
        assert!(!number.evaluate(&json!({"n": 1})));
    }

    #[test]
    fn refuses_what_it_cannot_evaluate() {
        for text in [
            "",
            "assertion.sub != 'x'",
            "assertion.sub == 'x' || assertion.sub == 'y'",
            "assertion == 'x'",
            "'x' == assertion.sub",
            "attribute.sub == 'x'",
            "assertion.sub == x",
            "assertion.sub == 'x' &&",
            "assertion.sub.startsWith('x')",
            "(assertion.sub == 'x')",
            "assertion.sub == 'unterminated",
        ] {
            assert!(AttributeCondition::parse(text).is_err(), "{text}");
        }
    }
}
