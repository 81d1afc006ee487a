/*
 * pbp-loadgen: the benchmark suite's load generator (issue 8).
 *
 * One C program, epoll and non-blocking sockets, a real HTTP/1.1 client per
 * connection (keep-alive; Content-Length, chunked and close-delimited bodies
 * parsed; "Connection: close" honoured by reconnecting). Written in C rather
 * than Swift so that the measuring side is small, predictable and obviously
 * not sharing code (or bugs) with what it measures.
 *
 * Modes (print one JSON document on stdout; progress and errors on stderr):
 *
 *   fanout       N connections each park a long-poll (PBP: POST /api/changes
 *                with a caught-up cursor; Nchan: GET /sub), the parent waits
 *                until the server reports N parked, then commits one INSERT
 *                over libpq (Nchan: publishes with an HTTP POST) and every
 *                connection's arrival time is recorded; repeated R rounds.
 *                The connections are spread over --procs forked worker
 *                processes (the 20000-descriptor limit is per process), so
 *                the parent is free to commit while the workers read.
 *   latency      fanout with one connection: the single-client latency.
 *   closed-loop  C connections, each request -> response -> next request over
 *                keep-alive for D seconds after a warm-up: get | list | post | put.
 *
 * Clock: every timestamp is CLOCK_MONOTONIC (system-wide, so the parent's
 * commit time and the workers' arrival times are comparable). A delivery's
 * latency is measured from t0 = just before the INSERT is handed to libpq
 * (PQexec, autocommit, like psql), so it includes the INSERT's own execution
 * and commit (its WAL flush); t1 - t0, the INSERT's round trip, is reported
 * beside it ("commit_us") so that PostgreSQL's share can be told apart.
 * An arrival is the moment the worker process has parsed the whole response.
 *
 * Nothing is hidden: a miss (wrong key, no answer, an error status, a
 * timeout answer, an answer before the commit) is counted and reported, and
 * any error makes "ok": false and the exit status 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ------------------------------------------------------------------------ */
/* small helpers                                                             */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "loadgen: ERROR: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

static void note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "loadgen: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

static void *xmalloc(size_t n) {
  void *p = calloc(1, n ? n : 1);
  if (!p) die("out of memory (%zu bytes)", n);
  return p;
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) die("out of memory (%zu bytes)", n);
  return p;
}

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

static void buf_reserve(buf_t *b, size_t extra) {
  if (b->len + extra + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (b->len + extra + 1 > cap) cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
  }
}

static void buf_append(buf_t *b, const void *data, size_t n) {
  buf_reserve(b, n);
  memcpy(b->p + b->len, data, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void buf_printf(buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  buf_reserve(b, (size_t)n);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  va_end(ap);
}

static void buf_consume(buf_t *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
  } else {
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
  }
  if (b->p) b->p[b->len] = 0;
}

static void buf_clear(buf_t *b) {
  b->len = 0;
  if (b->p) b->p[0] = 0;
}

static void buf_free(buf_t *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static uint64_t rng_next(uint64_t *s) { /* xorshift64* */
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 2685821657736338717ULL;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static int64_t pct(const int64_t *sorted, size_t n, double q) {
  if (n == 0) return -1;
  size_t rank = (size_t)ceil(q * (double)n);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return sorted[rank - 1];
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static long nofile_limit(void) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  return (long)rl.rlim_cur;
}

/* ------------------------------------------------------------------------ */
/* HTTP/1.1 response parser (incremental)                                    */

enum {
  HP_STATUS,
  HP_HEADERS,
  HP_BODY_LEN,
  HP_CHUNK_SIZE,
  HP_CHUNK_DATA,
  HP_CHUNK_CRLF,
  HP_TRAILERS,
  HP_BODY_EOF,
  HP_DONE
};

typedef struct {
  int state;
  int status;
  int minor; /* HTTP/1.x */
  int64_t content_length;
  int chunked;
  int conn_close;
  int64_t remaining;
  buf_t body;
  char etag[160];
  char last_modified[80];
  char pbp_cursor[80];
  size_t header_bytes;
} http_resp_t;

static void resp_reset(http_resp_t *r) {
  r->state = HP_STATUS;
  r->status = 0;
  r->minor = 1;
  r->content_length = -1;
  r->chunked = 0;
  r->conn_close = 0;
  r->remaining = 0;
  buf_clear(&r->body);
  r->etag[0] = r->last_modified[0] = r->pbp_cursor[0] = 0;
  r->header_bytes = 0;
}

/* Finds the end of a line in in[0..len): returns the length of the line
 * without its terminator and stores the terminator's length, or -1. */
static ssize_t find_line(const char *p, size_t len, size_t *term) {
  const char *nl = memchr(p, '\n', len);
  if (!nl) return -1;
  size_t n = (size_t)(nl - p);
  *term = 1;
  if (n > 0 && p[n - 1] == '\r') {
    n--;
    *term = 2;
  }
  return (ssize_t)n;
}

static void copy_header_value(char *dst, size_t cap, const char *v, size_t n) {
  while (n > 0 && (*v == ' ' || *v == '\t')) v++, n--;
  while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
  if (n >= cap) n = cap - 1;
  memcpy(dst, v, n);
  dst[n] = 0;
}

static int header_is(const char *line, size_t n, const char *name, const char **value, size_t *vlen) {
  size_t k = strlen(name);
  if (n < k + 1 || strncasecmp(line, name, k) != 0 || line[k] != ':') return 0;
  *value = line + k + 1;
  *vlen = n - k - 1;
  return 1;
}

/* Returns 1 when the response is complete, 0 when more bytes are needed,
 * -1 on a protocol error. `eof` says the peer has closed. Consumed bytes are
 * removed from `in`; bytes after a complete response stay in it. */
static int http_parse(http_resp_t *r, buf_t *in, int eof) {
  for (;;) {
    size_t term = 0;
    ssize_t n;
    switch (r->state) {
    case HP_STATUS:
    case HP_HEADERS:
    case HP_TRAILERS:
    case HP_CHUNK_SIZE:
    case HP_CHUNK_CRLF:
      n = find_line(in->p, in->len, &term);
      if (n < 0) {
        if (in->len > 65536) return -1;
        return eof ? -1 : 0;
      }
      r->header_bytes += (size_t)n + term;
      if (r->state == HP_STATUS) {
        int major = 0, minor = 0, status = 0;
        char tmp[32];
        size_t m = (size_t)n < sizeof tmp - 1 ? (size_t)n : sizeof tmp - 1;
        memcpy(tmp, in->p, m);
        tmp[m] = 0;
        if (sscanf(tmp, "HTTP/%d.%d %d", &major, &minor, &status) != 3 || major != 1) return -1;
        r->status = status;
        r->minor = minor;
        if (minor == 0) r->conn_close = 1;
        r->state = HP_HEADERS;
      } else if (r->state == HP_HEADERS) {
        const char *line = in->p, *v;
        size_t vl;
        if (n == 0) {
          /* end of the head */
          buf_consume(in, term);
          if (r->status >= 100 && r->status < 200) { /* interim: start again */
            r->state = HP_STATUS;
            continue;
          }
          if (r->status == 204 || r->status == 304) {
            r->state = HP_DONE;
          } else if (r->chunked) {
            r->state = HP_CHUNK_SIZE;
          } else if (r->content_length >= 0) {
            r->remaining = r->content_length;
            r->state = r->remaining ? HP_BODY_LEN : HP_DONE;
          } else {
            r->conn_close = 1;
            r->state = HP_BODY_EOF;
          }
          continue;
        }
        if (header_is(line, (size_t)n, "content-length", &v, &vl)) {
          char tmp[32];
          copy_header_value(tmp, sizeof tmp, v, vl);
          char *end;
          long long cl = strtoll(tmp, &end, 10);
          if (*end || cl < 0) return -1;
          r->content_length = cl;
        } else if (header_is(line, (size_t)n, "transfer-encoding", &v, &vl)) {
          char tmp[64];
          copy_header_value(tmp, sizeof tmp, v, vl);
          if (strcasestr(tmp, "chunked")) r->chunked = 1;
        } else if (header_is(line, (size_t)n, "connection", &v, &vl)) {
          char tmp[64];
          copy_header_value(tmp, sizeof tmp, v, vl);
          if (strcasestr(tmp, "close")) r->conn_close = 1;
          if (strcasestr(tmp, "keep-alive")) r->conn_close = 0;
        } else if (header_is(line, (size_t)n, "etag", &v, &vl)) {
          copy_header_value(r->etag, sizeof r->etag, v, vl);
        } else if (header_is(line, (size_t)n, "last-modified", &v, &vl)) {
          copy_header_value(r->last_modified, sizeof r->last_modified, v, vl);
        } else if (header_is(line, (size_t)n, "pbp-cursor", &v, &vl)) {
          copy_header_value(r->pbp_cursor, sizeof r->pbp_cursor, v, vl);
        }
      } else if (r->state == HP_CHUNK_SIZE) {
        char tmp[32];
        size_t m = (size_t)n < sizeof tmp - 1 ? (size_t)n : sizeof tmp - 1;
        memcpy(tmp, in->p, m);
        tmp[m] = 0;
        char *end;
        errno = 0;
        long long size = strtoll(tmp, &end, 16);
        if (end == tmp || errno || size < 0 || (*end && *end != ';' && *end != ' ')) return -1;
        r->remaining = size;
        r->state = size ? HP_CHUNK_DATA : HP_TRAILERS;
      } else if (r->state == HP_CHUNK_CRLF) {
        if (n != 0) return -1;
        r->state = HP_CHUNK_SIZE;
      } else { /* trailers */
        if (n == 0) {
          buf_consume(in, term);
          r->state = HP_DONE;
          continue;
        }
      }
      buf_consume(in, (size_t)n + term);
      break;
    case HP_BODY_LEN:
    case HP_CHUNK_DATA: {
      size_t take = in->len < (size_t)r->remaining ? in->len : (size_t)r->remaining;
      if (take == 0) return eof ? -1 : 0;
      buf_append(&r->body, in->p, take);
      buf_consume(in, take);
      r->remaining -= (int64_t)take;
      if (r->remaining == 0) r->state = r->state == HP_BODY_LEN ? HP_DONE : HP_CHUNK_CRLF;
      break;
    }
    case HP_BODY_EOF:
      if (in->len) {
        buf_append(&r->body, in->p, in->len);
        buf_clear(in);
      }
      if (!eof) return 0;
      r->state = HP_DONE;
      break;
    case HP_DONE:
      return 1;
    }
  }
}

/* ------------------------------------------------------------------------ */
/* configuration                                                             */

enum { TARGET_PBP, TARGET_NCHAN };
enum { OP_GET, OP_LIST, OP_POST, OP_PUT };

static struct {
  const char *mode;
  int target;
  char host[64];
  int port;
  int connections;
  int procs;
  int rounds;
  int sources;       /* loopback source addresses 127.0.0.1.. (0 = automatic) */
  double ramp;       /* connections opened per millisecond (fanout) */
  double poll_timeout; /* seconds the long-poll asks for */
  double park_timeout; /* seconds to wait for all N parked */
  double delivery_timeout; /* seconds after the commit to wait for the last delivery */
  double settle;     /* extra seconds after the server reports all parked */
  const char *pg;    /* libpq conninfo for the commit side and PostgreSQL figures */
  const char *table;
  const char *cursor; /* the first poll's cursor (default: a snapshot read's PBP-Cursor) */
  const char *sub_path;
  const char *pub_path;
  const char *status_path;
  int op;
  double duration;
  double warmup;
  double request_timeout;
  char *watch[16];
  int nwatch;
  int verbose;
} cfg = {
    .mode = NULL,
    .target = TARGET_PBP,
    .host = "127.0.0.1",
    .port = 0,
    .connections = 1,
    .procs = 0,
    .rounds = 20,
    .sources = 0,
    .ramp = 10.0,
    .poll_timeout = 55.0,
    .park_timeout = 60.0,
    .delivery_timeout = 15.0,
    .settle = 0.0,
    .pg = NULL,
    .table = "testtype",
    .cursor = NULL,
    .sub_path = "/sub",
    .pub_path = "/pub",
    .status_path = NULL,
    .op = OP_GET,
    .duration = 5.0,
    .warmup = 1.0,
    .request_timeout = 10.0,
    .nwatch = 0,
    .verbose = 0,
};

/* ------------------------------------------------------------------------ */
/* connecting                                                                */

static struct sockaddr_in target_addr(void) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)cfg.port);
  if (inet_pton(AF_INET, cfg.host, &a.sin_addr) != 1) die("bad --host %s (an IPv4 address)", cfg.host);
  return a;
}

