// TFTP data engine: the DATA/ACK loop of a read transfer (RFC 1350, 2347-2349, 7440) off the JS thread.
//
// Why: a lock-step transfer is one round trip per block, and in JS each round trip paid the event loop's
// wake-up, a dgram send (a JS object, a libuv request and a callback per packet) and a timer refresh:
// tftpd-hpa's C loop was faster than rolecast with its busy-poll off. The decision stays in JS (the RRQ,
// planBoot, the file, the negotiated options, the slots); JS hands the engine the transfer once the file
// is open and the options are known, and hears back twice: when the client first answers (the slot is
// "confirmed") and when the transfer ends.
//
// One engine thread per process owns an epoll instance and every transfer's socket: its own UDP socket
// (a new TID, RFC 1350 §4) bound to the server's address and connected to the client, so the kernel
// drops other TIDs' packets. The file is read ahead 32 KiB at a time with pread(2) into the transfer's
// buffer (at least one window), and a window is sent with one sendmmsg(2) (header + slice per block, no
// copy): a lock-step round trip is epoll_wait, recv and send, with a pread every ~22 blocks. Semantics as src/tftp/session.ts: block numbers roll over to 0; a duplicate ACK never
// retransmits in lock-step (Sorcerer's Apprentice, RFC 1123 §4.2.3.1); with a window an ACK from before
// the window resends it once per window (RFC 7440 §4); timeouts back off (x2, capped at 8x) and give up
// after `retries`; a client silent for maxStallMs ends whatever its timeout; an ERROR from the client ends
// the transfer (after the OACK it is OVMF's size probe). Busy-poll: after a send the thread polls epoll
// without sleeping for busyPollUs when the last round trip was that short (same rule as hotpoll.ts),
// yielding the core between polls, and only while no more tasks are runnable than there are cores.
#define _GNU_SOURCE
#include "engine.h" // the engine thread, request queue and threadsafe function shared with native/sendfile

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define MAX_EVENTS 256
#define MAX_WINDOW 64          // windowsize cap (options.ts caps lower)
#define HOT_POLL_MAX_ACTIVE 32 // with more transfers the thread is busy anyway
#define READ_AHEAD 32768       // file bytes read at once per transfer (one pread per ~22 blocks at 1468)

enum { ST_OK = 0, ST_TIMEOUT, ST_CLIENT_ERROR, ST_CANCELLED, ST_READ_ERROR, ST_SOCKET_ERROR, ST_STALLED };

typedef struct job {
  struct job *prev, *next;
  double id;
  int sock, file, done, in_oack, confirmed, tries, retries, resent_this_window;
  uint32_t blksize, window, retransmits, hot_polls;
  uint64_t size, last_block, base;
  int64_t timeout_ns, stall_ns, deadline_ns, heard_ns, sent_ns, rtt_ns;
  unsigned char *oack;
  size_t oack_len;
  unsigned char *buf; // read-ahead: buf_len bytes of the file from buf_off (room for buf_cap, >= one window)
  uint64_t buf_off;
  size_t buf_len, buf_cap;
  unsigned char hdr[MAX_WINDOW][4];
} job_t;

typedef struct event {
  double id;
  int kind; // 0: confirmed, 1: done
  int status, client_code, after_oack;
  double bytes, block, retransmits, hot_polls;
  char message[160];
} event_t;

typedef struct engine {
  rc_engine_t core; // first: the cleanup hook and call_js get this engine as an rc_engine_t *
  job_t *active;
  job_t *dead;
  int active_count;
  int64_t next_check_ns; // no timer is due before this: the job list is walked only then
  int64_t spin_until_ns;
  int64_t busy_ns;
  int64_t idle_checked_ns;
  int idle, cores, idle_only;
} engine_t;

static int64_t now_ns(void) { return rc_now_ns(); }

static void post(engine_t *e, event_t *ev) { rc_post(&e->core, ev); }

// ---- engine thread ----

