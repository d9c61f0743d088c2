//! Header texts of the staffing office's quota list (编外用工控制数).

use crate::layout::FieldSpec;
use crate::sources::UNIT_CODE_HEADERS;

/// The fields of a quota row.
pub fn fields() -> Vec<FieldSpec> {
    vec![
        FieldSpec::new("unit_code", true, UNIT_CODE_HEADERS),
        FieldSpec::new(
            "quota",
            true,
            &["编外用工控制数", "控制数", "编外控制数", "核定控制数"],
        ),
        FieldSpec::new(
            "unit_name",
            false,
            &["单位名称", "单位", "工作单位", "用人单位"],
        ),
        FieldSpec::new("unit_type", false, &["单位类别", "单位类型", "单位性质"]),
        FieldSpec::new("approved_on", false, &["核定日期", "批准日期", "核定时间"]),
    ]
}
