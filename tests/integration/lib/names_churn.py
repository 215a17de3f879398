#!/usr/bin/env python3
"""names_churn.py ROOT SEED OUT - random creates, renames (within and across
directories, over files, directories moved, RENAME_EXCHANGE), hard links and
unlinks below ROOT (a bkfs mount), then the names every inode should record
(docs/FORMAT.md 4.5), one line per directory and per single-link file:
"INO PARENT_INO NAME", and a line "linked INO" for each inode that ever had
more links than an inode records names (INODE_NAMES_MAX, 5): a name of such
a file may have no record."""
import ctypes
import os
import random
import sys

root, seed, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(seed)
libc = ctypes.CDLL(None, use_errno=True)
RENAME_EXCHANGE = 2
dirs = [root]
files = []
linked = set()
NAMES_MAX = 5  # INODE_NAMES_MAX: the names an inode records


def some_path():
    return os.path.join(rng.choice(dirs), "f%d" % rng.randrange(400))


for i in range(20):
    d = os.path.join(rng.choice(dirs), "d%d" % i)
    os.mkdir(d)
    dirs.append(d)
for _ in range(6000):
    r = rng.random()
    try:
        if r < 0.3:
            p = some_path()
            with open(p, "w") as f:
                f.write("x" * rng.randrange(100))
            files.append(p)
        elif r < 0.55 and files:
            b = some_path()
            os.rename(rng.choice(files), b)
            files.append(b)
        elif r < 0.65 and files:
            a, b = rng.choice(files), some_path()
            os.link(a, b)
            st = os.lstat(a)
            if st.st_nlink > NAMES_MAX:
                linked.add(st.st_ino)
            files.append(b)
        elif r < 0.8 and files:
            os.unlink(rng.choice(files))
        elif r < 0.9 and len(files) > 1:
            a, b = rng.choice(files), rng.choice(files)
            libc.renameat2(-100, a.encode(), -100, b.encode(), RENAME_EXCHANGE)
        elif r < 0.95:
            d = os.path.join(rng.choice(dirs), "d%d" % rng.randrange(40))
            if not os.path.exists(d):
                os.mkdir(d)
                dirs.append(d)
        else:
            a = rng.choice(dirs[1:])
            b = os.path.join(rng.choice(dirs), "d%d" % rng.randrange(40))
            if a != b and not b.startswith(a + "/"):
                os.rename(a, b)
                dirs = [b + x[len(a):] if x == a or x.startswith(a + "/") else x for x in dirs]
    except OSError:
        pass  # a name that is not there (any more), a directory not empty...

rows = []
for dp, dns, fns in os.walk(root):
    pino = os.lstat(dp).st_ino
    for n in dns + fns:
        st = os.lstat(os.path.join(dp, n))
        if n in dns or st.st_nlink == 1:
            rows.append("%d %d %s" % (st.st_ino, pino, n))
rows += ["linked %d" % i for i in sorted(linked)]
with open(out, "w") as f:
    f.write("\n".join(rows) + "\n")
