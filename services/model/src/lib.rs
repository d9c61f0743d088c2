//! The shared model of Blockhub: identifiers, dates, money, months, events
//! and their Avro wire format.
//!
//! Every connector, the merger and the gateway agree on these types, so a
//! citizen ID normalised by the roster connector is byte for byte the key
//! the payroll connector and the court's look-up use.

pub mod avro;
pub mod case_number;
pub mod citizen_id;
pub mod clock;
pub mod compat;
pub mod credit_code;
pub mod date;
pub mod error_text;
pub mod event;
pub mod fold;
pub mod kafka;
pub mod key;
pub mod money;
pub mod month;

pub use avro::{AvroError, SchemaRegistry};
pub use case_number::canonical_case_number;
pub use citizen_id::{CitizenId, CitizenIdError, mask_id_text, mask_ids_in_text};
pub use clock::Clock;
pub use credit_code::{CreditCode, CreditCodeError};
pub use date::{DateError, ExcelEpoch, from_excel_serial, parse_date};
pub use error_text::error_chain;
pub use event::{
    Contribution, DeadLetter, EnforcementCase, Envelope, Event, EventKind, ExportScope, Fact,
    FileRejections, Operation, PayrollPayment, PensionStart, PostCategory, PurchasedService,
    RosterEntry, SourceRef, SourceRefKind, StaffStatus, SyncRun, UnitQuota, VeteranPlacement,
};

pub use kafka::{BrokerError, DeadLetterSink, KafkaSettings, read_topic_to_end, send_all};
pub use key::PersonKeyer;
pub use money::{MoneyError, amount_from_number, parse_amount};
pub use month::{Month, MonthError};
