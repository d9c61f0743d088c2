//! Header texts of the court's enforcement cases (执行案件).

use crate::layout::FieldSpec;
use crate::sources::CITIZEN_ID_HEADERS;

/// The fields of an enforcement-case row.
pub fn fields() -> Vec<FieldSpec> {
    let mut ids = vec!["被执行人证件号码", "被执行人身份证号", "被执行人身份证号码"];
    ids.extend_from_slice(CITIZEN_ID_HEADERS);
    vec![
        FieldSpec::new("case_number", true, &["案号", "执行案号", "案件编号"]),
        FieldSpec::new("citizen_id", true, &ids),
        FieldSpec::new("name", false, &["被执行人姓名", "被执行人", "姓名"]),
        FieldSpec::new(
            "amount",
            true,
            &["执行标的金额", "执行标的", "标的金额", "申请执行标的"],
        ),
        FieldSpec::new("filed_on", false, &["立案日期", "立案时间"]),
        FieldSpec::new("case_status", false, &["案件状态", "执行状态", "结案方式"]),
    ]
}
