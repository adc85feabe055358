"""Write the source manifests in this folder from their publishers' own metadata.

    python manifests/generate.py brainscore OUT_DIR   # needs the brainscore-vision wheel
    python manifests/generate.py torchvision OUT_DIR  # needs the torchvision wheel
    python manifests/generate.py region-layer-maps OUT_DIR  # needs the brainscore-vision wheel

`brainscore` writes brainio.toml (the BrainIO files pipelines/paper.toml reads) and
cornet.toml (the official CORnet-S checkpoint), reading the installed brainscore-vision
package's source with `ast` (nothing is imported or downloaded): its `data_registry` and
`stimulus_set_registry` entries carry each file's identifier, S3 bucket, version and SHA1,
and `brainscore_core`'s `get_path` names the file (`assy_<id>.nc`, `stimulus_<id>.csv|zip`).
`torchvision` writes torchvision.toml (the zoo's ImageNet checkpoints: URL, the SHA-256
prefix torch hub puts in the file name, the published size) from torchvision's weight
enums, and ilsvrc2012.toml and cifar100.toml from torchvision's dataset classes' MD5s.
`region-layer-maps` writes region_layer_maps.toml (committed as
data/brainscore/region_layer_maps.toml): Brain-Score's published region→layer map of each zoo
architecture whose Brain-Score plugin wraps torchvision's model, so that its layer names are
torchvision's module names (the `commit` kind uses them in the real profile).

The manifests are committed; `crates/cli/tests/fetch.rs` regenerates them and checks that
they are unchanged, so a new wheel that moves a file shows up as a failing test.
"""

import ast
import importlib.util
import os
import sys


def q(s):
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def header(name, description, to, source, manual=None):
    out = [
        "# Written by manifests/generate.py; edit that, not this.",
        "[manifest]",
        'format = "ventral-sources v1"',
        f"name = {q(name)}",
        f"description = {q(description)}",
        f"to = {q(to)}",
        f"source = {q(source)}",
    ]
    if manual:
        out.append(f"manual = {q(manual)}")
    return out


def file_entry(path, url=None, brainio=None, source=None, **hashes):
    out = ["", "[[file]]", f"path = {q(path)}"]
    if url:
        out.append(f"url = {q(url)}")
    for k in ("size", "sha1", "md5", "sha256", "sha256_prefix", "blake3"):
        v = hashes.get(k)
        if v is not None:
            out.append(f"{k} = {v}" if k == "size" else f"{k} = {q(v)}")
    if hashes.get("unpack"):
        out.append(f"unpack = {q(hashes['unpack'])}")
    if source:
        out.append(f"source = {q(source)}")
    if brainio:
        out.append("[file.brainio]")
        out.append("identifiers = [" + ", ".join(q(i) for i in brainio["identifiers"]) + "]")
        for k in ("published_identifier", "lookup_type", "class", "stimulus_set_identifier"):
            if brainio.get(k):
                out.append(f"{k} = {q(brainio[k])}")
    return out


def write(out_dir, name, lines):
    with open(os.path.join(out_dir, f"{name}.toml"), "w") as f:
        f.write("\n".join(lines) + "\n")


# --- brainscore-vision -----------------------------------------------------------------

def registry_calls(path):
    """{(registry, key): {keyword: literal}} of `registry[key] = lambda: f(...)` lines."""
    tree = ast.parse(open(path).read())
    out = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        t = node.targets[0]
        if not (isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name)):
            continue
        if not isinstance(node.value, ast.Lambda) or not isinstance(node.value.body, ast.Call):
            continue
        call = node.value.body
        kw = {}
        for k in call.keywords:
            if isinstance(k.value, ast.Constant):
                kw[k.arg] = k.value.value
            elif isinstance(k.value, ast.Name):
                kw[k.arg] = k.value.id
            elif isinstance(k.value, ast.Lambda) and isinstance(k.value.body, ast.Call):
                args = k.value.body.args
                if args and isinstance(args[0], ast.Constant):
                    kw[k.arg] = args[0].value
        key = t.slice.value if isinstance(t.slice, ast.Constant) else None
        out[(t.value.id, key)] = kw
    return out


def s3_url(bucket, filename, version_id):
    bucket, _, folder = bucket.partition("/")
    path = f"{folder}/{filename}" if folder else filename
    url = f"https://{bucket}.s3.amazonaws.com/{path}"
    if version_id and version_id != "null":
        url += f"?versionId={version_id}"
    return url


# What pipelines/paper.toml reads, and where Brain-Score publishes it: (module, registry key
# of the assembly, the identifiers the pipeline reads it under, those of its stimulus set).
BRAINIO = [
    ("majajhong2015", "MajajHong2015.public", ["dicarlo.MajajHong2015.public"],
     ["dicarlo.hvm-public"]),
    # Brain-Score fits the I2n readout on objectome.public
    # (benchmarks/rajalingham2018/benchmarks/benchmark.py): the pipeline's
    # dicarlo.objectome.fitting is that stimulus set.
    ("rajalingham2018", "Rajalingham2018.public", ["dicarlo.Rajalingham2018.public"],
     ["dicarlo.objectome.public", "dicarlo.objectome.fitting"]),
    ("kar2019", "Kar2019", ["dicarlo.Kar2019"], ["dicarlo.Kar2019"]),
]

