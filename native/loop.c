/*
 * The data path: one thread with epoll owns every adopted tunnel and moves
 * bytes with read()/send() through a per-direction buffer borrowed from a
 * small pool only while bytes are in flight, so an idle tunnel holds no
 * buffer. splice(2) is not used: it needs a pipe (2 fds) per moving payload
 * and the headers must be read into user space anyway; see docs/development.md.
 *
 * Sockets are registered once, edge-triggered, for both directions: no
 * epoll_ctl per chunk. Backpressure: a direction reads only when its buffer
 * is empty, so with a slow reader the kernel's buffers fill and TCP's window
 * stops the writer; memory per tunnel stays bounded by one buffer each way.
 */
#define _GNU_SOURCE
#include "tunnel.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* One read's worth, plus room for control frames injected at a boundary inside it. */
#define READ_MAX 65536
#define BUF_CAP (READ_MAX + 4 * CONTROL_MAX)
#define POOL_MAX 32
#define BATCH 256
/* Timers are checked in one sweep over the tunnels, at most this often. */
#define TICK_MS 10

typedef struct command {
  int kind;
  tunnel_t *t;
  int code;
  char *reason;
  size_t reason_len;
  struct command *next;
} command_t;

int epfd = -1;
static int wakefd = -1;
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
/* A wake is written and the loop has not read it yet: one write serves every command until then. */
static int wake_pending;
/* Link commands queued without a wake and not yet run (tunnel_register). */
static int links_pending;
static int wake(void);
static command_t *queue_head, *queue_tail;
static void (*report_end)(tunnel_t *t);
static tunnel_t *live;
uint64_t now_mono;
static uint64_t next_due;
double now_epoch;
static uint8_t *pool[POOL_MAX];
static int pooled;

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static double epoch_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1000 + (double)(ts.tv_nsec / 1000000);
}

uint64_t loop_now_ms(void) { return mono_ms(); }

void due(uint64_t at) {
  if (at && (next_due == 0 || at < next_due)) next_due = at;
}

void take_buffer(direction_t *d) {
  if (d->buf) return;
  d->buf = pooled ? pool[--pooled] : malloc(BUF_CAP);
  d->head = d->tail = 0;
}
void give_buffer(direction_t *d) {
  if (!d->buf) return;
  if (d->own) free(d->buf);
  else if (pooled < POOL_MAX) pool[pooled++] = d->buf;
  else free(d->buf);
  d->buf = NULL;
  d->own = 0;
  d->head = d->tail = 0;
}

tunnel_t *tunnel_new(int id, int client_fd, int upstream_fd, uint32_t idle_ms, uint32_t ping_ms, uint32_t grace_ms) {
  tunnel_t *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->id = id;
  t->fd[SIDE_CLIENT] = client_fd;
  t->fd[SIDE_UPSTREAM] = upstream_fd;
  for (int s = 0; s < 2; s++) {
    t->end[s].t = t;
    t->end[s].side = s;
    t->d[s].src = s;
    /*
     * Not readable until an event says so: adding a socket to an edge-triggered epoll set
     * reports the bytes (or the FIN) it already holds, so no read is spent on EAGAIN first.
     */
    t->d[s].readable = 0;
    tracker_init(&t->d[s].tr);
  }
  t->d[0].mask_out = 1;
  t->idle_ms = idle_ms;
  t->ping_ms = ping_ms;
  t->grace_ms = grace_ms;
  t->first_cut = t->first_close = -1;
  t->active_epoch = epoch_ms();
  return t;
}

void tunnel_free(tunnel_t *t) {
  if (t->bridge) bridge_free(t);
  for (int s = 0; s < 2; s++) free(t->d[s].buf);
  free(t->gw_reason);
  free(t);
}

static void note_close(tunnel_t *t, direction_t *d) {
  if (d->saw_close || d->tr.close_code < 0) return;
  d->saw_close = 1;
  if (t->first_close < 0) t->first_close = d->src;
}

