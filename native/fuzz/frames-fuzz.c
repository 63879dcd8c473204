/*
 * libFuzzer target for frames.c (built and run by test/reliability/native-fuzz.test.ts,
 * with AddressSanitizer and UndefinedBehaviorSanitizer).
 *
 * Input: one byte that picks how the stream is cut, then bytes as a tunnel reads them.
 * What must hold, beyond no sanitizer report: the tracker reads every byte it is given
 * (stop = 0) or stops only at a frame's end (stop = 1), and what it learns (frames,
 * messages, the first close frame's code and reason, where it is in a frame) does not
 * depend on how the stream was cut into reads. A close frame written by close_frame()
 * fits a control frame, reads back with its code through the tracker, masked or not,
 * and a reason cut to fit stays whole characters of valid UTF-8.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../frames.h"
#include "fuzz.h"

static void same(const tracker_t *a, const tracker_t *b) {
  CHECK(a->frames == b->frames);
  CHECK(a->messages == b->messages);
  CHECK(a->close_code == b->close_code);
  CHECK(a->reason_len == b->reason_len);
  CHECK(memcmp(a->reason, b->reason, a->reason_len) == 0);
  CHECK(a->remaining == b->remaining);
  CHECK(a->hlen == b->hlen);
  CHECK(memcmp(a->hdr, b->hdr, a->hlen) == 0);
}

static int valid_utf8(const uint8_t *p, size_t n) {
  utf8_t u;
  utf8_init(&u);
  for (size_t i = 0; i < n; i++)
    if (!utf8_step(&u, p[i])) return 0;
  return u.need == 0;
}

static void close_round_trip(const uint8_t *p, size_t n) {
  if (n < 2) return;
  int code = (p[0] << 8) | p[1];
  const char *reason = (const char *)p + 2;
  size_t len = n - 2;
  for (int masked = 0; masked < 2; masked++) {
    uint8_t out[CONTROL_MAX];
    size_t w = close_frame(out, code, reason, len, masked);
    CHECK(w <= CONTROL_MAX);
    CHECK(w == (size_t)(2 + (masked ? 4 : 0) + (out[1] & 0x7f)));
    tracker_t t;
    tracker_init(&t);
    CHECK(tracker_consume(&t, out, w, 0) == w);
    CHECK(tracker_at_boundary(&t));
    CHECK(t.frames == 1 && t.messages == 0);
    CHECK(t.close_code == code);
    /* A valid reason stays valid when cut (on a character boundary, "..." after it). */
    if (valid_utf8((const uint8_t *)reason, len)) CHECK(valid_utf8((const uint8_t *)t.reason, t.reason_len));
    if (len <= 123) CHECK(t.reason_len == len && memcmp(t.reason, reason, len) == 0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint32_t seed = data[0];
  const uint8_t *p = data + 1;
  size_t n = size - 1;

  tracker_t whole;
  tracker_init(&whole);
  CHECK(tracker_consume(&whole, p, n, 0) == n);

  /* The same bytes in chunks, each chunk a separate buffer (so a read past it is seen). */
  tracker_t cut, stopping;
  tracker_init(&cut);
  tracker_init(&stopping);
  size_t off = 0;
  while (off < n) {
    size_t len = next_len(&seed, 64, 4096, 8);
    if (len > n - off) len = n - off;
    uint8_t *chunk = malloc(len);
    CHECK(chunk);
    memcpy(chunk, p + off, len);
    CHECK(tracker_consume(&cut, chunk, len, 0) == len);
    /* stop = 1: it returns at each frame's end; the rest is given again from there. */
    size_t at = 0;
    while (at < len) {
      size_t r = tracker_consume(&stopping, chunk + at, len - at, 1);
      CHECK(r <= len - at);
      at += r;
      if (at < len) CHECK(tracker_at_boundary(&stopping) && r > 0);
    }
    free(chunk);
    off += len;
  }
  same(&whole, &cut);
  same(&whole, &stopping);

  close_round_trip(p, n > 200 ? 200 : n);
  return 0;
}
