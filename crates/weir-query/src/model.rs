//! The query plan and the result types shared with the printers.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use weir_filter::Filter;
use weir_record::{Field, FlowRecord};

/// A time window on flows (`-t`): a flow passes iff `first >= start_ms` and
/// `last <= end_ms` (nfdump 1.7.1 semantics). Files whose slot does not
/// overlap the window are skipped by their footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeWindow {
    /// Inclusive start (ms since the epoch); `None` = open.
    pub start_ms: Option<u64>,
    /// Inclusive end (ms since the epoch); `None` = open.
    pub end_ms: Option<u64>,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Smallest first.
    Ascending,
    /// Largest first.
    Descending,
}

/// What records or statistic rows are ordered by (`-O`, `-s …/order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderKey {
    /// Aggregated flow count.
    Flows,
    /// Packets (in + out for bidirectional records).
    Packets,
    /// Bytes (in + out for bidirectional records).
    Bytes,
    /// Packets per second over the duration.
    Pps,
    /// Bits per second over the duration.
    Bps,
    /// Bytes per packet.
    Bpp,
    /// First seen.
    Tstart,
    /// Last seen.
    Tend,
    /// last - first.
    Duration,
}

impl OrderKey {
    /// nfdump's name (`flows`, `tstart`, …).
    pub fn name(self) -> &'static str {
        match self {
            OrderKey::Flows => "flows",
            OrderKey::Packets => "packets",
            OrderKey::Bytes => "bytes",
            OrderKey::Pps => "pps",
            OrderKey::Bps => "bps",
            OrderKey::Bpp => "bpp",
            OrderKey::Tstart => "tstart",
            OrderKey::Tend => "tend",
            OrderKey::Duration => "duration",
        }
    }

    /// The direction used when none is given (`tstart`/`tend` ascend, the
    /// rest descend).
    pub fn default_direction(self) -> Direction {
        match self {
            OrderKey::Tstart | OrderKey::Tend => Direction::Ascending,
            _ => Direction::Descending,
        }
    }
}

/// An order with its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    /// What to compare.
    pub key: OrderKey,
    /// Which way.
    pub direction: Direction,
}

/// One aggregation key (`-A`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggKey {
    /// A stored column taken as is (`proto`, `srcport`, `srcip`, `srcas`, …).
    Field(Field),
    /// An address column masked to a prefix of one family (`srcip4/24`,
    /// `dstip6/64`); records of the other family do not take part in this
    /// key (they group under "absent").
    Prefix {
        /// `SrcAddr` or `DstAddr`.
        field: Field,
        /// `true` for `…ip6/N`.
        ipv6: bool,
        /// Prefix length.
        bits: u8,
    },
    /// Source address masked with the record's own source mask (`srcnet`).
    SrcNet,
    /// Destination address masked with the record's own destination mask (`dstnet`).
    DstNet,
}

/// Bidirectional aggregation (`-b`, `-B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bidir {
    /// `-b`: a 5-tuple and its reverse are one record; the first seen
    /// direction is "out".
    Plain,
    /// `-B`: like `-b` but the client (higher port) side is the source.
    GuessClient,
}

/// A statistic element (`-s srcip`, `-s port`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatElement {
    /// nfdump's name (`srcip`).
    pub name: &'static str,
    /// Column header nfdump prints (`Src IP Addr`).
    pub header: &'static str,
    /// The columns counted: one, or two for "any side" elements (`ip`
    /// counts each flow once under its source and once under its
    /// destination).
    pub fields: &'static [Field],
}

/// One `-s` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatSpec {
    /// `None` for `-s record` (top-N records), else the element.
    pub element: Option<StatElement>,
    /// `:p`: one row per (value, protocol).
    pub per_proto: bool,
    /// One table per order (`/bytes/flows`); at least one.
    pub orders: Vec<Order>,
}

/// What the query does with the matching flows.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// List matching records in file order, or sorted by `order` (`-O`).
    List {
        /// Stop after this many matching records (`-c`).
        limit: Option<u64>,
        /// `-O`: sort before printing.
        order: Option<Order>,
        /// `-n` with `-O`: print only the first N.
        top: Option<usize>,
    },
    /// Aggregate records (`-a`, `-A`, `-b`, `-B`).
    Aggregate {
        /// Keys; empty = the 5-tuple (proto, srcip, dstip, srcport, dstport).
        keys: Vec<AggKey>,
        /// Bidirectional aggregation.
        bidir: Option<Bidir>,
        /// `-O`: sort the aggregated records.
        order: Option<Order>,
        /// `-n`: print only the first N.
        top: Option<usize>,
        /// `-P`: filter applied to the aggregated records.
        post: Option<Filter>,
    },
    /// Top-N statistics (`-s`, up to 8).
    Stats {
        /// The requests, printed in this order.
        specs: Vec<StatSpec>,
        /// Keys for `-s record` (`-A`); empty = the 5-tuple.
        record_keys: Vec<AggKey>,
        /// N (`-n`); 0 = unlimited.
        top: usize,
        /// `-P`: filter applied to aggregated records / element rows.
        post: Option<Filter>,
    },
}

