/*
 * Replays streams through frames.c's tracker for test/gateway/frames-twins.test.ts, which
 * feeds the same streams, cut the same way, to frames.ts's FrameTracker and compares.
 *
 * stdin: records of [u32 stream length][u32 number of reads][u32 length of each read][the
 * stream's bytes], little-endian. stdout: a line per record, "frames messages close_code
 * reason_hex boundaries" (close_code -1 before any close frame, reason_hex "-" when empty,
 * boundaries a 0 or 1 per read: whether the bytes so far end at a frame boundary, as the
 * tunnel asks before it puts a frame of its own into the stream).
 */
#include <stdio.h>
#include <stdlib.h>

#include "../frames.h"
#include "fuzz.h"

static int read_all(void *p, size_t n) { return fread(p, 1, n, stdin) == n; }

int main(void) {
  uint32_t len, reads;
  while (read_all(&len, 4)) {
    CHECK(read_all(&reads, 4));
    uint32_t *cut = malloc(((size_t)reads + 1) * 4);
    uint8_t *p = malloc((size_t)len + 1);
    CHECK(cut && p);
    CHECK(read_all(cut, (size_t)reads * 4) && read_all(p, len));
    char *boundaries = malloc((size_t)reads + 2);
    CHECK(boundaries);
    tracker_t t;
    tracker_init(&t);
    size_t off = 0;
    for (uint32_t i = 0; i < reads; i++) {
      CHECK(cut[i] <= len - off);
      CHECK(tracker_consume(&t, p + off, cut[i], 0) == cut[i]);
      off += cut[i];
      boundaries[i] = tracker_at_boundary(&t) ? '1' : '0';
    }
    boundaries[reads] = 0;
    CHECK(off == len);
    printf("%llu %llu %d ", (unsigned long long)t.frames, (unsigned long long)t.messages, t.close_code);
    if (!t.reason_len) putchar('-');
    for (int i = 0; i < t.reason_len; i++) printf("%02x", (uint8_t)t.reason[i]);
    printf(" %s\n", reads ? boundaries : "-");
    free(boundaries);
    free(cut);
    free(p);
  }
  return 0;
}
