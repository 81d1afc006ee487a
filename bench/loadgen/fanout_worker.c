#include "fanout_worker.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connection.h"
#include "fanout_protocol.h"
#include "long_poll.h"
#include "options.h"
#include "util.h"

typedef struct {
  int epfd;
  poll_conn_t *conns;
  int n;
  int nsources;
  /* round state */
  int parking;
  int next_connect; /* first round: ramp position */
  int64_t ramp_start;
  int sent, failed, pending;
  int sent_reported;
  int armed;
  int committed;
  int64_t deadline;
  int reconnects;
  int catchups; /* answers before the commit, re-parked at once */
  int retried;  /* failures before the commit, retried after a backoff */
  int retries_waiting;
  uint64_t rng;
} fanout_worker_t;

static void count_sent(fanout_worker_t *w, poll_conn_t *f) {
  if (!f->sent_this_round) {
    f->sent_this_round = 1;
    w->sent++;
  }
}

/* Before the commit the load generator behaves as the page's poll loop
 * (static/poller.js) does: a 5xx answer or a failed connection is retried
 * with the cursor kept, after an exponential backoff with jitter (about
 * 250 ms, doubling, at most 10 s). Counted and reported ("retried"). */
static void schedule_retry(fanout_worker_t *w, poll_conn_t *f) {
  f->failures++;
  double base = 250.0 * (double)(1 << (f->failures - 1 < 6 ? f->failures - 1 : 6));
  if (base > 10000.0) base = 10000.0;
  double jitter = 0.5 + (double)(rng_next(&w->rng) % 1000) / 1000.0; /* 0.5 .. 1.5 */
  f->retry_at = now_ns() + (int64_t)(base * jitter * 1e6);
  w->retried++;
  w->retries_waiting++;
  if (cfg.verbose) note("poll failed before the commit (status %d, flags %d): retry #%d", f->rec.status, f->rec.flags,
                        f->failures);
}

static void conn_fail(fanout_worker_t *w, poll_conn_t *f, int flag) {
  conn_state_t was = f->c.state;
  conn_close(&f->c, w->epfd, 1);
  if (w->parking && !w->armed && (was == CS_CONNECTING || was == CS_SENDING || was == CS_WAITING)) {
    if (was == CS_WAITING) w->pending--;
    count_sent(w, f); /* the retry will send it */
    schedule_retry(w, f);
    return;
  }
  f->rec.flags |= flag;
  if (was == CS_CONNECTING || was == CS_SENDING) {
    f->rec.flags |= R_NOT_SENT;
    w->failed++;
  } else if (was == CS_WAITING) {
    w->pending--;
  }
}

static void conn_try_send(fanout_worker_t *w, poll_conn_t *f) {
  conn_t *c = &f->c;
  int sent = send_pending(c->fd, &c->out, &c->out_off);
  if (sent == 0) {
    ep_set(w->epfd, c->fd, EPOLLIN | EPOLLOUT, f, 0);
    return;
  }
  if (sent < 0) {
    conn_fail(w, f, R_CONN_ERROR);
    return;
  }
  c->state = CS_WAITING;
  c->started_ns = now_ns();
  count_sent(w, f);
  w->pending++;
  ep_set(w->epfd, c->fd, EPOLLIN | EPOLLRDHUP, f, 0);
}

static void conn_start(fanout_worker_t *w, poll_conn_t *f) {
  conn_t *c = &f->c;
  resp_reset(&c->resp);
  memset(&f->rec, 0, sizeof f->rec);
  f->rec.key = -1;
  build_poll_request(f);
  if (c->fd < 0) {
    int fd = open_conn(&c->src, w->nsources);
    if (fd < 0) {
      if (cfg.verbose) note("connect failed: %s", strerror(-fd));
      if (w->parking && !w->armed) {
        count_sent(w, f);
        schedule_retry(w, f);
        return;
      }
      f->rec.flags |= R_CONN_ERROR | R_NOT_SENT;
      w->failed++;
      return;
    }
    c->fd = fd;
    c->state = CS_CONNECTING;
    buf_clear(&c->in);
    ep_set(w->epfd, fd, EPOLLOUT, f, 1);
    return;
  }
  c->state = CS_SENDING;
  conn_try_send(w, f);
}

/* Reads what has arrived; returns 1 if the peer has closed (or failed). */
static int conn_receive(conn_t *c) {
  for (;;) {
    /* answers are small: 16 KB keeps 19,000 connections' buffers off mmap */
    buf_reserve(&c->in, 8192);
    size_t room = c->in.cap - c->in.len - 1;
    ssize_t r = recv(c->fd, c->in.p + c->in.len, room, 0);
    if (r > 0) {
      c->in.len += (size_t)r;
      c->in.p[c->in.len] = 0;
      if ((size_t)r < room) return 0;
      continue;
    }
    if (r == 0) return 1;
    return errno == EAGAIN || errno == EINTR ? 0 : 1;
  }
}

