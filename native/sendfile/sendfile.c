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
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <time.h>
#include <unistd.h>

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

typedef struct request {
  struct request *next;
  job_t *job;   // a submission, or
  double id;    // a cancel of this id
} request_t;

typedef struct completion {
  double id;
  double sent;
  int err;
} completion_t;

typedef struct engine {
  napi_env env;
  napi_threadsafe_function tsfn;
  pthread_t thread;
  int started;
  int epfd;
  int evfd;
  pthread_mutex_t lock; // guards requests and stop
  request_t *req_head, *req_tail;
  int stop;
  // engine thread only
  job_t *active;
  job_t *dead; // completed this turn, freed after the event batch
  // JS thread only
  double next_id;
  uint32_t pending;
  int index; // position in the set: ids are next_id * count + index, so an id names its engine
  int count;
} engine_t;

typedef struct engine_set {
  engine_t *engines[MAX_THREADS];
  int count;      // started engines
  uint32_t deal;  // round-robin cursor (JS thread only)
} engine_set_t;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wake(engine_t *e) {
  uint64_t one = 1;
  while (write(e->evfd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

static void enqueue(engine_t *e, request_t *r) {
  pthread_mutex_lock(&e->lock);
  if (e->req_tail) e->req_tail->next = r; else e->req_head = r;
  e->req_tail = r;
  pthread_mutex_unlock(&e->lock);
  wake(e);
}

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
  if (j->armed) epoll_ctl(e->epfd, EPOLL_CTL_DEL, j->sock, NULL); // the description outlives our dup: must DEL
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
  if (napi_call_threadsafe_function(e->tsfn, c, napi_tsfn_nonblocking) != napi_ok) free(c);
}

static void arm(engine_t *e, job_t *j) {
  struct epoll_event ev = {.events = EPOLLOUT | EPOLLONESHOT, .data.ptr = j};
  int op = j->armed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (epoll_ctl(e->epfd, op, j->sock, &ev) != 0) {
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
  uint64_t count;
  while (read(e->evfd, &count, sizeof count) < 0 && errno == EINTR) {
  }
  pthread_mutex_lock(&e->lock);
  request_t *r = e->req_head;
  e->req_head = e->req_tail = NULL;
  *stop = e->stop;
  pthread_mutex_unlock(&e->lock);
  while (r) {
    request_t *next = r->next;
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
    int n = epoll_wait(e->epfd, events, MAX_EVENTS, expire(e));
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
  if (e->pending > 0 && --e->pending == 0) napi_unref_threadsafe_function(env, e->tsfn);
  napi_value argv[3], undefined;
  napi_create_double(env, c->id, &argv[0]);
  napi_create_double(env, c->sent, &argv[1]);
  napi_create_int32(env, c->err, &argv[2]);
  free(c);
  napi_get_undefined(env, &undefined);
  napi_call_function(env, undefined, cb, 3, argv, NULL);
}

static void stop_engine(void *arg) {
  engine_t *e = arg;
  if (e->started) {
    pthread_mutex_lock(&e->lock);
    e->stop = 1;
    pthread_mutex_unlock(&e->lock);
    wake(e);
    pthread_join(e->thread, NULL);
    e->started = 0;
  }
  // Jobs still queued or active at teardown: close their dups, drop them.
  for (request_t *r = e->req_head; r;) {
    request_t *next = r->next;
    if (r->job) {
      close(r->job->sock);
      close(r->job->file);
      free(r->job);
    }
    free(r);
    r = next;
  }
  e->req_head = e->req_tail = NULL;
  for (job_t *j = e->active; j;) {
    job_t *next = j->next;
    close(j->sock);
    close(j->file);
    free(j);
    j = next;
  }
  e->active = NULL;
  if (e->tsfn) {
    napi_release_threadsafe_function(e->tsfn, napi_tsfn_abort);
    e->tsfn = NULL;
  }
  if (e->epfd >= 0) close(e->epfd);
  if (e->evfd >= 0) close(e->evfd);
  e->epfd = e->evfd = -1;
}

static void free_set(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  engine_set_t *set = data;
  for (int i = 0; i < MAX_THREADS; i++) {
    engine_t *e = set->engines[i];
    if (!e) continue;
    pthread_mutex_destroy(&e->lock);
    free(e);
  }
  free(set);
}

static napi_value throw_errno(napi_env env, int err, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value message, error, errno_value;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  napi_create_int32(env, err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_throw(env, error);
  return NULL;
}

static engine_set_t *get_set(napi_env env) {
  engine_set_t *set = NULL;
  napi_get_instance_data(env, (void **)&set);
  return set;
}

static int get_int64(napi_env env, napi_value v, int64_t *out);

// Starts one engine thread with its own epoll, eventfd and threadsafe function (calling onComplete).
static napi_value start_engine(napi_env env, engine_t *e, napi_value on_complete) {
  if (e->epfd < 0) e->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (e->epfd < 0) return throw_errno(env, errno, "epoll_create1");
  if (e->evfd < 0) {
    e->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (e->evfd < 0) return throw_errno(env, errno, "eventfd");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->evfd, &ev) != 0) {
      int err = errno;
      close(e->evfd);
      e->evfd = -1;
      return throw_errno(env, err, "epoll_ctl");
    }
  }
  napi_value name;
  napi_create_string_utf8(env, "sendfile-engine", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, on_complete, NULL, name, 0, 1, NULL, NULL, e, call_js, &e->tsfn) != napi_ok) {
    napi_throw_error(env, NULL, "napi_create_threadsafe_function failed");
    return NULL;
  }
  napi_unref_threadsafe_function(env, e->tsfn);
  // The engine thread blocks SIGPIPE (see the top of this file); it inherits this mask.
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  int rc = pthread_create(&e->thread, NULL, engine_main, e);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    napi_release_threadsafe_function(e->tsfn, napi_tsfn_abort);
    e->tsfn = NULL;
    return throw_errno(env, rc, "pthread_create");
  }
  e->started = 1;
  // Registered after the threadsafe function, so it runs before the tsfn's own teardown (hooks run in reverse).
  napi_add_env_cleanup_hook(env, stop_engine, e);
  return NULL;
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
    if (!e) return throw_errno(env, ENOMEM, "init");
    e->env = env;
    e->epfd = e->evfd = -1;
    e->index = i;
    e->count = (int)threads;
    pthread_mutex_init(&e->lock, NULL);
    set->engines[i] = e;
    start_engine(env, e, argv[0]);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) return NULL; // engines started so far serve alone; ids still route (count is theirs)
    set->count = i + 1;
  }
  return NULL;
}

