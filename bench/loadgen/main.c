/*
 * pbp-loadgen: the benchmark suite's load generator (issue 8).
 *
 * One C program, epoll and non-blocking sockets, a real HTTP/1.1 client per
 * connection (keep-alive; Content-Length, chunked and close-delimited bodies
 * parsed; "Connection: close" honoured by reconnecting). Written in C rather
 * than Swift so that the measuring side is small, predictable and obviously
 * not sharing code (or bugs) with what it measures.
 *
 * Modes (print one JSON document on stdout; progress and errors on stderr):
 *
 *   fanout       N connections each park a long-poll (PBP: POST /api/changes
 *                with a caught-up cursor; Nchan: GET /sub), the parent waits
 *                until the server reports N parked, then commits one INSERT
 *                over libpq (Nchan: publishes with an HTTP POST) and every
 *                connection's arrival time is recorded; repeated R rounds.
 *                The connections are spread over --procs forked worker
 *                processes (the 20000-descriptor limit is per process), so
 *                the parent is free to commit while the workers read.
 *   latency      fanout with one connection: the single-client latency.
 *   closed-loop  C connections, each request -> response -> next request over
 *                keep-alive for D seconds after a warm-up: get | list | post | put.
 *
 * Clock: every timestamp is CLOCK_MONOTONIC (system-wide, so the parent's
 * commit time and the workers' arrival times are comparable). A delivery's
 * latency is measured from t0 = just before the INSERT is handed to libpq
 * (PQexec, autocommit, like psql), so it includes the INSERT's own execution
 * and commit (its WAL flush); t1 - t0, the INSERT's round trip, is reported
 * beside it ("commit_us") so that PostgreSQL's share can be told apart.
 * An arrival is the moment the worker process has parsed the whole response.
 *
 * Nothing is hidden: a miss (wrong key, no answer, an error status, a
 * timeout answer, an answer before the commit) is counted and reported, and
 * any error makes "ok": false and the exit status 1.
 *
 * One concept per file, each x.c beside an x.h that lists its entry points;
 * bench/README.md has the list.
 */
#include <signal.h>
#include <string.h>

#include "closed_loop.h"
#include "connection.h"
#include "fanout.h"
#include "options.h"
#include "util.h"

int main(int argc, char **argv) {
  if (argc < 2) usage();
  options_parse(argc, argv);
  if (cfg.connections < 1) die("--connections must be at least 1");
  raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  if (!strcmp(cfg.mode, "fanout")) return mode_fanout();
  if (!strcmp(cfg.mode, "latency")) {
    cfg.connections = 1;
    cfg.procs = 1;
    if (!cfg.rounds_given) cfg.rounds = 200;
    return mode_fanout();
  }
  if (!strcmp(cfg.mode, "closed-loop")) return mode_closed_loop();
  usage();
}
