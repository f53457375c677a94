/*
 * Host fuzz driver for the executor: loads a valid plan file, then repeatedly corrupts it (random bytes
 * anywhere after the header with the checksum fixed up, truncation, header fields), calls nn_load and,
 * when the corrupted plan still validates, nn_run. Built with -fsanitize=address,undefined by
 * tests/test_plan_sanitize.py: any out-of-bounds access or undefined behaviour aborts.
 *
 *   plan_fuzz <plan.bin> <iterations> <seed>
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/executor.h"

static uint32_t rng_state;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static uint32_t fnv1a(const uint8_t *p, uint32_t n)
{
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    return h;
}

static void reseal(uint8_t *p, uint32_t n)
{
    if (n >= 64) {
        uint32_t h = fnv1a(p + 64, n - 64);
        memcpy(p + 60, &h, 4);
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s plan.bin iterations seed\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    static uint32_t orig_words[1 << 20];
    static uint32_t work_words[1 << 20];
    uint8_t *orig = (uint8_t *)orig_words, *work = (uint8_t *)work_words;
    uint32_t len = (uint32_t)fread(orig, 1, sizeof orig_words, f);
    fclose(f);
    long iterations = atol(argv[2]);
    rng_state = (uint32_t)atol(argv[3]) | 1u;
    uint32_t need = nn_arena_bytes_needed(orig, len);
    if (need == 0) {
        fprintf(stderr, "the input plan is not valid\n");
        return 2;
    }
    uint8_t *arena = NULL;
    long loaded = 0, ran = 0;
    for (long it = 0; it < iterations; it++) {
        memcpy(work, orig, len);
        uint32_t n = len;
        uint32_t mode = rnd() % 8;
        if (mode == 0) {
            n = rnd() % len; /* truncation (checksum fixed up: the length field now lies) */
            reseal(work, n);
        } else if (mode == 1) {
            uint32_t pos = 8 + rnd() % 52; /* header fields */
            work[pos] = (uint8_t)rnd();
            reseal(work, n);
        } else {
            uint32_t k = 1 + rnd() % 4;
            for (uint32_t j = 0; j < k; j++) {
                uint32_t pos = 64 + rnd() % (len - 64);
                if (mode == 2) {
                    work[pos] = (uint8_t)rnd();
                } else if (mode == 3) {
                    work[pos] ^= (uint8_t)(1u << (rnd() % 8));
                } else if (mode == 4 && pos + 4 <= len) {
                    uint32_t v = rnd() % 3 == 0 ? 0xFFFFFFFFu : (rnd() % 3 == 0 ? 0x80000000u : rnd() % 70000u);
                    memcpy(work + pos, &v, 4);
                } else {
                    work[pos] = (uint8_t)(work[pos] + (rnd() % 2 ? 1 : 0xFF));
                }
            }
            reseal(work, n);
        }
        uint32_t need2 = nn_arena_bytes_needed(work, n);
        if (need2 == 0 || need2 > (64u << 20)) {
            if (nn_load(work, n, NULL, 0) == NN_OK) {
                fprintf(stderr, "loaded with a NULL arena\n");
                return 1;
            }
            continue;
        }
        arena = (uint8_t *)realloc(arena, need2);
        if (nn_load(work, n, arena, need2) != NN_OK) {
            continue;
        }
        loaded++;
        for (uint32_t l = 0; l < nn_num_layers(); l++) {
            if (nn_layer_kernel(l) == NULL) {
                fprintf(stderr, "layer %u loaded without a kernel\n", (unsigned)l);
                return 1;
            }
        }
        if (nn_layer_kernel(nn_num_layers()) != NULL) {
            fprintf(stderr, "nn_layer_kernel accepted an index past the last layer\n");
            return 1;
        }
        uint8_t *in;
        uint32_t bytes;
        for (uint32_t i = 0; i < nn_num_inputs(); i++) {
            if (nn_input(i, &in, &bytes) == NN_OK) {
                for (uint32_t b = 0; b < bytes; b++) {
                    in[b] = (uint8_t)rnd();
                }
            }
        }
        if (nn_run(NULL, NULL) == NN_OK) {
            ran++;
        }
    }
    free(arena);
    printf("iterations %ld loaded %ld ran %ld\n", iterations, loaded, ran);
    return 0;
}
