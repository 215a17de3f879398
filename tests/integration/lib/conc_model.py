#!/usr/bin/env python3
"""conc_model.py - clients and the checker of fuse_concurrency.sh.

  conc_model.py client ID SEED OPS ROOT LOG   run one client
  conc_model.py check ROOT LOG...             compare ROOT with the logs

Each client works in the shared directories ROOT/d0..d{NDIRS-1} at the same
time as the others, on names of its own (c<ID>-<n>): creates, overwrites,
extends and truncates files, renames them across the shared directories
(to new names and over its own existing ones), makes hard links, unlinks
them, unlinks files it holds open (writing and reading through the open
descriptor afterwards), and reads its files back against its model as it
goes. Every completed operation is one line of its log. The checker replays
the logs into the tree the clients should have left (names, contents, hard
links) and compares it with ROOT exactly: no name missing, none extra,
every byte, link counts, shared inode numbers. Exit status 1 with a message
on the first difference."""
import json
import os
import random
import sys

NDIRS = 4
MAX_WRITE = 48 * 1024


def data_of(cid, seq, size):
    """The bytes operation seq of client cid wrote: the logs carry only
    (seq, size), the checker makes them again."""
    return random.Random(f"{cid}-{seq}").randbytes(size)


class Model:
    """One client's files: names (path relative to ROOT) -> inode id, inode
    id -> contents."""

    def __init__(self):
        self.names = {}
        self.inodes = {}
        self.next_ino = 0

    def create(self, path, data):
        self.names[path] = self.next_ino
        self.inodes[self.next_ino] = bytearray(data)
        self.next_ino += 1

    def write(self, ino, off, data):
        buf = self.inodes[ino]
        if len(buf) < off:
            buf.extend(bytes(off - len(buf)))
        buf[off:off + len(data)] = data

    def truncate(self, ino, size):
        buf = self.inodes[ino]
        if size < len(buf):
            del buf[size:]
        else:
            buf.extend(bytes(size - len(buf)))

    def unlink(self, path):
        # the inode stays (gc drops it): "orphan" writes to it through the
        # descriptor it holds open
        return self.names.pop(path)

    def apply(self, cid, e):
        """replay one log entry"""
        op = e["op"]
        if op == "create":
            self.create(e["path"], data_of(cid, e["seq"], e["size"]))
        elif op == "write":
            self.write(self.names[e["path"]], e["off"], data_of(cid, e["seq"], e["size"]))
        elif op == "truncate":
            self.truncate(self.names[e["path"]], e["size"])
        elif op == "rename":
            self.names[e["dst"]] = self.names.pop(e["path"])
        elif op == "link":
            self.names[e["dst"]] = self.names[e["path"]]
        elif op == "unlink":
            self.unlink(e["path"])
        elif op == "orphan":
            ino = self.unlink(e["path"])
            self.write(ino, e["off"], data_of(cid, e["seq"], e["size"]))
        elif op != "fsync":
            raise ValueError(f"unknown op {op}")

    def gc(self):
        live = set(self.names.values())
        for ino in list(self.inodes):
            if ino not in live:
                del self.inodes[ino]


def fail(msg):
    print(f"conc_model: {msg}", file=sys.stderr)
    sys.exit(1)


def pick_op(rnd, m):
    if len(m.names) < 3:
        return "create"
    return rnd.choices(
        ["create", "write", "truncate", "rename", "rename_over", "link", "unlink", "orphan", "verify", "fsync"],
        [20, 20, 6, 16, 4, 5, 6, 4, 14, 4])[0]


