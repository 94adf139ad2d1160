//! Parse errors with a caret under the offending position.

/// Why a filter did not parse.
///
/// `Display` prints `line L, column C: message`; [`FilterError::pretty`]
/// repeats the offending line of the filter with a caret under the column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct FilterError {
    /// 1-based line of the offending position.
    pub line: usize,
    /// 1-based column (in characters) of the offending position.
    pub column: usize,
    /// What went wrong and, for syntax errors, what was expected.
    pub message: String,
    /// The message, the filter line and a caret under the position.
    pub pretty: String,
}

impl FilterError {
    /// An error at byte offset `pos` of `text`.
    pub(crate) fn at(text: &str, pos: usize, message: String) -> FilterError {
        let mut pos = pos.min(text.len());
        while !text.is_char_boundary(pos) {
            pos -= 1;
        }
        let before = &text[..pos];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = text[line_start..pos].chars().count() + 1;
        let line_text = text[line_start..].split('\n').next().unwrap_or("").trim_end_matches('\r');
        let pretty = format!(
            "filter error: {message}\n  {line_text}\n  {caret:>width$}",
            caret = "^",
            width = column
        );
        FilterError { line, column, message, pretty }
    }
}