int tunnel_preload(tunnel_t *t, int src, const uint8_t *preface, size_t preface_len, const uint8_t *p, size_t len) {
  direction_t *d = &t->d[src];
  if ((!len && !preface_len) || d->buf) return 0;
  /* Runs on the JavaScript thread, before adoption: its own buffer, not the loop's pool. */
  size_t need = preface_len + len + 4 * CONTROL_MAX;
  d->buf = malloc(need > BUF_CAP ? need : BUF_CAP);
  if (!d->buf) return ENOMEM;
  d->own = 1;
  /* The preface (the client's 101) is the gateway's: neither tracked as frames nor counted. */
  if (preface_len) memcpy(d->buf, preface, preface_len);
  if (len) memcpy(d->buf + preface_len, p, len);
  tracker_consume(&d->tr, p, len, 0);
  note_close(t, d);
  d->tail = (uint32_t)(preface_len + len);
  d->bytes += len;
  return 0;
}

/*
 * A tunnel the JavaScript thread registers (tunnel_register) may see events before its
 * second socket is in the epoll set: its sockets are neither changed nor closed until
 * they both are. That thread is between two epoll_ctl calls, so the wait is short.
 */
static void await_registered(tunnel_t *t) {
  while (__atomic_load_n(&t->registered, __ATOMIC_ACQUIRE) == 0) sched_yield();
}

void want_out(tunnel_t *t, int side) {
  if (!t->lazy_out || t->out_on[side]) return;
  await_registered(t);
  if (t->registered < 0) return;
  t->out_on[side] = 1;
  /* Re-arming reports EPOLLOUT at once if the socket drained in the meantime: no wake-up is lost. */
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = &t->end[side]};
  epoll_ctl(epfd, EPOLL_CTL_MOD, t->fd[side], &ev);
}

static void link_live(tunnel_t *t) {
  if (t->linked || t->finished) return;
  t->linked = 1;
  t->next = live;
  if (live) live->prev = t;
  live = t;
  t->active_mono = now_mono;
  if (t->idle_ms) due(t->idle_at = now_mono + t->idle_ms);
  if (t->ping_ms) due(t->ping_at = now_mono + t->ping_ms);
}

void finish(tunnel_t *t) {
  if (t->finished) return;
  t->finished = 1;
  if (t->lazy_out) await_registered(t);
  if (t->bridge) bridge_finish(t);
  for (int s = 0; s < 2; s++) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, t->fd[s], NULL);
    close(t->fd[s]);
    give_buffer(&t->d[s]);
  }
  if (t->linked) {
    if (t->prev) t->prev->next = t->next;
    else live = t->next;
    if (t->next) t->next->prev = t->prev;
    t->prev = t->next = NULL;
    t->linked = 0;
  }
  report_end(t);
}

/* A socket failed (reset, broken pipe): both connections are cut, `side` first. */
static void cut(tunnel_t *t, int side) {
  if (t->first_cut < 0) t->first_cut = side;
  finish(t);
}

static void check_done(tunnel_t *t) {
  if (t->d[0].shut && t->d[1].shut && t->d[0].eof && t->d[1].eof) finish(t);
}

/* A sealed direction: only the peer's close reply matters now, read for the report and never forwarded. */
static void read_for_log(tunnel_t *t, direction_t *d, const uint8_t *p, uint32_t n) {
  /* Not passed on, so not counted as passed on (Tunnel.forward's sealed branch does the same). */
  uint64_t frames = d->tr.frames, messages = d->tr.messages;
  tracker_consume(&d->tr, p, n, 0);
  d->tr.frames = frames;
  d->tr.messages = messages;
  note_close(t, d);
  direction_t *down = &t->d[1];
  if (d->src == SIDE_CLIENT && d->tr.close_code >= 0 && t->gw_close && !down->shut) {
    /*
     * The client answered our close: end its connection (RFC 6455 7.1.1, the server closes TCP
     * first), but only once our close has gone out to it: a slow client may answer before it
     * has read it, and a FIN now would cut the frame in flight and lose the close.
     */
    if (down->sealed && down->head == down->tail) {
      shutdown(t->fd[SIDE_CLIENT], SHUT_WR);
      down->shut = 1;
    } else {
      down->shut_when_flushed = 1;
    }
  }
}

