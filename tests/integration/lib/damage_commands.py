#!/usr/bin/env python3
"""damage_commands.py BKFS GENTREE WORKDIR CASES SEED FUSE - a seeded
campaign: damage a copy of a one-copy image (random bytes or bit flips in a
btree node, a superblock copy, or anywhere in the image), then run every
command that reads it, as a user would after a bad block:
show-super, list (leaves and level 1), usage, scan, scrub -n, extract; with
FUSE=1 also a read-only mount (every file read, every directory listed)
and a read-write mount (a tree copied in, files deleted, a directory
renamed); then fsck -y and fsck -n. A case fails when a command dies of a
signal, hangs (120 s), prints a sanitizer report, or when fsck -y exits 0
or 1 and the fsck -n after it is not clean (not a fixed point). Exit
statuses otherwise are free: refusing damaged input is fine, crashing is
not. Failing images are kept in WORKDIR as fail-CASE.img.
Prints one line per failure and a summary; exit 1 if any case failed."""
import os
import random
import re
import shutil
import subprocess
import sys

bkfs, gentree, work = sys.argv[1], sys.argv[2], sys.argv[3]
cases, seed, with_fuse = int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "1"
rng = random.Random(seed)
src, base, img = (os.path.join(work, n) for n in ("src", "base.img", "case.img"))
out_dir, mnt = os.path.join(work, "out"), os.path.join(work, "mnt")
os.makedirs(mnt, exist_ok=True)
BAD = re.compile(r"AddressSanitizer|LeakSanitizer|runtime error:|Segmentation fault|core dumped")
TIMEOUT = 120


def run(args):
    try:
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT)
        return p.returncode, p.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return "hang", ""


def crashed(rc, out):
    return rc == "hang" or rc < 0 or BAD.search(out)


subprocess.run([gentree, "--seed", str(seed), "--files", "500", "--quiet", src], check=True,
               stdout=subprocess.DEVNULL)
with open(base, "wb") as f:
    f.truncate(64 << 20)
subprocess.run([bkfs, "format", "--metadata-replicas", "1", "--source", src, base], check=True,
               stdout=subprocess.DEVNULL)
sup = run([bkfs, "show-super", base])[1]
node_bytes = int(re.search(r"btree_node_size:\s*(\d+)", sup).group(1)) * 512
nodes = set(re.findall(r"dev 0 off (\d+)", sup))
for level in ("1", "2", "3"):
    nodes.update(re.findall(r"dev 0 off (\d+)", run([bkfs, "list", "-l", level, base])[1]))
nodes = sorted(int(n) * 512 for n in nodes)
size = os.path.getsize(base)


def damage():
    r = rng.random()
    if r < 0.7:
        off = rng.choice(nodes) + rng.randrange(node_bytes if rng.random() < 0.5 else 1024)
    elif r < 0.8:
        off = rng.choice([4096, 65536]) + rng.randrange(2048)
    else:
        off = rng.randrange(size)
    n = rng.choice([1, 2, 8, 64])
    with open(img, "r+b") as f:
        f.seek(off)
        old = bytearray(f.read(n))
        f.seek(off)
        if rng.random() < 0.5:
            f.write(bytes(rng.randrange(256) for _ in old))
        else:
            f.write(bytes(b ^ (1 << rng.randrange(8)) for b in old))
    return "%d bytes at %d" % (n, off)


def mount(opts, work_cmd):
    """mount with opts, run work_cmd (a shell line) if it comes up, unmount;
    the server's exit status and output"""
    p = subprocess.Popen([bkfs, "mount", "-f", "-o", opts, img, mnt], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    for _ in range(200):
        if os.path.ismount(mnt) or p.poll() is not None:
            break
        subprocess.run(["sleep", "0.05"])
    if os.path.ismount(mnt):
        try:
            subprocess.run(work_cmd, shell=True, timeout=TIMEOUT, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pass
        subprocess.run(["fusermount3", "-u", mnt], stderr=subprocess.DEVNULL)
    try:
        out = p.communicate(timeout=TIMEOUT)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        subprocess.run(["fusermount3", "-uz", mnt], stderr=subprocess.DEVNULL)
        return "hang", ""
    return p.returncode, out


failures = 0
for c in range(cases):
    shutil.copyfile(base, img)
    what = damage()
    bad = []
    for cmd in (["show-super", img], ["list", img], ["list", "-l", "1", img], ["usage", img],
                ["scan", img], ["scrub", "-n", img], ["extract", img, out_dir]):
        shutil.rmtree(out_dir, ignore_errors=True)
        rc, out = run([bkfs] + cmd)
        if crashed(rc, out):
            bad.append("%s: %s\n%s" % (cmd[0], rc, out[-2000:]))
    if with_fuse:
        rc, out = mount("ro", "find %s -type f -exec cat {} + > /dev/null; ls -laR %s > /dev/null" % (mnt, mnt))
        if crashed(rc, out):
            bad.append("mount -o ro: %s\n%s" % (rc, out[-2000:]))
        rc, out = mount("rw", "cp -r %s %s/copy; find %s -name '*[05]' -type f -delete; mv %s/copy %s/moved"
                        % (src, mnt, mnt, mnt, mnt))
        if crashed(rc, out):
            bad.append("mount: %s\n%s" % (rc, out[-2000:]))
    rc, out = run([bkfs, "fsck", "-y", img])
    rc2, out2 = run([bkfs, "fsck", "-n", img])
    if crashed(rc, out) or crashed(rc2, out2):
        bad.append("fsck: %s, then fsck -n: %s\n%s%s" % (rc, rc2, out[-1500:], out2[-1500:]))
    elif rc in (0, 1) and rc2 != 0:
        bad.append("fsck -y exit %s, then fsck -n exit %s (not a fixed point)\n%s" % (rc, rc2, out2[-2000:]))
    if bad:
        failures += 1
        shutil.copyfile(img, os.path.join(work, "fail-%d.img" % c))
        print("FAIL case %d (%s):\n  %s" % (c, what, "\n  ".join(bad)), flush=True)
print("%d cases (seed %d, %d nodes of %d bytes, mounts %s): %d failed"
      % (cases, seed, len(nodes), node_bytes, "on" if with_fuse else "off", failures))
sys.exit(1 if failures else 0)
