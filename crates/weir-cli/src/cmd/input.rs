//! What `weir query` and `weir replay` share: nfdump's input selection
//! (`-r`, `-R`, `-M`), time window (`-t`), filter file (`-f`) and `--utc`,
//! and reading the filter.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use weir_filter::Filter;
use weir_query::{InputSpec, TimeWindow};

/// nfdump's exit code for a filter syntax error.
pub const EXIT_FILTER: u8 = 254;

/// nfdump's input flags.
#[derive(Debug, Clone, Default, Args)]
pub struct InputArgs {
    /// Read one slot file, or every slot file under a directory
    /// (recursively). With -M: a file name relative to each directory.
    #[arg(short = 'r', value_name = "FILE|DIR")]
    pub read: Option<String>,
    /// Read a range of files: DIR, DIR/FILE (that file and all after it)
    /// or DIR/FILE1:FILE2 (inclusive; FILE2 relative to DIR, may include
    /// the date sub-directories).
    #[arg(short = 'R', value_name = "DIR[/FILE1[:FILE2]]")]
    pub range: Option<String>,
    /// Several sources: /base/dir1:dir2:… (with -r or -R relative to each).
    #[arg(short = 'M', value_name = "DIR1:DIR2:…")]
    pub multi: Option<String>,
    /// Time window: yyyy/MM/dd.hh:mm:ss[-yyyy/MM/dd.hh:mm:ss] (trailing
    /// parts may be omitted) or ISO 8601 START/END; local time unless the
    /// ISO form gives an offset. Flows with first >= start and last <= end.
    #[arg(short = 't', value_name = "WINDOW")]
    pub window: Option<String>,
    /// Read the filter from this file (a filter on the command line wins).
    #[arg(short = 'f', value_name = "FILE")]
    pub filter_file: Option<PathBuf>,
    /// Print and read times in UTC instead of the local time zone (TZ).
    #[arg(long)]
    pub utc: bool,
}

impl InputArgs {
    /// The file selection (`-r`, `-R`, `-M`).
    pub fn spec(&self) -> anyhow::Result<InputSpec> {
        if self.read.is_some() && self.range.is_some() {
            bail!("-r and -R exclude each other");
        }
        if self.read.is_none() && self.range.is_none() && self.multi.is_none() {
            bail!("no input: give -r FILE|DIR, -R DIR[/FILE1[:FILE2]] or -M DIR1:DIR2");
        }
        Ok(InputSpec {
            read: self.read.clone(),
            range: self.range.clone(),
            multi: self.multi.clone(),
        })
    }

    /// The `-t` window, if given.
    pub fn time_window(&self) -> anyhow::Result<Option<TimeWindow>> {
        self.window
            .as_deref()
            .map(|w| TimeWindow::parse_in(w, self.utc).with_context(|| format!("-t {w}")))
            .transpose()
    }

    /// The filter: the command line's `words`, else the `-f` file's, else
    /// `any`. A syntax error is printed (with its caret) and becomes
    /// `Err(EXIT_FILTER)`; an unreadable `-f` file is an error.
    pub fn filter(&self, words: &[String]) -> anyhow::Result<Result<Filter, u8>> {
        let (text, base) = if !words.is_empty() {
            (words.join(" "), PathBuf::from("."))
        } else if let Some(f) = &self.filter_file {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("-f {}: cannot read the filter file", f.display()))?;
            (text, f.parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")))
        } else {
            ("any".to_string(), PathBuf::from("."))
        };
        Ok(parse_filter("filter", &text, &base))
    }
}

/// Parses a filter; a syntax error is printed and becomes `Err(EXIT_FILTER)`.
pub fn parse_filter(what: &str, text: &str, base: &std::path::Path) -> Result<Filter, u8> {
    Filter::parse_with_includes(text, base).map_err(|e| {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("weir: {what}: {}", e.pretty);
        }
        EXIT_FILTER
    })
}
