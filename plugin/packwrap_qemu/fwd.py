"""`python -m packwrap_qemu.fwd PORT`: relay stdin/stdout to 127.0.0.1:PORT.

QEMU's hermetic guestfwd runs one command per guest connection with the connection on
its stdin/stdout. `busybox nc` does this when present; this is the fallback.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys


def relay(port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sel = selectors.DefaultSelector()
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    sel.register(stdin, selectors.EVENT_READ)
    sel.register(sock, selectors.EVENT_READ)
    open_ends = 2
    while open_ends:
        for key, _ in sel.select():
            if key.fileobj == stdin:
                data = os.read(stdin, 65536)
                if data:
                    sock.sendall(data)
                else:
                    sock.shutdown(socket.SHUT_WR)
                    sel.unregister(stdin)
                    open_ends -= 1
            else:
                data = sock.recv(65536)
                if data:
                    os.write(stdout, data)
                else:
                    sel.unregister(sock)
                    open_ends -= 1
    sock.close()


if __name__ == "__main__":
    relay(int(sys.argv[1]))