static int src_retries; /* EADDRNOTAVAIL: moved to the next source address */

/* Opens a non-blocking TCP connection from 127.0.0.(1 + src). With
 * IP_BIND_ADDRESS_NO_PORT the port is chosen at connect time, so the kernel
 * only needs the 4-tuple to be unique: each source address gives its own
 * ~28,000 ephemeral ports towards the one server port. */
static int open_conn(int *src, int nsources) {
  struct sockaddr_in dst = target_addr();
  for (int attempt = 0; attempt < 16; attempt++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (nsources > 1 || *src > 0) {
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      struct sockaddr_in me;
      memset(&me, 0, sizeof me);
      me.sin_family = AF_INET;
      me.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)*src);
      if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0) {
        int e = errno;
        close(fd);
        return -e;
      }
    }
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) == 0 || errno == EINPROGRESS) return fd;
    int e = errno;
    close(fd);
    if (e != EADDRNOTAVAIL) return -e;
    src_retries++;
    *src = (*src + 1) % 16; /* this address ran out of ports: try the next one */
  }
  return -EADDRNOTAVAIL;
}

/* Close with an RST (SO_LINGER 0) so that the loopback is not left with
 * tens of thousands of TIME_WAIT entries between benchmarks. */
static void close_rst(int fd) {
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}

/* ------------------------------------------------------------------------ */
/* a small blocking HTTP client (status checks, publishing)                  */

typedef struct {
  int fd;
  buf_t in;
  http_resp_t resp;
  int requests;
} hclient_t;

static int hc_connect(hclient_t *c) {
  int src = 0;
  c->fd = open_conn(&src, 1);
  if (c->fd < 0) return -1;
  struct pollfd p = {c->fd, POLLOUT, 0};
  if (poll(&p, 1, 5000) != 1) {
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) {
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  buf_clear(&c->in);
  return 0;
}

/* Sends one request and waits (at most timeout_ms) for its response.
 * Returns the status, or -1. A keep-alive connection the server closed is
 * reopened once for an idempotent request. */
static int hc_request(hclient_t *c, const char *method, const char *path, const char *ctype, const char *body,
                      int timeout_ms, int idempotent) {
  buf_t req = {0};
  size_t blen = body ? strlen(body) : 0;
  buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: pbp-loadgen\r\n", method, path, cfg.host, cfg.port);
  if (body) buf_printf(&req, "Content-Type: %s\r\nContent-Length: %zu\r\n", ctype, blen);
  buf_printf(&req, "\r\n");
  if (body) buf_append(&req, body, blen);
  int result = -1;
  for (int attempt = 0; attempt < 2; attempt++) {
    if (c->fd < 0 && hc_connect(c) < 0) break;
    size_t off = 0;
    int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000;
    int failed = 0;
    while (off < req.len) {
      ssize_t w = send(c->fd, req.p + off, req.len - off, MSG_NOSIGNAL);
      if (w > 0) {
        off += (size_t)w;
        continue;
      }
      if (w < 0 && errno == EAGAIN) {
        struct pollfd p = {c->fd, POLLOUT, 0};
        poll(&p, 1, 100);
        if (now_ns() > deadline) {
          failed = 1;
          break;
        }
        continue;
      }
      failed = 1;
      break;
    }
    resp_reset(&c->resp);
    int got = 0, eof = 0;
    while (!failed) {
      int done = http_parse(&c->resp, &c->in, eof);
      if (done == 1) {
        got = 1;
        break;
      }
      if (done < 0 || eof) {
        failed = 1;
        break;
      }
      int64_t left = (deadline - now_ns()) / 1000000;
      if (left <= 0) {
        failed = 1;
        break;
      }
      struct pollfd p = {c->fd, POLLIN, 0};
      if (poll(&p, 1, (int)(left < 1000 ? left : 1000)) < 0 && errno != EINTR) {
        failed = 1;
        break;
      }
      char tmp[65536];
      ssize_t r = recv(c->fd, tmp, sizeof tmp, 0);
      if (r > 0)
        buf_append(&c->in, tmp, (size_t)r);
      else if (r == 0)
        eof = 1;
      else if (errno != EAGAIN && errno != EINTR)
        eof = 1;
    }
    if (got) {
      c->requests++;
      result = c->resp.status;
      if (c->resp.conn_close) {
        close(c->fd);
        c->fd = -1;
      }
      break;
    }
    close(c->fd);
    c->fd = -1;
    if (!idempotent || c->requests == 0) break;
    c->requests = 0;
  }
  buf_free(&req);
  return result;
}

/* ------------------------------------------------------------------------ */
/* watching processes: CPU (ns, from schedstat) and memory (smaps_rollup)    */

typedef struct {
  char name[32];
  pid_t root;
} watch_t;

static watch_t watches[16];
static int nwatches;

static int read_file(const char *path, char *out, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t off = 0;
  ssize_t r;
  while (off + 1 < cap && (r = read(fd, out + off, cap - 1 - off)) > 0) off += (size_t)r;
  close(fd);
  out[off] = 0;
  return (int)off;
}

/* The process and all its descendants (via /proc/PID/task/TID/children). */
static int collect_tree(pid_t pid, pid_t *out, int n, int cap) {
  if (n >= cap) return n;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (!d) return n;
  out[n++] = pid;
  struct dirent *e;
  char text[8192];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char cpath[300];
    snprintf(cpath, sizeof cpath, "/proc/%d/task/%s/children", pid, e->d_name);
    if (read_file(cpath, text, sizeof text) <= 0) continue;
    char *save, *tok = strtok_r(text, " \n", &save);
    pid_t kids[1024];
    int nk = 0;
    while (tok && nk < 1024) {
      kids[nk++] = (pid_t)atoi(tok);
      tok = strtok_r(NULL, " \n", &save);
    }
    for (int i = 0; i < nk; i++) n = collect_tree(kids[i], out, n, cap);
  }
  closedir(d);
  return n;
}