static void finish(engine_t *e, job_t *j, int status, int client_code, const char *message) {
  if (j->done) return;
  j->done = 1;
  event_t *ev = calloc(1, sizeof *ev);
  if (ev) {
    ev->id = j->id;
    ev->kind = 1;
    ev->status = status;
    ev->client_code = client_code;
    ev->after_oack = j->in_oack;
    ev->bytes = (double)j->size;
    ev->block = (double)j->base;
    ev->retransmits = j->retransmits;
    ev->hot_polls = j->hot_polls;
    snprintf(ev->message, sizeof ev->message, "%s", message ? message : "");
  }
  epoll_ctl(e->core.epfd, EPOLL_CTL_DEL, j->sock, NULL);
  close(j->sock);
  close(j->file);
  if (j->prev) j->prev->next = j->next; else e->active = j->next;
  if (j->next) j->next->prev = j->prev;
  e->active_count--;
  // Freed after the current epoll batch: a later event of the same batch may still point at it.
  j->next = e->dead;
  j->prev = NULL;
  e->dead = j;
  if (ev) post(e, ev);
}

static void free_job(job_t *j);

static void free_dead(engine_t *e) {
  while (e->dead) {
    job_t *j = e->dead;
    e->dead = j->next;
    free_job(j);
  }
}

static void arm_timer(job_t *j, int64_t now) {
  int mult = j->tries >= 3 ? 8 : 1 << j->tries;
  j->deadline_ns = now + j->timeout_ns * mult;
}

// Spinning pays only while a core would otherwise sit idle: on a saturated machine it takes the time
// slice the client (or anything else) needs to answer. /proc/loadavg's 4th field counts the tasks
// runnable right now; checked at most every 100 ms.
static int core_idle(engine_t *e, int64_t now) {
  if (!e->idle_only) return 1;
  if (now - e->idle_checked_ns < 100000000) return e->idle;
  e->idle_checked_ns = now;
  e->idle = 1;
  FILE *f = fopen("/proc/loadavg", "r");
  if (!f) return e->idle;
  double a, b, c;
  int running = 0, total = 0;
  if (fscanf(f, "%lf %lf %lf %d/%d", &a, &b, &c, &running, &total) == 5) e->idle = running <= e->cores;
  fclose(f);
  return e->idle;
}

static void sent(engine_t *e, job_t *j) {
  int64_t now = now_ns();
  j->sent_ns = now;
  arm_timer(j, now);
  if (j->deadline_ns < e->next_check_ns) e->next_check_ns = j->deadline_ns;
  if (e->busy_ns > 0 && j->rtt_ns <= 2 * e->busy_ns && e->active_count <= HOT_POLL_MAX_ACTIVE && core_idle(e, now)) {
    e->spin_until_ns = now + e->busy_ns;
    j->hot_polls++;
  }
}

