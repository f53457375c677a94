"""One measurement: a .tflite model on one board, from request to per-layer result."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from costmodel.analysis import analyze
from costmodel.graph import NUMPY_TYPES
from costmodel.tflite import ModelError, read_model
from measure_agent.backends import Backend
from measure_agent.energy import MonitorError, split_energy
from measure_agent.errors import BoardNotAnswering, DoesNotFit, InvalidModel, MeasureError, UnsupportedModel
from protos import agent_pb2 as pb

DEFAULT_OPT_LEVEL = "-O2"
DEFAULT_REPETITIONS = 3
OPT_LEVELS = ("-Os", "-O2", "-O3")

Progress = Callable[[int, str], None]


@dataclass(frozen=True)
class Settings:
    """The firmware a request needs: runtime variant, float ABI, optimisation level."""

    variant: str
    float_abi: str
    opt_level: str


def settings_for(request: pb.MeasureRequest, backend: Backend) -> Settings:
    """Fill in defaults for the board and check the request's choices; InvalidModel on a bad choice."""
    board = backend.board
    variant = request.runtime_variant or board.runtime_variants()[-1]
    abi = request.float_abi or board.float_abis()[0]
    opt = request.opt_level or DEFAULT_OPT_LEVEL
    if variant not in board.runtime_variants():
        raise InvalidModel(f"runtime variant {variant!r} is not available on {board.name} "
                           f"({board.core}); choose from {', '.join(board.runtime_variants())}")
    if abi not in board.float_abis():
        raise InvalidModel(f"float ABI {abi!r} is not available on {board.name}; "
                           f"choose from {', '.join(board.float_abis())}")
    if opt not in OPT_LEVELS:
        raise InvalidModel(f"optimisation level {opt!r} is not one of {', '.join(OPT_LEVELS)}")
    return Settings(variant, abi, opt)


def _inputs(request: pb.MeasureRequest, plan) -> list[bytes]:
    """The request's inputs, checked against the plan; random ones (seeded by the request id) if none."""
    specs = plan.inputs
    if request.inputs:
        if len(request.inputs) != len(specs):
            raise InvalidModel(f"the model has {len(specs)} inputs, the request gives {len(request.inputs)}")
        out = []
        for i, (given, spec) in enumerate(zip(request.inputs, specs)):
            expected = int(np.prod(spec.shape)) * np.dtype(NUMPY_TYPES[spec.dtype]).itemsize
            if given.dtype != spec.dtype or len(given.data) != expected:
                raise InvalidModel(f"input {i}: expected {spec.dtype} {list(spec.shape)} ({expected} bytes), "
                                   f"got {given.dtype} with {len(given.data)} bytes")
            out.append(bytes(given.data))
        return out
    seed = int.from_bytes(hashlib.sha256(request.request_id.encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    out = []
    for spec in specs:
        dtype = np.dtype(NUMPY_TYPES[spec.dtype])
        if dtype.kind == "f":
            data = rng.uniform(-1, 1, size=spec.shape).astype(dtype)
        else:
            info = np.iinfo(dtype)
            data = rng.integers(info.min, info.max, size=spec.shape, endpoint=True, dtype=dtype)
        out.append(data.tobytes())
    return out


def compile_model(model: bytes):
    """Read and compile a .tflite model: (graph, analysis, plan), or InvalidModel / UnsupportedModel."""
    from measure_agent.plan import UnsupportedOpError, compile_plan

    try:
        graph = read_model(model)
    except ModelError as exc:
        raise InvalidModel(f"malformed model: {exc}") from None
    try:
        plan = compile_plan(graph)
    except UnsupportedOpError as exc:
        raise UnsupportedModel(str(exc)) from None
    except ModelError as exc:
        raise InvalidModel(str(exc)) from None
    try:
        analysis = analyze(graph)
    except ModelError as exc:  # the runtime supports it, the analysis cannot describe it
        raise UnsupportedModel(str(exc)) from None
    return graph, analysis, plan


def measure(backend: Backend, request: pb.MeasureRequest, progress: Progress = lambda stage, msg: None
            ) -> pb.MeasureResult:
    """Run ``request`` on ``backend`` and build the result. Raises MeasureError subclasses."""
    from measure_agent.serial_link import BoardError, BoardLinkError, BoardTimeout

    board = backend.board
    settings = settings_for(request, backend)
    graph, analysis, plan = compile_model(request.model)
    inputs = _inputs(request, plan)
    repetitions = request.repetitions or DEFAULT_REPETITIONS

    progress(pb.MeasureEvent.BUILDING, f"firmware {settings.variant} {settings.float_abi} {settings.opt_level}")
    image = backend.firmware(settings.variant, settings.float_abi, settings.opt_level)
    need = len(plan.blob) + plan.arena_bytes
    if need > image.model_ram_bytes:
        raise DoesNotFit(f"model needs {need} bytes of RAM on the board (plan {len(plan.blob)} + arena "
                         f"{plan.arena_bytes}), {board.name} firmware has {image.model_ram_bytes}")
    try:
        link = backend.link(image)
        progress(pb.MeasureEvent.UPLOADING, f"{len(plan.blob)} bytes")
        link.upload_plan(plan.blob)
        for i, data in enumerate(inputs):
            link.set_input(i, data)
        progress(pb.MeasureEvent.RUNNING, f"{repetitions} runs")
        if backend.monitor:
            backend.monitor.start()
        run = link.run(repetitions)
        monitored = backend.monitor.stop() / repetitions if backend.monitor else None
        outputs = [link.read_output(i) for i in range(len(plan.outputs))]
    except MonitorError as exc:
        raise MeasureError(f"energy monitor of board {backend.board_id}: {exc}") from None
    except BoardTimeout as exc:
        backend.recover()
        raise BoardNotAnswering(f"board {backend.board_id} stopped answering: {exc}") from None
    except BoardError as exc:
        raise MeasureError(f"board {backend.board_id} refused the model: {exc}") from None
    except BoardLinkError as exc:
        backend.recover()
        raise BoardNotAnswering(f"board {backend.board_id}: {exc}") from None

    if len(run.layer_cycles) != len(plan.layers):
        raise MeasureError(f"board reported {len(run.layer_cycles)} layers, the plan has {len(plan.layers)}")
    macs_by_name = {layer.name: layer.macs for layer in analysis.layers}
    total_energy = monitored if monitored is not None else board.energy_joules(run.total)
    energies = split_energy(total_energy, run.layer_cycles)
    result = pb.MeasureResult(
        request_id=request.request_id, board_id=backend.board_id, target=board.name,
        runtime_variant=settings.variant, float_abi=settings.float_abi, opt_level=settings.opt_level,
        clock_hz=board.default_clock_hz, total_cycles=run.total, latency_s=board.cycles_to_seconds(run.total),
        energy_j=total_energy, energy_source=backend.energy_source, plan_bytes=len(plan.blob),
        arena_bytes=plan.arena_bytes, flash_bytes=image.flash_bytes, ram_bytes=image.ram_bytes,
        firmware_build_id=image.build_id, repetitions=repetitions, board_kind=backend.kind)
    for i, (layer, cycles, energy) in enumerate(zip(plan.layers, run.layer_cycles, energies)):
        result.layers.add(index=i, name=layer.name, op=layer.op_type, macs=macs_by_name.get(layer.name, 0),
                          cycles=cycles, latency_s=board.cycles_to_seconds(cycles), energy_j=energy)
    for spec, data in zip(plan.outputs, outputs):
        result.outputs.add(shape=list(spec.shape), dtype=spec.dtype, data=data)
    return result