/* CPU time of every thread of a process, in ns (schedstat's first field:
 * exact, unlike the 10 ms ticks of /proc/PID/stat). */
static int64_t process_cpu_ns(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (!d) return 0;
  int64_t total = 0;
  struct dirent *e;
  char text[256];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char spath[300];
    snprintf(spath, sizeof spath, "/proc/%d/task/%s/schedstat", pid, e->d_name);
    if (read_file(spath, text, sizeof text) > 0) total += strtoll(text, NULL, 10);
  }
  closedir(d);
  return total;
}

static int64_t group_cpu_ns(int g) {
  pid_t pids[4096];
  int n = collect_tree(watches[g].root, pids, 0, 4096);
  int64_t total = 0;
  for (int i = 0; i < n; i++) total += process_cpu_ns(pids[i]);
  return total;
}

static void sample_cpu(int64_t *out) {
  for (int g = 0; g < nwatches; g++) out[g] = group_cpu_ns(g);
}

typedef struct {
  int64_t rss_kb, pss_kb;
} mem_t;

static mem_t process_mem(pid_t pid) {
  mem_t m = {0, 0};
  char path[64], text[4096];
  snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
  if (read_file(path, text, sizeof text) <= 0) return m;
  char *p = strstr(text, "\nRss:");
  if (p) m.rss_kb = strtoll(p + 5, NULL, 10);
  p = strstr(text, "\nPss:");
  if (p) m.pss_kb = strtoll(p + 5, NULL, 10);
  return m;
}

/* Writes {"group": {"rss_kb": .., "pss_kb": .., "processes": [..]}, ..} and
 * stores the group totals in out. */
static void sample_mem(mem_t *out, buf_t *json) {
  buf_printf(json, "{");
  for (int g = 0; g < nwatches; g++) {
    pid_t pids[4096];
    int n = collect_tree(watches[g].root, pids, 0, 4096);
    mem_t total = {0, 0};
    buf_t procs = {0};
    for (int i = 0; i < n; i++) {
      mem_t m = process_mem(pids[i]);
      total.rss_kb += m.rss_kb;
      total.pss_kb += m.pss_kb;
      char comm[64] = "", path[64];
      snprintf(path, sizeof path, "/proc/%d/comm", pids[i]);
      read_file(path, comm, sizeof comm);
      comm[strcspn(comm, "\n\"\\")] = 0;
      buf_printf(&procs, "%s{\"pid\":%d,\"comm\":\"%s\",\"rss_kb\":%" PRId64 ",\"pss_kb\":%" PRId64 "}", i ? "," : "",
                 pids[i], comm, m.rss_kb, m.pss_kb);
    }
    out[g] = total;
    buf_printf(json, "%s\"%s\":{\"rss_kb\":%" PRId64 ",\"pss_kb\":%" PRId64 ",\"processes\":[%s]}", g ? "," : "",
               watches[g].name, total.rss_kb, total.pss_kb, procs.p ? procs.p : "");
    buf_free(&procs);
  }
  buf_printf(json, "}");
}

/* ------------------------------------------------------------------------ */
/* fan-out: the worker processes                                             */

/* Per round: PARK (send the polls) -> MSG_SENT; the parent waits for the
 * server to report them parked; ARM -> MSG_ARMED (from now on every answer is
 * recorded, none re-parked as a catch-up); t0, commit, t1; COMMITTED (start
 * the delivery deadline) -> MSG_RESULTS. The ARM handshake happens before t0,
 * so a delivery arriving before PQexec returns is never mistaken for a
 * catch-up. */
enum { CMD_PARK = 1, CMD_COMMITTED = 2, CMD_QUIT = 3, CMD_ARM = 4 };
enum { MSG_SENT = 1, MSG_RESULTS = 2, MSG_ARMED = 3 };

typedef struct {
  int32_t type;
  int32_t round;
  char cursor[80];
} cmd_t;

typedef struct {
  int32_t type;
  int32_t count;        /* MSG_SENT: requests written; MSG_RESULTS: records following */
  int32_t failed;       /* connections that could not be opened or written */
  int32_t reconnects;
  int32_t addr_retries;
  int32_t catchups;     /* answers before the commit (re-parked at once) */
  int32_t retried;      /* failures before the commit (5xx, closed), retried with backoff */
  int32_t pad;
} msg_t;

/* One connection's outcome in a round. */
enum {
  R_OK_RESPONSE = 1,  /* a complete HTTP response was read */
  R_NO_RESPONSE = 2,  /* nothing before the deadline */
  R_CONN_ERROR = 4,   /* connect/IO error or the server closed */
  R_PARSE_ERROR = 8,  /* not HTTP/1.1 as expected */
  R_NOT_SENT = 16,    /* the poll could not be sent */
  R_MULTI = 32,       /* more than one event in the answer */
};

typedef struct {
  int64_t arrival_ns;
  int64_t key; /* the event's key (PBP) or the message (Nchan); -1 for none */
  int32_t status;
  int32_t flags;
} record_t;

enum { CS_DOWN, CS_CONNECTING, CS_SENDING, CS_WAITING, CS_IDLE };

typedef struct {
  int fd;
  int state;
  int src;
  buf_t out;
  size_t out_off;
  buf_t in;
  http_resp_t resp;
  record_t rec;
  char cursor[80];
  char etag[160];
  char last_modified[80];
  int64_t started_ns;
  int requests;
  int op;
  int sent_this_round;
  int failures;      /* consecutive failures before the commit (backoff) */
  int64_t retry_at;  /* when to poll again after a failure; 0 = not waiting */
} conn_t;

static int nsources_for(int n) {
  if (cfg.sources > 0) return cfg.sources;
  /* About 28,000 ephemeral ports per source address: use one more address
   * per 14,000 connections, so that what earlier runs left in TIME_WAIT
   * cannot make us run short. */
  int k = (n + 13999) / 14000;
  return k < 1 ? 1 : k > 16 ? 16 : k;
}

/* Parses a PBP change answer: the top-level cursor and the first event's key. */
static void parse_pbp_answer(conn_t *c) {
  const char *b = c->resp.body.p ? c->resp.body.p : "";
  const char *cur = strstr(b, "\"cursor\"");
  if (cur) {
    cur = strchr(cur + 8, '"');
    if (cur) {
      const char *end = strchr(cur + 1, '"');
      if (end && (size_t)(end - cur - 1) < sizeof c->cursor) {
        memcpy(c->cursor, cur + 1, (size_t)(end - cur - 1));
        c->cursor[end - cur - 1] = 0;
      }
    }
  }
  c->rec.key = -1;
  const char *ev = strstr(b, "\"events\"");
  if (!ev) return;
  const char *k = strstr(ev, "\"key\"");
  if (!k) return;
  k += 5;
  while (*k == ' ' || *k == ':') k++;
  char *end;
  long long key = strtoll(k, &end, 10);
  if (end != k) c->rec.key = key;
  if (strstr(end, "\"key\"")) c->rec.flags |= R_MULTI;
}

