//! The journal in Amazon DynamoDB, for where the daemon runs without a disk of its own (ECS,
//! Kubernetes) and for shards that share one fleet: one table, on-demand capacity, every
//! read strongly consistent, every rule that must hold between processes a conditional
//! write.
//!
//! # Table
//!
//! Partition key `pk` (S), sort key `sk` (S); nothing else is declared (no index, no TTL).
//! `deploy/cloudformation/cm-baseline-journal.yaml` creates it.
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | run id counter | `counter` | `run` | `n` (N), raised by one per run (`ADD`) |
//! | run | `run` | `run#<id, 12 digits>` | `id`, `kind`, `status`, `started_at`, `finished_at`, `detail`, `approved_by`, `approved_at`, `desired_digest`, `desired_how` |
//! | account of a run | `run#<id>` | `account#<account id>` | `status`, `attempts`, `done_count`, `changes`, `api_calls`, `error`, `report` or `report_s3`, `updated_at` |
//! | braked plan | `run#<id>` | `plan#<account id>` | `plan` or `plan_s3` |
//! | lease | `lease` | `fleet`, or `shard <i>/<n>` | `holder`, `expires_at` (N, Unix seconds) |
//! | a slot's run | `slot` | `<kind>#<slot>` | `run_id` (N): the run shards of one maintenance share |
//! | a shard's plan | `run#<id>` | `shard#<i>/<n>` | `accounts`, `changed`, `deletes` (N), `failed`, `planned_at` |
//! | pinned announcement | `pin` | `<maintenance time, RFC 3339>` | `digest`, `pinned_at` |
//! | kept desired state | `desired` | `<digest>` | `content` (B) or `content_s3` |
//! | ownership record | `account#<account id>` | `record#<kind>#<region>#<name>` | `kind`, `region`, `name`, `feature`, `how`, `at` |
//!
//! Runs sort by id within one partition, so `runs` and the resume of the latest unfinished
//! run are one query each, newest first. A run's accounts are written before the run item:
//! a run is never seen without its accounts.
//!
//! # What the conditions guarantee
//!
//! - The lease: taken only when absent, held by the caller, or expired
//!   (`expires_at < now`); a second daemon or CLI `apply` is refused while it is held, and a
//!   holder that died loses it after its expiry. Shards hold one lease each; a lease whose
//!   scope overlaps another's is given up when the other is found live after the write.
//! - A slot's run: it changes hands only from the run a process read (`run_id = :old`) or
//!   from none, so shards starting one maintenance at once all join the same run.
//! - Approval: only a run whose `status` is `braked` becomes `approved`, once.
//! - An account recorded `done` in a run is never started, nor recorded finished, again in that
//!   run: a replaced task that resumes a run cannot do an account twice.
//!
//! # Large values
//!
//! An item holds at most 400 KB. A report, plan or kept desired state larger than
//! [`INLINE_MAX`] goes to the S3 location given with the journal
//! (`dynamodb:TABLE,s3://BUCKET/PREFIX`), and its item names the object; without one, writing
//! it is an error that says so.

use super::{now, run_status, AccountRow, Fut, Journal, JournalError, Outcome, Record, RunRow};
use super::{DONE, PENDING, RUNNING, SKIPPED};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use aws_smithy_types::error::display::DisplayErrorContext;
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// The largest value kept in an item itself (DynamoDB's item limit is 400 KB).
pub const INLINE_MAX: usize = 200 * 1024;

/// Run statuses a run is resumed from.
const RESUMABLE: [&str; 4] = [run_status::PLANNING, run_status::RUNNING, run_status::STOPPED, run_status::APPROVED];

#[derive(Debug, Clone, PartialEq)]
pub struct S3Location {
    pub bucket: String,
    /// Prefix of every object key (empty, or ending in `/`).
    pub prefix: String,
}

#[derive(Debug)]
pub struct DynamoJournal {
    db: aws_sdk_dynamodb::Client,
    table: String,
    /// Where large values go, if anywhere.
    large_at: Option<S3Location>,
    s3: aws_sdk_s3::Client,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
fn get_s(item: &Item, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}
fn get_n(item: &Item, k: &str) -> i64 {
    item.get(k).and_then(|v| v.as_n().ok()).and_then(|x| x.parse().ok()).unwrap_or(0)
}
/// An attribute every item of its kind carries: its absence is a damaged item, said as such,
/// never read as empty.
fn need_s(item: &Item, k: &str) -> super::Result<String> {
    get_s(item, k).ok_or_else(|| {
        let at = |a| get_s(item, a).unwrap_or_else(|| "?".into());
        JournalError(format!("journal item {}/{} has no `{k}`: damaged, not read", at("pk"), at("sk")))
    })
}
fn run_key(id: i64) -> String {
    format!("run#{id:012}")
}
fn key(pk: &str, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

/// A call that failed: AWS's error code and message when it answered, else the whole chain
/// (no answer: network, credentials, timeout).
fn failed<E: std::error::Error + ProvideErrorMetadata + 'static>(what: &str, e: E) -> JournalError {
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => JournalError(format!("DynamoDB {what}: {code}: {message}")),
        (Some(code), None) => JournalError(format!("DynamoDB {what}: {code}")),
        _ => JournalError(format!("DynamoDB {what}: {}", DisplayErrorContext(&e))),
    }
}

