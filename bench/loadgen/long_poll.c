#include "long_poll.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

/* The top-level cursor and the first event's key. */
static void read_pbp_answer(poll_conn_t *f) {
  const char *b = f->c.resp.body.p ? f->c.resp.body.p : "";
  const char *cur = strstr(b, "\"cursor\"");
  if (cur) {
    cur = strchr(cur + 8, '"');
    if (cur) {
      const char *end = strchr(cur + 1, '"');
      if (end && (size_t)(end - cur - 1) < sizeof f->cursor) {
        memcpy(f->cursor, cur + 1, (size_t)(end - cur - 1));
        f->cursor[end - cur - 1] = 0;
      }
    }
  }
  f->rec.key = -1;
  const char *ev = strstr(b, "\"events\"");
  if (!ev) return;
  const char *k = strstr(ev, "\"key\"");
  if (!k) return;
  k += 5;
  while (*k == ' ' || *k == ':') k++;
  char *end;
  long long key = strtoll(k, &end, 10);
  if (end != k) f->rec.key = key;
  if (strstr(end, "\"key\"")) f->rec.flags |= R_MULTI;
}

static void read_nchan_answer(poll_conn_t *f) {
  http_resp_t *r = &f->c.resp;
  if (r->etag[0]) snprintf(f->etag, sizeof f->etag, "%s", r->etag);
  if (r->last_modified[0]) snprintf(f->last_modified, sizeof f->last_modified, "%s", r->last_modified);
  char *end;
  const char *b = r->body.p ? r->body.p : "";
  long long key = strtoll(b, &end, 10);
  f->rec.key = end != b ? key : -1;
}

void read_poll_answer(poll_conn_t *f) {
  if (cfg.target == TARGET_PBP)
    read_pbp_answer(f);
  else
    read_nchan_answer(f);
}

void build_poll_request(poll_conn_t *f) {
  buf_t *out = &f->c.out;
  buf_clear(out);
  f->c.out_off = 0;
  if (cfg.target == TARGET_PBP) {
    char body[256];
    int n = snprintf(body, sizeof body, "{\"cursor\":\"%s\",\"subscriptions\":[{\"table\":\"%s\"}],\"timeout\":%g}",
                     f->cursor, cfg.table, cfg.poll_timeout);
    buf_printf(out,
               "POST /api/changes HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: pbp-loadgen\r\n%sAccept: application/json\r\n"
               "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
               cfg.host, cfg.port, cfg.authorization, n, body);
  } else {
    buf_printf(out, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: pbp-loadgen\r\nAccept: */*\r\n", cfg.sub_path,
               cfg.host, cfg.port);
    if (f->last_modified[0]) buf_printf(out, "If-Modified-Since: %s\r\n", f->last_modified);
    if (f->etag[0]) buf_printf(out, "If-None-Match: %s\r\n", f->etag);
    buf_printf(out, "\r\n");
  }
}
