/*
 * options: the command line (`loadgen MODE [options]`) and the settings every
 * part reads. Parsed once, in main, before anything else runs; the modes may
 * then settle what was left automatic (procs, status_path).
 */
#ifndef LOADGEN_OPTIONS_H
#define LOADGEN_OPTIONS_H

/* What serves the long-polls (fanout, latency). */
typedef enum { TARGET_PBP, TARGET_NCHAN } target_t;

/* The closed-loop request. */
typedef enum { OP_GET, OP_LIST, OP_POST, OP_PUT } op_t;

typedef struct {
  const char *mode;
  target_t target;
  char host[64];
  int port;
  int status_port;   /* where PBP serves /api/_status (its operators' listener); 0: --port */
  int connections;
  int procs;
  int rounds;
  int rounds_given;  /* --rounds was on the command line (latency's default differs) */
  int sources;       /* loopback source addresses 127.0.0.1.. (0 = automatic) */
  double ramp;       /* connections opened per millisecond (fanout) */
  double poll_timeout; /* seconds the long-poll asks for */
  double park_timeout; /* seconds to wait for all N parked */
  double delivery_timeout; /* seconds after the commit to wait for the last delivery */
  double settle;     /* extra seconds after the server reports all parked */
  const char *pg;    /* libpq conninfo for the commit side and PostgreSQL figures */
  const char *table;
  /* "Authorization: Bearer T\r\n" with --token T, else "": sent with every PBP request */
  char authorization[4096];
  const char *cursor; /* the first poll's cursor (default: a snapshot read's PBP-Cursor) */
  const char *sub_path;
  const char *pub_path;
  const char *status_path;
  op_t op;
  double duration;
  double warmup;
  double request_timeout;
  int verbose;
} options_t;

extern options_t cfg;

/* Reads argv into cfg (argv[1] is the mode, not checked here) and registers
 * every --watch with process_watch. A malformed option prints the usage and
 * exits with status 2; more than 16 --watch dies. */
void options_parse(int argc, char **argv);

/* Prints the usage on stderr and exits with status 2. */
void usage(void) __attribute__((noreturn));

#endif
