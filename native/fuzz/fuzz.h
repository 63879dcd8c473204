/*
 * What the fuzz targets share (each target is a program of its own, built by
 * test/reliability/native-fuzz.test.ts).
 */
#ifndef PORTHOLE_FUZZ_H
#define PORTHOLE_FUZZ_H

#include <stdint.h>
#include <stdlib.h>

/* A property that failed: abort(), which libFuzzer reports with the input that did it. */
#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

/* The length of the next read, from a small generator seeded by the input: 1..small, or `big` one time in `one_in`. */
static inline uint32_t next_len(uint32_t *s, uint32_t small, uint32_t big, uint32_t one_in) {
  *s = *s * 1103515245u + 12345u;
  uint32_t r = (*s >> 16) & 0x7fff;
  return r % one_in == 0 ? big : 1 + r % small;
}

#ifdef FUZZ_LOOP_STUBS
/* loop.c's state and timers, as far as the file under test reaches them. */
int epfd = -1;
uint64_t now_mono = 1000;
void due(uint64_t at) { (void)at; }
#endif

#endif
