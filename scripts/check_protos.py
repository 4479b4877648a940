"""Fail when the committed generated protobuf code drifts from protos/triage/v1/triage.proto.

Regenerates into a temporary directory with exactly the command of the Makefile's ``protos``
target and compares byte for byte. Exit 0: identical; exit 1: drift (the differing files are
listed; run ``make protos`` and commit); exit 2: protoc failed.
"""

from __future__ import annotations

import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PROTO = Path("triage/v1/triage.proto")
GENERATED = ("triage_pb2.py", "triage_pb2.pyi", "triage_pb2_grpc.py")


def _protoc_args(out: Path) -> list[str]:
    """The Makefile's command line: -Iprotos --python_out --pyi_out --grpc_python_out."""
    import grpc_tools

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    return [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        str(PROTO_ROOT / PROTO),
    ]


def check() -> list[str]:
    """Return the generated files that differ from (or are missing beside) the .proto."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        # protoc resolves the proto relative to the include path, so it must see the same
        # relative name as the Makefile (triage/v1/triage.proto) to generate the same imports.
        shutil.copytree(PROTO_ROOT / "triage", out / "src" / "triage")
        gen = out / "gen"
        gen.mkdir()
        args = _protoc_args(gen)
        args[1] = f"-I{out / 'src'}"
        args[-1] = str(out / "src" / PROTO)
        rc = protoc.main(args)
        if rc != 0:
            raise RuntimeError(f"protoc failed with exit code {rc}")
        drift = []
        for name in GENERATED:
            committed = PROTO_ROOT / PROTO.parent / name
            fresh = gen / PROTO.parent / name
            if not committed.exists() or not filecmp.cmp(committed, fresh, shallow=False):
                drift.append(str(committed.relative_to(ROOT)))
        return drift


def main() -> int:
    try:
        drift = check()
    except RuntimeError as err:
        print(f"check_protos: {err}", file=sys.stderr)
        return 2
    if drift:
        print("check_protos: generated code differs from the .proto:", file=sys.stderr)
        for path in drift:
            print(f"  {path}", file=sys.stderr)
        print("check_protos: run `make protos` and commit the result", file=sys.stderr)
        return 1
    print("check_protos: generated code matches protos/triage/v1/triage.proto")
    return 0


if __name__ == "__main__":
    sys.exit(main())
