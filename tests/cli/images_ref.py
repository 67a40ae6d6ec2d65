"""Reference side of tests/cli/images.sh: writes image folders, CIFAR-10 batches and a small
3-channel ONNX model with PIL, numpy and torch, and compares what advex loaded (advex data
--out / --labels, advex predict --out) with what torchvision makes of the same files.
Usage: images_ref.py COMMAND ARGS... (see the functions below); exits non-zero on a mismatch."""
import os
import pickle
import sys

import numpy as np
from PIL import Image


def smooth(w, h, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.sin(xx / (3.0 + seed % 5) + seed) * 70 + np.cos(yy / 4.0) * 50 + 128 + rng.normal(0, 25, (h, w))
    b = rng.integers(0, 256, (h, w))
    return np.stack([a.clip(0, 255), (255 - a).clip(0, 255), b], -1).astype(np.uint8)


def make_folder(root):
    """Two classes, PNG and JPEG in every mode PIL writes, one nested folder, a non-image file."""
    for d in ("ant/nested", "bee"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    sizes = [(64, 48), (37, 71), (120, 90), (48, 48), (23, 17), (90, 61)]
    for i, (w, h) in enumerate(sizes):
        im = Image.fromarray(smooth(w, h, i))
        c = "ant" if i % 2 == 0 else "bee"
        im.save(f"{root}/{c}/{i}_q90.jpg", quality=90)
        im.save(f"{root}/{c}/{i}_rgb.png")
    im = Image.fromarray(smooth(70, 50, 9))
    im.save(f"{root}/ant/a_420.jpg", quality=60, subsampling=2)
    im.save(f"{root}/ant/a_444.jpg", quality=95, subsampling=0)
    im.save(f"{root}/ant/a_prog.jpg", quality=80, progressive=True)
    im.convert("CMYK").save(f"{root}/ant/a_cmyk.jpg", quality=90)
    im.convert("L").save(f"{root}/ant/nested/grey.jpg")
    im.convert("L").save(f"{root}/bee/grey.png")
    rgba = np.array(im.convert("RGBA"))
    rgba[..., 3] = np.arange(rgba.shape[1], dtype=np.uint8)[None, :] * 3
    Image.fromarray(rgba).save(f"{root}/bee/rgba.png")
    im.convert("LA").save(f"{root}/bee/la.png")
    im.convert("P", palette=Image.ADAPTIVE, colors=40).save(f"{root}/bee/palette.png")
    im.convert("P", palette=Image.ADAPTIVE, colors=16).save(f"{root}/bee/palette_trns.png", transparency=2)
    im.convert("1").save(f"{root}/bee/bilevel.png")
    with open(f"{root}/bee/README.txt", "w") as f:
        f.write("not an image\n")


TRANSFORMS = {
    # name: (Resize size or None, CenterCrop size or None)
    "r64c56": (64, 56), "r300c320": (300, 320), "c40": (None, 40), "r48c48": (48, 48),
    "r31c17": (31, 17), "r36c32": (36, 32),
}


def tv_transform(name, grey):
    import torchvision.transforms as T
    r, c = TRANSFORMS[name]
    t = [T.Grayscale()] if grey else []
    if r:
        t.append(T.Resize(r))
    if c:
        t.append(T.CenterCrop(c))
    return T.Compose(t + [T.ToTensor()])


def compare_folder(root, xs, ys, name, grey=""):
    """advex data's images/labels against torchvision's ImageFolder: bit for bit."""
    from torchvision.datasets import ImageFolder
    ds = ImageFolder(root, transform=tv_transform(name, grey == "grey"))
    x, y = np.load(xs), np.load(ys)
    assert x.shape[0] == len(ds) and y.shape == (len(ds),), (x.shape, len(ds))
    worst = 0.0
    for i, (path, label) in enumerate(ds.samples):
        t, _ = ds[i]
        assert y[i] == label, (i, path, y[i], label)
        d = float(np.abs(t.numpy() - x[i]).max())
        assert d == 0.0, f"{path}: max |advex - torchvision| = {d * 255:.3f}/255 ({name})"
        worst = max(worst, d)
    print(f"folder {name}{' grey' if grey else ''}: {len(ds)} images equal to torchvision's (max diff {worst})")


def compare_robustbench(root, listfile, xs, ys, limit):
    """RobustBench's CustomImageFolder: classes = sorted sub-folders, samples = the list's lines."""
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    idx = {c: i for i, c in enumerate(classes)}
    lines = [ln.split("\n")[0] for ln in open(listfile).readlines()][: int(limit)]
    x, y = np.load(xs), np.load(ys)
    assert x.shape[0] == len(lines), (x.shape, len(lines))
    for i, ln in enumerate(lines):
        assert y[i] == idx[ln.split("/")[0]], (i, ln, y[i])
        ref = np.asarray(Image.open(os.path.join(root, ln)).convert("RGB"), dtype=np.float32) / 255
        assert np.array_equal(x[i], ref.transpose(2, 0, 1)), ln
    print(f"robustbench list: {len(lines)} images in the list's order, labels from sorted folders")


def make_cifar(d, ntest, ntrain):
    """The same random data as CIFAR-10's binary batches and as the Python (pickle) ones."""
    rng = np.random.default_rng(5)
    os.makedirs(d + "/cifar-10-batches-py", exist_ok=True)
    names = [("test_batch", int(ntest))] + [(f"data_batch_{i}", int(ntrain)) for i in range(1, 6)]
    for name, n in names:
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        rec = np.concatenate([y[:, None], x], 1)
        rec.tofile(f"{d}/{name}.bin")
        with open(f"{d}/cifar-10-batches-py/{name}", "wb") as f:
            pickle.dump({"data": x, "labels": [int(v) for v in y]}, f)
    with open(f"{d}/cifar-10-batches-py/batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                                     "ship", "truck"]}, f)


def compare_cifar(d, split, name, xs, ys, limit):
    import torchvision.datasets as D
    import torchvision.transforms as T

    class Local(D.CIFAR10):
        def _check_integrity(self):  # our generated batches have other checksums
            return True

        def _load_meta(self):
            self.classes = []

    tf = T.ToTensor() if name == "none" else tv_transform(name, False)
    ds = Local(d, train=split == "train", transform=tf, download=False)
    x, y = np.load(xs), np.load(ys)
    n = int(limit) or len(ds)
    assert x.shape[0] == n, (x.shape, n)
    for i in range(n):
        t, label = ds[i]
        assert y[i] == label, (i, y[i], label)
        assert np.array_equal(t.numpy(), x[i]), f"cifar {split} {name} example {i}"
    print(f"cifar10 {split} {name}: {n} examples equal to torchvision's CIFAR10")


def compare_npy(src, xs, resize, crop):
    """Float data: advex's filter against torchvision's tensor Resize(antialias=True)."""
    import torch
    import torchvision.transforms.functional as F
    t = torch.tensor(np.load(src))
    if int(resize):
        t = F.resize(t, int(resize), antialias=True)
    if int(crop):
        t = F.center_crop(t, int(crop))
    d = float(np.abs(t.clamp(0, 1).numpy() - np.load(xs)).max())
    assert d < 1e-5, f"npy resize: max diff {d}"
    print(f"npy resize {resize} crop {crop}: max diff {d:.2e} from torchvision's antialiased tensor resize")


def make_model(path, classes):
    """A small conv net on 3x32x32 (random weights, fixed seed), exported to ONNX."""
    import torch
    import torch.nn as nn
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                      nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, int(classes))).eval()
    torch.onnx.export(m, torch.zeros(1, 3, 32, 32), path, input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "n"}}, opset_version=13)
    torch.save(m, path + ".pt")


