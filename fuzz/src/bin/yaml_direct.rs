//! The direct YAML reader against serde-saphyr: wherever the direct reader answers (values
//! or a budget error), serde-saphyr must give the same, as a stream and as one document.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(s) = meshtls_fuzz::text(data) else {
        return;
    };
    if let Err(diff) = meshtls::manifest::check_direct_reader(s) {
        panic!("the direct reader and serde-saphyr differ: {diff}");
    }
});
