"""The process sandbox's launcher: confine this process, then run the harness under it as its init.

Like harness.py it runs under the environment's own Python (3.10+), with the standard library
only, and imports nothing of numerai-sandbox. The host starts it as

    python -I -S confine.py CONFIG_JSON -- PROGRAM ARGS...

and it, in this order:
  - ends with the host (PR_SET_PDEATHSIG), killing all below it first, and pins itself to the cores
    it was given (affinity);
  - cuts the network off with the first method that works of those the config lists:
      namespace  a new, empty network namespace (unshare(CLONE_NEWNET); where that is refused and we
                 are not root, inside a new user namespace), its loopback brought up as in a container;
      seccomp    a seccomp filter: socket() of any family but AF_UNIX and AF_NETLINK fails with
                 ENETUNREACH (what a container's connect() says), io_uring_setup with ENOSYS (an
                 io_uring can make sockets without socket());
    and runs with the network as it is when none works, saying so;
  - sets no_new_privs (setuid programs gain nothing, as with Docker's no-new-privileges), the
    rlimits (open files, processes, CPU seconds as a backstop, no core dumps), and becomes a child
    subreaper, so whatever the model forks, however it detaches, stays below this process;
  - writes what it achieved as one JSON object to the report descriptor, and closes it;
  - forks and execs PROGRAM, then reaps everything below it (as docker-init does); once PROGRAM
    ends, kills what it left behind and exits with PROGRAM's exit code, or 128+N for signal N;
    SIGTERM, SIGINT, SIGHUP or SIGQUIT make it kill everything below it and exit 128+N at once.

It exits 2 with {"error": ...} on the report descriptor when it cannot confine as asked (a
failure of the sandbox, never the model's). Nothing here decides how the limits are enforced
over time: the host watches memory and the clock and kills the whole tree.
"""

import ctypes
import errno
import json
import os
import platform
import resource
import signal
import socket
import struct
import sys

EXIT_SANDBOX_FAILED = 2
STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")
NETWORK_METHODS = ("namespace", "seccomp")

PR_SET_PDEATHSIG = 1
PR_SET_SECCOMP = 22
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

# seccomp-bpf: classic BPF over struct seccomp_data {int nr; u32 arch; u64 ip; u64 args[6]}.
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_RET_K = 0x06
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0 = 0, 4, 16  # args[0]'s low 32 bits (little-endian machines)
X32_SYSCALL_BIT = 0x40000000
# {machine: (AUDIT_ARCH_*, __NR_socket, __NR_io_uring_setup)}
SYSCALLS = {"x86_64": (0xC000003E, 41, 425), "aarch64": (0xC00000B7, 198, 425)}
ALLOWED_FAMILIES = (socket.AF_UNIX, socket.AF_NETLINK)  # local only: no route out of the machine

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1

LIBC = ctypes.CDLL(None, use_errno=True)


class ConfineError(Exception):
    """What was asked cannot be done here."""


def _call(function, *args):
    """A libc call that sets errno: its result, or OSError."""
    result = function(*args)
    if result == -1:
        number = ctypes.get_errno()
        raise OSError(number, os.strerror(number))
    return result


def prctl(option, value=0):
    return _call(LIBC.prctl, ctypes.c_int(option), ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0),
                 ctypes.c_ulong(0))


def unshare(flags):
    return _call(LIBC.unshare, ctypes.c_int(flags))


def loopback_up():
    """Bring `lo` up in a new network namespace (it starts down): 127.0.0.1 works, as in a container."""
    import fcntl

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH", fcntl.ioctl(probe, SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))


def _write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def new_network_namespace():
    """An empty network namespace for this process and all it starts; raises OSError when refused."""
    try:
        unshare(CLONE_NEWNET)
        how = "a new network namespace"
    except OSError as exc:
        if exc.errno != errno.EPERM or os.geteuid() == 0:
            raise
        # Unprivileged: a user namespace of our own grants CAP_NET_ADMIN over a network namespace it owns.
        # Our uid and gid map to themselves, so files keep their owners and nothing gains a privilege
        # outside it.
        uid, gid = os.geteuid(), os.getegid()
        unshare(CLONE_NEWUSER | CLONE_NEWNET)
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
        how = "a new network namespace (in a user namespace of its own)"
    try:
        loopback_up()
    except OSError as exc:
        return f"{how}; its loopback stayed down ({exc.strerror})"
    return f"{how}, loopback only"


def seccomp_program(machine):
    """The seccomp-bpf program (a list of (code, jt, jf, k)) that denies sockets of other families than
    ALLOWED_FAMILIES and io_uring_setup on `machine`, or None where we do not know its system calls."""
    if machine not in SYSCALLS:
        return None
    arch, nr_socket, nr_io_uring_setup = SYSCALLS[machine]
    deny = SECCOMP_RET_ERRNO | errno.ENETUNREACH
    program = [
        (BPF_LD_W_ABS, 0, 0, OFFSET_ARCH),
        (BPF_JEQ_K, 1, 0, arch),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS),  # another ABI (i386's int 0x80): nothing
        (BPF_LD_W_ABS, 0, 0, OFFSET_NR),
        (BPF_JGE_K, 0, 1, X32_SYSCALL_BIT),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS),  # x32's numbering: nothing
        (BPF_JEQ_K, 0, 1, nr_io_uring_setup),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS),
        (BPF_JEQ_K, 1, 0, nr_socket),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        (BPF_LD_W_ABS, 0, 0, OFFSET_ARG0),
    ]
    for index, family in enumerate(ALLOWED_FAMILIES):
        left = len(ALLOWED_FAMILIES) - index  # instructions between this test and the final allow
        program.append((BPF_JEQ_K, left, 0, family))
    program += [(BPF_RET_K, 0, 0, deny), (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW)]
    return program


