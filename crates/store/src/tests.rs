use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

use super::*;

pub(crate) fn stimulus_coords(n: usize) -> RecordBatch {
    let ids: Vec<String> = (0..n).map(|i| format!("s{i:05}")).collect();
    let cats: Vec<&str> = (0..n).map(|i| ["face", "car", "boat"][i % 3]).collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("stimulus_id", DataType::Utf8, false),
            Field::new("category_name", DataType::Utf8, false),
            Field::new("repetition", DataType::Int64, false),
        ])),
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(cats)),
            Arc::new(Int64Array::from_iter_values((0..n as i64).map(|i| i % 2))),
        ],
    )
    .unwrap()
}

pub(crate) fn neuroid_coords(n: usize) -> RecordBatch {
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("neuroid_id", DataType::Utf8, false),
            Field::new("x", DataType::Float64, true),
        ])),
        vec![
            Arc::new(StringArray::from(
                (0..n).map(|i| format!("n{i}")).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| i as f64 * 0.5),
            )),
        ],
    )
    .unwrap()
}

fn value(r: usize, c: usize) -> f32 {
    (r * 1000 + c) as f32 * 0.25
}

fn write(
    dir: &std::path::Path,
    rows: usize,
    cols: usize,
    chunk_rows: u64,
    batch: usize,
) -> AssemblyMeta {
    let mut spec = AssemblySpec::new(
        "test.assembly",
        "neural",
        &["presentation", "neuroid"],
        &[cols as u64],
    );
    spec.chunk_rows = Some(chunk_rows);
    let mut w = AssemblyWriter::<f32>::create(dir, spec).unwrap();
    let mut r = 0;
    while r < rows {
        let n = batch.min(rows - r);
        let data: Vec<f32> = (r..r + n)
            .flat_map(|i| (0..cols).map(move |j| value(i, j)))
            .collect();
        w.append(&data).unwrap();
        r += n;
    }
    w.finish(vec![
        ("presentation".into(), stimulus_coords(rows)),
        ("neuroid".into(), neuroid_coords(cols)),
    ])
    .unwrap()
}

#[test]
fn round_trip_with_odd_batches_and_slices() {
    let dir = tempfile::tempdir().unwrap();
    let meta = write(dir.path(), 103, 17, 10, 7);
    assert_eq!(meta.shape, vec![103, 17]);
    let a = Assembly::open(dir.path()).unwrap();
    let all = a.read_f32(&a.full()).unwrap();
    for r in 0..103 {
        for c in 0..17 {
            assert_eq!(all[[r, c]], value(r, c));
        }
    }
    let block = a.read_f64(&[95..103, 3..9]).unwrap();
    assert_eq!(block.shape(), &[8, 6]);
    assert_eq!(block[[7, 5]], value(102, 8) as f64);
    assert_eq!(a.coords("presentation").unwrap().num_rows(), 103);
    assert_eq!(a.nan_count().unwrap(), 0);
    assert_eq!(find_assemblies(dir.path()), vec![dir.path().to_path_buf()]);
}

#[test]
fn identical_bytes_for_identical_input() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write(a.path(), 50, 9, 8, 50);
    write(b.path(), 50, 9, 8, 3);
    let list = |d: &std::path::Path| {
        let mut v = vec![];
        fn walk(d: &std::path::Path, base: &std::path::Path, v: &mut Vec<(String, Vec<u8>)>) {
            for e in std::fs::read_dir(d).unwrap().flatten() {
                if e.path().is_dir() {
                    walk(&e.path(), base, v);
                } else {
                    v.push((
                        e.path()
                            .strip_prefix(base)
                            .unwrap()
                            .to_string_lossy()
                            .to_string(),
                        std::fs::read(e.path()).unwrap(),
                    ));
                }
            }
        }
        walk(d, d, &mut v);
        v.sort();
        v
    };
    assert_eq!(list(a.path()), list(b.path()));
}

