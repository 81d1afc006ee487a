#include "http_client.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connection.h"
#include "options.h"
#include "util.h"

static int hc_connect(hclient_t *c) {
  int src = 0;
  c->fd = open_conn_to(c->port ? c->port : cfg.port, &src, 1);
  if (c->fd < 0) return -1;
  struct pollfd p = {c->fd, POLLOUT, 0};
  if (poll(&p, 1, 5000) != 1) {
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  if (conn_connect_error(c->fd)) {
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  buf_clear(&c->in);
  return 0;
}

int hc_request(hclient_t *c, const char *method, const char *path, const char *ctype, const char *body,
               int timeout_ms, int idempotent) {
  buf_t req = {0};
  size_t blen = body ? strlen(body) : 0;
  buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: pbp-loadgen\r\n%s", method, path, cfg.host, cfg.port,
             cfg.authorization);
  if (body) buf_printf(&req, "Content-Type: %s\r\nContent-Length: %zu\r\n", ctype, blen);
  buf_printf(&req, "\r\n");
  if (body) buf_append(&req, body, blen);
  int result = -1;
  for (int attempt = 0; attempt < 2; attempt++) {
    if (c->fd < 0 && hc_connect(c) < 0) break;
    size_t off = 0;
    int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000;
    int sent;
    while ((sent = send_pending(c->fd, &req, &off)) == 0) {
      struct pollfd p = {c->fd, POLLOUT, 0};
      poll(&p, 1, 100);
      if (now_ns() > deadline) break;
    }
    int failed = sent != 1;
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