def install_seccomp(program):
    """Load a seccomp-bpf program for this process and its descendants (needs no_new_privs first)."""

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                    ("k", ctypes.c_uint32)]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    filters = (SockFilter * len(program))(*[SockFilter(*step) for step in program])
    fprog = SockFprog(len(program), filters)
    _call(LIBC.prctl, ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER),
          ctypes.c_void_p(ctypes.addressof(fprog)), ctypes.c_ulong(0), ctypes.c_ulong(0))


def cut_network(methods):
    """Try each method in turn: {"network": the method that works or "none", "detail": what it did or why
    none worked}."""
    refused = []
    for method in methods:
        try:
            if method == "namespace":
                return {"network": method, "detail": new_network_namespace()}
            if method == "seccomp":
                program = seccomp_program(platform.machine().lower())
                if program is None:
                    refused.append(f"seccomp: no filter for {platform.machine()}")
                    continue
                prctl(PR_SET_NO_NEW_PRIVS, 1)
                install_seccomp(program)
                return {"network": method, "detail": "a seccomp filter: sockets of Internet families fail "
                                                     "with ENETUNREACH"}
            refused.append(f"{method}: unknown method")
        except OSError as exc:
            refused.append(f"{method}: {exc.strerror or exc}")
    return {"network": "none", "detail": "; ".join(refused) or "no method was allowed"}


def set_limits(limits):
    """{"NOFILE": [soft, hard], ...}: the resource limits, by their RLIMIT_ name."""
    for name, (soft, hard) in sorted(limits.items()):
        resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (soft, hard))


def descendants():
    """Every process below this one (read from /proc: a subreaper keeps even detached ones below it)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    stat = handle.read()
            except OSError:
                continue
            parents[int(entry)] = int(stat[stat.rfind(b")") + 2:].split()[1])
    found, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier and pid not in found}
        found |= frontier
    return found


def kill_descendants():
    """SIGKILL everything below this process and reap it, until nothing is left (a forking process may
    add one more between two looks)."""
    for _ in range(100):
        left = descendants()
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        reap(block=False)
    reap(block=False)


def reap(block):
    """Collect exited children: [(pid, status)]."""
    done = []
    while True:
        try:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done.append((pid, status))
        if block:
            return done


def exit_status(status):
    """docker-init's convention: the exit code, or 128+N when signal N ended the process."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def supervise(argv):
    """Start PROGRAM, reap all that ends below us, and return PROGRAM's exit status once it is gone."""
    child = os.fork()
    if child == 0:
        try:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            for name in STOP_SIGNALS:
                signal.signal(getattr(signal, name), signal.SIG_DFL)
            os.execv(argv[0], argv)
        except BaseException as exc:  # noqa: BLE001 - nothing to return to in a forked child
            os.write(2, f"numerai-sandbox launcher: cannot start {argv[0]}: {exc}\n".encode())
        os._exit(127)
    while True:
        for pid, status in reap(block=True):
            if pid == child:
                kill_descendants()
                return exit_status(status)


def stop_everything(number, frame):
    """The host went away (our parent-death signal) or asked us to stop: nothing below us outlives us."""
    kill_descendants()
    os._exit(128 + number)


def main(argv):
    if len(argv) < 3 or argv[1] != "--":
        print("usage: confine.py CONFIG_JSON -- PROGRAM [ARGS...]", file=sys.stderr)
        return EXIT_SANDBOX_FAILED
    config = json.loads(argv[0])
    report_fd = config.get("report_fd")
    report = {"pid": os.getpid()}
    try:
        for name in STOP_SIGNALS:
            signal.signal(getattr(signal, name), stop_everything)
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != config.get("host_pid", os.getppid()):
            return EXIT_SANDBOX_FAILED  # the host died before we could tie ourselves to it
        if config.get("cores"):
            os.sched_setaffinity(0, config["cores"])
        report.update(cut_network(config.get("network", NETWORK_METHODS)))
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        set_limits(config.get("rlimits", {}))
        prctl(PR_SET_CHILD_SUBREAPER, 1)
        report["cores"] = sorted(os.sched_getaffinity(0))
        report["rlimits"] = {name: list(resource.getrlimit(getattr(resource, f"RLIMIT_{name}")))
                             for name in config.get("rlimits", {})}
    except BaseException as exc:  # noqa: BLE001 - said to the host, which decides
        report["error"] = f"{type(exc).__name__}: {exc}"
    if report_fd is not None:
        data = json.dumps(report).encode() + b"\n"
        while data:
            data = data[os.write(report_fd, data):]
        os.close(report_fd)
    if "error" in report:
        return EXIT_SANDBOX_FAILED
    return supervise(argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
