"""The C quantization arithmetic: nn_requantize, nn_requantize_ch (the kernels' branch-light form) and
nn_rq_apply (one fused 64-bit rounding) and nn_rq_mm_apply (one SMMLAR, the zero point folded; and without its
sign term for a zero point of -128 under int8 saturation) equal the specification's nudge-truncate-saturate
arithmetic; nn_requantize_single_hi (FULLY_CONNECTED's SMMLA form, the zero point folded in) equals
nn_requantize_single plus the zero point wherever nn_requantize_single_hi_ok admits it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import firmware

PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include "nn_quant.h"

/* The specification's arithmetic, written the way the reference code describes it (nudge, truncate toward
 * zero, saturate; remainder against threshold): every faster form in nn_quant.h is checked against this. */
static int32_t spec_srdhm(int32_t a, int32_t b)
{
    if (a == NN_INT32_MIN && b == NN_INT32_MIN) return NN_INT32_MAX;
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    int64_t t = ab + nudge;
    return (int32_t)(t >= 0 ? (t >> 31) : -((-t) >> 31));
}
static int32_t spec_rdbypot(int32_t x, int e)
{
    int32_t mask = (int32_t)((((int64_t)1) << e) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (remainder > threshold ? 1 : 0);
}
static int32_t spec_requantize(int32_t x, int32_t m, int32_t s)
{
    int left = s > 0 ? s : 0, right = s > 0 ? 0 : -s;
    return spec_rdbypot(spec_srdhm((int32_t)((uint32_t)x << left), m), right);
}

static int32_t ssat8(int32_t v) { return v < -128 ? -128 : v > 127 ? 127 : v; }

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
        if (s > 30) continue;
        if (m == NN_INT32_MIN) { /* only the plain form takes it (the saturating product) */
            checked++;
            if (nn_requantize(x, m, s) != spec_requantize(x, m, s) && mismatches++ < 5)
                printf("requantize mismatch x=%d m=%d s=%d\n", x, m, s);
            continue;
        }
        nn_requant_ch k;
        nn_requant_ch_init(&k, m, s);
        checked++;
        if (nn_requantize(x, m, s) != spec_requantize(x, m, s)) {
            if (mismatches++ < 5) printf("requantize mismatch x=%d m=%d s=%d\n", x, m, s);
        }
        if (nn_requantize_ch(x, &k) != spec_requantize(x, m, s)) {
            if (mismatches++ < 5) printf("mismatch x=%d m=%d s=%d\n", x, m, s);
        }
        if (nn_rq_mm_ok(m, s)) { /* the SMMLAR form: sums within 2^30, the zero point folded */
            const int32_t xs = x >> 1, zp = (int32_t)(next() % 256) - 128, r = nn_rq_mm_shift(m, s);
            const int32_t want = spec_requantize(xs, m, s) + zp;
            const int32_t got = nn_rq_mm_apply(xs, m, nn_rq_mm_k(r, zp), r);
            /* without the [x < 0] term, for zp = -128 and int8 saturation */
            const int32_t k = nn_rq_mm_k(r, -128);
            const int64_t p = (int64_t)(xs * 2) * m + 0x80000000ll + ((int64_t)k << 32);
            const int32_t floor_form = ssat8((int32_t)(p >> 32) >> r);
            checked++;
            if (got != want || floor_form != ssat8(spec_requantize(xs, m, s) - 128)) {
                if (mismatches++ < 5) printf("SMMLAR mismatch x=%d m=%d s=%d zp=%d\n", xs, m, s, zp);
            }
        }
        int32_t zp = (int32_t)(next() % 256) - 128, sr = -(int32_t)(next() % 30) - 2; /* sr in [-31, -2] */
        if (nn_requantize_single_hi_ok(sr, zp)) { /* the SMMLA form of the single rounding, zero point folded */
            checked++;
            int32_t c = (int32_t)((uint32_t)(2 * zp + 1) << (-sr - 2));
            if (nn_requantize_single_hi(x, m, c, -sr - 1) != nn_requantize_single(x, m, sr) + zp) {
                if (mismatches++ < 5) printf("single_hi mismatch x=%d m=%d s=%d zp=%d\n", x, m, sr, zp);
            }
        }
        nn_rq q;
        if (nn_rq_init(&q, m, s)) { /* the fused form: right shifts, multipliers >= 0 */
            checked++;
            if (nn_rq_apply(x, &q) != spec_requantize(x, m, s)) {
                if (mismatches++ < 5) printf("fused mismatch x=%d m=%d s=%d\n", x, m, s);
            }
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
    assert checked > 2_000_000 and mismatches == 0
