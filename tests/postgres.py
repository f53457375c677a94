"""A throw-away PostgreSQL server for the tests (Debian's postgresql package): ``initdb`` into a temporary folder,
a free port on 127.0.0.1, run as an unprivileged user when the tests run as root (the server refuses root)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server(prefix: str = "mcu-nas-pg-") -> Iterator[str]:
    """Start a server, yield its URL (database ``postgres``, user ``postgres``, trust auth), stop and delete it.
    Skips the test where the server binaries or an unprivileged user are missing."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql")
    # not under pytest's folder: that is private to root, and the server runs as another user
    base = Path(tempfile.mkdtemp(prefix=prefix))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    run_as: list[str] = []
    if os.geteuid() == 0:
        for user in ("postgres", "nobody"):
            try:
                pw = pwd.getpwnam(user)
            except KeyError:
                continue
            for path in (base, sock):
                os.chown(path, pw.pw_uid, pw.pw_gid)
            os.chmod(base, 0o755)
            run_as = ["runuser", "-u", user, "--"]
            break
        else:
            pytest.skip("running as root and there is no unprivileged user to run PostgreSQL as")

    def run(argv: list[str]) -> None:
        done = subprocess.run(run_as + argv, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            pytest.fail(f"{Path(argv[0]).name} failed: {done.stderr.strip() or done.stdout.strip()}")

    run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    port = _free_port()
    run([pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "-t", "120", "-o",
         f"-p {port} -k {sock} -c listen_addresses=127.0.0.1", "start"])
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(run_as + [pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
