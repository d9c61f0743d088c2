//! Helpers for the connector's unit tests: the hard cases shipped in
//! tests/fixtures/cases, read without a broker.

use std::path::PathBuf;

use crate::reader::{RowOutcome, SourceReader};
use crate::sources::SourceKind;

/// A file of one of the hard cases.
pub fn case_file(case: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/cases")
        .join(case)
        .join(file)
}

/// Every row of a file as `source` judges it.
pub fn read_all(source: SourceKind, path: &std::path::Path) -> Vec<(u64, RowOutcome)> {
    SourceReader::open(source, path, case_directory())
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// A unit directory naming the units the hard cases use, so that their
/// rows resolve as they would against a real quota list.
pub fn case_directory() -> std::sync::Arc<crate::directory::UnitDirectory> {
    let mut directory = crate::directory::UnitDirectory::default();
    for (name, code) in [
        ("示例市城市管理局", "11330681830166130U"),
        ("示例市交通运输局", "1133068152601815XX"),
        ("示例市民政局", "113306810913909981"),
    ] {
        directory.insert(name, blockhub_model::CreditCode::parse(code).unwrap());
    }
    std::sync::Arc::new(directory)
}

/// A file of the sample county, which lives beside the repository.
pub fn sample_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples/county-small")
        .join(relative)
}
