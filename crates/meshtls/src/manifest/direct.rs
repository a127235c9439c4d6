//! The direct reader: YAML text to JSON values straight from the parser's events.
//!
//! serde-saphyr reads a document through serde: it records every mapping key as a little
//! event buffer, fingerprints it for the duplicate check, replays it into the key's
//! deserializer, and builds the value through a visitor. That costs more than the parser
//! itself. This reader walks granit-parser's events (the parser serde-saphyr drives, with
//! the options serde-saphyr gives it) and builds the `serde_json::Value`s itself, for the
//! YAML that manifests are made of: block and flow collections, plain, quoted and block
//! scalars, untagged or with an application's local tag (`!thing`), several documents.
//!
//! It gives serde-saphyr's answer or nothing: every rule it applies is serde-saphyr's rule
//! for a typeless value (null, YAML 1.1 booleans, integers and floats as its `deserialize_any`
//! reads them, the event and node budgets counted per parser event as its budget counts
//! them), and anything else — an anchor or alias, a merge key, a core or `%TAG` tag, a
//! directive, a non-scalar key, a key that is null, boolean or a number other than a plain
//! decimal, a key twice in one mapping, a float that is not finite, nesting past the depth
//! limit, a syntax error — ends the walk with [`Stop::Unsure`], and the caller reads the
//! whole text with serde-saphyr, which gives its own value or error. The differential tests
//! (`tests/core/manifest_direct.rs`) hold the two to the same answers.

use std::borrow::Cow;

use granit_parser::{Event, Parser, ScalarStyle, Tag};
use serde_json::{Map, Number, Value};

use super::{MAX_DEPTH, MAX_DOCUMENTS};

/// Why the direct reader gives no values.
#[derive(Debug)]
pub(super) enum Stop {
    /// serde-saphyr refuses the text with this budget error.
    Over { counted: &'static str, limit: usize },
    /// Outside what this reader decides: serde-saphyr must read the text.
    Unsure,
}

/// Which texts the direct reader answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// A stream of any number of documents (`from_multiple`).
    Stream,
    /// Exactly one document whose value is not null (`from_str`).
    One,
}

/// The parser options serde-saphyr uses for our budget: its defaults, with room for one
/// level past [`MAX_DEPTH`] so that depth is refused by the budget, not by the parser.
fn parser_options() -> granit_parser::Options {
    let budget = serde_saphyr::Budget::default();
    let mut options = granit_parser::Options::default();
    options.simple_key_max_lookahead = budget.simple_key_max_lookahead;
    options.flow_nesting_limit = budget.flow_nesting_limit;
    options.block_nesting_limit = options.block_nesting_limit.max(MAX_DEPTH + 1);
    // Comments are never data. granit-parser emits them as events when its `comments` feature
    // is on, which another crate of the build can turn on (kube-client does, through
    // serde-saphyr's defaults); the reader must read the same either way.
    options.emit_comments = false;
    options
}

enum Frame {
    Seq(Vec<Value>),
    /// A mapping and, between a key and its value, the key.
    Map(Map<String, Value>, Option<String>),
}

/// Reads `text` as serde-saphyr would with budgets of `max_events` parser events and
/// `max_nodes` nodes: the documents' values, empty and null documents dropped (for
/// [`Shape::One`], exactly one), or why not.
pub(super) fn read(
    text: &str,
    shape: Shape,
    max_nodes: usize,
    max_events: usize,
) -> Result<Vec<Value>, Stop> {
    let docs = walk(text, shape, max_nodes, max_events)?;
    if shape == Shape::One && docs.len() != 1 {
        return Err(Stop::Unsure);
    }
    Ok(docs)
}

