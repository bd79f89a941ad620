// DHCP datagram I/O in batches: recvmmsg(2) and sendmmsg(2) on the event loop's own thread.
//
// Why: node:dgram costs a libuv read, a JS Buffer, an rinfo object and an emit per datagram received, and an
// address lookup, a SendWrap and a completion callback per datagram sent. A DHCP exchange is four datagrams,
// and flat out the listener spent more in that machinery (and in one system call per datagram, dear in a
// virtual machine) than in deciding the answers. Here a readable socket is drained with one recvmmsg into a
// buffer JS owns, JS hears once with the count, and the replies JS encoded into another buffer leave with
// one sendmmsg. The decisions stay in JS; this file only moves bytes.
//
// The socket is polled by libuv's own loop (uv_poll_t from napi_get_uv_event_loop), so there is no thread and
// no hand-over: JS runs from napi_make_callback, which drains promise jobs and nextTicks afterwards as any
// other I/O callback does.
//
// JS API (one object per socket):
//   open(address, port, rcvbuf, broadcast) -> { handle, port }   (throws Error with .code = errno name)
//   start(handle, recvBuffer, meta Uint32Array, slotSize, onBatch(count))
//       per datagram i: meta[3i] = length (> slotSize: truncated), meta[3i+1] = source IPv4 (host order),
//       meta[3i+2] = source port; the bytes at recvBuffer[i * slotSize ...]
//   send(handle, sendBuffer, meta Uint32Array, count) -> failures (0: all sent)
//       per datagram i: meta[4i] = offset, meta[4i+1] = length, meta[4i+2] = IPv4 (host order), meta[4i+3] = port
//   lastSendError(handle) -> errno of the last failed datagram (0: none)
//   close(handle)
#define _GNU_SOURCE
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BATCH 64
#define ROUNDS 4 // recvmmsg calls per wake-up while each fills the batch

typedef struct sock {
  int fd;
  int closed;
  int last_send_errno;
  napi_env env;
  uv_poll_t *poll;
  napi_ref on_batch, recv_ref, meta_ref;
  napi_async_context actx;
  unsigned char *rbuf;
  size_t rlen;
  uint32_t *meta;
  size_t meta_len;
  uint32_t slot;
  uint32_t slots;
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  struct sockaddr_in from[MAX_BATCH];
} sock_t;

#define CHECK(call)                                                                                          \
  do {                                                                                                       \
    if ((call) != napi_ok) {                                                                                 \
      napi_throw_error(env, NULL, "dhcpio: " #call " failed");                                               \
      return NULL;                                                                                           \
    }                                                                                                        \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  napi_value msg, code, error;
  char text[160];
  snprintf(text, sizeof text, "%s: %s", what, strerror(err));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_int32(env, err, &code);
  napi_create_error(env, NULL, msg, &error);
  napi_set_named_property(env, error, "errno", code);
  napi_throw(env, error);
  return NULL;
}

static void poll_closed(uv_handle_t *h) { free(h); }

static void release(sock_t *s) {
  if (s->closed) return;
  s->closed = 1;
  if (s->poll) {
    uv_poll_stop(s->poll);
    uv_close((uv_handle_t *)s->poll, poll_closed);
    s->poll = NULL;
  }
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  napi_env env = s->env;
  if (s->on_batch) napi_delete_reference(env, s->on_batch);
  if (s->recv_ref) napi_delete_reference(env, s->recv_ref);
  if (s->meta_ref) napi_delete_reference(env, s->meta_ref);
  if (s->actx) napi_async_destroy(env, s->actx);
  s->on_batch = s->recv_ref = s->meta_ref = NULL;
  s->actx = NULL;
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  sock_t *s = data;
  release(s);
  free(s);
}

static sock_t *sock_of(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) {
    napi_throw_type_error(env, NULL, "dhcpio: not a socket handle");
    return NULL;
  }
  return p;
}

