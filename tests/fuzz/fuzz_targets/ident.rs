#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ykt_fuzz::ident(data));