// Send blocks base .. base+window-1 (fewer at the end): one sendmmsg, and a pread when the read-ahead buffer
// does not hold them. Returns 0, or -1 if the job ended.
static int send_window(engine_t *e, job_t *j) {
  uint64_t end = j->base + j->window - 1;
  if (end > j->last_block) end = j->last_block;
  uint32_t count = (uint32_t)(end - j->base + 1);
  uint64_t off = (j->base - 1) * (uint64_t)j->blksize;
  uint64_t want = off >= j->size ? 0 : j->size - off;
  if (want > (uint64_t)count * j->blksize) want = (uint64_t)count * j->blksize;
  // Read ahead: refill from this window's start when the buffer does not hold the whole window, so a
  // lock-step transfer reads once per buffer, not once per block, and a resent window is still there.
  if (want > 0 && (off < j->buf_off || off + want > j->buf_off + j->buf_len)) {
    uint64_t fill = j->size - off < j->buf_cap ? j->size - off : j->buf_cap;
    size_t got = 0;
    while (got < fill) {
      ssize_t r = pread(j->file, j->buf + got, fill - got, (off_t)(off + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        if (got >= want) break; // short past this window: the next refill reports it
        char m[120];
        snprintf(m, sizeof m, "read failed: %s", r < 0 ? strerror(errno) : "file shorter than when opened");
        // Tell the client (ERROR 0, as tftpd-hpa does) rather than leave it to its own timeout.
        static const unsigned char read_error[] = {0, 5, 0, 0, 'R', 'e', 'a', 'd', ' ', 'e', 'r', 'r', 'o', 'r', 0};
        (void)send(j->sock, read_error, sizeof read_error, MSG_DONTWAIT);
        finish(e, j, ST_READ_ERROR, 0, m);
        return -1;
      }
      got += (size_t)r;
    }
    j->buf_off = off;
    j->buf_len = got;
  }
  unsigned char *data = want > 0 ? j->buf + (off - j->buf_off) : j->buf;
  struct mmsghdr msgs[MAX_WINDOW];
  struct iovec iov[MAX_WINDOW][2];
  memset(msgs, 0, sizeof(struct mmsghdr) * count);
  for (uint32_t i = 0; i < count; i++) {
    uint64_t n = j->base + i;
    uint64_t boff = (uint64_t)i * j->blksize;
    size_t len = boff >= want ? 0 : (want - boff < j->blksize ? (size_t)(want - boff) : j->blksize);
    j->hdr[i][0] = 0;
    j->hdr[i][1] = 3;
    j->hdr[i][2] = (unsigned char)((n >> 8) & 0xff);
    j->hdr[i][3] = (unsigned char)(n & 0xff);
    iov[i][0].iov_base = j->hdr[i];
    iov[i][0].iov_len = 4;
    iov[i][1].iov_base = data + boff;
    iov[i][1].iov_len = len;
    msgs[i].msg_hdr.msg_iov = iov[i];
    msgs[i].msg_hdr.msg_iovlen = 2;
  }
  uint32_t done = 0;
  while (done < count) {
    int r = sendmmsg(j->sock, msgs + done, count - done, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      // A full socket buffer drops the rest of the window: the client's timeout or ACK recovers it.
      if (errno == EAGAIN || errno == ENOBUFS) break;
      char m[120];
      snprintf(m, sizeof m, "socket error: %s", strerror(errno));
      finish(e, j, ST_SOCKET_ERROR, 0, m);
      return -1;
    }
    done += (uint32_t)r;
  }
  sent(e, j);
  return 0;
}

static int transmit(engine_t *e, job_t *j) {
  if (!j->in_oack) return send_window(e, j);
  if (send(j->sock, j->oack, j->oack_len, 0) < 0 && errno != EAGAIN && errno != ENOBUFS) {
    char m[120];
    snprintf(m, sizeof m, "socket error: %s", strerror(errno));
    finish(e, j, ST_SOCKET_ERROR, 0, m);
    return -1;
  }
  sent(e, j);
  return 0;
}

static void on_ack(engine_t *e, job_t *j, unsigned wire) {
  if (j->in_oack) {
    if (wire != 0) return;
    j->in_oack = 0;
    j->tries = 0;
    j->resent_this_window = 0;
    send_window(e, j);
    return;
  }
  // The one block in [base-1, base+window-1] this 16-bit number can mean.
  uint64_t lo = j->base - 1;
  uint64_t n = lo + ((wire - (lo & 0xffff) + 0x10000) & 0xffff);
  if (n > j->base + j->window - 1) return; // not something we sent
  if (n < j->base) {
    if (j->window > 1 && !j->resent_this_window) {
      j->resent_this_window = 1;
      j->retransmits++;
      send_window(e, j);
    }
    return;
  }
  j->base = n + 1;
  j->tries = 0;
  j->resent_this_window = 0;
  if (j->base > j->last_block) {
    finish(e, j, ST_OK, 0, NULL);
    return;
  }
  send_window(e, j);
}

static void confirm(engine_t *e, job_t *j) {
  j->confirmed = 1;
  event_t *ev = calloc(1, sizeof *ev);
  if (!ev) return;
  ev->id = j->id;
  ev->kind = 0;
  post(e, ev);
}

// One datagram per readiness event (epoll is level-triggered: another waiting one is reported again), so
// a lock-step round trip costs epoll_wait, recv, pread and send, not a second recv that says EAGAIN.
static void on_readable(engine_t *e, job_t *j) {
  unsigned char pkt[1024];
  ssize_t r;
  do r = recv(j->sock, pkt, sizeof pkt - 1, MSG_DONTWAIT); while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    char m[120];
    snprintf(m, sizeof m, "socket error: %s", strerror(errno));
    finish(e, j, ST_SOCKET_ERROR, 0, m);
    return;
  }
  int64_t now = now_ns();
  j->heard_ns = now;
  if (j->sent_ns) j->rtt_ns = now - j->sent_ns;
  if (!j->confirmed) confirm(e, j);
  if (r >= 4 && pkt[0] == 0 && pkt[1] == 4) {
    on_ack(e, j, ((unsigned)pkt[2] << 8) | pkt[3]);
  } else if (r >= 4 && pkt[0] == 0 && pkt[1] == 5) {
    pkt[r] = 0;
    char m[160];
    snprintf(m, sizeof m, "client error %u: %.120s", ((unsigned)pkt[2] << 8) | pkt[3], (const char *)pkt + 4);
    finish(e, j, ST_CLIENT_ERROR, ((int)pkt[2] << 8) | pkt[3], m);
  } // anything else on this TID is noise
}

