//! The wire format: Avro single-object encoding of the schemas in schemas/.
//!
//! Every message starts with the marker C3 01 and the 8-byte Rabin
//! fingerprint of its writer schema, so a reader always knows which schema
//! wrote it and resolves from that schema to its own. A reader that meets a
//! fingerprint it has never seen refuses the message with that fingerprint
//! named, instead of guessing.

use std::collections::HashMap;
use std::sync::OnceLock;

use apache_avro::rabin::Rabin;
use apache_avro::types::Value;
use apache_avro::{Schema, from_avro_datum, to_avro_datum};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::date::{from_epoch_days, to_epoch_days};
use crate::event::{
    Contribution, DeadLetter, EnforcementCase, Envelope, Event, EventKind, Fact, Operation,
    PayrollPayment, PensionStart, PostCategory, PurchasedService, RosterEntry, SourceRef,
    SourceRefKind, StaffStatus, SyncRun, UnitQuota, VeteranPlacement,
};
use crate::{CitizenId, CreditCode, Month};

const MARKER: [u8; 2] = [0xC3, 0x01];

/// Every schema version the code knows, oldest first within a kind.
pub(crate) const SCHEMA_FILES: &[(EventKind, u32, &str)] = &[
    (
        EventKind::UnitQuota,
        1,
        include_str!("../../../schemas/unit_quota.v1.avsc"),
    ),
    (
        EventKind::UnitQuota,
        2,
        include_str!("../../../schemas/unit_quota.v2.avsc"),
    ),
    (
        EventKind::RosterEntry,
        1,
        include_str!("../../../schemas/roster_entry.v1.avsc"),
    ),
    (
        EventKind::RosterEntry,
        2,
        include_str!("../../../schemas/roster_entry.v2.avsc"),
    ),
    (
        EventKind::RosterEntry,
        3,
        include_str!("../../../schemas/roster_entry.v3.avsc"),
    ),
    (
        EventKind::PayrollPayment,
        1,
        include_str!("../../../schemas/payroll_payment.v1.avsc"),
    ),
    (
        EventKind::PayrollPayment,
        2,
        include_str!("../../../schemas/payroll_payment.v2.avsc"),
    ),
    (
        EventKind::Contribution,
        1,
        include_str!("../../../schemas/contribution.v1.avsc"),
    ),
    (
        EventKind::Contribution,
        2,
        include_str!("../../../schemas/contribution.v2.avsc"),
    ),
    (
        EventKind::PensionStart,
        1,
        include_str!("../../../schemas/pension_start.v1.avsc"),
    ),
    (
        EventKind::PensionStart,
        2,
        include_str!("../../../schemas/pension_start.v2.avsc"),
    ),
    (
        EventKind::EnforcementCase,
        1,
        include_str!("../../../schemas/enforcement_case.v1.avsc"),
    ),
    (
        EventKind::EnforcementCase,
        2,
        include_str!("../../../schemas/enforcement_case.v2.avsc"),
    ),
    (
        EventKind::VeteranPlacement,
        1,
        include_str!("../../../schemas/veteran_placement.v1.avsc"),
    ),
    (
        EventKind::VeteranPlacement,
        2,
        include_str!("../../../schemas/veteran_placement.v2.avsc"),
    ),
    (
        EventKind::PurchasedService,
        1,
        include_str!("../../../schemas/purchased_service.v1.avsc"),
    ),
    (
        EventKind::PurchasedService,
        2,
        include_str!("../../../schemas/purchased_service.v2.avsc"),
    ),
    (
        EventKind::DeadLetter,
        1,
        include_str!("../../../schemas/dead_letter.v1.avsc"),
    ),
    (
        EventKind::SyncRun,
        1,
        include_str!("../../../schemas/sync_run.v1.avsc"),
    ),
    (
        EventKind::SyncRun,
        2,
        include_str!("../../../schemas/sync_run.v2.avsc"),
    ),
];

/// Why a message could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum AvroError {
    /// The message does not start with the single-object marker.
    #[error("not an Avro single-object message (marker missing, {length} bytes)")]
    NotSingleObject {
        /// Message length in bytes.
        length: usize,
    },
    /// The writer schema's fingerprint is not among the known schemas.
    #[error("unknown writer schema with fingerprint {fingerprint}")]
    UnknownSchema {
        /// The fingerprint as hex.
        fingerprint: String,
    },
    /// A message of one kind arrived where another was expected.
    #[error("expected a {expected:?} message, found {found:?}")]
    WrongKind {
        /// What the caller asked for.
        expected: EventKind,
        /// What the writer schema says it is.
        found: EventKind,
    },
    /// The Avro library could not read or write the datum.
    #[error("avro datum could not be {action}")]
    Datum {
        /// Encoded or decoded.
        action: &'static str,
        /// The library's error.
        #[source]
        source: Box<apache_avro::Error>,
    },
    /// A decoded field is missing or holds a value the model refuses.
    #[error("field {field}: {reason}")]
    Field {
        /// The field name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The compiled-in schemas could not be loaded; a build defect.
    #[error("schema registry unavailable: {reason}")]
    Registry {
        /// Why the registry could not be built.
        reason: String,
    },
    /// A schema file in schemas/ does not parse; a build defect.
    #[error("schema {file} does not parse")]
    Schema {
        /// Which schema.
        file: String,
        /// The library's error.
        #[source]
        source: Box<apache_avro::Error>,
    },
}

struct KnownSchema {
    kind: EventKind,
    version: u32,
    schema: Schema,
    fingerprint: [u8; 8],
    text: &'static str,
}

/// All known schemas, by fingerprint and by kind.
pub struct SchemaRegistry {
    schemas: Vec<KnownSchema>,
    by_fingerprint: HashMap<[u8; 8], usize>,
    latest: HashMap<EventKind, usize>,
    /// Writer schemas of newer releases, learned at run time from the
    /// schemas topic: this release reads their events, resolved to its own
    /// newest version.
    learned: std::sync::RwLock<HashMap<[u8; 8], (EventKind, Schema)>>,
}

