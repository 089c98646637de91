//! The IAM policies of the deployment (`deploy/iam/`) allow every AWS operation the code
//! calls, and the member-account policy grants nothing else.
//!
//! No AWS: the test reads every `.rs` file under `src/` and finds the AWS operations in it.
//! A client is bound from a session accessor (`let iam = cx.session.iam();`,
//! `let org = mgmt.organizations();`), used in a chain (`mgmt.sts().get_caller_identity()`),
//! or held in a field or parameter typed as a client (`sts: aws_sdk_sts::Client`, then
//! `self.sts.assume_role()`); an operation is `<client>.<operation>()`. The accessors are
//! read from the code as well (`fn s3(..) -> aws_sdk_s3::Client`, `client!(kms, aws_sdk_kms)`),
//! so a new SDK client is picked up by itself. Each operation is mapped to its IAM action:
//! the service prefix, the operation in PascalCase, and a table of the operations whose IAM
//! action has another name (S3 above all) or that need further actions (iam:PassRole,
//! service-linked roles, tagging on create).
//!
//! So that a call written in a style the scanner does not know cannot slip through, every
//! `.send()` in `src/` must belong to an operation the scan resolved.

use cm_baseline::desired::policy::{string_or_list, wildcard_match};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The checkout under test (Cargo sets `CARGO_MANIFEST_DIR` when it runs a test; a shared
/// target directory may hold this binary built from another clone).
fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
const MEMBER_POLICY: &str = "deploy/iam/CMMaintenancePolicy.json";
const MEMBER_POLICY_DESIRED: &str = "desired-state/policies/inline/CMMaintenancePolicy.json";
const MANAGEMENT_POLICY: &str = "deploy/iam/daemon-management-account.json";

// ---------------------------------------------------------------------------------------
// Tokens: identifiers and punctuation, with comments dropped and literals collapsed, so
// that patterns can be matched whatever the line breaks.

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Punct(char),
    Lit,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

fn tokenize(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let mut out = vec![];
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        let start_line = line;
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(c[i] == '\n');
                    i += 1;
                }
            }
        } else if (ch == 'r' || (ch == 'b' && at(i + 1) == 'r')) && {
            let j = if ch == 'b' { i + 2 } else { i + 1 };
            at(j) == '"' || (at(j) == '#' && (at(j + 1) == '"' || at(j + 1) == '#'))
        } {
            // Raw string: r"..", r#".."#, br#".."#.
            let mut j = if ch == 'b' { i + 2 } else { i + 1 };
            let mut hashes = 0;
            while at(j) == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            while j < c.len() && !(c[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#')) {
                line += usize::from(c[j] == '\n');
                j += 1;
            }
            i = j + 1 + hashes;
            out.push(Token { tok: Tok::Lit, line: start_line });
        } else if ch == '"' || (ch == 'b' && at(i + 1) == '"') {
            let mut j = if ch == 'b' { i + 2 } else { i + 1 };
            while j < c.len() && c[j] != '"' {
                if c[j] == '\\' {
                    j += 1;
                }
                line += usize::from(at(j) == '\n');
                j += 1;
            }
            i = j + 1;
            out.push(Token { tok: Tok::Lit, line: start_line });
        } else if ch == '\'' || (ch == 'b' && at(i + 1) == '\'') {
            let q = if ch == 'b' { i + 1 } else { i };
            if at(q + 1) == '\\' {
                let mut j = q + 3;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
                out.push(Token { tok: Tok::Lit, line });
            } else if at(q + 2) == '\'' {
                i = q + 3;
                out.push(Token { tok: Tok::Lit, line });
            } else {
                // A lifetime or label: the quote, then its name as an identifier.
                out.push(Token { tok: Tok::Punct('\''), line });
                i = q + 1;
            }
        } else if ch == 'r' && at(i + 1) == '#' && (at(i + 2).is_alphabetic() || at(i + 2) == '_') {
            i += 2; // raw identifier: the identifier follows
        } else if ch.is_alphabetic() || ch == '_' {
            let mut j = i;
            while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
                j += 1;
            }
            out.push(Token { tok: Tok::Ident(c[i..j].iter().collect()), line });
            i = j;
        } else if ch.is_ascii_digit() {
            let mut j = i;
            while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_' || (c[j] == '.' && at(j + 1).is_ascii_digit()))
            {
                j += 1;
            }
            out.push(Token { tok: Tok::Lit, line });
            i = j;
        } else {
            out.push(Token { tok: Tok::Punct(ch), line });
            i += 1;
        }
    }
    out
}

