#include "fanout_report.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "connection.h"
#include "options.h"
#include "util.h"

void fanout_error(fanout_run_t *run, const char *fmt, ...) {
  buf_printf(&run->errors, "%s\"", run->errors.len ? "," : "");
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(&run->errors, fmt, ap);
  va_end(ap);
  buf_printf(&run->errors, "\"");
  run->ok = 0;
}

static int delivered(const record_t *x, const fanout_round_t *round) {
  return (x->flags & R_OK_RESPONSE) && x->arrival_ns >= round->t0 && x->status == 200 && x->key == round->key;
}

void fanout_tally_round(fanout_run_t *run, const fanout_round_t *round) {
  int N = run->N, r = round->r;
  int64_t t0 = round->t0, key = round->key;
  lat_t round_lat = {0};
  long missed = 0, early = 0, wrong = 0, errs = 0, bad_status = 0, timeouts = 0;
  int64_t last = 0;
  for (int i = 0; i < N; i++) {
    const record_t *x = &round->recs[i];
    if (!(x->flags & R_OK_RESPONSE)) {
      missed++;
      errs++;
      continue;
    }
    if (x->arrival_ns < t0) {
      early++;
      missed++;
      continue;
    }
    if (x->status != 200) {
      bad_status++;
      missed++;
      continue;
    }
    if (x->key != key) {
      if (x->key == -1) timeouts++;
      wrong++;
      missed++;
      continue;
    }
    int64_t l = x->arrival_ns - t0;
    lat_push(&round_lat, l);
    lat_push(&run->all, l);
    lat_push(&run->all_t1, x->arrival_ns - round->t1);
    if (x->arrival_ns > last) last = x->arrival_ns;
  }
  if (missed) {
    /* show a few of them */
    int shown = 0;
    for (int i = 0; i < N && shown < 3; i++) {
      const record_t *x = &round->recs[i];
      if (delivered(x, round)) continue;
      note("round %d conn %d: flags=%d status=%d key=%" PRId64 " (expected %" PRId64 ") arrival-t0=%.3f ms", r + 1,
           i, x->flags, x->status, x->key, key, x->arrival_ns ? (x->arrival_ns - t0) / 1e6 : 0.0);
      shown++;
    }
    fanout_error(run, "round %d: %ld missed (%ld no answer/IO error, %ld early, %ld status, %ld wrong key, %ld empty)",
                 r + 1, missed, errs, early, bad_status, wrong - timeouts, timeouts);
  }
  run->missed_total += missed;
  run->early_total += early;
  run->wrong_total += wrong;
  run->error_total += errs;
  run->status_bad_total += bad_status;
  run->catchups_total += round->catchups;
  run->retried_total += round->retried;
  int64_t *completions = run->completions, *commits = run->commits, *parkwaits = run->parkwaits;
  completions[r] = missed < N ? last - t0 : -1;
  lat_sort(&round_lat);
  buf_printf(&run->rounds_json,
             "%s{\"round\":%d,\"key\":%" PRId64 ",\"commit_us\":%.1f,\"park_wait_ms\":%.1f,\"parked\":%ld,"
             "\"sent\":%d,\"catchups\":%d,\"retried\":%d,\"reconnects\":%d,\"addr_retries\":%d,\"delivered\":%zu,\"missed\":%ld,"
             "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"completion_us\":%.1f}",
             r ? "," : "", r + 1, key, commits[r] / 1e3, parkwaits[r] / 1e6, round->parked, round->sent,
             round->catchups, round->retried, round->reconnects, round->addr_retries, round_lat.nlat, missed,
             lat_pct(&round_lat, 0.5) / 1e3, lat_pct(&round_lat, 0.9) / 1e3, lat_pct(&round_lat, 0.99) / 1e3,
             round_lat.nlat ? round_lat.lat[round_lat.nlat - 1] / 1e3 : -1.0,
             completions[r] >= 0 ? completions[r] / 1e3 : -1.0);
  if (N > 1 || cfg.verbose)
    note("round %d/%d: %zu delivered, %ld missed, p50 %.2f ms, completion %.2f ms, commit %.2f ms, park %.0f ms"
         "%s%.0d%s%.0d",
         r + 1, cfg.rounds, round_lat.nlat, missed, lat_pct(&round_lat, 0.5) / 1e6, completions[r] / 1e6,
         commits[r] / 1e6, parkwaits[r] / 1e6, round->catchups ? ", catch-ups " : "", round->catchups,
         round->retried ? ", RETRIED (5xx/closed) " : "", round->retried);
  free(round_lat.lat);
  run->rounds_done++;
}

