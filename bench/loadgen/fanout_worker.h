/*
 * fanout_worker: a fan-out worker process. It holds its share of the
 * connections (the descriptor limit is per process), parks a long-poll on
 * each when told, and records every arrival, under the parent's commands
 * (fanout_protocol.h).
 */
#ifndef LOADGEN_FANOUT_WORKER_H
#define LOADGEN_FANOUT_WORKER_H

/* Runs the worker for n connections, the first having global index base
 * (which picks its source address), all starting from cursor0 (PBP), taking
 * commands on ctl. Never returns: exits 0 on CMD_QUIT, 3 when the parent is
 * gone (and is killed with the parent, PR_SET_PDEATHSIG). */
void fanout_worker(int ctl, int base, int n, const char *cursor0) __attribute__((noreturn));

#endif
