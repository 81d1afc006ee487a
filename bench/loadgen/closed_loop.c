#include "closed_loop.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "connection.h"
#include "latency.h"
#include "options.h"
#include "postgres.h"
#include "process_watch.h"
#include "util.h"


typedef struct {
  conn_t c;
  uint64_t rng;
  int64_t id; /* the id the request names (get/put) */
} cl_conn_t;

static int64_t *ids;
static size_t nids;

static void load_ids(void) {
  PGconn *pg = pg_connect();
  if (!pg) die("--pg is required for get and put (to pick existing ids)");
  char sql[256];
  snprintf(sql, sizeof sql, "select id from %s order by id limit 1000000", cfg.table);
  PGresult *r = PQexec(pg, sql);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) die("%s: %s", sql, PQerrorMessage(pg));
  nids = (size_t)PQntuples(r);
  if (nids == 0) die("table %s is empty: seed it first", cfg.table);
  ids = xmalloc(sizeof(int64_t) * nids);
  for (size_t i = 0; i < nids; i++) ids[i] = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
  PQclear(r);
  PQfinish(pg);
}

static void cl_build(cl_conn_t *x) {
  conn_t *c = &x->c;
  buf_clear(&c->out);
  c->out_off = 0;
  x->id = nids ? ids[rng_next(&x->rng) % nids] : 0;
  char body[128];
  int bl;
  switch (cfg.op) {
  case OP_GET:
    buf_printf(&c->out, "GET /api/%s/%" PRId64 " HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: pbp-loadgen\r\n%s"
                        "Accept: application/json\r\n\r\n",
               cfg.table, x->id, cfg.host, cfg.port, cfg.authorization);
    break;
  case OP_LIST:
    buf_printf(&c->out, "GET /api/%s?limit=100 HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: pbp-loadgen\r\n%s"
                        "Accept: application/json\r\n\r\n",
               cfg.table, cfg.host, cfg.port, cfg.authorization);
    break;
  case OP_POST:
    bl = snprintf(body, sizeof body, "{\"val\":\"loadgen post %" PRIu64 "\"}", rng_next(&x->rng) % 1000000);
    buf_printf(&c->out, "POST /api/%s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: pbp-loadgen\r\n%s"
                        "Accept: application/json\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
               cfg.table, cfg.host, cfg.port, cfg.authorization, bl, body);
    break;
  case OP_PUT:
    bl = snprintf(body, sizeof body, "{\"val\":\"loadgen put %" PRIu64 "\"}", rng_next(&x->rng) % 1000000);
    buf_printf(&c->out, "PUT /api/%s/%" PRId64 " HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: pbp-loadgen\r\n%s"
                        "Accept: application/json\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
               cfg.table, x->id, cfg.host, cfg.port, cfg.authorization, bl, body);
    break;
  }
}

/* Light validation that the answer is what the request asked for. */
static int cl_valid(cl_conn_t *x) {
  const char *b = x->c.resp.body.p ? x->c.resp.body.p : "";
  char needle[48];
  switch (cfg.op) {
  case OP_GET:
  case OP_PUT:
    snprintf(needle, sizeof needle, "\"id\":%" PRId64, x->id);
    return strstr(b, needle) != NULL;
  case OP_LIST: {
    size_t n = x->c.resp.body.len;
    return n >= 2 && b[0] == '[' && b[n - 1] == ']';
  }
  case OP_POST:
    return strstr(b, "\"id\":") != NULL;
  }
  return 1;
}

typedef struct {
  int epfd;
  int nsources;
  int stopping;
  int active; /* connections with a request in flight */
  int64_t t_measure, t_end;
  long connect_errors, io_errors, parse_errors, timeouts, reconnects, invalid;
  long status_class[6];
  long measured, total_done;
  int bad_status_seen[8];
  int nbad_shown;
  lat_t lat;
} cl_state_t;

static void cl_drop(cl_state_t *s, cl_conn_t *x, int rst) {
  conn_t *c = &x->c;
  if (c->state == CS_CONNECTING || c->state == CS_SENDING || c->state == CS_WAITING) s->active--;
  conn_close(c, s->epfd, rst);
}

/* Writes what is left of the request; then waits for the answer. */
static void cl_send(cl_state_t *s, cl_conn_t *x) {
  conn_t *c = &x->c;
  int sent = send_pending(c->fd, &c->out, &c->out_off);
  if (sent == 0) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = x};
    epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    return;
  }
  if (sent < 0) {
    s->io_errors++;
    cl_drop(s, x, 1);
    return;
  }
  if (c->state == CS_SENDING) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = x};
    epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
  }
  c->state = CS_WAITING;
}

/* The connection's next request: reconnect if needed, then send at once
 * (an idle keep-alive connection stays registered for EPOLLIN, so a request
 * costs one send and one receive, no epoll_ctl). */