fn walk(text: &str, shape: Shape, max_nodes: usize, max_events: usize) -> Result<Vec<Value>, Stop> {
    let mut parser = Parser::new_from_str_with_options(text, parser_options());
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Value> = None;
    let (mut events, mut nodes, mut documents) = (0usize, 0usize, 0usize);
    while let Some(item) = parser.next_event() {
        let Ok((event, _span)) = item else {
            return Err(Stop::Unsure);
        };
        if matches!(event, Event::Alias(_)) {
            return Err(Stop::Unsure);
        }
        // serde-saphyr's budget counts every event but aliases, and events first.
        events += 1;
        if events > max_events {
            return Err(Stop::Over {
                counted: "events",
                limit: max_events,
            });
        }
        let node = match event {
            Event::StreamStart | Event::StreamEnd => continue,
            Event::DocumentStart(_, version) => {
                documents += 1;
                // Past serde-saphyr's document budget, its error is its own.
                if version.is_some()
                    || documents > MAX_DOCUMENTS
                    || (shape == Shape::One && documents > 1)
                {
                    return Err(Stop::Unsure);
                }
                continue;
            }
            Event::DocumentEnd => {
                if let Some(value) = root.take().filter(|v| !v.is_null()) {
                    docs.push(value);
                }
                continue;
            }
            Event::Scalar(value, style, anchor, tag) => {
                count_node(&mut nodes, max_nodes)?;
                if anchor != 0 || !local_or_none(tag.as_deref()) {
                    return Err(Stop::Unsure);
                }
                if let Some(Frame::Map(map, key @ None)) = stack.last_mut() {
                    let k = mapping_key(value, &style, tag.is_some())?;
                    if map.contains_key(&k) {
                        return Err(Stop::Unsure);
                    }
                    *key = Some(k);
                    continue;
                }
                scalar(value, &style)?
            }
            Event::SequenceStart(_, anchor, tag) => {
                open(&stack, &mut nodes, max_nodes, anchor, tag.as_deref())?;
                stack.push(Frame::Seq(Vec::new()));
                continue;
            }
            Event::MappingStart(_, anchor, tag) => {
                open(&stack, &mut nodes, max_nodes, anchor, tag.as_deref())?;
                stack.push(Frame::Map(Map::new(), None));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(items)) => Value::Array(items),
                Some(Frame::Map(map, None)) => Value::Object(map),
                _ => return Err(Stop::Unsure),
            },
            _ => return Err(Stop::Unsure),
        };
        attach(&mut stack, &mut root, node)?;
    }
    Ok(docs)
}

/// A collection's start, counted as serde-saphyr counts it (a node, then a level).
fn open(
    stack: &[Frame],
    nodes: &mut usize,
    max_nodes: usize,
    anchor: usize,
    tag: Option<&Tag>,
) -> Result<(), Stop> {
    count_node(nodes, max_nodes)?;
    let key_position = matches!(stack.last(), Some(Frame::Map(_, None)));
    if stack.len() >= MAX_DEPTH || anchor != 0 || key_position || !local_or_none(tag) {
        return Err(Stop::Unsure);
    }
    Ok(())
}

fn count_node(nodes: &mut usize, max_nodes: usize) -> Result<(), Stop> {
    *nodes += 1;
    if *nodes > max_nodes {
        return Err(Stop::Over {
            counted: "nodes",
            limit: max_nodes,
        });
    }
    Ok(())
}

/// Puts a finished node where it belongs: into the open sequence, as the value of the open
/// mapping's key, or as the document's root.
fn attach(stack: &mut [Frame], root: &mut Option<Value>, node: Value) -> Result<(), Stop> {
    match stack.last_mut() {
        Some(Frame::Seq(items)) => items.push(node),
        Some(Frame::Map(map, key)) => match key.take() {
            Some(k) => {
                map.insert(k, node);
            }
            // A collection as a key.
            None => return Err(Stop::Unsure),
        },
        None => {
            if root.is_some() {
                return Err(Stop::Unsure);
            }
            *root = Some(node);
        }
    }
    Ok(())
}

/// No tag, or an application's local tag (`!thing`) that serde-saphyr reads as no tag
/// (its `SfTag::Other`): not a core-schema tag, not one of the names it gives a meaning to
/// in the `!` namespace, not the non-specific `!`, not `!include…`.
fn local_or_none(tag: Option<&Tag>) -> bool {
    let Some(tag) = tag else {
        return true;
    };
    if tag.core_suffix().is_some() {
        return false;
    }
    let Some(name) = tag.suffix_in_namespace("!") else {
        return false;
    };
    const MEANINGFUL: [&str; 15] = [
        "int",
        "float",
        "bool",
        "null",
        "seq",
        "map",
        "str",
        "timestamp",
        "time",
        "binary",
        "include",
        "degrees",
        "radians",
        "merge",
        "value",
    ];
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.starts_with("include")
        && !MEANINGFUL.contains(&name.as_ref())
}