static void build_poll_request(conn_t *c) {
  buf_clear(&c->out);
  c->out_off = 0;
  if (cfg.target == TARGET_PBP) {
    char body[256];
    int n = snprintf(body, sizeof body, "{\"cursor\":\"%s\",\"subscriptions\":[{\"table\":\"%s\"}],\"timeout\":%g}",
                     c->cursor, cfg.table, cfg.poll_timeout);
    buf_printf(&c->out,
               "POST /api/changes HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: pbp-loadgen\r\nAccept: application/json\r\n"
               "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
               cfg.host, cfg.port, n, body);
  } else {
    buf_printf(&c->out, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: pbp-loadgen\r\nAccept: */*\r\n", cfg.sub_path,
               cfg.host, cfg.port);
    if (c->last_modified[0]) buf_printf(&c->out, "If-Modified-Since: %s\r\n", c->last_modified);
    if (c->etag[0]) buf_printf(&c->out, "If-None-Match: %s\r\n", c->etag);
    buf_printf(&c->out, "\r\n");
  }
}

typedef struct {
  int epfd;
  conn_t *conns;
  int n;
  int base; /* global index of conns[0] */
  int nsources;
  /* round state */
  int round;
  int parking;
  int next_connect; /* first round: ramp position */
  int64_t ramp_start;
  int sent, failed, responded, pending;
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

static void ep_set(int epfd, int fd, uint32_t events, void *ptr, int add) {
  struct epoll_event ev = {.events = events, .data.ptr = ptr};
  if (epoll_ctl(epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) < 0 && add == 0 && errno == ENOENT)
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Before the commit the load generator behaves as the page's poll loop
 * (static/poller.js) does: a 5xx answer or a failed connection is retried
 * with the cursor kept, after an exponential backoff with jitter (about
 * 250 ms, doubling, at most 10 s). Counted and reported ("retried"). */
static void schedule_retry(fanout_worker_t *w, conn_t *c) {
  c->failures++;
  double base = 250.0 * (double)(1 << (c->failures - 1 < 6 ? c->failures - 1 : 6));
  if (base > 10000.0) base = 10000.0;
  double jitter = 0.5 + (double)(rng_next(&w->rng) % 1000) / 1000.0; /* 0.5 .. 1.5 */
  c->retry_at = now_ns() + (int64_t)(base * jitter * 1e6);
  w->retried++;
  w->retries_waiting++;
  if (cfg.verbose) note("poll failed before the commit (status %d, flags %d): retry #%d", c->rec.status, c->rec.flags,
                        c->failures);
}

static void conn_fail(fanout_worker_t *w, conn_t *c, int flag) {
  if (c->fd >= 0) {
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close_rst(c->fd);
  }
  c->fd = -1;
  int was = c->state;
  c->state = CS_DOWN;
  if (w->parking && !w->armed && (was == CS_CONNECTING || was == CS_SENDING || was == CS_WAITING)) {
    if (was == CS_WAITING) w->pending--;
    if (!c->sent_this_round) { /* count it as sent: the retry will send it */
      c->sent_this_round = 1;
      w->sent++;
    }
    schedule_retry(w, c);
    return;
  }
  c->rec.flags |= flag;
  if (was == CS_CONNECTING || was == CS_SENDING) {
    c->rec.flags |= R_NOT_SENT;
    w->failed++;
  } else if (was == CS_WAITING) {
    w->pending--;
  }
}

static void conn_try_send(fanout_worker_t *w, conn_t *c) {
  while (c->out_off < c->out.len) {
    ssize_t r = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
    if (r > 0) {
      c->out_off += (size_t)r;
      continue;
    }
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
      ep_set(w->epfd, c->fd, EPOLLIN | EPOLLOUT, c, 0);
      return;
    }
    conn_fail(w, c, R_CONN_ERROR);
    return;
  }
  c->state = CS_WAITING;
  c->started_ns = now_ns();
  if (!c->sent_this_round) {
    c->sent_this_round = 1;
    w->sent++;
  }
  w->pending++;
  ep_set(w->epfd, c->fd, EPOLLIN | EPOLLRDHUP, c, 0);
}

static void conn_start(fanout_worker_t *w, conn_t *c) {
  resp_reset(&c->resp);
  memset(&c->rec, 0, sizeof c->rec);
  c->rec.key = -1;
  build_poll_request(c);
  if (c->fd < 0) {
    int fd = open_conn(&c->src, w->nsources);
    if (fd < 0) {
      if (cfg.verbose) note("connect failed: %s", strerror(-fd));
      if (w->parking && !w->armed) {
        if (!c->sent_this_round) {
          c->sent_this_round = 1;
          w->sent++;
        }
        schedule_retry(w, c);
        return;
      }
      c->rec.flags |= R_CONN_ERROR | R_NOT_SENT;
      w->failed++;
      return;
    }
    c->fd = fd;
    c->state = CS_CONNECTING;
    buf_clear(&c->in);
    ep_set(w->epfd, fd, EPOLLOUT, c, 1);
    return;
  }
  c->state = CS_SENDING;
  conn_try_send(w, c);
}

static void conn_readable(fanout_worker_t *w, conn_t *c) {
  int eof = 0;
  for (;;) {
    /* answers are small: 16 KB keeps 19,000 connections' buffers off mmap */
    buf_reserve(&c->in, 8192);
    size_t room = c->in.cap - c->in.len - 1;
    ssize_t r = recv(c->fd, c->in.p + c->in.len, room, 0);
    if (r > 0) {
      c->in.len += (size_t)r;
      c->in.p[c->in.len] = 0;
      if ((size_t)r < room) break;
      continue;
    }
    if (r == 0) {
      eof = 1;
      break;
    }
    if (errno == EAGAIN || errno == EINTR) break;
    eof = 1;
    break;
  }
  if (c->state != CS_WAITING) {
    /* data or a close while idle: the server closed a keep-alive connection */
    if (eof || c->in.len) {
      epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
      close(c->fd);
      c->fd = -1;
      c->state = CS_DOWN;
    }
    return;
  }
  int nothing = c->resp.state == HP_STATUS && c->in.len == 0;
  int done = http_parse(&c->resp, &c->in, eof);
  if (done == 0 && !eof) return;
  if (done <= 0) {
    conn_fail(w, c, done < 0 && !nothing ? R_PARSE_ERROR : R_CONN_ERROR);
    return;
  }
  c->rec.arrival_ns = now_ns();
  c->rec.status = c->resp.status;
  c->rec.flags |= R_OK_RESPONSE;
  if (cfg.target == TARGET_PBP) {
    parse_pbp_answer(c);
  } else {
    if (c->resp.etag[0]) snprintf(c->etag, sizeof c->etag, "%s", c->resp.etag);
    if (c->resp.last_modified[0]) snprintf(c->last_modified, sizeof c->last_modified, "%s", c->resp.last_modified);
    char *end;
    const char *b = c->resp.body.p ? c->resp.body.p : "";
    long long key = strtoll(b, &end, 10);
    c->rec.key = end != b ? key : -1;
  }
  w->pending--;
  c->requests++;
  if (!w->armed && c->resp.status >= 500) {
    if (c->resp.conn_close || eof || c->in.len) {
      epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
      close(c->fd);
      c->fd = -1;
      c->state = CS_DOWN;
      buf_clear(&c->in);
    } else {
      c->state = CS_IDLE;
    }
    schedule_retry(w, c);
    return;
  }
  c->failures = 0;
  /* An answer before the commit is a catch-up (PBP: the snapshot's cursor is
   * taken before its query, so it may be behind events already in the
   * stream; or a poll timeout): a client polls again at once from the new
   * cursor, and so do we. Counted and reported, never taken as a delivery. */
  if (!w->armed && c->resp.status == 200) {
    w->catchups++;
    if (cfg.verbose) note("catch-up answer (key %" PRId64 "): polling again", c->rec.key);
    if (c->resp.conn_close || eof || c->in.len) {
      epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
      close(c->fd);
      c->fd = -1;
      c->state = CS_DOWN;
      buf_clear(&c->in);
      conn_start(w, c); /* reconnects; sent_this_round keeps it counted once */
      return;
    }
    resp_reset(&c->resp);
    c->rec.flags = 0;
    c->rec.key = -1;
    build_poll_request(c);
    c->state = CS_SENDING;
    conn_try_send(w, c);
    return;
  }
  w->responded++;
  if (c->resp.conn_close || eof || c->in.len) {
    if (c->in.len) c->rec.flags |= R_PARSE_ERROR; /* bytes after the response */
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = CS_DOWN;
    buf_clear(&c->in);
  } else {
    c->state = CS_IDLE;
    ep_set(w->epfd, c->fd, EPOLLIN | EPOLLRDHUP, c, 0);
  }
}

static void conn_event(fanout_worker_t *w, conn_t *c, uint32_t events) {
  if (c->state == CS_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err || (events & (EPOLLERR | EPOLLHUP))) {
      if (cfg.verbose) note("connect failed: %s", strerror(err));
      conn_fail(w, c, R_CONN_ERROR);
      return;
    }
    c->state = CS_SENDING;
    conn_try_send(w, c);
    return;
  }
  if (c->state == CS_SENDING && (events & EPOLLOUT)) {
    conn_try_send(w, c);
    if (c->state != CS_WAITING) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) conn_readable(w, c);
}

static int write_all(int fd, const void *p, size_t n) {
  const char *s = p;
  while (n) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd pf = {fd, POLLOUT, 0};
        poll(&pf, 1, 1000);
        continue;
      }
      return -1;
    }
    s += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_all(int fd, void *p, size_t n, int timeout_ms) {
  char *s = p;
  int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000;
  while (n) {
    int64_t left = (deadline - now_ns()) / 1000000;
    if (left <= 0) return -1;
    struct pollfd pf = {fd, POLLIN, 0};
    int pr = poll(&pf, 1, (int)left);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue;
    ssize_t r = read(fd, s, n);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) return -1;
    s += r;
    n -= (size_t)r;
  }
  return 0;
}