/* Bytes just read into buf[tail, tail + n): tracked, and a pending control frame put in at the boundary. */
static void take_in(tunnel_t *t, direction_t *d, uint32_t n) {
  uint8_t *p = d->buf + d->tail;
  if (d->sealed) {
    read_for_log(t, d, p, n);
    return;
  }
  if (d->pending_len) {
    uint32_t c = tracker_at_boundary(&d->tr) ? 0 : (uint32_t)tracker_consume(&d->tr, p, n, 1);
    note_close(t, d);
    if (!tracker_at_boundary(&d->tr)) {
      d->tail += n;
      return;
    }
    /* The frame in progress ends after c bytes: the control frame goes there (the buffer has room for it). */
    uint8_t len = d->pending_len;
    memmove(p + c + len, p + c, n - c);
    memcpy(p + c, d->pending, len);
    d->pending_len = 0;
    d->tail += c + len;
    if (d->seal_after) {
      d->sealed = 1;
      read_for_log(t, d, d->buf + d->tail, n - c);
      return;
    }
    tracker_consume(&d->tr, d->buf + d->tail, n - c, 0);
    note_close(t, d);
    d->tail += n - c;
    return;
  }
  tracker_consume(&d->tr, p, n, 0);
  note_close(t, d);
  d->tail += n;
}

/* Moves what it can one way: write what is buffered, then read more while the destination keeps up. */
static void pump(tunnel_t *t, direction_t *d) {
  if (t->bridge) {
    bridge_pump(t, d->src);
    return;
  }
  int dst = 1 - d->src;
  for (;;) {
    if (t->finished) return;
    if (d->head < d->tail) {
      ssize_t w = send(t->fd[dst], d->buf + d->head, d->tail - d->head, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          d->blocked = 1;
          want_out(t, dst);
          return;
        }
        cut(t, dst);
        return;
      }
      d->head += (uint32_t)w;
      if (d->head < d->tail) {
        /* A short write: the socket's buffer is full, EPOLLOUT will say when it drains. */
        d->blocked = 1;
        want_out(t, dst);
        return;
      }
      d->head = d->tail = 0;
      if (d->shut_when_flushed && d->sealed && !d->shut) {
        shutdown(t->fd[dst], SHUT_WR);
        d->shut = 1;
      }
    }
    d->blocked = 0;
    if (d->eof) {
      if (!d->shut) {
        /* Half-close: the FIN goes on once everything before it is written. */
        shutdown(t->fd[dst], SHUT_WR);
        d->shut = 1;
      }
      give_buffer(d);
      check_done(t);
      return;
    }
    if (!d->readable) {
      give_buffer(d);
      return;
    }
    take_buffer(d);
    if (!d->buf) return;
    ssize_t n = read(t->fd[d->src], d->buf, READ_MAX);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        d->readable = 0;
        give_buffer(d);
        return;
      }
      cut(t, d->src);
      return;
    }
    if (n == 0) {
      d->eof = 1;
      if (t->first_cut < 0) t->first_cut = d->src;
      continue;
    }
    t->active_mono = now_mono;
    t->active_epoch = now_epoch;
    __atomic_store_n(&d->bytes, d->bytes + (uint64_t)n, __ATOMIC_RELAXED);
    take_in(t, d, (uint32_t)n);
    /*
     * A short read drained the socket: with edge-triggered epoll, more bytes
     * bring a new event, so no read is spent on EAGAIN. Not when the FIN was
     * seen with the event: only a read returning 0 tells where the data ends.
     */
    if (n < READ_MAX && !t->rdhup[d->src]) d->readable = 0;
  }
}

