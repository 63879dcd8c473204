/*
 * The WebSocket->TCP bridge on the loop thread: the C twin of
 * src/gateway/bridge-connection.ts, for a plain TCP client (TLS and HTTP/2
 * streams, and the old `base64` subprotocol, stay in JavaScript).
 *
 * Towards the client, each read from TCP becomes one binary frame. The bytes
 * go through a pipe with splice(2): TCP's pages move into the pipe and on to
 * the client's socket without being copied into this process, and only the
 * 2-10 byte frame header is written from user space. A bridge borrows a pipe
 * only while bytes are in it (a pool keeps a few); when none can be made (no
 * fd left) it reads into its buffer behind a reserved header instead.
 *
 * From the client, frames are parsed and unmasked in place in the direction's
 * buffer (the payload is never longer than the frame it came in) and only the
 * payload is written to TCP: messages are streamed, never held whole.
 *
 * The rules are those of the JavaScript bridge and RFC 6455: a protocol error
 * is answered with a close frame with its code (1002, 1003, 1007, 1009), a
 * ping with a pong, a close frame with the same close frame; the server
 * closes its TCP connection first once both close frames have passed; the
 * target's FIN becomes a close frame with 1000 after everything it sent, its
 * failure (a reset, a timeout, any error) one with 1014 that names it.
 */
#define _GNU_SOURCE
#include "tunnel.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/* One read from TCP into a pipe: at most this many bytes, one frame. */
#define PIPE_BYTES (1 << 20)
#define PIPE_POOL 16
/* The JavaScript bridge's limit on one client message (bridge.ts MAX_CLIENT_MESSAGE), kept for the same answers. */
#define MAX_MESSAGE (16ull * 1024 * 1024)
/* And `ws`'s on the frames of one message (its server's maxFragments). */
#define MAX_FRAGMENTS 16384
/* How long a close may take in all (as `ws`), before the grace period after our close frame is out. */
#define CLOSE_TIMEOUT_MS 30000
/* Room kept in front of a payload read into the buffer: the longest server frame header. */
#define HEADROOM 10
#define READ_MAX 65536

enum { BY_CLIENT = 0, BY_UPSTREAM = 1, BY_GATEWAY = 2 };

typedef struct bridge {
  char *app, *eof_reason, *reset_reason, *text_reason;
  char *timeout_reason, *failed_before, *failed_after;
  uint8_t text_as_binary;

  /* The client's frame being parsed: its header (collected across reads), then its payload. */
  uint8_t hdr[14];
  uint8_t hlen, hneed;
  /* Its length was read and checked (header_length): the mask key is what is left of the header. */
  uint8_t len_done;
  uint8_t in_payload, opcode, fin;
  uint64_t remaining;
  uint8_t mask[4];
  uint8_t mpos;
  /* A data message in progress (fragments), its kind and size so far. */
  uint8_t in_message, msg_text;
  uint64_t msg_len;
  uint32_t fragments;
  utf8_t utf8;
  /* The start of a character cut at the end of a fragment or a read: held until it completes. */
  uint8_t held[4];
  uint8_t held_len;
  /* A control frame's payload, unmasked. */
  uint8_t cap[125];
  uint8_t cap_len;
  /* Bytes read from the client still to parse: the handshake's leftovers, before adoption. */
  uint8_t preloaded;

  /* Towards the client: the frame header (and control frames) in d[1].buf, then `piped` payload bytes in the pipe. */
  int pipe[2];
  uint32_t piped;
  /* A ping or a pong waiting for a frame boundary; our close frame waiting likewise. */
  uint8_t ctl[CONTROL_MAX];
  uint8_t ctl_len;
  uint8_t close[CONTROL_MAX];
  uint8_t close_len;

  uint8_t closing;     /* our close frame is queued */
  uint8_t close_sent;  /* ... and written */
  uint8_t got_close;   /* the client's close frame arrived */
  uint8_t client_done; /* nothing the client sends matters any more (close frame, protocol error, EOF) */
  uint8_t failed;      /* we fail the connection (a protocol error, text to a binary bridge): TCP ends once our close is out */
  uint8_t client_eof;  /* the client's FIN (or a failed socket) */
  uint8_t client_shut; /* our FIN to the client (or a failed socket) */
  uint8_t client_dead; /* the client's socket failed: nothing more is written to it */
  uint8_t tcp_eof, tcp_shut, tcp_dead;

  int first_by, first_code;
  /* Not a C string: a close reason may hold U+0000. */
  char *first_reason;
  size_t first_reason_len;
} bridge_t;

