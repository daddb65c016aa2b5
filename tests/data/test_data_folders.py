"""image_folder and align_classes on small image folders generated here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transferviz.data import DomainData, align_classes, image_folder
from transferviz.errors import TransferVizError


def _img(path: Path, colour, size=(40, 40), mode="RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", size, colour)
    if mode != "RGB":
        im = im.convert(mode)
    im.save(path)


@pytest.fixture()
def office(tmp_path: Path) -> Path:
    """root/{amazon,webcam}/images/<class>/..., amazon with corrupt, gray, RGBA and palette files."""
    root = tmp_path / "office"
    classes = {"back_pack": (200, 30, 30), "bike": (30, 200, 30), "desk lamp": (30, 30, 200)}
    for domain in ("amazon", "webcam"):
        for c, colour in classes.items():
            for i in range(3):
                _img(root / domain / "images" / c / f"frame_{i:04d}.jpg", colour)
    a = root / "amazon" / "images"
    (a / "bike" / "broken.jpg").write_bytes(b"this is not a jpeg")
    good = a / "bike" / "frame_0000.jpg"
    (a / "bike" / "truncated.jpg").write_bytes(good.read_bytes()[:200])
    _img(a / "back_pack" / "gray.png", (90, 90, 90), mode="L")
    _img(a / "back_pack" / "alpha.PNG", (10, 10, 10), mode="RGBA")
    _img(a / "desk lamp" / "palette.bmp", (30, 30, 200), mode="P")
    (a / "desk lamp" / "notes.txt").write_text("ignored: not an image extension")
    (a / "desk lamp" / ".hidden.jpg").write_bytes(b"ignored")
    return root


def test_office_layout_counts_and_shapes(office: Path) -> None:
    d = image_folder(office, "amazon", 24)
    assert isinstance(d, DomainData)
    assert d.classes == ("back_pack", "bike", "desk lamp")
    assert d.images.shape == (len(d), 24, 24, 3) and d.images.dtype == np.uint8
    assert d.labels.dtype == np.int64
    assert d.skipped == 2  # broken.jpg and truncated.jpg
    assert d.converted == 3  # gray.png, alpha.PNG, palette.bmp
    assert d.counts() == {"back_pack": 5, "bike": 3, "desk lamp": 4}
    assert "back_pack/gray.png" in d.origins and "notes.txt" not in " ".join(d.origins)
    gray = d.images[d.origins.index("back_pack/gray.png")]
    assert (gray == 90).all()  # converted to three equal channels, not dropped
    alpha = d.images[d.origins.index("back_pack/alpha.PNG")]
    assert abs(int(alpha[0, 0, 0]) - 10) <= 1
    bike = d.images[d.labels == d.classes.index("bike")]
    assert bike[..., 1].mean() > 150 and bike[..., 0].mean() < 80  # pixels stay with their label


def test_non_square_images_are_centre_cropped(tmp_path: Path) -> None:
    im = np.zeros((20, 60, 3), np.uint8)
    im[:, :20] = (255, 0, 0)
    im[:, 20:40] = (0, 255, 0)
    im[:, 40:] = (0, 0, 255)
    p = tmp_path / "r" / "d" / "images" / "a" / "wide.png"
    p.parent.mkdir(parents=True)
    Image.fromarray(im).save(p)
    d = image_folder(tmp_path / "r", "d", 16)
    assert d.images.shape == (1, 16, 16, 3)
    assert (d.images[0, :, 2:-2, 1] > 200).all() and d.images[0, :, 2:-2, 0].max() < 60


def test_custom_layout_and_any_class_names(tmp_path: Path) -> None:
    for c in ("Zebra", "äpfel", "10"):
        _img(tmp_path / "dom" / c / "x.webp", (1, 2, 3))
    d = image_folder(tmp_path, "dom", 8, layout="{root}/{domain}/{class}/*")
    assert d.classes == ("10", "Zebra", "äpfel") and len(d) == 3


def test_class_present_in_one_domain_only_is_listed(office: Path) -> None:
    _img(office / "webcam" / "images" / "mug" / "m.jpg", (1, 1, 1))
    a, w = image_folder(office, "amazon", 16), image_folder(office, "webcam", 16)
    with pytest.raises(TransferVizError) as err:
        align_classes(a, w)
    msg = str(err.value)
    assert "'mug'" in msg and "only in target" in msg and "\n" not in msg


def test_align_classes_reorders_labels() -> None:
    imgs = np.zeros((3, 8, 8, 3), np.uint8)
    a = DomainData(imgs, np.array([0, 1, 2]), ("cat", "dog", "eel"))
    b = DomainData(imgs, np.array([0, 1, 2]), ("eel", "cat", "dog"))
    a2, b2 = align_classes(a, b)
    assert a2 is a and b2.classes == a.classes
    assert [b2.classes[i] for i in b2.labels] == ["eel", "cat", "dog"]


@pytest.mark.parametrize("make", ["no_root", "no_domain", "empty"])
def test_missing_data_is_a_one_line_error_naming_the_layout(tmp_path: Path, make: str) -> None:
    root = tmp_path / "office31"
    if make != "no_root":
        root.mkdir()
    if make == "empty":
        (root / "amazon" / "images" / "bike").mkdir(parents=True)
    with pytest.raises(TransferVizError) as err:
        image_folder(root, "amazon", 32, where="configs/office31.yaml")
    msg = str(err.value)
    assert "\n" not in msg
    assert f"{root}/amazon/images/<class>/" in msg and "Office-31" in msg
    assert "configs/office31.yaml" in msg


def test_loose_images_hint_and_all_corrupt(tmp_path: Path) -> None:
    _img(tmp_path / "d" / "images" / "loose.jpg", (0, 0, 0))
    with pytest.raises(TransferVizError, match="one folder per class"):
        image_folder(tmp_path, "d", 8)
    bad = tmp_path / "e" / "images" / "a" / "x.jpg"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"garbage")
    with pytest.raises(TransferVizError, match="could be read"):
        image_folder(tmp_path, "e", 8)


def test_bad_layout(tmp_path: Path) -> None:
    with pytest.raises(TransferVizError, match="exactly once"):
        image_folder(tmp_path, "d", 8, layout="{root}/{domain}/*")
    with pytest.raises(TransferVizError, match="whole folder name"):
        image_folder(tmp_path, "d", 8, layout="{root}/{domain}/x{class}/*")
