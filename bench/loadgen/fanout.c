#include "fanout.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "connection.h"
#include "fanout_protocol.h"
#include "fanout_report.h"
#include "fanout_worker.h"
#include "http_client.h"
#include "options.h"
#include "postgres.h"
#include "process_watch.h"
#include "util.h"

typedef struct {
  pid_t pid;
  int ctl;
  int base, n;
} child_t;

/* Parked polls as the server reports them: PBP's /api/_status (totals) or
 * nchan_stub_status. -1 when it cannot be read. For PBP, *delivered gets
 * totals.events_delivered (-1 if absent): each worker publishes its parked
 * count and that counter together, from one locked snapshot, every 100 ms,
 * so a sum of events_delivered that includes every delivery we have
 * received proves that no worker's parked count is from before them. */
static long server_parked(hclient_t *hc, long *delivered) {
  *delivered = -1;
  int status = hc_request(hc, "GET", cfg.status_path, NULL, NULL, 5000, 1);
  if (status != 200) return -1;
  const char *b = hc->resp.body.p ? hc->resp.body.p : "";
  if (cfg.target == TARGET_PBP) {
    const char *t = strstr(b, "\"totals\"");
    if (!t) return -1;
    const char *d = strstr(t, "\"events_delivered\":");
    if (d) *delivered = strtol(d + 19, NULL, 10);
    const char *p = strstr(t, "\"parked_polls\":");
    return p ? strtol(p + 15, NULL, 10) : -1;
  }
  const char *p = strstr(b, "subscribers:");
  return p ? strtol(p + 12, NULL, 10) : -1;
}

/* The starting cursor: --cursor, or a snapshot read's PBP-Cursor (caught
 * up); empty for Nchan. */
static void first_cursor(hclient_t *hc, char *cursor0, size_t cap) {
  if (cfg.target == TARGET_PBP && cfg.cursor) {
    snprintf(cursor0, cap, "%s", cfg.cursor);
  } else if (cfg.target == TARGET_PBP) {
    char path[128];
    snprintf(path, sizeof path, "/api/%s?limit=1", cfg.table);
    int st = hc_request(hc, "GET", path, NULL, NULL, 10000, 1);
    if (st != 200 || !hc->resp.pbp_cursor[0]) die("snapshot read %s answered %d without PBP-Cursor", path, st);
    snprintf(cursor0, cap, "%s", hc->resp.pbp_cursor);
  }
}

/* Forks P workers sharing N connections; the children get nothing of the
 * parent's descriptors but their own end of the socketpair. */
static child_t *spawn_workers(int N, int P, int status_fd, const char *cursor0) {
  child_t *kids = xmalloc(sizeof(child_t) * (size_t)P);
  int base = 0;
  for (int p = 0; p < P; p++) {
    int share = N / P + (p < N % P ? 1 : 0);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) die("socketpair: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
      close(sv[0]);
      for (int q = 0; q < p; q++) close(kids[q].ctl);
      if (status_fd >= 0) close(status_fd);
      fanout_worker(sv[1], base, share, cursor0);
    }
    close(sv[1]);
    kids[p] = (child_t){pid, sv[0], base, share};
    base += share;
  }
  return kids;
}

static void tell_workers(const child_t *kids, int P, int type, int round) {
  cmd_t cmd;
  memset(&cmd, 0, sizeof cmd);
  cmd.type = type;
  cmd.round = round;
  for (int p = 0; p < P; p++) write_all(kids[p].ctl, &cmd, sizeof cmd);
}

/* CMD_QUIT, then up to 10 s for each to exit before it is killed. */
static void stop_workers(const child_t *kids, int P) {
  tell_workers(kids, P, CMD_QUIT, 0);
  for (int p = 0; p < P; p++) {
    int st;
    int64_t deadline = now_ns() + 10000000000LL;
    while (waitpid(kids[p].pid, &st, WNOHANG) == 0) {
      if (now_ns() > deadline) {
        kill(kids[p].pid, SIGKILL);
        waitpid(kids[p].pid, &st, 0);
        break;
      }
      usleep(10000);
    }
  }
}

/* The commit: PBP, an INSERT ... RETURNING id in autocommit; Nchan, a
 * publish. Sets the key every poll must receive, t0 just before and t1 just
 * after. Dies if it fails. */
