//! Header texts of the veterans-affairs bureau's placements (安置名单).

use crate::layout::FieldSpec;
use crate::sources::{CITIZEN_ID_HEADERS, NAME_HEADERS, UNIT_CODE_HEADERS};

/// The fields of a placement row.
pub fn fields() -> Vec<FieldSpec> {
    let mut unit_codes = vec!["安置单位统一社会信用代码", "接收单位统一社会信用代码"];
    unit_codes.extend_from_slice(UNIT_CODE_HEADERS);
    vec![
        FieldSpec::new("citizen_id", true, CITIZEN_ID_HEADERS),
        FieldSpec::new("name", false, NAME_HEADERS),
        FieldSpec::new(
            "placement_type",
            true,
            &["安置方式", "安置类型", "安置形式"],
        ),
        FieldSpec::new("unit_code", false, &unit_codes),
        FieldSpec::new(
            "unit_name",
            false,
            &["安置单位", "安置单位名称", "接收单位", "单位名称"],
        ),
        FieldSpec::new("placed_on", false, &["安置日期", "安置时间", "报到日期"]),
    ]
}