void fanout_print(fanout_run_t *run) {
  int N = run->N, rounds_done = run->rounds_done;
  buf_t j = {0};
  buf_printf(&j, "{\"mode\":\"%s\",\"target\":\"%s\",\"connections\":%d,\"procs\":%d,\"rounds\":%d,"
                 "\"rounds_done\":%d,"
                 "\"sources\":%d,\"ramp_per_ms\":%g,\"poll_timeout_s\":%g,"
                 "\"clock\":\"CLOCK_MONOTONIC; latency from t0 = just before the INSERT (or publish) is sent\",",
             cfg.mode, cfg.target == TARGET_PBP ? "pbp" : "nchan", N, run->P, cfg.rounds, rounds_done,
             nsources_for(N), cfg.ramp, cfg.poll_timeout);
  buf_printf(&j, "\"ok\":%s,\"missed\":%ld,\"early\":%ld,\"wrong_key\":%ld,\"io_errors\":%ld,\"bad_status\":%ld,"
                 "\"rounds_not_fully_parked\":%ld,\"catchups\":%ld,\"retried_before_commit\":%ld,\"run_s\":%.3f,",
             run->ok ? "true" : "false", run->missed_total, run->early_total, run->wrong_total, run->error_total,
             run->status_bad_total, run->not_parked_rounds, run->catchups_total, run->retried_total,
             run->run_ns / 1e9);
  buf_printf(&j, "\"latency_us\":");
  json_lat(&j, &run->all);
  lat_t comp = {0}, com = {0};
  for (int r = 0; r < rounds_done; r++) {
    if (run->completions[r] >= 0) lat_push(&comp, run->completions[r]);
    lat_push(&com, run->commits[r]);
  }
  buf_printf(&j, ",\"latency_after_commit_returned_us\":");
  json_lat(&j, &run->all_t1);
  buf_printf(&j, ",\"completion_us\":");
  json_lat(&j, &comp);
  buf_printf(&j, ",\"commit_us\":");
  json_lat(&j, &com);
  long deliveries = (long)run->all.nlat;
  buf_printf(&j, ",\"cpu\":{");
  for (int g = 0; g < watch_count(); g++) {
    double cycle_us = -1;
    if (rounds_done >= 2)
      cycle_us = (double)(run->cpu_last_a[g] - run->cpu_first[g]) / 1e3 / ((double)N * (rounds_done - 1));
    buf_printf(&j,
               "%s\"%s\":{\"delivery_s\":%.4f,\"delivery_us_per_delivery\":%.2f,\"cycle_us_per_delivery\":%.2f}",
               g ? "," : "", watch_name(g), run->cpu_delivery[g] / 1e9,
               deliveries ? (double)run->cpu_delivery[g] / 1e3 / (double)deliveries : -1.0, cycle_us);
  }
  buf_printf(&j, "},\"memory_idle\":%s,\"memory_parked\":%s,\"memory_per_poll_bytes\":{", run->mem_idle_json.p,
             run->mem_parked_json.p);
  for (int g = 0; g < watch_count(); g++)
    buf_printf(&j, "%s\"%s\":{\"rss\":%.0f,\"pss\":%.0f}", g ? "," : "", watch_name(g),
               (double)(run->mem_parked[g].rss_kb - run->mem_idle[g].rss_kb) * 1024.0 / N,
               (double)(run->mem_parked[g].pss_kb - run->mem_idle[g].pss_kb) * 1024.0 / N);
  buf_printf(&j, "},\"pg_connections\":{\"at_first_park\":%d,\"max\":%d,\"by_user_at_max\":%s},", run->pg_total,
             run->pg_max, run->pg_json.p ? run->pg_json.p : "{}");
  buf_printf(&j, "\"errors\":[%s],\"rounds_detail\":[%s]}\n", run->errors.p ? run->errors.p : "",
             run->rounds_json.p ? run->rounds_json.p : "");
  fputs(j.p, stdout);
  fflush(stdout);
  buf_free(&j);
}
