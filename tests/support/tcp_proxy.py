"""A loopback TCP proxy for chaos tests: forward to a target, cut() to simulate an outage, restore()."""
from __future__ import annotations

import socket
import threading


class TcpProxy:
    """Listens on 127.0.0.1 (a fixed port once bound) and forwards each connection to `target`.

    `cut()` closes every open connection and the listener, so new connects are refused as they
    would be by a dead server; `restore()` listens again on the same port. Usable from
    synchronous tests: every method returns when the change has taken effect.
    """

    def __init__(self, target_host: str, target_port: int, listen_port: int = 0) -> None:
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self.port = listen_port
        self._listen()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    @property
    def is_cut(self) -> bool:
        return self._listener is None

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        self._listener = sock
        thread = threading.Thread(target=self._accept_loop, args=(sock,), daemon=True,
                                  name=f"tcp-proxy-accept-{self.port}")
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed by cut() or close()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()  # target down: the client sees a closed connection
                continue
            with self._lock:
                if self._listener is not listener:  # cut while we were connecting
                    client.close()
                    upstream.close()
                    return
                self._conns.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                pump = threading.Thread(target=self._pump, args=(src, dst), daemon=True)
                pump.start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(src, dst)

    def _drop(self, *socks: socket.socket) -> None:
        with self._lock:
            for sock in socks:
                self._conns.discard(sock)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def cut(self) -> None:
        """Drop every connection and stop listening: connects are refused until restore()."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns = list(self._conns)
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            except OSError:
                pass
            listener.close()
        self._drop(*conns)

    def restore(self) -> None:
        """Listen again on the same port."""
        if self._listener is None:
            self._listen()

    def close(self) -> None:
        self.cut()
        for thread in self._threads:
            thread.join(timeout=2)

    def __enter__(self) -> "TcpProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
