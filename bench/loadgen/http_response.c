#define _GNU_SOURCE /* strcasestr */
#include "http_response.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

void resp_reset(http_resp_t *r) {
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

int http_parse(http_resp_t *r, buf_t *in, int eof) {
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

