#ifndef PBP_CSYSTEMSHIM_H
#define PBP_CSYSTEMSHIM_H

// What Swift's Glibc module leaves out: epoll, signalfd, memfd, atomics on
// shared memory, and the posix_spawn file actions that hand a listening socket
// to a worker. Only DaemonSupport imports it.
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

extern const uint32_t pbp_EPOLLIN;
extern const uint32_t pbp_EPOLLRDHUP;
extern const uint32_t pbp_EPOLLONESHOT;
extern const uint32_t pbp_EPOLLEXCLUSIVE;
extern const uint32_t pbp_EPOLLHUP;
extern const uint32_t pbp_EPOLLERR;

int pbp_epoll_create(void);
int pbp_epoll_add(int epfd, int fd, uint32_t events, uint64_t data);
int pbp_epoll_del(int epfd, int fd);
/// Re-arms `fd` with new events and data if it is registered already
/// (EPOLL_CTL_MOD), adds it otherwise.
int pbp_epoll_watch(int epfd, int fd, uint32_t events, uint64_t data);
/// Leaves `fd` registered but reporting nothing except a hang-up or an
/// error, once (EPOLL_CTL_MOD to EPOLLONESHOT alone).
int pbp_epoll_disarm(int epfd, int fd);

/// Waits for events; writes at most `max` (events, data) pairs.
int pbp_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int max, int timeout_ms);

/// Asks the kernel to send `signal` to this process when its parent exits.
int pbp_die_with_parent(int signal);

/// Moves `fd` to a number of 10 or more, close-on-exec, so that it cannot
/// collide with the fixed numbers (3, 4) workers receive; returns the new fd.
int pbp_move_fd_high(int fd);

/// Shared memory: an anonymous file of `size` bytes (fd, inherited by
/// children), close-on-exec and moved out of the way. Returns the fd or -1.
int pbp_shared_memory_create(size_t size);
/// Maps `size` bytes of such a file shared; NULL on failure.
void *pbp_shared_memory_map(int fd, size_t size);
uint64_t pbp_atomic_load(const uint64_t *address);
void pbp_atomic_store(uint64_t *address, uint64_t value);
void pbp_atomic_add(uint64_t *address, int64_t delta);

/// Names the calling thread (15 bytes at most), as `top -H` shows it.
void pbp_set_thread_name(const char *name);

/// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC.
int pbp_accept_nonblocking(int listen_fd);

/// Starts `path` with `argv`, with `keep_fd` duplicated onto fd 3 and
/// `second_fd` onto fd 4 in the child (each when >= 0; all other descriptors
/// left as their O_CLOEXEC flags say). Returns the pid or -errno.
pid_t pbp_spawn_with_fds(const char *path, char *const argv[], const int *fds, int fd_count);

/// Blocks the given signals in the calling thread (and threads it starts later).
int pbp_block_signals(const int *signals, int count);
/// Waits for one of the given signals (must be blocked); returns it, or -1 on timeout.
int pbp_wait_signal(const int *signals, int count, int timeout_ms);

/// Blocks the given signals in the calling thread and returns a signalfd that
/// reads them (non-blocking, close-on-exec), or -1.
int pbp_signalfd(const int *signals, int count);
/// Reads one pending signal from a signalfd: its number, or 0 when none is pending.
int pbp_signalfd_read(int fd);

#ifdef __cplusplus
}
#endif
#endif
