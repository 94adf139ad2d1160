//! A one-line progress bar on stderr, drawn only when stderr is a terminal
//! and the work takes longer than a moment.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Draws `[#####.....]  53.9%  DONE/TOTAL UNIT  RATE/s  ETA hh:mm:ss`.
pub struct Progress {
    enabled: bool,
    unit: &'static str,
    started: Instant,
    last_draw: Option<Instant>,
    drawn: bool,
}

/// Nothing is drawn before this much time has passed.
const QUIET_START: Duration = Duration::from_millis(700);
/// At most this often.
const REDRAW: Duration = Duration::from_millis(100);

impl Progress {
    /// A bar counting `unit` (e.g. "files"), drawn if `wanted` and stderr
    /// is a terminal.
    pub fn new(unit: &'static str, wanted: bool) -> Progress {
        Progress {
            enabled: wanted && std::io::stderr().is_terminal(),
            unit,
            started: Instant::now(),
            last_draw: None,
            drawn: false,
        }
    }

    /// Reports `done` of `total`.
    pub fn update(&mut self, done: u64, total: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let elapsed = now - self.started;
        if elapsed < QUIET_START || self.last_draw.is_some_and(|t| now - t < REDRAW) {
            return;
        }
        self.last_draw = Some(now);
        self.drawn = true;
        let line = render(done, total, elapsed, self.unit);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}\x1b[K");
        let _ = err.flush();
    }

    /// Clears the bar (call before printing anything else to stderr).
    pub fn finish(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The text of the bar (no terminal control characters).
pub fn render(done: u64, total: u64, elapsed: Duration, unit: &str) -> String {
    const WIDTH: usize = 30;
    let frac = if total == 0 { 0.0 } else { (done.min(total) as f64) / total as f64 };
    let filled = (frac * WIDTH as f64).round() as usize;
    let secs = elapsed.as_secs_f64().max(1e-9);
    let rate = done as f64 / secs;
    let eta = if done == 0 || rate <= 0.0 {
        "--:--:--".to_string()
    } else {
        let left = (total.saturating_sub(done) as f64 / rate).round() as u64;
        format!("{:02}:{:02}:{:02}", left / 3600, left / 60 % 60, left % 60)
    };
    format!(
        "[{}{}] {:5.1}%  {done}/{total} {unit}  {}/s  ETA {eta}",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        frac * 100.0,
        human(rate),
    )
}

fn human(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.1}G", v / 1e9),
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fraction_rate_and_eta() {
        let s = render(539, 1000, Duration::from_secs(10), "blocks");
        assert!(s.starts_with("[################..............]  53.9%  539/1000 blocks"), "{s}");
        assert!(s.contains("  54/s  ") && s.ends_with("ETA 00:00:09"), "{s}");
        let s = render(0, 0, Duration::from_secs(1), "files");
        assert!(s.contains("  0.0%") && s.ends_with("ETA --:--:--"), "{s}");
    }
}
