//! JSON policy documents (IAM trust and permission policies, key and bucket policies).
//!
//! In desired state a policy is written as the path of a JSON file under the desired-state
//! directory, or inline as a YAML mapping. Either way it is held as a JSON value, so that
//! comparing it with what AWS returns is a comparison of structure, not of whitespace.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct PolicyDoc(pub serde_json::Value);

impl PolicyDoc {
    /// Parses a document as AWS returns it: JSON, possibly URL-encoded (IAM does that).
    pub fn from_aws(text: &str) -> Result<Self, String> {
        let decoded;
        let text = if text.trim_start().starts_with('%') || !text.trim_start().starts_with('{') {
            decoded = urlencoding::decode(text).map_err(|e| e.to_string())?.into_owned();
            decoded.as_str()
        } else {
            text
        };
        serde_json::from_str(text).map(PolicyDoc).map_err(|e| format!("policy document from AWS is not JSON: {e}"))
    }

    pub fn to_json_string(&self) -> String {
        self.0.to_string()
    }

    /// The statements of the document (one object or a list).
    pub fn statements(&self) -> Vec<&serde_json::Value> {
        match self.0.get("Statement") {
            Some(serde_json::Value::Array(a)) => a.iter().collect(),
            Some(v @ serde_json::Value::Object(_)) => vec![v],
            _ => vec![],
        }
    }
}

/// A string or a list of strings, as IAM allows for Action, Resource and principals.
/// The strings of a policy field that holds one string or a list, without copying them.
pub fn str_items(v: Option<&serde_json::Value>) -> impl Iterator<Item = &str> {
    let (one, many) = match v {
        Some(serde_json::Value::String(s)) => (Some(s.as_str()), None),
        Some(serde_json::Value::Array(a)) => (None, Some(a.iter().filter_map(|x| x.as_str()))),
        _ => (None, None),
    };
    one.into_iter().chain(many.into_iter().flatten())
}

pub fn string_or_list(v: Option<&serde_json::Value>) -> Vec<String> {
    match v {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        _ => vec![],
    }
}

/// IAM's wildcard match (`*` any run, `?` one character), case-insensitive as for actions.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return pattern.eq_ignore_ascii_case(text);
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi].eq_ignore_ascii_case(&t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl Serialize for PolicyDoc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for PolicyDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PolicyDoc;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("the path of a JSON policy file, or an inline policy mapping")
            }
            fn visit_str<E: de::Error>(self, path: &str) -> Result<PolicyDoc, E> {
                let full = super::names::context_path(path);
                let text = std::fs::read_to_string(&full).map_err(|e| {
                    E::custom(format!(
                        "cannot read policy file {}: {e}; hint: paths are relative to the desired-state directory",
                        full.display()
                    ))
                })?;
                serde_json::from_str(&text)
                    .map(PolicyDoc)
                    .map_err(|e| E::custom(format!("policy file {}:{}:{}: {e}", full.display(), e.line(), e.column())))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PolicyDoc, A::Error> {
                let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(PolicyDoc(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("iam:*", "iam:PutRolePolicy"));
        assert!(wildcard_match("*", "s3:GetObject"));
        assert!(wildcard_match("iam:Put*Policy", "iam:PutRolePolicy"));
        assert!(wildcard_match("IAM:getrole", "iam:GetRole"));
        assert!(!wildcard_match("iam:Get*", "iam:PutRolePolicy"));
        assert!(!wildcard_match("s3:*", "iam:GetRole"));
    }

    #[test]
    fn url_encoded_documents_are_decoded() {
        let d = PolicyDoc::from_aws("%7B%22Version%22%3A%222012-10-17%22%7D").unwrap();
        assert_eq!(d.0["Version"], "2012-10-17");
    }
}