static int pool[PIPE_POOL][2];
static int pooled;
/* PORTHOLE_SPLICE=0, or a kernel (or sandbox) that refused splice: TCP's bytes are read into the buffer instead. */
static int no_splice = -1;
/* Where bytes nobody will forward are read to (after a close, or a failed peer). */
static uint8_t sink[READ_MAX];

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }
static int own_room(direction_t *d, size_t need);

int bridge_init(tunnel_t *t, const bridge_opts_t *o) {
  if (no_splice < 0) {
    /* Read once, on the JavaScript thread (the loop thread must not race a setenv). */
    const char *v = getenv("PORTHOLE_SPLICE");
    __atomic_store_n(&no_splice, v && strcmp(v, "0") == 0, __ATOMIC_RELAXED);
  }
  bridge_t *b = calloc(1, sizeof *b);
  if (!b) return ENOMEM;
  b->app = dup_or_empty(o->app);
  b->eof_reason = dup_or_empty(o->eof_reason);
  b->reset_reason = dup_or_empty(o->reset_reason);
  b->text_reason = dup_or_empty(o->text_reason);
  b->timeout_reason = dup_or_empty(o->timeout_reason);
  b->failed_before = dup_or_empty(o->failed_before);
  b->failed_after = dup_or_empty(o->failed_after);
  b->text_as_binary = (uint8_t)(o->text_as_binary != 0);
  b->pipe[0] = b->pipe[1] = -1;
  b->first_by = -1;
  b->first_code = -1;
  t->bridge = b;
  if (!b->app || !b->eof_reason || !b->reset_reason || !b->text_reason || !b->timeout_reason || !b->failed_before || !b->failed_after) return ENOMEM;
  if (o->preface_len) {
    /* The client's 101: the first bytes written to it, once adopted. */
    direction_t *d = &t->d[SIDE_UPSTREAM];
    if (own_room(d, o->preface_len)) return ENOMEM;
    memcpy(d->buf, o->preface, o->preface_len);
    d->tail = (uint32_t)o->preface_len;
  }
  /* Frames to the client are the bridge's own: unmasked. */
  t->d[0].mask_out = 0;
  return 0;
}

void bridge_free(tunnel_t *t) {
  bridge_t *b = t->bridge;
  if (!b) return;
  if (b->pipe[0] >= 0) {
    close(b->pipe[0]);
    close(b->pipe[1]);
  }
  free(b->app);
  free(b->eof_reason);
  free(b->reset_reason);
  free(b->text_reason);
  free(b->timeout_reason);
  free(b->failed_before);
  free(b->failed_after);
  free(b->first_reason);
  free(b);
  t->bridge = NULL;
}

