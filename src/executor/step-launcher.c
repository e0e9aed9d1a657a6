/*
 * kv2-step-launcher: starts an executor's task steps with one exec each. One launcher runs per executor,
 * a small long-lived child of it (it runs as the executor's user, root on a real executor). For each
 * request it starts a child (clone, as vfork does); the child leads a new session and process group,
 * joins the step's cgroups, sets its rlimits, enters its work dir, takes its stdin (a regular file the
 * task user owns, no link followed, no FIFO waited on), drops to the task user (groups cleared, no
 * capabilities, no new privileges) and execs the step's program (bash, or bwrap which execs bash).
 * The launcher relays the step's stdout and stderr (capped: it stops the step past the cap) and, once
 * the step is reaped, its exit status with its rusage from wait4 (CPU time, peak resident memory) and
 * its wall time.
 *
 * Built by build/build.ts with the C compiler (flags in src/executor/launcher-binary.ts) and embedded in
 * the kv2 executable; written to be read in one sitting: no dependencies beyond libc and the kernel's
 * headers, every input checked, every error said.
 *
 * Protocol. Requests on fd 0, one per frame: a 32-bit little-endian length, then that many bytes of
 * NUL-terminated "key=value" fields:
 *   op=start              the only operation
 *   id=N                  1..4294967295, chosen by the executor, unique among running steps
 *   argv=S                repeated, at least once; the first is the program's absolute path
 *   env=NAME=VALUE        repeated; the step's whole environment
 *   cwd=PATH              absolute; entered before the user switch
 *   uid=N gid=N           both or neither, never 0: the task user (groups cleared, capabilities
 *                         dropped, no_new_privs); neither: the step keeps the launcher's user
 *   rlimit=NAME:SOFT:HARD repeated; NAME one of core cpu fsize as nproc stack; SOFT <= HARD, or "inf"
 *   cgroup=PATH           repeated; a cgroup.procs file on a cgroup file system, joined first
 *   stdin=PATH            absolute; a regular file, not through a link; absent: /dev/null
 *   stdin_owner=N         the uid that must own stdin
 *   output_limit=N        bytes relayed per stream (>= 1); one byte more stops the step
 *   private_tmp=1         the step gets a mount namespace of its own with an empty tmpfs on /tmp,
 *                         /var/tmp and /dev/shm (mode 1777), set up as root before the user switch:
 *                         what a step leaves there goes with its namespace when its last process ends,
 *                         and no step sees another's (for tasks run without a sandbox; bwrap has its own)
 * Replies on fd 1, frames of a type byte, the 32-bit little-endian id, a 32-bit little-endian length
 * and the payload:
 *   'H' (id 0)  hello, payload "kv2-step-launcher <protocol version>", sent once at start
 *   'P'         the step's pid (also its process group and session id), decimal, once it exec'd its
 *               program (or failed to: then 'X' follows with the error)
 *   'O' / 'E'   bytes of its stdout / stderr
 *   'X'         it was reaped: "exit=N" or "signal=N", "user_us=N", "system_us=N", "maxrss_kb=N",
 *               "wall_us=N" (clone to reap), and "error=TEXT" when it failed before its program ran;
 *               NUL-terminated fields. Its process group is SIGKILLed when it is reaped, and 'X' waits
 *               (up to SETTLE_MS) until nothing of the group is left.
 *   'C'         its output pipes are closed (at end of file, or DRAIN_MS after it was reaped): the
 *               last frame of a step
 *   'R'         a request refused (payload: why); id 0 when the request's id could not be read. A
 *               refused start never starts a process: no other frame follows for that id.
 * At end of file on fd 0, SIGTERM, SIGINT or SIGHUP (also sent when the executor dies: parent death
 * signal) the launcher SIGKILLs every running step's process group and cgroups, and exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROTOCOL_VERSION 2
/* Largest request frame: argv, env and paths of one step are a few hundred bytes. */
#define MAX_REQUEST (64 * 1024)
/* Steps running at once (an executor has at most 1024 slots). */
#define MAX_STEPS 1024
#define MAX_ARGS 256
#define MAX_ENV 256
#define MAX_CGROUPS 8
#define MAX_RLIMITS 8
/* Bytes read from a step's pipe at a time (one 'O' / 'E' frame at most). */
#define CHUNK (64 * 1024)
/* How long a reaped step's output pipes may stay open (held by a process that escaped its group). */
#define DRAIN_MS 2000
/* How long a reaped step's report waits for the rest of its (SIGKILLed) process group to be gone. */
#define SETTLE_MS 50
/* Bytes kept of why a step could not start. */
#define ERROR_MAX 512
/* Exit status of a child that failed before its program ran (as a shell's "cannot execute"). */
#define EXIT_SETUP 127

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

struct limit {
  int resource;
  rlim_t soft, hard;
};

