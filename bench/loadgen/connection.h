/*
 * connection: the client side of one non-blocking TCP connection to the
 * server under test (--host, --port) and the socket plumbing around it:
 * loopback source addresses, closing without TIME_WAIT, epoll registration,
 * the descriptor limit. The fan-out and the closed loop drive a conn_t each
 * with their own state machine over the states below.
 */
#ifndef LOADGEN_CONNECTION_H
#define LOADGEN_CONNECTION_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http_response.h"

/* Where a connection is in its request/response cycle. */
typedef enum {
  CS_DOWN,       /* no socket: (re)connect before the next request */
  CS_CONNECTING, /* connect() in progress: waiting for EPOLLOUT */
  CS_SENDING,    /* connected, the request not yet all written */
  CS_WAITING,    /* the request is written: reading its response */
  CS_IDLE        /* keep-alive, nothing in flight */
} conn_state_t;

typedef struct {
  int fd; /* -1 when down */
  conn_state_t state;
  int src; /* source address 127.0.0.(1 + src) */
  buf_t out;
  size_t out_off; /* bytes of out already sent */
  buf_t in;
  http_resp_t resp;
  int64_t started_ns; /* when the request was started (sent, for the fan-out) */
} conn_t;

/* Connections that moved to the next source address because theirs ran out
 * of ports (EADDRNOTAVAIL); the fan-out reports it per round and resets it. */
extern int src_retries;

/* Opens a non-blocking TCP connection to the server from 127.0.0.(1 + *src),
 * binding the source only when more than one address is in use or *src > 0.
 * When an address has no port left, moves *src to the next one (of 16) and
 * tries again. Returns the descriptor (connect may still be in progress), or
 * -errno; dies if --host is not an IPv4 address. */
int open_conn(int *src, int nsources);
/* The same towards another port of the host (the operators' listener). */
int open_conn_to(int port, int *src, int nsources);

/* The SO_ERROR of a socket whose connect has completed: 0 if connected. */
int conn_connect_error(int fd);

/* Writes what is left of out (from *off, which it advances) to the
 * non-blocking fd. Returns 1 when all is written, 0 when the socket is full
 * (wait for POLLOUT), -1 on an error (the connection is unusable). */
int send_pending(int fd, const buf_t *out, size_t *off);

/* Closes c's socket if it has one (unregistered from epfd first; with an RST
 * if rst) and leaves it CS_DOWN with an empty input buffer. */
void conn_close(conn_t *c, int epfd, int rst);

/* Closes with an RST (SO_LINGER 0) so that the loopback is not left with
 * tens of thousands of TIME_WAIT entries between benchmarks. */
void close_rst(int fd);

/* Source addresses for n connections: --sources, else one per 14,000 (1..16). */
int nsources_for(int n);

/* Sets fd's epoll events (EPOLL_CTL_ADD if add, else MOD, falling back to
 * ADD for a descriptor not registered yet). */
void ep_set(int epfd, int fd, uint32_t events, void *ptr, int add);

void set_nonblock(int fd);

/* Raises the soft RLIMIT_NOFILE to the hard one (silently, if it can). */
void raise_nofile(void);

/* The soft RLIMIT_NOFILE. */
long nofile_limit(void);

#endif
