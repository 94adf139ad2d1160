//! Decode errors: what was expected, where, and from whom.

use std::fmt;
use std::net::SocketAddr;

/// What went wrong in a datagram, without the location.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Fewer bytes than a structure needs.
    Truncated {
        /// What was being read (e.g. "v9 flowset header").
        what: &'static str,
        /// Bytes it needs.
        need: usize,
        /// Bytes that were left.
        have: usize,
    },
    /// A version this decoder does not speak.
    UnsupportedVersion(u32),
    /// A length field that cannot be right.
    BadLength {
        /// Which structure.
        what: &'static str,
        /// The length found.
        length: usize,
    },
    /// A template that cannot be used (zero fields, impossible sizes, ...).
    BadTemplate(String),
    /// A data set whose template has not been seen (counted separately).
    UnknownTemplate {
        /// The template / set id.
        template_id: u16,
    },
    /// The template cache of this exporter is full.
    TemplateLimit,
    /// Any other impossible value.
    Invalid(String),
}

impl ErrorKind {
    /// A short stable name for counters (`truncated`, `bad_length`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            ErrorKind::Truncated { .. } => "truncated",
            ErrorKind::UnsupportedVersion(_) => "unsupported_version",
            ErrorKind::BadLength { .. } => "bad_length",
            ErrorKind::BadTemplate(_) => "bad_template",
            ErrorKind::UnknownTemplate { .. } => "unknown_template",
            ErrorKind::TemplateLimit => "template_limit",
            ErrorKind::Invalid(_) => "invalid",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Truncated { what, need, have } => {
                write!(f, "{what}: needs {need} bytes, {have} left")
            }
            ErrorKind::UnsupportedVersion(v) => write!(f, "unsupported export version {v}"),
            ErrorKind::BadLength { what, length } => {
                write!(f, "{what}: impossible length {length}")
            }
            ErrorKind::BadTemplate(m) => write!(f, "bad template: {m}"),
            ErrorKind::UnknownTemplate { template_id } => {
                write!(f, "data set for unknown template {template_id}")
            }
            ErrorKind::TemplateLimit => write!(f, "template cache of this exporter is full"),
            ErrorKind::Invalid(m) => f.write_str(m),
        }
    }
}

/// A decode error: exporter, byte offset in the datagram, and the kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Who sent the datagram.
    pub exporter: SocketAddr,
    /// Byte offset in the UDP payload where the problem starts.
    pub offset: usize,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl DecodeError {
    /// An error at `offset` of a datagram from `exporter`.
    #[cold]
    pub fn new(exporter: SocketAddr, offset: usize, kind: ErrorKind) -> DecodeError {
        DecodeError { exporter, offset, kind }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exporter {}: offset {}: {}", self.exporter, self.offset, self.kind)
    }
}

impl std::error::Error for DecodeError {}