impl SchemaRegistry {
    /// The registry of the schemas compiled into this build.
    pub fn get() -> Result<&'static SchemaRegistry, AvroError> {
        static REGISTRY: OnceLock<Result<SchemaRegistry, String>> = OnceLock::new();
        let built = REGISTRY.get_or_init(|| {
            Self::build(SCHEMA_FILES).map_err(|error| {
                let cause = std::error::Error::source(&error).map(ToString::to_string);
                format!("{error}: {}", cause.unwrap_or_default())
            })
        });
        built.as_ref().map_err(|reason| AvroError::Registry {
            reason: reason.clone(),
        })
    }

    fn build(files: &[(EventKind, u32, &'static str)]) -> Result<Self, AvroError> {
        let mut registry = Self {
            schemas: Vec::new(),
            by_fingerprint: HashMap::new(),
            latest: HashMap::new(),
            learned: std::sync::RwLock::new(HashMap::new()),
        };
        for &(kind, version, text) in files {
            let schema = Schema::parse_str(text).map_err(|source| AvroError::Schema {
                file: format!("{kind:?} v{version}"),
                source: Box::new(source),
            })?;
            let mut fingerprint = [0u8; 8];
            fingerprint.copy_from_slice(&schema.fingerprint::<Rabin>().bytes);
            let index = registry.schemas.len();
            registry.by_fingerprint.insert(fingerprint, index);
            let newer = registry
                .latest
                .get(&kind)
                .is_none_or(|&i| registry.schemas[i].version < version);
            if newer {
                registry.latest.insert(kind, index);
            }
            registry.schemas.push(KnownSchema {
                kind,
                version,
                schema,
                fingerprint,
                text,
            });
        }
        Ok(registry)
    }

    /// The writer schemas this release uses, as (fingerprint in hex,
    /// schema text), for the schemas topic: a reader of an older release
    /// learns them from there. The full text, not the canonical form: the
    /// canonical form drops logical types, which the reader needs.
    pub fn writer_schemas(&self) -> Vec<(String, String)> {
        let mut kinds: Vec<&usize> = self.latest.values().collect();
        kinds.sort();
        kinds
            .into_iter()
            .map(|&i| {
                let known = &self.schemas[i];
                (hex::encode(known.fingerprint), known.text.to_string())
            })
            .collect()
    }

    /// Whether the writer schema named in a message's header is known
    /// (compiled in or learned).
    pub fn knows(&self, message: &[u8]) -> bool {
        if message.len() < 10 || message[..2] != MARKER {
            return true; // Not ours to learn: decoding will say why.
        }
        let mut fingerprint = [0u8; 8];
        fingerprint.copy_from_slice(&message[2..10]);
        self.by_fingerprint.contains_key(&fingerprint)
            || self
                .learned
                .read()
                .map(|learned| learned.contains_key(&fingerprint))
                .unwrap_or(false)
    }

    /// Learns a writer schema (from the schemas topic). Its kind is the one
    /// whose newest known schema has the same record name. Returns whether
    /// it was new.
    pub fn learn(&self, text: &str) -> Result<bool, AvroError> {
        let schema = Schema::parse_str(text).map_err(|source| AvroError::Schema {
            file: "a schema from the schemas topic".into(),
            source: Box::new(source),
        })?;
        let mut fingerprint = [0u8; 8];
        fingerprint.copy_from_slice(&schema.fingerprint::<Rabin>().bytes);
        if self.by_fingerprint.contains_key(&fingerprint) {
            return Ok(false);
        }
        let name = schema_name(&schema);
        let kind = self
            .latest
            .iter()
            .find(|&(_, &i)| schema_name(&self.schemas[i].schema) == name)
            .map(|(kind, _)| *kind)
            .ok_or_else(|| AvroError::Registry {
                reason: format!("a learned schema names {name}, which no event kind has"),
            })?;
        let mut learned = self.learned.write().unwrap_or_else(|e| e.into_inner());
        Ok(learned.insert(fingerprint, (kind, schema)).is_none())
    }

    fn latest(&self, kind: EventKind) -> &KnownSchema {
        // Every kind has a file in SCHEMA_FILES; a unit test guards that.
        &self.schemas[self.latest[&kind]]
    }

    /// The schema version a writer of this kind uses.
    pub fn writer_version(&self, kind: EventKind) -> u32 {
        self.latest(kind).version
    }

    fn encode_value(&self, kind: EventKind, value: Value) -> Result<Vec<u8>, AvroError> {
        let known = self.latest(kind);
        let datum = to_avro_datum(&known.schema, value).map_err(|source| AvroError::Datum {
            action: "encoded",
            source: Box::new(source),
        })?;
        let mut message = Vec::with_capacity(10 + datum.len());
        message.extend_from_slice(&MARKER);
        message.extend_from_slice(&known.fingerprint);
        message.extend_from_slice(&datum);
        Ok(message)
    }

    /// Reads the writer schema from the header and resolves to the newest
    /// known version of the same kind.
    fn decode_value(&self, message: &[u8]) -> Result<(EventKind, Value), AvroError> {
        if message.len() < 10 || message[..2] != MARKER {
            return Err(AvroError::NotSingleObject {
                length: message.len(),
            });
        }
        let mut fingerprint = [0u8; 8];
        fingerprint.copy_from_slice(&message[2..10]);
        let learned;
        let (kind, writer) = match self.by_fingerprint.get(&fingerprint) {
            Some(&i) => (self.schemas[i].kind, &self.schemas[i].schema),
            None => {
                let map = self.learned.read().unwrap_or_else(|e| e.into_inner());
                learned =
                    map.get(&fingerprint)
                        .cloned()
                        .ok_or_else(|| AvroError::UnknownSchema {
                            fingerprint: hex::encode(fingerprint),
                        })?;
                (learned.0, &learned.1)
            }
        };
        let reader = self.latest(kind);
        let mut body = &message[10..];
        let value = from_avro_datum(writer, &mut body, Some(&reader.schema)).map_err(|source| {
            AvroError::Datum {
                action: "decoded",
                source: Box::new(source),
            }
        })?;
        Ok((kind, value))
    }

    /// Encodes an event with the newest schema of its kind.
    pub fn encode_event(&self, event: &Event) -> Result<Vec<u8>, AvroError> {
        let mut fields = vec![("envelope".to_string(), envelope_value(&event.envelope))];
        match &event.fact {
            Fact::UnitQuota(quota) => fields.extend(unit_quota_fields(quota)),
            Fact::RosterEntry(entry) => fields.extend(roster_entry_fields(entry)),
            Fact::PayrollPayment(payment) => fields.extend(payroll_payment_fields(payment)),
            Fact::Contribution(contribution) => fields.extend(contribution_fields(contribution)),
            Fact::PensionStart(start) => fields.extend(pension_start_fields(start)),
            Fact::EnforcementCase(case) => fields.extend(enforcement_case_fields(case)),
            Fact::VeteranPlacement(placement) => fields.extend(veteran_placement_fields(placement)),
            Fact::PurchasedService(service) => fields.extend(purchased_service_fields(service)),
        }
        self.encode_value(event.kind(), Value::Record(fields))
    }

    /// Decodes an event of any fact kind.
    pub fn decode_event(&self, message: &[u8]) -> Result<Event, AvroError> {
        let (kind, value) = self.decode_value(message)?;
        let record = Record::new(value)?;
        let envelope = envelope_from(record.record("envelope")?)?;
        let fact = match kind {
            EventKind::UnitQuota => Fact::UnitQuota(unit_quota_from(&record)?),
            EventKind::RosterEntry => Fact::RosterEntry(roster_entry_from(&record)?),
            EventKind::PayrollPayment => Fact::PayrollPayment(payroll_payment_from(&record)?),
            EventKind::Contribution => Fact::Contribution(contribution_from(&record)?),
            EventKind::PensionStart => Fact::PensionStart(pension_start_from(&record)?),
            EventKind::EnforcementCase => Fact::EnforcementCase(enforcement_case_from(&record)?),
            EventKind::VeteranPlacement => Fact::VeteranPlacement(veteran_placement_from(&record)?),
            EventKind::PurchasedService => Fact::PurchasedService(purchased_service_from(&record)?),
            EventKind::DeadLetter | EventKind::SyncRun => {
                return Err(AvroError::WrongKind {
                    expected: EventKind::RosterEntry,
                    found: kind,
                });
            }
        };
        Ok(Event { envelope, fact })
    }

    /// Encodes a dead letter.
    pub fn encode_dead_letter(&self, letter: &DeadLetter) -> Result<Vec<u8>, AvroError> {
        let value = Value::Record(vec![
            (
                "dead_letter_id".into(),
                Value::String(letter.dead_letter_id.clone()),
            ),
            (
                "source_system".into(),
                Value::String(letter.source_system.clone()),
            ),
            ("location".into(), Value::String(letter.location.clone())),
            ("position".into(), Value::String(letter.position.clone())),
            (
                "reason_code".into(),
                Value::String(letter.reason_code.clone()),
            ),
            ("reason".into(), Value::String(letter.reason.clone())),
            ("raw".into(), Value::String(letter.raw.clone())),
            (
                "observed_at".into(),
                Value::TimestampMillis(letter.observed_at.timestamp_millis()),
            ),
        ]);
        self.encode_value(EventKind::DeadLetter, value)
    }

    /// Decodes a dead letter.
    pub fn decode_dead_letter(&self, message: &[u8]) -> Result<DeadLetter, AvroError> {
        let (kind, value) = self.decode_value(message)?;
        if kind != EventKind::DeadLetter {
            return Err(AvroError::WrongKind {
                expected: EventKind::DeadLetter,
                found: kind,
            });
        }
        let record = Record::new(value)?;
        Ok(DeadLetter {
            dead_letter_id: record.string("dead_letter_id")?,
            source_system: record.string("source_system")?,
            location: record.string("location")?,
            position: record.string("position")?,
            reason_code: record.string("reason_code")?,
            reason: record.string("reason")?,
            raw: record.string("raw")?,
            observed_at: record.timestamp("observed_at")?,
        })
    }

    /// Encodes a connector run.
    pub fn encode_sync_run(&self, run: &SyncRun) -> Result<Vec<u8>, AvroError> {
        let count = |n: u64| Value::Long(i64::try_from(n).unwrap_or(i64::MAX));
        let value = Value::Record(vec![
            ("run_id".into(), Value::String(run.run_id.clone())),
            (
                "source_system".into(),
                Value::String(run.source_system.clone()),
            ),
            ("location".into(), Value::String(run.location.clone())),
            (
                "started_at".into(),
                Value::TimestampMillis(run.started_at.timestamp_millis()),
            ),
            (
                "finished_at".into(),
                Value::TimestampMillis(run.finished_at.timestamp_millis()),
            ),
            ("rows_read".into(), count(run.rows_read)),
            ("published".into(), count(run.published)),
            ("unchanged".into(), count(run.unchanged)),
            ("rejected".into(), count(run.rejected)),
            ("error".into(), optional_string(run.error.as_deref())),
            (
                "worst_file".into(),
                match &run.worst_file {
                    None => Value::Union(0, Box::new(Value::Null)),
                    Some(file) => Value::Union(
                        1,
                        Box::new(Value::Record(vec![
                            ("location".into(), Value::String(file.location.clone())),
                            ("rows_read".into(), count(file.rows_read)),
                            ("rejected".into(), count(file.rejected)),
                        ])),
                    ),
                },
            ),
            (
                "exports".into(),
                Value::Array(
                    run.exports
                        .iter()
                        .map(|scope| {
                            Value::Record(vec![
                                (
                                    "unit_code".into(),
                                    optional_string(scope.unit_code.as_deref()),
                                ),
                                (
                                    "exported_at".into(),
                                    Value::TimestampMillis(scope.exported_at.timestamp_millis()),
                                ),
                            ])
                        })
                        .collect(),
                ),
            ),
        ]);
        self.encode_value(EventKind::SyncRun, value)
    }

    /// Decodes a connector run.
    pub fn decode_sync_run(&self, message: &[u8]) -> Result<SyncRun, AvroError> {
        let (kind, value) = self.decode_value(message)?;
        if kind != EventKind::SyncRun {
            return Err(AvroError::WrongKind {
                expected: EventKind::SyncRun,
                found: kind,
            });
        }
        let record = Record::new(value)?;
        let count = |field: &'static str| -> Result<u64, AvroError> {
            Ok(u64::try_from(record.long(field)?).unwrap_or(0))
        };
        Ok(SyncRun {
            run_id: record.string("run_id")?,
            source_system: record.string("source_system")?,
            location: record.string("location")?,
            started_at: record.timestamp("started_at")?,
            finished_at: record.timestamp("finished_at")?,
            rows_read: count("rows_read")?,
            published: count("published")?,
            unchanged: count("unchanged")?,
            rejected: count("rejected")?,
            error: record.optional_string("error")?,
            worst_file: match record.get("worst_file")? {
                Value::Record(fields) => {
                    let file = Record(fields.clone());
                    let long = |field| file.long(field).map(|n| u64::try_from(n).unwrap_or(0));
                    Some(crate::FileRejections {
                        location: file.string("location")?,
                        rows_read: long("rows_read")?,
                        rejected: long("rejected")?,
                    })
                }
                _ => None,
            },
            exports: record.export_scopes("exports")?,
        })
    }
}

