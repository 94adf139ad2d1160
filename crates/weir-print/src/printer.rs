//! [`Printer`]: every output format as a [`weir_query::Sink`].

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Instant;

use weir_query::{RecordRenderer, Section, Sink, StatTable, Summary};
use weir_record::{Field, FlowRecord};

use crate::PrintOptions;
use crate::format::{Item, Kind, Token, csv_header, fmt_header};
use crate::json::render_json;
use crate::raw::render_raw;
use crate::render::{RowCtx, render_csv, render_fmt};
use crate::stat::{StatMode, StatOpts, Timing, cpu_times, print_summary, print_table};
use crate::text::{TimeFmt, TimeZoneSetting};

/// Flush the buffer to the writer once it holds this much.
const FLUSH_AT: usize = 1 << 16;

/// Prints query results as nfdump 1.7.8 does, to any [`Write`].
///
/// Records are formatted into one reusable buffer and written in chunks of
/// 64 KiB; a write error (a closed pipe) is returned from the [`Sink`]
/// call that hit it.
pub struct Printer<W: Write> {
    out: W,
    opts: PrintOptions,
    full_v6: bool,
    buf: Vec<u8>,
    /// Output held back until the summary (see [`Printer::stat`]).
    deferred: Vec<u8>,
    deferring: bool,
    time: TimeFmt,
    /// Records printed so far (`%cnt`, json `cnt`, raw `RecordCount`).
    count: u64,
    /// A record-section header is owed (printed before the first record).
    json_open: bool,
    header_done: bool,
    started: Instant,
    /// Process CPU times when the printer was made: the summary's `Sys:`
    /// and `User:` are the query's own, also when it runs inside a longer
    /// process (`weir demo`).
    cpu_at_start: (f64, f64),
}

impl<W: Write> Printer<W> {
    /// A printer writing to `out`.
    pub fn new(out: W, opts: PrintOptions) -> Printer<W> {
        let full_v6 = opts.full_ipv6 || opts.format.full_ipv6;
        Printer {
            out,
            time: TimeFmt::new(opts.timezone),
            opts,
            full_v6,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            deferred: Vec::new(),
            deferring: false,
            count: 0,
            json_open: false,
            header_done: false,
            started: Instant::now(),
            cpu_at_start: cpu_times(),
        }
    }

    /// The options.
    pub fn options(&self) -> &PrintOptions {
        &self.opts
    }

    /// Gives the writer back.
    pub fn into_inner(self) -> W {
        self.out
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Where text goes right now: the output, or the deferred buffer.
    fn target(&mut self) -> &mut Vec<u8> {
        if self.deferring { &mut self.deferred } else { &mut self.buf }
    }

    /// nfdump's `PrintProlog` for the record formats.
    fn prolog(&mut self) {
        let quiet = self.opts.quiet;
        let full_v6 = self.full_v6;
        match &self.opts.format.kind {
            Kind::Fmt(items) => {
                if !quiet {
                    let h = fmt_header(items, full_v6);
                    let t = if self.deferring { &mut self.deferred } else { &mut self.buf };
                    t.extend_from_slice(h.as_bytes());
                    t.push(b'\n');
                }
            }
            Kind::Csv(toks) => {
                let h = csv_header(toks);
                let t = if self.deferring { &mut self.deferred } else { &mut self.buf };
                t.extend_from_slice(h.as_bytes());
                t.push(b'\n');
            }
            Kind::Json => {
                if !self.json_open {
                    self.json_open = true;
                    self.target().extend_from_slice(b"[\n");
                }
            }
            Kind::Raw | Kind::NdJson | Kind::Null => {}
        }
    }

    fn stat_mode(&self) -> Option<StatMode> {
        match self.opts.format.kind {
            Kind::Fmt(_) => Some(StatMode::Fmt),
            Kind::Csv(_) => Some(StatMode::Csv),
            Kind::Json | Kind::NdJson => Some(StatMode::Json),
            Kind::Raw | Kind::Null => None,
        }
    }
}

/// The fmt and csv formats without `%cnt` (a running count): their text
/// of a record is the record's alone, so the engine's workers format it.
struct TextRenderer {
    kind: Kind,
    plain: bool,
    full_v6: bool,
    timezone: TimeZoneSetting,
}

impl RecordRenderer for TextRenderer {
    fn render(&self, ident: &str, records: &[FlowRecord], out: &mut Vec<u8>) {
        let mut time = TimeFmt::new(self.timezone);
        let (plain, full_v6) = (self.plain, self.full_v6);
        for r in records {
            let mut ctx = RowCtx { plain, full_v6, time: &mut time, ident, cnt: 0 };
            render_line(&self.kind, r, &mut ctx, out);
        }
    }
}

/// One record's line in a fmt or csv format (nothing for the others).
fn render_line(kind: &Kind, r: &FlowRecord, ctx: &mut RowCtx<'_>, out: &mut Vec<u8>) {
    match kind {
        Kind::Fmt(items) => render_fmt(out, items, r, ctx),
        Kind::Csv(toks) => render_csv(out, toks, r, ctx),
        Kind::Raw | Kind::Json | Kind::NdJson | Kind::Null => return,
    }
    out.push(b'\n');
}

impl<W: Write> Printer<W> {
    /// Before the first record of a section: the header, held-back text.
    fn before_records(&mut self) {
        if !self.header_done {
            self.header_done = true;
            self.prolog();
        }
        if self.deferring {
            self.deferring = false;
            self.buf.append(&mut self.deferred);
        }
    }
}

impl<W: Write> Sink for Printer<W> {
    fn renderer(&self) -> Option<Arc<dyn RecordRenderer>> {
        let kind = match &self.opts.format.kind {
            Kind::Fmt(items) if !items.contains(&Item::Tok(Token::Cnt)) => {
                self.opts.format.kind.clone()
            }
            Kind::Csv(toks) if !toks.contains(&Token::Cnt) => self.opts.format.kind.clone(),
            _ => return None,
        };
        Some(Arc::new(TextRenderer {
            kind,
            plain: self.opts.plain_numbers,
            full_v6: self.full_v6,
            timezone: self.opts.timezone,
        }))
    }

