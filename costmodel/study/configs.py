"""The paper's configurations (section 4.1, figure 2): which model file runs with which firmware settings.

=============  ==========  ===========  =========  ======================================================
key            model       kernels      float ABI  in the paper
=============  ==========  ===========  =========  ======================================================
``float-soft`` float32     reference    soft       U: the unoptimised model, FPU not used (soft float)
``float-fpu``  float32     reference    hard       U + FPU
``dynamic``    dynamic     reference    hard       (dynamic-range: int8 weights, float activations)
``int8-ref``   int8        reference    hard       Q: 8-bit model, hardware-agnostic kernels
``int8-simd``  int8        simd         hard       Q + CMSIS-NN: 8-bit model, SIMD (Armv7E-M DSP) kernels
=============  ==========  ===========  =========  ======================================================

each built at ``-Os`` and ``-O3`` (the paper's appendix B.1 compares compiler optimisation levels). Float and
dynamic-range models run the reference kernels: the runtime has SIMD kernels for int8 layers only, and the paper's
U and U + FPU had no CMSIS-NN. A configuration the board cannot run (no FPU, no DSP extension) is left out with
the reason.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    key: str
    label: str
    quantization: str
    variant: str
    float_abi: str
    paper: str

    def applies(self, board) -> str:
        """Why the board cannot run this configuration ("" when it can)."""
        if self.variant not in board.runtime_variants():
            return f"{board.name} has no DSP extension for the SIMD kernels ({board.core})"
        # an int8 model computes no floats between its quantize and dequantize: any float ABI serves it
        if self.quantization != "int8" and self.float_abi not in board.float_abis():
            return f"{board.name} has no FPU ({board.core})"
        return ""

    def float_abi_on(self, board) -> str:
        """The float ABI the firmware is built with on `board`: the configuration's for float and
        dynamic-range models; for int8 models the board's best (hard where there is an FPU)."""
        if self.quantization != "int8":
            return self.float_abi
        return best_float_abi(board)


def best_float_abi(board) -> str:
    """Hard float where the board has an FPU, else soft."""
    return "hard" if "hard" in board.float_abis() else "soft"


CONFIGS = (
    Config("float-soft", "float32, no FPU (soft float)", "float32", "reference", "soft", "U"),
    Config("float-fpu", "float32 with FPU", "float32", "reference", "hard", "U + FPU"),
    Config("dynamic", "dynamic-range (int8 weights)", "dynamic", "reference", "hard", ""),
    Config("int8-ref", "int8, reference kernels", "int8", "reference", "hard", "Q"),
    Config("int8-simd", "int8, SIMD kernels", "int8", "simd", "hard", "Q + CMSIS-NN"),
)
BY_KEY = {c.key: c for c in CONFIGS}
OPT_LEVELS = ("-Os", "-O3")
#: the paper's unoptimised (U, slowest) and fully optimised (O, fastest) configurations
UNOPTIMISED, OPTIMISED = "float-soft", "int8-simd"


def config_id(key: str, opt: str) -> str:
    return f"{key} {opt}"


def parse_config_id(text: str) -> tuple[str, str]:
    key, opt = text.split(" ", 1)
    return key, opt


def all_config_ids() -> list[str]:
    return [config_id(c.key, o) for c in CONFIGS for o in OPT_LEVELS]


#: rough cycles per MAC of each configuration on a Cortex-M4 (only to start the longest measurements first)
ROUGH_CYCLES_PER_MAC = {"float-soft": 60.0, "float-fpu": 12.0, "dynamic": 16.0, "int8-ref": 12.0, "int8-simd": 4.0}
