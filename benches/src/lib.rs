//! What the benchmarks share: the backends to measure and the generated
//! persons and payments.

use anyhow::{Context, Result};
use blockhub_model::{CitizenId, CreditCode, Month, PayrollPayment};
use blockhub_tests::Backend;
use clap::ValueEnum;
use rust_decimal::Decimal;

/// Which store backends to measure.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Backends {
    /// SQLite only.
    Sqlite,
    /// PostgreSQL only.
    Postgres,
    /// Both, SQLite first.
    Both,
}

impl Backends {
    /// The backends, with the names the tables print.
    pub fn selected(self) -> Vec<(&'static str, Backend)> {
        match self {
            Backends::Sqlite => vec![("sqlite", Backend::Sqlite)],
            Backends::Postgres => vec![("postgres", Backend::Postgres)],
            Backends::Both => vec![("sqlite", Backend::Sqlite), ("postgres", Backend::Postgres)],
        }
    }
}

/// The units generated persons work at.
pub const UNITS: [&str; 3] = [
    "113306817034236675",
    "11330681777412151D",
    "113306817601895554",
];

/// The n-th generated person's ID: a valid check character on a body
/// built from a birth date and a sequence number.
pub fn person_id(person: u64) -> Result<CitizenId> {
    let birth = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).context("epoch")?
        + chrono::Days::new(person % 12_000);
    let body = format!(
        "330681{}{:03}",
        birth.format("%Y%m%d"),
        (person / 12_000) % 1000
    );
    Ok(CitizenId::from_body(&body)?)
}

/// The unit a generated person works at.
pub fn unit_of(person: u64) -> Result<CreditCode> {
    Ok(CreditCode::parse(UNITS[(person % 3) as usize])?)
}

/// A generated person's payment for `month` (1-12) of 2026.
pub fn payment(person: u64, month: u32) -> Result<PayrollPayment> {
    let n = person * 12 + u64::from(month);
    Ok(PayrollPayment {
        citizen_id: person_id(person)?,
        name: format!("员工{person}"),
        unit_code: unit_of(person)?,
        unit_name: "诸暨市测试单位".into(),
        month: Month::new(2026, month).context("month")?,
        gross: Some(Decimal::new(500_000 + (n % 997) as i64, 2)),
        net: Some(Decimal::new(410_000 + (n % 991) as i64, 2)),
        fund_source: "财政拨款".into(),
    })
}
