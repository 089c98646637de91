//! AWS errors as the rest of the program sees them: a code and a readable message.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsError {
    /// The AWS error code (`AccessDenied`, `NoSuchEntity`, ...), or the kind of failure
    /// (`dispatch`, `timeout`, `response`) when AWS did not answer with one.
    pub code: String,
    pub message: String,
}

impl AwsError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }
}

/// The AWS error code of a failed call, if AWS gave one.
pub fn code_of<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

impl<E, R> From<SdkError<E, R>> for AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static + HttpStatus,
{
    fn from(e: SdkError<E, R>) -> Self {
        let code = match &e {
            SdkError::ServiceError(s) => s.err().code().unwrap_or("unknown").to_string(),
            SdkError::TimeoutError(_) => "timeout".into(),
            SdkError::DispatchFailure(_) => "dispatch".into(),
            SdkError::ResponseError(_) => "response".into(),
            SdkError::ConstructionFailure(_) => "construction".into(),
            _ => "unknown".into(),
        };
        let message = match &e {
            SdkError::ServiceError(s) => match s.err().message() {
                Some(m) => m.to_string(),
                None => format!("HTTP {}: {}", s.raw().status_code(), DisplayErrorContext(s.err())),
            },
            other => DisplayErrorContext(other).to_string(),
        };
        Self { code, message }
    }
}

/// The HTTP status of a raw response, for error messages.
pub trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}