static void conn_readable(fanout_worker_t *w, poll_conn_t *f) {
  conn_t *c = &f->c;
  int eof = conn_receive(c);
  if (c->state != CS_WAITING) {
    /* data or a close while idle: the server closed a keep-alive connection */
    if (eof || c->in.len) conn_close(c, w->epfd, 0);
    return;
  }
  int nothing = c->resp.state == HP_STATUS && c->in.len == 0;
  int done = http_parse(&c->resp, &c->in, eof);
  if (done == 0 && !eof) return;
  if (done <= 0) {
    conn_fail(w, f, done < 0 && !nothing ? R_PARSE_ERROR : R_CONN_ERROR);
    return;
  }
  f->rec.arrival_ns = now_ns();
  f->rec.status = c->resp.status;
  f->rec.flags |= R_OK_RESPONSE;
  read_poll_answer(f);
  w->pending--;
  int reusable = !(c->resp.conn_close || eof || c->in.len);
  if (!w->armed && c->resp.status >= 500) {
    if (reusable)
      c->state = CS_IDLE;
    else
      conn_close(c, w->epfd, 0);
    schedule_retry(w, f);
    return;
  }
  f->failures = 0;
  /* An answer before the commit is a catch-up (PBP: the snapshot's cursor is
   * taken before its query, so it may be behind events already in the
   * stream; or a poll timeout): a client polls again at once from the new
   * cursor, and so do we. Counted and reported, never taken as a delivery. */
  if (!w->armed && c->resp.status == 200) {
    w->catchups++;
    if (cfg.verbose) note("catch-up answer (key %" PRId64 "): polling again", f->rec.key);
    if (!reusable) {
      conn_close(c, w->epfd, 0);
      conn_start(w, f); /* reconnects; sent_this_round keeps it counted once */
      return;
    }
    resp_reset(&c->resp);
    f->rec.flags = 0;
    f->rec.key = -1;
    build_poll_request(f);
    c->state = CS_SENDING;
    conn_try_send(w, f);
    return;
  }
  if (reusable) {
    c->state = CS_IDLE;
    ep_set(w->epfd, c->fd, EPOLLIN | EPOLLRDHUP, f, 0);
  } else {
    if (c->in.len) f->rec.flags |= R_PARSE_ERROR; /* bytes after the response */
    conn_close(c, w->epfd, 0);
  }
}

static void conn_event(fanout_worker_t *w, poll_conn_t *f, uint32_t events) {
  conn_t *c = &f->c;
  if (c->state == CS_CONNECTING) {
    int err = conn_connect_error(c->fd);
    if (err || (events & (EPOLLERR | EPOLLHUP))) {
      if (cfg.verbose) note("connect failed: %s", strerror(err));
      conn_fail(w, f, R_CONN_ERROR);
      return;
    }
    c->state = CS_SENDING;
    conn_try_send(w, f);
    return;
  }
  if (c->state == CS_SENDING && (events & EPOLLOUT)) {
    conn_try_send(w, f);
    if (c->state != CS_WAITING) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) conn_readable(w, f);
}

/* CMD_PARK: a new round. The first round opens the connections at the ramp;
 * later ones re-park every connection at once. */
static void start_round(fanout_worker_t *w, int64_t t, int *round0) {
  int n = w->n;
  w->parking = 1;
  w->sent = w->failed = w->pending = 0;
  w->sent_reported = 0;
  w->armed = 0;
  w->committed = 0;
  w->reconnects = 0;
  w->catchups = 0;
  w->retried = 0;
  src_retries = 0;
  for (int k = 0; k < n; k++) w->conns[k].sent_this_round = 0;
  w->deadline = t + (int64_t)(cfg.park_timeout * 1e9);
  if (*round0) {
    w->next_connect = 0;
    w->ramp_start = t;
    *round0 = 0;
    return;
  }
  w->next_connect = n;
  for (int k = 0; k < n; k++) {
    poll_conn_t *f = &w->conns[k];
    conn_t *c = &f->c;
    if (f->retry_at) { /* a retry the last round gave up on */
      f->retry_at = 0;
      w->retries_waiting--;
    }
    f->failures = 0;
    if (c->fd < 0 && c->state != CS_DOWN) c->state = CS_DOWN;
    if (c->state == CS_WAITING) conn_close(c, w->epfd, 1); /* never answered: start afresh */
    if (c->fd < 0) w->reconnects++;
    conn_start(w, f);
  }
}

/* One command from the parent (a read there failing means it is gone). */
static void on_command(fanout_worker_t *w, int ctl, int64_t t, int *round0) {
  cmd_t cmd;
  if (read_all(ctl, &cmd, sizeof cmd, 5000) < 0) _exit(3); /* the parent is gone */
  if (cmd.type == CMD_QUIT) {
    for (int k = 0; k < w->n; k++)
      if (w->conns[k].c.fd >= 0) close_rst(w->conns[k].c.fd);
    _exit(0);
  }
  if (cmd.type == CMD_PARK) {
    start_round(w, t, round0);
  } else if (cmd.type == CMD_ARM) {
    w->armed = 1;
    msg_t m = {MSG_ARMED, 0, 0, 0, 0, 0, 0, 0};
    write_all(ctl, &m, sizeof m);
  } else if (cmd.type == CMD_COMMITTED) {
    w->committed = 1;
    w->deadline = now_ns() + (int64_t)(cfg.delivery_timeout * 1e9);
  }
}

