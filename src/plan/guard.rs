//! No self-lockout: the member role this tool assumes must, after any change the tool
//! makes to it, still let the tool assume it and still allow every call the tool makes.
//!
//! What is checked, and why it is conservative:
//! - **Trust.** The trust policy must allow `sts:AssumeRole` to the principal the tool runs
//!   as (from `GetCallerIdentity`): that principal itself (for an assumed role, its role, under
//!   any path), or the management account as a whole (its root, or its bare id). Another
//!   principal of the management account does not count. An `Allow` counts only if each of
//!   its conditions is one the tool is known to meet (`sts:ExternalId` equal to the configured
//!   external id); any other condition, or any `Deny` that could reach the tool (whatever its
//!   condition: the guard cannot prove a condition false), refuses the change.
//! - **Permissions.** Every IAM action the tool's own calls in a member account need
//!   (`guard-actions.txt`, which `tests/iam_policy.rs` derives from the code and keeps equal
//!   to it), plus any `lockout_guard.required_actions` of settings, must be allowed by the
//!   role's inline policies (or by `AdministratorAccess`, or `IAMFullAccess` for IAM actions)
//!   and denied by none. An `Allow` with a condition counts only where the condition narrows
//!   what is passed or created (`iam:PassedToService`, `iam:AWSServiceName`). The actions by
//!   which the tool repairs the role itself must reach the role's own ARN.

use crate::desired::policy::{str_items, string_or_list, wildcard_match, PolicyDoc};
use crate::desired::resolve::{partition_of, AccountBaseline};
use crate::resources::ResourceSpec;
use serde_json::Value;
use std::collections::HashMap;

/// Every IAM action of the calls this tool makes in a member account, one per line.
const GUARD_ACTIONS: &str = include_str!("guard-actions.txt");

/// The IAM actions the tool's calls in a member account need, as derived from its code.
pub fn needed_actions() -> impl Iterator<Item = &'static str> {
    GUARD_ACTIONS.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// The actions by which the tool reads and repairs the member role itself: they must reach
/// the role's own ARN, not merely be allowed somewhere.
const SELF_REPAIR: [&str; 6] = [
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:PutRolePolicy",
    "iam:UpdateAssumeRolePolicy",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
];

/// Condition keys that narrow what a call passes or creates; the deployment's policy test
/// checks their values against the roles and services the code uses.
const NARROWING_CONDITIONS: [&str; 2] = ["iam:PassedToService", "iam:AWSServiceName"];

pub fn is_member_role(baseline: &AccountBaseline, spec: &ResourceSpec) -> bool {
    matches!(spec, ResourceSpec::IamRole(r) if r.name == baseline.member_role_name)
}

fn effect(stmt: &Value, want: &str) -> bool {
    stmt.get("Effect").and_then(Value::as_str) == Some(want)
}

/// Whether the statement's `Action` (or `NotAction`) covers `action`.
fn covers_action(stmt: &Value, action: &str) -> bool {
    if let Some(not) = stmt.get("NotAction") {
        return !str_items(Some(not)).any(|p| wildcard_match(p, action));
    }
    str_items(stmt.get("Action")).any(|p| wildcard_match(p, action))
}

/// Whether the statement's `Resource` (or `NotResource`) covers `arn`.
fn covers_resource(stmt: &Value, arn: &str) -> bool {
    if let Some(not) = stmt.get("NotResource") {
        return !str_items(Some(not)).any(|p| wildcard_match(p, arn));
    }
    str_items(stmt.get("Resource")).any(|p| wildcard_match(p, arn))
}

/// `(operator, key, value)` of every condition of a statement.
fn conditions(stmt: &Value) -> Vec<(String, String, &Value)> {
    let mut out = vec![];
    if let Some(Value::Object(ops)) = stmt.get("Condition") {
        for (op, keys) in ops {
            if let Value::Object(keys) = keys {
                for (k, v) in keys {
                    out.push((op.clone(), k.clone(), v));
                }
            } else {
                out.push((op.clone(), String::new(), keys));
            }
        }
    }
    out
}

/// The identity the tool runs as, in the forms a trust policy can name it.
struct Caller<'a> {
    account: &'a str,
    /// The role's name, for an assumed role.
    role_name: Option<&'a str>,
    /// `PATH/NAME`, for a user.
    user: Option<&'a str>,
    arn: &'a str,
}

impl<'a> Caller<'a> {
    fn parse(arn: &'a str, account: &'a str) -> Caller<'a> {
        // arn:PARTITION:sts::ACCOUNT:assumed-role/NAME/SESSION, arn:PARTITION:iam::ACCOUNT:user/PATH/NAME,
        // arn:PARTITION:sts::ACCOUNT:user/NAME (an emulator's user), arn:PARTITION:iam::ACCOUNT:root.
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let resource = parts.get(5).copied().unwrap_or("");
        let role_name = resource.strip_prefix("assumed-role/").and_then(|r| r.split('/').next());
        let user = resource.strip_prefix("user/");
        Caller { account, role_name, user, arn }
    }

    /// Whether a trust policy principal names this caller (or its whole account).
    fn named_by(&self, p: &str) -> bool {
        let acct = self.account;
        if p == "*" || p == acct || p == self.arn {
            return true;
        }
        let Some(rest) = p.strip_prefix("arn:").and_then(|r| r.split_once(":iam::")) else {
            return false;
        };
        let (_, tail) = rest;
        let Some(resource) = tail.strip_prefix(&format!("{acct}:")) else {
            return false;
        };
        if resource == "root" {
            return true;
        }
        if let (Some(role), Some(name)) = (resource.strip_prefix("role/"), self.role_name) {
            // The session ARN drops the role's path: any path with that name is the role.
            return role.rsplit('/').next() == Some(name);
        }
        if let (Some(user), Some(me)) = (resource.strip_prefix("user/"), self.user) {
            return user.rsplit('/').next() == me.rsplit('/').next();
        }
        false
    }
}