/// For every bracket `(`, `[`, `{` its partner, and the other way round.
fn partners(toks: &[Token]) -> Vec<Option<usize>> {
    let mut out = vec![None; toks.len()];
    let mut stack = vec![];
    for (i, t) in toks.iter().enumerate() {
        match t.tok {
            Tok::Punct('(' | '[' | '{') => stack.push(i),
            Tok::Punct(')' | ']' | '}') => {
                if let Some(o) = stack.pop() {
                    out[o] = Some(i);
                    out[i] = Some(o);
                }
            }
            _ => {}
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The scan.

/// One AWS operation called in the code.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Call {
    /// The SDK crate without `aws_sdk_` (`s3`, `s3control`, `eventbridge`, ...).
    krate: String,
    /// The operation as the SDK spells it (`put_bucket_encryption`).
    op: String,
    /// Made with the management account's credentials.
    management: bool,
    file: String,
    line: usize,
}

#[derive(Debug, Default)]
struct Scan {
    calls: Vec<Call>,
    /// `.send()` calls that belong to no operation found: `file:line`.
    unresolved: Vec<String>,
}

struct File {
    name: String,
    toks: Vec<Token>,
    pair: Vec<Option<usize>>,
}

impl File {
    fn new(name: &str, src: &str) -> Self {
        let toks = tokenize(src);
        let pair = partners(&toks);
        Self { name: name.to_string(), toks, pair }
    }
    fn ident(&self, i: usize) -> Option<&str> {
        match self.toks.get(i).map(|t| &t.tok) {
            Some(Tok::Ident(s)) => Some(s),
            _ => None,
        }
    }
    fn punct(&self, i: usize, p: char) -> bool {
        self.toks.get(i).map(|t| &t.tok) == Some(&Tok::Punct(p))
    }
    /// `aws_sdk_<x> :: Client` at `i`: the crate `x`.
    fn client_type(&self, i: usize) -> Option<String> {
        let krate = self.ident(i)?.strip_prefix("aws_sdk_")?;
        (self.punct(i + 1, ':') && self.punct(i + 2, ':') && self.ident(i + 3) == Some("Client"))
            .then(|| krate.to_string())
    }
}

/// Functions that return a client, by name: `fn iam(&self) -> aws_sdk_iam::Client` and
/// `client!(kms, aws_sdk_kms)`.
fn accessors(f: &File) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for i in 0..f.toks.len() {
        if f.ident(i) == Some("fn") {
            let (Some(name), Some(close)) = (f.ident(i + 1), f.punct(i + 2, '(').then(|| f.pair[i + 2]).flatten())
            else {
                continue;
            };
            if f.punct(close + 1, '-') && f.punct(close + 2, '>') {
                let t = if f.punct(close + 3, '&') { close + 4 } else { close + 3 };
                if let Some(k) = f.client_type(t) {
                    out.insert(name.to_string(), k);
                }
            }
        }
        if f.ident(i) == Some("client") && f.punct(i + 1, '!') && f.punct(i + 2, '(') {
            let Some(close) = f.pair[i + 2] else { continue };
            if let (Some(name), true, Some(k)) =
                (f.ident(close.wrapping_sub(3)), f.punct(close.wrapping_sub(2), ','), f.ident(close.wrapping_sub(1)))
            {
                if let Some(k) = k.strip_prefix("aws_sdk_") {
                    out.insert(name.to_string(), k.to_string());
                }
            }
        }
    }
    out
}

/// What a `let` binds its name to.
#[derive(Debug, Clone)]
enum Bound {
    /// A client of this crate; `true` when made from the management account's session.
    Client(String, bool),
    /// The request builder of an operation, sent later (`let mut req = s3.create_bucket()..;`).
    Builder,
    Other,
}

/// Identifiers of the receiver chain that ends just before token `end` (exclusive), e.g.
/// `cx . session` or `mgmt` or `self . management ( )`.
fn chain_idents(f: &File, end: usize) -> Vec<String> {
    let mut out = vec![];
    let mut j = end;
    while j > 0 {
        j -= 1;
        match &f.toks[j].tok {
            Tok::Ident(s) => out.push(s.clone()),
            Tok::Punct('.') => {}
            Tok::Punct(')') => match f.pair[j] {
                Some(o) => j = o,
                None => break,
            },
            _ => break,
        }
        // Stop at the head of the chain: an identifier not preceded by a dot.
        if matches!(f.toks[j].tok, Tok::Ident(_)) && !f.punct(j.wrapping_sub(1), '.') {
            break;
        }
    }
    out
}

fn is_management(idents: &[String]) -> bool {
    idents.iter().any(|s| s == "mgmt" || s == "management")
}

/// Whether an accessor call's receiver is a session (`cx.session`, `session`, `mgmt`,
/// `fleet.management()`, or `self` inside `src/aws/`), not some other object that happens
/// to have a method of the same name (an SDK client's own `config()`).
fn is_session(f: &File, idents: &[String]) -> bool {
    idents.iter().any(|s| ["session", "mgmt", "management", "fleet"].contains(&s.as_str()))
        || (f.name.starts_with("src/aws/") && idents.last().is_some_and(|s| s == "self"))
}

/// Methods with no arguments that a client has and that are no AWS operation.
const NOT_OPERATIONS: &[&str] = &["clone", "config", "to_owned", "as_ref"];

fn scan_file(f: &File, global: &HashMap<String, String>) -> Scan {
    let mut acc = global.clone();
    acc.extend(accessors(f));

    // Client-typed fields and parameters (`sts: aws_sdk_sts::Client`), by position.
    let mut typed: Vec<(usize, String, String)> = vec![];
    for i in 0..f.toks.len() {
        if let (Some(name), true) = (f.ident(i), f.punct(i + 1, ':')) {
            if f.punct(i.wrapping_sub(1), ':') {
                continue;
            }
            let mut t = i + 2;
            if f.punct(t, '&') {
                t += 1;
            }
            if f.ident(t) == Some("mut") {
                t += 1;
            }
            if let Some(k) = f.client_type(t) {
                typed.push((i, name.to_string(), k));
            }
        }
    }

    // `let` statements: (position of the name, name, `=` .. `;` range).
    let mut lets: Vec<(usize, String, usize, usize)> = vec![];
    for i in 0..f.toks.len() {
        // `if let` / `while let` bind patterns, never a client.
        if f.ident(i) != Some("let") || matches!(f.ident(i.wrapping_sub(1)), Some("if" | "while")) {
            continue;
        }
        let n = if f.ident(i + 1) == Some("mut") { i + 2 } else { i + 1 };
        let Some(name) = f.ident(n) else { continue };
        let mut j = n + 1;
        while j < f.toks.len() && !f.punct(j, '=') && !f.punct(j, ';') {
            j = match &f.toks[j].tok {
                Tok::Punct('(' | '[' | '{') => f.pair[j].unwrap_or(j) + 1,
                _ => j + 1,
            };
        }
        if !f.punct(j, '=') {
            continue;
        }
        let eq = j;
        // The statement ends at its `;`, or where the enclosing block ends.
        let mut k = eq + 1;
        while k < f.toks.len() && !matches!(f.toks[k].tok, Tok::Punct(';' | ')' | ']' | '}')) {
            k = match &f.toks[k].tok {
                Tok::Punct('(' | '[' | '{') => f.pair[k].unwrap_or(k) + 1,
                _ => k + 1,
            };
        }
        lets.push((n, name.to_string(), eq, k));
    }

    // What each `let` binds: a client when its expression ends with an accessor call.
    let mut bound: Vec<(usize, String, Bound)> = lets
        .iter()
        .map(|(n, name, _eq, semi)| {
            let mut b = Bound::Other;
            if f.punct(semi - 1, ')') {
                if let Some(open) = f.pair[semi - 1] {
                    if let Some(k) = f.ident(open - 1).and_then(|a| acc.get(a)) {
                        let head = open - 1;
                        let recv = chain_idents(f, head);
                        if f.punct(head - 1, '.') && is_session(f, &recv) {
                            b = Bound::Client(k.clone(), is_management(&recv));
                        }
                    }
                }
            }
            (*n, name.clone(), b)
        })
        .collect();

    let lookup = |bound: &[(usize, String, Bound)], name: &str, at: usize| -> Option<Bound> {
        let from_let = bound.iter().rfind(|(p, n, _)| *p < at && n == name);
        let from_typed = typed.iter().rfind(|(p, n, _)| *p < at && n == name);
        match (from_let, from_typed) {
            (Some((lp, _, b)), Some((tp, _, k))) => {
                Some(if lp > tp { b.clone() } else { Bound::Client(k.clone(), k == "sts" || k == "organizations") })
            }
            (Some((_, _, b)), None) => Some(b.clone()),
            (None, Some((_, _, k))) => Some(Bound::Client(k.clone(), k == "sts" || k == "organizations")),
            (None, None) => None,
        }
    };

    // Operations: `<client>.<op>()`.
    let mut scan = Scan::default();
    let mut op_at: BTreeSet<usize> = BTreeSet::new();
    for i in 2..f.toks.len() {
        let Some(op) = f.ident(i) else { continue };
        if !(f.punct(i - 1, '.') && f.punct(i + 1, '(') && f.punct(i + 2, ')')) || NOT_OPERATIONS.contains(&op) {
            continue;
        }
        let client = match &f.toks[i - 2].tok {
            // `mgmt.sts().get_caller_identity()`
            Tok::Punct(')') => f.pair[i - 2].filter(|o| *o >= 2).and_then(|open| {
                let name = f.ident(open - 1)?;
                let k = acc.get(name)?;
                let recv = chain_idents(f, open - 1);
                (f.punct(open - 2, '.') && is_session(f, &recv)).then(|| Bound::Client(k.clone(), is_management(&recv)))
            }),
            Tok::Ident(v) if f.punct(i.wrapping_sub(3), '.') => {
                // `self.sts.assume_role()`: a field typed as a client.
                (f.ident(i.wrapping_sub(4)) == Some("self") && !f.punct(i.wrapping_sub(5), '.'))
                    .then(|| {
                        typed.iter().find(|(_, n, _)| n == v).map(|(_, _, k)| {
                            Bound::Client(
                                k.clone(),
                                // The journal's store is the operator's, reached with the
                                // daemon's own credentials, as the management account's are.
                                k == "sts"
                                    || k == "organizations"
                                    || f.name.starts_with("src/aws/")
                                    || f.name.starts_with("src/journal/"),
                            )
                        })
                    })
                    .flatten()
            }
            Tok::Ident(v) => lookup(&bound, v, i),
            _ => None,
        };
        let Some(Bound::Client(krate, mgmt)) = client else { continue };
        let management = mgmt || krate == "sts" || krate == "organizations";
        scan.calls.push(Call { krate, op: op.to_string(), management, file: f.name.clone(), line: f.toks[i].line });
        op_at.insert(i);

        // A request built here and sent later: the `let` it is bound by holds a builder.
        let mut j = i + 1;
        let mut sent = false;
        while f.punct(j, '(') {
            let close = f.pair[j].unwrap_or(j);
            if f.punct(close + 1, '.') && f.ident(close + 2).is_some() && f.punct(close + 3, '(') {
                sent |= f.ident(close + 2) == Some("send");
                j = close + 3;
            } else {
                break;
            }
        }
        if !sent {
            if let Some((n, _, _, _)) = lets.iter().rfind(|(_, _, eq, semi)| *eq < i && i < *semi) {
                if let Some(b) = bound.iter_mut().find(|(p, _, _)| p == n) {
                    b.2 = Bound::Builder;
                }
            }
        }
    }

    // Every `.send()` must end the chain of an operation found above, or be sent on a
    // builder bound from one.
    for i in 2..f.toks.len() {
        if f.ident(i) != Some("send") || !(f.punct(i - 1, '.') && f.punct(i + 1, '(') && f.punct(i + 2, ')')) {
            continue;
        }
        let mut j = i - 2;
        let mut ok = false;
        while let Some(t) = f.toks.get(j) {
            match &t.tok {
                Tok::Punct(')') => {
                    let Some(open) = f.pair[j].filter(|o| *o >= 3) else { break };
                    if op_at.contains(&(open - 1)) {
                        ok = true;
                        break;
                    }
                    if f.ident(open - 1).is_none() || !f.punct(open - 2, '.') {
                        break;
                    }
                    j = open - 3;
                }
                Tok::Ident(v) => {
                    ok = !f.punct(j.wrapping_sub(1), '.') && matches!(lookup(&bound, v, i), Some(Bound::Builder));
                    break;
                }
                _ => break,
            }
        }
        if !ok {
            scan.unresolved.push(format!("{}:{}", f.name, f.toks[i].line));
        }
    }
    scan
}

fn scan_sources(files: &[(String, String)]) -> Scan {
    let parsed: Vec<File> = files.iter().map(|(n, s)| File::new(n, s)).collect();
    let mut global = HashMap::new();
    for f in &parsed {
        global.extend(accessors(f));
    }
    let mut out = Scan::default();
    for f in &parsed {
        let s = scan_file(f, &global);
        out.calls.extend(s.calls);
        out.unresolved.extend(s.unresolved);
    }
    out.calls.sort();
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn scan_src() -> Scan {
    let root = root();
    let mut paths = vec![];
    rust_files(&root.join("src"), &mut paths);
    let files: Vec<(String, String)> = paths
        .iter()
        .map(|p| {
            let name = p.strip_prefix(&root).unwrap_or(p).to_string_lossy().replace('\\', "/");
            let mut text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            // A file's unit tests (its last item, by convention) call test endpoints, not AWS
            // for the product: the policy does not grant their calls.
            if let Some(i) = text.find("\n#[cfg(test)]\nmod tests {") {
                text.truncate(i + 1);
            }
            (name, text)
        })
        .collect();
    scan_sources(&files)
}

// ---------------------------------------------------------------------------------------
// From an operation to its IAM actions.

/// The IAM service prefix of an SDK crate.
fn prefix(krate: &str) -> Option<&'static str> {
    Some(match krate {
        "accessanalyzer" => "access-analyzer",
        "cloudtrail" => "cloudtrail",
        "computeoptimizer" => "compute-optimizer",
        "config" => "config",
        "dynamodb" => "dynamodb",
        "detective" => "detective",
        "ec2" => "ec2",
        "eventbridge" => "events",
        "guardduty" => "guardduty",
        "iam" => "iam",
        "kms" => "kms",
        "organizations" => "organizations",
        "s3" | "s3control" => "s3",
        "securityhub" => "securityhub",
        "sfn" => "states",
        "sts" => "sts",
        _ => return None,
    })
}

/// Operations whose IAM action is not `<prefix>:<Operation>` (from the AWS Service
/// Authorization Reference). An empty list: the call needs no permission.
fn renamed(krate: &str, op: &str) -> Option<&'static [&'static str]> {
    Some(match (krate, op) {
        ("sts", "get_caller_identity") => &[],
        ("s3", "list_buckets") => &["s3:ListAllMyBuckets"],
        ("s3", "head_bucket" | "list_objects" | "list_objects_v2") => &["s3:ListBucket"],
        ("s3", "list_object_versions") => &["s3:ListBucketVersions"],
        ("s3", "list_multipart_uploads") => &["s3:ListBucketMultipartUploads"],
        ("s3", "list_parts") => &["s3:ListMultipartUploadParts"],
        ("s3", "head_object") => &["s3:GetObject"],
        ("s3", "delete_objects") => &["s3:DeleteObject"],
        ("s3", "create_multipart_upload" | "upload_part" | "complete_multipart_upload") => &["s3:PutObject"],
        ("s3", "copy_object") => &["s3:GetObject", "s3:PutObject"],
        ("s3", "get_bucket_encryption") => &["s3:GetEncryptionConfiguration"],
        ("s3", "put_bucket_encryption" | "delete_bucket_encryption") => &["s3:PutEncryptionConfiguration"],
        ("s3", "get_bucket_lifecycle_configuration") => &["s3:GetLifecycleConfiguration"],
        ("s3", "put_bucket_lifecycle_configuration" | "delete_bucket_lifecycle") => &["s3:PutLifecycleConfiguration"],
        ("s3", "get_object_lock_configuration") => &["s3:GetBucketObjectLockConfiguration"],
        ("s3", "put_object_lock_configuration") => &["s3:PutBucketObjectLockConfiguration"],
        ("s3", "get_public_access_block") => &["s3:GetBucketPublicAccessBlock"],
        ("s3", "put_public_access_block" | "delete_public_access_block") => &["s3:PutBucketPublicAccessBlock"],
        ("s3", "get_bucket_request_payment") => &["s3:GetBucketRequestPayment"],
        ("s3", "put_bucket_request_payment") => &["s3:PutBucketRequestPayment"],
        ("s3", "get_bucket_notification_configuration") => &["s3:GetBucketNotification"],
        ("s3", "put_bucket_notification_configuration") => &["s3:PutBucketNotification"],
        ("s3", "get_bucket_replication") => &["s3:GetReplicationConfiguration"],
        ("s3", "put_bucket_replication" | "delete_bucket_replication") => &["s3:PutReplicationConfiguration"],
        ("s3", "get_bucket_cors") => &["s3:GetBucketCORS"],
        ("s3", "put_bucket_cors" | "delete_bucket_cors") => &["s3:PutBucketCORS"],
        ("s3", "get_bucket_accelerate_configuration") => &["s3:GetAccelerateConfiguration"],
        ("s3", "put_bucket_accelerate_configuration") => &["s3:PutAccelerateConfiguration"],
        ("s3", "delete_bucket_tagging") => &["s3:PutBucketTagging"],
        ("s3", "delete_bucket_ownership_controls") => &["s3:PutBucketOwnershipControls"],
        // Object lock can only be enabled at creation; S3 checks these two as well then.
        ("s3", "create_bucket") => {
            &["s3:CreateBucket", "s3:PutBucketObjectLockConfiguration", "s3:PutBucketVersioning"]
        }
        ("s3control", "get_public_access_block") => &["s3:GetAccountPublicAccessBlock"],
        ("s3control", "put_public_access_block" | "delete_public_access_block") => &["s3:PutAccountPublicAccessBlock"],
        _ => return None,
    })
}

