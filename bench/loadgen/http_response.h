/*
 * http_response: an incremental HTTP/1.x response parser. Bytes are fed as
 * they arrive; bodies delimited by Content-Length, chunked or the close are
 * all read; 1xx interim answers are skipped; the few headers the load
 * generator needs are kept.
 */
#ifndef LOADGEN_HTTP_RESPONSE_H
#define LOADGEN_HTTP_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Where the parser is in the response. */
typedef enum {
  HP_STATUS,     /* before the status line */
  HP_HEADERS,    /* reading header lines until the empty one */
  HP_BODY_LEN,   /* `remaining` bytes of a Content-Length body */
  HP_CHUNK_SIZE, /* before a chunk's size line */
  HP_CHUNK_DATA, /* `remaining` bytes of a chunk */
  HP_CHUNK_CRLF, /* the line end after a chunk */
  HP_TRAILERS,   /* after the last chunk, until the empty line */
  HP_BODY_EOF,   /* a body that ends when the server closes */
  HP_DONE        /* the whole response is in */
} http_parse_state_t;

typedef struct {
  http_parse_state_t state;
  int status;
  int minor; /* HTTP/1.x */
  int64_t content_length; /* -1: none given */
  int chunked;
  int conn_close; /* the server will close after this response */
  int64_t remaining;
  buf_t body;
  char etag[160];
  char last_modified[80];
  char pbp_cursor[80];
  size_t header_bytes;
} http_resp_t;

/* Readies r for the next response (keeps the body's memory). */
void resp_reset(http_resp_t *r);

/* Feeds what is in `in`; `eof` says the peer has closed. Returns 1 when the
 * response is complete, 0 when more bytes are needed, -1 on a protocol error
 * (not HTTP/1.x, a bad length or chunk size, a line over 64 KB, or the close
 * before the end of a delimited body). Consumed bytes are removed from `in`;
 * bytes after a complete response stay in it. */
int http_parse(http_resp_t *r, buf_t *in, int eof);

#endif
