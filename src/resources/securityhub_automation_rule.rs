//! `securityhub_automation_rule`: a Security Hub automation rule (F13), found by its rule
//! name in the region. Automation rules carry tags on their ARN.
//!
//! Criteria are string filters and are compared as a whole ("exactly these"): a criterion
//! someone added or removed changes which findings the rule touches. The action is
//! `FINDING_FIELDS_UPDATE`; its fields left out of desired state are not compared and are
//! kept on update.

use super::securityhub_hub::not_subscribed;
use super::{owner_of, Cx, Observation, Ownership, ResourceType, Scope};
use crate::aws::{code_of, AwsError};
use crate::desired::names::{OwnerTag, OWNER_TAG_KEY};
use aws_sdk_securityhub::types::{
    AutomationRulesAction, AutomationRulesActionType, AutomationRulesConfig, AutomationRulesFindingFieldsUpdate,
    AutomationRulesFindingFilters, NoteUpdate, RuleStatus, SeverityLabel, SeverityUpdate, StringFilter,
    StringFilterComparison, UpdateAutomationRulesRequestItem, VerificationState, WorkflowStatus, WorkflowUpdate,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Enabled,
    Disabled,
}

/// The string filters of the criteria: (`field` name in desired state, getter, setter).
macro_rules! criteria_fields {
    ($($variant:ident: $get:ident / $set:ident),* $(,)?) => {
        /// A finding field the criteria can filter on (ASFF name).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Field {
            $($variant,)*
        }

        fn filters_to_sdk(criteria: &BTreeSet<Criterion>) -> AutomationRulesFindingFilters {
            let mut b = AutomationRulesFindingFilters::builder();
            $(
                let list: Vec<StringFilter> =
                    criteria.iter().filter(|c| c.field == Field::$variant).map(Criterion::to_sdk).collect();
                if !list.is_empty() {
                    b = b.$set(Some(list));
                }
            )*
            b.build()
        }

        /// The string filters of `f`. Filters of other kinds (dates, numbers, maps) have no
        /// counterpart in desired state and show as missing criteria.
        fn filters_from_sdk(f: &AutomationRulesFindingFilters) -> BTreeSet<Criterion> {
            let mut out = BTreeSet::new();
            $(
                for s in f.$get() {
                    out.insert(Criterion::from_sdk(Field::$variant, s));
                }
            )*
            out
        }
    };
}

criteria_fields! {
    ProductArn: product_arn / set_product_arn,
    AwsAccountId: aws_account_id / set_aws_account_id,
    AwsAccountName: aws_account_name / set_aws_account_name,
    Id: id / set_id,
    GeneratorId: generator_id / set_generator_id,
    Type: r#type / set_type,
    Title: title / set_title,
    Description: description / set_description,
    SourceUrl: source_url / set_source_url,
    ProductName: product_name / set_product_name,
    CompanyName: company_name / set_company_name,
    SeverityLabel: severity_label / set_severity_label,
    ResourceType: resource_type / set_resource_type,
    ResourceId: resource_id / set_resource_id,
    ResourcePartition: resource_partition / set_resource_partition,
    ResourceRegion: resource_region / set_resource_region,
    ResourceApplicationArn: resource_application_arn / set_resource_application_arn,
    ResourceApplicationName: resource_application_name / set_resource_application_name,
    ComplianceStatus: compliance_status / set_compliance_status,
    ComplianceSecurityControlId: compliance_security_control_id / set_compliance_security_control_id,
    ComplianceAssociatedStandardsId: compliance_associated_standards_id / set_compliance_associated_standards_id,
    VerificationState: verification_state / set_verification_state,
    WorkflowStatus: workflow_status / set_workflow_status,
    RecordState: record_state / set_record_state,
    RelatedFindingsProductArn: related_findings_product_arn / set_related_findings_product_arn,
    RelatedFindingsId: related_findings_id / set_related_findings_id,
    NoteText: note_text / set_note_text,
    NoteUpdatedBy: note_updated_by / set_note_updated_by,
}