/// Actions an operation needs besides its own: the tags it sets on create (every create of
/// this tool tags), and what the service checks along with it.
fn also_needs(krate: &str, op: &str) -> &'static [&'static str] {
    match (krate, op) {
        ("iam", "create_role") => &["iam:TagRole"],
        ("iam", "create_user") => &["iam:TagUser"],
        ("iam", "create_policy") => &["iam:TagPolicy"],
        ("kms", "create_key") => &["kms:TagResource"],
        ("cloudtrail", "create_trail") => &["cloudtrail:AddTags"],
        ("guardduty", "create_detector") => &["guardduty:TagResource"],
        ("securityhub", "enable_security_hub" | "create_automation_rule") => &["securityhub:TagResource"],
        // The Service Authorization Reference lists these as dependent actions.
        ("securityhub", "batch_get_standards_control_associations") => &["securityhub:DescribeStandardsControls"],
        ("securityhub", "batch_update_standards_control_associations") => &["securityhub:UpdateStandardsControl"],
        ("detective", "create_graph") => &["detective:TagResource"],
        ("accessanalyzer", "create_analyzer") => &["access-analyzer:TagResource"],
        ("eventbridge", "create_event_bus" | "put_rule") => &["events:TagResource"],
        ("sfn", "create_state_machine") => &["states:TagResource"],
        _ => &[],
    }
}

