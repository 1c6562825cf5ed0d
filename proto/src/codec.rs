//! Choosing between the two encodings the Mesos HTTP APIs accept, and decoding with the checks
//! Mesos applies (required fields present).

use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, ReflectMessage};

use crate::descriptor::message_descriptor;
use crate::json::{self, JsonError};

/// `Content-Type` of JSON request bodies and JSON event records.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// `Content-Type` of protobuf request bodies and protobuf event records.
pub const CONTENT_TYPE_PROTOBUF: &str = "application/x-protobuf";

/// The encoding of a call body or of the records of an event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Mesos (stout) JSON, see [`crate::json`].
    Json,
    /// Binary protobuf.
    Protobuf,
}

impl Encoding {
    /// The media type naming this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => CONTENT_TYPE_JSON,
            Encoding::Protobuf => CONTENT_TYPE_PROTOBUF,
        }
    }

    /// The encoding named by an exact `Content-Type` value (Mesos allows no parameters).
    pub fn from_content_type(value: &str) -> Option<Self> {
        match value {
            CONTENT_TYPE_JSON => Some(Encoding::Json),
            CONTENT_TYPE_PROTOBUF => Some(Encoding::Protobuf),
            _ => None,
        }
    }
}

/// Why bytes could not be decoded as a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Bad JSON or JSON that does not fit the schema.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// Bad protobuf bytes.
    #[error("Failed to parse body into {message} protobuf: {reason}")]
    Protobuf {
        /// Full name of the expected message.
        message: String,
        /// What is wrong.
        reason: String,
    },
}

/// Encodes a message in the given encoding.
pub fn encode<M: prost::Message + prost::Name>(msg: &M, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Json => json::to_json_vec(msg),
        Encoding::Protobuf => msg.encode_to_vec(),
    }
}

/// Decodes a message, refusing one that lacks a required field (as protobuf's C++ parser does).
pub fn decode<M: prost::Message + prost::Name + Default>(bytes: &[u8], encoding: Encoding) -> Result<M, DecodeError> {
    match encoding {
        Encoding::Json => Ok(json::from_json_slice(bytes)?),
        Encoding::Protobuf => {
            let descriptor = message_descriptor::<M>();
            // The common case costs one walk over the bytes plus the typed decode; anything the
            // walk does not vouch for (malformed bytes, groups) takes the reflective path, which
            // words the error.
            if let Ok(None) = missing_required_in_wire(&descriptor, bytes, 0)
                && let Ok(msg) = M::decode(bytes)
            {
                return Ok(msg);
            }
            decode_reflective(&descriptor, bytes)
        }
    }
}

/// Decodes protobuf through a [`DynamicMessage`]: slower than [`decode`], and the reference it
/// must agree with; it is also what words [`decode`]'s errors.
pub fn decode_reflective<M: prost::Message + prost::Name + Default>(
    descriptor: &MessageDescriptor,
    bytes: &[u8],
) -> Result<M, DecodeError> {
    let fail = |reason: String| DecodeError::Protobuf { message: M::full_name(), reason };
    let dynamic = DynamicMessage::decode(descriptor.clone(), bytes).map_err(|e| fail(e.to_string()))?;
    if let Some(missing) = first_missing_required(&dynamic) {
        return Err(fail(format!("missing required field {missing}")));
    }
    dynamic.transcode_to::<M>().map_err(|e| fail(e.to_string()))
}

/// Why the wire walk gave up (the reflective decoder then explains it).
#[derive(Debug)]
struct NotWalkable;

/// Messages nest at most this deep before the walk gives up (as protobuf parsers limit recursion).
const MAX_DEPTH: u32 = 100;

/// Reads a base-128 varint from the front of `bytes`.
fn read_varint(bytes: &mut &[u8]) -> Result<u64, NotWalkable> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first().ok_or(NotWalkable)?;
        *bytes = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(NotWalkable)
}

