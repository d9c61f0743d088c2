//! Folding of identifier text as departments export it.
//!
//! Exports carry the same identifier with full-width digits, spaces of every
//! kind and invisible characters pasted in from word processors. Folding is
//! the one place where those variants become the same text, so that every
//! identifier type applies exactly the same rules before its own checks.

use unicode_normalization::UnicodeNormalization;

/// Characters that render as nothing but survive copy and paste.
const INVISIBLE: [char; 6] = [
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}',
];

/// Folds identifier text: Unicode compatibility folding (full-width digits
/// and letters become ASCII), then every white space and invisible character
/// removed, then upper case.
pub fn fold_identifier(raw: &str) -> String {
    raw.nfkc()
        .filter(|c| !c.is_whitespace() && !INVISIBLE.contains(c))
        .flat_map(char::to_uppercase)
        .collect()
}

/// Folds free text such as a name or a label: compatibility folding of
/// full-width ASCII and trimming of white space at both ends. Inner spaces
/// and characters such as the middle dot in 阿依古丽·买买提 are kept.
pub fn fold_text(raw: &str) -> String {
    let trimmed = raw.trim_matches(|c: char| c.is_whitespace() || INVISIBLE.contains(&c));
    trimmed
        .chars()
        .map(|c| match c {
            // Full-width ASCII (U+FF01..U+FF5E) maps to ASCII; NFKC would also
            // rewrite CJK compatibility ideographs, which must stay as typed.
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_fullwidth_and_invisible_characters() {
        assert_eq!(fold_identifier("３３０１ ０６\u{00A0}x\u{200B}"), "330106X");
        assert_eq!(fold_identifier("\u{3000}abc\u{FEFF}"), "ABC");
    }

    #[test]
    fn text_keeps_middle_dot_and_astral_characters() {
        assert_eq!(fold_text(" 阿依古丽·买买提\u{3000}"), "阿依古丽·买买提");
        assert_eq!(fold_text("𠮷丽华"), "𠮷丽华");
        assert_eq!(fold_text("ＡＢ１"), "AB1");
    }
}