/* Polls again those whose backoff is over; after the arming it is a miss. */
static void retry_due(fanout_worker_t *w) {
  int64_t tn = now_ns();
  for (int k = 0; k < w->n && w->retries_waiting; k++) {
    poll_conn_t *f = &w->conns[k];
    if (!f->retry_at || f->retry_at > tn) continue;
    f->retry_at = 0;
    w->retries_waiting--;
    if (w->armed) { /* too late to retry: it is a miss */
      f->rec.flags |= R_CONN_ERROR | R_NOT_SENT;
      continue;
    }
    conn_start(w, f);
  }
}

/* MSG_RESULTS and one record per connection, a missing answer marked. */
static void report_results(fanout_worker_t *w, int ctl) {
  int n = w->n;
  msg_t m = {MSG_RESULTS, n, w->failed, w->reconnects, src_retries, w->catchups, w->retried, 0};
  write_all(ctl, &m, sizeof m);
  record_t *recs = xmalloc(sizeof(record_t) * (size_t)(n ? n : 1));
  for (int k = 0; k < n; k++) {
    recs[k] = w->conns[k].rec;
    if (!(recs[k].flags & R_OK_RESPONSE) && !(recs[k].flags & (R_CONN_ERROR | R_NOT_SENT)))
      recs[k].flags |= R_NO_RESPONSE;
  }
  write_all(ctl, recs, sizeof(record_t) * (size_t)n);
  free(recs);
}

void fanout_worker(int ctl, int base, int n, const char *cursor0) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  fanout_worker_t w;
  memset(&w, 0, sizeof w);
  w.epfd = epoll_create1(EPOLL_CLOEXEC);
  w.conns = xmalloc(sizeof(poll_conn_t) * (size_t)(n ? n : 1));
  w.n = n;
  w.nsources = nsources_for(cfg.connections);
  w.rng = 0x2545F4914F6CDD1DULL ^ ((uint64_t)getpid() << 17) ^ (uint64_t)now_ns();
  for (int i = 0; i < n; i++) {
    w.conns[i].c.fd = -1;
    w.conns[i].c.src = (base + i) % w.nsources;
    snprintf(w.conns[i].cursor, sizeof w.conns[i].cursor, "%s", cursor0);
  }
  set_nonblock(ctl);
  struct epoll_event cev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(w.epfd, EPOLL_CTL_ADD, ctl, &cev);
  struct epoll_event *events = xmalloc(sizeof(struct epoll_event) * 1024);
  double ramp_per_ms = cfg.ramp / (cfg.procs > 0 ? cfg.procs : 1);
  int round0 = 1;

  for (;;) {
    int timeout = 100;
    if (w.parking && w.next_connect < n) timeout = 1;
    if (w.retries_waiting) timeout = timeout < 10 ? timeout : 10;
    int ne = epoll_wait(w.epfd, events, 1024, timeout);
    int64_t t = now_ns();
    for (int i = 0; i < ne; i++) {
      if (events[i].data.ptr == NULL)
        on_command(&w, ctl, t, &round0);
      else
        conn_event(&w, events[i].data.ptr, events[i].events);
    }
    if (w.retries_waiting) retry_due(&w);
    /* the ramp: open connections at cfg.ramp per ms over all workers */
    if (w.parking && w.next_connect < n) {
      double elapsed_ms = (double)(now_ns() - w.ramp_start) / 1e6;
      int allowed = (int)(elapsed_ms * ramp_per_ms) + 1;
      if (allowed > n) allowed = n;
      while (w.next_connect < allowed) conn_start(&w, &w.conns[w.next_connect++]);
    }
    if (w.parking && !w.sent_reported && w.next_connect >= n && w.sent + w.failed >= n) {
      /* every poll is written (or failed); responses already here are early */
      msg_t m = {MSG_SENT, w.sent, w.failed, w.reconnects, src_retries, w.catchups, w.retried, 0};
      write_all(ctl, &m, sizeof m);
      w.sent_reported = 1;
    }
    int64_t t2 = now_ns();
    int everyone = w.sent_reported && w.pending == 0;
    int timed_out = t2 > w.deadline;
    if (w.parking && w.committed && (everyone || timed_out)) {
      report_results(&w, ctl);
      w.parking = 0;
    } else if (w.parking && !w.committed && timed_out && !w.sent_reported) {
      /* could not even send every poll within --park-timeout: report what we have */
      msg_t m = {MSG_SENT, w.sent, n - w.sent, w.reconnects, src_retries, w.catchups, w.retried, 0};
      write_all(ctl, &m, sizeof m);
      w.sent_reported = 1;
    }
  }
}
