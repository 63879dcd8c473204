/*
 * The front: a WebSocket handshake on the loop thread, from the client's
 * request head to the tunnel, with JavaScript deciding only (front.ts).
 *
 * Node accepts the connection; its fd (dup'd) comes here before Node reads
 * anything. The loop peeks at the request head without taking it from the
 * socket. Anything but a complete WebSocket GET head goes back untouched
 * (handoff): Node reads it from the socket as if the front had never looked.
 * A head that may be a WebSocket upgrade is shown to JavaScript, which
 * either hands the connection back too or says where to go: the loop then
 * takes the head from the socket, connects to the upstream, writes the head
 * JavaScript wrote, reads the answer's head and shows it. A clean 101 becomes
 * a tunnel on this thread; for anything else JavaScript takes both sockets
 * (front_take) and goes on with Node's own code. So no Node socket, parser
 * or ClientRequest exists for a handshake that succeeds.
 *
 * Ownership: the loop thread works on a connection in the phases marked
 * LOOP; after each report JavaScript owns it until its next call (the loop
 * then ignores its events but for noting that the client left). Memory is
 * freed on the loop thread (FRONT_FREE after the batch), never under an event.
 */
#define _GNU_SOURCE
#include "tunnel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Node's own limit for a request head (--max-http-header-size's default), and ours for an answer's. */
#define HEAD_MAX 16384

enum {
  /* LOOP: waiting for the request head (peeked, not read). */
  PH_PEEK,
  /* JS: the head was shown; front_proceed or front_take/handoff next. */
  PH_ASKED,
  /* LOOP: connecting to the upstream and writing the head. */
  PH_CONNECT,
  /* LOOP: reading the answer's head. */
  PH_ANSWER,
  /* JS: the answer (or a failure) was shown. */
  PH_ANSWERED,
  /* Gone: taken by JavaScript or handed back; freed by FRONT_FREE. */
  PH_GONE,
};

struct front_conn {
  endpoint_t end[2];
  int id;
  int cfd, ufd;
  int phase;
  /* The client hung up (FIN, reset) while JavaScript decided. */
  int client_gone;
  /* Abort asked while the loop worked: reported as FRONT_ABORTED. */
  uint32_t wait_ms, connect_ms, response_ms;
  uint64_t deadline;
  uint32_t head_len;
  uint8_t *out;
  size_t out_len, out_off;
  uint8_t *ans;
  size_t ans_len;
  struct sockaddr_storage to;
  socklen_t to_len;
  uint8_t linked;
  /*
   * The loop has run this connection's arm command: from then on the loop acts on it in
   * PH_CONNECT and PH_ANSWER. Before, the JavaScript thread may still be in front_proceed
   * (between its phase store and the upstream socket's epoll_ctl, or failing there and
   * closing that socket itself): the loop only notes that the client left.
   */
  uint8_t armed;
  /* Its head came with the connection: the client's socket is not in the epoll set until front_proceed. */
  uint8_t unwatched;
  /* The loop has run this connection's watch command; until then it is not freed (dead: free it then). */
  uint8_t watched, dead;
  struct front_conn *prev, *next;
};

static front_conn_t *conns;
static void (*report_fn)(front_report_t *r);

void front_set_report(void (*fn)(front_report_t *r)) { report_fn = fn; }

static void report(front_conn_t *c, int kind, int err, const uint8_t *bytes, size_t len, int ended) {
  front_report_t *r = calloc(1, sizeof *r + len);
  if (!r) return;
  r->kind = kind;
  r->id = c->id;
  r->err = err;
  r->ended = ended;
  r->len = len;
  if (len) memcpy(r->bytes, bytes, len);
  report_fn(r);
}

static void unwatch(int fd) {
  if (fd >= 0) epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
}

static void unlink_conn(front_conn_t *c) {
  if (!c->linked) return;
  if (c->prev) c->prev->next = c->next;
  else conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->linked = 0;
}

static void free_conn(front_conn_t *c) {
  /* Its watch command is still queued and names it: freed when that runs. */
  if (!c->watched) {
    c->dead = 1;
    return;
  }
  unlink_conn(c);
  free(c->out);
  free(c->ans);
  free(c);
}

