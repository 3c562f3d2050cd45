//! Builders for what a validator reports.

use crate::bindings::types::{ComponentRef, Finding, Severity};

impl Finding {
    /// A finding that fails the deployment. `code` is stable and machine-readable, such as
    /// `publisher-prefix`; `message` says what is wrong and what to do about it.
    pub fn error(code: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding::new(Severity::Error, code, message)
    }

    /// A finding that is shown but does not block the deployment.
    pub fn warning(code: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding::new(Severity::Warning, code, message)
    }

    /// A note for the maker that does not block the deployment.
    pub fn info(code: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding::new(Severity::Info, code, message)
    }

    /// A finding of any severity.
    pub fn new(severity: Severity, code: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding {
            severity,
            code: code.into(),
            message: message.into(),
            component: None,
        }
    }

    /// Marks the finding as being about `component`, shown as `<kind>/<name>`.
    pub fn about(mut self, component: &ComponentRef) -> Finding {
        self.component = Some(format!("{}/{}", component.kind, component.name));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_names_the_component_by_kind_and_name() {
        let flow = ComponentRef {
            kind: "flow".into(),
            name: "Nightly export".into(),
        };
        let finding = Finding::warning("slow-flow", "runs for hours").about(&flow);
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(finding.component.as_deref(), Some("flow/Nightly export"));
    }
}