/* A parsed start request; its strings point into the request frame, which outlives the child's setup. */
struct request {
  uint32_t id;
  const char *argv[MAX_ARGS + 1];
  int argc;
  const char *env[MAX_ENV + 1];
  int envc;
  const char *cwd;
  int has_user;
  uid_t uid;
  gid_t gid;
  struct limit limits[MAX_RLIMITS];
  int nlimits;
  const char *cgroups[MAX_CGROUPS];
  int ncgroups;
  const char *stdin_path;
  int has_stdin_owner;
  uid_t stdin_owner;
  unsigned long long output_limit;
  int private_tmp;
};

struct step {
  int used;
  uint32_t id;
  pid_t pid;
  int fd[2];      /* stdout, stderr read ends; -1 once closed */
  unsigned long long limit, relayed[2];
  int overflowed;
  int reaped;     /* wait4 returned it */
  int reported;   /* its 'X' is sent */
  struct timespec started;
  long long settle_deadline_ms, drain_deadline_ms;
  int status;            /* wait4's, once reaped */
  long long wall_us;     /* from clone to reap */
  /* wait4's rusage of the step and of the orphans of its group this launcher reaped (see reap_children) */
  long long user_us, system_us;
  long maxrss_kb;
  char error[ERROR_MAX]; /* written by the child (it shares our memory until it execs) when it cannot start */
  size_t error_len;
  char *cgroups[MAX_CGROUPS]; /* copies: used at shutdown, after the request is gone */
  int ncgroups;
};

/*
 * Every step's entry stays where it is (a poll round may still name one that just finished: its `used`
 * says so); the running ones are listed densely in `active`, so a round costs what runs, not MAX_STEPS.
 */
static struct step steps[MAX_STEPS];
static struct step *active[MAX_STEPS];
static int nactive;
static int last_cap = -1;

static void diagnose(const char *format, ...) {
  va_list args;
  va_start(args, format);
  fputs("kv2-step-launcher: ", stderr);
  vfprintf(stderr, format, args);
  fputc('\n', stderr);
  va_end(args);
}

static long long monotonic_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void kill_everything_and_exit(int status);

/* Writes all of `length` bytes to the executor; if it is gone, nothing is left to do but clean up. */
static void write_all(const void *data, size_t length) {
  const char *p = data;
  while (length > 0) {
    ssize_t n = write(STDOUT_FILENO, p, length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      diagnose("cannot write to the executor (%s): stopping every step", n < 0 ? strerror(errno) : "short write");
      kill_everything_and_exit(1);
    }
    p += n;
    length -= (size_t)n;
  }
}

static void put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v & 0xff);
  p[1] = (unsigned char)((v >> 8) & 0xff);
  p[2] = (unsigned char)((v >> 16) & 0xff);
  p[3] = (unsigned char)((v >> 24) & 0xff);
}

static void reply(char type, uint32_t id, const void *payload, size_t length) {
  unsigned char header[9];
  header[0] = (unsigned char)type;
  put_u32(header + 1, id);
  put_u32(header + 5, (uint32_t)length);
  write_all(header, sizeof header);
  if (length > 0) write_all(payload, length);
}

static void refuse(uint32_t id, const char *format, ...) {
  char text[512];
  va_list args;
  va_start(args, format);
  int n = vsnprintf(text, sizeof text, format, args);
  va_end(args);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof text) n = (int)sizeof text - 1;
  reply('R', id, text, (size_t)n);
}

/* A whole decimal number in [0, max]; no sign, no spaces, no trailing text. */
static int parse_number(const char *text, unsigned long long max, unsigned long long *out) {
  if (*text < '0' || *text > '9') return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || v > max) return -1;
  *out = v;
  return 0;
}

static int parse_limit_value(const char *text, rlim_t *out) {
  unsigned long long v;
  if (strcmp(text, "inf") == 0) {
    *out = RLIM_INFINITY;
    return 0;
  }
  if (parse_number(text, (unsigned long long)RLIM_INFINITY - 1, &v) != 0) return -1;
  *out = (rlim_t)v;
  return 0;
}

/* "NAME:SOFT:HARD" into a limit; the text is copied, the request's stays intact. */
static int parse_rlimit(const char *text, struct limit *limit) {
  static const struct { const char *name; int resource; } names[] = {
    {"core", RLIMIT_CORE}, {"cpu", RLIMIT_CPU}, {"fsize", RLIMIT_FSIZE}, {"as", RLIMIT_AS}, {"nproc", RLIMIT_NPROC},
    {"stack", RLIMIT_STACK},
  };
  char copy[96];
  if (strlen(text) >= sizeof copy) return -1;
  strcpy(copy, text);
  char *soft = strchr(copy, ':');
  if (!soft) return -1;
  *soft++ = '\0';
  char *hard = strchr(soft, ':');
  if (!hard) return -1;
  *hard++ = '\0';
  limit->resource = -1;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(copy, names[i].name) == 0) limit->resource = names[i].resource;
  if (limit->resource < 0) return -1;
  if (parse_limit_value(soft, &limit->soft) != 0 || parse_limit_value(hard, &limit->hard) != 0) return -1;
  if (limit->hard != RLIM_INFINITY && (limit->soft == RLIM_INFINITY || limit->soft > limit->hard)) return -1;
  return 0;
}

