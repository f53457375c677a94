/*
 * Bare-metal entry point for running the runtime under an instruction-set emulator (Unicorn) in the
 * tests: the real Thumb-2 / DSP instructions of a Cortex-M build execute one plan on one input.
 * No start-up code: the test maps the image, sets SP and calls emu_run(job) directly.
 */
#include <stdint.h>
#include <string.h>

#include "../runtime/executor.h"

struct emu_job {
    const uint8_t *plan;
    uint32_t plan_len;
    uint8_t *arena;
    uint32_t arena_len;
    const uint8_t *input;
    uint32_t input_len;
    uint8_t *output;
    uint32_t output_len;
    int32_t status;
};

int32_t emu_run(struct emu_job *job);

int32_t emu_run(struct emu_job *job)
{
    uint8_t *in;
    const uint8_t *out;
    uint32_t n;
    int rc = nn_load(job->plan, job->plan_len, job->arena, job->arena_len);
    if (rc == NN_OK) {
        rc = nn_input(0, &in, &n);
    }
    if (rc == NN_OK) {
        memcpy(in, job->input, n < job->input_len ? n : job->input_len);
        rc = nn_run(0, 0);
    }
    if (rc == NN_OK) {
        rc = nn_output(0, &out, &n);
    }
    if (rc == NN_OK) {
        memcpy(job->output, out, n < job->output_len ? n : job->output_len);
    }
    job->status = rc;
    return rc;
}