/* The loop lets go of the client's socket, unread, and tells JavaScript to give Node its own. */
static void hand_back(front_conn_t *c) {
  unwatch(c->cfd);
  close(c->cfd);
  c->cfd = -1;
  c->phase = PH_GONE;
  report(c, FRONT_HANDOFF, 0, NULL, 0, 0);
  free_conn(c);
}

enum { HEAD_NODE, HEAD_WAIT, HEAD_WS };
static int head_kind(const uint8_t *p, size_t n, long *end);
static int left(uint32_t events, int unread);

/* The JavaScript thread's own buffer for a head peeked at when Node accepts (front_watch). */
static uint8_t accept_buf[HEAD_MAX];

front_conn_t *front_watch(int id, int fd, uint32_t wait_ms, int *err, const uint8_t **head, size_t *head_len) {
  *head = NULL;
  *head_len = 0;
  /*
   * A head that came with the connection (a busy gateway accepts after the client has
   * written it) is decided on now, on this thread, without the loop: the rest of a
   * WebSocket head's way starts at once, and anything else goes straight back to Node.
   * A FIN or an error before any byte is Node's to meet, as always.
   */
  ssize_t n;
  do n = recv(fd, accept_buf, sizeof accept_buf, MSG_PEEK | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  long end = -1;
  int kind = n > 0 ? head_kind(accept_buf, (size_t)n, &end) : n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? HEAD_WAIT : HEAD_NODE;
  if (kind == HEAD_NODE) {
    *err = 0;
    return NULL;
  }
  front_conn_t *c = calloc(1, sizeof *c);
  if (!c) {
    *err = ENOMEM;
    return NULL;
  }
  c->cfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (c->cfd < 0) {
    *err = errno;
    free(c);
    return NULL;
  }
  int flags = fcntl(c->cfd, F_GETFL);
  if (flags >= 0 && !(flags & O_NONBLOCK)) fcntl(c->cfd, F_SETFL, flags | O_NONBLOCK);
  c->id = id;
  c->ufd = -1;
  c->wait_ms = wait_ms;
  for (int s = 0; s < 2; s++) {
    c->end[s].t = (tunnel_t *)c;
    c->end[s].side = SIDE_FRONT_CLIENT + s;
  }
  if (kind == HEAD_WS) {
    /*
     * Shown now. The client's socket joins the epoll set in front_proceed, once its head is
     * taken from it (added now, the bytes it holds would wake the loop for nothing).
     */
    c->phase = PH_ASKED;
    c->head_len = (uint32_t)end;
    c->unwatched = 1;
    *err = loop_command_quiet(CMD_FRONT_WATCH, (tunnel_t *)c);
    if (*err) {
      close(c->cfd);
      free(c);
      return NULL;
    }
    *head = accept_buf;
    *head_len = (size_t)end;
    return c;
  }
  c->phase = PH_PEEK;
  /*
   * Watched from this thread, without waking the loop: the head's arrival does (adding a
   * socket that holds bytes already reports them). The loop links it for its wait limit
   * at that turn, or at loop_wake_for_links' when nothing comes.
   */
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = &c->end[0]};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->cfd, &ev) < 0) {
    *err = errno;
    close(c->cfd);
    free(c);
    return NULL;
  }
  *err = loop_command_quiet(CMD_FRONT_WATCH, (tunnel_t *)c);
  if (*err) {
    /* Not queued, so nothing names it but the epoll set: out of it, and gone. */
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->cfd, NULL);
    close(c->cfd);
    free(c);
    return NULL;
  }
  return c;
}

static int ieq(const uint8_t *p, const char *s, size_t n) { return strncasecmp((const char *)p, s, n) == 0; }

/* Whether a complete head may be a WebSocket upgrade: a GET with an Upgrade header. JavaScript decides the rest. */
static int may_upgrade(const uint8_t *p, size_t n) {
  if (n < 4 || memcmp(p, "GET ", 4) != 0) return 0;
  for (size_t i = 0; i + 10 < n; i++)
    if (p[i] == '\r' && p[i + 1] == '\n' && ieq(p + i + 2, "upgrade:", 8)) return 1;
  return 0;
}

static long head_end(const uint8_t *p, size_t n) {
  for (size_t i = 3; i < n; i++)
    if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r') return (long)(i + 1);
  return -1;
}