UNPUBLISHED = [
    ("dicarlo.Kar2019.IT",
     "Kar et al. 2019's IT responses in 10-ms bins were never published as a BrainIO "
     "assembly; Brain-Score's dicarlo.Kar2019 holds only the object solution times. Supply "
     "a NeuronRecordingAssembly with a time_bin dimension under this identifier, or remove "
     "the early/late IT stages."),
    ("dicarlo.Kubilius2019.new_neurons",
     "The paper's generalisation recordings (new neurons, section 3.4) were never published; "
     "supply them under this identifier or remove the generalisation stages."),
    ("dicarlo.Rajalingham2018.new_objects",
     "The paper's new-objects behaviour (section 3.4) was never published; supply it under "
     "this identifier or remove the generalisation stages."),
    ("dicarlo.objectome.new_objects.fitting",
     "The stimuli of the new-objects behaviour were never published; supply them under this "
     "identifier or remove the generalisation stages."),
    ("dicarlo.objectome.new_objects",
     "As dicarlo.objectome.new_objects.fitting."),
]


def brainscore_package():
    """The installed brainscore_vision package's folder and its version."""
    spec = importlib.util.find_spec("brainscore_vision")
    root = spec.submodule_search_locations[0]
    version = next(
        (d[len("brainscore_vision-"):-len(".dist-info")] for d in os.listdir(os.path.dirname(root))
         if d.startswith("brainscore_vision-") and d.endswith(".dist-info")), "?")
    return root, version


def brainscore(out_dir):
    root, version = brainscore_package()
    lines = header(
        "brainio",
        "Brain-Score's BrainIO assemblies and stimulus sets that pipelines/paper.toml reads",
        "brainio",
        f"brainscore-vision {version}: brainscore_vision/data/<dataset>/__init__.py "
        "(data_registry, stimulus_set_registry: identifier, bucket, version_id, sha1); file "
        "names and URLs as brainscore_core.supported_data_standards.brainio.s3.get_path "
        "builds them")
    for module, key, ids, stim_ids in BRAINIO:
        rel = f"brainscore_vision/data/{module}/__init__.py"
        calls = registry_calls(os.path.join(root, "data", module, "__init__.py"))
        a = calls[("data_registry", key)]
        stim_key = a["stimulus_set_loader"]
        s = calls[("stimulus_set_registry", stim_key)]
        fname = f"assy_{a['identifier'].replace('.', '_')}.nc"
        lines += file_entry(
            fname, s3_url(a["bucket"], fname, a["version_id"]), sha1=a["sha1"],
            source=f"{rel}: data_registry['{key}']",
            brainio={"identifiers": ids, "published_identifier": a["identifier"],
                     "lookup_type": "assembly", "class": a["cls"],
                     "stimulus_set_identifier": stim_ids[0]})
        for ext in ("csv", "zip"):
            fname = f"stimulus_{s['identifier'].replace('.', '_')}.{ext}"
            lines += file_entry(
                fname, s3_url(s["bucket"], fname, s[f"{ext}_version_id"]),
                sha1=s[f"{ext}_sha1"],
                source=f"{rel}: stimulus_set_registry['{stim_key}']",
                brainio={"identifiers": stim_ids, "published_identifier": s["identifier"],
                         "lookup_type": "stimulus_set", "class": "StimulusSet"})
    for ident, note in UNPUBLISHED:
        lines += ["", "[[unpublished]]", f"identifier = {q(ident)}", f"note = {q(note)}"]
    write(out_dir, "brainio", lines)

    # The official CORnet-S weights, as Brain-Score's own cornet_s plugin loads them.
    calls = ast.parse(open(os.path.join(root, "models", "cornet_s", "model.py")).read())
    kw = None
    for node in ast.walk(calls):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "load_weight_file":
            kw = {k.arg: k.value.value for k in node.keywords}
    path = f"{kw['folder_name']}/{kw['relative_path']}"
    lines = header(
        "cornet",
        "The official CORnet-S checkpoint (epoch 43; the paper's model)",
        ".",
        f"brainscore-vision {version}: brainscore_vision/models/cornet_s/model.py "
        "(load_weight_file: bucket, folder, path, version_id, sha1)")
    lines += file_entry(
        os.path.basename(kw["relative_path"]),
        s3_url(f"{kw['bucket']}/{kw['folder_name']}", kw["relative_path"], kw["version_id"]),
        sha1=kw["sha1"], source=f"s3://{kw['bucket']}/{path}")
    write(out_dir, "cornet", lines)


# Brain-Score plugins of the zoo's architectures: (torchvision name, plugin folder).
ZOO_PLUGINS = [("alexnet", "alexnet"), ("vgg16", "vgg_16"), ("vgg19", "vgg_19"),
               ("resnet50", "resnet_50_v1"), ("resnet101", "resnet_101_v1"),
               ("resnet152", "resnet_152_v1"), ("densenet121", "densenet_121"),
               ("densenet169", "densenet_169")]