/* Sends a control frame this way as soon as the stream is at a frame boundary (Tunnel.inject in tunnel.ts). */
static void inject(tunnel_t *t, direction_t *d, const uint8_t *frame, uint8_t len, int seal) {
  if (d->sealed || d->shut || d->eof) return;
  /* A ping can wait for the next one while the reader is slow; the buffer has room for one close only. */
  if (d->blocked && !seal) return;
  if (d->pending_len && (d->seal_after || !seal)) return;
  memcpy(d->pending, frame, len);
  d->pending_len = len;
  d->seal_after = (uint8_t)seal;
  if (!tracker_at_boundary(&d->tr)) return;
  take_buffer(d);
  if (!d->buf) return;
  memcpy(d->buf + d->tail, d->pending, len);
  d->tail += len;
  d->pending_len = 0;
  if (seal) d->sealed = 1;
  if (!d->blocked) pump(t, d);
}

static void gateway_close(tunnel_t *t, int code, const char *reason, size_t reason_len) {
  if (t->bridge) {
    bridge_gateway_close(t, code, reason, reason_len);
    return;
  }
  if (t->finished || t->gw_close) return;
  t->gw_close = 1;
  t->gw_code = code;
  t->gw_reason = strndup(reason, reason_len);
  uint8_t frame[CONTROL_MAX];
  uint8_t n = (uint8_t)close_frame(frame, code, reason, reason_len, 0);
  inject(t, &t->d[1], frame, n, 1);
  if (t->finished) return;
  n = (uint8_t)close_frame(frame, code, reason, reason_len, 1);
  inject(t, &t->d[0], frame, n, 1);
  if (t->finished) return;
  t->kill_at = now_mono + t->grace_ms;
  due(t->kill_at);
}


/*
 * Links t and points both sockets at it: added to the epoll set (EPOLL_CTL_ADD), or, for the
 * front's, already in it (EPOLL_CTL_MOD: bytes may wait already, the client's first frames,
 * so each direction reads once, at no more cost than an event).
 */
static void adopt_with(tunnel_t *t, int op) {
  link_live(t);
  for (int s = 0; s < 2; s++) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = &t->end[s]};
    if (epoll_ctl(epfd, op, t->fd[s], &ev) < 0) {
      cut(t, s);
      return;
    }
    if (op == EPOLL_CTL_MOD) t->d[s].readable = 1;
  }
  /* The bytes that came with the handshakes go first (preloaded), then whatever the sockets hold. */
  for (int s = 0; s < 2 && !t->finished; s++) pump(t, &t->d[s]);
}

static void adopt(tunnel_t *t) { adopt_with(t, EPOLL_CTL_ADD); }

void tunnel_adopt_watched(tunnel_t *t) { adopt_with(t, EPOLL_CTL_MOD); }

static void sweep(void) {
  next_due = 0;
  uint64_t soon = now_mono + TICK_MS / 2;
  front_sweep(soon);
  for (tunnel_t *t = live, *next; t; t = next) {
    next = t->next;
    if (t->bridge) {
      bridge_tick(t, soon);
      continue;
    }
    if (t->kill_at && t->kill_at <= soon) {
      finish(t);
      continue;
    }
    if (t->idle_at && t->idle_at <= soon) {
      uint64_t quiet = now_mono - t->active_mono;
      if (quiet + TICK_MS / 2 >= t->idle_ms) {
        t->idle_at = 0;
        char reason[64];
        int n = snprintf(reason, sizeof reason, "idle for %llu s", (unsigned long long)((quiet + 500) / 1000));
        gateway_close(t, 1001, reason, (size_t)n);
        if (t->finished) continue;
      } else {
        t->idle_at = t->active_mono + t->idle_ms;
      }
    }
    if (t->ping_at && t->ping_at <= soon) {
      uint8_t frame[CONTROL_MAX];
      uint8_t n = (uint8_t)empty_control_frame(frame, OP_PING, 0);
      inject(t, &t->d[1], frame, n, 0);
      if (t->finished) continue;
      t->ping_at = now_mono + t->ping_ms;
    }
    due(t->kill_at);
    due(t->idle_at);
    due(t->ping_at);
  }
}

