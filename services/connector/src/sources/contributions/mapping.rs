//! Header texts of the social-security bureau's contribution records
//! (参保缴费明细).

use crate::layout::FieldSpec;
use crate::sources::{CITIZEN_ID_HEADERS, NAME_HEADERS};

/// The fields of a contribution row.
pub fn fields() -> Vec<FieldSpec> {
    vec![
        FieldSpec::new("citizen_id", true, CITIZEN_ID_HEADERS),
        FieldSpec::new(
            "month",
            true,
            &["缴费年月", "费款所属期", "缴费月份", "所属期"],
        ),
        FieldSpec::new("name", false, NAME_HEADERS),
        FieldSpec::new(
            "unit_code",
            false,
            &[
                "参保单位统一社会信用代码",
                "统一社会信用代码",
                "单位统一社会信用代码",
            ],
        ),
        FieldSpec::new(
            "unit_name",
            false,
            &["参保单位名称", "单位名称", "参保单位"],
        ),
        FieldSpec::new("insurance_type", false, &["险种", "险种类型", "险种名称"]),
        FieldSpec::new("insured_status", false, &["参保状态", "缴费状态"]),
    ]
}
