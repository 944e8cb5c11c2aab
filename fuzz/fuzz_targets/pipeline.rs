//! `normalizer::pipeline::handle` on arbitrary Kafka payloads. First byte even: the rest is the
//! record payload as is (absent when empty); odd: the rest is a request (`fuzz/src/lib.rs`)
//! stored as a valid raw envelope. Every input gives events and dead letters (bounded in
//! number and size), each decodable, with the record's coordinates; nothing panics.
//!
//! With `FUZZ_DUMP_AVRO=<dir>` set, every payload and output is also written there as an
//! `avro` target input (`fuzz/seed.sh` seeds the Avro corpus this way from the fixtures).
#![no_main]
use libfuzzer_sys::fuzz_target;
use normalizer::dead_letter::Coordinates;
use normalizer::pipeline::{handle, OutputBounds};
use normalizer::providers::NormalizeOptions;
use sendtrace_fuzz as f;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::LazyLock;

static DUMP: LazyLock<Option<PathBuf>> = LazyLock::new(|| std::env::var_os("FUZZ_DUMP_AVRO").map(PathBuf::from));

/// Writes `bytes` as an `avro` target input decoding them with `kind` (0 raw, 1 event, 2 dead letter).
fn dump(kind: u8, bytes: &[u8]) {
    let Some(dir) = DUMP.as_ref() else { return };
    let mut input = vec![kind];
    input.extend_from_slice(bytes);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    input.hash(&mut h);
    let _ = std::fs::write(dir.join(format!("dump-{:016x}", h.finish())), input);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let payload = if mode & 1 == 0 {
        if rest.is_empty() { None } else { Some(rest.to_vec()) }
    } else {
        let Some(req) = f::request(rest) else { return };
        Some(schemas::avro::encode_raw(&req.envelope()).expect("a raw envelope encodes"))
    };
    if let Some(p) = &payload {
        dump(0, p);
    }
    let bounds = OutputBounds::default();
    let at = Coordinates { topic: "raw", partition: 3, offset: 42 };
    let out = handle(at, payload.as_deref(), &NormalizeOptions::default(), bounds, f::NOW_MS);
    let dead: Vec<_> = out.iter().filter(|o| o.dead_letter).collect();
    assert!(dead.len() <= bounds.max_dead_letters_per_record + 1, "dead letters per record are bounded");
    for o in dead {
        assert!(o.payload.len() <= bounds.dead_letter_raw_max_bytes + normalizer::dead_letter::MAX_OVERHEAD_BYTES);
        let dl = schemas::avro::decode_dead_letter(&o.payload).expect("dead letter decodes");
        assert!(!dl.reason_code.is_empty() && !dl.reason.is_empty());
        assert_eq!((dl.raw_topic.as_str(), dl.raw_partition, dl.raw_offset), ("raw", 3, 42));
    }
    for o in &out {
        dump(if o.dead_letter { 2 } else { 1 }, &o.payload);
    }
    for o in out.iter().filter(|o| !o.dead_letter) {
        let e = schemas::avro::decode_event(&o.payload).expect("event decodes");
        assert_eq!(o.key, e.delivery_key);
        assert_eq!((e.raw_partition, e.raw_offset), (3, 42));
    }
});