static int ipv4_of(napi_env env, napi_value v, struct in_addr *out) {
  char text[64];
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, text, sizeof text, &n) != napi_ok) return -1;
  return inet_pton(AF_INET, text, out) == 1 ? 0 : -1;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct sockaddr_in a = {.sin_family = AF_INET};
  uint32_t port = 0, rcvbuf = 0;
  bool broadcast = false;
  if (argc < 4 || ipv4_of(env, argv[0], &a.sin_addr) != 0 || napi_get_value_uint32(env, argv[1], &port) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &rcvbuf) != napi_ok || napi_get_value_bool(env, argv[3], &broadcast) != napi_ok) {
    napi_throw_type_error(env, NULL, "dhcpio.open(address, port, rcvbuf, broadcast)");
    return NULL;
  }
  a.sin_port = htons((uint16_t)port);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int one = 1;
  // SO_REUSEADDR as node:dgram's reuseAddr: the listener on 0.0.0.0:67 and the reply socket on our address:67.
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      (broadcast && setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) != 0)) {
    int e = errno;
    close(fd);
    return throw_errno(env, "setsockopt", e);
  }
  if (rcvbuf) {
    int size = (int)rcvbuf;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size); // capped by net.core.rmem_max: best effort
  }
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "bind", e);
  }
  struct sockaddr_in bound;
  socklen_t blen = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &blen);
  sock_t *s = calloc(1, sizeof *s);
  if (!s) {
    close(fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  s->fd = fd;
  s->env = env;
  napi_value obj, handle, p;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_create_external(env, s, finalize, NULL, &handle));
  CHECK(napi_create_uint32(env, ntohs(bound.sin_port), &p));
  CHECK(napi_set_named_property(env, obj, "handle", handle));
  CHECK(napi_set_named_property(env, obj, "port", p));
  return obj;
}

