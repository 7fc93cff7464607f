#!/usr/bin/env python3
# bench/wire.py NS_A DEV_A NS_B DEV_B DELAY_MS: a point-to-point link between two TUN devices
# (one in each network namespace) that holds every packet DELAY_MS before passing it on: the
# WAN delay of bench/sites.sh and bench/nat.sh on kernels built without sch_netem. Rate
# limits stay in the kernel (htb on each TUN device's egress). It prints "ready" once both
# devices are attached, and runs until killed.
import collections, ctypes, fcntl, os, select, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
def attach(ns, dev):
    nsfd = os.open("/run/netns/" + ns, os.O_RDONLY)
    if libc.setns(nsfd, 0x40000000) != 0:  # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), "setns " + ns)
    os.close(nsfd)
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH", dev.encode(), 0x0001 | 0x1000))  # TUNSETIFF, IFF_TUN|IFF_NO_PI
    return fd
a = attach(sys.argv[1], sys.argv[2])
b = attach(sys.argv[3], sys.argv[4])
delay = float(sys.argv[5]) / 1000
other = {a: b, b: a}
queue = {a: collections.deque(), b: collections.deque()}
print("ready", flush=True)
while True:
    heads = [q[0][0] for q in queue.values() if q]
    timeout = max(0.0, min(heads) - time.monotonic()) if heads else None
    ready, _, _ = select.select([a, b], [], [], timeout)
    now = time.monotonic()
    for fd in ready:
        for _ in range(512):
            try:
                queue[fd].append((now + delay, os.read(fd, 65536)))
            except BlockingIOError:
                break
    for fd, q in queue.items():
        while q and q[0][0] <= now:
            try:
                os.write(other[fd], q.popleft()[1])
            except OSError:
                pass
