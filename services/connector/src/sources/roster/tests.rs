use blockhub_model::{Fact, PostCategory, RosterEntry};
use chrono::NaiveDate;

use crate::reader::RowOutcome;
use crate::sources::SourceKind;
use crate::test_support::{case_directory, case_file, read_all, sample_file};

fn entries(outcomes: &[(u64, RowOutcome)]) -> Vec<(u64, RosterEntry)> {
    outcomes
        .iter()
        .filter_map(|(row, outcome)| match outcome {
            RowOutcome::Fact {
                fact: Fact::RosterEntry(entry),
                ..
            } => Some((*row, entry.clone())),
            _ => None,
        })
        .collect()
}

fn rejections(outcomes: &[(u64, RowOutcome)]) -> Vec<(u64, String, String)> {
    outcomes
        .iter()
        .filter_map(|(row, outcome)| match outcome {
            RowOutcome::Rejected { rejection, raw } => {
                Some((*row, rejection.reason(), raw.clone()))
            }
            _ => None,
        })
        .collect()
}

// C01: a lower-case x joined nothing, and wrong check characters were
// loaded as if valid. Row 2 must be accepted as ...105X; rows 3 and 4
// rejected with the expected and found check characters.
#[test]
fn c01_check_characters_and_lower_case_x() {
    let outcomes = read_all(SourceKind::Roster, &case_file("C01", "roster.csv"));
    let good = entries(&outcomes);
    assert_eq!(good.len(), 1);
    assert_eq!(good[0].0, 2);
    assert_eq!(good[0].1.citizen_id.as_str(), "33010419900708105X");
    let rejected = rejections(&outcomes);
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0].0, 3);
    assert_eq!(
        rejected[0].1,
        "身份证号: check character expected 0, found X"
    );
    assert_eq!(rejected[1].0, 4);
    assert_eq!(
        rejected[1].1,
        "身份证号: check character expected 5, found 7"
    );
    for (_, reason, raw) in &rejected {
        assert!(
            !reason.contains("19791102") && !raw.contains("19791102"),
            "{reason} {raw}"
        );
    }
}

// C04: the same roster in GB18030 without BOM, UTF-8 with BOM and UTF-8
// without BOM; naive loaders produced replacement characters or kept the
// BOM in the first header.
#[test]
fn c04_three_encodings_give_identical_rows() {
    let mut all = Vec::new();
    for file in [
        "roster_gb18030_nobom.csv",
        "roster_utf8_bom.csv",
        "roster_utf8_nobom.csv",
    ] {
        let path = case_file("C04", file);
        let reader =
            crate::reader::SourceReader::open(SourceKind::Roster, &path, case_directory()).unwrap();
        let encoding = reader.encoding().unwrap().name();
        let outcomes: Vec<_> = reader.map(|r| r.unwrap()).collect();
        let expected_encoding = match file {
            "roster_gb18030_nobom.csv" => "GB18030",
            "roster_utf8_bom.csv" => "UTF-8 (BOM stripped)",
            _ => "UTF-8",
        };
        assert_eq!(encoding, expected_encoding);
        // The header was found in row 1, so the first column matched 姓名.
        assert_eq!(outcomes[0], (1, RowOutcome::Title));
        let records: Vec<RosterEntry> = entries(&outcomes).into_iter().map(|(_, e)| e).collect();
        assert_eq!(records.len(), 3, "{file}");
        for record in &records {
            assert!(
                !record.name.contains(['\u{FFFD}', '\u{FEFF}', '?']),
                "{}",
                record.name
            );
        }
        all.push(records);
    }
    assert_eq!(all[0], all[1]);
    assert_eq!(all[1], all[2]);
    let names: Vec<&str> = all[0].iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["𠮷丽华", "张䶮", "热依拉·托合提"]);
    let ids: Vec<&str> = all[0].iter().map(|r| r.citizen_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "330106199105232360",
            "330102198812121176",
            "650102199407153229"
        ]
    );
}

fn layout_outcomes(file: &str) -> Vec<(u64, RowOutcome)> {
    read_all(SourceKind::Roster, &case_file("C05", file))
}

// C05: a merged title, a two-row header, a short row, a totals row and
// trailing formatted-only rows; loaders took the title as header or the
// totals as a person.
#[test]
fn c05_layout_yields_exactly_three_records_in_csv_and_xlsx() {
    for file in ["roster_layout.csv", "roster_layout.xlsx"] {
        let outcomes = layout_outcomes(file);
        let titles = outcomes
            .iter()
            .filter(|(_, o)| *o == RowOutcome::Title)
            .count();
        let totals = outcomes
            .iter()
            .filter(|(_, o)| *o == RowOutcome::Totals)
            .count();
        let blanks = outcomes
            .iter()
            .filter(|(_, o)| *o == RowOutcome::Blank)
            .count();
        assert_eq!(titles, 3, "{file}: title plus two header rows");
        assert_eq!(totals, 1, "{file}");
        // Formatted-only rows of the workbook never reach the reader.
        assert!(blanks >= 1, "{file}");
        assert!(
            rejections(&outcomes).is_empty(),
            "{file}: {:?}",
            rejections(&outcomes)
        );
        let records = entries(&outcomes);
        assert_eq!(records.len(), 3, "{file}");
        let third = &records[2].1;
        assert_eq!(third.name, "何思远");
        assert_eq!(
            third.hire_date, None,
            "{file}: the missing cell stays empty"
        );
        assert_eq!(third.contract_end, NaiveDate::from_ymd_opt(2025, 8, 31));
        let padded: Vec<bool> = outcomes
            .iter()
            .filter_map(|(_, o)| match o {
                RowOutcome::Fact { padded, .. } => Some(*padded),
                _ => None,
            })
            .collect();
        // Only the CSV row is actually short; Excel pads rows itself.
        if file.ends_with(".csv") {
            assert_eq!(padded, [false, false, true], "{file}");
        }
    }
}

