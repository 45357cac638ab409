#!/usr/bin/env python3
# tests/bench/zeropages.py - resident pages of a process's heap that hold only zero bytes.
# SPDX-License-Identifier: ISC
# Used by tests/bench/memory.sh (m4) to show what core/zeropages.c leaves: memory that is
# resident (counted in RSS) although it holds nothing. Reads /proc/PID/maps, pagemap
# (present bit) and mem, as root; only private anonymous writable mappings (the heaps).
# Prints "PRESENT_KIB ZERO_KIB".
import struct
import sys

PAGE = 4096
ZERO = bytes(PAGE)


def main():
    pid = sys.argv[1]
    present = zero = 0
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pm, \
            open(f"/proc/{pid}/mem", "rb") as mem:
        for line in maps:
            f = line.split()
            if "rw" not in f[1] or (len(f) > 5 and (f[5].startswith("/") or f[5] == "[stack]")):
                continue
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            pm.seek(lo // PAGE * 8)
            ents = pm.read((hi - lo) // PAGE * 8)
            for i in range(len(ents) // 8):
                if not struct.unpack_from("<Q", ents, i * 8)[0] >> 63:
                    continue
                present += 1
                try:
                    mem.seek(lo + i * PAGE)
                    if mem.read(PAGE) == ZERO:
                        zero += 1
                except OSError:
                    pass
    print(present * PAGE // 1024, zero * PAGE // 1024)


if __name__ == "__main__":
    main()