/* Absolute, and no "." or ".." component: a path the executor made, taken as it is. */
static int plain_absolute_path(const char *path) {
  if (path[0] != '/') return 0;
  for (const char *p = path; *p; p++) {
    if (p[0] != '/') continue;
    if (p[1] == '.' && (p[2] == '/' || p[2] == '\0')) return 0;
    if (p[1] == '.' && p[2] == '.' && (p[3] == '/' || p[3] == '\0')) return 0;
  }
  return strlen(path) < PATH_MAX;
}

static int ends_with(const char *text, const char *suffix) {
  size_t a = strlen(text), b = strlen(suffix);
  return a >= b && strcmp(text + a - b, suffix) == 0;
}

static struct step *find_step(uint32_t id) {
  for (int i = 0; i < nactive; i++)
    if (active[i]->id == id) return active[i];
  return NULL;
}

/* Fills `r` from a frame's fields; returns NULL, or why the request is refused. */
static const char *parse_request(char *frame, size_t length, struct request *r) {
  static char why[160];
  memset(r, 0, sizeof *r);
  if (length == 0 || frame[length - 1] != '\0') return "the request's last field is not NUL-terminated";
  int has_op = 0, has_uid = 0, has_gid = 0, has_limit = 0, has_private_tmp = 0;
  unsigned long long v;
  for (char *field = frame, *next; field < frame + length; field = next) {
    /* Measured before the '=' is cut out of it. */
    next = field + strlen(field) + 1;
    char *value = strchr(field, '=');
    if (!value) return "a field without '='";
    *value++ = '\0';
    if (strcmp(field, "op") == 0) {
      if (has_op || strcmp(value, "start") != 0) return "op must be given once, as start";
      has_op = 1;
    } else if (strcmp(field, "id") == 0) {
      if (r->id != 0 || parse_number(value, UINT32_MAX, &v) != 0 || v == 0) return "id must be given once, 1..4294967295";
      r->id = (uint32_t)v;
    } else if (strcmp(field, "argv") == 0) {
      if (r->argc >= MAX_ARGS) return "too many argv fields";
      r->argv[r->argc++] = value;
    } else if (strcmp(field, "env") == 0) {
      if (r->envc >= MAX_ENV) return "too many env fields";
      if (value[0] == '=' || !strchr(value, '=')) return "an env field is not NAME=VALUE";
      r->env[r->envc++] = value;
    } else if (strcmp(field, "cwd") == 0) {
      if (r->cwd || !plain_absolute_path(value)) return "cwd must be given once, a plain absolute path";
      r->cwd = value;
    } else if (strcmp(field, "uid") == 0) {
      if (has_uid || parse_number(value, UINT32_MAX - 1, &v) != 0 || v == 0) return "uid must be given once, not 0";
      has_uid = 1;
      r->uid = (uid_t)v;
    } else if (strcmp(field, "gid") == 0) {
      if (has_gid || parse_number(value, UINT32_MAX - 1, &v) != 0 || v == 0) return "gid must be given once, not 0";
      has_gid = 1;
      r->gid = (gid_t)v;
    } else if (strcmp(field, "rlimit") == 0) {
      if (r->nlimits >= MAX_RLIMITS) return "too many rlimit fields";
      if (parse_rlimit(value, &r->limits[r->nlimits]) != 0) {
        snprintf(why, sizeof why, "bad rlimit %.64s (NAME:SOFT:HARD, NAME one of core cpu fsize as nproc stack)", value);
        return why;
      }
      r->nlimits++;
    } else if (strcmp(field, "cgroup") == 0) {
      if (r->ncgroups >= MAX_CGROUPS) return "too many cgroup fields";
      if (!plain_absolute_path(value) || !ends_with(value, "/cgroup.procs")) return "a cgroup field is not a plain absolute path to a cgroup.procs file";
      r->cgroups[r->ncgroups++] = value;
    } else if (strcmp(field, "stdin") == 0) {
      if (r->stdin_path || !plain_absolute_path(value)) return "stdin must be given once, a plain absolute path";
      r->stdin_path = value;
    } else if (strcmp(field, "stdin_owner") == 0) {
      if (r->has_stdin_owner || parse_number(value, UINT32_MAX - 1, &v) != 0) return "stdin_owner must be given once, a uid";
      r->has_stdin_owner = 1;
      r->stdin_owner = (uid_t)v;
    } else if (strcmp(field, "private_tmp") == 0) {
      if (has_private_tmp || strcmp(value, "1") != 0) return "private_tmp must be given once, as 1";
      has_private_tmp = 1;
      r->private_tmp = 1;
    } else if (strcmp(field, "output_limit") == 0) {
      if (has_limit || parse_number(value, 1ULL << 40, &v) != 0 || v == 0) return "output_limit must be given once, 1..2^40";
      has_limit = 1;
      r->output_limit = v;
    } else {
      snprintf(why, sizeof why, "unknown field %.64s", field);
      return why;
    }
  }
  if (!has_op) return "no op";
  if (r->id == 0) return "no id";
  if (r->argc == 0 || r->argv[0][0] != '/') return "argv must start with the program's absolute path";
  if (!r->cwd) return "no cwd";
  if (has_uid != has_gid) return "uid and gid go together";
  r->has_user = has_uid;
  if (!has_limit) return "no output_limit";
  if (r->has_stdin_owner && !r->stdin_path) return "stdin_owner without stdin";
  r->argv[r->argc] = NULL;
  r->env[r->envc] = NULL;
  return NULL;
}

