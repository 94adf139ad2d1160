//! Reading captures: pcap (µs and ns, either byte order) and pcapng, down to
//! the UDP payloads that exporters sent. IPv4 fragments are reassembled, as
//! tshark does, so a large datagram split across frames decodes whole.
//!
//! Link types: Ethernet (with 802.1Q/QinQ tags) and those of
//! [`crate::packet::link_layer`]: Linux cooked (SLL, SLL2), BSD loopback
//! (null, loop) and raw IP.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::packet::L3Kind;

/// A capture that cannot be read: byte offset and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError {
    /// Byte offset in the capture file.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "offset {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for CaptureError {}

#[cold]
fn cerr(offset: usize, message: impl Into<String>) -> CaptureError {
    CaptureError { offset, message: message.into() }
}

/// One captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// 1-based frame number, as tshark counts.
    pub number: usize,
    /// Capture time, ns since the epoch.
    pub ts_ns: u64,
    /// Link type of the interface (1 = Ethernet, ...).
    pub linktype: u32,
    /// Original length on the wire.
    pub orig_len: u32,
    /// Captured bytes.
    pub data: &'a [u8],
}

/// A UDP datagram found in a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedDatagram {
    /// Frame number (for a reassembled datagram: its last fragment's frame).
    pub frame: usize,
    /// Capture time, ms since the epoch.
    pub ts_ms: u64,
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// UDP payload.
    pub payload: Vec<u8>,
}

/// What [`read_capture`] found.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    /// UDP datagrams, in capture order.
    pub datagrams: Vec<CapturedDatagram>,
    /// Frames read.
    pub frames: usize,
    /// Frames that held no (complete) UDP datagram.
    pub other_frames: usize,
    /// Fragmented datagrams never completed (see [`UdpFrames::incomplete`]).
    pub incomplete: u64,
    /// A problem that stopped reading early (e.g. a truncated last frame);
    /// everything before it is in `datagrams`.
    pub error: Option<CaptureError>,
}

/// Reads every frame of a pcap or pcapng capture.
///
/// Errors only if the data is not a capture at all; a damaged capture
/// yields the frames before the damage and then an `Err` item.
pub fn frames(capture: &[u8]) -> Result<Frames<'_>, CaptureError> {
    if capture.len() < 4 {
        return Err(cerr(0, format!("{} bytes is too short for a capture", capture.len())));
    }
    let m = [capture[0], capture[1], capture[2], capture[3]];
    let kind = match m {
        [0xd4, 0xc3, 0xb2, 0xa1] => Kind::Pcap { le: true, nanos: false, linktype: 0 },
        [0xa1, 0xb2, 0xc3, 0xd4] => Kind::Pcap { le: false, nanos: false, linktype: 0 },
        [0x4d, 0x3c, 0xb2, 0xa1] => Kind::Pcap { le: true, nanos: true, linktype: 0 },
        [0xa1, 0xb2, 0x3c, 0x4d] => Kind::Pcap { le: false, nanos: true, linktype: 0 },
        [0x0a, 0x0d, 0x0d, 0x0a] => Kind::Pcapng { le: true, ifaces: Vec::new() },
        [0x1f, 0x8b, ..] => {
            return Err(cerr(0, "not a pcap or pcapng file: gzip-compressed, decompress it first"));
        }
        _ => return Err(cerr(0, format!("not a pcap or pcapng file (magic {m:02x?})"))),
    };
    let mut f =
        Frames { buf: capture, pos: 0, number: 0, kind, done: false, partial: false, more: false };
    if let Kind::Pcap { le, .. } = f.kind {
        if capture.len() < 24 {
            return Err(cerr(0, "pcap file header truncated"));
        }
        let lt = rd32(&capture[20..24], le);
        if let Kind::Pcap { linktype, .. } = &mut f.kind {
            *linktype = lt & 0x0fff_ffff;
        }
        f.pos = 24;
    }
    Ok(f)
}

#[derive(Debug, Clone)]
enum Kind {
    Pcap { le: bool, nanos: bool, linktype: u32 },
    Pcapng { le: bool, ifaces: Vec<(u32, u64)> }, // (linktype, ticks per second)
}

/// Iterator over the frames of a capture.
pub struct Frames<'a> {
    buf: &'a [u8],
    pos: usize,
    number: usize,
    kind: Kind,
    done: bool,
    /// `buf` is only the part of the capture read so far: a record that
    /// runs past its end ends the iteration with `more` set instead of an
    /// error.
    partial: bool,
    more: bool,
}