/*
 * What the n bytes peeked from a client's socket are: a complete head that may be a WebSocket
 * upgrade (its length in *end), one still coming, or Node's (any other complete head, or
 * bytes without a head's end that fill the buffer a head must fit in).
 */
static int head_kind(const uint8_t *p, size_t n, long *end) {
  *end = head_end(p, n);
  if (*end < 0) return n >= HEAD_MAX ? HEAD_NODE : HEAD_WAIT;
  return may_upgrade(p, (size_t)*end) ? HEAD_WS : HEAD_NODE;
}

static uint8_t peek_buf[HEAD_MAX];

static void peek(front_conn_t *c, uint32_t events) {
  ssize_t n;
  do n = recv(c->cfd, peek_buf, sizeof peek_buf, MSG_PEEK | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    if (!(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
  }
  /* A FIN, an error, nothing yet with the hang-up: Node's to answer, as always. */
  if (n <= 0) {
    hand_back(c);
    return;
  }
  long end;
  int kind = head_kind(peek_buf, (size_t)n, &end);
  /* Still coming: wait for the rest, unless the client said it is done. */
  if (kind == HEAD_WAIT && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
  if (kind != HEAD_WS) {
    hand_back(c);
    return;
  }
  c->head_len = (uint32_t)end;
  c->phase = PH_ASKED;
  c->deadline = 0;
  /*
   * The client's FIN (or reset) came with its head, in this one edge: no later event says so.
   * Noted as one that comes while JavaScript decides (arm acts on it), as Node's path ends a
   * handshake whose client left before the upstream answered. Not a FIN behind bytes sent
   * after the head: Node's path meets that one only after the handshake (client_left).
   */
  if (left(events, n > end)) c->client_gone = 1;
  report(c, FRONT_HEAD, 0, peek_buf, (size_t)end, 0);
}

static void fail(front_conn_t *c, int kind, int err) {
  unwatch(c->ufd);
  close(c->ufd);
  c->ufd = -1;
  c->deadline = 0;
  c->phase = PH_ANSWERED;
  report(c, kind, err, NULL, 0, 0);
}

static int tchar(uint8_t ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/*
 * Whether the start of an answer can still become a clean 101 (upstream-upgrade.ts's mayBe101):
 * `HTTP/1.1 101`, lines ending in CRLF only, each header line a token, a colon and a value
 * without control characters but tab. When it cannot, it is shown at once: Node's parser
 * refuses it then, rather than the front waiting for a blank line that may never come.
 */
static int may_be_101(const uint8_t *p, size_t n) {
  static const char status[] = "HTTP/1.1 101";
  size_t k = n < sizeof status - 1 ? n : sizeof status - 1;
  if (memcmp(p, status, k) != 0) return 0;
  if (n > k && p[k] != ' ' && p[k] != '\r') return 0;
  size_t line = 0;
  int colon = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t ch = p[i];
    if (ch == '\r') {
      if (i + 1 < n && p[i + 1] != '\n') return 0;
      continue;
    }
    if (ch == '\n') {
      if (i == 0 || p[i - 1] != '\r') return 0;
      /* A complete header line needs its colon (the status line and the blank line do not). */
      if (line > 0 && i - 1 > line && !colon) return 0;
      line = i + 1;
      colon = 0;
      continue;
    }
    if (line == 0) {
      if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return 0;
      continue;
    }
    if (!colon) {
      if (ch == ':') {
        if (i == line) return 0;
        colon = 1;
      } else if (!tchar(ch)) return 0;
    } else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return 0;
  }
  return 1;
}

static void answer_read(front_conn_t *c) {
  if (!c->ans) {
    c->ans = malloc(HEAD_MAX);
    if (!c->ans) {
      fail(c, FRONT_FAILED, ENOMEM);
      return;
    }
  }
  for (;;) {
    ssize_t n = read(c->ufd, c->ans + c->ans_len, HEAD_MAX - c->ans_len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) {
      /* Reset mid-answer: what came is shown with it, as Node's parser would meet it. */
      if (c->ans_len == 0) {
        fail(c, FRONT_FAILED, errno);
        return;
      }
      n = 0;
    }
    if (n > 0) c->ans_len += (size_t)n;
    if (n == 0 || head_end(c->ans, c->ans_len) >= 0 || c->ans_len == HEAD_MAX || !may_be_101(c->ans, c->ans_len)) {
      c->phase = PH_ANSWERED;
      c->deadline = 0;
      report(c, FRONT_ANSWER, 0, c->ans, c->ans_len, n == 0);
      return;
    }
  }
}

static void upstream_io(front_conn_t *c, uint32_t events) {
  if (c->phase == PH_CONNECT) {
    if (events & (EPOLLERR | EPOLLHUP)) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &len);
      fail(c, FRONT_FAILED, err ? err : ECONNRESET);
      return;
    }
    if (!(events & EPOLLOUT)) return;
    while (c->out_off < c->out_len) {
      ssize_t w = send(c->ufd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (w < 0) {
        fail(c, FRONT_FAILED, errno);
        return;
      }
      c->out_off += (size_t)w;
    }
    free(c->out);
    c->out = NULL;
    c->phase = PH_ANSWER;
    /* The response time counts from the connection (UpgradeRequest's onConnect does the same). */
    c->deadline = c->response_ms ? now_mono + c->response_ms : 0;
    due(c->deadline);
  }
  if (c->phase == PH_ANSWER && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) answer_read(c);
}

/*
 * Whether a hang-up on the client's socket is one Node's path would act on now: a reset, or a
 * FIN with nothing unread before it. Bytes the client sent after its head wait in the socket
 * until the handshake is over (Node reads none of them before), and a FIN behind them is met
 * only then: the handshake goes on, and the app's answer reaches the client.
 */
static int left(uint32_t events, int unread) { return (events & (EPOLLHUP | EPOLLERR)) || ((events & EPOLLRDHUP) && !unread); }

/* left() for a client whose head is taken: whatever its socket still holds is unread. */
static int client_left(int fd, uint32_t events) {
  if (events & (EPOLLHUP | EPOLLERR)) return 1;
  uint8_t b;
  ssize_t n;
  do n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  return left(events, n > 0);
}

void front_event(endpoint_t *e, uint32_t events) {
  front_conn_t *c = (front_conn_t *)e->t;
  if (e->side == SIDE_FRONT_CLIENT) {
    if (c->phase == PH_PEEK) {
      peek(c, events);
      return;
    }
    if (!(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) || !client_left(c->cfd, events)) return;
    /* The client left: while the loop works, the upstream is given up and JavaScript told. */
    if ((c->phase == PH_CONNECT || c->phase == PH_ANSWER) && c->armed) {
      fail(c, FRONT_LEFT, 0);
      return;
    }
    c->client_gone = 1;
    return;
  }
  if (c->phase != PH_CONNECT && c->phase != PH_ANSWER) return;
  /*
   * A client that left before (its FIN with its head, or while JavaScript decided) ends the
   * handshake at the upstream's first event, which may come before the arm command does:
   * no tunnel is made for it, as Node's path makes none.
   */
  if (c->client_gone) {
    fail(c, FRONT_LEFT, 0);
    return;
  }
  upstream_io(c, events);
}

static void watch(front_conn_t *c) {
  c->watched = 1;
  if (c->dead) {
    free_conn(c);
    return;
  }
  c->next = conns;
  c->prev = NULL;
  if (conns) conns->prev = c;
  conns = c;
  c->linked = 1;
  /* Waiting for its head: at most wait_ms from now (a head that came already moved it on). */
  if (c->phase == PH_PEEK) {
    c->deadline = c->wait_ms ? now_mono + c->wait_ms : 0;
    due(c->deadline);
  }
}

/* The loop's side of a proceed (front_proceed ran on the JavaScript thread): its deadline, or the client gone meanwhile. */
static void arm(front_conn_t *c) {
  c->armed = 1;
  if (c->phase != PH_CONNECT && c->phase != PH_ANSWER) return;
  if (c->client_gone) {
    fail(c, FRONT_LEFT, 0);
    return;
  }
  due(c->deadline);
}

int front_proceed(front_conn_t *c, int family, const char *ip, int port, const uint8_t *head, size_t head_len, uint32_t connect_ms, uint32_t response_ms) {
  memset(&c->to, 0, sizeof c->to);
  if (family == 6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&c->to;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, ip, &a->sin6_addr) != 1) return EINVAL;
    c->to_len = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&c->to;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &a->sin_addr) != 1) return EINVAL;
    c->to_len = sizeof *a;
  }
  /*
   * On the JavaScript thread, which owns the connection until the upstream's socket is in
   * the epoll set: taking the head, socket() and connect() cost less here than waking the
   * loop for them. The head leaves the client's socket now: it was only peeked at.
   */
  uint8_t sink[HEAD_MAX];
  uint32_t rest = c->head_len;
  while (rest) {
    ssize_t n = recv(c->cfd, sink, rest, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return FRONT_CLIENT_GONE;
    rest -= (uint32_t)n;
  }
  if (c->unwatched) {
    /*
     * Watched from now (its head shown at accept): a FIN or a reset that came with or after
     * the head is reported at once, and noted as one that came while JavaScript decided.
     */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = &c->end[0]};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->cfd, &ev) < 0) return errno;
    c->unwatched = 0;
  }
  /*
   * The client's socket as Node's server leaves each one it accepts (noDelay: true), which it
   * does not do for the connections the front keeps: without it, a small frame behind another
   * waits for the client's delayed ACK (about 40 ms).
   */
  int nodelay = 1;
  setsockopt(c->cfd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
  c->out = malloc(head_len);
  if (!c->out) return ENOMEM;
  memcpy(c->out, head, head_len);
  c->out_len = head_len;
  c->out_off = 0;
  c->connect_ms = connect_ms;
  c->response_ms = response_ms;
  int u = socket(c->to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (u < 0) return errno;
  int one = 1;
  /* The head leaves in one segment at once; later, small frames too. */
  setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(u, (struct sockaddr *)&c->to, c->to_len) < 0 && errno != EINPROGRESS) {
    int err = errno;
    close(u);
    return err;
  }
  /*
   * A connect to a local app has usually completed when connect() returns: the head goes
   * now, from this thread, and the loop is woken by the answer alone (not by EPOLLOUT
   * first). Not connected yet (EAGAIN): the loop writes it at EPOLLOUT. Refused already:
   * said now, with its errno (a send that fails takes the socket's error with it).
   */
  int phase = PH_CONNECT;
  uint32_t events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ssize_t w;
  do w = send(u, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (w < 0 && errno == EINTR);
  if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN) {
    int err = errno;
    close(u);
    return err;
  }
  if (w == (ssize_t)c->out_len) {
    free(c->out);
    c->out = NULL;
    phase = PH_ANSWER;
    events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    /* The response time counts from the connection, as the loop counts it (upstream_io). */
    c->deadline = response_ms ? loop_now_ms() + response_ms : 0;
  } else {
    if (w > 0) c->out_off = (size_t)w;
    c->deadline = connect_ms ? loop_now_ms() + connect_ms : 0;
  }
  c->ufd = u;
  __atomic_store_n(&c->phase, phase, __ATOMIC_RELEASE);
  /* From here the loop works on it: the connect's completion, or the answer, is its next turn. */
  struct epoll_event ev = {.events = events, .data.ptr = &c->end[1]};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, u, &ev) < 0) {
    int err = errno;
    __atomic_store_n(&c->phase, PH_ASKED, __ATOMIC_RELEASE);
    close(u);
    c->ufd = -1;
    return err;
  }
  /* Its deadline, and a client that left before, are the loop's to act on (arm). */
  loop_command_quiet(CMD_FRONT_ARM, (tunnel_t *)c);
  return 0;
}

