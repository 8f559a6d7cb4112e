import csv
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).parents[1]


def stamp(folder: Path, name: str, caption: str | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGBA", (40, 20), (0, 0, 0, 0))  # transparent black ...
    image.paste((200, 30, 30, 255), (10, 5, 20, 15))  # ... around an opaque red square
    image.save(folder / f"{name}.png")
    if caption is not None:
        (folder / f"{name}.txt").write_text(f"{caption}\nfr.utf8=Une traduction\n")


def test_captioned_photographs_become_a_csv_of_white_background_jpegs(tmp_path):
    stamps = tmp_path / "stamps"
    stamp(stamps / "animals" / "mammals", "dog", "A  dog.")
    stamp(stamps / "town" / "signs", "stop", "A stop sign.")
    stamp(stamps / "town" / "signs", "stop_mirror", None)  # no caption file: left out
    stamp(stamps / "vehicles" / "cartoon", "car", "A cartoon car.")  # a drawing: left out
    (stamps / "food").mkdir()
    (stamps / "food" / "pie.svg").write_text("<svg/>")  # not a photograph
    out = tmp_path / "out"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_stamps.py"), "--stamps", str(stamps), "--out", str(out), "--size", "20"], check=True, capture_output=True)
    with open(out / "stamps.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows == [
        {"image": "images/animals/mammals/dog.jpg", "caption": "A dog.", "category": "animals"},
        {"image": "images/town/signs/stop.jpg", "caption": "A stop sign.", "category": "town"},
    ]
    with Image.open(out / rows[0]["image"]) as image:
        assert image.size == (20, 10) and image.mode == "RGB"
        corner, centre = image.getpixel((0, 0)), image.getpixel((7, 5))
    assert min(corner) > 240 and centre[0] > 150 > centre[1]  # transparent -> white, the stamp kept
