//! Errors located in their file: every one names file:line:column.

use std::fmt;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ConfigError {
    /// An error at a byte offset of `text`, read from `file`.
    pub fn at(text: &str, file: &str, offset: usize, message: String) -> ConfigError {
        let (line, column) = line_col(text, offset);
        ConfigError {
            file: file.to_string(),
            line,
            column,
            message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Errors as lines, for a message that carries them all.
pub fn error_lines(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Read a file for parsing; an unreadable file is an error at 1:1.
pub fn read_located(path: &Path) -> Result<(String, String), Vec<ConfigError>> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((text, name)),
        Err(e) => Err(vec![ConfigError {
            file: name,
            line: 1,
            column: 1,
            message: format!("cannot read: {e}"),
        }]),
    }
}

/// Deserialize TOML, locating an error at its file:line:column; every
/// syntax error of the file, not only the first.
pub fn from_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
) -> Result<T, Vec<ConfigError>> {
    let syntax = syntax_errors(text, file);
    if !syntax.is_empty() {
        return Err(syntax);
    }
    toml::from_str(text).map_err(|e| vec![located(text, file, &e)])
}

/// Tables and keys that were renamed, and what to write instead.
const RENAMED: [(&str, &str); 1] = [(
    "unknown field `metrics`",
    "[metrics] is [http] now: `listen` is kept, and the listener also serves the health \
     endpoints (docs/operations.md, \"HTTP endpoints\")",
)];

fn located(text: &str, file: &str, e: &toml::de::Error) -> ConfigError {
    let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
    let mut message = e.message().trim().to_string();
    if let Some((_, hint)) = RENAMED.iter().find(|(m, _)| message.starts_with(m)) {
        message = format!("{message}\n{hint}");
    }
    ConfigError {
        file: file.to_string(),
        line,
        column,
        message,
    }
}

/// The TOML parser stops at the first syntax error: the line it is on is
/// blanked (the line numbers stay) and the rest parsed again, up to
/// [`MAX_SYNTAX_ERRORS`] times.
fn syntax_errors(text: &str, file: &str) -> Vec<ConfigError> {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(String::from).collect();
    let mut out = Vec::new();
    while out.len() < MAX_SYNTAX_ERRORS {
        let current = lines.concat();
        let Err(e) = toml::from_str::<toml::Table>(&current) else {
            break;
        };
        let error = located(&current, file, &e);
        let Some(line) = lines
            .get_mut(error.line - 1)
            .filter(|l| !l.trim().is_empty())
        else {
            out.push(error);
            break;
        };
        *line = if line.ends_with('\n') { "\n" } else { "" }.to_string();
        out.push(error);
    }
    out
}

const MAX_SYNTAX_ERRORS: usize = 20;

/// Byte offset of `key` in `[table]` (or `[[table]]`), for errors found
/// after parsing; the table header, or the start, when not written.
pub fn key_offset(text: &str, table: &str, key: &str) -> usize {
    let mut offset = 0;
    let mut current = String::new();
    let mut header = None;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            if current == table && header.is_none() {
                header = Some(offset);
            }
        } else if current == table {
            if let Some(rest) = t.strip_prefix(key) {
                if rest.trim_start().starts_with('=') {
                    return offset + (line.len() - line.trim_start().len());
                }
            }
        }
        offset += line.len();
    }
    header.unwrap_or(0)
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}