void front_take(front_conn_t *c, int *cfd, int *ufd) {
  /* JavaScript owns the connection now (PH_ASKED, PH_ANSWERED): the loop reads none of it. */
  unwatch(c->cfd);
  unwatch(c->ufd);
  *cfd = c->cfd;
  *ufd = c->ufd;
  c->cfd = c->ufd = -1;
  c->phase = PH_GONE;
  loop_command(CMD_FRONT_FREE, (tunnel_t *)c, 0, NULL, 0);
}

int front_abort(front_conn_t *c) { return loop_command(CMD_FRONT_ABORT, (tunnel_t *)c, 0, NULL, 0); }

tunnel_t *front_tunnel(front_conn_t *c, int id, const uint8_t *preface, size_t preface_len, uint32_t idle_ms, uint32_t ping_ms, uint32_t grace_ms, int *err) {
  tunnel_t *t = tunnel_new(id, c->cfd, c->ufd, idle_ms, ping_ms, grace_ms);
  if (!t) {
    *err = ENOMEM;
    return NULL;
  }
  uint32_t head = (uint32_t)head_end(c->ans, c->ans_len);
  if (c->ans_len == head) {
    /*
     * Nothing came after the upstream's 101: the client's is written here and both sockets
     * are pointed at the tunnel from this thread, without waking the loop (tunnel_register's
     * way): its first turn for the tunnel is the first byte either side sends.
     */
    size_t sent = 0;
    while (sent < preface_len) {
      ssize_t w = send(c->cfd, preface + sent, preface_len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) break;
      sent += (size_t)w;
    }
    if (sent == preface_len) {
      t->front = c;
      c->phase = PH_GONE;
      if (tunnel_register_watched(t) < 0) {
        /* epoll refused: the tunnel ends as one the loop could not adopt (its end is reported). */
        loop_command_quiet(CMD_FRONT_LINK, t);
        loop_command(CMD_DESTROY, t, 0, NULL, 0);
      }
      *err = 0;
      return t;
    }
    /* What the socket did not take goes first from the loop, as below. */
    preface += sent;
    preface_len -= sent;
  }
  /* What the upstream sent after its 101 follows it; the client's bytes after its head wait in its socket. */
  *err = tunnel_preload(t, SIDE_UPSTREAM, preface, preface_len, c->ans + head, c->ans_len - head);
  if (*err) {
    tunnel_free(t);
    return NULL;
  }
  /* Set before the command is queued: the loop may run it at once. */
  t->front = c;
  c->phase = PH_GONE;
  *err = loop_command(CMD_FRONT_TUNNEL, t, 0, NULL, 0);
  if (*err) {
    c->phase = PH_ANSWERED;
    t->front = NULL;
    tunnel_free(t);
    return NULL;
  }
  return t;
}

