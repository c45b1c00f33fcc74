"""Large freed buffers go back to the system at once, so a long run's peak RSS is its need.

glibc raises its mmap threshold each time a large mmapped block is freed (up to 32 MiB), after
which the large temporaries of torch's CPU ops (activations, the text tower's batches) come
from the heap and stay resident once freed, fragmented: the peak RSS of a streamed epoch then
depends on its allocation history, not on what it holds (measured: 1.27-1.41 GB for the same
step, 1.21 GB every time with the threshold fixed). Fixing the threshold at glibc's default
128 KiB keeps every large block mmapped. It changes where memory comes from, never a value.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # mallopt parameter numbers, glibc's malloc.h
MMAP_THRESHOLD_BYTES = 128 * 1024


def return_large_blocks() -> bool:
    """Fix glibc's mmap threshold for this process; False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False
