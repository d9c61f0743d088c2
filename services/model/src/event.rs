//! The events connectors publish and the merger applies.
//!
//! Each event is an envelope (who published what, from where, when) and one
//! fact about a unit or a person. These are the in-memory forms; `avro`
//! turns them into the versioned wire format kept in schemas/.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{CitizenId, CreditCode, Month};

/// What an event does to the fact it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// States the current fact without claiming whether it is new.
    Upsert,
    /// A fact the source did not have before.
    Insert,
    /// A changed fact.
    Update,
    /// The fact no longer holds at the source.
    Delete,
}

impl Operation {
    /// The Avro enum symbols, in schema order.
    pub const SYMBOLS: [&'static str; 4] = ["UPSERT", "INSERT", "UPDATE", "DELETE"];
}

/// Whether a source reference points into a file or a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceRefKind {
    /// A row of an exported file.
    FileRow,
    /// A row of a polled table.
    TableKey,
    /// A kind this reader does not know (written by a newer connector).
    Unknown,
}

impl SourceRefKind {
    /// The Avro enum symbols, in schema order.
    pub const SYMBOLS: [&'static str; 3] = ["FILE_ROW", "TABLE_KEY", "UNKNOWN"];
}

/// Where in its source a fact was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    /// File or table.
    pub kind: SourceRefKind,
    /// The file name or table name.
    pub location: String,
    /// The 1-based row number, or the row key.
    pub position: String,
}

/// Who published an event, from where and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Random UUID; the merger applies each event id once.
    pub event_id: String,
    /// The publishing connector, such as `staffing.roster`.
    pub source_system: String,
    /// Where the fact was read.
    pub source_ref: SourceRef,
    /// What the event does.
    pub operation: Operation,
    /// When the connector read the fact (millisecond precision on the wire).
    pub observed_at: DateTime<Utc>,
    /// When the source exported the fact: the export file's own time, or
    /// none for a table read live (and for events of older schemas).
    #[serde(default)]
    pub exported_at: Option<DateTime<Utc>>,
}

impl Envelope {
    /// An envelope for a row of a file, observed now, with a fresh event id.
    pub fn for_file_row(source_system: &str, file: &str, row: u64, operation: Operation) -> Self {
        let source_ref = SourceRef {
            kind: SourceRefKind::FileRow,
            location: file.to_string(),
            position: row.to_string(),
        };
        Self::new(source_system, source_ref, operation)
    }

    /// An envelope observed now, with a fresh event id.
    pub fn new(source_system: &str, source_ref: SourceRef, operation: Operation) -> Self {
        let now = Utc::now();
        let observed_at = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        Self {
            event_id: uuid::Uuid::new_v4().to_string(),
            source_system: source_system.to_string(),
            source_ref,
            operation,
            observed_at,
            exported_at: None,
        }
    }

    /// The same envelope, stating the export time of its file.
    pub fn exported(mut self, exported_at: Option<DateTime<Utc>>) -> Self {
        self.exported_at = exported_at
            .map(|at| DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at));
        self
    }

    /// What orders two events stating the same fact: the export time where
    /// there is one (else the read time), then the read time. The newer
    /// holds the fact; the older is kept as superseded history. An export
    /// read late thus never overwrites what a newer export said.
    pub fn order(&self) -> (i64, i64) {
        let observed = self.observed_at.timestamp_millis();
        let exported = self
            .exported_at
            .map_or(observed, |at| at.timestamp_millis());
        (exported, observed)
    }
}

/// A unit's quota of non-establishment staff (编外用工控制数).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitQuota {
    /// The unit's credit code.
    pub unit_code: CreditCode,
    /// The unit's name as the staffing office writes it.
    pub unit_name: String,
    /// The unit category label as exported.
    pub unit_type: String,
    /// Posts allowed.
    pub quota: i32,
    /// When the quota was approved.
    pub approved_on: Option<NaiveDate>,
}

/// Post categories of non-establishment staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PostCategory {
    /// 普通辅助.
    GeneralSupport,
    /// 技术技能.
    TechnicalSkill,
    /// 执法辅助.
    LawEnforcementSupport,
    /// A label no mapping knows; the raw label is kept beside it.
    Unknown,
}