fn envelope_value(envelope: &Envelope) -> Value {
    let kind_index = match envelope.source_ref.kind {
        SourceRefKind::FileRow => 0,
        SourceRefKind::TableKey => 1,
        SourceRefKind::Unknown => 2,
    };
    let operation_index = match envelope.operation {
        Operation::Upsert => 0,
        Operation::Insert => 1,
        Operation::Update => 2,
        Operation::Delete => 3,
    };
    Value::Record(vec![
        ("event_id".into(), Value::String(envelope.event_id.clone())),
        (
            "source_system".into(),
            Value::String(envelope.source_system.clone()),
        ),
        (
            "source_ref".into(),
            Value::Record(vec![
                (
                    "kind".into(),
                    enum_value(&SourceRefKind::SYMBOLS, kind_index),
                ),
                (
                    "location".into(),
                    Value::String(envelope.source_ref.location.clone()),
                ),
                (
                    "position".into(),
                    Value::String(envelope.source_ref.position.clone()),
                ),
            ]),
        ),
        (
            "operation".into(),
            enum_value(&Operation::SYMBOLS, operation_index),
        ),
        (
            "observed_at".into(),
            Value::TimestampMillis(envelope.observed_at.timestamp_millis()),
        ),
        (
            "exported_at".into(),
            match envelope.exported_at {
                Some(at) => {
                    Value::Union(1, Box::new(Value::TimestampMillis(at.timestamp_millis())))
                }
                None => Value::Union(0, Box::new(Value::Null)),
            },
        ),
    ])
}

fn envelope_from(record: Record) -> Result<Envelope, AvroError> {
    let source_ref = record.record("source_ref")?;
    let kind = match source_ref.symbol("kind")?.as_str() {
        "FILE_ROW" => SourceRefKind::FileRow,
        "TABLE_KEY" => SourceRefKind::TableKey,
        _ => SourceRefKind::Unknown,
    };
    let operation = match record.symbol("operation")?.as_str() {
        "INSERT" => Operation::Insert,
        "UPDATE" => Operation::Update,
        "DELETE" => Operation::Delete,
        _ => Operation::Upsert,
    };
    Ok(Envelope {
        event_id: record.string("event_id")?,
        source_system: record.string("source_system")?,
        source_ref: SourceRef {
            kind,
            location: source_ref.string("location")?,
            position: source_ref.string("position")?,
        },
        operation,
        observed_at: record.timestamp("observed_at")?,
        exported_at: record.optional_timestamp("exported_at")?,
    })
}