static uint8_t frame_header(uint8_t *out, uint64_t n) {
  out[0] = 0x82;
  if (n < 126) {
    out[1] = (uint8_t)n;
    return 2;
  }
  if (n < 65536) {
    out[1] = 126;
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(n >> (56 - 8 * i));
  return 10;
}

/* A chunk of TCP bytes as one frame in d[1]'s buffer, behind its header; counted as sent. */
static void count_out(tunnel_t *t, uint64_t n) {
  direction_t *d = &t->d[1];
  __atomic_store_n(&d->bytes, d->bytes + n, __ATOMIC_RELAXED);
  __atomic_store_n(&d->tr.frames, d->tr.frames + 1, __ATOMIC_RELAXED);
  __atomic_store_n(&d->tr.messages, d->tr.messages + 1, __ATOMIC_RELAXED);
}

/* d's buffer (owned, not pooled) with room for `need` bytes after its tail and a read after that. */
static int own_room(direction_t *d, size_t need) {
  size_t cap = (size_t)d->tail + need + HEADROOM + READ_MAX + 4 * CONTROL_MAX;
  uint8_t *buf = realloc(d->buf, cap);
  if (!buf) return ENOMEM;
  d->buf = buf;
  d->own = 1;
  return 0;
}

int bridge_preload(tunnel_t *t, int side, const uint8_t *p, size_t len) {
  direction_t *d = &t->d[side];
  /* On the JavaScript thread, before adoption: its own buffer, not the loop's pool. */
  if (!len || own_room(d, len + HEADROOM)) return len ? ENOMEM : 0;
  if (side == SIDE_CLIENT) {
    /* Parsed on the loop thread once adopted (bridge_pump). */
    memcpy(d->buf + d->tail, p, len);
    d->tail += (uint32_t)len;
    t->bridge->preloaded = 1;
    return 0;
  }
  /* After the 101 (bridge_init), one frame. */
  d->tail += frame_header(d->buf + d->tail, len);
  memcpy(d->buf + d->tail, p, len);
  d->tail += (uint32_t)len;
  count_out(t, len);
  return 0;
}

static void record(bridge_t *b, int by, int code, const char *reason, size_t len) {
  if (b->first_by >= 0) return;
  b->first_by = by;
  b->first_code = code;
  if (!reason) return;
  b->first_reason = malloc(len ? len : 1);
  if (!b->first_reason) return;
  memcpy(b->first_reason, reason, len);
  b->first_reason_len = len;
}

/* Queues our close frame (sent at the next frame boundary); the first close recorded is the one reported. */
static void begin_close(tunnel_t *t, int by, int code, const char *reason, size_t len) {
  bridge_t *b = t->bridge;
  record(b, by, code, reason, len);
  if (b->closing) return;
  b->closing = 1;
  if (code == 1005) {
    b->close[0] = 0x80 | OP_CLOSE;
    b->close[1] = 0;
    b->close_len = 2;
  } else {
    b->close_len = (uint8_t)close_frame(b->close, code, reason ? reason : "", reason ? len : 0, 0);
  }
  uint64_t cap = now_mono + CLOSE_TIMEOUT_MS;
  if (!t->kill_at || cap < t->kill_at) due(t->kill_at = cap);
}

static void protocol_error(tunnel_t *t, int code, const char *reason) {
  t->bridge->client_done = 1;
  t->bridge->failed = 1;
  begin_close(t, BY_GATEWAY, code, reason, strlen(reason));
}

static void take_pipe(bridge_t *b) {
  if (b->pipe[0] >= 0) return;
  if (pooled) {
    pooled--;
    b->pipe[0] = pool[pooled][0];
    b->pipe[1] = pool[pooled][1];
    return;
  }
  if (pipe2(b->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
    b->pipe[0] = b->pipe[1] = -1;
    return;
  }
  /* 1 MiB: fewer, larger frames. Refused (pipe-max-size) only costs frame count. */
  fcntl(b->pipe[0], F_SETPIPE_SZ, PIPE_BYTES);
}

static void give_pipe(bridge_t *b) {
  if (b->pipe[0] < 0) return;
  /* A pipe with bytes still in it cannot serve another bridge. */
  if (b->piped == 0 && pooled < PIPE_POOL) {
    pool[pooled][0] = b->pipe[0];
    pool[pooled][1] = b->pipe[1];
    pooled++;
  } else {
    close(b->pipe[0]);
    close(b->pipe[1]);
  }
  b->pipe[0] = b->pipe[1] = -1;
  b->piped = 0;
}

static void check_done(tunnel_t *t) {
  bridge_t *b = t->bridge;
  if (b->client_eof && b->client_shut && b->tcp_eof && b->tcp_shut) finish(t);
}

/* The server closes its TCP connection first: once our close frame is out and the client's came (or it left). */
static void maybe_shut_client(tunnel_t *t) {
  bridge_t *b = t->bridge;
  /*
   * After the client's close (or its FIN); or at once when we fail the connection: its
   * answer is not waited for (RFC 6455 7.1.7), as the JavaScript bridge (`ws`) does not.
   */
  if (b->client_shut || !b->close_sent || !(b->got_close || b->client_eof || b->failed)) return;
  shutdown(t->fd[SIDE_CLIENT], SHUT_WR);
  b->client_shut = 1;
}

/*
 * TCP gets its FIN once what the client sent before is written: when the
 * client is done, or when TCP ended (as Node ends a socket that is not
 * half-open: what the client sends after that is dropped).
 */
static void maybe_shut_tcp(tunnel_t *t) {
  bridge_t *b = t->bridge;
  direction_t *up = &t->d[0];
  if (b->tcp_shut || !(b->client_done || b->tcp_eof) || up->head < up->tail) return;
  shutdown(t->fd[SIDE_UPSTREAM], SHUT_WR);
  b->tcp_shut = 1;
}

/* The client left without a close handshake: TCP gets its FIN, and the grace period to answer it. */
static void arm_grace(tunnel_t *t) {
  uint64_t at = now_mono + t->grace_ms;
  if (!t->kill_at || at < t->kill_at) due(t->kill_at = at);
}

static void client_failed(tunnel_t *t) {
  bridge_t *b = t->bridge;
  arm_grace(t);
  record(b, BY_CLIENT, -1, "connection cut without a close frame", 36);
  b->client_dead = b->client_done = b->client_eof = b->client_shut = 1;
  t->d[1].head = t->d[1].tail = 0;
  give_pipe(b);
}

/*
 * The close reason for TCP failing with errno `err`, as the JavaScript bridge words the same
 * failure (upstreamError in src/errors.ts): a reset (ECONNRESET, or EPIPE and ECONNABORTED,
 * which say the same), a timeout, or any other error by the name Node gives it as `code`
 * (libuv's: EHOSTUNREACH, ENETUNREACH…).
 */
static const char *tcp_error_reason(bridge_t *b, int err, char *buf, size_t cap) {
  switch (err) {
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED:
      return b->reset_reason;
    case ETIMEDOUT:
      return b->timeout_reason;
  }
  char name[64];
  uv_err_name_r(uv_translate_sys_error(err), name, sizeof name);
  snprintf(buf, cap, "%s%s%s", b->failed_before, name, b->failed_after);
  return buf;
}

static void tcp_gone(tunnel_t *t, int err) {
  bridge_t *b = t->bridge;
  if (err) {
    /*
     * Nothing can be written to it any more: what the client sends is dropped. Also when a
     * write fails after the target's FIN (it reset later): the bytes waiting would be retried
     * forever, spinning the loop thread and stalling every connection on it.
     */
    b->tcp_dead = b->tcp_shut = 1;
    t->d[0].head = t->d[0].tail = 0;
  }
  if (b->tcp_eof) return;
  b->tcp_eof = 1;
  if (err) {
    char buf[512];
    const char *reason = tcp_error_reason(b, err, buf, sizeof buf);
    begin_close(t, BY_UPSTREAM, 1014, reason, strlen(reason));
  } else {
    begin_close(t, BY_UPSTREAM, 1000, b->eof_reason, strlen(b->eof_reason));
  }
}

/* A whole client frame has been read. */
static void frame_done(tunnel_t *t) {
  bridge_t *b = t->bridge;
  b->in_payload = 0;
  switch (b->opcode) {
    case 0x0:
    case 0x1:
    case 0x2:
      if (!b->fin) return;
      if (b->msg_text && b->utf8.need) {
        protocol_error(t, 1007, "invalid UTF-8 sequence");
        return;
      }
      b->in_message = 0;
      /* TCP is shut (the target left): the message was dropped, not passed on, and is not counted (as in bridge-connection.ts). */
      if (b->tcp_shut) return;
      __atomic_store_n(&t->d[0].tr.frames, t->d[0].tr.frames + 1, __ATOMIC_RELAXED);
      __atomic_store_n(&t->d[0].tr.messages, t->d[0].tr.messages + 1, __ATOMIC_RELAXED);
      return;
    case OP_CLOSE: {
      /* Empty, or a code first: a 1-byte payload was refused at its header (header_start). */
      int code = 1005;
      if (b->cap_len >= 2) {
        code = (b->cap[0] << 8) | b->cap[1];
        int valid = (code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006) || (code >= 3000 && code <= 4999);
        if (!valid) {
          char why[48];
          snprintf(why, sizeof why, "invalid status code %d", code);
          protocol_error(t, 1002, why);
          return;
        }
        utf8_t u;
        utf8_init(&u);
        int ok = 1;
        for (int i = 2; i < b->cap_len && ok; i++) ok = utf8_step(&u, b->cap[i]);
        if (!ok || u.need) {
          protocol_error(t, 1007, "invalid UTF-8 sequence");
          return;
        }
      }
      const char *reason = (const char *)b->cap + 2;
      size_t len = b->cap_len > 2 ? b->cap_len - 2u : 0;
      b->got_close = b->client_done = 1;
      /* The reply carries the same code (and reason), as `ws` answers; an empty reason is none, as bridge-connection.ts logs it. */
      begin_close(t, BY_CLIENT, code, len ? reason : NULL, len);
      /* An answer to our close frame, already out: both have passed, the FIN goes now (not at the grace period's end). */
      maybe_shut_client(t);
      return;
    }
    case OP_PING:
      /* Only the latest ping needs its pong (RFC 6455 5.5.3). */
      if (!b->closing) b->ctl_len = (uint8_t)control_frame(b->ctl, 0xA, b->cap, b->cap_len, 0);
      return;
    default: /* a pong: nothing to do */
      return;
  }
}

/*
 * A frame's length has been read (header_start passed its first two bytes; the mask key may
 * still be coming): checked as `ws` checks it, before the mask key. 0 when the connection is
 * closing over it.
 */
static int header_length(tunnel_t *t) {
  bridge_t *b = t->bridge;
  uint8_t *h = b->hdr;
  uint8_t len7 = h[1] & 0x7f;
  uint64_t len = len7;
  if (len7 == 126) len = ((uint64_t)h[2] << 8) | h[3];
  else if (len7 == 127) {
    /* Over 2^53 - 1, the top bit set included: 1009, as `ws` (the JavaScript bridge) answers it. */
    if (h[2] || h[3] > 0x1f) return protocol_error(t, 1009, "Unsupported WebSocket frame: payload length > 2^53 - 1"), 0;
    len = 0;
    for (int i = 2; i < 10; i++) len = (len << 8) | h[i];
  }
  b->fin = (h[0] & 0x80) != 0;
  b->opcode = h[0] & 0x0f;
  int starts = b->opcode == 1 || b->opcode == 2;
  if (starts) {
    b->in_message = 1;
    b->msg_text = b->opcode == 1;
    b->msg_len = 0;
    b->fragments = 0;
    b->held_len = 0;
    utf8_init(&b->utf8);
  }
  if (b->opcode < 8) {
    b->msg_len += len;
    if (b->msg_len > MAX_MESSAGE) return protocol_error(t, 1009, "Max payload size exceeded"), 0;
    /* `ws` counts a frame once its payload is in; refused here, the frame's bytes do not reach TCP either. */
    if (++b->fragments > MAX_FRAGMENTS) return protocol_error(t, 1008, "Too many message fragments"), 0;
  }
  /* Refused at its first frame, unread (`ws` would first read it whole: a text message it refuses for its size or its UTF-8 gets 1009 or 1007 there). */
  if (starts && b->msg_text && !b->text_as_binary) {
    b->client_done = b->failed = 1;
    begin_close(t, BY_GATEWAY, 1003, b->text_reason, strlen(b->text_reason));
    return 0;
  }
  b->remaining = len;
  b->len_done = 1;
  return 1;
}

/* The header is complete, its mask key included: the payload comes next. */
static void header_done(tunnel_t *t) {
  bridge_t *b = t->bridge;
  memcpy(b->mask, b->hdr + b->hneed - 4, 4);
  b->mpos = 0;
  b->cap_len = 0;
  b->in_payload = 1;
  b->hlen = b->hneed = 0;
  b->len_done = 0;
  if (b->remaining == 0) frame_done(t);
}

/*
 * The first two bytes of a header: what they break is refused now, before the rest of the
 * header comes, as `ws` reads a header (all 1002).
 */
static int header_start(tunnel_t *t) {
  bridge_t *b = t->bridge;
  uint8_t *h = b->hdr;
  if (h[0] & 0x70) return protocol_error(t, 1002, "RSV1, RSV2 and RSV3 must be clear"), 0;
  uint8_t op = h[0] & 0x0f;
  uint8_t len7 = h[1] & 0x7f;
  if ((op > 2 && op < 8) || op > 10) {
    char why[32];
    snprintf(why, sizeof why, "invalid opcode %d", op);
    return protocol_error(t, 1002, why), 0;
  }
  if (op >= 8) {
    if (!(h[0] & 0x80)) return protocol_error(t, 1002, "FIN must be set"), 0;
    /* At most 125 bytes, in the 7-bit form (RFC 6455 5.5): a 16- or 64-bit length is refused whatever it says. */
    if (len7 > 125) return protocol_error(t, 1002, "invalid payload length for a control frame"), 0;
    /* A close frame's payload is empty or starts with a 2-byte code. */
    if (op == OP_CLOSE && len7 == 1) return protocol_error(t, 1002, "invalid payload length 1"), 0;
  } else if (op == 0) {
    if (!b->in_message) return protocol_error(t, 1002, "invalid opcode 0"), 0;
  } else if (b->in_message) {
    return protocol_error(t, 1002, "a new message started inside a fragmented one"), 0;
  }
  if (!(h[1] & 0x80)) return protocol_error(t, 1002, "MASK must be set"), 0;
  b->hneed = (uint8_t)(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4);
  return 1;
}

/* Unmasks n payload bytes from `in` to `out` (out <= in: they may overlap), a word at a time. */
static void unmask(bridge_t *b, uint8_t *out, const uint8_t *in, size_t n) {
  uint8_t m[8];
  for (int i = 0; i < 8; i++) m[i] = b->mask[(b->mpos + i) & 3];
  uint64_t key;
  memcpy(&key, m, 8);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, in + i, 8);
    w ^= key;
    memcpy(out + i, &w, 8);
  }
  for (; i < n; i++) out[i] = in[i] ^ m[i & 7];
  b->mpos = (uint8_t)((b->mpos + n) & 3);
}

