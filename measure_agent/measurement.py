"""One measurement: a .tflite model on one board, from request to per-layer result."""

from __future__ import annotations

import dataclasses
import functools
import struct
from dataclasses import dataclass
from typing import Callable

import numpy as np

from costmodel.analysis import LayerAnalysis, ModelAnalysis, UnsupportedByAnalysis, analyze
from costmodel.errors import ModelError
from costmodel.graph import NUMPY_TYPES, Graph
from costmodel.tflite import read_model
from measure_agent.backends import Backend
from measure_agent.energy import MONITOR_SPREAD, MONITORED, RunEnergy, run_energy
from measure_agent.errors import DoesNotFit, InvalidModel, MeasureError, UnsupportedModel
from measure_agent.fit import PlacementError, check_placement, fit_plan
from measure_agent.settings import FirmwareSettings, SettingsError, op_set
from protos import agent_pb2 as pb

DEFAULT_REPETITIONS = 3
#: the most runs one request may ask for (the board's run deadline is sized for it)
MAX_REPETITIONS = 100

Progress = Callable[[int, str], None]


@dataclass(frozen=True)
class CompiledModel:
    """A model read, analysed and compiled: ``analysis.layers[i]`` describes ``plan.layers[i]``."""

    graph: Graph
    analysis: ModelAnalysis
    plan: object  # measure_agent.plan.Plan


def settings_for(request: pb.MeasureRequest, backend: Backend) -> FirmwareSettings:
    """The request's firmware settings with the board's defaults; InvalidModel on a bad choice."""
    try:
        return FirmwareSettings.for_board(backend.board, request.runtime_variant, request.float_abi,
                                          request.opt_level, request.clock_hz)
    except SettingsError as exc:
        raise InvalidModel(str(exc)) from None


def image_ops(ops: str, plan) -> tuple[str, ...]:
    """The op set of the firmware image a request asks for (``MeasureRequest.ops``: "" / "all", "model" or plan
    op kinds); InvalidModel on an unknown kind, UnsupportedModel when the plan needs an op the set leaves out."""
    text = ops.strip()
    if text.lower() in ("", "all"):
        return ()
    needed = {layer.kind for layer in plan.layers}
    try:
        chosen = op_set(needed if text.lower() == "model" else text.split(","))
    except SettingsError as exc:
        raise InvalidModel(f"ops: {exc}") from None
    missing = [layer for layer in plan.layers if layer.kind not in chosen]
    if missing:
        kinds = sorted({layer.kind for layer in missing})
        raise UnsupportedModel(f"the firmware image of ops {','.join(chosen)} does not run {', '.join(kinds)} "
                               f"(layer {missing[0].index}, {missing[0].op_type})")
    return chosen


def _inputs(request: pb.MeasureRequest, plan) -> list[bytes]:
    """The request's inputs, checked against the plan; without any, random ones drawn from the request's
    ``input_seed`` (default 0): the same request runs on the same inputs, whatever its request id."""
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
    rng = np.random.default_rng(request.input_seed)
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