/// One string filter: `field` `comparison` `value` (`RecordState EQUALS ACTIVE`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    pub field: Field,
    /// `EQUALS`, `PREFIX`, `NOT_EQUALS`, `PREFIX_NOT_EQUALS`, `CONTAINS`, `NOT_CONTAINS`, ...
    pub comparison: String,
    pub value: String,
}

impl Criterion {
    fn to_sdk(&self) -> StringFilter {
        StringFilter::builder()
            .comparison(StringFilterComparison::from(self.comparison.as_str()))
            .value(&self.value)
            .build()
    }
    fn from_sdk(field: Field, s: &StringFilter) -> Self {
        Criterion {
            field,
            comparison: s.comparison().map(|c| c.as_str().to_string()).unwrap_or_default(),
            value: s.value().unwrap_or_default().to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Note {
    pub text: String,
    pub updated_by: String,
}

/// The `FINDING_FIELDS_UPDATE` action: what the rule writes on matching findings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingFieldsUpdate {
    /// `NEW`, `NOTIFIED`, `RESOLVED` or `SUPPRESSED`.
    #[serde(default)]
    pub workflow_status: Option<String>,
    /// `INFORMATIONAL`, `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`.
    #[serde(default)]
    pub severity_label: Option<String>,
    #[serde(default)]
    pub verification_state: Option<String>,
    #[serde(default)]
    pub note: Option<Note>,
}

impl FindingFieldsUpdate {
    fn from_sdk(a: &AutomationRulesFindingFieldsUpdate) -> Self {
        FindingFieldsUpdate {
            workflow_status: a.workflow().and_then(|w| w.status()).map(|s| s.as_str().to_string()),
            severity_label: a.severity().and_then(|s| s.label()).map(|l| l.as_str().to_string()),
            verification_state: a.verification_state().map(|v| v.as_str().to_string()),
            note: a.note().map(|n| Note {
                text: n.text().unwrap_or_default().to_string(),
                updated_by: n.updated_by().unwrap_or_default().to_string(),
            }),
        }
    }

    /// Desired where it has an opinion, else what is there.
    fn merged(&self, seen: Option<&Self>) -> Self {
        let seen = seen.cloned().unwrap_or_default();
        FindingFieldsUpdate {
            workflow_status: self.workflow_status.clone().or(seen.workflow_status),
            severity_label: self.severity_label.clone().or(seen.severity_label),
            verification_state: self.verification_state.clone().or(seen.verification_state),
            note: self.note.clone().or(seen.note),
        }
    }

    fn to_sdk(&self) -> AutomationRulesAction {
        let mut u = AutomationRulesFindingFieldsUpdate::builder();
        if let Some(s) = &self.workflow_status {
            u = u.workflow(WorkflowUpdate::builder().status(WorkflowStatus::from(s.as_str())).build());
        }
        if let Some(l) = &self.severity_label {
            u = u.severity(SeverityUpdate::builder().label(SeverityLabel::from(l.as_str())).build());
        }
        if let Some(v) = &self.verification_state {
            u = u.verification_state(VerificationState::from(v.as_str()));
        }
        if let Some(n) = &self.note {
            u = u.note(NoteUpdate::builder().text(&n.text).updated_by(&n.updated_by).build());
        }
        AutomationRulesAction::builder()
            .r#type(AutomationRulesActionType::FindingFieldsUpdate)
            .finding_fields_update(u.build())
            .build()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityhubAutomationRule {
    /// How the rule is found. Rule names are not unique in AWS: the first rule of this name
    /// (in rule order) is the one compared.
    pub rule_name: String,
    /// Always compared (AWS requires one).
    pub description: String,
    /// 1 to 1000; rules with lower numbers run first. Always compared.
    pub rule_order: i32,
    /// Whether later rules are skipped for findings this rule matched.
    #[serde(default)]
    pub is_terminal: Option<bool>,
    #[serde(default)]
    pub rule_status: Option<Status>,
    /// Findings the rule applies to: all of these filters (exactly these). Always compared.
    pub criteria: BTreeSet<Criterion>,
    /// What the rule writes on matching findings. Always compared, field by field.
    pub finding_fields_update: FindingFieldsUpdate,
    #[serde(skip)]
    pub arn: Option<String>,
}

fn status_of(s: Option<&RuleStatus>) -> Option<Status> {
    match s {
        Some(RuleStatus::Enabled) => Some(Status::Enabled),
        Some(RuleStatus::Disabled) => Some(Status::Disabled),
        _ => None,
    }
}

fn sdk_status(s: Status) -> RuleStatus {
    match s {
        Status::Enabled => RuleStatus::Enabled,
        Status::Disabled => RuleStatus::Disabled,
    }
}

impl SecurityhubAutomationRule {
    /// The ARN of the first rule of this name; `None` when there is none or Security Hub is off.
    async fn find(&self, cx: &Cx<'_>) -> Result<Option<String>, AwsError> {
        let sh = cx.session.securityhub(cx.region);
        let mut token = None;
        loop {
            let out = match cx.session.call(sh.list_automation_rules().set_next_token(token).send()).await {
                Ok(out) => out,
                Err(e) if not_subscribed(code_of(&e)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let found = out
                .automation_rules_metadata()
                .iter()
                .find(|r| r.rule_name() == Some(self.rule_name.as_str()))
                .and_then(|r| r.rule_arn());
            if let Some(arn) = found {
                return Ok(Some(arn.to_string()));
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(None),
            }
        }
    }

    fn from_sdk(rule: &AutomationRulesConfig, arn: String) -> Self {
        let action = rule
            .actions()
            .iter()
            .find_map(|a| a.finding_fields_update())
            .map(FindingFieldsUpdate::from_sdk)
            .unwrap_or_default();
        SecurityhubAutomationRule {
            rule_name: rule.rule_name().unwrap_or_default().to_string(),
            description: rule.description().unwrap_or_default().to_string(),
            rule_order: rule.rule_order().unwrap_or_default(),
            is_terminal: Some(rule.is_terminal().unwrap_or(false)),
            rule_status: status_of(rule.rule_status()),
            criteria: rule.criteria().map(filters_from_sdk).unwrap_or_default(),
            finding_fields_update: action,
            arn: Some(arn),
        }
    }
}

impl ResourceType for SecurityhubAutomationRule {
    const KIND: &'static str = "securityhub_automation_rule";
    const DEFAULT_SCOPE: Scope = Scope::Home;
    const TAGGABLE: bool = true;
    const OWNERSHIP: Ownership = Ownership::Parent("securityhub_hub");

    fn name(&self) -> String {
        self.rule_name.clone()
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let Some(arn) = self.find(cx).await? else {
            return Ok(Observation::Absent { quota: None });
        };
        let sh = cx.session.securityhub(cx.region);
        let out = cx.session.call(sh.batch_get_automation_rules().automation_rules_arns(&arn).send()).await?;
        let Some(rule) = out.rules().iter().find(|r| r.rule_arn() == Some(arn.as_str())) else {
            // Listed a moment ago and gone now.
            return Ok(Observation::Absent { quota: None });
        };
        let tags = cx.session.call(sh.list_tags_for_resource().resource_arn(&arn).send()).await?;
        let owner = owner_of(tags.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())));
        Ok(Observation::Present { state: Self::from_sdk(rule, arn), owner })
    }

    async fn create(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let sh = cx.session.securityhub(cx.region);
        cx.session
            .call(
                sh.create_automation_rule()
                    .rule_name(&self.rule_name)
                    .description(&self.description)
                    .rule_order(self.rule_order)
                    .set_is_terminal(self.is_terminal)
                    .set_rule_status(self.rule_status.map(sdk_status))
                    .criteria(filters_to_sdk(&self.criteria))
                    .actions(self.finding_fields_update.to_sdk())
                    .tags(OWNER_TAG_KEY, tag.as_str())
                    .send(),
            )
            .await?;
        Ok(())
    }

    async fn update(&self, cx: &Cx<'_>, observed: &Self) -> Result<(), AwsError> {
        let Some(arn) = observed.arn.clone() else {
            return Err(AwsError::new("internal", "automation rule observed without its ARN"));
        };
        let action = self.finding_fields_update.merged(Some(&observed.finding_fields_update));
        let item = UpdateAutomationRulesRequestItem::builder()
            .rule_arn(arn)
            .rule_name(&self.rule_name)
            .description(&self.description)
            .rule_order(self.rule_order)
            .set_is_terminal(self.is_terminal)
            .set_rule_status(self.rule_status.map(sdk_status))
            .criteria(filters_to_sdk(&self.criteria))
            .actions(action.to_sdk())
            .build();
        let sh = cx.session.securityhub(cx.region);
        let out = cx
            .session
            .call(sh.batch_update_automation_rules().update_automation_rules_request_items(item).send())
            .await?;
        if let Some(u) = out.unprocessed_automation_rules().first() {
            return Err(AwsError::new(
                u.error_code().map(|c| c.to_string()).unwrap_or_else(|| "Unprocessed".into()),
                format!("automation rule not updated: {}", u.error_message().unwrap_or("no reason given")),
            ));
        }
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let Some(arn) = self.find(cx).await? else {
            return Ok(());
        };
        let sh = cx.session.securityhub(cx.region);
        let out = cx.session.call(sh.batch_delete_automation_rules().automation_rules_arns(arn).send()).await?;
        if let Some(u) = out.unprocessed_automation_rules().first() {
            return Err(AwsError::new(
                u.error_code().map(|c| c.to_string()).unwrap_or_else(|| "Unprocessed".into()),
                format!("automation rule not deleted: {}", u.error_message().unwrap_or("no reason given")),
            ));
        }
        Ok(())
    }

    async fn retag(&self, cx: &Cx<'_>, tag: OwnerTag) -> Result<(), AwsError> {
        let Some(arn) = self.find(cx).await? else {
            return Err(AwsError::new("ResourceNotFoundException", format!("no automation rule {}", self.rule_name)));
        };
        let sh = cx.session.securityhub(cx.region);
        cx.session.call(sh.tag_resource().resource_arn(arn).tags(OWNER_TAG_KEY, tag.as_str()).send()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(field: Field, value: &str) -> Criterion {
        Criterion { field, comparison: "EQUALS".into(), value: value.into() }
    }

    #[test]
    fn criteria_round_trip_through_the_sdk_shape() {
        let want: BTreeSet<Criterion> = [
            c(Field::RecordState, "ACTIVE"),
            c(Field::WorkflowStatus, "NEW"),
            c(Field::GeneratorId, "aws-foundational-security-best-practices/v/1.0.0/KMS.2"),
            c(Field::ResourceId, "arn:aws:iam::111111111111:role/cm-config-role-all-regions"),
            c(Field::Type, "Software and Configuration Checks"),
        ]
        .into();
        let sdk = filters_to_sdk(&want);
        assert_eq!(sdk.record_state().len(), 1);
        assert_eq!(filters_from_sdk(&sdk), want);
    }

    #[test]
    fn action_fields_left_out_are_kept() {
        let seen = FindingFieldsUpdate {
            workflow_status: Some("NOTIFIED".into()),
            note: Some(Note { text: "kept".into(), updated_by: "ops".into() }),
            ..Default::default()
        };
        let want = FindingFieldsUpdate { workflow_status: Some("SUPPRESSED".into()), ..Default::default() };
        let m = want.merged(Some(&seen));
        assert_eq!(m.workflow_status.as_deref(), Some("SUPPRESSED"));
        assert_eq!(m.note, seen.note);
    }
}
