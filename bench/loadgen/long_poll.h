/*
 * long_poll: one fan-out connection's long-poll, what it asks and what its
 * answer says, for both targets: PBP (POST /api/changes with the cursor,
 * the answer's cursor and first event key) and Nchan (GET --sub-path with
 * If-Modified-Since / If-None-Match of the last message, the body is the key).
 */
#ifndef LOADGEN_LONG_POLL_H
#define LOADGEN_LONG_POLL_H

#include <stdint.h>

#include "connection.h"
#include "fanout_protocol.h"

typedef struct {
  conn_t c; /* first: epoll's data.ptr is a poll_conn_t * */
  record_t rec; /* this round's outcome */
  char cursor[80];         /* PBP: where the next poll resumes */
  char etag[160];          /* Nchan: the last message's ETag ... */
  char last_modified[80];  /* ... and Last-Modified */
  int sent_this_round;
  int failures;      /* consecutive failures before the commit (backoff) */
  int64_t retry_at;  /* when to poll again after a failure; 0 = not waiting */
} poll_conn_t;

/* Puts the next poll's request in f->c.out (from the start: out_off = 0). */
void build_poll_request(poll_conn_t *f);

/* Reads the complete response in f->c.resp: f->rec.key gets the event's key
 * (-1 when it has none: an empty or timed-out poll), R_MULTI is added to
 * f->rec.flags when a PBP answer holds more than one event, and what the
 * next poll resumes from (cursor, or ETag and Last-Modified) is kept. */
void read_poll_answer(poll_conn_t *f);

#endif
