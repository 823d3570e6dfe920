"""The paper's ImageNet subset, read in place from a user's ImageNet folder: the shipped list is the reference's,
a stand-in ImageNet tree (real JPEGs, written here) with a list in the reference's format is checked file by file,
and the trainer trains a paper recipe on it through the command line."""

import hashlib
import json
import lzma
import re
from pathlib import Path

import pytest

from nlsup_kit.cli import main
from nlsup_kit.errors import NlsupError

CLASSES = ["n01871265", "n02085620", "n04482393"]  # the reference list's first, a middle and its last class


def stand_in_imagenet(root: Path, per_class: int = 6) -> tuple[Path, Path]:
    """ImageNet's train layout (<wnid>/<wnid>_<n>.JPEG), noise JPEGs of a few sizes, one unlisted image per
    class; and a list of the rest as the reference writes it (/datasets/sampled-Imagenet/<wnid>/<file>)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    lines = []
    for label in reversed(CLASSES):  # listed out of order: labels still follow the sorted class names
        (root / label).mkdir(parents=True)
        for n in range(per_class):
            height, width = (int(x) for x in rng.integers(24, 64, 2))
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{label}_{n}.JPEG", quality=90)
            if n:  # the first of each class is not listed
                lines.append(f"/datasets/sampled-Imagenet/{label}/{label}_{n}.JPEG")
    listing = root.parent / "my-sampled-Imagenet.txt"
    listing.write_text("\n".join(lines) + "\n")
    return root, listing


def test_the_shipped_list_is_the_reference_code_list_byte_for_byte():
    """sha256 of VisualCSE/sampled-Imagenet.txt at 3e1e01c (read from the reference repository), 30,000 lines
    in its one format, 60 classes of 500 (VisualCSE/README.md line 64)."""
    from nlsup_kit.data.imagenet_subset import read_list, shipped_list

    text = lzma.decompress(shipped_list().read_bytes())
    assert hashlib.sha256(text).hexdigest() == "dca31e7bfb42686d76b1f4c86dd77b6bc015bab792059dcaacba8ede5c3f760d"
    lines = text.decode().splitlines()
    pattern = re.compile(r"/datasets/sampled-Imagenet/(n\d{8})/\1_\d+\.JPEG")
    assert len(lines) == 30_000 and all(pattern.fullmatch(line) for line in lines)
    per_class = {}
    for line in lines:
        per_class[line.split("/")[3]] = per_class.get(line.split("/")[3], 0) + 1
    assert len(per_class) == 60 and set(per_class.values()) == {500}
    listed, _, _ = read_list()
    assert [f"/datasets/sampled-Imagenet/{entry.relative}" for entry in listed] == lines
    assert (shipped_list().parent / "LICENSE").read_text().startswith("MIT License")


def test_the_listed_images_are_read_in_place_labelled_as_imagefolder_numbers_them(tmp_path):
    """Only listed files, in place (no copy, no link), labels by sorted class name as torchvision's ImageFolder
    gives the reference's training folder; the cached pipeline decodes them too."""
    from torchvision.datasets import ImageFolder

    from nlsup_kit.data.images import DecodedImages, load_images
    from nlsup_kit.data.imagenet_subset import checked_subset

    root, listing = stand_in_imagenet(tmp_path / "train")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    subset = checked_subset(root, listing, progress=False)
    assert len(subset) == 15 and subset.classes == sorted(CLASSES)
    folder = ImageFolder(str(root))
    label_of = {Path(path).name: label for path, label in folder.samples}
    assert all(label_of[Path(path).name] == label for path, label in subset.samples)
    assert not any(Path(path).name.endswith("_0.JPEG") for path, _ in subset.samples)
    image, label = subset[0]
    assert image.mode == "RGB" and label == subset.targets[0]
    views = load_images(f"imagenet-subset:{root}", tmp_path, 16, str(listing))
    assert views[3][0].shape == (3, 16, 16) and views.labels == subset.targets
    assert len(DecodedImages(subset, max_side=32, progress=False)) == 15
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written beside it