/* ---- the child: everything between clone and exec ---- */

/*
 * The child is made with clone(CLONE_VM | CLONE_VFORK), as posix_spawn does: it runs on a stack of its
 * own in this process's memory while the launcher waits, until it execs or exits. Much cheaper than a
 * fork (no page tables copied); in return the child touches nothing of the launcher's but its own
 * context, calls only system calls and simple libc functions, and tells why it failed by writing into
 * its context, which the launcher reads once the clone returns.
 */
struct child {
  const struct request *r;
  int out_fd, err_fd;
  char *error;          /* ERROR_MAX bytes */
  size_t *error_length;
};

/* Its stack: one child is set up at a time (the launcher waits for each). */
static char child_stack[128 * 1024] __attribute__((aligned(16)));

static const char *describe_errno(int error) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *text = strerrordesc_np(error);
  return text ? text : "unknown error";
#else
  return strerror(error);
#endif
}

/* Says why the step could not start, then ends the child. Only the child calls it. */
static void __attribute__((noreturn, format(printf, 3, 4))) child_fail(const struct child *c, int error, const char *format, ...) {
  va_list args;
  va_start(args, format);
  int n = vsnprintf(c->error, ERROR_MAX, format, args);
  va_end(args);
  if (n < 0) n = 0;
  if (n >= ERROR_MAX) n = ERROR_MAX - 1;
  if (error != 0) {
    int m = snprintf(c->error + n, (size_t)(ERROR_MAX - n), ": %s", describe_errno(error));
    if (m > 0) n = n + m >= ERROR_MAX ? ERROR_MAX - 1 : n + m;
  }
  *c->error_length = (size_t)n;
  _exit(EXIT_SETUP);
}

/* Moves this process into a cgroup: the file must be a cgroup.procs on a cgroup file system. */
static void join_cgroup(const struct child *c, const char *procs) {
  int fd = open(procs, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) child_fail(c, errno, "cannot join the step's cgroup %s", procs);
  struct statfs fs;
  if (fstatfs(fd, &fs) != 0) child_fail(c, errno, "cannot join the step's cgroup %s", procs);
  if (fs.f_type != CGROUP_SUPER_MAGIC && fs.f_type != CGROUP2_SUPER_MAGIC) child_fail(c, 0, "%s is not on a cgroup file system", procs);
  char pid[24];
  int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  if (write(fd, pid, (size_t)n) != n) child_fail(c, errno, "cannot join the step's cgroup %s", procs);
  close(fd);
}

/*
 * For good: no capability in any set (bounding set dropped first, while we may), no supplementary
 * groups, the task's gid and uid (real, effective, saved), no new privileges; then proof that root
 * cannot be had back.
 */
static void become(const struct child *c, uid_t uid, gid_t gid) {
  if (geteuid() != 0) child_fail(c, 0, "cannot switch to uid %u: the launcher does not run as root", (unsigned)uid);
  for (int cap = 0; cap <= last_cap; cap++)
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) child_fail(c, errno, "cannot drop capability %d from the bounding set", cap);
  if (setgroups(0, NULL) != 0) child_fail(c, errno, "cannot clear the supplementary groups");
  if (setresgid(gid, gid, gid) != 0) child_fail(c, errno, "cannot switch to gid %u", (unsigned)gid);
  if (setresuid(uid, uid, uid) != 0) child_fail(c, errno, "cannot switch to uid %u", (unsigned)uid);
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capset, &header, data) != 0) child_fail(c, errno, "cannot clear the capabilities");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(c, errno, "cannot set no_new_privs");
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  if (getresuid(&ruid, &euid, &suid) != 0 || getresgid(&rgid, &egid, &sgid) != 0 || ruid != uid || euid != uid || suid != uid ||
      rgid != gid || egid != gid || sgid != gid || getgroups(0, NULL) != 0)
    child_fail(c, 0, "the switch to uid %u gid %u did not take", (unsigned)uid, (unsigned)gid);
  if (setuid(0) == 0 || setgid(0) == 0) child_fail(c, 0, "root could be had back after the switch to uid %u", (unsigned)uid);
}

