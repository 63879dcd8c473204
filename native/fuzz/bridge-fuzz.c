/*
 * libFuzzer target for bridge.c's parser of client frames (built and run by
 * test/reliability/native-fuzz.test.ts, with AddressSanitizer and UndefinedBehaviorSanitizer).
 *
 * bridge.c is compiled into this file, so its parse() (static) is called as pump_up calls it:
 * each read in a buffer of its own behind 4 bytes of room, parsed and unmasked in place.
 * Input: one byte of options (text passed as bytes or refused; how the stream is cut), then
 * the bytes a client sends. What must hold, beyond no sanitizer report:
 *  - the payload bytes written to TCP are the unmasked payloads of the data frames, in order,
 *    up to the first close frame: checked against a plain decoder here, whenever the stream
 *    broke no rule (a refused stream: what went out is a prefix of them);
 *  - whatever the cut into reads: the same bytes out (or one a prefix of the other when the
 *    stream was refused, since a refused read passes on nothing of its own), and the same
 *    close frame queued, with the same code.
 * The loop's own parts (timers, buffers, the end) are stubs: nothing here touches a socket.
 */
#include "../bridge.c"

#include <stdio.h>

#define FUZZ_LOOP_STUBS
#include "fuzz.h"

/* The rest of loop.c's side, as far as parse() reaches it. */
double now_epoch = 0;
void take_buffer(direction_t *d) { (void)d; }
void give_buffer(direction_t *d) { (void)d; }
void want_out(tunnel_t *t, int side) { (void)t, (void)side; }
void finish(tunnel_t *t) { t->finished = 1; }
int uv_translate_sys_error(int sys_errno) { return -sys_errno; }
char *uv_err_name_r(int err, char *buf, size_t len) {
  snprintf(buf, len, "E%d", err);
  return buf;
}

/* Room in front of each read, as pump_up leaves it (4: a held character fits). A test builds it with 0 to see the checks bite. */
#ifndef FUZZ_ROOM
#define FUZZ_ROOM 4
#endif

typedef struct {
  uint8_t *out;
  size_t len;
  int done, failed, got_close, first_code;
  uint8_t close[CONTROL_MAX];
  uint8_t close_len;
} result_t;

/* The stream through parse(), in reads cut by `seed` (0: one read, as far as READ_MAX allows). */
static void run(const uint8_t *p, size_t n, int text_as_binary, uint32_t seed, result_t *r) {
  tunnel_t t;
  memset(&t, 0, sizeof t);
  t.fd[0] = t.fd[1] = -1;
  bridge_opts_t o = {.app = "app", .eof_reason = "eof", .reset_reason = "reset", .text_reason = "text refused", .timeout_reason = "timeout", .failed_before = "failed (", .failed_after = ")", .text_as_binary = text_as_binary};
  CHECK(bridge_init(&t, &o) == 0);
  memset(r, 0, sizeof *r);
  r->out = malloc(n + 1);
  CHECK(r->out);
  size_t off = 0;
  while (off < n && !t.bridge->client_done) {
    uint32_t len = seed ? next_len(&seed, 97, READ_MAX, 4) : READ_MAX;
    if (len > n - off) len = (uint32_t)(n - off);
    /* As pump_up reads: room in front, the read after it; nothing past it. */
    uint8_t *buf = malloc(FUZZ_ROOM + (size_t)len);
    CHECK(buf);
    memcpy(buf + FUZZ_ROOM, p + off, len);
    uint32_t out = parse(&t, buf, FUZZ_ROOM, FUZZ_ROOM + len);
    CHECK(out <= FUZZ_ROOM + len);
    CHECK(r->len + out <= n);
    memcpy(r->out + r->len, buf, out);
    r->len += out;
    free(buf);
    off += len;
  }
  bridge_t *b = t.bridge;
  r->done = b->client_done;
  r->failed = b->failed;
  r->got_close = b->got_close;
  r->first_code = b->first_code;
  r->close_len = b->close_len;
  memcpy(r->close, b->close, b->close_len);
  bridge_free(&t);
  for (int s = 0; s < 2; s++) free(t.d[s].buf);
}

/* A plain decoder: the unmasked payloads of data frames up to the first close frame, no rules checked. */
static size_t decode(const uint8_t *p, size_t n, uint8_t *out) {
  size_t i = 0, w = 0;
  while (i + 2 <= n) {
    uint8_t op = p[i] & 0x0f, len7 = p[i + 1] & 0x7f;
    size_t hl = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
    if (i + hl > n) break;
    uint64_t len = len7;
    if (len7 == 126) len = ((uint64_t)p[i + 2] << 8) | p[i + 3];
    else if (len7 == 127) {
      len = 0;
      for (int k = 2; k < 10; k++) len = (len << 8) | p[i + k];
    }
    const uint8_t *mask = p + i + hl - 4;
    i += hl;
    if (op == OP_CLOSE) break;
    uint64_t have = len < n - i ? len : n - i;
    if (op < 8)
      for (uint64_t k = 0; k < have; k++) out[w++] = p[i + k] ^ mask[k & 3];
    i += have;
  }
  return w;
}

static int prefix(const result_t *a, const result_t *b) {
  const result_t *s = a->len <= b->len ? a : b, *l = a->len <= b->len ? b : a;
  return memcmp(s->out, l->out, s->len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int text_as_binary = data[0] & 1;
  uint32_t seed = (data[0] >> 1) + 1;
  const uint8_t *p = data + 1;
  size_t n = size - 1;

  result_t one, cut;
  run(p, n, text_as_binary, 0, &one);
  run(p, n, text_as_binary, seed, &cut);

  /* The same verdict whatever the reads were. */
  CHECK(one.done == cut.done && one.failed == cut.failed && one.got_close == cut.got_close);
  CHECK(one.first_code == cut.first_code);
  CHECK(one.close_len == cut.close_len && memcmp(one.close, cut.close, one.close_len) == 0);
  if (one.failed) CHECK(prefix(&one, &cut));
  else CHECK(one.len == cut.len && memcmp(one.out, cut.out, one.len) == 0);

  /* Against the plain decoder. A text message's last incomplete character is held back, not sent. */
  uint8_t *want = malloc(n + 1);
  CHECK(want);
  size_t w = decode(p, n, want);
  CHECK(one.len <= w && memcmp(one.out, want, one.len) == 0);
  if (!one.failed && w - one.len > 3) {
    /* Only a held character (at most 3 bytes) may be missing, and only at the end. */
    abort();
  }
  free(want);
  free(one.out);
  free(cut.out);
  return 0;
}