/*
 * Text passed on as bytes: the unmasked payload at dst[held..len) is checked,
 * and only whole characters go on, so a message refused for invalid UTF-8
 * sends none of its bad bytes. Returns the bytes to pass on (0 on an error).
 */
static uint32_t whole_characters(tunnel_t *t, uint8_t *dst, uint32_t len) {
  bridge_t *b = t->bridge;
  uint32_t good = 0;
  for (uint32_t i = b->held_len; i < len; i++) {
    if (!utf8_step(&b->utf8, dst[i])) {
      protocol_error(t, 1007, "invalid UTF-8 sequence");
      return 0;
    }
    if (!b->utf8.need) good = i + 1;
  }
  b->held_len = (uint8_t)(len - good);
  memcpy(b->held, dst + good, b->held_len);
  return good;
}

/*
 * Parses n bytes the client sent, at p + in: payloads of data frames are
 * unmasked and packed at the front of p; control frames are acted on.
 * Returns the payload bytes to write to TCP. The output never overtakes
 * the input: a frame's header (6 bytes at least) or the `in` bytes of room
 * a read leaves in front stay between them, room for a held character.
 */
static uint32_t parse(tunnel_t *t, uint8_t *p, uint32_t in, uint32_t n) {
  bridge_t *b = t->bridge;
  uint32_t out = 0;
  while (in < n && !b->client_done) {
    if (!b->in_payload) {
      /* The first two bytes, then the length, then the mask key: each checked as it is complete. */
      uint8_t need = b->hlen < 2 ? 2 : b->len_done ? b->hneed : (uint8_t)(b->hneed - 4);
      uint32_t want = (uint32_t)(need - b->hlen);
      uint32_t take = want < n - in ? want : n - in;
      memcpy(b->hdr + b->hlen, p + in, take);
      b->hlen += (uint8_t)take;
      in += take;
      if (b->hlen < 2) break;
      if (b->hneed == 0 && !header_start(t)) break;
      if (!b->len_done) {
        if (b->hlen < b->hneed - 4) continue;
        if (!header_length(t)) break;
      }
      if (b->hlen < b->hneed) continue;
      header_done(t);
      continue;
    }
    uint32_t take = b->remaining < n - in ? (uint32_t)b->remaining : n - in;
    if (b->opcode >= 8) {
      unmask(b, b->cap + b->cap_len, p + in, take);
      b->cap_len += (uint8_t)take;
    } else if (b->msg_text) {
      memcpy(p + out, b->held, b->held_len);
      unmask(b, p + out + b->held_len, p + in, take);
      uint32_t good = whole_characters(t, p + out, b->held_len + take);
      if (b->client_done) return out;
      out += good;
    } else {
      unmask(b, p + out, p + in, take);
      out += take;
    }
    in += take;
    b->remaining -= take;
    if (b->remaining == 0) frame_done(t);
  }
  return out;
}

