/*
 * libFuzzer target for bridge.c's parser of client frames (built and run by
 * test/reliability/native-fuzz.test.ts, with AddressSanitizer and UndefinedBehaviorSanitizer).
 *
 * bridge.c is compiled into this file, so its parse() (static) is called as pump_up calls it:
 * each read in a buffer of its own behind 4 bytes of room, parsed and unmasked in place (the
 * first read, now and then, with none: the bytes Node read with the handshake are parsed so).
 * Input: one byte of options (text passed as bytes or refused; the handshake's bytes or not;
 * how the stream is cut), then the bytes a client sends. A reference decoder here, written
 * plainly over the whole stream with its own UTF-8 check, says what should happen: the bytes
 * for TCP (the unmasked payloads of the data frames, in order, up to the first close frame)
 * and the verdict (refused with a code, or a close frame with its code). Its rules are
 * `ws`'s, checked at the point `ws` checks them (the first two bytes, the length, the whole
 * frame), but for text: UTF-8 is checked byte by byte as the message streams (`ws` checks a
 * message once it is whole), and where text is refused, it is at the first frame (1003). What must hold, beyond no sanitizer report, for the stream in
 * one read and cut into many:
 *  - the verdict is the reference's: refused or not, closed or not, the same code;
 *  - a stream not refused sent the reference's bytes, but for a text message's last
 *    incomplete character, held back; a refused one sent a prefix of them;
 *  - the close frame queued (code and reason) is the same however the stream was cut.
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

/*
 * Room in front of each read, as pump_up leaves it (4: a held character fits), and bytes
 * allocated past its end (none: a read past the data is seen). A test builds it with no room,
 * and with 1 byte of room and 8 to spare, to see ASan and the property checks bite on a
 * parser whose output overtakes its input.
 */
#ifndef FUZZ_ROOM
#define FUZZ_ROOM 4
#endif
#ifndef FUZZ_PAD
#define FUZZ_PAD 0
#endif

typedef struct {
  uint8_t *out;
  size_t len;
  int done, failed, got_close, first_code;
  uint8_t close[CONTROL_MAX];
  uint8_t close_len;
  uint8_t held_len;
} result_t;

/* The stream through parse(), in reads cut by `seed` (0: one read, as far as READ_MAX allows); `preload`: the first with no room. */
static void run(const uint8_t *p, size_t n, int text_as_binary, int preload, uint32_t seed, result_t *r) {
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
    /* As pump_up reads: room in front, the read after it; as take_in parses the handshake's bytes: no room. */
    uint32_t room = preload && off == 0 ? 0 : FUZZ_ROOM;
    uint8_t *buf = malloc(room + (size_t)len + FUZZ_PAD);
    CHECK(buf);
    memcpy(buf + room, p + off, len);
    uint32_t out = parse(&t, buf, room, room + len);
    CHECK(out <= room + len);
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
  r->held_len = b->in_message && b->msg_text ? b->held_len : 0;
  bridge_free(&t);
  for (int s = 0; s < 2; s++) free(t.d[s].buf);
}

/*
 * UTF-8 (RFC 3629) by code points, written apart from frames.c's utf8_step: a character is
 * refused at the first byte after which no valid code point can come of it (an overlong
 * form, a surrogate, past U+10FFFF), as the bridge refuses it.
 */
typedef struct {
  int need, total;
  uint32_t cp;
} u8_t;

static int u8_step(u8_t *u, uint8_t c) {
  if (!u->need) {
    u->total = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (u->total == 0) return 0;
    u->need = u->total - 1;
    u->cp = u->total == 1 ? c : c & (0x7f >> u->total);
    return 1;
  }
  if ((c & 0xc0) != 0x80) return 0;
  u->cp = (u->cp << 6) | (c & 0x3f);
  u->need--;
  /* The smallest and the largest code point this start can still become. */
  uint32_t lo = u->cp << (6 * u->need), hi = lo | ((1u << (6 * u->need)) - 1);
  uint32_t min = u->total == 2 ? 0x80 : u->total == 3 ? 0x800 : 0x10000;
  return hi >= min && lo <= 0x10ffff && !(lo >= 0xd800 && hi <= 0xdfff);
}

typedef struct {
  uint8_t *out;
  size_t len;
  int failed, got_close, code;
} verdict_t;

static int refuse(verdict_t *v, int code) {
  v->failed = 1;
  v->code = code;
  return 0;
}