static void fanout_worker(int ctl, int base, int n, const char *cursor0) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  fanout_worker_t w;
  memset(&w, 0, sizeof w);
  w.epfd = epoll_create1(EPOLL_CLOEXEC);
  w.conns = xmalloc(sizeof(conn_t) * (size_t)(n ? n : 1));
  w.n = n;
  w.base = base;
  w.nsources = nsources_for(cfg.connections);
  w.rng = 0x2545F4914F6CDD1DULL ^ ((uint64_t)getpid() << 17) ^ (uint64_t)now_ns();
  for (int i = 0; i < n; i++) {
    w.conns[i].fd = -1;
    w.conns[i].src = (base + i) % w.nsources;
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
      if (events[i].data.ptr == NULL) {
        cmd_t cmd;
        if (read_all(ctl, &cmd, sizeof cmd, 5000) < 0) _exit(3); /* the parent is gone */
        if (cmd.type == CMD_QUIT) {
          for (int k = 0; k < n; k++)
            if (w.conns[k].fd >= 0) close_rst(w.conns[k].fd);
          _exit(0);
        }
        if (cmd.type == CMD_PARK) {
          w.round = cmd.round;
          w.parking = 1;
          w.sent = w.failed = w.responded = w.pending = 0;
          w.sent_reported = 0;
          w.armed = 0;
          w.committed = 0;
          w.reconnects = 0;
          w.catchups = 0;
          w.retried = 0;
          src_retries = 0;
          for (int k = 0; k < n; k++) w.conns[k].sent_this_round = 0;
          w.deadline = t + (int64_t)(cfg.park_timeout * 1e9);
          if (round0) {
            w.next_connect = 0;
            w.ramp_start = t;
            round0 = 0;
          } else {
            w.next_connect = n;
            for (int k = 0; k < n; k++) {
              conn_t *c = &w.conns[k];
              if (c->retry_at) { /* a retry the last round gave up on */
                c->retry_at = 0;
                w.retries_waiting--;
              }
              c->failures = 0;
              if (c->fd < 0 && c->state != CS_DOWN) c->state = CS_DOWN;
              if (c->state == CS_WAITING) { /* never answered: start afresh */
                epoll_ctl(w.epfd, EPOLL_CTL_DEL, c->fd, NULL);
                close_rst(c->fd);
                c->fd = -1;
                c->state = CS_DOWN;
              }
              if (c->fd < 0) w.reconnects++;
              conn_start(&w, c);
            }
          }
        } else if (cmd.type == CMD_ARM) {
          w.armed = 1;
          msg_t m = {MSG_ARMED, 0, 0, 0, 0, 0, 0, 0};
          write_all(ctl, &m, sizeof m);
        } else if (cmd.type == CMD_COMMITTED) {
          w.committed = 1;
          w.deadline = now_ns() + (int64_t)(cfg.delivery_timeout * 1e9);
        }
        continue;
      }
      conn_event(&w, events[i].data.ptr, events[i].events);
    }
    if (w.retries_waiting) {
      int64_t tn = now_ns();
      for (int k = 0; k < n && w.retries_waiting; k++) {
        conn_t *c = &w.conns[k];
        if (!c->retry_at || c->retry_at > tn) continue;
        c->retry_at = 0;
        w.retries_waiting--;
        if (w.armed) { /* too late to retry: it is a miss */
          c->rec.flags |= R_CONN_ERROR | R_NOT_SENT;
          continue;
        }
        conn_start(&w, c);
      }
    }
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
      msg_t m = {MSG_RESULTS, n, w.failed, w.reconnects, src_retries, w.catchups, w.retried, 0};
      write_all(ctl, &m, sizeof m);
      record_t *recs = xmalloc(sizeof(record_t) * (size_t)(n ? n : 1));
      for (int k = 0; k < n; k++) {
        recs[k] = w.conns[k].rec;
        if (!(recs[k].flags & R_OK_RESPONSE) && !(recs[k].flags & (R_CONN_ERROR | R_NOT_SENT)))
          recs[k].flags |= R_NO_RESPONSE;
      }
      write_all(ctl, recs, sizeof(record_t) * (size_t)n);
      free(recs);
      w.parking = 0;
    } else if (w.parking && !w.committed && timed_out && !w.sent_reported) {
      /* could not even send every poll within --park-timeout: report what we have */
      msg_t m = {MSG_SENT, w.sent, n - w.sent, w.reconnects, src_retries, w.catchups, w.retried, 0};
      write_all(ctl, &m, sizeof m);
      w.sent_reported = 1;
    }
  }
}

/* ------------------------------------------------------------------------ */
/* fan-out: the parent                                                       */

typedef struct {
  pid_t pid;
  int ctl;
  int base, n;
} child_t;

static PGconn *pg_connect(void) {
  if (!cfg.pg) return NULL;
  PGconn *pg = PQconnectdb(cfg.pg);
  if (PQstatus(pg) != CONNECTION_OK) die("PostgreSQL connection failed: %s", PQerrorMessage(pg));
  return pg;
}

/* PostgreSQL client backends in use, by user, excluding our own connection. */
static void pg_connections(PGconn *pg, buf_t *json, int *total) {
  PGresult *r = PQexec(pg, "select coalesce(usename, '?'), count(*) from pg_stat_activity "
                           "where backend_type = 'client backend' and pid <> pg_backend_pid() group by 1 order by 1");
  *total = 0;
  buf_printf(json, "{");
  if (PQresultStatus(r) == PGRES_TUPLES_OK) {
    for (int i = 0; i < PQntuples(r); i++) {
      int count = atoi(PQgetvalue(r, i, 1));
      *total += count;
      buf_printf(json, "%s\"%s\":%d", i ? "," : "", PQgetvalue(r, i, 0), count);
    }
  } else {
    note("pg_stat_activity query failed: %s", PQerrorMessage(pg));
  }
  buf_printf(json, "}");
  PQclear(r);
}

/* Parked polls as the server reports them: PBP's /api/_status (totals) or
 * nchan_stub_status. -1 when it cannot be read. For PBP, *delivered gets
 * totals.events_delivered (-1 if absent): each worker publishes its parked
 * count and that counter together, from one locked snapshot, every 100 ms,
 * so a sum of events_delivered that includes every delivery we have
 * received proves that no worker's parked count is from before them. */
static long server_parked(hclient_t *hc, long *delivered) {
  *delivered = -1;
  int status = hc_request(hc, "GET", cfg.status_path, NULL, NULL, 5000, 1);
  if (status != 200) return -1;
  const char *b = hc->resp.body.p ? hc->resp.body.p : "";
  if (cfg.target == TARGET_PBP) {
    const char *t = strstr(b, "\"totals\"");
    if (!t) return -1;
    const char *d = strstr(t, "\"events_delivered\":");
    if (d) *delivered = strtol(d + 19, NULL, 10);
    const char *p = strstr(t, "\"parked_polls\":");
    return p ? strtol(p + 15, NULL, 10) : -1;
  }
  const char *p = strstr(b, "subscribers:");
  return p ? strtol(p + 12, NULL, 10) : -1;
}

typedef struct {
  int64_t *lat; /* ns, delivered ones */
  size_t nlat, caplat;
} lat_t;

static void lat_push(lat_t *l, int64_t v) {
  if (l->nlat == l->caplat) {
    l->caplat = l->caplat ? l->caplat * 2 : 4096;
    l->lat = xrealloc(l->lat, l->caplat * sizeof(int64_t));
  }
  l->lat[l->nlat++] = v;
}

static void json_lat(buf_t *j, lat_t *l) {
  qsort(l->lat, l->nlat, sizeof(int64_t), cmp_i64);
  double sum = 0;
  for (size_t i = 0; i < l->nlat; i++) sum += (double)l->lat[i];
  buf_printf(j,
             "{\"count\":%zu,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f,\"min\":%.1f,\"mean\":%.1f}",
             l->nlat, pct(l->lat, l->nlat, 0.5) / 1e3, pct(l->lat, l->nlat, 0.9) / 1e3,
             pct(l->lat, l->nlat, 0.99) / 1e3, l->nlat ? l->lat[l->nlat - 1] / 1e3 : -1.0,
             l->nlat ? l->lat[0] / 1e3 : -1.0, l->nlat ? sum / (double)l->nlat / 1e3 : -1.0);
}

