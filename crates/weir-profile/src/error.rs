//! Errors that name the profile, channel or file concerned.

use std::io;
use std::path::PathBuf;

use weir_query::QueryError;
use weir_store::StoreError;

/// Why a profile operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// A profile or channel name that is empty, too long, or could leave
    /// the profiles directory (`../x`, `a/b`, `.hidden`).
    #[error(
        "invalid {what} name '{name}': use 1-64 characters of A-Z a-z 0-9 _ - . not starting with '.'"
    )]
    BadName {
        /// `profile`, `channel` or `source`.
        what: &'static str,
        /// The name as given.
        name: String,
    },
    /// A definition file that does not parse or holds impossible values.
    #[error("{path}: {message}")]
    Definition {
        /// The TOML file.
        path: PathBuf,
        /// What is wrong, with TOML's line/column where it has one.
        message: String,
    },
    /// A channel filter that does not parse.
    #[error("profile '{profile}', channel '{channel}': filter: {message}")]
    Filter {
        /// The profile.
        profile: String,
        /// The channel.
        channel: String,
        /// The filter error, with a caret under the position.
        message: String,
    },
    /// No such profile.
    #[error("no profile '{0}' (see `weir profile list`)")]
    NotFound(String),
    /// The profile exists already.
    #[error("profile '{0}' exists already (use `weir profile modify` or delete it first)")]
    Exists(String),
    /// No such channel in the profile.
    #[error("profile '{profile}' has no channel '{channel}'")]
    NoChannel {
        /// The profile.
        profile: String,
        /// The channel asked for.
        channel: String,
    },
    /// Another process builds or updates this profile.
    #[error("profile '{profile}' is being built by process {pid} (lock {path})")]
    Locked {
        /// The profile.
        profile: String,
        /// Process holding the lock.
        pid: u32,
        /// The lock file.
        path: PathBuf,
    },
    /// A trend file that is truncated, damaged or of another layout.
    #[error("{path}: trend file {message} (rebuild with `weir profile build --rebuild`)")]
    Trend {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file or directory operation failed.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// A slot file could not be listed, opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The parallel scan could not start.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A bad argument (time, size, limit).
    #[error("{0}")]
    Invalid(String),
}

impl ProfileError {
    #[cold]
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        ProfileError::Io { path: path.into(), op, source }
    }

    #[cold]
    pub(crate) fn def(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ProfileError::Definition { path: path.into(), message: message.into() }
    }
}

/// Result of profile operations.
pub type Result<T, E = ProfileError> = std::result::Result<T, E>;
