//! Header texts of the finance bureau's monthly payroll (工资发放).

use crate::layout::FieldSpec;
use crate::sources::{CITIZEN_ID_HEADERS, NAME_HEADERS, UNIT_CODE_HEADERS};

/// The fields of a payroll row.
pub fn fields() -> Vec<FieldSpec> {
    vec![
        FieldSpec::new("citizen_id", true, CITIZEN_ID_HEADERS),
        FieldSpec::new(
            "month",
            true,
            &["发放年月", "发放月份", "工资月份", "所属期", "工资所属期"],
        ),
        FieldSpec::new(
            "net",
            false,
            &["实发工资", "实发金额", "实发合计", "实发数"],
        ),
        FieldSpec::new(
            "gross",
            true,
            &["应发工资", "应发金额", "应发合计", "应发数"],
        ),
        FieldSpec::new("name", false, NAME_HEADERS),
        FieldSpec::new("unit_code", false, UNIT_CODE_HEADERS),
        FieldSpec::new(
            "unit_name",
            false,
            &["单位名称", "工作单位", "发放单位", "用人单位"],
        ),
        FieldSpec::new("fund_source", false, &["资金来源", "经费来源"]),
    ]
}