/// The service-linked roles an operation may have the service create (`iam:AWSServiceName`):
/// the caller needs iam:CreateServiceLinkedRole for them.
fn service_linked_roles(krate: &str, op: &str) -> &'static [&'static str] {
    match (krate, op) {
        // Malware protection (and its own role) may be switched on by either call.
        ("guardduty", "create_detector" | "update_detector") => {
            &["guardduty.amazonaws.com", "malware-protection.guardduty.amazonaws.com"]
        }
        ("accessanalyzer", "create_analyzer") => &["access-analyzer.amazonaws.com"],
        ("computeoptimizer", "update_enrollment_status") => &["compute-optimizer.amazonaws.com"],
        ("securityhub", "enable_security_hub") => &["securityhub.amazonaws.com"],
        _ => &[],
    }
}

/// The roles an operation hands to a service (role name, service): the caller needs
/// iam:PassRole on them.
fn passed_roles(krate: &str, op: &str) -> &'static [(&'static str, &'static str)] {
    match (krate, op) {
        ("config", "put_configuration_recorder") => &[("cm-config-role-all-regions", "config.amazonaws.com")],
        ("eventbridge", "put_targets") => &[
            ("cm-alert-eventrule-role", "events.amazonaws.com"),
            ("cm-alert-forward-eventrule-role", "events.amazonaws.com"),
        ],
        ("sfn", "create_state_machine" | "update_state_machine") => {
            &[("cm-alert-statemachine-role", "states.amazonaws.com")]
        }
        _ => &[],
    }
}

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The IAM actions `call` needs; `Err` for an SDK crate with no known service prefix.
fn actions(call: &Call) -> Result<Vec<String>, String> {
    let prefix = prefix(&call.krate).ok_or_else(|| {
        format!(
            "{}:{}: no IAM service prefix known for aws_sdk_{}: add it to prefix()",
            call.file, call.line, call.krate
        )
    })?;
    let mut out: Vec<String> = match renamed(&call.krate, &call.op) {
        Some(list) => list.iter().map(|s| s.to_string()).collect(),
        None => vec![format!("{prefix}:{}", pascal(&call.op))],
    };
    out.extend(also_needs(&call.krate, &call.op).iter().map(|s| s.to_string()));
    if !service_linked_roles(&call.krate, &call.op).is_empty() {
        out.push("iam:CreateServiceLinkedRole".into());
    }
    if !passed_roles(&call.krate, &call.op).is_empty() {
        out.push("iam:PassRole".into());
    }
    Ok(out)
}

