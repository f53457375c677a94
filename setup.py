"""Build steps pyproject.toml cannot declare: the virtual board's C cycle model and the gRPC code."""

import sys
from glob import glob
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py


class BuildPyWithProtos(build_py):
    """Generate protos/*_pb2*.py from the .proto contract before collecting the Python files."""

    def run(self):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from protos.generate import generate

        generate()
        super().run()


# the cycle model's C sources, one file per job (file map: measure_agent/vboard/README.md)
NATIVE = "measure_agent/vboard/native"
_here = Path(__file__).resolve().parent
NATIVE_SOURCES = [f"{NATIVE}/{name}" for name in sorted(glob("*.c", root_dir=_here / NATIVE))]
NATIVE_HEADERS = [f"{NATIVE}/{name}" for name in sorted(glob("*.h", root_dir=_here / NATIVE))]

setup(
    cmdclass={"build_py": BuildPyWithProtos},
    ext_modules=[
        Extension(
            "measure_agent.vboard._cyclemodel",
            sources=NATIVE_SOURCES,
            depends=NATIVE_HEADERS,
            # -flto: the block hook calls into flash.c / timing.c for every translation block; link-time
            # inlining keeps the split into one file per job as fast as the single file it replaced
            extra_compile_args=["-O2", "-flto", "-std=c11", "-Wall", "-Wno-missing-field-initializers"],
            extra_link_args=["-flto", "-O2"],
        )
    ],
)
