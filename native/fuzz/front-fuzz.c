/*
 * libFuzzer target for front.c's reading of heads (built and run by
 * test/reliability/native-fuzz.test.ts, with AddressSanitizer and UndefinedBehaviorSanitizer).
 *
 * front.c is compiled into this file, so its static readers are called directly on each input:
 *  - head_kind(), what the loop makes of the bytes peeked from a client: a complete head that
 *    may be a WebSocket upgrade ends at the first blank line and starts with "GET "; one still
 *    coming has no blank line and fits the buffer; anything else is Node's;
 *  - may_be_101(), read on every part of an upstream's answer as it comes: once it says an
 *    answer cannot become a clean 101, no longer answer with the same start can (the front
 *    stops waiting then), and an answer it takes starts with the status line it looks for.
 * The loop's own parts are stubs: nothing here touches a socket.
 */
#include "../front.c"

#define FUZZ_LOOP_STUBS
#include "fuzz.h"

/* The rest of loop.c's side, as far as front.c reaches it; none of it runs here. */
uint64_t loop_now_ms(void) { return now_mono; }
int loop_command(int kind, tunnel_t *t, int code, const char *reason, size_t reason_len) { return abort(), 0; }
int loop_command_quiet(int kind, tunnel_t *t) { return abort(), 0; }
tunnel_t *tunnel_new(int id, int client_fd, int upstream_fd, uint32_t idle_ms, uint32_t ping_ms, uint32_t grace_ms) { return abort(), NULL; }
int tunnel_register_watched(tunnel_t *t) { return abort(), 0; }
int tunnel_preload(tunnel_t *t, int src, const uint8_t *preface, size_t preface_len, const uint8_t *p, size_t len) { return abort(), 0; }
void tunnel_free(tunnel_t *t) { abort(); }
void tunnel_adopt_watched(tunnel_t *t) { abort(); }

static long first_blank(const uint8_t *p, size_t n) {
  for (size_t i = 0; i + 4 <= n; i++)
    if (memcmp(p + i, "\r\n\r\n", 4) == 0) return (long)(i + 4);
  return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Each input in a buffer of its own size, so a read past it is seen. */
  uint8_t *p = malloc(size ? size : 1);
  CHECK(p);
  memcpy(p, data, size);

  long end = -2;
  int kind = head_kind(p, size, &end);
  long blank = first_blank(p, size);
  CHECK(end == blank);
  if (kind == HEAD_WS) CHECK(end >= 4 && size >= 4 && memcmp(p, "GET ", 4) == 0);
  if (kind == HEAD_WAIT) CHECK(blank < 0 && size < HEAD_MAX);
  if (blank < 0 && size < HEAD_MAX) CHECK(kind == HEAD_WAIT);

  int ok = may_be_101(p, size);
  if (ok && size >= 12) CHECK(memcmp(p, "HTTP/1.1 101", 12) == 0);
  /* Prefix-closed: every shorter start of an answer it takes, it takes too (checked at a few cuts). */
  if (ok)
    for (size_t k = 1, step = size / 7 + 1; k < size; k += step) CHECK(may_be_101(p, k));
  /* And the other way: refused, it stays refused as bytes come (the last one added here). */
  if (!ok && size > 0) {
    uint8_t *more = malloc(size + 1);
    CHECK(more);
    memcpy(more, p, size);
    more[size] = data[0];
    CHECK(!may_be_101(more, size + 1));
    free(more);
  }
  free(p);
  return 0;
}
