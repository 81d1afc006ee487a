/*
 * fanout_protocol: what the fan-out's parent and its worker processes say to
 * each other over a socketpair (fixed-size structs, one machine).
 *
 * Per round: PARK (send the polls) -> MSG_SENT; the parent waits for the
 * server to report them parked; ARM -> MSG_ARMED (from now on every answer is
 * recorded, none re-parked as a catch-up); t0, commit, t1; COMMITTED (start
 * the delivery deadline) -> MSG_RESULTS and one record_t per connection. The
 * ARM handshake happens before t0, so a delivery arriving before PQexec
 * returns is never mistaken for a catch-up. QUIT: close everything and exit.
 */
#ifndef LOADGEN_FANOUT_PROTOCOL_H
#define LOADGEN_FANOUT_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

/* parent -> worker */
enum { CMD_PARK = 1, CMD_COMMITTED = 2, CMD_QUIT = 3, CMD_ARM = 4 };
/* worker -> parent */
enum { MSG_SENT = 1, MSG_RESULTS = 2, MSG_ARMED = 3 };

typedef struct {
  int32_t type;
  int32_t round;
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

/* One connection's outcome in a round (record_t.flags, or-ed). */
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

/* Writes all n bytes to fd (waiting while it is full). 0, or -1 on an error. */
int write_all(int fd, const void *p, size_t n);

/* Reads exactly n bytes from fd within timeout_ms. 0, or -1 on a timeout,
 * an error or the peer's close. */
int read_all(int fd, void *p, size_t n, int timeout_ms);

#endif
