//! Reads and validates a desired-state directory.
//!
//! Layout (see `desired-state/README.md`):
//! `settings.yaml`, `tiers.yaml`, `features/*.yaml` (one per feature F01-F15),
//! `accounts/*.yaml` (one per member account), `policies/**.json`.
//!
//! Every problem found is reported with `file:line:col: message` and a one-line hint; all
//! files are read so that one run shows every mistake, and nothing else runs until the
//! directory is clean.

use super::names::{self, FeatureId, LoadContext, TierName, FEATURES};
use super::{AccountFile, AccountFileRaw, DesiredState, Feature, FeatureFile, Settings, Tier};
use crate::resources::{Ownership, Scope};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in desired state, located as precisely as the file allows.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem concerns the file as a whole.
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.message)?;
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// All problems found in one load.
#[derive(Debug, Clone)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for e in &self.0 {
            writeln!(f, "error: {e}")?;
        }
        write!(f, "desired state is invalid: {} error(s); nothing was changed", self.0.len())
    }
}

impl std::error::Error for LoadErrors {}

fn split_hint(message: &str) -> (String, Option<String>) {
    match message.split_once("; hint: ") {
        Some((m, h)) => (m.to_string(), Some(h.to_string())),
        None => (message.to_string(), None),
    }
}

fn whole_file(file: &Path, message: impl Into<String>, hint: Option<&str>) -> LoadError {
    LoadError { file: file.to_path_buf(), line: 0, column: 0, message: message.into(), hint: hint.map(str::to_string) }
}

/// `source`: the file's text, in which a syntax error's real cause may stand lines earlier.
fn yaml_error(file: &Path, source: &str, e: &serde_yaml::Error) -> LoadError {
    let mut text = e.to_string();
    let (line, column) = match e.location() {
        Some(loc) => {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(pos) = text.find(&suffix) {
                text.replace_range(pos..pos + suffix.len(), "");
            }
            (loc.line(), loc.column())
        }
        None => (0, 0),
    };
    let (message, hint) = split_hint(&text);
    let hint = hint.or_else(|| semantic_hint(&message)).unwrap_or_else(|| match unclosed_quote(source, line) {
        // The parser stops where the runaway quoted text finally breaks the structure,
        // which can be many lines after the quote that was left open.
        Some(at) => format!("the quote opened on line {at} is not closed on that line: close it"),
        None => syntax_hint(&message),
    });
    LoadError { file: file.to_path_buf(), line, column, message, hint: Some(hint) }
}

/// The text between the first `open` after `from` and the next `close`.
fn between<'a>(text: &'a str, from: &str, open: char, close: char) -> Option<&'a str> {
    let rest = &text[text.find(from)? + from.len()..];
    let start = rest.find(open)? + open.len_utf8();
    let len = rest[start..].find(close)?;
    Some(&rest[start..start + len])
}

/// The names serde lists after `expected one of` (or `expected`) in an unknown field or
/// variant message, each between backticks.
fn listed_names(message: &str) -> Vec<&str> {
    let Some(pos) = message.find(", expected") else { return vec![] };
    message[pos..].split('`').skip(1).step_by(2).collect()
}

/// A one-line hint for a problem serde_yaml found in what the YAML says (unknown key or
/// value, missing or repeated key, wrong type), from its message: what to write instead.
/// None for a syntax error.
fn semantic_hint(message: &str) -> Option<String> {
    if let Some(field) = between(message, "unknown field ", '`', '`') {
        return Some(match names::did_you_mean(field, listed_names(message)) {
            Some(m) => format!("did you mean {m}?"),
            None => format!("remove `{field}`: this mapping takes only the keys listed (see desired-state/README.md)"),
        });
    }
    if let Some(value) = between(message, "unknown variant ", '`', '`') {
        return Some(match names::did_you_mean(value, listed_names(message)) {
            Some(m) => format!("did you mean {m}?"),
            None => "use one of the values listed (they are case-sensitive)".into(),
        });
    }
    if let Some(field) = between(message, "missing field ", '`', '`') {
        return Some(format!("add `{field}:` to this mapping; desired-state/README.md shows what it takes"));
    }
    if let Some(field) = between(message, "duplicate field ", '`', '`') {
        return Some(format!("`{field}` is given twice in this mapping: keep one"));
    }
    if let Some(pos) = message.find("invalid type: ").or_else(|| message.find("invalid value: ")) {
        let rest = &message[pos..];
        let rest = &rest[rest.find(": ").map_or(0, |i| i + 2)..];
        if let Some((found, expected)) = rest.rsplit_once(", expected ") {
            return Some(type_hint(found, expected));
        }
    }
    if message.contains("expected a YAML tag") {
        return Some("write one plain word here, one of the values desired-state/README.md lists".into());
    }
    None
}