def compile_model(model: bytes, variant: str = "reference", pair_filters: bool | None = None) -> CompiledModel:
    """Read, analyse and compile a .tflite model for the firmware of runtime ``variant`` (``pair_filters``: see
    :func:`compile_plan`); InvalidModel / UnsupportedModel on a model that cannot run.

    The analysis describes the very graph that is compiled, layer for layer (joined by index); a
    mismatch is an internal error, never a silent default.
    """
    from measure_agent.plan import UnsupportedOpError, compile_plan

    try:
        graph = read_model(model)
    except ModelError as exc:
        raise InvalidModel(f"malformed model: {exc}") from None
    try:
        plan = compile_plan(graph, variant, pair_filters)
    except UnsupportedOpError as exc:
        if exc.malformed:  # e.g. a zero point out of range, a reshape that changes the size
            raise InvalidModel(exc.describe()) from None
        raise UnsupportedModel(str(exc)) from None
    except (ArithmeticError, struct.error) as exc:  # sizes or parameters of a corrupt model out of any range
        raise InvalidModel(f"malformed model: its parameters are out of range ({type(exc).__name__}: {exc})") from None
    except ModelError as exc:
        raise InvalidModel(str(exc)) from None
    try:
        analysis = analyze(graph)
    except UnsupportedByAnalysis as exc:  # the runtime supports it, the analysis cannot describe it
        raise UnsupportedModel(str(exc)) from None
    except ModelError as exc:  # e.g. a zero point beyond 32 bits of a tensor the compiler does not check
        raise InvalidModel(f"malformed model: {exc}") from None
    if len(analysis.layers) != len(plan.layers):
        raise MeasureError(f"internal: the plan has {len(plan.layers)} layers, the analysis {len(analysis.layers)}")
    for layer, planned in zip(analysis.layers, plan.layers):
        if layer.index != planned.index or layer.op != planned.op_type:
            raise MeasureError(f"internal: plan layer {planned.index} ({planned.op_type}) does not match analysis "
                               f"layer {layer.index} ({layer.op})")
        layer_features(layer)  # options a result cannot carry are refused before the board runs the model
    return CompiledModel(graph, analysis, plan)


#: compiled models a measuring process keeps (a bench measures the same model again and again: repetitions,
#: validation, a search's repeats); a model is its bytes, so a hit is the very same plan
COMPILED_CACHE_SIZE = 8


@functools.lru_cache(maxsize=COMPILED_CACHE_SIZE)
def compiled_model(model: bytes, variant: str = "reference", pair_filters: bool | None = None) -> CompiledModel:
    """:func:`compile_model`, remembered for the last models (refusals are not remembered)."""
    return compile_model(model, variant, pair_filters)


def layer_features(layer: LayerAnalysis) -> pb.LayerFeatures:
    """The analysis' features of a layer in the result's schema."""
    f = layer.features
    out_c = layer.output_shapes[0][-1] if layer.output_shapes and layer.output_shapes[0] else 0
    kernel = f.get("kernel", [0, 0])
    stride = f.get("stride", [0, 0])
    in_channels = f.get("in_channels", f.get("channels", 0))
    numbers = dict(in_channels=in_channels, out_channels=f.get("filters", f.get("units", out_c if in_channels else 0)),
                   kernel_h=kernel[0], kernel_w=kernel[1], stride_h=stride[0], stride_w=stride[1],
                   depth_multiplier=f.get("depth_multiplier", 0), input_length=f.get("input_length", 0))
    for name, value in numbers.items():  # a corrupt model's options (e.g. depth_multiplier -2^31) are no features
        if not 0 <= int(value) < 1 << 32:
            raise InvalidModel(f"malformed model: layer {layer.index} ({layer.op}) has {name} {value}")
    return pb.LayerFeatures(alignment=f.get("alignment", ""), padding=f.get("padding", ""), **numbers)


