"""Build hook: generate the gRPC code from protos/ so that it is never committed or stale."""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent
PROTO_ROOT = ROOT / "protos"
OUT = ROOT / "server"


def generate_grpc_code() -> None:
    from grpc_tools import protoc  # build requirement, see pyproject.toml

    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={OUT}",
        f"--pyi_out={OUT}",
        f"--grpc_python_out={OUT}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed: {' '.join(args)}")


class BuildPyWithProtos(build_py):
    def run(self) -> None:
        generate_grpc_code()
        super().run()


setup(cmdclass={"build_py": BuildPyWithProtos})