/// Every action needed, with the calls that need it.
fn needed(calls: &[Call], management: bool) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut errors = vec![];
    for c in calls.iter().filter(|c| c.management == management) {
        match actions(c) {
            Ok(list) => {
                for a in list {
                    out.entry(a).or_default().push(format!("{}::{} ({}:{})", c.krate, c.op, c.file, c.line));
                }
            }
            Err(e) => errors.push(e),
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    out
}

// ---------------------------------------------------------------------------------------
// Policies.

fn read_json(rel: &str) -> Value {
    let p = root().join(rel);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: not JSON: {e}"))
}

fn statements(doc: &Value) -> Vec<&Value> {
    match doc.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => vec![],
    }
}

fn effect_is(stmt: &Value, e: &str) -> bool {
    stmt.get("Effect").and_then(Value::as_str) == Some(e)
}

/// Whether `doc` allows `action` (on some resource): an Allow statement names it and no
/// Deny statement does.
fn allows(doc: &Value, action: &str) -> bool {
    let names = |s: &Value| string_or_list(s.get("Action")).iter().any(|p| wildcard_match(p, action));
    let stmts = statements(doc);
    stmts.iter().any(|s| effect_is(s, "Allow") && names(s)) && !stmts.iter().any(|s| effect_is(s, "Deny") && names(s))
}

