// What the native engines (native/sendfile: HTTP's zero-copy sends; native/tftp: TFTP's DATA/ACK loop) share:
// one worker thread per engine with its own epoll instance, a request queue the JS thread fills and the
// worker drains (a mutex-guarded list plus an eventfd that wakes the worker's epoll), a threadsafe
// function the worker posts results through, referenced only while jobs are pending (an idle engine never
// keeps the process alive), and an environment cleanup hook that stops and joins the thread.
//
// Each engine embeds an rc_engine_t as the first member of its own state and supplies its job type (queued
// as void *), its thread body and its result marshalling (call_js). Header-only: each addon is one
// translation unit built by its own binding.gyp, which adds this directory to its include path.
#ifndef ROLECAST_NATIVE_ENGINE_H
#define ROLECAST_NATIVE_ENGINE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/** A hand-off from the JS thread: a job to start, or (job NULL) a cancel of the job with this id. */
typedef struct rc_request {
  struct rc_request *next;
  void *job;
  double id;
} rc_request_t;

typedef struct rc_engine {
  napi_threadsafe_function tsfn;
  pthread_t thread;
  int started;
  int epfd; // the worker's epoll; the eventfd is registered with data.ptr NULL
  int evfd;
  pthread_mutex_t lock; // guards the queue and stop
  rc_request_t *req_head, *req_tail;
  int stop;
  // JS thread only
  double next_id;
  uint32_t pending; // jobs submitted and not yet reported done: the tsfn is referenced while > 0
} rc_engine_t;

static inline int64_t rc_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void rc_engine_init(rc_engine_t *e) {
  e->epfd = e->evfd = -1;
  pthread_mutex_init(&e->lock, NULL);
}

static inline void rc_wake(rc_engine_t *e) {
  uint64_t one = 1;
  while (write(e->evfd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

/**
 * JS thread: queue a job (or, with job NULL, a cancel of `id`) for the worker and wake it.
 * Returns 0, or ENOMEM (nothing queued; the job is still the caller's).
 */
static inline int rc_enqueue(rc_engine_t *e, void *job, double id) {
  rc_request_t *r = calloc(1, sizeof *r);
  if (!r) return ENOMEM;
  r->job = job;
  r->id = id;
  pthread_mutex_lock(&e->lock);
  if (e->req_tail) e->req_tail->next = r; else e->req_head = r;
  e->req_tail = r;
  pthread_mutex_unlock(&e->lock);
  rc_wake(e);
  return 0;
}

/** Worker: everything queued so far (oldest first; the caller frees each request) and whether to stop. */
static inline rc_request_t *rc_take(rc_engine_t *e, int *stop) {
  uint64_t count;
  while (read(e->evfd, &count, sizeof count) < 0 && errno == EINTR) {
  }
  pthread_mutex_lock(&e->lock);
  rc_request_t *r = e->req_head;
  e->req_head = e->req_tail = NULL;
  *stop = e->stop;
  pthread_mutex_unlock(&e->lock);
  return r;
}

/** JS thread: a job was submitted; the first pending one keeps the process alive until its result. */
static inline void rc_job_started(napi_env env, rc_engine_t *e) {
  if (e->pending++ == 0) napi_ref_threadsafe_function(env, e->tsfn);
}

/** JS thread (in call_js): a job's final result arrived. */
static inline void rc_job_ended(napi_env env, rc_engine_t *e) {
  if (e->pending > 0 && --e->pending == 0) napi_unref_threadsafe_function(env, e->tsfn);
}

/** Worker: hand a result to call_js on the JS thread; freed here when the environment is going away. */
static inline void rc_post(rc_engine_t *e, void *result) {
  if (napi_call_threadsafe_function(e->tsfn, result, napi_tsfn_nonblocking) != napi_ok) free(result);
}

static napi_value rc_throw_errno(napi_env env, int err, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value message, error, code;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  napi_create_int32(env, err, &code);
  napi_set_named_property(env, error, "errno", code);
  napi_throw(env, error);
  return NULL;
}

/** An integral number in [lo, hi] (safe integers only), else 0. */
static inline int rc_get_int(napi_env env, napi_value v, double lo, double hi, double *out) {
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_number) return 0;
  napi_get_value_double(env, v, out);
  return *out >= lo && *out <= hi && *out == (double)(int64_t)*out;
}

/**
 * JS thread: make the epoll instance and eventfd, the threadsafe function calling `on_event` through
 * `call_js` (context: the engine), and start `worker(e)`. The worker inherits a blocked SIGPIPE: neither
 * engine wants the signal (sendfile(2) has no MSG_NOSIGNAL; the sendfile engine consumes a pending one).
 * `cleanup` (which should call rc_stop and then free the engine's jobs) runs at environment teardown,
 * before the threadsafe function's own (hooks run in reverse order of registration).
 * Returns 0, or -1 with a JS exception pending and nothing left open.
 */
static void rc_close(rc_engine_t *e);

static int rc_start(napi_env env, rc_engine_t *e, napi_value on_event, const char *name, napi_threadsafe_function_call_js call_js,
                    void *(*worker)(void *), void (*cleanup)(void *)) {
  const char *what = NULL;
  int err = 0;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  napi_value label;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &label);
  if ((e->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
    what = "epoll_create1";
  } else if ((e->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
    what = "eventfd";
  } else if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->evfd, &ev) != 0) {
    what = "epoll_ctl";
  } else if (napi_create_threadsafe_function(env, on_event, NULL, label, 0, 1, NULL, NULL, e, call_js, &e->tsfn) != napi_ok) {
    e->tsfn = NULL;
    what = "napi_create_threadsafe_function";
    err = ENOMEM;
  }
  if (what) {
    if (!err) err = errno;
    rc_close(e);
    rc_throw_errno(env, err, what);
    return -1;
  }
  napi_unref_threadsafe_function(env, e->tsfn);
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  int rc = pthread_create(&e->thread, NULL, worker, e);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    rc_close(e);
    rc_throw_errno(env, rc, "pthread_create");
    return -1;
  }
  e->started = 1;
  napi_add_env_cleanup_hook(env, cleanup, e);
  return 0;
}

/** Teardown: stop and join the worker (it leaves its loop once it has read stop in rc_take). */
static inline void rc_stop(rc_engine_t *e) {
  if (!e->started) return;
  pthread_mutex_lock(&e->lock);
  e->stop = 1;
  pthread_mutex_unlock(&e->lock);
  rc_wake(e);
  pthread_join(e->thread, NULL);
  e->started = 0;
}

/** Teardown, after rc_stop: jobs still queued (never seen by the worker) go to `drop`; the requests are freed. */
static inline void rc_drop_queue(rc_engine_t *e, void (*drop)(void *job)) {
  for (rc_request_t *r = e->req_head; r;) {
    rc_request_t *next = r->next;
    if (r->job) drop(r->job);
    free(r);
    r = next;
  }
  e->req_head = e->req_tail = NULL;
}

/** Teardown, after rc_stop and the engine freed its jobs (or a failed start): release the threadsafe function, close the fds. */
static void rc_close(rc_engine_t *e) {
  if (e->tsfn) napi_release_threadsafe_function(e->tsfn, napi_tsfn_abort);
  e->tsfn = NULL;
  if (e->epfd >= 0) close(e->epfd);
  if (e->evfd >= 0) close(e->evfd);
  e->epfd = e->evfd = -1;
}

#endif
