/*
 * libFuzzer target for front.c's reading of heads (built and run by
 * test/reliability/native-fuzz.test.ts, with AddressSanitizer and UndefinedBehaviorSanitizer).
 *
 * front.c is compiled into this file, so its static readers are called directly on each input:
 *  - head_kind(), what the loop makes of the bytes peeked from a client: a complete head (up
 *    to the first blank line) is the front's to show JavaScript exactly when it starts with
 *    "GET " and has an Upgrade header line (any case); one still coming has no blank line and
 *    fits the buffer; anything else is Node's;
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

/* A "\r\nUpgrade:" line start, any case, inside the head's first `end` bytes. */
static int has_upgrade_line(const uint8_t *p, long end) {
  static const char want[] = "\r\nupgrade:";
  for (long i = 0; i + 10 <= end; i++) {
    int k = 0;
    for (; k < 10; k++) {
      uint8_t c = p[i + k];
      if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
      if (c != (uint8_t)want[k]) break;
    }
    if (k == 10) return 1;
  }
  return 0;
}

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
  int ws = blank >= 4 && memcmp(p, "GET ", 4) == 0 && has_upgrade_line(p, blank);
  CHECK((kind == HEAD_WS) == ws);
  CHECK((kind == HEAD_WAIT) == (blank < 0 && size < HEAD_MAX));

  int ok = may_be_101(p, size);
  if (ok && size >= 12) CHECK(memcmp(p, "HTTP/1.1 101", 12) == 0);
  /* Prefix-closed: every shorter start of an answer it takes, it takes too (at 16 cuts and the last 4). */
  if (ok) {
    for (size_t k = 1, step = size / 16 + 1; k < size; k += step) CHECK(may_be_101(p, k));
    for (size_t k = size > 4 ? size - 4 : 1; k < size; k++) CHECK(may_be_101(p, k));
  }
  /* And the other way: refused, it stays refused whatever byte comes next (a few of the telling ones). */
  if (!ok && size > 0) {
    static const uint8_t next[] = {'\r', '\n', ':', ' ', '\t', 'a', 0x00, 0x7f, 0xff};
    uint8_t *more = malloc(size + 1);
    CHECK(more);
    memcpy(more, p, size);
    for (size_t k = 0; k <= sizeof next; k++) {
      more[size] = k < sizeof next ? next[k] : data[size / 2];
      CHECK(!may_be_101(more, size + 1));
    }
    free(more);
  }
  free(p);
  return 0;
}
