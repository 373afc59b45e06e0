//! The config parser must turn any text into a config or an error naming the problem.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = pid::config::Config::parse(text, "fuzz");
    }
});