// Retransmits, give-ups and stalls; returns the earliest time anything can be due next.
static int64_t on_timers(engine_t *e, int64_t now) {
  int64_t next = now + 1000000000; // at least once a second
  job_t *j = e->active;
  while (j) {
    job_t *following = j->next;
    if (now - j->heard_ns >= j->stall_ns) {
      char m[80];
      snprintf(m, sizeof m, "client silent for %lld s", (long long)(j->stall_ns / 1000000000));
      finish(e, j, ST_STALLED, 0, m);
    } else {
      if (now >= j->deadline_ns) {
        j->tries++;
        if (j->tries > j->retries) {
          char m[120];
          snprintf(m, sizeof m, "timed out after %d retransmits at block %llu", j->retries, (unsigned long long)j->base);
          finish(e, j, ST_TIMEOUT, 0, m);
        } else {
          j->retransmits++;
          transmit(e, j);
        }
      }
      if (!j->done) {
        if (j->deadline_ns < next) next = j->deadline_ns;
        if (j->heard_ns + j->stall_ns < next) next = j->heard_ns + j->stall_ns;
      }
    }
    j = following;
  }
  return next;
}

static int wait_ms(engine_t *e, int64_t now) {
  if (now < e->spin_until_ns) return 0;
  if (!e->active) return -1;
  if (e->next_check_ns <= now) return 0;
  int64_t ms = (e->next_check_ns - now + 999999) / 1000000;
  return ms > 60000 ? 60000 : (int)ms;
}

static void take_requests(engine_t *e, int *stop) {
  rc_request_t *r = rc_take(&e->core, stop);
  while (r) {
    rc_request_t *next = r->next;
    if (r->job) {
      job_t *j = r->job;
      j->next = e->active;
      if (e->active) e->active->prev = j;
      e->active = j;
      e->active_count++;
      struct epoll_event ev = {.events = EPOLLIN, .data.ptr = j};
      int64_t now = now_ns();
      j->heard_ns = now;
      if (epoll_ctl(e->core.epfd, EPOLL_CTL_ADD, j->sock, &ev) != 0) {
        char m[120];
        snprintf(m, sizeof m, "socket error: epoll: %s", strerror(errno));
        finish(e, j, ST_SOCKET_ERROR, 0, m);
      } else {
        transmit(e, j);
        if (!j->done && j->heard_ns + j->stall_ns < e->next_check_ns) e->next_check_ns = j->heard_ns + j->stall_ns;
      }
    } else {
      for (job_t *j = e->active; j; j = j->next) {
        if (j->id == r->id) {
          finish(e, j, ST_CANCELLED, 0, "cancelled");
          break;
        }
      }
    }
    free(r);
    r = next;
  }
}

static void *engine_main(void *arg) {
  engine_t *e = arg;
  struct epoll_event events[MAX_EVENTS];
  e->next_check_ns = INT64_MAX;
  for (;;) {
    int timeout = wait_ms(e, now_ns());
    int n = epoll_wait(e->core.epfd, events, MAX_EVENTS, timeout);
    if (n < 0 && errno != EINTR) break;
    // Spinning with nothing to do: let whatever else is runnable on this core have it (on a busy machine
    // that is often the very client whose ACK we wait for); returns at once when nothing is.
    if (n == 0 && timeout == 0 && e->spin_until_ns) sched_yield();
    int stop = 0;
    for (int i = 0; i < n; i++) {
      job_t *j = events[i].data.ptr;
      if (j == NULL) {
        take_requests(e, &stop);
      } else if (!j->done) {
        on_readable(e, j);
      }
    }
    int64_t now = now_ns();
    if (now >= e->next_check_ns) e->next_check_ns = e->active ? on_timers(e, now) : INT64_MAX;
    free_dead(e);
    if (stop) break;
  }
  return NULL;
}

// ---- JS thread ----

