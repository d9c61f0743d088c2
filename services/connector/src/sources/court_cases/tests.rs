use blockhub_model::Fact;

use super::parse::canonical_case_number;
use crate::reader::RowOutcome;
use crate::sources::SourceKind;
use crate::test_support::{read_all, sample_file};

#[test]
fn sample_cases_load_with_full_width_case_numbers() {
    let outcomes = read_all(
        SourceKind::CourtCases,
        &sample_file("court/enforcement_cases.csv"),
    );
    let cases: Vec<_> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            RowOutcome::Fact {
                fact: Fact::EnforcementCase(case),
                ..
            } => Some(case),
            _ => None,
        })
        .collect();
    let raw = std::fs::read_to_string(sample_file("court/enforcement_cases.csv")).unwrap();
    assert_eq!(cases.len(), raw.lines().count() - 1);
    assert_eq!(cases[0].case_number, "（2026）浙0681执3385号");
    assert_eq!(cases[0].amount.to_string(), "478919.85");
}

#[test]
fn case_numbers_are_canonical_or_refused() {
    for written in [
        "（2025）浙0681执1234号",
        "(2025)浙0681执1234号",
        " （２０２５）浙0681执1234号 ",
    ] {
        let folded = blockhub_model::fold::fold_text(written);
        assert_eq!(
            canonical_case_number(&folded).unwrap(),
            "（2025）浙0681执1234号"
        );
    }
    assert_eq!(
        canonical_case_number("(2025)浙0681执恢12号").unwrap(),
        "（2025）浙0681执恢12号"
    );
    for bad in [
        "2025浙0681执1234号",
        "（25）浙0681执1234号",
        "（2025）浙0681民1234号",
        "",
    ] {
        assert!(canonical_case_number(bad).is_err(), "{bad}");
    }
}
