/*
 * The cores workload's handshake client: the cycle of handshakes.mjs (open a
 * WebSocket, one 64-byte echo, a close handshake with 1000, wait for the
 * server's FIN) on N threads, each a blocking loop, for D seconds. In C so
 * that the client takes a small share of a core (handshakes.mjs spends about
 * a core at the rates a gateway reaches here).
 * argv: host port path threads seconds. Prints JSON like handshakes.mjs:
 * {"done":..,"errors":..,"seconds":..,"p50":..,"p99":..} (ms per cycle).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_TIMES (1 << 20)

static const char *host, *path;
static int port;
static double deadline;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static double *times;
static size_t ntimes;
static long done, errors;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Reads until `want` bytes are in buf (or, want 0, until "\r\n\r\n"); returns the bytes read, or -1. */
static long read_some(int fd, uint8_t *buf, size_t cap, size_t want) {
  size_t got = 0;
  for (;;) {
    ssize_t r = read(fd, buf + got, cap - 1 - got);
    if (r <= 0) return -1;
    got += (size_t)r;
    buf[got] = 0;
    if (want ? got >= want : strstr((char *)buf, "\r\n\r\n") != NULL) return (long)got;
    if (got >= cap - 1) return -1;
  }
}

/* One cycle; 0 when every step went as a WebSocket's should. */
static int cycle(struct sockaddr_in *a, const char *req, size_t req_len, const uint8_t *msg, const uint8_t *close_frame) {
  uint8_t buf[4096];
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int ok = -1;
  if (connect(fd, (struct sockaddr *)a, sizeof *a) < 0 || write(fd, req, req_len) != (ssize_t)req_len) goto out;
  long n = read_some(fd, buf, sizeof buf, 0);
  /* The key's answer (RFC 6455's example key) and nothing after the head (the server speaks second). */
  if (n < 0 || strncmp((char *)buf, "HTTP/1.1 101", 12) != 0 || !strstr((char *)buf, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")) goto out;
  if ((size_t)n != (size_t)(strstr((char *)buf, "\r\n\r\n") + 4 - (char *)buf)) goto out;
  if (write(fd, msg, 70) != 70) goto out;
  n = read_some(fd, buf, sizeof buf, 66);
  if (n != 66 || buf[0] != 0x82 || buf[1] != 64) goto out;
  for (int i = 0; i < 64; i++)
    if (buf[2 + i] != 1) goto out;
  if (write(fd, close_frame, 8) != 8) goto out;
  n = read_some(fd, buf, sizeof buf, 4);
  if (n != 4 || buf[0] != 0x88 || buf[1] != 2 || buf[2] != 0x03 || buf[3] != 0xe8) goto out;
  /* The server closes first: its FIN, relayed. */
  if (read(fd, buf, sizeof buf) != 0) goto out;
  ok = 0;
out:
  close(fd);
  return ok;
}

static void *run(void *arg) {
  (void)arg;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, host, &a.sin_addr);
  char req[512];
  int req_len = snprintf(req, sizeof req,
                         "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                         path, host, port);
  static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  uint8_t msg[70] = {0x82, 0x80 | 64, key[0], key[1], key[2], key[3]};
  for (int i = 0; i < 64; i++) msg[6 + i] = (uint8_t)(1 ^ key[i & 3]);
  uint8_t close_frame[8] = {0x88, 0x82, key[0], key[1], key[2], key[3], (uint8_t)(0x03 ^ key[0]), (uint8_t)(0xe8 ^ key[1])};
  while (now() < deadline) {
    double t0 = now();
    if (cycle(&a, req, (size_t)req_len, msg, close_frame) == 0) {
      double ms = (now() - t0) * 1000;
      pthread_mutex_lock(&lock);
      done++;
      if (ntimes < MAX_TIMES) times[ntimes++] = ms;
      pthread_mutex_unlock(&lock);
    } else {
      pthread_mutex_lock(&lock);
      errors++;
      pthread_mutex_unlock(&lock);
      usleep(1000);
    }
  }
  return NULL;
}

static int cmp(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: handshakes host port path threads seconds\n");
    return 2;
  }
  host = argv[1];
  port = atoi(argv[2]);
  path = argv[3];
  int threads = atoi(argv[4]);
  double secs = atof(argv[5]);
  if (threads < 1 || threads > 1024 || !(secs > 0)) {
    fprintf(stderr, "handshakes: expected 1-1024 threads and seconds > 0\n");
    return 2;
  }
  times = malloc(sizeof *times * MAX_TIMES);
  pthread_t *t = calloc((size_t)threads, sizeof *t);
  double t0 = now();
  deadline = t0 + secs;
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, run, NULL);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  double seconds = now() - t0;
  qsort(times, ntimes, sizeof *times, cmp);
  double p50 = ntimes ? times[ntimes / 2] : 0, p99 = ntimes ? times[(size_t)(ntimes * 0.99)] : 0;
  printf("{\"done\":%ld,\"errors\":%ld,\"seconds\":%.3f,\"p50\":%.3f,\"p99\":%.3f}\n", done, errors, seconds, p50, p99);
  return 0;
}