#[test]
fn wide_rows_are_chunked_in_columns_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = AssemblySpec::new(
        "wide",
        "activations",
        &["presentation", "neuroid"],
        &[20_000],
    );
    spec.chunk_rows = Some(4);
    let mut w = AssemblyWriter::<f32>::create(dir.path(), spec).unwrap();
    w.append(&vec![1.5f32; 9 * 20_000]).unwrap();
    let meta = w
        .finish(vec![
            ("presentation".into(), stimulus_coords(9)),
            ("neuroid".into(), neuroid_coords(20_000)),
        ])
        .unwrap();
    assert_eq!(meta.chunk_shape, vec![4, 8192]);
    let a = Assembly::open(dir.path()).unwrap();
    assert_eq!(a.chunks_in(&[0..1, 0..100]).len(), 1);
    assert_eq!(a.chunks_in(&a.full()).len(), 3 * 3);
    assert!(
        a.read_f32(&[8..9, 19_990..20_000])
            .unwrap()
            .iter()
            .all(|&v| v == 1.5)
    );
}

#[test]
fn bad_coords_and_requests_name_the_culprit() {
    let dir = tempfile::tempdir().unwrap();
    let spec = AssemblySpec::new("x", "neural", &["presentation", "neuroid"], &[3]);
    let mut w = AssemblyWriter::<f32>::create(dir.path(), spec).unwrap();
    w.append(&[1.0; 6]).unwrap();
    let e = w
        .finish(vec![
            ("presentation".into(), stimulus_coords(5)),
            ("neuroid".into(), neuroid_coords(3)),
        ])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("coords/presentation.parquet")
            && e.contains("5 rows for dimension `presentation` of length 2"),
        "{e}"
    );
    assert!(
        !dir.path().join("zarr.json").exists(),
        "no group metadata after a failed finish"
    );
    assert!(Assembly::open(dir.path()).is_err());

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 10, 4, 5, 10);
    let a = Assembly::open(dir.path()).unwrap();
    assert!(
        a.read_f32(&[0..11, 0..4])
            .unwrap_err()
            .to_string()
            .contains("do not fit")
    );
    // A damaged chunk is named.
    std::fs::write(dir.path().join("values/c/1/0"), b"garbage").unwrap();
    let e = a.read_f32(&a.full()).unwrap_err().to_string();
    assert!(e.contains("values/c/1/0"), "{e}");
    // A coordinate file with the wrong schema is named with its column.
    let bad = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)])),
        vec![Arc::new(StringArray::from(vec!["a"; 10]))],
    )
    .unwrap();
    write_parquet(&dir.path().join("coords/presentation.parquet"), &bad).unwrap();
    let e = a.coords("presentation").unwrap_err().to_string();
    assert!(
        e.contains("coords/presentation.parquet: column `stimulus_id`: is missing"),
        "{e}"
    );
}

#[test]
fn chunk_files_have_the_bytes_zarrs_writes() {
    // Our writer hands zarrs whole chunks (gathering column-split ones itself); the files
    // must be those zarrs writes from the whole array — edge chunks padded with the fill
    // value, chunks of fill value not stored — for full bands and the last partial one.
    let wide = same_files_as_zarrs(19, 20_000, Codec::default());
    let narrow = same_files_as_zarrs(19, 300, Codec::default());
    let wide_zstd = same_files_as_zarrs(19, 20_000, Codec::Zstd { level: -3 });
    let narrow_zstd = same_files_as_zarrs(19, 300, Codec::Zstd { level: 3 });
    assert_eq!((wide, narrow, wide_zstd, narrow_zstd), (5 * 3, 5, 5 * 3, 5));
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 19, 20_000, 4, 19);
    let a = Assembly::open(dir.path()).unwrap();
    let mut buf = Vec::new();
    a.read_chunk_f32_into(&[4, 2], &mut buf).unwrap();
    assert_eq!(buf.len(), 4 * 8192);
    // Row 16, column 16_384 + 5; the padding past column 20_000 is NaN.
    assert_eq!(buf[5], value(16, 16_389));
    assert!(buf[8191].is_nan());
}