static int mode_fanout(void) {
  if (!cfg.port) die("--port is required");
  if (cfg.target == TARGET_PBP && !cfg.pg) die("--pg (libpq conninfo) is required for target pbp");
  if (!cfg.status_path) cfg.status_path = cfg.target == TARGET_PBP ? "/api/_status" : "/nchan_status";
  int N = cfg.connections;
  int P = cfg.procs > 0 ? cfg.procs : (N > 1 ? 2 : 1);
  if (P > N) P = N;
  cfg.procs = P;
  long perproc = (N + P - 1) / P;
  if (perproc + 64 > nofile_limit())
    die("%ld connections per process exceed the descriptor limit %ld: use more --procs", perproc, nofile_limit());

  /* the starting cursor: a snapshot read's PBP-Cursor (caught up) */
  char cursor0[80] = "";
  hclient_t hc = {.fd = -1};
  if (cfg.target == TARGET_PBP && cfg.cursor) {
    snprintf(cursor0, sizeof cursor0, "%s", cfg.cursor);
  } else if (cfg.target == TARGET_PBP) {
    char path[128];
    snprintf(path, sizeof path, "/api/%s?limit=1", cfg.table);
    int st = hc_request(&hc, "GET", path, NULL, NULL, 10000, 1);
    if (st != 200 || !hc.resp.pbp_cursor[0]) die("snapshot read %s answered %d without PBP-Cursor", path, st);
    snprintf(cursor0, sizeof cursor0, "%s", hc.resp.pbp_cursor);
  }

  child_t *kids = xmalloc(sizeof(child_t) * (size_t)P);
  int base = 0;
  for (int p = 0; p < P; p++) {
    int share = N / P + (p < N % P ? 1 : 0);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) die("socketpair: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
      close(sv[0]);
      for (int q = 0; q < p; q++) close(kids[q].ctl);
      if (hc.fd >= 0) close(hc.fd);
      fanout_worker(sv[1], base, share, cursor0);
      _exit(0);
    }
    close(sv[1]);
    kids[p] = (child_t){pid, sv[0], base, share};
    base += share;
  }
  PGconn *pg = pg_connect();

  int64_t *cpu_a = xmalloc(sizeof(int64_t) * 16), *cpu_b = xmalloc(sizeof(int64_t) * 16);
  int64_t *cpu_first = xmalloc(sizeof(int64_t) * 16), *cpu_last_a = xmalloc(sizeof(int64_t) * 16);
  int64_t cpu_delivery[16] = {0};
  mem_t mem_idle[16], mem_parked[16];
  buf_t mem_idle_json = {0}, mem_parked_json = {0}, pg_json = {0}, rounds_json = {0};
  sample_mem(mem_idle, &mem_idle_json);
  int pg_total = -1, pg_max = -1;

  lat_t all = {0};
  lat_t all_t1 = {0}; /* arrival - t1: from the INSERT's return; may be negative */
  int64_t *completions = xmalloc(sizeof(int64_t) * (size_t)cfg.rounds);
  int64_t *commits = xmalloc(sizeof(int64_t) * (size_t)cfg.rounds);
  int64_t *parkwaits = xmalloc(sizeof(int64_t) * (size_t)cfg.rounds);
  long missed_total = 0, early_total = 0, wrong_total = 0, error_total = 0, status_bad_total = 0;
  long not_parked_rounds = 0, catchups_total = 0, retried_total = 0;
  int rounds_done = 0;
  record_t *recs = xmalloc(sizeof(record_t) * (size_t)N);
  int ok = 1;
  buf_t errors = {0};
  hclient_t pub = {.fd = -1};
  /* PBP's scoreboard is published every 100 ms: wait that long, then take the
   * events_delivered baseline that later snapshots must exceed. */
  long delivered_expected = -1;
  if (cfg.target == TARGET_PBP) {
    usleep(250000);
    server_parked(&hc, &delivered_expected);
  }
  int64_t run_start = now_ns();

  for (int r = 0; r < cfg.rounds; r++) {
    cmd_t cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = CMD_PARK;
    cmd.round = r;
    int64_t park_start = now_ns();
    for (int p = 0; p < P; p++) write_all(kids[p].ctl, &cmd, sizeof cmd);
    int sent = 0, failed = 0, reconnects = 0, addr_retries = 0;
    for (int p = 0; p < P; p++) {
      msg_t m;
      if (read_all(kids[p].ctl, &m, sizeof m, (int)(cfg.park_timeout * 1000) + 10000) < 0 || m.type != MSG_SENT)
        die("worker %d did not report its polls sent", p);
      sent += m.count;
      failed += m.failed;
      reconnects += m.reconnects;
      addr_retries += m.addr_retries;
    }
    if (failed) {
      note("round %d: %d of %d polls could not be sent", r + 1, failed, N);
      buf_printf(&errors, "%s\"round %d: %d polls not sent\"", errors.len ? "," : "", r + 1, failed);
      ok = 0;
    }
    /* until the server reports every poll parked */
    long parked = -1, delivered_seen = -1;
    int64_t park_deadline = park_start + (int64_t)(cfg.park_timeout * 1e9);
    int interval_us = N <= 1 ? 2000 : 20000;
    int stale = 0;
    for (;;) {
      parked = server_parked(&hc, &delivered_seen);
      stale = delivered_expected >= 0 && delivered_seen < delivered_expected;
      if (parked >= sent && !stale) break;
      if (now_ns() > park_deadline) break;
      usleep((useconds_t)interval_us);
    }
    if (stale) {
      note("round %d: the status page never counted our %ld deliveries (saw %ld): its parked count may be stale",
           r + 1, delivered_expected, delivered_seen);
      buf_printf(&errors, "%s\"round %d: status never fresh\"", errors.len ? "," : "", r + 1);
      ok = 0;
    }
    if (parked < sent) {
      note("round %d: only %ld of %d polls parked after %.0f s", r + 1, parked, sent, cfg.park_timeout);
      buf_printf(&errors, "%s\"round %d: only %ld of %d parked\"", errors.len ? "," : "", r + 1, parked, sent);
      not_parked_rounds++;
      ok = 0;
    }
    if (cfg.settle > 0) usleep((useconds_t)(cfg.settle * 1e6));
    parkwaits[r] = now_ns() - park_start;
    if (r == 0) {
      sample_mem(mem_parked, &mem_parked_json);
    }
    if (pg) {
      buf_t tmp = {0};
      int total;
      pg_connections(pg, &tmp, &total);
      if (total > pg_max) {
        pg_max = total;
        buf_clear(&pg_json);
        buf_append(&pg_json, tmp.p, tmp.len);
      }
      if (r == 0) pg_total = total;
      buf_free(&tmp);
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = CMD_ARM;
    cmd.round = r;
    for (int p = 0; p < P; p++) write_all(kids[p].ctl, &cmd, sizeof cmd);
    int catchups = 0, retried = 0;
    for (int p = 0; p < P; p++) {
      msg_t m;
      /* a MSG_SENT may still be on its way if the park wait timed out */
      do {
        if (read_all(kids[p].ctl, &m, sizeof m, 10000) < 0) die("worker %d did not arm", p);
      } while (m.type == MSG_SENT);
      if (m.type != MSG_ARMED) die("worker %d: unexpected message %d", p, m.type);
    }
    sample_cpu(cpu_a);
    if (r == 0) memcpy(cpu_first, cpu_a, sizeof(int64_t) * 16);
    memcpy(cpu_last_a, cpu_a, sizeof(int64_t) * 16);

    /* the commit */
    int64_t key = -1, t0, t1;
    if (cfg.target == TARGET_PBP) {
      char sql[256];
      snprintf(sql, sizeof sql, "insert into %s (val) values ('fanout round %d') returning id", cfg.table, r + 1);
      t0 = now_ns();
      PGresult *res = PQexec(pg, sql);
      t1 = now_ns();
      if (PQresultStatus(res) != PGRES_TUPLES_OK) die("INSERT failed: %s", PQerrorMessage(pg));
      key = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
      PQclear(res);
    } else {
      char body[32];
      key = (int64_t)(time(NULL) % 100000) * 1000 + r + 1;
      snprintf(body, sizeof body, "%" PRId64, key);
      t0 = now_ns();
      int st = hc_request(&pub, "POST", cfg.pub_path, "text/plain", body, 10000, 0);
      t1 = now_ns();
      if (st < 200 || st > 299) die("publish answered %d", st);
    }
    commits[r] = t1 - t0;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = CMD_COMMITTED;
    cmd.round = r;
    for (int p = 0; p < P; p++) write_all(kids[p].ctl, &cmd, sizeof cmd);

    /* the deliveries */
    for (int p = 0; p < P; p++) {
      msg_t m;
      if (read_all(kids[p].ctl, &m, sizeof m, (int)(cfg.delivery_timeout * 1000) + 10000) < 0 || m.type != MSG_RESULTS)
        die("worker %d did not report its deliveries", p);
      if (m.count != kids[p].n) die("worker %d reported %d records for %d connections", p, m.count, kids[p].n);
      catchups += m.catchups;
      catchups_total += m.catchups;
      retried += m.retried;
      retried_total += m.retried;
      if (read_all(kids[p].ctl, recs + kids[p].base, sizeof(record_t) * (size_t)m.count, 10000) < 0)
        die("worker %d: short results", p);
    }
    sample_cpu(cpu_b);
    for (int g = 0; g < nwatches; g++) cpu_delivery[g] += cpu_b[g] - cpu_a[g];

    lat_t round_lat = {0};
    long missed = 0, early = 0, wrong = 0, errs = 0, bad_status = 0, timeouts = 0;
    int64_t last = 0;
    for (int i = 0; i < N; i++) {
      record_t *x = &recs[i];
      if (!(x->flags & R_OK_RESPONSE)) {
        missed++;
        errs++;
        continue;
      }
      if (x->arrival_ns < t0) {
        early++;
        missed++;
        continue;
      }
      if (x->status != 200) {
        bad_status++;
        missed++;
        continue;
      }
      if (x->key != key) {
        if (x->key == -1) timeouts++;
        wrong++;
        missed++;
        continue;
      }
      int64_t l = x->arrival_ns - t0;
      lat_push(&round_lat, l);
      lat_push(&all, l);
      lat_push(&all_t1, x->arrival_ns - t1);
      if (x->arrival_ns > last) last = x->arrival_ns;
    }
    if (missed) {
      ok = 0;
      /* show a few of them */
      int shown = 0;
      for (int i = 0; i < N && shown < 3; i++) {
        record_t *x = &recs[i];
        if ((x->flags & R_OK_RESPONSE) && x->arrival_ns >= t0 && x->status == 200 && x->key == key) continue;
        note("round %d conn %d: flags=%d status=%d key=%" PRId64 " (expected %" PRId64 ") arrival-t0=%.3f ms", r + 1,
             i, x->flags, x->status, x->key, key, x->arrival_ns ? (x->arrival_ns - t0) / 1e6 : 0.0);
        shown++;
      }
      buf_printf(&errors,
                 "%s\"round %d: %ld missed (%ld no answer/IO error, %ld early, %ld status, %ld wrong key, %ld empty)\"",
                 errors.len ? "," : "", r + 1, missed, errs, early, bad_status, wrong - timeouts, timeouts);
    }
    if (delivered_expected >= 0)
      for (int i = 0; i < N; i++)
        if ((recs[i].flags & R_OK_RESPONSE) && recs[i].status == 200 && recs[i].key != -1) delivered_expected++;
    missed_total += missed;
    early_total += early;
    wrong_total += wrong;
    error_total += errs;
    status_bad_total += bad_status;
    completions[r] = missed < N ? last - t0 : -1;
    qsort(round_lat.lat, round_lat.nlat, sizeof(int64_t), cmp_i64);
    buf_printf(&rounds_json,
               "%s{\"round\":%d,\"key\":%" PRId64 ",\"commit_us\":%.1f,\"park_wait_ms\":%.1f,\"parked\":%ld,"
               "\"sent\":%d,\"catchups\":%d,\"retried\":%d,\"reconnects\":%d,\"addr_retries\":%d,\"delivered\":%zu,\"missed\":%ld,"
               "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"completion_us\":%.1f}",
               r ? "," : "", r + 1, key, commits[r] / 1e3, parkwaits[r] / 1e6, parked, sent, catchups, retried, reconnects,
               addr_retries,
               round_lat.nlat, missed, pct(round_lat.lat, round_lat.nlat, 0.5) / 1e3,
               pct(round_lat.lat, round_lat.nlat, 0.9) / 1e3, pct(round_lat.lat, round_lat.nlat, 0.99) / 1e3,
               round_lat.nlat ? round_lat.lat[round_lat.nlat - 1] / 1e3 : -1.0,
               completions[r] >= 0 ? completions[r] / 1e3 : -1.0);
    if (N > 1 || cfg.verbose)
      note("round %d/%d: %zu delivered, %ld missed, p50 %.2f ms, completion %.2f ms, commit %.2f ms, park %.0f ms"
           "%s%.0d%s%.0d",
           r + 1, cfg.rounds, round_lat.nlat, missed, pct(round_lat.lat, round_lat.nlat, 0.5) / 1e6,
           completions[r] / 1e6, commits[r] / 1e6, parkwaits[r] / 1e6, catchups ? ", catch-ups " : "", catchups,
           retried ? ", RETRIED (5xx/closed) " : "", retried);
    free(round_lat.lat);
    rounds_done++;
    if (not_parked_rounds >= 2) { /* bounded in time: the server cannot hold N */
      note("ERROR: stopping after %d rounds: twice not all %d polls parked", rounds_done, N);
      buf_printf(&errors, "%s\"stopped after %d rounds\"", errors.len ? "," : "", rounds_done);
      break;
    }
  }
  int64_t run_ns = now_ns() - run_start;

  for (int p = 0; p < P; p++) {
    cmd_t cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = CMD_QUIT;
    write_all(kids[p].ctl, &cmd, sizeof cmd);
  }
  for (int p = 0; p < P; p++) {
    int st;
    int64_t deadline = now_ns() + 10000000000LL;
    while (waitpid(kids[p].pid, &st, WNOHANG) == 0) {
      if (now_ns() > deadline) {
        kill(kids[p].pid, SIGKILL);
        waitpid(kids[p].pid, &st, 0);
        break;
      }
      usleep(10000);
    }
  }

  /* output */
  buf_t j = {0};
  buf_printf(&j, "{\"mode\":\"%s\",\"target\":\"%s\",\"connections\":%d,\"procs\":%d,\"rounds\":%d,"
                 "\"rounds_done\":%d,"
                 "\"sources\":%d,\"ramp_per_ms\":%g,\"poll_timeout_s\":%g,"
                 "\"clock\":\"CLOCK_MONOTONIC; latency from t0 = just before the INSERT (or publish) is sent\",",
             cfg.mode, cfg.target == TARGET_PBP ? "pbp" : "nchan", N, P, cfg.rounds, rounds_done, nsources_for(N), cfg.ramp,
             cfg.poll_timeout);
  buf_printf(&j, "\"ok\":%s,\"missed\":%ld,\"early\":%ld,\"wrong_key\":%ld,\"io_errors\":%ld,\"bad_status\":%ld,"
                 "\"rounds_not_fully_parked\":%ld,\"catchups\":%ld,\"retried_before_commit\":%ld,\"run_s\":%.3f,",
             ok ? "true" : "false", missed_total, early_total, wrong_total, error_total, status_bad_total,
             not_parked_rounds, catchups_total, retried_total, run_ns / 1e9);
  buf_printf(&j, "\"latency_us\":");
  json_lat(&j, &all);
  lat_t comp = {0}, com = {0};
  for (int r = 0; r < rounds_done; r++) {
    if (completions[r] >= 0) lat_push(&comp, completions[r]);
    lat_push(&com, commits[r]);
  }
  buf_printf(&j, ",\"latency_after_commit_returned_us\":");
  json_lat(&j, &all_t1);
  buf_printf(&j, ",\"completion_us\":");
  json_lat(&j, &comp);
  buf_printf(&j, ",\"commit_us\":");
  json_lat(&j, &com);
  long deliveries = (long)all.nlat;
  buf_printf(&j, ",\"cpu\":{");
  for (int g = 0; g < nwatches; g++) {
    double cycle_us = -1;
    if (rounds_done >= 2)
      cycle_us = (double)(cpu_last_a[g] - cpu_first[g]) / 1e3 / ((double)N * (rounds_done - 1));
    buf_printf(&j,
               "%s\"%s\":{\"delivery_s\":%.4f,\"delivery_us_per_delivery\":%.2f,\"cycle_us_per_delivery\":%.2f}",
               g ? "," : "", watches[g].name, cpu_delivery[g] / 1e9,
               deliveries ? (double)cpu_delivery[g] / 1e3 / (double)deliveries : -1.0, cycle_us);
  }
  buf_printf(&j, "},\"memory_idle\":%s,\"memory_parked\":%s,\"memory_per_poll_bytes\":{", mem_idle_json.p,
             mem_parked_json.p);
  for (int g = 0; g < nwatches; g++)
    buf_printf(&j, "%s\"%s\":{\"rss\":%.0f,\"pss\":%.0f}", g ? "," : "", watches[g].name,
               (double)(mem_parked[g].rss_kb - mem_idle[g].rss_kb) * 1024.0 / N,
               (double)(mem_parked[g].pss_kb - mem_idle[g].pss_kb) * 1024.0 / N);
  buf_printf(&j, "},\"pg_connections\":{\"at_first_park\":%d,\"max\":%d,\"by_user_at_max\":%s},", pg_total, pg_max,
             pg_json.p ? pg_json.p : "{}");
  buf_printf(&j, "\"errors\":[%s],\"rounds_detail\":[%s]}\n", errors.p ? errors.p : "",
             rounds_json.p ? rounds_json.p : "");
  fputs(j.p, stdout);
  fflush(stdout);
  if (!ok) note("ERRORS: %ld of %ld deliveries missed; see \"errors\" in the output", missed_total, (long)N * rounds_done);
  if (pg) PQfinish(pg);
  return ok ? 0 : 1;
}

