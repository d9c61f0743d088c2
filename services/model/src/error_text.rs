//! One line of text for an error and its causes, for dead letters and
//! reports that outlive the process that raised them.

/// An error and its causes in one line, each cause once: libraries often
/// repeat their cause in their own message.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner;

    #[test]
    fn causes_already_in_the_text_are_not_repeated() {
        assert_eq!(error_chain(&Outer(Inner)), "outer: inner");
    }
}