/* Makes every directory on the way to `path` (absolute) that is missing, mode 0711 (root's, passable). */
static void make_way(const struct child *c, const char *path) {
  char partial[PATH_MAX];
  size_t length = strlen(path);
  if (length >= sizeof partial) child_fail(c, 0, "the step's directory path is too long");
  for (size_t i = 1; i <= length; i++) {
    if (path[i] != '/' && path[i] != '\0') continue;
    memcpy(partial, path, i);
    partial[i] = '\0';
    if (mkdir(partial, 0711) != 0 && errno != EEXIST) child_fail(c, errno, "cannot make %s in the step's private scratch", partial);
  }
}

/*
 * A mount namespace of the step's own, its mounts kept from the machine's (private propagation), with
 * an empty tmpfs on each shared scratch directory. A work dir that lies under one of them (a work dir
 * in /tmp) is bound back at its own path, so the step still reaches it as before, and sees nothing
 * else there. Nothing to clean up: the namespace, and the tmpfs with it, is gone when the step's last
 * process is. Called in the work dir (its path is `cwd`), before the user switch.
 */
static void private_scratch(const struct child *c, const char *cwd) {
  static const char *const dirs[] = {"/tmp", "/var/tmp", "/dev/shm"};
  if (unshare(CLONE_NEWNS) != 0) child_fail(c, errno, "cannot give the step a mount namespace of its own (private /tmp)");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) child_fail(c, errno, "cannot make the step's mounts private");
  int here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (here < 0) child_fail(c, errno, "cannot hold the step's directory %s", cwd);
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    struct stat st;
    if (stat(dirs[i], &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (mount("kv2-step-tmp", dirs[i], "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0)
      child_fail(c, errno, "cannot mount a private tmpfs on %s", dirs[i]);
    size_t n = strlen(dirs[i]);
    if (strncmp(cwd, dirs[i], n) == 0 && cwd[n] == '/') {
      char source[64];
      snprintf(source, sizeof source, "/proc/self/fd/%d", here);
      make_way(c, cwd);
      if (mount(source, cwd, NULL, MS_BIND | MS_REC, NULL) != 0) child_fail(c, errno, "cannot bind the step's directory %s into its private %s", cwd, dirs[i]);
      if (chdir(cwd) != 0) child_fail(c, errno, "cannot enter %s", cwd);
    }
  }
  close(here);
}

/* The step's stdin: not through a link, not blocking on a FIFO, a regular file of `owner`'s. */
static int open_input(const struct child *c) {
  const struct request *r = c->r;
  if (!r->stdin_path) {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) child_fail(c, errno, "cannot open /dev/null");
    return fd;
  }
  int fd = open(r->stdin_path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) child_fail(c, errno, "cannot open the step's input: %s", r->stdin_path);
  struct stat st;
  if (fstat(fd, &st) != 0) child_fail(c, errno, "cannot open the step's input: %s", r->stdin_path);
  if (!S_ISREG(st.st_mode) || (r->has_stdin_owner && st.st_uid != r->stdin_owner))
    child_fail(c, 0, "cannot open the step's input: %s is not a regular file of the task's", r->stdin_path);
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) child_fail(c, errno, "cannot open the step's input: %s", r->stdin_path);
  return fd;
}

static int run_child(void *argument) {
  const struct child *c = argument;
  const struct request *r = c->r;
  /* The launcher's signal handling is not the step's: default dispositions, nothing blocked. */
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (setsid() < 0) child_fail(c, errno, "setsid");
  for (int i = 0; i < r->ncgroups; i++) join_cgroup(c, r->cgroups[i]);
  for (int i = 0; i < r->nlimits; i++) {
    struct rlimit value = {r->limits[i].soft, r->limits[i].hard};
    if (setrlimit(r->limits[i].resource, &value) != 0) child_fail(c, errno, "cannot set the step's resource limit %d", r->limits[i].resource);
  }
  /*
   * Before the user switch: the work dir's parents need not be open to the task user (its own dir is).
   * The input sits in the task's dir, which the task could have changed: open_input follows no link,
   * waits on no FIFO, and takes only a regular file the task user owns.
   */
  if (chdir(r->cwd) != 0) child_fail(c, errno, "cannot enter %s", r->cwd);
  int in_fd = open_input(c);
  /* After the input is open (it may lie under /tmp too), before the user switch (mounts need root). */
  if (r->private_tmp) private_scratch(c, r->cwd);
  if (r->has_user) become(c, r->uid, r->gid);
  if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(c->out_fd, STDOUT_FILENO) < 0 || dup2(c->err_fd, STDERR_FILENO) < 0)
    child_fail(c, errno, "cannot set up the step's standard streams");
  execve(r->argv[0], (char *const *)r->argv, (char *const *)r->env);
  child_fail(c, errno, "cannot start %s", r->argv[0]);
}