/* ------------------------------------------------------------------------ */
/* closed loop                                                               */

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
    buf_printf(&c->out, "GET /api/%s/%" PRId64 " HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: pbp-loadgen\r\n"
                        "Accept: application/json\r\n\r\n",
               cfg.table, x->id, cfg.host, cfg.port);
    break;
  case OP_LIST:
    buf_printf(&c->out, "GET /api/%s?limit=100 HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: pbp-loadgen\r\n"
                        "Accept: application/json\r\n\r\n",
               cfg.table, cfg.host, cfg.port);
    break;
  case OP_POST:
    bl = snprintf(body, sizeof body, "{\"val\":\"loadgen post %" PRIu64 "\"}", rng_next(&x->rng) % 1000000);
    buf_printf(&c->out, "POST /api/%s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: pbp-loadgen\r\n"
                        "Accept: application/json\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
               cfg.table, cfg.host, cfg.port, bl, body);
    break;
  case OP_PUT:
    bl = snprintf(body, sizeof body, "{\"val\":\"loadgen put %" PRIu64 "\"}", rng_next(&x->rng) % 1000000);
    buf_printf(&c->out, "PUT /api/%s/%" PRId64 " HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: pbp-loadgen\r\n"
                        "Accept: application/json\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
               cfg.table, x->id, cfg.host, cfg.port, bl, body);
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
  if (c->fd >= 0) {
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (rst)
      close_rst(c->fd);
    else
      close(c->fd);
  }
  c->fd = -1;
  if (c->state == CS_CONNECTING || c->state == CS_SENDING || c->state == CS_WAITING) s->active--;
  c->state = CS_DOWN;
  buf_clear(&c->in);
}

