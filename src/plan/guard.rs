//! No self-lockout: the member role this tool assumes must, after any change the tool
//! makes to it, still trust the management account and still allow the tool to repair it.

use crate::desired::policy::{string_or_list, wildcard_match, PolicyDoc};
use crate::desired::resolve::AccountBaseline;
use crate::resources::ResourceSpec;
use serde_json::Value;

/// Managed policies that grant every IAM action the guard asks for.
const SUFFICIENT_MANAGED: [&str; 2] =
    ["arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::aws:policy/IAMFullAccess"];

pub fn is_member_role(baseline: &AccountBaseline, spec: &ResourceSpec) -> bool {
    matches!(spec, ResourceSpec::IamRole(r) if r.name == baseline.member_role_name)
}

fn principals(stmt: &Value) -> Vec<String> {
    match stmt.get("Principal") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Object(o)) => string_or_list(o.get("AWS")),
        _ => vec![],
    }
}

fn effect(stmt: &Value, want: &str) -> bool {
    stmt.get("Effect").and_then(Value::as_str) == Some(want)
}

fn actions_match(stmt: &Value, action: &str) -> bool {
    string_or_list(stmt.get("Action")).iter().any(|p| wildcard_match(p, action))
}

/// Whether `trust` lets the management account assume the role (with our external id).
fn trusts_management(trust: &PolicyDoc, mgmt: &str, external_id: Option<&str>) -> Result<(), String> {
    let is_mgmt = |p: &String| {
        // Any partition: arn:aws:..., arn:aws-cn:..., arn:aws-us-gov:...
        p == "*" || p == mgmt || (p.starts_with("arn:") && p.contains(&format!(":iam::{mgmt}:")))
    };
    let stmts = trust.statements();
    if stmts
        .iter()
        .any(|s| effect(s, "Deny") && actions_match(s, "sts:AssumeRole") && principals(s).iter().any(is_mgmt))
    {
        return Err(format!("the new trust policy denies sts:AssumeRole to the management account {mgmt}"));
    }
    let allowed = stmts.iter().any(|s| {
        effect(s, "Allow")
            && actions_match(s, "sts:AssumeRole")
            && principals(s).iter().any(is_mgmt)
            && match (external_id, s.pointer("/Condition/StringEquals/sts:ExternalId")) {
                (_, None) => true,
                (Some(want), Some(Value::String(got))) => want == got,
                _ => false,
            }
    });
    if allowed {
        Ok(())
    } else {
        Err(format!(
            "the new trust policy would no longer let the management account {mgmt} assume the role{}",
            external_id.map(|_| " with the configured external id").unwrap_or_default()
        ))
    }
}

/// `Ok` when a create or update of `spec` keeps this tool able to work; otherwise why not.
pub fn lockout(baseline: &AccountBaseline, spec: &ResourceSpec) -> Result<(), String> {
    let ResourceSpec::IamRole(role) = spec else {
        return Ok(());
    };
    if role.name != baseline.member_role_name {
        return Ok(());
    }
    trusts_management(&role.trust_policy, &baseline.management_account_id, baseline.external_id.as_deref())?;
    if role.managed_policies.iter().flatten().any(|a| SUFFICIENT_MANAGED.contains(&a.as_str())) {
        return Ok(());
    }
    let stmts: Vec<&Value> =
        role.inline_policies.iter().flat_map(|m| m.values()).flat_map(|p| p.statements()).collect();
    let mut lost = vec![];
    for action in &baseline.lockout_guard.required_actions {
        let denied = stmts.iter().any(|s| effect(s, "Deny") && actions_match(s, action));
        let allowed = stmts.iter().any(|s| effect(s, "Allow") && actions_match(s, action));
        if denied || !allowed {
            lost.push(action.as_str());
        }
    }
    if lost.is_empty() {
        Ok(())
    } else {
        Err(format!("the new policies of {} would no longer allow {}", role.name, lost.join(", ")))
    }
}
