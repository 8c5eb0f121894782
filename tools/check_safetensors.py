#!/usr/bin/env python3
"""Check that batchscope checkpoints load outside batchscope.

    tools/check_safetensors.py FILE [FILE ...]

Loads each file with PyTorch (safetensors.torch when installed, else a
reading of the format with torch.frombuffer) and prints every tensor's
name, dtype, shape and L2 norm plus the metadata. Without torch it still
parses the file with the standard library alone, so the layout can be checked
anywhere. Exits 1 when any file fails to load. Not used by the tests.
"""
import array
import json
import math
import struct
import sys


def read_header(path):
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: {len(raw)} bytes, too short")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"{path}: header length {n} beyond the file ({len(raw)} bytes)")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    return header, meta, raw[8 + n:]


def load_with_torch(path):
    import torch  # noqa: F401  (ImportError is the signal to fall back)
    try:
        from safetensors.torch import load_file
        tensors = load_file(path)
        _, meta, _ = read_header(path)
        return {k: (str(v.dtype), list(v.shape), float(v.double().norm())) for k, v in
                tensors.items()}, meta
    except ImportError:
        pass
    header, meta, data = read_header(path)
    out = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            out[name] = (info["dtype"], info["shape"], float("nan"))
            continue
        begin, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32)
        t = t.reshape(info["shape"])
        out[name] = ("torch.float32", list(t.shape), float(t.double().norm()))
    return out, meta


def load_plain(path):
    header, meta, data = read_header(path)
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        if info["dtype"] != "F32":
            out[name] = (info["dtype"], info["shape"], float("nan"))
            continue
        values = array.array("f")
        values.frombytes(data[begin:end])
        if sys.byteorder != "little":
            values.byteswap()
        numel = math.prod(info["shape"])
        if len(values) != numel:
            raise ValueError(f"{path}: tensor {name!r}: {len(values)} values for shape "
                             f"{info['shape']}")
        out[name] = ("F32", info["shape"], math.sqrt(sum(v * v for v in values)))
    return out, meta


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    status = 0
    for path in argv[1:]:
        try:
            try:
                tensors, meta = load_with_torch(path)
                how = "torch"
            except ImportError:
                tensors, meta = load_plain(path)
                how = "python (torch not installed)"
        except Exception as e:  # report and go on with the next file
            print(f"{path}: FAILED: {e}", file=sys.stderr)
            status = 1
            continue
        print(f"{path}: {len(tensors)} tensors, loaded with {how}")
        for name, (dtype, shape, norm) in tensors.items():
            print(f"  {name:30s} {dtype:14s} {str(shape):20s} norm {norm:.6g}")
        for k, v in meta.items():
            print(f"  meta {k} = {v}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