/// Whether `e` is DynamoDB's answer that a write's condition did not hold.
fn condition_failed<E: ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

fn run_row(item: &Item) -> super::Result<RunRow> {
    Ok(RunRow {
        id: get_n(item, "id"),
        kind: need_s(item, "kind")?,
        status: need_s(item, "status")?,
        started_at: need_s(item, "started_at")?,
        finished_at: get_s(item, "finished_at"),
        detail: get_s(item, "detail"),
    })
}

fn run_rows(items: &[Item]) -> super::Result<Vec<RunRow>> {
    items.iter().map(run_row).collect()
}

impl DynamoJournal {
    /// The journal in `table`, with large values in `s3` when given. Checks that the table
    /// exists, so that a wrong name is said at start, not at the first write.
    pub async fn open(sdk: &aws_config::SdkConfig, table: &str, s3: Option<S3Location>) -> super::Result<Self> {
        let conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(crate::aws::endpoint::overridden(sdk, "S3"))
            .build();
        let journal = Self {
            db: aws_sdk_dynamodb::Client::new(sdk),
            table: table.to_string(),
            large_at: s3,
            s3: aws_sdk_s3::Client::from_conf(conf),
        };
        journal.check_table().await?;
        Ok(journal)
    }

    /// Whether the table exists (and may be described): said at open, not at the first write.
    async fn check_table(&self) -> super::Result<()> {
        let table = &self.table;
        self.db.describe_table().table_name(table).send().await.map_err(|e| {
            if e.code() == Some("ResourceNotFoundException") {
                JournalError(format!(
                    "DynamoDB table {table} does not exist (create it: deploy/cloudformation/cm-baseline-journal.yaml)"
                ))
            } else {
                failed(&format!("DescribeTable {table}"), e)
            }
        })?;
        Ok(())
    }

