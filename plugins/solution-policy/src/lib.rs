//! Checks a solution against the organisation's policy: allowed publisher prefixes,
//! forbidden component kinds, a maximum package size, and notes for production stages.
//! See the README.

use gatehouse_plugin_sdk::prelude::*;

/// The facts about a deployment that the policy reads, each only when a rule needs it.
pub trait SolutionFacts {
    fn publisher_prefix(&self) -> String;
    fn components(&self) -> Vec<ComponentRef>;
    fn package_size(&self) -> u64;
    fn stage_name(&self) -> String;
    fn notes(&self) -> String;
}

impl SolutionFacts for Deployment {
    fn publisher_prefix(&self) -> String {
        Deployment::publisher_prefix(self)
    }
    fn components(&self) -> Vec<ComponentRef> {
        Deployment::components(self)
    }
    fn package_size(&self) -> u64 {
        Deployment::package_size(self)
    }
    fn stage_name(&self) -> String {
        self.stage().name
    }
    fn notes(&self) -> String {
        Deployment::notes(self)
    }
}

/// The configured rules; an unset rule is not checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub publisher_prefixes: Vec<String>,
    pub forbidden_kinds: Vec<String>,
    pub max_package_bytes: Option<u64>,
    pub production_stages: Vec<String>,
}

impl Policy {
    /// Reads `publisher-prefix`, `forbidden-kinds` (comma lists), `max-package-bytes` and
    /// `production-stages` (comma list, default `Production`).
    pub fn from_config(config: &Config) -> Result<Policy, ConfigError> {
        let max_package_bytes = config.parse_with("max-package-bytes", |value| {
            value
                .parse::<u64>()
                .map_err(|_| "use a whole number of bytes, such as `52428800` for 50 MiB")
        })?;
        let production_stages = match config.list("production-stages") {
            stages if stages.is_empty() => vec!["Production".to_owned()],
            stages => stages,
        };
        Ok(Policy {
            publisher_prefixes: config.list("publisher-prefix"),
            forbidden_kinds: config.list("forbidden-kinds"),
            max_package_bytes,
            production_stages,
        })
    }

    pub fn validate(&self, facts: &dyn SolutionFacts) -> Vec<Finding> {
        let mut findings = Vec::new();

        if !self.publisher_prefixes.is_empty() {
            let prefix = facts.publisher_prefix();
            if !self
                .publisher_prefixes
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(&prefix))
            {
                findings.push(Finding::error(
                    "publisher-prefix",
                    format!(
                        "the publisher prefix `{prefix}` is not allowed; move the solution to a publisher whose prefix is one of: {}",
                        self.publisher_prefixes.join(", ")
                    ),
                ));
            }
        }

        if !self.forbidden_kinds.is_empty() {
            for component in facts.components() {
                if self
                    .forbidden_kinds
                    .iter()
                    .any(|kind| kind.eq_ignore_ascii_case(&component.kind))
                {
                    findings.push(
                        Finding::error(
                            "forbidden-component-kind",
                            format!(
                                "components of kind `{}` may not be deployed; remove `{}` from the solution",
                                component.kind, component.name
                            ),
                        )
                        .about(&component),
                    );
                }
            }
        }

        if let Some(max) = self.max_package_bytes {
            let size = facts.package_size();
            if size > max {
                findings.push(Finding::error(
                    "package-too-large",
                    format!(
                        "the package is {size} bytes, over the limit of {max} bytes; remove unused components or ask an admin to raise `max-package-bytes`"
                    ),
                ));
            }
        }

        let stage = facts.stage_name();
        if self
            .production_stages
            .iter()
            .any(|name| name.eq_ignore_ascii_case(&stage))
            && facts.notes().trim().is_empty()
        {
            findings.push(Finding::error(
                "notes-required",
                format!("deployments to {stage} need notes; describe the change in the deployment's notes and run it again"),
            ));
        }

        findings
    }
}

struct SolutionPolicy;

impl Plugin for SolutionPolicy {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "solution-policy",
            env!("CARGO_PKG_VERSION"),
            "Checks the publisher prefix, forbidden component kinds, package size, and notes for production stages.",
        )
        .config_keys(["publisher-prefix", "forbidden-kinds", "max-package-bytes", "production-stages"])
    }

    fn check_config(config: &Config) -> Result<(), String> {
        Policy::from_config(config)?;
        Ok(())
    }
}

impl Validator for SolutionPolicy {
    fn validate(deployment: &Deployment) -> Vec<Finding> {
        match Policy::from_config(&Config::binding()) {
            Ok(policy) => policy.validate(deployment),
            Err(error) => vec![Finding::error("policy-config", error.to_string())],
        }
    }
}