/// Every action pattern the Allow statements of `doc` name.
fn granted(doc: &Value) -> BTreeSet<String> {
    statements(doc)
        .into_iter()
        .filter(|s| effect_is(s, "Allow"))
        .flat_map(|s| string_or_list(s.get("Action")))
        .collect()
}

/// The Allow statements of `doc` that name `action`.
fn statements_allowing<'a>(doc: &'a Value, action: &str) -> Vec<&'a Value> {
    statements(doc)
        .into_iter()
        .filter(|s| effect_is(s, "Allow") && string_or_list(s.get("Action")).iter().any(|p| wildcard_match(p, action)))
        .collect()
}

/// Whether a statement's Resource covers `arn`.
fn covers(stmt: &Value, arn: &str) -> bool {
    string_or_list(stmt.get("Resource")).iter().any(|p| wildcard_match(p, arn))
}

/// The values a statement's condition gives `key` (under any operator); `None` when it
/// sets no condition on that key.
fn condition_values(stmt: &Value, key: &str) -> Option<Vec<String>> {
    let ops = stmt.get("Condition")?.as_object()?;
    let mut found = None;
    for keys in ops.values().filter_map(Value::as_object) {
        for (k, v) in keys {
            if k.eq_ignore_ascii_case(key) {
                found.get_or_insert_with(Vec::new).extend(string_or_list(Some(v)));
            }
        }
    }
    found
}

