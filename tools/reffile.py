"""reffile.py — writer for tinyalign's test reference files (read by tests/refio.h).

Format "TAREF001": 8-byte magic, uint32 record count, then per record:
  uint32 name length, name bytes (UTF-8), uint32 dtype (0 = float32, 1 = int32),
  uint32 ndim, ndim x uint64 dims, then prod(dims) little-endian elements.
The reference files are generated on every `make test` by the tools/ref_*.py scripts
from the real PyTorch; they are never committed.
"""
import struct

import numpy as np


def write_ref(path, records):
    """records: list of (name, numpy array); float arrays are stored float32, ints int32."""
    with open(path + ".tmp", "wb") as f:
        f.write(b"TAREF001")
        f.write(struct.pack("<I", len(records)))
        for name, arr in records:
            arr = np.asarray(arr)
            if arr.dtype.kind == "f":
                arr, dt = arr.astype("<f4"), 0
            else:
                arr, dt = arr.astype("<i4"), 1
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb)
            f.write(struct.pack("<II", dt, arr.ndim))
            for d in arr.shape:
                f.write(struct.pack("<Q", d))
            f.write(np.ascontiguousarray(arr).tobytes())
    import os
    os.replace(path + ".tmp", path)
