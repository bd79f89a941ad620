// bench:tftp's client: N parallel TFTP reads (RFC 1350, blksize RFC 2348, windowsize RFC 7440) from one
// epoll loop, in C, so the figure is the server's and not the client's.
//
// Why not the Node client (test/helpers/tftp-client.ts): every DATA block cost it an event-loop wake-up,
// a decode, a timer refresh and a dgram send (a JS object and a libuv request), more CPU per block than
// either server, so in lock-step it set the pace for both and with a window it capped them (bench:tftp
// prints both sides' CPU per round). This client does per block what atftp or a PXE ROM does: one
// recv, and one send per window; with a window it drains the socket with recvmmsg.
//
// usage: tftp-bench-client HOST PORT FILE [-n transfers] [-b blksize] [-w windowsize] [-t timeout_ms]
// prints one line: ok=N failed=N bytes=B seconds=S cpu_ms=C   (exit 0 when every transfer completed)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_PKT 65540

typedef struct {
  int sock, done, failed, have_peer, gap_acked, idle_rounds;
  uint64_t expected, bytes; // expected: the next block, counted from 1 without wrapping
  uint32_t blksize, window, in_window;
  int64_t heard_ns;
} xfer_t;

static struct sockaddr_in server;
static const char *file;
static unsigned req_blksize = 512, req_window = 1;
static unsigned char rrq[600];
static size_t rrq_len;

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void send_ack(xfer_t *x, uint64_t block) {
  unsigned char a[4] = {0, 4, (unsigned char)((block >> 8) & 0xff), (unsigned char)(block & 0xff)};
  (void)send(x->sock, a, 4, MSG_DONTWAIT);
}

static void build_rrq(void) {
  size_t n = 0;
  rrq[n++] = 0;
  rrq[n++] = 1;
  n += (size_t)snprintf((char *)rrq + n, sizeof rrq - n, "%s", file) + 1;
  n += (size_t)snprintf((char *)rrq + n, sizeof rrq - n, "octet") + 1;
  if (req_blksize != 512) {
    n += (size_t)snprintf((char *)rrq + n, sizeof rrq - n, "blksize") + 1;
    n += (size_t)snprintf((char *)rrq + n, sizeof rrq - n, "%u", req_blksize) + 1;
  }
  if (req_window > 1) {
    n += (size_t)snprintf((char *)rrq + n, sizeof rrq - n, "windowsize") + 1;
    n += (size_t)snprintf((char *)rrq + n, sizeof rrq - n, "%u", req_window) + 1;
  }
  rrq_len = n;
}

static void on_oack(xfer_t *x, const unsigned char *p, ssize_t len) {
  // name\0value\0 pairs; anything not acknowledged keeps its default (RFC 2347).
  const char *s = (const char *)p + 2, *end = (const char *)p + len;
  while (s < end) {
    const char *name = s;
    s += strnlen(s, (size_t)(end - s)) + 1;
    if (s >= end) break;
    const char *value = s;
    s += strnlen(s, (size_t)(end - s)) + 1;
    if (!strcasecmp(name, "blksize")) x->blksize = (uint32_t)atoi(value);
    if (!strcasecmp(name, "windowsize")) x->window = (uint32_t)atoi(value);
  }
  send_ack(x, 0);
}

