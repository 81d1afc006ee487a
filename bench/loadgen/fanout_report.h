/*
 * fanout_report: the fan-out's figures. Each round's records are judged
 * (delivered, or missed: no answer, early, bad status, wrong key) and added
 * to the run's totals; at the end the run is printed as one JSON document on
 * stdout (the format run_bench.py reads).
 */
#ifndef LOADGEN_FANOUT_REPORT_H
#define LOADGEN_FANOUT_REPORT_H

#include <stdint.h>

#include "buf.h"
#include "fanout_protocol.h"
#include "latency.h"
#include "process_watch.h"

/* The whole run so far. Zero it, then set N, P and the per-round arrays
 * (cfg.rounds entries each), pg_total = pg_max = -1 and ok = 1. */
typedef struct {
  int N, P; /* connections, worker processes */
  int rounds_done;
  int ok; /* 0 once anything went wrong */
  lat_t all;    /* arrival - t0 of every delivery */
  lat_t all_t1; /* arrival - t1: from the INSERT's return; may be negative */
  int64_t *completions, *commits, *parkwaits; /* per round, ns (completion -1: nothing arrived) */
  long missed_total, early_total, wrong_total, error_total, status_bad_total;
  long not_parked_rounds, catchups_total, retried_total;
  buf_t errors;      /* JSON strings, comma-separated */
  buf_t rounds_json; /* JSON objects, comma-separated */
  int64_t cpu_first[WATCH_MAX], cpu_last_a[WATCH_MAX]; /* before the first and the last commit */
  int64_t cpu_delivery[WATCH_MAX]; /* sum over rounds of commit -> last delivery */
  mem_t mem_idle[WATCH_MAX], mem_parked[WATCH_MAX];
  buf_t mem_idle_json, mem_parked_json;
  int pg_total, pg_max; /* client backends at the first park, and the most seen */
  buf_t pg_json;        /* by user, when the most were seen */
  int64_t run_ns;
} fanout_run_t;

/* One round as the parent saw it. */
typedef struct {
  int r; /* from 0 */
  int64_t key; /* what every connection must receive */
  int64_t t0, t1; /* just before the commit was sent, and when it returned */
  long parked; /* as the server reported */
  int sent, catchups, retried, reconnects, addr_retries; /* the workers' sums */
  const record_t *recs; /* one per connection */
} fanout_round_t;

/* Appends "message" to run->errors and marks the run failed. */
void fanout_error(fanout_run_t *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Judges a round's records, adds them to the run (rounds_done included),
 * notes the round (and a few misses) on stderr. run->commits[r] and
 * run->parkwaits[r] must be set. */
void fanout_tally_round(fanout_run_t *run, const fanout_round_t *round);

/* Prints the run's JSON document on stdout. */
void fanout_print(fanout_run_t *run);

#endif
