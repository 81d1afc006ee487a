#include "options.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "process_watch.h"

options_t cfg = {
    .mode = NULL,
    .target = TARGET_PBP,
    .host = "127.0.0.1",
    .port = 0,
    .status_port = 0,
    .connections = 1,
    .procs = 0,
    .rounds = 20,
    .rounds_given = 0,
    .sources = 0,
    .ramp = 10.0,
    .poll_timeout = 55.0,
    .park_timeout = 60.0,
    .delivery_timeout = 15.0,
    .settle = 0.0,
    .pg = NULL,
    .table = "testtype",
    .authorization = "",
    .cursor = NULL,
    .sub_path = "/sub",
    .pub_path = "/pub",
    .status_path = NULL,
    .op = OP_GET,
    .duration = 5.0,
    .warmup = 1.0,
    .request_timeout = 10.0,
    .verbose = 0,
};

void usage(void) {
  fprintf(stderr,
          "usage: loadgen MODE [options]\n"
          "modes:\n"
          "  fanout       park N long-polls, commit, time every delivery; R rounds\n"
          "  latency      fanout with one connection (default 200 rounds)\n"
          "  closed-loop  C keep-alive connections, request after request, for D seconds\n"
          "options:\n"
          "  --port P            the server's port on 127.0.0.1 (--host to change)\n"
          "  --status-port P     where PBP serves /api/_status (default: --port)\n"
          "  --target pbp|nchan  what serves the long-polls (fanout, latency)\n"
          "  --connections N     parked polls (fanout) or connections (closed-loop)\n"
          "  --rounds R          fanout rounds (default 20; latency 200)\n"
          "  --procs P           worker processes holding the connections (default 2; 1 for latency)\n"
          "  --sources K         loopback source addresses 127.0.0.1..K (default: one per 14,000 connections)\n"
          "  --ramp R            connections opened per millisecond (default 10)\n"
          "  --poll-timeout S    the timeout each long-poll asks for (default 55)\n"
          "  --park-timeout S    how long to wait for all N to be parked (default 60)\n"
          "  --delivery-timeout S  how long after the commit to wait for the last delivery (default 15)\n"
          "  --settle S          extra wait after the server reports all parked (default 0)\n"
          "  --pg CONNINFO       libpq connection for the INSERT and pg_stat_activity\n"
          "  --table T           the PBP table (default testtype)\n"
          "  --token JWT         send Authorization: Bearer JWT with every PBP request\n"
          "  --cursor C          the first poll's cursor (default: PBP-Cursor of a snapshot read)\n"
          "  --sub-path, --pub-path, --status-path  Nchan locations (/sub, /pub, /nchan_status)\n"
          "  --watch NAME=PID    a process tree to measure (CPU, RSS, PSS); NAME=self for loadgen\n"
          "  --op get|list|post|put  closed-loop request (default get)\n"
          "  --duration S, --warmup S  closed-loop measuring time and warm-up (default 5, 1)\n"
          "  --request-timeout S closed-loop: a request slower than this is an error (default 10)\n"
          "  --verbose\n");
  exit(2);
}

void options_parse(int argc, char **argv) {
  cfg.mode = argv[1];
  static struct option opts[] = {
      {"port", required_argument, 0, 'p'},          {"host", required_argument, 0, 'H'},
      {"target", required_argument, 0, 't'},        {"connections", required_argument, 0, 'c'},
      {"rounds", required_argument, 0, 'r'},        {"procs", required_argument, 0, 'P'},
      {"sources", required_argument, 0, 's'},       {"ramp", required_argument, 0, 'R'},
      {"poll-timeout", required_argument, 0, 'T'},  {"park-timeout", required_argument, 0, 'K'},
      {"delivery-timeout", required_argument, 0, 'D'}, {"settle", required_argument, 0, 'S'},
      {"pg", required_argument, 0, 'g'},            {"table", required_argument, 0, 'b'},
      {"sub-path", required_argument, 0, 1},        {"pub-path", required_argument, 0, 2},
      {"status-path", required_argument, 0, 3},     {"watch", required_argument, 0, 'w'},
      {"op", required_argument, 0, 'o'},            {"duration", required_argument, 0, 'd'},
      {"warmup", required_argument, 0, 'W'},        {"request-timeout", required_argument, 0, 4},
      {"cursor", required_argument, 0, 5},          {"token", required_argument, 0, 6},
      {"status-port", required_argument, 0, 7},
                {"verbose", no_argument, 0, 'v'},             {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  optind = 2;
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case 'p': cfg.port = atoi(optarg); break;
    case 'H': snprintf(cfg.host, sizeof cfg.host, "%s", optarg); break;
    case 't':
      if (!strcmp(optarg, "pbp")) cfg.target = TARGET_PBP;
      else if (!strcmp(optarg, "nchan")) cfg.target = TARGET_NCHAN;
      else usage();
      break;
    case 'c': cfg.connections = atoi(optarg); break;
    case 'r': cfg.rounds = atoi(optarg); cfg.rounds_given = 1; break;
    case 'P': cfg.procs = atoi(optarg); break;
    case 's': cfg.sources = atoi(optarg); break;
    case 'R': cfg.ramp = atof(optarg); break;
    case 'T': cfg.poll_timeout = atof(optarg); break;
    case 'K': cfg.park_timeout = atof(optarg); break;
    case 'D': cfg.delivery_timeout = atof(optarg); break;
    case 'S': cfg.settle = atof(optarg); break;
    case 'g': cfg.pg = optarg; break;
    case 'b': cfg.table = optarg; break;
    case 1: cfg.sub_path = optarg; break;
    case 2: cfg.pub_path = optarg; break;
    case 3: cfg.status_path = optarg; break;
    case 4: cfg.request_timeout = atof(optarg); break;
    case 5: cfg.cursor = optarg; break;
    case 7: cfg.status_port = atoi(optarg); break;
    case 6:
      if (snprintf(cfg.authorization, sizeof cfg.authorization, "Authorization: Bearer %s\r\n", optarg) >=
          (int)sizeof cfg.authorization)
        usage();
      break;
    case 'w':
      if (watch_add(optarg) < 0) usage();
      break;
    case 'o':
      if (!strcmp(optarg, "get")) cfg.op = OP_GET;
      else if (!strcmp(optarg, "list")) cfg.op = OP_LIST;
      else if (!strcmp(optarg, "post")) cfg.op = OP_POST;
      else if (!strcmp(optarg, "put")) cfg.op = OP_PUT;
      else usage();
      break;
    case 'd': cfg.duration = atof(optarg); break;
    case 'W': cfg.warmup = atof(optarg); break;
    case 'v': cfg.verbose = 1; break;
    default: usage();
    }
  }
}
