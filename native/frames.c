/* Frame header tracking; see frames.h and src/gateway/frames.ts (same rules, same counts). */
#include "frames.h"

#include <string.h>
#include <sys/random.h>

void tracker_init(tracker_t *t) {
  memset(t, 0, sizeof *t);
  t->close_code = -1;
}

static size_t extended_length(uint8_t b1) {
  uint8_t len7 = b1 & 0x7f;
  return len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
}

static void finish_capture(tracker_t *t) {
  t->capturing = 0;
  uint8_t n = t->cap_filled;
  if (t->masked)
    for (uint8_t i = 0; i < n; i++) t->cap[i] ^= t->mask[i & 3];
  t->close_code = n >= 2 ? (t->cap[0] << 8) | t->cap[1] : 1005;
  t->reason_len = n > 2 ? n - 2 : 0;
  if (t->reason_len) memcpy(t->reason, t->cap + 2, t->reason_len);
}

size_t tracker_consume(tracker_t *t, const uint8_t *p, size_t len, int stop) {
  size_t off = 0;
  while (off < len) {
    if (t->remaining > 0) {
      uint64_t take = t->remaining < len - off ? t->remaining : len - off;
      if (t->capturing && t->cap_filled < t->cap_len) {
        size_t n = t->cap_len - t->cap_filled;
        if (n > take) n = take;
        memcpy(t->cap + t->cap_filled, p + off, n);
        t->cap_filled += n;
      }
      t->remaining -= take;
      off += take;
      if (t->remaining == 0 && t->capturing) finish_capture(t);
      if (stop && t->remaining == 0) return off;
      continue;
    }
    /* A header: 2 bytes, +2/+8 extended length, +4 mask key; it may span reads. */
    uint8_t joined[14];
    const uint8_t *h;
    size_t avail;
    size_t prev = t->hlen;
    if (prev) {
      size_t n = len - off < 14u - prev ? len - off : 14u - prev;
      memcpy(joined, t->hdr, prev);
      memcpy(joined + prev, p + off, n);
      h = joined;
      avail = prev + n;
    } else {
      h = p + off;
      avail = len - off;
    }
    size_t hl = avail < 2 ? 14 : 2 + extended_length(h[1]) + ((h[1] & 0x80) ? 4 : 0);
    if (avail < hl) {
      /* Everything left is header: keep it for the next read (fits: hl <= 14). */
      memcpy(t->hdr + prev, p + off, len - off);
      t->hlen = (uint8_t)(prev + len - off);
      return len;
    }
    uint8_t opcode = h[0] & 0x0f;
    uint8_t len7 = h[1] & 0x7f;
    uint64_t payload = len7;
    if (len7 == 126) payload = ((uint64_t)h[2] << 8) | h[3];
    else if (len7 == 127) {
      payload = 0;
      for (int i = 2; i < 10; i++) payload = (payload << 8) | h[i];
    }
    t->frames++;
    if (opcode < 8 && (h[0] & 0x80)) t->messages++;
    t->hlen = 0;
    off += hl - prev;
    if (opcode == OP_CLOSE && t->close_code < 0) {
      t->capturing = 1;
      t->masked = (h[1] & 0x80) != 0;
      if (t->masked) memcpy(t->mask, h + hl - 4, 4);
      t->cap_len = payload < 125 ? (uint8_t)payload : 125;
      t->cap_filled = 0;
    }
    t->remaining = payload;
    if (payload == 0 && t->capturing) finish_capture(t);
    if (stop && t->remaining == 0) return off;
  }
  return off;
}

size_t control_frame(uint8_t *out, int opcode, const uint8_t *body, size_t n, int masked) {
  out[0] = 0x80 | opcode;
  out[1] = (masked ? 0x80 : 0) | (uint8_t)n;
  if (!masked) {
    memcpy(out + 2, body, n);
    return 2 + n;
  }
  uint8_t *key = out + 2;
  /* Frames to a server are masked with a fresh key (RFC 6455 5.3); getrandom never blocks after boot. */
  if (getrandom(key, 4, GRND_NONBLOCK) != 4) memset(key, 0x5a, 4);
  for (size_t i = 0; i < n; i++) out[6 + i] = body[i] ^ key[i & 3];
  return 6 + n;
}

size_t empty_control_frame(uint8_t *out, int opcode, int masked) { return control_frame(out, opcode, NULL, 0, masked); }

size_t close_frame(uint8_t *out, int code, const char *reason, size_t reason_len, int masked) {
  uint8_t body[125];
  body[0] = (uint8_t)(code >> 8);
  body[1] = (uint8_t)code;
  size_t n = reason_len;
  if (n > 123) {
    /* Cut on a character boundary so the reason stays valid UTF-8 (5.5.1), as closePayload() does. */
    size_t end = 120;
    while (end > 0 && (reason[end] & 0xc0) == 0x80) end--;
    memcpy(body + 2, reason, end);
    memcpy(body + 2 + end, "...", 3);
    n = end + 3;
  } else {
    memcpy(body + 2, reason, n);
  }
  return control_frame(out, OP_CLOSE, body, 2 + n, masked);
}

int utf8_step(utf8_t *u, uint8_t c) {
  if (u->need) {
    if (c < u->lo || c > u->hi) return 0;
    u->need--;
    u->lo = 0x80;
    u->hi = 0xbf;
    return 1;
  }
  if (c < 0x80) return 1;
  u->lo = 0x80;
  u->hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) u->need = 1;
  else if (c >= 0xe0 && c <= 0xef) {
    u->need = 2;
    /* E0: no overlong form; ED: no surrogate (U+D800..U+DFFF). */
    if (c == 0xe0) u->lo = 0xa0;
    if (c == 0xed) u->hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    u->need = 3;
    /* F0: no overlong form; F4: nothing past U+10FFFF. */
    if (c == 0xf0) u->lo = 0x90;
    if (c == 0xf4) u->hi = 0x8f;
  } else {
    return 0;
  }
  return 1;
}