/// A mapping key as serde-saphyr gives it to a JSON map (its text), for the keys whose
/// duplicate check is plain text equality: quoted and block scalars, and plain scalars that
/// are neither null, a boolean, a merge key nor number-like, or that are a short plain
/// decimal (`8080`). Tagged keys are left to serde-saphyr.
fn mapping_key(value: Cow<'_, str>, style: &ScalarStyle, tagged: bool) -> Result<String, Stop> {
    if tagged {
        return Err(Stop::Unsure);
    }
    if *style != ScalarStyle::Plain {
        return Ok(value.into_owned());
    }
    let t = value.as_ref();
    if is_nullish(t) || yaml11_bool(t).is_some() || t == "<<" {
        return Err(Stop::Unsure);
    }
    if number_like(t) {
        let canonical = (t == "0" || !t.starts_with('0'))
            && t.len() <= 15
            && t.bytes().all(|b| b.is_ascii_digit());
        if !canonical {
            return Err(Stop::Unsure);
        }
    }
    Ok(value.into_owned())
}

/// Plain text that may read as a number (serde-saphyr tries its integer and float readers
/// only on such text to any effect): a digit, a sign or a dot first.
fn number_like(t: &str) -> bool {
    matches!(t.as_bytes().first(), Some(b'0'..=b'9' | b'+' | b'-' | b'.'))
}

fn is_nullish(t: &str) -> bool {
    matches!(t, "" | "~" | "null" | "Null" | "NULL")
}

/// YAML 1.1 booleans, as serde-saphyr reads them by default (`strict_booleans` off).
fn yaml11_bool(t: &str) -> Option<bool> {
    const TRUE: [&str; 4] = ["true", "yes", "y", "on"];
    const FALSE: [&str; 4] = ["false", "no", "n", "off"];
    if TRUE.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Some(true)
    } else if FALSE.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Some(false)
    } else {
        None
    }
}

/// A scalar value as serde-saphyr's `deserialize_any` reads it into a JSON value (no tag or
/// a local one): quoted and block scalars are strings; a plain scalar is null, a boolean,
/// an integer (64 bits, decimal; other radixes are left to serde-saphyr), a finite float,
/// or a string.
fn scalar(value: Cow<'_, str>, style: &ScalarStyle) -> Result<Value, Stop> {
    if *style != ScalarStyle::Plain {
        return Ok(Value::String(value.into_owned()));
    }
    let t = value.as_ref();
    if is_nullish(t) {
        return Ok(Value::Null);
    }
    if let Some(b) = yaml11_bool(t) {
        return Ok(Value::Bool(b));
    }
    if !number_like(t) {
        return Ok(Value::String(value.into_owned()));
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if matches!(
        unsigned.as_bytes(),
        [b'0', b'x' | b'X' | b'o' | b'O' | b'b' | b'B', ..]
    ) {
        return Err(Stop::Unsure);
    }
    if matches!(unsigned, ".nan" | ".NaN" | ".NAN") {
        // A signed NaN is a string to serde-saphyr; an unsigned one a non-finite float.
        return if unsigned.len() == t.len() {
            Err(Stop::Unsure)
        } else {
            Ok(Value::String(value.into_owned()))
        };
    }
    if let Some(n) = decimal(t) {
        return Ok(Value::Number(n));
    }
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") {
        return Err(Stop::Unsure);
    }
    match t.parse::<f64>() {
        Ok(f) if f.is_finite() => match Number::from_f64(f) {
            Some(n) => Ok(Value::Number(n)),
            None => Err(Stop::Unsure),
        },
        // Past f64's range with a digit first: serde-saphyr refuses the non-finite float.
        Ok(_) if unsigned.as_bytes().first().is_some_and(u8::is_ascii_digit) => Err(Stop::Unsure),
        _ => Ok(Value::String(value.into_owned())),
    }
}

/// serde-saphyr's decimal integers for a typeless value: a `-` reads as `i64`, anything
/// else (an optional `+`) as `u64`; digits with single `_` between them; no leading zero
/// but for `0` itself.
fn decimal(t: &str) -> Option<Number> {
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.starts_with('0') && digits != "0" {
        return None;
    }
    let bytes = digits.as_bytes();
    let mut magnitude: u128 = 0;
    let mut saw = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'_' => {
                let prev = i > 0 && bytes[i - 1] != b'_';
                let next = i + 1 < bytes.len() && bytes[i + 1] != b'_';
                if !prev || !next {
                    return None;
                }
            }
            b'0'..=b'9' => {
                magnitude = magnitude
                    .checked_mul(10)?
                    .checked_add(u128::from(b - b'0'))?;
                saw = true;
            }
            _ => return None,
        }
    }
    if !saw {
        return None;
    }
    if negative {
        let m = i128::try_from(magnitude).ok()?;
        i64::try_from(-m).ok().map(Number::from)
    } else {
        u64::try_from(magnitude).ok().map(Number::from)
    }
}
