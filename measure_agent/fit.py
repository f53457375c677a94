"""The one fit verdict: does a compiled model fit a board running a given firmware, for a weight placement?

:func:`fit` is what the agent checks before a measurement (``measurement.measure`` raises ``DoesNotFit``
with its reason) and what ``costmodel analyze --target`` prints, so the two always agree. The numbers are
the firmware's own, not estimates: its image size and static RAM (``.data``, ``.bss``, stack), its model RAM
region, its flash slots above the image (``linker.usable_slots``), and the plan's real arena (planned
tensors + the shared scratch + the executor's per-layer state, ``Plan.arena_bytes``).

Placement ``flash`` (as deployed, the default): the plan (weights, biases, quantization tables and the
plan's tables) is programmed into a run of flash slots behind a 256-byte slot header; only the arena takes
model RAM. Placement ``sram``: the plan and the arena both live in model RAM (the plan 16-byte aligned).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from costmodel.boards import Board, get_board

PLACEMENTS = ("flash", "sram")
DEFAULT_PLACEMENT = "flash"


class PlacementError(ValueError):
    """An unknown placement name."""


def check_placement(placement: str | None) -> str:
    """``placement`` or the default; PlacementError for anything else than flash / sram."""
    placement = (placement or DEFAULT_PLACEMENT).lower()
    if placement not in PLACEMENTS:
        raise PlacementError(f"placement must be flash or sram, not {placement!r}")
    return placement


@dataclass(frozen=True)
class FitVerdict:
    """Whether a plan fits a board's firmware, the numbers behind it and a one-line reason."""

    fits: bool
    placement: str
    target: str
    flash_needed: int          # firmware image (up to the first slot, flash placement) + header + plan
    flash_available: int       # the board's flash
    ram_needed: int            # firmware static RAM + arena (+ the plan, sram placement)
    ram_available: int         # firmware static RAM + its model RAM region
    plan_bytes: int
    arena_bytes: int
    model_ram_bytes: int       # the firmware's model RAM region
    slot_area_bytes: int       # flash slots above the firmware image (0: no flash placement)
    layers: int
    max_layers: int            # layers the firmware can time
    reason: str

    @property
    def flash(self) -> bool:
        return self.flash_needed <= self.flash_available

    @property
    def ram(self) -> bool:
        return self.ram_needed <= self.ram_available

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["flash"], d["ram"] = self.flash, self.ram
        return d


def _align16(n: int) -> int:
    return (n + 15) & ~15


@lru_cache(maxsize=64)
def _image_symbols(path: str, mtime_ns: int) -> dict[str, int]:
    from measure_agent.elf import parse_elf

    return dict(parse_elf(path).symbols)


def slots_start(image, board: Board) -> int:
    """Where the firmware's flash slots start (``__flash_slots_start``; from the image size if the ELF does
    not say)."""
    try:
        symbols = _image_symbols(str(image.path), os.stat(image.path).st_mtime_ns)
        if "__flash_slots_start" in symbols:
            return symbols["__flash_slots_start"]
    except (OSError, ValueError):
        pass
    from measure_agent.firmware_build.linker import usable_slots

    slots = usable_slots(board, board.flash.base + image.flash_bytes)
    return slots[0].base if slots else board.flash.end


def slot_area_bytes(image, board: Board) -> int:
    """Bytes of flash slots above the firmware image (0 without a flash layout in the catalogue)."""
    from measure_agent.firmware_build.linker import usable_slots

    if board.family.flash_ctl is None:
        return 0
    return sum(s.size for s in usable_slots(board, slots_start(image, board)))


def _kib(n: int) -> str:
    return f"{n:,} bytes"


