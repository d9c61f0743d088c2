use blockhub_model::Fact;

use crate::reader::RowOutcome;
use crate::sources::SourceKind;
use crate::test_support::{read_all, sample_file};

#[test]
fn sample_pension_starts_load_with_dates() {
    let outcomes = read_all(
        SourceKind::Retirements,
        &sample_file("social_security/retirements.csv"),
    );
    let starts: Vec<_> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            RowOutcome::Fact {
                fact: Fact::PensionStart(start),
                ..
            } => Some(start),
            _ => None,
        })
        .collect();
    let raw = std::fs::read_to_string(sample_file("social_security/retirements.csv")).unwrap();
    assert_eq!(starts.len(), raw.lines().count() - 1);
    let first = starts.first().unwrap();
    assert_eq!(first.starts_on.to_string(), "2026-10-01");
    assert_eq!(first.benefit_type, "基本养老金");
}
