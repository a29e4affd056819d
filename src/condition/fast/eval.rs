//! Evaluating a compiled condition over one event: values borrowed where
//! they lie, CEL's semantics for equality, ordering, arithmetic, `in` and
//! the error-absorbing logic operators.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::cmp::Ordering;
use std::rc::Rc;

use serde_json::Value as Json;

use super::{Comp, Func, Lit, Node};
use crate::event::{EnvelopeBlock, SignatureEvent};

/// A value during evaluation: scalars, strings borrowed where they lie,
/// JSON containers by reference, and lists built by the expression.
#[derive(Debug, Clone)]
enum V<'d> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    Str(Cow<'d, str>),
    /// A JSON array or object.
    Json(&'d Json),
    List(Rc<Vec<V<'d>>>),
}

/// Evaluation did not give a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// CEL's error value (the interpreter gives the message).
    Error,
    /// A case this evaluator does not model: the interpreter decides.
    Defer,
}

const ERR: Stop = Stop::Error;

type R<'d> = Result<V<'d>, Stop>;

fn json(j: &Json) -> V<'_> {
    match j {
        Json::Null => V::Null,
        Json::Bool(b) => V::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => V::Int(i),
            (None, Some(u)) => V::UInt(u),
            _ => V::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => V::Str(Cow::Borrowed(s)),
        Json::Array(_) | Json::Object(_) => V::Json(j),
    }
}

/// What a condition reads: the event where it lies, and the JSON of its
/// nested parts, built the first time a condition reads them.
pub struct Data<'a> {
    event: &'a SignatureEvent,
    envelope: Option<&'a EnvelopeBlock>,
    signer: OnceCell<Json>,
    auth: OnceCell<Json>,
    block: OnceCell<Json>,
    envelope_json: OnceCell<Json>,
}

impl<'a> Data<'a> {
    pub fn new(event: &'a SignatureEvent, envelope: Option<&'a EnvelopeBlock>) -> Data<'a> {
        Data {
            event,
            envelope,
            signer: OnceCell::new(),
            auth: OnceCell::new(),
            block: OnceCell::new(),
            envelope_json: OnceCell::new(),
        }
    }

    /// `event.<name>`: `None` when the event has no such key.
    fn field<'d>(&'d self, name: &str) -> Option<V<'d>> {
        let e = self.event;
        let s = |x: &'d str| Some(V::Str(Cow::Borrowed(x)));
        let opt = |x: &'d Option<String>| x.as_deref().and_then(s);
        let lazy = |cell: &'d OnceCell<Json>, make: &dyn Fn() -> Json| -> V<'d> {
            json(cell.get_or_init(make))
        };
        match name {
            "schema_version" => Some(V::Int(i64::from(e.schema_version))),
            "id" => s(e.id.as_str()),
            "source" => s(&e.source),
            "provider" => s(&e.provider),
            "provider_event_type" => s(&e.provider_event_type),
            "kind" => s(e.kind.as_str()),
            // Always present, null when unknown.
            "envelope_id" => Some(opt(&e.envelope_id).unwrap_or(V::Null)),
            "document_id" => opt(&e.document_id),
            "occurred_at" => opt(&e.occurred_at),
            "received_at" => s(&e.received_at),
            "origin" => opt(&e.origin),
            "cause" => opt(&e.cause),
            "sandbox" => e.sandbox.map(V::Bool),
            "payload" => Some(json(&e.payload)),
            "signer" => (e.signer.as_ref()).map(|x| lazy(&self.signer, &|| to_json(x))),
            "auth" => Some(lazy(&self.auth, &|| to_json(&e.auth))),
            "envelope" => (e.envelope.as_ref()).map(|b| lazy(&self.block, &|| to_json(b))),
            _ => None,
        }
    }

    fn envelope(&self) -> V<'_> {
        match self.envelope {
            Some(b) => json(self.envelope_json.get_or_init(|| to_json(b))),
            None => V::Null,
        }
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