/// The first line, up to `until`, whose value opens a quote that the line does not close
/// (`name: "cm-baseline`). YAML lets a quoted value run over lines, so such a slip shows
/// up as a syntax error wherever the runaway text happens to end.
fn unclosed_quote(source: &str, until: usize) -> Option<usize> {
    source.lines().take(until.max(1)).enumerate().find_map(|(i, line)| {
        let t = line.trim_start();
        if t.starts_with('#') {
            return None;
        }
        let value = t.strip_prefix("- ").unwrap_or(t);
        let value = value.split_once(": ").map_or(value, |(_, v)| v).trim_start();
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let rest = &value[1..];
        let closed = if quote == '"' {
            let mut escaped = false;
            rest.chars().any(|c| {
                let end = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                end
            })
        } else {
            rest.contains('\'')
        };
        (!closed).then_some(i + 1)
    })
}

/// What to write where the type is wrong: `found` and `expected` as serde words them
/// (`string "eight"`, `i32`).
fn type_hint(found: &str, expected: &str) -> String {
    let quoted = found.strip_prefix("string \"").and_then(|s| s.strip_suffix('"'));
    let integer = matches!(expected, "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "usize" | "isize");
    if integer || expected.contains("integer") {
        let unsigned = expected.starts_with('u');
        return match quoted.filter(|s| s.parse::<i64>().is_ok()) {
            Some(n) => format!("write the number without quotes: {n}"),
            None if unsigned && found.contains('-') => "write a whole number, 0 or more".into(),
            None => "write a whole number, without quotes".into(),
        };
    }
    if expected == "a boolean" {
        return match quoted {
            Some(s @ ("true" | "false")) => format!("write {s} without quotes"),
            Some(s) if ["yes", "no", "on", "off", "y", "n"].contains(&s.to_ascii_lowercase().as_str()) => {
                format!("write true or false: `{s}` is a string in YAML 1.2")
            }
            _ => "write true or false".into(),
        };
    }
    if expected == "a sequence" {
        return match quoted {
            Some(s) if !s.contains(char::is_whitespace) => format!("write a list, even of one item: [{s}]"),
            _ => "write a list: [a, b], or one `- item` per line".into(),
        };
    }
    if expected == "a map" || expected.starts_with("struct ") || expected.starts_with("a map") {
        return "write `key: value` lines indented below this key".into();
    }
    if found == "sequence" || found == "map" {
        return format!(
            "write a single value here ({expected}), not a {}",
            if found == "map" { "mapping" } else { "list" }
        );
    }
    format!("write {expected} here")
}

/// A hint for a YAML syntax error, from the message of the YAML parser.
fn syntax_hint(message: &str) -> String {
    if message.contains("tab character") {
        "indent with spaces: YAML does not allow tabs".into()
    } else if message.contains("flow sequence") || message.contains("flow mapping") {
        "inside [ ] or { }, quote items that contain { } [ ] , or :, as in [\"admin-group-{account_id}\"]".into()
    } else if message.contains("mapping values are not allowed") {
        "quote a value that contains `: `, as in title: \"a: b\", or check this line's indentation".into()
    } else if message.contains("cannot start any token") {
        "quote a value that starts with @, ` or another reserved character".into()
    } else if message.contains("did not find expected key") || message.contains("block") {
        "check the indentation: keys of one mapping line up, and list items start with `- `".into()
    } else {
        "YAML syntax: check the indentation (spaces only) and quote values with special characters".into()
    }
}

/// Parses one YAML file with `cx` as load context.
fn parse_file<T: DeserializeOwned>(
    cx: LoadContext,
    file: &Path,
    errors: &mut Vec<LoadError>,
) -> (Option<T>, LoadContext) {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            errors.push(whole_file(file, format!("cannot read: {e}"), None));
            return (None, cx);
        }
    };
    let mut cx = cx;
    cx.current_file = file.to_path_buf();
    let (res, cx) = names::with_context(cx, || serde_yaml::from_str::<T>(&text));
    match res {
        Ok(v) => (Some(v), cx),
        Err(e) => {
            errors.push(yaml_error(file, &text, &e));
            (None, cx)
        }
    }
}

