"""Loopback TCP ports for a mongod: whether one is free, and free ones to listen on.

A port found free can be taken by another program before mongod binds it; whoever
starts mongod on it retries on another port when the log says "Address already in use".
"""

from __future__ import annotations

import socket


def port_free(port: int) -> bool:
    """Whether a loopback TCP port can be listened on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As mongod does: a port left in TIME_WAIT by the last server is free to reuse.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback TCP port that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def free_ports(count: int) -> list[int]:
    """``count`` different loopback TCP ports that are free now."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports
