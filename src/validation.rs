//! Field checks in pydantic's manner: every problem in a body is collected
//! and reported at once as FastAPI's 422 list.

use serde_json::{Map, Value};

use crate::error::{AppError, FieldError};

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

    /// A required integer. `1.0` is one too, as JSON Schema (and so the
    /// OpenAPI document) counts it.
    pub fn integer(&mut self, name: &str) -> Option<i64> {
        match integral(self.present(name)?) {
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

/// A JSON number with no fraction that fits an `i64`.
fn integral(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        let float = value.as_f64()?;
        // i64::MAX as f64 rounds up to 2^63, which no i64 holds.
        let fits = float >= i64::MIN as f64 && float < i64::MAX as f64;
        (float.fract() == 0.0 && fits).then_some(float as i64)
    })
}

/// A request body type that validates itself from a JSON object.
pub trait FromJsonBody: Sized {
    fn from_fields(fields: &mut BodyFields<'_>) -> Option<Self>;

    /// Takes the body by value, so that a type can wipe what it copied out
    /// of it (a password) before the rest is dropped.
    fn from_json(value: Value) -> Result<Self, AppError> {
        from_json_fields(&value)
    }
}

/// `T` from the fields of a JSON object: what `from_json` does unless a type
/// says otherwise.
pub fn from_json_fields<T: FromJsonBody>(value: &Value) -> Result<T, AppError> {
    let mut fields = BodyFields::new(json_object(value)?);
    let parsed = T::from_fields(&mut fields);
    fields.finish(parsed)
}

/// The body as a JSON object, or pydantic's 422 for anything else.
pub fn json_object(value: &Value) -> Result<&Map<String, Value>, AppError> {
    match value {
        Value::Object(object) => Ok(object),
        _ => Err(AppError::validation(FieldError::not_a_dict(&["body"]))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::integral;

    #[test]
    fn integers_are_json_numbers_without_a_fraction() {
        assert_eq!(integral(&json!(7)), Some(7));
        assert_eq!(integral(&json!(7.0)), Some(7));
        assert_eq!(integral(&json!(-2.0)), Some(-2));
        assert_eq!(integral(&json!(7.5)), None);
        assert_eq!(integral(&json!("7")), None);
        assert_eq!(integral(&json!(true)), None);
        assert_eq!(integral(&json!(1e19)), None);
        assert_eq!(integral(&json!(u64::MAX)), None);
    }
}