fn principals(stmt: &Value) -> Vec<String> {
    match stmt.get("Principal") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Object(o)) => string_or_list(o.get("AWS")),
        _ => vec![],
    }
}

/// Whether `trust` lets the tool (`caller`) assume the role, with our external id.
fn trusts_caller(trust: &PolicyDoc, caller: &Caller, external_id: Option<&str>) -> Result<(), String> {
    let who = caller.arn;
    let stmts = trust.statements();
    for s in stmts.iter().filter(|s| effect(s, "Deny") && covers_action(s, "sts:AssumeRole")) {
        let reaches = match s.get("NotPrincipal") {
            Some(Value::Object(o)) => !string_or_list(o.get("AWS")).iter().any(|p| caller.named_by(p)),
            Some(_) => false,
            None => principals(s).iter().any(|p| caller.named_by(p)),
        };
        if reaches {
            let when =
                if s.get("Condition").is_some() { " (under a condition the guard cannot prove false)" } else { "" };
            return Err(format!("the new trust policy denies sts:AssumeRole to {who}{when}"));
        }
    }
    let mut unprovable = vec![];
    for s in stmts.iter().filter(|s| effect(s, "Allow") && covers_action(s, "sts:AssumeRole")) {
        if !principals(s).iter().any(|p| caller.named_by(p)) {
            continue;
        }
        let mut provable = true;
        for (op, key, value) in conditions(s) {
            let meets = op == "StringEquals"
                && key == "sts:ExternalId"
                && external_id.is_some_and(|want| string_or_list(Some(value)).iter().any(|v| v == want));
            if !meets {
                provable = false;
                unprovable.push(format!("{op} {key}"));
            }
        }
        if provable {
            return Ok(());
        }
    }
    let detail = if unprovable.is_empty() {
        String::new()
    } else {
        format!(" (allowed only under conditions it cannot prove it meets: {})", unprovable.join(", "))
    };
    Err(format!(
        "the new trust policy would no longer let {who}, the identity cm-baseline runs as, assume the role{}{detail}",
        external_id.map(|_| " with the configured external id").unwrap_or_default()
    ))
}

/// `Ok` when a create or update of `spec` keeps this tool able to work; otherwise why not.
pub fn lockout(baseline: &AccountBaseline, spec: &ResourceSpec) -> Result<(), String> {
    let ResourceSpec::IamRole(role) = spec else {
        return Ok(());
    };
    if role.name != baseline.member_role_name {
        return Ok(());
    }
    let caller = Caller::parse(&baseline.caller_arn, &baseline.management_account_id);
    trusts_caller(&role.trust_policy, &caller, baseline.external_id.as_deref())?;

    let managed: Vec<&str> = role.managed_policies.iter().flatten().map(String::as_str).collect();
    let admin = managed.iter().any(|a| a.ends_with(":iam::aws:policy/AdministratorAccess"));
    let iam_full = managed.iter().any(|a| a.ends_with(":iam::aws:policy/IAMFullAccess"));
    let stmts: Vec<&Value> =
        role.inline_policies.iter().flat_map(|m| m.values()).flat_map(|p| p.statements()).collect();
    let own_arn =
        format!("arn:{}:iam::{}:role/{}", partition_of(&baseline.home_region), baseline.account_id.as_str(), role.name);
    let mut required: Vec<&str> = needed_actions().collect::<Vec<_>>();
    required.extend(baseline.lockout_guard.required_actions.iter().map(String::as_str));
    // (allowed, denied) per required action, keyed lower-case as IAM compares actions. Each
    // statement is read once: exact action names are looked up, only wildcards are matched.
    let mut verdict: HashMap<String, (bool, bool)> = required
        .iter()
        .map(|a| (a.to_ascii_lowercase(), (admin || (iam_full && a.starts_with("iam:")), false)))
        .collect();
    for s in &stmts {
        let deny = effect(s, "Deny");
        if !deny && !effect(s, "Allow") {
            continue;
        }
        let counts = deny || conditions(s).iter().all(|(_, k, _)| NARROWING_CONDITIONS.contains(&k.as_str()));
        if !counts {
            continue;
        }
        let reaches_self = covers_resource(s, &own_arn);
        let mut mark = |action: &str| {
            if let Some(v) = verdict.get_mut(&action.to_ascii_lowercase()) {
                if deny {
                    v.1 = true;
                } else if reaches_self || !SELF_REPAIR.iter().any(|a| a.eq_ignore_ascii_case(action)) {
                    v.0 = true;
                }
            }
        };
        let patterns: Vec<&str> = str_items(s.get("Action")).collect();
        if s.get("NotAction").is_some() || patterns.iter().any(|p| p.contains(['*', '?'])) {
            for a in required.iter().filter(|a| covers_action(s, a)) {
                mark(a);
            }
        } else {
            for p in patterns {
                mark(p);
            }
        }
    }
    let mut lost: Vec<&str> = required
        .iter()
        .copied()
        .filter(|a| verdict.get(&a.to_ascii_lowercase()).is_none_or(|(allowed, denied)| *denied || !allowed))
        .collect();
    lost.dedup();
    if lost.is_empty() {
        Ok(())
    } else {
        Err(format!("the new policies of {} would no longer allow {}", role.name, lost.join(", ")))
    }
}