/// Evaluates a compiled condition: `Ok(bool)`, or `Err` for an error or a
/// result that is not a bool.
pub fn eval(node: &Node, data: &Data) -> Result<bool, Stop> {
    let mut locals = Vec::new();
    let ev = Eval { data };
    match ev.node(node, &mut locals)? {
        V::Bool(b) => Ok(b),
        _ => Err(ERR),
    }
}

struct Eval<'d, 'a> {
    data: &'d Data<'a>,
}

impl<'d> Eval<'d, '_> {
    fn node(&self, n: &Node, locals: &mut Vec<V<'d>>) -> R<'d> {
        match n {
            Node::Lit(l) => Ok(match l {
                Lit::Null => V::Null,
                Lit::Bool(b) => V::Bool(*b),
                Lit::Int(i) => V::Int(*i),
                Lit::UInt(u) => V::UInt(*u),
                Lit::Double(d) => V::Double(*d),
                Lit::Str(s) => V::Str(Cow::Owned(s.clone())),
            }),
            Node::EventField(f) => self.data.field(f).ok_or(ERR),
            Node::HasEventField(f) => Ok(V::Bool(self.data.field(f).is_some())),
            Node::Envelope => Ok(self.data.envelope()),
            Node::Source => Ok(V::Str(Cow::Borrowed(&self.data.event.source))),
            Node::Local(i) => locals.get(*i).cloned().ok_or(ERR),
            Node::Select(x, f) => match self.node(x, locals)? {
                V::Json(Json::Object(m)) => m.get(f).map(json).ok_or(ERR),
                _ => Err(ERR),
            },
            Node::Has(x, f) => match self.node(x, locals)? {
                V::Json(Json::Object(m)) => Ok(V::Bool(m.contains_key(f))),
                _ => Err(ERR),
            },
            Node::List(xs) => {
                let mut out = Vec::with_capacity(xs.len());
                for x in xs {
                    out.push(self.node(x, locals)?);
                }
                Ok(V::List(Rc::new(out)))
            }
            Node::Call(f, args) => self.call(*f, args, locals),
            Node::Comp(c) => self.comp(c, locals),
        }
    }

    fn call(&self, f: Func, args: &[Node], locals: &mut Vec<V<'d>>) -> R<'d> {
        match f {
            Func::And | Func::Or => {
                // CEL's commutative logic: a deciding operand wins over an
                // error on the other side.
                let decides = f == Func::Or;
                let a = self.node(&args[0], locals).and_then(truth);
                if a == Ok(decides) || a == Err(Stop::Defer) {
                    return a.map(V::Bool);
                }
                let b = self.node(&args[1], locals).and_then(truth);
                match (a, b) {
                    (_, Err(Stop::Defer)) => Err(Stop::Defer),
                    (_, Ok(x)) if x == decides => Ok(V::Bool(decides)),
                    (Ok(_), Ok(_)) => Ok(V::Bool(!decides)),
                    _ => Err(ERR),
                }
            }
            Func::Not => Ok(V::Bool(!truth(self.node(&args[0], locals)?)?)),
            Func::NotStrictlyFalse => match self.node(&args[0], locals) {
                Err(Stop::Defer) => Err(Stop::Defer),
                x => Ok(V::Bool(!matches!(x, Ok(V::Bool(false))))),
            },
            Func::Cond => {
                if truth(self.node(&args[0], locals)?)? {
                    self.node(&args[1], locals)
                } else {
                    self.node(&args[2], locals)
                }
            }
            _ => {
                let a = self.node(&args[0], locals)?;
                if args.len() == 1 {
                    return unary(f, a);
                }
                let b = self.node(&args[1], locals)?;
                binary(f, a, b)
            }
        }
    }

    fn comp(&self, c: &Comp, locals: &mut Vec<V<'d>>) -> R<'d> {
        let range = self.node(&c.range, locals)?;
        let items: Vec<V<'d>> = match &range {
            V::List(l) => l.as_ref().clone(),
            V::Json(Json::Array(a)) => a.iter().map(json).collect(),
            V::Json(Json::Object(m)) => m.keys().map(|k| V::Str(Cow::Borrowed(k))).collect(),
            _ => return Err(ERR),
        };
        let need = c.accu + 1;
        if locals.len() < need {
            locals.resize(need, V::Null);
        }
        let mut accu = self.node(&c.init, locals)?;
        for item in items {
            locals[c.iter] = item;
            locals[c.accu] = accu.clone();
            if !truth(self.node(&c.cond, locals)?)? {
                break;
            }
            accu = self.node(&c.step, locals)?;
        }
        locals[c.accu] = accu;
        self.node(&c.result, locals)
    }
}

fn truth(v: V) -> Result<bool, Stop> {
    match v {
        V::Bool(b) => Ok(b),
        _ => Err(ERR),
    }
}

fn unary(f: Func, a: V) -> R {
    match (f, a) {
        (Func::Neg, V::Int(i)) => i.checked_neg().map(V::Int).ok_or(ERR),
        (Func::Neg, V::Double(d)) => Ok(V::Double(-d)),
        (Func::Size, V::Str(s)) => Ok(V::Int(s.chars().count() as i64)),
        (Func::Size, V::List(l)) => Ok(V::Int(l.len() as i64)),
        (Func::Size, V::Json(Json::Array(a))) => Ok(V::Int(a.len() as i64)),
        (Func::Size, V::Json(Json::Object(m))) => Ok(V::Int(m.len() as i64)),
        _ => Err(ERR),
    }
}

/// A list's items, for lists built here and JSON arrays alike.
fn items<'d>(v: &V<'d>) -> Option<Vec<V<'d>>> {
    match v {
        V::List(l) => Some(l.as_ref().clone()),
        V::Json(Json::Array(a)) => Some(a.iter().map(json).collect()),
        _ => None,
    }
}

