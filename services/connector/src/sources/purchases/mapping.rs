//! Header texts of the finance bureau's purchased services (政府购买服务).

use crate::layout::FieldSpec;
use crate::sources::UNIT_CODE_HEADERS;

/// The fields of a purchased-service row.
pub fn fields() -> Vec<FieldSpec> {
    let mut unit_codes = vec!["购买主体统一社会信用代码", "购买单位统一社会信用代码"];
    unit_codes.extend_from_slice(UNIT_CODE_HEADERS);
    vec![
        FieldSpec::new(
            "project_name",
            true,
            &["项目名称", "服务项目", "购买服务项目"],
        ),
        FieldSpec::new("unit_code", false, &unit_codes),
        FieldSpec::new(
            "unit_name",
            false,
            &["购买主体", "购买单位", "购买主体名称", "单位名称"],
        ),
        FieldSpec::new("provider", false, &["承接主体", "承接单位", "服务供应商"]),
        FieldSpec::new("staff_count", true, &["服务人数", "派驻人数", "人数"]),
        FieldSpec::new("contract_amount", false, &["合同金额", "购买金额", "金额"]),
        FieldSpec::new("period", false, &["服务期限", "合同期限"]),
        FieldSpec::new(
            "period_start",
            false,
            &["服务期限.起始", "服务起始日期", "开始日期"],
        ),
        FieldSpec::new(
            "period_end",
            false,
            &["服务期限.终止", "服务终止日期", "结束日期"],
        ),
    ]
}
