//! The rule language: three-valued (Kleene) boolean expressions over named facts and findings.
//!
//! Rules live as data (`rules/*.toml`), so a clinician can read them next to the seed text. A
//! condition such as `fracture & symptomatic & !history_of_malignancy` or `pain_duration_weeks < 6`
//! evaluates to true, false or unknown; unknown is a value of its own, never coerced.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// A three-valued truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tri {
    /// Known to hold.
    True,
    /// Known not to hold.
    False,
    /// Not known.
    Unknown,
}

impl Tri {
    /// `Some(b)` → `True`/`False`, `None` → `Unknown`.
    pub fn from_option(b: Option<bool>) -> Tri {
        match b {
            Some(true) => Tri::True,
            Some(false) => Tri::False,
            None => Tri::Unknown,
        }
    }

    /// The truth as an option.
    pub fn known(self) -> Option<bool> {
        match self {
            Tri::True => Some(true),
            Tri::False => Some(false),
            Tri::Unknown => None,
        }
    }

    fn and(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::False, _) | (_, Tri::False) => Tri::False,
            (Tri::True, Tri::True) => Tri::True,
            _ => Tri::Unknown,
        }
    }

    fn or(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::True, _) | (_, Tri::True) => Tri::True,
            (Tri::False, Tri::False) => Tri::False,
            _ => Tri::Unknown,
        }
    }

    fn not(self) -> Tri {
        match self {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Unknown => Tri::Unknown,
        }
    }
}

/// A fact's value as the rules see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A yes/no fact.
    Bool(bool),
    /// A number (weeks, mm, counts).
    Number(f64),
    /// Not known.
    Unknown,
}

impl Value {
    /// A truth as a value: unknown stays unknown.
    pub fn from_tri(t: Tri) -> Value {
        t.known().map_or(Value::Unknown, Value::Bool)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{}", if *b { "yes" } else { "no" }),
            Value::Number(x) => write!(f, "{x}"),
            Value::Unknown => write!(f, "unknown"),
        }
    }
}

/// The facts an expression is evaluated against: every name a rule uses must be here, unknown or
/// not, so that a misspelt rule fails loudly instead of silently reading "unknown".
pub type Facts = BTreeMap<String, Value>;

/// Most unknowns [`Expr::deciding`] searches exhaustively (2^12 assignments at most per name).
pub const MAX_SEARCH: usize = 12;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A named yes/no fact.
    Atom(String),
    /// A named number compared with a constant.
    Compare(String, CmpOp, f64),
    /// Negation.
    Not(Box<Expr>),
    /// Conjunction.
    And(Vec<Expr>),
    /// Disjunction.
    Or(Vec<Expr>),
}

/// A comparison operator, public form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CmpOp(Cmp);

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Eq => "==",
        })
    }
}

/// Why an expression could not be parsed or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExprError {
    /// The text is not a valid expression.
    #[error("rule {text:?}: {why} at byte {at}")]
    Syntax {
        /// The rule text.
        text: String,
        /// What was wrong.
        why: String,
        /// Byte offset.
        at: usize,
    },
    /// A name the rule uses is not a known fact or finding.
    #[error("rule uses {name:?}, which is not a known fact or finding")]
    UnknownName {
        /// The name.
        name: String,
    },
    /// A name is used as the wrong type (a number as yes/no or the reverse).
    #[error("rule uses {name:?} as {used}, but it is {actual}")]
    Type {
        /// The name.
        name: String,
        /// How the rule uses it.
        used: &'static str,
        /// What it is.
        actual: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64),
    And,
    Or,
    Not,
    Open,
    Close,
    Op(Cmp),
}