static void run_commands(void) {
  pthread_mutex_lock(&queue_lock);
  command_t *c = queue_head;
  queue_head = queue_tail = NULL;
  pthread_mutex_unlock(&queue_lock);
  while (c) {
    command_t *next = c->next;
    tunnel_t *t = c->t;
    switch (c->kind) {
      case CMD_ADOPT: adopt(t); break;
      case CMD_LINK:
        __atomic_fetch_sub(&links_pending, 1, __ATOMIC_RELAXED);
        link_live(t);
        break;
      case CMD_FRONT_WATCH:
      case CMD_FRONT_ARM:
      case CMD_FRONT_LINK:
        /* Queued without a wake, as a link is (loop_command_quiet). */
        __atomic_fetch_sub(&links_pending, 1, __ATOMIC_RELAXED);
        if (c->kind == CMD_FRONT_LINK) {
          front_command(c->kind, t);
          link_live(t);
        } else front_command(c->kind, t);
        break;
      case CMD_CLOSE: gateway_close(t, c->code, c->reason ? c->reason : "", c->reason_len); break;
      case CMD_DESTROY: finish(t); break;
      /* Freed only here, after the end report reached JavaScript: no command after it names t. */
      case CMD_RELEASE: tunnel_free(t); break;
      default: front_command(c->kind, t); break;
    }
    free(c->reason);
    free(c);
    c = next;
  }
}

static void on_event(endpoint_t *e, uint32_t events) {
  if (e->side >= SIDE_FRONT_CLIENT) {
    front_event(e, events);
    return;
  }
  tunnel_t *t = e->t;
  int s = e->side;
  if (t->finished) return;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) t->rdhup[s] = 1;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    t->d[s].readable = 1;
    if (!t->d[s].blocked) pump(t, &t->d[s]);
  }
  if (t->finished) return;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
    direction_t *into = &t->d[1 - s];
    if (into->blocked) pump(t, into);
  }
}

static void *run(void *arg) {
  (void)arg;
  struct epoll_event events[BATCH];
  for (;;) {
    int timeout = -1;
    now_mono = mono_ms();
    if (next_due) timeout = next_due <= now_mono ? 0 : (int)(next_due - now_mono);
    if (timeout >= 0 && timeout < TICK_MS && next_due > now_mono) timeout = TICK_MS;
    int n = epoll_wait(epfd, events, BATCH, timeout);
    now_mono = mono_ms();
    now_epoch = epoch_ms();
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr == NULL) {
        uint64_t v;
        if (read(wakefd, &v, sizeof v) < 0) { /* nothing to read: another wake took it */
        }
        /*
         * Cleared after the read, never before: a wake written between the two would be read
         * here with the flag still set, leaving it set with nothing to read, and every later
         * command unwoken. A command queued before the clear is run below (run_commands);
         * one queued after it writes a new wake.
         */
        __atomic_store_n(&wake_pending, 0, __ATOMIC_SEQ_CST);
        continue;
      }
      on_event(events[i].data.ptr, events[i].events);
    }
    /* After the batch: a release must not free a tunnel that an event above still names. */
    run_commands();
    if (next_due && next_due <= now_mono + TICK_MS / 2) sweep();
  }
  return NULL;
}

int loop_start(void (*report)(tunnel_t *t)) {
  report_end = report;
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) return errno;
  wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakefd < 0) return errno;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, wakefd, &ev) < 0) return errno;
  pthread_t th;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int err = pthread_create(&th, &attr, run, NULL);
  pthread_attr_destroy(&attr);
  return err;
}