fn unit_quota_fields(quota: &UnitQuota) -> Vec<(String, Value)> {
    vec![
        (
            "unit_code".into(),
            Value::String(quota.unit_code.as_str().to_string()),
        ),
        ("unit_name".into(), Value::String(quota.unit_name.clone())),
        ("unit_type".into(), Value::String(quota.unit_type.clone())),
        ("quota".into(), Value::Int(quota.quota)),
        ("approved_on".into(), optional_date(quota.approved_on)),
    ]
}

fn unit_quota_from(record: &Record) -> Result<UnitQuota, AvroError> {
    Ok(UnitQuota {
        unit_code: record.credit_code("unit_code")?,
        unit_name: record.string("unit_name")?,
        unit_type: record.string("unit_type")?,
        quota: record.int("quota")?,
        approved_on: record.optional_date("approved_on")?,
    })
}

fn roster_entry_fields(entry: &RosterEntry) -> Vec<(String, Value)> {
    let post_index = PostCategory::SYMBOLS
        .iter()
        .position(|s| *s == post_symbol(entry.post_category))
        .unwrap_or(3);
    let status_index = match entry.status {
        StaffStatus::Active => 0,
        StaffStatus::Left => 1,
        StaffStatus::Unknown => 2,
    };
    vec![
        (
            "citizen_id".into(),
            Value::String(entry.citizen_id.as_str().to_string()),
        ),
        ("name".into(), Value::String(entry.name.clone())),
        (
            "unit_code".into(),
            Value::String(entry.unit_code.as_str().to_string()),
        ),
        ("unit_name".into(), Value::String(entry.unit_name.clone())),
        (
            "post_category".into(),
            enum_value(&PostCategory::SYMBOLS, post_index),
        ),
        (
            "post_category_label".into(),
            Value::String(entry.post_category_label.clone()),
        ),
        (
            "employment_form".into(),
            Value::String(entry.employment_form.clone()),
        ),
        ("hire_date".into(), optional_date(entry.hire_date)),
        ("contract_start".into(), optional_date(entry.contract_start)),
        ("contract_end".into(), optional_date(entry.contract_end)),
        (
            "contract_open_ended".into(),
            Value::Boolean(entry.contract_open_ended),
        ),
        (
            "status".into(),
            enum_value(&StaffStatus::SYMBOLS, status_index),
        ),
        (
            "status_label".into(),
            Value::String(entry.status_label.clone()),
        ),
        ("left_on".into(), optional_date(entry.left_on)),
        (
            "post_name".into(),
            match &entry.post_name {
                Some(name) => Value::Union(1, Box::new(Value::String(name.clone()))),
                None => Value::Union(0, Box::new(Value::Null)),
            },
        ),
    ]
}

fn post_symbol(category: PostCategory) -> &'static str {
    match category {
        PostCategory::GeneralSupport => "GENERAL_SUPPORT",
        PostCategory::TechnicalSkill => "TECHNICAL_SKILL",
        PostCategory::LawEnforcementSupport => "LAW_ENFORCEMENT_SUPPORT",
        PostCategory::Unknown => "UNKNOWN",
    }
}

fn roster_entry_from(record: &Record) -> Result<RosterEntry, AvroError> {
    let post_category = match record.symbol("post_category")?.as_str() {
        "GENERAL_SUPPORT" => PostCategory::GeneralSupport,
        "TECHNICAL_SKILL" => PostCategory::TechnicalSkill,
        "LAW_ENFORCEMENT_SUPPORT" => PostCategory::LawEnforcementSupport,
        _ => PostCategory::Unknown,
    };
    let status = match record.symbol("status")?.as_str() {
        "ACTIVE" => StaffStatus::Active,
        "LEFT" => StaffStatus::Left,
        _ => StaffStatus::Unknown,
    };
    Ok(RosterEntry {
        citizen_id: record.citizen_id("citizen_id")?,
        name: record.string("name")?,
        unit_code: record.credit_code("unit_code")?,
        unit_name: record.string("unit_name")?,
        post_category,
        post_category_label: record.string("post_category_label")?,
        employment_form: record.string("employment_form")?,
        hire_date: record.optional_date("hire_date")?,
        contract_start: record.optional_date("contract_start")?,
        contract_end: record.optional_date("contract_end")?,
        contract_open_ended: record.boolean("contract_open_ended")?,
        status,
        status_label: record.string("status_label")?,
        left_on: record.optional_date("left_on")?,
        // v2; a reader resolving to v1 (an older release) has no such field.
        post_name: record.optional_string("post_name")?,
    })
}

fn payroll_payment_fields(payment: &PayrollPayment) -> Vec<(String, Value)> {
    vec![
        (
            "citizen_id".into(),
            Value::String(payment.citizen_id.as_str().to_string()),
        ),
        ("name".into(), Value::String(payment.name.clone())),
        (
            "unit_code".into(),
            Value::String(payment.unit_code.as_str().to_string()),
        ),
        ("unit_name".into(), Value::String(payment.unit_name.clone())),
        ("pay_month".into(), Value::Int(payment.month.as_number())),
        ("gross".into(), optional_decimal(payment.gross)),
        ("net".into(), optional_decimal(payment.net)),
        (
            "fund_source".into(),
            Value::String(payment.fund_source.clone()),
        ),
    ]
}

fn payroll_payment_from(record: &Record) -> Result<PayrollPayment, AvroError> {
    let month_number = record.int("pay_month")?;
    Ok(PayrollPayment {
        citizen_id: record.citizen_id("citizen_id")?,
        name: record.string("name")?,
        unit_code: record.credit_code("unit_code")?,
        unit_name: record.string("unit_name")?,
        month: Month::from_number(month_number).ok_or_else(|| AvroError::Field {
            field: "pay_month",
            reason: format!("{month_number} is not a YYYYMM month"),
        })?,
        gross: record.optional_decimal("gross")?,
        net: record.optional_decimal("net")?,
        fund_source: record.string("fund_source")?,
    })
}

fn contribution_fields(contribution: &Contribution) -> Vec<(String, Value)> {
    vec![
        (
            "citizen_id".into(),
            Value::String(contribution.citizen_id.as_str().to_string()),
        ),
        ("name".into(), Value::String(contribution.name.clone())),
        (
            "unit_code".into(),
            Value::String(contribution.unit_code.as_str().to_string()),
        ),
        (
            "unit_name".into(),
            Value::String(contribution.unit_name.clone()),
        ),
        (
            "insurance_type".into(),
            Value::String(contribution.insurance_type.clone()),
        ),
        (
            "insured_status".into(),
            Value::String(contribution.insured_status.clone()),
        ),
        (
            "contribution_month".into(),
            Value::Int(contribution.month.as_number()),
        ),
    ]
}

