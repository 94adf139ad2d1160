//! Errors of the query engine.

use std::io;
use std::path::PathBuf;

use weir_store::StoreError;

/// Why a query could not be planned or answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A slot file could not be listed, opened or read (names file and offset).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file or directory problem outside the store (names the path).
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Writing to the result sink failed.
    #[error("output: {0}")]
    Sink(io::Error),
    /// A bad time window (`-t`): names the offending part.
    #[error("time window: {0}")]
    TimeWindow(String),
    /// A bad input selection (`-r`, `-R`, `-M`).
    #[error("input: {0}")]
    Input(String),
    /// An unknown name (aggregation key, statistic element, order); the
    /// message lists the valid names.
    #[error("{0}")]
    Unknown(String),
    /// Something nfdump offers but weir does not store or compute.
    #[error("{0}: not supported (weir does not store this data)")]
    NotSupported(String),
    /// A plan that cannot be executed (e.g. a bad combination of options).
    #[error("{0}")]
    Plan(String),
    /// A temporary spill file could not be written or read back.
    #[error("spill file: {0}")]
    Spill(io::Error),
    /// The worker thread pool could not be built.
    #[error("thread pool: {0}")]
    Threads(String),
}