def measure(backend: Backend, request: pb.MeasureRequest, progress: Progress = lambda stage, msg: None
            ) -> pb.MeasureResult:
    """Run ``request`` on ``backend`` and build the result. Raises MeasureError subclasses."""
    board = backend.board
    settings = settings_for(request, backend)
    try:
        placement = check_placement(request.placement)  # "" = flash, as deployed
    except PlacementError as exc:
        raise InvalidModel(str(exc)) from None
    variant = settings.variant
    compiled = compiled_model(bytes(request.model), variant)
    plan = compiled.plan
    repetitions = request.repetitions or DEFAULT_REPETITIONS
    if repetitions > MAX_REPETITIONS:
        raise InvalidModel(f"repetitions must be 1 to {MAX_REPETITIONS}, not {repetitions}")
    inputs = _inputs(request, plan)
    settings = dataclasses.replace(settings, ops=image_ops(request.ops, plan))

    progress(pb.MeasureEvent.BUILDING, f"firmware {settings.label()}")
    image = backend.firmware(settings)
    # the same verdict as `costmodel analyze --target`; the analysis is the same for either filter layout
    plan, verdict = fit_plan(plan, lambda: compiled_model(bytes(request.model), variant, False).plan, image,
                             placement, board)
    if not verdict.fits:
        raise DoesNotFit(verdict.reason)
    run = backend.run_plan(image, plan.blob, inputs, repetitions, placement=placement,
                           progress=lambda stage, msg: progress(pb.MeasureEvent.Stage.Value(stage.upper()), msg))
    cycles = run.cycles
    if len(cycles.layer_cycles) != len(plan.layers):
        raise MeasureError(f"board reported {len(cycles.layer_cycles)} layers, the plan has {len(plan.layers)}")
    energy = run_energy(board, cycles.total, cycles.layer_cycles, run.energy_j)
    layer_sources = [backend.energy_source] * len(plan.layers)
    if run.traced is not None:  # measured per layer between the energy pin's edges
        layer_j = [layer.joules for layer in run.traced.layers]
        energy = RunEnergy(layer_j, max(0.0, run.traced.run_j - sum(layer_j)), run.traced.run_j)
        layer_sources = [MONITORED if layer.resolved else MONITOR_SPREAD for layer in run.traced.layers]
    overhead_cycles = max(0, cycles.total - sum(cycles.layer_cycles))
    clock = settings.clock(board)  # the clock the firmware set up (the board checked it in its hello)
    result = pb.MeasureResult(
        request_id=request.request_id, board_id=backend.board_id, target=board.name,
        runtime_variant=settings.variant, float_abi=settings.float_abi, opt_level=settings.opt_level,
        clock_hz=clock, total_cycles=cycles.total, latency_s=cycles.total / clock,
        energy_j=energy.total_j, energy_source=backend.energy_source, plan_bytes=len(plan.blob),
        arena_bytes=plan.arena_bytes, flash_bytes=image.flash_bytes, ram_bytes=image.ram_bytes,
        firmware_build_id=image.build_id, repetitions=repetitions, board_kind=backend.kind,
        placement=run.placement, board_model_version=backend.model_version, runtime=image.runtime,
        overhead_cycles=overhead_cycles, overhead_latency_s=overhead_cycles / clock,
        overhead_energy_j=energy.overhead_j, inputs_source="given" if request.inputs else "random",
        input_seed=0 if request.inputs else request.input_seed, firmware_ops=list(image.ops))
    if backend.monitor is not None and run.energy_j is not None:
        result.energy_monitor = backend.monitor.kind
        result.energy_sample_rate_hz = backend.monitor.sample_rate_hz
    if run.traced is not None:
        result.energy_sample_rate_hz = run.traced.sample_rate_hz
        result.energy_edges_seen = run.traced.edges_seen
        result.energy_edges_expected = run.traced.edges_expected
        result.energy_boundary_error_cycles = run.traced.boundary_error_cycles
    if run.placement == "flash" and backend.flash_info is not None:
        result.flash_endurance = backend.flash_info.endurance
        result.plan_programmed = run.programmed
        for s in backend.flash_info.slots:
            result.flash_slots.add(index=s.index, address=s.address, bytes=s.bytes, erase_count=s.erase_count,
                                   state=s.state)
    for layer, planned, n, layer_energy, layer_source in zip(compiled.analysis.layers, plan.layers,
                                                             cycles.layer_cycles, energy.layers, layer_sources):
        result.layers.add(
            index=layer.index, name=layer.name, op=layer.op, macs=layer.macs, cycles=n,
            latency_s=n / clock, energy_j=layer_energy, energy_source=layer_source,
            kernel=planned.kernels[settings.variant] if image.runtime == "nn" else image.runtime,
            dtype=layer.dtype, input_shapes=[pb.Shape(dims=s) for s in layer.input_shapes],
            output_shape=pb.Shape(dims=layer.output_shapes[0] if layer.output_shapes else []),
            features=layer_features(layer), params=layer.params, weight_bytes=layer.weight_bytes)
    for spec, data in zip(plan.outputs, run.outputs):
        result.outputs.add(shape=list(spec.shape), dtype=spec.dtype, data=data)
    return result
