//! Header texts of the real-name roster (实名制花名册).

use crate::layout::FieldSpec;
use crate::sources::{CITIZEN_ID_HEADERS, NAME_HEADERS, UNIT_CODE_HEADERS};

/// The fields of a roster row.
pub fn fields() -> Vec<FieldSpec> {
    vec![
        FieldSpec::new("citizen_id", true, CITIZEN_ID_HEADERS),
        FieldSpec::new("name", true, NAME_HEADERS),
        FieldSpec::new("unit_code", false, UNIT_CODE_HEADERS),
        FieldSpec::new(
            "unit_name",
            false,
            &[
                "单位名称",
                "工作单位",
                "用人单位",
                "参保单位名称",
                "所在单位",
            ],
        ),
        FieldSpec::new("post_category", false, &["岗位类别", "岗位类型"]),
        FieldSpec::new("employment_form", false, &["用工形式", "用工方式"]),
        FieldSpec::new("hire_date", false, &["入职日期", "入职时间", "聘用日期"]),
        FieldSpec::new(
            "contract_start",
            false,
            &[
                "合同起始日期",
                "合同起始",
                "合同开始日期",
                "合同期限.起始",
                "合同期限.开始",
            ],
        ),
        FieldSpec::new(
            "contract_end",
            false,
            &[
                "合同终止日期",
                "合同终止",
                "合同结束日期",
                "合同到期日期",
                "合同期限.终止",
                "合同期限.结束",
            ],
        ),
        FieldSpec::new("status", false, &["人员状态", "在职状态", "状态"]),
        FieldSpec::new("left_on", false, &["减少日期", "离职日期"]),
        FieldSpec::new("post_name", false, &["岗位名称", "具体岗位"]),
    ]
}