fn contribution_from(record: &Record) -> Result<Contribution, AvroError> {
    let month_number = record.int("contribution_month")?;
    Ok(Contribution {
        citizen_id: record.citizen_id("citizen_id")?,
        name: record.string("name")?,
        unit_code: record.credit_code("unit_code")?,
        unit_name: record.string("unit_name")?,
        insurance_type: record.string("insurance_type")?,
        insured_status: record.string("insured_status")?,
        month: Month::from_number(month_number).ok_or_else(|| AvroError::Field {
            field: "contribution_month",
            reason: format!("{month_number} is not a YYYYMM month"),
        })?,
    })
}

fn text(value: &str) -> Value {
    Value::String(value.to_string())
}

fn pension_start_fields(start: &PensionStart) -> Vec<(String, Value)> {
    vec![
        ("citizen_id".into(), text(start.citizen_id.as_str())),
        ("name".into(), text(&start.name)),
        ("benefit_type".into(), text(&start.benefit_type)),
        (
            "starts_on".into(),
            Value::Date(to_epoch_days(start.starts_on)),
        ),
    ]
}

fn pension_start_from(record: &Record) -> Result<PensionStart, AvroError> {
    Ok(PensionStart {
        citizen_id: record.citizen_id("citizen_id")?,
        name: record.string("name")?,
        benefit_type: record.string("benefit_type")?,
        starts_on: record.date("starts_on")?,
    })
}

fn enforcement_case_fields(case: &EnforcementCase) -> Vec<(String, Value)> {
    vec![
        ("case_number".into(), text(&case.case_number)),
        ("citizen_id".into(), text(case.citizen_id.as_str())),
        ("name".into(), text(&case.name)),
        ("amount".into(), decimal_value(case.amount)),
        ("filed_on".into(), optional_date(case.filed_on)),
        ("case_status".into(), text(&case.case_status)),
    ]
}

fn enforcement_case_from(record: &Record) -> Result<EnforcementCase, AvroError> {
    Ok(EnforcementCase {
        case_number: record.string("case_number")?,
        citizen_id: record.citizen_id("citizen_id")?,
        name: record.string("name")?,
        amount: record.decimal("amount")?,
        filed_on: record.optional_date("filed_on")?,
        case_status: record.string("case_status")?,
    })
}

fn veteran_placement_fields(placement: &VeteranPlacement) -> Vec<(String, Value)> {
    vec![
        ("citizen_id".into(), text(placement.citizen_id.as_str())),
        ("name".into(), text(&placement.name)),
        ("placement_type".into(), text(&placement.placement_type)),
        ("unit_code".into(), text(placement.unit_code.as_str())),
        ("unit_name".into(), text(&placement.unit_name)),
        ("placed_on".into(), optional_date(placement.placed_on)),
    ]
}

fn veteran_placement_from(record: &Record) -> Result<VeteranPlacement, AvroError> {
    Ok(VeteranPlacement {
        citizen_id: record.citizen_id("citizen_id")?,
        name: record.string("name")?,
        placement_type: record.string("placement_type")?,
        unit_code: record.credit_code("unit_code")?,
        unit_name: record.string("unit_name")?,
        placed_on: record.optional_date("placed_on")?,
    })
}

fn purchased_service_fields(service: &PurchasedService) -> Vec<(String, Value)> {
    vec![
        ("project_name".into(), text(&service.project_name)),
        ("unit_code".into(), text(service.unit_code.as_str())),
        ("unit_name".into(), text(&service.unit_name)),
        ("provider".into(), text(&service.provider)),
        ("staff_count".into(), Value::Int(service.staff_count)),
        (
            "contract_amount".into(),
            optional_decimal(service.contract_amount),
        ),
        ("period_start".into(), optional_date(service.period_start)),
        ("period_end".into(), optional_date(service.period_end)),
    ]
}

fn purchased_service_from(record: &Record) -> Result<PurchasedService, AvroError> {
    Ok(PurchasedService {
        project_name: record.string("project_name")?,
        unit_code: record.credit_code("unit_code")?,
        unit_name: record.string("unit_name")?,
        provider: record.string("provider")?,
        staff_count: record.int("staff_count")?,
        contract_amount: record.optional_decimal("contract_amount")?,
        period_start: record.optional_date("period_start")?,
        period_end: record.optional_date("period_end")?,
    })
}

fn schema_name(schema: &Schema) -> String {
    match schema {
        Schema::Record(record) => record.name.fullname(None),
        _ => String::new(),
    }
}

fn enum_value(symbols: &[&str], index: usize) -> Value {
    Value::Enum(index as u32, symbols[index].to_string())
}

fn optional_string(text: Option<&str>) -> Value {
    match text {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(text) => Value::Union(1, Box::new(Value::String(text.to_string()))),
    }
}

fn optional_date(date: Option<NaiveDate>) -> Value {
    match date {
        Some(date) => Value::Union(1, Box::new(Value::Date(to_epoch_days(date)))),
        None => Value::Union(0, Box::new(Value::Null)),
    }
}

/// Money travels as Avro decimal(14, 2): the unscaled value, big-endian
/// two's complement. Eight bytes always: apache-avro refuses values whose
/// byte length could not hold the declared precision, and eight bytes hold
/// every 14-digit amount.
fn decimal_value(amount: Decimal) -> Value {
    let mut scaled = amount;
    scaled.rescale(2);
    let unscaled = i64::try_from(scaled.mantissa()).unwrap_or(if scaled.mantissa() < 0 {
        i64::MIN
    } else {
        i64::MAX
    });
    Value::Decimal(apache_avro::Decimal::from(unscaled.to_be_bytes().to_vec()))
}

fn optional_decimal(amount: Option<Decimal>) -> Value {
    match amount {
        Some(amount) => Value::Union(1, Box::new(decimal_value(amount))),
        None => Value::Union(0, Box::new(Value::Null)),
    }
}

fn decimal_from_bytes(bytes: &[u8]) -> Option<Decimal> {
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let filler = if bytes[0] & 0x80 != 0 { 0xFF } else { 0x00 };
    let mut full = [filler; 16];
    full[16 - bytes.len()..].copy_from_slice(bytes);
    Decimal::try_from_i128_with_scale(i128::from_be_bytes(full), 2).ok()
}

/// A decoded Avro record with typed field access.
struct Record(Vec<(String, Value)>);

impl Record {
    fn new(value: Value) -> Result<Self, AvroError> {
        match value {
            Value::Record(fields) => Ok(Self(fields)),
            other => Err(AvroError::Field {
                field: "(root)",
                reason: format!("expected a record, found {other:?}"),
            }),
        }
    }