int loop_command(int kind, tunnel_t *t, int code, const char *reason, size_t reason_len) {
  command_t *c = calloc(1, sizeof *c);
  if (!c) return ENOMEM;
  c->kind = kind;
  c->t = t;
  c->code = code;
  if (reason) {
    c->reason = malloc(reason_len + 1);
    if (!c->reason) {
      free(c);
      return ENOMEM;
    }
    memcpy(c->reason, reason, reason_len);
    c->reason[reason_len] = 0;
    c->reason_len = reason_len;
  }
  pthread_mutex_lock(&queue_lock);
  if (queue_tail) queue_tail->next = c;
  else queue_head = c;
  queue_tail = c;
  pthread_mutex_unlock(&queue_lock);
  /*
   * A release needs no wake: it frees memory only (the fds closed at the end), and
   * waits for the loop's next round, which every socket event or timer brings. One
   * thread switch less per tunnel. Nor does a link: the tunnel's sockets are watched
   * already, and only its timers wait for it (loop_wake_for_links bounds that wait).
   */
  if (kind == CMD_RELEASE || kind == CMD_LINK || kind == CMD_FRONT_FREE || kind == CMD_FRONT_WATCH || kind == CMD_FRONT_ARM || kind == CMD_FRONT_LINK) return 0;
  return wake();
}

static int wake(void) {
  if (__atomic_exchange_n(&wake_pending, 1, __ATOMIC_SEQ_CST)) return 0;
  uint64_t one = 1;
  if (write(wakefd, &one, sizeof one) < 0) return errno;
  return 0;
}

void loop_wake_for_links(void) {
  /* Under load the sockets' events have run the links already: no wake for releases alone. */
  if (__atomic_load_n(&links_pending, __ATOMIC_RELAXED) > 0) wake();
}

int loop_command_quiet(int kind, tunnel_t *t) {
  __atomic_fetch_add(&links_pending, 1, __ATOMIC_RELAXED);
  int err = loop_command(kind, t, 0, NULL, 0);
  if (err) __atomic_fetch_sub(&links_pending, 1, __ATOMIC_RELAXED);
  return err;
}

/* Both sockets into the epoll set (EPOLL_CTL_ADD), or pointed at t where they are in it already (MOD). */
static int register_sockets(tunnel_t *t, int op) {
  t->lazy_out = 1;
  int ok = 1;
  for (int s = 0; s < 2 && ok; s++) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = &t->end[s]};
    ok = epoll_ctl(epfd, op, t->fd[s], &ev) == 0;
  }
  __atomic_store_n(&t->registered, ok ? 1 : -1, __ATOMIC_RELEASE);
  return ok;
}

int tunnel_register_watched(tunnel_t *t) {
  /* Re-arming an edge-triggered socket reports what it holds already: the client's first frames are not missed. */
  if (!register_sockets(t, EPOLL_CTL_MOD)) return -1;
  return loop_command_quiet(CMD_FRONT_LINK, t);
}

void tunnel_register(tunnel_t *t) {
  int ok = register_sockets(t, EPOLL_CTL_ADD);
  /*
   * From here on the loop owns t: it may be moving bytes already, or have finished it.
   * A socket epoll refused (no room: max_user_watches) ends the tunnel as the loop's own
   * adoption would (its end is reported). A command that cannot be queued (no memory for
   * it) leaves the tunnel working, its timers unarmed.
   */
  if (!ok) {
    loop_command(CMD_DESTROY, t, 0, NULL, 0);
    return;
  }
  __atomic_fetch_add(&links_pending, 1, __ATOMIC_RELAXED);
  if (loop_command(CMD_LINK, t, 0, NULL, 0) != 0) __atomic_fetch_sub(&links_pending, 1, __ATOMIC_RELAXED);
}
