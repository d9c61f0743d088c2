use blockhub_model::Fact;

use super::parse::parse_period;
use crate::reader::RowOutcome;
use crate::sources::SourceKind;
use crate::test_support::{read_all, sample_file};

#[test]
fn sample_purchases_load_from_gb18030() {
    let outcomes = read_all(
        SourceKind::Purchases,
        &sample_file("finance/purchase_services.csv"),
    );
    let services: Vec<_> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            RowOutcome::Fact {
                fact: Fact::PurchasedService(s),
                ..
            } => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(services.len(), 3);
    assert_eq!(services[0].staff_count, 8);
    assert_eq!(services[0].unit_code.as_str(), "11330681543231948W");
    assert_eq!(
        services[0].period_end.map(|d| d.to_string()).as_deref(),
        Some("2026-12-31")
    );
}

#[test]
fn periods_need_both_ends_in_order() {
    assert!(parse_period("2026-01-01至2026-12-31").is_ok());
    assert!(parse_period("2026.1.1~2026.12.31").is_ok());
    assert!(parse_period("2026-01-01").is_err());
    assert!(parse_period("2026-12-31至2026-01-01").is_err());
    assert!(parse_period("2026-01-01至2026年12月").is_err());
}
