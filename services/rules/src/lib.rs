//! The staffing office's rules over the block data: alerts and reports,
//! evaluated as of a date from the facts the merger stored.
//!
//! Rules run over `RuleFacts`, every live fact read once: a county is a
//! few thousand rows. TODO(scale): a province's millions of payments would
//! want the per-unit rules evaluated unit by unit in SQL; resolve when a
//! province-sized benchmark shows the read dominating.

pub mod alerts;
pub mod policy;
pub mod report;
pub mod service;

pub use alerts::{Alert, AlertKind, evaluate};
pub use policy::{Policy, PolicyError, RetirementPolicy, RetirementRule};
pub use report::{UnitReport, city_total, unit_reports};
pub use service::{ALERTS_TOPIC, RulesError, read_alert_states, round, run};
