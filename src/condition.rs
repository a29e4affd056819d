//! `[[routes]] when`: conditions in CEL (the Common Expression Language of
//! Kubernetes admission policies, Envoy and Google's APIs) over three
//! variables: `event` (the normalized event), `envelope` (its envelope's
//! state, progress, signers, `reference` and `metadata`; `null` for an event
//! without one) and `source` (the source id, a string).
//!
//! A condition is compiled once, when the configuration loads. What is wrong
//! with it then is a config error with its line and column: a syntax error,
//! a variable other than the three, or a result that is not a bool. At run
//! time an evaluation error (a missing metadata field, a string compared
//! with a number) is the caller's to count; the condition does not hold.

mod fast;

use std::cell::OnceCell;
use std::sync::{Arc, LazyLock};

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::{Context, Env, Program, Value};
use serde::Serialize;

use crate::event::{EnvelopeBlock, SignatureEvent};

/// The variables a condition may use.
pub const VARIABLES: [&str; 3] = ["event", "envelope", "source"];

/// CEL's standard environment (functions and macros: `has`, `exists`,
/// `size`, `startsWith`…), built once.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// A compiled condition.
pub struct Condition {
    program: Program,
    /// The same, for the direct evaluator (`None`: it uses something only
    /// the interpreter has).
    fast: Option<fast::Node>,
    /// Whether it reads `envelope` (then it needs the envelope's state as of
    /// after the event, which the store's writer knows).
    pub uses_envelope: bool,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condition")
            .field("source", &self.program.source_info().source)
            .finish_non_exhaustive()
    }
}

/// Why a condition does not compile: where (1-based line and column) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub line: usize,
    pub column: usize,
    pub problem: String,
    pub fix: String,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.problem
        )
    }
}

/// One event's variables. Making one costs nothing: the direct evaluator
/// reads the event where it lies, and the CEL values the interpreter needs
/// are built the first time a condition needs them.
pub struct Input<'a> {
    event: &'a SignatureEvent,
    envelope: Option<&'a EnvelopeBlock>,
    data: fast::Data<'a>,
    scope: OnceCell<Scope>,
}

impl<'a> Input<'a> {
    /// `event` with `envelope` as the `envelope` variable (`None`: null).
    pub fn new(event: &'a SignatureEvent, envelope: Option<&'a EnvelopeBlock>) -> Input<'a> {
        Input {
            event,
            envelope,
            data: fast::Data::new(event, envelope),
            scope: OnceCell::new(),
        }
    }

    /// The event.
    pub fn event(&self) -> &'a SignatureEvent {
        self.event
    }

    fn scope(&self) -> &Scope {
        self.scope
            .get_or_init(|| Vars::new(self.event, self.envelope).scope())
    }
}

/// An evaluation failed (or gave no bool); [`Condition::error`] says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalError;

/// The variables of one evaluation as CEL values (the interpreter's input).
struct Vars {
    event: Value,
    envelope: Value,
    source: Value,
}

impl Vars {
    fn new(e: &SignatureEvent, envelope: Option<&EnvelopeBlock>) -> Vars {
        Vars {
            event: to_value(e),
            envelope: envelope.map_or(Value::Null, to_value),
            source: Value::String(Arc::new(e.source.clone())),
        }
    }

    /// The variables as one evaluation scope, built once for all the
    /// conditions an event meets.
    fn scope(&self) -> Scope {
        let mut ctx = Context::with_env(ENV.clone());
        ctx.add_variable_from_value("event", self.event.clone());
        ctx.add_variable_from_value("envelope", self.envelope.clone());
        ctx.add_variable_from_value("source", self.source.clone());
        Scope(ctx)
    }
}

/// [`Vars`] ready for the interpreter (not `Send`: built where it is used).
struct Scope(Context<'static, 'static>);

/// A serializable value as CEL sees it. JSON numbers that are whole become
/// `int` (so `metadata.value > 50000` compares like with like); others
/// `double`.
fn to_value<T: Serialize>(v: &T) -> Value {
    match cel::to_value(v) {
        Ok(v) => ints(v),
        Err(_) => Value::Null,
    }
}