fn yaml_files(dir: &Path, errors: &mut Vec<LoadError>) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(whole_file(dir, format!("cannot read directory: {e}"), None));
            return vec![];
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    files
}

/// Placeholders every resource may use; settings may add more under `variables`.
pub const BUILTIN_PLACEHOLDERS: [&str; 6] =
    ["account_id", "account_name", "region", "home_region", "partition", "management_account_id"];

/// Finds `{name}` placeholders in `text` that are not known, with their line and column.
fn unknown_placeholders(file: &Path, text: &str, known: &BTreeSet<String>) -> Vec<LoadError> {
    let mut out = vec![];
    let yaml = matches!(file.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
    for (lineno, line) in text.lines().enumerate() {
        // A YAML comment is prose, not a template.
        let line = match line.find('#') {
            Some(i) if yaml && (i == 0 || line[..i].ends_with(char::is_whitespace)) => &line[..i],
            _ => line,
        };
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'{' && (i == 0 || bytes[i - 1] != b'$') {
                let rest = &line[i + 1..];
                let end = rest.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
                if let Some(end) = end {
                    if end > 0 && rest.as_bytes()[end] == b'}' {
                        let name = &rest[..end];
                        if !known.contains(name) {
                            let hint = names::did_you_mean(name, known.iter().map(String::as_str))
                                .map(|m| format!("did you mean {{{m}}}?"))
                                .unwrap_or_else(|| "define it under `variables` in settings.yaml".to_string());
                            out.push(LoadError {
                                file: file.to_path_buf(),
                                line: lineno + 1,
                                column: line[..i].chars().count() + 1,
                                message: format!("unknown placeholder {{{name}}}"),
                                hint: Some(hint),
                            });
                        }
                    }
                }
            }
            i += 1;
        }
    }
    out
}

fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                files_below(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

/// Loads and validates the desired-state directory `dir`.
pub fn load(dir: &Path) -> Result<DesiredState, LoadErrors> {
    // Said once, with where to point instead, rather than once per file it would hold.
    if !dir.is_dir() {
        let what = if dir.exists() { "is not a directory" } else { "does not exist" };
        return Err(LoadErrors(vec![whole_file(
            dir,
            format!("no desired state here: {what}"),
            Some("give the desired-state directory with --desired-state DIR or CM_DESIRED_STATE (the default is ./desired-state)"),
        )]));
    }
    let mut errors = vec![];
    let cx = LoadContext { dir: dir.to_path_buf(), ..Default::default() };

    let settings_file = dir.join("settings.yaml");
    let (settings, cx) = parse_file::<Settings>(cx, &settings_file, &mut errors);

    if let Some(s) = &settings {
        errors.extend(settings_conflicts(&settings_file, s));
    }

    let tiers_file = dir.join("tiers.yaml");
    let (tiers_raw, mut cx) = parse_file::<BTreeMap<String, Tier>>(cx, &tiers_file, &mut errors);
    let tiers: BTreeMap<TierName, Tier> =
        tiers_raw.unwrap_or_default().into_iter().map(|(k, v)| (TierName::new_unchecked(&k), v)).collect();
    if tiers.is_empty() && errors.iter().all(|e| e.file != tiers_file) {
        errors.push(whole_file(&tiers_file, "no tier is defined", Some("define `basic` and `secure`")));
    }
    // When tiers.yaml itself is broken, tier names elsewhere are not checked: that would
    // only repeat the one error in every file.
    let tiers_ok = errors.iter().all(|e| e.file != tiers_file);
    cx.tiers = tiers_ok.then(|| tiers.keys().map(|t| t.as_str().to_string()).collect());

    let mut features = BTreeMap::new();
    for file in yaml_files(&dir.join("features"), &mut errors) {
        let (f, next) = parse_file::<FeatureFile>(cx, &file, &mut errors);
        cx = next;
        if let Some(f) = f {
            features.insert(
                f.id.0.clone(),
                Feature {
                    id: f.id.0,
                    title: f.title,
                    description: f.description,
                    kind: f.kind,
                    also_when_required: f.also_when_required,
                    tag: f.tag,
                    requires: f.requires,
                    resources: f.resources,
                    adopt: f.adopt,
                    on_leaving: f.on_leaving,
                    kept: None,
                    file,
                },
            );
        }
    }
    if errors.is_empty() {
        let missing: Vec<&str> = FEATURES
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| !features.keys().any(|f: &FeatureId| f.as_str() == *id))
            .collect();
        if !missing.is_empty() {
            errors.push(whole_file(
                &dir.join("features"),
                format!("no definition for {}", missing.join(", ")),
                Some("every feature F01-F15 needs a file under features/ (an empty `resources: []` is allowed)"),
            ));
        }
        if let Some(s) = &settings {
            errors.extend(resource_conflicts(&features, s.home_region.as_str()));
        }
        errors.extend(requirement_kinds(&features));
        if let Some(cycle) = requirement_cycle(&features) {
            errors.push(whole_file(
                &features[&cycle[0]].file,
                format!(
                    "features require each other in a cycle: {}",
                    cycle.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(" -> ")
                ),
                Some("a feature cannot depend on itself, directly or not"),
            ));
        }
    }

    let mut accounts = BTreeMap::new();
    for file in yaml_files(&dir.join("accounts"), &mut errors) {
        let (a, next) = parse_file::<AccountFileRaw>(cx, &file, &mut errors);
        cx = next;
        if let Some(a) = a {
            accounts.insert(
                a.account_id.0.clone(),
                AccountFile {
                    account_id: a.account_id.0,
                    name: a.name,
                    tier: a.tier,
                    opt_in: a.opt_in,
                    adopt: a.adopt,
                    file,
                },
            );
        }
    }

    // Placeholders are checked in the text itself, so that the error points at them.
    let mut known: BTreeSet<String> = BUILTIN_PLACEHOLDERS.iter().map(|s| s.to_string()).collect();
    if let Some(s) = &settings {
        known.extend(s.variables.keys().cloned());
    }
    let mut scanned = vec![];
    files_below(&dir.join("features"), &mut scanned);
    files_below(&dir.join("policies"), &mut scanned);
    scanned.sort();
    for file in scanned {
        if let Ok(text) = std::fs::read_to_string(&file) {
            errors.extend(unknown_placeholders(&file, &text, &known));
        }
    }

    match settings {
        Some(settings) if errors.is_empty() => {
            Ok(DesiredState { dir: dir.to_path_buf(), settings, tiers, features, accounts })
        }
        _ => {
            if errors.is_empty() {
                errors.push(whole_file(&settings_file, "missing settings", None));
            }
            Err(LoadErrors(errors))
        }
    }
}

/// Settings that parse but contradict themselves.
fn settings_conflicts(file: &Path, s: &Settings) -> Vec<LoadError> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    // The first place `needle` is written outside a comment (settings.yaml shows the
    // defaults as comments).
    let locate = |needle: &str| {
        text.lines()
            .enumerate()
            .find_map(|(i, l)| {
                let code = match l.find('#') {
                    Some(h) if h == 0 || l[..h].ends_with(char::is_whitespace) => &l[..h],
                    _ => l,
                };
                code.find(needle).map(|c| (i + 1, l[..c].chars().count() + 1))
            })
            .unwrap_or((0, 0))
    };
    let mut out = vec![];
    for name in s.variables.keys().filter(|k| BUILTIN_PLACEHOLDERS.contains(&k.as_str())) {
        let (line, column) = locate(&format!("{name}:"));
        out.push(LoadError {
            file: file.to_path_buf(),
            line,
            column,
            message: format!("variables: `{name}` is a built-in placeholder and cannot be redefined"),
            hint: Some("choose another name".into()),
        });
    }
    let share = s.daemon.brake.max_changed_share;
    if !(0.0..=1.0).contains(&share) {
        let (line, column) = locate("max_changed_share");
        out.push(LoadError {
            file: file.to_path_buf(),
            line,
            column,
            message: format!("daemon.brake.max_changed_share: {share} is not a share of the fleet"),
            hint: Some("a number from 0 to 1, such as 0.2 for 20 %".into()),
        });
    }
    if s.excluded_regions.contains(&s.home_region) {
        let (line, column) = locate("excluded_regions");
        out.push(LoadError {
            file: file.to_path_buf(),
            line,
            column,
            message: format!("excluded_regions: the home region {} cannot be excluded", s.home_region),
            hint: Some("account-wide resources live in the home region".into()),
        });
    }
    out
}