    async fn get(&self, pk: &str, sk: &str) -> super::Result<Option<Item>> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("GetItem", e))?;
        Ok(out.item)
    }

    async fn put(&self, item: Item) -> super::Result<()> {
        self.db
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| failed("PutItem", e))?;
        Ok(())
    }

    /// Every item of `pk` whose sort key starts with `prefix`, in sort-key order (or
    /// reversed), at most `limit` when given.
    async fn query(
        &self,
        pk: &str,
        prefix: &str,
        newest_first: bool,
        limit: Option<usize>,
    ) -> super::Result<Vec<Item>> {
        let mut out = vec![];
        let mut start = None;
        loop {
            let mut req = self.db.query().table_name(&self.table).expression_attribute_values(":pk", s(pk));
            req = if prefix.is_empty() {
                req.key_condition_expression("pk = :pk")
            } else {
                req.key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix))
            };
            let page = req
                .consistent_read(true)
                .scan_index_forward(!newest_first)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| failed("Query", e))?;
            out.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() || limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        if let Some(l) = limit {
            out.truncate(l);
        }
        Ok(out)
    }

    /// Writes `items` (puts) and deletes `keys`, 25 requests at a time, until DynamoDB has
    /// taken every one.
    async fn batch(&self, items: Vec<Item>, keys: Vec<Item>) -> super::Result<()> {
        let mut requests = vec![];
        for item in items {
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| JournalError(format!("PutRequest: {e}")))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        for k in keys {
            let del = DeleteRequest::builder()
                .set_key(Some(k))
                .build()
                .map_err(|e| JournalError(format!("DeleteRequest: {e}")))?;
            requests.push(WriteRequest::builder().delete_request(del).build());
        }
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            let mut wait = 50;
            while !pending.is_empty() {
                let out = self
                    .db
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| failed("BatchWriteItem", e))?;
                pending = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
                if !pending.is_empty() {
                    // Not taken for want of capacity: tried again with backoff, as AWS advises.
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                    wait = (wait * 2).min(5_000);
                }
            }
        }
        Ok(())
    }

    /// `bytes` as attribute `attr` of an item: in the item when small, else in S3 under
    /// `object` with `<attr>_s3` naming it. Returns the attribute to set and the one to remove.
    async fn large(
        &self,
        attr: &str,
        object: &str,
        bytes: Vec<u8>,
        text: bool,
    ) -> super::Result<(String, AttributeValue, String)> {
        let in_s3 = format!("{attr}_s3");
        if bytes.len() <= INLINE_MAX {
            let v = if text {
                s(String::from_utf8(bytes).map_err(|e| JournalError(format!("{attr} is not UTF-8: {e}")))?)
            } else {
                AttributeValue::B(bytes.into())
            };
            return Ok((attr.to_string(), v, in_s3));
        }
        let Some(loc) = &self.large_at else {
            return Err(JournalError(format!(
                "{attr} of {} bytes is larger than a DynamoDB item keeps ({INLINE_MAX}); give the journal an S3 \
                 location for large values: --journal dynamodb:{},s3://BUCKET/PREFIX",
                bytes.len(),
                self.table
            )));
        };
        let object_key = format!("{}{}/{object}", loc.prefix, self.table);
        self.s3
            .put_object()
            .bucket(&loc.bucket)
            .key(&object_key)
            .body(bytes.into())
            .send()
            .await
            .map_err(|e| failed(&format!("(S3 PutObject s3://{}/{object_key})", loc.bucket), e))?;
        Ok((in_s3, s(object_key), attr.to_string()))
    }

    /// The value [`large`](Self::large) kept as `attr` of `item`, wherever it is.
    async fn read_large(&self, item: &Item, attr: &str) -> super::Result<Option<Vec<u8>>> {
        match item.get(attr) {
            Some(AttributeValue::S(t)) => return Ok(Some(t.clone().into_bytes())),
            Some(AttributeValue::B(b)) => return Ok(Some(b.clone().into_inner())),
            _ => {}
        }
        let Some(object_key) = get_s(item, &format!("{attr}_s3")) else { return Ok(None) };
        let Some(loc) = &self.large_at else {
            return Err(JournalError(format!(
                "{attr} is kept in S3 ({object_key}) but the journal was given no S3 location"
            )));
        };
        let out = self
            .s3
            .get_object()
            .bucket(&loc.bucket)
            .key(&object_key)
            .send()
            .await
            .map_err(|e| failed(&format!("(S3 GetObject s3://{}/{object_key})", loc.bucket), e))?;
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| JournalError(format!("S3 GetObject s3://{}/{object_key}: {e}", loc.bucket)))?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    async fn update_run(&self, id: i64, expr: &str, values: Vec<(&str, AttributeValue)>) -> super::Result<()> {
        let mut req = self
            .db
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key("run", &run_key(id))))
            .update_expression(expr)
            .condition_expression("attribute_exists(pk)");
        if expr.contains("#status") {
            req = req.expression_attribute_names("#status", "status");
        }
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        req.send().await.map_err(|e| {
            if condition_failed(&e) {
                JournalError(format!("no run {id} in the journal"))
            } else {
                failed("UpdateItem (run)", e)
            }
        })?;
        Ok(())
    }

    /// Updates the item of `account` in run `run_id` with `expr`, on `condition`; `names`
    /// are the expression's attribute names (`#status` is always `status`). `Ok(false)`
    /// when the condition did not hold.
    async fn update_account(
        &self,
        run_id: i64,
        account: &str,
        expr: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> super::Result<bool> {
        let mut req = self
            .db
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&run_key(run_id), &format!("account#{account}"))))
            .update_expression(expr)
            .condition_expression(condition)
            .expression_attribute_names("#status", "status");
        for (k, v) in names {
            req = req.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failed(&format!("UpdateItem (account {account} of run {run_id})"), e)),
        }
    }

    async fn run_items(&self) -> super::Result<Vec<Item>> {
        self.query("run", "run#", true, None).await
    }
}

impl DynamoJournal {
    /// Pending account items of run `id` for `accounts`.
    fn pending_items(id: i64, accounts: &[String]) -> Vec<Item> {
        let at = now();
        accounts
            .iter()
            .map(|a| {
                let mut item = key(&run_key(id), &format!("account#{a}"));
                item.insert("account_id".into(), s(a.as_str()));
                item.insert("status".into(), s(PENDING));
                item.insert("attempts".into(), n(0));
                item.insert("done_count".into(), n(0));
                item.insert("changes".into(), n(0));
                item.insert("api_calls".into(), n(0));
                item.insert("updated_at".into(), s(at.as_str()));
                item
            })
            .collect()
    }

    /// A new run: its id from the counter, its accounts, then the run item.
    async fn new_run(&self, kind: &str, status: &str, accounts: &[String]) -> super::Result<i64> {
        let out = self
            .db
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key("counter", "run")))
            .update_expression("ADD n :one")
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| failed("UpdateItem (run counter)", e))?;
        let id = out.attributes.as_ref().map(|a| get_n(a, "n")).unwrap_or(0);
        if id <= 0 {
            return Err(JournalError("DynamoDB answered the run counter without a value".into()));
        }
        self.batch(Self::pending_items(id, accounts), vec![]).await?;
        let mut run = key("run", &run_key(id));
        run.insert("id".into(), n(id));
        run.insert("kind".into(), s(kind));
        run.insert("status".into(), s(status));
        run.insert("started_at".into(), s(now()));
        self.db
            .put_item()
            .table_name(&self.table)
            .set_item(Some(run))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| failed("PutItem (run)", e))?;
        Ok(id)
    }
}