/* Runs a command of the front's on the loop thread (loop.c's run_commands). */
void front_command(int kind, tunnel_t *arg) {
  switch (kind) {
    case CMD_FRONT_WATCH: watch((front_conn_t *)arg); break;
    case CMD_FRONT_ARM: arm((front_conn_t *)arg); break;
    case CMD_FRONT_LINK: {
      /* A tunnel the JavaScript thread registered (front_tunnel): its handshake is over. loop.c links it. */
      tunnel_t *t = arg;
      free_conn(t->front);
      t->front = NULL;
      break;
    }
    case CMD_FRONT_FREE: free_conn((front_conn_t *)arg); break;
    case CMD_FRONT_ABORT: {
      front_conn_t *c = (front_conn_t *)arg;
      if (c->phase == PH_CONNECT || c->phase == PH_ANSWER) fail(c, FRONT_ABORTED, 0);
      break;
    }
    case CMD_FRONT_TUNNEL: {
      tunnel_t *t = arg;
      front_conn_t *c = t->front;
      t->front = NULL;
      free_conn(c);
      tunnel_adopt_watched(t);
      break;
    }
  }
}

void front_sweep(uint64_t soon) {
  for (front_conn_t *c = conns, *next; c; c = next) {
    next = c->next;
    /*
     * Only the loop's phases, and the upstream's once armed: in the others the JavaScript
     * thread owns the connection and may be writing its deadline (front_proceed).
     */
    if (c->phase != PH_PEEK && !((c->phase == PH_CONNECT || c->phase == PH_ANSWER) && c->armed)) continue;
    if (!c->deadline) continue;
    if (c->deadline > soon) {
      due(c->deadline);
      continue;
    }
    c->deadline = 0;
    /* Still no complete head: Node takes the connection, with its own header timeout from now. */
    if (c->phase == PH_PEEK) hand_back(c);
    else if (c->phase == PH_CONNECT) fail(c, FRONT_CONNECT_TIMEOUT, 0);
    else if (c->phase == PH_ANSWER) fail(c, FRONT_RESPONSE_TIMEOUT, 0);
  }
}
