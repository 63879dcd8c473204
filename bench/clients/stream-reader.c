/*
 * The bridge workload's reader: N WebSocket connections, each on its own
 * thread, reading binary frames for D seconds and counting their payload.
 * In C so that the client is not what limits the measurement: a Node client
 * spends about as much CPU per MiB as the bridge under test, and ran at a
 * full core before either bridge did (BENCHMARKS.md, "bridge").
 * argv: host port path connections seconds. Prints JSON like stream.mjs:
 * {"bytes":..,"frames":..,"seconds":..,"errors":..}.
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

#define BUF (1 << 20)

static const char *host, *path;
static int port;
static volatile int started, stop;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t total_bytes, total_frames;
static int errors, ready;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int open_ws(uint8_t *buf, size_t *left) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, host, &a.sin_addr);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) return -1;
  char req[512];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Protocol: binary\r\n\r\n",
                   path, host, port);
  if (write(fd, req, (size_t)n) != n) return close(fd), -1;
  size_t got = 0;
  for (;;) {
    ssize_t r = read(fd, buf + got, 4096);
    if (r <= 0) return close(fd), -1;
    got += (size_t)r;
    buf[got] = 0;
    char *end = strstr((char *)buf, "\r\n\r\n");
    if (!end) continue;
    if (strncmp((char *)buf, "HTTP/1.1 101", 12) != 0) return close(fd), -1;
    size_t head = (size_t)(end + 4 - (char *)buf);
    *left = got - head;
    memmove(buf, buf + head, *left);
    return fd;
  }
}

static void *reader(void *arg) {
  (void)arg;
  uint8_t *buf = malloc(BUF + 4097);
  size_t have = 0;
  int fd = open_ws(buf, &have);
  pthread_mutex_lock(&lock);
  if (fd < 0) errors++;
  ready++;
  pthread_mutex_unlock(&lock);
  if (fd < 0) return NULL;
  uint64_t bytes = 0, frames = 0, remaining = 0;
  /* Header bytes of a frame split across reads. */
  uint8_t hdr[14];
  size_t hlen = 0;
  size_t off = 0;
  for (;;) {
    while (off < have) {
      if (remaining) {
        size_t take = have - off < remaining ? have - off : (size_t)remaining;
        bytes += take;
        remaining -= take;
        off += take;
        if (!remaining) frames++;
        continue;
      }
      hdr[hlen++] = buf[off++];
      if (hlen < 2) continue;
      size_t need = 2 + ((hdr[1] & 0x7f) == 126 ? 2 : (hdr[1] & 0x7f) == 127 ? 8 : 0);
      if (hlen < need) continue;
      uint64_t len = hdr[1] & 0x7f;
      if (len == 126) len = ((uint64_t)hdr[2] << 8) | hdr[3];
      else if (len == 127) {
        len = 0;
        for (int i = 2; i < 10; i++) len = (len << 8) | hdr[i];
      }
      hlen = 0;
      remaining = len;
      if (!remaining) frames++;
    }
    /* Counted once per read, from the start of the measurement on. */
    if (started && (bytes || frames)) {
      __atomic_fetch_add(&total_bytes, bytes, __ATOMIC_RELAXED);
      __atomic_fetch_add(&total_frames, frames, __ATOMIC_RELAXED);
    }
    bytes = frames = 0;
    if (stop) break;
    ssize_t r = read(fd, buf, BUF);
    if (r <= 0) {
      if (!stop) {
        pthread_mutex_lock(&lock);
        errors++;
        pthread_mutex_unlock(&lock);
      }
      break;
    }
    have = (size_t)r;
    off = 0;
  }
  close(fd);
  free(buf);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: stream-reader host port path connections seconds\n");
    return 2;
  }
  host = argv[1];
  port = atoi(argv[2]);
  path = argv[3];
  int conns = atoi(argv[4]);
  double secs = atof(argv[5]);
  pthread_t th[64];
  if (conns < 1 || conns > 64) return 2;
  for (int i = 0; i < conns; i++) pthread_create(&th[i], NULL, reader, NULL);
  while (__atomic_load_n(&ready, __ATOMIC_SEQ_CST) < conns) usleep(1000);
  double t0 = now();
  started = 1;
  usleep((useconds_t)(secs * 1e6));
  uint64_t bytes = __atomic_load_n(&total_bytes, __ATOMIC_RELAXED);
  uint64_t frames = __atomic_load_n(&total_frames, __ATOMIC_RELAXED);
  double seconds = now() - t0;
  stop = 1;
  pthread_mutex_lock(&lock);
  printf("{\"bytes\":%llu,\"frames\":%llu,\"seconds\":%.3f,\"errors\":%d}\n", (unsigned long long)bytes, (unsigned long long)frames, seconds, errors);
  pthread_mutex_unlock(&lock);
  fflush(stdout);
  _exit(0);
}
