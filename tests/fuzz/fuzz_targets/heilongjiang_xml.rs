#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ykt_fuzz::heilongjiang_xml(data));