/// Takes `n` bytes from the front of `bytes`.
fn take<'a>(bytes: &mut &'a [u8], n: u64) -> Result<&'a [u8], NotWalkable> {
    let n = usize::try_from(n).map_err(|_| NotWalkable)?;
    if n > bytes.len() {
        return Err(NotWalkable);
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

/// Reads one field from the front of `bytes`: its number, and its payload if it is
/// length-delimited (other payloads are skipped).
fn read_field<'a>(bytes: &mut &'a [u8]) -> Result<(u32, Option<&'a [u8]>), NotWalkable> {
    let key = read_varint(bytes)?;
    let number = u32::try_from(key >> 3).map_err(|_| NotWalkable)?;
    if number == 0 {
        return Err(NotWalkable);
    }
    let body = match key & 7 {
        0 => {
            read_varint(bytes)?;
            None
        }
        1 => {
            take(bytes, 8)?;
            None
        }
        2 => {
            let len = read_varint(bytes)?;
            Some(take(bytes, len)?)
        }
        5 => {
            take(bytes, 4)?;
            None
        }
        _ => return Err(NotWalkable),
    };
    Ok((number, body))
}

/// The same answer as [`first_missing_required`] on the decoded message, found by walking the
/// protobuf encoding without building it: which fields occur, and the nested messages' bytes.
fn missing_required_in_wire(desc: &MessageDescriptor, mut bytes: &[u8], depth: u32) -> Result<Option<String>, NotWalkable> {
    if depth > MAX_DEPTH {
        return Err(NotWalkable);
    }
    let mut seen: Vec<u32> = Vec::new();
    // Nested message fields: (field number, the bytes of one occurrence).
    let mut nested: Vec<(u32, &[u8])> = Vec::new();
    while !bytes.is_empty() {
        let (number, body) = read_field(&mut bytes)?;
        if let Some(body) = body
            && desc.get_field(number).is_some_and(|f| matches!(f.kind(), Kind::Message(_)))
        {
            nested.push((number, body));
        }
        if !seen.contains(&number) {
            seen.push(number);
        }
    }
    for field in desc.fields() {
        let present = seen.contains(&field.number());
        if field.is_required() && !present {
            return Ok(Some(field.name().to_owned()));
        }
        let Kind::Message(inner) = field.kind() else { continue };
        if !present {
            continue;
        }
        let occurrences = nested.iter().filter(|(n, _)| *n == field.number()).map(|(_, b)| *b);
        let found = if field.is_map() {
            let value_field = inner.map_entry_value_field();
            let Kind::Message(value_type) = value_field.kind() else { continue };
            let mut found = None;
            for entry in occurrences {
                // The entry's value bytes (field 2); several occurrences merge, as for any message.
                let mut value = Vec::new();
                let mut rest = entry;
                while !rest.is_empty() {
                    if let (number, Some(body)) = read_field(&mut rest)?
                        && number == value_field.number()
                    {
                        value.extend_from_slice(body);
                    }
                }
                if let Some(path) = missing_required_in_wire(&value_type, &value, depth + 1)? {
                    found = Some(format!("{}.{path}", field.name()));
                    break;
                }
            }
            found
        } else if field.is_list() {
            let mut found = None;
            for (i, item) in occurrences.enumerate() {
                if let Some(path) = missing_required_in_wire(&inner, item, depth + 1)? {
                    found = Some(format!("{}[{i}].{path}", field.name()));
                    break;
                }
            }
            found
        } else {
            // Occurrences of a singular message merge, and so do their encodings when joined.
            let parts: Vec<&[u8]> = occurrences.collect();
            let path = if let [one] = parts[..] {
                missing_required_in_wire(&inner, one, depth + 1)?
            } else {
                missing_required_in_wire(&inner, &parts.concat(), depth + 1)?
            };
            path.map(|p| format!("{}.{p}", field.name()))
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// The dotted path of the first required field that is not set, searching nested messages too.
pub fn first_missing_required(msg: &DynamicMessage) -> Option<String> {
    for field in msg.descriptor().fields() {
        if field.is_required() && !msg.has_field(&field) {
            return Some(field.name().to_owned());
        }
        if !msg.has_field(&field) {
            continue;
        }
        let nested = |m: &DynamicMessage, suffix: String| first_missing_required(m).map(|p| format!("{}{suffix}.{p}", field.name()));
        let value = msg.get_field(&field);
        let found = match &*value {
            prost_reflect::Value::Message(m) => nested(m, String::new()),
            prost_reflect::Value::List(items) => {
                items.iter().enumerate().find_map(|(i, v)| v.as_message().and_then(|m| nested(m, format!("[{i}]"))))
            }
            prost_reflect::Value::Map(entries) => entries.values().find_map(|v| v.as_message().and_then(|m| nested(m, String::new()))),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}
