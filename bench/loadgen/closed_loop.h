/*
 * closed_loop: the `closed-loop` mode. C keep-alive connections, each
 * sending its next request (--op get | list | post | put) as soon as the
 * answer is in, for --duration seconds after a --warmup; only requests
 * started and finished inside the window count. Every answer is checked
 * (status, and a body that is the row asked for / a whole JSON array).
 */
#ifndef LOADGEN_CLOSED_LOOP_H
#define LOADGEN_CLOSED_LOOP_H

/* Runs it with cfg and prints one JSON document on stdout. Returns the exit
 * status: 0, or 1 on any non-2xx answer, error (connect, I/O, parse,
 * timeout, invalid body, unfinished) or no request measured. Dies (status 2)
 * without --port, or for get/put without --pg or ids in the table. */
int mode_closed_loop(void);

#endif
