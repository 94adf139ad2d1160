//! `weir decode`: every record, template, sample and error of a capture of
//! export datagrams, for people debugging an exporter (what sflowtool and
//! `nfcapd -v 3` show).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use weir_capture::{FramesError, read_frames};
use weir_decode::pcap::UdpFrames;
use weir_decode::{Datagram, DecodeError, Decoder, DecoderConfig, Event, SamplingPolicy, Sink};
use weir_record::{FIELDS, FieldType, FlowRecord, format_mac, u128_to_ip};

use crate::units::fmt_time_ms;

/// Output formats of `weir decode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DecodeFormat {
    /// One line per header, template, flow, sample or error.
    Text,
    /// One CSV row per flow, every registry field a column.
    Csv,
    /// One JSON object per line per header, template, flow, sample or error.
    Json,
}

/// Arguments of `weir decode`.
#[derive(Debug, Clone, Args)]
pub struct DecodeArgs {
    /// Capture of export datagrams (pcap or pcapng, gzip accepted); `-`
    /// reads stdin.
    #[arg(value_name = "FILE.pcap|-")]
    pub capture: PathBuf,
    /// Only datagrams to this UDP destination port (default: every UDP datagram).
    #[arg(long)]
    pub port: Option<u16>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = DecodeFormat::Text)]
    pub format: DecodeFormat,
    /// Keep sampled counters as exported instead of multiplying by the rate.
    #[arg(long)]
    pub raw_counters: bool,
}

struct Collect {
    flows: Vec<FlowRecord>,
    lines: Vec<String>,
    format: DecodeFormat,
}

impl Sink for Collect {
    fn flow(&mut self, flow: &FlowRecord) {
        self.flows.push(flow.clone());
        self.lines.push(String::new()); // placeholder, filled in order below
    }

    fn event(&mut self, e: &Event<'_>) {
        let line = match self.format {
            DecodeFormat::Text => event_text(e),
            DecodeFormat::Json => event_json(e),
            DecodeFormat::Csv => return,
        };
        if let Some(l) = line {
            self.lines.push(l);
        }
    }
}

/// Runs `weir decode`. The capture is read frame by frame
/// (gzip decompressed on the fly), so its size does not matter.
pub fn run(args: &DecodeArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let sampling = if args.raw_counters { SamplingPolicy::Raw } else { SamplingPolicy::Scale };
    let mut dec = Decoder::new(DecoderConfig { sampling, ..Default::default() });
    if args.format == DecodeFormat::Csv {
        let names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        writeln!(out, "frame,exporter,{}", names.join(","))?;
    }
    let mut failed = 0u64;
    let mut datagrams = 0u64;
    let mut udp = UdpFrames::default();
    let damage = read_frames(&args.capture, |f| -> std::io::Result<()> {
        let Some(d) = udp.datagram(f) else { return Ok(()) };
        datagrams += 1;
        if args.port.is_some_and(|p| d.dst.port() != p) {
            return Ok(());
        }
        let dg = Datagram { exporter: d.src, received_ms: d.ts_ms, payload: &d.payload };
        let mut sink = Collect { flows: Vec::new(), lines: Vec::new(), format: args.format };
        if dec.decode(&dg, &mut sink).is_err() {
            failed += 1;
        }
        let mut flows = sink.flows.iter();
        for line in &sink.lines {
            if !line.is_empty() {
                writeln!(out, "{}", prefix(args.format, d.frame, line))?;
                continue;
            }
            let Some(f) = flows.next() else { continue };
            match args.format {
                DecodeFormat::Text => {
                    writeln!(out, "frame {} {}  flow {}", d.frame, d.src, flow_text(f))?
                }
                DecodeFormat::Json => {
                    writeln!(out, "{{\"frame\":{},\"type\":\"flow\",{}}}", d.frame, flow_json(f))?
                }
                DecodeFormat::Csv => writeln!(out, "{},{},{}", d.frame, d.src, flow_csv(f))?,
            }
        }
        Ok(())
    });
    let damage = match damage {
        Ok(None) => None,
        Ok(Some(e)) if e.offset == 0 => bail!("{}: {e}", args.capture.display()),
        Ok(Some(e)) => Some(e),
        Err(FramesError::Handler(e)) => return Err(e).context("writing"),
        Err(FramesError::Input(e)) => return Err(e.into()),
    };
    if let Some(e) = &damage {
        writeln!(out, "capture damaged at {e}; datagrams before it were decoded")?;
    }
    if args.format == DecodeFormat::Text {
        writeln!(
            out,
            "# {} frames, {} UDP datagrams, {} undecodable, {} fragmented datagrams incomplete",
            udp.frames,
            datagrams,
            failed,
            udp.incomplete()
        )?;
        for (k, a) in dec.accounts().iter() {
            writeln!(
                out,
                "# exporter {} {} domain {}: datagrams {} flows {} sequence-failures {} unknown-template-sets {} decode-errors {}",
                k.exporter,
                k.protocol.map_or("unknown", |p| p.name()),
                k.domain,
                a.datagrams,
                a.flows,
                a.sequence_failures,
                a.unknown_template_sets,
                a.decode_errors()
            )?;
        }
    }
    Ok(if damage.is_some() { crate::EXIT_FOUND_PROBLEMS } else { crate::EXIT_OK })
}

fn prefix(format: DecodeFormat, frame: usize, line: &str) -> String {
    match format {
        DecodeFormat::Json => format!("{{\"frame\":{frame},{}", &line[1..]),
        _ => format!("frame {frame} {line}"),
    }
}

fn value_text(ty: FieldType, v: u128) -> String {
    match ty {
        FieldType::Ip => u128_to_ip(v).to_string(),
        FieldType::Mac => format_mac(v as u64),
        FieldType::TimeMs => fmt_time_ms(v as i64),
        _ => v.to_string(),
    }
}