/// `uint`s (what serde makes of non-negative JSON integers) as `int`s.
fn ints(v: Value) -> Value {
    match v {
        Value::UInt(u) => i64::try_from(u).map_or(Value::UInt(u), Value::Int),
        Value::List(l) => Value::List(Arc::new(l.iter().cloned().map(ints).collect())),
        Value::Map(m) => {
            let map: std::collections::HashMap<cel::objects::Key, Value> = m
                .map
                .iter()
                .map(|(k, v)| (k.clone(), ints(v.clone())))
                .collect();
            Value::Map(cel::objects::Map { map: Arc::new(map) })
        }
        other => other,
    }
}

impl Condition {
    /// Compiles `src`; see the module doc for what makes it an error.
    pub fn compile(src: &str) -> Result<Condition, CompileError> {
        let program = ENV.compile(src).map_err(|errs| {
            let first = errs.errors.first();
            CompileError {
                line: first.map_or(1, |e| e.pos.0.max(1) as usize),
                column: first.map_or(1, |e| e.pos.1.max(0) as usize + 1),
                problem: first.map_or_else(|| "syntax error".into(), |e| e.msg.clone()),
                fix: "write a CEL expression, e.g. event.kind == \"envelope.all_signed\" \
                      && envelope.metadata.contract_value > 50000 (strings in double quotes)"
                    .into(),
            }
        })?;
        let at = |p: &Program, id: u64| position(src, p.source_info().offset_for(id).map(|o| o.0));
        let mut unknown = Vec::new();
        free_variables(program.expression(), &mut Vec::new(), &mut unknown);
        if let Some((id, name)) = unknown.first() {
            let (line, column) = at(&program, *id);
            return Err(CompileError {
                line,
                column,
                problem: format!("unknown variable `{name}`"),
                fix: "use `event`, `envelope` or `source` (e.g. event.payload.x, \
                      envelope.metadata.x)"
                    .into(),
            });
        }
        let uses_envelope = uses(program.expression(), "envelope");
        let c = Condition {
            fast: fast::compile(program.expression()),
            program,
            uses_envelope,
        };
        // What the outermost node makes (arithmetic, a literal, a list…), else
        // a trial run on a sample event: a result that is not a bool there is
        // not one anywhere (an error there says nothing: fields may be missing).
        let root = c.program.expression();
        let made = not_bool(root).map(str::to_owned).or_else(|| {
            match c.program.execute(&sample().scope().0) {
                Ok(Value::Bool(_)) | Err(_) => None,
                Ok(v) => Some(v.type_of().to_string()),
            }
        });
        if let Some(made) = made {
            let (line, column) = at(&c.program, root.id);
            return Err(CompileError {
                line,
                column,
                problem: format!("evaluates to {made}, not a bool"),
                fix: "make the whole expression a condition, e.g. `x > 5` or `has(x)`".into(),
            });
        }
        Ok(c)
    }

    /// Whether the condition holds for `input`.
    pub fn eval(&self, input: &Input) -> Result<bool, EvalError> {
        match self.fast.as_ref().map(|n| fast::eval(n, &input.data)) {
            Some(Ok(b)) => Ok(b),
            Some(Err(fast::Stop::Error)) => Err(EvalError),
            Some(Err(fast::Stop::Defer)) | None => self.interpret(input).map_err(|_| EvalError),
        }
    }

    /// Why the condition does not evaluate for `input` (the interpreter's
    /// message); only for logs and `route test`.
    pub fn error(&self, input: &Input) -> String {
        match self.interpret(input) {
            Err(e) => e,
            Ok(b) => format!("evaluated to {b}"),
        }
    }