#[test]
fn c05_two_row_header_maps_contract_columns() {
    let path = case_file("C05", "roster_layout.csv");
    let mut reader =
        crate::reader::SourceReader::open(SourceKind::Roster, &path, case_directory()).unwrap();
    for _ in 0..3 {
        reader.next().unwrap().unwrap();
    }
    let layout = reader.layout().unwrap();
    assert_eq!(layout.header_row, 3);
    assert_eq!(layout.column("contract_start"), Some(5));
    assert_eq!(layout.column("contract_end"), Some(6));
    assert_eq!(layout.column("hire_date"), Some(7));
    let (_, third) = reader.nth(2).unwrap().unwrap();
    // 何思远's row lacks its last cell: padded, not shifted.
    let RowOutcome::Fact {
        fact: Fact::RosterEntry(entry),
        padded,
        ..
    } = third
    else {
        panic!()
    };
    assert!(padded);
    assert_eq!(entry.hire_date, None);
    // No status column: a roster lists current holders of posts.
    assert_eq!(entry.status, blockhub_model::StaffStatus::Active);
    assert_eq!(entry.contract_start, NaiveDate::from_ymd_opt(2022, 9, 1));
}

#[test]
fn sample_county_roster_xlsx_reads_every_row() {
    let outcomes = read_all(SourceKind::Roster, &sample_file("staffing/roster.xlsx"));
    let good = entries(&outcomes);
    assert_eq!(good.len(), 1603);
    assert!(rejections(&outcomes).is_empty());
    let (row, first) = &good[0];
    assert_eq!(*row, 3);
    assert_eq!(first.post_category, PostCategory::GeneralSupport);
    assert_eq!(first.post_category_label, "普通辅助类");
    assert_eq!(first.hire_date, NaiveDate::from_ymd_opt(2019, 12, 1));
    assert_eq!(first.contract_end, NaiveDate::from_ymd_opt(2026, 11, 30));
    assert_eq!(outcomes.last().unwrap().1, RowOutcome::Totals);
}

// C07: dates in every exported form; loaders filled in missing years and
// days or read Excel serials from the wrong epoch.
#[test]
fn c07_dates_in_every_form() {
    use crate::export::open_export;
    use crate::layout::try_header;
    use crate::sources::RowView;

    let fields = SourceKind::Roster.fields();
    let mut rows = open_export(&case_file("C07", "contracts.csv"))
        .unwrap()
        .rows;
    let layout = try_header(&rows.next().unwrap().unwrap(), &fields).unwrap();
    let d = |y, m, day| Some(NaiveDate::from_ymd_opt(y, m, day).unwrap());
    let mut seen = Vec::new();
    for row in rows {
        let row = row.unwrap();
        let directory = case_directory();
        let mut view = RowView::new(&layout, &row.cells, &directory);
        let start = view.date("contract_start");
        let end_text = view.text("contract_end").unwrap_or_default();
        let end = if end_text == "无固定期限" {
            Ok(None)
        } else {
            view.date("contract_end")
        };
        let hire = view.date("hire_date");
        let rejection = view.finish(None).unwrap_err();
        let codes: Vec<String> = rejection.problems.iter().map(|p| p.code.clone()).collect();
        seen.push((row.row, start, end, hire, codes));
    }
    assert_eq!(
        seen[0],
        (
            2,
            Ok(d(2021, 11, 18)),
            Ok(d(2024, 11, 17)),
            Ok(d(2021, 11, 18)),
            vec![]
        )
    );
    assert_eq!(
        seen[1],
        (
            3,
            Ok(d(2021, 11, 18)),
            Ok(None),
            Ok(d(2021, 11, 18)),
            vec![]
        )
    );
    assert_eq!(
        seen[2],
        (
            4,
            Ok(d(2021, 11, 18)),
            Ok(d(2024, 11, 17)),
            Ok(d(2021, 11, 18)),
            vec![]
        )
    );
    assert_eq!(seen[3].4, vec!["DATE_INCOMPLETE", "DATE_NO_YEAR"]);
    assert_eq!(
        seen[4],
        (
            6,
            Ok(d(2021, 11, 8)),
            Ok(d(2024, 2, 29)),
            Ok(d(2021, 11, 8)),
            vec![]
        )
    );
    assert_eq!(seen[5].4, vec!["DATE_EXCEL_SERIAL_INVALID", "DATE_INVALID"]);
}

