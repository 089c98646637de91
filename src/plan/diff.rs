//! Field-wise comparison of desired and observed resources, and the unified diff shown
//! to operators. A desired field left empty (`null`) means "no opinion" and is neither
//! compared nor shown.

use crate::resources::ResourceSpec;
use serde_json::Value;

fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            Value::Object(o.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), strip_nulls(v))).collect())
        }
        other => other.clone(),
    }
}

/// `observed`, restricted to the fields `desired` has an opinion on.
fn project(desired: &Value, observed: &Value) -> Value {
    match (desired, observed) {
        (Value::Object(d), Value::Object(o)) => Value::Object(
            d.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, dv)| (k.clone(), project(dv, o.get(k).unwrap_or(&Value::Null))))
                .collect(),
        ),
        (_, o) => o.clone(),
    }
}

/// The top-level fields where `observed` differs from `desired`.
pub fn differing_fields(desired: &ResourceSpec, observed: &ResourceSpec) -> Vec<String> {
    let d = strip_nulls(&desired.fields());
    let o = project(&d, &observed.fields());
    match (&d, &o) {
        (Value::Object(d), Value::Object(o)) => {
            d.iter().filter(|(k, v)| o.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect()
        }
        _ if d != o => vec!["(all)".into()],
        _ => vec![],
    }
}

fn yaml(v: &Value) -> String {
    serde_yaml::to_string(v).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
}

/// A unified diff from `observed` to `desired` (either may be absent), as YAML.
pub fn render_diff(observed: Option<&ResourceSpec>, desired: Option<&ResourceSpec>) -> String {
    let d = desired.map(|d| strip_nulls(&d.fields()));
    let before = match (observed, &d) {
        (Some(o), Some(d)) => yaml(&project(d, &o.fields())),
        (Some(o), None) => yaml(&strip_nulls(&o.fields())),
        (None, _) => String::new(),
    };
    let after = d.as_ref().map(yaml).unwrap_or_default();
    similar::TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header("observed", "desired")
        .to_string()
}
