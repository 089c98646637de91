//! cm-baseline keeps a security baseline on every member account of an AWS Organization.
//!
//! Data flows one way, and the modules are laid out in that order:
//!
//! ```text
//! desired-state/*.yaml ──desired::load──▶ DesiredState
//! Organizations + account files ──inventory──▶ Inventory (accounts, tier, opt-ins, regions)
//! desired::resolve(DesiredState, account) ──▶ AccountBaseline (concrete resources)
//! AWS ──observe──▶ Observed (same typed shape per resource type, with ownership tags)
//! plan(AccountBaseline, Observed) ──▶ AccountPlan      pure: every safety rule lives here
//! apply(AccountPlan) ──▶ Outcome, then observe again to verify
//! report(plans) ──▶ text · Markdown · JSON ; journal (runs, ownership records)
//! ```
//!
//! Each AWS resource type is one file under [`resources`]; the list of them is the
//! [`resources::registry`] macro invocation in `resources/mod.rs`.

pub mod apply;
pub mod aws;
pub mod cli;
pub mod daemon;
pub mod desired;
pub mod inventory;
pub mod journal;
pub mod observe;
pub mod plan;
pub mod report;
pub mod resources;
pub mod run;