static void commit(fanout_round_t *round, PGconn *pg, hclient_t *pub) {
  int r = round->r;
  if (cfg.target == TARGET_PBP) {
    char sql[256];
    snprintf(sql, sizeof sql, "insert into %s (val) values ('fanout round %d') returning id", cfg.table, r + 1);
    round->t0 = now_ns();
    PGresult *res = PQexec(pg, sql);
    round->t1 = now_ns();
    if (PQresultStatus(res) != PGRES_TUPLES_OK) die("INSERT failed: %s", PQerrorMessage(pg));
    round->key = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
  } else {
    char body[32];
    round->key = (int64_t)(time(NULL) % 100000) * 1000 + r + 1;
    snprintf(body, sizeof body, "%" PRId64, round->key);
    round->t0 = now_ns();
    int st = hc_request(pub, "POST", cfg.pub_path, "text/plain", body, 10000, 0);
    round->t1 = now_ns();
    if (st < 200 || st > 299) die("publish answered %d", st);
  }
}

/* CMD_PARK, then every worker's MSG_SENT: the round's polls are written. */
static void park(fanout_run_t *run, const child_t *kids, fanout_round_t *round) {
  int failed = 0;
  tell_workers(kids, run->P, CMD_PARK, round->r);
  for (int p = 0; p < run->P; p++) {
    msg_t m;
    if (read_all(kids[p].ctl, &m, sizeof m, (int)(cfg.park_timeout * 1000) + 10000) < 0 || m.type != MSG_SENT)
      die("worker %d did not report its polls sent", p);
    round->sent += m.count;
    failed += m.failed;
    round->reconnects += m.reconnects;
    round->addr_retries += m.addr_retries;
  }
  if (failed) {
    note("round %d: %d of %d polls could not be sent", round->r + 1, failed, run->N);
    fanout_error(run, "round %d: %d polls not sent", round->r + 1, failed);
  }
}

/* Until the server reports every poll parked, by a status snapshot that has
 * counted every delivery so far (delivered_expected, -1: not checked), or
 * --park-timeout from park_start. */
static void wait_parked(fanout_run_t *run, hclient_t *hc, fanout_round_t *round, long delivered_expected,
                        int64_t park_start) {
  int r = round->r;
  long parked = -1, delivered_seen = -1;
  int64_t park_deadline = park_start + (int64_t)(cfg.park_timeout * 1e9);
  int interval_us = run->N <= 1 ? 2000 : 20000;
  int stale = 0;
  for (;;) {
    parked = server_parked(hc, &delivered_seen);
    stale = delivered_expected >= 0 && delivered_seen < delivered_expected;
    if (parked >= round->sent && !stale) break;
    if (now_ns() > park_deadline) break;
    usleep((useconds_t)interval_us);
  }
  if (stale) {
    note("round %d: the status page never counted our %ld deliveries (saw %ld): its parked count may be stale",
         r + 1, delivered_expected, delivered_seen);
    fanout_error(run, "round %d: status never fresh", r + 1);
  }
  if (parked < round->sent) {
    note("round %d: only %ld of %d polls parked after %.0f s", r + 1, parked, round->sent, cfg.park_timeout);
    fanout_error(run, "round %d: only %ld of %d parked", r + 1, parked, round->sent);
    run->not_parked_rounds++;
  }
  round->parked = parked;
}

/* Client backends while parked: at the first round, and the most seen. */
static void sample_pg(fanout_run_t *run, PGconn *pg, int r) {
  buf_t tmp = {0};
  int total;
  pg_connections(pg, &tmp, &total);
  if (total > run->pg_max) {
    run->pg_max = total;
    buf_clear(&run->pg_json);
    buf_append(&run->pg_json, tmp.p, tmp.len);
  }
  if (r == 0) run->pg_total = total;
  buf_free(&tmp);
}

/* CMD_ARM, and every worker's MSG_ARMED (after a MSG_SENT still on its way
 * if the park wait timed out). */
static void arm(const child_t *kids, int P, int r) {
  tell_workers(kids, P, CMD_ARM, r);
  for (int p = 0; p < P; p++) {
    msg_t m;
    do {
      if (read_all(kids[p].ctl, &m, sizeof m, 10000) < 0) die("worker %d did not arm", p);
    } while (m.type == MSG_SENT);
    if (m.type != MSG_ARMED) die("worker %d: unexpected message %d", p, m.type);
  }
}

/* Every worker's MSG_RESULTS and records, into recs (by global index). */
static void collect(const child_t *kids, int P, fanout_round_t *round, record_t *recs) {
  for (int p = 0; p < P; p++) {
    msg_t m;
    if (read_all(kids[p].ctl, &m, sizeof m, (int)(cfg.delivery_timeout * 1000) + 10000) < 0 || m.type != MSG_RESULTS)
      die("worker %d did not report its deliveries", p);
    if (m.count != kids[p].n) die("worker %d reported %d records for %d connections", p, m.count, kids[p].n);
    round->catchups += m.catchups;
    round->retried += m.retried;
    if (read_all(kids[p].ctl, recs + kids[p].base, sizeof(record_t) * (size_t)m.count, 10000) < 0)
      die("worker %d: short results", p);
  }
}

