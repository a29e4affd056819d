//! A direct evaluator for the conditions routes are made of: field access,
//! `has()`, comparisons, `&&`/`||`/`!`, arithmetic, `in`, `size()`,
//! `startsWith`/`endsWith`/`contains`, list literals, the ternary and the
//! comprehension macros (`exists`, `all`, `exists_one`, `map`, `filter`).
//!
//! It reads the event where it lies (a borrowed `SignatureEvent`, its payload
//! as `serde_json::Value`) instead of converting the event into CEL values
//! first, and allocates nothing for the common cases: this is what keeps 50
//! conditions per event cheap. A condition using anything else (a map
//! literal, another function, `event` as a whole value) is not compiled here
//! and runs on the `cel` crate's interpreter. A differential test holds the
//! two to the same results.

mod eval;

use cel::common::ast::{Expr, IdedExpr, LiteralValue, operators as op};

pub use eval::{Data, Stop, eval};

/// A compiled condition.
#[derive(Debug)]
pub enum Node {
    Lit(Lit),
    /// A field of the event (`event.kind`).
    EventField(String),
    Envelope,
    Source,
    /// A comprehension's variable, by its slot.
    Local(usize),
    Select(Box<Node>, String),
    Has(Box<Node>, String),
    /// `has(event.f)`.
    HasEventField(String),
    Call(Func, Vec<Node>),
    List(Vec<Node>),
    Comp(Box<Comp>),
}

#[derive(Debug)]
pub enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    Str(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    And,
    Or,
    Not,
    NotStrictlyFalse,
    Cond,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Neg,
    In,
    Index,
    Size,
    StartsWith,
    EndsWith,
    Contains,
}

#[derive(Debug)]
pub struct Comp {
    range: Node,
    iter: usize,
    accu: usize,
    init: Node,
    cond: Node,
    step: Node,
    result: Node,
}

/// Compiles `e`, or `None` when it uses something this evaluator leaves to
/// the interpreter.
pub fn compile(e: &IdedExpr) -> Option<Node> {
    Compiler::default().node(e)
}

#[derive(Default)]
struct Compiler {
    /// Bound comprehension variables, innermost last; a variable's slot is
    /// its position here (siblings reuse slots, nested ones take the next).
    scope: Vec<String>,
}

impl Compiler {
    fn node(&mut self, e: &IdedExpr) -> Option<Node> {
        Some(match &e.expr {
            Expr::Literal(l) => Node::Lit(match l {
                LiteralValue::Null => Lit::Null,
                LiteralValue::Boolean(b) => Lit::Bool(*b.inner()),
                LiteralValue::Int(i) => Lit::Int(*i.inner()),
                LiteralValue::UInt(u) => Lit::UInt(*u.inner()),
                LiteralValue::Double(d) => Lit::Double(*d.inner()),
                LiteralValue::String(s) => Lit::Str(s.inner().to_owned()),
                LiteralValue::Bytes(_) => return None,
            }),
            Expr::Ident(name) => self.ident(name)?,
            Expr::Select(s) => {
                if let Expr::Ident(root) = &s.operand.expr
                    && root == "event"
                    && self.local(root).is_none()
                {
                    return Some(if s.test {
                        Node::HasEventField(s.field.clone())
                    } else {
                        Node::EventField(s.field.clone())
                    });
                }
                let operand = Box::new(self.node(&s.operand)?);
                if s.test {
                    Node::Has(operand, s.field.clone())
                } else {
                    Node::Select(operand, s.field.clone())
                }
            }
            Expr::List(l) => {
                if !l.optional_indices.is_empty() {
                    return None;
                }
                Node::List(
                    l.elements
                        .iter()
                        .map(|x| self.node(x))
                        .collect::<Option<_>>()?,
                )
            }
            Expr::Call(c) => {
                let f = match (c.func_name.as_str(), c.target.is_some(), c.args.len()) {
                    (op::LOGICAL_AND, false, 2) => Func::And,
                    (op::LOGICAL_OR, false, 2) => Func::Or,
                    (op::LOGICAL_NOT, false, 1) => Func::Not,
                    (op::NOT_STRICTLY_FALSE, false, 1) => Func::NotStrictlyFalse,
                    (op::CONDITIONAL, false, 3) => Func::Cond,
                    (op::EQUALS, false, 2) => Func::Eq,
                    (op::NOT_EQUALS, false, 2) => Func::Ne,
                    (op::LESS, false, 2) => Func::Lt,
                    (op::LESS_EQUALS, false, 2) => Func::Le,
                    (op::GREATER, false, 2) => Func::Gt,
                    (op::GREATER_EQUALS, false, 2) => Func::Ge,
                    (op::ADD, false, 2) => Func::Add,
                    (op::SUBSTRACT, false, 2) => Func::Sub,
                    (op::MULTIPLY, false, 2) => Func::Mul,
                    (op::DIVIDE, false, 2) => Func::Div,
                    (op::MODULO, false, 2) => Func::Mod,
                    (op::NEGATE, false, 1) => Func::Neg,
                    (op::IN, false, 2) => Func::In,
                    (op::INDEX, false, 2) => Func::Index,
                    ("size", false, 1) | ("size", true, 0) => Func::Size,
                    ("startsWith", true, 1) => Func::StartsWith,
                    ("endsWith", true, 1) => Func::EndsWith,
                    ("contains", true, 1) => Func::Contains,
                    _ => return None,
                };
                let mut args = Vec::with_capacity(c.args.len() + 1);
                if let Some(t) = &c.target {
                    args.push(self.node(t)?);
                }
                for a in &c.args {
                    args.push(self.node(a)?);
                }
                Node::Call(f, args)
            }
            Expr::Comprehension(c) => {
                if c.iter_var2.is_some() {
                    return None;
                }
                let range = self.node(&c.iter_range)?;
                let init = self.node(&c.accu_init)?;
                let depth = self.scope.len();
                let (iter, accu) = (depth, depth + 1);
                self.scope.push(c.iter_var.clone());
                self.scope.push(c.accu_var.clone());
                let body = (|| {
                    Some((
                        self.node(&c.loop_cond)?,
                        self.node(&c.loop_step)?,
                        self.node(&c.result)?,
                    ))
                })();
                self.scope.truncate(depth);
                let (cond, step, result) = body?;
                Node::Comp(Box::new(Comp {
                    range,
                    iter,
                    accu,
                    init,
                    cond,
                    step,
                    result,
                }))
            }
            Expr::Map(_) | Expr::Struct(_) | Expr::Unspecified => return None,
        })
    }

    /// The slot of a bound variable (the innermost binding).
    fn local(&self, name: &str) -> Option<usize> {
        self.scope.iter().rposition(|s| s == name)
    }

    fn ident(&self, name: &str) -> Option<Node> {
        if let Some(slot) = self.local(name) {
            return Some(Node::Local(slot));
        }
        match name {
            "envelope" => Some(Node::Envelope),
            "source" => Some(Node::Source),
            // `event` as a whole value: left to the interpreter.
            _ => None,
        }
    }
}
