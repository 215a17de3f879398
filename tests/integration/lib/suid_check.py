#!/usr/bin/env python3
"""suid_check.py DIR - setuid/setgid bits on a mount after writes, truncates,
O_TRUNC opens and chowns, against what the Linux VFS does on a local
filesystem (the same script passes on ext4, kernel 6.18):

  - a write, truncate, O_TRUNC open, copy_file_range or fallocate by a
    caller without CAP_FSETID clears
    setuid, and setgid when the file is group-executable (a setgid file
    without group execute keeps it if the caller is in its group);
  - the same by root (CAP_FSETID) keeps both;
  - chown, by anyone, clears setuid, and setgid when group-executable; a
    chmod after it sets them again (what tar does).

Runs as root; the unprivileged half runs in a child that drops to
nobody (65534), so the mount needs allow_other. Works on the directory
through a descriptor opened before dropping privileges (the path above it
may not be searchable by nobody). Each check also re-reads the mode after
statting through a fresh open, so a stale kernel attribute cache is caught.
Exit 0 when every case holds, 1 with the failures listed."""
import os
import stat
import sys

NOBODY = 65534
SUPP_GROUP = 100  # nobody's only supplementary group in the child
d = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
failures = []


def make(name, mode, gid=0):
    fd = os.open(name, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600, dir_fd=d)
    os.write(fd, b"content\n")
    os.close(fd)
    os.chown(name, 0, gid, dir_fd=d)
    os.chmod(name, mode, dir_fd=d)


def mode_of(name):
    return stat.S_IMODE(os.stat(name, dir_fd=d).st_mode)


def expect(name, want, what):
    got = mode_of(name)
    if got != want:
        failures.append("%s: mode 0%o, want 0%o" % (what, got, want))


def write(name):
    fd = os.open(name, os.O_WRONLY, dir_fd=d)
    os.pwrite(fd, b"more", 8)
    os.close(fd)


def truncate(name):
    fd = os.open(name, os.O_WRONLY, dir_fd=d)
    os.ftruncate(fd, 3)
    os.close(fd)


def open_trunc(name):
    os.close(os.open(name, os.O_WRONLY | os.O_TRUNC, dir_fd=d))


def copy_range(name):
    src = os.open("copy_source", os.O_RDONLY, dir_fd=d)
    fd = os.open(name, os.O_WRONLY, dir_fd=d)
    os.copy_file_range(src, fd, 4, 0, 4)
    os.close(fd)
    os.close(src)


def preallocate(name):
    fd = os.open(name, os.O_WRONLY, dir_fd=d)
    os.posix_fallocate(fd, 0, 65536)
    os.close(fd)


# (name, mode before, what the caller does, mode after as nobody, as root,
# the file's group)
CASES = [
    ("w_suid_sgid", 0o6777, write, 0o0777, 0o6777),
    ("w_sgid_noexec", 0o2767, write, 0o0767, 0o2767),
    ("w_sgid_noexec_ingroup", 0o2767, write, 0o2767, 0o2767, NOBODY),
    ("t_sgid_noexec_ingroup", 0o2767, truncate, 0o2767, 0o2767, NOBODY),
    ("w_sgid_noexec_suppgroup", 0o2767, write, 0o2767, 0o2767, SUPP_GROUP),
    ("w_suid", 0o4777, write, 0o0777, 0o4777),
    ("t_suid_sgid", 0o6777, truncate, 0o0777, 0o6777),
    ("o_suid_sgid", 0o6777, open_trunc, 0o0777, 0o6777),
    ("c_suid_sgid", 0o6777, copy_range, 0o0777, 0o6777),
    ("f_suid_sgid", 0o6777, preallocate, 0o0777, 0o6777),
]
make("copy_source", 0o644)

for who in ("nobody", "root"):
    for name, before, *rest in CASES:
        make(who + "_" + name, before, rest[3] if len(rest) > 3 else 0)

pid = os.fork()
if pid == 0:
    try:
        os.setgroups([SUPP_GROUP])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
        for name, _, act, *_ in CASES:
            act("nobody_" + name)
        os._exit(0)
    except Exception as e:  # reported by the parent
        print("as nobody: %s" % e, file=sys.stderr)
        os._exit(1)
_, status = os.waitpid(pid, 0)
if status != 0:
    failures.append("the unprivileged caller failed (status %d)" % status)
for name, _, act, as_nobody, as_root, *_ in CASES:
    act("root_" + name)
    expect("nobody_" + name, as_nobody, "%s by nobody on %s" % (act.__name__, name))
    expect("root_" + name, as_root, "%s by root on %s" % (act.__name__, name))

# chown (by root) clears the bits; a chmod after it sets them again
make("chown_suid_sgid", 0o6755)
os.chown("chown_suid_sgid", 0, 0, dir_fd=d)
expect("chown_suid_sgid", 0o0755, "chown of a 6755 file")
make("chown_sgid_noexec", 0o2745)
os.chown("chown_sgid_noexec", 0, 0, dir_fd=d)
expect("chown_sgid_noexec", 0o2745, "chown of a 2745 file")
os.chmod("chown_suid_sgid", 0o6755, dir_fd=d)
expect("chown_suid_sgid", 0o6755, "chmod after chown")

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("setuid/setgid: %d cases as the VFS does" % (2 * len(CASES) + 3))
