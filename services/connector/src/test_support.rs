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
    SourceReader::open(source, path)
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// A file of the sample county, which lives beside the repository.
pub fn sample_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples/county-small")
        .join(relative)
}