/* ---- the launcher ---- */

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void start_step(const struct request *r) {
  if (find_step(r->id)) {
    refuse(r->id, "a step with id %u is running", r->id);
    return;
  }
  if (nactive >= MAX_STEPS) {
    refuse(r->id, "%d steps are running already", MAX_STEPS);
    return;
  }
  struct step *s = NULL;
  for (int i = 0; i < MAX_STEPS && !s; i++)
    if (!steps[i].used) s = &steps[i];
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    int error = errno;
    close_fd(&out[0]), close_fd(&out[1]), close_fd(&err[0]), close_fd(&err[1]);
    refuse(r->id, "cannot make the step's pipes: %s", strerror(error));
    return;
  }
  char *copies[MAX_CGROUPS] = {0};
  for (int i = 0; i < r->ncgroups; i++) {
    copies[i] = strdup(r->cgroups[i]);
    if (!copies[i]) {
      for (int j = 0; j < i; j++) free(copies[j]);
      close_fd(&out[0]), close_fd(&out[1]), close_fd(&err[0]), close_fd(&err[1]);
      refuse(r->id, "out of memory");
      return;
    }
  }
  memset(s, 0, sizeof *s);
  struct child c = {.r = r, .out_fd = out[1], .err_fd = err[1], .error = s->error, .error_length = &s->error_len};
  struct timespec started;
  clock_gettime(CLOCK_MONOTONIC, &started);
  /* Returns once the child exec'd or exited (CLONE_VFORK); SIGCHLD tells us when it ends. */
  pid_t pid = clone(run_child, child_stack + sizeof child_stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &c);
  close_fd(&out[1]), close_fd(&err[1]);
  if (pid < 0) {
    int error = errno;
    for (int i = 0; i < r->ncgroups; i++) free(copies[i]);
    close_fd(&out[0]), close_fd(&err[0]);
    memset(s, 0, sizeof *s);
    refuse(r->id, "cannot start a process: %s", strerror(error));
    return;
  }
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  fcntl(err[0], F_SETFL, O_NONBLOCK);
  s->used = 1;
  s->id = r->id;
  s->pid = pid;
  s->fd[0] = out[0];
  s->fd[1] = err[0];
  s->limit = r->output_limit;
  s->started = started;
  s->drain_deadline_ms = -1;
  s->ncgroups = r->ncgroups;
  memcpy(s->cgroups, copies, sizeof copies);
  active[nactive++] = s;
  char text[24];
  int n = snprintf(text, sizeof text, "%d", (int)pid);
  reply('P', s->id, text, (size_t)n);
}

static void finish_if_done(struct step *s) {
  if (!s->reported || s->fd[0] >= 0 || s->fd[1] >= 0) return;
  reply('C', s->id, NULL, 0);
  for (int i = 0; i < s->ncgroups; i++) free(s->cgroups[i]);
  for (int i = 0; i < nactive; i++)
    if (active[i] == s) {
      active[i] = active[--nactive];
      break;
    }
  memset(s, 0, sizeof *s);
}

/* Relays what a step wrote; past its cap, the rest is read and dropped and the step is stopped. */
static void read_output(struct step *s, int stream) {
  static char buffer[CHUNK];
  ssize_t n = read(s->fd[stream], buffer, sizeof buffer);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    close_fd(&s->fd[stream]);
    finish_if_done(s);
    return;
  }
  unsigned long long allowed = s->limit + 1 - s->relayed[stream];
  size_t relay = (unsigned long long)n < allowed ? (size_t)n : (size_t)allowed;
  if (relay > 0) {
    reply(stream == 0 ? 'O' : 'E', s->id, buffer, relay);
    s->relayed[stream] += relay;
  }
  if (s->relayed[stream] > s->limit && !s->overflowed) {
    s->overflowed = 1;
    kill(-s->pid, SIGKILL);
  }
}

/* Sends a reaped step's 'X' once its process group is empty (or SETTLE_MS passed). */
static void report_if_settled(struct step *s, long long now_ms) {
  if (!s->reaped || s->reported) return;
  if (kill(-s->pid, 0) == 0 || errno == EPERM) {
    if (now_ms < s->settle_deadline_ms) return;
  }
  char text[256 + 2 * ERROR_MAX];
  size_t size = sizeof text;
  int n;
  if (WIFSIGNALED(s->status)) n = snprintf(text, size, "signal=%d", WTERMSIG(s->status));
  else n = snprintf(text, size, "exit=%d", WEXITSTATUS(s->status));
  n += 1 + snprintf(text + n + 1, size - (size_t)n - 1, "user_us=%lld", s->user_us);
  n += 1 + snprintf(text + n + 1, size - (size_t)n - 1, "system_us=%lld", s->system_us);
  n += 1 + snprintf(text + n + 1, size - (size_t)n - 1, "maxrss_kb=%ld", s->maxrss_kb);
  n += 1 + snprintf(text + n + 1, size - (size_t)n - 1, "wall_us=%lld", s->wall_us);
  if (s->error_len > 0) {
    /* A NUL in the text would cut the field short: the child never writes one, but make sure. */
    for (size_t i = 0; i < s->error_len; i++)
      if (s->error[i] == '\0') s->error[i] = ' ';
    n += 1 + snprintf(text + n + 1, size - (size_t)n - 1, "error=%.*s", (int)s->error_len, s->error);
  }
  s->reported = 1;
  reply('X', s->id, text, (size_t)n + 1);
  s->drain_deadline_ms = now_ms + DRAIN_MS;
  finish_if_done(s);
}

