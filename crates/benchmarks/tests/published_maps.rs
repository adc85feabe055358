//! Brain-Score's published region→layer maps as the `commit` kind reads them
//! (`data/brainscore/region_layer_maps.toml`), checked against the zoo's candidate layers.

use std::path::Path;

use ventral_benchmarks::commit::{published_map, usable};
use ventral_model_spec::zoo::ZooArch;

fn shipped() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/brainscore/region_layer_maps.toml")
}

fn regions() -> Vec<String> {
    vec!["V4".into(), "IT".into()]
}

#[test]
fn alexnet_commits_to_brain_score_s_layers() {
    let (map, source) = published_map(&shipped(), "alexnet").unwrap().unwrap();
    assert_eq!(map.plugin, "alexnet");
    assert!(source.starts_with("brainscore-vision 2.4.2"), "{source}");
    let layers = ZooArch::find("alexnet").unwrap().layers();
    assert_eq!(
        usable(&map, &regions(), &layers).unwrap(),
        ["features.7", "features.12"]
    );
    // An architecture Brain-Score publishes no torchvision map for.
    assert!(published_map(&shipped(), "resnet18").unwrap().is_none());
}

/// Every shipped map is either usable with the zoo's candidate layers, or says why not:
/// Brain-Score's vgg_19 map names layers (`conv_relu_…`) that torchvision's VGG-19 lacks.
#[test]
fn every_shipped_map_is_checked_against_the_candidate_layers() {
    let text = std::fs::read_to_string(shipped()).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    let archs: Vec<String> = table["map"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["arch"].as_str().unwrap().to_string())
        .collect();
    assert!(archs.len() >= 6, "{archs:?}");
    for arch in archs {
        let (map, _) = published_map(&shipped(), &arch).unwrap().unwrap();
        let layers = ZooArch::find(&arch)
            .unwrap_or_else(|| panic!("{arch} is not a zoo architecture"))
            .layers();
        match usable(&map, &regions(), &layers) {
            Ok(chosen) => assert!(chosen.iter().all(|l| layers.contains(l))),
            Err(why) => {
                assert_eq!(arch, "vgg19", "{arch}: {why}");
                assert!(why.contains("conv_relu_"), "{why}");
            }
        }
    }
}

#[test]
fn a_damaged_maps_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("maps.toml");
    std::fs::write(&f, "[maps]\nformat = \"other\"\nsource = \"x\"\n").unwrap();
    let e = published_map(&f, "alexnet").unwrap_err().to_string();
    assert!(e.contains("maps.toml") && e.contains("maps.format"), "{e}");
    std::fs::write(&f, "[[map]]\narch = 1\n").unwrap();
    let e = published_map(&f, "alexnet").unwrap_err().to_string();
    assert!(e.contains("not a region→layer maps file"), "{e}");
}