def run_client(cid, seed, nops, root, log_path):
    rnd = random.Random(seed)
    m = Model()
    counter = 0
    log = open(log_path, "w", buffering=1)

    def new_name():
        nonlocal counter
        counter += 1
        return f"d{rnd.randrange(NDIRS)}/c{cid}-{counter}"

    def full(p):
        return os.path.join(root, p)

    def verify(path):
        with open(full(path), "rb") as f:
            got = f.read()
        want = bytes(m.inodes[m.names[path]])
        if got != want:
            fail(f"client {cid}: {path}: read {len(got)} bytes, model has {len(want)} (contents differ)")

    for seq in range(nops):
        op = pick_op(rnd, m)
        paths = sorted(m.names)
        e = {"op": op, "seq": seq}
        try:
            if op == "create":
                size = rnd.randrange(MAX_WRITE)
                e.update(path=new_name(), size=size)
                with open(full(e["path"]), "xb") as f:
                    f.write(data_of(cid, seq, size))
            elif op == "write":
                path = rnd.choice(paths)
                cur = len(m.inodes[m.names[path]])
                e.update(path=path, off=rnd.randrange(cur + 8192), size=rnd.randrange(1, MAX_WRITE))
                fd = os.open(full(path), os.O_WRONLY)
                try:
                    if os.pwrite(fd, data_of(cid, seq, e["size"]), e["off"]) != e["size"]:
                        fail(f"client {cid}: short write to {path}")
                finally:
                    os.close(fd)
            elif op == "truncate":
                path = rnd.choice(paths)
                cur = len(m.inodes[m.names[path]])
                e.update(path=path, size=rnd.randrange(cur + 16384))
                os.truncate(full(path), e["size"])
            elif op in ("rename", "rename_over"):
                src = rnd.choice(paths)
                others = [p for p in paths if m.names[p] != m.names[src]]
                if op == "rename_over" and others:
                    dst = rnd.choice(others)
                else:
                    dst = new_name()
                e.update(op="rename", path=src, dst=dst)
                os.rename(full(src), full(dst))
            elif op == "link":
                e.update(path=rnd.choice(paths), dst=new_name())
                os.link(full(e["path"]), full(e["dst"]))
            elif op == "unlink":
                e.update(path=rnd.choice(paths))
                os.unlink(full(e["path"]))
            elif op == "orphan":
                path = rnd.choice(paths)
                ino = m.names[path]
                e.update(path=path, off=rnd.randrange(len(m.inodes[ino]) + 4096), size=rnd.randrange(1, 8192))
                fd = os.open(full(path), os.O_RDWR)
                try:
                    os.unlink(full(path))
                    data = data_of(cid, seq, e["size"])
                    os.pwrite(fd, data, e["off"])
                    if os.pread(fd, len(data), e["off"]) != data:
                        fail(f"client {cid}: unlinked open {path}: data written through the descriptor "
                             "does not read back")
                finally:
                    os.close(fd)
            elif op == "verify":
                verify(rnd.choice(paths))
                continue  # nothing changed: not logged
            elif op == "fsync":
                e.update(path=rnd.choice(paths))
                fd = os.open(full(e["path"]), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as x:
            fail(f"client {cid}: op {seq} {json.dumps(e)}: {x}")
        m.apply(cid, e)
        m.gc()
        log.write(json.dumps(e) + "\n")
    # every file read back at the end
    for path in sorted(m.names):
        verify(path)
    log.close()


def check(root, logs):
    want = {}      # path -> (client, inode id)
    contents = {}  # (client, inode id) -> bytes
    for log_path in logs:
        cid = os.path.basename(log_path).split(".")[0]
        m = Model()
        with open(log_path) as f:
            for line in f:
                m.apply(cid, json.loads(line))
        m.gc()
        for path, ino in m.names.items():
            want[path] = (cid, ino)
        for ino, buf in m.inodes.items():
            contents[(cid, ino)] = bytes(buf)
    have = {}
    for d in range(NDIRS):
        for name in os.listdir(os.path.join(root, f"d{d}")):
            have[f"d{d}/{name}"] = os.lstat(os.path.join(root, f"d{d}", name))
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    if missing:
        fail(f"{len(missing)} name(s) missing, e.g. {missing[:5]}")
    if extra:
        fail(f"{len(extra)} unexpected name(s), e.g. {extra[:5]}")
    nlinks = {}
    st_ino = {}
    for path, key in want.items():
        nlinks[key] = nlinks.get(key, 0) + 1
    for path, key in sorted(want.items()):
        st = have[path]
        if st_ino.setdefault(key, st.st_ino) != st.st_ino:
            fail(f"{path}: hard links of one file have different inode numbers")
        if st.st_nlink != nlinks[key]:
            fail(f"{path}: nlink {st.st_nlink}, the model says {nlinks[key]}")
        with open(os.path.join(root, path), "rb") as f:
            got = f.read()
        if got != contents[key]:
            fail(f"{path}: {len(got)} bytes differ from the model's {len(contents[key])}")
    print(f"conc_model: {len(want)} names, {len(contents)} files match the model of {len(logs)} client log(s)")


def main():
    if len(sys.argv) >= 7 and sys.argv[1] == "client":
        run_client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6])
    elif len(sys.argv) >= 4 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3:])
    else:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
