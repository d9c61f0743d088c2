//! Court case numbers, （2025）浙0681执1234号.

/// A case number in the court's form, （2025）浙0681执1234号, with
/// full-width brackets whatever brackets the export used: folding turns
/// them half-width, and the court's own systems write them full-width.
pub fn canonical_case_number(text: &str) -> Result<String, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let canonical = compact
        .replace(['(', '〔', '['], "（")
        .replace([')', '〕', ']'], "）");
    let shape = || -> Option<()> {
        let rest = canonical.strip_prefix('（')?;
        let (year, rest) = rest.split_once('）')?;
        let year_ok = year.len() == 4 && year.chars().all(|c| c.is_ascii_digit());
        let body = rest.strip_suffix('号')?;
        let (court, number) = body.split_once('执')?;
        let number = number.trim_start_matches(|c: char| !c.is_ascii_digit());
        let number_ok = !number.is_empty() && number.chars().all(|c| c.is_ascii_digit());
        (year_ok && !court.is_empty() && number_ok).then_some(())
    };
    match shape() {
        Some(()) => Ok(canonical),
        None => Err(format!(
            "{text} is not a case number of the form （2025）浙0681执1234号"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_become_full_width_and_shapes_are_checked() {
        assert_eq!(
            canonical_case_number("(2025)浙0681执1234号").unwrap(),
            "（2025）浙0681执1234号"
        );
        for bad in [
            "",
            "2025浙0681执1234号",
            "（2025）浙0681执号",
            "（25）浙0681执1号",
        ] {
            assert!(canonical_case_number(bad).is_err(), "{bad}");
        }
    }
}
