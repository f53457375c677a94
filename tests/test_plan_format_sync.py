"""measure_agent/plan/format.py mirrors the firmware's C headers exactly: format constants, dtypes, op kinds,
parameter layouts (names, order, counts), status names, the per-layer state size; kernel file names follow
the one naming rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from measure_agent.plan import format as F

FIRMWARE = Path(__file__).resolve().parents[1] / "firmware"
PLAN_FORMAT_H = FIRMWARE / "runtime" / "plan_format.h"
EXECUTOR_H = FIRMWARE / "runtime" / "executor.h"
OP_TABLE_C = FIRMWARE / "runtime" / "ops" / "op_table.c"


def _code(path: Path) -> str:
    """The file without comments."""
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", path.read_text(), flags=re.S)


def _eval(expr: str, names: dict[str, int]) -> int:
    expr = re.sub(r"\b(0x[0-9A-Fa-f]+|\d+)[uUlL]*\b", r"\1", expr.strip())
    if not re.fullmatch(r"[\w\s()+\-*<>|]+", expr):
        raise ValueError(f"cannot evaluate {expr!r}")
    return int(eval(expr, {"__builtins__": {}}, dict(names)))  # noqa: S307 (constant C expressions only)


def _defines(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, value in re.findall(r"^#define[ \t]+(NN_\w+)[ \t]+(.+)$", text, flags=re.M):
        try:
            out[name] = _eval(value, out)
        except (ValueError, SyntaxError, NameError):
            pass
    return out


def _enums(text: str) -> list[tuple[str | None, list[tuple[str, int, str | None]]]]:
    """Every enum in order: (tag, [(name, value, the name its initializer refers to)])."""
    values: dict[str, int] = {}
    out = []
    for tag, body in re.findall(r"enum\s*(\w*)\s*\{(.*?)\}", text, flags=re.S):
        items, nxt = [], 0
        for part in (p.strip() for p in body.split(",")):
            if not part:
                continue
            name, _, init = (s.strip() for s in part.partition("="))
            ref = None
            if init:
                nxt = _eval(init, values)
                m = re.fullmatch(r"(NN_\w+)(\s*\+\s*\d+)?", init)
                ref = m.group(1) if m else None
            values[name] = nxt
            items.append((name, nxt, ref))
            nxt += 1
        out.append((tag or None, items))
    return out


@pytest.fixture(scope="module")
def header() -> str:
    return _code(PLAN_FORMAT_H)


def _named_enum(text: str, tag: str) -> dict[str, int]:
    (items,) = [items for t, items in _enums(text) if t == tag]
    return {name: value for name, value, _ in items}


def test_format_constants(header):
    d = _defines(header)
    assert d["NN_PLAN_MAGIC"] == F.MAGIC
    assert d["NN_PLAN_VERSION"] == F.VERSION
    assert d["NN_PLAN_HEADER_BYTES"] == F.HEADER_BYTES
    assert d["NN_PLAN_TENSOR_BYTES"] == F.TENSOR_BYTES
    assert d["NN_PLAN_OP_BYTES"] == F.OP_BYTES
    assert d["NN_PLAN_NONE"] == F.NONE
    assert d["NN_MAX_OP_INPUTS"] == F.MAX_OP_INPUTS
    assert d["NN_LAYER_STATE_BYTES"] == F.LAYER_STATE_BYTES and F.LAYER_STATE_BYTES % F.ARENA_ALIGN == 0
    assert d["NN_MAX_TAPS"] == F.MAX_TAPS


def test_dtypes_and_locations(header):
    dtypes = _named_enum(header, "nn_dtype")
    assert {n.removeprefix("NN_DT_").lower(): v for n, v in dtypes.items()} == F.DTYPES
    locations = _named_enum(header, "nn_location")
    assert locations == {"NN_LOC_ARENA": F.LOC_ARENA, "NN_LOC_CONST": F.LOC_CONST}


def test_filter_layouts(header):
    layouts = _named_enum(header, "nn_filter_layout")
    assert {n.removeprefix("NN_FILTER_").lower(): v for n, v in layouts.items()} == F.FILTER_LAYOUTS


def test_fc_weights_layouts(header):
    layouts = _named_enum(header, "nn_fc_weights_layout")
    assert {n.removeprefix("NN_FC_WEIGHTS_").lower(): v for n, v in layouts.items()} == F.FC_WEIGHTS_LAYOUTS


def test_op_kinds(header):
    kinds = _named_enum(header, "nn_op_kind")
    assert {n.removeprefix("NN_OP_"): v for n, v in kinds.items()} == F.OP_KINDS


def test_status_names():
    status = _named_enum(_code(EXECUTOR_H), "nn_status")
    assert {v: n for n, v in status.items()} == F.STATUS


def _c_layouts(header: str) -> dict[str, list[str]]:
    """C parameter layouts by their COUNT enumerator: the parameter names in word order."""
    layouts: dict[str, list[str]] = {}
    for tag, items in _enums(header):
        if tag is not None or not items or not items[-1][0].endswith("_P_COUNT"):
            continue
        count = items[-1][0]
        prefix = count.removesuffix("COUNT")
        base = items[0][2]
        names = list(layouts[base]) if base else []
        assert items[0][1] == len(names), f"{count}: does not start where {base} ends"
        for i, (name, value, _) in enumerate(items[:-1]):
            assert name.startswith(prefix), f"{name} is not named {prefix}*"
            assert value == len(names), f"{name} = {value}: the words of {count} are not consecutive"
            names.append(name.removeprefix(prefix).lower())
        assert items[-1][1] == len(names)
        layouts[count] = names
    return layouts


def test_parameter_layouts(header):
    layouts = _c_layouts(header)
    table = re.findall(r"\{\s*NN_OP_(\w+)\s*,\s*(NN_\w+)\s*,\s*(\w+)\s*,\s*(\w+)\s*\}", _code(OP_TABLE_C))
    by_kind = {kind: count for kind, count, _, _ in table}
    assert len(by_kind) == len(table), "an op kind appears twice in the op table"
    assert set(by_kind) == set(F.OP_KINDS) == set(F.PARAM_LAYOUTS)
    for kind, count in by_kind.items():
        assert tuple(layouts[count]) == F.PARAM_LAYOUTS[kind], kind


def test_builder_keywords_are_not_parameter_names():
    reserved = {"op", "kind", "inputs", "output", "kernel"}
    assert not any(reserved & set(names) for names in F.PARAM_LAYOUTS.values())


KERNEL_FILE = re.compile(r"[a-z0-9_]+?_(s8|s16|f32|hybrid|any|f32_s8|s8_f32|f32_s16|s16_f32)_(ref|simd)\.c")


def test_kernel_file_names_follow_the_rule():
    files = sorted(p.name for p in (FIRMWARE / "kernels").glob("*.c"))
    assert files and [f for f in files if not KERNEL_FILE.fullmatch(f)] == []
    for name in files:  # the function is named like its file
        assert re.search(rf"\b{name[:-2]}\(", (FIRMWARE / "kernels" / name).read_text()), name

