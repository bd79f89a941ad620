// sendfile engine: zero-copy file -> socket transfers for Node, off the JS thread.
//
// Each engine thread (init() starts 1..MAX_THREADS of them per Node environment; jobs are dealt out round
// robin, so the kernel's copy and TCP work spreads over the cores) owns an epoll instance. JS submits jobs (socket fd, file fd, offset, length); the engine dup()s both fds, so it keeps working
// on the same open file descriptions (the socket stays non-blocking, as libuv made it) without touching libuv's
// own epoll registration, and loops sendfile(2) until EAGAIN, then arms EPOLLOUT|EPOLLONESHOT on its dup and
// serves other jobs. A job ends on completion, on any error, on cancel() (ECANCELED) or when it made no progress
// for its idle timeout (ETIMEDOUT); the engine closes its dups and posts {id, sent, errno} back to JS through a
// threadsafe function. The threadsafe function is referenced only while jobs are pending, so an idle engine
// never keeps the process alive; an environment cleanup hook stops and joins the thread.
//
// SIGPIPE: sendfile(2) has no MSG_NOSIGNAL. Node ignores SIGPIPE, but JS code may install a handler; the engine
// thread therefore blocks SIGPIPE and consumes any pending one after EPIPE, so the signal never reaches a handler
// or kills the process.
#define _GNU_SOURCE
#include "engine.h" // the engine thread, request queue and threadsafe function shared with native/tftp

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#ifndef TCP_RTO_MAX_MS
#define TCP_RTO_MAX_MS 44 // Linux 6.15+: the largest retransmission timeout of this socket, in ms (1000..120000)
#endif

#define CHUNK ((size_t)16 << 20)         // largest single sendfile(2) call
#define TURN_BUDGET ((uint64_t)16 << 20) // bytes one job may send before yielding to the others
#define MAX_EVENTS 256
#define MAX_THREADS 16

typedef struct job {
  struct job *prev, *next; // active list (engine thread only)
  double id;
  int sock;  // dup of the caller's socket fd
  int file;  // dup of the caller's file fd
  int armed; // registered in epoll
  int done;
  off_t offset;
  uint64_t left;
  uint64_t sent;
  int64_t timeout_ms; // 0: none
  int64_t last_progress_ms;
} job_t;

typedef struct completion {
  double id;
  double sent;
  int err;
} completion_t;

typedef struct engine {
  rc_engine_t core; // first: the cleanup hook and call_js get this engine as an rc_engine_t *
  // engine thread only
  job_t *active;
  job_t *dead; // completed this turn, freed after the event batch
  // JS thread only
  int index; // position in the set: ids are next_id * count + index, so an id names its engine
  int count;
} engine_t;

typedef struct engine_set {
  engine_t *engines[MAX_THREADS];
  int count;      // started engines
  uint32_t deal;  // round-robin cursor (JS thread only)
} engine_set_t;

static int64_t now_ms(void) { return rc_now_ns() / 1000000; }

static void drain_sigpipe(void) {
  sigset_t pending, pipe_set;
  if (sigpending(&pending) != 0 || !sigismember(&pending, SIGPIPE)) return;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  struct timespec zero = {0, 0};
  while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE) {
  }
}

// ---- engine thread ----

static void complete(engine_t *e, job_t *j, int err) {
  if (j->done) return;
  j->done = 1;
  if (j->armed) epoll_ctl(e->core.epfd, EPOLL_CTL_DEL, j->sock, NULL); // the description outlives our dup: must DEL
  close(j->sock);
  close(j->file);
  j->sock = j->file = -1;
  if (j->prev) j->prev->next = j->next; else e->active = j->next;
  if (j->next) j->next->prev = j->prev;
  j->next = e->dead;
  j->prev = NULL;
  e->dead = j;
  completion_t *c = malloc(sizeof *c);
  if (!c) return; // out of memory: the job's promise never settles; nothing better to do on this thread
  c->id = j->id;
  c->sent = (double)j->sent;
  c->err = err;
  rc_post(&e->core, c);
}