impl PostCategory {
    /// The Avro enum symbols, in schema order.
    pub const SYMBOLS: [&'static str; 4] = [
        "GENERAL_SUPPORT",
        "TECHNICAL_SKILL",
        "LAW_ENFORCEMENT_SUPPORT",
        "UNKNOWN",
    ];

    /// Maps an exported label; a trailing 类 names the same category.
    pub fn from_label(label: &str) -> Self {
        let label = crate::fold::fold_text(label);
        match label.trim_end_matches('类') {
            "普通辅助" => Self::GeneralSupport,
            "技术技能" => Self::TechnicalSkill,
            "执法辅助" => Self::LawEnforcementSupport,
            _ => Self::Unknown,
        }
    }

    /// The category's name in the staffing office's words.
    pub fn label(&self) -> &'static str {
        match self {
            Self::GeneralSupport => "普通辅助",
            Self::TechnicalSkill => "技术技能",
            Self::LawEnforcementSupport => "执法辅助",
            Self::Unknown => "未知",
        }
    }
}

/// Whether a person still holds the post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StaffStatus {
    /// 在职.
    Active,
    /// 减少 or 离职: the person left the post.
    Left,
    /// A status label no mapping knows; the raw label is kept beside it.
    Unknown,
}

impl StaffStatus {
    /// The Avro enum symbols, in schema order.
    pub const SYMBOLS: [&'static str; 3] = ["ACTIVE", "LEFT", "UNKNOWN"];

    /// Maps an exported status label.
    pub fn from_label(label: &str) -> Self {
        match crate::fold::fold_text(label).as_str() {
            "在职" | "在岗" => Self::Active,
            "减少" | "离职" | "已减少" | "退休" | "解聘" => Self::Left,
            _ => Self::Unknown,
        }
    }

    /// The status in the staffing office's words.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Active => "在职",
            Self::Left => "减少",
            Self::Unknown => "未知",
        }
    }
}

/// One row of the real-name roster: a person's post at a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterEntry {
    /// The person.
    pub citizen_id: CitizenId,
    /// The person's name as on the roster.
    pub name: String,
    /// The employing unit.
    pub unit_code: CreditCode,
    /// The unit's name as on the roster.
    pub unit_name: String,
    /// Post category.
    pub post_category: PostCategory,
    /// The category label as exported.
    pub post_category_label: String,
    /// 用工形式 as exported.
    pub employment_form: String,
    /// 入职日期.
    pub hire_date: Option<NaiveDate>,
    /// 合同起始日期.
    pub contract_start: Option<NaiveDate>,
    /// 合同终止日期; None when open-ended or not given.
    pub contract_end: Option<NaiveDate>,
    /// 无固定期限: the contract never expires.
    pub contract_open_ended: bool,
    /// Whether the person still holds the post.
    pub status: StaffStatus,
    /// The status as exported.
    pub status_label: String,
    /// 减少日期.
    pub left_on: Option<NaiveDate>,
    /// 岗位名称, when the export has it (schema v2).
    pub post_name: Option<String>,
}

/// One month's pay of one person by one unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayrollPayment {
    /// The person paid.
    pub citizen_id: CitizenId,
    /// The name on the payroll.
    pub name: String,
    /// The paying unit.
    pub unit_code: CreditCode,
    /// The unit's name on the payroll.
    pub unit_name: String,
    /// The month paid for.
    pub month: Month,
    /// 应发工资, when the export has it.
    pub gross: Option<Decimal>,
    /// 实发工资, when the export has it.
    pub net: Option<Decimal>,
    /// 资金来源 as exported.
    pub fund_source: String,
}

/// One month of one person's social-insurance contribution through a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    /// The insured person.
    pub citizen_id: CitizenId,
    /// The name on the contribution record.
    pub name: String,
    /// The insured unit (参保单位).
    pub unit_code: CreditCode,
    /// The unit's name on the record.
    pub unit_name: String,
    /// 险种 as exported.
    pub insurance_type: String,
    /// 参保状态 as exported.
    pub insured_status: String,
    /// The month contributed for.
    pub month: Month,
}

