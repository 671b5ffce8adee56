#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| xray_fuzz::nuclei_jsonl(data));
