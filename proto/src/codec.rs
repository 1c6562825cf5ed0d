//! Choosing between the two encodings the Mesos HTTP APIs accept, and decoding with the checks
//! Mesos applies (required fields present).

use prost_reflect::{DynamicMessage, ReflectMessage};

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
            let fail = |reason: String| DecodeError::Protobuf { message: M::full_name(), reason };
            let dynamic = DynamicMessage::decode(message_descriptor::<M>(), bytes).map_err(|e| fail(e.to_string()))?;
            if let Some(missing) = first_missing_required(&dynamic) {
                return Err(fail(format!("missing required field {missing}")));
            }
            dynamic.transcode_to::<M>().map_err(|e| fail(e.to_string()))
        }
    }
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
            prost_reflect::Value::List(items) => items.iter().enumerate().find_map(|(i, v)| v.as_message().and_then(|m| nested(m, format!("[{i}]")))),
            prost_reflect::Value::Map(entries) => entries.values().find_map(|v| v.as_message().and_then(|m| nested(m, String::new()))),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}