/// Where the `n`-th (0-based) entry of resource type `kind` stands in a feature file: the
/// line and column of its `- kind:` item, or (0, 0) when it is written otherwise.
fn entry_location(text: &str, kind: &str, n: usize) -> (usize, usize) {
    let item = format!("- {kind}:");
    text.lines().enumerate().filter_map(|(i, l)| l.find(&item).map(|c| (i + 1, c + 3))).nth(n).unwrap_or((0, 0))
}

/// Two resource scopes that can name the same region of one account.
fn scopes_overlap(a: &Scope, b: &Scope, home: &str) -> bool {
    // Every scope but `global` as: these regions only, or every region but these.
    fn norm(s: &Scope, home: &str) -> Option<(bool, BTreeSet<String>)> {
        let set = |l: &[super::names::Region]| l.iter().map(|r| r.as_str().to_string()).collect();
        match s {
            Scope::Global => None,
            Scope::Home => Some((true, [home.to_string()].into())),
            Scope::All => Some((false, BTreeSet::new())),
            Scope::Others => Some((false, [home.to_string()].into())),
            Scope::Only(l) => Some((true, set(l))),
            Scope::Except(l) => Some((false, set(l))),
        }
    }
    match (norm(a, home), norm(b, home)) {
        (None, None) => true,
        (None, _) | (_, None) => false,
        (Some((true, x)), Some((true, y))) => !x.is_disjoint(&y),
        (Some((true, x)), Some((false, y))) | (Some((false, y)), Some((true, x))) => !x.is_subset(&y),
        // Both cover every region but a few: any region beyond both lists is in both.
        (Some((false, _)), Some((false, _))) => true,
    }
}

/// Two entries that resolve to the same resource of one account (same type, name and
/// region, for a tier both apply to), and `ensure: absent` on a type whose ownership
/// cannot be shown: an account setting is never absent, it has a value.
fn resource_conflicts(features: &BTreeMap<FeatureId, Feature>, home: &str) -> Vec<LoadError> {
    struct Entry<'a> {
        file: &'a Path,
        line: usize,
        column: usize,
        entry: &'a crate::resources::ResourceEntry,
    }
    let mut errors = vec![];
    let mut entries: Vec<Entry> = vec![];
    for f in features.values() {
        let text = std::fs::read_to_string(&f.file).unwrap_or_default();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &f.resources {
            let kind = e.spec.kind();
            let n = seen.entry(kind).or_insert(0);
            let (line, column) = entry_location(&text, kind, *n);
            *n += 1;
            if f.on_leaving.as_ref().is_some_and(|o| o.removes(kind, &e.spec.name()))
                && e.spec.ownership() == Ownership::Setting
            {
                errors.push(LoadError {
                    file: f.file.clone(),
                    line,
                    column,
                    message: format!(
                        "{kind}: `on_leaving` removes an account setting, which has a value and cannot be removed"
                    ),
                    hint: Some("leave it out of `on_leaving: {remove: [...]}`: it is kept".into()),
                });
            }
            if e.ensure == crate::resources::Ensure::Absent && e.spec.ownership() == Ownership::Setting {
                errors.push(LoadError {
                    file: f.file.clone(),
                    line,
                    column,
                    message: format!(
                        "{kind}: `ensure: absent` on an account setting, which has a value, never an absence"
                    ),
                    hint: Some("write the value the setting should have instead (AWS's default turns it off)".into()),
                });
            }
            entries.push(Entry { file: &f.file, line, column, entry: e });
        }
        if let Some(crate::desired::Removal::Types(types)) = f.on_leaving.as_ref().map(|o| &o.remove) {
            let names = |t: &str| {
                f.resources.iter().any(|e| t == e.spec.kind() || t == format!("{} {}", e.spec.kind(), e.spec.name()))
            };
            for t in types.iter().filter(|t| !names(t)) {
                let (line, column) = text
                    .lines()
                    .enumerate()
                    .find_map(|(i, l)| l.find("on_leaving").map(|c| (i + 1, c + 1)))
                    .unwrap_or((1, 1));
                let kinds: Vec<&str> = f.resources.iter().map(|e| e.spec.kind()).collect();
                errors.push(LoadError {
                    file: f.file.clone(),
                    line,
                    column,
                    message: format!("`on_leaving` removes `{t}`, which is no resource of this feature"),
                    hint: Some(format!("write TYPE or TYPE NAME; its types: {}", kinds.join(", "))),
                });
            }
        }
    }
    for (i, a) in entries.iter().enumerate() {
        for b in &entries[i + 1..] {
            let (ea, eb) = (a.entry, b.entry);
            let tiers_meet = match (&ea.tiers, &eb.tiers) {
                (Some(x), Some(y)) => x.iter().any(|t| y.contains(t)),
                _ => true,
            };
            let scope =
                |e: &crate::resources::ResourceEntry| e.regions.clone().unwrap_or_else(|| e.spec.default_scope());
            if ea.spec.kind() == eb.spec.kind()
                && ea.spec.name() == eb.spec.name()
                && tiers_meet
                && scopes_overlap(&scope(ea), &scope(eb), home)
            {
                errors.push(LoadError {
                    file: b.file.to_path_buf(),
                    line: b.line,
                    column: b.column,
                    message: format!(
                        "{} {}: the same resource is already declared at {}:{}:{}, for the same tier and region",
                        eb.spec.kind(),
                        eb.spec.name(),
                        a.file.display(),
                        a.line,
                        a.column
                    ),
                    hint: Some("declare it once, or split the two by `tiers:` or `regions:`".into()),
                });
            }
        }
    }
    errors
}