// C07: a 1904-system workbook; read as 1900-system the date is 2017-11-17.
#[test]
fn c07_xlsx_in_the_1904_date_system() {
    let mut rows = crate::export::open_export(&case_file("C07", "contracts_1904.xlsx"))
        .unwrap()
        .rows;
    let _header = rows.next().unwrap().unwrap();
    let row = rows.next().unwrap().unwrap();
    assert_eq!(
        row.cells[2],
        crate::export::Cell::Date(Ok(NaiveDate::from_ymd_opt(2021, 11, 18).unwrap()))
    );
}

#[test]
fn open_ended_contract_is_kept_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roster.csv");
    std::fs::write(
        &path,
        "姓名,身份证号,统一社会信用代码,岗位类别,合同终止日期,人员状态\n\
         周雅琴,33010419900708105X,11330681830166130U,技术技能类,无固定期限,在职\n\
         林晓雯,330106198703154214,11330681830166130U,保洁,2026-01-01,在职\n",
    )
    .unwrap();
    let good = entries(&read_all(SourceKind::Roster, &path));
    assert_eq!(good.len(), 2);
    assert!(good[0].1.contract_open_ended);
    assert_eq!(good[0].1.contract_end, None);
    assert_eq!(good[0].1.post_category, PostCategory::TechnicalSkill);
    // An unknown label maps to an explicit unknown, raw label kept.
    assert_eq!(good[1].1.post_category, PostCategory::Unknown);
    assert_eq!(good[1].1.post_category_label, "保洁");
}

// An unknown post category is kept as 未知 with its label and a warning,
// never guessed; a mapping's value map turns the same label into a known
// category, and renamed headers are found through its [columns].
#[test]
fn unknown_post_categories_warn_and_mappings_translate_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("district.csv");
    std::fs::write(
        &path,
        "姓名,证件号,统一社会信用代码,岗位\n\
         林晓雯,330106198703154214,11330681830166130U,辅助岗\n",
    )
    .unwrap();
    let open = |mapping: crate::mapping_file::Mapping| {
        crate::reader::SourceReader::open(SourceKind::Roster, &path, case_directory())
            .unwrap()
            .with_mapping(std::sync::Arc::new(mapping))
            .map(|r| r.unwrap())
            .collect::<Vec<_>>()
    };
    let columns_only = crate::mapping_file::Mapping::from_toml(
        "[columns]\ncitizen_id = \"证件号\"\npost_category = \"岗位\"\n",
        SourceKind::Roster,
    )
    .unwrap();
    let outcomes = open(columns_only);
    let RowOutcome::Fact {
        fact: Fact::RosterEntry(entry),
        warnings,
        ..
    } = &outcomes[1].1
    else {
        panic!("{outcomes:?}")
    };
    assert_eq!(entry.post_category, PostCategory::Unknown);
    assert_eq!(entry.post_category_label, "辅助岗");
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].starts_with("POST_CATEGORY_UNKNOWN"),
        "{warnings:?}"
    );
    assert!(warnings[0].contains("辅助岗"));

    let with_values = crate::mapping_file::Mapping::from_toml(
        "[columns]\ncitizen_id = \"证件号\"\npost_category = \"岗位\"\n\
         [values.post_category]\n\"辅助岗\" = \"普通辅助\"\n",
        SourceKind::Roster,
    )
    .unwrap();
    let outcomes = open(with_values);
    let RowOutcome::Fact {
        fact: Fact::RosterEntry(entry),
        warnings,
        ..
    } = &outcomes[1].1
    else {
        panic!("{outcomes:?}")
    };
    assert_eq!(entry.post_category, PostCategory::GeneralSupport);
    assert_eq!(entry.post_category_label, "辅助岗");
    assert!(warnings.is_empty());
}

// C07 has no 岗位类别 column (nor a unit: a unit's own list, ingested
// with --unit): its rows are kept as 未知 with a warning that says the
// column is missing, not a puzzle about an empty label.
#[test]
fn a_roster_without_a_post_category_column_says_so() {
    let mut directory = (*case_directory()).clone();
    directory.set_export_unit(blockhub_model::CreditCode::parse("11330681830166130U").unwrap());
    let path = case_file("C07", "contracts.csv");
    let outcomes: Vec<_> = crate::reader::SourceReader::open(
        SourceKind::Roster,
        &path,
        std::sync::Arc::new(directory),
    )
    .unwrap()
    .map(|r| r.unwrap())
    .collect();
    let warnings: Vec<&String> = outcomes
        .iter()
        .filter_map(|(_, outcome)| match outcome {
            RowOutcome::Fact { warnings, .. } => Some(warnings),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(warnings.len(), 4, "one per accepted row: {warnings:?}");
    assert!(
        warnings
            .iter()
            .all(|w| w.starts_with("POST_CATEGORY_MISSING") && w.contains("岗位类别")),
        "{warnings:?}"
    );
}
