use std::collections::BTreeSet;

use blockhub_model::Fact;

use crate::reader::RowOutcome;
use crate::sources::SourceKind;
use crate::test_support::{read_all, sample_file};

// The sample's contributions carry some IDs in the legacy 15-digit form;
// they must become the same 18-digit keys as the roster's rows.
#[test]
fn legacy_ids_in_contributions_join_the_roster() {
    let outcomes = read_all(
        SourceKind::Contributions,
        &sample_file("social_security/contributions.csv"),
    );
    let contributions: Vec<_> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            RowOutcome::Fact {
                fact: Fact::Contribution(c),
                ..
            } => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(contributions.len(), 4636);
    assert!(
        outcomes
            .iter()
            .all(|(_, o)| !matches!(o, RowOutcome::Rejected { .. }))
    );

    let roster: BTreeSet<String> =
        read_all(SourceKind::Roster, &sample_file("staffing/roster.xlsx"))
            .into_iter()
            .filter_map(|(_, o)| match o {
                RowOutcome::Fact {
                    fact: Fact::RosterEntry(e),
                    ..
                } => Some(e.citizen_id.as_str().to_string()),
                _ => None,
            })
            .collect();
    let raw = std::fs::read_to_string(sample_file("social_security/contributions.csv")).unwrap();
    let legacy: BTreeSet<&str> = raw
        .lines()
        .filter_map(|line| line.split(',').nth(1))
        .filter(|id| id.len() == 15)
        .collect();
    assert!(!legacy.is_empty(), "the sample has legacy IDs");
    for id in legacy {
        let upgraded = blockhub_model::CitizenId::parse(id).unwrap();
        assert!(
            roster.contains(upgraded.as_str()),
            "{} has no roster row",
            upgraded.masked()
        );
        assert!(contributions.iter().any(|c| c.citizen_id == upgraded));
    }
}
