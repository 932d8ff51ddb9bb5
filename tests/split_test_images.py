"""A two-class folder of real photos, `clean/` and `marked/` (issue 13's
scenario): random crops of scikit-image's photos; a "marked" crop carries a
visible red cross."""

import os

import numpy as np
import skimage.data
from PIL import Image
from PIL import ImageDraw

SKIMAGE_DATA = os.path.dirname(skimage.data.__file__)
SOURCES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg",
           "motorcycle_left.png", "hubble_deep_field.jpg", "retina.jpg",
           "brick.png", "grass.png", "gravel.png")


def write_clean_marked(directory, per_class, seed=0, size=(72, 56)):
    """Writes `per_class` JPEG crops into `directory/clean` and
    `directory/marked`; returns `{class: [paths]}`."""
    rng = np.random.default_rng(seed)
    photos = [Image.open(os.path.join(SKIMAGE_DATA, name)).convert("RGB")
              for name in SOURCES]
    paths = {}
    for label in ("clean", "marked"):
        folder = os.path.join(directory, label)
        os.makedirs(folder, exist_ok=True)
        paths[label] = []
        for i in range(per_class):
            source = photos[int(rng.integers(len(photos)))]
            side = int(rng.integers(96, min(source.size) // 2 + 96))
            left = int(rng.integers(0, source.size[0] - side + 1))
            top = int(rng.integers(0, source.size[1] - side + 1))
            crop = source.crop((left, top, left + side, top + side * 3 // 4))
            crop = crop.resize(size, Image.BILINEAR)
            if label == "marked":
                draw = ImageDraw.Draw(crop)
                w, h = crop.size
                x, y = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
                draw.line((x, y, x + w // 2, y + h // 2), fill=(255, 0, 0), width=4)
                draw.line((x + w // 2, y, x, y + h // 2), fill=(255, 0, 0), width=4)
            path = os.path.join(folder, f"{label}_{i:03d}.jpg")
            crop.save(path, quality=90)
            paths[label].append(path)
    return paths


if __name__ == "__main__":
    # Issue 13's folders: python tests/split_test_images.py own
    # -> own/train (84 per class), own/test (20 per class).
    import sys

    write_clean_marked(os.path.join(sys.argv[1], "train"), 84, seed=0)
    write_clean_marked(os.path.join(sys.argv[1], "test"), 20, seed=1)
