//! Fuzz target: `countersign::fuzz::admin_query` must not panic on any input.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    countersign::fuzz::admin_query(data);
});