/* Answers that carried an event, which the status page must have counted
 * before its parked count is believed. */
static long events_received(const record_t *recs, int N) {
  long n = 0;
  for (int i = 0; i < N; i++)
    if ((recs[i].flags & R_OK_RESPONSE) && recs[i].status == 200 && recs[i].key != -1) n++;
  return n;
}

int mode_fanout(void) {
  if (!cfg.port) die("--port is required");
  if (cfg.target == TARGET_PBP && !cfg.pg) die("--pg (libpq conninfo) is required for target pbp");
  if (!cfg.status_path) cfg.status_path = cfg.target == TARGET_PBP ? "/api/_status" : "/nchan_status";
  int N = cfg.connections;
  int P = cfg.procs > 0 ? cfg.procs : (N > 1 ? 2 : 1);
  if (P > N) P = N;
  cfg.procs = P;
  long perproc = (N + P - 1) / P;
  if (perproc + 64 > nofile_limit())
    die("%ld connections per process exceed the descriptor limit %ld: use more --procs", perproc, nofile_limit());

  char cursor0[80] = "";
  hclient_t hc = {.fd = -1}; /* the snapshot read */
  first_cursor(&hc, cursor0, sizeof cursor0);
  child_t *kids = spawn_workers(N, P, hc.fd, cursor0);
  PGconn *pg = pg_connect();

  fanout_run_t run = {.N = N, .P = P, .ok = 1, .pg_total = -1, .pg_max = -1};
  run.completions = xmalloc(sizeof(int64_t) * (size_t)cfg.rounds);
  run.commits = xmalloc(sizeof(int64_t) * (size_t)cfg.rounds);
  run.parkwaits = xmalloc(sizeof(int64_t) * (size_t)cfg.rounds);
  int64_t cpu_a[WATCH_MAX], cpu_b[WATCH_MAX];
  sample_mem(run.mem_idle, &run.mem_idle_json);
  record_t *recs = xmalloc(sizeof(record_t) * (size_t)N);
  hclient_t pub = {.fd = -1};
  /* PBP serves its status on the operators' listener, not the public port. */
  hclient_t status = {.fd = -1, .port = cfg.target == TARGET_PBP ? cfg.status_port : 0};
  /* PBP's scoreboard is published every 100 ms: wait that long, then take the
   * events_delivered baseline that later snapshots must exceed. */
  long delivered_expected = -1;
  if (cfg.target == TARGET_PBP) {
    usleep(250000);
    server_parked(&status, &delivered_expected);
  }
  int64_t run_start = now_ns();

  for (int r = 0; r < cfg.rounds; r++) {
    fanout_round_t round = {.r = r, .key = -1, .recs = recs};
    int64_t park_start = now_ns();
    park(&run, kids, &round);
    wait_parked(&run, &status, &round, delivered_expected, park_start);
    if (cfg.settle > 0) usleep((useconds_t)(cfg.settle * 1e6));
    run.parkwaits[r] = now_ns() - park_start;
    if (r == 0) sample_mem(run.mem_parked, &run.mem_parked_json);
    if (pg) sample_pg(&run, pg, r);
    arm(kids, P, r);
    sample_cpu(cpu_a);
    if (r == 0) memcpy(run.cpu_first, cpu_a, sizeof cpu_a);
    memcpy(run.cpu_last_a, cpu_a, sizeof cpu_a);

    commit(&round, pg, &pub);
    run.commits[r] = round.t1 - round.t0;
    tell_workers(kids, P, CMD_COMMITTED, r);

    collect(kids, P, &round, recs);
    sample_cpu(cpu_b);
    for (int g = 0; g < watch_count(); g++) run.cpu_delivery[g] += cpu_b[g] - cpu_a[g];
    fanout_tally_round(&run, &round);
    if (delivered_expected >= 0) delivered_expected += events_received(recs, N);
    if (run.not_parked_rounds >= 2) { /* bounded in time: the server cannot hold N */
      note("ERROR: stopping after %d rounds: twice not all %d polls parked", run.rounds_done, N);
      fanout_error(&run, "stopped after %d rounds", run.rounds_done);
      break;
    }
  }
  run.run_ns = now_ns() - run_start;
  stop_workers(kids, P);

  fanout_print(&run);
  if (!run.ok)
    note("ERRORS: %ld of %ld deliveries missed; see \"errors\" in the output", run.missed_total,
         (long)N * run.rounds_done);
  if (pg) PQfinish(pg);
  return run.ok ? 0 : 1;
}