static void call_js(napi_env env, napi_value cb, void *context, void *data) {
  engine_t *e = context;
  event_t *ev = data;
  if (env == NULL || cb == NULL) {
    free(ev);
    return;
  }
  if (ev->kind == 1) rc_job_ended(env, &e->core);
  napi_value argv[3], info, v, undefined;
  napi_create_double(env, ev->id, &argv[0]);
  napi_create_int32(env, ev->kind, &argv[1]);
  napi_create_object(env, &info);
  napi_create_int32(env, ev->status, &v);
  napi_set_named_property(env, info, "status", v);
  napi_create_int32(env, ev->client_code, &v);
  napi_set_named_property(env, info, "clientCode", v);
  napi_get_boolean(env, ev->after_oack, &v);
  napi_set_named_property(env, info, "afterOack", v);
  napi_create_double(env, ev->bytes, &v);
  napi_set_named_property(env, info, "bytes", v);
  napi_create_double(env, ev->block, &v);
  napi_set_named_property(env, info, "block", v);
  napi_create_double(env, ev->retransmits, &v);
  napi_set_named_property(env, info, "retransmits", v);
  napi_create_double(env, ev->hot_polls, &v);
  napi_set_named_property(env, info, "hotPolls", v);
  napi_create_string_utf8(env, ev->message, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, info, "message", v);
  argv[2] = info;
  free(ev);
  napi_get_undefined(env, &undefined);
  napi_call_function(env, undefined, cb, 3, argv, NULL);
}

static void free_job(job_t *j) {
  free(j->oack);
  free(j->buf);
  free(j);
}

static void drop_job(void *job) {
  job_t *j = job;
  close(j->sock);
  close(j->file);
  free_job(j);
}

static void stop_engine(void *arg) {
  engine_t *e = arg;
  rc_stop(&e->core);
  rc_drop_queue(&e->core, drop_job);
  for (job_t *j = e->active; j;) {
    job_t *next = j->next;
    drop_job(j);
    j = next;
  }
  e->active = NULL;
  free_dead(e);
  rc_close(&e->core);
}

static void free_engine(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  engine_t *e = data;
  pthread_mutex_destroy(&e->core.lock);
  free(e);
}

static engine_t *get_engine(napi_env env) {
  engine_t *e = NULL;
  napi_get_instance_data(env, (void **)&e);
  return e;
}

// init(onEvent: (id, kind, info) => void, busyPollUs, idleOnly = 1): starts the engine thread (once per
// environment); idleOnly 0 spins whatever the machine's load (tests of the spin rule itself).
static napi_value js_init(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  engine_t *e = get_engine(env);
  napi_valuetype type = napi_undefined;
  double busy = 0;
  if (argc >= 1) napi_typeof(env, argv[0], &type);
  if (type != napi_function || argc < 2 || !rc_get_int(env, argv[1], 0, 1000000, &busy)) {
    napi_throw_type_error(env, NULL, "init(onEvent, busyPollUs): a function and 0..1000000 expected");
    return NULL;
  }
  double idle_only = 1;
  if (argc >= 3 && !rc_get_int(env, argv[2], 0, 1, &idle_only)) idle_only = 1;
  e->idle_only = (int)idle_only;
  e->busy_ns = (int64_t)busy * 1000; // a later server in the same process sets its own budget
  if (e->core.started) return NULL;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  e->cores = cores > 0 ? (int)cores : 1;
  rc_start(env, &e->core, argv[0], "tftp-engine", call_js, engine_main, stop_engine);
  return NULL;
}

