#!/usr/bin/env python3
"""Golden outputs of Keras 3's image loading and resizing, which tapeflow's image.hpp
reimplements: keras.layers.Resizing (bilinear up and down, nearest, crop_to_aspect_ratio) and
keras.layers.CenterCrop (a crop, and smart_resize when the target is larger on an axis) on a
small deterministic float batch [2, 5, 7, 2]; tiny image files made here with Pillow (PNG RGB,
PNG RGBA, PNG grayscale, BMP, GIF, JPEG; their bytes are written into the header, and the
tests write them to a temporary folder), each read by keras.utils.load_img + img_to_array in
the three color modes, one PNG with target_size (nearest, Keras's default); and
keras.utils.image_dataset_from_directory (shuffle=False, bilinear, image_size (4, 3)) on a
folder of the PNG / BMP / GIF files. JPEG values are libjpeg-turbo's (Pillow's): tapeflow's
stb_image decoder differs by a few levels, so the tests compare them with a tolerance.

Regenerate (writes image_golden.hpp beside this script; needs Pillow, which load_img uses):

    KERAS_BACKEND=tensorflow /path/to/venv-with-keras/bin/python test/golden/image_golden.py

Produced with tensorflow 2.21.0, keras 3.15.1 and Pillow 13.0.0.
"""
import io
import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

L = keras.layers
out = []


def floats(name, a):
    a = np.asarray(a, dtype=np.float64)
    shape = ", ".join(str(d) for d in a.shape)
    body = ", ".join(repr(float(v)) for v in a.ravel())
    out.append(f"// shape [{shape}]\nconst double {name}[] = {{{body}}};")


def shape(name, s):
    out.append(f"const std::int64_t {name}[] = {{{', '.join(str(int(d)) for d in s)}}};")


def byte_array(name, b):
    out.append(f"const unsigned char {name}[] = {{{', '.join(str(c) for c in b)}}};")


# ---- Resizing / CenterCrop on a float batch [2, 5, 7, 2]
b, h, w, c = 2, 5, 7, 2
idx = np.arange(b * h * w * c).reshape(b, h, w, c)
x = ((idx * 7) % 23).astype("float32") * 1.5 - 4.0
floats("kInput", x)
cases = {
    "kResizeUp": L.Resizing(8, 10),
    "kResizeDown": L.Resizing(3, 4),
    "kResizeNearest": L.Resizing(3, 9, interpolation="nearest"),
    "kResizeCrop": L.Resizing(4, 4, crop_to_aspect_ratio=True),
    "kResizeCropNearest": L.Resizing(6, 3, interpolation="nearest", crop_to_aspect_ratio=True),
    "kCenterCropSmaller": L.CenterCrop(3, 4),
    "kCenterCropTaller": L.CenterCrop(8, 6),
    "kCenterCropWider": L.CenterCrop(4, 9),
}
for name, layer in cases.items():
    floats(name, keras.ops.convert_to_numpy(layer(x)))

# ---- image files: a 5 x 6 picture with varied colours
hh, ww = 5, 6
yy, xx = np.mgrid[0:hh, 0:ww]
rgb = np.stack([(xx * 40 + yy * 7) % 256, (yy * 50 + 13) % 256, (xx * yy * 17 + 90) % 256], -1).astype("uint8")
alpha = ((xx + yy) * 30 % 256).astype("uint8")
pictures = {
    "png": (Image.fromarray(rgb, "RGB"), "PNG", {}),
    "rgba_png": (Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), "PNG", {}),
    "gray_png": (Image.fromarray(rgb[..., 1], "L"), "PNG", {}),
    "bmp": (Image.fromarray(rgb, "RGB"), "BMP", {}),
    # a palette of exactly the picture's colours: lossless
    "gif": (Image.fromarray(rgb, "RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT), "GIF", {}),
    "jpeg": (Image.fromarray(rgb, "RGB"), "JPEG", {"quality": 95}),
}
files = {}
with tempfile.TemporaryDirectory() as tmp:
    for key, (img, fmt, kw) in pictures.items():
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        files[key] = buf.getvalue()
        byte_array(f"k{key.title().replace('_', '')}File", files[key])
        ext = {"PNG": "png", "BMP": "bmp", "GIF": "gif", "JPEG": "jpg"}[fmt]
        path = os.path.join(tmp, f"{key}.{ext}")
        with open(path, "wb") as f:
            f.write(files[key])
        for mode in ("rgb", "grayscale", "rgba"):
            a = keras.utils.img_to_array(keras.utils.load_img(path, color_mode=mode))
            floats(f"k{key.title().replace('_', '')}{mode.title()}", a)
        if key == "png":
            a = keras.utils.img_to_array(keras.utils.load_img(path, target_size=(3, 8)))
            floats("kPngNearest3x8", a)

    # image_dataset_from_directory on a/ (png, bmp) and b/ (gif)
    root = os.path.join(tmp, "ds")
    for cls, keys in (("a", ("png", "bmp")), ("b", ("gif",))):
        os.makedirs(os.path.join(root, cls))
        for key in keys:
            ext = {"png": "png", "bmp": "bmp", "gif": "gif"}[key]
            with open(os.path.join(root, cls, f"{key}.{ext}"), "wb") as f:
                f.write(files[key])
    ds = keras.utils.image_dataset_from_directory(root, image_size=(4, 3), shuffle=False, batch_size=None)
    imgs, labels = zip(*[(i.numpy(), l.numpy()) for i, l in ds])
    floats("kDatasetImages", np.stack(imgs))
    shape("kDatasetLabels", labels)

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "image_golden.hpp"), "w") as f:
    f.write("#pragma once\n// Generated by image_golden.py: do not edit.\n#include <cstdint>\n\n")
    f.write("namespace image_golden {\n\n" + "\n\n".join(out) + "\n\n}  // namespace image_golden\n")