/* Parses what was read into d[0]'s buffer: the payloads to write to TCP are left there, counted. */
static void take_in(tunnel_t *t, uint32_t from, uint32_t n) {
  direction_t *d = &t->d[0];
  uint64_t messages = d->tr.messages;
  d->tail = parse(t, d->buf, from, n);
  /*
   * Activity for the idle timer is data, as bridge-connection.ts counts it: not control
   * frames, or a client's automatic pongs to --heartbeat would keep it open forever.
   */
  if (d->tail || d->tr.messages != messages) {
    t->active_mono = now_mono;
    t->active_epoch = now_epoch;
  }
  d->head = 0;
  if (t->bridge->tcp_shut) d->tail = 0;
  if (d->tail) __atomic_store_n(&d->bytes, d->bytes + d->tail, __ATOMIC_RELAXED);
}

/* Client -> TCP: write what is parsed, then read and parse more while TCP keeps up. */
static void pump_up(tunnel_t *t) {
  bridge_t *b = t->bridge;
  direction_t *d = &t->d[0];
  if (b->preloaded) {
    b->preloaded = 0;
    take_in(t, 0, d->tail);
  }
  for (;;) {
    if (t->finished) return;
    if (d->head < d->tail) {
      ssize_t w = send(t->fd[SIDE_UPSTREAM], d->buf + d->head, d->tail - d->head, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          d->blocked = 1;
          return;
        }
        tcp_gone(t, errno);
        continue;
      }
      d->head += (uint32_t)w;
      if (d->head < d->tail) {
        d->blocked = 1;
        return;
      }
      d->head = d->tail = 0;
    }
    d->blocked = 0;
    maybe_shut_tcp(t);
    if (b->client_eof) {
      give_buffer(d);
      return;
    }
    if (!d->readable) {
      give_buffer(d);
      return;
    }
    uint8_t *into = sink;
    if (!b->client_done) {
      take_buffer(d);
      if (!d->buf) return;
      /* Room in front for a character held from the read before (parse). */
      into = d->buf + 4;
    }
    ssize_t n = read(t->fd[SIDE_CLIENT], into, READ_MAX);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        d->readable = 0;
        give_buffer(d);
        return;
      }
      client_failed(t);
      continue;
    }
    if (n == 0) {
      record(b, BY_CLIENT, -1, "connection cut without a close frame", 36);
      b->client_eof = b->client_done = 1;
      maybe_shut_client(t);
      /* A client gone without a close frame gets none: nothing more is written to it. */
      if (!b->got_close) {
        arm_grace(t);
        b->client_dead = b->client_shut = 1;
        t->d[1].head = t->d[1].tail = 0;
        give_pipe(b);
        shutdown(t->fd[SIDE_CLIENT], SHUT_WR);
      }
      continue;
    }
    if (into != sink) take_in(t, 4, 4 + (uint32_t)n);
    if (n < READ_MAX && !t->rdhup[SIDE_CLIENT]) d->readable = 0;
  }
}