static void on_data(xfer_t *x, const unsigned char *p, ssize_t len) {
  unsigned block = ((unsigned)p[2] << 8) | p[3];
  if (block != (x->expected & 0xffff)) {
    // A gap (RFC 7440 §4): acknowledge the last block in order, once, so the server resends from there.
    // A block from behind (a resent window's duplicate) is dropped.
    unsigned ahead = (block - (unsigned)(x->expected & 0xffff)) & 0xffff;
    if (ahead < 0x8000 && !x->gap_acked) {
      x->gap_acked = 1;
      x->in_window = 0;
      send_ack(x, x->expected - 1);
    }
    return;
  }
  x->gap_acked = 0;
  uint32_t n = (uint32_t)(len - 4);
  x->bytes += n;
  x->expected++;
  int last = n < x->blksize;
  if (last || ++x->in_window >= x->window) {
    x->in_window = 0;
    send_ack(x, x->expected - 1);
  }
  if (last) x->done = 1;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s HOST PORT FILE [-n transfers] [-b blksize] [-w windowsize] [-t timeout_ms]\n", argv[0]);
    return 2;
  }
  server.sin_family = AF_INET;
  server.sin_port = htons((uint16_t)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &server.sin_addr) != 1) return 2;
  file = argv[3];
  int count = 1, timeout_ms = 1000;
  for (int i = 4; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "-n")) count = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "-b")) req_blksize = (unsigned)atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "-w")) req_window = (unsigned)atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "-t")) timeout_ms = atoi(argv[i + 1]);
  }
  if (count < 1 || req_blksize < 8 || req_blksize > 65464 || req_window < 1) return 2;
  build_rrq();
  int ep = epoll_create1(0);
  xfer_t *xs = calloc((size_t)count, sizeof *xs);
  static unsigned char bufs[BATCH][MAX_PKT];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in from[BATCH];
  int64_t t0 = now_ns();
  for (int i = 0; i < count; i++) {
    xfer_t *x = &xs[i];
    x->expected = 1;
    x->blksize = 512;
    x->window = 1;
    x->sock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int rcv = 4 << 20;
    setsockopt(x->sock, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = x};
    epoll_ctl(ep, EPOLL_CTL_ADD, x->sock, &ev);
    x->heard_ns = now_ns();
    sendto(x->sock, rrq, rrq_len, 0, (struct sockaddr *)&server, sizeof server);
  }
  int left = count;
  struct epoll_event events[256];
  int64_t timeout_ns = (int64_t)timeout_ms * 1000000;
  while (left > 0) {
    int n = epoll_wait(ep, events, 256, timeout_ms < 50 ? timeout_ms : 50);
    if (n < 0 && errno != EINTR) break;
    for (int e = 0; e < n; e++) {
      xfer_t *x = events[e].data.ptr;
      if (x->done) continue;
      for (;;) {
        for (int k = 0; k < BATCH; k++) {
          iov[k].iov_base = bufs[k];
          iov[k].iov_len = MAX_PKT;
          memset(&msgs[k].msg_hdr, 0, sizeof msgs[k].msg_hdr);
          msgs[k].msg_hdr.msg_iov = &iov[k];
          msgs[k].msg_hdr.msg_iovlen = 1;
          msgs[k].msg_hdr.msg_name = &from[k];
          msgs[k].msg_hdr.msg_namelen = sizeof from[k];
        }
        // Lock-step: one datagram is all there can be, so a plain recv (no second call saying EAGAIN).
        int got = x->window > 1 ? recvmmsg(x->sock, msgs, BATCH, MSG_DONTWAIT, NULL) : -2;
        if (got == -2) {
          ssize_t r = recvfrom(x->sock, bufs[0], MAX_PKT, MSG_DONTWAIT, (struct sockaddr *)&from[0], &msgs[0].msg_hdr.msg_namelen);
          if (r < 0) got = -1;
          else { got = 1; msgs[0].msg_len = (unsigned)r; }
        }
        if (got <= 0) break;
        x->heard_ns = now_ns();
        x->idle_rounds = 0;
        for (int k = 0; k < got && !x->done && !x->failed; k++) {
          unsigned char *p = bufs[k];
          ssize_t len = msgs[k].msg_len;
          if (len < 4 || p[0] != 0) continue;
          if (!x->have_peer) {
            // The server's transfer TID (RFC 1350 §4): from now on only it is heard.
            x->have_peer = 1;
            connect(x->sock, (struct sockaddr *)&from[k], sizeof from[k]);
          }
          if (p[1] == 6) on_oack(x, p, len);
          else if (p[1] == 3) on_data(x, p, len);
          else if (p[1] == 5) x->failed = 1;
        }
        if (x->done || x->failed || x->window <= 1) break;
        if (got < BATCH) break;
      }
      if (x->done || x->failed) {
        epoll_ctl(ep, EPOLL_CTL_DEL, x->sock, NULL);
        close(x->sock);
        left--;
      }
    }
    int64_t now = now_ns();
    for (int i = 0; i < count; i++) {
      xfer_t *x = &xs[i];
      if (x->done || x->failed || now - x->heard_ns < timeout_ns) continue;
      x->heard_ns = now;
      if (++x->idle_rounds > 20) {
        x->failed = 1;
        epoll_ctl(ep, EPOLL_CTL_DEL, x->sock, NULL);
        close(x->sock);
        left--;
        continue;
      }
      if (x->have_peer) {
        x->in_window = 0;
        send_ack(x, x->expected - 1);
      } else {
        sendto(x->sock, rrq, rrq_len, 0, (struct sockaddr *)&server, sizeof server);
      }
    }
  }
  double seconds = (double)(now_ns() - t0) / 1e9;
  int ok = 0, failed = 0;
  uint64_t bytes = 0;
  for (int i = 0; i < count; i++) {
    if (xs[i].done) ok++;
    else failed++;
    bytes += xs[i].bytes;
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu_ms = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
  printf("ok=%d failed=%d bytes=%llu seconds=%.6f cpu_ms=%.1f\n", ok, failed, (unsigned long long)bytes, seconds, cpu_ms);
  return failed ? 1 : 0;
}
