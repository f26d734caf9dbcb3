# SPDX-License-Identifier: MIT
# pool.py - bench case 11: multiprocessing.Pool(4) with the fork start method over a numpy
# array of SIZE_MIB. stdout: "result start_map_s=S sum=X" (the Pool's start and map only).
import multiprocessing as mp, sys, time
import numpy as np

a = np.ones(int(sys.argv[1]) << 17)
a[::4096] = np.arange(len(a[::4096]))

def part_sum(i):
    n = len(a) // 4
    return float(a[i * n:(i + 1) * n].sum())

if __name__ == "__main__":
    mp.set_start_method("fork")
    t0 = time.monotonic()
    with mp.Pool(4) as p:
        total = sum(p.map(part_sum, range(4)))
    print("result start_map_s=%.6f sum=%r" % (time.monotonic() - t0, total))