static int get_int64(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_number) return 0;
  double d;
  napi_get_value_double(env, v, &d);
  if (!(d >= 0 && d <= 9007199254740991.0) || d != (double)(int64_t)d) return 0;
  *out = (int64_t)d;
  return 1;
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
  if (flags < 0) return throw_errno(env, errno, "submit: socket fd");
  if (!(flags & O_NONBLOCK)) return throw_errno(env, EINVAL, "submit: socket fd must be non-blocking");
  job_t *j = calloc(1, sizeof *j);
  request_t *r = calloc(1, sizeof *r);
  const char *failed = NULL;
  int err = ENOMEM;
  if (!j || !r) {
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
    free(r);
    return throw_errno(env, err, failed);
  }
  j->id = ++e->next_id * e->count + e->index;
  j->offset = (off_t)offset;
  j->left = (uint64_t)length;
  j->timeout_ms = timeout;
  r->job = j;
  if (e->pending++ == 0) napi_ref_threadsafe_function(env, e->tsfn);
  enqueue(e, r);
  napi_value result;
  napi_create_double(env, j->id, &result);
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
  if (!e || !e->started) return NULL;
  request_t *r = calloc(1, sizeof *r);
  if (!r) return throw_errno(env, ENOMEM, "cancel");
  r->id = (double)id;
  enqueue(e, r);
  return NULL;
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
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