/* What the bridge should make of the whole stream: the reference. */
static void reference(const uint8_t *p, size_t n, int text_as_binary, verdict_t *v) {
  memset(v, 0, sizeof *v);
  v->code = -1;
  v->out = malloc(n + 1);
  CHECK(v->out);
  int in_message = 0, text = 0;
  uint64_t msg_len = 0;
  uint32_t fragments = 0;
  u8_t u = {0};
  size_t i = 0;
  while (i + 2 <= n) {
    uint8_t b0 = p[i], b1 = p[i + 1], op = b0 & 0x0f, len7 = b1 & 0x7f;
    int fin = (b0 & 0x80) != 0;
    /* The first two bytes. */
    if (b0 & 0x70) return (void)refuse(v, 1002);
    if ((op > 2 && op < 8) || op > 10) return (void)refuse(v, 1002);
    if (op >= 8 && (!fin || len7 > 125 || (op == OP_CLOSE && len7 == 1))) return (void)refuse(v, 1002);
    if (op == 0 && !in_message) return (void)refuse(v, 1002);
    if ((op == 1 || op == 2) && in_message) return (void)refuse(v, 1002);
    if (!(b1 & 0x80)) return (void)refuse(v, 1002);
    size_t hl = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
    if (i + hl - 4 > n) break;
    /* The length, before the mask key. */
    uint64_t len = len7;
    if (len7 == 126) len = ((uint64_t)p[i + 2] << 8) | p[i + 3];
    if (len7 == 127) {
      len = 0;
      for (int k = 2; k < 10; k++) len = (len << 8) | p[i + k];
      if (len > (1ull << 53) - 1) return (void)refuse(v, 1009);
    }
    if (op == 1 || op == 2) {
      in_message = 1;
      text = op == 1;
      msg_len = 0;
      fragments = 0;
      memset(&u, 0, sizeof u);
    }
    if (op < 8 && (msg_len += len) > MAX_MESSAGE) return (void)refuse(v, 1009);
    if (op < 8 && ++fragments > MAX_FRAGMENTS) return (void)refuse(v, 1008);
    if (op == 1 && !text_as_binary) return (void)refuse(v, 1003);
    if (i + hl > n) break;
    const uint8_t *mask = p + i + hl - 4;
    i += hl;
    size_t have = len < n - i ? (size_t)len : n - i;
    uint8_t payload[125];
    if (op >= 8) {
      for (size_t k = 0; k < have; k++) payload[k] = p[i + k] ^ mask[k & 3];
      i += have;
      if (have < len) break;
      if (op != OP_CLOSE) continue;
      int code = 1005;
      if (len >= 2) {
        code = (payload[0] << 8) | payload[1];
        if (!((code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006) || (code >= 3000 && code <= 4999))) return (void)refuse(v, 1002);
        u8_t u = {0};
        for (size_t k = 2; k < len; k++)
          if (!u8_step(&u, payload[k])) return (void)refuse(v, 1007);
        if (u.need) return (void)refuse(v, 1007);
      }
      v->got_close = 1;
      v->code = code;
      break;
    }
    for (size_t k = 0; k < have; k++) {
      uint8_t c = p[i + k] ^ mask[k & 3];
      if (text && !u8_step(&u, c)) return (void)refuse(v, 1007);
      v->out[v->len++] = c;
    }
    i += have;
    if (have < len) break;
    if (fin) {
      if (text && u.need) return (void)refuse(v, 1007);
      in_message = 0;
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int text_as_binary = data[0] & 1;
  int preload = (data[0] >> 1) & 1;
  uint32_t seed = (data[0] >> 2) + 1;
  const uint8_t *p = data + 1;
  size_t n = size - 1;

  result_t one, cut;
  run(p, n, text_as_binary, preload, 0, &one);
  run(p, n, text_as_binary, preload, seed, &cut);
  verdict_t want;
  reference(p, n, text_as_binary, &want);

  for (int k = 0; k < 2; k++) {
    const result_t *r = k ? &cut : &one;
    /* The reference's verdict. */
    CHECK(r->failed == want.failed && r->got_close == want.got_close && r->done == (want.failed || want.got_close));
    CHECK(r->first_code == want.code);
    /* Its bytes: all of them but a held character, or a prefix when refused. */
    CHECK(r->len <= want.len && memcmp(r->out, want.out, r->len) == 0);
    if (!want.failed) CHECK(r->len + r->held_len == want.len);
  }
  /* The same close frame queued, however the stream was cut. */
  CHECK(one.close_len == cut.close_len && memcmp(one.close, cut.close, one.close_len) == 0);
  free(want.out);
  free(one.out);
  free(cut.out);
  return 0;
}