static void arm(engine_t *e, job_t *j) {
  struct epoll_event ev = {.events = EPOLLOUT | EPOLLONESHOT, .data.ptr = j};
  int op = j->armed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (epoll_ctl(e->core.epfd, op, j->sock, &ev) != 0) {
    complete(e, j, errno);
    return;
  }
  j->armed = 1;
}

// Send until done, EAGAIN, an error or this turn's budget; re-arm if there is more to send.
static void pump(engine_t *e, job_t *j) {
  uint64_t budget = TURN_BUDGET;
  while (j->left > 0) {
    if (budget == 0) { // writable still: epoll reports it at once, after the other ready jobs had their turn
      arm(e, j);
      return;
    }
    size_t n = j->left < CHUNK ? (size_t)j->left : CHUNK;
    ssize_t r = sendfile(j->sock, j->file, &j->offset, n);
    if (r > 0) {
      j->left -= (uint64_t)r;
      j->sent += (uint64_t)r;
      budget = (uint64_t)r >= budget ? 0 : budget - (uint64_t)r;
      j->last_progress_ms = now_ms();
      continue;
    }
    if (r == 0) { // end of file before `length` bytes
      complete(e, j, ENODATA);
      return;
    }
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      arm(e, j);
      return;
    }
    if (err == EPIPE) drain_sigpipe();
    complete(e, j, err);
    return;
  }
  complete(e, j, 0);
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
      j->last_progress_ms = now_ms();
      pump(e, j);
    } else {
      for (job_t *j = e->active; j; j = j->next) {
        if (j->id == r->id) {
          complete(e, j, ECANCELED);
          break;
        }
      }
    }
    free(r);
    r = next;
  }
}

// Ends jobs past their idle timeout; returns the epoll_wait timeout until the next deadline (-1: none).
static int expire(engine_t *e) {
  int64_t now = now_ms(), next = -1;
  job_t *j = e->active;
  while (j) {
    job_t *following = j->next;
    if (j->timeout_ms > 0) {
      int64_t deadline = j->last_progress_ms + j->timeout_ms;
      if (deadline <= now) {
        complete(e, j, ETIMEDOUT);
      } else if (next < 0 || deadline < next) {
        next = deadline;
      }
    }
    j = following;
  }
  if (next < 0) return -1;
  int64_t wait = next - now;
  return wait > 1000000 ? 1000000 : (int)wait;
}

static void *engine_main(void *arg) {
  engine_t *e = arg;
  struct epoll_event events[MAX_EVENTS];
  int stop = 0;
  while (!stop) {
    int n = epoll_wait(e->core.epfd, events, MAX_EVENTS, expire(e));
    if (n < 0) {
      if (errno == EINTR) continue;
      break; // cannot happen with valid fds; leave pending jobs to the cleanup hook
    }
    for (int i = 0; i < n; i++) {
      job_t *j = events[i].data.ptr;
      if (j == NULL) {
        take_requests(e, &stop);
      } else if (!j->done) {
        pump(e, j);
      }
    }
    while (e->dead) {
      job_t *j = e->dead;
      e->dead = j->next;
      free(j);
    }
  }
  return NULL;
}

// ---- JS thread ----

static void call_js(napi_env env, napi_value cb, void *context, void *data) {
  engine_t *e = context;
  completion_t *c = data;
  if (env == NULL || cb == NULL) {
    free(c);
    return;
  }
  rc_job_ended(env, &e->core);
  napi_value argv[3], undefined;
  napi_create_double(env, c->id, &argv[0]);
  napi_create_double(env, c->sent, &argv[1]);
  napi_create_int32(env, c->err, &argv[2]);
  free(c);
  napi_get_undefined(env, &undefined);
  napi_call_function(env, undefined, cb, 3, argv, NULL);
}

static void drop_job(void *job) {
  job_t *j = job;
  close(j->sock);
  close(j->file);
  free(j);
}