#[test]
fn sharded_chunks_are_read_whole_or_by_rows() {
    // Wide rows: each chunk file is a shard of one-row bands. The fast path must decode what
    // zarrs decodes (the last shard's padding rows are bands of fill value, not stored), read
    // only the bands of the rows asked for, and name the chunk when its index is damaged.
    let dir = tempfile::tempdir().unwrap();
    let meta = write(dir.path(), 19, 20_000, 4, 7);
    assert_eq!(meta.inner_chunk_shape, Some(vec![1, 8192]));
    let a = Assembly::open(dir.path()).unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for idx in a.chunks_in(&a.full()) {
        let mut fast = Vec::new();
        a.read_chunk_f32_into(&idx, &mut fast).unwrap();
        let slow = a.read_chunk::<f32>(&idx).unwrap();
        assert_eq!(bits(&fast), bits(slow.as_slice().unwrap()), "{idx:?}");
    }
    // Block reads through the fast path (only the bands of the rows asked for) against
    // zarrs' decoding of whole shards.
    for r in [0..19, 5..6, 3..14, 18..19, 7..7] {
        for c in [0..20_000, 8_000..8_500, 16_383..20_000] {
            let ranges = [r.clone(), c.clone()];
            let fast = a.read_f32(&ranges).unwrap();
            let slow = a.read::<f32>(&ranges).unwrap();
            assert_eq!(fast.shape(), slow.shape());
            assert_eq!(
                bits(fast.as_slice().unwrap()),
                bits(slow.as_slice().unwrap()),
                "{r:?} {c:?}"
            );
        }
    }
    let mut buf = Vec::new();
    let bands = a
        .read_chunk_rows_f32_into(&[2, 1], Some(&[1, 3]), &mut buf)
        .unwrap();
    assert_eq!((bands, buf.len()), (2, 4 * 8192));
    assert_eq!(buf[8192 + 7], value(9, 8192 + 7));
    assert_eq!(buf[3 * 8192], value(11, 8192));
    assert!(
        buf[0].is_nan() && buf[2 * 8192].is_nan(),
        "rows not asked for"
    );
    // Row 19 of the last shard is padding: a band of fill value.
    a.read_chunk_rows_f32_into(&[4, 0], Some(&[2, 3]), &mut buf)
        .unwrap();
    assert_eq!(buf[2 * 8192 + 1], value(18, 1));
    assert!(buf[3 * 8192..].iter().all(|x| x.is_nan()));
    let e = a
        .read_chunk_rows_f32_into(&[2, 1], Some(&[1, 4]), &mut buf)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("values/c/2/1") && e.contains("row 4 is outside"),
        "{e}"
    );
    // The group's chunk shape must be the array's.
    let group = dir.path().join("zarr.json");
    let text = std::fs::read_to_string(&group).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["attributes"]["ventral"]["chunk_shape"][0] = 8.into();
    std::fs::write(&group, v.to_string()).unwrap();
    let e = Assembly::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("chunk shape"), "{e}");
    std::fs::write(&group, text).unwrap();
    let path = dir.path().join("values/c/2/1");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    for rows in [Some(&[1u64][..]), None] {
        let e = a
            .read_chunk_rows_f32_into(&[2, 1], rows, &mut buf)
            .unwrap_err()
            .to_string();
        assert!(e.contains("values/c/2/1") && e.contains("checksum"), "{e}");
    }
    // A band whose header is damaged: an error naming the chunk and the band.
    let mut bytes = std::fs::read(dir.path().join("values/c/3/0")).unwrap();
    bytes[5] ^= 0xff;
    std::fs::write(dir.path().join("values/c/3/0"), bytes).unwrap();
    let e = a
        .read_chunk_rows_f32_into(&[3, 0], Some(&[0]), &mut buf)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("values/c/3/0") && e.contains("inner chunk 0"),
        "{e}"
    );
}

