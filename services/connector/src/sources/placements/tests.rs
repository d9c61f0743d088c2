use blockhub_model::Fact;

use crate::reader::RowOutcome;
use crate::sources::SourceKind;
use crate::test_support::{read_all, sample_file};

#[test]
fn sample_placements_load_with_their_units() {
    let outcomes = read_all(
        SourceKind::Placements,
        &sample_file("veterans/placements.csv"),
    );
    let placements: Vec<_> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            RowOutcome::Fact {
                fact: Fact::VeteranPlacement(p),
                ..
            } => Some(p),
            _ => None,
        })
        .collect();
    let raw = std::fs::read_to_string(sample_file("veterans/placements.csv")).unwrap();
    assert_eq!(placements.len(), raw.lines().count() - 1);
    let first = placements.first().unwrap();
    assert_eq!(first.unit_code.as_str(), "11330681543231948W");
    assert_eq!(first.placement_type, "安排工作");
    assert_eq!(first.citizen_id.as_str(), "33068119860303567X");
}
