use super::*;

fn default_policy() -> Policy {
    Policy::parse(DEFAULT_POLICY).unwrap()
}

#[test]
fn the_shipped_policy_parses_and_names_the_departments() {
    let policy = default_policy();
    let names: Vec<_> = policy
        .departments()
        .map(|(name, _)| name.as_str())
        .collect();
    for name in [
        "court",
        "finance",
        "operator",
        "social_security",
        "staffing",
        "veterans",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
}

#[test]
fn the_court_needs_a_purpose_and_a_case_and_sees_employer_and_pay_only() {
    let policy = default_policy();
    let lookup = "PersonLookup.Lookup";
    let grant = policy
        .authorize("court", lookup, "enforcement", "(2025)浙0681执1234号")
        .unwrap();
    assert_eq!(grant.fields.describe(), "employer,latest_payment");
    assert_eq!(grant.case_number.as_deref(), Some("（2025）浙0681执1234号"));
    assert_eq!(grant.show_id("330681199001011234"), "");

    let denied = policy
        .authorize("court", lookup, "enforcement", "")
        .unwrap_err();
    assert!(matches!(denied, Denial::Forbidden(_)), "{denied:?}");
    assert!(denied.reason().contains("requires a case number"));
    let invalid = policy
        .authorize("court", lookup, "enforcement", "2025浙0681执1234号")
        .unwrap_err();
    assert!(matches!(invalid, Denial::Invalid(_)), "{invalid:?}");
    let no_purpose = policy.authorize("court", lookup, "", "").unwrap_err();
    assert!(
        no_purpose.reason().contains("must name a purpose"),
        "{no_purpose:?}"
    );
    let other = policy
        .authorize("court", lookup, "curiosity", "")
        .unwrap_err();
    assert!(other.reason().contains("not granted"), "{other:?}");
    let method = policy
        .authorize(
            "court",
            "Staff.History",
            "enforcement",
            "（2025）浙0681执1号",
        )
        .unwrap_err();
    assert!(
        method.reason().contains("Staff.History is not granted"),
        "{method:?}"
    );
}

#[test]
fn unknown_departments_are_denied_without_detail() {
    let denied = default_policy()
        .authorize("tax", "PersonLookup.Lookup", "", "")
        .unwrap_err();
    assert_eq!(
        denied,
        Denial::Forbidden("department tax has no access to the gateway".into())
    );
}

#[test]
fn counts_need_no_personal_field_but_person_methods_do() {
    let text = r#"
[departments.stats]
methods = ["Staff.CountByPost", "Staff.List"]
"#;
    let policy = Policy::parse(text).unwrap();
    assert!(
        policy
            .authorize("stats", "Staff.CountByPost", "", "")
            .is_ok()
    );
    assert!(policy.authorize("stats", "Staff.List", "", "").is_err());
}

#[test]
fn masking_and_row_scope() {
    let text = r#"
[fields]
employer = "unconditional"

[departments.partner]
methods = ["PersonLookup.Lookup"]
fields = ["employer"]
units = ["11330681MB0000001X"]
[departments.partner.purposes.check]
fields = ["citizen_id:masked", "name:masked", "employer", "name"]
"#;
    let policy = Policy::parse(text).unwrap();
    let plain = policy
        .authorize("partner", "PersonLookup.Lookup", "", "")
        .unwrap();
    assert_eq!(plain.fields.describe(), "employer");
    let grant = policy
        .authorize("partner", "PersonLookup.Lookup", "check", "")
        .unwrap();
    // name granted twice: masked wins.
    assert_eq!(
        grant.fields.describe(),
        "citizen_id:masked,name:masked,employer"
    );
    assert_eq!(grant.show_id("330681199001011234"), "330681********1234");
    assert_eq!(grant.show_name("林小雯"), "林*雯");
    assert!(grant.sees_unit("11330681MB0000001X"));
    assert!(!grant.sees_unit("11330681MB0000002X"));
}

#[test]
fn names_mask_keeping_first_and_last() {
    assert_eq!(mask_name("林雯"), "林*");
    assert_eq!(mask_name("欧阳小雯"), "欧**雯");
    assert_eq!(mask_name("林"), "*");
    assert_eq!(mask_name(""), "");
}

#[test]
fn broken_files_name_the_line_and_the_reason() {
    let cases = [
        (
            "[departments.a]\nmethods = [\"Nope.Call\"]\n",
            2,
            "unknown method",
        ),
        (
            "[departments.a]\nmethods = []\nfields = [\"name\"]\n",
            3,
            "conditional",
        ),
        (
            "[fields]\nname = \"not_shared\"\n[departments.a]\n[departments.a.purposes.p]\n\
             fields = [\"employer\", \"name\"]\n",
            5,
            "not shared",
        ),
        (
            "[departments.a.purposes.p]\nfields = [\"employer:masked\"]\n",
            2,
            "cannot be masked",
        ),
        ("[departments.a]\nrate_per_second = 0\n", 2, "at least 1"),
        ("[departments.a]\nmethod = []\n", 2, "unknown field"),
        ("[fields]\nsalary = \"conditional\"\n", 2, "unknown field"),
        ("[departments.a\n", 1, ""),
        ("# everything commented out\n", 1, "names no department"),
        (
            "[departments.a]\nunits = [\"11330681777412151D\", \"nope\"]\n",
            2,
            "units",
        ),
    ];
    for (text, line, words) in cases {
        let (got_line, reason) = Policy::parse(text).unwrap_err();
        assert_eq!(got_line, line, "{text}: {reason}");
        assert!(reason.contains(words), "{text}: {reason}");
    }
}