/** One recvmmsg into the slots; the number of datagrams (0 when none was waiting or on an error). */
static int receive(sock_t *s) {
  for (uint32_t i = 0; i < s->slots; i++) {
    s->iov[i].iov_base = s->rbuf + (size_t)i * s->slot;
    s->iov[i].iov_len = s->slot;
    memset(&s->msgs[i].msg_hdr, 0, sizeof s->msgs[i].msg_hdr);
    s->msgs[i].msg_hdr.msg_iov = &s->iov[i];
    s->msgs[i].msg_hdr.msg_iovlen = 1;
    s->msgs[i].msg_hdr.msg_name = &s->from[i];
    s->msgs[i].msg_hdr.msg_namelen = sizeof s->from[i];
  }
  int n = recvmmsg(s->fd, s->msgs, s->slots, MSG_DONTWAIT, NULL);
  if (n <= 0) return 0; // EAGAIN (another reader won), or an error the next wake-up will see again
  for (int i = 0; i < n; i++) {
    uint32_t len = s->msgs[i].msg_len;
    if (s->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) len = s->slot + 1; // said as "longer than a slot"
    s->meta[3 * i] = len;
    s->meta[3 * i + 1] = ntohl(s->from[i].sin_addr.s_addr);
    s->meta[3 * i + 2] = ntohs(s->from[i].sin_port);
  }
  return n;
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  sock_t *s = h->data;
  if (status < 0 || s->closed) return;
  napi_env env = s->env;
  for (int round = 0; round < ROUNDS && !s->closed; round++) {
    int n = receive(s);
    if (n == 0) return;
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value fn, recv, arg;
    napi_get_reference_value(env, s->on_batch, &fn);
    napi_get_global(env, &recv);
    napi_create_uint32(env, (uint32_t)n, &arg);
    napi_status st = napi_make_callback(env, s->actx, recv, fn, 1, &arg, NULL);
    if (st == napi_pending_exception) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err); // as an exception thrown from any I/O callback
    }
    napi_close_handle_scope(env, scope);
    if ((uint32_t)n < s->slots) return;
  }
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "dhcpio.start(handle, recvBuffer, meta, slotSize, onBatch)");
    return NULL;
  }
  sock_t *s = sock_of(env, argv[0]);
  if (!s) return NULL;
  if (s->closed || s->poll) {
    napi_throw_error(env, NULL, "dhcpio.start: socket closed or already started");
    return NULL;
  }
  void *rbuf = NULL, *meta = NULL;
  size_t rlen = 0, mlen = 0;
  napi_typedarray_type mtype;
  napi_value mab;
  size_t moff;
  uint32_t slot = 0;
  if (napi_get_buffer_info(env, argv[1], &rbuf, &rlen) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &mtype, &mlen, &meta, &mab, &moff) != napi_ok || mtype != napi_uint32_array ||
      napi_get_value_uint32(env, argv[3], &slot) != napi_ok || slot == 0) {
    napi_throw_type_error(env, NULL, "dhcpio.start: a Buffer, a Uint32Array and a slot size");
    return NULL;
  }
  uint32_t slots = (uint32_t)(rlen / slot);
  if (slots > MAX_BATCH) slots = MAX_BATCH;
  if (slots > mlen / 3) slots = (uint32_t)(mlen / 3);
  if (slots == 0) {
    napi_throw_range_error(env, NULL, "dhcpio.start: buffers too small for one datagram");
    return NULL;
  }
  s->rbuf = rbuf;
  s->rlen = rlen;
  s->meta = meta;
  s->meta_len = mlen;
  s->slot = slot;
  s->slots = slots;
  // References keep the buffers (and so the pointers above) alive as long as the socket polls.
  CHECK(napi_create_reference(env, argv[1], 1, &s->recv_ref));
  CHECK(napi_create_reference(env, argv[2], 1, &s->meta_ref));
  CHECK(napi_create_reference(env, argv[4], 1, &s->on_batch));
  napi_value name;
  CHECK(napi_create_string_utf8(env, "rolecast.dhcpio", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &s->actx));
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  s->poll = malloc(sizeof *s->poll);
  if (!s->poll || uv_poll_init(loop, s->poll, s->fd) != 0) {
    free(s->poll);
    s->poll = NULL;
    return throw_errno(env, "uv_poll_init", EINVAL);
  }
  s->poll->data = s;
  uv_poll_start(s->poll, UV_READABLE, on_readable);
  return NULL;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = argc >= 4 ? sock_of(env, argv[0]) : NULL;
  if (!s) return NULL;
  void *buf = NULL, *meta = NULL;
  size_t blen = 0, mlen = 0, moff;
  napi_typedarray_type mtype;
  napi_value mab;
  uint32_t count = 0;
  if (napi_get_buffer_info(env, argv[1], &buf, &blen) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &mtype, &mlen, &meta, &mab, &moff) != napi_ok || mtype != napi_uint32_array ||
      napi_get_value_uint32(env, argv[3], &count) != napi_ok || count > mlen / 4) {
    napi_throw_type_error(env, NULL, "dhcpio.send(handle, buffer, meta, count)");
    return NULL;
  }
  uint32_t *m = meta;
  uint32_t failed = 0;
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  struct sockaddr_in to[MAX_BATCH];
  uint32_t done = 0;
  while (done < count && !s->closed) {
    uint32_t n = 0;
    for (; n < MAX_BATCH && done + n < count; n++) {
      uint32_t *e = m + 4 * (done + n);
      if ((size_t)e[0] + e[1] > blen) e[1] = 0; // out of range: sent empty, never read past the buffer
      iov[n].iov_base = (unsigned char *)buf + e[0];
      iov[n].iov_len = e[1];
      memset(&to[n], 0, sizeof to[n]);
      to[n].sin_family = AF_INET;
      to[n].sin_addr.s_addr = htonl(e[2]);
      to[n].sin_port = htons((uint16_t)e[3]);
      memset(&msgs[n].msg_hdr, 0, sizeof msgs[n].msg_hdr);
      msgs[n].msg_hdr.msg_iov = &iov[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
      msgs[n].msg_hdr.msg_name = &to[n];
      msgs[n].msg_hdr.msg_namelen = sizeof to[n];
    }
    int r = sendmmsg(s->fd, msgs, n, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      // The first datagram failed (ENETUNREACH, EACCES for a broadcast, EAGAIN with a full send buffer):
      // count it as lost, as node:dgram reports one failed send, and go on with the next.
      s->last_send_errno = errno;
      failed++;
      done++;
      continue;
    }
    done += (uint32_t)r;
  }
  napi_value out;
  CHECK(napi_create_uint32(env, failed, &out));
  return out;
}

static napi_value js_last_send_error(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = argc >= 1 ? sock_of(env, argv[0]) : NULL;
  if (!s) return NULL;
  napi_value out;
  CHECK(napi_create_int32(env, s->last_send_errno, &out));
  return out;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = argc >= 1 ? sock_of(env, argv[0]) : NULL;
  if (!s) return NULL;
  release(s);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, js_start, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
      {"lastSendError", NULL, js_last_send_error, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
