"""Arrow columns built straight from Python lists and numpy, in the exact contract types:
hex ids without a Python call per id, repeated strings and timestamps without a Python list.
Used by the OTLP span decoder."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from schemas.tables import TS_MS

_HEX_DIGITS = np.frombuffer(b"".join(b"%02x" % i for i in range(256)), dtype=np.uint8).reshape(256, 2)


def hex_column(ids, lengths: np.ndarray) -> pa.Array:
    """Lowercase hex strings of byte ids (any lengths, ``bytes.hex()`` of each), vectorised."""
    offsets = np.zeros(len(ids) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    offsets *= 2
    digits = _HEX_DIGITS[np.frombuffer(b"".join(ids), dtype=np.uint8)]
    return pa.StringArray.from_buffers(len(ids), pa.py_buffer(offsets), pa.py_buffer(digits))


def repeat_string(text: str, n: int) -> pa.Array:
    raw = text.encode()
    offsets = np.arange(n + 1, dtype=np.int32) * len(raw)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(raw * n))


def repeat_timestamp(value_ms: int, n: int) -> pa.Array:
    return pa.array(np.full(n, value_ms, dtype=np.int64), TS_MS)


def resource_columns(resources, res_index, n: int) -> tuple[pa.Array, pa.Array]:
    """engine_instance and node of each row, from the row's resource index."""
    if len(resources) == 1:
        return repeat_string(resources[0][0], n), repeat_string(resources[0][1], n)
    take = pa.array(np.fromiter(res_index, dtype=np.int64, count=n))
    res = list(zip(*resources, strict=True))
    return pa.array(res[0], pa.string()).take(take), pa.array(res[1], pa.string()).take(take)
