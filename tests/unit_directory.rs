//! Exports that name units without credit codes: names resolve through the
//! quota list read back from the broker, plus configured aliases; unknown
//! names are rejected with that reason, never guessed.

use blockhub_connector::{SourceKind, UnitDirectory, ingest};
use blockhub_model::CreditCode;
use blockhub_tests::{TestBroker, sample, test_keyer};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unit_names_resolve_through_the_quota_list_and_aliases() {
    let broker = TestBroker::start().await;
    let settings = broker.settings();
    let none = UnitDirectory::default();
    ingest(
        SourceKind::Quota,
        &[sample("staffing/quota.csv")],
        &settings,
        test_keyer(),
        &none.clone().into(),
    )
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let roster = dir.path().join("roster.csv");
    std::fs::write(
        &roster,
        "姓名,身份证号,工作单位,人员状态\n\
         林晓雯,330106198703154214,诸暨市教育体育局,在职\n\
         周雅琴,33010419900708105X,诸暨市教体局,在职\n\
         何思远,330106200002291689,不存在的单位,在职\n",
    )
    .unwrap();

    let report = ingest(
        SourceKind::Roster,
        std::slice::from_ref(&roster),
        &settings,
        test_keyer(),
        &none.clone().into(),
    )
    .await
    .unwrap();
    let file = &report.files[0];
    assert_eq!((file.published, file.rejected), (1, 2));
    assert_eq!(file.rejected_by_reason.get("UNIT_UNKNOWN"), Some(&2));
    assert!(
        file.rejected_sample[0]
            .reason
            .contains("诸暨市教体局 is not in the unit directory")
    );

    // The department's short name, configured as an alias, resolves too.
    let mut aliases = UnitDirectory::default();
    aliases.insert(
        "诸暨市教体局",
        CreditCode::parse("11330681830166130U").unwrap(),
    );
    let report = ingest(
        SourceKind::Roster,
        &[roster],
        &settings,
        test_keyer(),
        &aliases.into(),
    )
    .await
    .unwrap();
    // 林晓雯 was published by the first run and has not changed: only the
    // row the alias now resolves is new.
    let file = &report.files[0];
    assert_eq!((file.published, file.rejected), (1, 1));
    assert_eq!((file.inserted, file.unchanged), (1, 1));
}
