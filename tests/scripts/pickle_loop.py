# SPDX-License-Identifier: MIT
# pickle_loop.py - issue 9's pickle round trip: big bytes and str objects pickled through
# io.BytesIO (which grows its buffer by realloc) while other big buffers come and go, so
# that the pickle's buffer moves with holes in it. Stops at the first pickle that differs.
# python3 pickle_loop.py [ITERATIONS [SEED]]
import io
import os
import pickle
import random
import sys

iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 400
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 9
random.seed(seed)
N = 1 << 20
obj = [b'x' * N, *[[i] for i in range(10)], b'y' * N, 'z' * N]


def dump(proto, fast):
    buf = io.BytesIO()
    p = pickle._Pickler(buf, protocol=proto)
    p.fast = fast
    p.dump(obj)
    return buf.getvalue()


ref = {(p, f): bytes(dump(p, f)) for p in (4, 5) for f in (False, True)}
keep = []
for it in range(iterations):
    key = (random.choice([4, 5]), random.random() < 0.5)
    got = dump(*key)
    if got != ref[key]:
        want = ref[key]
        first = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), min(len(got), len(want)))
        zeros = sum(1 for i in range(len(want)) if i < len(got) and got[i] == 0 and want[i] != 0)
        print(f"FAIL: pickle (protocol {key[0]}, fast {key[1]}) differs at iteration {it} (seed {seed}): "
              f"first at byte {first} of {len(want)}, {zeros} bytes read as zero")
        sys.exit(1)
    for _ in range(random.randint(0, 6)):
        n = random.choice([300 << 10, 600 << 10, 1 << 20, 3 << 20, 5000])
        keep.append(bytearray(os.urandom(16)) * (n // 16))
    while len(keep) > 20:
        keep.pop(random.randrange(len(keep)))
print(f"pickle_loop: {iterations} iterations (seed {seed}), every pickle as expected")
