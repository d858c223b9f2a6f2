//! Request validation in FastAPI's 422 shape, and the extractors that apply it.
//!
//! Bodies are read as bytes (1 MiB at most), parsed as JSON, then checked field
//! by field so that every problem is reported at once, as pydantic does.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::web::{Bytes, PathConfig};
use actix_web::{FromRequest, HttpRequest};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::AppError;

/// Largest request body accepted; more is a 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// One entry of a 422 `detail` list.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Where the problem is: `["body", "title"]`, `["query", "limit"]`, `["path", "id"]`.
    #[schema(value_type = Vec<Object>)]
    pub loc: Vec<Value>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub ctx: Option<Value>,
}

impl FieldError {
    pub fn new(loc: &[&str], msg: impl Into<String>, kind: impl Into<String>) -> Self {
        Self {
            loc: loc.iter().map(|part| json!(part)).collect(),
            msg: msg.into(),
            kind: kind.into(),
            ctx: None,
        }
    }

    fn with_limit(mut self, limit: impl Serialize) -> Self {
        self.ctx = Some(json!({ "limit_value": limit }));
        self
    }

    pub fn missing(loc: &[&str]) -> Self {
        Self::new(loc, "field required", "value_error.missing")
    }

    /// PostgreSQL cannot store NUL in text, and SQLite would cut at it.
    pub fn nul(loc: &[&str]) -> Self {
        Self::new(
            loc,
            "string must not contain NUL characters",
            "value_error.str.nul",
        )
    }

    pub fn not_an_integer(loc: &[&str]) -> Self {
        Self::new(loc, "value is not a valid integer", "type_error.integer")
    }

    pub fn too_small(loc: &[&str], limit: i64) -> Self {
        Self::new(
            loc,
            format!("ensure this value is greater than or equal to {limit}"),
            "value_error.number.not_ge",
        )
        .with_limit(limit)
    }

    pub fn too_large(loc: &[&str], limit: i64) -> Self {
        Self::new(
            loc,
            format!("ensure this value is less than or equal to {limit}"),
            "value_error.number.not_le",
        )
        .with_limit(limit)
    }

    pub fn too_short(loc: &[&str], limit: usize, unit: &str) -> Self {
        Self::new(
            loc,
            format!("ensure this value has at least {limit} {unit}"),
            "value_error.any_str.min_length",
        )
        .with_limit(limit)
    }

    pub fn too_long(loc: &[&str], limit: usize, unit: &str) -> Self {
        Self::new(
            loc,
            format!("ensure this value has at most {limit} {unit}"),
            "value_error.any_str.max_length",
        )
        .with_limit(limit)
    }
}

/// Checks an integer against inclusive bounds.
pub fn check_range(loc: &[&str], value: i64, min: i64, max: i64) -> Result<i64, FieldError> {
    if value < min {
        Err(FieldError::too_small(loc, min))
    } else if value > max {
        Err(FieldError::too_large(loc, max))
    } else {
        Ok(value)
    }
}

/// Checks a text's length in characters.
pub fn check_chars(loc: &[&str], value: &str, min: usize, max: usize) -> Result<(), FieldError> {
    let chars = value.chars().count();
    if chars < min {
        Err(FieldError::too_short(loc, min, "characters"))
    } else if chars > max {
        Err(FieldError::too_long(loc, max, "characters"))
    } else {
        Ok(())
    }
}

