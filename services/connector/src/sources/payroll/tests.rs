use blockhub_model::{Fact, PayrollPayment};

use crate::reader::RowOutcome;
use crate::sources::SourceKind;
use crate::test_support::{case_file, read_all, sample_file};

fn payments(outcomes: &[(u64, RowOutcome)]) -> Vec<PayrollPayment> {
    outcomes
        .iter()
        .filter_map(|(_, outcome)| match outcome {
            RowOutcome::Fact {
                fact: Fact::PayrollPayment(payment),
                ..
            } => Some(payment.clone()),
            _ => None,
        })
        .collect()
}

fn payroll_with_codes(rows: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let header = "身份证号,姓名,统一社会信用代码,发放月份,应发金额,实发金额\n";
    std::fs::write(dir.path().join("payroll.csv"), format!("{header}{rows}")).unwrap();
    dir
}

// C02: the same ID with full-width digits, inner spaces, NBSP, ideographic
// and zero-width spaces split one person into five; a 17-digit value was
// loaded as an ID.
#[test]
fn c02_noisy_ids_fold_to_one_person() {
    let source = std::fs::read_to_string(case_file("C02", "payroll_noisy.csv")).unwrap();
    let rows: String = source
        .lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            format!(
                "{},{},11330681830166130U,{},{},{}\n",
                cells[0], cells[1], cells[2], cells[3], cells[3]
            )
        })
        .collect();
    let dir = payroll_with_codes(&rows);
    let outcomes = read_all(SourceKind::Payroll, &dir.path().join("payroll.csv"));
    let good = payments(&outcomes);
    let ids: Vec<&str> = good.iter().map(|p| p.citizen_id.as_str()).collect();
    assert_eq!(ids[..5], ["330106198703154214"; 5]);
    assert_eq!(ids[5], "33010419900708105X");
    assert_eq!(good.len(), 6);
    let rejected: Vec<_> = outcomes
        .iter()
        .filter_map(|(row, o)| match o {
            RowOutcome::Rejected { rejection, .. } => Some((*row, rejection.code().to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(rejected, vec![(8, "ID_LENGTH".to_string())]);
}

// C01: pay for IDs whose check character is wrong must not be loaded
// under a guessed person.
#[test]
fn c01_payroll_amounts_and_months() {
    let source = std::fs::read_to_string(case_file("C01", "payroll.csv")).unwrap();
    let rows: String = source
        .lines()
        .skip(1)
        .map(|line| {
            let c: Vec<&str> = line.split(',').collect();
            format!(
                "{},{},11330681830166130U,{},\"{}\",{}\n",
                c[0], c[1], c[2], c[3], c[3]
            )
        })
        .collect();
    let dir = payroll_with_codes(&rows);
    let good = payments(&read_all(
        SourceKind::Payroll,
        &dir.path().join("payroll.csv"),
    ));
    assert_eq!(good.len(), 3);
    assert_eq!(good[0].citizen_id.as_str(), "33010419900708105X");
    assert_eq!(good[0].gross.unwrap().to_string(), "5230.00");
    assert_eq!(good[0].month.to_string(), "2024-05");
}

#[test]
fn sample_county_payroll_rejects_exactly_the_invalid_rows() {
    let outcomes = read_all(
        SourceKind::Payroll,
        &sample_file("finance/payroll_202611.csv"),
    );
    let rejected: Vec<String> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            RowOutcome::Rejected { rejection, raw } => {
                assert_eq!(rejection.code(), "ID_CHECK_CHAR_MISMATCH");
                Some(raw.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(rejected.len(), 3);
    for raw in &rejected {
        assert!(raw.contains("330681********"), "{raw}");
        assert!(!raw.contains("199409115303"), "{raw}");
    }
    let good = payments(&outcomes);
    assert_eq!(good.len() + 3, 1596);
    assert!(good.iter().all(|p| p.month.to_string() == "2026-11"));
    assert_eq!(good[0].gross.unwrap().to_string(), "8262.15");
    assert_eq!(good[0].net.unwrap().to_string(), "6774.96");
}

// C01/C02 as exported: 发放月份 and 应发金额 only, no net pay and no credit
// code. The header must still be found; rows fail only for what they lack.
#[test]
fn payroll_with_only_gross_and_no_unit_code_is_read() {
    let outcomes = read_all(SourceKind::Payroll, &case_file("C01", "payroll.csv"));
    assert_eq!(outcomes[0], (1, RowOutcome::Title));
    for (_, outcome) in &outcomes[1..] {
        let RowOutcome::Rejected { rejection, .. } = outcome else {
            panic!("{outcome:?}")
        };
        let codes: Vec<&str> = rejection.problems.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(codes, ["UNIT_MISSING"]);
    }
}

// C02 as exported, with the export's unit named for the whole file: every
// noisy form of one ID folds to that person; the 17-digit value is refused.
#[test]
fn c02_noisy_ids_link_when_the_export_unit_is_named() {
    let mut directory = crate::directory::UnitDirectory::default();
    directory.set_export_unit(blockhub_model::CreditCode::parse("11330681830166130U").unwrap());
    let path = case_file("C02", "payroll_noisy.csv");
    let reader =
        crate::reader::SourceReader::open(SourceKind::Payroll, &path, directory.into()).unwrap();
    let outcomes: Vec<_> = reader.map(|r| r.unwrap()).collect();
    let good = payments(&outcomes);
    let months: Vec<String> = good
        .iter()
        .filter(|p| p.citizen_id.as_str() == "330106198703154214")
        .map(|p| p.month.to_string())
        .collect();
    assert_eq!(
        months,
        ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05"]
    );
    assert!(
        good.iter()
            .any(|p| p.citizen_id.as_str() == "33010419900708105X")
    );
    assert_eq!(good.len(), 6);
    assert!(matches!(outcomes[7].1, RowOutcome::Rejected { .. }));
    assert_eq!(outcomes[7].0, 8);
}
