//! Hand-made checkpoints: views gathered as torch lays them out, and hostile files (views
//! outside or larger than their storage, self-referencing and deeply nested pickles) refused
//! with the file and the place named, in bounded time and memory.

use std::io::Write;
use std::path::Path;

use ventral_checkpoint::{Dtype, read_bytes};

/// A protocol-2 pickle of `{name: tensor}` whose tensor is a view (`offset`, `size`,
/// `stride`) of FloatStorage "0" with `numel` elements.
fn pickle(name: &str, numel: u8, offset: u8, size: &[u8], stride: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x02, b'}', b'('];
    let s = |p: &mut Vec<u8>, s: &str| {
        p.push(b'X');
        p.extend((s.len() as u32).to_le_bytes());
        p.extend(s.as_bytes());
    };
    s(&mut p, name);
    p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(");
    p.push(b'(');
    s(&mut p, "storage");
    p.extend(b"ctorch\nFloatStorage\n");
    s(&mut p, "0");
    s(&mut p, "cpu");
    p.extend([b'K', numel, b't', b'Q', b'K', offset]);
    for ints in [size, stride] {
        p.push(b'(');
        for &i in ints {
            p.extend([b'K', i]);
        }
        p.push(b't');
    }
    p.extend([0x89, b't', b'R', b'u', b'.']);
    p
}

/// A torch.save-style ZIP: `archive/data.pkl` and the storage `archive/data/0`.
fn zip(pkl: &[u8], storage: &[f32]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut buf);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("archive/data.pkl", opts).unwrap();
    z.write_all(pkl).unwrap();
    z.start_file("archive/data/0", opts).unwrap();
    for v in storage {
        z.write_all(&v.to_le_bytes()).unwrap();
    }
    z.finish().unwrap();
    buf.into_inner()
}

fn floats(data: &[u8]) -> Vec<f32> {
    data.chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn error(bytes: &[u8]) -> String {
    read_bytes(bytes, Path::new("hostile.pth"))
        .unwrap_err()
        .to_string()
}

#[test]
fn views_are_gathered_as_torch_lays_them_out() {
    let storage: Vec<f32> = (0..8).map(|i| i as f32).collect();
    // A transpose (size 3×2, strides 1, 3) one element into the storage.
    let file = zip(&pickle("module.w", 8, 1, &[3, 2], &[1, 3]), &storage);
    let t = read_bytes(&file, Path::new("t.pth")).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].name, "w", "the module. prefix is removed");
    assert_eq!((t[0].dtype, t[0].shape.clone()), (Dtype::Float, vec![3, 2]));
    assert_eq!(floats(&t[0].data), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    // A 0-dim tensor (as BatchNorm's counters are) and an empty one.
    let t = read_bytes(&zip(&pickle("n", 8, 7, &[], &[]), &storage), Path::new("t")).unwrap();
    assert_eq!(
        (t[0].shape.clone(), floats(&t[0].data)),
        (vec![], vec![7.0])
    );
    let t = read_bytes(
        &zip(&pickle("e", 8, 0, &[0, 4], &[4, 1]), &storage),
        Path::new("t"),
    );
    assert_eq!(t.unwrap()[0].data, Vec::<u8>::new());
}

#[test]
fn views_outside_or_larger_than_their_storage_are_refused() {
    let storage = [1.0f32; 4];
    let past = error(&zip(&pickle("w", 4, 2, &[3], &[1]), &storage));
    assert!(
        past.contains("hostile.pth: w (storage 0): storage holds 4 elements, the tensor needs 5"),
        "{past}"
    );
    // An expanded view: 250 × 250 elements out of 4 (any amount of memory, if believed).
    let expand = error(&zip(&pickle("w", 4, 0, &[250, 250], &[0, 0]), &storage));
    assert!(expand.contains("more than its storage's 4"), "{expand}");
    let ranks = error(&zip(&pickle("w", 4, 0, &[2, 2], &[1]), &storage));
    assert!(ranks.contains("impossible tensor"), "{ranks}");
    // The storage entry is shorter than the pickle says: the view is checked against it.
    let short = error(&zip(&pickle("w", 4, 0, &[4], &[1]), &storage[..2]));
    assert!(short.contains("storage holds 2 elements"), "{short}");
}

#[test]
fn a_self_referencing_pickle_is_refused_in_bounded_time() {
    // `L = []; L.append(copy(L))` forty times: 2^40 values if memo copies were believed.
    let mut p = vec![0x80, 0x02, b']', b'q', 0];
    for _ in 0..40 {
        p.extend([b'h', 0, b'a', b'q', 0]);
    }
    p.push(b'.');
    let t = std::time::Instant::now();
    let e = error(&zip(&p, &[]));
    assert!(e.contains("copies more values out of its memo"), "{e}");
    assert!(e.contains("hostile.pth: data.pkl offset"), "{e}");
    assert!(t.elapsed().as_secs() < 30);
}

#[test]
fn deep_nesting_is_refused() {
    let mut p = vec![0x80, 0x02];
    p.extend(std::iter::repeat_n(b']', 100_000));
    p.extend(std::iter::repeat_n(b'a', 99_999));
    p.push(b'.');
    let e = error(&zip(&p, &[]));
    assert!(e.contains("nested more than 256 deep"), "{e}");
}

#[test]
fn files_that_are_not_checkpoints_are_named() {
    assert!(error(b"hello").contains("not a torch.save file"));
    let e = error(&zip(b"\x80\x02K\x01.", &[]));
    assert!(e.contains("the saved object is not a dict"), "{e}");
    let e = error(&zip(b"\x80\x02}", &[]));
    assert!(e.contains("truncated pickle"), "{e}");
}
