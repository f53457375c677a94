"""A ``MeasureResult`` as rows of the measurement store (:mod:`costmodel.store`) and of the cost model's fit.

The cost model never sees protobuf messages: this module is where a result becomes one model row and one
row per layer, with the context (target, clock, runtime variant, float ABI, optimisation level, weight
placement, board kind, the virtual board's model version, runtime, firmware build id) on every row::

    model_row, layer_rows = result_rows(result, model_name="conv-k3-c15", sweep="conv")
    store.add(model_row, layer_rows)
"""

from __future__ import annotations

import hashlib
import json
import time

from protos import agent_pb2 as pb


def request_id_for(model: bytes, target: str, runtime_variant: str = "", float_abi: str = "", opt_level: str = "",
                   placement: str = "", repetitions: int = 0) -> str:
    """A request id that names the measurement by content: the same model and settings always get the same id, so
    a retry, a failover to another agent or a resumed sweep never measures it twice."""
    h = hashlib.sha256(model)
    h.update(json.dumps([target, runtime_variant, float_abi, opt_level, placement, int(repetitions)]).encode())
    return "m-" + h.hexdigest()[:30]


def context_fields(result: pb.MeasureResult) -> dict:
    return {"target": result.target, "clock_hz": int(result.clock_hz), "runtime_variant": result.runtime_variant,
            "float_abi": result.float_abi, "opt_level": result.opt_level, "placement": result.placement,
            "board_kind": result.board_kind, "board_model_version": result.board_model_version,
            "runtime": result.runtime, "firmware_build_id": result.firmware_build_id}


def layer_row(layer: pb.LayerResult) -> dict:
    f = layer.features
    return {"layer_index": int(layer.index), "layer_name": layer.name, "op": layer.op, "kernel": layer.kernel,
            "dtype": layer.dtype, "input_shapes": [list(s.dims) for s in layer.input_shapes],
            "output_shape": list(layer.output_shape.dims), "alignment": f.alignment, "in_channels": f.in_channels,
            "out_channels": f.out_channels, "kernel_h": f.kernel_h, "kernel_w": f.kernel_w, "stride_h": f.stride_h,
            "stride_w": f.stride_w, "padding": f.padding, "depth_multiplier": f.depth_multiplier,
            "input_length": f.input_length, "macs": int(layer.macs), "params": int(layer.params),
            "weight_bytes": int(layer.weight_bytes), "cycles": int(layer.cycles), "latency_s": layer.latency_s,
            "energy_j": layer.energy_j}


def result_rows(result: pb.MeasureResult, *, model_name: str = "", sweep: str = "", spec: dict | None = None,
                model_sha256: str = "", source: str = "", measured_at: float | None = None) -> tuple[dict, list[dict]]:
    """The store's model row and layer rows of one result (``measurement_id`` = the request id)."""
    context = context_fields(result)
    when = measured_at or time.time()
    common = {"measurement_id": result.request_id, "model_name": model_name, "sweep": sweep, **context,
              "energy_source": result.energy_source, "measured_at": when, "source": source}
    # a layer's own energy_source when it has one ("monitor-spread": the monitor could not resolve it)
    layers = [{**common, **layer_row(layer), **({"energy_source": layer.energy_source} if layer.energy_source else {})}
              for layer in result.layers]
    model = {**common, "model_sha256": model_sha256, "spec": json.dumps(spec or {}, sort_keys=True),
             "board_id": result.board_id, "repetitions": int(result.repetitions), "n_layers": len(result.layers),
             "total_macs": sum(int(layer.macs) for layer in result.layers), "total_cycles": int(result.total_cycles),
             "layer_cycles": sum(int(layer.cycles) for layer in result.layers), "latency_s": result.latency_s,
             "energy_j": result.energy_j, "plan_bytes": int(result.plan_bytes), "arena_bytes": int(result.arena_bytes)}
    return model, layers


def _int64_fields(descriptor) -> set[str]:
    from google.protobuf.descriptor import FieldDescriptor as FD

    return {f.name for f in descriptor.fields
            if f.type in (FD.TYPE_UINT64, FD.TYPE_INT64, FD.TYPE_FIXED64, FD.TYPE_SFIXED64, FD.TYPE_SINT64)}


def result_dict(result: pb.MeasureResult) -> dict:
    """The result as ``measure-agent measure --json`` prints it (64-bit integers as numbers, no outputs)."""
    from google.protobuf.json_format import MessageToDict

    data = MessageToDict(result, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    data.pop("outputs", None)
    top, per_layer = _int64_fields(pb.MeasureResult.DESCRIPTOR), _int64_fields(pb.LayerResult.DESCRIPTOR)
    for record, fields in [(data, top), *[(layer, per_layer) for layer in data.get("layers", [])]]:
        for key in fields & record.keys():
            record[key] = int(record[key])
    return data


def measure_schema(prediction: dict) -> dict:
    """A prediction (``costmodel.latency_model.ModelPrediction.to_dict``) with every key of a measured result, so
    predicted and measured JSON compare side by side; keys a prediction has no value for keep their defaults."""
    empty = pb.MeasureResult()
    empty.layers.add()
    template = result_dict(empty)
    layer_template = template.pop("layers")[0]
    out = {**template, **{k: v for k, v in prediction.items() if k != "layers"}}
    out["layers"] = [{**layer_template, **layer} for layer in prediction.get("layers", [])]
    return out
