//! A JSON value that refuses duplicate object members.
//!
//! serde_json keeps the last of two equal keys without a word; the SPIFFE bundle standard
//! requires consumers to reject a bundle map that names a trust domain twice (§5.1.1, §6.3),
//! and a bundle with two `keys` members is just as ambiguous. So bundles are read into this
//! value first, with serde_json's tokenizer (and its nesting limit) underneath. Strings and
//! member names borrow from the text unless they hold escapes (a 1 MB bundle map is mostly
//! base64 certificates: copying each would be most of the work).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A parsed JSON value; objects keep their members in document order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

/// Objects up to this many members are checked for a repeated name by comparing names;
/// larger ones with a hash set.
const SCAN_MEMBERS: usize = 16;

impl<'a> Json<'a> {
    /// Parses `text`, rejecting any object that repeats a member name.
    pub(crate) fn parse(text: &'a str) -> Result<Json<'a>, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// The member `name` of an object.
    pub(crate) fn get(&self, name: &str) -> Option<&Json<'a>> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// What kind of value this is, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

/// A member name, borrowed when it has no escapes.
struct Name<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json<'de>, E> {
        serde_json::Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Json<'de>>()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut members: Vec<(Cow<'de, str>, Json<'de>)> = Vec::new();
        // Filled once the object grows past SCAN_MEMBERS (borrowed names cost nothing to
        // keep twice).
        let mut names: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
            let repeated = if members.len() < SCAN_MEMBERS {
                members.iter().any(|(k, _)| *k == name)
            } else {
                if names.is_empty() {
                    names.extend(members.iter().map(|(k, _)| k.clone()));
                }
                !names.insert(name.clone())
            };
            if repeated {
                return Err(de::Error::custom(format!(
                    "duplicate member {name:?} in one object (duplicates are rejected, not overwritten)"
                )));
            }
            let value = map.next_value::<Json<'de>>()?;
            members.push((name, value));
        }
        Ok(Json::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_members_are_rejected_at_any_depth() {
        let err = Json::parse(r#"{"a": 1, "a": 2}"#).unwrap_err();
        assert!(err.contains("duplicate member \"a\""), "{err}");
        let err = Json::parse(r#"{"x": [{"k": 1, "j": 2, "k": 3}]}"#).unwrap_err();
        assert!(err.contains("duplicate member \"k\""), "{err}");
        assert!(Json::parse(r#"{"a": {"a": 1}}"#).is_ok());
    }

    #[test]
    fn duplicates_in_large_objects_and_escaped_names() {
        let mut text = String::from("{");
        for i in 0..40 {
            text.push_str(&format!("\"m{i}\": {i}, "));
        }
        let ok = format!("{text}\"last\": 0}}");
        assert!(Json::parse(&ok).is_ok());
        let err = Json::parse(&format!("{text}\"m33\": 0}}")).unwrap_err();
        assert!(err.contains("duplicate member \"m33\""), "{err}");
        // An escaped spelling of the same name is the same name.
        let err = Json::parse(r#"{"ab": 1, "a\u0062": 2}"#).unwrap_err();
        assert!(err.contains("duplicate member \"ab\""), "{err}");
        let err = Json::parse(&format!("{text}\"m\\u0033\": 0}}")).unwrap_err();
        assert!(err.contains("duplicate member \"m3\""), "{err}");
    }

    #[test]
    fn values_keep_document_order() {
        let v = Json::parse(r#"{"b": [1, -2, 3.5, "s", null, true], "a": {}}"#).unwrap();
        let Json::Object(m) = &v else { panic!() };
        assert_eq!(m[0].0, "b");
        assert_eq!(m[1].0, "a");
        assert_eq!(v.get("b").map(Json::kind), Some("an array"));
    }
}
