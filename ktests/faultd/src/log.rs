//! Timestamped logging to stderr: every line starts with the UTC time of day in
//! milliseconds, so a case can line up faultd's log with the guest's dmesg.

use std::time::{SystemTime, UNIX_EPOCH};

/// `HH:MM:SS.mmm` (UTC) of now.
pub fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ms = now.as_millis();
    let day_ms = ms % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000
    )
}

/// `log!("fmt", args…)`: one line on stderr, timestamped. Write errors are ignored
/// (a closed stderr must not take the tool down).
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!("{} {}\n", $crate::log::timestamp(), format_args!($($arg)*));
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }};
}