/// Where a [`Frames`] over part of a capture stopped: what it needs to go
/// on over the next part (link types, byte order, interfaces, frame
/// numbers).
#[derive(Debug, Clone)]
pub struct Resume {
    kind: Kind,
    number: usize,
}

/// Largest pcap record or pcapng block accepted when reading a capture in
/// parts (far above any snap length): a larger length is damage, not a
/// record still to be read.
pub const MAX_RECORD: usize = 64 << 20;

impl<'a> Frames<'a> {
    /// Byte offset just past the last frame returned: after the last good
    /// frame of a damaged or cut capture, the length of its readable part.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// Treats the bytes as the first part of a longer capture: a record
    /// cut by their end stops the iteration (see [`Frames::needs_more`]).
    pub fn partial(mut self) -> Self {
        self.partial = true;
        self
    }

    /// Whether the iteration stopped at a record the bytes hold only part
    /// of (only when [`Frames::partial`]): read on from [`Frames::offset`]
    /// and go on with [`Frames::resume`].
    pub fn needs_more(&self) -> bool {
        self.more
    }

    /// The state to go on from [`Frames::offset`] in the next part.
    pub fn state(&self) -> Resume {
        Resume { kind: self.kind.clone(), number: self.number }
    }

    /// Goes on over `buf`, the capture's bytes from where the previous
    /// part stopped; `last` when they run to the end of the capture (a cut
    /// record is then an error, as with [`frames`]).
    pub fn resume(buf: &'a [u8], state: Resume, last: bool) -> Frames<'a> {
        Frames {
            buf,
            pos: 0,
            number: state.number,
            kind: state.kind,
            done: false,
            partial: !last,
            more: false,
        }
    }

    /// In partial mode, a record of `need` bytes at `at` that the buffer
    /// does not hold yet ends the part.
    fn cut(&mut self, at: usize, need: usize) -> bool {
        if self.partial && need <= MAX_RECORD && self.buf.len() - at < need {
            self.more = true;
            true
        } else {
            false
        }
    }
}

fn rd16(b: &[u8], le: bool) -> u16 {
    let a = [b[0], b[1]];
    if le { u16::from_le_bytes(a) } else { u16::from_be_bytes(a) }
}

fn rd32(b: &[u8], le: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if le { u32::from_le_bytes(a) } else { u32::from_be_bytes(a) }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = match self.kind {
            Kind::Pcap { .. } => self.next_pcap(),
            Kind::Pcapng { .. } => self.next_pcapng(),
        };
        match r {
            Ok(Some(f)) => Some(Ok(f)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl<'a> Frames<'a> {
    fn next_pcap(&mut self) -> Result<Option<Frame<'a>>, CaptureError> {
        let Kind::Pcap { le, nanos, linktype } = self.kind else { unreachable!("pcap state") };
        let b = self.buf;
        if self.pos == b.len() {
            // The part ends on a record boundary: more may follow.
            self.more = self.partial;
            return Ok(None);
        }
        let at = self.pos;
        if b.len() - at < 16 {
            if self.cut(at, 16) {
                return Ok(None);
            }
            return Err(cerr(at, "truncated pcap record header"));
        }
        let h = &b[at..at + 16];
        let (sec, frac, incl, orig) =
            (rd32(h, le), rd32(&h[4..], le), rd32(&h[8..], le), rd32(&h[12..], le));
        let incl = incl as usize;
        if incl > b.len() - at - 16 && self.cut(at, incl.saturating_add(16)) {
            return Ok(None);
        }
        if incl > b.len() - at - 16 {
            return Err(cerr(
                at,
                format!("pcap record of {incl} bytes runs past the end of the file"),
            ));
        }
        self.pos = at + 16 + incl;
        self.number += 1;
        let ns = u64::from(sec) * 1_000_000_000 + u64::from(frac) * if nanos { 1 } else { 1000 };
        Ok(Some(Frame {
            number: self.number,
            ts_ns: ns,
            linktype,
            orig_len: orig,
            data: &b[at + 16..at + 16 + incl],
        }))
    }

    fn next_pcapng(&mut self) -> Result<Option<Frame<'a>>, CaptureError> {
        let b = self.buf;
        loop {
            let at = self.pos;
            if at == b.len() {
                self.more = self.partial;
                return Ok(None);
            }
            if b.len() - at < 12 {
                if self.cut(at, 12) {
                    return Ok(None);
                }
                return Err(cerr(at, "truncated pcapng block header"));
            }
            let raw_type = &b[at..at + 4];
            if raw_type == [0x0a, 0x0d, 0x0d, 0x0a] {
                // Section header: its byte-order magic sets the endianness.
                let bom = &b[at + 8..at + 12];
                let le = match bom {
                    [0x4d, 0x3c, 0x2b, 0x1a] => true,
                    [0x1a, 0x2b, 0x3c, 0x4d] => false,
                    _ => return Err(cerr(at + 8, "bad pcapng byte-order magic")),
                };
                self.kind = Kind::Pcapng { le, ifaces: Vec::new() };
            }
            let Kind::Pcapng { le, ref mut ifaces } = self.kind else {
                unreachable!("pcapng state")
            };
            let btype = rd32(raw_type, le);
            let len = rd32(&b[at + 4..], le) as usize;
            if self.partial
                && len >= 12
                && len.is_multiple_of(4)
                && len <= MAX_RECORD
                && len > b.len() - at
            {
                self.more = true;
                return Ok(None);
            }
            if len < 12 || !len.is_multiple_of(4) || len > b.len() - at {
                return Err(cerr(at + 4, format!("pcapng block length {len} is impossible here")));
            }
            let body = &b[at + 8..at + len - 4];
            self.pos = at + len;
            match btype {
                1 => {
                    if body.len() < 8 {
                        return Err(cerr(at, "truncated interface description block"));
                    }
                    if ifaces.len() >= 4096 {
                        return Err(cerr(at, "more than 4096 interfaces"));
                    }
                    let linktype = u32::from(rd16(body, le));
                    ifaces.push((linktype, tsresol(&body[8..], le)));
                }
                6 | 2 => {
                    let (iface, hi, lo, cap, orig, data_at) = if btype == 6 {
                        if body.len() < 20 {
                            return Err(cerr(at, "truncated enhanced packet block"));
                        }
                        (
                            rd32(body, le),
                            rd32(&body[4..], le),
                            rd32(&body[8..], le),
                            rd32(&body[12..], le),
                            rd32(&body[16..], le),
                            20,
                        )
                    } else {
                        if body.len() < 20 {
                            return Err(cerr(at, "truncated packet block"));
                        }
                        (
                            u32::from(rd16(body, le)),
                            rd32(&body[4..], le),
                            rd32(&body[8..], le),
                            rd32(&body[12..], le),
                            rd32(&body[16..], le),
                            20,
                        )
                    };
                    let cap = cap as usize;
                    if cap > body.len() - data_at {
                        return Err(cerr(at, format!("packet of {cap} bytes overruns its block")));
                    }
                    let &(linktype, tps) = ifaces.get(iface as usize).ok_or_else(|| {
                        cerr(at + 8, format!("packet for undeclared interface {iface}"))
                    })?;
                    let ticks = (u64::from(hi) << 32) | u64::from(lo);
                    let ts_ns = ticks_to_ns(ticks, tps);
                    self.number += 1;
                    return Ok(Some(Frame {
                        number: self.number,
                        ts_ns,
                        linktype,
                        orig_len: orig,
                        data: &body[data_at..data_at + cap],
                    }));
                }
                3 => {
                    if body.len() < 4 {
                        return Err(cerr(at, "truncated simple packet block"));
                    }
                    let &(linktype, _) = ifaces
                        .first()
                        .ok_or_else(|| cerr(at, "simple packet block before any interface"))?;
                    let orig = rd32(body, le);
                    let cap = (orig as usize).min(body.len() - 4);
                    self.number += 1;
                    return Ok(Some(Frame {
                        number: self.number,
                        ts_ns: 0,
                        linktype,
                        orig_len: orig,
                        data: &body[4..4 + cap],
                    }));
                }
                _ => {} // section header, statistics, name resolution, custom: nothing to read
            }
        }
    }
}

/// Ticks per second from the `if_tsresol` option (code 9), default µs.
fn tsresol(mut opts: &[u8], le: bool) -> u64 {
    while opts.len() >= 4 {
        let (code, len) = (rd16(opts, le), rd16(&opts[2..], le) as usize);
        if code == 0 {
            break;
        }
        let padded = len.div_ceil(4) * 4;
        if opts.len() < 4 + padded {
            break;
        }
        if code == 9 && len >= 1 {
            let v = opts[4];
            let exp = u32::from(v & 0x7f);
            return if v & 0x80 == 0 { 10u64.checked_pow(exp) } else { 2u64.checked_pow(exp) }
                .unwrap_or(1_000_000)
                .max(1);
        }
        opts = &opts[4 + padded..];
    }
    1_000_000
}

fn ticks_to_ns(ticks: u64, per_sec: u64) -> u64 {
    let secs = ticks / per_sec;
    let rem = ticks % per_sec;
    secs.saturating_mul(1_000_000_000)
        .saturating_add((u128::from(rem) * 1_000_000_000 / u128::from(per_sec)) as u64)
}

/// Reads every UDP datagram of a capture, reassembling IPv4 fragments.
/// Errors only if the data is not a capture; damage later in the file is
/// reported in [`Capture::error`].
pub fn read_capture(capture: &[u8]) -> Result<Capture, CaptureError> {
    let mut out = Capture::default();
    let mut udp = UdpFrames::default();
    for f in frames(capture)? {
        let f = match f {
            Ok(f) => f,
            Err(e) => {
                out.error = Some(e);
                break;
            }
        };
        if let Some(d) = udp.datagram(&f) {
            out.datagrams.push(d);
        }
    }
    (out.frames, out.other_frames) = (udp.frames, udp.other_frames);
    out.incomplete = udp.incomplete();
    Ok(out)
}

/// The UDP datagrams of a capture read frame by frame (with
/// [`read_frames_from`]): [`read_capture`] without holding the capture
/// or its datagrams, IPv4 fragments reassembled across frames.
#[derive(Default)]
pub struct UdpFrames {
    frags: Reassembly,
    /// Frames seen.
    pub frames: usize,
    /// Frames that held no (complete) UDP datagram.
    pub other_frames: usize,
}

impl UdpFrames {
    /// Fragmented datagrams given up (too many waiting at once, or more
    /// fragment bytes than a datagram holds) and, at the end of a
    /// capture, still waiting for fragments: their fragments are frames
    /// without a datagram.
    pub fn incomplete(&self) -> u64 {
        self.frags.dropped + self.frags.pending.len() as u64
    }

    /// The UDP datagram `f` holds or completes, if any.
    pub fn datagram(&mut self, f: &Frame<'_>) -> Option<CapturedDatagram> {
        self.frames += 1;
        let d = udp_in_frame(f, &mut self.frags);
        if d.is_none() {
            self.other_frames += 1;
        }
        d
    }
}

/// Bytes of a capture read per part by [`read_frames_from`].
const PART: usize = 16 << 20;

/// Why [`read_frames_from`] stopped before the end of the capture.
#[derive(Debug)]
pub enum StreamError<E> {
    /// Reading failed before a single byte came.
    Io(std::io::Error),
    /// The frame handler failed.
    Handler(E),
}

/// Reads a capture from `r` in parts of 16 MiB and hands every frame to
/// `f`, so that memory stays bounded (a part plus one record) whatever the
/// capture's size. Returns the damage that stopped reading early, if any
/// (not a capture at all, a cut or damaged record, or a read that failed
/// part way, e.g. a cut gzip stream), with its offset from the start of
/// the capture; the frames before it were handed over.
pub fn read_frames_from<E>(
    mut r: impl std::io::Read,
    mut f: impl FnMut(&Frame<'_>) -> Result<(), E>,
) -> Result<Option<CaptureError>, StreamError<E>> {
    let mut buf = Vec::with_capacity(PART);
    let (mut eof, mut failed) = fill(&mut r, &mut buf, PART);
    if let Some(e) = failed.take_if(|_| buf.is_empty()) {
        return Err(StreamError::Io(e));
    }
    let mut base = 0;
    let mut state = None;
    // A read that failed ends the input where it failed (`at`); the frames
    // whole before it are still handed over, and the failure is told with
    // the damage it left (usually the record it cut), or alone.
    let report = |damage: Option<CaptureError>, failed: &Option<std::io::Error>, at: usize| {
        let Some(e) = failed else { return damage };
        let read = format!("reading failed after {at} bytes: {e}");
        Some(match damage {
            Some(d) => cerr(d.offset, format!("{}; {read}", d.message)),
            None => cerr(at, read),
        })
    };
    loop {
        let mut it = match state.take() {
            Some(st) => Frames::resume(&buf, st, eof),
            None => match frames(&buf) {
                Ok(it) if eof => it,
                Ok(it) => it.partial(),
                Err(e) => return Ok(report(Some(e), &failed, base + buf.len())),
            },
        };
        for fr in it.by_ref() {
            match fr {
                Ok(fr) => f(&fr).map_err(StreamError::Handler)?,
                Err(mut e) => {
                    e.offset += base;
                    return Ok(report(Some(e), &failed, base + buf.len()));
                }
            }
        }
        // Every stop short of the end of the input is a damage (returned
        // above) or a record the part holds only part of.
        if eof {
            return Ok(report(None, &failed, base + buf.len()));
        }
        let (used, st) = (it.offset(), it.state());
        buf.drain(..used);
        base += used;
        state = Some(st);
        let want = buf.len() + PART;
        (eof, failed) = fill(&mut r, &mut buf, want);
    }
}

/// Reads until `buf` holds `want` bytes: `true` at the end of the input,
/// which a read error also is (returned beside; the bytes read before it
/// are in `buf`).
fn fill(
    r: &mut impl std::io::Read,
    buf: &mut Vec<u8>,
    want: usize,
) -> (bool, Option<std::io::Error>) {
    use std::io::Read as _;
    let need = want.saturating_sub(buf.len()) as u64;
    match r.take(need).read_to_end(buf) {
        Ok(got) => ((got as u64) < need, None),
        Err(e) => (true, Some(e)),
    }
}

/// Every UDP datagram of a capture; any damage is an error.
pub fn udp_datagrams(capture: &[u8]) -> Result<Vec<CapturedDatagram>, CaptureError> {
    let c = read_capture(capture)?;
    match c.error {
        Some(e) => Err(e),
        None => Ok(c.datagrams),
    }
}

/// Pending IPv4 fragments, bounded in datagrams and bytes.
#[derive(Default)]
struct Reassembly {
    pending: HashMap<(u32, u32, u16, u8), Partial>,
    /// Datagrams given up: pushed out by newer ones (more than
    /// [`MAX_PENDING`] waiting) or sent more fragment bytes than a
    /// datagram can hold.
    dropped: u64,
}

struct Partial {
    parts: Vec<(usize, Vec<u8>)>,
    /// Bytes held in `parts` (duplicates and overlaps included).
    held: usize,
    total: Option<usize>,
    first_frame: usize,
}

/// Fragment bytes kept for one datagram: twice the largest IPv4 datagram
/// leaves room for retransmitted fragments, and bounds the memory and the
/// work a crafted capture can cause.
const MAX_HELD: usize = 2 * 65_535;

/// At most this many datagrams wait for fragments; older ones are dropped.
const MAX_PENDING: usize = 1024;

impl Reassembly {
    /// Adds a fragment; returns the whole IP payload when complete.
    fn add(
        &mut self,
        key: (u32, u32, u16, u8),
        offset: usize,
        more: bool,
        data: &[u8],
        frame: usize,
    ) -> Option<Vec<u8>> {
        if offset + data.len() > 65_535 {
            return None;
        }
        if !self.pending.contains_key(&key) && self.pending.len() >= MAX_PENDING {
            let oldest = self.pending.iter().min_by_key(|(_, p)| p.first_frame).map(|(k, _)| *k)?;
            self.pending.remove(&oldest);
            self.dropped += 1;
        }
        let p = self.pending.entry(key).or_insert(Partial {
            parts: Vec::new(),
            held: 0,
            total: None,
            first_frame: frame,
        });
        p.held += data.len();
        if p.held > MAX_HELD {
            self.pending.remove(&key);
            self.dropped += 1;
            return None;
        }
        p.parts.push((offset, data.to_vec()));
        if !more {
            p.total = Some(offset + data.len());
        }
        let total = p.total?;
        p.parts.sort_by_key(|(o, _)| *o);
        let mut covered = 0;
        for (o, d) in &p.parts {
            if *o > covered {
                return None;
            }
            covered = covered.max(o + d.len());
        }
        if covered < total {
            return None;
        }
        let p = self.pending.remove(&key)?;
        let mut whole = vec![0u8; total];
        for (o, d) in p.parts {
            let end = (o + d.len()).min(total);
            whole[o..end].copy_from_slice(&d[..end - o]);
        }
        Some(whole)
    }
}

/// The UDP datagram in one frame (or completed by it), if any.
fn udp_in_frame(f: &Frame<'_>, frags: &mut Reassembly) -> Option<CapturedDatagram> {
    let d = f.data;
    let ip = match f.linktype {
        1 => ethernet_payload(d)?,
        lt => {
            let l = crate::packet::link_layer(lt, d)?;
            let rest = d.get(l.offset..)?;
            match l.kind {
                L3Kind::ByVersion => match rest.first()? >> 4 {
                    4 => L3::V4(rest),
                    6 => L3::V6(rest),
                    _ => return None,
                },
                L3Kind::Ether(t) => l3(t, rest)?,
                L3Kind::Truncated => return None,
            }
        }
    };
    let ts_ms = f.ts_ns / 1_000_000;
    match ip {
        L3::V4(p) => {
            if p.len() < 20 || p[0] >> 4 != 4 {
                return None;
            }
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
            if ihl < 20 || total < ihl || p.len() < ihl {
                return None;
            }
            let end = total.min(p.len());
            let id = u16::from_be_bytes([p[4], p[5]]);
            let fl = u16::from_be_bytes([p[6], p[7]]);
            let (more, off) = (fl & 0x2000 != 0, usize::from(fl & 0x1fff) * 8);
            let proto = p[9];
            let src = u32::from_be_bytes([p[12], p[13], p[14], p[15]]);
            let dst = u32::from_be_bytes([p[16], p[17], p[18], p[19]]);
            if proto != 17 {
                return None;
            }
            let body = &p[ihl..end];
            let whole;
            let l4 = if more || off > 0 {
                whole = frags.add((src, dst, id, proto), off, more, body, f.number)?;
                &whole[..]
            } else {
                body
            };
            udp(
                l4,
                IpAddr::V4(Ipv4Addr::from(src)),
                IpAddr::V4(Ipv4Addr::from(dst)),
                f.number,
                ts_ms,
            )
        }
        L3::V6(p) => {
            if p.len() < 40 || p[0] >> 4 != 6 {
                return None;
            }
            let plen = usize::from(u16::from_be_bytes([p[4], p[5]]));
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&p[8..24]).ok()?);
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&p[24..40]).ok()?);
            let mut next = p[6];
            let mut rest = &p[40..(40 + plen).min(p.len())];
            // Skip extension headers; fragmented IPv6 datagrams are not reassembled.
            for _ in 0..8 {
                match next {
                    0 | 43 | 60 => {
                        let n = (usize::from(*rest.get(1)?) + 1) * 8;
                        next = *rest.first()?;
                        rest = rest.get(n..)?;
                    }
                    _ => break,
                }
            }
            if next != 17 {
                return None;
            }
            udp(rest, IpAddr::V6(src), IpAddr::V6(dst), f.number, ts_ms)
        }
    }
}

