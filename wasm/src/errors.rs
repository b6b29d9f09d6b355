//! The one way errors reach JavaScript: an `Error` object with a stable
//! `code` (a SCREAMING_SNAKE string, part of the public API) and `path` (the
//! field the error is about, such as `to[1]` or `attachments[0].content`;
//! empty when it is about the argument as a whole). Never a trap, never a
//! bare string, never another Error subclass.

use wasm_bindgen::{JsCast, JsValue, prelude::wasm_bindgen};

use postwire_core::{BuildError, ParseError, envelope::EnvelopeError};

// Read by the typescript_custom_section below (which rustc does not count as a
// use) and by the drift test.
#[allow(dead_code)]
pub(crate) const TS_ERRORS: &str = r#"
/** The stable codes of the errors that postwire functions throw. */
export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "INVALID_SPEC"
  | "INVALID_OPTIONS"
  | "MISSING_FROM"
  | "INVALID_HEADER"
  | "INVALID_CONTENT_TYPE"
  | "INVALID_IDENTIFIER"
  | "CONTROL_CHARACTER"
  | "EMPTY_INPUT"
  | "NOT_A_MESSAGE"
  | "NO_SENDER"
  | "NO_RECIPIENTS"
  | "INVALID_ADDRESS"
  | "INTERNAL";

/** Every error thrown by postwire: a plain `Error` with a stable `code` and the field `path`. */
export interface PostwireError extends Error {
  /** What kind of error; stable across versions. */
  code: ErrorCode;
  /** The field the error is about (`"to[1]"`, `"attachments[0].content"`, `"seed"`); `""` for the argument as a whole. */
  path: string;
}
"#;

#[wasm_bindgen(typescript_custom_section)]
const TS_ERRORS_SECTION: &str = TS_ERRORS;

/// Every code of [`TS_ERRORS`], for the drift test.
#[cfg(test)]
pub(crate) const CODES: &[&str] = &[
    "INVALID_ARGUMENT",
    "INVALID_SPEC",
    "INVALID_OPTIONS",
    "MISSING_FROM",
    "INVALID_HEADER",
    "INVALID_CONTENT_TYPE",
    "INVALID_IDENTIFIER",
    "CONTROL_CHARACTER",
    "EMPTY_INPUT",
    "NOT_A_MESSAGE",
    "NO_SENDER",
    "NO_RECIPIENTS",
    "INVALID_ADDRESS",
    "INTERNAL",
];

/// An error that knows its JavaScript `code` and field `path`.
pub trait Coded: std::fmt::Display {
    /// The stable code, one of the `ErrorCode` strings.
    fn code(&self) -> &'static str;
    /// The field path, `""` for the whole argument.
    fn path(&self) -> String;
}

/// An error raised by the bindings themselves (a wrong argument type, bad options, a spec that does not deserialize).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingError {
    /// One of `INVALID_ARGUMENT`, `INVALID_SPEC`, `INVALID_OPTIONS`.
    pub code: &'static str,
    /// The field path.
    pub path: String,
    /// What was wrong.
    pub message: String,
}

impl BindingError {
    /// A new error with `code`, `path` and `message`.
    pub fn new(code: &'static str, path: impl Into<String>, message: impl Into<String>) -> Self {
        BindingError {
            code,
            path: path.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for BindingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl Coded for BindingError {
    fn code(&self) -> &'static str {
        self.code
    }
    fn path(&self) -> String {
        self.path.clone()
    }
}

impl Coded for BuildError {
    fn code(&self) -> &'static str {
        match self {
            BuildError::MissingFrom => "MISSING_FROM",
            BuildError::Header { .. } => "INVALID_HEADER",
            BuildError::ContentType { .. } => "INVALID_CONTENT_TYPE",
            BuildError::Identifier { .. } => "INVALID_IDENTIFIER",
            BuildError::ControlCharacter { .. } => "CONTROL_CHARACTER",
            _ => "INTERNAL",
        }
    }
    fn path(&self) -> String {
        BuildError::path(self).to_string()
    }
}

impl Coded for ParseError {
    fn code(&self) -> &'static str {
        match self {
            ParseError::Empty => "EMPTY_INPUT",
            ParseError::NotAMessage => "NOT_A_MESSAGE",
            _ => "INTERNAL",
        }
    }
    fn path(&self) -> String {
        String::new()
    }
}

impl Coded for EnvelopeError {
    fn code(&self) -> &'static str {
        match self {
            EnvelopeError::NoSender => "NO_SENDER",
            EnvelopeError::NoRecipients => "NO_RECIPIENTS",
            EnvelopeError::Parse(e) => e.code(),
            EnvelopeError::Address { .. } => "INVALID_ADDRESS",
            _ => "INTERNAL",
        }
    }
    fn path(&self) -> String {
        match self {
            EnvelopeError::NoSender => "from".into(),
            EnvelopeError::NoRecipients => "to".into(),
            EnvelopeError::Address { path, .. } => path.clone(),
            _ => String::new(),
        }
    }
}

/// Turns any coded error into the JavaScript `Error` that is thrown.
pub fn to_js(err: &dyn Coded) -> JsValue {
    let js = js_sys::Error::new(&err.to_string());
    // Setting a property on a fresh, extensible Error object cannot fail.
    let _ = js_sys::Reflect::set(&js, &"code".into(), &err.code().into());
    let _ = js_sys::Reflect::set(&js, &"path".into(), &err.path().into());
    js.unchecked_into()
}

/// `Result::map_err` shorthand: any coded error to its JS value.
pub fn js<E: Coded>(err: E) -> JsValue {
    to_js(&err)
}