fn lex(text: &str) -> Result<Vec<(usize, Tok)>, ExprError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |at: usize, why: &str| ExprError::Syntax {
        text: text.to_string(),
        why: why.to_string(),
        at,
    };
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'&' => (i += 1, out.push((start, Tok::And))).1,
            b'|' => (i += 1, out.push((start, Tok::Or))).1,
            b'(' => (i += 1, out.push((start, Tok::Open))).1,
            b')' => (i += 1, out.push((start, Tok::Close))).1,
            b'!' if b.get(i + 1) != Some(&b'=') => (i += 1, out.push((start, Tok::Not))).1,
            b'<' | b'>' | b'=' => {
                let eq = b.get(i + 1) == Some(&b'=');
                let op = match (c, eq) {
                    (b'<', false) => Cmp::Lt,
                    (b'<', true) => Cmp::Le,
                    (b'>', false) => Cmp::Gt,
                    (b'>', true) => Cmp::Ge,
                    (b'=', true) => Cmp::Eq,
                    _ => return Err(err(i, "expected a comparison operator")),
                };
                i += 1 + usize::from(eq);
                out.push((start, Tok::Op(op)));
            }
            b'0'..=b'9' | b'.' | b'-' => {
                i += 1;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                    i += 1;
                }
                let x: f64 = text[start..i]
                    .parse()
                    .map_err(|_| err(start, "bad number"))?;
                out.push((start, Tok::Num(x)));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push((start, Tok::Ident(text[start..i].to_string())));
            }
            _ => return Err(err(i, "unexpected character")),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<(usize, Tok)>,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, why: &str) -> ExprError {
        ExprError::Syntax {
            text: self.text.to_string(),
            why: why.to_string(),
            at: self
                .toks
                .get(self.pos)
                .map(|t| t.0)
                .unwrap_or(self.text.len()),
        }
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.1)
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut v = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::Or(v)
        })
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut v = vec![self.unary()?];
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            v.push(self.unary()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::And(v)
        })
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        match self.peek().cloned() {
            Some(Tok::Not) => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some(Tok::Open) => {
                self.pos += 1;
                let e = self.or()?;
                if self.peek() != Some(&Tok::Close) {
                    return Err(self.err("expected ')'"));
                }
                self.pos += 1;
                Ok(e)
            }
            Some(Tok::Ident(name)) => {
                self.pos += 1;
                if let Some(Tok::Op(op)) = self.peek().cloned() {
                    self.pos += 1;
                    match self.peek().cloned() {
                        Some(Tok::Num(x)) => {
                            self.pos += 1;
                            Ok(Expr::Compare(name, CmpOp(op), x))
                        }
                        _ => Err(self.err("expected a number")),
                    }
                } else {
                    Ok(Expr::Atom(name))
                }
            }
            _ => Err(self.err("expected a name, '!' or '('")),
        }
    }
}