/// Write `rows × cols` (rows 4..8 NaN) with our writer and with zarrs alone; compare every
/// chunk file, and our fast path's decoding of it with zarrs'; returns how many chunk keys
/// were compared.
fn same_files_as_zarrs(rows: usize, cols: usize, codec: Codec) -> usize {
    use zarrs::array::codec::{ShardingCodecOptions, SubchunkWriteOrder};
    use zarrs::array::{Array, CodecSpecificOptions};
    use zarrs::filesystem::FilesystemStore;
    // Rows 4..8 (chunk row 1) are all NaN, the fill value: zarrs stores no file for them.
    let data: Vec<f32> = (0..rows)
        .flat_map(|i| {
            (0..cols).map(move |j| {
                if (4..8).contains(&i) {
                    f32::NAN
                } else {
                    value(i, j)
                }
            })
        })
        .collect();
    let ours = tempfile::tempdir().unwrap();
    let mut spec = AssemblySpec::new(
        "wide",
        "activations",
        &["presentation", "neuroid"],
        &[cols as u64],
    );
    spec.chunk_rows = Some(4);
    spec.codec = codec;
    let mut w = AssemblyWriter::<f32>::create(ours.path(), spec).unwrap();
    w.append(&data).unwrap();
    w.finish(vec![
        ("presentation".into(), stimulus_coords(rows)),
        ("neuroid".into(), neuroid_coords(cols)),
    ])
    .unwrap();
    // zarrs' array with our metadata (the same codecs: shards of row bands for wide rows),
    // writing shards' inner chunks in C order as our writer asks.
    let theirs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(theirs.path().join("values")).unwrap();
    let meta = std::fs::read_to_string(ours.path().join("values/zarr.json")).unwrap();
    let sharded = meta.contains("sharding_indexed");
    std::fs::write(theirs.path().join("values/zarr.json"), meta).unwrap();
    let store = Arc::new(FilesystemStore::new(theirs.path()).unwrap());
    let array = Array::open(store, "/values")
        .unwrap()
        .with_codec_specific_options(&CodecSpecificOptions::default().with_option(
            ShardingCodecOptions::default().with_subchunk_write_order(SubchunkWriteOrder::C),
        ));
    assert_eq!(sharded, cols > 4096, "{cols} columns");
    array
        .store_array_subset(&[0..rows as u64, 0..cols as u64], &data[..])
        .unwrap();
    let asm = Assembly::open(ours.path()).unwrap();
    let name = if matches!(codec, Codec::Zstd { .. }) {
        "zstd"
    } else {
        "blosc"
    };
    assert!(
        meta_text(ours.path()).contains(&format!("\"{name}\"")),
        "{codec:?}"
    );
    let mut compared = 0;
    for r in 0..rows.div_ceil(4) {
        for c in 0..cols.div_ceil(8192) {
            let key = format!("values/c/{r}/{c}");
            let a = std::fs::read(ours.path().join(&key)).ok();
            let b = std::fs::read(theirs.path().join(&key)).ok();
            assert_eq!(a, b, "{key}");
            assert_eq!(a.is_none(), r == 1, "{key}");
            let (mut fast, idx) = (Vec::new(), [r as u64, c as u64]);
            asm.read_chunk_f32_into(&idx, &mut fast).unwrap();
            let slow = asm.read_chunk::<f32>(&idx).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast), bits(slow.as_slice().unwrap()), "{key}");
            compared += 1;
        }
    }
    compared
}

fn meta_text(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("values/zarr.json")).unwrap()
}

