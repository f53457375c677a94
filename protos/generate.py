"""Generate the Python gRPC code from the .proto files with grpcio-tools (run at install time)."""

from __future__ import annotations

import sys
from pathlib import Path

PROTOS = Path(__file__).resolve().parent
ROOT = PROTOS.parent


def generate() -> list[Path]:
    """Compile every protos/*.proto into protos/*_pb2.py and *_pb2_grpc.py; returns the files written."""
    from grpc_tools import protoc
    import grpc_tools

    include = Path(grpc_tools.__file__).resolve().parent / "_proto"
    written = []
    for proto in sorted(PROTOS.glob("*.proto")):
        rel = proto.relative_to(ROOT)
        code = protoc.main(["grpc_tools.protoc", f"-I{ROOT}", f"-I{include}", f"--python_out={ROOT}",
                            f"--grpc_python_out={ROOT}", str(rel)])
        if code != 0:
            raise RuntimeError(f"protoc failed on {rel}")
        written += [proto.with_name(proto.stem + "_pb2.py"), proto.with_name(proto.stem + "_pb2_grpc.py")]
    return written


if __name__ == "__main__":
    for path in generate():
        print(path, file=sys.stderr)
