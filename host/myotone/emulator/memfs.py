"""Interim flash filesystem: a dict of path -> bytes (replaced by the littlefs image)."""
from __future__ import annotations

import io
import types


class MemFS:
    def __init__(self):
        self.files: dict[str, bytes] = {}

    def write_file(self, path: str, data: bytes) -> None:
        self.files["/" + path.lstrip("/")] = bytes(data)

    def read_file(self, path: str) -> bytes | None:
        return self.files.get("/" + path.lstrip("/"))

    def make_open(self):
        fs = self

        def _open(path, mode="r", *a, **kw):
            p = "/" + str(path).lstrip("/")
            if "r" in mode:
                if p not in fs.files:
                    raise OSError(2)
                data = fs.files[p]
                return io.BytesIO(data) if "b" in mode else io.StringIO(data.decode())
            buf = io.BytesIO() if "b" in mode else io.StringIO()
            close = buf.close

            def _close():
                v = buf.getvalue()
                fs.files[p] = v if isinstance(v, bytes) else v.encode()
                close()
            buf.close = _close
            buf.__exit__ = lambda *e: _close()
            return buf
        return _open

    def make_os_module(self):
        os = types.ModuleType("os")
        os.listdir = lambda d="/": sorted({p[len(d.rstrip("/")) + 1:].split("/")[0] for p in self.files
                                            if p.startswith(d.rstrip("/") + "/")})
        return os