#[test]
fn a_checked_read_shows_the_file_it_decodes_and_decodes_nothing_it_refuses() {
    // Plain chunks (narrow rows) and shards of row bands (wide rows): a whole-chunk read
    // hands the check the chunk file's bytes; a read of some bands or of an absent chunk
    // hands it none; a refusal returns before anything is decoded.
    for (cols, chunk) in [(17usize, [1u64, 0]), (20_000, [2, 1])] {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 19, cols, 4, 7);
        let a = Assembly::open(dir.path()).unwrap();
        let file = std::fs::read(dir.path().join(a.chunk_key(&chunk))).unwrap();
        let mut seen = None;
        let mut buf = Vec::new();
        let blocks = a
            .read_chunk_rows_f32_checked(&chunk, None, &mut buf, |b| {
                seen = Some(b.map(<[u8]>::to_vec));
                Ok::<(), ()>(())
            })
            .unwrap()
            .unwrap();
        assert_eq!(seen, Some(Some(file.clone())), "{cols} columns");
        let mut plain = Vec::new();
        assert_eq!(
            a.read_chunk_rows_f32_into(&chunk, None, &mut plain)
                .unwrap(),
            blocks
        );
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&buf), bits(&plain));
        // Refused: nothing decoded into the buffer.
        let mut untouched = vec![7.0f32; 3];
        let r = a
            .read_chunk_rows_f32_checked(&chunk, None, &mut untouched, |_| Err("no"))
            .unwrap();
        assert_eq!(r, Err("no"));
        assert_eq!(untouched, vec![7.0; 3]);
        // Some rows of a shard: no bytes to check.
        if cols == 20_000 {
            let mut seen = None;
            a.read_chunk_rows_f32_checked(&chunk, Some(&[1]), &mut buf, |b| {
                seen = Some(b.is_some());
                Ok::<(), ()>(())
            })
            .unwrap()
            .unwrap();
            assert_eq!(seen, Some(false));
        }
        // An absent chunk: no bytes either (the caller decides what that means).
        std::fs::remove_file(dir.path().join(a.chunk_key(&chunk))).unwrap();
        let mut seen = None;
        a.read_chunk_rows_f32_checked(&chunk, None, &mut buf, |b| {
            seen = Some(b.is_some());
            Ok::<(), ()>(())
        })
        .unwrap()
        .unwrap();
        assert_eq!(seen, Some(false));
    }
}

/// Files held in memory, counting what is asked for: a stand-in for a store that lies
/// elsewhere (the remote cache's objects).
#[derive(Debug)]
struct Memory {
    files: std::collections::BTreeMap<String, Vec<u8>>,
    /// Paths and byte counts handed out, in order.
    asked: std::sync::Mutex<Vec<(String, usize)>>,
}

impl Memory {
    /// Every file under `dir`, by its path inside `prefix/`.
    fn of(dir: &std::path::Path, prefix: &str) -> Memory {
        let mut files = std::collections::BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(dir).unwrap().to_string_lossy().to_string();
                    files.insert(format!("{prefix}/{rel}"), std::fs::read(&p).unwrap());
                }
            }
        }
        Memory {
            files,
            asked: Default::default(),
        }
    }

    fn bytes_asked(&self) -> usize {
        self.asked.lock().unwrap().iter().map(|(_, n)| n).sum()
    }
}

impl Source for Memory {
    fn read(&self, path: &str) -> std::io::Result<Option<Bytes>> {
        let got = self.files.get(path).cloned();
        if let Some(b) = &got {
            self.asked.lock().unwrap().push((path.into(), b.len()));
        }
        Ok(got.map(Bytes::from))
    }

    fn read_ranges(
        &self,
        path: &str,
        ranges: &[std::ops::Range<u64>],
    ) -> std::io::Result<Option<Vec<Bytes>>> {
        let Some(b) = self.files.get(path) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for r in ranges {
            let part = b
                .get(r.start as usize..r.end as usize)
                .ok_or_else(|| std::io::Error::other(format!("{r:?} past the end")))?;
            self.asked.lock().unwrap().push((path.into(), part.len()));
            out.push(Bytes::copy_from_slice(part));
        }
        Ok(Some(out))
    }

    fn size(&self, path: &str) -> std::io::Result<Option<u64>> {
        Ok(self.files.get(path).map(|b| b.len() as u64))
    }