impl Expr {
    /// Parses a rule.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let mut p = Parser {
            text,
            toks: lex(text)?,
            pos: 0,
        };
        let e = p.or()?;
        if p.pos != p.toks.len() {
            return Err(p.err("unexpected trailing input"));
        }
        Ok(e)
    }

    /// Every name the expression reads, in order of first use.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect(&self, out: &mut Vec<String>) {
        match self {
            Expr::Atom(n) | Expr::Compare(n, _, _) => {
                if !out.contains(n) {
                    out.push(n.clone())
                }
            }
            Expr::Not(e) => e.collect(out),
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| e.collect(out)),
        }
    }

    /// Checks that every name exists in `facts` with the type the rule uses.
    pub fn check(&self, facts: &Facts) -> Result<(), ExprError> {
        match self {
            Expr::Atom(n) => match facts.get(n) {
                None => Err(ExprError::UnknownName { name: n.clone() }),
                Some(Value::Number(_)) => Err(ExprError::Type {
                    name: n.clone(),
                    used: "yes/no",
                    actual: "a number",
                }),
                _ => Ok(()),
            },
            Expr::Compare(n, _, _) => match facts.get(n) {
                None => Err(ExprError::UnknownName { name: n.clone() }),
                Some(Value::Bool(_)) => Err(ExprError::Type {
                    name: n.clone(),
                    used: "a number",
                    actual: "yes/no",
                }),
                _ => Ok(()),
            },
            Expr::Not(e) => e.check(facts),
            Expr::And(v) | Expr::Or(v) => v.iter().try_for_each(|e| e.check(facts)),
        }
    }

    /// Evaluates against `facts`; a missing name reads as unknown (use [`Expr::check`] first).
    pub fn eval(&self, facts: &Facts) -> Tri {
        match self {
            Expr::Atom(n) => match facts.get(n) {
                Some(Value::Bool(b)) => Tri::from_option(Some(*b)),
                _ => Tri::Unknown,
            },
            Expr::Compare(n, op, k) => match facts.get(n) {
                Some(Value::Number(x)) => Tri::from_option(Some(match op.0 {
                    Cmp::Lt => *x < *k,
                    Cmp::Le => *x <= *k,
                    Cmp::Gt => *x > *k,
                    Cmp::Ge => *x >= *k,
                    Cmp::Eq => (*x - *k).abs() < 1e-9,
                })),
                _ => Tri::Unknown,
            },
            Expr::Not(e) => e.eval(facts).not(),
            Expr::And(v) => v.iter().fold(Tri::True, |a, e| a.and(e.eval(facts))),
            Expr::Or(v) => v.iter().fold(Tri::False, |a, e| a.or(e.eval(facts))),
        }
    }

    /// For an unknown result: the unknown names it depends on, that is, those for which some
    /// values of the other unknowns make the answer change with this one. These are what the
    /// user should find out. Above [`MAX_SEARCH`] unknowns every unknown name is listed.
    pub fn deciding(&self, facts: &Facts) -> Vec<String> {
        if self.eval(facts) != Tri::Unknown {
            return Vec::new();
        }
        let unknown: Vec<String> = self
            .names()
            .into_iter()
            .filter(|n| matches!(facts.get(n), Some(Value::Unknown) | None))
            .collect();
        if unknown.len() > MAX_SEARCH {
            return unknown;
        }
        // Values worth trying per name: yes/no, or either side of each constant it is compared with.
        let choices: Vec<Vec<Value>> = unknown
            .iter()
            .map(|n| {
                let k = self.constants_for(n);
                if k.is_empty() {
                    vec![Value::Bool(false), Value::Bool(true)]
                } else {
                    k.iter()
                        .flat_map(|k| [k - 1.0, *k, k + 1.0])
                        .map(Value::Number)
                        .collect()
                }
            })
            .collect();
        let mut relevant = vec![false; unknown.len()];
        let total: usize = choices.iter().map(Vec::len).product();
        let mut f = facts.clone();
        for mut code in 0..total {
            for (n, c) in unknown.iter().zip(&choices) {
                f.insert(n.clone(), c[code % c.len()].clone());
                code /= c.len();
            }
            let base = self.eval(&f);
            for (i, (n, c)) in unknown.iter().zip(&choices).enumerate() {
                if relevant[i] {
                    continue;
                }
                let keep = f[n].clone();
                relevant[i] = c.iter().any(|v| {
                    f.insert(n.clone(), v.clone());
                    self.eval(&f) != base
                });
                f.insert(n.clone(), keep);
            }
        }
        unknown
            .into_iter()
            .zip(relevant)
            .filter_map(|(n, r)| r.then_some(n))
            .collect()
    }

    fn constants_for(&self, name: &str) -> Vec<f64> {
        match self {
            Expr::Compare(n, _, k) if n == name => vec![*k],
            Expr::Not(e) => e.constants_for(name),
            Expr::And(v) | Expr::Or(v) => v.iter().flat_map(|e| e.constants_for(name)).collect(),
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, v: &[Expr], sep: &str| -> fmt::Result {
            write!(f, "(")?;
            for (i, e) in v.iter().enumerate() {
                if i > 0 {
                    write!(f, " {sep} ")?;
                }
                write!(f, "{e}")?;
            }
            write!(f, ")")
        };
        match self {
            Expr::Atom(n) => write!(f, "{n}"),
            Expr::Compare(n, op, k) => write!(f, "{n} {op} {k}"),
            Expr::Not(e) => write!(f, "!{e}"),
            Expr::And(v) => join(f, v, "&"),
            Expr::Or(v) => join(f, v, "|"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(pairs: &[(&str, Value)]) -> Facts {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn kleene_logic_and_deciding_facts() {
        let e = Expr::parse("fracture & symptomatic & !history_of_malignancy").unwrap();
        let mut f = facts(&[
            ("fracture", Value::Bool(true)),
            ("symptomatic", Value::Bool(true)),
            ("history_of_malignancy", Value::Unknown),
        ]);
        assert_eq!(e.eval(&f), Tri::Unknown);
        assert_eq!(e.deciding(&f), vec!["history_of_malignancy".to_string()]);
        f.insert("symptomatic".into(), Value::Bool(false));
        // False wins over unknown in a conjunction.
        assert_eq!(e.eval(&f), Tri::False);
        assert!(e.deciding(&f).is_empty());
    }

    #[test]
    fn deciding_lists_every_unknown_the_answer_depends_on() {
        let e = Expr::parse("fracture & !pathological & (edema | cleft) & (x | !x)").unwrap();
        let f = facts(&[
            ("fracture", Value::Bool(true)),
            ("pathological", Value::Unknown),
            ("edema", Value::Unknown),
            ("cleft", Value::Unknown),
            ("x", Value::Unknown),
        ]);
        // x cannot change the answer (x | !x); the other three can.
        assert_eq!(e.deciding(&f), vec!["pathological", "edema", "cleft"]);
    }

    #[test]
    fn comparisons_and_precedence() {
        let e = Expr::parse("a | b & pain_duration_weeks < 6").unwrap();
        let mut f = facts(&[
            ("a", Value::Bool(false)),
            ("b", Value::Bool(true)),
            ("pain_duration_weeks", Value::Number(4.0)),
        ]);
        assert_eq!(e.eval(&f), Tri::True);
        f.insert("pain_duration_weeks".into(), Value::Number(6.0));
        assert_eq!(e.eval(&f), Tri::False);
        f.insert("pain_duration_weeks".into(), Value::Unknown);
        assert_eq!(e.deciding(&f), vec!["pain_duration_weeks".to_string()]);
        assert_eq!(e.to_string(), "(a | (b & pain_duration_weeks < 6))");
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(matches!(
            Expr::parse("a & (b"),
            Err(ExprError::Syntax { .. })
        ));
        assert!(matches!(
            Expr::parse("a $ b"),
            Err(ExprError::Syntax { .. })
        ));
        let e = Expr::parse("a & missing").unwrap();
        let f = facts(&[("a", Value::Bool(true))]);
        assert_eq!(
            e.check(&f),
            Err(ExprError::UnknownName {
                name: "missing".into()
            })
        );
        let e = Expr::parse("weeks").unwrap();
        let f = facts(&[("weeks", Value::Number(3.0))]);
        assert!(matches!(e.check(&f), Err(ExprError::Type { .. })));
    }
}
