//! Mesos's JSON mapping of protobuf messages (the one stout implements), both ways. It is not
//! proto3's canonical JSON:
//!
//! - keys are the proto field names (snake_case); unknown keys are ignored;
//! - enums are their value names; a JSON number for an enum is an error; an unknown name leaves
//!   an optional field unset and is an error for a required one;
//! - `bytes` are standard base64 (read leniently: padding optional);
//! - a lone value where a repeated field is expected counts as a one-element list;
//! - booleans also read from `"true"` and `"false"`;
//! - 64-bit integers are written as numbers and read from numbers or numeric strings;
//! - doubles read from numbers or numeric strings, with `"Infinity"`, `"-Infinity"` and `"NaN"`;
//! - `null` means unset; empty repeated fields are left out;
//! - on output, an unset optional field that declares a default (and is not deprecated) is
//!   written with that default, e.g. `Filters.refuse_seconds: 5`;
//! - a message missing a required field is refused.
//!
//! Every conversion between JSON and our prost types goes through [`to_json`] and [`from_json`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value};
use serde_json::{Map, Number, Value as Json};

use crate::descriptor::message_descriptor;

/// A JSON document that does not describe a valid message of the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The bytes are not JSON at all.
    #[error("Failed to parse body into JSON: {0}")]
    Syntax(String),
    /// The JSON does not fit the message schema.
    #[error("Failed to convert JSON into {message} protobuf: {path}: {reason}")]
    Schema {
        /// Full name of the top-level message being parsed, e.g. `mesos.v1.scheduler.Call`.
        message: String,
        /// Dotted path to the offending field (`subscribe.framework_info.user`), or `(root)`.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Writes `msg` as Mesos JSON.
pub fn to_json<M: prost::Message + prost::Name>(msg: &M) -> Json {
    let desc = message_descriptor::<M>();
    let dynamic =
        DynamicMessage::decode(desc, msg.encode_to_vec().as_slice()).expect("a prost message always re-decodes under its own descriptor");
    write_message(&dynamic)
}

/// Writes `msg` as Mesos JSON bytes.
pub fn to_json_vec<M: prost::Message + prost::Name>(msg: &M) -> Vec<u8> {
    serde_json::to_vec(&to_json(msg)).expect("serialising a serde_json::Value cannot fail")
}

/// Reads a message of type `M` from Mesos JSON.
pub fn from_json<M: prost::Message + prost::Name + Default>(json: &Json) -> Result<M, JsonError> {
    let desc = message_descriptor::<M>();
    let mut path = Vec::new();
    let dynamic = parse_message(&desc, json, &mut path).map_err(|reason| JsonError::Schema {
        message: desc.full_name().to_owned(),
        path: if path.is_empty() { "(root)".to_owned() } else { path.join(".") },
        reason,
    })?;
    Ok(dynamic.transcode_to::<M>().expect("a dynamic message always transcodes to its own prost type"))
}

/// Reads a message of type `M` from Mesos JSON bytes.
pub fn from_json_slice<M: prost::Message + prost::Name + Default>(bytes: &[u8]) -> Result<M, JsonError> {
    let json: Json = serde_json::from_slice(bytes).map_err(|e| JsonError::Syntax(e.to_string()))?;
    from_json(&json)
}

/// Lists the keys of `json` (at any depth) that are not fields of message `M`, as dotted paths.
/// Mesos ignores such keys; a peer that must be exact (our local master, in tests) can use this
/// to check that what it writes is strictly under the schema.
pub fn unknown_keys<M: prost::Name>(json: &Json) -> Vec<String> {
    let mut out = Vec::new();
    collect_unknown(&message_descriptor::<M>(), json, "", &mut out);
    out
}

fn collect_unknown(desc: &MessageDescriptor, json: &Json, path: &str, out: &mut Vec<String>) {
    let Json::Object(obj) = json else { return };
    for (key, value) in obj {
        let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
        let Some(field) = desc.get_field_by_name(key) else {
            out.push(here);
            continue;
        };
        let Kind::Message(m) = field.kind() else { continue };
        if field.is_map() {
            let value_kind = m.map_entry_value_field().kind();
            if let (Some(vm), Json::Object(entries)) = (value_kind.as_message(), value) {
                for (k, v) in entries {
                    collect_unknown(vm, v, &format!("{here}.{k}"), out);
                }
            }
        } else if let Json::Array(items) = value {
            for (i, item) in items.iter().enumerate() {
                collect_unknown(&m, item, &format!("{here}[{i}]"), out);
            }
        } else {
            collect_unknown(&m, value, &here, out);
        }
    }
}

fn write_message(msg: &DynamicMessage) -> Json {
    let mut out = Map::new();
    for field in msg.descriptor().fields() {
        let value = if msg.has_field(&field) {
            write_value(&field, &msg.get_field(&field))
        } else if !field.is_list() && !field.is_map() && declares_default(&field) && !is_deprecated(&field) {
            write_value(&field, &field.default_value())
        } else {
            None
        };
        if let Some(value) = value {
            out.insert(field.name().to_owned(), value);
        }
    }
    Json::Object(out)
}

fn write_value(field: &FieldDescriptor, value: &Value) -> Option<Json> {
    let kind = field.kind();
    match value {
        Value::List(items) => {
            let items: Vec<Json> = items.iter().filter_map(|v| write_single(&kind, v)).collect();
            (!items.is_empty()).then_some(Json::Array(items))
        }
        Value::Map(entries) => {
            let value_kind = kind.as_message().map(|m| m.map_entry_value_field().kind())?;
            let obj: Map<String, Json> =
                entries.iter().filter_map(|(k, v)| Some((map_key_string(k), write_single(&value_kind, v)?))).collect();
            (!obj.is_empty()).then_some(Json::Object(obj))
        }
        single => write_single(&kind, single),
    }
}

fn write_single(kind: &Kind, value: &Value) -> Option<Json> {
    Some(match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(n) => Json::from(*n),
        Value::I64(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::U64(n) => Json::from(*n),
        Value::F32(n) => write_double(f64::from(*n)),
        Value::F64(n) => write_double(*n),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(BASE64.encode(b)),
        // An enum number with no name cannot be written in Mesos JSON; C++ proto2 keeps such
        // values among the unknown fields, which JSON output leaves out too.
        Value::EnumNumber(n) => Json::String(kind.as_enum()?.get_value(*n)?.name().to_owned()),
        Value::Message(m) => write_message(m),
        Value::List(_) | Value::Map(_) => return None,
    })
}

fn write_double(n: f64) -> Json {
    match Number::from_f64(n) {
        Some(num) => Json::Number(num),
        None if n.is_nan() => Json::String("NaN".to_owned()),
        None if n > 0.0 => Json::String("Infinity".to_owned()),
        None => Json::String("-Infinity".to_owned()),
    }
}

fn map_key_string(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

fn declares_default(field: &FieldDescriptor) -> bool {
    field.field_descriptor_proto().default_value.is_some()
}

fn is_deprecated(field: &FieldDescriptor) -> bool {
    field.field_descriptor_proto().options.as_ref().and_then(|o| o.deprecated).unwrap_or(false)
}

/// Parses `json` as a message of type `desc`. On error, `path` names the offending field.
fn parse_message(desc: &MessageDescriptor, json: &Json, path: &mut Vec<String>) -> Result<DynamicMessage, String> {
    let Json::Object(obj) = json else {
        return Err(format!("expected a JSON object, found {}", json_kind(json)));
    };
    let mut msg = DynamicMessage::new(desc.clone());
    for (key, value) in obj {
        let Some(field) = desc.get_field_by_name(key) else { continue };
        if value.is_null() {
            continue;
        }
        path.push(key.clone());
        if let Some(parsed) = parse_field(&field, value, path)? {
            msg.set_field(&field, parsed);
        }
        path.pop();
    }
    for field in desc.fields().filter(FieldDescriptor::is_required) {
        if !msg.has_field(&field) {
            path.push(field.name().to_owned());
            return Err("missing required field".to_owned());
        }
    }
    Ok(msg)
}

fn parse_field(field: &FieldDescriptor, json: &Json, path: &mut Vec<String>) -> Result<Option<Value>, String> {
    let kind = field.kind();
    if field.is_map() {
        let Json::Object(obj) = json else {
            return Err(format!("expected a JSON object for a map, found {}", json_kind(json)));
        };
        let entry = kind.as_message().ok_or("map field without an entry message")?;
        let (key_kind, value_kind) = (entry.map_entry_key_field().kind(), entry.map_entry_value_field().kind());
        let mut map = std::collections::HashMap::with_capacity(obj.len());
        for (k, v) in obj {
            path.push(k.clone());
            let key = parse_map_key(&key_kind, k)?;
            if let Some(value) = parse_single(&value_kind, v, path)? {
                map.insert(key, value);
            }
            path.pop();
        }
        return Ok(Some(Value::Map(map)));
    }
    if field.is_list() {
        // Like stout, a lone value stands for a one-element list.
        let items = match json {
            Json::Array(items) => items.as_slice(),
            single => std::slice::from_ref(single),
        };
        let mut list = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            path.push(i.to_string());
            if item.is_null() {
                return Err("null is not a valid element of a repeated field".to_owned());
            }
            if let Some(v) = parse_single(&kind, item, path)? {
                list.push(v);
            }
            path.pop();
        }
        return Ok(Some(Value::List(list)));
    }
    let parsed = parse_single(&kind, json, path)?;
    if parsed.is_none() && field.is_required() {
        return Err(format!("unknown value {json} for required enum field"));
    }
    Ok(parsed)
}

/// Parses one value. `Ok(None)` is an enum name the schema does not know, which Mesos drops.
fn parse_single(kind: &Kind, json: &Json, path: &mut Vec<String>) -> Result<Option<Value>, String> {
    let value = match kind {
        Kind::Double => Value::F64(parse_f64(json)?),
        Kind::Float => Value::F32(parse_f64(json)? as f32),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(i32::try_from(parse_i64(json)?).map_err(|_| format!("{json} is out of range for int32"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(parse_i64(json)?),
        Kind::Uint32 | Kind::Fixed32 => {
            Value::U32(u32::try_from(parse_u64(json)?).map_err(|_| format!("{json} is out of range for uint32"))?)
        }
        Kind::Uint64 | Kind::Fixed64 => Value::U64(parse_u64(json)?),
        Kind::Bool => match json {
            Json::Bool(b) => Value::Bool(*b),
            Json::String(s) if s == "true" || s == "false" => Value::Bool(s == "true"),
            other => return Err(format!("expected a JSON boolean, found {}", json_kind(other))),
        },
        Kind::String => match json {
            Json::String(s) => Value::String(s.clone()),
            other => return Err(format!("expected a JSON string, found {}", json_kind(other))),
        },
        Kind::Bytes => match json {
            Json::String(s) => Value::Bytes(decode_base64(s)?.into()),
            other => return Err(format!("expected a base64 JSON string, found {}", json_kind(other))),
        },
        Kind::Enum(e) => match json {
            Json::String(name) => match e.get_value_by_name(name) {
                Some(v) => Value::EnumNumber(v.number()),
                None => return Ok(None),
            },
            Json::Number(_) => return Err(format!("not expecting a JSON number for enum {}; use the value's name", e.name())),
            other => return Err(format!("expected an enum name string, found {}", json_kind(other))),
        },
        Kind::Message(m) => Value::Message(parse_message(m, json, path)?),
    };
    Ok(Some(value))
}

/// Standard-alphabet base64 read as leniently as stout does: whitespace is skipped, padding is
/// optional and decoding stops at the first `=`.
fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).take_while(|c| *c != '=').collect();
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(compact.as_bytes())
        .map_err(|e| format!("invalid base64 for a bytes field: {e}"))
}

fn parse_map_key(kind: &Kind, key: &str) -> Result<MapKey, String> {
    let bad = || format!("invalid map key {key:?}");
    Ok(match kind {
        Kind::String => MapKey::String(key.to_owned()),
        Kind::Bool => MapKey::Bool(key.parse().map_err(|_| bad())?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(key.parse().map_err(|_| bad())?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(key.parse().map_err(|_| bad())?),
        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(key.parse().map_err(|_| bad())?),
        Kind::Uint64 | Kind::Fixed64 => MapKey::U64(key.parse().map_err(|_| bad())?),
        _ => return Err(bad()),
    })
}

fn parse_f64(json: &Json) -> Result<f64, String> {
    match json {
        Json::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is not a valid double")),
        Json::String(s) => match s.as_str() {
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            "NaN" => Ok(f64::NAN),
            other => other.trim().parse().map_err(|_| format!("{other:?} is not a number")),
        },
        other => Err(format!("expected a JSON number, found {}", json_kind(other))),
    }
}

fn parse_i64(json: &Json) -> Result<i64, String> {
    match json {
        Json::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.abs() < 9.2e18).map(|f| f.trunc() as i64))
            .ok_or_else(|| format!("{n} is not a valid integer")),
        Json::String(s) => s.trim().parse().map_err(|_| format!("{s:?} is not an integer")),
        other => Err(format!("expected a JSON integer, found {}", json_kind(other))),
    }
}

fn parse_u64(json: &Json) -> Result<u64, String> {
    match json {
        Json::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0 && *f < 1.8e19).map(|f| f.trunc() as u64))
            .ok_or_else(|| format!("{n} is not a valid unsigned integer")),
        Json::String(s) => s.trim().parse().map_err(|_| format!("{s:?} is not an unsigned integer")),
        other => Err(format!("expected a JSON unsigned integer, found {}", json_kind(other))),
    }
}

fn json_kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}
