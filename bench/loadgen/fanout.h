/*
 * fanout: the `fanout` and `latency` modes, the parent's side. N connections
 * (spread over --procs worker processes, fanout_worker.h) each park a
 * long-poll; when the server reports all N parked, one commit (PBP: an INSERT
 * over libpq; Nchan: an HTTP publish) and every arrival is timed from just
 * before it; R rounds. Prints the JSON document of fanout_report.h.
 */
#ifndef LOADGEN_FANOUT_H
#define LOADGEN_FANOUT_H

/* Runs the rounds with cfg. Returns the exit status: 0, or 1 when anything
 * was missed or went wrong (the document says what). Dies (status 2) on
 * missing options, the descriptor limit, a failed snapshot read, INSERT or
 * publish, or a worker that stops answering. */
int mode_fanout(void);

#endif
