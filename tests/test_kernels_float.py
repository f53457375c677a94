"""The integer forms of the float roundings (firmware/kernels/nn_float.h, what a build without an FPU runs) equal
the FPU forms bit for bit: round_half_away of a float, of a correctly rounded float quotient (QUANTIZE) and
of a correctly rounded float product (the hybrid kernels' input quantization), on random and edge values."""

from __future__ import annotations

import subprocess
from pathlib import Path

import firmware

PROGRAM = r"""
#include <math.h>
#include <stdio.h>
#define NN_FPU 0
#include "nn_float.h"

static uint64_t state = 88172645463325252ull;
static uint32_t next(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return (uint32_t)state; }
static float as_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* the FPU forms, written out with the C library (round = half away from zero) */
static int32_t fpu_round(float v)
{
    if (v != v) return 0;
    if (v >= 2147483520.0f) return NN_SAT_POS;
    if (v < -2147483520.0f) return NN_SAT_NEG;
    return (int32_t)roundf(v);
}

/* a random float: mostly moderate magnitudes around a scale, sometimes any bit pattern */
static float random_float(float around)
{
    uint32_t k = next() % 8;
    if (k == 0) return as_float(next());
    if (k == 1) return (float)((int32_t)(next() % 1024) - 512) * around * 0.5f; /* near ties */
    if (k == 2) return as_float(nn_f32_bits((float)((int32_t)(next() % 1024) - 512) * around * 0.5f) + (next() % 5) - 2);
    return ((float)(int32_t)next() / 2147483648.0f) * around * (float)(1u << (next() % 20));
}

int main(void)
{
    long checked = 0, bad = 0;
    for (long i = 0; i < 3000000; i++) {
        float s = as_float((next() % 60 + 100) << 23 | (next() & 0x7FFFFF)); /* scales 2^-27 .. 2^32 */
        nn_divisor d;
        nn_divisor_init(&d, s);
        float x = random_float(s);
        int32_t a = nn_div_round(x, &d), b = fpu_round(x / s);
        checked++;
        if (a != b && bad++ < 5) printf("div x=%a s=%a int %d fpu %d\n", x, s, a, b);
        float c = 1.0f / s;
        a = nn_mul_round(x, c);
        b = fpu_round(x * c);
        checked++;
        if (a != b && bad++ < 5) printf("mul x=%a c=%a int %d fpu %d\n", x, c, a, b);
        a = nn_round_f32_i32(x);
        b = fpu_round(x);
        checked++;
        if (a != b && bad++ < 5) printf("round x=%a int %d fpu %d\n", x, a, b);
        float y = random_float(1.0f);
        if (x == x && y == y) {
            checked++;
            if (((nn_f32_key(x) < nn_f32_key(y)) != (x < y)) && !(x == 0.0f && y == 0.0f) && bad++ < 5)
                printf("key x=%a y=%a\n", x, y);
        }
    }
    printf("%ld %ld\n", checked, bad);
    return bad != 0;
}
"""


def test_integer_float_roundings_equal_the_fpu(tmp_path):
    src = tmp_path / "check.c"
    src.write_text(PROGRAM)
    exe = tmp_path / "check"
    kernels = Path(firmware.__file__).parent / "kernels"
    subprocess.run(["gcc", "-O2", "-std=c11", "-fwrapv", "-ffp-contract=off", f"-I{kernels}", str(src), "-o",
                    str(exe), "-lm"], check=True)
    done = subprocess.run([str(exe)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
    checked, bad = map(int, done.stdout.split()[-2:])
    assert checked > 10_000_000 and bad == 0