// submit(bindIp, clientIp, clientPort, fileFd, size, blksize, windowsize, timeoutMs, retries, maxStallMs, oack?) -> id
static napi_value js_submit(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  engine_t *e = get_engine(env);
  if (!e->core.started) {
    napi_throw_error(env, NULL, "tftp engine not started: call init() first");
    return NULL;
  }
  char bind_ip[64], client_ip[64];
  size_t len;
  double port, fd, size, blksize, window, timeout, retries, stall;
  if (argc < 10 || napi_get_value_string_utf8(env, argv[0], bind_ip, sizeof bind_ip, &len) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], client_ip, sizeof client_ip, &len) != napi_ok ||
      !rc_get_int(env, argv[2], 1, 65535, &port) || !rc_get_int(env, argv[3], 0, INT32_MAX, &fd) ||
      !rc_get_int(env, argv[4], 0, 9007199254740991.0, &size) || !rc_get_int(env, argv[5], 8, 65464, &blksize) ||
      !rc_get_int(env, argv[6], 1, MAX_WINDOW, &window) || !rc_get_int(env, argv[7], 1, 3600000, &timeout) ||
      !rc_get_int(env, argv[8], 0, 1000, &retries) || !rc_get_int(env, argv[9], 1, 86400000, &stall)) {
    napi_throw_range_error(env, NULL, "submit(bindIp, clientIp, clientPort, fileFd, size, blksize, windowsize, timeoutMs, retries, maxStallMs, oack?): bad argument");
    return NULL;
  }
  struct sockaddr_in local = {.sin_family = AF_INET}, peer = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, bind_ip, &local.sin_addr) != 1 || inet_pton(AF_INET, client_ip, &peer.sin_addr) != 1) {
    napi_throw_range_error(env, NULL, "submit: IPv4 addresses expected");
    return NULL;
  }
  job_t *j = calloc(1, sizeof *j);
  if (!j) return rc_throw_errno(env, ENOMEM, "submit");
  j->sock = j->file = -1;
  const char *failed = NULL;
  int err = 0;
  if (argc >= 11) {
    bool is_buffer = false;
    napi_is_buffer(env, argv[10], &is_buffer);
    if (is_buffer) {
      void *data;
      napi_get_buffer_info(env, argv[10], &data, &j->oack_len);
      j->oack = malloc(j->oack_len ? j->oack_len : 1);
      if (j->oack) memcpy(j->oack, data, j->oack_len);
      j->in_oack = 1;
    }
  }
  // Read-ahead room: READ_AHEAD bytes in whole blocks, at least one window, at most the file (rounded up).
  size_t cap = (READ_AHEAD / (size_t)blksize) * (size_t)blksize;
  if (cap < (size_t)window * (size_t)blksize) cap = (size_t)window * (size_t)blksize;
  if ((uint64_t)cap > (uint64_t)size) cap = (size_t)size;
  j->buf_cap = cap;
  j->buf = malloc(cap ? cap : 1);
  if (!j->buf || (j->in_oack && !j->oack)) {
    err = ENOMEM;
    failed = "submit";
  } else if ((j->sock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
    err = errno;
    failed = "submit: socket";
  } else if (bind(j->sock, (struct sockaddr *)&local, sizeof local) != 0) {
    err = errno;
    failed = "submit: bind";
  } else if (connect(j->sock, (struct sockaddr *)&peer, sizeof peer) != 0) {
    err = errno;
    failed = "submit: connect";
  } else if ((j->file = fcntl((int)fd, F_DUPFD_CLOEXEC, 0)) < 0) {
    err = errno;
    failed = "submit: dup(file)";
  }
  if (failed) {
    if (j->sock >= 0) close(j->sock);
    free_job(j);
    return rc_throw_errno(env, err, failed);
  }
  j->size = (uint64_t)size;
  j->blksize = (uint32_t)blksize;
  j->window = (uint32_t)window;
  // The last block is the first one shorter than blksize: a 0-byte block when size is a multiple.
  j->last_block = j->size / j->blksize + 1;
  j->base = 1;
  j->timeout_ns = (int64_t)timeout * 1000000;
  j->retries = (int)retries;
  j->stall_ns = (int64_t)stall * 1000000;
  // The worker may end and free the job as soon as it is queued: only the local id is used after.
  double id = j->id = e->core.next_id + 1;
  if (rc_enqueue(&e->core, j, id) != 0) {
    drop_job(j);
    return rc_throw_errno(env, ENOMEM, "submit");
  }
  e->core.next_id = id;
  rc_job_started(env, &e->core);
  napi_value result;
  napi_create_double(env, id, &result);
  return result;
}

// cancel(id): ends the transfer at the engine's next turn (a no-op once it ended).
static napi_value js_cancel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  engine_t *e = get_engine(env);
  double id;
  if (argc < 1 || !rc_get_int(env, argv[0], 1, 9007199254740991.0, &id)) {
    napi_throw_range_error(env, NULL, "cancel(id): id expected");
    return NULL;
  }
  if (!e->core.started) return NULL;
  if (rc_enqueue(&e->core, NULL, id) != 0) return rc_throw_errno(env, ENOMEM, "cancel");
  return NULL;
}

NAPI_MODULE_INIT() {
  engine_t *e = calloc(1, sizeof *e);
  if (!e) {
    napi_throw_error(env, NULL, "tftp: out of memory");
    return NULL;
  }
  rc_engine_init(&e->core);
  napi_set_instance_data(env, e, free_engine, NULL);
  napi_property_descriptor props[] = {
      {"init", NULL, js_init, NULL, NULL, NULL, napi_enumerable, NULL},
      {"submit", NULL, js_submit, NULL, NULL, NULL, napi_enumerable, NULL},
      {"cancel", NULL, js_cancel, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