/// A whole query.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    /// Slot files in the order they are read.
    pub files: Vec<PathBuf>,
    /// `-t`.
    pub window: Option<TimeWindow>,
    /// The filter (`any` when none was given).
    pub filter: Filter,
    /// What to do.
    pub mode: Mode,
    /// Worker threads; `None` = rayon's default (one per core).
    pub threads: Option<usize>,
}

/// Flows, packets and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Flows (aggregated flow count).
    pub flows: u64,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// One row of an element statistic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatRow {
    /// The element's value (addresses as IPv4-mapped `u128`, ICMP as in
    /// the `dst_port` column).
    pub value: u128,
    /// With `:p` (or for `proto`), the protocol of this row.
    pub proto: Option<u8>,
    /// Earliest first seen (ms).
    pub first_ms: u64,
    /// Latest last seen (ms).
    pub last_ms: u64,
    /// Sums.
    pub counters: Counters,
}

/// One finished element statistic, for one order.
#[derive(Debug, Clone, PartialEq)]
pub struct StatTable {
    /// The element.
    pub element: StatElement,
    /// Whether rows are split per protocol.
    pub per_proto: bool,
    /// The order of `rows`.
    pub order: Order,
    /// Top rows, in order.
    pub rows: Vec<StatRow>,
    /// The denominators of the `(%)` columns: as in nfdump 1.7.1, the
    /// totals of the records that passed (the summary's `passed`), also for
    /// two-sided elements (whose percentages can add up to 200 %).
    pub total: Counters,
    /// Distinct values seen.
    pub distinct: u64,
}

/// The closing summary (nfdump's last lines).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// Sums over the records that passed the filter (flows = sum of the
    /// `flows` column, absent = 1).
    pub passed: Counters,
    /// Earliest first seen of the passed records (ms), 0 if none.
    pub first_ms: u64,
    /// Latest last seen of the passed records (ms), 0 if none.
    pub last_ms: u64,
    /// Union of the slots of the files read, clipped by `-t` (ms), `None`
    /// when no file was read.
    pub window: Option<(u64, u64)>,
    /// Records looked at: every record of the files read (pruned blocks
    /// included), or with `-c` the records in file order up to the one that
    /// reached the limit (as nfdump 1.7.1 counts).
    pub records_processed: u64,
    /// Records that passed the filter and the time window.
    pub records_passed: u64,
    /// Blocks skipped by their zone maps.
    pub blocks_skipped: u64,
    /// Bytes of the files read.
    pub bytes_read: u64,
    /// Files read.
    pub files: u64,
    /// Wall time of the scan (seconds).
    pub wall_s: f64,
}

/// What a run of records handed to [`Sink::records`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Section {
    /// Plain or aggregated record listing.
    Records,
    /// `-s record`: top N records ordered by `order`.
    TopRecords {
        /// N (0 = unlimited).
        n: usize,
        /// The order.
        order: Order,
    },
}

/// Receives the result of a query, in order: for each section
/// `begin_section`, `records`* , then `stat` tables, then `summary` once.
pub trait Sink {
    /// The record columns the sink prints; the engine decodes only these
    /// (plus what the filter and ordering need). `None` = the sink prints no
    /// records (`-o null`), so none are materialised.
    fn columns(&self) -> Option<Vec<Field>>;
    /// Starts a record section.
    fn begin_section(&mut self, section: Section) -> io::Result<()>;
    /// A run of records; `ident` is the ident of the file they came from
    /// (empty for aggregated records).
    fn records(&mut self, ident: &str, records: &[FlowRecord]) -> io::Result<()>;
    /// A finished element statistic.
    fn stat(&mut self, table: &StatTable) -> io::Result<()>;
    /// The summary; the last call.
    fn summary(&mut self, summary: &Summary) -> io::Result<()>;
    /// A formatter of listed records that can run on the scan's workers,
    /// for sinks whose text of a record depends on nothing but the record
    /// and its file's ident. A plain file-order listing then formats each
    /// block where it was decoded and hands the text over in order with
    /// [`Sink::rendered`] instead of calling [`Sink::records`]. `None` (the
    /// default): records are handed over.
    fn renderer(&self) -> Option<Arc<dyn RecordRenderer>> {
        None
    }
    /// Text that this sink's [`Sink::renderer`] made of `records` records,
    /// in order; as if those records had been handed to [`Sink::records`].
    fn rendered(&mut self, text: &[u8], records: u64) -> io::Result<()> {
        let _ = (text, records);
        Err(io::Error::other("this sink has no renderer"))
    }
}

/// Turns records into a sink's output text on any thread (see
/// [`Sink::renderer`]).
pub trait RecordRenderer: Send + Sync {
    /// Appends the text of `records`, read from the file with `ident`, to
    /// `out`.
    fn render(&self, ident: &str, records: &[FlowRecord], out: &mut Vec<u8>);
}
