// Random numbers and the heap profile's sampling maths (sample.c), without libm.
#ifndef GOALLOC_SAMPLE_H
#define GOALLOC_SAMPLE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A uniform random 64-bit value (per-thread state, seeded by getrandom(2), else from AT_RANDOM).
uint64_t goalloc_random64(void);
/// An exponentially distributed distance with the given mean (heap profile sampling).
uint64_t goalloc_next_sample(uint64_t mean);
/// Go's unsampling estimate of the bytes a sample of `size` stands for at `rate`.
uint64_t goalloc_scale_sample(uint64_t size, uint64_t rate);

#ifdef __cplusplus
}
#endif
#endif