static void cl_start(cl_state_t *s, cl_conn_t *x) {
  conn_t *c = &x->c;
  resp_reset(&c->resp);
  cl_build(x);
  c->started_ns = now_ns();
  if (c->fd < 0) {
    int fd = open_conn(&c->src, s->nsources);
    if (fd < 0) {
      s->connect_errors++;
      if (s->connect_errors <= 3) note("ERROR: connect: %s", strerror(-fd));
      c->state = CS_DOWN;
      return;
    }
    c->fd = fd;
    buf_clear(&c->in);
    c->state = CS_CONNECTING;
    s->active++;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = x};
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
    return;
  }
  s->active++;
  c->state = CS_WAITING; /* already registered for EPOLLIN */
  cl_send(s, x);
}

static void cl_finished(cl_state_t *s, cl_conn_t *x, int eof) {
  conn_t *c = &x->c;
  int64_t t_done = now_ns();
  s->total_done++;
  int st = c->resp.status;
  int cls = st / 100;
  if (cls < 1 || cls > 5) cls = 0;
  if (c->started_ns >= s->t_measure && t_done <= s->t_end) {
    s->measured++;
    lat_push(&s->lat, t_done - c->started_ns);
  }
  s->status_class[cls]++;
  if (cls == 2 && !cl_valid(x)) {
    s->invalid++;
    if (s->invalid <= 3)
      note("ERROR: unexpected body for a %d: %.200s", st, c->resp.body.p ? c->resp.body.p : "");
  }
  if (cls != 2 && s->nbad_shown < 8) {
    int seen = 0;
    for (int k = 0; k < s->nbad_shown; k++) seen |= s->bad_status_seen[k] == st;
    if (!seen) {
      s->bad_status_seen[s->nbad_shown++] = st;
      note("ERROR: status %d: %.300s", st, c->resp.body.p ? c->resp.body.p : "");
    }
  }
  s->active--;
  c->state = CS_IDLE;
  if (c->resp.conn_close || eof || c->in.len) {
    if (c->in.len) s->parse_errors++; /* bytes nobody asked for */
    cl_drop(s, x, 0);
    s->reconnects++;
  }
  if (!s->stopping) cl_start(s, x);
}