    fn get(&self, field: &'static str) -> Result<&Value, AvroError> {
        let value = self
            .0
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, value)| value);
        let value = value.ok_or(AvroError::Field {
            field,
            reason: "missing".into(),
        })?;
        Ok(match value {
            Value::Union(_, inner) => inner,
            other => other,
        })
    }

    /// A nullable string that older schema versions may not have at all.
    fn optional_string(&self, field: &'static str) -> Result<Option<String>, AvroError> {
        if !self.0.iter().any(|(name, _)| name == field) {
            return Ok(None);
        }
        match self.get(field)? {
            Value::Null => Ok(None),
            Value::String(text) => Ok(Some(text.clone())),
            other => Err(Self::wrong(field, "a string or null", other)),
        }
    }

    fn wrong(field: &'static str, expected: &str, found: &Value) -> AvroError {
        AvroError::Field {
            field,
            reason: format!("expected {expected}, found {found:?}"),
        }
    }

    fn record(&self, field: &'static str) -> Result<Record, AvroError> {
        match self.get(field)? {
            Value::Record(fields) => Ok(Record(fields.clone())),
            other => Err(Self::wrong(field, "a record", other)),
        }
    }

    fn string(&self, field: &'static str) -> Result<String, AvroError> {
        match self.get(field)? {
            Value::String(text) => Ok(text.clone()),
            other => Err(Self::wrong(field, "a string", other)),
        }
    }

    fn symbol(&self, field: &'static str) -> Result<String, AvroError> {
        match self.get(field)? {
            Value::Enum(_, symbol) => Ok(symbol.clone()),
            other => Err(Self::wrong(field, "an enum symbol", other)),
        }
    }

    fn long(&self, field: &'static str) -> Result<i64, AvroError> {
        match self.get(field)? {
            Value::Long(number) => Ok(*number),
            Value::Int(number) => Ok(i64::from(*number)),
            other => Err(Self::wrong(field, "a long", other)),
        }
    }

    fn int(&self, field: &'static str) -> Result<i32, AvroError> {
        match self.get(field)? {
            Value::Int(number) => Ok(*number),
            other => Err(Self::wrong(field, "an int", other)),
        }
    }

    fn boolean(&self, field: &'static str) -> Result<bool, AvroError> {
        match self.get(field)? {
            Value::Boolean(flag) => Ok(*flag),
            other => Err(Self::wrong(field, "a boolean", other)),
        }
    }

    fn timestamp(&self, field: &'static str) -> Result<DateTime<Utc>, AvroError> {
        match self.get(field)? {
            Value::TimestampMillis(millis) | Value::Long(millis) => {
                DateTime::from_timestamp_millis(*millis).ok_or_else(|| AvroError::Field {
                    field,
                    reason: "out of range".into(),
                })
            }
            other => Err(Self::wrong(field, "a timestamp", other)),
        }
    }

    /// The export scopes of a run; none where older versions lack them.
    fn export_scopes(&self, field: &'static str) -> Result<Vec<crate::ExportScope>, AvroError> {
        if !self.0.iter().any(|(name, _)| name == field) {
            return Ok(Vec::new());
        }
        let Value::Array(items) = self.get(field)? else {
            return Err(Self::wrong(field, "an array", self.get(field)?));
        };
        items
            .iter()
            .map(|item| {
                let scope = Record::new(item.clone())?;
                Ok(crate::ExportScope {
                    unit_code: scope.optional_string("unit_code")?,
                    exported_at: scope.timestamp("exported_at")?,
                })
            })
            .collect()
    }

    /// A nullable timestamp that older schema versions may not have at all.
    fn optional_timestamp(&self, field: &'static str) -> Result<Option<DateTime<Utc>>, AvroError> {
        if !self.0.iter().any(|(name, _)| name == field) {
            return Ok(None);
        }
        match self.get(field)? {
            Value::Null => Ok(None),
            _ => self.timestamp(field).map(Some),
        }
    }

    fn optional_date(&self, field: &'static str) -> Result<Option<NaiveDate>, AvroError> {
        match self.get(field)? {
            Value::Null => Ok(None),
            Value::Date(days) | Value::Int(days) => {
                from_epoch_days(*days)
                    .map(Some)
                    .ok_or_else(|| AvroError::Field {
                        field,
                        reason: "date out of range".into(),
                    })
            }
            other => Err(Self::wrong(field, "a date or null", other)),
        }
    }

    fn date(&self, field: &'static str) -> Result<NaiveDate, AvroError> {
        self.optional_date(field)?.ok_or(AvroError::Field {
            field,
            reason: "a date is required".into(),
        })
    }

    fn decimal(&self, field: &'static str) -> Result<Decimal, AvroError> {
        match self.get(field)? {
            Value::Decimal(decimal) => {
                let bytes: Vec<u8> = decimal.try_into().map_err(|_| AvroError::Field {
                    field,
                    reason: "bad decimal".into(),
                })?;
                decimal_from_bytes(&bytes).ok_or_else(|| AvroError::Field {
                    field,
                    reason: "decimal too large".into(),
                })
            }
            Value::Bytes(bytes) => decimal_from_bytes(bytes).ok_or_else(|| AvroError::Field {
                field,
                reason: "decimal too large".into(),
            }),
            other => Err(Self::wrong(field, "a decimal", other)),
        }
    }

    fn optional_decimal(&self, field: &'static str) -> Result<Option<Decimal>, AvroError> {
        match self.get(field)? {
            Value::Null => Ok(None),
            _ => self.decimal(field).map(Some),
        }
    }

    fn citizen_id(&self, field: &'static str) -> Result<CitizenId, AvroError> {
        CitizenId::parse(&self.string(field)?).map_err(|error| AvroError::Field {
            field,
            reason: error.to_string(),
        })
    }

    fn credit_code(&self, field: &'static str) -> Result<CreditCode, AvroError> {
        CreditCode::parse(&self.string(field)?).map_err(|error| AvroError::Field {
            field,
            reason: error.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> &'static SchemaRegistry {
        SchemaRegistry::get().unwrap()
    }

    fn roster_event() -> Event {
        Event {
            envelope: Envelope::for_file_row(
                "staffing.roster",
                "roster.xlsx",
                3,
                Operation::Upsert,
            ),
            fact: Fact::RosterEntry(RosterEntry {
                citizen_id: CitizenId::parse("330106198703154214").unwrap(),
                name: "𠮷丽华".into(),
                unit_code: CreditCode::parse("11330681830166130U").unwrap(),
                unit_name: "诸暨市教育体育局".into(),
                post_category: PostCategory::Unknown,
                post_category_label: "其他".into(),
                employment_form: "劳务派遣".into(),
                hire_date: NaiveDate::from_ymd_opt(2021, 11, 18),
                contract_start: None,
                contract_end: None,
                contract_open_ended: true,
                status: StaffStatus::Active,
                status_label: "在职".into(),
                left_on: None,
                post_name: None,
            }),
        }
    }

    #[test]
    fn every_kind_has_a_schema() {
        for kind in EventKind::ALL {
            assert!(registry().writer_version(kind) >= 1);
        }
    }

    #[test]
    fn roster_event_round_trips_through_single_object_encoding() {
        let event = roster_event();
        let message = registry().encode_event(&event).unwrap();
        assert_eq!(&message[..2], &MARKER);
        assert_eq!(registry().decode_event(&message).unwrap(), event);
    }

    #[test]
    fn money_round_trips_exactly_including_negatives() {
        for text in [
            "0.00",
            "4066.82",
            "-15.50",
            "123456789012.34",
            "0.01",
            "-0.01",
            "1.28",
        ] {
            let amount: Decimal = text.parse().unwrap();
            let Value::Decimal(decimal) = decimal_value(amount) else {
                panic!()
            };
            let bytes: Vec<u8> = (&decimal).try_into().unwrap();
            assert_eq!(decimal_from_bytes(&bytes).unwrap().to_string(), text);
        }
    }

    #[test]
    fn unknown_fingerprint_and_garbage_are_refused_with_reason() {
        let mut message = registry().encode_event(&roster_event()).unwrap();
        message[2] ^= 0xFF;
        let error = registry().decode_event(&message).unwrap_err();
        assert!(matches!(error, AvroError::UnknownSchema { .. }), "{error}");
        let error = registry().decode_event(b"hello").unwrap_err();
        assert!(matches!(error, AvroError::NotSingleObject { length: 5 }));
    }

    fn latest_roster_text() -> &'static str {
        SCHEMA_FILES
            .iter()
            .filter(|(kind, _, _)| *kind == EventKind::RosterEntry)
            .max_by_key(|(_, version, _)| *version)
            .map(|(_, _, text)| *text)
            .unwrap()
    }

    /// The registry of an older release: only the first version of each
    /// schema.
    fn old_registry() -> SchemaRegistry {
        let v1: Vec<_> = SCHEMA_FILES
            .iter()
            .copied()
            .filter(|(_, v, _)| *v == 1)
            .collect();
        SchemaRegistry::build(&v1).unwrap()
    }

    #[test]
    fn an_old_reader_learns_the_new_roster_schema_and_reads_new_events() {
        let mut event = roster_event();
        if let Fact::RosterEntry(entry) = &mut event.fact {
            entry.post_name = Some("窗口服务".into());
        }
        let message = registry().encode_event(&event).unwrap();
        let old = old_registry();
        let unknown = old.decode_event(&message).unwrap_err();
        assert!(
            matches!(unknown, AvroError::UnknownSchema { .. }),
            "{unknown}"
        );
        // What the schemas topic carries for it.
        let (_, text) = registry()
            .writer_schemas()
            .into_iter()
            .find(|(fingerprint, _)| *fingerprint == hex::encode(&message[2..10]))
            .unwrap();
        assert!(old.learn(&text).unwrap());
        let read = old.decode_event(&message).unwrap();
        // The old release sees everything it knows; the new field is
        // simply not part of its version.
        let Fact::RosterEntry(entry) = read.fact else {
            panic!()
        };
        assert_eq!(entry.post_name, None);
        assert_eq!(entry.citizen_id.as_str(), "330106198703154214");
        assert!(!old.learn(&text).unwrap(), "learning twice changes nothing");
    }

    #[test]
    fn a_new_reader_reads_events_of_the_old_roster_schema() {
        let event = roster_event();
        let old = old_registry();
        // Written as the old release did: v1 has no post_name, and its
        // envelope no export time.
        let mut fields = vec![("envelope".to_string(), old_envelope_value(&event.envelope))];
        let Fact::RosterEntry(entry) = &event.fact else {
            panic!()
        };
        fields.extend(
            roster_entry_fields(entry)
                .into_iter()
                .filter(|(n, _)| n != "post_name"),
        );
        let message = old
            .encode_value(EventKind::RosterEntry, Value::Record(fields))
            .unwrap();
        assert_eq!(registry().decode_event(&message).unwrap(), event);
        assert_eq!(registry().writer_version(EventKind::RosterEntry), 3);
    }

    /// The envelope as releases before the export time wrote it.
    fn old_envelope_value(envelope: &Envelope) -> Value {
        let Value::Record(fields) = envelope_value(envelope) else {
            panic!("an envelope is a record")
        };
        let old: Vec<_> = fields
            .into_iter()
            .filter(|(n, _)| n != "exported_at")
            .collect();
        assert_eq!(old.len(), 5, "the five fields of the first envelope");
        Value::Record(old)
    }

    #[test]
    fn the_export_time_round_trips_and_old_events_have_none() {
        let exported = DateTime::parse_from_rfc3339("2026-11-30T09:15:00.250+08:00").unwrap();
        let mut event = roster_event();
        event.envelope = event.envelope.exported(Some(exported.with_timezone(&Utc)));
        let message = registry().encode_event(&event).unwrap();
        let read = registry().decode_event(&message).unwrap();
        assert_eq!(
            read.envelope.exported_at,
            Some(exported.with_timezone(&Utc))
        );
        assert_eq!(read, event);

        // A payroll event of the first payroll schema, as an old
        // connector still publishes it: read with no export time, so it
        // is ordered by when it was read.
        let old = old_registry();
        let payment = PayrollPayment {
            citizen_id: CitizenId::parse("330106198703154214").unwrap(),
            name: "王丽华".into(),
            unit_code: CreditCode::parse("11330681830166130U").unwrap(),
            unit_name: "诸暨市教育体育局".into(),
            month: Month::parse("2026-11").unwrap(),
            gross: Some("4066.82".parse().unwrap()),
            net: None,
            fund_source: "财政拨款".into(),
        };
        let envelope = Envelope::for_file_row("finance.payroll", "p.csv", 2, Operation::Upsert);
        let mut fields = vec![("envelope".to_string(), old_envelope_value(&envelope))];
        fields.extend(payroll_payment_fields(&payment));
        let message = old
            .encode_value(EventKind::PayrollPayment, Value::Record(fields))
            .unwrap();
        let read = registry().decode_event(&message).unwrap();
        assert_eq!(read.envelope.exported_at, None);
        assert_eq!(
            read.envelope.order().0,
            envelope.observed_at.timestamp_millis()
        );
        assert_eq!(read.fact, Fact::PayrollPayment(payment));
    }

    /// A roster event written by a newer connector whose post-category
    /// enum has a symbol this reader lacks.
    fn datum_with_new_symbol() -> (Schema, Vec<u8>) {
        let text = latest_roster_text();
        let newer = text.replace(
            r#""LAW_ENFORCEMENT_SUPPORT","#,
            r#""LAW_ENFORCEMENT_SUPPORT", "SECURITY_SUPPORT","#,
        );
        assert_ne!(newer, text, "the symbol list was found");
        let writer = Schema::parse_str(&newer).unwrap();
        let event = roster_event();
        let mut fields = vec![("envelope".to_string(), envelope_value(&event.envelope))];
        let Fact::RosterEntry(entry) = &event.fact else {
            panic!()
        };
        for (name, value) in roster_entry_fields(entry) {
            let value = if name == "post_category" {
                Value::Enum(3, "SECURITY_SUPPORT".into())
            } else if name == "post_category_label" {
                Value::String("安保辅助".into())
            } else {
                value
            };
            fields.push((name, value));
        }
        let datum = apache_avro::to_avro_datum(&writer, Value::Record(fields)).unwrap();
        (writer, datum)
    }

    #[test]
    fn an_enum_symbol_the_reader_lacks_becomes_its_default_with_the_label_kept() {
        let (writer, datum) = datum_with_new_symbol();
        let reader = &registry().latest(EventKind::RosterEntry).schema;
        let value = from_avro_datum(&writer, &mut datum.as_slice(), Some(reader)).unwrap();
        let entry = roster_entry_from(&Record::new(value).unwrap()).unwrap();
        assert_eq!(entry.post_category, PostCategory::Unknown);
        assert_eq!(entry.post_category_label, "安保辅助");
    }

    #[test]
    fn an_enum_symbol_the_reader_lacks_without_a_default_is_an_error() {
        let (writer, datum) = datum_with_new_symbol();
        let text = latest_roster_text();
        // A reader whose enum has no default cannot place the symbol: the
        // merger turns such an event into a dead letter with the reason.
        let strict = text.replacen(r#""default": "UNKNOWN","#, "", 1);
        assert_ne!(strict, text, "the enum default was found");
        let strict = Schema::parse_str(&strict).unwrap();
        let decoded = from_avro_datum(&writer, &mut datum.as_slice(), Some(&strict));
        assert!(decoded.is_err());
    }

    #[test]
    fn every_department_fact_round_trips() {
        let id = CitizenId::parse("33068119860303567X").unwrap();
        let unit = CreditCode::parse("11330681543231948W").unwrap();
        let day = NaiveDate::from_ymd_opt(2024, 2, 1);
        let facts = [
            Fact::PensionStart(PensionStart {
                citizen_id: id.clone(),
                name: "林玉军".into(),
                benefit_type: "基本养老金".into(),
                starts_on: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            }),
            Fact::EnforcementCase(EnforcementCase {
                case_number: "（2026）浙0681执3385号".into(),
                citizen_id: id.clone(),
                name: "何文平".into(),
                amount: "478919.85".parse().unwrap(),
                filed_on: None,
                case_status: "执行中".into(),
            }),
            Fact::VeteranPlacement(VeteranPlacement {
                citizen_id: id.clone(),
                name: "唐远明".into(),
                placement_type: "安排工作".into(),
                unit_code: unit.clone(),
                unit_name: "诸暨市人力资源和社会保障局".into(),
                placed_on: day,
            }),
            Fact::PurchasedService(PurchasedService {
                project_name: "窗口辅助服务".into(),
                unit_code: unit,
                unit_name: "诸暨市人力资源和社会保障局".into(),
                provider: "浙江某某服务有限公司".into(),
                staff_count: 8,
                contract_amount: Some("567115.56".parse().unwrap()),
                period_start: day,
                period_end: None,
            }),
        ];
        for fact in facts {
            let event = Event {
                envelope: Envelope::for_file_row("test", "f.csv", 2, Operation::Insert),
                fact,
            };
            let message = registry().encode_event(&event).unwrap();
            assert_eq!(registry().decode_event(&message).unwrap(), event);
        }
    }

    #[test]
    fn sync_run_round_trips_with_and_without_an_error() {
        let at = DateTime::from_timestamp_millis(1_764_900_000_000).unwrap();
        let mut run = SyncRun {
            run_id: "r1".into(),
            source_system: "finance.payroll".into(),
            location: "payroll_2026-11.xlsx".into(),
            started_at: at,
            finished_at: at + chrono::Duration::seconds(3),
            rows_read: 1000,
            published: 12,
            unchanged: 980,
            rejected: 8,
            error: None,
            worst_file: None,
            exports: Vec::new(),
        };
        let message = registry().encode_sync_run(&run).unwrap();
        assert_eq!(registry().decode_sync_run(&message).unwrap(), run);
        run.error = Some("file could not be read".into());
        run.worst_file = Some(crate::FileRejections {
            location: "payroll_2026-11.xlsx".into(),
            rows_read: 1000,
            rejected: 8,
        });
        let message = registry().encode_sync_run(&run).unwrap();
        assert_eq!(registry().decode_sync_run(&message).unwrap(), run);
        assert!(registry().decode_event(&message).is_err());
        run.exports = vec![
            crate::ExportScope {
                unit_code: Some("11330681830166130U".into()),
                exported_at: at,
            },
            crate::ExportScope {
                unit_code: None,
                exported_at: at - chrono::Duration::days(1),
            },
        ];
        let message = registry().encode_sync_run(&run).unwrap();
        assert_eq!(registry().decode_sync_run(&message).unwrap(), run);
    }

    #[test]
    fn truncated_message_is_an_error_not_a_panic() {
        let message = registry().encode_event(&roster_event()).unwrap();
        for cut in 10..message.len() {
            let _ = registry().decode_event(&message[..cut]);
        }
    }

    #[test]
    fn every_writer_schema_inlines_the_same_envelope() {
        let envelopes: Vec<String> = SCHEMA_FILES
            .iter()
            .filter(|(kind, _, _)| !matches!(kind, EventKind::DeadLetter | EventKind::SyncRun))
            .filter(|(kind, version, _)| registry().writer_version(*kind) == *version)
            .map(|(_, _, text)| {
                let json: serde_json::Value = serde_json::from_str(text).unwrap();
                json["fields"][0]["type"].to_string()
            })
            .collect();
        assert!(envelopes.windows(2).all(|pair| pair[0] == pair[1]));
    }
}
#[cfg(test)]
mod payroll_tests {
    use super::*;

    #[test]
    fn payroll_event_without_amounts_round_trips() {
        let mut event = payroll_event();
        if let Fact::PayrollPayment(payment) = &mut event.fact {
            payment.net = None;
        }
        let registry = SchemaRegistry::get().unwrap();
        let message = registry.encode_event(&event).unwrap();
        assert_eq!(registry.decode_event(&message).unwrap(), event);
    }

    fn payroll_event() -> Event {
        Event {
            envelope: Envelope::for_file_row("finance.payroll", "p.csv", 2, Operation::Upsert),
            fact: Fact::PayrollPayment(PayrollPayment {
                citizen_id: CitizenId::parse("330106198703154214").unwrap(),
                name: "林晓雯".into(),
                unit_code: CreditCode::parse("11330681830166130U").unwrap(),
                unit_name: "诸暨市教育体育局".into(),
                month: Month::parse("2026-11").unwrap(),
                gross: Some("4959.54".parse().unwrap()),
                net: Some("-4066.82".parse().unwrap()),
                fund_source: "自有资金".into(),
            }),
        }
    }

    #[test]
    fn contribution_event_round_trips_with_a_legacy_id() {
        let event = Event {
            envelope: Envelope::for_file_row("social_security", "c.csv", 2, Operation::Upsert),
            fact: Fact::Contribution(Contribution {
                citizen_id: CitizenId::parse("330681710702527").unwrap(),
                name: "吴晓".into(),
                unit_code: CreditCode::parse("11330681830166130U").unwrap(),
                unit_name: "诸暨市教育体育局".into(),
                insurance_type: "企业职工基本养老保险".into(),
                insured_status: "参保缴费".into(),
                month: Month::parse("2026-09").unwrap(),
            }),
        };
        let registry = SchemaRegistry::get().unwrap();
        let decoded = registry
            .decode_event(&registry.encode_event(&event).unwrap())
            .unwrap();
        assert_eq!(decoded, event);
        assert_eq!(event.person().unwrap().as_str(), "330681197107025275");
    }

    #[test]
    fn payroll_event_round_trips() {
        let event = payroll_event();
        let registry = SchemaRegistry::get().unwrap();
        let message = registry.encode_event(&event).unwrap();
        let decoded = registry.decode_event(&message);
        if let Err(error) = &decoded {
            panic!("{error}: {:?}", std::error::Error::source(error));
        }
        assert_eq!(decoded.unwrap(), event);
    }
}
