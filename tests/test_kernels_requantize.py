"""The C quantization arithmetic: nn_requantize_ch (the kernels' branch-light form) equals nn_requantize."""

from __future__ import annotations

import subprocess
from pathlib import Path

import firmware

PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include "nn_quant.h"

static uint64_t state = 88172645463325252ull;
static uint32_t next(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return (uint32_t)state; }

int main(void)
{
    static const int32_t edges[] = {0, 1, -1, 2, -2, 1 << 30, -(1 << 30), NN_INT32_MAX, NN_INT32_MIN, 12345, -12345};
    long mismatches = 0, checked = 0;
    for (long i = 0; i < 2000000; i++) {
        int32_t x = (i % 7 == 0) ? edges[next() % 11] : (int32_t)next();
        int32_t m = (i % 5 == 0) ? edges[next() % 11] : (int32_t)next();
        int32_t s = (int32_t)(next() % 62) - 31;
        if (m == NN_INT32_MIN || s > 30) continue;
        nn_requant_ch k;
        nn_requant_ch_init(&k, m, s);
        checked++;
        if (nn_requantize_ch(x, &k) != nn_requantize(x, m, s)) {
            if (mismatches++ < 5) printf("mismatch x=%d m=%d s=%d\n", x, m, s);
        }
    }
    printf("%ld %ld\n", checked, mismatches);
    return mismatches != 0;
}
"""


def test_branch_light_requantize_equals_reference(tmp_path):
    src = tmp_path / "check.c"
    src.write_text(PROGRAM)
    exe = tmp_path / "check"
    kernels = Path(firmware.__file__).parent / "kernels"
    subprocess.run(["gcc", "-O2", "-std=c11", "-fwrapv", f"-I{kernels}", str(src), "-o", str(exe)], check=True)
    done = subprocess.run([str(exe)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
    checked, mismatches = map(int, done.stdout.split()[-2:])
    assert checked > 1_500_000 and mismatches == 0