static void add_usage(struct step *s, const struct rusage *usage) {
  s->user_us += (long long)usage->ru_utime.tv_sec * 1000000 + usage->ru_utime.tv_usec;
  s->system_us += (long long)usage->ru_stime.tv_sec * 1000000 + usage->ru_stime.tv_usec;
  if (usage->ru_maxrss > s->maxrss_kb) s->maxrss_kb = usage->ru_maxrss;
}

static void reaped(struct step *s, int status, const struct rusage *usage) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  /* Whatever the step left running in its process group goes with it. */
  kill(-s->pid, SIGKILL);
  s->reaped = 1;
  s->status = status;
  s->wall_us = (long long)(now.tv_sec - s->started.tv_sec) * 1000000 + (now.tv_nsec - s->started.tv_nsec) / 1000;
  add_usage(s, usage);
  long long now_ms = monotonic_ms();
  s->settle_deadline_ms = now_ms + SETTLE_MS;
  report_if_settled(s, now_ms);
}

/* The process group of a (zombie) process, from /proc; 0 when it cannot be read. */
static pid_t process_group(pid_t pid) {
  char path[64], stat[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, stat, sizeof stat - 1);
  close(fd);
  if (n <= 0) return 0;
  stat[n] = '\0';
  /* "pid (comm) state ppid pgrp ...": comm may hold anything, so look after its last ')'. */
  char *after = strrchr(stat, ')');
  int ppid, pgrp;
  char state;
  if (!after || sscanf(after + 1, " %c %d %d", &state, &ppid, &pgrp) != 3) return 0;
  return (pid_t)pgrp;
}

/*
 * Reaps every child that is done: steps, and the orphans of steps (this launcher is their subreaper).
 * An orphan still in a step's process group counts in that step's rusage: bwrap's monitor, for one,
 * does not wait for the sandbox's init, whose rusage holds the step's commands'. Orphans are reaped
 * before the step is reported (its 'X' waits until its group is empty): when the executor looks, nothing
 * of the group is left, not even a zombie.
 */
static void reap_children(void) {
  for (;;) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
      if (errno == EINTR) continue;
      return;
    }
    pid_t pid = info.si_pid;
    if (pid <= 0) return;
    struct step *leader = NULL, *owner = NULL;
    for (int i = 0; i < nactive && !leader; i++)
      if (!active[i]->reaped && active[i]->pid == pid) leader = active[i];
    if (!leader) {
      pid_t group = process_group(pid);
      for (int i = 0; i < nactive && !owner; i++)
        if (!active[i]->reported && active[i]->pid == group) owner = active[i];
    }
    int status;
    struct rusage usage;
    pid_t got;
    do got = wait4(pid, &status, WNOHANG, &usage);
    while (got < 0 && errno == EINTR);
    if (got != pid) return; /* not what waitid said: look again at the next SIGCHLD */
    if (leader) reaped(leader, status, &usage);
    else if (owner) add_usage(owner, &usage);
  }
}

/* SIGKILLs every pid listed in a cgroup.procs file. */
static void kill_cgroup(const char *procs) {
  FILE *file = fopen(procs, "re");
  if (!file) return;
  int pid;
  while (fscanf(file, "%d", &pid) == 1)
    if (pid > 1 && pid != getpid()) kill(pid, SIGKILL);
  fclose(file);
}

/* The executor is gone or asks us to stop: no step may outlive it. */
static void kill_everything_and_exit(int status) {
  for (int round = 0; round < 3; round++)
    for (int i = 0; i < nactive; i++) {
      struct step *s = active[i];
      kill(-s->pid, SIGKILL);
      /* Not reaped: the pid is still our child's, which may not lead its group yet. */
      if (!s->reaped) kill(s->pid, SIGKILL);
      for (int j = 0; j < s->ncgroups; j++) kill_cgroup(s->cgroups[j]);
    }
  _exit(status);
}

