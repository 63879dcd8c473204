#define _GNU_SOURCE
/*
 * The cores workload's upstream: plain HTTP (a fixed 24-byte answer to every
 * request, keep-alive) and WebSocket echo on any path, in one thread on epoll.
 * In C so that the upstream costs a small share of a core: the Node upstream
 * (upstream.mjs) spends about what the gateway does per request, and on two
 * cores it and the load generator took the core a second gateway process
 * would use (BENCHMARKS.md, "cores").
 * argv: [port] (0, the default: any). Listens on 127.0.0.1; prints the port on stdout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (64 * 1024)

typedef struct {
  int fd;
  int ws;
  size_t len;
  uint8_t buf[BUF];
} conn_t;

static const char ANSWER[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 24\r\n\r\nhello from the upstream\n";
static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* Small writes to a local peer: the rare EAGAIN waits here (a peer for benchmarks, not a server). */
static int write_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n > 0) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EAGAIN) {
      struct pollfd pf = {.fd = fd, .events = POLLOUT};
      poll(&pf, 1, 1000);
      continue;
    }
    if (w <= 0) return -1;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

/* The value of header `name` (with its colon) in head [p, end), or NULL; its length in *len. */
static const char *header(const char *p, const char *end, const char *name, size_t *len) {
  size_t n = strlen(name);
  for (const char *l = strstr(p, "\r\n"); l && l + 2 < end; l = strstr(l + 2, "\r\n")) {
    if (strncasecmp(l + 2, name, n) != 0) continue;
    const char *v = l + 2 + n;
    while (*v == ' ' || *v == '\t') v++;
    const char *e = strstr(v, "\r\n");
    if (!e) return NULL;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t')) e--;
    *len = (size_t)(e - v);
    return v;
  }
  return NULL;
}

/* Answers every complete head in c->buf; returns the bytes consumed, or -1 to close. */
static long http_heads(conn_t *c) {
  size_t at = 0;
  while (!c->ws) {
    c->buf[c->len] = 0;
    char *p = (char *)c->buf + at;
    char *end = strstr(p, "\r\n\r\n");
    if (!end) break;
    size_t klen, ulen;
    const char *up = header(p, end, "upgrade:", &ulen);
    const char *key = header(p, end, "sec-websocket-key:", &klen);
    at = (size_t)(end + 4 - (char *)c->buf);
    if (up && ulen == 9 && strncasecmp(up, "websocket", 9) == 0 && key && klen < 64) {
      char joined[128];
      memcpy(joined, key, klen);
      memcpy(joined + klen, GUID, sizeof GUID - 1);
      uint8_t digest[SHA_DIGEST_LENGTH];
      SHA1((uint8_t *)joined, klen + sizeof GUID - 1, digest);
      char accept[64];
      EVP_EncodeBlock((uint8_t *)accept, digest, SHA_DIGEST_LENGTH);
      char res[256];
      int n = snprintf(res, sizeof res, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
      if (write_all(c->fd, res, (size_t)n) < 0) return -1;
      c->ws = 1;
    } else if (write_all(c->fd, ANSWER, sizeof ANSWER - 1) < 0) return -1;
  }
  return (long)at;
}

/* Echoes every complete frame from `at` on; returns the bytes consumed, or -1 to close. */
static long ws_frames(conn_t *c, size_t at) {
  for (;;) {
    uint8_t *p = c->buf + at;
    size_t have = c->len - at;
    if (have < 2) break;
    size_t hl = 2;
    uint64_t len = p[1] & 0x7f;
    if (len == 126) hl = 4;
    if (len == 127) hl = 10;
    int masked = (p[1] & 0x80) != 0;
    if (have < hl + (masked ? 4 : 0)) break;
    if (len == 126) len = (uint64_t)p[2] << 8 | p[3];
    if (len == 127) {
      len = 0;
      for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
    }
    if (len > BUF - 14) return -1;
    size_t total = hl + (masked ? 4 : 0) + len;
    if (have < total) break;
    uint8_t *data = p + hl + (masked ? 4 : 0);
    if (masked)
      for (uint64_t i = 0; i < len; i++) data[i] ^= p[hl + (i & 3)];
    int op = p[0] & 0x0f;
    uint8_t h[10];
    size_t n = 0;
    h[n++] = (uint8_t)(0x80 | (op == 9 ? 10 : op));
    if (len < 126) h[n++] = (uint8_t)len;
    else {
      h[n++] = 126;
      h[n++] = (uint8_t)(len >> 8);
      h[n++] = (uint8_t)len;
    }
    if (op != 10) {
      /* Header and payload in one segment. */
      memmove(data - n, h, n);
      if (write_all(c->fd, data - n, n + len) < 0) return -1;
    }
    at += total;
    /* A close answered: the server closes the connection first (RFC 6455 §7.1.1). */
    if (op == 8) return -1;
  }
  return (long)at;
}

static void drop(int ep, conn_t *c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c);
}

int main(int argc, char **argv) {
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(argc > 1 ? atoi(argv[1]) : 0)), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 4096) < 0 || getsockname(ls, (struct sockaddr *)&a, &al) < 0) {
    perror("c-upstream: listen");
    return 1;
  }
  printf("%d\n", ntohs(a.sin_port));
  fflush(stdout);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      if (!c) {
        for (;;) {
          int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
          if (fd < 0) break;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          conn_t *nc = malloc(sizeof *nc);
          if (!nc) {
            close(fd);
            continue;
          }
          nc->fd = fd;
          nc->ws = 0;
          nc->len = 0;
          struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
        }
        continue;
      }
      ssize_t r = recv(c->fd, c->buf + c->len, BUF - 1 - c->len, 0);
      if (r < 0 && errno == EAGAIN) continue;
      if (r <= 0) {
        drop(ep, c);
        continue;
      }
      c->len += (size_t)r;
      long used = http_heads(c);
      if (used >= 0 && c->ws) {
        long more = ws_frames(c, (size_t)used);
        used = more;
      }
      if (used < 0 || (c->len == BUF - 1 && used == 0)) {
        drop(ep, c);
        continue;
      }
      memmove(c->buf, c->buf + used, c->len - (size_t)used);
      c->len -= (size_t)used;
    }
  }
}
