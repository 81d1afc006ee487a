/*
 * http_client: a small blocking HTTP/1.1 client over one keep-alive
 * connection to the server, for what is not measured per connection: the
 * snapshot read that gives the first cursor, the status page (parked polls)
 * and Nchan's publish.
 */
#ifndef LOADGEN_HTTP_CLIENT_H
#define LOADGEN_HTTP_CLIENT_H

#include "buf.h"
#include "http_response.h"

typedef struct {
  int fd;   /* -1: not connected (start with {.fd = -1}) */
  int port; /* the server's port; 0: --port */
  buf_t in;
  http_resp_t resp; /* the last response: body and headers */
  int requests;     /* answered on this connection */
} hclient_t;

/* Sends one request (a body, of type ctype, if body is not NULL) and waits
 * at most timeout_ms for its response, left in c->resp. Returns the status,
 * or -1 if it could not connect (5 s), send, or read a whole response in
 * time. A keep-alive connection the server closed is reopened once for an
 * idempotent request. */
int hc_request(hclient_t *c, const char *method, const char *path, const char *ctype, const char *body,
               int timeout_ms, int idempotent);

#endif