/// Reads the fields of a JSON object body, collecting every error.
pub struct BodyFields<'a> {
    object: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> BodyFields<'a> {
    pub fn new(object: &'a Map<String, Value>) -> Self {
        Self {
            object,
            errors: Vec::new(),
        }
    }

    fn present(&mut self, name: &str) -> Option<&'a Value> {
        match self.object.get(name) {
            None => {
                self.errors.push(FieldError::missing(&["body", name]));
                None
            }
            Some(Value::Null) => {
                self.errors.push(FieldError::new(
                    &["body", name],
                    "none is not an allowed value",
                    "type_error.none.not_allowed",
                ));
                None
            }
            Some(value) => Some(value),
        }
    }

    /// A required string.
    pub fn string(&mut self, name: &str) -> Option<&'a str> {
        match self.present(name)? {
            Value::String(text) if text.contains('\0') => {
                self.reject(FieldError::nul(&["body", name]))
            }
            Value::String(text) => Some(text),
            _ => self.reject(FieldError::new(
                &["body", name],
                "str type expected",
                "type_error.str",
            )),
        }
    }

    /// A required integer.
    pub fn integer(&mut self, name: &str) -> Option<i64> {
        match self.present(name)?.as_i64() {
            Some(number) => Some(number),
            None => self.reject(FieldError::not_an_integer(&["body", name])),
        }
    }

    /// An optional boolean with a default; `null` is refused as in pydantic.
    pub fn bool_or(&mut self, name: &str, default: bool) -> Option<bool> {
        if !self.object.contains_key(name) {
            return Some(default);
        }
        match self.present(name)? {
            Value::Bool(flag) => Some(*flag),
            _ => self.reject(FieldError::new(
                &["body", name],
                "value could not be parsed to a boolean",
                "type_error.bool",
            )),
        }
    }

    /// Records an error found by a caller's own check.
    pub fn reject<T>(&mut self, error: FieldError) -> Option<T> {
        self.errors.push(error);
        None
    }

    /// The parsed value if no field failed, else every field error.
    pub fn finish<T>(self, parsed: Option<T>) -> Result<T, AppError> {
        match parsed {
            Some(value) if self.errors.is_empty() => Ok(value),
            _ => Err(AppError::Validation(self.errors)),
        }
    }
}

/// A request body type that validates itself from a JSON object.
pub trait FromJsonBody: Sized {
    fn from_fields(fields: &mut BodyFields<'_>) -> Option<Self>;

    fn from_json(value: &Value) -> Result<Self, AppError> {
        let mut fields = BodyFields::new(json_object(value)?);
        let parsed = Self::from_fields(&mut fields);
        fields.finish(parsed)
    }
}

/// The body as a JSON object, or pydantic's 422 for anything else.
pub fn json_object(value: &Value) -> Result<&Map<String, Value>, AppError> {
    match value {
        Value::Object(object) => Ok(object),
        _ => Err(AppError::validation(FieldError::new(
            &["body"],
            "value is not a valid dict",
            "type_error.dict",
        ))),
    }
}

/// The value of `name` in form or query pairs; of repeated names the last
/// wins, as in Starlette.
pub fn last_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Parses JSON bytes, answering malformed JSON the way FastAPI does.
pub fn parse_json(bytes: &[u8]) -> Result<Value, AppError> {
    serde_json::from_slice(bytes).map_err(|e| {
        AppError::validation(FieldError::new(
            &["body"],
            format!("Invalid JSON: {e}"),
            "value_error.jsondecode",
        ))
    })
}

/// Reads the whole body, turning an oversized one into a 413.
pub async fn read_body(req: &HttpRequest, payload: &mut Payload) -> Result<Bytes, AppError> {
    Bytes::from_request(req, payload).await.map_err(|e| {
        if e.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge
        } else {
            AppError::malformed_body()
        }
    })
}

/// A JSON body validated into `T`.
pub struct ValidJson<T>(pub T);

impl<T: FromJsonBody + 'static> FromRequest for ValidJson<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let bytes = read_body(&req, &mut payload).await?;
            T::from_json(&parse_json(&bytes)?).map(ValidJson)
        })
    }
}

/// The query string as name/value pairs (see [`last_value`]).
pub fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, AppError> {
    serde_urlencoded::from_str(req.query_string()).map_err(|_| {
        AppError::validation(FieldError::new(
            &["query"],
            "invalid query string",
            "value_error.query",
        ))
    })
}

/// Path parameters that fail to parse are 422 `["path", name]`, not 404.
pub fn path_config() -> PathConfig {
    PathConfig::default().error_handler(|_, req| {
        let name = req
            .match_info()
            .iter()
            .next()
            .map_or("id", |(name, _)| name)
            .to_owned();
        AppError::validation(FieldError::not_an_integer(&["path", &name])).into()
    })
}