/// A person's pension start (养老待遇享受开始) from the social-security bureau.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PensionStart {
    /// The pensioner.
    pub citizen_id: CitizenId,
    /// The name on the record.
    pub name: String,
    /// 待遇类型 as exported, such as 基本养老金.
    pub benefit_type: String,
    /// 待遇享受开始日期.
    pub starts_on: NaiveDate,
}

/// One debtor of one enforcement case of the court (执行案件).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnforcementCase {
    /// 案号, with full-width brackets: （2025）浙0681执1234号.
    pub case_number: String,
    /// The debtor (被执行人).
    pub citizen_id: CitizenId,
    /// The debtor's name on the case.
    pub name: String,
    /// 执行标的金额.
    pub amount: Decimal,
    /// 立案日期.
    pub filed_on: Option<NaiveDate>,
    /// 案件状态 as exported.
    pub case_status: String,
}

/// A transferred serviceman's placement in a unit (退役军人安置).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VeteranPlacement {
    /// The person placed.
    pub citizen_id: CitizenId,
    /// The name on the record.
    pub name: String,
    /// 安置方式 as exported, such as 安排工作.
    pub placement_type: String,
    /// The receiving unit.
    pub unit_code: CreditCode,
    /// The unit's name on the record.
    pub unit_name: String,
    /// 安置日期.
    pub placed_on: Option<NaiveDate>,
}

/// A unit's purchased-service contract (政府购买服务), which can hide staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchasedService {
    /// 项目名称.
    pub project_name: String,
    /// The purchasing unit (购买主体).
    pub unit_code: CreditCode,
    /// The unit's name on the record.
    pub unit_name: String,
    /// 承接主体: the company providing the service.
    pub provider: String,
    /// 服务人数: staff the contract provides.
    pub staff_count: i32,
    /// 合同金额.
    pub contract_amount: Option<Decimal>,
    /// First day of 服务期限.
    pub period_start: Option<NaiveDate>,
    /// Last day of 服务期限.
    pub period_end: Option<NaiveDate>,
}

/// A row or event that could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Random UUID.
    pub dead_letter_id: String,
    /// The connector or consumer that rejected it.
    pub source_system: String,
    /// File name, table, or topic.
    pub location: String,
    /// Row number, row key, or partition/offset.
    pub position: String,
    /// A stable code such as ID_CHECK_CHAR_MISMATCH.
    pub reason_code: String,
    /// The reason in words; never carries an ID number.
    pub reason: String,
    /// The rejected value with every ID number masked.
    pub raw: String,
    /// When it was rejected.
    pub observed_at: DateTime<Utc>,
}

/// One connector run over a source: the feed's heartbeat. Sync health
/// counts a run as a delivery even when it published nothing, because an
/// unchanged export is still a fresh one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRun {
    /// Random UUID.
    pub run_id: String,
    /// The connector's source name, such as `finance.payroll`.
    pub source_system: String,
    /// The files read (names only) or the table.
    pub location: String,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When the run ended.
    pub finished_at: DateTime<Utc>,
    /// Data rows read.
    pub rows_read: u64,
    /// Events the broker confirmed, deletes included.
    pub published: u64,
    /// Rows whose fact was published before exactly so.
    pub unchanged: u64,
    /// Rows sent to the dead letters.
    pub rejected: u64,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
    /// Of a run over several files, the one with the largest share of
    /// rejected rows.
    pub worst_file: Option<FileRejections>,
    /// What the run's exports stated in full, and as of when (see
    /// `ExportScope`); empty for additive sources, tables and older runs.
    #[serde(default)]
    pub exports: Vec<ExportScope>,
}

/// One scope an export run stated in full: a unit of a roster-like source
/// (all its staff), or the whole list of a quota or case list. Recorded so
/// that an older export read later is known to be older even where the
/// newer one changed nothing and so published no event of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportScope {
    /// The unit's credit code; none for the whole list.
    pub unit_code: Option<String>,
    /// The newest export time among the run's files for the scope.
    pub exported_at: DateTime<Utc>,
}

/// One file's rejected rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRejections {
    /// The file's name.
    pub location: String,
    /// Data rows read.
    pub rows_read: u64,
    /// Rows rejected.
    pub rejected: u64,
}

impl DeadLetter {
    /// A dead-letter id derived from what was rejected, where and why, so
    /// that rejecting the same row again yields the same id and the store
    /// keeps one entry for it.
    pub fn stable_id(parts: &[&str]) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        hex::encode(&hasher.finalize()[..16])
    }
}