    fn folders(&self, path: &str) -> Vec<String> {
        let under = format!("{path}/");
        let mut out: Vec<String> = self
            .files
            .keys()
            .filter_map(|k| k.strip_prefix(&under))
            .filter_map(|rest| rest.split_once('/').map(|(d, _)| d.to_string()))
            .collect();
        out.dedup();
        out
    }

    fn locate(&self, path: &str) -> std::path::PathBuf {
        format!("mem://{path}").into()
    }
}

#[test]
fn a_store_read_through_another_source_gives_the_same_values_and_reads_only_what_it_needs() {
    // A sharded store (wide rows) and a plain one (narrow rows), both under `out/…` of a
    // source that is not a folder: found, opened and read like on disk, bit for bit, and a
    // read of a few rows asks for the shard's index and those rows' bands only.
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("acts/wide"), 19, 20_000, 4, 7);
    write(&dir.path().join("acts/narrow"), 19, 300, 4, 7);
    let mem = Arc::new(Memory::of(dir.path(), "out"));
    let found = find_assemblies_in(mem.as_ref(), "out");
    assert_eq!(found, ["out/acts/narrow", "out/acts/wide"]);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for name in ["narrow", "wide"] {
        let local = Assembly::open(&dir.path().join("acts").join(name)).unwrap();
        let there = Assembly::open_in(mem.clone(), &format!("out/acts/{name}")).unwrap();
        assert_eq!(there.meta(), local.meta());
        assert_eq!(
            there.dir(),
            std::path::Path::new(&format!("mem://out/acts/{name}"))
        );
        for dim in ["presentation", "neuroid"] {
            assert_eq!(there.coords(dim).unwrap(), local.coords(dim).unwrap());
        }
        let cols = local.meta().shape[1];
        for ranges in [
            vec![0..19, 0..cols],
            vec![5..6, 10..200],
            vec![3..14, 0..cols],
        ] {
            let (a, b) = (
                there.read_f32(&ranges).unwrap(),
                local.read_f32(&ranges).unwrap(),
            );
            assert_eq!(bits(a.as_slice().unwrap()), bits(b.as_slice().unwrap()));
            // Through zarrs' codec chain (the storage adapter) as well.
            let (a, b) = (
                there.read::<f32>(&ranges).unwrap(),
                local.read::<f32>(&ranges).unwrap(),
            );
            assert_eq!(bits(a.as_slice().unwrap()), bits(b.as_slice().unwrap()));
        }
    }
    // One row of the wide store: its shard's index and one band per column chunk, a small
    // part of the store's bytes.
    let wide = Assembly::open_in(mem.clone(), "out/acts/wide").unwrap();
    mem.asked.lock().unwrap().clear();
    let row = wide.read_f32(&[6..7, 0..20_000]).unwrap();
    assert_eq!(row[[0, 19_999]], value(6, 19_999));
    let asked = mem.asked.lock().unwrap().clone();
    let files: std::collections::BTreeSet<&str> = asked.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        files,
        [
            "out/acts/wide/values/c/1/0",
            "out/acts/wide/values/c/1/1",
            "out/acts/wide/values/c/1/2"
        ]
        .into_iter()
        .collect(),
        "{asked:?}"
    );
    assert_eq!(asked.len(), 6, "an index and a band per shard: {asked:?}");
    let shard_bytes: usize = ["0", "1", "2"]
        .iter()
        .map(|c| mem.files[&format!("out/acts/wide/values/c/1/{c}")].len())
        .sum();
    assert!(
        mem.bytes_asked() * 3 < shard_bytes,
        "{} of {shard_bytes}",
        mem.bytes_asked()
    );
    // A file the source lacks is named by where the source says it is.
    let mut gone = Memory::of(dir.path(), "out");
    gone.files.remove("out/acts/narrow/coords/neuroid.parquet");
    let a = Assembly::open_in(Arc::new(gone), "out/acts/narrow").unwrap();
    let e = a.coords("neuroid").unwrap_err().to_string();
    assert!(
        e.contains("mem://out/acts/narrow") && e.contains("coords/neuroid.parquet"),
        "{e}"
    );
}
