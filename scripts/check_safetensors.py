#!/usr/bin/env python3
"""Opens a .safetensors file written by tapeflow with the Hugging Face `safetensors` package.

Shows that other readers accept our files: loads every tensor with safetensors.numpy.load_file,
prints each name, dtype, shape and a SHA-256 of its bytes, the metadata, and one checksum over
the whole file's tensors. As a second opinion it compares every array with the bytes the
header's data_offsets point at in the file, so a reader that got the offsets, dtypes or byte
order wrong would fail here. Writes nothing.

    pip install safetensors numpy
    scripts/check_safetensors.py model.safetensors

Exit status: 0 when the file loads and agrees, 1 when it does not, 2 on bad usage or a
missing package.
"""

import argparse
import hashlib
import json
import struct
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="a .safetensors file")
    args = parser.parse_args()

    try:
        import numpy as np
        from safetensors import safe_open
        from safetensors.numpy import load_file
    except ImportError as e:
        print(f"check_safetensors: {e}; install with `pip install safetensors numpy`", file=sys.stderr)
        return 2

    try:
        tensors = load_file(args.path)
        with safe_open(args.path, framework="np") as f:
            metadata = f.metadata() or {}
    except Exception as e:  # the package raises its own error types and OSError
        print(f"check_safetensors: safetensors cannot read '{args.path}': {type(e).__name__}: {e}", file=sys.stderr)
        return 1

    # Second opinion: the raw bytes at each tensor's offsets, read without the package.
    with open(args.path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]

    failures = 0
    total = hashlib.sha256()
    print(f"{args.path}: {len(tensors)} tensors, safetensors {_version()}, numpy {np.__version__}")
    for name in sorted(tensors):
        a = tensors[name]
        b = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        digest = hashlib.sha256(b).hexdigest()
        begin, end = header[name]["data_offsets"]
        ok = data[begin:end] == b and list(a.shape) == header[name]["shape"]
        failures += not ok
        total.update(f"{name}\0{a.dtype.str}\0{list(a.shape)}\0".encode() + b)
        print(f"  {name!r:28} {str(a.dtype):8} {str(list(a.shape)):14} sha256 {digest[:16]}"
              f"{'' if ok else '  MISMATCH with the bytes in the file'}")
    print(f"  header order: {[k for k in header if k != '__metadata__']}")
    print(f"  metadata: {json.dumps(metadata, sort_keys=True, ensure_ascii=False)}")
    print(f"checksum {total.hexdigest()}")
    if failures:
        print(f"check_safetensors: {failures} tensors differ from the file's bytes", file=sys.stderr)
        return 1
    return 0


def _version() -> str:
    try:
        import safetensors

        return safetensors.__version__
    except AttributeError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
