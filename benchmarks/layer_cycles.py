"""Per-layer DWT cycles of LeNet (examples/lenet_int8.tflite) and KWS (MLPerf Tiny DS-CNN) on a virtual board,
through the real path (firmware ELF, serial protocol over a pseudo-terminal): the figures that must not move
when the firmware's instrumentation between layers changes (the energy pin's marks sit outside the windows).

    python benchmarks/layer_cycles.py [--target NUCLEO-L496ZG] [--variants reference,simd]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from measure_agent.backends import BoardSpec, VirtualBackend  # noqa: E402
from measure_agent.measurement import measure  # noqa: E402
from protos import agent_pb2 as pb  # noqa: E402

MODELS = {"lenet": REPO / "examples" / "lenet_int8.tflite",
          "kws": REPO.parent / "shared" / "models" / "kws_ref_model.tflite"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="NUCLEO-L496ZG")
    parser.add_argument("--variants", default="reference,simd")
    parser.add_argument("--models", default="lenet,kws")
    args = parser.parse_args()
    figures = {}
    for name in args.models.split(","):
        path = MODELS[name]
        if not path.exists():  # the shared models sit beside the repository
            path = Path("/work/shared/models") / path.name
        for variant in args.variants.split(","):
            backend = VirtualBackend(BoardSpec(id=f"{name}-{variant}", kind="virtual", target=args.target))
            try:
                result = measure(backend, pb.MeasureRequest(request_id=f"{name}-{variant}", model=path.read_bytes(),
                                                            runtime_variant=variant, repetitions=1))
            finally:
                backend.close()
            figures[f"{name}/{variant}"] = {"layers": [int(layer.cycles) for layer in result.layers],
                                            "total": int(result.total_cycles), "build": result.firmware_build_id}
    print(json.dumps({"target": args.target, **figures}, indent=1))


if __name__ == "__main__":
    main()
