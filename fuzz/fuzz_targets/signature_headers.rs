//! Fuzz target: `countersign::fuzz::signature_headers` must not panic on any input.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    countersign::fuzz::signature_headers(data);
});