    fn rendered(&mut self, text: &[u8], records: u64) -> io::Result<()> {
        if records == 0 {
            return Ok(());
        }
        self.before_records();
        self.count += records;
        if self.buf.len() + text.len() < FLUSH_AT {
            self.buf.extend_from_slice(text);
            return Ok(());
        }
        self.flush_buf()?;
        // In pieces of the usual size: one write of megabytes into a file
        // cost the kernel four times the system time of 64 KiB writes.
        for piece in text.chunks(FLUSH_AT) {
            self.out.write_all(piece)?;
        }
        Ok(())
    }

    fn columns(&self) -> Option<Vec<Field>> {
        self.opts.format.columns()
    }

    fn begin_section(&mut self, section: Section) -> io::Result<()> {
        match section {
            Section::Records => {
                // nfdump prints the header before it reads any file, so it
                // comes before "No matching flows".
                if !self.header_done {
                    self.header_done = true;
                    self.prolog();
                }
            }
            Section::TopRecords { n, order } => {
                // Printed after "No matching flows" when nothing passed:
                // hold it back until a record shows up.
                self.deferring = true;
                if matches!(self.opts.format.kind, Kind::Fmt(_)) && !self.opts.quiet {
                    let t = &mut self.deferred;
                    t.extend_from_slice(b"Top ");
                    if n != 0 {
                        crate::text::push_u64(t, n as u64);
                        t.push(b' ');
                    }
                    t.extend_from_slice(b"flows ordered by ");
                    t.extend_from_slice(order.key.name().as_bytes());
                    t.extend_from_slice(b":\n");
                }
                self.header_done = true;
                self.prolog();
            }
        }
        Ok(())
    }

    fn records(&mut self, ident: &str, records: &[FlowRecord]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.before_records();
        let plain = self.opts.plain_numbers;
        let full_v6 = self.full_v6;
        match &self.opts.format.kind {
            kind @ (Kind::Fmt(_) | Kind::Csv(_)) => {
                for r in records {
                    self.count += 1;
                    let mut ctx =
                        RowCtx { plain, full_v6, time: &mut self.time, ident, cnt: self.count };
                    render_line(kind, r, &mut ctx, &mut self.buf);
                    if self.buf.len() >= FLUSH_AT {
                        self.out.write_all(&self.buf)?;
                        self.buf.clear();
                    }
                }
            }
            Kind::Json | Kind::NdJson => {
                let pretty = matches!(self.opts.format.kind, Kind::Json);
                for r in records {
                    if pretty && self.count != 0 {
                        self.buf.extend_from_slice(b",\n");
                    }
                    self.count += 1;
                    render_json(&mut self.buf, r, self.count, ident, &mut self.time, pretty);
                    if self.buf.len() >= FLUSH_AT {
                        self.out.write_all(&self.buf)?;
                        self.buf.clear();
                    }
                }
            }
            Kind::Raw => {
                for r in records {
                    self.count += 1;
                    render_raw(&mut self.buf, r, self.count, ident, &mut self.time);
                    if self.buf.len() >= FLUSH_AT {
                        self.out.write_all(&self.buf)?;
                        self.buf.clear();
                    }
                }
            }
            Kind::Null => {}
        }
        Ok(())
    }

    fn stat(&mut self, table: &StatTable) -> io::Result<()> {
        let Some(mode) = self.stat_mode() else {
            return Ok(());
        };
        // nfdump prints "No matching flows" before the statistics; an empty
        // table (nothing passed) waits for the summary to keep that order.
        if table.rows.is_empty() {
            self.deferring = true;
        }
        let o = StatOpts {
            mode,
            plain: self.opts.plain_numbers,
            quiet: self.opts.quiet,
            full_v6: self.full_v6,
            top_n: self.opts.top_n,
        };
        let t = if self.deferring { &mut self.deferred } else { &mut self.buf };
        print_table(t, table, &o, &mut self.time);
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn summary(&mut self, summary: &Summary) -> io::Result<()> {
        if summary.records_passed == 0 {
            self.buf.extend_from_slice(b"No matching flows\n");
        }
        self.buf.append(&mut self.deferred);
        self.deferring = false;
        if self.json_open {
            self.buf.extend_from_slice(b"\n]\n");
        }
        let fmt_like = matches!(self.opts.format.kind, Kind::Fmt(_) | Kind::Null);
        if !self.opts.quiet && fmt_like {
            let (user_now, sys_now) = cpu_times();
            let user_s = (user_now - self.cpu_at_start.0).max(0.0);
            let sys_s = (sys_now - self.cpu_at_start.1).max(0.0);
            let timing = Timing { user_s, sys_s, runtime_s: self.started.elapsed().as_secs_f64() };
            print_summary(&mut self.buf, summary, self.opts.plain_numbers, &mut self.time, &timing);
        }
        self.flush_buf()?;
        self.out.flush()
    }
}