/* TCP -> client: write the frame in flight, then control frames at the boundary, then read TCP again. */
static void pump_down(tunnel_t *t) {
  bridge_t *b = t->bridge;
  direction_t *d = &t->d[1];
  int cfd = t->fd[SIDE_CLIENT];
  for (;;) {
    if (t->finished) return;
    if (b->client_dead) {
      d->head = d->tail = 0;
      give_pipe(b);
    }
    if (d->head < d->tail) {
      ssize_t w = send(cfd, d->buf + d->head, d->tail - d->head, MSG_NOSIGNAL | MSG_DONTWAIT | (b->piped ? MSG_MORE : 0));
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          d->blocked = 1;
          return;
        }
        client_failed(t);
        continue;
      }
      d->head += (uint32_t)w;
      if (d->head < d->tail) {
        d->blocked = 1;
        return;
      }
      d->head = d->tail = 0;
    }
    if (b->piped) {
      ssize_t w = splice(b->pipe[0], NULL, cfd, NULL, b->piped, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          d->blocked = 1;
          return;
        }
        client_failed(t);
        continue;
      }
      b->piped -= (uint32_t)w;
      if (b->piped) {
        d->blocked = 1;
        return;
      }
    }
    d->blocked = 0;
    /* A frame boundary: the control frames waiting go now, our close frame last. */
    if (!d->sealed && (b->ctl_len || b->close_len)) {
      take_buffer(d);
      if (!d->buf) return;
      /* A pong owed for a ping that came before any close goes before our close frame (RFC 6455 5.5.2), as `ws` answers at once. */
      memcpy(d->buf, b->ctl, b->ctl_len);
      d->tail = b->ctl_len;
      b->ctl_len = 0;
      if (b->close_len) {
        memcpy(d->buf + d->tail, b->close, b->close_len);
        d->tail += b->close_len;
        b->close_len = 0;
        d->sealed = 1;
      }
      continue;
    }
    if (d->sealed && !b->close_sent) {
      b->close_sent = 1;
      /* The grace period starts once our close frame is on the wire: a slow client still gets all before it. */
      uint64_t grace = now_mono + t->grace_ms;
      if (grace < t->kill_at) due(t->kill_at = grace);
      maybe_shut_client(t);
    }
    if (b->tcp_eof) {
      give_buffer(d);
      give_pipe(b);
      check_done(t);
      return;
    }
    if (!d->readable) {
      give_buffer(d);
      give_pipe(b);
      return;
    }
    ssize_t n;
    if (d->sealed || b->client_dead) {
      /* Nothing more may go to the client: TCP is read only to see its end. */
      give_pipe(b);
      n = read(t->fd[SIDE_UPSTREAM], sink, READ_MAX);
    } else {
      if (!__atomic_load_n(&no_splice, __ATOMIC_RELAXED)) take_pipe(b);
      if (b->pipe[0] >= 0) {
        n = splice(t->fd[SIDE_UPSTREAM], NULL, b->pipe[1], NULL, PIPE_BYTES, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0 && (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP || errno == EPERM)) {
          /* splice is not there for these fds: every bridge reads instead, from now on. */
          __atomic_store_n(&no_splice, 1, __ATOMIC_RELAXED);
          give_pipe(b);
          continue;
        }
        if (n > 0) {
          /* Counted first: a pipe with bytes in it is closed, never pooled for another bridge (give_pipe). */
          b->piped = (uint32_t)n;
          take_buffer(d);
          if (!d->buf) {
            /* No memory for 10 bytes of header: the bytes in the pipe cannot be framed. */
            client_failed(t);
            continue;
          }
          d->tail = frame_header(d->buf, (uint64_t)n);
          d->head = 0;
        }
      } else {
        take_buffer(d);
        if (!d->buf) return;
        n = read(t->fd[SIDE_UPSTREAM], d->buf + HEADROOM, READ_MAX);
        if (n > 0) {
          uint8_t h[10];
          uint8_t hl = frame_header(h, (uint64_t)n);
          memcpy(d->buf + HEADROOM - hl, h, hl);
          d->head = HEADROOM - hl;
          d->tail = HEADROOM + (uint32_t)n;
        }
      }
      if (n > 0) count_out(t, (uint64_t)n);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        d->readable = 0;
        continue;
      }
      tcp_gone(t, errno);
      continue;
    }
    if (n == 0) {
      tcp_gone(t, 0);
      continue;
    }
    t->active_mono = now_mono;
    t->active_epoch = now_epoch;
  }
}