/// The fact an event carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Fact {
    /// A unit's quota.
    UnitQuota(UnitQuota),
    /// A roster row.
    RosterEntry(RosterEntry),
    /// A payroll row.
    PayrollPayment(PayrollPayment),
    /// A social-insurance contribution row.
    Contribution(Contribution),
    /// A pension start.
    PensionStart(PensionStart),
    /// A debtor of an enforcement case.
    EnforcementCase(EnforcementCase),
    /// A veteran placement.
    VeteranPlacement(VeteranPlacement),
    /// A purchased-service contract.
    PurchasedService(PurchasedService),
}

/// An envelope and its fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Where the fact came from.
    pub envelope: Envelope,
    /// The fact.
    pub fact: Fact,
}

impl Event {
    /// The person the fact is about, if any; used to key the Kafka message.
    pub fn person(&self) -> Option<&CitizenId> {
        match &self.fact {
            Fact::UnitQuota(_) => None,
            Fact::RosterEntry(entry) => Some(&entry.citizen_id),
            Fact::PayrollPayment(payment) => Some(&payment.citizen_id),
            Fact::Contribution(contribution) => Some(&contribution.citizen_id),
            Fact::PensionStart(start) => Some(&start.citizen_id),
            Fact::EnforcementCase(case) => Some(&case.citizen_id),
            Fact::VeteranPlacement(placement) => Some(&placement.citizen_id),
            Fact::PurchasedService(_) => None,
        }
    }

    /// The kind of fact, which fixes its schema and topic.
    pub fn kind(&self) -> EventKind {
        match &self.fact {
            Fact::UnitQuota(_) => EventKind::UnitQuota,
            Fact::RosterEntry(_) => EventKind::RosterEntry,
            Fact::PayrollPayment(_) => EventKind::PayrollPayment,
            Fact::Contribution(_) => EventKind::Contribution,
            Fact::PensionStart(_) => EventKind::PensionStart,
            Fact::EnforcementCase(_) => EventKind::EnforcementCase,
            Fact::VeteranPlacement(_) => EventKind::VeteranPlacement,
            Fact::PurchasedService(_) => EventKind::PurchasedService,
        }
    }
}

impl Fact {
    /// What identifies the fact at its source: two facts with the same key
    /// are two versions of one fact, the later replacing the earlier. The
    /// kind comes first, so keys of different kinds never meet. Carries ID
    /// numbers: for in-memory comparison only, never for logs or Kafka keys.
    pub fn identity(&self) -> String {
        let parts: Vec<&str> = match self {
            Fact::UnitQuota(quota) => vec!["quota", quota.unit_code.as_str()],
            Fact::RosterEntry(entry) => vec![
                "roster",
                entry.citizen_id.as_str(),
                entry.unit_code.as_str(),
            ],
            Fact::PayrollPayment(payment) => {
                return format!(
                    "payroll\u{1f}{}\u{1f}{}\u{1f}{}",
                    payment.citizen_id.as_str(),
                    payment.unit_code.as_str(),
                    payment.month.as_number()
                );
            }
            Fact::Contribution(contribution) => {
                return format!(
                    "contribution\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
                    contribution.citizen_id.as_str(),
                    contribution.unit_code.as_str(),
                    contribution.month.as_number(),
                    contribution.insurance_type
                );
            }
            Fact::PensionStart(start) => {
                vec!["pension", start.citizen_id.as_str(), &start.benefit_type]
            }
            Fact::EnforcementCase(case) => {
                vec!["case", &case.case_number, case.citizen_id.as_str()]
            }
            Fact::VeteranPlacement(placement) => vec![
                "placement",
                placement.citizen_id.as_str(),
                placement.unit_code.as_str(),
            ],
            Fact::PurchasedService(service) => vec![
                "purchase",
                service.unit_code.as_str(),
                &service.project_name,
            ],
        };
        parts.join("\u{1f}")
    }