fn binary<'d>(f: Func, a: V<'d>, b: V<'d>) -> R<'d> {
    match f {
        Func::Eq => Ok(V::Bool(equal(&a, &b))),
        Func::Ne => Ok(V::Bool(!equal(&a, &b))),
        Func::Lt | Func::Le | Func::Gt | Func::Ge => {
            let o = order(&a, &b).ok_or(ERR)?;
            Ok(V::Bool(match f {
                Func::Lt => o == Ordering::Less,
                Func::Le => o != Ordering::Greater,
                Func::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }))
        }
        Func::Add | Func::Sub | Func::Mul | Func::Div | Func::Mod => arith(f, a, b),
        Func::In => match &b {
            V::Json(Json::Object(m)) => match &a {
                V::Str(k) => Ok(V::Bool(m.contains_key(k.as_ref()))),
                V::List(_) | V::Json(_) | V::Null => Err(ERR),
                _ => Ok(V::Bool(false)),
            },
            _ => {
                let list = items(&b).ok_or(ERR)?;
                Ok(V::Bool(list.iter().any(|x| equal(&a, x))))
            }
        },
        Func::Index => match (&a, &b) {
            (V::Json(Json::Object(m)), V::Str(k)) => m.get(k.as_ref()).map(json).ok_or(ERR),
            (_, V::Int(_) | V::UInt(_) | V::Double(_)) => {
                let i = match b {
                    V::Int(i) => usize::try_from(i).map_err(|_| ERR)?,
                    V::UInt(u) => usize::try_from(u).map_err(|_| ERR)?,
                    // As the interpreter does: a whole double indexes too.
                    V::Double(d) if d.fract() == 0.0 && d >= 0.0 => d as usize,
                    _ => return Err(ERR),
                };
                items(&a).ok_or(ERR)?.into_iter().nth(i).ok_or(ERR)
            }
            _ => Err(ERR),
        },
        Func::StartsWith | Func::EndsWith | Func::Contains => match (&a, &b) {
            (V::Str(s), V::Str(p)) => Ok(V::Bool(match f {
                Func::StartsWith => s.starts_with(p.as_ref()),
                Func::EndsWith => s.ends_with(p.as_ref()),
                _ => s.contains(p.as_ref()),
            })),
            _ => Err(ERR),
        },
        _ => Err(ERR),
    }
}