export_validator!(SolutionPolicy);

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[derive(Default)]
    struct Facts {
        prefix: &'static str,
        components: Vec<(&'static str, &'static str)>,
        size: u64,
        stage: &'static str,
        notes: &'static str,
        components_read: Cell<bool>,
    }

    impl SolutionFacts for Facts {
        fn publisher_prefix(&self) -> String {
            self.prefix.to_owned()
        }
        fn components(&self) -> Vec<ComponentRef> {
            self.components_read.set(true);
            self.components
                .iter()
                .map(|(kind, name)| ComponentRef {
                    kind: kind.to_string(),
                    name: name.to_string(),
                })
                .collect()
        }
        fn package_size(&self) -> u64 {
            self.size
        }
        fn stage_name(&self) -> String {
            self.stage.to_owned()
        }
        fn notes(&self) -> String {
            self.notes.to_owned()
        }
    }

    fn policy(pairs: &[(&str, &str)]) -> Policy {
        Policy::from_config(&Config::from_pairs(pairs.iter().copied())).unwrap()
    }

    fn codes(findings: &[Finding]) -> Vec<&str> {
        findings
            .iter()
            .map(|finding| finding.code.as_str())
            .collect()
    }

    fn compliant() -> Facts {
        Facts {
            prefix: "contoso",
            components: vec![("table", "contoso_order"), ("flow", "Order approval")],
            size: 1_000,
            stage: "Production",
            notes: "Adds order approval",
            ..Facts::default()
        }
    }

    const STRICT: &[(&str, &str)] = &[
        ("publisher-prefix", "contoso, fabrikam"),
        ("forbidden-kinds", "plugin-assembly,custom-connector"),
        ("max-package-bytes", "5000"),
    ];

    #[test]
    fn a_compliant_solution_has_no_findings() {
        assert!(policy(STRICT).validate(&compliant()).is_empty());
    }

    #[test]
    fn a_publisher_outside_the_list_is_an_error() {
        let facts = Facts {
            prefix: "new",
            ..compliant()
        };
        let findings = policy(STRICT).validate(&facts);
        assert_eq!(
            findings,
            [Finding::error(
                "publisher-prefix",
                "the publisher prefix `new` is not allowed; move the solution to a publisher whose prefix is one of: contoso, fabrikam"
            )]
        );
    }

    #[test]
    fn each_forbidden_component_is_reported_about_itself() {
        let facts = Facts {
            components: vec![
                ("table", "t"),
                ("plugin-assembly", "Contoso.Plugins"),
                ("Custom-Connector", "erp"),
            ],
            ..compliant()
        };
        let findings = policy(STRICT).validate(&facts);
        assert_eq!(
            codes(&findings),
            ["forbidden-component-kind", "forbidden-component-kind"]
        );
        assert_eq!(
            findings[0].component.as_deref(),
            Some("plugin-assembly/Contoso.Plugins")
        );
        assert_eq!(
            findings[1].component.as_deref(),
            Some("Custom-Connector/erp")
        );
        assert!(
            findings
                .iter()
                .all(|finding| finding.severity == Severity::Error)
        );
    }

    #[test]
    fn components_are_not_read_without_forbidden_kinds() {
        let facts = compliant();
        policy(&[]).validate(&facts);
        assert!(!facts.components_read.get());
    }

    #[test]
    fn a_package_over_the_limit_is_an_error() {
        let at_limit = Facts {
            size: 5_000,
            ..compliant()
        };
        assert!(policy(STRICT).validate(&at_limit).is_empty());
        let over = Facts {
            size: 5_001,
            ..compliant()
        };
        let findings = policy(STRICT).validate(&over);
        assert_eq!(codes(&findings), ["package-too-large"]);
        assert!(
            findings[0]
                .message
                .starts_with("the package is 5001 bytes, over the limit of 5000 bytes")
        );
    }

    #[test]
    fn production_needs_notes_by_default() {
        let facts = Facts {
            notes: "  \n",
            ..compliant()
        };
        let findings = policy(&[]).validate(&facts);
        assert_eq!(codes(&findings), ["notes-required"]);
        let qa = Facts {
            stage: "QA",
            notes: "",
            ..compliant()
        };
        assert!(policy(&[]).validate(&qa).is_empty());
    }

    #[test]
    fn production_stages_are_configurable() {
        let uat = Facts {
            stage: "uat",
            notes: "",
            ..compliant()
        };
        let findings = policy(&[("production-stages", "UAT, Prod")]).validate(&uat);
        assert_eq!(codes(&findings), ["notes-required"]);
        let production = Facts {
            notes: "",
            ..compliant()
        };
        assert!(
            policy(&[("production-stages", "UAT, Prod")])
                .validate(&production)
                .is_empty()
        );
    }

    #[test]
    fn a_bad_size_limit_is_refused() {
        let error =
            Policy::from_config(&Config::from_pairs([("max-package-bytes", "50MB")])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "config key `max-package-bytes` has the value `50MB`, which is not valid: use a whole number of bytes, such as `52428800` for 50 MiB"
        );
    }
}
