//! Why a domain service said no. The API answers it as a problem document and the console
//! as an error page, so both surfaces refuse the same request with the same words.

use serde_json::{Map, Value};

use crate::pipeline::engine::EngineError;
use crate::pipeline::rules::RuleError;
use crate::pipeline::store::StoreError;

/// What kind of refusal it is; each surface picks its own status for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The input cannot be read at all.
    Malformed,
    /// The caller lacks the role or the access.
    Forbidden,
    NotFound,
    /// The stored state stands in the way.
    Conflict,
    /// Well-formed, but breaks a rule.
    Invalid,
    TooLarge,
    /// The request was sound but the host could not carry it out; nothing was kept.
    Failed,
}

/// A refusal: what happened and what to do, with facts a program may switch on.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub reason: Refused,
    /// What happened in this case, and what to do about it.
    pub detail: String,
    /// A stable name finer than the reason, such as `wrong-plugin-world`.
    pub code: Option<&'static str>,
    /// A short summary shared by every refusal with this code.
    pub title: Option<&'static str>,
    /// Named facts about the refusal, such as the plugin it concerns.
    pub facts: Map<String, Value>,
}

/// The one error of the domain services.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{}", .0.detail)]
    Refused(Refusal),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A failure the caller cannot fix, such as the system random source failing.
    #[error("{0}")]
    Internal(String),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    pub fn refused(reason: Refused, detail: impl Into<String>) -> ServiceError {
        ServiceError::Refused(Refusal {
            reason,
            detail: detail.into(),
            code: None,
            title: None,
            facts: Map::new(),
        })
    }

    pub fn malformed(detail: impl Into<String>) -> ServiceError {
        ServiceError::refused(Refused::Malformed, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> ServiceError {
        ServiceError::refused(Refused::Forbidden, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> ServiceError {
        ServiceError::refused(Refused::NotFound, detail)
    }

    pub fn conflict(detail: impl Into<String>) -> ServiceError {
        ServiceError::refused(Refused::Conflict, detail)
    }

    pub fn invalid(detail: impl Into<String>) -> ServiceError {
        ServiceError::refused(Refused::Invalid, detail)
    }

    pub fn too_large(detail: impl Into<String>) -> ServiceError {
        ServiceError::refused(Refused::TooLarge, detail)
    }

    pub fn failed(detail: impl Into<String>) -> ServiceError {
        ServiceError::refused(Refused::Failed, detail)
    }

    /// Adds a named fact; only refusals carry facts.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ServiceError {
        if let ServiceError::Refused(refusal) = &mut self {
            refusal.facts.insert(key.to_owned(), value.into());
        }
        self
    }

    /// Names the refusal more precisely than its reason, with the summary for that name.
    pub fn coded(mut self, code: &'static str, title: Option<&'static str>) -> ServiceError {
        if let ServiceError::Refused(refusal) = &mut self {
            refusal.code = Some(code);
            if title.is_some() {
                refusal.title = title;
            }
        }
        self
    }

    /// The refusal, when this is one: for tests and for surfaces that show only words.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            ServiceError::Refused(refusal) => Some(refusal),
            _ => None,
        }
    }
}

impl From<RuleError> for ServiceError {
    fn from(error: RuleError) -> ServiceError {
        // A reference to nothing is a 404; every other rule depends on what is stored.
        let refusal = match error {
            RuleError::UnknownEnvironment(_) | RuleError::UnknownPreviousStage { .. } => {
                ServiceError::not_found(error.to_string())
            }
            _ => ServiceError::conflict(error.to_string()),
        };
        refusal.coded("pipeline-rule", Some("The pipeline would break a rule"))
    }
}
