/*
 * WebSocket frame boundaries, read from frame headers only (RFC 6455 5.2):
 * the C twin of src/gateway/frames.ts. The tunnel forwards bytes as they come
 * and feeds them here to learn where frames end, so it can count frames and
 * messages and inject a control frame without corrupting the stream.
 */
#ifndef PORTHOLE_FRAMES_H
#define PORTHOLE_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#define OP_CLOSE 0x8
#define OP_PING 0x9
/* A control frame: 2 header bytes, a 4-byte mask key, at most 125 payload bytes. */
#define CONTROL_MAX 131

typedef struct {
  uint64_t frames;
  uint64_t messages;
  /* Code of the first close frame seen this way (1005 if it had none), -1 before. */
  int close_code;
  uint8_t reason_len;
  char reason[124];
  /* Payload bytes left in the current frame. */
  uint64_t remaining;
  /* Bytes of a header split across reads (at most 14). */
  uint8_t hlen;
  uint8_t hdr[14];
  /* A close frame's payload being collected (<= 125 bytes), unmasked at the end. */
  uint8_t capturing, masked, cap_len, cap_filled;
  uint8_t mask[4];
  uint8_t cap[125];
} tracker_t;

void tracker_init(tracker_t *t);
static inline int tracker_at_boundary(const tracker_t *t) { return t->remaining == 0 && t->hlen == 0; }
/* Reads every byte (stop = 0), or up to the end of the frame in progress (stop = 1); returns bytes read. */
size_t tracker_consume(tracker_t *t, const uint8_t *p, size_t len, int stop);
/* Writes a close frame (code + reason cut to 123 bytes on a UTF-8 boundary) into out; returns its length. */
size_t close_frame(uint8_t *out, int code, const char *reason, size_t reason_len, int masked);
/* Writes a control frame with a body (<= 125 bytes); returns its length. */
size_t control_frame(uint8_t *out, int opcode, const uint8_t *body, size_t n, int masked);
/* UTF-8 checked a byte at a time (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF). */
typedef struct {
  uint8_t need, lo, hi;
} utf8_t;
static inline void utf8_init(utf8_t *u) { u->need = 0; }
/* 0 when c cannot come next. */
int utf8_step(utf8_t *u, uint8_t c);
/* Writes an empty control frame (a ping); returns its length. */
size_t empty_control_frame(uint8_t *out, int opcode, int masked);

#endif