def test_a_missing_or_broken_listed_image_is_one_line_naming_it_and_its_line(tmp_path):
    from nlsup_kit.data.imagenet_subset import checked_subset

    root, listing = stand_in_imagenet(tmp_path / "train")
    checked_subset(root, listing, progress=False)  # whole: checked, and remembered
    missing = root / CLASSES[1] / f"{CLASSES[1]}_3.JPEG"
    line = listing.read_text().splitlines().index(f"/datasets/sampled-Imagenet/{CLASSES[1]}/{missing.name}") + 1
    content = missing.read_bytes()
    missing.unlink()
    with pytest.raises(NlsupError, match=rf"^{re.escape(str(missing))}: missing; {re.escape(str(listing))} line "
                                         rf"{line} lists it"):
        checked_subset(root, listing, progress=False)
    missing.write_bytes(content[: len(content) // 2])  # truncated: changed since the check, so decoded again
    with pytest.raises(NlsupError, match=rf"^{re.escape(str(missing))}: not a readable image .*line {line} lists it"):
        checked_subset(root, listing, progress=False)
    assert main(["download", "imagenet-subset", "--imagenet-root", str(root), "--image-list", str(listing)]) == 2
    bad_list = tmp_path / "bad.txt"
    bad_list.write_text(f"{CLASSES[0]}/{CLASSES[0]}_1.JPEG\njust-a-name.JPEG\n")
    with pytest.raises(NlsupError, match=rf"{re.escape(str(bad_list))}:2: expected a path ending in <class>/<image"):
        checked_subset(root, bad_list, progress=False)
    with pytest.raises(NlsupError, match="no such folder"):
        checked_subset(tmp_path / "nowhere", listing, progress=False)
    with pytest.raises(NlsupError, match="missing; VisualCSE/sampled-Imagenet.txt .* line 1 lists it"):
        checked_subset(root)  # the paper's list: the stand-in holds none of its files


def test_download_checks_the_tree_and_a_paper_recipe_trains_on_it_through_the_cli(tiny_model, data_dir, tmp_path,
                                                                                   capsys):
    """``nlsup download imagenet-subset`` checks and names what to set; ``nlsup train --recipe
    visualcse-bert-base --set modality_data=imagenet-subset:DIR`` trains a few steps on a CPU (a tiny BERT for
    BERT-base, offline), both pipelines, and result.json says which images it trained on."""
    root, listing = stand_in_imagenet(tmp_path / "train")
    assert main(["download", "imagenet-subset", "--imagenet-root", str(root), "--image-list", str(listing)]) == 0
    out = capsys.readouterr().out
    assert "15 images in 3 classes checked" in out and f"--set modality_data=imagenet-subset:{root}" in out
    for pipeline in ("per-item", "cached"):
        run = tmp_path / f"run-{pipeline}"
        sets = [f"model={tiny_model}", "vit_embeddings=none", "text_data=wiki", "max_text_examples=64",
                "batch_size=16", "max_steps=3", "eval_steps=3", "modality_batch_size=6", "image_size=16",
                "patch_size=8", "device=cpu", f"modality_data=imagenet-subset:{root}", f"image_list={listing}",
                f"modality_pipeline={pipeline}"]
        argv = ["train", "--recipe", "visualcse-bert-base", *[a for s in sets for a in ("--set", s)],
                "--data-dir", str(data_dir), "--output-dir", str(run)]
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert f"visualcse-bert-base: image data: the images listed in {listing}, read from {root}" in out
        result = json.loads((run / "result.json").read_text())
        assert result["steps"] == 3 and result["modality_data"] == f"the images listed in {listing}, read from {root}"
    assert main(argv[:-2] + ["--output-dir", str(tmp_path / "other"), "--set", "image_list=" + str(tmp_path)]) == 2
    assert "cannot read the image list" in capsys.readouterr().err


def test_the_image_list_goes_only_with_an_imagenet_folder_and_imagenette_says_it_stands_in():
    from nlsup_kit.recipes import apply_overrides, get_recipe
    from nlsup_kit.trainer import modality_data_description

    with pytest.raises(NlsupError, match="image_list picks images of an ImageNet folder"):
        apply_overrides(get_recipe("visualcse-bert-base"), ["image_list=mine.txt"])
    assert modality_data_description(get_recipe("visualcse-bert-base")).startswith(
        "Imagenette (10 ImageNet classes, torchvision's 160 px release): a stand-in for the paper's ImageNet subset")
    assert modality_data_description(get_recipe("simcse-bert-base")) is None
