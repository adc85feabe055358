//! The `checkpoint` fuzz target's corpus and regression inputs (`fuzz/`), replayed on the
//! stable toolchain: each input must be read or refused cleanly, never panic.

use ventral_testkit::campaign::replay_corpus;

#[test]
fn checkpoint_inputs_never_panic() {
    replay_corpus("checkpoint", ventral_checkpoint::fuzzing::checkpoint);
}

/// The seeds are real `torch.save` files (torch 2.11, both formats): a transposed view, a
/// second view into the same storage, fp16, a 0-dim int64 counter, bf16 and bool. They must
/// read whole, to the values torch saved (a fuzzer starting from refused inputs explores
/// little).
#[test]
fn the_seeds_read_to_what_torch_saved() {
    use ventral_checkpoint::{Dtype, read};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/checkpoint");
    let f32s = |d: &[u8]| -> Vec<f32> {
        d.chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let zip = read(&dir.join("zip.pth")).unwrap();
    let legacy = read(&dir.join("legacy.pth")).unwrap();
    assert_eq!(zip, legacy, "the two formats hold the same state dict");
    let names: Vec<&str> = zip.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "conv.weight",
            "conv.bias",
            "bn.num_batches_tracked",
            "shared"
        ]
    );
    // base = arange(12).reshape(3, 4); conv.weight = base.t(); shared = base[1].
    let want: Vec<f32> = (0..4)
        .flat_map(|c| (0..3).map(move |r| (r * 4 + c) as f32))
        .collect();
    assert_eq!(
        (zip[0].shape.clone(), f32s(&zip[0].data)),
        (vec![4, 3], want)
    );
    // fp16 0.5, -1.0, 2.0.
    assert_eq!(zip[1].dtype, Dtype::Half);
    assert_eq!(zip[1].data, [0x00, 0x38, 0x00, 0xbc, 0x00, 0x40]);
    assert_eq!((zip[2].dtype, zip[2].shape.clone()), (Dtype::Int64, vec![]));
    assert_eq!(zip[2].data, 7i64.to_le_bytes());
    assert_eq!(f32s(&zip[3].data), [4.0, 5.0, 6.0, 7.0]);
    let bare = read(&dir.join("bare.pth")).unwrap();
    assert_eq!(
        (bare[0].dtype, bare[0].data.clone()),
        (Dtype::BFloat16, vec![0x80, 0x3f, 0x80, 0x3f])
    );
    assert_eq!(
        (bare[1].dtype, bare[1].data.clone()),
        (Dtype::Bool, vec![1, 0])
    );
}