/* Writes what is left of the request; then waits for the answer. */
static void cl_send(cl_state_t *s, cl_conn_t *x) {
  conn_t *c = &x->c;
  while (c->out_off < c->out.len) {
    ssize_t w = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
    if (w > 0) {
      c->out_off += (size_t)w;
      continue;
    }
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = x};
      epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
      return;
    }
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
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
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

static int mode_closed_loop(void) {
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
  for (int g = 0; g < nwatches; g++)
    buf_printf(&j, "%s\"%s\":{\"seconds\":%.4f,\"us_per_request\":%.2f}", g ? "," : "", watches[g].name,
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

/* ------------------------------------------------------------------------ */

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen MODE [options]\n"
          "modes:\n"
          "  fanout       park N long-polls, commit, time every delivery; R rounds\n"
          "  latency      fanout with one connection (default 200 rounds)\n"
          "  closed-loop  C keep-alive connections, request after request, for D seconds\n"
          "options:\n"
          "  --port P            the server's port on 127.0.0.1 (--host to change)\n"
          "  --target pbp|nchan  what serves the long-polls (fanout, latency)\n"
          "  --connections N     parked polls (fanout) or connections (closed-loop)\n"
          "  --rounds R          fanout rounds (default 20; latency 200)\n"
          "  --procs P           worker processes holding the connections (default 2; 1 for latency)\n"
          "  --sources K         loopback source addresses 127.0.0.1..K (default: one per 14,000 connections)\n"
          "  --ramp R            connections opened per millisecond (default 10)\n"
          "  --poll-timeout S    the timeout each long-poll asks for (default 55)\n"
          "  --park-timeout S    how long to wait for all N to be parked (default 60)\n"
          "  --delivery-timeout S  how long after the commit to wait for the last delivery (default 15)\n"
          "  --settle S          extra wait after the server reports all parked (default 0)\n"
          "  --pg CONNINFO       libpq connection for the INSERT and pg_stat_activity\n"
          "  --table T           the PBP table (default testtype)\n"
          "  --cursor C          the first poll's cursor (default: PBP-Cursor of a snapshot read)\n"
          "  --sub-path, --pub-path, --status-path  Nchan locations (/sub, /pub, /nchan_status)\n"
          "  --watch NAME=PID    a process tree to measure (CPU, RSS, PSS); NAME=self for loadgen\n"
          "  --op get|list|post|put  closed-loop request (default get)\n"
          "  --duration S, --warmup S  closed-loop measuring time and warm-up (default 5, 1)\n"
          "  --request-timeout S closed-loop: a request slower than this is an error (default 10)\n"
          "  --verbose\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  cfg.mode = argv[1];
  static struct option opts[] = {
      {"port", required_argument, 0, 'p'},          {"host", required_argument, 0, 'H'},
      {"target", required_argument, 0, 't'},        {"connections", required_argument, 0, 'c'},
      {"rounds", required_argument, 0, 'r'},        {"procs", required_argument, 0, 'P'},
      {"sources", required_argument, 0, 's'},       {"ramp", required_argument, 0, 'R'},
      {"poll-timeout", required_argument, 0, 'T'},  {"park-timeout", required_argument, 0, 'K'},
      {"delivery-timeout", required_argument, 0, 'D'}, {"settle", required_argument, 0, 'S'},
      {"pg", required_argument, 0, 'g'},            {"table", required_argument, 0, 'b'},
      {"sub-path", required_argument, 0, 1},        {"pub-path", required_argument, 0, 2},
      {"status-path", required_argument, 0, 3},     {"watch", required_argument, 0, 'w'},
      {"op", required_argument, 0, 'o'},            {"duration", required_argument, 0, 'd'},
      {"warmup", required_argument, 0, 'W'},        {"request-timeout", required_argument, 0, 4},
      {"cursor", required_argument, 0, 5},          {"verbose", no_argument, 0, 'v'},             {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  int rounds_given = 0;
  optind = 2;
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case 'p': cfg.port = atoi(optarg); break;
    case 'H': snprintf(cfg.host, sizeof cfg.host, "%s", optarg); break;
    case 't':
      if (!strcmp(optarg, "pbp")) cfg.target = TARGET_PBP;
      else if (!strcmp(optarg, "nchan")) cfg.target = TARGET_NCHAN;
      else usage();
      break;
    case 'c': cfg.connections = atoi(optarg); break;
    case 'r': cfg.rounds = atoi(optarg); rounds_given = 1; break;
    case 'P': cfg.procs = atoi(optarg); break;
    case 's': cfg.sources = atoi(optarg); break;
    case 'R': cfg.ramp = atof(optarg); break;
    case 'T': cfg.poll_timeout = atof(optarg); break;
    case 'K': cfg.park_timeout = atof(optarg); break;
    case 'D': cfg.delivery_timeout = atof(optarg); break;
    case 'S': cfg.settle = atof(optarg); break;
    case 'g': cfg.pg = optarg; break;
    case 'b': cfg.table = optarg; break;
    case 1: cfg.sub_path = optarg; break;
    case 2: cfg.pub_path = optarg; break;
    case 3: cfg.status_path = optarg; break;
    case 4: cfg.request_timeout = atof(optarg); break;
    case 5: cfg.cursor = optarg; break;
    case 'w': {
      if (nwatches >= 16) die("at most 16 --watch");
      char *eq = strchr(optarg, '=');
      if (!eq) usage();
      size_t nl = (size_t)(eq - optarg) < 31 ? (size_t)(eq - optarg) : 31;
      memcpy(watches[nwatches].name, optarg, nl);
      watches[nwatches].name[nl] = 0;
      watches[nwatches].root = !strcmp(eq + 1, "self") ? getpid() : (pid_t)atoi(eq + 1);
      if (watches[nwatches].root <= 0) usage();
      nwatches++;
      break;
    }
    case 'o':
      if (!strcmp(optarg, "get")) cfg.op = OP_GET;
      else if (!strcmp(optarg, "list")) cfg.op = OP_LIST;
      else if (!strcmp(optarg, "post")) cfg.op = OP_POST;
      else if (!strcmp(optarg, "put")) cfg.op = OP_PUT;
      else usage();
      break;
    case 'd': cfg.duration = atof(optarg); break;
    case 'W': cfg.warmup = atof(optarg); break;
    case 'v': cfg.verbose = 1; break;
    default: usage();
    }
  }
  if (cfg.connections < 1) die("--connections must be at least 1");
  raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  if (!strcmp(cfg.mode, "fanout")) return mode_fanout();
  if (!strcmp(cfg.mode, "latency")) {
    cfg.connections = 1;
    cfg.procs = 1;
    if (!rounds_given) cfg.rounds = 200;
    return mode_fanout();
  }
  if (!strcmp(cfg.mode, "closed-loop")) return mode_closed_loop();
  usage();
  return 2;
}
