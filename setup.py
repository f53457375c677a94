"""Build steps pyproject.toml cannot declare: the virtual board's C cycle model and the gRPC code."""

import sys
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


setup(
    cmdclass={"build_py": BuildPyWithProtos},
    ext_modules=[
        Extension(
            "measure_agent.vboard._cyclemodel",
            sources=["measure_agent/vboard/cyclemodel.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wno-missing-field-initializers"],
        )
    ],
)