/* Moves both ways after anything changed (an event, a command, a timer). */
static void kick(tunnel_t *t) {
  if (!t->d[0].blocked) pump_up(t);
  if (!t->finished && !t->d[1].blocked) pump_down(t);
  if (!t->finished) {
    maybe_shut_tcp(t);
    check_done(t);
  }
}

/* Direction `src` may move (readable, or its destination writable again); then whatever that changed. */
void bridge_pump(tunnel_t *t, int src) {
  if (src == SIDE_CLIENT) pump_up(t);
  else pump_down(t);
  if (!t->finished) kick(t);
}

void bridge_gateway_close(tunnel_t *t, int code, const char *reason, size_t reason_len) {
  if (t->finished || t->bridge->closing) return;
  begin_close(t, BY_GATEWAY, code, reason, reason_len);
  kick(t);
}

void bridge_tick(tunnel_t *t, uint64_t soon) {
  bridge_t *b = t->bridge;
  if (t->kill_at && t->kill_at <= soon) {
    finish(t);
    return;
  }
  if (t->idle_at && t->idle_at <= soon) {
    uint64_t quiet = now_mono - t->active_mono;
    if (quiet + 5 >= t->idle_ms) {
      t->idle_at = 0;
      char reason[160];
      int n = snprintf(reason, sizeof reason, "%s: idle for %llu s", b->app, (unsigned long long)((quiet + 500) / 1000));
      if (n >= (int)sizeof reason) n = sizeof reason - 1;
      bridge_gateway_close(t, 1001, reason, (size_t)n);
      if (t->finished) return;
    } else {
      t->idle_at = t->active_mono + t->idle_ms;
    }
  }
  if (t->ping_at && t->ping_at <= soon) {
    if (!b->closing && !b->ctl_len) {
      b->ctl_len = (uint8_t)empty_control_frame(b->ctl, OP_PING, 0);
      kick(t);
      if (t->finished) return;
    }
    t->ping_at = now_mono + t->ping_ms;
  }
  due(t->kill_at);
  due(t->idle_at);
  due(t->ping_at);
}

void bridge_finish(tunnel_t *t) {
  bridge_t *b = t->bridge;
  give_pipe(b);
}

int bridge_closed_by(const tunnel_t *t) {
  int by = t->bridge->first_by;
  return by < 0 ? BY_UPSTREAM : by;
}
int bridge_close_code(const tunnel_t *t) { return t->bridge->first_code; }
const char *bridge_reason(const tunnel_t *t, size_t *len) {
  *len = t->bridge->first_reason_len;
  return t->bridge->first_reason;
}