enum L3<'a> {
    V4(&'a [u8]),
    V6(&'a [u8]),
}

fn l3(ethertype: u16, rest: &[u8]) -> Option<L3<'_>> {
    match ethertype {
        0x0800 => Some(L3::V4(rest)),
        0x86dd => Some(L3::V6(rest)),
        _ => None,
    }
}

fn ethernet_payload(d: &[u8]) -> Option<L3<'_>> {
    let mut et = u16::from_be_bytes([*d.get(12)?, *d.get(13)?]);
    let mut rest = d.get(14..)?;
    for _ in 0..4 {
        if matches!(et, 0x8100 | 0x88a8 | 0x9100) {
            et = u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]);
            rest = rest.get(4..)?;
        } else {
            break;
        }
    }
    l3(et, rest)
}

fn udp(l4: &[u8], src: IpAddr, dst: IpAddr, frame: usize, ts_ms: u64) -> Option<CapturedDatagram> {
    if l4.len() < 8 {
        return None;
    }
    let sport = u16::from_be_bytes([l4[0], l4[1]]);
    let dport = u16::from_be_bytes([l4[2], l4[3]]);
    let ulen = usize::from(u16::from_be_bytes([l4[4], l4[5]]));
    // A UDP length of 0 happens with jumbograms; otherwise trust it if it fits.
    let end = if ulen >= 8 && ulen <= l4.len() { ulen } else { l4.len() };
    Some(CapturedDatagram {
        frame,
        ts_ms,
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        payload: l4[8..end].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_file(frames: &[&[u8]]) -> Vec<u8> {
        let mut v = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&65535u32.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        for (i, f) in frames.iter().enumerate() {
            v.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
            v.extend_from_slice(&500_000u32.to_le_bytes());
            v.extend_from_slice(&(f.len() as u32).to_le_bytes());
            v.extend_from_slice(&(f.len() as u32).to_le_bytes());
            v.extend_from_slice(f);
        }
        v
    }

    fn eth_ipv4_udp(payload: &[u8], id: u16, frag: Option<(usize, bool)>) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a, 0x08, 0x00]); // one VLAN tag
        let l4: Vec<u8> = match frag {
            Some((off, _)) if off > 0 => payload.to_vec(),
            _ => {
                let mut u = vec![0x30, 0x39, 0x08, 0x07];
                let len = (8 + payload.len()) as u16;
                u.extend_from_slice(&len.to_be_bytes());
                u.extend_from_slice(&[0, 0]);
                u.extend_from_slice(payload);
                u
            }
        };
        let (off, more) = frag.unwrap_or((0, false));
        let l4 = if let Some((0, true)) = frag { l4[..16].to_vec() } else { l4 };
        let total = (20 + l4.len()) as u16;
        let fl = (if more { 0x2000 } else { 0 }) | (off / 8) as u16;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&id.to_be_bytes());
        ip.extend_from_slice(&fl.to_be_bytes());
        ip.extend_from_slice(&[64, 17, 0, 0, 192, 0, 2, 1, 203, 0, 113, 1]);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&l4);
        f.extend_from_slice(&[0; 6]); // Ethernet padding past the IP length
        f
    }

    #[test]
    fn pcap_ethernet_vlan_udp() {
        let frame = eth_ipv4_udp(b"hello", 1, None);
        let c = read_capture(&pcap_file(&[&frame])).unwrap();
        assert_eq!(c.datagrams.len(), 1);
        let d = &c.datagrams[0];
        assert_eq!(d.payload, b"hello");
        assert_eq!(d.src, "192.0.2.1:12345".parse().unwrap());
        assert_eq!(d.dst, "203.0.113.1:2055".parse().unwrap());
        assert_eq!((d.frame, d.ts_ms), (1, 1_700_000_000_500));
    }

    /// A read part that ends exactly where a record ends: the records
    /// after it are read too (pcap and pcapng).
    #[test]
    fn a_part_ending_on_a_record_boundary_goes_on() {
        // pcap: 24-byte header, a first record of 16 + 984 bytes, then
        // records of 16 + 1008: the 16 384th ends at exactly 16 MiB.
        let mut v = pcap_file(&[&[0u8; 984]]);
        let rec = [0u8; 1008];
        for _ in 0..16_383 + 100 {
            v.extend_from_slice(&1u32.to_le_bytes());
            v.extend_from_slice(&0u32.to_le_bytes());
            v.extend_from_slice(&1008u32.to_le_bytes());
            v.extend_from_slice(&1008u32.to_le_bytes());
            v.extend_from_slice(&rec);
        }
        assert_eq!((24 + 1000 + 16_383 * 1024) as usize, PART);
        let mut n = 0;
        let r = read_frames_from(&v[..], |_| -> Result<(), ()> {
            n += 1;
            Ok(())
        });
        assert!(matches!(r, Ok(None)), "{r:?}");
        assert_eq!(n, 16_384 + 100);
    }

    /// A read that fails part way (a cut gzip stream, a disk error): the
    /// frames whole before it are handed over and the failure is the
    /// damage, at its offset; a read that fails at once is an I/O error.
    #[test]
    fn a_failing_read_keeps_the_frames_before_it() {
        struct FailsAfter<'a>(&'a [u8]);
        impl std::io::Read for FailsAfter<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Err(std::io::Error::other("stream broken"));
                }
                let n = out.len().min(self.0.len()).min(700);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let v = pcap_file(&[&[1u8; 300], &[2u8; 300], &[3u8; 300], &[4u8; 300]]);
        // Records of 316 bytes after the 24-byte header: cut in the third.
        let cut = 24 + 2 * 316 + 100;
        let mut seen = Vec::new();
        let r = read_frames_from(FailsAfter(&v[..cut]), |f| -> Result<(), ()> {
            seen.push(f.data[0]);
            Ok(())
        });
        let damage = r.unwrap().expect("damage reported");
        assert_eq!(seen, vec![1, 2]);
        assert_eq!(damage.offset, 24 + 2 * 316, "{damage}");
        assert!(
            damage.message.contains(&format!("reading failed after {cut} bytes: stream broken")),
            "{damage}"
        );
        // Cut on a record boundary: the failure alone, where it happened.
        let cut = 24 + 3 * 316;
        let r = read_frames_from(FailsAfter(&v[..cut]), |_| -> Result<(), ()> { Ok(()) });
        let damage = r.unwrap().expect("damage reported");
        assert_eq!(damage.offset, cut, "{damage}");
        let r = read_frames_from(FailsAfter(&[]), |_| -> Result<(), ()> { Ok(()) });
        assert!(matches!(r, Err(StreamError::Io(_))), "{r:?}");
    }

    /// Fragments are bounded: a datagram sent more fragment bytes than it
    /// can hold is given up, as are the oldest when too many wait; both
    /// are counted, with those still waiting at the end.
    #[test]
    fn fragment_memory_is_bounded_and_counted() {
        let mut r = Reassembly::default();
        let key = (1, 2, 7, 17);
        // The same 1 480-byte first fragment again and again (never the last).
        let chunk = [0u8; 1480];
        let mut fed = 0;
        while r.pending.contains_key(&key) || fed == 0 {
            assert!(r.add(key, 0, true, &chunk, fed).is_none());
            fed += 1;
            assert!(fed < 1000, "never given up");
        }
        assert_eq!((fed, r.dropped), (MAX_HELD / 1480 + 1, 1));
        for id in 0..MAX_PENDING as u16 + 10 {
            r.add((1, 2, id, 17), 0, true, &chunk[..8], usize::from(id));
        }
        assert_eq!(r.pending.len(), MAX_PENDING);
        assert_eq!(r.dropped, 1 + 10);
        let udp = UdpFrames { frags: r, frames: 0, other_frames: 0 };
        assert_eq!(udp.incomplete(), 11 + MAX_PENDING as u64);
    }

    /// The same datagram behind every link header the readers know.
    #[test]
    fn every_link_type_yields_the_datagram() {
        let eth = eth_ipv4_udp(b"hello", 1, None);
        let ip = &eth[18..eth.len() - 6];
        let with = |head: &[u8]| [head, ip].concat();
        let mut sll = vec![0u8; 16];
        sll[14..16].copy_from_slice(&[0x08, 0x00]);
        let mut sll2 = vec![0u8; 20];
        sll2[..2].copy_from_slice(&[0x08, 0x00]);
        for (lt, frame) in [
            (1u32, eth.clone()),
            (101, ip.to_vec()),
            (228, ip.to_vec()),
            (113, with(&sll)),
            (276, with(&sll2)),
            (0, with(&2u32.to_le_bytes())),
            (108, with(&2u32.to_be_bytes())),
        ] {
            let mut file = pcap_file(&[&frame]);
            file[20..24].copy_from_slice(&lt.to_le_bytes());
            let c = read_capture(&file).unwrap();
            assert_eq!(c.datagrams.len(), 1, "link type {lt}");
            assert_eq!(c.datagrams[0].payload, b"hello", "link type {lt}");
        }
        // Cut inside the cooked header: no datagram, no panic.
        let mut file = pcap_file(&[&sll[..10]]);
        file[20..24].copy_from_slice(&113u32.to_le_bytes());
        assert_eq!(read_capture(&file).unwrap().other_frames, 1);
    }

    #[test]
    fn ipv4_fragments_are_reassembled_at_the_last_frame() {
        let payload: Vec<u8> = (0..40u8).collect();
        // UDP header (8) + payload (40) = 48 bytes: 16 in the first fragment, 32 in the second.
        let mut whole = vec![0x30, 0x39, 0x08, 0x07, 0, 48, 0, 0];
        whole.extend_from_slice(&payload);
        let first = eth_ipv4_udp(&payload, 7, Some((0, true)));
        let second = eth_ipv4_udp(&whole[16..], 7, Some((16, false)));
        let other = eth_ipv4_udp(b"x", 8, None);
        let c = read_capture(&pcap_file(&[&first, &other, &second])).unwrap();
        assert_eq!(c.datagrams.len(), 2);
        assert_eq!(c.datagrams[1].payload, payload);
        assert_eq!(c.datagrams[1].frame, 3);
        assert_eq!(c.other_frames, 1);
    }

    #[test]
    fn damage_is_reported_not_panicked() {
        let first = eth_ipv4_udp(b"a", 1, None);
        let file = pcap_file(&[&first, &eth_ipv4_udp(b"b", 2, None)]);
        for cut in 0..file.len() {
            let r = read_capture(&file[..cut]);
            if cut >= 24 {
                let c = r.unwrap();
                assert!(c.datagrams.len() <= 2);
            }
        }
        assert!(read_capture(b"GIF89a").is_err());
        // The second record is cut short: the error points at its header.
        assert_eq!(
            udp_datagrams(&file[..file.len() - 1]).unwrap_err().offset,
            24 + 16 + first.len()
        );
    }
}
