/*
 * A tunnel adopted from JavaScript: both sockets (dup'd fds), one direction
 * each way, its timers and what it reports when it ends. Owned by the loop
 * thread (loop.c) from adoption until the end report; JavaScript only reads
 * its counters (stats) and frees it through a command (release) once it has
 * the report, so the loop never touches freed memory.
 */
#ifndef PORTHOLE_TUNNEL_H
#define PORTHOLE_TUNNEL_H

#include <stdint.h>

#include "frames.h"

#define SIDE_CLIENT 0
#define SIDE_UPSTREAM 1
/* A handshake's sockets in the front (front.c), before they are a tunnel's. */
#define SIDE_FRONT_CLIENT 2
#define SIDE_FRONT_UPSTREAM 3

struct tunnel;

/* What epoll's data points at: one socket of a tunnel. */
typedef struct {
  struct tunnel *t;
  int side;
} endpoint_t;

/* One direction: bytes read from side `src`, written to the other. */
typedef struct {
  int src;
  /* Frames written towards an upstream server must be masked. */
  int mask_out;
  /* Bytes read and not yet written: [head, tail) of buf; buf is borrowed from a pool only while non-empty. */
  uint8_t *buf;
  uint32_t head, tail;
  /* buf was allocated for the handshake's bytes: freed, not pooled. */
  uint8_t own;
  tracker_t tr;
  uint64_t bytes;
  /* A control frame waiting for the next frame boundary of this direction. */
  uint8_t pending[CONTROL_MAX];
  uint8_t pending_len;
  uint8_t seal_after;
  /* After our close frame went out this way, nothing more may follow it. */
  uint8_t sealed;
  uint8_t saw_close;
  /* The source may have bytes (an edge seen, no EAGAIN since). */
  uint8_t readable;
  /* Read EOF from the source; shut = the FIN was passed on (shutdown(SHUT_WR) of the other). */
  uint8_t eof, shut;
  /* The last write hit EAGAIN: waiting for EPOLLOUT on the destination. */
  uint8_t blocked;
  /* The peer answered our close before it went out this way: send the FIN once it has. */
  uint8_t shut_when_flushed;
} direction_t;

typedef struct tunnel {
  int id;
  int fd[2];
  endpoint_t end[2];
  /* d[0]: client -> upstream, d[1]: upstream -> client. */
  direction_t d[2];
  /* The FIN or error was seen with the event (EPOLLRDHUP): read to the end. */
  uint8_t rdhup[2];
  uint32_t idle_ms, ping_ms, grace_ms;
  /* Monotonic ms deadlines, 0 = none. */
  uint64_t idle_at, ping_at, kill_at;
  /* Monotonic ms of the last byte either way (timers), epoch ms (dashboard). */
  uint64_t active_mono;
  volatile double active_epoch;
  int gw_close, gw_code;
  char *gw_reason;
  /* Which side cut first (-1: none), which side sent a close frame first (-1: none). */
  int first_cut, first_close;
  int finished;
  /* In the loop's list of live tunnels (timers, sweeps): from the adopt or link command on. */
  uint8_t linked;
  /*
   * Registered by the JavaScript thread (tunnel_register), reading only: EPOLLOUT is added
   * per socket the first time a write there blocks (out_on). `registered` turns 1 once both
   * sockets are in the epoll set, -1 if that failed; until then the loop neither changes
   * nor closes them.
   */
  uint8_t lazy_out;
  uint8_t out_on[2];
  int registered;
  /* Set for a WebSocket->TCP bridge (bridge.c): the loop frames the client's side itself. */
  struct bridge *bridge;
  /* A tunnel the front made: its handshake, freed when the loop takes the tunnel over. */
  struct front_conn *front;
  struct tunnel *prev, *next;
} tunnel_t;

/* Starts the loop thread; report(t) is called on it when a tunnel ends. Returns 0 or an errno. */
int loop_start(void (*report)(tunnel_t *t));
tunnel_t *tunnel_new(int id, int client_fd, int upstream_fd, uint32_t idle_ms, uint32_t ping_ms, uint32_t grace_ms);
/*
 * Bytes that Node already read: tracked and queued before anything the loop reads,
 * behind `preface` (bytes of the gateway's own, written first). Before adopt only.
 */
int tunnel_preload(tunnel_t *t, int src, const uint8_t *preface, size_t preface_len, const uint8_t *p, size_t len);
void tunnel_free(tunnel_t *t);

/*
 * Starts a plain tunnel from the JavaScript thread, without waking the loop: both sockets
 * go into the epoll set (reading only) and the loop links the tunnel (timers) at its next
 * turn, which the sockets' first event brings. Nothing may be preloaded. The loop owns t
 * from the call on, as after an adopt command.
 */
void tunnel_register(tunnel_t *t);
/* Wakes the loop if links that tunnel_register queued wait for it. */
void loop_wake_for_links(void);

enum { CMD_ADOPT, CMD_CLOSE, CMD_DESTROY, CMD_RELEASE, CMD_LINK, CMD_FRONT_WATCH, CMD_FRONT_ARM, CMD_FRONT_FREE, CMD_FRONT_ABORT, CMD_FRONT_TUNNEL, CMD_FRONT_LINK };
/* Queues a command for the loop thread (reason is copied). Returns 0 or an errno. */
int loop_command(int kind, tunnel_t *t, int code, const char *reason, size_t reason_len);
/*
 * Queues a command that needs no wake of its own: its sockets' next event brings the loop,
 * and loop_wake_for_links (JavaScript's 20 ms timer) when none comes. Returns 0 or an errno.
 */
