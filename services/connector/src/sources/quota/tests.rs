use blockhub_model::Fact;

use crate::reader::RowOutcome;
use crate::sources::SourceKind;
use crate::test_support::{read_all, sample_file};

#[test]
fn sample_county_quota_list_reads_all_units() {
    let outcomes = read_all(SourceKind::Quota, &sample_file("staffing/quota.csv"));
    let quotas: Vec<_> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            RowOutcome::Fact {
                fact: Fact::UnitQuota(quota),
                ..
            } => Some(quota.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(quotas.len(), 20);
    assert_eq!(quotas[0].unit_code.as_str(), "1133068152601815XX");
    assert_eq!(quotas[0].quota, 72);
    assert_eq!(quotas[0].unit_name, "诸暨市公安局");
}

#[test]
fn quota_with_bad_code_or_count_is_rejected_with_both_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quota.csv");
    std::fs::write(
        &path,
        "单位名称,统一社会信用代码,编外用工控制数\n甲,11330681830166130A,七十\n",
    )
    .unwrap();
    let outcomes = read_all(SourceKind::Quota, &path);
    let RowOutcome::Rejected { rejection, .. } = &outcomes[1].1 else {
        panic!("{outcomes:?}")
    };
    let codes: Vec<&str> = rejection.problems.iter().map(|p| p.code.as_str()).collect();
    assert_eq!(codes, ["CREDIT_CODE_CHECK_CHAR_MISMATCH", "COUNT_FORMAT"]);
}