fn flow_text(f: &FlowRecord) -> String {
    FIELDS
        .iter()
        .filter_map(|i| f.get(i.field).map(|v| format!("{}={}", i.name, value_text(i.ty, v))))
        .collect::<Vec<_>>()
        .join(" ")
}

fn flow_csv(f: &FlowRecord) -> String {
    FIELDS
        .iter()
        .map(|i| f.get(i.field).map(|v| value_text(i.ty, v)).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(",")
}

fn flow_json(f: &FlowRecord) -> String {
    FIELDS
        .iter()
        .filter_map(|i| {
            f.get(i.field).map(|v| match i.ty {
                FieldType::Ip | FieldType::Mac | FieldType::TimeMs => {
                    format!("\"{}\":\"{}\"", i.name, value_text(i.ty, v))
                }
                _ => format!("\"{}\":{v}", i.name),
            })
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn error_fields(e: &DecodeError) -> (String, String) {
    (e.exporter.to_string(), format!("offset {}: {}", e.offset, e.kind))
}

fn event_text(e: &Event<'_>) -> Option<String> {
    Some(match e {
        Event::Header(h) => format!(
            "{}  {} domain {} sequence {} count {} uptime_ms {} unix_secs {}{}",
            h.exporter,
            h.protocol.name(),
            h.domain,
            h.sequence,
            h.count,
            h.sys_uptime_ms,
            h.unix_secs,
            h.agent.map(|a| format!(" agent {a}")).unwrap_or_default()
        ),
        Event::Template(t) => format!(
            "{}  {} template {} domain {}{} fields {}",
            t.exporter,
            if t.options { "options" } else { "data" },
            t.template_id,
            t.domain,
            if t.options { format!(" scope {}", t.scope_fields) } else { String::new() },
            t.fields
                .iter()
                .map(|f| if f.enterprise != 0 {
                    format!("{}.{}/{}", f.enterprise, f.id, f.length)
                } else {
                    format!("{}/{}", f.id, f.length)
                })
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Event::TemplateWithdrawn { exporter, domain, template_id } => {
            format!("{exporter}  template {template_id} domain {domain} withdrawn")
        }
        Event::Options(o) => format!(
            "{}  options record template {} domain {}: {}",
            o.exporter,
            o.template_id,
            o.domain,
            o.values
                .iter()
                .map(|(f, v)| format!("{}={}", f.id, hex(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Event::Counters(c) => format!(
            "counters agent {} source {} seq {} if {} speed {} in_octets {} out_octets {} in_errors {} out_errors {} in_discards {} out_discards {}",
            c.agent.map(|a| a.to_string()).unwrap_or_default(),
            c.source_id,
            c.sequence,
            c.if_index,
            c.if_speed,
            c.in_octets,
            c.out_octets,
            c.in_errors,
            c.out_errors,
            c.in_discards,
            c.out_discards
        ),
        Event::Error(e) => {
            let (ex, m) = error_fields(e);
            format!("{ex}  error {m}")
        }
        _ => return None,
    })
}

fn event_json(e: &Event<'_>) -> Option<String> {
    Some(match e {
        Event::Header(h) => format!(
            "{{\"type\":\"header\",\"exporter\":\"{}\",\"protocol\":{},\"domain\":{},\"sequence\":{},\"count\":{},\"sys_uptime_ms\":{},\"unix_secs\":{}{}}}",
            h.exporter,
            h.protocol.code(),
            h.domain,
            h.sequence,
            h.count,
            h.sys_uptime_ms,
            h.unix_secs,
            h.agent.map(|a| format!(",\"agent\":\"{a}\"")).unwrap_or_default()
        ),
        Event::Template(t) => format!(
            "{{\"type\":\"template\",\"exporter\":\"{}\",\"domain\":{},\"template_id\":{},\"options\":{},\"scope_fields\":{},\"fields\":[{}]}}",
            t.exporter,
            t.domain,
            t.template_id,
            t.options,
            t.scope_fields,
            t.fields
                .iter()
                .map(|f| format!(
                    "{{\"id\":{},\"enterprise\":{},\"length\":{}}}",
                    f.id, f.enterprise, f.length
                ))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Event::TemplateWithdrawn { exporter, domain, template_id } => format!(
            "{{\"type\":\"withdrawal\",\"exporter\":\"{exporter}\",\"domain\":{domain},\"template_id\":{template_id}}}"
        ),
        Event::Options(o) => format!(
            "{{\"type\":\"options\",\"exporter\":\"{}\",\"domain\":{},\"template_id\":{},\"values\":{{{}}}}}",
            o.exporter,
            o.domain,
            o.template_id,
            o.values
                .iter()
                .map(|(f, v)| format!("\"{}\":\"{}\"", f.id, hex(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Event::Counters(c) => format!(
            "{{\"type\":\"counters\",\"source_id\":{},\"sequence\":{},\"if_index\":{},\"if_speed\":{},\"in_octets\":{},\"out_octets\":{},\"in_errors\":{},\"out_errors\":{}}}",
            c.source_id,
            c.sequence,
            c.if_index,
            c.if_speed,
            c.in_octets,
            c.out_octets,
            c.in_errors,
            c.out_errors
        ),
        Event::Error(e) => format!(
            "{{\"type\":\"error\",\"exporter\":\"{}\",\"offset\":{},\"kind\":\"{}\",\"message\":{}}}",
            e.exporter,
            e.offset,
            e.kind.name(),
            json_str(&e.kind.to_string())
        ),
        _ => return None,
    })
}

fn hex(v: &[u8]) -> String {
    v.iter().map(|b| format!("{b:02x}")).collect()
}