fn listing(calls: &[Call]) -> String {
    calls
        .iter()
        .map(|c| {
            let who = if c.management { "management" } else { "member" };
            let acts = actions(c).map(|a| a.join(", ")).unwrap_or_else(|e| e);
            format!("  {who:10} aws_sdk_{}::{} -> [{acts}]  {}:{}", c.krate, c.op, c.file, c.line)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn by_service(calls: &[Call]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in calls {
        out.entry(c.krate.clone()).or_default().insert(c.op.clone());
    }
    out
}

/// The scan of `src/`, checked for plausibility: it cannot pass by finding nothing.
fn plausible_scan() -> Scan {
    let scan = scan_src();
    let services = by_service(&scan.calls);
    let distinct: usize = services.values().map(BTreeSet::len).sum();
    let summary: Vec<String> = services.iter().map(|(k, ops)| format!("{k}: {}", ops.len())).collect();
    println!("{distinct} distinct operations ({})", summary.join(", "));
    let expected = [
        ("sts", "assume_role"),
        ("sts", "get_caller_identity"),
        ("organizations", "list_accounts"),
        ("iam", "get_role"),
        ("iam", "put_role_policy"),
        ("s3", "create_bucket"),
        ("s3control", "put_public_access_block"),
        ("kms", "create_key"),
        ("cloudtrail", "create_trail"),
        ("ec2", "describe_regions"),
    ];
    let missing: Vec<String> = expected
        .iter()
        .filter(|(k, op)| !services.get(*k).is_some_and(|s| s.contains(*op)))
        .map(|(k, op)| format!("{k}::{op}"))
        .collect();
    assert!(
        distinct >= 60 && missing.is_empty(),
        "the scan of src/ found only {distinct} operations, missing {missing:?}; found:\n{}",
        listing(&scan.calls)
    );
    scan
}

// ---------------------------------------------------------------------------------------
// The tests.

#[test]
fn every_aws_call_in_src_is_found_by_the_scan() {
    let scan = plausible_scan();
    assert!(
        scan.unresolved.is_empty(),
        "`.send()` calls that belong to no operation the scan found (a client bound in a way \
         tests/iam_policy.rs does not know): {:?}\nfound:\n{}",
        scan.unresolved,
        listing(&scan.calls)
    );
}

#[test]
fn member_policy_allows_every_member_account_call_and_nothing_else() {
    let scan = plausible_scan();
    let policy = read_json(MEMBER_POLICY);
    let need = needed(&scan.calls, false);
    let denied: Vec<String> = need
        .iter()
        .filter(|(a, _)| !allows(&policy, a))
        .map(|(a, by)| format!("  {a}  needed by {}", by.join(", ")))
        .collect();
    assert!(
        denied.is_empty(),
        "{MEMBER_POLICY} does not allow:\n{}\nall calls:\n{}",
        denied.join("\n"),
        listing(&scan.calls)
    );

    // Actions settings add to the lockout guard's are needed as well; anything else granted
    // is more than the code uses.
    let settings = std::fs::read_to_string(root().join("desired-state/settings.yaml")).expect("settings.yaml");
    let settings: cm_baseline::desired::Settings =
        serde_yaml::from_str(&settings).unwrap_or_else(|e| panic!("desired-state/settings.yaml: {e}"));
    let guard = &settings.lockout_guard.required_actions;
    let lost: Vec<&String> = guard.iter().filter(|a| !allows(&policy, a)).collect();
    assert!(lost.is_empty(), "{MEMBER_POLICY} must allow the lockout guard's actions, not {lost:?}");
    let unused: Vec<String> = granted(&policy)
        .into_iter()
        .filter(|p| !need.keys().chain(guard.iter()).any(|a| wildcard_match(p, a)))
        .collect();
    assert!(unused.is_empty(), "{MEMBER_POLICY} grants actions no code calls: {unused:?}");
    assert!(
        granted(&policy).iter().all(|p| !p.contains('*')),
        "{MEMBER_POLICY} names every action in full, without wildcards"
    );
}

const GUARD_ACTIONS: &str = "src/plan/guard-actions.txt";

#[test]
fn the_lockout_guard_requires_every_action_the_code_calls_in_member_accounts() {
    // The guard refuses a change to the member role that would drop any of these, so the
    // list is the code's, not a hand list: it must name each action of a member-account
    // call, and nothing else.
    let scan = plausible_scan();
    let need: BTreeSet<String> = needed(&scan.calls, false).into_keys().collect();
    let listed: BTreeSet<String> = cm_baseline::plan::guard_actions().map(str::to_string).collect();
    let expected: String = std::iter::once(
        "# Every IAM action of the calls cm-baseline makes in a member account, derived from the code\n\
         # by tests/iam_policy.rs (which fails, printing this file, when the code's calls change).\n\
         # The lockout guard refuses a change to the member role that would drop any of them.\n"
            .to_string(),
    )
    .chain(need.iter().map(|a| format!("{a}\n")))
    .collect();
    assert!(
        listed == need,
        "{GUARD_ACTIONS} is not the list of actions the code's member-account calls need; \
         missing: {:?}; not needed: {:?}\nwrite it as:\n{expected}",
        need.difference(&listed).collect::<Vec<_>>(),
        listed.difference(&need).collect::<Vec<_>>()
    );
    assert!(need.contains("ec2:DescribeRegions") && need.contains("iam:UpdateAssumeRolePolicy"), "{need:?}");
}

#[test]
fn member_policy_lets_services_make_their_roles_and_passes_ours() {
    let scan = plausible_scan();
    let policy = read_json(MEMBER_POLICY);
    let account = "111122223333";
    let mut missing = BTreeSet::new();
    for c in scan.calls.iter().filter(|c| !c.management) {
        for svc in service_linked_roles(&c.krate, &c.op) {
            let arn = format!("arn:aws:iam::{account}:role/aws-service-role/{svc}/AWSServiceRoleFor");
            let ok = statements_allowing(&policy, "iam:CreateServiceLinkedRole").iter().any(|s| {
                covers(s, &arn)
                    && condition_values(s, "iam:AWSServiceName")
                        .is_none_or(|v| v.iter().any(|p| wildcard_match(p, svc)))
            });
            if !ok {
                missing.insert(format!("iam:CreateServiceLinkedRole for {svc} (needed by {}::{})", c.krate, c.op));
            }
        }
        for (role, svc) in passed_roles(&c.krate, &c.op) {
            let arn = format!("arn:aws:iam::{account}:role/{role}");
            let ok = statements_allowing(&policy, "iam:PassRole").iter().any(|s| {
                covers(s, &arn)
                    && condition_values(s, "iam:PassedToService")
                        .is_none_or(|v| v.iter().any(|p| wildcard_match(p, svc)))
            });
            if !ok {
                missing.insert(format!("iam:PassRole of {role} to {svc} (needed by {}::{})", c.krate, c.op));
            }
        }
    }
    assert!(missing.is_empty(), "{MEMBER_POLICY} does not allow: {missing:#?}");
    // The member role may change the roles of the baseline, never others.
    for action in ["iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:AttachRolePolicy", "iam:DeleteRole"] {
        for s in statements_allowing(&policy, action) {
            assert!(
                !covers(s, &format!("arn:aws:iam::{account}:role/customer-role")),
                "{action} reaches beyond cm-* roles: {s}"
            );
        }
    }
}

#[test]
fn management_policy_allows_every_management_account_call() {
    let scan = plausible_scan();
    let policy = read_json(MANAGEMENT_POLICY);
    let need = needed(&scan.calls, true);
    assert!(need.contains_key("sts:AssumeRole") && need.contains_key("organizations:ListAccounts"), "{need:?}");
    let denied: Vec<String> = need
        .iter()
        .filter(|(a, _)| !allows(&policy, a))
        .map(|(a, by)| format!("  {a}  needed by {}", by.join(", ")))
        .collect();
    assert!(
        denied.is_empty(),
        "{MANAGEMENT_POLICY} does not allow:\n{}\nall calls:\n{}",
        denied.join("\n"),
        listing(&scan.calls)
    );
    // The member role, and nothing broader, is what the daemon assumes.
    let assume: Vec<String> = statements(&policy)
        .into_iter()
        .filter(|s| effect_is(s, "Allow") && string_or_list(s.get("Action")).iter().any(|a| a == "sts:AssumeRole"))
        .flat_map(|s| string_or_list(s.get("Resource")))
        .collect();
    assert_eq!(assume, ["arn:aws:iam::*:role/cm-policymaintainer"]);
}

#[test]
fn desired_state_member_policy_is_the_deployed_one() {
    let deployed = read_json(MEMBER_POLICY);
    let p = root().join(MEMBER_POLICY_DESIRED);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(!text.contains("arn:aws:"), "{MEMBER_POLICY_DESIRED} writes ARNs with arn:{{partition}}:");
    let desired: Value = serde_json::from_str(&text.replace("{partition}", "aws")).expect("JSON");
    let (a, b) = (granted(&deployed), granted(&desired));
    assert!(
        a == b,
        "the two policies grant different actions: only in {MEMBER_POLICY}: {:?}; only in {MEMBER_POLICY_DESIRED}: {:?}",
        a.difference(&b).collect::<Vec<_>>(),
        b.difference(&a).collect::<Vec<_>>()
    );
    // Same statements too (resources, conditions), so that the role the daemon maintains in
    // every member account is the one deployed.
    let differing: Vec<String> = statements(&deployed)
        .iter()
        .zip(statements(&desired).iter().chain(std::iter::repeat(&&Value::Null)))
        .filter(|(x, y)| x != y)
        .map(|(x, _)| x.get("Sid").and_then(Value::as_str).unwrap_or("(no Sid)").to_string())
        .collect();
    assert!(
        deployed == desired,
        "{MEMBER_POLICY_DESIRED} must be {MEMBER_POLICY} with arn:{{partition}}: in its ARNs; statements that differ: {differing:?}"
    );
    // IAM limits the inline policies of one role to 10,240 characters (whitespace not
    // counted); the daemon sends the document compact.
    let size = deployed.to_string().chars().filter(|c| !c.is_whitespace()).count();
    assert!(size <= 10_240, "{MEMBER_POLICY} is {size} characters, over IAM's 10,240 for a role's inline policies");
}

#[test]
fn the_scanner_knows_every_way_the_code_binds_a_client() {
    let aws = r#"
        pub struct AccountSession { sts: ClientCache<aws_sdk_sts::Client> }
        impl AccountSession {
            pub fn sts(&self) -> aws_sdk_sts::Client { self.sts.get("x", || make()) }
            pub fn iam(&self) -> aws_sdk_iam::Client { todo!() }
            client!(
                /// S3 "in" a region.
                s3, aws_sdk_s3
            );
            client!(s3control, aws_sdk_s3control);
        }
        pub struct Creds { sts: aws_sdk_sts::Client }
        impl Creds { async fn go(&self) { self.sts.assume_role().role_arn("a").send().await; } }
    "#;
    let res = r#"
        // let fake = cx.session.iam(); fake.delete_everything().send()
        async fn a(cx: &Cx<'_>, mgmt: &AccountSession) {
            let who = mgmt.call(mgmt.sts().get_caller_identity().send()).await?;
            let s3 = cx.session.s3(cx.region);
            cx.session.call(s3.list_buckets().send()).await?;
            if let Some(p) = &self.public_access_block { let z = 1; }
            let c = cx.session.s3control(cx.region);
            cx.session.call(c.get_public_access_block().account_id('x').send()).await?;
            let c = cx.session.s3(cx.region);
            let mut req = c.create_bucket().bucket(&self.name);
            req = req.object_lock_enabled_for_bucket(true);
            cx.session.call(req.send()).await?;
            let s = "s3.delete_bucket().send()";
            let out = cx.session.call(s3.get_bucket_tagging().bucket(b).send()).await?;
            out.clone();
            let iam = session.iam();
            session.call(iam.get_role().role_name(&baseline.control_tower.detect_role).send()).await;
        }
        fn b(iam: &aws_sdk_iam::Client) { iam.list_roles().send(); }
        fn c(x: &Thing) { x.something().send(); }
    "#;
    let scan = scan_sources(&[("src/aws/mod.rs".into(), aws.into()), ("src/resources/x.rs".into(), res.into())]);
    let got: Vec<(String, String, bool)> =
        scan.calls.iter().map(|c| (c.krate.clone(), c.op.clone(), c.management)).collect();
    let want = [
        ("iam", "get_role", false),
        ("iam", "list_roles", false),
        ("s3", "create_bucket", false),
        ("s3", "get_bucket_tagging", false),
        ("s3", "list_buckets", false),
        ("s3control", "get_public_access_block", false),
        ("sts", "assume_role", true),
        ("sts", "get_caller_identity", true),
    ];
    let want: Vec<(String, String, bool)> = want.iter().map(|(k, o, m)| (k.to_string(), o.to_string(), *m)).collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    assert_eq!(got_sorted, want);
    let line = res.lines().position(|l| l.contains("x.something()")).unwrap() + 1;
    assert_eq!(scan.unresolved, [format!("src/resources/x.rs:{line}")], "the unknown client's call is reported");
    let s3control = scan.calls.iter().find(|c| c.krate == "s3control").unwrap();
    assert_eq!(actions(s3control).unwrap(), ["s3:GetAccountPublicAccessBlock"]);
    let bucket = scan.calls.iter().find(|c| c.op == "create_bucket").unwrap();
    assert!(actions(bucket).unwrap().contains(&"s3:PutBucketObjectLockConfiguration".to_string()));
    assert_eq!(pascal("describe_vpcs"), "DescribeVpcs");
}
