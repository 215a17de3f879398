#!/usr/bin/env python3
"""falloc_model.py FILE OPS SEED [punch] - fsx-style random operations on FILE (on a
bkfs mount) checked against an in-memory model of its bytes: pwrite,
ftruncate, fallocate in every mode the kernel's FUSE passes on (0,
KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE, ZERO_RANGE|KEEP_SIZE), and
lseek SEEK_DATA / SEEK_HOLE. After every operation st_size must be the
model's; every few operations, and at the end, the whole content; every
SEEK_DATA must skip only zeros, every SEEK_HOLE stay within the file. Modes
the mount must refuse (collapse, insert, punch without KEEP_SIZE) must fail
with EOPNOTSUPP. Writes the model's content to FILE.model for a later
comparison (after a remount). With "punch", the whole file (and far past
it) is punched at the end: st_blocks must then be 0 (allocation
accounting).
Exit 0 on success, 1 with a message on the first mismatch."""
import ctypes
import errno
import os
import random
import sys

KEEP_SIZE, PUNCH_HOLE, COLLAPSE, ZERO_RANGE, INSERT = 0x01, 0x02, 0x08, 0x10, 0x20
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


def falloc(fd, mode, off, length):
    if libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    path, nops, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    maxlen = 1 << 20
    model = bytearray()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    counts = {}

    def zero(start, end):
        end = min(end, len(model))
        if start < end:
            model[start:end] = bytes(end - start)

    def grow(n):
        if n > len(model):
            model.extend(bytes(n - len(model)))

    def check_all(what):
        data = os.pread(fd, len(model) + 4096, 0)
        if bytes(data) != bytes(model):
            i = next((i for i in range(min(len(data), len(model))) if data[i] != model[i]), min(len(data), len(model)))
            fail("%s: content differs at byte %d (file %d bytes, model %d)" % (what, i, len(data), len(model)))

    def rand_range():
        # aligned and unaligned, inside, across and past the end
        off = rng.randrange(0, maxlen + 65536)
        if rng.random() < 0.4:
            off &= ~4095
        length = rng.randrange(1, 200000)
        if rng.random() < 0.4:
            length = max(4096, length & ~4095)
        return off, length

    for i in range(nops):
        op = rng.choice(["write", "write", "trunc", "falloc", "falloc_keep", "punch", "zero", "zero_keep",
                         "seek"])
        counts[op] = counts.get(op, 0) + 1
        off, length = rand_range()
        what = "op %d %s off %d len %d" % (i, op, off, length)
        if op == "write":
            data = bytes([rng.randrange(1, 256)]) * length
            os.pwrite(fd, data, off)
            grow(off + length)
            model[off:off + length] = data
        elif op == "trunc":
            n = rng.randrange(0, maxlen)
            os.ftruncate(fd, n)
            del model[n:]
            grow(n)
        elif op == "falloc":
            falloc(fd, 0, off, length)
            grow(off + length)
        elif op == "falloc_keep":
            falloc(fd, KEEP_SIZE, off, length)
        elif op == "punch":
            falloc(fd, PUNCH_HOLE | KEEP_SIZE, off, length)
            zero(off, off + length)
        elif op == "zero":
            falloc(fd, ZERO_RANGE, off, length)
            zero(off, off + length)
            grow(off + length)
        elif op == "zero_keep":
            falloc(fd, ZERO_RANGE | KEEP_SIZE, off, length)
            zero(off, off + length)
        elif op == "seek" and model:
            pos = rng.randrange(0, len(model))
            try:
                d = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as e:
                if e.errno != errno.ENXIO:
                    raise
                d = len(model)
            if d < pos or d > len(model) or any(model[pos:d]):
                fail("%s: SEEK_DATA from %d gave %d over non-zero bytes" % (what, pos, d))
            if model[pos] and d != pos:
                fail("%s: SEEK_DATA from %d (a non-zero byte) gave %d" % (what, pos, d))
            h = os.lseek(fd, pos, os.SEEK_HOLE)
            if h < pos or h > len(model) or (model[pos] and h == pos):
                fail("%s: SEEK_HOLE from %d gave %d (size %d)" % (what, pos, h, len(model)))
        st = os.fstat(fd)
        if st.st_size != len(model):
            fail("%s: st_size %d, model %d" % (what, st.st_size, len(model)))
        if i % 25 == 0:
            check_all(what)
    check_all("end")
    for mode in (COLLAPSE, INSERT, PUNCH_HOLE, 0x40):
        try:
            falloc(fd, mode, 0, 4096)
            fail("fallocate mode 0x%x succeeded" % mode)
        except OSError as e:
            if e.errno != errno.EOPNOTSUPP:
                fail("fallocate mode 0x%x: %s, not EOPNOTSUPP" % (mode, e))
    with open(path + ".model", "wb") as f:
        f.write(model)
    if len(sys.argv) > 4 and sys.argv[4] == "punch":
        punch_all(fd, model, check_all)
    os.close(fd)
    print("%d operations: %s" % (nops, ", ".join("%s %d" % kv for kv in sorted(counts.items()))))


def punch_all(fd, model, check_all):
    """punch everything (reservations past the end too): nothing allocated"""
    falloc(fd, PUNCH_HOLE | KEEP_SIZE, 0, 1 << 40)
    model[:] = bytes(len(model))
    check_all("after punching everything")
    blocks = os.fstat(fd).st_blocks
    if blocks:
        fail("st_blocks %d after punching everything" % blocks)


main()