impl Journal for DynamoJournal {
    fn start_run<'a>(&'a self, kind: &'a str, status: &'a str, accounts: &'a [String]) -> Fut<'a, i64> {
        Box::pin(self.new_run(kind, status, accounts))
    }

    fn join_run<'a>(
        &'a self,
        kind: &'a str,
        slot: &'a str,
        status: &'a str,
        accounts: &'a [String],
    ) -> Fut<'a, (i64, bool)> {
        Box::pin(async move {
            let slot_sk = format!("{kind}#{slot}");
            // A few rounds at most: each is lost only to another process that won the slot.
            for _ in 0..5 {
                let current = self.get("slot", &slot_sk).await?;
                let current_id = current.as_ref().map(|i| get_n(i, "run_id"));
                if let Some(id) = current_id {
                    if let Some(run) = self.run(id).await? {
                        if RESUMABLE.contains(&run.status.as_str()) {
                            let have: std::collections::HashSet<String> = self
                                .query(&run_key(id), "account#", false, None)
                                .await?
                                .iter()
                                .filter_map(|i| get_s(i, "account_id"))
                                .collect();
                            let missing: Vec<String> =
                                accounts.iter().filter(|a| !have.contains(*a)).cloned().collect();
                            self.batch(Self::pending_items(id, &missing), vec![]).await?;
                            return Ok((id, false));
                        }
                    }
                }
                // The run is whole before it becomes the slot's (a joiner never meets half a
                // run); a run that loses the slot to another process's is closed at once.
                let id = self.new_run(kind, status, accounts).await?;
                let mut item = key("slot", &slot_sk);
                item.insert("run_id".into(), n(id));
                let mut put = self.db.put_item().table_name(&self.table).set_item(Some(item));
                put = match current_id {
                    Some(old) => put.condition_expression("run_id = :old").expression_attribute_values(":old", n(old)),
                    None => put.condition_expression("attribute_not_exists(pk)"),
                };
                match put.send().await {
                    Ok(_) => return Ok((id, true)),
                    Err(e) if condition_failed(&e) => {
                        let why = "another process started this slot's run first: its accounts are worked on there";
                        self.finish_run(id, run_status::SUPERSEDED, Some(why)).await?;
                    }
                    Err(e) => return Err(failed("PutItem (run slot)", e)),
                }
            }
            Err(JournalError(format!("the run of slot {slot} kept changing hands: not joined")))
        })
    }

    fn shard_planned<'a>(&'a self, run_id: i64, part: &'a super::ShardPlan) -> Fut<'a, ()> {
        Box::pin(async move {
            let mut item = key(&run_key(run_id), &format!("shard#{}", part.shard));
            item.insert("shard".into(), s(part.shard.as_str()));
            item.insert("accounts".into(), n(part.accounts));
            item.insert("changed".into(), n(part.changed));
            item.insert("deletes".into(), n(part.deletes));
            if let Some(f) = &part.failed {
                item.insert("failed".into(), s(f.as_str()));
            }
            item.insert("planned_at".into(), s(part.planned_at.as_str()));
            self.put(item).await
        })
    }

    fn shards_planned(&self, run_id: i64) -> Fut<'_, Vec<super::ShardPlan>> {
        Box::pin(async move {
            self.query(&run_key(run_id), "shard#", false, None)
                .await?
                .iter()
                .map(|i| {
                    Ok(super::ShardPlan {
                        shard: need_s(i, "shard")?,
                        accounts: get_n(i, "accounts"),
                        changed: get_n(i, "changed"),
                        deletes: get_n(i, "deletes"),
                        failed: get_s(i, "failed"),
                        planned_at: need_s(i, "planned_at")?,
                    })
                })
                .collect()
        })
    }

    fn set_run_status<'a>(&'a self, id: i64, status: &'a str, detail: Option<&'a str>) -> Fut<'a, ()> {
        Box::pin(async move {
            match detail {
                Some(d) => {
                    self.update_run(id, "SET #status = :s, detail = :d", vec![(":s", s(status)), (":d", s(d))]).await
                }
                None => self.update_run(id, "SET #status = :s", vec![(":s", s(status))]).await,
            }
        })
    }

    fn move_run<'a>(&'a self, id: i64, from: &'a str, to: &'a str, detail: Option<&'a str>) -> Fut<'a, bool> {
        Box::pin(async move {
            let mut req = self
                .db
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key("run", &run_key(id))))
                .condition_expression("#status = :from")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":from", s(from))
                .expression_attribute_values(":to", s(to));
            req = match detail {
                Some(d) => {
                    req.update_expression("SET #status = :to, detail = :d").expression_attribute_values(":d", s(d))
                }
                None => req.update_expression("SET #status = :to"),
            };
            match req.send().await {
                Ok(_) => Ok(true),
                Err(e) if condition_failed(&e) => Ok(false),
                Err(e) => Err(failed("UpdateItem (run status)", e)),
            }
        })
    }

    fn finish_run<'a>(&'a self, id: i64, status: &'a str, detail: Option<&'a str>) -> Fut<'a, ()> {
        Box::pin(async move {
            let mut values = vec![(":s", s(status)), (":f", s(now()))];
            let expr = match detail {
                Some(d) => {
                    values.push((":d", s(d)));
                    "SET #status = :s, finished_at = :f, detail = :d"
                }
                None => "SET #status = :s, finished_at = :f",
            };
            self.update_run(id, expr, values).await
        })
    }

    fn unfinished_run(&self) -> Fut<'_, Option<RunRow>> {
        Box::pin(async move {
            let runs = self.run_items().await?;
            Ok(run_rows(&runs)?.into_iter().find(|r| RESUMABLE.contains(&r.status.as_str())))
        })
    }

    fn run(&self, id: i64) -> Fut<'_, Option<RunRow>> {
        Box::pin(async move { self.get("run", &run_key(id)).await?.as_ref().map(run_row).transpose() })
    }

    fn runs(&self, limit: usize) -> Fut<'_, Vec<RunRow>> {
        Box::pin(async move { run_rows(&self.query("run", "run#", true, Some(limit)).await?) })
    }

    fn accounts(&self, run_id: i64) -> Fut<'_, Vec<AccountRow>> {
        Box::pin(async move {
            let mut rows = vec![];
            for item in self.query(&run_key(run_id), "account#", false, None).await? {
                let report = match self.read_large(&item, "report").await? {
                    Some(b) => {
                        Some(String::from_utf8(b).map_err(|e| JournalError(format!("report is not UTF-8: {e}")))?)
                    }
                    None => None,
                };
                rows.push(AccountRow {
                    account_id: need_s(&item, "account_id")?,
                    status: need_s(&item, "status")?,
                    attempts: get_n(&item, "attempts"),
                    done_count: get_n(&item, "done_count"),
                    changes: get_n(&item, "changes"),
                    api_calls: get_n(&item, "api_calls"),
                    error: get_s(&item, "error"),
                    report,
                });
            }
            rows.sort_by(|a, b| a.account_id.cmp(&b.account_id));
            Ok(rows)
        })
    }

    fn account_skipped<'a>(&'a self, run_id: i64, account: &'a str, why: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            let values = vec![(":s", s(SKIPPED)), (":e", s(why)), (":u", s(now()))];
            let expr = "SET #status = :s, #error = :e, updated_at = :u";
            if !self
                .update_account(run_id, account, expr, "attribute_exists(pk)", &[("#error", "error")], values)
                .await?
            {
                return Err(JournalError(format!("account {account} is not in run {run_id}")));
            }
            Ok(())
        })
    }

    fn requeue_running<'a>(&'a self, run_id: i64, only: Option<&'a [String]>) -> Fut<'a, usize> {
        Box::pin(async move {
            let mut requeued = 0;
            for item in self.query(&run_key(run_id), "account#", false, None).await? {
                if get_s(&item, "status").as_deref() != Some(RUNNING) {
                    continue;
                }
                let account = need_s(&item, "account_id")?;
                if only.is_some_and(|o| !o.contains(&account)) {
                    continue;
                }
                let values = vec![(":pending", s(PENDING)), (":running", s(RUNNING)), (":u", s(now()))];
                let expr = "SET #status = :pending, updated_at = :u";
                // Not requeued when it finished meanwhile.
                if self.update_account(run_id, &account, expr, "#status = :running", &[], values).await? {
                    requeued += 1;
                }
            }
            Ok(requeued)
        })
    }

    fn supersede_older<'a>(&'a self, kind: &'a str, newer: i64) -> Fut<'a, Vec<i64>> {
        Box::pin(async move {
            let mut ids: Vec<i64> = run_rows(&self.run_items().await?)?
                .into_iter()
                .filter(|r| {
                    r.kind == kind
                        && r.id < newer
                        && (RESUMABLE.contains(&r.status.as_str()) || r.status == run_status::BRAKED)
                })
                .map(|r| r.id)
                .collect();
            ids.sort();
            let why = format!("superseded by run {newer}");
            for id in &ids {
                for row in self.accounts(*id).await? {
                    if super::is_open(&row.status) {
                        self.account_skipped(*id, &row.account_id, &why).await?;
                    }
                }
                self.update_run(
                    *id,
                    "SET #status = :s, finished_at = :f, detail = :d",
                    vec![(":s", s(run_status::SUPERSEDED)), (":f", s(now())), (":d", s(why.as_str()))],
                )
                .await?;
            }
            Ok(ids)
        })
    }

    fn account_started<'a>(&'a self, run_id: i64, account: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            let values = vec![(":running", s(RUNNING)), (":done", s(DONE)), (":u", s(now())), (":one", n(1))];
            let expr = "SET #status = :running, updated_at = :u ADD attempts :one";
            let condition = "attribute_exists(pk) AND #status <> :done";
            if !self.update_account(run_id, account, expr, condition, &[], values).await? {
                return Err(JournalError::not_startable(account, run_id));
            }
            Ok(())
        })
    }

    fn account_finished<'a>(&'a self, run_id: i64, o: &'a Outcome<'a>) -> Fut<'a, ()> {
        Box::pin(async move {
            let object = format!("run-{run_id}/{}.report.json", o.account);
            let (set, value, other) = self.large("report", &object, o.report.as_bytes().to_vec(), true).await?;
            let mut values = vec![
                (":s", s(o.status)),
                (":c", n(o.changes as i64)),
                (":a", n(o.api_calls as i64)),
                (":r", value),
                (":u", s(now())),
                (":done", n(i64::from(o.status == DONE))),
                (":donestatus", s(DONE)),
            ];
            let expr = match o.error {
                Some(e) => {
                    values.push((":e", s(e)));
                    "SET #status = :s, changes = :c, api_calls = :a, #error = :e, #rep = :r, updated_at = :u \
                     ADD done_count :done REMOVE #other"
                }
                None => {
                    "SET #status = :s, changes = :c, api_calls = :a, #rep = :r, updated_at = :u \
                         ADD done_count :done REMOVE #other, #error"
                }
            };
            let names = [("#error", "error"), ("#rep", set.as_str()), ("#other", other.as_str())];
            // Once done, an account's outcome is never written again in that run.
            let condition = "attribute_exists(pk) AND #status <> :donestatus";
            if !self.update_account(run_id, o.account, expr, condition, &names, values).await? {
                return Err(JournalError::already_done(o.account, run_id));
            }
            Ok(())
        })
    }

    fn approve<'a>(&'a self, id: i64, by: &'a str) -> Fut<'a, bool> {
        Box::pin(async move {
            let out = self
                .db
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key("run", &run_key(id))))
                .update_expression("SET #status = :approved, approved_by = :by, approved_at = :at")
                .condition_expression("#status = :braked")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":approved", s(run_status::APPROVED))
                .expression_attribute_values(":braked", s(run_status::BRAKED))
                .expression_attribute_values(":by", s(by))
                .expression_attribute_values(":at", s(now()))
                .send()
                .await;
            match out {
                Ok(_) => Ok(true),
                Err(e) if condition_failed(&e) => Ok(false),
                Err(e) => Err(failed("UpdateItem (approve)", e)),
            }
        })
    }

    fn approval(&self, id: i64) -> Fut<'_, Option<(String, String)>> {
        Box::pin(async move {
            let item = self.get("run", &run_key(id)).await?;
            Ok(item.and_then(|i| Some((get_s(&i, "approved_by")?, get_s(&i, "approved_at")?))))
        })
    }

    fn save_plans<'a>(&'a self, run_id: i64, plans: &'a [(String, String)]) -> Fut<'a, ()> {
        Box::pin(async move {
            let mut items = vec![];
            for (account, plan) in plans {
                let object = format!("run-{run_id}/{account}.plan.json");
                let (attr, value, _) = self.large("plan", &object, plan.as_bytes().to_vec(), true).await?;
                let mut item = key(&run_key(run_id), &format!("plan#{account}"));
                item.insert("account_id".into(), s(account.as_str()));
                item.insert(attr, value);
                items.push(item);
            }
            self.batch(items, vec![]).await
        })
    }

    fn plans(&self, run_id: i64) -> Fut<'_, Vec<(String, String)>> {
        Box::pin(async move {
            let mut out = vec![];
            for item in self.query(&run_key(run_id), "plan#", false, None).await? {
                let plan = self.read_large(&item, "plan").await?.ok_or_else(|| {
                    JournalError(format!("the plan item of run {run_id} has no plan: damaged, not read"))
                })?;
                let plan = String::from_utf8(plan).map_err(|e| JournalError(format!("plan is not UTF-8: {e}")))?;
                out.push((need_s(&item, "account_id")?, plan));
            }
            out.sort();
            Ok(out)
        })
    }

    fn acquire_lease<'a>(
        &'a self,
        scope: &'a str,
        holder: &'a str,
        ttl_secs: i64,
    ) -> Fut<'a, Option<(String, String)>> {
        Box::pin(async move {
            let now = chrono::Utc::now().timestamp();
            let mut item = key("lease", scope);
            item.insert("holder".into(), s(holder));
            item.insert("expires_at".into(), n(now + ttl_secs));
            let out = self
                .db
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk) OR holder = :me OR expires_at < :now")
                .expression_attribute_values(":me", s(holder))
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            match out {
                Ok(_) => Ok(None),
                Err(e) if condition_failed(&e) => {
                    let held = self.get("lease", scope).await?.unwrap_or_default();
                    let until = super::unix_text(get_n(&held, "expires_at"));
                    Ok(Some((get_s(&held, "holder").unwrap_or_else(|| "another process".into()), until)))
                }
                Err(e) => Err(failed("PutItem (lease)", e)),
            }
        })
    }

    fn release_lease<'a>(&'a self, scope: &'a str, holder: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            let out = self
                .db
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key("lease", scope)))
                .condition_expression("holder = :me")
                .expression_attribute_values(":me", s(holder))
                .send()
                .await;
            match out {
                Ok(_) => Ok(()),
                Err(e) if condition_failed(&e) => Ok(()), // not (or no longer) ours
                Err(e) => Err(failed("DeleteItem (lease)", e)),
            }
        })
    }

    fn leases(&self) -> Fut<'_, Vec<super::LeaseRow>> {
        Box::pin(async move {
            self.query("lease", "", false, None)
                .await?
                .iter()
                .map(|i| {
                    Ok(super::LeaseRow {
                        scope: need_s(i, "sk")?,
                        holder: need_s(i, "holder")?,
                        expires_at: get_n(i, "expires_at"),
                    })
                })
                .collect()
        })
    }

    fn pin<'a>(&'a self, maintenance_at: &'a str, digest: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            let mut item = key("pin", maintenance_at);
            item.insert("digest".into(), s(digest));
            item.insert("pinned_at".into(), s(now()));
            self.put(item).await
        })
    }

    fn pin_between<'a>(&'a self, from: &'a str, to: &'a str) -> Fut<'a, Option<(String, String)>> {
        Box::pin(async move {
            let out = self
                .db
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s("pin"))
                .expression_attribute_values(":from", s(from))
                .expression_attribute_values(":to", s(to))
                .consistent_read(true)
                .scan_index_forward(false)
                .limit(1)
                .send()
                .await
                .map_err(|e| failed("Query (pins)", e))?;
            Ok(out.items.unwrap_or_default().first().and_then(|i| Some((get_s(i, "sk")?, get_s(i, "digest")?))))
        })
    }

    fn set_run_desired<'a>(&'a self, run_id: i64, digest: &'a str, how: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            self.update_run(
                run_id,
                "SET desired_digest = :d, desired_how = :h",
                vec![(":d", s(digest)), (":h", s(how))],
            )
            .await
        })
    }

    fn run_desired(&self, run_id: i64) -> Fut<'_, Option<(String, String)>> {
        Box::pin(async move {
            let item = self.get("run", &run_key(run_id)).await?;
            Ok(item.and_then(|i| Some((get_s(&i, "desired_digest")?, get_s(&i, "desired_how")?))))
        })
    }

    fn pins(&self) -> Fut<'_, Vec<(String, String)>> {
        Box::pin(async move {
            let items = self.query("pin", "", false, None).await?;
            Ok(items.iter().filter_map(|i| Some((get_s(i, "sk")?, get_s(i, "digest")?))).collect())
        })
    }

    /// A scan of the table (`runs export` only, never in a run).
    fn record_accounts(&self) -> Fut<'_, Vec<String>> {
        Box::pin(async move {
            let mut accounts = std::collections::BTreeSet::new();
            let mut start = None;
            loop {
                let page = self
                    .db
                    .scan()
                    .table_name(&self.table)
                    .filter_expression("begins_with(pk, :account) AND begins_with(sk, :record)")
                    .projection_expression("pk")
                    .expression_attribute_values(":account", s("account#"))
                    .expression_attribute_values(":record", s("record#"))
                    .consistent_read(true)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| failed("Scan", e))?;
                for item in page.items.unwrap_or_default() {
                    if let Some(a) = get_s(&item, "pk").and_then(|pk| pk.strip_prefix("account#").map(str::to_string)) {
                        accounts.insert(a);
                    }
                }
                start = page.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
            Ok(accounts.into_iter().collect())
        })
    }

    fn restore_run<'a>(&'a self, e: &'a super::ExportedRun) -> Fut<'a, ()> {
        Box::pin(async move {
            let r = &e.run;
            let mut items = vec![];
            for a in &e.accounts {
                let mut item = key(&run_key(r.id), &format!("account#{}", a.account_id));
                item.insert("account_id".into(), s(a.account_id.as_str()));
                item.insert("status".into(), s(a.status.as_str()));
                for (k, v) in [("attempts", a.attempts), ("done_count", a.done_count), ("changes", a.changes)] {
                    item.insert(k.into(), n(v));
                }
                item.insert("api_calls".into(), n(a.api_calls));
                item.insert("updated_at".into(), s(now()));
                if let Some(err) = &a.error {
                    item.insert("error".into(), s(err.as_str()));
                }
                if let Some(report) = &a.report {
                    let object = format!("run-{}/{}.report.json", r.id, a.account_id);
                    let (attr, value, _) = self.large("report", &object, report.as_bytes().to_vec(), true).await?;
                    item.insert(attr, value);
                }
                items.push(item);
            }
            for (account, plan) in &e.plans {
                let object = format!("run-{}/{account}.plan.json", r.id);
                let (attr, value, _) = self.large("plan", &object, plan.as_bytes().to_vec(), true).await?;
                let mut item = key(&run_key(r.id), &format!("plan#{account}"));
                item.insert("account_id".into(), s(account.as_str()));
                item.insert(attr, value);
                items.push(item);
            }
            self.batch(items, vec![]).await?;
            let mut run = key("run", &run_key(r.id));
            run.insert("id".into(), n(r.id));
            for (k, v) in [("kind", Some(&r.kind)), ("status", Some(&r.status)), ("started_at", Some(&r.started_at))]
                .into_iter()
                .chain([("finished_at", r.finished_at.as_ref()), ("detail", r.detail.as_ref())])
            {
                if let Some(v) = v {
                    run.insert(k.into(), s(v.as_str()));
                }
            }
            if let Some((by, at)) = &e.approval {
                run.insert("approved_by".into(), s(by.as_str()));
                run.insert("approved_at".into(), s(at.as_str()));
            }
            if let Some((digest, how)) = &e.desired {
                run.insert("desired_digest".into(), s(digest.as_str()));
                run.insert("desired_how".into(), s(how.as_str()));
            }
            self.db
                .put_item()
                .table_name(&self.table)
                .set_item(Some(run))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .map_err(|e| {
                    if condition_failed(&e) {
                        JournalError(format!("run {} is already in the journal", r.id))
                    } else {
                        failed("PutItem (run)", e)
                    }
                })?;
            // Later runs are numbered after it.
            let raised = self
                .db
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key("counter", "run")))
                .update_expression("SET n = :id")
                .condition_expression("attribute_not_exists(n) OR n < :id")
                .expression_attribute_values(":id", n(r.id))
                .send()
                .await;
            match raised {
                Ok(_) => Ok(()),
                Err(e) if condition_failed(&e) => Ok(()),
                Err(e) => Err(failed("UpdateItem (run counter)", e)),
            }
        })
    }

    fn keep_desired<'a>(&'a self, digest: &'a str, content: &'a [u8]) -> Fut<'a, ()> {
        Box::pin(async move {
            if self.get("desired", digest).await?.is_some() {
                return Ok(()); // kept once per digest: same digest, same content
            }
            let object = format!("desired/{digest}.bin");
            let (attr, value, _) = self.large("content", &object, content.to_vec(), false).await?;
            let mut item = key("desired", digest);
            item.insert(attr, value);
            self.put(item).await
        })
    }

    fn desired_kept<'a>(&'a self, digest: &'a str) -> Fut<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            match self.get("desired", digest).await? {
                Some(item) => self.read_large(&item, "content").await,
                None => Ok(None),
            }
        })
    }

    fn records<'a>(&'a self, account: &'a str) -> Fut<'a, Vec<Record>> {
        Box::pin(async move {
            let mut out: Vec<Record> = self
                .query(&format!("account#{account}"), "record#", false, None)
                .await?
                .iter()
                .map(|i| {
                    Ok(Record {
                        kind: need_s(i, "kind")?,
                        region: need_s(i, "region")?,
                        name: need_s(i, "name")?,
                        feature: need_s(i, "feature")?,
                        how: need_s(i, "how")?,
                        at: need_s(i, "at")?,
                    })
                })
                .collect::<super::Result<_>>()?;
            out.sort_by(|a, b| (&a.kind, &a.region, &a.name).cmp(&(&b.kind, &b.region, &b.name)));
            Ok(out)
        })
    }

    fn record<'a>(&'a self, account: &'a str, r: &'a Record) -> Fut<'a, ()> {
        Box::pin(async move {
            let mut item = key(&format!("account#{account}"), &format!("record#{}#{}#{}", r.kind, r.region, r.name));
            for (k, v) in [
                ("kind", &r.kind),
                ("region", &r.region),
                ("name", &r.name),
                ("feature", &r.feature),
                ("how", &r.how),
                ("at", &r.at),
            ] {
                item.insert(k.into(), s(v.as_str()));
            }
            self.put(item).await
        })
    }

    fn forget<'a>(&'a self, account: &'a str, kind: &'a str, region: &'a str, name: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            self.db
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(&format!("account#{account}"), &format!("record#{kind}#{region}#{name}"))))
                .send()
                .await
                .map_err(|e| failed("DeleteItem (record)", e))?;
            Ok(())
        })
    }
}