def region_layer_maps(out_dir):
    import json
    root, version = brainscore_package()
    lines = [
        "# Written by manifests/generate.py; edit that, not this.",
        "[maps]",
        'format = "ventral-region-layer-maps v1"',
        f"source = {q(f'brainscore-vision {version}: brainscore_vision/models/<plugin>/region_layer_map/*.json')}",
        f"note = {q('only plugins that wrap torchvision models: their layer names are torchvision module names')}",
    ]
    for arch, plugin in ZOO_PLUGINS:
        folder = os.path.join(root, "models", plugin)
        tree = ast.parse(open(os.path.join(folder, "model.py")).read())
        wraps = any(
            (isinstance(n, ast.Import) and any(a.name.split(".")[0] == "torchvision" for a in n.names))
            or (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "torchvision")
            for n in ast.walk(tree))
        maps = sorted(f for f in os.listdir(os.path.join(folder, "region_layer_map"))
                      if f.endswith(".json")) if os.path.isdir(
            os.path.join(folder, "region_layer_map")) else []
        if not wraps or len(maps) != 1:
            continue
        regions = json.load(open(os.path.join(folder, "region_layer_map", maps[0])))
        lines += ["", "[[map]]", f"arch = {q(arch)}", f"plugin = {q(plugin)}",
                  f"file = {q(f'brainscore_vision/models/{plugin}/region_layer_map/{maps[0]}')}",
                  "regions = { " + ", ".join(f"{k} = {q(regions[k])}" for k in sorted(regions)) + " }"]
    write(out_dir, "region_layer_maps", lines)


# --- torchvision ----------------------------------------------------------------------

ZOO = ["alexnet", "vgg16", "vgg19", "resnet18", "resnet34", "resnet50", "resnet101",
       "resnet152", "densenet121", "densenet169", "densenet201", "squeezenet1_0",
       "squeezenet1_1", "mobilenet_v2", "inception_v3"]


def torchvision_manifests(out_dir):
    import torchvision
    from torchvision import models
    from torchvision.datasets import cifar, imagenet

    v = torchvision.__version__.split("+")[0]
    lines = header(
        "torchvision",
        "torchvision's ImageNet checkpoints of the baseline zoo (IMAGENET1K_V1, the weights "
        "`pretrained=True` gave and Brain-Score's plugins load)",
        "models",
        f"torchvision {v}: torchvision.models.get_model_weights(<arch>).IMAGENET1K_V1 (url; "
        "the SHA-256 prefix is the file name's, as torch.hub checks it)")
    for arch in ZOO:
        w = models.get_model_weights(arch).IMAGENET1K_V1
        prefix = w.url.rsplit("-", 1)[1].split(".")[0]
        lines += file_entry(f"{arch}.pth", w.url, sha256_prefix=prefix,
                            source=f"{arch}: {w.url.rsplit('/', 1)[1]}, "
                                   f"{w.meta['_file_size']} MB published, "
                                   f"acc@1 {w.meta['_metrics']['ImageNet-1K']['acc@1']}")
    write(out_dir, "torchvision", lines)

    lines = header(
        "ilsvrc2012",
        "ILSVRC2012 (ImageNet-1k), the archives image-net.org gives registered users",
        "ILSVRC2012",
        f"torchvision {v}: torchvision.datasets.imagenet.ARCHIVE_META (file names, MD5)",
        manual=("ILSVRC2012 cannot be downloaded without an account: register at "
                "https://image-net.org/download-images, download these archives into "
                "data/real/ILSVRC2012/, and unpack them there as train/<wnid>/*.JPEG and "
                "val/<wnid>/*.JPEG (1,281,167 and 50,000 images in 1,000 classes); "
                "`ventral fetch ilsvrc2012` then verifies the archives."))
    for _, (fname, md5) in sorted(imagenet.ARCHIVE_META.items()):
        lines += file_entry(fname, md5=md5)
    write(out_dir, "ilsvrc2012", lines)

    c = cifar.CIFAR100
    binary_url = c.url.replace("cifar-100-python", "cifar-100-binary")
    lines = header(
        "cifar100",
        "CIFAR-100, binary version (the transfer benchmark's data)",
        ".",
        f"torchvision {v}: torchvision.datasets.CIFAR100 (URL of the Python version; the "
        "binary version is its sibling on the same page, "
        "https://www.cs.toronto.edu/~kriz/cifar.html, MD5 as published there)")
    lines += file_entry("cifar-100-binary.tar.gz", binary_url,
                        md5="03b5dce01913d631647c71ecec9e9cb8", unpack="tar.gz")
    write(out_dir, "cifar100", lines)


if __name__ == "__main__":
    what, out_dir = sys.argv[1], sys.argv[2]
    {"brainscore": brainscore, "torchvision": torchvision_manifests,
     "region-layer-maps": region_layer_maps}[what](out_dir)