/// A `met_by_any` kind that the required feature does not set: it could never meet the
/// requirement.
fn requirement_kinds(features: &BTreeMap<FeatureId, Feature>) -> Vec<LoadError> {
    let mut out = vec![];
    for f in features.values() {
        for r in &f.requires {
            let Some(kind) = &r.met_by_any else { continue };
            let sets = features.get(&r.feature).is_some_and(|d| d.resources.iter().any(|e| e.spec.kind() == kind));
            if !sets {
                out.push(whole_file(
                    &f.file,
                    format!(
                        "{} requires {} `met_by_any: {kind}`, but {} has no {kind} resource",
                        f.id, r.feature, r.feature
                    ),
                    Some("name a resource type of the required feature (for example config_recorder for F08)"),
                ));
            }
        }
    }
    out
}

/// A cycle among `requires`, if there is one.
fn requirement_cycle(features: &BTreeMap<FeatureId, Feature>) -> Option<Vec<FeatureId>> {
    fn visit(
        f: &FeatureId,
        features: &BTreeMap<FeatureId, Feature>,
        stack: &mut Vec<FeatureId>,
        done: &mut BTreeSet<FeatureId>,
    ) -> Option<Vec<FeatureId>> {
        if let Some(pos) = stack.iter().position(|s| s == f) {
            let mut c = stack[pos..].to_vec();
            c.push(f.clone());
            return Some(c);
        }
        if done.contains(f) {
            return None;
        }
        stack.push(f.clone());
        for r in features.get(f).map(|x| x.requires.as_slice()).unwrap_or_default() {
            if let Some(c) = visit(&r.feature, features, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(f.clone());
        None
    }
    let mut done = BTreeSet::new();
    features.keys().find_map(|f| visit(f, features, &mut vec![], &mut done))
}

#[cfg(test)]
mod tests {
    use super::unclosed_quote;

    #[test]
    fn a_quote_left_open_is_found_on_its_own_line() {
        let text = "a: \"closed\"\n# b: \"in a comment\nc: 'it''s closed'\nd: \"say \\\"hi\\\"\"\n- \"item\nf: x\n";
        assert_eq!(unclosed_quote(text, 99), Some(5));
        assert_eq!(unclosed_quote(text, 4), None, "only lines up to the error count");
        assert_eq!(unclosed_quote("name: 'open\n", 1), Some(1));
        assert_eq!(unclosed_quote("name: \"ends with escape\\\"\n", 1), Some(1));
        assert_eq!(unclosed_quote("plain: a \"b\n", 1), None, "a quote inside a plain value opens nothing");
    }
}