static void cl_event(cl_state_t *s, cl_conn_t *x, uint32_t ev) {
  conn_t *c = &x->c;
  if (c->state == CS_CONNECTING) {
    int err = conn_connect_error(c->fd);
    if (err || (ev & (EPOLLERR | EPOLLHUP))) {
      s->connect_errors++;
      if (s->connect_errors <= 3) note("ERROR: connect: %s", strerror(err));
      cl_drop(s, x, 1);
      return;
    }
    c->state = CS_SENDING;
    cl_send(s, x);
    return;
  }
  if (c->state == CS_IDLE || c->state == CS_DOWN) return;
  if ((ev & EPOLLOUT) && c->out_off < c->out.len) {
    cl_send(s, x);
    if (c->state != CS_WAITING) return;
  }
  if (!(ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
  int eof = 0;
  for (;;) {
    buf_reserve(&c->in, 65536);
    ssize_t r = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len - 1, 0);
    if (r > 0) {
      c->in.len += (size_t)r;
      c->in.p[c->in.len] = 0;
      int pr = http_parse(&c->resp, &c->in, 0);
      if (pr == 1) {
        cl_finished(s, x, 0);
        return;
      }
      if (pr < 0) {
        s->parse_errors++;
        if (s->parse_errors <= 3) note("ERROR: unparsable response");
        cl_drop(s, x, 1);
        return;
      }
      continue; /* incomplete: read on until EAGAIN */
    }
    if (r == 0 || (errno != EAGAIN && errno != EINTR)) eof = 1;
    break;
  }
  if (!eof) return;
  int pr = http_parse(&c->resp, &c->in, 1);
  if (pr == 1) {
    cl_finished(s, x, 1);
    return;
  }
  /* the server closed before a whole answer: an error, never retried (POST) */
  s->io_errors++;
  if (s->io_errors <= 3) note("ERROR: connection closed before the whole response");
  cl_drop(s, x, 1);
}

int mode_closed_loop(void) {
  if (!cfg.port) die("--port is required");
  int C = cfg.connections;
  if (cfg.op == OP_GET || cfg.op == OP_PUT) load_ids();
  cl_state_t s;
  memset(&s, 0, sizeof s);
  s.epfd = epoll_create1(EPOLL_CLOEXEC);
  s.nsources = nsources_for(C);
  cl_conn_t *cs = xmalloc(sizeof(cl_conn_t) * (size_t)C);
  for (int i = 0; i < C; i++) {
    cs[i].c.fd = -1;
    cs[i].c.src = i % s.nsources;
    cs[i].rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)(i + 1) * 0xD1B54A32D192ED03ULL) ^ (uint64_t)now_ns();
    if (!cs[i].rng) cs[i].rng = 1;
  }
  int64_t t_start = now_ns();
  s.t_measure = t_start + (int64_t)(cfg.warmup * 1e9);
  s.t_end = s.t_measure + (int64_t)(cfg.duration * 1e9);
  int64_t t_hard = s.t_end + (int64_t)(cfg.request_timeout * 1e9) + 1000000000LL;
  struct epoll_event events[256];
  /* CPU of the watched process trees over the measured window (sampled once
   * when it opens and once when it closes; a sample takes a few ms) */
  int64_t cpu_a[16] = {0}, cpu_b[16] = {0};
  int cpu_started = 0;
  for (int i = 0; i < C; i++) cl_start(&s, &cs[i]);
  int64_t last_check = now_ns();
  for (;;) {
    int64_t t = now_ns();
    if (!cpu_started && t >= s.t_measure) {
      sample_cpu(cpu_a);
      cpu_started = 1;
    }
    if (!s.stopping && t >= s.t_end) {
      s.stopping = 1;
      if (cpu_started) sample_cpu(cpu_b);
    }
    if (s.stopping && s.active == 0) break;
    if (t > t_hard) break;
    int ne = epoll_wait(s.epfd, events, 256, 10);
    for (int i = 0; i < ne; i++) cl_event(&s, events[i].data.ptr, events[i].events);
    t = now_ns();
    if (t - last_check > 100000000) { /* every 100 ms: timeouts, and restart what is down */
      last_check = t;
      for (int i = 0; i < C; i++) {
        conn_t *c = &cs[i].c;
        if ((c->state == CS_CONNECTING || c->state == CS_SENDING || c->state == CS_WAITING) &&
            t - c->started_ns > (int64_t)(cfg.request_timeout * 1e9)) {
          s.timeouts++;
          note("ERROR: a request took more than %g s", cfg.request_timeout);
          cl_drop(&s, &cs[i], 1);
        }
        if (c->state == CS_DOWN && !s.stopping) cl_start(&s, &cs[i]);
      }
    }
  }
  long unfinished = s.active;
  for (int i = 0; i < C; i++)
    if (cs[i].c.fd >= 0) close_rst(cs[i].c.fd);

  const char *opname[] = {"get", "list", "post", "put"};
  long non2xx = s.status_class[0] + s.status_class[1] + s.status_class[3] + s.status_class[4] + s.status_class[5];
  long errors = s.connect_errors + s.io_errors + s.parse_errors + s.timeouts + s.invalid + unfinished;
  int ok = non2xx == 0 && errors == 0 && s.measured > 0;
  buf_t j = {0};
  buf_printf(&j,
             "{\"mode\":\"closed-loop\",\"op\":\"%s\",\"connections\":%d,\"duration_s\":%g,\"warmup_s\":%g,"
             "\"ok\":%s,\"requests\":%ld,\"rps\":%.1f,\"latency_us\":",
             opname[cfg.op], C, cfg.duration, cfg.warmup, ok ? "true" : "false", s.measured,
             s.measured / cfg.duration);
  json_lat(&j, &s.lat);
  buf_printf(&j,
             ",\"status\":{\"1xx\":%ld,\"2xx\":%ld,\"3xx\":%ld,\"4xx\":%ld,\"5xx\":%ld,\"other\":%ld},"
             "\"non_2xx\":%ld,\"errors\":{\"connect\":%ld,\"io\":%ld,\"parse\":%ld,\"timeout\":%ld,"
             "\"invalid_body\":%ld,\"unfinished\":%ld},\"reconnects\":%ld,\"all_responses\":%ld,\"ids\":%zu}\n",
             s.status_class[1], s.status_class[2], s.status_class[3], s.status_class[4], s.status_class[5],
             s.status_class[0], non2xx, s.connect_errors, s.io_errors, s.parse_errors, s.timeouts, s.invalid,
             unfinished, s.reconnects, s.total_done, nids);
  j.len--; /* reopen the object for the CPU figures */
  j.p[j.len - 1] = ',';
  buf_printf(&j, "\"cpu\":{");
  for (int g = 0; g < watch_count(); g++)
    buf_printf(&j, "%s\"%s\":{\"seconds\":%.4f,\"us_per_request\":%.2f}", g ? "," : "", watch_name(g),
               (cpu_b[g] - cpu_a[g]) / 1e9, s.measured ? (double)(cpu_b[g] - cpu_a[g]) / 1e3 / (double)s.measured : -1.0);
  buf_printf(&j, "}}\n");
  fputs(j.p, stdout);
  fflush(stdout);
  if (!ok)
    note("ERRORS: %ld non-2xx answers, %ld errors (connect %ld, io %ld, parse %ld, timeout %ld, invalid %ld, "
         "unfinished %ld)",
         non2xx, errors, s.connect_errors, s.io_errors, s.parse_errors, s.timeouts, s.invalid, unfinished);
  return ok ? 0 : 1;
}

