#!/usr/bin/env python3
"""What share of a file's cached pages sit in large folios (root only).

    bench/folios.py FILE      prints e.g. "93%"

Page-cache reads cost a fixed amount per folio (lookup, LRU bookkeeping) on
top of the copy, so a file system whose page cache uses 4 KiB folios re-reads
slower than one using large folios. mount_bench.sh prints this for the native
file and for the same bytes through the mount, to show where a re-read gap
comes from. The file is mapped and its pages looked up in /proc/self/pagemap
(page frame numbers) and /proc/kpageflags (bit 15: head of a compound page,
bit 16: tail); reading the mapping faults in only what is not cached yet.
"""
import ctypes
import mmap
import os
import struct
import sys

PAGE = os.sysconf("SC_PAGE_SIZE")
KPF_COMPOUND_HEAD = 1 << 15
KPF_COMPOUND_TAIL = 1 << 16
PFN_MASK = (1 << 55) - 1
PRESENT = 1 << 63


def large_share(path, max_pages=1 << 16):
    """The share of the first max_pages pages of path held in large folios."""
    with open(path, "rb") as f:
        size = min(os.fstat(f.fileno()).st_size, max_pages * PAGE)
        if size == 0:
            return 0.0
        # Copy-on-write: reading maps the page-cache pages themselves, and a
        # writable buffer gives ctypes the mapping's address.
        m = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    large = total = 0
    with open("/proc/self/pagemap", "rb") as pm, open("/proc/kpageflags", "rb") as kf:
        for i in range(size // PAGE):
            m[i * PAGE]  # fault the page in (from the page cache)
            pm.seek((addr // PAGE + i) * 8)
            entry = struct.unpack("<Q", pm.read(8))[0]
            if not entry & PRESENT:
                continue
            kf.seek((entry & PFN_MASK) * 8)
            flags = struct.unpack("<Q", kf.read(8))[0]
            total += 1
            if flags & (KPF_COMPOUND_HEAD | KPF_COMPOUND_TAIL):
                large += 1
    return large / total if total else 0.0


if __name__ == "__main__":
    print(f"{large_share(sys.argv[1]) * 100:.0f}%")