fn arith<'d>(f: Func, a: V<'d>, b: V<'d>) -> R<'d> {
    match (a, b) {
        (V::Int(x), V::Int(y)) => match f {
            Func::Add => x.checked_add(y),
            Func::Sub => x.checked_sub(y),
            Func::Mul => x.checked_mul(y),
            Func::Div => x.checked_div(y),
            _ => x.checked_rem(y),
        }
        .map(V::Int)
        .ok_or(ERR),
        (V::UInt(x), V::UInt(y)) => match f {
            Func::Add => x.checked_add(y),
            Func::Sub => x.checked_sub(y),
            Func::Mul => x.checked_mul(y),
            Func::Div => x.checked_div(y),
            _ => x.checked_rem(y),
        }
        .map(V::UInt)
        .ok_or(ERR),
        (V::Double(x), V::Double(y)) => Ok(V::Double(match f {
            Func::Add => x + y,
            Func::Sub => x - y,
            Func::Mul => x * y,
            Func::Div => x / y,
            _ => return Err(ERR),
        })),
        (V::Str(x), V::Str(y)) if f == Func::Add => Ok(V::Str(Cow::Owned(format!("{x}{y}")))),
        (a, b) if f == Func::Add => match (items(&a), items(&b)) {
            (Some(mut x), Some(y)) => {
                x.extend(y);
                Ok(V::List(Rc::new(x)))
            }
            // A container with something else: the interpreter has its
            // own rules there.
            _ if matches!(a, V::Json(_) | V::List(_)) || matches!(b, V::Json(_) | V::List(_)) => {
                Err(Stop::Defer)
            }
            _ => Err(ERR),
        },
        _ => Err(ERR),
    }
}

fn equal(a: &V, b: &V) -> bool {
    match (a, b) {
        (V::Null, V::Null) => true,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Str(x), V::Str(y)) => x == y,
        (V::Json(Json::Object(x)), V::Json(Json::Object(y))) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| equal(&json(v), &json(w))))
        }
        _ => match (items(a), items(b)) {
            (Some(x), Some(y)) => x.len() == y.len() && x.iter().zip(&y).all(|(p, q)| equal(p, q)),
            _ => order(a, b) == Some(Ordering::Equal) && is_number(a) && is_number(b),
        },
    }
}

fn is_number(v: &V) -> bool {
    matches!(v, V::Int(_) | V::UInt(_) | V::Double(_))
}

fn order(a: &V, b: &V) -> Option<Ordering> {
    match (a, b) {
        (V::Int(x), V::Int(y)) => Some(x.cmp(y)),
        (V::UInt(x), V::UInt(y)) => Some(x.cmp(y)),
        (V::Double(x), V::Double(y)) => x.partial_cmp(y),
        (V::Int(x), V::UInt(y)) => Some(u64::try_from(*x).map_or(Ordering::Less, |x| x.cmp(y))),
        (V::UInt(x), V::Int(y)) => Some(u64::try_from(*y).map_or(Ordering::Greater, |y| x.cmp(&y))),
        (V::Int(x), V::Double(y)) => (*x as f64).partial_cmp(y),
        (V::Double(x), V::Int(y)) => x.partial_cmp(&(*y as f64)),
        (V::UInt(x), V::Double(y)) => (*x as f64).partial_cmp(y),
        (V::Double(x), V::UInt(y)) => x.partial_cmp(&(*y as f64)),
        (V::Str(x), V::Str(y)) => Some(x.cmp(y)),
        (V::Bool(x), V::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}