    /// The unit the fact belongs to, if any.
    pub fn unit(&self) -> Option<&CreditCode> {
        match self {
            Fact::UnitQuota(quota) => Some(&quota.unit_code),
            Fact::RosterEntry(entry) => Some(&entry.unit_code),
            Fact::PayrollPayment(payment) => Some(&payment.unit_code),
            Fact::Contribution(contribution) => Some(&contribution.unit_code),
            Fact::PensionStart(_) | Fact::EnforcementCase(_) => None,
            Fact::VeteranPlacement(placement) => Some(&placement.unit_code),
            Fact::PurchasedService(service) => Some(&service.unit_code),
        }
    }

    /// A digest of the fact's content, to tell an unchanged fact from a
    /// changed one without keeping both.
    pub fn digest(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        // Debug output covers every field, and every field is plain data.
        Sha256::digest(format!("{self:?}").as_bytes()).into()
    }
}

/// Each kind of record on the wire, one schema family and one topic each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Unit quotas from the staffing office.
    UnitQuota,
    /// Roster rows from the staffing office.
    RosterEntry,
    /// Payroll rows from the finance bureau.
    PayrollPayment,
    /// Contributions from the social-security bureau.
    Contribution,
    /// Pension starts from the social-security bureau.
    PensionStart,
    /// Enforcement cases from the court.
    EnforcementCase,
    /// Placements from the veterans-affairs bureau.
    VeteranPlacement,
    /// Purchased-service contracts from the finance bureau.
    PurchasedService,
    /// Rejected rows and events.
    DeadLetter,
    /// Connector runs, the feeds' heartbeats.
    SyncRun,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 10] = [
        Self::UnitQuota,
        Self::RosterEntry,
        Self::PayrollPayment,
        Self::Contribution,
        Self::PensionStart,
        Self::EnforcementCase,
        Self::VeteranPlacement,
        Self::PurchasedService,
        Self::DeadLetter,
        Self::SyncRun,
    ];

    /// The topic name, before any deployment prefix.
    pub fn topic(&self) -> &'static str {
        match self {
            Self::UnitQuota => "staffing.unit-quota",
            Self::RosterEntry => "staffing.roster",
            Self::PayrollPayment => "finance.payroll",
            Self::Contribution => "social-security.contributions",
            Self::PensionStart => "social-security.pension-starts",
            Self::EnforcementCase => "court.enforcement-cases",
            Self::VeteranPlacement => "veterans.placements",
            Self::PurchasedService => "finance.purchased-services",

            Self::DeadLetter => "dead-letters",
            Self::SyncRun => "sync-runs",
        }
    }

    /// The connector source that publishes facts of this kind, the name a
    /// feed has in `blockhub ingest` and on the status page; none for the
    /// hub's own topics.
    pub fn source(&self) -> Option<&'static str> {
        match self {
            Self::UnitQuota => Some("staffing.quota"),
            Self::RosterEntry => Some("staffing.roster"),
            Self::PayrollPayment => Some("finance.payroll"),
            Self::Contribution => Some("social_security.contributions"),
            Self::PensionStart => Some("social_security.retirements"),
            Self::EnforcementCase => Some("court.enforcement_cases"),
            Self::VeteranPlacement => Some("veterans.placements"),
            Self::PurchasedService => Some("finance.purchases"),
            Self::DeadLetter | Self::SyncRun => None,
        }
    }

    /// The name of the source in `blockhub ingest SOURCE FILE`.
    pub fn ingest_name(&self) -> Option<&'static str> {
        match self {
            Self::UnitQuota => Some("quota"),
            Self::RosterEntry => Some("roster"),
            Self::PayrollPayment => Some("payroll"),
            Self::Contribution => Some("contributions"),
            Self::PensionStart => Some("retirements"),
            Self::EnforcementCase => Some("court-cases"),
            Self::VeteranPlacement => Some("placements"),
            Self::PurchasedService => Some("purchases"),
            Self::DeadLetter | Self::SyncRun => None,
        }
    }

    /// The kind a connector source (such as `finance.payroll`) publishes.
    pub fn of_source(source: &str) -> Option<EventKind> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.source() == Some(source))
    }

    /// The kind whose topic name ends `topic` (which may carry a
    /// deployment prefix).
    pub fn of_topic(topic: &str) -> Option<EventKind> {
        Self::ALL
            .into_iter()
            .find(|kind| topic.ends_with(kind.topic()))
    }
}
