//! Schema evolution rules, checked by the tests on every schema in
//! schemas/.
//!
//! Each version of an event schema must read the data of the version
//! before it and be readable by that version's readers (Avro resolution in
//! both directions), so that connectors and mergers of different releases
//! can run side by side. A nullable field's default must match the union's
//! first branch, which is what Avro requires of a default and what some
//! libraries fail to check.

use apache_avro::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;

/// What is wrong with one schema or one step between versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompatProblem {
    /// Which schema or which step.
    pub subject: String,
    /// The rule broken.
    pub reason: String,
}

/// Checks a schema on its own: it parses, and every union default matches
/// the union's first branch.
pub fn check_schema(name: &str, text: &str) -> Vec<CompatProblem> {
    let problem = |reason: String| CompatProblem {
        subject: name.to_string(),
        reason,
    };
    if let Err(error) = Schema::parse_str(text) {
        return vec![problem(format!("does not parse: {error}"))];
    }
    let json: serde_json::Value = match serde_json::from_str(text) {
        Ok(json) => json,
        Err(error) => return vec![problem(format!("is not JSON: {error}"))],
    };
    let mut problems = Vec::new();
    union_defaults(&json, "", &mut |path, reason| {
        problems.push(problem(format!("{path}: {reason}")))
    });
    problems
}

fn union_defaults(node: &serde_json::Value, path: &str, report: &mut dyn FnMut(&str, String)) {
    let Some(fields) = node.get("fields").and_then(|f| f.as_array()) else {
        return;
    };
    for field in fields {
        let name = field.get("name").and_then(|n| n.as_str()).unwrap_or("?");
        let here = if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        };
        let field_type = field.get("type").unwrap_or(&serde_json::Value::Null);
        if let (Some(branches), Some(default)) = (field_type.as_array(), field.get("default")) {
            let first_is_null = branches.first().and_then(|b| b.as_str()) == Some("null");
            if default.is_null() != first_is_null {
                report(
                    &here,
                    "a union's default must match its first branch".into(),
                );
            }
        }
        union_defaults(field_type, &here, report);
        if let Some(branches) = field_type.as_array() {
            for branch in branches {
                union_defaults(branch, &here, report);
            }
        }
    }
}

/// Checks one step between versions: each reads the other's data.
pub fn check_step(name: &str, older: &str, newer: &str) -> Vec<CompatProblem> {
    let subject = name.to_string();
    // apache-avro 0.21's checker calls any decimal against a decimal
    // "inconclusive", identical ones included. Decimals are checked here
    // instead (same precision and scale wherever both versions have the
    // field) and the rest by the checker with decimals as their bytes.
    let (mut older_decimals, mut newer_decimals) = (Vec::new(), Vec::new());
    let (older, newer) = match (
        without_decimals(older, &mut older_decimals),
        without_decimals(newer, &mut newer_decimals),
    ) {
        (Some(older), Some(newer)) => (older, newer),
        _ => {
            return vec![CompatProblem {
                subject,
                reason: "a version is not JSON".into(),
            }];
        }
    };
    let mut problems = Vec::new();
    for (path, older_decimal) in &older_decimals {
        let newer_decimal = newer_decimals.iter().find(|(p, _)| p == path);
        if let Some((_, newer_decimal)) = newer_decimal
            && newer_decimal != older_decimal
        {
            problems.push(CompatProblem {
                subject: subject.clone(),
                reason: format!(
                    "{path}: decimal {older_decimal} became {newer_decimal}; a reader would \
                     misread the amounts"
                ),
            });
        }
    }
    let (older, newer) = match (Schema::parse_str(&older), Schema::parse_str(&newer)) {
        (Ok(older), Ok(newer)) => (older, newer),
        _ => {
            return vec![CompatProblem {
                subject,
                reason: "a version does not parse".into(),
            }];
        }
    };
    if let Err(error) = SchemaCompatibility::can_read(&older, &newer) {
        let reason = format!("the new version cannot read old data: {error}");
        problems.push(CompatProblem {
            subject: subject.clone(),
            reason,
        });
    }
    if let Err(error) = SchemaCompatibility::can_read(&newer, &older) {
        let reason = format!("old readers cannot read new data: {error}");
        problems.push(CompatProblem { subject, reason });
    }
    problems
}