int loop_command_quiet(int kind, tunnel_t *t);
/*
 * tunnel_register for sockets that are in the epoll set already (the front's): pointed at
 * t, reading only; the loop links it (CMD_FRONT_LINK, which frees t->front). -1 when epoll
 * refused (t untouched but `registered`), else 0 or an errno.
 */
int tunnel_register_watched(tunnel_t *t);
uint64_t loop_now_ms(void);

/* Shared by loop.c and bridge.c, on the loop thread only. */
extern int epfd;
extern uint64_t now_mono;
extern double now_epoch;
void due(uint64_t at);
void take_buffer(direction_t *d);
void give_buffer(direction_t *d);
/* A write towards `side` would block: make sure EPOLLOUT on it says when it drains. */
void want_out(tunnel_t *t, int side);
/* Closes both sockets, unlinks the tunnel and reports its end (once). */
void finish(tunnel_t *t);

/*
 * Adopts, on the loop thread, a tunnel whose sockets are in the epoll set already (the
 * front's): they are pointed at the tunnel and both directions pumped.
 */
void tunnel_adopt_watched(tunnel_t *t);

/* The front (front.c): a handshake on the loop thread, JavaScript deciding (src/gateway/front.ts). */
typedef struct front_conn front_conn_t;
enum { FRONT_HANDOFF, FRONT_HEAD, FRONT_ANSWER, FRONT_FAILED, FRONT_LEFT, FRONT_CONNECT_TIMEOUT, FRONT_RESPONSE_TIMEOUT, FRONT_ABORTED };
/* front_proceed's answer when the client's socket no longer gives its head (it left): not an errno. */
#define FRONT_CLIENT_GONE (-1)
/* What the front tells JavaScript; freed by whoever delivers it. */
typedef struct {
  int kind, id, err, ended;
  size_t len;
  uint8_t bytes[];
} front_report_t;
void front_set_report(void (*fn)(front_report_t *r));
/* JavaScript thread: watches a duplicate of Node's fd for the head (wait_ms at most, then handed back). */
/*
 * JavaScript thread, at accept: NULL with *err 0 when Node should take the connection now (no
 * WebSocket head, a FIN); else a connection, with *head set when its head came with it (shown
 * now: PH_ASKED, front_proceed or front_take next) or NULL when the loop waits for it.
 */
front_conn_t *front_watch(int id, int fd, uint32_t wait_ms, int *err, const uint8_t **head, size_t *head_len);
/*
 * JavaScript thread, after FRONT_HEAD: connect there (an IP literal), write head, read the answer.
 * 0, an errno (connect failed at once; the connection is still the caller's), or FRONT_CLIENT_GONE.
 */
int front_proceed(front_conn_t *c, int family, const char *ip, int port, const uint8_t *head, size_t head_len, uint32_t connect_ms, uint32_t response_ms);
/* JavaScript thread, after a report: the sockets (-1 for none) are the caller's; the front forgets them. */
void front_take(front_conn_t *c, int *cfd, int *ufd);
/* JavaScript thread: give up the upstream while the loop works (reported as FRONT_ABORTED, if it still does). */
int front_abort(front_conn_t *c);
/* JavaScript thread, after a clean FRONT_ANSWER: the tunnel, with `preface` (the client's 101) first. */
tunnel_t *front_tunnel(front_conn_t *c, int id, const uint8_t *preface, size_t preface_len, uint32_t idle_ms, uint32_t ping_ms, uint32_t grace_ms, int *err);
/* Loop thread. */
void front_event(endpoint_t *e, uint32_t events);
void front_command(int kind, tunnel_t *arg);
void front_sweep(uint64_t soon);

/* The bridge (bridge.c). Bridge options and reasons are worded by JavaScript (bridge.ts). */
typedef struct {
  const char *app, *eof_reason, *reset_reason, *text_reason;
  /* TCP failing: timed out (ETIMEDOUT); any other error but a reset, whose name goes between these two. */
  const char *timeout_reason, *failed_before, *failed_after;
  int text_as_binary;
  /* Written to the client before anything else (the handshake's 101). */
  const uint8_t *preface;
  size_t preface_len;
} bridge_opts_t;
/* Makes t a bridge: side CLIENT speaks WebSocket, side UPSTREAM is raw TCP. Before adopt only. Returns 0 or an errno. */
int bridge_init(tunnel_t *t, const bridge_opts_t *o);
/* Bytes Node already read from one side, before adopt (the client's are parsed once adopted). */
int bridge_preload(tunnel_t *t, int side, const uint8_t *p, size_t len);
void bridge_pump(tunnel_t *t, int src);
void bridge_gateway_close(tunnel_t *t, int code, const char *reason, size_t reason_len);
void bridge_tick(tunnel_t *t, uint64_t soon);
void bridge_finish(tunnel_t *t);
void bridge_free(tunnel_t *t);
/*
 * What the end report says of a bridge: who closed first (0 client, 1 upstream, 2 gateway, as
 * native-tunnel.ts reads it), the code (-1: none) and the reason (NULL: none; *len bytes).
 */
int bridge_closed_by(const tunnel_t *t);
int bridge_close_code(const tunnel_t *t);
const char *bridge_reason(const tunnel_t *t, size_t *len);

#endif