static void stop_engine(void *arg) {
  engine_t *e = arg;
  rc_stop(&e->core);
  // Jobs still queued or active at teardown: close their dups, drop them.
  rc_drop_queue(&e->core, drop_job);
  for (job_t *j = e->active; j;) {
    job_t *next = j->next;
    drop_job(j);
    j = next;
  }
  e->active = NULL;
  rc_close(&e->core);
}

static void free_set(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  engine_set_t *set = data;
  for (int i = 0; i < MAX_THREADS; i++) {
    engine_t *e = set->engines[i];
    if (!e) continue;
    pthread_mutex_destroy(&e->core.lock);
    free(e);
  }
  free(set);
}

static engine_set_t *get_set(napi_env env) {
  engine_set_t *set = NULL;
  napi_get_instance_data(env, (void **)&set);
  return set;
}

static int get_int64(napi_env env, napi_value v, int64_t *out) {
  double d;
  if (!rc_get_int(env, v, 0, 9007199254740991.0, &d)) return 0;
  *out = (int64_t)d;
  return 1;
}

// init(onComplete: (id, sent, errno) => void, threads = 1): starts the engine threads (once).
static napi_value js_init(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype type = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &type);
  if (type != napi_function) {
    napi_throw_type_error(env, NULL, "init(onComplete, threads?): onComplete must be a function");
    return NULL;
  }
  int64_t threads = 1;
  napi_valuetype ttype = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &ttype);
  if (ttype != napi_undefined && (!get_int64(env, argv[1], &threads) || threads < 1 || threads > MAX_THREADS)) {
    napi_throw_range_error(env, NULL, "init(onComplete, threads?): threads must be an integer from 1 to 16");
    return NULL;
  }
  engine_set_t *set = get_set(env);
  if (set->count > 0) {
    napi_throw_error(env, NULL, "sendfile engine already started");
    return NULL;
  }
  for (int i = 0; i < (int)threads; i++) {
    engine_t *e = calloc(1, sizeof *e);
    if (!e) return rc_throw_errno(env, ENOMEM, "init");
    rc_engine_init(&e->core);
    e->index = i;
    e->count = (int)threads;
    set->engines[i] = e;
    if (rc_start(env, &e->core, argv[0], "sendfile-engine", call_js, engine_main, stop_engine) != 0) {
      for (int k = 0; k < i; k++) set->engines[k]->count = i; // the ones started serve alone; ids route among them
      return NULL;
    }
    set->count = i + 1;
  }
  return NULL;
}

// submit(sockFd, fileFd, offset, length, idleTimeoutMs?) -> id
static napi_value js_submit(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  engine_set_t *set = get_set(env);
  if (set->count == 0) {
    napi_throw_error(env, NULL, "sendfile engine not started: call init() first");
    return NULL;
  }
  engine_t *e = set->engines[set->deal++ % (uint32_t)set->count];
  int64_t sock, file, offset, length, timeout = 0;
  if (argc < 4 || !get_int64(env, argv[0], &sock) || !get_int64(env, argv[1], &file) ||
      !get_int64(env, argv[2], &offset) || !get_int64(env, argv[3], &length) ||
      (argc >= 5 && !get_int64(env, argv[4], &timeout)) || sock > INT32_MAX || file > INT32_MAX) {
    napi_throw_range_error(env, NULL,
                           "submit(sockFd, fileFd, offset, length, idleTimeoutMs?): non-negative safe integers expected");
    return NULL;
  }
  int flags = fcntl((int)sock, F_GETFL);
  if (flags < 0) return rc_throw_errno(env, errno, "submit: socket fd");
  if (!(flags & O_NONBLOCK)) return rc_throw_errno(env, EINVAL, "submit: socket fd must be non-blocking");
  job_t *j = calloc(1, sizeof *j);
  const char *failed = NULL;
  int err = ENOMEM;
  if (!j) {
    failed = "submit";
  } else if ((j->sock = fcntl((int)sock, F_DUPFD_CLOEXEC, 0)) < 0) {
    err = errno;
    failed = "submit: dup(socket)";
  } else if ((j->file = fcntl((int)file, F_DUPFD_CLOEXEC, 0)) < 0) {
    err = errno;
    close(j->sock);
    failed = "submit: dup(file)";
  }
  if (failed) {
    free(j);
    return rc_throw_errno(env, err, failed);
  }
  // The worker may end and free the job as soon as it is queued: only the local id is used after.
  double id = j->id = (e->core.next_id + 1) * e->count + e->index;
  j->offset = (off_t)offset;
  j->left = (uint64_t)length;
  j->timeout_ms = timeout;
  if (rc_enqueue(&e->core, j, id) != 0) {
    drop_job(j);
    return rc_throw_errno(env, ENOMEM, "submit");
  }
  e->core.next_id++;
  rc_job_started(env, &e->core);
  napi_value result;
  napi_create_double(env, id, &result);
  return result;
}