def compare_logits(model, root, logits):
    """advex predict (images fitted to 32x32) against the torch model on torchvision's Resize(32) +
    CenterCrop(32) of the same files."""
    import torch
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder
    m = torch.load(model + ".pt")
    ds = ImageFolder(root, transform=T.Compose([T.Resize(32), T.CenterCrop(32), T.ToTensor()]))
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    with torch.no_grad():
        ref = m(x).numpy()
    got = np.load(logits)
    d = float(np.abs(ref - got).max())
    assert got.shape == ref.shape and d < 1e-4, (got.shape, ref.shape, d)
    print(f"predict: logits on {len(ds)} fitted images equal torch's within {d:.1e}")


def corrupt_jpeg(src, dst, how):
    """bomb: the SOF header claims 60000x60000; truncate: the first half of the file."""
    b = bytearray(open(src, "rb").read())
    if how == "truncate":
        b = b[: len(b) // 2]
    else:
        i = next(i for i in range(len(b) - 9) if b[i] == 0xFF and b[i + 1] in (0xC0, 0xC2))
        b[i + 5:i + 9] = bytes([60000 >> 8, 60000 & 255, 60000 >> 8, 60000 & 255])
    open(dst, "wb").write(bytes(b))


if __name__ == "__main__":
    globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
