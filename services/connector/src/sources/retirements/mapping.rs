//! Header texts of the social-security bureau's pension starts
//! (养老待遇享受人员).

use crate::layout::FieldSpec;
use crate::sources::{CITIZEN_ID_HEADERS, NAME_HEADERS};

/// The fields of a pension-start row.
pub fn fields() -> Vec<FieldSpec> {
    vec![
        FieldSpec::new("citizen_id", true, CITIZEN_ID_HEADERS),
        FieldSpec::new(
            "starts_on",
            true,
            &[
                "待遇享受开始日期",
                "待遇开始日期",
                "享受待遇开始日期",
                "退休日期",
                "领取开始日期",
            ],
        ),
        FieldSpec::new("name", false, NAME_HEADERS),
        FieldSpec::new(
            "benefit_type",
            false,
            &["待遇类型", "待遇种类", "养老金类型"],
        ),
    ]
}