// cancel(id): the job ends with ECANCELED at the engine's next turn (no-op if it already ended).
static napi_value js_cancel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  engine_set_t *set = get_set(env);
  int64_t id;
  if (argc < 1 || !get_int64(env, argv[0], &id)) {
    napi_throw_range_error(env, NULL, "cancel(id): id expected");
    return NULL;
  }
  if (set->count == 0) return NULL;
  engine_t *e = set->engines[0];
  if (e->count > 0) e = set->engines[id % e->count];
  if (!e || !e->core.started) return NULL;
  if (rc_enqueue(&e->core, NULL, (double)id) != 0) return rc_throw_errno(env, ENOMEM, "cancel");
  return NULL;
}

// rtoMax(sockFd, ms) -> 0, or the errno (ENOPROTOOPT on a kernel before 6.15, EINVAL outside 1000..120000):
// caps the socket's retransmission backoff. Never throws: the caller decides what a refusal means.
static napi_value js_rto_max(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t fd, ms;
  if (argc < 2 || !get_int64(env, argv[0], &fd) || !get_int64(env, argv[1], &ms) || fd < 0 || fd > INT32_MAX || ms < 0 || ms > INT32_MAX) {
    napi_throw_range_error(env, NULL, "rtoMax(sockFd, ms): two non-negative integers expected");
    return NULL;
  }
  int v = (int)ms;
  int rc = setsockopt((int)fd, IPPROTO_TCP, TCP_RTO_MAX_MS, &v, sizeof v) == 0 ? 0 : errno;
  napi_create_int32(env, rc, &result);
  return result;
}

// rtoMaxOf(sockFd) -> the socket's TCP_RTO_MAX_MS in ms, or -errno.
static napi_value js_rto_max_of(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t fd;
  if (argc < 1 || !get_int64(env, argv[0], &fd) || fd < 0 || fd > INT32_MAX) {
    napi_throw_range_error(env, NULL, "rtoMaxOf(sockFd): a non-negative integer expected");
    return NULL;
  }
  int v = 0;
  socklen_t len = sizeof v;
  int rc = getsockopt((int)fd, IPPROTO_TCP, TCP_RTO_MAX_MS, &v, &len) == 0 ? v : -errno;
  napi_create_int32(env, rc, &result);
  return result;
}

NAPI_MODULE_INIT() {
  engine_set_t *set = calloc(1, sizeof *set);
  if (!set) {
    napi_throw_error(env, NULL, "sendfile: out of memory");
    return NULL;
  }
  napi_set_instance_data(env, set, free_set, NULL);
  napi_property_descriptor props[] = {
      {"init", NULL, js_init, NULL, NULL, NULL, napi_enumerable, NULL},
      {"submit", NULL, js_submit, NULL, NULL, NULL, napi_enumerable, NULL},
      {"cancel", NULL, js_cancel, NULL, NULL, NULL, napi_enumerable, NULL},
      {"rtoMax", NULL, js_rto_max, NULL, NULL, NULL, napi_enumerable, NULL},
      {"rtoMaxOf", NULL, js_rto_max_of, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