/* Parses and serves every whole frame in the buffer; returns the bytes used. */
static size_t serve_requests(char *buffer, size_t length) {
  size_t used = 0;
  while (length - used >= 4) {
    const unsigned char *p = (const unsigned char *)buffer + used;
    uint32_t size = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    if (size > MAX_REQUEST) {
      /* The stream cannot be trusted past a length like this one: say so and stop. */
      refuse(0, "a request of %u bytes, more than %d: the launcher stops", size, MAX_REQUEST);
      kill_everything_and_exit(2);
    }
    if (length - used - 4 < size) break;
    struct request r;
    const char *why = parse_request(buffer + used + 4, size, &r);
    if (why) refuse(r.id, "request refused: %s", why);
    else start_step(&r);
    used += 4 + size;
  }
  return used;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--version") == 0) {
    printf("kv2-step-launcher %d\n", PROTOCOL_VERSION);
    return 0;
  }
  if (argc != 1) {
    diagnose("takes no arguments: the executor starts it and speaks to it on its stdin and stdout");
    return 2;
  }
  /* Nothing this process opened by accident may reach a step. */
  if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
    for (int fd = 3; fd < 1024; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
  FILE *last = fopen("/proc/sys/kernel/cap_last_cap", "re");
  if (!last || fscanf(last, "%d", &last_cap) != 1 || last_cap < 0 || last_cap > 255) last_cap = 63;
  if (last) fclose(last);

  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGCHLD);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGINT);
  sigaddset(&handled, SIGHUP);
  if (sigprocmask(SIG_BLOCK, &handled, NULL) != 0) {
    diagnose("sigprocmask: %s", strerror(errno));
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  int signals = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signals < 0) {
    diagnose("signalfd: %s", strerror(errno));
    return 1;
  }
  /*
   * What a step leaves behind when it ends is ours to reap, not the machine's init's (which may be slow
   * to, or never, reap): its process group is empty the moment the step is reported.
   */
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) diagnose("cannot become the subreaper of the steps: %s", strerror(errno));
  /* The executor's death ends this launcher too (its stdin's end of file says the same). */
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
  if (getppid() != parent) return 1;

  char hello[32];
  int hello_length = snprintf(hello, sizeof hello, "kv2-step-launcher %d", PROTOCOL_VERSION);
  reply('H', 0, hello, (size_t)hello_length);

  static char requests[MAX_REQUEST + 4];
  size_t pending = 0;
  int input_open = 1;
  struct pollfd fds[2 + 2 * MAX_STEPS];
  struct { struct step *step; int what; } owners[2 + 2 * MAX_STEPS];
  for (;;) {
    int n = 0;
    fds[n] = (struct pollfd){.fd = input_open ? STDIN_FILENO : -1, .events = POLLIN};
    owners[n++].step = NULL;
    fds[n] = (struct pollfd){.fd = signals, .events = POLLIN};
    owners[n++].step = NULL;
    long long now = monotonic_ms(), next_deadline = -1;
    for (int i = 0; i < nactive; i++) {
      struct step *s = active[i];
      report_if_settled(s, now);
      if (!s->used) { /* finished: the next one moved into place i */
        i--;
        continue;
      }
      if (s->reported && now >= s->drain_deadline_ms) {
        close_fd(&s->fd[0]);
        close_fd(&s->fd[1]);
        finish_if_done(s); /* takes it out of `active`: the next one moved into place i */
        i--;
        continue;
      }
      long long deadline = !s->reaped ? -1 : s->reported ? s->drain_deadline_ms : s->settle_deadline_ms;
      if (deadline >= 0 && (next_deadline < 0 || deadline < next_deadline)) next_deadline = deadline;
      for (int what = 0; what < 2; what++) {
        int fd = s->fd[what];
        if (fd < 0) continue;
        fds[n] = (struct pollfd){.fd = fd, .events = POLLIN};
        owners[n].step = s;
        owners[n++].what = what;
      }
    }
    int timeout = next_deadline < 0 ? -1 : (int)(next_deadline > now ? next_deadline - now : 0);
    int ready = poll(fds, (nfds_t)n, timeout);
    if (ready < 0) {
      if (errno == EINTR) continue;
      diagnose("poll: %s", strerror(errno));
      kill_everything_and_exit(1);
    }
    if (fds[1].revents) {
      struct signalfd_siginfo info;
      while (read(signals, &info, sizeof info) == (ssize_t)sizeof info) {
        if (info.ssi_signo != SIGCHLD) kill_everything_and_exit(0);
      }
      reap_children();
    }
    for (int i = 2; i < n; i++) {
      if (!fds[i].revents) continue;
      struct step *s = owners[i].step;
      /* A step finished earlier in this round frees its entry: its remaining fds are stale. */
      if (!s->used) continue;
      if (s->fd[owners[i].what] == fds[i].fd) read_output(s, owners[i].what);
    }
    if (fds[0].revents) {
      ssize_t got = read(STDIN_FILENO, requests + pending, sizeof requests - pending);
      if (got < 0 && errno != EINTR && errno != EAGAIN) {
        diagnose("cannot read requests: %s", strerror(errno));
        kill_everything_and_exit(1);
      }
      if (got == 0) kill_everything_and_exit(0);
      if (got > 0) {
        pending += (size_t)got;
        size_t used = serve_requests(requests, pending);
        memmove(requests, requests + used, pending - used);
        pending -= used;
      }
    }
  }
}