/// The schema text with each decimal replaced by its underlying bytes;
/// each decimal's field path and "(precision, scale)" go to `decimals`.
fn without_decimals(text: &str, decimals: &mut Vec<(String, String)>) -> Option<String> {
    fn walk(node: &mut serde_json::Value, path: &str, decimals: &mut Vec<(String, String)>) {
        match node {
            serde_json::Value::Object(map) => {
                if map.get("logicalType").and_then(|l| l.as_str()) == Some("decimal") {
                    let part =
                        |key: &str| map.get(key).map(ToString::to_string).unwrap_or_default();
                    let shape = format!("({}, {})", part("precision"), part("scale"));
                    decimals.push((path.to_string(), shape));
                    let underlying = map.get("type").cloned().unwrap_or_default();
                    *node = underlying;
                    return;
                }
                let here = match map.get("name").and_then(|n| n.as_str()) {
                    Some(name) if map.contains_key("type") => format!("{path}.{name}"),
                    _ => path.to_string(),
                };
                for value in map.values_mut() {
                    walk(value, &here, decimals);
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    walk(item, path, decimals);
                }
            }
            _ => {}
        }
    }
    let mut json: serde_json::Value = serde_json::from_str(text).ok()?;
    walk(&mut json, "", decimals);
    Some(json.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::SCHEMA_FILES;

    #[test]
    fn every_shipped_schema_and_every_step_between_versions_is_compatible() {
        let mut problems = Vec::new();
        for (kind, version, text) in SCHEMA_FILES {
            problems.extend(check_schema(&format!("{kind:?} v{version}"), text));
            let previous = SCHEMA_FILES
                .iter()
                .filter(|(k, v, _)| k == kind && v < version)
                .max_by_key(|(_, v, _)| *v);
            if let Some((_, older_version, older)) = previous {
                let name = format!("{kind:?} v{older_version} -> v{version}");
                problems.extend(check_step(&name, older, text));
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn every_schema_file_is_compiled_in_and_so_checked() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        let mut unlisted = Vec::new();
        let mut count = 0;
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "avsc") {
                count += 1;
                let text = std::fs::read_to_string(&path).unwrap();
                if !SCHEMA_FILES.iter().any(|(_, _, known)| *known == text) {
                    unlisted.push(path.display().to_string());
                }
            }
        }
        assert!(unlisted.is_empty(), "not in SCHEMA_FILES: {unlisted:?}");
        assert_eq!(count, SCHEMA_FILES.len());
    }

    const V1: &str = r#"{"type":"record","name":"R","fields":[
        {"name":"a","type":"string"},
        {"name":"kind","type":{"type":"enum","name":"K","symbols":["X","Y"]}}]}"#;

    #[test]
    fn a_field_added_without_default_is_a_breaking_change() {
        let v2 = r#"{"type":"record","name":"R","fields":[
            {"name":"a","type":"string"},
            {"name":"kind","type":{"type":"enum","name":"K","symbols":["X","Y"]}},
            {"name":"b","type":"string"}]}"#;
        assert!(!check_step("R", V1, v2).is_empty());
        let v2_ok = v2.replace(
            r#""type":"string"}]}"#,
            r#""type":"string","default":""}]}"#,
        );
        assert_eq!(check_step("R", V1, &v2_ok), vec![]);
    }

    #[test]
    fn an_enum_symbol_removed_without_default_is_a_breaking_change() {
        let v2 = V1.replace(r#"["X","Y"]"#, r#"["X"]"#);
        assert!(!check_step("R", V1, &v2).is_empty());
    }

    #[test]
    fn decimals_must_keep_their_precision_and_scale() {
        let money = |scale: u32| {
            format!(
                r#"{{"type":"record","name":"R","fields":[{{"name":"amount","type":["null",
                {{"type":"bytes","logicalType":"decimal","precision":14,"scale":{scale}}}],
                "default":null}}]}}"#
            )
        };
        assert_eq!(check_step("R", &money(2), &money(2)), vec![]);
        let problems = check_step("R", &money(2), &money(3));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].reason.contains(".amount"), "{problems:?}");
        // Still a breaking change when the decimal's underlying type goes.
        let text = money(2).replace(r#""type":"bytes","#, r#""type":"fixed","size":8,"#);
        assert!(!check_step("R", &money(2), &text).is_empty());
    }

    #[test]
    fn a_union_default_that_is_not_its_first_branch_is_refused() {
        let bad = r#"{"type":"record","name":"R","fields":[
            {"name":"d","type":["int","null"],"default":null}]}"#;
        let problems = check_schema("R", bad);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].reason.contains("first branch"));
    }
}
