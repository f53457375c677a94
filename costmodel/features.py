"""Feature rows: one flat record per layer, the common language of the measurement store, the latency
model and the sweeps.

A *layer row* is a plain ``dict`` (or a DataFrame row) with the columns below. A measured row has all
of them; a row to predict has the layer and context columns and no measured ones. Rows come from a
measurement result (``measure_agent.results`` converts ``MeasureResult`` messages), from an
analysis (:func:`layer_rows`), or from a CSV/Parquet file of another tool or lab
(:mod:`costmodel.store`), so the cost model never sees protobuf messages.

Columns
-------
context (where and how the layer ran; rows of different contexts never mix in a fit)
    ``target`` ``clock_hz`` ``runtime_variant`` ``float_abi`` ``opt_level`` ``placement``
    ``board_kind`` (``virtual`` or ``serial``) ``board_model_version`` (the virtual board's timing model;
    ``""`` on a real board) ``runtime`` (firmware runtime, e.g. ``nn``) ``firmware_build_id``
layer (what the analysis says; the same keys as ``LayerResult`` / ``LayerFeatures`` of the agent)
    ``layer_index`` ``layer_name`` ``op`` ``kernel`` ``dtype`` ``input_shapes`` ``output_shape``
    ``alignment`` ``in_channels`` ``out_channels`` ``kernel_h`` ``kernel_w`` ``stride_h`` ``stride_w``
    ``padding`` ``depth_multiplier`` ``input_length`` ``macs`` ``params`` ``weight_bytes``
measured
    ``cycles`` ``latency_s`` ``energy_j`` ``energy_source`` (``monitor`` or ``power-model``)

Shapes are lists of ints in memory and JSON text (``"[[1, 8, 8, 3]]"``) in files and databases.

The δ-table key of a row (:func:`table_key`) is its op and kernel, kernel size, stride, the residue of
the decisive input dimension (input channels mod 4 for convolutions and pooling, input length mod 16
for dense layers: mod 16 carries mod 4 and the paper's period of 16) and the alignment class of the
output channels. :func:`work_terms` gives the loop counts a layer's latency is linear in (for kernels that
skip the padding, its MACs count the taps inside the input only: :func:`window_taps`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any, Iterable, Mapping

from costmodel.analysis import LayerAnalysis, ModelAnalysis, alignment_class

CONTEXT_COLUMNS = ("target", "clock_hz", "runtime_variant", "float_abi", "opt_level", "placement", "board_kind",
                   "board_model_version", "runtime", "firmware_build_id")
LAYER_COLUMNS = ("layer_index", "layer_name", "op", "kernel", "dtype", "input_shapes", "output_shape", "alignment",
                 "in_channels", "out_channels", "kernel_h", "kernel_w", "stride_h", "stride_w", "padding",
                 "depth_multiplier", "input_length", "macs", "params", "weight_bytes")
MEASURED_COLUMNS = ("cycles", "latency_s", "energy_j", "energy_source")
INT_COLUMNS = frozenset({"clock_hz", "layer_index", "in_channels", "out_channels", "kernel_h", "kernel_w", "stride_h",
                         "stride_w", "depth_multiplier", "input_length", "macs", "params", "weight_bytes", "cycles"})
FLOAT_COLUMNS = frozenset({"latency_s", "energy_j"})

CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")
POOL_OPS = ("AVERAGE_POOL_2D", "MAX_POOL_2D")
DENSE_OPS = ("FULLY_CONNECTED",)

#: The loop counts each op's latency is modelled as linear in (cycles = Σ coefficient x term), by op, and for
#: the kernels whose loops differ from the op's default (:data:`KERNEL_TERMS`) by kernel.
#: ``const`` is the per-layer fixed overhead and ``macs`` carries δ, the cost of one more MAC *the kernel
#: executes* (see :func:`work_terms`).
TERMS = {
    "CONV_2D": ("const", "macs", "outputs", "columns", "pixels"),
    "DEPTHWISE_CONV_2D": ("const", "macs", "outputs", "pixels", "inputs"),
    "FULLY_CONNECTED": ("const", "macs", "outputs", "inputs"),
    "AVERAGE_POOL_2D": ("const", "macs", "outputs", "pixels"),
    "MAX_POOL_2D": ("const", "macs", "outputs", "pixels"),
    # element-wise binary ops loop over the output (inputs broadcast into it), the innermost loop per pixel
    "ADD": ("const", "outputs", "pixels"),
    "SUB": ("const", "outputs", "pixels"),
    "MUL": ("const", "outputs", "pixels"),
}
DEFAULT_TERMS = ("const", "outputs", "inputs")
#: Kernels whose loops are not the op's default: the reference convolution runs one dot product per valid
#: kernel row and pair of output channels (``runs``); the reference depthwise convolution handles four channels
#: at a time and the rest one by one (``tail``: the MACs of those). The SIMD kernels' terms count their loops
#: one by one (:func:`conv_simd_terms`, :func:`depthwise_simd_terms`, :func:`dense_simd_terms`,
#: :func:`avgpool_simd_terms`).
KERNEL_TERMS = {
    "conv2d_s8_ref": ("const", "macs", "outputs", "runs", "pixels"),
    "conv2d_s8_simd": ("const", "macs", "tail_macs", "pair_passes", "outputs", "passes", "columns", "pixel_fills",
                       "column_rows", "packed_fills", "border_taps", "ring", "ring_short", "ring_rows", "channels",
                       "repack", "repack_rows", "repack_tails"),
    "depthwise_conv2d_s8_ref": ("const", "macs", "outputs", "pixels", "inputs", "tail"),
    "depthwise_conv2d_s8_simd": ("const", "macs", "macs33", "pair_macs33", "pair_rows", "tail", "tail_rows",
                                 "tail_outputs", "groups",
                                 "outputs", "pixels", "ring", "ring_groups", "ring_dm", "ring_pad", "ring_clear",
                                 "ring_rows", "out_rows", "setup", "channels"),
    "fully_connected_s8_simd": ("const", "quad_macs", "quad_singles", "quad_chunks", "quad_tail", "quads",
                                "row_macs", "row_tail", "row_pairs", "row_outputs", "inputs"),
    "avgpool_s8_simd": ("const", "macs", "tail", "window_rows", "outputs", "pixels"),
    "add_s8_simd": ("const", "tables", "outputs", "fallback", "fallback_pixels"),
}
#: add_s8_simd tabulates each input's rescaling (2 x 256 entries) once per call, and only for outputs of at
#: least this many elements; smaller outputs run the reference loop (``firmware/kernels/add_s8_simd.c``,
#: ADD_TABLES_MIN_ELEMENTS): ``tables`` is 1 on the table path, ``outputs`` its elements, ``fallback`` and
#: ``fallback_pixels`` the elements and pixels of the reference path.
ADD_TABLES_MIN_ELEMENTS = 512
#: Kernels that skip the taps in the padding (``nn_valid_taps``: padding never reaches their inner loop): their
#: ``macs`` term counts the taps inside the input only. Every other kernel (the SIMD ones pad the window) runs
#: the whole window.
VALID_TAP_KERNELS = frozenset({
    "conv2d_s8_ref", "conv2d_s16_ref", "conv2d_f32_ref", "conv2d_hybrid_ref", "depthwise_conv2d_s8_ref",
    "depthwise_conv2d_s16_ref", "depthwise_conv2d_f32_ref", "depthwise_conv2d_hybrid_ref", "maxpool_s8_ref",
    "maxpool_s16_ref", "maxpool_f32_ref", "avgpool_s8_ref", "avgpool_s16_ref", "avgpool_f32_ref", "avgpool_s8_simd"})


def _parse_shape(value: Any) -> list:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        value = value.strip()
        return json.loads(value) if value else []
    if hasattr(value, "tolist"):
        value = value.tolist()
    return [list(v) if isinstance(v, (list, tuple)) or hasattr(v, "tolist") else v for v in value]


def input_shapes(row: Mapping) -> list[list[int]]:
    """The row's input shapes as lists of ints (JSON text or lists accepted)."""
    shapes = _parse_shape(row.get("input_shapes"))
    if shapes and not isinstance(shapes[0], list):
        shapes = [shapes]
    return [[int(d) for d in s] for s in shapes]