def fit(plan, image, placement: str | None = DEFAULT_PLACEMENT, board: Board | None = None) -> FitVerdict:
    """The verdict for ``plan`` (a compiled :class:`~measure_agent.plan.Plan`) on the board of ``image`` (a
    :class:`~measure_agent.firmware_build.FirmwareImage`) with its constants at ``placement``."""
    from measure_agent.firmware_build.flags import shell_max_layers
    from measure_agent.firmware_build.linker import SLOT_HEADER_BYTES

    placement = check_placement(placement)
    board = board or get_board(image.board)
    plan_bytes, arena = len(plan.blob), plan.arena_bytes
    layers, max_layers = len(plan.layers), shell_max_layers(board)
    model_ram = image.model_ram_bytes
    static_ram = image.ram_bytes
    area = slot_area_bytes(image, board)
    problems = []
    if placement == "flash":
        used = slots_start(image, board) - board.flash.base
        flash_needed, flash_available = used + SLOT_HEADER_BYTES + plan_bytes, board.flash.size
        ram_needed = static_ram + arena
        model_need = arena
        if area == 0:
            problems.append(f"{board.name} has no flash slots for plans (catalogue flash_layout or free flash)")
        elif SLOT_HEADER_BYTES + plan_bytes > area:
            problems.append(f"plan {_kib(plan_bytes)} > {_kib(area - SLOT_HEADER_BYTES)} of flash slots above the "
                            f"firmware ({_kib(used)})")
    else:
        flash_needed, flash_available = image.flash_bytes, board.flash.size
        model_need = _align16(plan_bytes) + arena
        ram_needed = static_ram + model_need
    ram_available = static_ram + model_ram
    if model_need > model_ram:
        what = f"arena {_kib(arena)}" if placement == "flash" else \
            f"plan {_kib(plan_bytes)} + arena {_kib(arena)}"
        problems.append(f"{what} > {_kib(model_ram)} model RAM of the firmware")
    if layers > max_layers:
        problems.append(f"{layers} layers > the {max_layers} the firmware can time")
    fits = not problems
    where = "in flash" if placement == "flash" else "in SRAM"
    if fits:
        reason = (f"fits {board.name} with the plan {where}: plan {_kib(plan_bytes)}"
                  + (f" of {_kib(area - SLOT_HEADER_BYTES)} flash slots" if placement == "flash" else "")
                  + f", RAM {_kib(ram_needed)} of {_kib(ram_available)} (arena {_kib(arena)}, firmware "
                  f"{_kib(static_ram)})")
    else:
        reason = f"does not fit {board.name} with the plan {where}: " + "; ".join(problems)
    return FitVerdict(fits, placement, board.name, flash_needed, flash_available, ram_needed, ram_available,
                      plan_bytes, arena, model_ram, area, layers, max_layers, reason)


def runtime_support(graph) -> list[tuple[int, str, str | None]]:
    """Per layer ``(index, op, reason)``: ``reason`` is None when the firmware runtime can run the layer (its
    lowering into the plan succeeds), else why not (no kernel for the op, an unsupported type or option)."""
    from costmodel.errors import ModelError
    from measure_agent.plan.builder import Builder, LoweringError, UnsupportedOpError
    from measure_agent.plan.lower import LOWERINGS

    builder = Builder(graph)
    out = []
    for op in graph.ops:
        if op.type not in LOWERINGS:
            out.append((op.index, op.type, f"the runtime has no kernel for {op.type}"))
            continue
        try:
            LOWERINGS[op.type](builder, graph, op)
            out.append((op.index, op.type, None))
        except UnsupportedOpError as exc:
            out.append((op.index, op.type, str(exc)))
        except (LoweringError, ModelError, ValueError, KeyError, IndexError, TypeError) as exc:
            out.append((op.index, op.type, str(exc) or type(exc).__name__))
    return out


def fit_plan(plan, unpaired: Callable[[], object], image, placement: str | None = DEFAULT_PLACEMENT,
             board: Board | None = None) -> tuple[object, FitVerdict]:
    """The plan a measurement uploads and its verdict: ``plan``, or, when a plan with int16 pair filters (twice
    TFLite's bytes) does not fit, ``unpaired()`` (the same model in TFLite's filter layout) and its verdict."""
    verdict = fit(plan, image, placement, board)
    if not verdict.fits and plan.paired_filters:
        plan = unpaired()
        verdict = fit(plan, image, placement, board)
    return plan, verdict


def target_verdict(graph, board: Board, placement: str | None = DEFAULT_PLACEMENT, settings=None) -> dict:
    """What ``costmodel analyze --target`` reports: the fit verdict of the compiled model on the firmware the
    agent would build for ``board`` (``settings``: the measurement's default), and which layers the runtime
    can run. Keys: ``fits`` (None when it cannot be decided: a layer the runtime cannot run, or no
    firmware build), the verdict's fields, ``unsupported`` (``[{index, op, reason}]``), ``arena`` (the
    runtime's arena: tensors, scratch, layer state) and ``problem`` (why undecided)."""
    from measure_agent.firmware_build import FirmwareBuildError, build_firmware
    from measure_agent.plan import UnsupportedOpError, compile_plan
    from measure_agent.settings import FirmwareSettings

    placement = check_placement(placement)
    out: dict = {"target": board.name, "placement": placement, "fits": None, "unsupported": [], "problem": ""}
    support = runtime_support(graph)
    out["unsupported"] = [{"index": i, "op": op, "reason": why} for i, op, why in support if why]
    settings = settings or FirmwareSettings.for_board(board)
    try:
        plan = compile_plan(graph, settings.variant)  # the plan the measurement uploads
    except UnsupportedOpError as exc:
        out["problem"] = f"the runtime cannot run the model: {exc}"
        return out
    scratch = _align16(plan.scratch_bytes)
    out["arena"] = {"total": plan.arena_bytes, "scratch": scratch, "layer_state": plan.state_bytes,
                    "tensors": plan.arena_bytes - plan.state_bytes - scratch}
    try:
        image = build_firmware(board, settings)
    except (FirmwareBuildError, OSError) as exc:
        out["problem"] = f"cannot build the firmware to size it: {str(exc).splitlines()[0] if str(exc) else exc}"
        return out
    _, verdict = fit_plan(plan, lambda: compile_plan(graph, settings.variant, pair_filters=False), image,
                          placement, board)
    out.update(verdict.to_dict())
    return out
