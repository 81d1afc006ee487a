#include "process_watch.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "util.h"

typedef struct {
  char name[32];
  pid_t root;
} watch_t;

static watch_t watches[WATCH_MAX];
static int nwatches;

int watch_add(const char *spec) {
  if (nwatches >= WATCH_MAX) die("at most 16 --watch");
  const char *eq = strchr(spec, '=');
  if (!eq) return -1;
  size_t nl = (size_t)(eq - spec) < 31 ? (size_t)(eq - spec) : 31;
  memcpy(watches[nwatches].name, spec, nl);
  watches[nwatches].name[nl] = 0;
  watches[nwatches].root = !strcmp(eq + 1, "self") ? getpid() : (pid_t)atoi(eq + 1);
  if (watches[nwatches].root <= 0) return -1;
  nwatches++;
  return 0;
}

int watch_count(void) { return nwatches; }

const char *watch_name(int g) { return watches[g].name; }

static int read_file(const char *path, char *out, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t off = 0;
  ssize_t r;
  while (off + 1 < cap && (r = read(fd, out + off, cap - 1 - off)) > 0) off += (size_t)r;
  close(fd);
  out[off] = 0;
  return (int)off;
}

/* The process and all its descendants (via /proc/PID/task/TID/children). */
static int collect_tree(pid_t pid, pid_t *out, int n, int cap) {
  if (n >= cap) return n;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (!d) return n;
  out[n++] = pid;
  struct dirent *e;
  char text[8192];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char cpath[300];
    snprintf(cpath, sizeof cpath, "/proc/%d/task/%s/children", pid, e->d_name);
    if (read_file(cpath, text, sizeof text) <= 0) continue;
    char *save, *tok = strtok_r(text, " \n", &save);
    pid_t kids[1024];
    int nk = 0;
    while (tok && nk < 1024) {
      kids[nk++] = (pid_t)atoi(tok);
      tok = strtok_r(NULL, " \n", &save);
    }
    for (int i = 0; i < nk; i++) n = collect_tree(kids[i], out, n, cap);
  }
  closedir(d);
  return n;
}

/* CPU time of every thread of a process, in ns (schedstat's first field:
 * exact, unlike the 10 ms ticks of /proc/PID/stat). */
static int64_t process_cpu_ns(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (!d) return 0;
  int64_t total = 0;
  struct dirent *e;
  char text[256];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char spath[300];
    snprintf(spath, sizeof spath, "/proc/%d/task/%s/schedstat", pid, e->d_name);
    if (read_file(spath, text, sizeof text) > 0) total += strtoll(text, NULL, 10);
  }
  closedir(d);
  return total;
}

static int64_t group_cpu_ns(int g) {
  pid_t pids[4096];
  int n = collect_tree(watches[g].root, pids, 0, 4096);
  int64_t total = 0;
  for (int i = 0; i < n; i++) total += process_cpu_ns(pids[i]);
  return total;
}

void sample_cpu(int64_t *out) {
  for (int g = 0; g < nwatches; g++) out[g] = group_cpu_ns(g);
}

static mem_t process_mem(pid_t pid) {
  mem_t m = {0, 0};
  char path[64], text[4096];
  snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
  if (read_file(path, text, sizeof text) <= 0) return m;
  char *p = strstr(text, "\nRss:");
  if (p) m.rss_kb = strtoll(p + 5, NULL, 10);
  p = strstr(text, "\nPss:");
  if (p) m.pss_kb = strtoll(p + 5, NULL, 10);
  return m;
}

void sample_mem(mem_t *out, buf_t *json) {
  buf_printf(json, "{");
  for (int g = 0; g < nwatches; g++) {
    pid_t pids[4096];
    int n = collect_tree(watches[g].root, pids, 0, 4096);
    mem_t total = {0, 0};
    buf_t procs = {0};
    for (int i = 0; i < n; i++) {
      mem_t m = process_mem(pids[i]);
      total.rss_kb += m.rss_kb;
      total.pss_kb += m.pss_kb;
      char comm[64] = "", path[64];
      snprintf(path, sizeof path, "/proc/%d/comm", pids[i]);
      read_file(path, comm, sizeof comm);
      comm[strcspn(comm, "\n\"\\")] = 0;
      buf_printf(&procs, "%s{\"pid\":%d,\"comm\":\"%s\",\"rss_kb\":%" PRId64 ",\"pss_kb\":%" PRId64 "}", i ? "," : "",
                 pids[i], comm, m.rss_kb, m.pss_kb);
    }
    out[g] = total;
    buf_printf(json, "%s\"%s\":{\"rss_kb\":%" PRId64 ",\"pss_kb\":%" PRId64 ",\"processes\":[%s]}", g ? "," : "",
               watches[g].name, total.rss_kb, total.pss_kb, procs.p ? procs.p : "");
    buf_free(&procs);
  }
  buf_printf(json, "}");
}