def output_shape(row: Mapping) -> list[int]:
    shape = _parse_shape(row.get("output_shape"))
    if shape and isinstance(shape[0], list):
        shape = shape[0]
    return [int(d) for d in shape]


def _prod(dims: Iterable[int]) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def _spatial(shape: list[int]) -> tuple[int, int, int]:
    """(h, w, c) of an NHWC shape; (1, 1, last) for lower ranks."""
    if len(shape) >= 4:
        return int(shape[-3]), int(shape[-2]), int(shape[-1])
    if len(shape) == 3:
        return 1, int(shape[-2]), int(shape[-1])
    return 1, 1, int(shape[-1]) if shape else 0


def _int(row: Mapping, key: str) -> int:
    v = row.get(key, 0)
    if type(v) is int:
        return v
    if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):
        return 0
    return int(v)


@lru_cache(maxsize=8192)
def _axis_taps(n_in: int, n_out: int, k: int, stride: int, same: bool) -> tuple[int, int]:
    """Along one spatial axis: Σ over the output positions of the kernel taps inside the input, and the number
    of output positions whose window lies wholly inside it (TFLite's SAME padding: half before, the odd one
    after). Only the edge positions are visited (at most about k / stride at each end)."""
    k, stride = max(k, 1), max(stride, 1)
    if n_out <= 0:
        return 0, 0
    pad = max((n_out - 1) * stride + k - n_in, 0) // 2 if same else 0
    first_inside = min(-(-pad // stride), n_out)                    # start = o * stride - pad >= 0
    last_inside = min(max((n_in - k + pad) // stride + 1, 0), n_out) if n_in >= k - pad else 0  # start + k <= n_in
    edges = set(range(first_inside)) | set(range(max(last_inside, first_inside), n_out))
    inside = n_out - len(edges)
    total = inside * k
    for o in edges:
        start = o * stride - pad
        total += max(min(k, n_in - start) - max(0, -start), 0)
    return total, inside


def window_taps(row: Mapping) -> dict[str, float]:
    """The geometry of a convolution's or pooling's windows: ``taps`` (kernel taps per output channel, Σ over
    output positions, nominal), ``valid_taps`` (those inside the input, i.e. without the padding),
    ``valid_rows`` (Σ over output positions of the kernel rows inside the input), ``interior`` (output
    positions whose window lies wholly inside the input) and ``interior_w`` (output columns whose window
    lies inside the input's width)."""
    return _window_geometry(row, input_shapes(row), output_shape(row))


def _window_geometry(row: Mapping, ins: list, out: list) -> dict[str, float]:
    kh, kw = max(_int(row, "kernel_h"), 1), max(_int(row, "kernel_w"), 1)
    oh, ow, _ = _spatial(out) if out else (0, 0, 0)
    ih, iw, _ = _spatial(ins[0]) if ins else (oh, ow, 0)
    same = str(row.get("padding") or "").upper() == "SAME"
    th, inh = _axis_taps(ih, oh, kh, _int(row, "stride_h") or 1, same)
    tw, inw = _axis_taps(iw, ow, kw, _int(row, "stride_w") or 1, same)
    return {"taps": float(oh * ow * kh * kw), "valid_taps": float(th * tw), "valid_rows": float(th * ow),
            "interior": float(inh * inw), "interior_w": float(inw)}


def _pad_before(n_in: int, n_out: int, k: int, stride: int, same: bool) -> int:
    return max((n_out - 1) * stride + k - n_in, 0) // 2 if same else 0


def _ring_rows(oh: int, stride: int, pad: int, span: int) -> list[int]:
    """The input rows (-pad ... , some outside the input) a ring of ``span`` rows loads over the output rows, each
    once while later output rows still need it (rows between the windows of a large stride are never loaded)."""
    loaded, rows = -pad - 1, []
    for oy in range(oh):
        y0 = oy * stride - pad
        last = y0 + span - 1
        rows.extend(range(max(loaded + 1, y0), last + 1))
        loaded = max(loaded, last)
    return rows


def _ring_loads(oh: int, stride: int, pad: int, span: int) -> int:
    return len(_ring_rows(oh, stride, pad, span))


def _border_fills(ih: int, iw: int, oh: int, ow: int, kh: int, kw: int, sh: int, sw: int, pad_h: int, pad_w: int,
                  fills: int) -> int:
    """Of ``fills`` column fills in pixel order (past the last pixel: the last one again), those whose window
    reaches out of the input (conv2d_s8_simd's full_range: filled tap by tap)."""
    def inside(o: int, stride: int, pad: int, k: int, n: int) -> bool:
        start = o * stride - pad
        return start >= 0 and start + k <= n
    rows_in = [inside(y, sh, pad_h, kh, ih) for y in range(oh)]
    cols_in = [inside(x, sw, pad_w, kw, iw) for x in range(ow)]
    pixels = oh * ow
    border = sum(1 for y in range(oh) for x in range(ow) if not (rows_in[y] and cols_in[x]))
    if fills > pixels and pixels and not (rows_in[-1] and cols_in[-1]):
        border += fills - pixels
    return border


#: conv2d_s8_simd's row mode takes kernel rows of at most this many groups of 4 input bytes
#: (NN_CONV_ROW_GROUPS_MAX).
CONV_SIMD_ROW_GROUPS_MAX = 64
#: Ring slots of at most this many bytes are filled by plain byte loops, longer ones by memset / memcpy (load_row).
CONV_SIMD_SHORT_SLOT = 64


def conv_simd_terms(ic: int, oc: int, ih: int, iw: int, oh: int, ow: int, kh: int, kw: int, sh: int, sw: int,
                    same: bool) -> dict[str, float]:
    """The loop counts of ``firmware/kernels/conv2d_s8_simd.c``'s four pixel path (conv_four: int16 pair filters
    laid out by the plan compiler when ic % 4 == 0, else "row mode", its weights repacked per call).

    Taps per column ``kc`` as the dot products see them: kh x kw x ic rounded up to 4; row mode each kernel row's
    kw x ic rounded up to 4 (kh x that), but a 3x3x3 window's 27 taps back to back (28). Pixels go in passes of
    4; a last pass of 1 or 2 pixels runs dot_2x2 (two pixels' sums).

    ``macs`` dot_2x4's MACs (passes of 3-4 pixels: 4 pixels x output channels rounded up to even x kc);
    ``tail_macs`` dot_2x2's MACs (2 pixels);
    ``pair_passes`` channel pairs x passes (a pair's accumulator start and stores); ``outputs`` the requantized
    outputs (4 per pass and channel: unused pixels go to a dummy buffer); ``passes``; ``columns`` the column
    elements filled (4 pixels x kc per pass); ``pixel_fills`` the pixels' column fills (4 per pass; the contiguous
    pointwise path fills a pass at once: none) and ``column_rows`` their kernel rows (a 3x3x3 window's 7 words come
    from registers instead: ``packed_fills``); ``border_taps`` the taps of the columns filled tap by tap (windows
    reaching out of the input without the ring: SAME padding all after the input, e.g. stride 2 on an even size);
    ``ring`` / ``ring_rows`` the bytes and rows copied into the padded row ring (row mode and padded layers: every
    window then fills as an interior one; ``ring_short`` the bytes of slots of at most 64 bytes, copied by byte
    loops rather than memcpy / memset); ``channels`` the per-call constants (output channels); ``repack`` row mode's
    weights repacked into pairs (channels rounded up to even x kc), ``repack_rows`` its loop per channel and kernel
    row, ``repack_tails`` the rows whose last partial word is read byte by byte (tail_word).
    """
    pairs = (oc + 1) // 2
    row_mode = ic % 4 != 0 and kw * ic <= 4 * CONV_SIMD_ROW_GROUPS_MAX
    row_bytes = -(-kw * ic // 4) * 4
    packed = row_mode and kh == kw == ic == 3   # fill_packed333: 27 taps back to back
    kc = -(-kh * kw * ic // 4) * 4 if packed or not row_mode else kh * row_bytes
    pixels = oh * ow
    passes = -(-pixels // 4)
    last = pixels - 4 * (passes - 1) if passes else 0
    short = 1 if passes and last <= 2 else 0
    pad_h, pad_w = _pad_before(ih, oh, kh, sh, same), _pad_before(iw, ow, kw, sw, same)
    rows = row_mode or (ic % 4 == 0 and (pad_h > 0 or pad_w > 0))
    pointwise = not rows and kh == kw == 1 and sh == sw == 1 and ih == oh and iw == ow and ic % 4 == 0
    loads = _ring_loads(oh, sh, pad_h, kh) if rows else 0
    border = 0 if rows or pointwise else _border_fills(ih, iw, oh, ow, kh, kw, sh, sw, pad_h, pad_w, 4 * passes)
    slot = -(-((ow - 1) * sw + kw) * ic // 4) * 4 + 4
    fills = 0 if pointwise else 4 * passes
    repack_rows, repack_seg = (1, kh * kw * ic) if packed else (kh, kw * ic)   # repack_pairs' rows and their bytes
    return {"macs": float((passes - short) * 4 * 2 * pairs * kc), "tail_macs": float(short * 2 * 2 * pairs * kc),
            "pair_passes": float(passes * pairs),
            "outputs": float(passes * 4 * oc), "passes": float(passes), "columns": float(passes * 4 * kc),
            "pixel_fills": float(fills), "column_rows": 0.0 if packed else float(fills * kh),
            "packed_fills": float(fills) if packed else 0.0,
            "border_taps": float(border * kh * kw),
            "ring": float(loads * slot) if slot > CONV_SIMD_SHORT_SLOT else 0.0,
            "ring_short": float(loads * slot) if slot <= CONV_SIMD_SHORT_SLOT else 0.0,
            "ring_rows": float(loads), "channels": float(oc),
            "repack": float(2 * pairs * kc) if row_mode else 0.0,
            "repack_rows": float(2 * pairs * repack_rows) if row_mode else 0.0,
            "repack_tails": float(oc * repack_rows) if row_mode and repack_seg % 4 else 0.0}


def depthwise_simd_terms(c: int, dm: int, ih: int, iw: int, oh: int, ow: int, kh: int, kw: int, sh: int, sw: int,
                         same: bool) -> dict[str, float]:
    """The loop counts of ``firmware/kernels/depthwise_conv2d_s8_simd.c`` (every channel's requantization taken
    as the fused form, the usual case): a ring of kh padded input rows (each loaded once while needed), then per
    output row one of three paths. 3x3, stride 1 or 2, depth multiplier 1, channels a multiple of 4: the int16
    path (dw16), two channels x four pixels per step, a last partial block computed whole (``pair_macs33``:
    output rows x width rounded up to 4 x channels x 9), its loop per output row and channel pair
    (``pair_rows``), its ring of int16 pixel pairs (``ring_groups`` the inside bytes converted) cleared once per
    call (``ring_clear``: 3 slots x channels x (stride x width rounded up to 4 + 2) halfwords); other 3x3: per
    pixel the groups of 4 channels unrolled (``macs33``); any other kernel per pixel and group a loop over the
    taps (``macs``); outside the int16 path the 1 to 3 channels past the last group one at a time (``tail``:
    their MACs, ``tail_rows`` their kernel rows, ``tail_outputs`` their outputs, each requantized alone),
    ``groups`` the pixel x group-of-4 steps. ``outputs``, ``pixels``; the ring's bytes outside the
    int16 path: input pixels with depth multiplier 1 copied a word at a time (``ring``), with a depth multiplier
    each byte repeated (``ring_dm``), the padding (``ring_pad``); ``ring_rows`` rows loaded, ``out_rows`` output
    rows; ``setup`` the weights expanded per call (taps x channels rounded up to 4), ``channels`` the
    per-channel constants."""
    co = c * max(dm, 1)
    taps = kh * kw
    co4 = co & ~3
    pixels = oh * ow
    k33 = kh == 3 and kw == 3
    pair_path = k33 and sw in (1, 2) and dm <= 1 and co % 4 == 0
    pad_h, pad_w = _pad_before(ih, oh, kh, sh, same), _pad_before(iw, ow, kw, sw, same)
    loaded = _ring_rows(oh, sh, pad_h, kh)
    span = (ow - 1) * sw + kw
    inside_px = max(min(span, pad_w + iw) - min(pad_w, span), 0)
    inside = sum(inside_px for y in loaded if 0 <= y < ih) * co
    blocks4 = -(-ow // 4) * 4
    terms = {"macs": 0.0, "macs33": 0.0, "pair_macs33": 0.0, "pair_rows": 0.0, "tail": 0.0, "groups": 0.0,
             "outputs": float(pixels * co), "pixels": float(pixels), "ring": 0.0, "ring_groups": 0.0,
             "ring_dm": float(inside) if dm > 1 else 0.0, "ring_pad": 0.0, "ring_clear": 0.0,
             "ring_rows": float(len(loaded)), "out_rows": float(oh), "setup": float(taps * (-(-co // 4) * 4)),
             "channels": float(co)}
    if pair_path:
        terms.update(pair_macs33=float(oh * blocks4 * co * 9), pair_rows=float(oh * co // 2),
                     ring_groups=float(inside), ring_clear=float(3 * co * (sw * blocks4 + 2)))
    else:
        terms["macs33" if k33 else "macs"] = float(pixels * co4 * taps)
        terms.update(tail=float(pixels * (co - co4) * taps), tail_rows=float(pixels * (co - co4) * kh),
                     tail_outputs=float(pixels * (co - co4)), groups=float(pixels * co4 // 4),
                     ring_pad=float(len(loaded) * span * co - inside))
        if dm <= 1:
            terms["ring"] = float(inside)
    return terms


def dense_simd_terms(in_len: int, units: int) -> dict[str, float]:
    """The loop counts of ``firmware/kernels/fully_connected_s8_simd.c`` with the plan's quads weight layout (SIMD
    plans of at least 4 units whose requantization the short form takes, the usual case): the input expanded
    once (``inputs``); per quad of rows the groups of 4
    inputs (``quad_macs``: 16 MACs a group) in steps of 4 groups, the rest one by one (``quad_singles``), in
    chunks of at most 64 groups (``quad_chunks``), the tail inputs one word each (``quad_tail``), four outputs
    requantized and stored (``quads``); the rows a quad leaves two at a time (an odd last row twice:
    ``row_macs`` their group MACs, ``row_tail`` their tail inputs, ``row_pairs``, ``row_outputs``)."""
    groups, tail = in_len // 4, in_len % 4
    quads = units // 4 if units >= 4 else 0
    rest = units - 4 * quads
    row_pairs = -(-rest // 2)
    return {"quad_macs": float(quads * 16 * groups), "quad_singles": float(quads * (groups % 4)),
            "quad_chunks": float(quads * -(-groups // 64)), "quad_tail": float(quads * tail), "quads": float(quads),
            "row_macs": float(row_pairs * 8 * groups), "row_tail": float(row_pairs * tail),
            "row_pairs": float(row_pairs), "row_outputs": float(rest), "inputs": float(in_len)}


def avgpool_simd_terms(c: int, geo: Mapping[str, float], pixels: int) -> dict[str, float]:
    """``firmware/kernels/avgpool_s8_simd.c``: per output pixel the window's taps inside the input, four channels
    at a time (``macs``: valid taps x channels in groups of 4, ``window_rows``: the window rows inside the input
    x groups), the last 1 to 3 channels one at a time (``tail``: their taps); one division per output."""
    c4 = c & ~3
    return {"macs": geo["valid_taps"] * c4, "tail": geo["valid_taps"] * (c - c4),
            "window_rows": geo["valid_rows"] * (c4 // 4), "outputs": float(pixels * c), "pixels": float(pixels)}


def work_terms(row: Mapping) -> dict[str, float]:
    """The loop counts of a layer that its latency is linear in, by op and kernel (:data:`TERMS`,
    :data:`KERNEL_TERMS`):

    ``const`` 1 (fixed overhead: call, prepare-time state, loop set-up); ``macs`` the MACs the kernel
    executes: the analysis' MACs, but for kernels that skip the padding (:data:`VALID_TAP_KERNELS`) only the
    taps inside the input, for the reference convolution's channel pairs an odd last channel twice;
    ``outputs`` output elements (requantisation, stores); ``inputs`` input elements; ``pixels`` output
    positions; ``columns`` im2col elements of a convolution (output positions x kernel area x input channels;
    the SIMD kernels' terms: :func:`conv_simd_terms`, :func:`depthwise_simd_terms`, :func:`dense_simd_terms`,
    :func:`avgpool_simd_terms`); ``runs``
    (reference convolution) its dot products: valid kernel rows x pairs of output channels; ``tail``
    (reference depthwise) the valid-tap MACs of the channels past the last group of four; ``tables``,
    ``fallback`` (SIMD add): see :data:`ADD_TABLES_MIN_ELEMENTS`.
    """
    op = row.get("op", "")
    kernel = str(row.get("kernel") or "")
    names = KERNEL_TERMS.get(kernel) or TERMS.get(op, DEFAULT_TERMS)
    ins = input_shapes(row)
    out = output_shape(row)
    out_elems = _prod(out) if out else 0
    in_elems = sum(_prod(s) for s in ins)
    oh, ow, oc = _spatial(out) if out else (0, 0, 0)
    pixels = oh * ow if len(out) >= 3 else 1
    macs = float(_int(row, "macs"))
    terms = {"const": 1.0, "macs": macs, "outputs": float(out_elems), "inputs": float(in_elems),
             "pixels": float(pixels)}
    if op in CONV_OPS or op in POOL_OPS:
        ic = _int(row, "in_channels") or (_spatial(ins[0])[2] if ins else 0)
        kh, kw = max(_int(row, "kernel_h"), 1), max(_int(row, "kernel_w"), 1)
        geo = _window_geometry(row, ins, out) if len(out) >= 3 else None
        if geo is not None and geo["taps"] > 0 and kernel in VALID_TAP_KERNELS:
            macs = macs * geo["valid_taps"] / geo["taps"]
        if kernel == "conv2d_s8_ref" and geo is not None:
            pairs = (oc + 1) // 2
            macs = geo["valid_taps"] * ic * 2 * pairs
            terms["runs"] = geo["valid_rows"] * pairs
        elif kernel in ("conv2d_s8_simd", "depthwise_conv2d_s8_simd") and len(out) >= 3:
            ih, iw, _ = _spatial(ins[0]) if ins else (oh, ow, ic)
            same = str(row.get("padding") or "").upper() == "SAME"
            sh, sw = _int(row, "stride_h") or 1, _int(row, "stride_w") or 1
            if kernel == "conv2d_s8_simd":
                terms.update(conv_simd_terms(ic, oc, ih, iw, oh, ow, kh, kw, sh, sw, same))
            else:
                terms.update(depthwise_simd_terms(ic, _int(row, "depth_multiplier") or 1, ih, iw, oh, ow, kh, kw,
                                                  sh, sw, same))
            macs = terms["macs"]
        elif kernel == "avgpool_s8_simd" and geo is not None:
            terms.update(avgpool_simd_terms(ic, geo, pixels))
            macs = terms["macs"]
        if op == "CONV_2D" and "columns" not in terms:
            terms["columns"] = float(pixels * kh * kw * ic)
        if kernel == "depthwise_conv2d_s8_ref" and geo is not None:
            dm = _int(row, "depth_multiplier") or 1
            rest = ic % 4 if dm == 1 else ic
            terms["tail"] = geo["valid_taps"] * rest * dm
        terms["macs"] = float(macs)
    if kernel == "fully_connected_s8_simd":
        terms.update(dense_simd_terms(_int(row, "input_length") or in_elems, oc))
    if kernel == "add_s8_simd":
        table_path = out_elems >= ADD_TABLES_MIN_ELEMENTS and all(s == out for s in ins)  # no broadcasting
        terms.update(tables=1.0 if table_path else 0.0, outputs=float(out_elems) if table_path else 0.0,
                     fallback=0.0 if table_path else float(out_elems),
                     fallback_pixels=0.0 if table_path else float(pixels))
    return {name: terms.get(name, 0.0) for name in names}


def term_names(op: str, kernel: str = "") -> tuple[str, ...]:
    return KERNEL_TERMS.get(kernel) or TERMS.get(op, DEFAULT_TERMS)


def input_residue(row: Mapping) -> int:
    """Residue of the decisive input dimension: input length mod 16 (dense), input channels mod 4 (others)."""
    op = row.get("op", "")
    if op in DENSE_OPS:
        return _int(row, "input_length") % 16
    if op in CONV_OPS or op in POOL_OPS:
        return _int(row, "in_channels") % 4
    return -1


def output_class(row: Mapping) -> str:
    """Alignment class ('%4', 'even', 'odd') of the output channels / units; '' where there are none."""
    op = row.get("op", "")
    if op in CONV_OPS or op in POOL_OPS or op in DENSE_OPS:
        n = _int(row, "out_channels")
        return alignment_class(n) if n else ""
    return ""


#: The fields of a δ-table key, in order.
KEY_FIELDS = ("op", "kernel", "kernel_h", "kernel_w", "stride_h", "stride_w", "in_residue", "out_class")


def table_key(row: Mapping) -> tuple:
    """The δ-table key of a layer row within its context (see :data:`KEY_FIELDS`)."""
    op = str(row.get("op", ""))
    spatial = op in CONV_OPS or op in POOL_OPS
    return (op, str(row.get("kernel", "") or ""),
            _int(row, "kernel_h") if spatial else 0, _int(row, "kernel_w") if spatial else 0,
            _int(row, "stride_h") if spatial else 0, _int(row, "stride_w") if spatial else 0,
            input_residue(row), output_class(row))


def key_text(key: tuple) -> str:
    """A readable one-line form of a table key, e.g. ``CONV_2D/conv2d_s8_simd k3x3 s1 in%4=3 out=even``."""
    op, kernel, kh, kw, sh, sw, residue, out = key
    parts = [f"{op}/{kernel}" if kernel else op]
    if kh or kw:
        parts.append(f"k{kh}x{kw}")
    if sh or sw:
        parts.append(f"s{sh}" if sh == sw else f"s{sh}x{sw}")
    if residue >= 0:
        parts.append(f"in%16={residue}" if op in DENSE_OPS else f"in%4={residue}")
    if out:
        parts.append(f"out={out}")
    return " ".join(parts)


def context_of(row: Mapping) -> tuple:
    """The context tuple of a row (:data:`CONTEXT_COLUMNS`), normalised to str / int."""
    out = []
    for c in CONTEXT_COLUMNS:
        v = row.get(c, "")
        if v is None or (isinstance(v, float) and math.isnan(v)):
            v = 0 if c == "clock_hz" else ""
        out.append(int(v) if c == "clock_hz" else str(v))
    return tuple(out)


def features_dict(layer: LayerAnalysis) -> dict:
    """The analysis' features of a layer in the schema of the agent's ``LayerFeatures`` message (the same
    mapping as ``measure_agent.measurement.layer_features``)."""
    f = layer.features
    out_c = layer.output_shapes[0][-1] if layer.output_shapes and layer.output_shapes[0] else 0
    kernel = f.get("kernel", [0, 0])
    stride = f.get("stride", [0, 0])
    in_channels = f.get("in_channels", f.get("channels", 0))
    return {"alignment": f.get("alignment", ""), "in_channels": int(in_channels),
            "out_channels": int(f.get("filters", f.get("units", out_c if in_channels else 0))),
            "kernel_h": int(kernel[0]), "kernel_w": int(kernel[1]), "stride_h": int(stride[0]),
            "stride_w": int(stride[1]), "padding": f.get("padding", ""),
            "depth_multiplier": int(f.get("depth_multiplier", 0)), "input_length": int(f.get("input_length", 0))}


def layer_row(layer: LayerAnalysis, kernel: str = "") -> dict:
    """A layer row (without context and measured columns) from the analysis of one layer."""
    row = {"layer_index": layer.index, "layer_name": layer.name, "op": layer.op, "kernel": kernel,
           "dtype": layer.dtype, "input_shapes": [list(s) for s in layer.input_shapes],
           "output_shape": list(layer.output_shapes[0]) if layer.output_shapes else [],
           "macs": layer.macs, "params": layer.params, "weight_bytes": layer.weight_bytes}
    row.update(features_dict(layer))
    return row


def layer_rows(analysis: ModelAnalysis) -> list[dict]:
    """Layer rows of every layer of an analysed model."""
    return [layer_row(layer) for layer in analysis.layers]


def to_text_shapes(row: dict) -> dict:
    """A copy of ``row`` with shapes as JSON text (for files and databases)."""
    out = dict(row)
    for key in ("input_shapes", "output_shape"):
        v = out.get(key)
        if not isinstance(v, str):
            out[key] = json.dumps(v if v is not None else [])
    return out


# --- layer specifications: what a search varies, and the rows they describe ---------------------------------


@dataclass(frozen=True)
class LayerSpec:
    """The parametrization of one layer, enough to compute its shapes, MACs and table key.

    ``op`` is a TFLite op name. Convolutions and pooling take an NHWC input ``in_h x in_w x in_channels``;
    dense layers ``input_length``; ``out_channels`` is the filters of a convolution or the units of a
    dense layer (for depthwise: ``in_channels x depth_multiplier``; for pooling: ``in_channels``).
    """

    op: str
    in_channels: int = 0
    out_channels: int = 0
    in_h: int = 1
    in_w: int = 1
    kernel_h: int = 1
    kernel_w: int = 1
    stride_h: int = 1
    stride_w: int = 1
    padding: str = "SAME"
    depth_multiplier: int = 1
    input_length: int = 0
    dtype: str = "int8"

    @classmethod
    def from_row(cls, row: Mapping) -> LayerSpec:
        op = str(row["op"])
        ins = input_shapes(row)
        h, w, c = _spatial(ins[0]) if ins else (1, 1, 0)
        return cls(op=op, in_channels=_int(row, "in_channels") or c, out_channels=_int(row, "out_channels"),
                   in_h=h, in_w=w, kernel_h=_int(row, "kernel_h") or 1, kernel_w=_int(row, "kernel_w") or 1,
                   stride_h=_int(row, "stride_h") or 1, stride_w=_int(row, "stride_w") or 1,
                   padding=str(row.get("padding") or "SAME"), depth_multiplier=_int(row, "depth_multiplier") or 1,
                   input_length=_int(row, "input_length"), dtype=str(row.get("dtype") or "int8"))

    def with_(self, **changes) -> LayerSpec:
        return replace(self, **changes)

    def output_hw(self) -> tuple[int, int]:
        if self.padding.upper() == "SAME":
            return -(-self.in_h // self.stride_h), -(-self.in_w // self.stride_w)
        return ((self.in_h - self.kernel_h) // self.stride_h + 1, (self.in_w - self.kernel_w) // self.stride_w + 1)

    def valid(self) -> bool:
        if self.op in DENSE_OPS:
            return self.input_length >= 1 and self.out_channels >= 1
        oh, ow = self.output_hw()
        return self.in_channels >= 1 and oh >= 1 and ow >= 1 and self.kernel_h >= 1 and \
            (self.op != "CONV_2D" or self.out_channels >= 1)

    def row(self) -> dict:
        """The layer row this parametrization describes (MACs by :mod:`costmodel.analysis`' convention)."""
        op = self.op
        if op in DENSE_OPS:
            n, u = self.input_length, self.out_channels
            return {"op": op, "dtype": self.dtype, "input_shapes": [[1, n]], "output_shape": [1, u],
                    "alignment": alignment_class(n), "in_channels": 0, "out_channels": u, "kernel_h": 0,
                    "kernel_w": 0, "stride_h": 0, "stride_w": 0, "padding": "", "depth_multiplier": 0,
                    "input_length": n, "macs": n * u, "params": n * u + u, "weight_bytes": n * u + 4 * u}
        oh, ow = self.output_hw()
        c = self.in_channels
        kh, kw = self.kernel_h, self.kernel_w
        if op == "CONV_2D":
            oc = self.out_channels
            macs, params, dm = oh * ow * oc * kh * kw * c, kh * kw * c * oc + oc, 0
        elif op == "DEPTHWISE_CONV_2D":
            oc = c * self.depth_multiplier
            macs, params, dm = oh * ow * oc * kh * kw, kh * kw * oc + oc, self.depth_multiplier
        elif op in POOL_OPS:
            oc = c
            macs, params, dm = oh * ow * oc * kh * kw, 0, 0
        else:
            raise ValueError(f"no layer specification for op {op}")
        return {"op": op, "dtype": self.dtype, "input_shapes": [[1, self.in_h, self.in_w, c]],
                "output_shape": [1, oh, ow, oc], "alignment": alignment_class(c), "in_channels": c,
                "out_channels": oc if op == "CONV_2D" or op == "DEPTHWISE_CONV_2D" else c,
                "kernel_h": kh, "kernel_w": kw, "stride_h": self.stride_h, "stride_w": self.stride_w,
                "padding": self.padding.upper(), "depth_multiplier": dm, "input_length": 0, "macs": macs,
                "params": params, "weight_bytes": params - (oc if params else 0) + 4 * (oc if params else 0)}

    def to_dict(self) -> dict:
        return asdict(self)