    fn interpret(&self, input: &Input) -> Result<bool, String> {
        match self.program.execute(&input.scope().0) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(v) => Err(format!("evaluated to {}, not a bool", v.type_of())),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Both evaluators' results (the differential test).
    #[cfg(test)]
    fn both(&self, input: &Input) -> (Option<Result<bool, EvalError>>, Result<bool, EvalError>) {
        let fast = match self.fast.as_ref().map(|n| fast::eval(n, &input.data)) {
            Some(Ok(b)) => Some(Ok(b)),
            Some(Err(fast::Stop::Error)) => Some(Err(EvalError)),
            Some(Err(fast::Stop::Defer)) | None => None,
        };
        (fast, self.interpret(input).map_err(|_| EvalError))
    }
}

/// (line, column), 1-based, of byte `offset` in `src`.
fn position(src: &str, offset: Option<u32>) -> (usize, usize) {
    let offset = offset.unwrap_or(0) as usize;
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Identifiers that are neither one of [`VARIABLES`] nor bound by an
/// enclosing comprehension (`exists(x, …)`), with their node ids.
fn free_variables(e: &IdedExpr, bound: &mut Vec<String>, out: &mut Vec<(u64, String)>) {
    match &e.expr {
        Expr::Ident(name) => {
            if !name.starts_with('@')
                && !bound.iter().any(|b| b == name)
                && !VARIABLES.contains(&name.as_str())
            {
                out.push((e.id, name.clone()));
            }
        }
        Expr::Call(call) => {
            if let Some(t) = &call.target {
                free_variables(t, bound, out);
            }
            for a in &call.args {
                free_variables(a, bound, out);
            }
        }
        Expr::Comprehension(c) => {
            free_variables(&c.iter_range, bound, out);
            free_variables(&c.accu_init, bound, out);
            let n = bound.len();
            bound.push(c.iter_var.clone());
            bound.extend(c.iter_var2.clone());
            bound.push(c.accu_var.clone());
            for x in [&c.loop_cond, &c.loop_step, &c.result] {
                free_variables(x, bound, out);
            }
            bound.truncate(n);
        }
        Expr::List(l) => l
            .elements
            .iter()
            .for_each(|x| free_variables(x, bound, out)),
        Expr::Map(m) => m.entries.iter().for_each(|en| entry(&en.expr, bound, out)),
        Expr::Struct(s) => s.entries.iter().for_each(|en| entry(&en.expr, bound, out)),
        Expr::Select(s) => free_variables(&s.operand, bound, out),
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn entry(e: &EntryExpr, bound: &mut Vec<String>, out: &mut Vec<(u64, String)>) {
    match e {
        EntryExpr::StructField(f) => free_variables(&f.value, bound, out),
        EntryExpr::MapEntry(m) => {
            free_variables(&m.key, bound, out);
            free_variables(&m.value, bound, out);
        }
    }
}

/// What the node makes when that is sure not to be a bool.
fn not_bool(e: &IdedExpr) -> Option<&'static str> {
    use cel::common::ast::operators as op;
    match &e.expr {
        Expr::Literal(l) => {
            (!matches!(l, cel::common::ast::LiteralValue::Boolean(_))).then_some("a literal")
        }
        Expr::List(_) => Some("a list"),
        Expr::Map(_) | Expr::Struct(_) => Some("a map"),
        Expr::Call(c)
            if [
                op::ADD,
                op::SUBSTRACT,
                op::MULTIPLY,
                op::DIVIDE,
                op::MODULO,
                op::NEGATE,
            ]
            .contains(&c.func_name.as_str()) =>
        {
            Some("arithmetic")
        }
        Expr::Call(c)
            if ["size", "string", "int", "uint", "double"].contains(&c.func_name.as_str()) =>
        {
            Some("a value")
        }
        _ => None,
    }
}

fn uses(e: &IdedExpr, var: &str) -> bool {
    e.references().has_variable(var)
}

/// Every variable filled, so a trial run shows the result's type.
fn sample() -> Vars {
    let event = serde_json::json!({
        "schema_version": 1, "id": "e", "source": "s", "provider": "p",
        "provider_event_type": "t", "kind": "completed", "envelope_id": "env",
        "received_at": "2026-01-01T00:00:00Z", "payload": {},
        "auth": { "method": "hmac_sha256", "covers_body": true },
    });
    let envelope = serde_json::json!({
        "state": "open", "metadata": {}, "signers": [],
        "progress": { "expected": 0, "viewed": 0, "signed": 0, "declined": 0 },
    });
    Vars {
        event: to_value(&event),
        envelope: to_value(&envelope),
        source: Value::String(Arc::new("s".into())),
    }
}

#[cfg(test)]
mod tests;
