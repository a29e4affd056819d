//! Fuzz target: `countersign::fuzz::redact` must not panic on any input.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    countersign::fuzz::redact(data);
});
